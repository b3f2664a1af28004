//! A minimal HTTP/1.1 client for plain-http endpoints, built for timing: one write per request
//! (head and body together, TCP_NODELAY), one `Instant::now()` per read, no copies of the body
//! on the way to the sink, kept-alive connections reused most-recent first.
//!
//! A kept-alive connection may be closed by the server at any moment, also while a request is
//! on its way (the keep-alive race). An idle connection found closed is dropped before use; a
//! request that meets a closed one anyway (no byte of a response came back) is sent once more,
//! on a new connection, as browsers and hyper do: it cannot have been processed.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked::{ChunkedDecoder, DecodeError};
use super::head::{self, Framing};
use super::{
    ACCEPT_ENCODING, END_GRACE, Failure, Fields, Marks, RequestSpec, Sink, after_marker_note,
    local_cause, unterminated_note,
};

/// Most bytes a response head may take.
const MAX_HEAD: usize = 64 * 1024;
/// Initial read buffer size (grown, up to `READ_BUF_MAX`, while reads fill it).
const READ_BUF: usize = 4 * 1024;
/// Largest read buffer.
const READ_BUF_MAX: usize = 64 * 1024;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4096;

struct Conn {
    stream: TcpStream,
    /// Read buffer (reused across requests on this connection).
    buf: Vec<u8>,
    /// Write buffer (head + body of the request being sent).
    wbuf: Vec<u8>,
}

/// The native HTTP/1.1 client for one endpoint.
pub struct Client {
    addrs: Vec<SocketAddr>,
    /// Request head without Content-Length and the final CRLF.
    head: Vec<u8>,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("native::Client")
            .field("addrs", &self.addrs)
            .finish()
    }
}

enum ExchangeError {
    /// Nothing came back: on a reused connection, the server had closed it; safe to retry.
    Stale(String),
    Fail(Failure),
}

/// A response received.
struct Exchanged {
    /// Its end: the read that completed it, or the instant of its end marker.
    end: Instant,
    /// The connection can carry another request.
    keep: bool,
    /// It ended at its end marker, not at the end of its framing: why (a note).
    unterminated: Option<String>,
}

impl Client {
    /// Resolves the endpoint's host and prepares the fixed request head.
    pub async fn new(spec: &RequestSpec) -> Result<Self, String> {
        let ep = &spec.endpoint;
        if ep.https {
            return Err(format!(
                "{}: the native transport speaks plain http only",
                ep.url
            ));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| format!("resolving {}: {e}", ep.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("resolving {}: no address", ep.host));
        }
        // A header of client.headers replaces the built-in one of the same name.
        let user = |name: &str| {
            spec.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(format!("{} {} HTTP/1.1\r\n", spec.method, ep.path).as_bytes());
        if !user("host") {
            head.extend_from_slice(format!("Host: {}\r\n", ep.host_header).as_bytes());
        }
        if !user("content-type") {
            head.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        if !user("accept") {
            head.extend_from_slice(format!("Accept: {}\r\n", spec.accept).as_bytes());
        }
        if !user("accept-encoding") {
            head.extend_from_slice(format!("Accept-Encoding: {ACCEPT_ENCODING}\r\n").as_bytes());
        }
        let has_ua = user("user-agent");
        for (k, v) in &spec.headers {
            head.extend_from_slice(k.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !has_ua {
            head.extend_from_slice(
                concat!(
                    "User-Agent: bench-client/",
                    env!("CARGO_PKG_VERSION"),
                    "\r\n"
                )
                .as_bytes(),
            );
        }
        Ok(Client {
            addrs,
            head,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Idle connections in the pool.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(c) = idle.pop() {
            // A closed or misbehaving idle connection reads EOF or data; a live one would block.
            let mut probe = [0u8; 1];
            match c.stream.try_read(&mut probe) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(c),
                _ => continue,
            }
        }
        None
    }

    fn checkin(&self, c: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(c);
        }
    }

    /// A new connection (`marks.connecting` while the TCP connect is under way).
    async fn connect(&self, marks: &mut Marks) -> Result<Conn, Failure> {
        marks.connecting = true;
        let mut last = None;
        for a in &self.addrs {
            match TcpStream::connect(a).await {
                Ok(stream) => {
                    marks.connecting = false;
                    marks.connected = Some(Instant::now());
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn {
                        stream,
                        buf: vec![0; READ_BUF],
                        wbuf: Vec::new(),
                    });
                }
                Err(e) => {
                    let why = local_cause(&e).map_or_else(|| e.to_string(), str::to_string);
                    last = Some(format!("{a}: {why}"));
                }
            }
        }
        marks.connecting = false;
        Err(Failure::Connect(
            last.unwrap_or_else(|| "no address".into()),
        ))
    }

    /// Sends `body`, streams the response into `sink`, returns the instant of its last byte
    /// (or of its end marker, when its framing did not end: `marks.unterminated`).
    pub async fn send(
        &self,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        let mut conn = match self.checkout() {
            Some(c) => c,
            None => {
                let c = self.connect(marks).await?;
                return self.finish(c, body, sink, marks).await;
            }
        };
        match exchange(&self.head, &mut conn, body, sink).await {
            Ok(x) => Ok(self.done(conn, x, marks)),
            Err(ExchangeError::Stale(msg)) => {
                // The server closed this kept-alive connection: once more, on a new one (never
                // another pooled one, which may have been closed the same way).
                tracing::debug!(
                    "kept-alive connection was closed by the server ({msg}); retrying on a new one"
                );
                marks.retried = Some(msg);
                drop(conn);
                let c = self.connect(marks).await?;
                self.finish(c, body, sink, marks).await
            }
            Err(ExchangeError::Fail(f)) => Err(f),
        }
    }

    /// The request on a new connection: no retry.
    async fn finish(
        &self,
        mut conn: Conn,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        match exchange(&self.head, &mut conn, body, sink).await {
            Ok(x) => Ok(self.done(conn, x, marks)),
            Err(ExchangeError::Stale(msg)) => Err(Failure::Io(msg)),
            Err(ExchangeError::Fail(f)) => Err(f),
        }
    }

    fn done(&self, conn: Conn, x: Exchanged, marks: &mut Marks) -> Instant {
        if x.keep {
            self.checkin(conn);
        }
        marks.unterminated = x.unterminated;
        x.end
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionReset => "connection reset by peer".into(),
        ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => local_cause(e).map_or_else(|| e.to_string(), str::to_string),
    }
}

/// One request/response on `conn`.
async fn exchange(
    head: &[u8],
    conn: &mut Conn,
    body: &[u8],
    sink: &mut impl Sink,
) -> Result<Exchanged, ExchangeError> {
    conn.wbuf.clear();
    conn.wbuf.reserve(head.len() + body.len() + 48);
    conn.wbuf.extend_from_slice(head);
    conn.wbuf.extend_from_slice(b"Content-Length: ");
    conn.wbuf
        .extend_from_slice(body.len().to_string().as_bytes());
    conn.wbuf.extend_from_slice(b"\r\n\r\n");
    conn.wbuf.extend_from_slice(body);
    if let Err(e) = conn.stream.write_all(&conn.wbuf).await {
        return Err(ExchangeError::Stale(format!(
            "sending the request: {}",
            io_msg(&e)
        )));
    }
    if conn.wbuf.capacity() > 64 << 10 {
        conn.wbuf = Vec::new();
    }

    // The head (skipping any 1xx interim responses).
    let mut filled = 0usize;
    let mut search_from = 0usize;
    let mut first_byte: Option<Instant> = None;
    let (parsed, body_start, at) = 'head: loop {
        if filled == conn.buf.len() {
            if conn.buf.len() >= MAX_HEAD {
                if let Some(status) = status_line_code(&conn.buf[..filled]) {
                    sink.head(status, first_byte.unwrap_or_else(Instant::now));
                }
                return Err(ExchangeError::Fail(Failure::Protocol(format!(
                    "response head larger than {MAX_HEAD} bytes"
                ))));
            }
            conn.buf.resize(conn.buf.len() * 2, 0);
        }
        let n = match conn.stream.read(&mut conn.buf[filled..]).await {
            Ok(n) => n,
            Err(e) if first_byte.is_none() => {
                return Err(ExchangeError::Stale(format!(
                    "reading the response: {}",
                    io_msg(&e)
                )));
            }
            Err(e) => {
                return Err(ExchangeError::Fail(Failure::Io(format!(
                    "reading the response head: {}",
                    io_msg(&e)
                ))));
            }
        };
        let at = Instant::now();
        if n == 0 {
            return Err(match first_byte {
                None => ExchangeError::Stale("connection closed before any response".into()),
                Some(_) => ExchangeError::Fail(Failure::Io(
                    "connection closed inside the response head".into(),
                )),
            });
        }
        first_byte.get_or_insert(at);
        filled += n;
        while let Some(end) = head::find_end(&conn.buf[..filled], search_from) {
            let h = match head::parse(&conn.buf[..end]) {
                Ok(h) => h,
                Err(m) => {
                    // The status line may be fine and a header broken: keep the status.
                    if let Some(status) = status_line_code(&conn.buf[..end]) {
                        sink.head(status, first_byte.unwrap_or(at));
                    }
                    return Err(ExchangeError::Fail(Failure::Protocol(m)));
                }
            };
            if !(100..200).contains(&h.status) {
                break 'head (h, end, at);
            }
            // Interim response: drop it, keep what follows.
            conn.buf.copy_within(end..filled, 0);
            filled -= end;
            search_from = 0;
        }
        search_from = filled;
    };
    sink.head(parsed.status, first_byte.unwrap_or(at));
    let (location, content_encoding, timing) = header_fields(&conn.buf[..body_start]);
    sink.fields(&Fields {
        location,
        content_encoding,
        timing,
        content_length: match parsed.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        },
    });

    let mut body = Body {
        framing: parsed.framing,
        start: body_start,
        filled,
        at,
        marker: None,
        clean: false,
    };
    match body.read(conn, sink).await {
        Ok(()) => Ok(Exchanged {
            end: body.at,
            keep: parsed.keep_alive && body.clean,
            unterminated: None,
        }),
        // After the end marker the response is complete, whatever happens to its framing.
        Err(BodyEnd::Grace) => Ok(Exchanged {
            end: body.marker.unwrap_or(body.at),
            keep: false,
            unterminated: Some(unterminated_note()),
        }),
        Err(BodyEnd::Fail(f)) => match body.marker {
            Some(m) => Ok(Exchanged {
                end: m,
                keep: false,
                unterminated: Some(after_marker_note(&f.to_string())),
            }),
            None => Err(ExchangeError::Fail(f)),
        },
    }
}

/// Why reading a body stopped short.
enum BodyEnd {
    /// Nothing ended the framing within [`END_GRACE`] of the end marker.
    Grace,
    Fail(Failure),
}

/// Reading one response body from `conn.buf[start..filled]` and further reads.
struct Body {
    framing: Framing,
    start: usize,
    filled: usize,
    /// Instant of the read that delivered the bytes in the buffer.
    at: Instant,
    /// Instant of the read that completed the stream's end marker.
    marker: Option<Instant>,
    /// The body ended exactly at the end of what was read (nothing extra follows).
    clean: bool,
}

impl Body {
    /// The next read into `conn.buf` (from its start), timed; after the end marker, for at most
    /// [`END_GRACE`] from it. Ok(0) at EOF.
    async fn next(&mut self, conn: &mut Conn, received: u64) -> Result<usize, BodyEnd> {
        let read = conn.stream.read(&mut conn.buf);
        let r = match self.marker {
            Some(m) => match tokio::time::timeout_at((m + END_GRACE).into(), read).await {
                Ok(r) => r,
                Err(_) => return Err(BodyEnd::Grace),
            },
            None => read.await,
        };
        let n = r.map_err(|e| BodyEnd::Fail(Failure::Io(body_error(received, &e))))?;
        self.at = Instant::now();
        grow(&mut conn.buf, n);
        self.start = 0;
        self.filled = n;
        Ok(n)
    }

    fn saw_marker(&mut self, sink: &impl Sink) {
        if self.marker.is_none() && sink.complete() {
            self.marker = Some(self.at);
        }
    }

    async fn read(&mut self, conn: &mut Conn, sink: &mut impl Sink) -> Result<(), BodyEnd> {
        let proto = |m: String| BodyEnd::Fail(Failure::Protocol(m));
        let io = |m: String| BodyEnd::Fail(Failure::Io(m));
        match self.framing {
            Framing::Length(total) => {
                let mut left = total;
                loop {
                    let avail = (self.filled - self.start) as u64;
                    let take = avail.min(left) as usize;
                    if take > 0 {
                        sink.data(&conn.buf[self.start..self.start + take], self.at)
                            .map_err(proto)?;
                        self.saw_marker(sink);
                    }
                    left -= take as u64;
                    if left == 0 {
                        self.clean = avail == take as u64;
                        return Ok(());
                    }
                    if self.next(conn, total - left).await? == 0 {
                        return Err(io(format!(
                            "connection closed after {} of {total} body bytes",
                            total - left
                        )));
                    }
                }
            }
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::default();
                let mut received = 0u64;
                loop {
                    let consumed = dec
                        .decode(&conn.buf[self.start..self.filled], |b| {
                            received += b.len() as u64;
                            sink.data(b, self.at)
                        })
                        .map_err(|e| match e {
                            DecodeError::Bad(m) => proto(format!("bad chunked encoding: {m}")),
                            DecodeError::Sink(m) => proto(m),
                        })?;
                    if dec.is_done() {
                        self.clean = self.start + consumed == self.filled;
                        return Ok(());
                    }
                    self.saw_marker(sink);
                    if self.next(conn, received).await? == 0 {
                        return Err(io(format!(
                            "connection closed before the end of the response ({received} body bytes received)"
                        )));
                    }
                }
            }
            Framing::Eof => {
                let mut received = 0u64;
                loop {
                    if self.filled > self.start {
                        received += (self.filled - self.start) as u64;
                        sink.data(&conn.buf[self.start..self.filled], self.at)
                            .map_err(proto)?;
                        self.saw_marker(sink);
                    }
                    if self.next(conn, received).await? == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The status code of the status line `buf` starts with (after any empty lines), if it has a
/// valid one: to record what the server answered when the rest of its head is malformed.
fn status_line_code(buf: &[u8]) -> Option<u16> {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let rest = buf[skip..].strip_prefix(b"HTTP/1.")?;
    let [b'0' | b'1', b' ', a, b, c, end, ..] = *rest else {
        return None;
    };
    if !matches!(end, b' ' | b'\r' | b'\n') || ![a, b, c].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    (code >= 100).then_some(code)
}

/// `Location` and `Content-Encoding` of a complete, valid head (values trimmed).
type HeaderFields<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, [Option<&'a [u8]>; 3]);

fn header_fields(head: &[u8]) -> HeaderFields<'_> {
    let (mut location, mut encoding, mut timing) = (None, None, [None; 3]);
    // (The status line starts with `H`: never taken for one of them.)
    for line in head.split(|&b| b == b'\n') {
        let Some(&first) = line.first() else { continue };
        if !matches!(first | 0x20, b'l' | b'c' | b'x') {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = &line[..colon];
        let value = || line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"location") {
            location = Some(value());
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            encoding = Some(value());
        } else if let Some(k) = super::SERVER_HEADERS
            .iter()
            .position(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            timing[k] = Some(value());
        }
    }
    (location, encoding, timing)
}

/// Doubles the read buffer (up to `READ_BUF_MAX`) when a read filled it: more data is waiting.
fn grow(buf: &mut Vec<u8>, n: usize) {
    if n == buf.len() && buf.len() < READ_BUF_MAX {
        buf.resize(buf.len() * 2, 0);
    }
}

fn body_error(received: u64, e: &std::io::Error) -> String {
    format!("{} after {received} body bytes", io_msg(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_a_malformed_head() {
        assert_eq!(
            status_line_code(b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"),
            Some(200)
        );
        assert_eq!(status_line_code(b"\r\nHTTP/1.0 404\r\n\r\n"), Some(404));
        for bad in [
            &b"HTTP/2 200 OK\r\n"[..],
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 2000\r\n",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 099 Low\r\n",
            b"HTTP/1.1 200",
            b"SSH-2.0-OpenSSH_9.6\r\n",
        ] {
            assert_eq!(status_line_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn location_and_content_encoding() {
        let head = b"HTTP/1.1 302 Found\r\nlocation:  http://x/y \r\nContent-Length: 0\r\nCONTENT-ENCODING: gzip\r\nCache-Control: no\r\n\r\n";
        assert_eq!(
            header_fields(head),
            (
                Some(&b"http://x/y"[..]),
                Some(&b"gzip"[..]),
                [None, None, None]
            )
        );
        assert_eq!(
            header_fields(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"),
            (None, None, [None, None, None])
        );
        // TGI's timing headers, any case
        let tgi = b"HTTP/1.1 200 OK\r\nx-compute-time: 0.1\r\nX-Queue-Time: 12\r\nx-inference-time:  350 \r\nx-prompt-tokens: 17\r\n\r\n";
        assert_eq!(
            header_fields(tgi).2,
            [Some(&b"12"[..]), Some(&b"350"[..]), Some(&b"17"[..])]
        );
    }

    #[test]
    fn open_file_limits_are_named() {
        assert_eq!(
            io_msg(&std::io::Error::from_raw_os_error(24)),
            "too many open files (the open-file limit, `ulimit -n`, is reached)"
        );
        assert!(io_msg(&std::io::Error::from_raw_os_error(23)).contains("system-wide"));
        assert_eq!(
            io_msg(&std::io::Error::from(ErrorKind::ConnectionReset)),
            "connection reset by peer"
        );
    }
}

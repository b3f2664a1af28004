//! A minimal HTTP/1.1 client for plain-http endpoints, built for timing: one write per request
//! (head and body together, TCP_NODELAY), one `Instant::now()` per read, no copies of the body
//! on the way to the sink, kept-alive connections reused most-recent first.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked::{ChunkedDecoder, DecodeError};
use super::head::{self, Framing};
use super::{Failure, Marks, RequestSpec, Sink};

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
    /// Nothing came back on a reused connection: the server had closed it; safe to retry.
    Stale(String),
    Fail(Failure),
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
        head.extend_from_slice(format!("POST {} HTTP/1.1\r\n", ep.path).as_bytes());
        if !user("host") {
            head.extend_from_slice(format!("Host: {}\r\n", ep.host_header).as_bytes());
        }
        if !user("content-type") {
            head.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        if !user("accept") {
            head.extend_from_slice(format!("Accept: {}\r\n", spec.accept).as_bytes());
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

    async fn connect(&self) -> Result<Conn, Failure> {
        let mut last = None;
        for a in &self.addrs {
            match TcpStream::connect(a).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn {
                        stream,
                        buf: vec![0; READ_BUF],
                        wbuf: Vec::new(),
                    });
                }
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        Err(Failure::Connect(
            last.unwrap_or_else(|| "no address".into()),
        ))
    }

    /// Sends `body`, streams the response into `sink`, returns the instant of its last byte.
    pub async fn send(
        &self,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        let mut retried = false;
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(c) => (c, true),
                None => {
                    let c = self.connect().await?;
                    marks.connected = Some(Instant::now());
                    (c, false)
                }
            };
            match exchange(&self.head, &mut conn, body, sink).await {
                Ok((end, keep)) => {
                    if keep {
                        self.checkin(conn);
                    }
                    return Ok(end);
                }
                Err(ExchangeError::Stale(msg)) if reused && !retried => {
                    tracing::debug!(
                        "kept-alive connection was closed by the server ({msg}); retrying on a new one"
                    );
                    retried = true;
                }
                Err(ExchangeError::Stale(msg)) => return Err(Failure::Io(msg)),
                Err(ExchangeError::Fail(f)) => return Err(f),
            }
        }
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionReset => "connection reset by peer".into(),
        ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => e.to_string(),
    }
}

/// One request/response on `conn`. Ok carries the end instant and whether the connection can
/// be reused.
async fn exchange(
    head: &[u8],
    conn: &mut Conn,
    body: &[u8],
    sink: &mut impl Sink,
) -> Result<(Instant, bool), ExchangeError> {
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
    let (parsed, mut body_start, mut at) = 'head: loop {
        if filled == conn.buf.len() {
            if conn.buf.len() >= MAX_HEAD {
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
            let h = head::parse(&conn.buf[..end])
                .map_err(|m| ExchangeError::Fail(Failure::Protocol(m)))?;
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

    let fail = |m: String| ExchangeError::Fail(Failure::Io(m));
    let proto = |m: String| ExchangeError::Fail(Failure::Protocol(m));
    match parsed.framing {
        Framing::Length(total) => {
            let mut left = total;
            loop {
                let avail = (filled - body_start) as u64;
                let take = avail.min(left) as usize;
                if take > 0 {
                    sink.data(&conn.buf[body_start..body_start + take], at)
                        .map_err(proto)?;
                }
                left -= take as u64;
                if left == 0 {
                    let clean = avail == take as u64;
                    return Ok((at, parsed.keep_alive && clean));
                }
                let n = conn
                    .stream
                    .read(&mut conn.buf)
                    .await
                    .map_err(|e| fail(body_error(total - left, &e)))?;
                at = Instant::now();
                grow(&mut conn.buf, n);
                if n == 0 {
                    return Err(fail(format!(
                        "connection closed after {} of {total} body bytes",
                        total - left
                    )));
                }
                body_start = 0;
                filled = n;
            }
        }
        Framing::Chunked => {
            let mut dec = ChunkedDecoder::default();
            let mut received = 0u64;
            loop {
                let consumed = dec
                    .decode(&conn.buf[body_start..filled], |b| {
                        received += b.len() as u64;
                        sink.data(b, at)
                    })
                    .map_err(|e| match e {
                        DecodeError::Bad(m) => proto(format!("bad chunked encoding: {m}")),
                        DecodeError::Sink(m) => proto(m),
                    })?;
                if dec.is_done() {
                    let clean = body_start + consumed == filled;
                    return Ok((at, parsed.keep_alive && clean));
                }
                let n = conn
                    .stream
                    .read(&mut conn.buf)
                    .await
                    .map_err(|e| fail(body_error(received, &e)))?;
                at = Instant::now();
                grow(&mut conn.buf, n);
                if n == 0 {
                    return Err(fail(format!(
                        "connection closed before the end of the response ({received} body bytes received)"
                    )));
                }
                body_start = 0;
                filled = n;
            }
        }
        Framing::Eof => {
            let mut received = 0u64;
            loop {
                if filled > body_start {
                    received += (filled - body_start) as u64;
                    sink.data(&conn.buf[body_start..filled], at)
                        .map_err(proto)?;
                }
                let n = conn
                    .stream
                    .read(&mut conn.buf)
                    .await
                    .map_err(|e| fail(body_error(received, &e)))?;
                at = Instant::now();
                grow(&mut conn.buf, n);
                if n == 0 {
                    return Ok((at, false));
                }
                body_start = 0;
                filled = n;
            }
        }
    }
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

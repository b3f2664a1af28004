//! The scripted test server of the client's tests and benchmarks (a dev-only crate: nothing a
//! user runs links it). The server is a raw HTTP/1.1 server on 127.0.0.1 whose every response is
//! scripted: OpenAI / TGI token streams with exact timing (first token `ttft` after the
//! request arrived, then one every `interval`, slept with the precise timer), error statuses,
//! resets mid-stream, malformed lines, stalls, and hostile servers (raw bytes, connections
//! closed on a request, redirects, compressed bodies, echoed request heads). It logs each request
//! (body, arrival) and the highest number of requests it had in flight.

#![allow(missing_docs)]

pub mod services;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_config::client::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use bench_client::timer::PreciseTimer;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Order of arrival (0-based).
    pub index: usize,
    /// Request path.
    pub path: String,
    /// Header lines (name lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub arrival: Instant,
    /// When each token event was written (filled in when the response ends).
    pub token_writes: Vec<Instant>,
    /// Connection number (0-based, in accept order).
    pub conn: usize,
    /// Position of this request on its connection (0: the connection's first request).
    pub conn_request: usize,
}

impl Seen {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The request head as text (request line and header lines, names lower-cased), as a
    /// server that echoes it in an error page shows it.
    pub fn head_text(&self) -> String {
        let mut s = format!("POST {} HTTP/1.1\r\n", self.path);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s
    }
}

/// How a streamed response ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `[DONE]` (OpenAI) and the chunked terminator; the connection stays open.
    Done,
    /// The connection is reset (RST) right after the tokens.
    Reset,
    /// This line is written as an event, then the stream goes on and ends normally.
    Garbage(String),
    /// Nothing more is written; the connection stays open.
    Stall,
    /// The body ends cleanly (chunked terminator) with no end marker: no `[DONE]`, no
    /// finish_reason, no TGI final event (a reply cut short by a proxy).
    Cut,
    /// The end marker (`[DONE]`, TGI's final event) is written, then nothing: the chunked body
    /// is never terminated and the connection stays open.
    DoneHang,
}

/// A scripted response.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A token stream.
    Stream {
        /// Event format.
        api: Api,
        /// Token texts.
        tokens: Vec<String>,
        /// First token this long after the request arrived.
        ttft: Duration,
        /// Then one token every `interval`.
        interval: Duration,
        /// Usage event (prompt, completion) before `[DONE]`.
        usage: Option<(u32, u32)>,
        /// Send a role-only chunk (empty content) right away, as vLLM does.
        role_chunk: bool,
        /// How it ends.
        end: End,
        /// Sleep with the precise timer (else tokio's 1 ms timer, for many slow streams).
        precise: bool,
    },
    /// A complete response with this status and body (`Content-Length`).
    Body {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// The request is read and never answered.
    Stall,
    /// These bytes, then the connection is closed.
    Raw(Vec<u8>),
    /// These bytes, then nothing: the connection stays open (a response that never ends).
    Hang(Vec<u8>),
    /// The request is read, then the connection is closed without a byte of response (what a
    /// client sees when a kept-alive connection is closed by the server as a request arrives).
    Close,
    /// A complete response: this status, these header lines, this body (`Content-Length` is
    /// added); the connection stays open.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// This reply, then the connection is closed unless another request arrives within the
    /// duration (a server's keep-alive idle timeout).
    CloseAfter(Box<Reply>, Duration),
}

impl Reply {
    /// An OpenAI stream of `n` tokens ("t0 ", "t1 ", ...), all at once.
    pub fn tokens(api: Api, n: usize) -> Reply {
        Reply::Stream {
            api,
            tokens: (0..n).map(|i| format!("t{i} ")).collect(),
            ttft: Duration::ZERO,
            interval: Duration::ZERO,
            usage: Some((10, n as u32)),
            role_chunk: false,
            end: End::Done,
            precise: true,
        }
    }

    /// A redirect to `location` (no body).
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// A 2xx SSE stream of `n` OpenAI chat tokens, gzip-compressed (`Content-Encoding: gzip`).
    pub fn gzip_stream(n: usize) -> Reply {
        let mut plain = String::new();
        for i in 0..n {
            plain.push_str(&token_event(Api::OpenaiChat, &format!("t{i} "), i));
        }
        plain.push_str(&final_events(Api::OpenaiChat, "", None));
        Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/event-stream".into()),
                ("Content-Encoding".into(), "gzip".into()),
            ],
            body: gzip_stored(plain.as_bytes()),
        }
    }

    /// An error object whose message quotes the request head, as some proxies and debug
    /// servers send.
    pub fn echo_head(status: u16, seen: &Seen) -> Reply {
        let message = format!("bad request; you sent: {}", seen.head_text());
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::json!({ "error": { "message": message } })
                .to_string()
                .into_bytes(),
        }
    }

    /// A plain-text error page that is the request head.
    pub fn echo_head_text(status: u16, seen: &Seen) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: seen.head_text().into_bytes(),
        }
    }
}

/// `data` as a gzip member of stored (uncompressed) deflate blocks: a valid gzip body without a
/// compressor.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = b.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    seen: Mutex<Vec<Seen>>,
    count: AtomicUsize,
    conns: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: AtomicBool,
}

/// A running test server (stops when dropped).
pub struct TestServer {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1 (an ephemeral port) in its own thread.
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        Self::start_on("127.0.0.1:0".parse().expect("address"), handler)
    }

    /// Starts a server on `addr`.
    pub fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            seen: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            conns: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = TcpListener::bind(addr).await.expect("bind");
                    addr_tx
                        .send(listener.local_addr().expect("addr"))
                        .expect("send addr");
                    loop {
                        tokio::select! {
                            _ = &mut shutdown_rx => break,
                            a = listener.accept() => {
                                let Ok((s, _)) = a else { continue };
                                let _ = s.set_nodelay(true);
                                let n = sh.conns.fetch_add(1, SeqCst);
                                tokio::spawn(serve_conn(sh.clone(), s, n));
                            }
                        }
                    }
                    sh.stop.store(true, SeqCst);
                });
            })
            .expect("spawn server thread");
        let addr = addr_rx.recv().expect("server address");
        TestServer {
            addr,
            shared,
            thread: Some(thread),
            shutdown: Some(shutdown),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Requests seen so far (completed responses have `token_writes`).
    pub fn seen(&self) -> Vec<Seen> {
        let mut v = self.shared.seen.lock().expect("lock").clone();
        v.sort_by_key(|s| s.index);
        v
    }
    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.shared.count.load(SeqCst)
    }
    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.conns.load(SeqCst)
    }
    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(SeqCst)
    }
    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        // Connection tasks die with the runtime; do not wait for stalled ones.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head + Content-Length body); None at EOF.
async fn read_request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = memchr::memmem::find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut tmp = [0u8; 65536];
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut tmp = [0u8; 65536];
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some((path, headers, body))
}

/// `ev` as one chunk of a chunked body.
pub fn chunk(ev: &str) -> Vec<u8> {
    format!("{:x}\r\n{ev}\r\n", ev.len()).into_bytes()
}

/// The SSE event of token `i` with text `text`, in `api`'s format.
pub fn token_event(api: Api, text: &str, i: usize) -> String {
    let t = serde_json::to_string(text).expect("json");
    match api {
        Api::OpenaiChat => format!(
            "data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{t}}},\"finish_reason\":null}}]}}\n\n"
        ),
        Api::OpenaiCompletions => format!(
            "data: {{\"id\":\"x\",\"object\":\"text_completion\",\"choices\":[{{\"index\":0,\"text\":{t},\"finish_reason\":null}}]}}\n\n"
        ),
        Api::Tgi => format!(
            "data:{{\"index\":{i},\"token\":{{\"id\":{i},\"text\":{t},\"logprob\":0.0,\"special\":false}},\"generated_text\":null,\"details\":null}}\n\n"
        ),
        Api::Template => {
            panic!("a template has no reply shape of its own: use the API it imitates")
        }
    }
}

/// The events that end a stream: TGI's final event (with `generated_text` = `all` and
/// `details`), or the usage event (when given) and `[DONE]`.
pub fn final_events(api: Api, all: &str, usage: Option<(u32, u32)>) -> String {
    match api {
        Api::Tgi => {
            let g = serde_json::to_string(all).expect("json");
            let n = usage.map_or(0, |u| u.1);
            format!(
                "data:{{\"token\":{{\"id\":0,\"text\":\"\",\"special\":true}},\"generated_text\":{g},\"details\":{{\"finish_reason\":\"length\",\"generated_tokens\":{n}}}}}\n\n"
            )
        }
        _ => {
            let mut s = String::new();
            if let Some((p, c)) = usage {
                s.push_str(&format!(
                    "data: {{\"id\":\"x\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"total_tokens\":{}}}}}\n\n",
                    p + c
                ));
            }
            s.push_str("data: [DONE]\n\n");
            s
        }
    }
}

/// The head of a chunked SSE response.
pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(s: &'a Shared) -> Self {
        let now = s.in_flight.fetch_add(1, SeqCst) + 1;
        s.max_in_flight.fetch_max(now, SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

async fn serve_conn(sh: Arc<Shared>, mut s: TcpStream, conn: usize) {
    let mut buf = Vec::new();
    let mut timer: Option<PreciseTimer> = None;
    let mut idle_close: Option<Duration> = None;
    for conn_request in 0.. {
        let next = match idle_close {
            Some(d) => tokio::time::timeout(d, read_request(&mut s, &mut buf))
                .await
                .ok()
                .flatten(),
            None => read_request(&mut s, &mut buf).await,
        };
        let Some((path, headers, body)) = next else {
            return;
        };
        let arrival = Instant::now();
        let index = sh.count.fetch_add(1, SeqCst);
        let mut seen = Seen {
            index,
            path,
            headers,
            body,
            arrival,
            token_writes: Vec::new(),
            conn,
            conn_request,
        };
        let mut reply = (sh.handler)(&seen);
        idle_close = None;
        if let Reply::CloseAfter(r, d) = reply {
            idle_close = Some(d);
            reply = *r;
        }
        let guard = InFlight::enter(&sh);
        let keep = respond(&mut s, reply, &mut seen, &mut timer).await;
        drop(guard);
        sh.seen.lock().expect("lock").push(seen);
        if !keep || sh.stop.load(SeqCst) {
            return;
        }
    }
}

/// Writes one response; false when the connection must not be reused.
async fn respond(
    s: &mut TcpStream,
    reply: Reply,
    seen: &mut Seen,
    timer: &mut Option<PreciseTimer>,
) -> bool {
    match reply {
        Reply::Body {
            status,
            content_type,
            body,
        } => {
            let r = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(r.as_bytes()).await.is_ok()
        }
        Reply::Raw(bytes) => {
            let _ = s.write_all(&bytes).await;
            false
        }
        Reply::Hang(bytes) => {
            let _ = s.write_all(&bytes).await;
            hang(s).await;
            false
        }
        Reply::Close => false,
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut r = format!("HTTP/1.1 {status} X\r\n");
            for (k, v) in &headers {
                r.push_str(&format!("{k}: {v}\r\n"));
            }
            r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut out = r.into_bytes();
            out.extend_from_slice(&body);
            s.write_all(&out).await.is_ok()
        }
        Reply::CloseAfter(r, _) => Box::pin(respond(s, *r, seen, timer)).await,
        Reply::Stall => {
            std::future::pending::<()>().await;
            false
        }
        Reply::Stream {
            api,
            tokens,
            ttft,
            interval,
            usage,
            role_chunk,
            end,
            precise,
        } => {
            let mut out = SSE_HEAD.to_vec();
            if role_chunk && api == Api::OpenaiChat {
                out.extend(chunk("data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"));
            }
            let immediate = ttft.is_zero() && interval.is_zero();
            if !immediate && s.write_all(&out).await.is_err() {
                return false;
            }
            if !immediate {
                out.clear();
            }
            for (i, t) in tokens.iter().enumerate() {
                if !immediate {
                    let due = seen.arrival + ttft + interval * i as u32;
                    if precise {
                        if timer.is_none() {
                            *timer = PreciseTimer::new().ok();
                        }
                        match timer.as_mut() {
                            Some(tm) => tm.sleep_until(due).await,
                            None => tokio::time::sleep_until(due.into()).await,
                        }
                    } else {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                out.extend(chunk(&token_event(api, t, i)));
                if !immediate {
                    if s.write_all(&out).await.is_err() {
                        return false;
                    }
                    out.clear();
                }
                seen.token_writes.push(Instant::now());
            }
            match end {
                End::Done | End::Garbage(_) => {
                    if let End::Garbage(line) = &end {
                        out.extend(chunk(&format!("{line}\n\n")));
                    }
                    out.extend(chunk(&final_events(api, &tokens.concat(), usage)));
                    out.extend_from_slice(b"0\r\n\r\n");
                    s.write_all(&out).await.is_ok()
                }
                End::Cut => {
                    out.extend_from_slice(b"0\r\n\r\n");
                    s.write_all(&out).await.is_ok()
                }
                End::DoneHang => {
                    out.extend(chunk(&final_events(api, &tokens.concat(), usage)));
                    let _ = s.write_all(&out).await;
                    hang(s).await;
                    false
                }
                End::Reset => {
                    let _ = s.write_all(&out).await;
                    let _ = s.set_zero_linger();
                    false
                }
                End::Stall => {
                    let _ = s.write_all(&out).await;
                    std::future::pending::<()>().await;
                    false
                }
            }
        }
    }
}

/// Reads and drops whatever the client sends until it closes the connection: a server that
/// never finishes its response, but goes away when the client does.
async fn hang(s: &mut TcpStream) {
    let mut tmp = [0u8; 4096];
    while let Ok(n) = s.read(&mut tmp).await {
        if n == 0 {
            break;
        }
    }
}

/// A listening port on 127.0.0.1 whose accept queue is full, so a TCP connect to it never
/// completes (the kernel drops the SYNs): a server too overloaded to take connections.
#[derive(Debug)]
pub struct Unaccepting {
    /// Its address.
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
    _filler: std::net::TcpStream,
}

impl Unaccepting {
    /// Listens with a backlog of 0 and fills the one queue slot with a connection of its own.
    pub fn start() -> Unaccepting {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind("127.0.0.1:0".parse().expect("address"))
                .expect("bind");
            sock.listen(0)
                .expect("listen")
                .into_std()
                .expect("std listener")
        });
        let addr = listener.local_addr().expect("addr");
        let filler = std::net::TcpStream::connect(addr).expect("fill the accept queue");
        Unaccepting {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }
    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub use bench_types::record::read::read_rows as read_records;

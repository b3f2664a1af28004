//! HTTP transports: the native HTTP/1.1 client (plain http, exact timing) and reqwest (https).
//!
//! Both deliver a response the same way: [`Sink::head`] once with the status code and the
//! instant of the response's first byte, then [`Sink::data`] with the decoded body bytes and
//! the instant the read that delivered them returned.

pub mod chunked;
pub mod endpoint;
pub mod head;
pub mod native;
mod rq;

use std::time::Instant;

use bytes::Bytes;

pub use endpoint::Endpoint;

/// Receives one response as it arrives.
pub trait Sink {
    /// The response head arrived: status code, and when its first byte was read.
    fn head(&mut self, status: u16, first_byte: Instant);
    /// Decoded body bytes, read at `at`. An error ends the request (malformed stream).
    fn data(&mut self, bytes: &[u8], at: Instant) -> Result<(), String>;
}

/// Why a request failed below the protocol level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection (refused, unreachable, DNS).
    Connect(String),
    /// The connection broke or closed before the response was complete.
    Io(String),
    /// The response is not valid HTTP, or the sink refused the stream.
    Protocol(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(m) => write!(f, "connect: {m}"),
            Failure::Io(m) => f.write_str(m),
            Failure::Protocol(m) => f.write_str(m),
        }
    }
}

/// Extra instants a transport can report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    /// A new TCP connection was established for this request (None: a kept-alive one was reused,
    /// or the transport cannot tell).
    pub connected: Option<Instant>,
}

/// Fixed parts of every request.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Where to send.
    pub endpoint: Endpoint,
    /// Header lines sent with every request (name, value), Authorization included.
    pub headers: Vec<(String, String)>,
    /// `text/event-stream` when streaming.
    pub accept: &'static str,
}

/// One of the transports.
#[derive(Debug)]
pub enum Transport {
    /// The native HTTP/1.1 client.
    Native(native::Client),
    /// reqwest.
    Reqwest(rq::Client),
}

impl Transport {
    /// The native client for `spec` (resolves the host now).
    pub async fn native(spec: &RequestSpec) -> Result<Self, String> {
        Ok(Transport::Native(native::Client::new(spec).await?))
    }
    /// A reqwest client for `spec`.
    pub fn reqwest(spec: &RequestSpec) -> Result<Self, String> {
        Ok(Transport::Reqwest(rq::Client::new(spec)?))
    }
    /// Sends `body` and streams the response into `sink`; returns when the response ended
    /// (the instant its last byte was read).
    pub async fn send(
        &self,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        match self {
            Transport::Native(c) => c.send(body, sink, marks).await,
            Transport::Reqwest(c) => c.send(body, sink).await,
        }
    }
    /// Idle keep-alive connections held (native only).
    pub fn idle_connections(&self) -> usize {
        match self {
            Transport::Native(c) => c.idle_connections(),
            Transport::Reqwest(_) => 0,
        }
    }
}

//! HTTP transports: the native HTTP/1.1 client (plain http, exact timing) and reqwest (https).
//!
//! Both deliver a response the same way: [`Sink::head`] once with the status code and the
//! instant of the response's first byte, [`Sink::fields`] with the few header fields the sink
//! reads, then [`Sink::data`] with the decoded body bytes and the instant the read that
//! delivered them returned. Both behave the same on a hostile server (the fault table of
//! `tests/it/faults.rs` runs every case against both): a request that meets a kept-alive
//! connection the server already closed is sent once more on a fresh one; redirects are not
//! followed; a stream that sent its end marker is not waited on past [`END_GRACE`]; neither
//! asks for nor decodes a compressed body.

pub mod chunked;
pub mod endpoint;
pub mod head;
pub mod native;
pub(crate) mod rq;

use std::time::{Duration, Instant};

use bytes::Bytes;

pub use endpoint::Endpoint;

/// How long a transport keeps reading after the sink saw the stream's end marker (`[DONE]`,
/// TGI's final event) for the end of the body's framing (the chunked terminator, the close, the
/// last Content-Length byte). A server writes it right after the marker; one that does not
/// within this time is not waited on: the response ends at the marker and its connection is
/// dropped (see [`Marks::unterminated`]).
pub const END_GRACE: Duration = Duration::from_millis(200);

/// Receives one response as it arrives.
pub trait Sink {
    /// The response head arrived: status code, and when its first byte was read. Also called
    /// when a head has a valid status line but is malformed further on (the transport then
    /// fails the request), so the status the server gave is recorded.
    fn head(&mut self, status: u16, first_byte: Instant);
    /// The header fields the sink reads, right after [`Sink::head`] (not called for a head
    /// that turned out malformed).
    fn fields(&mut self, _fields: &Fields<'_>) {}
    /// Decoded body bytes, read at `at`. An error ends the request (malformed stream).
    fn data(&mut self, bytes: &[u8], at: Instant) -> Result<(), String>;
    /// Whether the body so far holds the response's end marker: the transport then reads the
    /// rest (the framing's end) for at most [`END_GRACE`].
    fn complete(&self) -> bool {
        false
    }
}

/// Header fields of a response head that a [`Sink`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    /// `Location` (redirects).
    pub location: Option<&'a [u8]>,
    /// `Content-Encoding`.
    pub content_encoding: Option<&'a [u8]>,
    /// The body's length when it is delimited by `Content-Length`.
    pub content_length: Option<u64>,
    /// The values of [`SERVER_HEADERS`], in that order, when present.
    pub timing: [Option<&'a [u8]>; 3],
}

/// Response headers in which a server reports on the request: its queue and inference time,
/// whole ms, and the prompt's tokens (TGI's router, on `/generate`; not on streams, whose head
/// goes out before the work).
pub const SERVER_HEADERS: [&str; 3] = ["x-queue-time", "x-inference-time", "x-prompt-tokens"];

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

/// What a transport reports about a request besides its response.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// A new TCP connection was established for this request (None: a kept-alive one was reused,
    /// or the transport cannot tell).
    pub connected: Option<Instant>,
    /// A TCP connect was under way when the transport stopped (native: when the request
    /// timed out, it was still connecting).
    pub connecting: bool,
    /// The request was sent a second time on a fresh connection: the first attempt failed
    /// before any byte of a response came back, as happens on a kept-alive connection the
    /// server closed (why the first attempt failed).
    pub retried: Option<String>,
    /// The response ended at its end marker without the end of its framing (the server did not
    /// terminate the chunked body, reach its Content-Length or close the connection within
    /// [`END_GRACE`]): what was missing. The connection was dropped.
    pub unterminated: Option<String>,
}

/// Fixed parts of every request.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// HTTP method (POST; a template may say PUT or PATCH).
    pub method: String,
    /// Where to send.
    pub endpoint: Endpoint,
    /// Header lines sent with every request (name, value), Authorization included.
    pub headers: Vec<(String, String)>,
    /// `text/event-stream` when streaming.
    pub accept: &'static str,
}

/// What an OS error says when it is about a resource of this machine rather than the server:
/// the open-file limits (a run with more requests in flight than descriptors).
pub(crate) fn local_cause(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error() {
        Some(24) => Some("too many open files (the open-file limit, `ulimit -n`, is reached)"),
        Some(23) => Some(
            "too many open files in the system (the system-wide limit, `fs.file-max`, is reached)",
        ),
        _ => None,
    }
}

/// The note of a response that ended at its end marker because nothing ended its framing.
pub(crate) fn unterminated_note() -> String {
    format!(
        "the server did not close the stream after its end marker (nothing ended the body within {} ms of it): the request ends at the marker and its connection was dropped",
        END_GRACE.as_millis()
    )
}

/// The note of a response whose transport failed after its end marker.
pub(crate) fn after_marker_note(failure: &str) -> String {
    format!(
        "after the stream's end marker: {failure} (the request ends at the marker and its connection was dropped)"
    )
}

/// The `Accept-Encoding` both transports send (unless `client.headers` gives one): neither
/// decodes a compressed body, so neither asks for one.
pub(crate) const ACCEPT_ENCODING: &str = "identity";

/// One of the transports, with the secrets its requests carry (to keep them out of records).
#[derive(Debug)]
pub struct Transport {
    kind: Kind,
    secrets: Secrets,
}

#[derive(Debug)]
enum Kind {
    /// The native HTTP/1.1 client.
    Native(native::Client),
    /// reqwest.
    Reqwest(rq::Client),
}

impl Transport {
    /// The native client for `spec` (resolves the host now).
    pub async fn native(spec: &RequestSpec) -> Result<Self, String> {
        Ok(Transport {
            kind: Kind::Native(native::Client::new(spec).await?),
            secrets: Secrets::of(&spec.headers),
        })
    }
    /// A reqwest client for `spec`.
    pub fn reqwest(spec: &RequestSpec) -> Result<Self, String> {
        Ok(Transport {
            kind: Kind::Reqwest(rq::Client::new(spec)?),
            secrets: Secrets::of(&spec.headers),
        })
    }
    /// Sends `body` and streams the response into `sink`; returns when the response ended
    /// (the instant its last byte was read, or the instant of its end marker when the framing
    /// did not end: [`Marks::unterminated`]).
    pub async fn send(
        &self,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        match &self.kind {
            Kind::Native(c) => c.send(body, sink, marks).await,
            Kind::Reqwest(c) => c.send(body, sink, marks).await,
        }
    }
    /// Idle keep-alive connections held (native only).
    pub fn idle_connections(&self) -> usize {
        match &self.kind {
            Kind::Native(c) => c.idle_connections(),
            Kind::Reqwest(_) => 0,
        }
    }
    /// The secrets the requests carry.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

/// The secret values a run sends (the API key, the values of headers whose names say they are
/// secret: `bench_types::manifest::is_secret_header`), to redact from every text recorded: a
/// server may echo the request head in an error page.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Longest first, so `Bearer <key>` is replaced whole before `<key>`.
    values: Vec<String>,
}

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// The shortest start or end of a secret that is redacted where a text was cut (at `...`, or
/// at the text's end): shorter fragments say nothing of a key.
const MIN_FRAGMENT: usize = 4;

impl Secrets {
    /// The secret values among `headers`: the whole value, and for `Authorization`-style values
    /// (`Bearer <token>`, `Basic <credentials>`) the credentials alone too.
    pub fn of(headers: &[(String, String)]) -> Self {
        let mut values = Vec::new();
        for (k, v) in headers {
            if !bench_types::manifest::is_secret_header(k) {
                continue;
            }
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            values.push(v.to_string());
            if let Some((scheme, cred)) = v.split_once(' ')
                && !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphabetic())
            {
                let cred = cred.trim();
                if !cred.is_empty() {
                    values.push(cred.to_string());
                }
            }
        }
        values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        Secrets { values }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`], and where the text was cut (before a
    /// `...`, or at its end) a start of a secret of at least [`MIN_FRAGMENT`] bytes too (and
    /// after a leading `...`, an end of one): excerpts of a server's answer are cut to a
    /// length, and the cut may fall inside a key.
    pub fn redact(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_string();
        }
        let mut t = text.to_string();
        for s in &self.values {
            if t.contains(s.as_str()) {
                t = t.replace(s.as_str(), REDACTED);
            }
        }
        // Cut points: each `...` and the end.
        let mut out = String::with_capacity(t.len());
        let mut rest = t.as_str();
        loop {
            let (before, marker, after) = match rest.find("...") {
                Some(i) => (&rest[..i], "...", &rest[i + 3..]),
                None => (rest, "", ""),
            };
            let before = self.strip_start_fragment(before, &mut out);
            let (kept, cut) = self.strip_end_fragment(before);
            out.push_str(kept);
            if cut {
                out.push_str(REDACTED);
            }
            out.push_str(marker);
            if marker.is_empty() {
                break;
            }
            rest = after;
        }
        out
    }

    /// `seg` without a start (prefix) of a secret at its end: (what is left, whether one was
    /// removed).
    fn strip_end_fragment<'a>(&self, seg: &'a str) -> (&'a str, bool) {
        for s in &self.values {
            for k in (MIN_FRAGMENT..s.len()).rev() {
                if let (Some(p), Some(frag)) = (seg.len().checked_sub(k), s.get(..k))
                    && seg.get(p..) == Some(frag)
                {
                    return (&seg[..p], true);
                }
            }
        }
        (seg, false)
    }

    /// When `out` ends with `...` (a leading cut), `seg` without an end (suffix) of a secret at
    /// its start, which is replaced in `out`. Returns what is left of `seg`.
    fn strip_start_fragment<'a>(&self, seg: &'a str, out: &mut String) -> &'a str {
        if !out.ends_with("...") {
            return seg;
        }
        for s in &self.values {
            for k in (MIN_FRAGMENT..s.len()).rev() {
                if let (Some(frag), Some(head)) = (s.get(s.len() - k..), seg.get(..k))
                    && head == frag
                {
                    out.push_str(REDACTED);
                    return &seg[k..];
                }
            }
        }
        seg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::of(&[
            (
                "Authorization".into(),
                "Bearer sk-test-0123456789abcdef".into(),
            ),
            ("X-Api-Key".into(), "k-42-secretvalue".into()),
            ("routing-strategy".into(), "random".into()),
            ("Content-Type".into(), "application/json".into()),
        ])
    }

    #[test]
    fn secret_values_come_from_secret_headers() {
        let s = secrets();
        assert_eq!(
            s.values,
            vec![
                "Bearer sk-test-0123456789abcdef",
                "sk-test-0123456789abcdef",
                "k-42-secretvalue"
            ]
        );
        assert!(Secrets::of(&[("Accept".into(), "x".into())]).is_empty());
    }

    #[test]
    fn redacts_whole_secrets_and_fragments_at_cuts() {
        let s = secrets();
        assert_eq!(
            s.redact("HTTP 500: you sent authorization: Bearer sk-test-0123456789abcdef, x-api-key: k-42-secretvalue; key sk-test-0123456789abcdef"),
            "HTTP 500: you sent authorization: <redacted>, x-api-key: <redacted>; key <redacted>"
        );
        // An excerpt cut inside the key, at its end or before `...`.
        assert_eq!(
            s.redact("HTTP 500: authorization: Bearer sk-test-0123..."),
            "HTTP 500: authorization: <redacted>..."
        );
        assert_eq!(
            s.redact("malformed SSE line \"x-api-key: k-42-se"),
            "malformed SSE line \"x-api-key: <redacted>"
        );
        // A leading cut inside the key.
        assert_eq!(
            s.redact("starts with \"...456789abcdef and more\""),
            "starts with \"...<redacted> and more\""
        );
        // Short fragments and unrelated text stay.
        assert_eq!(s.redact("a text ending in sk-"), "a text ending in sk-");
        assert_eq!(s.redact("nothing secret..."), "nothing secret...");
        assert_eq!(Secrets::default().redact("Bearer x"), "Bearer x");
    }
}

//! The reqwest transport (https, proxies). Chunk instants are taken when reqwest hands a body
//! frame over, a few microseconds after the socket read.
//!
//! Made to behave as the native transport does: redirects are not followed (a 3xx is the
//! answer, recorded with its Location); `Accept-Encoding: identity` (no decompression feature
//! is enabled, so reqwest neither asks for nor decodes a compressed body); a request that fails
//! before any response head because the connection closed under it (hyper's "connection closed
//! before message completed", a reset) is sent once more on a client without a pool, so on a
//! new connection. reqwest cannot say whether the failed connection was a reused one, so that
//! retry also happens on a new connection that the server closed at once (native retries only
//! reused ones). Error texts are hyper's causes, without reqwest's wrappers, in the native
//! transport's words where they name the same thing.

use std::io::ErrorKind;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{
    ACCEPT_ENCODING, END_GRACE, Failure, Fields, Marks, RequestSpec, Sink, after_marker_note,
    local_cause, unterminated_note,
};

/// reqwest client for one endpoint.
#[derive(Debug)]
pub struct Client {
    inner: reqwest::Client,
    /// The same without a connection pool: for the one retry of a request that met a closed
    /// connection.
    fresh: reqwest::Client,
    url: reqwest::Url,
    method: reqwest::Method,
}

impl Client {
    pub fn new(spec: &RequestSpec) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(spec.accept),
        );
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        for (k, v) in &spec.headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header `{k}`: {e}"))?;
            let mut value = HeaderValue::from_str(v).map_err(|e| format!("header `{k}`: {e}"))?;
            if bench_types::manifest::is_secret_header(k) {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
        let build = |pool: usize| {
            reqwest::Client::builder()
                .default_headers(headers.clone())
                .user_agent(concat!("bench-client/", env!("CARGO_PKG_VERSION")))
                .tcp_nodelay(true)
                .pool_max_idle_per_host(pool)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))
        };
        let url = reqwest::Url::parse(&spec.endpoint.url)
            .map_err(|e| format!("{}: {e}", spec.endpoint.url))?;
        let method = reqwest::Method::from_bytes(spec.method.as_bytes())
            .map_err(|e| format!("method `{}`: {e}", spec.method))?;
        Ok(Client {
            inner: build(4096)?,
            fresh: build(0)?,
            url,
            method,
        })
    }

    pub async fn send(
        &self,
        body: &Bytes,
        sink: &mut impl Sink,
        marks: &mut Marks,
    ) -> Result<Instant, Failure> {
        let post = |c: &reqwest::Client| {
            c.request(self.method.clone(), self.url.clone())
                .body(body.clone())
                .send()
        };
        let resp = match post(&self.inner).await {
            Ok(r) => r,
            Err(e) if closed_early(&e) => {
                let why = send_failure(&e).to_string();
                tracing::debug!(
                    "connection closed before any response ({why}); retrying on a new one"
                );
                marks.retried = Some(why);
                post(&self.fresh).await.map_err(|e| send_failure(&e))?
            }
            Err(e) => return Err(send_failure(&e)),
        };
        let mut at = Instant::now();
        sink.head(resp.status().as_u16(), at);
        let h = resp.headers();
        let content_length = if h.contains_key(reqwest::header::TRANSFER_ENCODING) {
            None
        } else {
            h.get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        };
        sink.fields(&Fields {
            location: h.get(reqwest::header::LOCATION).map(HeaderValue::as_bytes),
            content_encoding: h
                .get(reqwest::header::CONTENT_ENCODING)
                .map(HeaderValue::as_bytes),
            content_length,
            timing: super::SERVER_HEADERS.map(|n| h.get(n).map(HeaderValue::as_bytes)),
        });
        let mut resp = resp;
        let mut received = 0u64;
        let mut marker: Option<Instant> = None;
        loop {
            let next = match marker {
                Some(m) => {
                    match tokio::time::timeout_at((m + END_GRACE).into(), resp.chunk()).await {
                        Ok(r) => r,
                        Err(_) => {
                            // Dropping the response drops its connection.
                            marks.unterminated = Some(unterminated_note());
                            return Ok(m);
                        }
                    }
                }
                None => resp.chunk().await,
            };
            let failure = match next {
                Ok(Some(b)) => {
                    at = Instant::now();
                    received += b.len() as u64;
                    match sink.data(&b, at) {
                        Ok(()) => {
                            if marker.is_none() && sink.complete() {
                                marker = Some(at);
                            }
                            continue;
                        }
                        Err(m) => Failure::Protocol(m),
                    }
                }
                Ok(None) => return Ok(at),
                Err(e) => body_failure(&e, received, content_length),
            };
            return match marker {
                Some(m) => {
                    marks.unterminated = Some(after_marker_note(&failure.to_string()));
                    Ok(m)
                }
                None => Err(failure),
            };
        }
    }
}

/// A plain reqwest client for the requests beside the run (the preflight's, /metrics
/// scrapes): `headers` on every request (secret values marked sensitive), `timeout` for the
/// connection and for the whole answer, redirects not followed.
pub(crate) fn side_client(
    headers: &[(String, String)],
    timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    let mut hm = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            v.set_sensitive(bench_types::manifest::is_secret_header(k));
            hm.insert(n, v);
        }
    }
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(hm)
        .build()
        .map_err(|e| e.to_string())
}

/// The innermost error of `e`'s chain, as text: what actually went wrong.
pub(crate) fn root_cause(e: &reqwest::Error) -> String {
    chain(e).last().map(|c| c.to_string()).unwrap_or_default()
}

/// The errors of an error's chain, from the outermost.
fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The first I/O error in `e`'s chain.
fn io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    chain(e).find_map(|c| c.downcast_ref::<std::io::Error>())
}

/// What went wrong, without reqwest's and hyper-util's wrappers ("error sending request for
/// url (...)", "client error (SendRequest)", "error decoding response body", ...): hyper's
/// causes, joined by ": ".
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    const WRAPPERS: [&str; 5] = [
        "error sending request",
        "error decoding response body",
        "client error (",
        "error reading a body from connection",
        "request or response body error",
    ];
    let mut parts: Vec<String> = Vec::new();
    for c in chain(e) {
        let mut m = c.to_string();
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            m = io_msg(io);
        }
        if WRAPPERS.iter().any(|w| m.starts_with(w)) {
            continue;
        }
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
    }
    if parts.is_empty() {
        let mut s = e.to_string();
        for c in chain(e).skip(1) {
            s.push_str(": ");
            s.push_str(&c.to_string());
        }
        return s;
    }
    parts.join(": ")
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionReset => "connection reset by peer".into(),
        ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => local_cause(e).map_or_else(|| e.to_string(), str::to_string),
    }
}

/// hyper's message for a request sent on a connection that closed before any response.
const INCOMPLETE: &str = "connection closed before message completed";

/// The request failed before any response head because the connection closed or broke under
/// it (on a kept-alive connection: the keep-alive race). Safe to send again: the server cannot
/// have processed it.
fn closed_early(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() || e.is_builder() || e.is_redirect() {
        return false;
    }
    chain(e).any(|c| c.to_string() == INCOMPLETE)
        || io_error(e).is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        })
}

/// A failure before the response head.
fn send_failure(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        let host = e
            .url()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
        let why = match io_error(e).and_then(local_cause) {
            Some(local) => local.to_string(),
            None => cause(e),
        };
        return Failure::Connect(match host {
            Some(h) => format!("{h}: {why}"),
            None => why,
        });
    }
    let c = cause(e);
    if c == INCOMPLETE {
        return Failure::Io("connection closed before any response".into());
    }
    if c.contains("invalid HTTP version parsed") {
        return Failure::Protocol(format!("response is not HTTP/1.x ({c})"));
    }
    if c.ends_with(" parsed") || c.contains(" parsed (") || c == "message head is too large" {
        return Failure::Protocol(format!("malformed response head: {c}"));
    }
    if closed_early(e) {
        return Failure::Io(format!("before any response: {c}"));
    }
    Failure::Io(c)
}

/// A failure while reading the body, after `received` bytes of it.
fn body_failure(e: &reqwest::Error, received: u64, content_length: Option<u64>) -> Failure {
    let c = cause(e);
    if c.contains("end of file before message length reached") {
        return Failure::Io(match content_length {
            Some(total) => format!("connection closed after {received} of {total} body bytes"),
            None => format!(
                "connection closed before the end of the response ({received} body bytes received)"
            ),
        });
    }
    if c.to_ascii_lowercase().contains("chunk") {
        return Failure::Protocol(format!("bad chunked encoding: {c}"));
    }
    Failure::Io(format!("{c} after {received} body bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, std::io::Error);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn causes_without_wrappers_and_local_limits() {
        let e = Wrap(
            "client error (Connect)",
            std::io::Error::from_raw_os_error(24),
        );
        assert_eq!(
            cause(&e),
            "too many open files (the open-file limit, `ulimit -n`, is reached)"
        );
        let e = Wrap(
            "tcp connect error",
            std::io::Error::from(ErrorKind::ConnectionReset),
        );
        assert_eq!(cause(&e), "tcp connect error: connection reset by peer");
        assert_eq!(
            io_error(&e).map(|io| io.kind()),
            Some(ErrorKind::ConnectionReset)
        );
    }
}

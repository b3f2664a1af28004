//! The reqwest transport (https, proxies). Chunk instants are taken when reqwest hands a body
//! frame over, a few microseconds after the socket read.

use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{Failure, RequestSpec, Sink};

/// reqwest client for one endpoint.
#[derive(Debug)]
pub struct Client {
    inner: reqwest::Client,
    url: reqwest::Url,
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
        for (k, v) in &spec.headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header `{k}`: {e}"))?;
            let mut value = HeaderValue::from_str(v).map_err(|e| format!("header `{k}`: {e}"))?;
            if k.eq_ignore_ascii_case("authorization") {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
        let inner = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("bench-client/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4096)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let url = reqwest::Url::parse(&spec.endpoint.url)
            .map_err(|e| format!("{}: {e}", spec.endpoint.url))?;
        Ok(Client { inner, url })
    }

    pub async fn send(&self, body: &Bytes, sink: &mut impl Sink) -> Result<Instant, Failure> {
        let resp = self
            .inner
            .post(self.url.clone())
            .body(body.clone())
            .send()
            .await
            .map_err(|e| {
                let msg = error_chain(&e);
                if e.is_connect() {
                    Failure::Connect(msg)
                } else {
                    Failure::Io(msg)
                }
            })?;
        let mut at = Instant::now();
        sink.head(resp.status().as_u16(), at);
        let mut resp = resp;
        let mut received = 0usize;
        loop {
            match resp.chunk().await {
                Ok(Some(b)) => {
                    at = Instant::now();
                    received += b.len();
                    sink.data(&b, at).map_err(Failure::Protocol)?;
                }
                Ok(None) => return Ok(at),
                Err(e) => {
                    return Err(Failure::Io(format!(
                        "{} after {received} body bytes",
                        error_chain(&e)
                    )));
                }
            }
        }
    }
}

/// The error with its causes ("error sending request: connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

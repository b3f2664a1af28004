//! The HTTP layer: hyper 1 connections, routing, request handlers and response bodies.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bench_config::sim::SimParams;
use bench_text::Tokenizer;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;

use crate::api::{self, ApiError, Prepared};
use crate::engine::{Arrival, Event};
use crate::metrics::Metrics;
use crate::sse::Encoder;
use crate::words::Vocab;

/// Largest request body accepted (images travel as base64 data URLs).
const MAX_BODY: usize = 64 << 20;
/// Bodies larger than this are tokenized on the blocking pool, off the engine's thread.
const BLOCKING_BODY: usize = 64 << 10;

/// State shared by every handler.
pub(crate) struct Shared {
    pub model: String,
    /// The model name as a JSON string (quoted, escaped).
    pub model_json: String,
    pub tok: Tokenizer,
    pub vocab: Arc<Vocab>,
    pub params: SimParams,
    pub eos_mean_tokens: f64,
    pub images: crate::tokens::ImageCount,
    /// Share of each chat reply streamed as reasoning first.
    pub reasoning_share: f64,
    /// The delta key of reasoning text.
    pub reasoning_key: &'static str,
    pub seed: u64,
    pub engine: UnboundedSender<Arrival>,
    pub metrics: Arc<Metrics>,
    pub next_id: AtomicU64,
    /// `POST /runsync`: the ComfyUI-compatible route.
    pub comfy: crate::comfy::Comfy,
}

/// A response body: a whole buffer, or the SSE stream of one request.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    Sse(Box<SseStream>),
}

/// Turns engine events into SSE bytes, coalescing the events that are ready into one frame.
pub(crate) struct SseStream {
    rx: UnboundedReceiver<Event>,
    enc: Encoder,
    started: bool,
    done: bool,
    buf: BytesMut,
}

impl SseStream {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.started {
            self.started = true;
            self.enc.start(&mut self.buf);
        }
        while !self.done {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Event::Token(w))) => self.enc.token(w, &mut self.buf),
                Poll::Ready(Some(Event::Last(w, u))) => {
                    self.enc.last(w, &u, &mut self.buf);
                    self.done = true;
                }
                // The engine is gone (shutdown): end the stream where it is.
                Poll::Ready(None) => self.done = true,
                Poll::Pending => break,
            }
        }
        if !self.buf.is_empty() {
            Poll::Ready(Some(Ok(Frame::data(self.buf.split().freeze()))))
        } else if self.done {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Sse(s) => s.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(b) => b.is_none(),
            SimBody::Sse(s) => s.done && s.buf.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            SimBody::Sse(_) => SizeHint::default(),
        }
    }
}

type Resp = Response<SimBody>;

fn full(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(SimBody::Full(Some(body.into())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: u16, body: impl Into<Bytes>) -> Resp {
    full(status, "application/json", body)
}

/// An error in the OpenAI shape (`{"error":{...}}`, as current vLLM sends it).
fn openai_error(e: &ApiError) -> Resp {
    let kind = match e.status {
        400 => "BadRequestError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        413 => "RequestTooLargeError",
        _ => "InternalServerError",
    };
    let body = serde_json::json!({"error": {"message": e.message, "type": kind, "param": null, "code": e.status}});
    json(e.status, body.to_string())
}

/// An error in TGI's shape (validation problems are 422 there).
fn tgi_error(e: &ApiError) -> Resp {
    let (status, kind) = match e.status {
        400 if !e.message.starts_with("invalid request body") => (422, "validation"),
        s => (s, if s == 503 { "overloaded" } else { "validation" }),
    };
    json(
        status,
        serde_json::json!({"error": e.message, "error_type": kind}).to_string(),
    )
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Chat,
    Completion,
    /// TGI, with whether the route itself streams (`/generate_stream`).
    Tgi(bool),
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn generate(req: Request<Incoming>, sh: Arc<Shared>, arrived: Instant, route: Route) -> Resp {
    let err = |e: ApiError| {
        if matches!(route, Route::Tgi(_)) {
            tgi_error(&e)
        } else {
            openai_error(&e)
        }
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let (status, message) = if too_big {
                (413, format!("request body larger than {MAX_BODY} bytes"))
            } else {
                (400, format!("reading the request body: {e}"))
            };
            return err(ApiError { status, message });
        }
    };
    let prepare = {
        let sh = Arc::clone(&sh);
        let body = body.clone();
        move || match route {
            Route::Chat => api::prepare_chat(&sh, &body),
            Route::Completion => api::prepare_completion(&sh, &body),
            Route::Tgi(stream) => api::prepare_tgi(&sh, &body, stream),
        }
    };
    let prepared = if body.len() > BLOCKING_BODY {
        match tokio::task::spawn_blocking(prepare).await {
            Ok(r) => r,
            Err(e) => {
                return err(ApiError {
                    status: 500,
                    message: format!("tokenizing failed: {e}"),
                });
            }
        }
    } else {
        prepare()
    };
    let p: Prepared = match prepared {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    let (tx, mut rx) = unbounded_channel();
    let id = sh.next_id.fetch_add(1, Relaxed);
    let enc = Encoder::new(
        p.kind,
        p.stream,
        p.include_usage,
        id,
        unix_now(),
        &sh.model_json,
        Arc::clone(&sh.vocab),
    )
    .with_reasoning(
        crate::sse::reasoning_tokens(sh.reasoning_share, p.output_len),
        sh.reasoning_key,
    );
    let arrival = Arrival {
        arrived,
        prompt: p.prompt,
        output_len: p.output_len,
        finish: p.finish,
        seed: p.seed,
        tx,
    };
    if sh.engine.send(arrival).is_err() {
        return err(ApiError {
            status: 503,
            message: "the engine is shutting down".into(),
        });
    }
    if p.stream {
        let body = SseStream {
            rx,
            enc,
            started: false,
            done: false,
            buf: BytesMut::with_capacity(512),
        };
        let mut r = Response::new(SimBody::Sse(Box::new(body)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return r;
    }
    let mut words = Vec::with_capacity(p.output_len.min(1 << 16) as usize);
    loop {
        match rx.recv().await {
            Some(Event::Token(w)) => words.push(w),
            Some(Event::Last(w, u)) => {
                words.push(w);
                return json(200, enc.full(&words, &u, p.details));
            }
            None => {
                return err(ApiError {
                    status: 503,
                    message: "the engine is shutting down".into(),
                });
            }
        }
    }
}

fn models(sh: &Shared) -> Resp {
    let body = serde_json::json!({
        "object": "list",
        "data": [{
            "id": sh.model, "object": "model", "created": unix_now(), "owned_by": "bench-sim",
            "root": sh.model, "parent": null, "max_model_len": sh.params.max_model_len, "permission": []
        }]
    });
    json(200, body.to_string())
}

fn info(sh: &Shared) -> Resp {
    let p = &sh.params;
    let body = serde_json::json!({
        "model_id": sh.model, "model_dtype": "bf16", "model_device_type": "sim",
        "max_concurrent_requests": p.max_num_seqs, "max_input_tokens": p.max_model_len - 1,
        "max_total_tokens": p.max_model_len, "max_batch_total_tokens": p.kv_cache_tokens,
        "version": env!("CARGO_PKG_VERSION"), "router": "bench-sim"
    });
    json(200, body.to_string())
}

/// Routes one request.
pub(crate) async fn handle(req: Request<Incoming>, sh: Arc<Shared>) -> Result<Resp, Infallible> {
    let arrived = Instant::now();
    let route = match req.uri().path() {
        "/v1/chat/completions" => Some(Route::Chat),
        "/v1/completions" => Some(Route::Completion),
        "/generate" | "/" => Some(Route::Tgi(false)),
        "/generate_stream" => Some(Route::Tgi(true)),
        _ => None,
    };
    let get_route = matches!(
        req.uri().path(),
        "/v1/models" | "/health" | "/metrics" | "/info"
    );
    if req.uri().path() == "/runsync" {
        let resp = match *req.method() {
            Method::POST => match req.into_body().collect().await {
                Ok(b) => {
                    let (status, body) = crate::comfy::runsync(&sh, &b.to_bytes()).await;
                    json(status, body)
                }
                Err(e) => json(400, serde_json::json!({"error": e.to_string()}).to_string()),
            },
            ref m => json(
                405,
                serde_json::json!({"error": format!("method {m} not allowed on /runsync")})
                    .to_string(),
            ),
        };
        return Ok(resp);
    }
    let resp = match (req.method(), route) {
        (&Method::POST, Some(r)) => generate(req, sh, arrived, r).await,
        (&Method::GET, None) => match req.uri().path() {
            "/v1/models" => models(&sh),
            "/health" => full(200, "text/plain", Bytes::new()),
            "/metrics" => full(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                sh.metrics.render(&sh.model),
            ),
            "/info" => info(&sh),
            p => openai_error(&ApiError {
                status: 404,
                message: format!("no route for GET {p}"),
            }),
        },
        (m, r) if r.is_some() || get_route => openai_error(&ApiError {
            status: 405,
            message: format!("method {m} not allowed on {}", req.uri().path()),
        }),
        (m, _) => openai_error(&ApiError {
            status: 404,
            message: format!("no route for {m} {}", req.uri().path()),
        }),
    };
    Ok(resp)
}

/// Accepts connections until `shutdown` resolves, then drops them all.
pub(crate) async fn serve(
    listener: TcpListener,
    sh: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let mut conns = JoinSet::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sh = Arc::clone(&sh);
                    let builder = builder.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(req, Arc::clone(&sh)));
                        if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                            tracing::debug!("sim connection: {e}");
                        }
                    });
                    while conns.try_join_next().is_some() {}
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!("sim: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    conns.shutdown().await;
}

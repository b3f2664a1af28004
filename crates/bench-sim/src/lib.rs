//! The simulated inference engine behind an OpenAI-compatible HTTP server.
//!
//! A model of a continuous-batching engine (batch slots, a KV cache counted in blocks with a
//! prefix cache, chunked prefill, decode steps that grow with the batch and the KV read)
//! behind a real HTTP server: OpenAI `/v1/chat/completions` and `/v1/completions` (streamed
//! and not), TGI `/generate` and `/generate_stream`, `/v1/models`, `/health`, and vLLM-style
//! Prometheus `/metrics`. See docs/SIM.md for the model, its parameters and presets.
//!
//! [`spawn`] runs it on a thread and runtime of its own (what `bench` does); [`SimServer`] runs
//! it inside the caller's runtime (handy in async tests).

mod api;
mod cache;
mod comfy;
mod engine;
#[cfg(test)]
mod engine_tests;
mod metrics;
mod runner;
mod server;
mod sse;
mod tokens;
mod words;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bench_config::{Config, SimConfig};
use bench_text::{Tokenizer, TokenizerSpec};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::engine::{Arrival, Scheduler};
use crate::metrics::Metrics;
use crate::server::Shared;
use crate::words::Vocab;

/// The tokenizer used when neither `sim.tokenizer` nor a run-level tokenizer is given.
pub const DEFAULT_TOKENIZER: TokenizerSpec =
    TokenizerSpec::Builtin(bench_text::Builtin::Cl100kBase);

/// Simulator errors.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Invalid `sim.*` parameters.
    #[error("sim: invalid config:\n{0}")]
    Config(String),
    /// The tokenizer could not be loaded or has too few single-token words.
    #[error("sim: {0}")]
    Tokenizer(String),
    /// Could not bind or serve.
    #[error("sim: {0}")]
    Io(#[from] std::io::Error),
}

impl bench_types::StageError for SimError {
    fn exit_code(&self) -> i32 {
        match self {
            SimError::Config(_) | SimError::Tokenizer(_) => bench_types::stage::exit::BAD_INPUT,
            SimError::Io(_) => bench_types::stage::exit::FAILURE,
        }
    }
}

/// Everything but the listener: shared handler state and the engine.
struct Parts {
    shared: Arc<Shared>,
    sched: Scheduler,
    rx: UnboundedReceiver<Arrival>,
    time_scale: f64,
}

fn build(cfg: &SimConfig, seed: u64, tokenizer: &TokenizerSpec) -> Result<Parts, SimError> {
    let params = cfg.check().map_err(|e| SimError::Config(e.to_string()))?;
    let tok = Tokenizer::open(tokenizer).map_err(|e| SimError::Tokenizer(e.to_string()))?;
    let vocab = Arc::new(Vocab::build(&tok).map_err(SimError::Tokenizer)?);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = unbounded_channel();
    let sched = Scheduler::new(
        params,
        cfg.prefix_caching,
        Arc::clone(&vocab),
        Arc::clone(&metrics),
    );
    let shared = Arc::new(Shared {
        model: cfg.model.clone(),
        model_json: serde_json::Value::from(cfg.model.as_str()).to_string(),
        tok,
        vocab,
        params,
        eos_mean_tokens: cfg.eos_mean_tokens,
        images: tokens::ImageCount {
            fixed: cfg.image_tokens,
            patch_px: cfg.image_patch_px,
            max: cfg.image_max_tokens,
        },
        reasoning_share: cfg.reasoning_share,
        reasoning_key: cfg.reasoning_field.key(),
        seed,
        engine: tx,
        metrics,
        next_id: AtomicU64::new(1),
        comfy: comfy::Comfy {
            base_ms: cfg.image_base_ms,
            ms_per_mpixel_step: cfg.image_ms_per_mpixel_step,
            time_scale: cfg.time_scale,
            busy: tokio::sync::Mutex::new(()),
        },
    });
    Ok(Parts {
        shared,
        sched,
        rx,
        time_scale: cfg.time_scale,
    })
}

impl Parts {
    async fn run(self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()>) {
        let engine = tokio::spawn(runner::run(self.sched, self.rx, self.time_scale));
        server::serve(listener, self.shared, shutdown).await;
        engine.abort();
        let _ = engine.await;
    }
}

/// The simulated engine bound to a socket, to be run inside the caller's tokio runtime.
pub struct SimServer {
    parts: Parts,
    listener: tokio::net::TcpListener,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl SimServer {
    /// Builds the engine (tokenizer from `sim.tokenizer`, else [`DEFAULT_TOKENIZER`]) and
    /// binds `addr` (port 0: an ephemeral port).
    pub async fn bind(cfg: &SimConfig, seed: u64, addr: SocketAddr) -> Result<Self, SimError> {
        let parts = build(
            cfg,
            seed,
            cfg.tokenizer.as_ref().unwrap_or(&DEFAULT_TOKENIZER),
        )?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(SimServer { parts, listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then drops every connection and stops the engine.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.parts.run(self.listener, shutdown).await
    }
}

/// A simulated engine running on its own thread and runtime; [`SimHandle::shutdown`] (or
/// dropping the handle) stops it.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("sim: the engine thread panicked");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the engine on `bind` (port 0 for an ephemeral port) on a thread of its own, so its
/// work never shares a runtime with the client it serves. The tokenizer is `sim.tokenizer`,
/// else [`DEFAULT_TOKENIZER`]; [`spawn_for_run`] falls back to the run's tokenizer instead.
pub fn spawn(cfg: &SimConfig, seed: u64, bind: SocketAddr) -> Result<SimHandle, SimError> {
    spawn_with_tokenizer(
        cfg,
        seed,
        cfg.tokenizer.as_ref().unwrap_or(&DEFAULT_TOKENIZER),
        bind,
    )
}

/// [`spawn`] for a whole run's config: seed `sim.seed` else the run's `seed`, tokenizer
/// `sim.tokenizer` else the run's `tokenizer` (so usage matches the client's own counts).
pub fn spawn_for_run(cfg: &Config, bind: SocketAddr) -> Result<SimHandle, SimError> {
    let tok = cfg.sim.tokenizer.as_ref().unwrap_or(&cfg.tokenizer);
    spawn_with_tokenizer(&cfg.sim, cfg.sim.seed.unwrap_or(cfg.seed), tok, bind)
}

fn spawn_with_tokenizer(
    cfg: &SimConfig,
    seed: u64,
    tokenizer: &TokenizerSpec,
    bind: SocketAddr,
) -> Result<SimHandle, SimError> {
    let parts = build(cfg, seed, tokenizer)?;
    let listener = std::net::TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = if cfg.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.worker_threads as usize)
            .thread_name("bench-sim-worker")
            .enable_all()
            .build()?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("bench-sim".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        parts
                            .run(l, async move {
                                let _ = stopped.await;
                            })
                            .await
                    }
                    Err(e) => tracing::error!("sim: cannot serve on {addr}: {e}"),
                }
            });
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        })?;
    tracing::debug!("sim: serving on {addr}");
    Ok(SimHandle {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

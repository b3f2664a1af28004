//! The client stage: sends `<run_dir>/workload.jsonl` at its timestamps and writes
//! `<run_dir>/requests.parquet`, one row per request, whatever happened. See docs/CLIENT.md for
//! the design and docs/RECORDS.md for the columns.
//!
//! Threads: one tokio *current-thread* runtime does all the timing-critical work (precise
//! dispatch, HTTP, SSE parsing, recording instants); a prepare thread builds request bodies
//! ahead of time; a writer thread counts tokens and writes Parquet. The two helper threads run
//! at a lower CPU priority so they never delay a send. One runtime thread is deliberate: no
//! cross-thread wake-ups between the timer, the socket and the parser, no work stealing that
//! moves a stream between cores mid-measurement, and it is what one core can do anyway when
//! the client is pinned.

mod dispatch;
mod exec;
pub mod http;
mod media;
mod outcome;
mod plan;
mod prepare;
mod progress;
pub mod protocol;
pub mod records;
pub mod sse;
mod stop;
pub mod testkit;
pub mod timer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bench_config::Config;
use bench_config::client::{Api, Transport as TransportChoice};
use bench_text::Tokenizer;
use bench_types::record::meta;
use bench_types::stage::exit;
use bench_types::{FormatError, RequestStatus, StageError, StageOutput, files};
use parquet::file::metadata::KeyValue;
use tokio::sync::watch;

pub use stop::StopHandle;

/// Client stage errors (a failed request is a record, never an error).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The workload file is bad or missing (exit 2).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Bad input: the workload's content, the endpoint, the API key variable (exit 2).
    #[error("{0}")]
    Input(String),
    /// Writing the records failed (exit 1).
    #[error("writing records: {0}")]
    Output(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for ClientError {
    fn exit_code(&self) -> i32 {
        match self {
            ClientError::Format(_) | ClientError::Input(_) => exit::BAD_INPUT,
            ClientError::Output(_) | ClientError::Other(_) => exit::FAILURE,
        }
    }
}

/// Options of one client run that are not config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Base URL to send to (the config's endpoint, or the in-process simulator's address).
    pub base_url: String,
    /// No progress bar.
    pub quiet: bool,
    /// Stops the run from another thread, like Ctrl-C.
    pub stop: Option<StopHandle>,
    /// Catch SIGINT / SIGTERM / SIGHUP to stop cleanly (the binary's behaviour; see
    /// [`StopHandle`] for stopping from code).
    pub handle_signals: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            base_url: String::new(),
            quiet: false,
            stop: None,
            handle_signals: true,
        }
    }
}

/// What the client run ended with.
#[derive(Debug, Clone, Default)]
pub struct ClientOutcome {
    /// For the manifest.
    pub output: StageOutput,
    /// Stopped by Ctrl-C (the binary exits 130 after writing the manifest).
    pub interrupted: bool,
    /// Rows by status (non-warmup), in [`RequestStatus::ALL`] order.
    pub by_status: [u64; 6],
    /// Warmup rows.
    pub warmup_rows: u64,
    /// Wall-clock time of the anchor (ns since the Unix epoch).
    pub anchor_unix_ns: i64,
    /// Time the dispatch thread spent runnable but waiting for a CPU during the run (Linux),
    /// ns: when large, other processes delayed the client and its timings.
    pub cpu_wait_ns: Option<u64>,
    /// Time the dispatch thread spent on a CPU during the run (Linux), ns.
    pub cpu_busy_ns: Option<u64>,
    /// Time the record writer thread spent on a CPU (Linux), ns.
    pub writer_cpu_ns: Option<u64>,
}

/// Lowers the calling thread's CPU priority (helper threads must never delay a send).
pub(crate) fn lower_thread_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// Raises the open-file limit to its hard limit (each in-flight request holds a socket).
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        let from = l.current;
        l.current = l.maximum;
        if setrlimit(Resource::Nofile, l).is_ok() {
            tracing::debug!(
                "client: open-file limit raised from {from:?} to {:?}",
                l.current
            );
        }
    }
}

/// The calling thread's (time on a CPU, time runnable but waiting for a CPU), ns (Linux
/// schedstat).
pub(crate) fn thread_cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

fn api_name(api: Api) -> &'static str {
    match api {
        Api::OpenaiChat => "openai-chat",
        Api::OpenaiCompletions => "openai-completions",
        Api::Tgi => "tgi",
    }
}

/// Runs the workload in `run_dir` against `opts.base_url`. Blocking: builds its own runtime.
pub fn run(cfg: &Config, run_dir: &Path, opts: &RunOptions) -> Result<ClientOutcome, ClientError> {
    let c = &cfg.client;
    let wl_path = run_dir.join(files::WORKLOAD);
    let wl = bench_types::workload::read(&wl_path)?;
    if wl.num_requests() == 0 {
        return Err(ClientError::Input(format!(
            "{}: no requests: nothing to send (run `--stage workload` again with a longer \
             workload.duration_ms or a higher rate)",
            wl_path.display()
        )));
    }
    let mode_json = serde_json::json!({"mode": wl.mode(), "concurrency": wl.header.as_ref().and_then(|h| h.concurrency)}).to_string();
    let plan = Arc::new(plan::build(wl, c, &wl_path, run_dir).map_err(ClientError::Input)?);
    let tokenizer = Tokenizer::load(&cfg.tokenizer)
        .map_err(|e| ClientError::Input(format!("tokenizer: {e}")))?;
    let mut mat = prepare::Materializer::new(plan.blocks.as_ref())
        .map_err(|e| ClientError::Input(format!("{}: {e}", wl_path.display())))?;

    // Headers: the API key is read here and only kept in memory.
    let mut headers: Vec<(String, String)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(var) = &c.api_key_env {
        let key = std::env::var(var).map_err(|_| {
            ClientError::Input(format!(
                "client.api_key_env: environment variable {var} is not set"
            ))
        })?;
        if key.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(ClientError::Input(format!(
                "client.api_key_env: the value of {var} contains a line break"
            )));
        }
        headers.push(("Authorization".into(), format!("Bearer {key}")));
    }
    if let Some(r) = &c.routing_strategy {
        headers.push(("routing-strategy".into(), r.clone()));
    }
    let endpoint = http::Endpoint::parse(&opts.base_url, c.api, c.stream)
        .map_err(|e| ClientError::Input(format!("client.endpoint: {e}")))?;
    let native = match c.transport {
        TransportChoice::Auto => !endpoint.https,
        TransportChoice::Native if endpoint.https => {
            return Err(ClientError::Input(
                "client.transport: `native` speaks plain http:// only".into(),
            ));
        }
        TransportChoice::Native => true,
        TransportChoice::Reqwest => false,
    };
    let spec = http::RequestSpec {
        endpoint,
        headers,
        accept: if c.stream {
            "text/event-stream"
        } else {
            "application/json"
        },
    };
    if c.force_output_length && c.api == Api::Tgi {
        tracing::warn!("client: TGI has no min_tokens/ignore_eos; output lengths are not forced");
    }
    raise_fd_limit();

    // The runtime and the transport (resolving the host) before any output is written.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Other(format!("starting the runtime: {e}")))?;
    let transport = rt
        .block_on(async {
            if native {
                http::Transport::native(&spec).await
            } else {
                http::Transport::reqwest(&spec)
            }
        })
        .map_err(|e| ClientError::Other(format!("client.endpoint: {e}")))?;

    let builder = protocol::BodyBuilder::new(c);
    let warmup: Vec<(u32, prepare::Payload)> = plan
        .warmup
        .iter()
        .map(|&i| {
            (
                i,
                prepare::prepare(&mut mat, &builder, &plan.items[i as usize], true),
            )
        })
        .collect();

    // The record writer.
    let mut kv = vec![
        KeyValue::new(meta::WORKLOAD_REQUESTS.to_string(), plan.len().to_string()),
        KeyValue::new(meta::TIME_SCALE.to_string(), c.time_scale.to_string()),
        KeyValue::new(meta::MODE.to_string(), mode_json),
        KeyValue::new(meta::API.to_string(), api_name(c.api).to_string()),
    ];
    kv.sort_by(|a, b| a.key.cmp(&b.key));
    let parquet_path = run_dir.join(files::REQUESTS);
    let aibrix_path = c.write_aibrix_output.then(|| run_dir.join("output.jsonl"));
    let (wtx, wjoin) = records::spawn(records::WriterConfig {
        path: parquet_path,
        aibrix_path: aibrix_path.clone(),
        kv,
        tokenizer,
        plan: plan.clone(),
        api: c.api,
        record_text: c.record_output_text,
        flush_interval: Duration::from_secs_f64(c.flush_interval_s),
    })
    .map_err(ClientError::Output)?;

    // The producer.
    let units: Vec<Vec<u32>> = match plan.mode {
        plan::Mode::OpenLoop => plan.order.iter().map(|&i| vec![i]).collect(),
        plan::Mode::ClosedLoop(_) => plan.chains.clone(),
    };
    let (unit_rx, filled, pjoin) = prepare::spawn(
        plan.clone(),
        builder.clone(),
        mat,
        units,
        c.prepare_ahead_mib as usize * (1 << 20),
    );

    let _active = stop::ActiveRun::enter();
    let base = std::time::Instant::now();
    let display = progress::Display::choose(c.progress && !opts.quiet);
    let ran = rt.block_on(async {
        let t0 = thread_cpu_times();
        let (phase_tx, phase_rx) = watch::channel(stop::Phase::Running);
        let cap = match plan.mode {
            plan::Mode::OpenLoop => c
                .max_concurrency
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
            plan::Mode::ClosedLoop(_) => None,
        };
        let ctx = Arc::new(exec::Ctx {
            transport,
            builder,
            api: c.api,
            stream: c.stream,
            base,
            timeout: Duration::from_secs_f64(c.timeout_s),
            phase: phase_rx,
            writer: wtx,
            counters: Default::default(),
            cap,
            keep_body: c.write_aibrix_output,
            plan: plan.clone(),
            accounted: (0..plan.len()).map(|_| AtomicBool::new(false)).collect(),
            writer_gone: AtomicBool::new(false),
        });
        let r = dispatch::run(dispatch::Launch {
            ctx,
            phase_tx,
            units: unit_rx,
            filled,
            warmup,
            stop: opts.stop.clone(),
            signals: opts.handle_signals,
            duration_limit: c.duration_limit_s.map(Duration::from_secs_f64),
            grace: Duration::from_secs_f64(c.grace_s),
            display,
        })
        .await;
        let times = thread_cpu_times()
            .zip(t0)
            .map(|(b, a)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1)));
        (r, times)
    });
    drop(rt);
    let _ = pjoin.join();
    let stats = match wjoin.join() {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ClientError::Output(e)),
        Err(_) => return Err(ClientError::Output("the record writer panicked".into())),
    };
    let (ran, times) = ran;

    let mut out = StageOutput::default();
    out.outputs.push(files::REQUESTS.to_string());
    if aibrix_path.is_some() {
        out.outputs.push("output.jsonl".into());
    }
    out.inputs.push(("workload".into(), wl_path.clone()));
    let n = plan.len() as u64;
    out.stat("requests", n);
    for (s, k) in RequestStatus::ALL.iter().zip(stats.by_status) {
        out.stat(s.as_str(), k);
    }
    out.stat("warmup_requests", stats.warmup);
    out.stat("anchor_unix_ns", ran.anchor_unix_ns);
    out.stat(
        "elapsed_s",
        (ran.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    );
    out.stat("output_tokens", stats.output_tokens);
    let q = |p: f64| -> f64 {
        let v = &stats.lags_ns;
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        (v[i] as f64 / 1e3).round() / 1e3
    };
    if plan.mode == plan::Mode::OpenLoop && !stats.lags_ns.is_empty() {
        out.stat("dispatch_lag_p50_ms", q(0.5));
        out.stat("dispatch_lag_p99_ms", q(0.99));
        out.stat("dispatch_lag_max_ms", q(1.0));
    }
    let ms = |ns: u64| (ns as f64 / 1e3).round() / 1e3;
    if let Some((busy, _)) = times {
        out.stat("dispatch_thread_cpu_ms", ms(busy));
    }
    if let Some(w) = stats.cpu_ns {
        out.stat("writer_thread_cpu_ms", ms(w));
    }
    if let Some((busy, w)) = times {
        out.stat("dispatch_thread_cpu_wait_ms", ms(w));
        // the thread's clocks also cover setup before the run's anchor: never more than 100%
        let span = (ran.elapsed.as_nanos() as u64).max(busy + w).max(1);
        let share = w as f64 / span as f64;
        if share > 0.01 && w >= 10_000_000 {
            tracing::warn!(
                "client: the dispatch thread waited {:.0} ms for a CPU ({:.1}% of the run): other processes compete for the cores and may have delayed sends and receive times",
                w as f64 / 1e6,
                share * 100.0
            );
        }
    }
    let ok = stats.by_status[0];
    let errors: u64 = stats.by_status[1..4].iter().sum();
    tracing::info!(
        "client: {n} requests: {ok} ok, {errors} failed, {} cancelled, {} not sent{}",
        stats.by_status[4],
        stats.by_status[5],
        if ran.limited {
            " (duration limit reached)"
        } else {
            ""
        }
    );
    if stats.rows != n + stats.warmup {
        return Err(ClientError::Other(format!(
            "internal: {} rows for {n} requests",
            stats.rows - stats.warmup
        )));
    }
    Ok(ClientOutcome {
        output: out,
        interrupted: ran.interrupted,
        by_status: stats.by_status,
        warmup_rows: stats.warmup,
        anchor_unix_ns: ran.anchor_unix_ns,
        cpu_wait_ns: times.map(|t| t.1),
        cpu_busy_ns: times.map(|t| t.0),
        writer_cpu_ns: stats.cpu_ns,
    })
}

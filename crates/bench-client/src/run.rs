//! One client run, in steps: a [`RunSpec`] built and checked from the config (nothing written
//! yet), then the record writer, the dispatch on its runtime, and the outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bench_config::ClientConfig;
use bench_config::Config;
use bench_config::api_template::Framing;
use bench_config::client::{Api, Transport as TransportChoice};
use bench_text::Tokenizer;
use bench_types::record::meta;
use bench_types::stats::Stats;
use bench_types::{RequestStatus, StageOutput, files};
use parquet::file::metadata::KeyValue;
use tokio::sync::watch;

use crate::dispatch::{self, Ran};
use crate::plan::{self, Mode, Plan};
use crate::prepare::{self, Materializer, Payload};
use crate::protocol::BodyBuilder;
use crate::records::{self, WriterStats};
use crate::stop::Phase;
use crate::{ClientError, ClientOutcome, RunOptions, exec, http, progress};

/// A client run, checked: the workload read and planned, the tokenizer loaded, the endpoint
/// parsed, the request headers (API key included) assembled, the transport chosen.
#[derive(Debug)]
pub struct RunSpec {
    client: ClientConfig,
    run_dir: PathBuf,
    workload_path: PathBuf,
    plan: Arc<Plan>,
    /// `bench.mode` metadata: loop mode and concurrency, as JSON.
    mode_json: String,
    tokenizer: Tokenizer,
    materializer: Materializer,
    request: http::RequestSpec,
    native: bool,
    /// The server's /metrics, when scraped.
    scrape: Option<crate::scrape::ScrapeConfig>,
    /// The base URL sent to.
    base_url: String,
    /// Request bodies (a template compiled).
    builder: BodyBuilder,
}

pub(crate) fn api_name(api: Api) -> &'static str {
    match api {
        Api::OpenaiChat => "openai-chat",
        Api::OpenaiCompletions => "openai-completions",
        Api::Tgi => "tgi",
        Api::Template => "template",
    }
}

/// The fixed parts of every request: the endpoint with the API's (or the template's) path,
/// the method, the headers (a template's, then `client.headers` and the key, which win) and
/// what the client accepts.
pub(crate) fn request_spec(
    c: &ClientConfig,
    base_url: &str,
    builder: &BodyBuilder,
) -> Result<http::RequestSpec, ClientError> {
    let tpl = builder.template();
    let endpoint = match tpl {
        Some(t) => http::Endpoint::parse_path(base_url, &t.path),
        None => http::Endpoint::parse(base_url, c.api, c.stream),
    }
    .map_err(|e| ClientError::Input(format!("client.endpoint: {e}")))?;
    let mut hs = headers(c)?;
    if let Some(t) = tpl {
        let given: Vec<(String, String)> = t
            .headers
            .iter()
            .filter(|(k, _)| !hs.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        hs.splice(0..0, given);
    }
    let accept = match tpl.map(|t| t.framing) {
        Some(Framing::Sse) => "text/event-stream",
        Some(Framing::JsonLines) => "application/x-ndjson",
        Some(Framing::Json) => "application/json",
        None if c.stream => "text/event-stream",
        None => "application/json",
    };
    Ok(http::RequestSpec {
        method: tpl.map_or("POST", |t| t.method.as_str()).to_string(),
        endpoint,
        headers: hs,
        accept,
    })
}

/// Whether the run uses the native transport (else reqwest).
pub(crate) fn use_native(c: &ClientConfig, endpoint: &http::Endpoint) -> Result<bool, ClientError> {
    Ok(match c.transport {
        TransportChoice::Auto => !endpoint.https,
        TransportChoice::Native if endpoint.https => {
            return Err(ClientError::Input(
                "client.transport: `native` speaks plain http:// only".into(),
            ));
        }
        TransportChoice::Native => true,
        TransportChoice::Reqwest => false,
    })
}

/// The headers of every request: `client.headers`, then the API key (read from its variable
/// now, kept only in memory) and AIBrix's routing header.
pub(crate) fn headers(c: &ClientConfig) -> Result<Vec<(String, String)>, ClientError> {
    let mut h: Vec<(String, String)> = c
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
        h.push(("Authorization".into(), format!("Bearer {key}")));
    }
    if let Some(r) = &c.routing_strategy {
        h.push(("routing-strategy".into(), r.clone()));
    }
    Ok(h)
}

impl RunSpec {
    /// Reads and checks everything the run needs; writes nothing.
    pub fn new(cfg: &Config, run_dir: &Path, base_url: &str) -> Result<RunSpec, ClientError> {
        let c = &cfg.client;
        let workload_path = run_dir.join(files::WORKLOAD);
        let wl = bench_types::workload::read(&workload_path)?;
        if wl.num_requests() == 0 {
            return Err(ClientError::Input(format!(
                "{}: no requests: nothing to send (run `--stage workload` again with a longer \
                 workload.duration_ms or a higher rate)",
                workload_path.display()
            )));
        }
        let mode_json = serde_json::json!({
            "mode": wl.mode(),
            "concurrency": wl.header.as_ref().and_then(|h| h.concurrency),
        })
        .to_string();
        let plan = plan::build(wl, c, &workload_path, run_dir).map_err(ClientError::Input)?;
        if let Some(s) = c.shard
            && plan.is_empty()
        {
            return Err(ClientError::Input(format!(
                "client.shard: shard {} of {} has no requests: {} holds fewer sessions and \
                 requests than shards; use fewer shards",
                s.index,
                s.count,
                workload_path.display()
            )));
        }
        let tokenizer = Tokenizer::open(&cfg.tokenizer)
            .map_err(|e| ClientError::Input(format!("tokenizer: {e}")))?;
        let materializer = Materializer::new(plan.blocks.as_ref())
            .map_err(|e| ClientError::Input(format!("{}: {e}", workload_path.display())))?;
        let builder = BodyBuilder::for_config(c).map_err(ClientError::Input)?;
        let request = request_spec(c, base_url, &builder)?;
        let native = use_native(c, &request.endpoint)?;
        let scrape = cfg.metrics.enabled.then(|| {
            let root = crate::preflight::root_url(base_url);
            let url = cfg
                .metrics
                .url
                .clone()
                .unwrap_or_else(|| format!("{root}/metrics"));
            // the API key goes to the endpoint's own /metrics only
            let headers = if url.starts_with(&format!("{root}/")) {
                request.headers.clone()
            } else {
                Vec::new()
            };
            crate::scrape::ScrapeConfig {
                url,
                interval: Duration::from_secs_f64(cfg.metrics.interval_s),
                timeout: Duration::from_secs_f64(c.connect_timeout_s),
                headers,
                path: run_dir.join(bench_types::server_metrics::FILE),
            }
        });
        Ok(RunSpec {
            client: c.clone(),
            run_dir: run_dir.to_path_buf(),
            workload_path,
            plan: Arc::new(plan),
            mode_json,
            tokenizer,
            materializer,
            request,
            native,
            scrape,
            base_url: base_url.to_string(),
            builder,
        })
    }

    /// Sends the workload and writes requests.parquet. Blocking: builds its own runtime.
    pub fn run(self, opts: &RunOptions) -> Result<ClientOutcome, ClientError> {
        let c = &self.client;
        if c.force_output_length && c.api == Api::Tgi {
            tracing::warn!(
                "client: TGI has no min_tokens/ignore_eos; output lengths are not forced"
            );
        }
        raise_fd_limit(peak_in_flight(&self.plan, c) + FD_HEADROOM);
        // The runtime and the transport (resolving the host) before any output is written.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Other(format!("starting the runtime: {e}")))?;
        let transport = rt
            .block_on(async {
                if self.native {
                    http::Transport::native(&self.request).await
                } else {
                    http::Transport::reqwest(&self.request)
                }
            })
            .map_err(|e| ClientError::Other(format!("client.endpoint: {e}")))?;
        let start_unix_ns = self.shared_start(&rt, opts)?;
        let builder = self.builder;
        let mut mat = self.materializer;
        let warmup: Vec<(u32, Payload)> = self
            .plan
            .warmup
            .iter()
            .map(|&i| {
                let item = &self.plan.items[i as usize];
                let (payload, image_bytes) = prepare::prepare(&mut mat, &builder, item, true);
                self.plan.note_image_bytes(i, image_bytes);
                (i, payload)
            })
            .collect();

        let aibrix_path = c
            .write_aibrix_output
            .then(|| self.run_dir.join("output.jsonl"));
        let (writer, writer_join) = records::spawn(records::WriterConfig {
            path: self.run_dir.join(files::REQUESTS),
            aibrix_path: aibrix_path.clone(),
            kv: file_metadata(c, &self.plan, self.mode_json),
            tokenizer: self.tokenizer,
            plan: self.plan.clone(),
            chat_history: builder.chat_history(),
            record_text: c.record_output_text,
            flush_interval: Duration::from_secs_f64(c.flush_interval_s),
        })
        .map_err(ClientError::Output)?;

        let units: Vec<Vec<u32>> = match self.plan.mode {
            Mode::OpenLoop => self.plan.order.iter().map(|&i| vec![i]).collect(),
            Mode::ClosedLoop(_) => self.plan.chains.clone(),
        };
        let (unit_rx, filled, producer) = prepare::spawn(
            self.plan.clone(),
            builder.clone(),
            mat,
            units,
            c.prepare_ahead_mib as usize * (1 << 20),
        );

        // A stale file from an earlier run in this directory is never mistaken for this one's.
        let metrics_path = self.run_dir.join(bench_types::server_metrics::FILE);
        let _ = std::fs::remove_file(&metrics_path);
        let scraper = self.scrape.clone().map(crate::scrape::Scraper::start);
        let base = Instant::now();
        let display = progress::Display::choose(c.progress && !opts.quiet);
        let (ran, times) = rt.block_on(async {
            let t0 = crate::thread_cpu_times();
            let (phase_tx, phase_rx) = watch::channel(Phase::Running);
            let cap = match self.plan.mode {
                Mode::OpenLoop => c
                    .max_concurrency
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
                Mode::ClosedLoop(_) => None,
            };
            let stream = builder.streams();
            let ctx = Arc::new(exec::Ctx {
                transport,
                builder,
                api: c.api,
                stream,
                base,
                timeout: Duration::from_secs_f64(c.timeout_s),
                phase: phase_rx,
                writer,
                counters: Default::default(),
                cap,
                keep_body: c.write_aibrix_output,
                plan: self.plan.clone(),
                accounted: (0..self.plan.len())
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                writer_gone: AtomicBool::new(false),
                buffers: exec::BufferBudget::shared(c.max_buffer_mib),
            });
            let ran = dispatch::run(dispatch::Launch {
                ctx,
                phase_tx,
                units: unit_rx,
                filled,
                warmup,
                stop: opts.stop.clone(),
                duration_limit: c.duration_limit_s.map(Duration::from_secs_f64),
                grace: Duration::from_secs_f64(c.grace_s),
                display,
                start_unix_ns: start_unix_ns.as_ref().map(|s| s.0),
            })
            .await;
            let times = crate::thread_cpu_times()
                .zip(t0)
                .map(|(b, a)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1)));
            (ran, times)
        });
        drop(rt);
        let scraped = scraper.map(crate::scrape::Scraper::finish);
        let _ = producer.join();
        let stats = match writer_join.join() {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ClientError::Output(e)),
            Err(_) => return Err(ClientError::Output("the record writer panicked".into())),
        };
        let inputs = vec![("workload".to_string(), self.workload_path)];
        let mut o = outcome(
            &self.plan,
            &ran,
            times,
            stats,
            aibrix_path.is_some(),
            inputs,
        )?;
        if let Some(s) = c.shard {
            o.output.stat(
                "shard",
                serde_json::json!({"index": s.index, "count": s.count}),
            );
        }
        if let Some((start, clock)) = start_unix_ns {
            o.output.stat("start_at_unix_ns", start);
            o.output.stat(
                "clock",
                serde_json::to_value(&clock).unwrap_or(serde_json::Value::Null),
            );
        }
        if let Some(s) = scraped {
            if s.rows > 0 {
                o.output
                    .outputs
                    .push(bench_types::server_metrics::FILE.into());
            }
            if s.failures > 0 {
                tracing::warn!(
                    "metrics: {} of {} scrapes of {} failed (first: {})",
                    s.failures,
                    s.failures + s.scrapes,
                    s.url,
                    s.first_failure.as_deref().unwrap_or("?")
                );
            }
            o.output.stat(
                "metrics",
                serde_json::to_value(&s).unwrap_or(serde_json::Value::Null),
            );
        }
        Ok(o)
    }
}

impl RunSpec {
    /// A shared start (`client.start_at`, or any sharded run): the start as Unix ns, and where
    /// this host's clock stands. A client ready after the start refuses unless
    /// `client.late_start: allow`.
    fn shared_start(
        &self,
        rt: &tokio::runtime::Runtime,
        opts: &RunOptions,
    ) -> Result<Option<(i64, crate::clock::ClockReport)>, ClientError> {
        let c = &self.client;
        if c.shard.is_none() && c.start_at.is_none() {
            return Ok(None);
        }
        let url = format!("{}/v1/models", crate::preflight::root_url(&self.base_url));
        let clock = rt.block_on(crate::clock::measure(&url, &self.request.headers));
        match (clock.offset_ms, clock.uncertainty_ms) {
            (Some(o), Some(u)) => tracing::info!(
                "client: clock of {} is {o:+.3} ms off its reference (+/- {u:.3} ms; {})",
                clock.host,
                clock.source
            ),
            _ => tracing::warn!("client: clock offset unknown: {}", clock.detail),
        }
        let now = crate::clock::unix_now_ns();
        let Some(spec) = &c.start_at else {
            return Ok(Some((now, clock)));
        };
        let start = bench_config::client::StartAt::parse(spec)
            .map_err(|e| ClientError::Input(format!("client.start_at: {e}")))?
            .unix_ns(opts.process_start_unix_ns.unwrap_or(now));
        if now > start && c.late_start == bench_config::client::LateStart::Refuse {
            return Err(ClientError::Input(format!(
                "client.start_at: this client is ready {:.3} s after the shared start {spec} \
                 (client.late_start: refuse): start the shards earlier, set a later start_at, \
                 or set client.late_start: allow",
                (now - start) as f64 / 1e9
            )));
        }
        Ok(Some((start, clock)))
    }
}

/// The file's static key-value metadata.
fn file_metadata(c: &ClientConfig, plan: &Plan, mode_json: String) -> Vec<KeyValue> {
    let mut kv = vec![
        KeyValue::new(meta::WORKLOAD_REQUESTS.to_string(), plan.len().to_string()),
        KeyValue::new(meta::TIME_SCALE.to_string(), c.time_scale.to_string()),
        KeyValue::new(meta::MODE.to_string(), mode_json),
        KeyValue::new(meta::API.to_string(), api_name(c.api).to_string()),
    ];
    kv.sort_by(|a, b| a.key.cmp(&b.key));
    kv
}

/// Descriptors a run holds besides its sockets: the record files, the runtime, stdio, the
/// in-process simulated engine's listener and timers, with room to spare.
const FD_HEADROOM: u64 = 64;

/// The most requests this run can have in flight at once (one socket each).
fn peak_in_flight(plan: &Plan, c: &ClientConfig) -> u64 {
    let n = plan.len() as u64 + plan.warmup.len() as u64;
    match plan.mode {
        Mode::ClosedLoop(k) => u64::from(k).min(n),
        Mode::OpenLoop => c.max_concurrency.map_or(n, |m| u64::from(m).min(n)),
    }
}

/// Raises the open-file limit to what the run may need (each in-flight request holds a
/// socket), up to the hard limit, and warns when even that is short: requests that then find
/// no descriptor end as `transport_error` rows saying so, and the records are kept.
fn raise_fd_limit(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (l.current, l.maximum) else {
        return; // unlimited
    };
    if soft < need && hard.is_none_or(|h| h > soft) {
        let from = soft;
        l.current = Some(hard.map_or(need, |h| h.min(need.max(soft))));
        if setrlimit(Resource::Nofile, l).is_ok() {
            tracing::debug!(
                "client: open-file limit raised from {from} to {:?}",
                l.current
            );
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    if let Some(limit) = now
        && limit < need
    {
        tracing::warn!(
            "client: the open-file limit is {limit} but this run may hold {} requests in flight (one socket each, plus {FD_HEADROOM}); requests that find no descriptor are recorded as transport_error. Raise it with `ulimit -n {need}` (its hard limit allows {})",
            need - FD_HEADROOM,
            hard.map_or("any".to_string(), |h| h.to_string())
        );
    }
}

/// What the run ended with: the counts, the dispatch-lag figures (the same [`Stats`] analysis
/// reports), the CPU figures, and the manifest's stage output.
fn outcome(
    plan: &Plan,
    ran: &Ran,
    times: Option<(u64, u64)>,
    stats: WriterStats,
    aibrix: bool,
    inputs: Vec<(String, PathBuf)>,
) -> Result<ClientOutcome, ClientError> {
    let n = plan.len() as u64;
    if stats.rows != n + stats.warmup {
        return Err(ClientError::Other(format!(
            "internal: {} rows for {n} requests",
            stats.rows - stats.warmup
        )));
    }
    let mut lags_ms: Vec<f64> = stats.lags_ns.iter().map(|&ns| ns as f64 / 1e6).collect();
    let dispatch_lag_ms =
        (plan.mode == Mode::OpenLoop && !lags_ms.is_empty()).then(|| Stats::of(&mut lags_ms));
    let elapsed_s = (ran.elapsed.as_secs_f64() * 1000.0).round() / 1000.0;

    let mut out = StageOutput::default();
    out.outputs.push(files::REQUESTS.to_string());
    if aibrix {
        out.outputs.push("output.jsonl".into());
    }
    out.inputs = inputs;
    out.stat("requests", n);
    for (s, k) in stats.by_status.iter() {
        out.stat(s.as_str(), k);
    }
    out.stat("warmup_requests", stats.warmup);
    out.stat("anchor_unix_ns", ran.anchor_unix_ns);
    out.stat("elapsed_s", elapsed_s);
    out.stat("output_tokens", stats.output_tokens);
    if stats.snapshot_failures > 0 {
        out.stat("snapshot_failures", stats.snapshot_failures);
    }
    if let Some(l) = &dispatch_lag_ms {
        out.stat("dispatch_lag_p50_ms", l.p50);
        out.stat("dispatch_lag_p99_ms", l.p99);
        out.stat("dispatch_lag_max_ms", l.max);
    }
    let ms = |ns: u64| (ns as f64 / 1e3).round() / 1e3;
    if let Some((busy, wait)) = times {
        out.stat("dispatch_thread_cpu_ms", ms(busy));
        out.stat("dispatch_thread_cpu_wait_ms", ms(wait));
    }
    if let Some(w) = stats.cpu_ns {
        out.stat("writer_thread_cpu_ms", ms(w));
    }
    tracing::info!(
        "client: {n} requests: {} ok, {} failed, {} cancelled, {} not sent{}",
        stats.by_status[RequestStatus::Ok],
        stats.by_status.failed(),
        stats.by_status[RequestStatus::Cancelled],
        stats.by_status[RequestStatus::NotSent],
        if ran.limited {
            " (duration limit reached)"
        } else {
            ""
        }
    );
    let o = ClientOutcome {
        output: out,
        interrupted: ran.interrupted,
        limited: ran.limited,
        by_status: stats.by_status,
        warmup_rows: stats.warmup,
        anchor_unix_ns: ran.anchor_unix_ns,
        dispatch_lag_ms,
        cpu_wait_ns: times.map(|t| t.1),
        cpu_busy_ns: times.map(|t| t.0),
        writer_cpu_ns: stats.cpu_ns,
        elapsed_s,
    };
    if let (Some(share), Some(wait)) = (o.cpu_wait_share(), o.cpu_wait_ns)
        && share > 0.01
        && wait >= 10_000_000
    {
        tracing::warn!(
            "client: the dispatch thread waited {:.0} ms for a CPU ({:.1}% of the run): other processes compete for the cores and may have delayed sends and receive times",
            wait as f64 / 1e6,
            share * 100.0
        );
    }
    Ok(o)
}

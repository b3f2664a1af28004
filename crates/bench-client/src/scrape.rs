//! The server's Prometheus metrics, scraped while the run goes: `server_metrics.parquet`.
//!
//! One thread of its own at a lower CPU priority, with its own small runtime, so a slow or
//! huge /metrics never delays a send: the dispatch thread never waits on it. The first scrape
//! happens before the first request is sent ([`Scraper::start`] returns after it), then one
//! every `metrics.interval_s`, and a last one once every request has ended.
//!
//! A first answer that is not the text format (404, HTML, garbage) means the endpoint has no
//! metrics: scraping turns itself off and says so. Later failures (timeouts, 500, garbage)
//! are counted and logged, never fatal: the run goes on and the file keeps what was scraped.
//! The file is written as requests.parquet is: a complete file after each flush.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_server::engine::{self, Engine};
use bench_types::server_metrics::{self as sm, Row};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::records::parquet_out::ParquetOut;

/// Largest /metrics body read (a vLLM scrape is ~100 KiB).
const BODY_MAX: usize = 64 << 20;
/// Rows are written (and the file made readable) at least this often.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Failures logged one by one before they are only counted.
const LOGGED_FAILURES: u64 = 3;

/// What scraping did (the manifest's client stats `metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrapeStats {
    /// The URL scraped.
    pub url: String,
    /// Scrapes that were parsed and written.
    pub scrapes: u64,
    /// Scrapes that failed (timeout, HTTP error, not the text format).
    pub failures: u64,
    /// The first failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// Rows written.
    pub rows: u64,
    /// The engine the metric names point to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// Why scraping was turned off at the first scrape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off: Option<String>,
    /// Mean seconds a scrape took (request, parse).
    pub mean_scrape_s: f64,
}

/// A running scraper.
#[derive(Debug)]
pub struct Scraper {
    stop: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<ScrapeStats>>,
}

/// Where and how to scrape.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// The metrics URL.
    pub url: String,
    /// Between scrapes.
    pub interval: Duration,
    /// Per scrape.
    pub timeout: Duration,
    /// Headers sent (the API key, when the URL is the endpoint's own).
    pub headers: Vec<(String, String)>,
    /// server_metrics.parquet.
    pub path: PathBuf,
}

impl Scraper {
    /// Starts the thread and waits for its first scrape (at most the timeout).
    pub fn start(cfg: ScrapeConfig) -> Scraper {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let timeout = cfg.timeout;
        let join = std::thread::Builder::new()
            .name("bench-scrape".into())
            .spawn(move || {
                crate::lower_thread_priority();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(());
                        return ScrapeStats {
                            url: cfg.url,
                            off: Some(format!("no runtime: {e}")),
                            ..ScrapeStats::default()
                        };
                    }
                };
                rt.block_on(run(cfg, stop_rx, ready_tx))
            })
            .ok();
        let _ = ready_rx.recv_timeout(timeout + Duration::from_secs(1));
        Scraper {
            stop: Some(stop_tx),
            join,
        }
    }

    /// Takes a last scrape, finishes the file, returns what happened.
    pub fn finish(mut self) -> ScrapeStats {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join
            .take()
            .and_then(|j| j.join().ok())
            .unwrap_or_default()
    }
}

/// One scrape's outcome.
enum Got {
    Rows(Vec<bench_server::expo::FlatSample>),
    /// Not the text format, or not there: why.
    NotMetrics(String),
    /// A transient failure.
    Failed(String),
}

async fn scrape_once(http: &reqwest::Client, url: &str) -> Got {
    let r = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => return Got::Failed(rq_cause(&e)),
    };
    let status = r.status().as_u16();
    if !(200..300).contains(&status) {
        return match status {
            404..=406 => Got::NotMetrics(format!("HTTP {status}")),
            s => Got::Failed(format!("HTTP {s}")),
        };
    }
    if r.content_length().is_some_and(|n| n as usize > BODY_MAX) {
        return Got::Failed(format!("the answer is over {} MiB", BODY_MAX >> 20));
    }
    let body = match read_capped(r).await {
        Ok(b) => b,
        Err(e) => return Got::Failed(e),
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => {
            return Got::NotMetrics("the answer is not UTF-8 text".into());
        }
    };
    match bench_server::expo::parse(text) {
        Ok(rows) if rows.is_empty() && !text.trim().is_empty() => {
            Got::NotMetrics("no sample in the answer".into())
        }
        Ok(rows) => Got::Rows(rows),
        Err(e) => Got::NotMetrics(format!("not the Prometheus text format: {e}")),
    }
}

async fn read_capped(mut r: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| rq_cause(&e))? {
        if out.len() + chunk.len() > BODY_MAX {
            return Err(format!("the answer is over {} MiB", BODY_MAX >> 20));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn rq_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    crate::http::rq::root_cause(e)
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

async fn run(
    cfg: ScrapeConfig,
    mut stop: oneshot::Receiver<()>,
    ready: mpsc::Sender<()>,
) -> ScrapeStats {
    let mut st = ScrapeStats {
        url: cfg.url.clone(),
        ..ScrapeStats::default()
    };
    let http = match crate::http::rq::side_client(&cfg.headers, cfg.timeout) {
        Ok(c) => c,
        Err(e) => {
            st.off = Some(e);
            let _ = ready.send(());
            return st;
        }
    };
    let mut out: Option<ParquetOut> = None;
    let mut pending: Vec<Row> = Vec::new();
    let mut last_flush = Instant::now();
    let mut busy = Duration::ZERO;
    let mut next = tokio::time::Instant::now();
    let mut last = false;
    loop {
        let t0 = Instant::now();
        let got = scrape_once(&http, &cfg.url).await;
        let at = unix_ns();
        busy += t0.elapsed();
        let first = st.scrapes == 0 && st.failures == 0;
        match got {
            Got::Rows(samples) => {
                if st.engine.is_none() {
                    let e = engine::detect(samples.iter().map(|s| s.metric.as_str()));
                    st.engine = Some(e);
                }
                let scrape = st.scrapes as u32;
                pending.extend(samples.into_iter().map(|s| Row {
                    scrape,
                    unix_ns: at,
                    metric: s.metric,
                    labels: s.labels,
                    le: s.le,
                    value: s.value,
                }));
                st.scrapes += 1;
            }
            Got::NotMetrics(why) if first => {
                st.off = Some(format!("{} answered {why}", cfg.url));
                tracing::info!(
                    "metrics: {} answered {why}: no server metrics for this run (metrics.enabled: false skips the attempt; metrics.url names another URL)",
                    cfg.url
                );
                let _ = ready.send(());
                return st;
            }
            Got::NotMetrics(why) | Got::Failed(why) => {
                st.failures += 1;
                if st.failures <= LOGGED_FAILURES {
                    tracing::warn!(
                        "metrics: scrape of {} failed: {why}{}",
                        cfg.url,
                        if st.failures == LOGGED_FAILURES {
                            " (further failures are counted, not logged)"
                        } else {
                            ""
                        }
                    );
                }
                st.first_failure.get_or_insert(why);
            }
        }
        if first {
            let _ = ready.send(());
        }
        if !pending.is_empty() && (last || last_flush.elapsed() >= FLUSH_EVERY || out.is_none()) {
            flush(&cfg, &mut out, &mut pending, &mut st);
            last_flush = Instant::now();
        }
        if last {
            break;
        }
        next += cfg.interval;
        let now = tokio::time::Instant::now();
        if next < now {
            // a scrape longer than the interval: the next starts now, no burst to catch up
            next = now;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = &mut stop => { last = true; }
        }
    }
    if let Some(o) = out.take()
        && let Err(e) = o.finish(&[])
    {
        tracing::warn!("metrics: finishing {}: {e}", cfg.path.display());
    }
    let n = st.scrapes + st.failures;
    st.mean_scrape_s = if n > 0 {
        (busy.as_secs_f64() / n as f64 * 1e6).round() / 1e6
    } else {
        0.0
    };
    st
}

/// Writes the pending rows as a row group and makes the file readable; a failure is logged and
/// the rows kept for the next try.
fn flush(
    cfg: &ScrapeConfig,
    out: &mut Option<ParquetOut>,
    pending: &mut Vec<Row>,
    st: &mut ScrapeStats,
) {
    if out.is_none() {
        let props = sm::writer_properties(concat!(
            "bench-client ",
            env!("CARGO_PKG_VERSION"),
            " (parquet-rs)"
        ));
        match ParquetOut::create_with(&cfg.path, &sm::schema(), props, Vec::new()) {
            Ok(o) => *out = Some(o),
            Err(e) => {
                tracing::warn!("metrics: {e}");
                return;
            }
        }
    }
    let Some(o) = out.as_mut() else { return };
    match sm::to_batch(pending)
        .map_err(|e| e.to_string())
        .and_then(|b| o.write(&b))
    {
        Ok(()) => {
            st.rows += pending.len() as u64;
            pending.clear();
            // the rows are in the live file: a failed snapshot only delays readability
            if let Err(e) = o.snapshot(&[]) {
                tracing::warn!("metrics: {e}");
            }
        }
        Err(e) => tracing::warn!("metrics: writing {}: {e}", cfg.path.display()),
    }
}

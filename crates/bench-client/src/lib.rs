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

pub mod chat;
pub mod clock;
mod dispatch;
mod exec;
pub mod http;
mod media;
mod outcome;
mod plan;
pub mod preflight;
mod prepare;
mod progress;
pub mod protocol;
pub mod records;
mod run;
pub mod scrape;
pub mod sse;
mod stop;
pub mod synth_image;
pub mod timer;

use std::path::Path;

use bench_config::Config;
use bench_types::record::StatusCounts;
use bench_types::stage::exit;
use bench_types::stats::Stats;
use bench_types::{FormatError, StageError, StageOutput};

pub use run::RunSpec;
pub use stop::{StopHandle, StopRequest};

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
    /// The server is unreachable, not ready in time, or does not serve the model (exit 1).
    #[error("{0}")]
    Server(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for ClientError {
    fn exit_code(&self) -> i32 {
        match self {
            ClientError::Format(_) | ClientError::Input(_) => exit::BAD_INPUT,
            ClientError::Output(_) | ClientError::Server(_) | ClientError::Other(_) => {
                exit::FAILURE
            }
        }
    }
}

/// Options of one client run that are not config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Base URL to send to (the config's endpoint, or the in-process simulator's address).
    pub base_url: String,
    /// No progress bar.
    pub quiet: bool,
    /// Stops the run from another thread (the binary's signal listener calls it on Ctrl-C).
    pub stop: StopHandle,
    /// When the process started (Unix ns): `client.start_at: +30s` counts from it (now, when
    /// not given).
    pub process_start_unix_ns: Option<i64>,
}

/// What the client run ended with.
#[derive(Debug, Clone, Default)]
pub struct ClientOutcome {
    /// For the manifest.
    pub output: StageOutput,
    /// Stopped by a [`StopHandle`] (the binary exits 128 + the signal after the manifest).
    pub interrupted: bool,
    /// The duration limit ended the sending.
    pub limited: bool,
    /// Rows by status (non-warmup).
    pub by_status: StatusCounts,
    /// Warmup rows.
    pub warmup_rows: u64,
    /// Wall-clock time of the anchor (ns since the Unix epoch).
    pub anchor_unix_ns: i64,
    /// Dispatch lag (sent - scheduled) of the sent, non-warmup requests, ms: the same figures
    /// as summary.json's `dispatch_lag_ms` (open loop only; closed loops have no schedule).
    pub dispatch_lag_ms: Option<Stats>,
    /// Time the dispatch thread spent runnable but waiting for a CPU during the run (Linux),
    /// ns: when large, other processes delayed the client and its timings.
    pub cpu_wait_ns: Option<u64>,
    /// Time the dispatch thread spent on a CPU during the run (Linux), ns.
    pub cpu_busy_ns: Option<u64>,
    /// Time the record writer thread spent on a CPU (Linux), ns.
    pub writer_cpu_ns: Option<u64>,
    /// Seconds from the anchor to the last row.
    pub elapsed_s: f64,
}

impl ClientOutcome {
    /// The share of the run the dispatch thread spent waiting for a CPU (0 to 1), when known.
    pub fn cpu_wait_share(&self) -> Option<f64> {
        let (busy, wait) = (self.cpu_busy_ns?, self.cpu_wait_ns?);
        // the thread's clocks also cover setup before the anchor: never more than 100%
        let span = ((self.elapsed_s * 1e9) as u64).max(busy + wait).max(1);
        Some(wait as f64 / span as f64)
    }
}

/// Lowers the calling thread's CPU priority (helper threads must never delay a send).
pub(crate) fn lower_thread_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// The calling thread's (time on a CPU, time runnable but waiting for a CPU), ns (Linux
/// schedstat).
pub(crate) fn thread_cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Runs the workload in `run_dir` against `opts.base_url`. Blocking: builds its own runtime.
/// Everything the run needs is checked ([`RunSpec::new`]) before any output is written.
pub fn run(cfg: &Config, run_dir: &Path, opts: &RunOptions) -> Result<ClientOutcome, ClientError> {
    RunSpec::new(cfg, run_dir, &opts.base_url)?.run(opts)
}

//! The client stage: sends `<run_dir>/workload.jsonl` and writes `<run_dir>/requests.parquet`.

use std::path::Path;

use bench_config::Config;
use bench_types::stage::exit;
use bench_types::{FormatError, StageError, StageOutput};

/// Client stage errors (a failed request is a record, never an error).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The workload file is bad (exit 2).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for ClientError {
    fn exit_code(&self) -> i32 {
        match self {
            ClientError::Format(FormatError::Parse { .. }) => exit::BAD_INPUT,
            _ => exit::FAILURE,
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
}

/// What the client run ended with.
#[derive(Debug, Clone, Default)]
pub struct ClientOutcome {
    /// For the manifest.
    pub output: StageOutput,
    /// Stopped by Ctrl-C (the binary exits 130 after writing the manifest).
    pub interrupted: bool,
}

/// Runs the workload in `run_dir` against `opts.base_url`. Blocking: builds its own runtime.
pub fn run(cfg: &Config, run_dir: &Path, opts: &RunOptions) -> Result<ClientOutcome, ClientError> {
    let _ = (cfg, run_dir, opts);
    Err(ClientError::Other("client stage not built yet".into()))
}

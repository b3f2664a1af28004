//! The workload stage: writes `<run_dir>/workload.jsonl`.

use std::path::Path;

use bench_config::Config;
use bench_types::stage::exit;
use bench_types::{FormatError, StageError, StageOutput};

/// Workload stage errors.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A bad input file or format problem (exit 2).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The tokenizer could not be loaded (exit 2).
    #[error(transparent)]
    Text(#[from] bench_text::TextError),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for WorkloadError {
    fn exit_code(&self) -> i32 {
        match self {
            WorkloadError::Format(FormatError::Io { .. }) | WorkloadError::Other(_) => exit::FAILURE,
            _ => exit::BAD_INPUT,
        }
    }
}

/// Runs the workload stage for `cfg` into `run_dir` (reading `dataset.jsonl` there when needed).
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, WorkloadError> {
    let _ = (cfg, run_dir);
    Err(WorkloadError::Other("workload stage not built yet".into()))
}

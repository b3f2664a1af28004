//! The analysis stage: metrics, goodput, distributions, plots and report from `requests.parquet`.

use std::path::{Path, PathBuf};

use bench_config::Config;
use bench_types::stage::exit;
use bench_types::{StageError, StageOutput};

/// Analysis errors.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The run directory lacks a readable requests.parquet, or it is malformed (exit 2).
    #[error("{0}")]
    Input(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for AnalysisError {
    fn exit_code(&self) -> i32 {
        match self {
            AnalysisError::Input(_) => exit::BAD_INPUT,
            AnalysisError::Other(_) => exit::FAILURE,
        }
    }
}

/// Runs the analysis of `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, AnalysisError> {
    let _ = (cfg, run_dir);
    Err(AnalysisError::Other("analysis stage not built yet".into()))
}

/// `bench compare`: one table across runs (text), and the same as CSV at `csv` when given.
pub fn compare(run_dirs: &[PathBuf], csv: Option<&Path>) -> Result<String, AnalysisError> {
    let _ = (run_dirs, csv);
    Err(AnalysisError::Other("compare not built yet".into()))
}

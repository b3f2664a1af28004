//! The dataset stage: writes `<run_dir>/dataset.jsonl`.

use std::path::Path;

use bench_config::Config;
use bench_types::stage::exit;
use bench_types::{FormatError, StageError, StageOutput};

/// Dataset stage errors.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
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

impl StageError for DatasetError {
    fn exit_code(&self) -> i32 {
        match self {
            DatasetError::Format(FormatError::Io { .. }) | DatasetError::Other(_) => exit::FAILURE,
            _ => exit::BAD_INPUT,
        }
    }
}

/// Runs the dataset stage for `cfg` into `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, DatasetError> {
    let _ = (cfg, run_dir);
    Err(DatasetError::Other("dataset stage not built yet".into()))
}

//! What a stage reports back to the driver, and how its errors map to exit status.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Exit status of the `bench` binary.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Anything else (I/O failure, server unreachable at startup, internal error).
    pub const FAILURE: i32 = 1;
    /// Bad config or bad input file.
    pub const BAD_INPUT: i32 = 2;
    /// The run finished and every file is written, but it failed: most requests failed (more
    /// than `analysis.max_error_rate`) or none succeeded.
    pub const RUN_FAILED: i32 = 3;
    /// Interrupted by Ctrl-C (after the client wrote every record).
    pub const INTERRUPTED: i32 = 130;
}

/// Implemented by each stage crate's error type so the binary can pick the exit status.
pub trait StageError: std::error::Error + Send + Sync + 'static {
    /// One of [`exit`]'s codes.
    fn exit_code(&self) -> i32;
}

/// What a stage did, for the manifest and the log.
#[derive(Debug, Clone, Default)]
pub struct StageOutput {
    /// Files written, relative to the run directory.
    pub outputs: Vec<String>,
    /// Input files read, keyed by the config key that named them (checksummed into the manifest).
    pub inputs: Vec<(String, PathBuf)>,
    /// Figures worth keeping (counts, spans, rates).
    pub stats: BTreeMap<String, serde_json::Value>,
    /// Text for the terminal (e.g. the summary table), printed by the binary on stdout.
    pub display: Option<String>,
}

impl StageOutput {
    /// Adds a figure.
    pub fn stat(&mut self, key: &str, v: impl Into<serde_json::Value>) -> &mut Self {
        self.stats.insert(key.to_string(), v.into());
        self
    }
}

//! The records that cross stage boundaries, and their readers and writers.
//!
//! Stages meet only through files in the run directory:
//!
//! | file | type | module |
//! |---|---|---|
//! | `dataset.jsonl` | [`DatasetRecord`] per line (AIBrix plain or session layout) | [`dataset`] |
//! | `workload.jsonl` | optional [`WorkloadHeader`] line, then [`WorkloadEntry`] per line | [`workload`] |
//! | `requests.parquet` | one row per request, columns in [`record::columns`] | [`record`] |
//! | `server_metrics.parquet` | one row per /metrics sample, columns in [`server_metrics`] | [`server_metrics`] |
//! | `manifest.json` | [`Manifest`] | [`manifest`] |
//!
//! Readers accept what is seen in the wild: CRLF line endings, no final newline, blank lines,
//! both key spellings (`prompt_length` and `"Prompt Length"`). Every parse error names the file
//! and the 1-based line.

pub mod dataset;
pub mod image;
pub mod jsonl;
pub mod manifest;
pub mod record;
pub mod server_metrics;
pub mod shard;
pub mod stage;
pub mod stats;
pub mod testdata;
pub mod workload;

pub use dataset::{DatasetRecord, PlainPrompt, SessionRecord};
pub use jsonl::FormatError;
pub use manifest::Manifest;
pub use record::RequestStatus;
pub use stage::{StageError, StageOutput};
pub use workload::{BlockSpec, LoopMode, Workload, WorkloadEntry, WorkloadHeader, WorkloadRequest};

/// Standard file names inside a run directory.
pub mod files {
    /// Output of the dataset stage.
    pub const DATASET: &str = "dataset.jsonl";
    /// Output of the workload stage.
    pub const WORKLOAD: &str = "workload.jsonl";
    /// Output of the client stage.
    pub const REQUESTS: &str = "requests.parquet";
    /// Run manifest (resolved config, seed, version, input checksums).
    pub const MANIFEST: &str = "manifest.json";
    /// Analysis summary.
    pub const SUMMARY: &str = "summary.json";
    /// Analysis report.
    pub const REPORT: &str = "report.html";
}

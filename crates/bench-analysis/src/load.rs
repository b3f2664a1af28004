//! Reading `requests.parquet`: the records reader of bench-types (schema check, key-value
//! metadata, every column), then the per-request metrics in a Polars frame
//! ([`crate::metrics::Derived::from_table`]).

use std::path::{Path, PathBuf};

use bench_config::analysis::TokenSource;
use bench_types::record::RecordTable;
pub use bench_types::record::{ChunkLists, FileMeta, Status};

use crate::AnalysisError;
use crate::metrics::Derived;

/// The rows of requests.parquet with their derived per-request metrics.
#[derive(Debug)]
pub struct Records {
    /// The file read.
    pub path: PathBuf,
    /// Its key-value metadata.
    pub meta: FileMeta,
    /// Number of rows.
    pub rows: usize,
    /// `request_id`.
    pub request_id: Vec<Option<u64>>,
    /// `session_id`.
    pub session_id: Vec<Option<u64>>,
    /// `turn`.
    pub turn: Vec<Option<u32>>,
    /// `status`.
    pub status: Vec<Status>,
    /// Names of statuses the client does not write, for [`Status::Unknown`].
    pub unknown_statuses: Vec<String>,
    /// `error`.
    pub error: Vec<Option<String>>,
    /// `warmup`.
    pub warmup: Vec<bool>,
    /// `scheduled_ns`.
    pub scheduled: Vec<Option<i64>>,
    /// `ready_ns`.
    pub ready: Vec<Option<i64>>,
    /// `sent_ns`.
    pub sent: Vec<Option<i64>>,
    /// `first_token_ns`.
    pub first_token: Vec<Option<i64>>,
    /// `end_ns`.
    pub end: Vec<Option<i64>>,
    /// `chunk_ns`.
    pub chunks: ChunkLists,
    /// Per-request metrics computed by the scan.
    pub derived: Derived,
    /// What the server reported of its own time on each request.
    pub server: ServerCols,
    /// `dataset`: the named dataset of each request.
    pub dataset: Vec<Option<String>>,
    /// `fields`: each request's scalar workload fields (JSON), when it had any.
    pub fields: Vec<Option<String>>,
    /// `request_bytes`: the body sent.
    pub request_bytes: Vec<Option<u64>>,
    /// `image_bytes`: the request's images before base64.
    pub image_bytes: Vec<Option<u64>>,
}

/// The server's per-request timings, ms (NaN where it reported none).
#[derive(Debug, Default, Clone)]
pub struct ServerCols {
    /// `server_queue_us` / 1000.
    pub queue_ms: Vec<f64>,
    /// `server_prefill_us` / 1000.
    pub prefill_ms: Vec<f64>,
    /// `server_decode_us` / 1000.
    pub decode_ms: Vec<f64>,
    /// `server_inference_us` / 1000.
    pub inference_ms: Vec<f64>,
    /// `cached_prompt_tokens`.
    pub cached_prompt_tokens: Vec<f64>,
}

impl ServerCols {
    fn from_table(t: &RecordTable) -> ServerCols {
        let ms = |v: &[Option<u64>]| {
            v.iter()
                .map(|x| x.map_or(f64::NAN, |u| u as f64 / 1e3))
                .collect()
        };
        ServerCols {
            queue_ms: ms(&t.server_queue_us),
            prefill_ms: ms(&t.server_prefill_us),
            decode_ms: ms(&t.server_decode_us),
            inference_ms: ms(&t.server_inference_us),
            cached_prompt_tokens: t
                .cached_prompt_tokens
                .iter()
                .map(|x| x.map_or(f64::NAN, f64::from))
                .collect(),
        }
    }
}

fn input_err(path: &Path, e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Input(format!("{}: {e}", path.display()))
}

/// Reads `path` (a requests.parquet): checks its schema, reads its metadata and every row, and
/// derives the per-request metrics.
pub fn load(path: &Path, tokens: TokenSource) -> Result<Records, AnalysisError> {
    let mut t = RecordTable::read(path).map_err(|e| AnalysisError::Input(e.to_string()))?;
    let derived = Derived::from_table(&t, tokens).map_err(|e| input_err(path, e))?;
    let server = ServerCols::from_table(&t);
    Ok(Records {
        path: path.to_path_buf(),
        meta: std::mem::take(&mut t.meta),
        rows: t.rows,
        request_id: std::mem::take(&mut t.request_id),
        session_id: std::mem::take(&mut t.session_id),
        turn: std::mem::take(&mut t.turn),
        status: std::mem::take(&mut t.status),
        unknown_statuses: std::mem::take(&mut t.unknown_statuses),
        error: std::mem::take(&mut t.error),
        warmup: std::mem::take(&mut t.warmup),
        scheduled: std::mem::take(&mut t.scheduled_ns),
        ready: std::mem::take(&mut t.ready_ns),
        sent: std::mem::take(&mut t.sent_ns),
        first_token: std::mem::take(&mut t.first_token_ns),
        end: std::mem::take(&mut t.end_ns),
        chunks: std::mem::take(&mut t.chunk_ns),
        derived,
        server,
        dataset: std::mem::take(&mut t.dataset),
        fields: std::mem::take(&mut t.fields),
        request_bytes: std::mem::take(&mut t.request_bytes),
        image_bytes: std::mem::take(&mut t.image_bytes),
    })
}

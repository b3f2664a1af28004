//! Reading `requests.parquet`: schema check, key-value metadata, and one lazy Polars scan that
//! projects the columns analysis needs and derives the per-request metrics
//! ([`crate::metrics::derived_columns`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use bench_types::RequestStatus;
use bench_types::record::{columns as col, meta};
use polars::prelude::*;

use crate::AnalysisError;
use crate::metrics::{self, Derived};

/// What the file's key-value metadata says about the run.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    /// `bench.anchor_unix_ns`: wall-clock time of the monotonic anchor.
    pub anchor_unix_ns: Option<i64>,
    /// `bench.workload_requests`: rows the file holds when the run is complete.
    pub workload_requests: Option<u64>,
    /// `bench.mode` loop mode (`open_loop` / `closed_loop`).
    pub mode: Option<String>,
    /// `bench.mode` concurrency (closed loop) or concurrency cap.
    pub concurrency: Option<u64>,
    /// `bench.time_scale`.
    pub time_scale: Option<f64>,
    /// `bench.complete`: false for a snapshot written while the run was going.
    pub complete: Option<bool>,
    /// `bench.api`.
    pub api: Option<String>,
}

impl FileMeta {
    fn parse(kv: &[(String, String)]) -> FileMeta {
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.trim());
        let mut m = FileMeta {
            anchor_unix_ns: get(meta::ANCHOR_UNIX_NS).and_then(|v| v.parse().ok()),
            workload_requests: get(meta::WORKLOAD_REQUESTS).and_then(|v| v.parse().ok()),
            time_scale: get(meta::TIME_SCALE).and_then(|v| v.parse().ok()),
            complete: get(meta::COMPLETE).and_then(|v| v.parse().ok()),
            api: get(meta::API).map(str::to_string),
            ..FileMeta::default()
        };
        if let Some(v) = get(meta::MODE) {
            // `{"mode": "closed_loop", "concurrency": 8}`; a bare `closed_loop` is accepted too.
            match serde_json::from_str::<serde_json::Value>(v) {
                Ok(serde_json::Value::Object(o)) => {
                    m.mode = o.get("mode").and_then(|x| x.as_str()).map(str::to_string);
                    m.concurrency = ["concurrency", "max_concurrency"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(|x| x.as_u64()));
                }
                Ok(serde_json::Value::String(s)) => m.mode = Some(s),
                _ => m.mode = Some(v.trim_matches('"').to_string()),
            }
        }
        m
    }
}

/// A request's status as read from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// One of the statuses the client writes.
    Known(RequestStatus),
    /// Anything else (index into [`Records::unknown_statuses`]).
    Unknown(u32),
}

/// Every `chunk_ns` list of the file, row by row, without copying the values.
#[derive(Debug, Default)]
pub struct ChunkLists {
    /// Per array part: the values and, per row of the part, `[start, end)` into them.
    parts: Vec<(Int64Chunked, Vec<(usize, usize)>)>,
    /// Total number of values.
    pub total: usize,
}

impl ChunkLists {
    fn from_column(c: &Column, path: &Path) -> Result<ChunkLists, AnalysisError> {
        let bad = |e: &dyn std::fmt::Display| {
            AnalysisError::Input(format!(
                "{}: column `{}`: {e}",
                path.display(),
                col::CHUNK_NS
            ))
        };
        let lc = c.list().map_err(|e| bad(&e))?;
        let mut out = ChunkLists::default();
        for arr in lc.downcast_iter() {
            let values = Series::from_arrow(PlSmallStr::from_static("v"), arr.values().clone())
                .map_err(|e| bad(&e))?;
            let values = values.i64().map_err(|e| bad(&e))?.clone();
            if values.null_count() > 0 {
                return Err(bad(&"holds null chunk times"));
            }
            let values = values.rechunk().into_owned();
            let offsets = arr.offsets().as_slice();
            let validity = arr.validity();
            let spans = (0..arr.len())
                .map(|i| {
                    if validity.is_some_and(|v| !v.get_bit(i)) {
                        (0, 0)
                    } else {
                        (offsets[i] as usize, offsets[i + 1] as usize)
                    }
                })
                .collect::<Vec<_>>();
            out.total += spans.iter().map(|(a, b)| b - a).sum::<usize>();
            out.parts.push((values, spans));
        }
        Ok(out)
    }

    /// Calls `f(row, chunk times)` for every row in order.
    pub fn for_each(&self, mut f: impl FnMut(usize, &[i64])) {
        let mut row = 0;
        for (values, spans) in &self.parts {
            let v = values.cont_slice().expect("rechunked, no nulls");
            for &(a, b) in spans {
                f(row, &v[a..b]);
                row += 1;
            }
        }
    }
}

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
}

fn input_err(path: &Path, e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Input(format!("{}: {e}", path.display()))
}

/// The columns analysis reads and what each must be: `Int64` exactly for times,
/// any integer for ids and counts.
const REQUIRED: [(&str, Kind); 19] = [
    (col::REQUEST_ID, Kind::Integer),
    (col::SESSION_ID, Kind::Integer),
    (col::TURN, Kind::Integer),
    (col::STATUS, Kind::String),
    (col::HTTP_STATUS, Kind::Integer),
    (col::ERROR, Kind::String),
    (col::SCHEDULED_NS, Kind::Time),
    (col::READY_NS, Kind::Time),
    (col::SENT_NS, Kind::Time),
    (col::FIRST_BYTE_NS, Kind::Time),
    (col::FIRST_TOKEN_NS, Kind::Time),
    (col::END_NS, Kind::Time),
    (col::CHUNK_NS, Kind::TimeList),
    (col::PROMPT_TOKENS, Kind::Integer),
    (col::OUTPUT_TOKENS, Kind::Integer),
    (col::USAGE_PROMPT_TOKENS, Kind::Integer),
    (col::USAGE_OUTPUT_TOKENS, Kind::Integer),
    (col::MAX_TOKENS, Kind::Integer),
    (col::WARMUP, Kind::Boolean),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Integer,
    String,
    Time,
    TimeList,
    Boolean,
}

impl Kind {
    fn accepts(self, t: &DataType) -> bool {
        match self {
            Kind::Integer => t.is_integer(),
            Kind::String => matches!(t, DataType::String),
            Kind::Time => matches!(t, DataType::Int64),
            Kind::TimeList => {
                matches!(t, DataType::List(inner) if matches!(**inner, DataType::Int64))
            }
            Kind::Boolean => matches!(t, DataType::Boolean),
        }
    }
    fn expected(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::String => "Utf8",
            Kind::Time => "Int64",
            Kind::TimeList => "List<Int64>",
            Kind::Boolean => "Boolean",
        }
    }
}

/// Reads the file's key-value metadata (`bench.*` keys and anything else).
fn read_kv(path: &Path) -> Result<Vec<(String, String)>, AnalysisError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => input_err(
            path,
            "not found (the client stage writes it; run `bench --stage client` first)",
        ),
        _ => input_err(path, e),
    })?;
    let mut reader = ParquetReader::new(file);
    let md = reader
        .get_metadata()
        .map_err(|e| input_err(path, format!("not a readable Parquet file: {e}")))?;
    Ok(md
        .key_value_metadata
        .iter()
        .flatten()
        .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), v.clone())))
        .collect())
}

/// Reads `path` (a requests.parquet): checks its schema, reads its metadata and every row.
pub fn load(path: &Path) -> Result<Records, AnalysisError> {
    let kv = read_kv(path)?;
    let meta = FileMeta::parse(&kv);
    let pl_path = PlRefPath::try_from_path(path).map_err(|e| input_err(path, e))?;
    let mut lf = LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
        .map_err(|e| input_err(path, e))?;
    let schema = lf
        .collect_schema()
        .map_err(|e| input_err(path, format!("not a readable Parquet file: {e}")))?;
    let mut problems = Vec::new();
    for (name, kind) in REQUIRED {
        match schema.get(name) {
            None => problems.push(format!("column `{name}` is missing")),
            Some(t) if !kind.accepts(t) => problems.push(format!(
                "column `{name}` is {t}, expected {}",
                kind.expected()
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(input_err(
            path,
            format!(
                "not a requests.parquet of this version: {}",
                problems.join("; ")
            ),
        ));
    }
    let u64c = |n: &str| polars::prelude::col(n).cast(DataType::UInt64);
    let mut exprs = vec![
        u64c(col::REQUEST_ID),
        u64c(col::SESSION_ID),
        polars::prelude::col(col::TURN).cast(DataType::UInt32),
        polars::prelude::col(col::STATUS),
        polars::prelude::col(col::ERROR),
        polars::prelude::col(col::WARMUP),
        polars::prelude::col(col::SCHEDULED_NS),
        polars::prelude::col(col::READY_NS),
        polars::prelude::col(col::SENT_NS),
        polars::prelude::col(col::FIRST_TOKEN_NS),
        polars::prelude::col(col::END_NS),
        polars::prelude::col(col::CHUNK_NS),
    ];
    exprs.extend(metrics::derived_columns());
    let df = lf.select(exprs).collect().map_err(|e| input_err(path, e))?;
    let rows = df.height();
    let get = |n: &str| df.column(n).map_err(|e| input_err(path, e));
    let i64s = |n: &str| -> Result<Vec<Option<i64>>, AnalysisError> {
        Ok(get(n)?
            .i64()
            .map_err(|e| input_err(path, e))?
            .iter()
            .collect())
    };
    let (status, unknown_statuses) = {
        let mut unknown: Vec<String> = Vec::new();
        let s = get(col::STATUS)?.str().map_err(|e| input_err(path, e))?;
        let v = s
            .iter()
            .map(|v| {
                let v = v.unwrap_or("null");
                match RequestStatus::parse(v) {
                    Some(k) => Status::Known(k),
                    None => Status::Unknown(match unknown.iter().position(|u| u == v) {
                        Some(i) => i as u32,
                        None => {
                            unknown.push(v.to_string());
                            (unknown.len() - 1) as u32
                        }
                    }),
                }
            })
            .collect();
        (v, unknown)
    };
    Ok(Records {
        path: path.to_path_buf(),
        meta,
        rows,
        request_id: get(col::REQUEST_ID)?
            .u64()
            .map_err(|e| input_err(path, e))?
            .iter()
            .collect(),
        session_id: get(col::SESSION_ID)?
            .u64()
            .map_err(|e| input_err(path, e))?
            .iter()
            .collect(),
        turn: get(col::TURN)?
            .u32()
            .map_err(|e| input_err(path, e))?
            .iter()
            .collect(),
        status,
        unknown_statuses,
        error: get(col::ERROR)?
            .str()
            .map_err(|e| input_err(path, e))?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        warmup: get(col::WARMUP)?
            .bool()
            .map_err(|e| input_err(path, e))?
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect(),
        scheduled: i64s(col::SCHEDULED_NS)?,
        ready: i64s(col::READY_NS)?,
        sent: i64s(col::SENT_NS)?,
        first_token: i64s(col::FIRST_TOKEN_NS)?,
        end: i64s(col::END_NS)?,
        chunks: ChunkLists::from_column(get(col::CHUNK_NS)?, path)?,
        derived: Derived::from_frame(&df).map_err(|e| input_err(path, e))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_metadata_accepts_object_and_bare_string() {
        let kv = |v: &str| vec![(meta::MODE.to_string(), v.to_string())];
        let m = FileMeta::parse(&kv(r#"{"mode":"closed_loop","concurrency":8}"#));
        assert_eq!(
            (m.mode.as_deref(), m.concurrency),
            (Some("closed_loop"), Some(8))
        );
        let m = FileMeta::parse(&kv("open_loop"));
        assert_eq!(
            (m.mode.as_deref(), m.concurrency),
            (Some("open_loop"), None)
        );
        let m = FileMeta::parse(&[
            (meta::ANCHOR_UNIX_NS.into(), "1700000000000000000".into()),
            (meta::WORKLOAD_REQUESTS.into(), "12".into()),
            (meta::COMPLETE.into(), "false".into()),
        ]);
        assert_eq!(m.anchor_unix_ns, Some(1_700_000_000_000_000_000));
        assert_eq!(m.workload_requests, Some(12));
        assert_eq!(m.complete, Some(false));
    }
}

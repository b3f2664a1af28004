//! Reading requests.parquet back: its key-value metadata, a check of the contract columns, and
//! every column as plain vectors (analysis), or as rows (tests, benchmarks).
//!
//! Files from other versions or tools are read leniently: ids and counts may be any integer
//! type (a value that does not fit reads as null), strings may be Utf8, LargeUtf8 or Utf8View,
//! and the columns outside the contract ([`REQUIRED`]) may be missing. Times must be Int64.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::schema::{Reasoning, RequestRecord, SentBytes, ServerTimes};
use super::{RequestStatus, columns as col, meta};
use crate::FormatError;

/// What the file's key-value metadata says about the run.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Reads the `bench.*` keys of `kv`; unknown keys and unparsable values are ignored.
    pub fn parse(kv: &[(String, String)]) -> FileMeta {
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
    /// Anything else (index into [`RecordTable::unknown_statuses`]).
    Unknown(u32),
}

/// One record batch's chunk times: its values and, per row, `[start, end)` into them.
type Part = (arrow_buffer::ScalarBuffer<i64>, Vec<(usize, usize)>);

/// Key-value metadata pairs of a Parquet file.
pub type KeyValues = Vec<(String, String)>;

/// Every `chunk_ns` list of the file, row by row, without copying the values.
#[derive(Debug, Default, Clone)]
pub struct ChunkLists {
    /// Per record batch.
    parts: Vec<Part>,
    /// Total number of values.
    pub total: usize,
}

impl ChunkLists {
    fn push(&mut self, a: &ArrayRef) -> Result<(), String> {
        let (values, offsets): (ArrayRef, Vec<usize>) = match a.data_type() {
            DataType::List(_) => {
                let l = a.as_list::<i32>();
                let o = l.value_offsets().iter().map(|&x| x as usize).collect();
                (l.values().clone(), o)
            }
            DataType::LargeList(_) => {
                let l = a.as_list::<i64>();
                let o = l.value_offsets().iter().map(|&x| x as usize).collect();
                (l.values().clone(), o)
            }
            t => return Err(format!("is {t}, expected List<Int64>")),
        };
        let values = values
            .as_primitive_opt::<Int64Type>()
            .ok_or("is not a list of Int64")?;
        // only the values the rows point at matter (a sliced array may hold more)
        let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
        if values.slice(first, last - first).null_count() > 0 {
            return Err("holds null chunk times".into());
        }
        let spans: Vec<(usize, usize)> = (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    (0, 0)
                } else {
                    (offsets[i], offsets[i + 1])
                }
            })
            .collect();
        self.total += spans.iter().map(|(a, b)| b - a).sum::<usize>();
        self.parts.push((values.values().clone(), spans));
        Ok(())
    }

    /// Calls `f(row, chunk times)` for every row in order.
    pub fn for_each(&self, mut f: impl FnMut(usize, &[i64])) {
        let mut row = 0;
        for (values, spans) in &self.parts {
            for &(a, b) in spans {
                f(row, &values[a..b]);
                row += 1;
            }
        }
    }
}

/// requests.parquet, column by column. Vectors have one entry per row, in file order; a column
/// the file lacks (outside the contract) reads as all null.
#[derive(Debug, Default)]
pub struct RecordTable {
    /// The file read.
    pub path: PathBuf,
    /// Its key-value metadata, as stored.
    pub key_values: Vec<(String, String)>,
    /// The `bench.*` keys of it.
    pub meta: FileMeta,
    /// Number of rows.
    pub rows: usize,
    /// `request_id`.
    pub request_id: Vec<Option<u64>>,
    /// `session_id`.
    pub session_id: Vec<Option<u64>>,
    /// `turn`.
    pub turn: Vec<Option<u32>>,
    /// `warmup` (null reads as false).
    pub warmup: Vec<bool>,
    /// `status`.
    pub status: Vec<Status>,
    /// Names of statuses the client does not write, for [`Status::Unknown`].
    pub unknown_statuses: Vec<String>,
    /// `http_status`.
    pub http_status: Vec<Option<u16>>,
    /// `error`.
    pub error: Vec<Option<String>>,
    /// `scheduled_ns`.
    pub scheduled_ns: Vec<Option<i64>>,
    /// `ready_ns`.
    pub ready_ns: Vec<Option<i64>>,
    /// `sent_ns`.
    pub sent_ns: Vec<Option<i64>>,
    /// `connect_ns`.
    pub connect_ns: Vec<Option<i64>>,
    /// `first_byte_ns`.
    pub first_byte_ns: Vec<Option<i64>>,
    /// `first_token_ns`.
    pub first_token_ns: Vec<Option<i64>>,
    /// `end_ns`.
    pub end_ns: Vec<Option<i64>>,
    /// `chunk_ns`.
    pub chunk_ns: ChunkLists,
    /// `prompt_tokens`.
    pub prompt_tokens: Vec<Option<u32>>,
    /// `output_tokens`.
    pub output_tokens: Vec<Option<u32>>,
    /// `usage_prompt_tokens`.
    pub usage_prompt_tokens: Vec<Option<u32>>,
    /// `usage_output_tokens`.
    pub usage_output_tokens: Vec<Option<u32>>,
    /// `max_tokens`.
    pub max_tokens: Vec<Option<u32>>,
    /// `finish_reason`.
    pub finish_reason: Vec<Option<String>>,
    /// `stream` (null or missing reads as false).
    pub stream: Vec<bool>,
    /// `output_text`.
    pub output_text: Vec<Option<String>>,
    /// `retried` (missing in files of earlier versions: false).
    pub retried: Vec<bool>,
    /// `note`.
    pub note: Vec<Option<String>>,
    /// `server_queue_us` (missing in files of earlier versions: null, as for the rest below).
    pub server_queue_us: Vec<Option<u64>>,
    /// `server_prefill_us`.
    pub server_prefill_us: Vec<Option<u64>>,
    /// `server_decode_us`.
    pub server_decode_us: Vec<Option<u64>>,
    /// `server_inference_us`.
    pub server_inference_us: Vec<Option<u64>>,
    /// `cached_prompt_tokens`.
    pub cached_prompt_tokens: Vec<Option<u32>>,
    /// `first_reasoning_ns` (missing in files of earlier versions: null, as for the rest).
    pub first_reasoning_ns: Vec<Option<i64>>,
    /// `first_answer_ns`.
    pub first_answer_ns: Vec<Option<i64>>,
    /// `reasoning_tokens`.
    pub reasoning_tokens: Vec<Option<u32>>,
    /// `usage_reasoning_tokens`.
    pub usage_reasoning_tokens: Vec<Option<u32>>,
    /// `dataset`.
    pub dataset: Vec<Option<String>>,
    /// `fields` (absent in files of earlier versions: null).
    pub fields: Vec<Option<String>>,
    /// `request_bytes`.
    pub request_bytes: Vec<Option<u64>>,
    /// `image_bytes`.
    pub image_bytes: Vec<Option<u64>>,
}

/// The kind of values a column must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any integer type.
    Integer,
    /// Utf8, LargeUtf8 or Utf8View.
    String,
    /// Int64 nanoseconds.
    Time,
    /// A list of Int64 nanoseconds.
    TimeList,
    /// Boolean.
    Boolean,
}

impl Kind {
    fn accepts(self, t: &DataType) -> bool {
        match self {
            Kind::Integer => t.is_integer(),
            Kind::String => matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
            Kind::Time => matches!(t, DataType::Int64),
            Kind::TimeList => match t {
                DataType::List(f) | DataType::LargeList(f) => f.data_type() == &DataType::Int64,
                _ => false,
            },
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

/// The contract: the columns every requests.parquet must have, and what each holds.
pub const REQUIRED: [(&str, Kind); 19] = [
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

/// Columns read when present.
const OPTIONAL: [(&str, Kind); 17] = [
    (col::CONNECT_NS, Kind::Time),
    (col::FINISH_REASON, Kind::String),
    (col::STREAM, Kind::Boolean),
    (col::OUTPUT_TEXT, Kind::String),
    (col::RETRIED, Kind::Boolean),
    (col::NOTE, Kind::String),
    (col::SERVER_QUEUE_US, Kind::Integer),
    (col::SERVER_PREFILL_US, Kind::Integer),
    (col::SERVER_DECODE_US, Kind::Integer),
    (col::SERVER_INFERENCE_US, Kind::Integer),
    (col::CACHED_PROMPT_TOKENS, Kind::Integer),
    (col::FIRST_REASONING_NS, Kind::Time),
    (col::FIRST_ANSWER_NS, Kind::Time),
    (col::REASONING_TOKENS, Kind::Integer),
    (col::USAGE_REASONING_TOKENS, Kind::Integer),
    (col::DATASET, Kind::String),
    (col::FIELDS, Kind::String),
];

fn bad(path: &Path, msg: impl Into<String>) -> FormatError {
    FormatError::content(path, msg)
}

fn ints<T: TryFrom<i128>>(a: &ArrayRef) -> Vec<Option<T>> {
    macro_rules! conv {
        ($t:ty) => {
            a.as_primitive::<$t>()
                .iter()
                .map(|v| v.and_then(|x| T::try_from(x as i128).ok()))
                .collect()
        };
    }
    match a.data_type() {
        DataType::Int8 => conv!(Int8Type),
        DataType::Int16 => conv!(Int16Type),
        DataType::Int32 => conv!(Int32Type),
        DataType::Int64 => conv!(Int64Type),
        DataType::UInt8 => conv!(UInt8Type),
        DataType::UInt16 => conv!(UInt16Type),
        DataType::UInt32 => conv!(UInt32Type),
        DataType::UInt64 => conv!(UInt64Type),
        _ => (0..a.len()).map(|_| None).collect(),
    }
}

fn strings(a: &ArrayRef) -> Vec<Option<String>> {
    let own = |v: Option<&str>| v.map(str::to_string);
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().map(own).collect(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().map(own).collect(),
        DataType::Utf8View => a.as_string_view().iter().map(own).collect(),
        _ => vec![None; a.len()],
    }
}

fn times(a: &ArrayRef) -> Vec<Option<i64>> {
    a.as_primitive::<Int64Type>().iter().collect()
}

fn bools(a: &ArrayRef) -> Vec<bool> {
    a.as_boolean().iter().map(|v| v.unwrap_or(false)).collect()
}

impl RecordTable {
    /// Reads `path`: checks the contract columns (every problem in one message), then reads
    /// every row.
    pub fn read(path: &Path) -> Result<RecordTable, FormatError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(
                path,
                "not found (the client stage writes it; run `bench --stage client` first)",
            ),
            _ => FormatError::io(path, e),
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(path, format!("not a readable Parquet file: {e}")))?;
        let key_values: Vec<(String, String)> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|v| {
                v.iter()
                    .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let schema = builder.schema().clone();
        let mut problems = Vec::new();
        for (name, kind) in REQUIRED.iter().chain(&OPTIONAL) {
            match schema.field_with_name(name) {
                Err(_) if REQUIRED.iter().any(|(n, _)| n == name) => {
                    problems.push(format!("column `{name}` is missing"))
                }
                Err(_) => {}
                Ok(f) if !kind.accepts(f.data_type()) => problems.push(format!(
                    "column `{name}` is {}, expected {}",
                    f.data_type(),
                    kind.expected()
                )),
                Ok(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(bad(
                path,
                format!(
                    "not a requests.parquet of this version: {}",
                    problems.join("; ")
                ),
            ));
        }
        let reader = builder
            .with_batch_size(1 << 16)
            .build()
            .map_err(|e| bad(path, format!("not a readable Parquet file: {e}")))?;
        let mut t = RecordTable {
            path: path.to_path_buf(),
            meta: FileMeta::parse(&key_values),
            key_values,
            ..RecordTable::default()
        };
        for batch in reader {
            let batch = batch.map_err(|e| bad(path, format!("reading the rows: {e}")))?;
            t.append(&batch)
                .map_err(|e| bad(path, format!("column `{}`: {}", e.0, e.1)))?;
        }
        Ok(t)
    }

    fn append(&mut self, b: &RecordBatch) -> Result<(), (&'static str, String)> {
        let n = b.num_rows();
        let get = |name: &str| b.column_by_name(name);
        let or_null = |name: &str| get(name).map(times).unwrap_or_else(|| vec![None; n]);
        let req = |name: &'static str| get(name).ok_or((name, "is missing".to_string()));
        self.rows += n;
        self.request_id.extend(ints(req(col::REQUEST_ID)?));
        self.session_id.extend(ints(req(col::SESSION_ID)?));
        self.turn.extend(ints(req(col::TURN)?));
        self.warmup.extend(bools(req(col::WARMUP)?));
        for s in strings(req(col::STATUS)?) {
            let v = s.as_deref().unwrap_or("null");
            let st = match RequestStatus::parse(v) {
                Some(k) => Status::Known(k),
                None => match self.unknown_statuses.iter().position(|u| u == v) {
                    Some(i) => Status::Unknown(i as u32),
                    None => {
                        self.unknown_statuses.push(v.to_string());
                        Status::Unknown(self.unknown_statuses.len() as u32 - 1)
                    }
                },
            };
            self.status.push(st);
        }
        self.http_status.extend(ints(req(col::HTTP_STATUS)?));
        self.error.extend(strings(req(col::ERROR)?));
        self.scheduled_ns.extend(times(req(col::SCHEDULED_NS)?));
        self.ready_ns.extend(times(req(col::READY_NS)?));
        self.sent_ns.extend(times(req(col::SENT_NS)?));
        self.connect_ns.extend(or_null(col::CONNECT_NS));
        self.first_byte_ns.extend(times(req(col::FIRST_BYTE_NS)?));
        self.first_token_ns.extend(times(req(col::FIRST_TOKEN_NS)?));
        self.end_ns.extend(times(req(col::END_NS)?));
        self.chunk_ns
            .push(req(col::CHUNK_NS)?)
            .map_err(|e| (col::CHUNK_NS, e))?;
        self.prompt_tokens.extend(ints(req(col::PROMPT_TOKENS)?));
        self.output_tokens.extend(ints(req(col::OUTPUT_TOKENS)?));
        self.usage_prompt_tokens
            .extend(ints(req(col::USAGE_PROMPT_TOKENS)?));
        self.usage_output_tokens
            .extend(ints(req(col::USAGE_OUTPUT_TOKENS)?));
        self.max_tokens.extend(ints(req(col::MAX_TOKENS)?));
        let opt_strings = |name| get(name).map(strings).unwrap_or_else(|| vec![None; n]);
        self.finish_reason.extend(opt_strings(col::FINISH_REASON));
        self.stream.extend(
            get(col::STREAM)
                .map(bools)
                .unwrap_or_else(|| vec![false; n]),
        );
        self.output_text.extend(opt_strings(col::OUTPUT_TEXT));
        self.retried.extend(
            get(col::RETRIED)
                .map(bools)
                .unwrap_or_else(|| vec![false; n]),
        );
        self.note.extend(opt_strings(col::NOTE));
        let opt_u64 = |name| get(name).map(ints).unwrap_or_else(|| vec![None; n]);
        self.server_queue_us.extend(opt_u64(col::SERVER_QUEUE_US));
        self.server_prefill_us
            .extend(opt_u64(col::SERVER_PREFILL_US));
        self.server_decode_us.extend(opt_u64(col::SERVER_DECODE_US));
        self.server_inference_us
            .extend(opt_u64(col::SERVER_INFERENCE_US));
        self.cached_prompt_tokens.extend(
            get(col::CACHED_PROMPT_TOKENS)
                .map(ints)
                .unwrap_or_else(|| vec![None; n]),
        );
        self.first_reasoning_ns
            .extend(or_null(col::FIRST_REASONING_NS));
        self.first_answer_ns.extend(or_null(col::FIRST_ANSWER_NS));
        let opt_u32 = |name| get(name).map(ints).unwrap_or_else(|| vec![None; n]);
        self.reasoning_tokens.extend(opt_u32(col::REASONING_TOKENS));
        self.usage_reasoning_tokens
            .extend(opt_u32(col::USAGE_REASONING_TOKENS));
        self.dataset.extend(opt_strings(col::DATASET));
        self.fields.extend(opt_strings(col::FIELDS));
        self.request_bytes.extend(opt_u64(col::REQUEST_BYTES));
        self.image_bytes.extend(opt_u64(col::IMAGE_BYTES));
        Ok(())
    }

    /// The rows, sorted by (warmup, request_id). A row whose status the client does not write,
    /// or that lacks its id or schedule, is an error naming it.
    pub fn into_rows(self) -> Result<Vec<RequestRecord>, FormatError> {
        let mut chunks = Vec::with_capacity(self.rows);
        self.chunk_ns.for_each(|_, c| chunks.push(c.to_vec()));
        let mut rows = Vec::with_capacity(self.rows);
        for (i, chunk_ns) in chunks.into_iter().enumerate() {
            let status = match self.status[i] {
                Status::Known(s) => s,
                Status::Unknown(k) => {
                    return Err(bad(
                        &self.path,
                        format!(
                            "row {i}: unknown status `{}`",
                            self.unknown_statuses[k as usize]
                        ),
                    ));
                }
            };
            let (Some(request_id), Some(scheduled_ns)) = (self.request_id[i], self.scheduled_ns[i])
            else {
                return Err(bad(
                    &self.path,
                    format!("row {i}: no request_id or scheduled_ns"),
                ));
            };
            rows.push(RequestRecord {
                request_id,
                session_id: self.session_id[i],
                turn: self.turn[i],
                warmup: self.warmup[i],
                status,
                http_status: self.http_status[i],
                error: self.error[i].clone(),
                scheduled_ns,
                ready_ns: self.ready_ns[i],
                sent_ns: self.sent_ns[i],
                connect_ns: self.connect_ns[i],
                first_byte_ns: self.first_byte_ns[i],
                first_token_ns: self.first_token_ns[i],
                end_ns: self.end_ns[i],
                chunk_ns,
                prompt_tokens: self.prompt_tokens[i],
                output_tokens: self.output_tokens[i],
                usage_prompt_tokens: self.usage_prompt_tokens[i],
                usage_output_tokens: self.usage_output_tokens[i],
                max_tokens: self.max_tokens[i],
                finish_reason: self.finish_reason[i].clone(),
                stream: self.stream[i],
                output_text: self.output_text[i].clone(),
                retried: self.retried[i],
                note: self.note[i].clone(),
                server: ServerTimes {
                    queue_us: self.server_queue_us[i],
                    prefill_us: self.server_prefill_us[i],
                    decode_us: self.server_decode_us[i],
                    inference_us: self.server_inference_us[i],
                    cached_prompt_tokens: self.cached_prompt_tokens[i],
                },
                reasoning: Reasoning {
                    first_reasoning_ns: self.first_reasoning_ns[i],
                    first_answer_ns: self.first_answer_ns[i],
                    reasoning_tokens: self.reasoning_tokens[i],
                    usage_reasoning_tokens: self.usage_reasoning_tokens[i],
                },
                dataset: self.dataset[i].clone(),
                fields: self.fields[i].clone(),
                bytes: SentBytes {
                    request_bytes: self.request_bytes[i],
                    image_bytes: self.image_bytes[i],
                },
            });
        }
        rows.sort_by_key(|r| (r.warmup, r.request_id));
        Ok(rows)
    }
}

/// requests.parquet as rows sorted by (warmup, request_id), and its key-value metadata.
pub fn read_rows(path: &Path) -> Result<(Vec<RequestRecord>, KeyValues), FormatError> {
    let t = RecordTable::read(path)?;
    let kv = t.key_values.clone();
    Ok((t.into_rows()?, kv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::schema::{schema, to_batch, writer_properties};

    fn row(id: u64, chunks: usize) -> RequestRecord {
        RequestRecord {
            session_id: id.is_multiple_of(2).then_some(id / 2),
            turn: Some(1),
            http_status: Some(200),
            ready_ns: Some(1_100),
            sent_ns: Some(1_200),
            first_byte_ns: Some(1_300),
            first_token_ns: Some(1_400),
            end_ns: Some(2_000),
            chunk_ns: (0..chunks as i64).map(|c| 1_400 + c).collect(),
            prompt_tokens: Some(3),
            output_tokens: Some(chunks as u32),
            max_tokens: Some(8),
            finish_reason: Some("length".into()),
            stream: true,
            error: (id == 3).then(|| "boom".to_string()),
            retried: id.is_multiple_of(7),
            note: id.is_multiple_of(5).then(|| "a note".to_string()),
            server: ServerTimes {
                queue_us: id.is_multiple_of(3).then_some(1_500),
                prefill_us: Some(id * 10),
                decode_us: Some(99_000_000_000),
                inference_us: None,
                cached_prompt_tokens: id.is_multiple_of(4).then_some(16),
            },
            reasoning: Reasoning {
                first_reasoning_ns: id.is_multiple_of(3).then_some(1_400),
                first_answer_ns: Some(1_450),
                reasoning_tokens: id.is_multiple_of(3).then_some(2),
                usage_reasoning_tokens: id.is_multiple_of(6).then_some(2),
            },
            dataset: Some(if id.is_multiple_of(2) { "a" } else { "bb" }.into()),
            bytes: SentBytes {
                request_bytes: Some(100 + id),
                image_bytes: id.is_multiple_of(2).then_some(5_000_000_000),
            },
            ..RequestRecord::new(id, 1_000 + id as i64, RequestStatus::Ok)
        }
    }

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

    #[test]
    fn rows_round_trip_exactly_across_batches() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("requests.parquet");
        let rows: Vec<RequestRecord> = (0..70_000).map(|i| row(i, (i % 5) as usize)).collect();
        let f = File::create(&path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(f, schema(), Some(writer_properties("test")))
                .unwrap();
        w.write(&to_batch(&rows[..40_000], 0).unwrap()).unwrap();
        w.write(&to_batch(&rows[40_000..], 0).unwrap()).unwrap();
        w.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
            meta::COMPLETE.to_string(),
            "true".to_string(),
        ));
        w.close().unwrap();
        let t = RecordTable::read(&path).unwrap();
        assert_eq!(t.meta.complete, Some(true));
        assert_eq!(
            t.chunk_ns.total,
            rows.iter().map(|r| r.chunk_ns.len()).sum::<usize>()
        );
        let (back, _) = read_rows(&path).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn missing_and_mistyped_columns_are_listed_together() {
        use arrow_array::StringArray;
        use arrow_schema::{Field, Schema};
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("requests.parquet");
        let s = Arc::new(Schema::new(vec![
            Field::new("request_id", DataType::Int32, false),
            Field::new("sent_ns", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(arrow_array::Int32Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["12"])),
            ],
        )
        .unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), s, None).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let msg = RecordTable::read(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("column `sent_ns` is Utf8, expected Int64"),
            "{msg}"
        );
        assert!(msg.contains("column `end_ns` is missing"), "{msg}");
        assert!(
            !msg.contains("request_id"),
            "any integer type is accepted: {msg}"
        );
        let missing = RecordTable::read(&d.path().join("nope.parquet")).unwrap_err();
        assert!(missing.to_string().contains("not found"), "{missing}");
    }
}

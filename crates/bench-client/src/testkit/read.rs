//! requests.parquet read back into plain rows (tests, benchmarks, the summarize example).

use std::path::Path;

/// One row of requests.parquet, read back.
#[derive(Debug, Clone, Default)]
pub struct RecordRow {
    pub request_id: u64,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
    pub warmup: bool,
    pub status: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub scheduled_ns: i64,
    pub ready_ns: Option<i64>,
    pub sent_ns: Option<i64>,
    pub connect_ns: Option<i64>,
    pub first_byte_ns: Option<i64>,
    pub first_token_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub chunk_ns: Vec<i64>,
    pub prompt_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub usage_prompt_tokens: Option<u32>,
    pub usage_output_tokens: Option<u32>,
    pub max_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    pub stream: bool,
    pub output_text: Option<String>,
}

/// Key-value metadata pairs.
pub type KeyValues = Vec<(String, String)>;

/// requests.parquet read back: rows sorted by (warmup, request_id), and the key-value metadata.
pub fn read_records(path: &Path) -> Result<(Vec<RecordRow>, KeyValues), String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, UInt16Type, UInt32Type, UInt64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let kv: Vec<(String, String)> = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|v| {
            v.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let reader = b.build().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let c = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("column {name}"))
                .clone()
        };
        let u64c = c("request_id");
        let u64c = u64c.as_primitive::<UInt64Type>();
        let sess = c("session_id");
        let sess = sess.as_primitive::<UInt64Type>();
        let turn = c("turn");
        let turn = turn.as_primitive::<UInt32Type>();
        let warm = c("warmup");
        let warm = warm.as_boolean();
        let status = c("status");
        let status = status.as_string::<i32>();
        let http = c("http_status");
        let http = http.as_primitive::<UInt16Type>();
        let err = c("error");
        let err = err.as_string::<i32>();
        let fin = c("finish_reason");
        let fin = fin.as_string::<i32>();
        let text = c("output_text");
        let text = text.as_string::<i32>();
        let stream = c("stream");
        let stream = stream.as_boolean();
        let chunks = c("chunk_ns");
        let chunks = chunks.as_list::<i32>();
        let times: Vec<_> = [
            "scheduled_ns",
            "ready_ns",
            "sent_ns",
            "connect_ns",
            "first_byte_ns",
            "first_token_ns",
            "end_ns",
        ]
        .iter()
        .map(|n| c(n).as_primitive::<Int64Type>().clone())
        .collect();
        let u32s: Vec<_> = [
            "prompt_tokens",
            "output_tokens",
            "usage_prompt_tokens",
            "usage_output_tokens",
            "max_tokens",
        ]
        .iter()
        .map(|n| c(n).as_primitive::<UInt32Type>().clone())
        .collect();
        let opt_i = |a: &arrow::array::Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        let opt_u = |a: &arrow::array::UInt32Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        let opt_s = |a: &arrow::array::StringArray, i: usize| {
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        for i in 0..batch.num_rows() {
            let ch = chunks.value(i);
            let ch = ch.as_primitive::<Int64Type>();
            rows.push(RecordRow {
                request_id: u64c.value(i),
                session_id: (!sess.is_null(i)).then(|| sess.value(i)),
                turn: (!turn.is_null(i)).then(|| turn.value(i)),
                warmup: warm.value(i),
                status: status.value(i).to_string(),
                http_status: (!http.is_null(i)).then(|| http.value(i)),
                error: opt_s(err, i),
                scheduled_ns: times[0].value(i),
                ready_ns: opt_i(&times[1], i),
                sent_ns: opt_i(&times[2], i),
                connect_ns: opt_i(&times[3], i),
                first_byte_ns: opt_i(&times[4], i),
                first_token_ns: opt_i(&times[5], i),
                end_ns: opt_i(&times[6], i),
                chunk_ns: ch.values().to_vec(),
                prompt_tokens: opt_u(&u32s[0], i),
                output_tokens: opt_u(&u32s[1], i),
                usage_prompt_tokens: opt_u(&u32s[2], i),
                usage_output_tokens: opt_u(&u32s[3], i),
                max_tokens: opt_u(&u32s[4], i),
                finish_reason: opt_s(fin, i),
                stream: stream.value(i),
                output_text: opt_s(text, i),
            });
        }
    }
    rows.sort_by_key(|r| (r.warmup, r.request_id));
    Ok((rows, kv))
}

//! Test and benchmark support: requests.parquet files with exactly the client's schema and
//! encoding (bench-types' writer), and realistic synthetic runs.
#![allow(dead_code)]

pub mod check;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use bench_types::RequestStatus;
use bench_types::record::{RequestRecord, columns as col, meta, schema};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One row of requests.parquet.
#[derive(Debug, Clone)]
pub struct Row {
    pub request_id: u64,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
    pub warmup: bool,
    pub status: &'static str,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub scheduled: i64,
    pub ready: Option<i64>,
    pub sent: Option<i64>,
    pub first_byte: Option<i64>,
    pub first_token: Option<i64>,
    pub end: Option<i64>,
    pub chunks: Vec<i64>,
    pub prompt_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub usage_prompt: Option<u32>,
    pub usage_output: Option<u32>,
    pub max_tokens: Option<u32>,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            request_id: 0,
            session_id: None,
            turn: None,
            warmup: false,
            status: "ok",
            http_status: Some(200),
            error: None,
            scheduled: 0,
            ready: None,
            sent: None,
            first_byte: None,
            first_token: None,
            end: None,
            chunks: Vec::new(),
            prompt_tokens: None,
            output_tokens: None,
            usage_prompt: None,
            usage_output: None,
            max_tokens: None,
        }
    }
}

/// 1 ms in ns.
pub const MS: i64 = 1_000_000;

/// `rows` as a batch of the client's schema (bench-types'), with each row's status string as
/// given (a status the client never writes included).
fn batch(rows: &[Row]) -> RecordBatch {
    let records: Vec<RequestRecord> = rows
        .iter()
        .map(|r| RequestRecord {
            session_id: r.session_id,
            turn: r.turn,
            warmup: r.warmup,
            http_status: r.http_status,
            error: r.error.clone(),
            ready_ns: r.ready,
            sent_ns: r.sent,
            first_byte_ns: r.first_byte,
            first_token_ns: r.first_token,
            end_ns: r.end,
            chunk_ns: r.chunks.clone(),
            prompt_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            usage_prompt_tokens: r.usage_prompt,
            usage_output_tokens: r.usage_output,
            max_tokens: r.max_tokens,
            finish_reason: r.end.map(|_| "stop".to_string()),
            stream: true,
            ..RequestRecord::new(r.request_id, r.scheduled, RequestStatus::Ok)
        })
        .collect();
    let b = schema::to_batch(&records, 0).expect("valid batch");
    let status: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.status)));
    let i = b.schema().index_of(col::STATUS).expect("status column");
    let mut cols = b.columns().to_vec();
    cols[i] = status;
    RecordBatch::try_new(b.schema(), cols).expect("valid batch")
}

/// Key-value metadata like the client's.
pub fn kv(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
        .collect()
}

/// An incremental writer with the client's settings (zstd, delta-encoded times).
pub struct RowsWriter {
    w: ArrowWriter<File>,
}

impl RowsWriter {
    pub fn create(path: &Path, kv: Vec<KeyValue>) -> RowsWriter {
        let file = File::create(path).expect("create parquet");
        let props = schema::writer_properties("bench-analysis tests");
        let mut w = ArrowWriter::try_new(file, schema::schema(), Some(props)).expect("writer");
        for k in kv {
            w.append_key_value_metadata(k);
        }
        RowsWriter { w }
    }

    /// Writes `rows` as one row group.
    pub fn write(&mut self, rows: &[Row]) {
        self.w.write(&batch(rows)).expect("write batch");
        self.w.flush().expect("flush");
    }

    pub fn finish(self) {
        self.w.close().expect("close parquet");
    }
}

/// Writes `rows` to `<dir>/requests.parquet` with metadata `kv`.
pub fn write_run(dir: &Path, rows: &[Row], kv: Vec<KeyValue>) {
    let mut w = RowsWriter::create(&dir.join("requests.parquet"), kv);
    w.write(rows);
    w.finish();
}

/// Standard metadata for a complete open-loop run of `n` requests.
pub fn open_loop_kv(n: u64) -> Vec<KeyValue> {
    kv(&[
        (meta::ANCHOR_UNIX_NS, "1700000000000000000"),
        (meta::WORKLOAD_REQUESTS, &n.to_string()),
        (meta::MODE, r#"{"mode":"open_loop","concurrency":null}"#),
        (meta::TIME_SCALE, "1"),
    ])
}

/// Realistic synthetic rows: Poisson arrivals at `rate` req/s, queueing-dependent TTFT, output
/// lengths 1..400 streamed in chunks of 1-3 tokens with jittered gaps, about 1% warmup, 2% http
/// errors, 1% timeouts, 0.5% transport errors, a few cancelled and not_sent at the end, usage
/// missing on some rows, a few sessions with turns.
pub fn realistic_rows(n: usize, rate: f64, seed: u64, first_id: u64, start_ns: i64) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = start_ns as f64;
    let mut rows = Vec::with_capacity(n);
    for k in 0..n {
        let u: f64 = rng.random_range(1e-12..1.0);
        t += -u.ln() / rate * 1e9;
        let scheduled = t as i64;
        let lag = rng.random_range(5_000..400_000i64);
        let ready = scheduled + rng.random_range(1_000..20_000i64);
        let sent = scheduled + lag;
        let prompt: u32 = rng.random_range(16..4096);
        let want: u32 = rng.random_range(1..400);
        let mut row = Row {
            request_id: first_id + k as u64,
            scheduled,
            ready: Some(ready.min(sent)),
            prompt_tokens: Some(prompt),
            max_tokens: Some(want),
            ..Row::default()
        };
        if rng.random_range(0..20) == 0 {
            row.session_id = Some(first_id + k as u64 / 4);
            row.turn = Some(rng.random_range(0..6));
        }
        let roll: f64 = rng.random_range(0.0..1.0);
        row.warmup = k < n / 100;
        if k + 3 >= n && n > 10 {
            row.status = "not_sent";
            row.http_status = None;
            row.ready = None;
            row.error = Some("run stopped".into());
            rows.push(row);
            continue;
        }
        row.sent = Some(sent);
        let ttfb = rng.random_range(2 * MS..60 * MS);
        row.first_byte = Some(sent + ttfb);
        if roll < 0.02 {
            row.status = "http_error";
            row.http_status = Some(if rng.random_range(0..2) == 0 {
                429
            } else {
                500
            });
            row.error = Some(format!("HTTP {}: server said no", row.http_status.unwrap()));
            row.end = Some(sent + ttfb + MS);
            rows.push(row);
            continue;
        }
        if roll < 0.025 {
            row.status = "transport_error";
            row.http_status = None;
            row.error = Some("connection reset by peer".into());
            row.end = Some(sent + rng.random_range(MS..500 * MS));
            rows.push(row);
            continue;
        }
        let ttft = ttfb + rng.random_range(0..300 * MS) + (prompt as i64) * 20_000;
        let first = sent + ttft;
        row.first_token = Some(first);
        let mut c = first;
        let mut produced = 0u32;
        let mut chunks = vec![first];
        produced += rng.random_range(1..3u32);
        while produced < want {
            c += rng.random_range(5 * MS..40 * MS)
                + if rng.random_range(0..200) == 0 {
                    rng.random_range(100 * MS..900 * MS)
                } else {
                    0
                };
            chunks.push(c);
            produced += rng.random_range(1..3u32);
        }
        let produced = produced.min(want);
        let end = c + rng.random_range(10_000..2 * MS);
        if roll < 0.035 {
            row.status = "timeout";
            row.http_status = Some(200);
            row.error = Some("timed out after 30 s".into());
            chunks.truncate(chunks.len() / 2 + 1);
            row.end = Some(*chunks.last().unwrap() + 30 * MS);
            row.chunks = chunks;
            rows.push(row);
            continue;
        }
        if k + 6 >= n && n > 10 {
            row.status = "cancelled";
            row.error = Some("cancelled by Ctrl-C".into());
            chunks.truncate(2);
            row.end = Some(*chunks.last().unwrap() + MS);
            row.chunks = chunks;
            rows.push(row);
            continue;
        }
        row.end = Some(end);
        row.chunks = chunks;
        row.output_tokens = Some(produced);
        if rng.random_range(0..10) != 0 {
            row.usage_prompt = Some(prompt);
            // the server's count sometimes differs by one from the client's
            row.usage_output = Some(if rng.random_range(0..25) == 0 {
                produced + 1
            } else {
                produced
            });
        }
        rows.push(row);
    }
    rows
}

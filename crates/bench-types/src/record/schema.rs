//! The Arrow schema of requests.parquet, the row type the client writes, and the conversion of
//! rows to a record batch. docs/RECORDS.md lists the same columns in the same order.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::RequestStatus;
use super::columns as col;

/// One row of requests.parquet. Instants are ns offsets; [`to_batch`] shifts them by the
/// difference between the clock they were taken on and the run's anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `request_id`.
    pub request_id: u64,
    /// `session_id`.
    pub session_id: Option<u64>,
    /// `turn`.
    pub turn: Option<u32>,
    /// `warmup`.
    pub warmup: bool,
    /// `status`.
    pub status: RequestStatus,
    /// `http_status`.
    pub http_status: Option<u16>,
    /// `error`.
    pub error: Option<String>,
    /// `scheduled_ns`.
    pub scheduled_ns: i64,
    /// `ready_ns`.
    pub ready_ns: Option<i64>,
    /// `sent_ns`.
    pub sent_ns: Option<i64>,
    /// `connect_ns`.
    pub connect_ns: Option<i64>,
    /// `first_byte_ns`.
    pub first_byte_ns: Option<i64>,
    /// `first_token_ns`.
    pub first_token_ns: Option<i64>,
    /// `end_ns`.
    pub end_ns: Option<i64>,
    /// `chunk_ns`.
    pub chunk_ns: Vec<i64>,
    /// `prompt_tokens`.
    pub prompt_tokens: Option<u32>,
    /// `output_tokens`.
    pub output_tokens: Option<u32>,
    /// `usage_prompt_tokens`.
    pub usage_prompt_tokens: Option<u32>,
    /// `usage_output_tokens`.
    pub usage_output_tokens: Option<u32>,
    /// `max_tokens`.
    pub max_tokens: Option<u32>,
    /// `finish_reason`.
    pub finish_reason: Option<String>,
    /// `stream`.
    pub stream: bool,
    /// `output_text`.
    pub output_text: Option<String>,
    /// `retried`.
    pub retried: bool,
    /// `note`.
    pub note: Option<String>,
    /// The server's own timings of this request, as it reported them.
    pub server: ServerTimes,
    /// Reasoning and answer, apart.
    pub reasoning: Reasoning,
    /// `dataset`.
    pub dataset: Option<String>,
    /// `fields`: the request's scalar workload fields as a JSON object.
    pub fields: Option<String>,
    /// `request_bytes`, `image_bytes`.
    pub bytes: SentBytes,
}

/// What a request carried to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentBytes {
    /// `request_bytes`.
    pub request_bytes: Option<u64>,
    /// `image_bytes`.
    pub image_bytes: Option<u64>,
}

/// A reasoning model's two phases: thinking, then answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reasoning {
    /// `first_reasoning_ns`.
    pub first_reasoning_ns: Option<i64>,
    /// `first_answer_ns`.
    pub first_answer_ns: Option<i64>,
    /// `reasoning_tokens`.
    pub reasoning_tokens: Option<u32>,
    /// `usage_reasoning_tokens`.
    pub usage_reasoning_tokens: Option<u32>,
}

/// What a server reported about a request's time inside it (all optional: each engine reports
/// some, most report none). µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTimes {
    /// `server_queue_us`.
    pub queue_us: Option<u64>,
    /// `server_prefill_us`.
    pub prefill_us: Option<u64>,
    /// `server_decode_us`.
    pub decode_us: Option<u64>,
    /// `server_inference_us`.
    pub inference_us: Option<u64>,
    /// `cached_prompt_tokens`.
    pub cached_prompt_tokens: Option<u32>,
}

impl ServerTimes {
    /// Whether the server reported anything.
    pub fn any(&self) -> bool {
        *self != ServerTimes::default()
    }
}

impl RequestRecord {
    /// A row with nothing but its id, schedule and status.
    pub fn new(request_id: u64, scheduled_ns: i64, status: RequestStatus) -> Self {
        RequestRecord {
            request_id,
            session_id: None,
            turn: None,
            warmup: false,
            status,
            http_status: None,
            error: None,
            scheduled_ns,
            ready_ns: None,
            sent_ns: None,
            connect_ns: None,
            first_byte_ns: None,
            first_token_ns: None,
            end_ns: None,
            chunk_ns: Vec::new(),
            prompt_tokens: None,
            output_tokens: None,
            usage_prompt_tokens: None,
            usage_output_tokens: None,
            max_tokens: None,
            finish_reason: None,
            stream: false,
            output_text: None,
            retried: false,
            note: None,
            server: ServerTimes::default(),
            reasoning: Reasoning::default(),
            dataset: None,
            fields: None,
            bytes: SentBytes::default(),
        }
    }
}

fn chunk_item() -> Field {
    Field::new("item", DataType::Int64, false)
}

/// The schema, in column order.
pub fn schema() -> SchemaRef {
    let ns = |name: &str, nullable| Field::new(name, DataType::Int64, nullable);
    Arc::new(Schema::new(vec![
        Field::new(col::REQUEST_ID, DataType::UInt64, false),
        Field::new(col::SESSION_ID, DataType::UInt64, true),
        Field::new(col::TURN, DataType::UInt32, true),
        Field::new(col::WARMUP, DataType::Boolean, false),
        Field::new(col::STATUS, DataType::Utf8, false),
        Field::new(col::HTTP_STATUS, DataType::UInt16, true),
        Field::new(col::ERROR, DataType::Utf8, true),
        ns(col::SCHEDULED_NS, false),
        ns(col::READY_NS, true),
        ns(col::SENT_NS, true),
        ns(col::CONNECT_NS, true),
        ns(col::FIRST_BYTE_NS, true),
        ns(col::FIRST_TOKEN_NS, true),
        ns(col::END_NS, true),
        Field::new(col::CHUNK_NS, DataType::List(Arc::new(chunk_item())), false),
        Field::new(col::PROMPT_TOKENS, DataType::UInt32, true),
        Field::new(col::OUTPUT_TOKENS, DataType::UInt32, true),
        Field::new(col::USAGE_PROMPT_TOKENS, DataType::UInt32, true),
        Field::new(col::USAGE_OUTPUT_TOKENS, DataType::UInt32, true),
        Field::new(col::MAX_TOKENS, DataType::UInt32, true),
        Field::new(col::FINISH_REASON, DataType::Utf8, true),
        Field::new(col::STREAM, DataType::Boolean, false),
        Field::new(col::OUTPUT_TEXT, DataType::Utf8, true),
        Field::new(col::RETRIED, DataType::Boolean, false),
        Field::new(col::NOTE, DataType::Utf8, true),
        Field::new(col::SERVER_QUEUE_US, DataType::UInt64, true),
        Field::new(col::SERVER_PREFILL_US, DataType::UInt64, true),
        Field::new(col::SERVER_DECODE_US, DataType::UInt64, true),
        Field::new(col::SERVER_INFERENCE_US, DataType::UInt64, true),
        Field::new(col::CACHED_PROMPT_TOKENS, DataType::UInt32, true),
        ns(col::FIRST_REASONING_NS, true),
        ns(col::FIRST_ANSWER_NS, true),
        Field::new(col::REASONING_TOKENS, DataType::UInt32, true),
        Field::new(col::USAGE_REASONING_TOKENS, DataType::UInt32, true),
        Field::new(col::DATASET, DataType::Utf8, true),
        Field::new(col::FIELDS, DataType::Utf8, true),
        Field::new(col::REQUEST_BYTES, DataType::UInt64, true),
        Field::new(col::IMAGE_BYTES, DataType::UInt64, true),
    ]))
}

/// Names of the Int64 time columns (delta-encoded in Parquet).
pub const TIME_COLUMNS: [&str; 10] = [
    col::SCHEDULED_NS,
    col::READY_NS,
    col::SENT_NS,
    col::CONNECT_NS,
    col::FIRST_BYTE_NS,
    col::FIRST_TOKEN_NS,
    col::END_NS,
    col::CHUNK_NS,
    col::FIRST_REASONING_NS,
    col::FIRST_ANSWER_NS,
];

/// How requests.parquet is encoded: zstd level 3, the time columns delta-encoded without a
/// dictionary (increasing nanosecond stamps compress to a few bits each), chunk statistics only.
pub fn writer_properties(created_by: &str) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_max_row_group_row_count(None)
        .set_created_by(created_by.to_string());
    for c in TIME_COLUMNS {
        let p = if c == col::CHUNK_NS {
            ColumnPath::new(vec![c.into(), "list".into(), "item".into()])
        } else {
            ColumnPath::from(c)
        };
        props = props
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::DELTA_BINARY_PACKED);
    }
    props.build()
}

/// `rows` as a batch of [`schema`], every instant shifted by `-shift`.
pub fn to_batch(rows: &[RequestRecord], shift: i64) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut session = UInt64Builder::with_capacity(n);
    let mut turn = UInt32Builder::with_capacity(n);
    let mut warmup = BooleanBuilder::with_capacity(n);
    let mut status = StringBuilder::with_capacity(n, n * 4);
    let mut http = UInt16Builder::with_capacity(n);
    let mut error = StringBuilder::new();
    let mut times: Vec<Int64Builder> = (0..7).map(|_| Int64Builder::with_capacity(n)).collect();
    let total_chunks: usize = rows.iter().map(|r| r.chunk_ns.len()).sum();
    let mut chunks =
        ListBuilder::new(Int64Builder::with_capacity(total_chunks)).with_field(chunk_item());
    let mut u32s: Vec<UInt32Builder> = (0..5).map(|_| UInt32Builder::with_capacity(n)).collect();
    let mut finish = StringBuilder::new();
    let mut stream = BooleanBuilder::with_capacity(n);
    let mut text = StringBuilder::new();
    let mut retried = BooleanBuilder::with_capacity(n);
    let mut note = StringBuilder::new();
    let mut server_us: Vec<UInt64Builder> =
        (0..4).map(|_| UInt64Builder::with_capacity(n)).collect();
    let mut cached = UInt32Builder::with_capacity(n);
    let mut r_times: Vec<Int64Builder> = (0..2).map(|_| Int64Builder::with_capacity(n)).collect();
    let mut r_counts: Vec<UInt32Builder> =
        (0..2).map(|_| UInt32Builder::with_capacity(n)).collect();
    let mut dataset = StringBuilder::new();
    let mut fields = StringBuilder::new();
    let mut sent_bytes: Vec<UInt64Builder> =
        (0..2).map(|_| UInt64Builder::with_capacity(n)).collect();
    let s = |v: Option<i64>| v.map(|t| t - shift);
    for r in rows {
        id.append_value(r.request_id);
        session.append_option(r.session_id);
        turn.append_option(r.turn);
        warmup.append_value(r.warmup);
        status.append_value(r.status.as_str());
        http.append_option(r.http_status);
        error.append_option(r.error.as_deref());
        times[0].append_value(r.scheduled_ns - shift);
        for (b, v) in times[1..].iter_mut().zip([
            r.ready_ns,
            r.sent_ns,
            r.connect_ns,
            r.first_byte_ns,
            r.first_token_ns,
            r.end_ns,
        ]) {
            b.append_option(s(v));
        }
        chunks
            .values()
            .extend(r.chunk_ns.iter().map(|&c| Some(c - shift)));
        chunks.append(true);
        for (b, v) in u32s.iter_mut().zip([
            r.prompt_tokens,
            r.output_tokens,
            r.usage_prompt_tokens,
            r.usage_output_tokens,
            r.max_tokens,
        ]) {
            b.append_option(v);
        }
        finish.append_option(r.finish_reason.as_deref());
        stream.append_value(r.stream);
        text.append_option(r.output_text.as_deref());
        retried.append_value(r.retried);
        note.append_option(r.note.as_deref());
        let t = &r.server;
        for (b, v) in
            server_us
                .iter_mut()
                .zip([t.queue_us, t.prefill_us, t.decode_us, t.inference_us])
        {
            b.append_option(v);
        }
        cached.append_option(t.cached_prompt_tokens);
        let q = &r.reasoning;
        for (b, v) in r_times
            .iter_mut()
            .zip([q.first_reasoning_ns, q.first_answer_ns])
        {
            b.append_option(s(v));
        }
        for (b, v) in r_counts
            .iter_mut()
            .zip([q.reasoning_tokens, q.usage_reasoning_tokens])
        {
            b.append_option(v);
        }
        dataset.append_option(r.dataset.as_deref());
        fields.append_option(r.fields.as_deref());
        sent_bytes[0].append_option(r.bytes.request_bytes);
        sent_bytes[1].append_option(r.bytes.image_bytes);
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(session.finish()),
        Arc::new(turn.finish()),
        Arc::new(warmup.finish()),
        Arc::new(status.finish()),
        Arc::new(http.finish()),
        Arc::new(error.finish()),
    ];
    cols.extend(
        times
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.push(Arc::new(chunks.finish()));
    cols.extend(
        u32s.into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.push(Arc::new(finish.finish()));
    cols.push(Arc::new(stream.finish()));
    cols.push(Arc::new(text.finish()));
    cols.push(Arc::new(retried.finish()));
    cols.push(Arc::new(note.finish()));
    cols.extend(
        server_us
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.push(Arc::new(cached.finish()));
    cols.extend(
        r_times
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.extend(
        r_counts
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.push(Arc::new(dataset.finish()));
    cols.push(Arc::new(fields.finish()));
    cols.extend(
        sent_bytes
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    RecordBatch::try_new(schema(), cols)
}

//! The Arrow schema of requests.parquet and the conversion of rows to a record batch.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bench_types::RequestStatus;
use bench_types::record::columns as col;

/// One finished row, instants still relative to the run's base instant.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u64,
    pub session: Option<u64>,
    pub turn: Option<u32>,
    pub warmup: bool,
    pub status: RequestStatus,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub scheduled: i64,
    pub ready: Option<i64>,
    pub sent: Option<i64>,
    pub connected: Option<i64>,
    pub first_byte: Option<i64>,
    pub first_token: Option<i64>,
    pub end: Option<i64>,
    pub chunks: Vec<i64>,
    pub prompt_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub usage_prompt: Option<u32>,
    pub usage_output: Option<u32>,
    pub max_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    pub stream: bool,
    pub output_text: Option<String>,
}

fn chunk_item() -> Field {
    Field::new("item", DataType::Int64, false)
}

/// The schema, in column order (docs/RECORDS.md lists the same).
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
    ]))
}

/// Names of the Int64 time columns (delta-encoded in Parquet).
pub const TIME_COLUMNS: [&str; 8] = [
    col::SCHEDULED_NS,
    col::READY_NS,
    col::SENT_NS,
    col::CONNECT_NS,
    col::FIRST_BYTE_NS,
    col::FIRST_TOKEN_NS,
    col::END_NS,
    col::CHUNK_NS,
];

/// `rows` as a batch, every instant shifted by `-shift` (base-relative -> anchor-relative).
pub fn to_batch(
    schema: &SchemaRef,
    rows: &[Row],
    shift: i64,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let mut id = UInt64Builder::with_capacity(n);
    let mut session = UInt64Builder::with_capacity(n);
    let mut turn = UInt32Builder::with_capacity(n);
    let mut warmup = BooleanBuilder::with_capacity(n);
    let mut status = StringBuilder::with_capacity(n, n * 4);
    let mut http = UInt16Builder::with_capacity(n);
    let mut error = StringBuilder::new();
    let mut times: Vec<Int64Builder> = (0..7).map(|_| Int64Builder::with_capacity(n)).collect();
    let total_chunks: usize = rows.iter().map(|r| r.chunks.len()).sum();
    let mut chunks =
        ListBuilder::new(Int64Builder::with_capacity(total_chunks)).with_field(chunk_item());
    let mut u32s: Vec<UInt32Builder> = (0..5).map(|_| UInt32Builder::with_capacity(n)).collect();
    let mut finish = StringBuilder::new();
    let mut stream = BooleanBuilder::with_capacity(n);
    let mut text = StringBuilder::new();
    let s = |v: Option<i64>| v.map(|t| t - shift);
    for r in rows {
        id.append_value(r.id);
        session.append_option(r.session);
        turn.append_option(r.turn);
        warmup.append_value(r.warmup);
        status.append_value(r.status.as_str());
        http.append_option(r.http_status);
        error.append_option(r.error.as_deref());
        times[0].append_value(r.scheduled - shift);
        for (b, v) in times[1..].iter_mut().zip([
            r.ready,
            r.sent,
            r.connected,
            r.first_byte,
            r.first_token,
            r.end,
        ]) {
            b.append_option(s(v));
        }
        chunks
            .values()
            .extend(r.chunks.iter().map(|&c| Some(c - shift)));
        chunks.append(true);
        for (b, v) in u32s.iter_mut().zip([
            r.prompt_tokens,
            r.output_tokens,
            r.usage_prompt,
            r.usage_output,
            r.max_tokens,
        ]) {
            b.append_option(v);
        }
        finish.append_option(r.finish_reason.as_deref());
        stream.append_value(r.stream);
        text.append_option(r.output_text.as_deref());
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
    let mut times = times
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    cols.extend(times.by_ref().take(7));
    cols.insert(cols.len(), Arc::new(chunks.finish()));
    cols.extend(
        u32s.into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    cols.push(Arc::new(finish.finish()));
    cols.push(Arc::new(stream.finish()));
    cols.push(Arc::new(text.finish()));
    RecordBatch::try_new(schema.clone(), cols)
}

//! What one request ended with, as the dispatcher hands it to the record writer.

use bench_types::RequestStatus;
use bytes::Bytes;

/// One request's raw result. Instants are ns from the run's base instant (taken before the
/// warmup); the writer shifts them to the anchor.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Plan index of the workload request (for warmup rows: of the request copied).
    pub idx: u32,
    /// `request_id` column.
    pub id: u64,
    /// A warmup row.
    pub warmup: bool,
    /// Session and turn.
    pub session: Option<u64>,
    /// Turn within the session.
    pub turn: Option<u32>,
    /// How it ended.
    pub status: RequestStatus,
    /// HTTP status, when a head arrived.
    pub http_status: Option<u16>,
    /// Error message for any status but ok.
    pub error: Option<String>,
    /// Scheduled send time.
    pub scheduled: i64,
    /// Released by the schedule.
    pub ready: Option<i64>,
    /// Handed to the transport.
    pub sent: Option<i64>,
    /// Bytes of the request body as sent.
    pub request_bytes: Option<u64>,
    /// A new connection was established.
    pub connected: Option<i64>,
    /// First response byte.
    pub first_byte: Option<i64>,
    /// First content chunk.
    pub first_token: Option<i64>,
    /// End of the response (or of the attempt).
    pub end: Option<i64>,
    /// Every content chunk.
    pub chunks: Vec<i64>,
    /// First reasoning chunk.
    pub first_reasoning: Option<i64>,
    /// First answer chunk.
    pub first_answer: Option<i64>,
    /// Server usage: reasoning tokens.
    pub usage_reasoning: Option<u32>,
    /// Generated answer text.
    pub content: String,
    /// Generated reasoning text.
    pub reasoning: String,
    /// Server usage.
    pub usage_prompt: Option<u32>,
    /// Server usage.
    pub usage_output: Option<u32>,
    /// `max_tokens` asked.
    pub max_tokens: Option<u32>,
    /// The server's finish reason.
    pub finish_reason: Option<String>,
    /// Streamed.
    pub stream: bool,
    /// Completed session turns whose text went into this request's prompt.
    pub history_turns: u32,
    /// The body sent (kept only for the AIBrix output file).
    pub body: Option<Bytes>,
    /// Sent again on a fresh connection after a kept-alive one turned out closed.
    pub retried: bool,
    /// Remarks for the `note` column.
    pub notes: Vec<String>,
    /// The server's own timings, when it reported them.
    pub server: bench_types::record::ServerTimes,
}

impl Outcome {
    /// An outcome with nothing but ids and schedule, in `status`.
    pub fn new(idx: u32, id: u64, scheduled: i64, status: RequestStatus, stream: bool) -> Self {
        Outcome {
            idx,
            id,
            warmup: false,
            session: None,
            turn: None,
            status,
            http_status: None,
            error: None,
            scheduled,
            ready: None,
            sent: None,
            request_bytes: None,
            connected: None,
            first_byte: None,
            first_token: None,
            end: None,
            chunks: Vec::new(),
            first_reasoning: None,
            first_answer: None,
            usage_reasoning: None,
            content: String::new(),
            reasoning: String::new(),
            usage_prompt: None,
            usage_output: None,
            max_tokens: None,
            finish_reason: None,
            stream,
            history_turns: 0,
            body: None,
            retried: false,
            notes: Vec::new(),
            server: Default::default(),
        }
    }
}

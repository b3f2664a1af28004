//! `requests.parquet`: one row per workload request, written by the client, read by analysis.
//!
//! All times are nanosecond offsets (Int64) from one monotonic anchor taken when the run
//! starts; the wall-clock time of that anchor is stored in the file's key-value metadata under
//! [`meta::ANCHOR_UNIX_NS`]. The column list and meanings are documented in docs/RECORDS.md;
//! [`columns`] holds the names both sides use, [`schema`] the Arrow schema and the row type the
//! client writes, [`read`] the reader analysis and the tests use.

pub mod read;
pub mod schema;

use serde::{Deserialize, Serialize};

pub use read::{ChunkLists, FileMeta, RecordTable, Status};
pub use schema::{Reasoning, RequestRecord, SentBytes, ServerTimes};

/// How a request ended. Every workload request ends as exactly one row with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Completed with a 2xx response and a well-formed body/stream.
    Ok = 0,
    /// The server answered with a non-2xx status.
    HttpError = 1,
    /// No complete answer within the request timeout.
    Timeout = 2,
    /// Connection refused/reset, malformed stream, or any other transport or protocol failure.
    TransportError = 3,
    /// Sent, but stopped by the user (Ctrl-C) or by the run's duration limit.
    Cancelled = 4,
    /// Never sent (run stopped before its time).
    NotSent = 5,
}

impl RequestStatus {
    /// All statuses, in report order.
    pub const ALL: [RequestStatus; 6] = [
        RequestStatus::Ok,
        RequestStatus::HttpError,
        RequestStatus::Timeout,
        RequestStatus::TransportError,
        RequestStatus::Cancelled,
        RequestStatus::NotSent,
    ];
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Ok => "ok",
            RequestStatus::HttpError => "http_error",
            RequestStatus::Timeout => "timeout",
            RequestStatus::TransportError => "transport_error",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::NotSent => "not_sent",
        }
    }
    /// Parses a `status` column value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    /// Position in [`RequestStatus::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
    /// The request was sent and failed (`http_error`, `timeout`, `transport_error`).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RequestStatus::HttpError | RequestStatus::Timeout | RequestStatus::TransportError
        )
    }
}

/// A count per [`RequestStatus`], indexed by the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts([u64; 6]);

impl StatusCounts {
    /// Counts from `(status, count)` pairs; statuses not named count 0.
    pub fn of(pairs: &[(RequestStatus, u64)]) -> Self {
        let mut c = StatusCounts::default();
        for &(s, n) in pairs {
            c.0[s.index()] += n;
        }
        c
    }
    /// Counts one more request with `s`.
    pub fn add(&mut self, s: RequestStatus) {
        self.0[s.index()] += 1;
    }
    /// The count of `s`.
    pub fn get(&self, s: RequestStatus) -> u64 {
        self.0[s.index()]
    }
    /// Every status with its count, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (RequestStatus, u64)> + '_ {
        RequestStatus::ALL.iter().map(|&s| (s, self.get(s)))
    }
    /// Requests that were sent and failed (see [`RequestStatus::is_failure`]).
    pub fn failed(&self) -> u64 {
        self.iter()
            .filter(|(s, _)| s.is_failure())
            .map(|(_, n)| n)
            .sum()
    }
    /// All requests counted.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl std::ops::Index<RequestStatus> for StatusCounts {
    type Output = u64;
    fn index(&self, s: RequestStatus) -> &u64 {
        &self.0[s.index()]
    }
}

/// `status == "ok"`: compares with the column's spelling.
impl PartialEq<&str> for RequestStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Column names of `requests.parquet`.
pub mod columns {
    /// UInt64: position of the request in the workload (entry order, then request order).
    pub const REQUEST_ID: &str = "request_id";
    /// UInt64, nullable: session of the request.
    pub const SESSION_ID: &str = "session_id";
    /// UInt32, nullable: 0-based turn within the session.
    pub const TURN: &str = "turn";
    /// Utf8: one of [`super::RequestStatus`].
    pub const STATUS: &str = "status";
    /// UInt16, nullable: HTTP status code, when a response head arrived.
    pub const HTTP_STATUS: &str = "http_status";
    /// Utf8, nullable: error message for any status but `ok`.
    pub const ERROR: &str = "error";
    /// Int64: scheduled send time (workload timestamp / time_scale).
    pub const SCHEDULED_NS: &str = "scheduled_ns";
    /// Int64, nullable: when the request was released by the schedule, before any wait for a
    /// concurrency slot or for the previous turn of its session.
    pub const READY_NS: &str = "ready_ns";
    /// Int64, nullable: when the request was handed to the HTTP connection.
    pub const SENT_NS: &str = "sent_ns";
    /// Int64, nullable: first byte of the response (head or body).
    pub const FIRST_BYTE_NS: &str = "first_byte_ns";
    /// Int64, nullable: first chunk that carries generated text (content or reasoning).
    pub const FIRST_TOKEN_NS: &str = "first_token_ns";
    /// Int64, nullable: end of the response (last byte / end of stream).
    pub const END_NS: &str = "end_ns";
    /// List<Int64>: arrival of every chunk that carried generated text, in order.
    pub const CHUNK_NS: &str = "chunk_ns";
    /// UInt32, nullable: prompt tokens counted by the client (workload length or own tokenizer).
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    /// UInt32, nullable: output tokens counted by the client's tokenizer on the received text.
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    /// UInt32, nullable: `usage.prompt_tokens` reported by the server.
    pub const USAGE_PROMPT_TOKENS: &str = "usage_prompt_tokens";
    /// UInt32, nullable: `usage.completion_tokens` reported by the server.
    pub const USAGE_OUTPUT_TOKENS: &str = "usage_output_tokens";
    /// UInt32, nullable: `max_tokens` asked of the server.
    pub const MAX_TOKENS: &str = "max_tokens";
    /// Boolean: a warmup request (excluded from results).
    pub const WARMUP: &str = "warmup";
    /// Int64, nullable: a new TCP connection was established for this request (null: a
    /// kept-alive connection was reused, or the transport cannot tell).
    pub const CONNECT_NS: &str = "connect_ns";
    /// Utf8, nullable: why generation stopped, as the server reported it (`stop`, `length`, ...).
    pub const FINISH_REASON: &str = "finish_reason";
    /// Boolean: the response was streamed (only streamed rows have first_token_ns and chunk_ns).
    pub const STREAM: &str = "stream";
    /// Utf8, nullable: the generated text, when `client.record_output_text` is on.
    pub const OUTPUT_TEXT: &str = "output_text";
    /// Boolean: the request was sent again on a fresh connection after a kept-alive one turned
    /// out closed before any byte of the response (nothing of the first attempt reached the
    /// server's application).
    pub const RETRIED: &str = "retried";
    /// Utf8, nullable: remarks on a request whatever its status: an approximate client token
    /// count (a piece too long to tokenize), a stream that did not close after its end marker.
    pub const NOTE: &str = "note";
    /// UInt64 µs, nullable: time the request waited in the server's queue, as the server
    /// reports it (TGI's `x-queue-time`).
    pub const SERVER_QUEUE_US: &str = "server_queue_us";
    /// UInt64 µs, nullable: the server's prefill time (llama.cpp's `timings.prompt_ms`).
    pub const SERVER_PREFILL_US: &str = "server_prefill_us";
    /// UInt64 µs, nullable: the server's decode time (llama.cpp's `timings.predicted_ms`).
    pub const SERVER_DECODE_US: &str = "server_decode_us";
    /// UInt64 µs, nullable: the server's time generating, prefill and decode (TGI's
    /// `x-inference-time`; llama.cpp's prompt_ms + predicted_ms).
    pub const SERVER_INFERENCE_US: &str = "server_inference_us";
    /// UInt32, nullable: prompt tokens the server took from its cache (`usage`'s
    /// `prompt_tokens_details.cached_tokens`, llama.cpp's `timings.cache_n`).
    pub const CACHED_PROMPT_TOKENS: &str = "cached_prompt_tokens";
    /// Int64, nullable: first chunk that carried reasoning text (`reasoning_content` /
    /// `reasoning` deltas).
    pub const FIRST_REASONING_NS: &str = "first_reasoning_ns";
    /// Int64, nullable: first chunk that carried answer text (content, completions text, a TGI
    /// token).
    pub const FIRST_ANSWER_NS: &str = "first_answer_ns";
    /// UInt32, nullable: reasoning tokens counted by the client's tokenizer on the received
    /// reasoning text (included in `output_tokens`).
    pub const REASONING_TOKENS: &str = "reasoning_tokens";
    /// UInt32, nullable: `usage.completion_tokens_details.reasoning_tokens` reported by the
    /// server.
    pub const USAGE_REASONING_TOKENS: &str = "usage_reasoning_tokens";
    /// Utf8, nullable: the named dataset (`datasets:`) the request's prompt came from.
    pub const DATASET: &str = "dataset";
    /// Utf8, nullable: the workload request's scalar `fields` as a JSON object (an image job's
    /// `width`, `height`, `steps`), for `analysis.workload_unit`.
    pub const FIELDS: &str = "fields";
    /// UInt64, nullable: bytes of the HTTP request body as sent (null when not sent).
    pub const REQUEST_BYTES: &str = "request_bytes";
    /// UInt64, nullable: bytes of the request's images before base64 (`image_path`'s file and
    /// `dataset.images`' encoded pictures); null without images.
    pub const IMAGE_BYTES: &str = "image_bytes";
}

/// Keys of the Parquet key-value metadata.
pub mod meta {
    /// Wall-clock time (ns since the Unix epoch) of the monotonic anchor.
    pub const ANCHOR_UNIX_NS: &str = "bench.anchor_unix_ns";
    /// Number of requests in the workload (rows the file should hold when complete).
    pub const WORKLOAD_REQUESTS: &str = "bench.workload_requests";
    /// The client's time scale.
    pub const TIME_SCALE: &str = "bench.time_scale";
    /// Loop mode (`open_loop` / `closed_loop`) and concurrency, as JSON.
    pub const MODE: &str = "bench.mode";
    /// `true` when the file holds the finished run (one row per workload request), `false` in
    /// the snapshots written while the run goes.
    pub const COMPLETE: &str = "bench.complete";
    /// The client's API (`openai-chat`, `openai-completions`, `tgi`).
    pub const API: &str = "bench.api";
}

//! Per-request metrics (definitions in docs/METRICS.md) and which requests are measured.
//!
//! The scan in [`crate::load`] evaluates [`derived_columns`] (integer nanosecond spans between
//! the recorded times, null-aware, and the token counts with usage preferred over the client's
//! count); [`Derived::from_frame`] turns them into ms, TPOT and per-request throughput with plain
//! IEEE division. Inter-token latencies and the consistency of the chunk times come from one
//! pass over the `chunk_ns` lists in [`classify`].

use bench_types::RequestStatus;
use bench_types::record::columns as c;
use polars::prelude::*;

use crate::load::{Records, Status};

/// Names of the derived columns of the scan.
pub mod name {
    /// sent - scheduled, ns.
    pub const DISPATCH_LAG_NS: &str = "dispatch_lag_ns";
    /// sent - ready, ns.
    pub const QUEUE_DELAY_NS: &str = "queue_delay_ns";
    /// first_byte - sent, ns.
    pub const TTFB_NS: &str = "ttfb_ns";
    /// first_token - sent, ns.
    pub const TTFT_NS: &str = "ttft_ns";
    /// end - sent, ns.
    pub const E2EL_NS: &str = "e2el_ns";
    /// end - first_token, ns (the decode time TPOT divides).
    pub const DECODE_NS: &str = "decode_ns";
    /// usage prompt tokens when reported, else the client's count.
    pub const INPUT_TOKENS: &str = "input_tokens";
    /// usage completion tokens when reported, else the client's count.
    pub const OUTPUT_TOKENS: &str = "output_tokens_used";
    /// Whether the server reported usage.prompt_tokens.
    pub const INPUT_FROM_USAGE: &str = "input_from_usage";
    /// Whether the server reported usage.completion_tokens.
    pub const OUTPUT_FROM_USAGE: &str = "output_from_usage";
    /// Client-side prompt token count as f64.
    pub const CLIENT_PROMPT: &str = "client_prompt_tokens";
    /// Client-side output token count as f64.
    pub const CLIENT_OUTPUT: &str = "client_output_tokens";
    /// Server-reported prompt token count as f64.
    pub const USAGE_PROMPT: &str = "usage_prompt_tokens_f";
    /// Server-reported output token count as f64.
    pub const USAGE_OUTPUT: &str = "usage_output_tokens_f";
}

/// `a - b` in nanoseconds (null when either is null).
fn span(a: &str, b: &str) -> Expr {
    col(a) - col(b)
}

/// `usage` when the server reported it, else the client's count, as f64.
fn prefer_usage(usage: &str, client: &str) -> Expr {
    when(col(usage).is_not_null())
        .then(col(usage).cast(DataType::Float64))
        .otherwise(col(client).cast(DataType::Float64))
}

/// The per-request columns of the scan: integer nanosecond spans between the recorded times
/// and the token counts. Conversions to ms and the divisions of TPOT and per-request
/// throughput happen in [`Derived::from_frame`] with plain IEEE division (Polars divides a
/// column by a scalar through its reciprocal, which is off by an ulp).
pub fn derived_columns() -> Vec<Expr> {
    vec![
        span(c::SENT_NS, c::SCHEDULED_NS).alias(name::DISPATCH_LAG_NS),
        span(c::SENT_NS, c::READY_NS).alias(name::QUEUE_DELAY_NS),
        span(c::FIRST_BYTE_NS, c::SENT_NS).alias(name::TTFB_NS),
        span(c::FIRST_TOKEN_NS, c::SENT_NS).alias(name::TTFT_NS),
        span(c::END_NS, c::SENT_NS).alias(name::E2EL_NS),
        span(c::END_NS, c::FIRST_TOKEN_NS).alias(name::DECODE_NS),
        prefer_usage(c::USAGE_PROMPT_TOKENS, c::PROMPT_TOKENS).alias(name::INPUT_TOKENS),
        prefer_usage(c::USAGE_OUTPUT_TOKENS, c::OUTPUT_TOKENS).alias(name::OUTPUT_TOKENS),
        col(c::USAGE_PROMPT_TOKENS)
            .is_not_null()
            .alias(name::INPUT_FROM_USAGE),
        col(c::USAGE_OUTPUT_TOKENS)
            .is_not_null()
            .alias(name::OUTPUT_FROM_USAGE),
        col(c::PROMPT_TOKENS)
            .cast(DataType::Float64)
            .alias(name::CLIENT_PROMPT),
        col(c::OUTPUT_TOKENS)
            .cast(DataType::Float64)
            .alias(name::CLIENT_OUTPUT),
        col(c::USAGE_PROMPT_TOKENS)
            .cast(DataType::Float64)
            .alias(name::USAGE_PROMPT),
        col(c::USAGE_OUTPUT_TOKENS)
            .cast(DataType::Float64)
            .alias(name::USAGE_OUTPUT),
    ]
}

/// The derived per-request columns; `NaN` stands for null.
#[derive(Debug, Default)]
pub struct Derived {
    /// sent - scheduled, ms.
    pub dispatch_lag_ms: Vec<f64>,
    /// sent - ready, ms.
    pub queue_delay_ms: Vec<f64>,
    /// first byte - sent, ms.
    pub ttfb_ms: Vec<f64>,
    /// first token - sent, ms.
    pub ttft_ms: Vec<f64>,
    /// end - sent, ms.
    pub e2el_ms: Vec<f64>,
    /// (end - first token) / (output tokens - 1), ms; NaN with fewer than 2 output tokens.
    pub tpot_ms: Vec<f64>,
    /// Input tokens (usage, else client).
    pub input_tokens: Vec<f64>,
    /// Output tokens (usage, else client).
    pub output_tokens: Vec<f64>,
    /// output tokens / (E2EL in s); NaN when E2EL is not positive.
    pub output_tps: Vec<f64>,
    /// usage.prompt_tokens reported.
    pub input_from_usage: Vec<bool>,
    /// usage.completion_tokens reported.
    pub output_from_usage: Vec<bool>,
    /// Client prompt token count.
    pub client_prompt_tokens: Vec<f64>,
    /// Client output token count.
    pub client_output_tokens: Vec<f64>,
    /// usage.prompt_tokens.
    pub usage_prompt_tokens: Vec<f64>,
    /// usage.completion_tokens.
    pub usage_output_tokens: Vec<f64>,
}

impl Derived {
    /// Takes the derived columns out of the collected frame and finishes the metrics.
    pub fn from_frame(df: &DataFrame) -> PolarsResult<Derived> {
        let f = |n: &str| -> PolarsResult<Vec<f64>> {
            Ok(df
                .column(n)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        };
        let b = |n: &str| -> PolarsResult<Vec<bool>> {
            Ok(df
                .column(n)?
                .bool()?
                .iter()
                .map(|v| v.unwrap_or(false))
                .collect())
        };
        let ns = |n: &str| -> PolarsResult<Vec<Option<i64>>> {
            Ok(df.column(n)?.i64()?.iter().collect())
        };
        let to_ms = |v: &[Option<i64>]| {
            v.iter()
                .map(|x| x.map_or(f64::NAN, |d| d as f64 / 1e6))
                .collect::<Vec<f64>>()
        };
        let output_tokens = f(name::OUTPUT_TOKENS)?;
        let e2el = ns(name::E2EL_NS)?;
        let decode = ns(name::DECODE_NS)?;
        let tpot_ms = decode
            .iter()
            .zip(&output_tokens)
            .map(|(d, &n)| match d {
                Some(d) if n >= 2.0 => *d as f64 / 1e6 / (n - 1.0),
                _ => f64::NAN,
            })
            .collect();
        let output_tps = e2el
            .iter()
            .zip(&output_tokens)
            .map(|(e, &n)| match e {
                Some(e) if *e > 0 => n / (*e as f64 / 1e9),
                _ => f64::NAN,
            })
            .collect();
        Ok(Derived {
            dispatch_lag_ms: to_ms(&ns(name::DISPATCH_LAG_NS)?),
            queue_delay_ms: to_ms(&ns(name::QUEUE_DELAY_NS)?),
            ttfb_ms: to_ms(&ns(name::TTFB_NS)?),
            ttft_ms: to_ms(&ns(name::TTFT_NS)?),
            e2el_ms: to_ms(&e2el),
            tpot_ms,
            input_tokens: f(name::INPUT_TOKENS)?,
            output_tokens,
            output_tps,
            input_from_usage: b(name::INPUT_FROM_USAGE)?,
            output_from_usage: b(name::OUTPUT_FROM_USAGE)?,
            client_prompt_tokens: f(name::CLIENT_PROMPT)?,
            client_output_tokens: f(name::CLIENT_OUTPUT)?,
            usage_prompt_tokens: f(name::USAGE_PROMPT)?,
            usage_output_tokens: f(name::USAGE_OUTPUT)?,
        })
    }
}

/// Why a row is not part of the measured results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// A warmup request.
    Warmup,
    /// Ended with a status other than ok.
    Status(RequestStatus),
    /// A status this version does not know.
    UnknownStatus,
    /// Status ok, but no sent or no end time.
    MissingTimes,
    /// Times out of order (end before sent, first token or a chunk outside [sent, end], chunks
    /// not in order).
    InconsistentTimes,
}

impl Exclusion {
    /// Every reason, in report order.
    pub const ALL: [Exclusion; 9] = [
        Exclusion::Warmup,
        Exclusion::Status(RequestStatus::HttpError),
        Exclusion::Status(RequestStatus::Timeout),
        Exclusion::Status(RequestStatus::TransportError),
        Exclusion::Status(RequestStatus::Cancelled),
        Exclusion::Status(RequestStatus::NotSent),
        Exclusion::UnknownStatus,
        Exclusion::MissingTimes,
        Exclusion::InconsistentTimes,
    ];

    /// The key in summary.json.
    pub fn key(self) -> &'static str {
        match self {
            Exclusion::Warmup => "warmup",
            Exclusion::Status(s) => s.as_str(),
            Exclusion::UnknownStatus => "unknown_status",
            Exclusion::MissingTimes => "missing_times",
            Exclusion::InconsistentTimes => "inconsistent_times",
        }
    }

    /// One line saying why such rows are left out.
    pub fn why(self) -> &'static str {
        match self {
            Exclusion::Warmup => "warmup requests, sent before the measured run",
            Exclusion::Status(RequestStatus::HttpError) => {
                "the server answered with a non-2xx status"
            }
            Exclusion::Status(RequestStatus::Timeout) => {
                "no complete answer within the request timeout"
            }
            Exclusion::Status(RequestStatus::TransportError) => "connection or protocol failure",
            Exclusion::Status(RequestStatus::Cancelled) => {
                "sent, then stopped by Ctrl-C or the run's duration limit"
            }
            Exclusion::Status(RequestStatus::NotSent) => {
                "never sent: the run stopped before their time"
            }
            Exclusion::Status(RequestStatus::Ok) => "completed (never an exclusion)",
            Exclusion::UnknownStatus => "a status this version of bench does not know",
            Exclusion::MissingTimes => "status ok but no sent or end time in the record",
            Exclusion::InconsistentTimes => {
                "times out of order (end before sent, first token or a chunk outside [sent, end])"
            }
        }
    }
}

/// Inter-token latencies: per request and pooled over the measured requests.
#[derive(Debug, Default)]
pub struct Itl {
    /// Number of content chunks per row.
    pub chunks: Vec<u32>,
    /// Mean ITL of each row, ms (NaN with fewer than 2 chunks).
    pub mean_ms: Vec<f64>,
    /// Largest ITL of each row, ms (NaN with fewer than 2 chunks).
    pub max_ms: Vec<f64>,
    /// Every ITL of every measured request, ns, in no particular order.
    pub pooled_ns: Vec<i64>,
}

/// Per-row exclusion reasons (None: measured) and the inter-token latencies.
pub fn classify(r: &Records) -> (Vec<Option<Exclusion>>, Itl) {
    let n = r.rows;
    let mut reason: Vec<Option<Exclusion>> = (0..n)
        .map(|i| {
            if r.warmup[i] {
                return Some(Exclusion::Warmup);
            }
            match r.status[i] {
                Status::Unknown(_) => Some(Exclusion::UnknownStatus),
                Status::Known(RequestStatus::Ok) => match (r.sent[i], r.end[i]) {
                    (Some(s), Some(e)) => {
                        let ft_ok = r.first_token[i].is_none_or(|f| s <= f && f <= e);
                        (e < s || !ft_ok).then_some(Exclusion::InconsistentTimes)
                    }
                    _ => Some(Exclusion::MissingTimes),
                },
                Status::Known(s) => Some(Exclusion::Status(s)),
            }
        })
        .collect();
    let mut itl = Itl {
        chunks: vec![0; n],
        mean_ms: vec![f64::NAN; n],
        max_ms: vec![f64::NAN; n],
        pooled_ns: Vec::with_capacity(r.chunks.total),
    };
    r.chunks.for_each(|i, ch| {
        itl.chunks[i] = ch.len() as u32;
        if ch.len() < 2 {
            if reason[i].is_none()
                && let (Some(&t), Some(s), Some(e)) = (ch.first(), r.sent[i], r.end[i])
                && (t < s || t > e)
            {
                reason[i] = Some(Exclusion::InconsistentTimes);
            }
            return;
        }
        let mut max = i64::MIN;
        let mut ordered = true;
        for w in ch.windows(2) {
            let d = w[1] - w[0];
            ordered &= d >= 0;
            max = max.max(d);
        }
        if reason[i].is_none() {
            let (s, e) = (r.sent[i].unwrap_or(i64::MIN), r.end[i].unwrap_or(i64::MAX));
            if !ordered || ch[0] < s || ch[ch.len() - 1] > e {
                reason[i] = Some(Exclusion::InconsistentTimes);
            }
        }
        if !ordered {
            // chunk times out of order: the row is excluded and has no meaningful ITL
            return;
        }
        itl.max_ms[i] = max as f64 / 1e6;
        itl.mean_ms[i] = (ch[ch.len() - 1] - ch[0]) as f64 / 1e6 / (ch.len() - 1) as f64;
        if reason[i].is_none() {
            itl.pooled_ns.extend(ch.windows(2).map(|w| w[1] - w[0]));
        }
    });
    (reason, itl)
}

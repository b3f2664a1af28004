//! Per-request metrics (definitions in docs/METRICS.md) and which requests are measured.
//!
//! [`Derived::from_table`] puts the recorded times and token counts in a Polars frame and derives
//! the integer nanosecond spans between them (null-aware) and the token counts (usage preferred
//! over the client's count); conversions to ms, TPOT and per-request throughput then use plain
//! IEEE division. Inter-token latencies and the consistency of the chunk times come from one
//! pass over the `chunk_ns` lists in [`classify`].

use bench_config::analysis::TokenSource;
use bench_types::RequestStatus;
use bench_types::record::RecordTable;
use bench_types::record::columns as c;
use polars::prelude::*;

use crate::load::{Records, Status};

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
    /// A reasoning model's phases.
    pub reasoning: ReasoningCols,
}

/// Per-request figures of a reasoning model (NaN where the request streamed no reasoning, or
/// for the answer figures, no answer).
#[derive(Debug, Default)]
pub struct ReasoningCols {
    /// first reasoning chunk - sent, ms.
    pub ttft_reasoning_ms: Vec<f64>,
    /// first answer chunk - sent, ms.
    pub ttft_answer_ms: Vec<f64>,
    /// first answer chunk - first reasoning chunk, ms (the thinking time).
    pub thinking_ms: Vec<f64>,
    /// (end - first answer chunk) / (answer tokens - 1), ms.
    pub answer_tpot_ms: Vec<f64>,
    /// Reasoning tokens (usage's `completion_tokens_details.reasoning_tokens`, else client).
    pub reasoning_tokens: Vec<f64>,
    /// Output tokens less reasoning tokens.
    pub answer_tokens: Vec<f64>,
    /// The reasoning count is the server's.
    pub reasoning_from_usage: Vec<bool>,
}

/// The frame of the recorded columns the metrics need.
fn frame(t: &RecordTable) -> PolarsResult<DataFrame> {
    let ns = |name: &str, v: &[Option<i64>]| Column::new(name.into(), v);
    let n = |name: &str, v: &[Option<u32>]| Column::new(name.into(), v);
    DataFrame::new_infer_height(vec![
        ns(c::SCHEDULED_NS, &t.scheduled_ns),
        ns(c::READY_NS, &t.ready_ns),
        ns(c::SENT_NS, &t.sent_ns),
        ns(c::FIRST_BYTE_NS, &t.first_byte_ns),
        ns(c::FIRST_TOKEN_NS, &t.first_token_ns),
        ns(c::END_NS, &t.end_ns),
        n(c::PROMPT_TOKENS, &t.prompt_tokens),
        n(c::OUTPUT_TOKENS, &t.output_tokens),
        n(c::USAGE_PROMPT_TOKENS, &t.usage_prompt_tokens),
        n(c::USAGE_OUTPUT_TOKENS, &t.usage_output_tokens),
        ns(c::FIRST_REASONING_NS, &t.first_reasoning_ns),
        ns(c::FIRST_ANSWER_NS, &t.first_answer_ns),
        n(c::REASONING_TOKENS, &t.reasoning_tokens),
        n(c::USAGE_REASONING_TOKENS, &t.usage_reasoning_tokens),
    ])
}

impl Derived {
    /// The per-request metrics of every row of `t`.
    pub fn from_table(t: &RecordTable, source: TokenSource) -> PolarsResult<Derived> {
        let df = frame(t)?;
        let col =
            |name: &str| -> PolarsResult<&Series> { Ok(df.column(name)?.as_materialized_series()) };
        // `a - b` in nanoseconds (null when either is null)
        let span = |a: &str, b: &str| -> PolarsResult<Vec<Option<i64>>> {
            let d = (col(a)? - col(b)?)?;
            Ok(d.i64()?.iter().collect())
        };
        let f64s = |s: &Series| -> PolarsResult<Vec<f64>> {
            Ok(s.cast(&DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        };
        let use_usage = source == TokenSource::Usage;
        let reported = |name: &str| -> PolarsResult<Vec<bool>> {
            Ok(col(name)?
                .is_not_null()
                .iter()
                .map(|v| use_usage && v == Some(true))
                .collect())
        };
        // usage when the server reported it (and analysis.token_source allows), else the
        // client's count
        let prefer_usage = |usage: &str, client: &str| -> PolarsResult<Vec<f64>> {
            let c = col(client)?.cast(&DataType::Float64)?;
            if !use_usage {
                return f64s(&c);
            }
            let u = col(usage)?.cast(&DataType::Float64)?;
            f64s(&u.zip_with(&u.is_not_null(), &c)?)
        };
        let to_ms = |v: &[Option<i64>]| {
            v.iter()
                .map(|x| x.map_or(f64::NAN, |d| d as f64 / 1e6))
                .collect::<Vec<f64>>()
        };
        let output_tokens = prefer_usage(c::USAGE_OUTPUT_TOKENS, c::OUTPUT_TOKENS)?;
        let e2el = span(c::END_NS, c::SENT_NS)?;
        let decode = span(c::END_NS, c::FIRST_TOKEN_NS)?;
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
        // Reasoning: a row that streamed no reasoning has no reasoning figures; its answer
        // figures are its TTFT and TPOT.
        let reasoning_tokens: Vec<f64> =
            prefer_usage(c::USAGE_REASONING_TOKENS, c::REASONING_TOKENS)?;
        let reasoning_from_usage = reported(c::USAGE_REASONING_TOKENS)?;
        let answer_tokens: Vec<f64> = output_tokens
            .iter()
            .zip(&reasoning_tokens)
            .map(|(&o, &r)| if r.is_nan() { o } else { (o - r).max(0.0) })
            .collect();
        let answer_decode = span(c::END_NS, c::FIRST_ANSWER_NS)?;
        let answer_tpot_ms = answer_decode
            .iter()
            .zip(&answer_tokens)
            .map(|(d, &n)| match d {
                Some(d) if n >= 2.0 => *d as f64 / 1e6 / (n - 1.0),
                _ => f64::NAN,
            })
            .collect();
        let reasoning = ReasoningCols {
            ttft_reasoning_ms: to_ms(&span(c::FIRST_REASONING_NS, c::SENT_NS)?),
            ttft_answer_ms: to_ms(&span(c::FIRST_ANSWER_NS, c::SENT_NS)?),
            thinking_ms: to_ms(&span(c::FIRST_ANSWER_NS, c::FIRST_REASONING_NS)?),
            answer_tpot_ms,
            reasoning_tokens,
            answer_tokens,
            reasoning_from_usage,
        };
        Ok(Derived {
            reasoning,
            dispatch_lag_ms: to_ms(&span(c::SENT_NS, c::SCHEDULED_NS)?),
            queue_delay_ms: to_ms(&span(c::SENT_NS, c::READY_NS)?),
            ttfb_ms: to_ms(&span(c::FIRST_BYTE_NS, c::SENT_NS)?),
            ttft_ms: to_ms(&span(c::FIRST_TOKEN_NS, c::SENT_NS)?),
            e2el_ms: to_ms(&e2el),
            tpot_ms,
            input_tokens: prefer_usage(c::USAGE_PROMPT_TOKENS, c::PROMPT_TOKENS)?,
            output_tokens,
            output_tps,
            input_from_usage: reported(c::USAGE_PROMPT_TOKENS)?,
            output_from_usage: reported(c::USAGE_OUTPUT_TOKENS)?,
            client_prompt_tokens: f64s(col(c::PROMPT_TOKENS)?)?,
            client_output_tokens: f64s(col(c::OUTPUT_TOKENS)?)?,
            usage_prompt_tokens: f64s(col(c::USAGE_PROMPT_TOKENS)?)?,
            usage_output_tokens: f64s(col(c::USAGE_OUTPUT_TOKENS)?)?,
        })
    }
}

/// Why a row is not part of the measured results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// A warmup request.
    Warmup,
    /// Outside `analysis.window` (the run's warm-up or cool-down).
    OutsideWindow,
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
    pub const ALL: [Exclusion; 10] = [
        Exclusion::Warmup,
        Exclusion::OutsideWindow,
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
            Exclusion::OutsideWindow => "outside_window",
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
            Exclusion::OutsideWindow => {
                "scheduled outside analysis.window: the run's warm-up or cool-down"
            }
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

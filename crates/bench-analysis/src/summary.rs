//! summary.json: the run's figures under stable keys (documented in docs/METRICS.md).

use bench_types::RequestStatus;
use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::distributions::{self, GroupRow, PairTable};
use crate::goodput::{self, Goodput};
use crate::load::Status;
use crate::metrics::Exclusion;
use crate::stats::Stats;
use crate::verdict::Verdict;

/// Schema name and version of summary.json.
pub const SCHEMA: &str = "bench.summary/4";

/// What run this is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id (a UUID, the manifest's `id`; the catalog's key).
    #[serde(default)]
    pub id: Option<String>,
    /// The config's `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// The config's `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// The config's `tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The run directory as given.
    pub run_dir: String,
    /// Wall-clock time of the time origin (first scheduled or sent request), RFC 3339 UTC.
    pub started_at: Option<String>,
    /// Loop mode from the file's metadata (`open_loop` / `closed_loop`).
    pub mode: Option<String>,
    /// Concurrency from the file's metadata.
    pub concurrency: Option<u64>,
    /// The client's API.
    pub api: Option<String>,
    /// Model name (manifest's client.model).
    pub model: Option<String>,
    /// Endpoint (manifest's client.endpoint).
    pub endpoint: Option<String>,
    /// bench version that wrote the manifest.
    pub tool_version: Option<String>,
    /// Requests in the workload (file metadata).
    pub workload_requests: Option<u64>,
    /// Whether the file says the run finished writing (false: a snapshot of a run in progress).
    pub complete: Option<bool>,
}

/// Rows by status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Rows in requests.parquet.
    pub rows: u64,
    /// Warmup rows (any status).
    pub warmup: u64,
    /// Non-warmup rows outside `analysis.window` (any status), left out like warmup.
    pub outside_window: u64,
    /// Non-warmup rows with status ok.
    pub ok: u64,
    /// Non-warmup rows with status http_error.
    pub http_error: u64,
    /// Non-warmup rows with status timeout.
    pub timeout: u64,
    /// Non-warmup rows with status transport_error.
    pub transport_error: u64,
    /// Non-warmup rows with status cancelled.
    pub cancelled: u64,
    /// Non-warmup rows with status not_sent.
    pub not_sent: u64,
    /// Non-warmup rows with a status this version does not know.
    pub unknown_status: u64,
    /// Rows whose metrics are reported (see `excluded` for the others).
    pub measured: u64,
    /// Non-warmup rows the server failed: http_error + timeout + transport_error.
    pub failed: u64,
    /// Workload requests without a row (file metadata `bench.workload_requests` - non-warmup
    /// rows).
    pub missing_rows: Option<u64>,
}

/// One reason rows were left out of the metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Excluded {
    /// Reason key: warmup, http_error, timeout, transport_error, cancelled, not_sent,
    /// unknown_status, missing_times, inconsistent_times, missing_rows.
    pub reason: String,
    /// Rows (or, for missing_rows, workload requests) left out for it.
    pub count: u64,
    /// What the reason means.
    pub why: String,
}

/// The run's window: from the first send to the last end of any sent (non-warmup) request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    /// Earliest sent time of a sent (non-warmup) request, seconds since the time origin.
    pub start_s: Option<f64>,
    /// Latest end time of a sent (non-warmup) request, any status, seconds since the time origin.
    pub end_s: Option<f64>,
    /// From the first sent to the last end of the measured (ok) requests only, seconds.
    pub measured_span_s: Option<f64>,
}

/// Token counts: totals over measured requests and where they came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// Sum of input tokens of measured requests.
    pub total_input: f64,
    /// Sum of output tokens of measured requests.
    pub total_output: f64,
    /// Measured requests whose input count is the server's usage.prompt_tokens.
    pub input_from_usage: u64,
    /// Measured requests whose input count is the client's (no usage reported).
    pub input_from_client: u64,
    /// Measured requests with no input count at all.
    pub input_missing: u64,
    /// Measured requests whose output count is usage.completion_tokens.
    pub output_from_usage: u64,
    /// Measured requests whose output count is the client's.
    pub output_from_client: u64,
    /// Measured requests with no output count at all.
    pub output_missing: u64,
    /// Sum of usage.completion_tokens over measured requests that have both counts.
    pub output_usage_sum: f64,
    /// Sum of the client's output counts over the same requests.
    pub output_client_sum: f64,
    /// How many of those requests disagree.
    pub output_mismatches: u64,
    /// Sum of usage.prompt_tokens over measured requests that have both counts.
    pub input_usage_sum: f64,
    /// Sum of the client's prompt counts over the same requests.
    pub input_client_sum: f64,
    /// How many of those requests disagree.
    pub input_mismatches: u64,
}

/// Whether the client kept the schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientHealth {
    /// p99 of schedule lag within analysis.max_dispatch_lag_ms.
    pub ok: bool,
    /// p99 of schedule lag (dispatch lag minus queue delay), ms.
    pub p99_ms: Option<f64>,
    /// analysis.max_dispatch_lag_ms.
    pub threshold_ms: f64,
    /// One sentence for people.
    pub message: String,
}

/// Input- and output-length distributions (Bud's analyses).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LengthDistributions {
    /// Measured requests in equal-width bins of input tokens.
    pub input: Vec<GroupRow>,
    /// Measured requests in equal-width bins of output tokens.
    pub output: Vec<GroupRow>,
}

/// Breakdowns of the measured requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Breakdowns {
    /// By requests in flight when each was sent (the observed concurrency).
    pub concurrency: Vec<GroupRow>,
    /// By session turn (empty when the run has no turns).
    pub turn: Vec<GroupRow>,
    /// By named dataset (`dataset.use`; empty when requests name none).
    pub dataset: Vec<GroupRow>,
}

/// What the measured requests carried to the server (older records without the columns: null).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SentSummary {
    /// Sum of request body bytes.
    pub request_bytes_total: u64,
    /// Request body bytes per request.
    pub request_bytes: Stats,
    /// Measured requests that carried images.
    pub requests_with_images: u64,
    /// Sum of the images' bytes before base64.
    pub image_bytes_total: u64,
    /// Image bytes per request that carried images.
    pub image_bytes: Stats,
}

/// A reasoning model's two phases over the measured requests (docs/METRICS.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReasoningSummary {
    /// Measured requests that streamed reasoning text.
    pub requests_with_reasoning: u64,
    /// Measured requests whose reasoning count is the server's
    /// (`usage.completion_tokens_details.reasoning_tokens`).
    pub reasoning_from_usage: u64,
    /// Sum of reasoning tokens over measured requests.
    pub total_reasoning_tokens: f64,
    /// Sum of answer tokens (output less reasoning) over measured requests.
    pub total_answer_tokens: f64,
    /// Time to the first reasoning token, ms.
    pub ttft_reasoning_ms: Stats,
    /// Time to the first answer token, ms.
    pub ttft_answer_ms: Stats,
    /// First answer token - first reasoning token, ms.
    pub thinking_ms: Stats,
    /// TPOT over answer tokens alone: (end - first answer token) / (answer tokens - 1), ms.
    pub answer_tpot_ms: Stats,
    /// Reasoning tokens per request.
    pub reasoning_tokens: Stats,
    /// Answer tokens per request.
    pub answer_tokens: Stats,
}

/// summary.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// `bench.summary/2`.
    pub schema: String,
    /// What run this is.
    pub run: RunInfo,
    /// Rows by status.
    pub counts: Counts,
    /// Why rows were left out, by reason (reasons with no rows omitted).
    pub excluded: Vec<Excluded>,
    /// Warnings about the data (client lag, incomplete file, missing rows...).
    pub notes: Vec<String>,
    /// The run's window.
    pub window: Window,
    /// Length of the window, seconds (first send to last end of any sent request).
    pub duration_s: Option<f64>,
    /// Measured requests / duration_s.
    pub request_throughput: Option<f64>,
    /// Input tokens of measured requests / duration_s.
    pub input_token_throughput: Option<f64>,
    /// Output tokens of measured requests / duration_s.
    pub output_token_throughput: Option<f64>,
    /// (input + output tokens) / duration_s.
    pub total_token_throughput: Option<f64>,
    /// `analysis.workload_unit`: what a request's work counts as (`tokens`, `image`, an
    /// expression).
    #[serde(default)]
    pub workload_unit: String,
    /// Workload units of the measured requests (those with every figure the unit needs).
    #[serde(default)]
    pub workload_units: Option<f64>,
    /// workload_units / duration_s: units/s, Vast's throughput figure.
    #[serde(default)]
    pub workload_unit_throughput: Option<f64>,
    /// Requests meeting every SLO / duration_s (null when no SLO is set).
    pub goodput: Option<f64>,
    /// slo.attainment: requests meeting every SLO / (measured + failed) (null without SLOs).
    pub goodput_ratio: Option<f64>,
    /// Failed / sent requests (null when nothing was sent).
    pub error_rate: Option<f64>,
    /// The rate the workload asked for (open loop): (requests - 1) / (last - first scheduled
    /// time), req/s.
    pub offered_rate: Option<f64>,
    /// The rate the server kept up with: request_throughput, req/s.
    pub achieved_rate: Option<f64>,
    /// How long the run went on past the workload's span: last end - last scheduled time, s
    /// (open loop; includes the last request's own latency).
    pub overrun_s: Option<f64>,
    /// Client requests in flight, time-averaged over the first tenth of the sending window.
    pub in_flight_start: Option<f64>,
    /// The same over the last tenth of the sending window.
    pub in_flight_end: Option<f64>,
    /// analysis.thresholds, each PASS or FAIL.
    pub thresholds: Vec<crate::verdict::ThresholdResult>,
    /// The server's view, from its /metrics scraped during the run (null when not scraped).
    pub server: Option<crate::server::ServerSummary>,
    /// The server's own per-request timings (null when it reported none).
    pub server_timings: Option<crate::server::ServerTimings>,
    /// SLOs and how many requests met them.
    pub slo: Goodput,
    /// Time to first token, ms.
    pub ttft_ms: Stats,
    /// Time per output token, ms.
    pub tpot_ms: Stats,
    /// Inter-token latency, pooled over requests, ms.
    pub itl_ms: Stats,
    /// End-to-end latency, ms.
    pub e2el_ms: Stats,
    /// Time to first byte, ms.
    pub ttfb_ms: Stats,
    /// Output tokens per second of each request (output tokens / E2EL).
    pub request_output_throughput: Stats,
    /// Input tokens per request.
    pub input_tokens: Stats,
    /// Output tokens per request.
    pub output_tokens: Stats,
    /// sent - scheduled, ms, over every sent non-warmup request.
    pub dispatch_lag_ms: Stats,
    /// sent - ready (time held by a concurrency cap or a session's previous turn), ms.
    pub queue_delay_ms: Stats,
    /// Dispatch lag not counting queue delay, ms (the client health figure).
    pub schedule_lag_ms: Stats,
    /// Token totals and sources.
    pub tokens: Tokens,
    /// Whether the client kept the schedule.
    pub client_health: ClientHealth,
    /// What to know first: failures, coverage, client health, token counts.
    pub verdict: Verdict,
    /// Input/output length distributions.
    pub length_distributions: LengthDistributions,
    /// Breakdowns by concurrency and turn.
    pub breakdowns: Breakdowns,
    /// analysis.pairs tables.
    pub pairs: Vec<PairTable>,
    /// Files the analysis wrote, relative to the run directory.
    pub files: Vec<String>,
    /// Reasoning and answer apart (null when no measured request streamed reasoning).
    pub reasoning: Option<ReasoningSummary>,
    /// Bytes sent: request bodies and images (null when the records do not say).
    #[serde(default)]
    pub sent: Option<SentSummary>,
}

/// The bytes the measured requests sent, when the records have them.
fn sent(a: &Analysis) -> Option<SentSummary> {
    let r = &a.rec;
    let body: Vec<u64> = a
        .measured
        .iter()
        .filter_map(|&i| r.request_bytes.get(i).copied().flatten())
        .collect();
    if body.is_empty() {
        return None;
    }
    let images: Vec<u64> = a
        .measured
        .iter()
        .filter_map(|&i| r.image_bytes.get(i).copied().flatten())
        .collect();
    let stats = |v: &[u64]| Stats::of(&mut v.iter().map(|&x| x as f64).collect::<Vec<_>>());
    Some(SentSummary {
        request_bytes_total: body.iter().sum(),
        request_bytes: stats(&body),
        requests_with_images: images.len() as u64,
        image_bytes_total: images.iter().sum(),
        image_bytes: stats(&images),
    })
}

/// The reasoning figures, when any measured request streamed reasoning text.
fn reasoning(a: &Analysis) -> Option<ReasoningSummary> {
    let q = &a.rec.derived.reasoning;
    let with = a
        .measured
        .iter()
        .filter(|&&i| !q.ttft_reasoning_ms[i].is_nan() || q.reasoning_tokens[i] > 0.0)
        .count() as u64;
    if with == 0 {
        return None;
    }
    let sum = |v: &[f64]| a.measured_values(v).iter().sum::<f64>();
    Some(ReasoningSummary {
        requests_with_reasoning: with,
        reasoning_from_usage: a
            .measured
            .iter()
            .filter(|&&i| q.reasoning_from_usage[i])
            .count() as u64,
        total_reasoning_tokens: sum(&q.reasoning_tokens),
        total_answer_tokens: sum(&q.answer_tokens),
        ttft_reasoning_ms: stats_of(a, &q.ttft_reasoning_ms),
        ttft_answer_ms: stats_of(a, &q.ttft_answer_ms),
        thinking_ms: stats_of(a, &q.thinking_ms),
        answer_tpot_ms: stats_of(a, &q.answer_tpot_ms),
        reasoning_tokens: stats_of(a, &q.reasoning_tokens),
        answer_tokens: stats_of(a, &q.answer_tokens),
    })
}

fn stats_of(a: &Analysis, per_row: &[f64]) -> Stats {
    Stats::of(&mut a.measured_values(per_row))
}

fn sent_stats(a: &Analysis, per_row: &[f64]) -> Stats {
    let mut v: Vec<f64> = a
        .sent_rows
        .iter()
        .map(|&i| per_row[i])
        .filter(|v| !v.is_nan())
        .collect();
    Stats::of(&mut v)
}

/// Computes the summary of `a`, all but `itl_ms` (see [`crate::compute`], which computes the
/// pooled ITL statistics on another thread).
pub fn build(a: &Analysis) -> Summary {
    let r = &a.rec;
    let d = &r.derived;
    let mut counts = Counts {
        rows: r.rows as u64,
        measured: a.measured.len() as u64,
        ..Counts::default()
    };
    for i in 0..r.rows {
        if r.warmup[i] {
            counts.warmup += 1;
            continue;
        }
        if a.outside[i] {
            counts.outside_window += 1;
            continue;
        }
        match r.status[i] {
            Status::Known(RequestStatus::Ok) => counts.ok += 1,
            Status::Known(RequestStatus::HttpError) => counts.http_error += 1,
            Status::Known(RequestStatus::Timeout) => counts.timeout += 1,
            Status::Known(RequestStatus::TransportError) => counts.transport_error += 1,
            Status::Known(RequestStatus::Cancelled) => counts.cancelled += 1,
            Status::Known(RequestStatus::NotSent) => counts.not_sent += 1,
            Status::Unknown(_) => counts.unknown_status += 1,
        }
    }
    counts.failed = counts.http_error + counts.timeout + counts.transport_error;
    // a complete file has one non-warmup row per workload request
    counts.missing_rows = r
        .meta
        .workload_requests
        .map(|w| w.saturating_sub(r.rows as u64 - counts.warmup));

    let mut excluded: Vec<Excluded> = Exclusion::ALL
        .iter()
        .map(|&x| Excluded {
            reason: x.key().into(),
            count: a.reason.iter().filter(|v| **v == Some(x)).count() as u64,
            why: x.why().into(),
        })
        .filter(|e| e.count > 0)
        .collect();
    if let Some(m) = counts.missing_rows.filter(|&m| m > 0) {
        excluded.push(Excluded { reason: "missing_rows".into(), count: m, why: "workload requests with no row in requests.parquet (the client stopped before writing them)".into() });
    }

    // The window covers every request the client sent (not warmup), whatever its status:
    // failed and cancelled requests took the server's time too, and leaving them out would
    // shrink the window and inflate the rates of exactly the runs that went badly.
    let span = |rows: &[usize]| {
        let (mut lo, mut hi) = (None::<i64>, None::<i64>);
        for &i in rows {
            if let (Some(s), Some(e)) = (r.sent[i], r.end[i])
                && e >= s
            {
                lo = Some(lo.map_or(s, |v| v.min(s)));
                hi = Some(hi.map_or(e, |v| v.max(e)));
            }
        }
        (lo, hi)
    };
    let secs_between = |(s, e): (Option<i64>, Option<i64>)| match (s, e) {
        (Some(s), Some(e)) if e > s => Some((e - s) as f64 / 1e9),
        _ => None,
    };
    let (start, end) = span(&a.sent_rows);
    let duration_s = secs_between((start, end));
    let window = Window {
        start_s: start.map(|t| a.secs(t)),
        end_s: end.map(|t| a.secs(t)),
        measured_span_s: secs_between(span(&a.measured)),
    };

    let per_s = |x: f64| duration_s.map(|d| x / d);
    let slo = goodput::evaluate(a, &a.cfg.slo, counts.failed);
    let schedule_lag_ms = sent_stats(a, &a.schedule_lag_ms);
    let mut client_health = if r.meta.mode.as_deref() == Some("closed_loop") {
        ClientHealth {
            ok: true,
            p99_ms: None,
            threshold_ms: a.cfg.max_dispatch_lag_ms,
            message: "closed loop: each request goes out when a slot frees, so there is no schedule to keep".into(),
        }
    } else {
        health(
            &schedule_lag_ms,
            a.cfg.max_dispatch_lag_ms,
            a.sent_rows.len(),
        )
    };
    let tokens = token_counts(a);
    let mut notes_units = Vec::new();
    let units = workload_units(a, &mut notes_units);
    let verdict = crate::verdict::judge(a, &counts, &mut client_health, &tokens);

    let mut notes = a.notes.clone();
    notes.append(&mut notes_units);
    if r.meta.complete == Some(false) {
        notes.push("requests.parquet is a snapshot written while the run was going (bench.complete = false): requests in flight at that moment have no row yet".into());
    }
    if let Some(m) = counts.missing_rows.filter(|&m| m > 0) {
        notes.push(format!(
            "{m} of {} workload requests have no row in requests.parquet",
            r.meta.workload_requests.unwrap_or(0)
        ));
    }
    let no_ttft = counts.measured - a.measured_values(&d.ttft_ms).len() as u64;
    if a.cfg.slo.ttft_ms.is_some() && no_ttft > 0 {
        notes.push(format!(
            "{no_ttft} of {} measured requests have no TTFT (not streamed, or no chunk carried text), \
             so they fail the TTFT SLO (analysis.slo.ttft_ms)",
            counts.measured
        ));
    }
    if counts.measured == 0 {
        notes.push("no measured request: every row is excluded (see `excluded`), so latency and throughput figures are empty".into());
    }
    let excluded_total: u64 = excluded
        .iter()
        .filter(|e| e.reason != "missing_rows")
        .map(|e| e.count)
        .sum();
    if excluded_total > 0 {
        let parts: Vec<String> = excluded
            .iter()
            .map(|e| format!("{} {}", e.count, e.reason))
            .collect();
        notes.push(format!("excluded from the metrics: {}", parts.join(", ")));
    }

    Summary {
        schema: SCHEMA.into(),
        run: run_info(a),
        duration_s,
        request_throughput: per_s(counts.measured as f64),
        input_token_throughput: per_s(tokens.total_input),
        output_token_throughput: per_s(tokens.total_output),
        total_token_throughput: per_s(tokens.total_input + tokens.total_output),
        workload_unit: a.cfg.workload_unit.clone(),
        workload_units: units,
        workload_unit_throughput: units.and_then(per_s),
        goodput: slo.good_requests.and_then(|g| per_s(g as f64)),
        goodput_ratio: slo.attainment,
        error_rate: {
            let sent = counts.ok + counts.failed + counts.cancelled + counts.unknown_status;
            (sent > 0).then(|| counts.failed as f64 / sent as f64)
        },
        achieved_rate: per_s(counts.measured as f64),
        slo,
        counts,
        excluded,
        notes,
        window,
        ttft_ms: stats_of(a, &d.ttft_ms),
        tpot_ms: stats_of(a, &d.tpot_ms),
        itl_ms: Stats::default(),
        e2el_ms: stats_of(a, &d.e2el_ms),
        ttfb_ms: stats_of(a, &d.ttfb_ms),
        request_output_throughput: stats_of(a, &d.output_tps),
        input_tokens: stats_of(a, &d.input_tokens),
        output_tokens: stats_of(a, &d.output_tokens),
        dispatch_lag_ms: sent_stats(a, &d.dispatch_lag_ms),
        queue_delay_ms: sent_stats(a, &d.queue_delay_ms),
        schedule_lag_ms,
        tokens,
        client_health,
        verdict,
        length_distributions: LengthDistributions {
            input: distributions::length_bins(a, &d.input_tokens),
            output: distributions::length_bins(a, &d.output_tokens),
        },
        breakdowns: Breakdowns {
            concurrency: distributions::by_concurrency(a),
            turn: distributions::by_turn(a),
            dataset: distributions::by_dataset(a),
        },
        pairs: distributions::pairs(a),
        files: Vec::new(),
        server_timings: crate::server::timings(a),
        reasoning: reasoning(a),
        sent: sent(a),
        ..Summary::default()
    }
}

/// The load figures that need the time series: offered rate, overrun, in flight at the start
/// and the end of the sending (open loop only: a closed loop has no schedule to offer).
pub fn load_figures(a: &Analysis, s: &mut Summary, ts: &crate::timeseries::TimeSeries) {
    if a.rec.meta.mode.as_deref() == Some("closed_loop") {
        return;
    }
    let sched: Vec<i64> = (0..a.rec.rows)
        .filter(|&i| !a.rec.warmup[i])
        .filter_map(|i| a.rec.scheduled[i])
        .collect();
    let (Some(&first), Some(&last)) = (sched.iter().min(), sched.iter().max()) else {
        return;
    };
    let span_s = (last - first) as f64 / 1e9;
    if sched.len() >= 2 && span_s > 0.0 {
        s.offered_rate = Some((sched.len() - 1) as f64 / span_s);
    }
    if let Some(end) = s.window.end_s {
        s.overrun_s = Some(end - a.secs(last));
    }
    // the sending window in bins: its first and last tenth, at least one bin each
    let (lo, hi) = (a.secs(first), a.secs(last));
    let bins: Vec<&crate::timeseries::TsRow> = ts
        .rows
        .iter()
        .filter(|r| r.t_s + r.width_s > lo && r.t_s <= hi)
        .collect();
    if bins.is_empty() {
        return;
    }
    let tenth = (bins.len() / 10).max(1);
    let mean = |rows: &[&crate::timeseries::TsRow]| {
        let w: f64 = rows.iter().map(|r| r.width_s).sum();
        (w > 0.0).then(|| rows.iter().map(|r| r.in_flight * r.width_s).sum::<f64>() / w)
    };
    s.in_flight_start = mean(&bins[..tenth]);
    s.in_flight_end = mean(&bins[bins.len() - tenth..]);
}

/// What schedule lag is, for the health message.
const SCHEDULE_LAG: &str = "schedule lag = dispatch lag less the waits the workload asks for: \
                            a concurrency cap, a session's previous turn";

fn health(lag: &Stats, threshold_ms: f64, sent: usize) -> ClientHealth {
    match lag.p99 {
        Some(p99) if p99 > threshold_ms => ClientHealth {
            ok: false,
            p99_ms: Some(p99),
            threshold_ms,
            message: format!(
                "the client could not keep the schedule: p99 schedule lag {p99:.3} ms exceeds {threshold_ms} ms \
                 (analysis.max_dispatch_lag_ms), so latencies are suspect (requests went out later than planned; \
                 {SCHEDULE_LAG})"
            ),
        },
        Some(p99) => ClientHealth {
            ok: true,
            p99_ms: Some(p99),
            threshold_ms,
            message: format!(
                "the client kept the schedule: p99 schedule lag {p99:.3} ms <= {threshold_ms} ms over {sent} sent requests \
                 ({SCHEDULE_LAG})"
            ),
        },
        None => ClientHealth {
            ok: true,
            p99_ms: None,
            threshold_ms,
            message: "no request was sent, so the schedule was not tested".into(),
        },
    }
}

/// The workload units of the measured requests (`analysis.workload_unit`); a note for those
/// lacking a figure the unit needs.
fn workload_units(a: &Analysis, notes: &mut Vec<String>) -> Option<f64> {
    let unit = match bench_config::analysis::WorkloadUnit::parse(&a.cfg.workload_unit) {
        Ok(u) => u,
        Err(e) => {
            notes.push(format!("analysis.workload_unit: {e}"));
            return None;
        }
    };
    let d = &a.rec.derived;
    let (mut total, mut counted, mut missing) = (0.0, 0u64, 0u64);
    for &i in &a.measured {
        let fields: Option<serde_json::Map<String, serde_json::Value>> = a.rec.fields[i]
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok());
        let num = |x: f64| (!x.is_nan()).then_some(x);
        let var = |name: &str| match name {
            "output_tokens" => num(d.output_tokens[i]),
            "input_tokens" | "prompt_tokens" => num(d.input_tokens[i]),
            "e2el_s" => num(d.e2el_ms[i] / 1e3),
            "ttft_s" => num(d.ttft_ms[i] / 1e3),
            f => fields.as_ref()?.get(f)?.as_f64(),
        };
        match unit.units(&var, &a.cfg.image_unit) {
            Some(u) => {
                total += u;
                counted += 1;
            }
            None => missing += 1,
        }
    }
    if missing > 0 {
        notes.push(format!(
            "{missing} of {} measured requests lack a figure analysis.workload_unit (`{}`) needs: they count no workload units",
            a.measured.len(),
            a.cfg.workload_unit
        ));
    }
    (counted > 0).then_some(total)
}

fn token_counts(a: &Analysis) -> Tokens {
    let d = &a.rec.derived;
    let mut t = Tokens::default();
    for &i in &a.measured {
        let (inp, out) = (d.input_tokens[i], d.output_tokens[i]);
        if inp.is_nan() {
            t.input_missing += 1;
        } else {
            t.total_input += inp;
            if d.input_from_usage[i] {
                t.input_from_usage += 1
            } else {
                t.input_from_client += 1
            }
        }
        if out.is_nan() {
            t.output_missing += 1;
        } else {
            t.total_output += out;
            if d.output_from_usage[i] {
                t.output_from_usage += 1
            } else {
                t.output_from_client += 1
            }
        }
        let (uo, co) = (d.usage_output_tokens[i], d.client_output_tokens[i]);
        if !uo.is_nan() && !co.is_nan() {
            t.output_usage_sum += uo;
            t.output_client_sum += co;
            t.output_mismatches += u64::from(uo != co);
        }
        let (up, cp) = (d.usage_prompt_tokens[i], d.client_prompt_tokens[i]);
        if !up.is_nan() && !cp.is_nan() {
            t.input_usage_sum += up;
            t.input_client_sum += cp;
            t.input_mismatches += u64::from(up != cp);
        }
    }
    t
}

fn run_info(a: &Analysis) -> RunInfo {
    let m = &a.rec.meta;
    let cfg = a.manifest.as_ref().map(|m| &m.config);
    let client = |k: &str| {
        cfg.and_then(|c| c.get("client"))
            .and_then(|c| c.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let man = a.manifest.as_ref();
    let text = |v: Option<&String>| v.filter(|s| !s.is_empty()).cloned();
    RunInfo {
        id: text(man.map(|m| &m.id)),
        name: text(man.map(|m| &m.name)),
        description: text(man.map(|m| &m.description)),
        tags: man.map(|m| m.tags.clone()).unwrap_or_default(),
        run_dir: a.run_dir.display().to_string(),
        started_at: m
            .anchor_unix_ns
            .map(|anchor| crate::format::rfc3339_ns(anchor + a.t0_ns)),
        mode: m.mode.clone(),
        concurrency: m.concurrency,
        api: m.api.clone().or_else(|| client("api")),
        model: client("model"),
        endpoint: client("endpoint"),
        tool_version: a.manifest.as_ref().map(|m| m.tool_version.clone()),
        workload_requests: m.workload_requests,
        complete: m.complete,
    }
}

//! Time series in bins of `analysis.bin_s` seconds from the time origin: offered vs sent vs
//! completed request rate, failures, requests in flight, output tokens/s, and AIBrix's
//! performance-over-time view (latency of the requests sent in each bin).

use bench_types::RequestStatus;

use crate::analyze::Analysis;
use crate::distributions::Brief;
use crate::load::Status;

/// Bins beyond this are merged by widening the bin (a note says so).
const MAX_BINS: usize = 200_000;

/// One bin.
#[derive(Debug, Clone, Default)]
pub struct TsRow {
    /// Bin start, seconds since the time origin.
    pub t_s: f64,
    /// Bin width, seconds (the last bin may be shorter).
    pub width_s: f64,
    /// Non-warmup requests scheduled in the bin, per second.
    pub offered_rps: f64,
    /// Non-warmup requests sent in the bin, per second.
    pub sent_rps: f64,
    /// Measured requests that ended in the bin, per second (achieved rate).
    pub completed_rps: f64,
    /// Failed requests (http_error, timeout, transport_error) that ended in the bin, per second.
    pub failed_rps: f64,
    /// Time-averaged number of requests in flight.
    pub in_flight: f64,
    /// Output tokens of measured requests received in the bin, per second.
    pub output_tps: f64,
    /// Measured requests sent in the bin.
    pub measured_sent: u64,
    /// TTFT of measured requests sent in the bin, ms.
    pub ttft_ms: Brief,
    /// TPOT of measured requests sent in the bin, ms.
    pub tpot_ms: Brief,
    /// E2EL of measured requests sent in the bin, ms.
    pub e2el_ms: Brief,
    /// Mean input tokens of measured requests sent in the bin.
    pub avg_input_tokens: Option<f64>,
    /// Mean output tokens of measured requests sent in the bin.
    pub avg_output_tokens: Option<f64>,
}

/// The series.
#[derive(Debug, Clone, Default)]
pub struct TimeSeries {
    /// Bin width used, seconds.
    pub bin_s: f64,
    /// Bins from the time origin to the last event.
    pub rows: Vec<TsRow>,
    /// Set when the configured bin width was widened.
    pub note: Option<String>,
}

/// Builds the series of `a`.
pub fn build(a: &Analysis) -> TimeSeries {
    let r = &a.rec;
    let t0 = a.t0_ns;
    let nonwarm = (0..r.rows).filter(|&i| !r.warmup[i]);
    let t_last = nonwarm
        .flat_map(|i| [r.scheduled[i], r.sent[i], r.end[i]])
        .flatten()
        .max()
        .unwrap_or(t0);
    let span = (t_last - t0).max(1) as f64;
    let mut bin_ns = a.cfg.bin_s * 1e9;
    let mut note = None;
    if span / bin_ns > MAX_BINS as f64 {
        let wider = span / MAX_BINS as f64;
        note = Some(format!(
            "time series bins widened from {} s to {} s (at most {MAX_BINS} bins)",
            a.cfg.bin_s,
            crate::format::num(Some(wider / 1e9))
        ));
        bin_ns = wider;
    }
    let k = ((span / bin_ns).ceil() as usize).max(1);
    let bin_of = |t: i64| ((((t - t0) as f64) / bin_ns).floor().max(0.0) as usize).min(k - 1);
    let width = |b: usize| (bin_ns.min(span - b as f64 * bin_ns)).max(0.0);

    let mut offered = vec![0u64; k];
    let mut sent = vec![0u64; k];
    let mut completed = vec![0u64; k];
    let mut failed = vec![0u64; k];
    let mut tokens = vec![0f64; k];
    let mut busy = vec![0f64; k];
    let mut full = vec![0i64; k + 1];
    let mut by_sent: Vec<Vec<usize>> = vec![Vec::new(); k];
    for i in (0..r.rows).filter(|&i| !r.warmup[i]) {
        if let Some(s) = r.scheduled[i] {
            offered[bin_of(s)] += 1;
        }
        let Some(s) = r.sent[i] else { continue };
        sent[bin_of(s)] += 1;
        let e = r.end[i].unwrap_or(t_last).max(s);
        let (b0, b1) = (bin_of(s), bin_of(e));
        let start_of = |b: usize| t0 as f64 + b as f64 * bin_ns;
        if b0 == b1 {
            busy[b0] += (e - s) as f64;
        } else {
            busy[b0] += start_of(b0 + 1) - s as f64;
            busy[b1] += e as f64 - start_of(b1);
            full[b0 + 1] += 1;
            full[b1] -= 1;
        }
        if matches!(
            r.status[i],
            Status::Known(
                RequestStatus::HttpError | RequestStatus::Timeout | RequestStatus::TransportError
            )
        ) {
            failed[bin_of(r.end[i].unwrap_or(s))] += 1;
        }
    }
    let mut running = 0i64;
    for b in 0..k {
        running += full[b];
        busy[b] += running as f64 * width(b);
    }
    for &i in &a.measured {
        if let Some(e) = r.end[i] {
            completed[bin_of(e)] += 1;
        }
        if let Some(s) = r.sent[i] {
            by_sent[bin_of(s)].push(i);
        }
    }
    let out_tokens = &r.derived.output_tokens;
    let mut is_measured = vec![false; r.rows];
    for &i in &a.measured {
        is_measured[i] = true;
    }
    r.chunks.for_each(|i, ch| {
        if !is_measured[i] || out_tokens[i].is_nan() {
            return;
        }
        if ch.is_empty() {
            if let Some(e) = r.end[i] {
                tokens[bin_of(e)] += out_tokens[i];
            }
        } else {
            let per = out_tokens[i] / ch.len() as f64;
            for &t in ch {
                tokens[bin_of(t)] += per;
            }
        }
    });
    let d = &r.derived;
    let rows = (0..k)
        .map(|b| {
            let w = width(b);
            let per_s = |n: f64| if w > 0.0 { n / (w / 1e9) } else { 0.0 };
            let rows = &by_sent[b];
            TsRow {
                t_s: b as f64 * bin_ns / 1e9,
                width_s: w / 1e9,
                offered_rps: per_s(offered[b] as f64),
                sent_rps: per_s(sent[b] as f64),
                completed_rps: per_s(completed[b] as f64),
                failed_rps: per_s(failed[b] as f64),
                in_flight: if w > 0.0 { busy[b] / w } else { 0.0 },
                output_tps: per_s(tokens[b]),
                measured_sent: rows.len() as u64,
                ttft_ms: Brief::of(&d.ttft_ms, rows),
                tpot_ms: Brief::of(&d.tpot_ms, rows),
                e2el_ms: Brief::of(&d.e2el_ms, rows),
                avg_input_tokens: Brief::of(&d.input_tokens, rows).mean,
                avg_output_tokens: Brief::of(&d.output_tokens, rows).mean,
            }
        })
        .collect();
    TimeSeries {
        bin_s: bin_ns / 1e9,
        rows,
        note,
    }
}

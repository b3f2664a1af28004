//! The verdict: what a reader must know first, before any latency figure. Failures lead (with
//! the most common error), then how much of the run the figures cover, then whether the client
//! itself held up (schedule lag, CPU starvation), then token counts that disagree.

use std::collections::HashMap;

use bench_types::manifest::Stage;
use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::load::Status;
use crate::summary::{ClientHealth, Counts, Summary, Tokens};

/// How the run went, in one word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every sent request succeeded and nothing below needs a second look.
    #[default]
    Ok,
    /// The figures hold, but something needs reading: some failures, few requests measured,
    /// the client lagging or starved of CPU, token counts that disagree.
    Warning,
    /// Most requests failed, or none succeeded: the latency figures describe (almost) nothing.
    Failed,
}

impl Outcome {
    /// `OK`, `WARNING`, `FAILED`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Warning => "WARNING",
            Outcome::Failed => "FAILED",
        }
    }
}

/// summary.json's `verdict`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// The overall outcome.
    pub outcome: Outcome,
    /// Findings, most important first; the first is the headline.
    pub lines: Vec<String>,
    /// The most common error message of the failed requests, with its count.
    pub top_error: Option<TopError>,
}

/// The most common error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopError {
    /// The message as recorded.
    pub message: String,
    /// Failed requests that ended with it.
    pub count: u64,
}

/// Below this share of measured requests, the figures cover too little of the run to stand
/// for it without saying so.
const MEASURED_SHARE: f64 = 0.5;
/// The dispatch thread waiting for a CPU longer than this share of the run (and at least
/// [`CPU_WAIT_MIN_MS`]) means the client was starved: its send and receive times are late.
const CPU_WAIT_SHARE: f64 = 0.02;
/// See [`CPU_WAIT_SHARE`].
const CPU_WAIT_MIN_MS: f64 = 100.0;
/// Client and server output token totals further apart than this are worth a line.
const TOKEN_GAP: f64 = 0.01;

/// A message with its numbers blanked, so errors that differ only in a count, a size or a port
/// group together.
fn shape(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut in_number = false;
    for c in m.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// The most common error of the failed requests: messages grouped by their shape (numbers
/// blanked), the first message of the largest group shown.
fn top_error(a: &Analysis) -> Option<TopError> {
    let r = &a.rec;
    let mut by: HashMap<String, (u64, usize)> = HashMap::new();
    for i in 0..r.rows {
        let failed = matches!(r.status[i], Status::Known(s) if s.is_failure());
        if failed && !r.warmup[i] && !a.outside[i] {
            let m = r.error[i].as_deref().unwrap_or("(no message)");
            by.entry(shape(m)).or_insert((0, i)).0 += 1;
        }
    }
    by.into_values()
        .max_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)))
        .map(|(n, i)| TopError {
            message: r.error[i].clone().unwrap_or_else(|| "(no message)".into()),
            count: n,
        })
}

/// A message shortened for one line.
fn short(m: &str) -> String {
    let m = m.replace(['\n', '\r'], " ");
    if m.chars().count() > 160 {
        format!("{}...", m.chars().take(160).collect::<String>())
    } else {
        m
    }
}

/// The client's CPU wait from the manifest's client stage: (wait ms, share of the run).
fn cpu_wait(a: &Analysis) -> Option<(f64, f64)> {
    let stats = &a.manifest.as_ref()?.stage(Stage::Client)?.stats;
    let get = |k: &str| stats.get(k).and_then(|v| v.as_f64());
    let wait = get("dispatch_thread_cpu_wait_ms")?;
    let busy = get("dispatch_thread_cpu_ms").unwrap_or(0.0);
    let span_ms = (get("elapsed_s").unwrap_or(0.0) * 1000.0)
        .max(busy + wait)
        .max(1.0);
    Some((wait, wait / span_ms))
}

/// The verdict of a run whose counts, client health and token totals are computed.
pub fn judge(a: &Analysis, c: &Counts, health: &mut ClientHealth, t: &Tokens) -> Verdict {
    let mut v = Verdict {
        top_error: top_error(a),
        ..Verdict::default()
    };
    let sent = c.ok + c.failed + c.cancelled + c.unknown_status;
    // the requests the figures could cover: warmup and outside analysis.window are left out
    let requests = c.rows - c.warmup - c.outside_window;
    let warn = |v: &mut Verdict, line: String| {
        if v.outcome == Outcome::Ok {
            v.outcome = Outcome::Warning;
        }
        v.lines.push(line);
    };
    let top = v
        .top_error
        .as_ref()
        .map(|e| {
            format!(
                "; most common error ({} of them): {}",
                e.count,
                short(&e.message)
            )
        })
        .unwrap_or_default();
    if sent == 0 {
        v.outcome = Outcome::Failed;
        v.lines.push(format!(
            "no request was sent ({requests} in the workload, {} not sent)",
            c.not_sent
        ));
    } else if c.ok == 0 || c.failed as f64 > a.cfg.max_error_rate * sent as f64 {
        v.outcome = Outcome::Failed;
        v.lines.push(format!(
            "{} of {sent} sent requests failed ({} http, {} timeout, {} transport; more than analysis.max_error_rate = {}){top}",
            c.failed, c.http_error, c.timeout, c.transport_error, a.cfg.max_error_rate
        ));
    } else if c.failed > 0 {
        warn(
            &mut v,
            format!(
                "{} of {sent} sent requests failed ({} http, {} timeout, {} transport){top}",
                c.failed, c.http_error, c.timeout, c.transport_error
            ),
        );
    }
    if requests > 0
        && (c.measured as f64) < MEASURED_SHARE * requests as f64
        && v.outcome != Outcome::Failed
    {
        let mut left = Vec::new();
        for (n, what) in [
            (c.cancelled, "cancelled"),
            (c.not_sent, "not sent"),
            (c.failed, "failed"),
        ] {
            if n > 0 {
                left.push(format!("{n} {what}"));
            }
        }
        warn(
            &mut v,
            format!(
                "only {} of {requests} requests are measured ({}): the latency figures cover those {} alone",
                c.measured,
                left.join(", "),
                c.measured
            ),
        );
    }
    if let Some((wait_ms, share)) = cpu_wait(a)
        && share > CPU_WAIT_SHARE
        && wait_ms >= CPU_WAIT_MIN_MS
    {
        health.ok = false;
        health.message = format!(
            "{}; and the client's dispatch thread waited {wait_ms:.0} ms for a CPU ({:.1}% of the run): other processes held the cores, so send and receive times are late",
            health.message,
            share * 100.0
        );
    }
    if !health.ok {
        warn(&mut v, format!("client: {}", health.message));
    }
    if t.output_mismatches > 0 && t.output_usage_sum > 0.0 {
        let gap = (t.output_client_sum - t.output_usage_sum) / t.output_usage_sum;
        if gap.abs() > TOKEN_GAP {
            warn(
                &mut v,
                format!(
                    "tokens: the server's usage and the client's tokenizer disagree on the output of {} requests (server {:.0}, client {:.0} tokens in all, {:+.1}%): the metrics use {}; set `tokenizer` to the served model's tokenizer.json (or `tokenizer: auto`) for counts that agree",
                    t.output_mismatches,
                    t.output_usage_sum,
                    t.output_client_sum,
                    gap * 100.0,
                    match a.cfg.token_source {
                        bench_config::analysis::TokenSource::Usage => "the server's counts",
                        bench_config::analysis::TokenSource::Client =>
                            "the client's counts (analysis.token_source)",
                    }
                ),
            );
        }
    }
    if v.lines.is_empty() {
        v.lines.push(format!(
            "{} of {sent} sent requests succeeded; {}",
            c.ok, health.message
        ));
    }
    v
}

/// One of analysis.thresholds, judged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// The condition as configured (`ttft_ms.p99 < 500`).
    pub threshold: String,
    /// The figure's value in this run (null: the run has none).
    pub value: Option<f64>,
    /// Whether it holds.
    pub pass: bool,
}

/// Achieved below this share of the offered rate, with an overrun, is saturation.
const ACHIEVED_SHARE: f64 = 0.9;
/// An overrun longer than this share of the workload's span (and [`OVERRUN_MIN_S`]).
const OVERRUN_SHARE: f64 = 0.1;
/// See [`OVERRUN_SHARE`].
const OVERRUN_MIN_S: f64 = 2.0;

/// Judges every `analysis.thresholds` condition against the finished summary.
pub fn thresholds(s: &Summary, list: &[bench_config::Threshold]) -> Vec<ThresholdResult> {
    let v = serde_json::to_value(s).unwrap_or_default();
    list.iter()
        .map(|t| {
            let value = crate::csv::lookup(&v, &t.figure).and_then(serde_json::Value::as_f64);
            ThresholdResult {
                threshold: t.to_string(),
                value,
                pass: value.is_some_and(|x| t.op.holds(x, t.bound)),
            }
        })
        .collect()
}

/// Whether the server fell behind the offered load: (line, saturated).
pub fn saturation(s: &Summary) -> Option<String> {
    let (offered, achieved) = (s.offered_rate?, s.achieved_rate?);
    let span = s.window.end_s? - s.overrun_s.unwrap_or(0.0) - s.window.start_s.unwrap_or(0.0);
    let overrun = s.overrun_s.unwrap_or(0.0);
    // A healthy run ends about one request's latency after its last send: only an overrun
    // past twice the median latency (and 2 s, and a tenth of the span) says the server fell
    // behind; achieved then trails offered for that reason, not for the window's tail.
    let late = overrun
        > OVERRUN_MIN_S
            .max(OVERRUN_SHARE * span.max(0.0))
            .max(2.0 * s.e2el_ms.p50.unwrap_or(0.0) / 1000.0);
    let behind = achieved < ACHIEVED_SHARE * offered && late;
    let (f0, f1) = (
        s.in_flight_start.unwrap_or(0.0),
        s.in_flight_end.unwrap_or(0.0),
    );
    let grew = f1 >= 2.0 * f0.max(1.0) && f1 - f0 >= 4.0;
    let queue = s
        .server
        .as_ref()
        .and_then(|x| Some((x.waiting_start?, x.waiting_end?)))
        .filter(|(a, b)| *b >= 2.0 * a.max(1.0) && b - a >= 4.0);
    if !(behind || (grew && late) || queue.is_some()) {
        return None;
    }
    let mut line = format!(
        "server saturated: achieved {} of {} req/s offered",
        crate::format::num(Some(achieved)),
        crate::format::num(Some(offered))
    );
    if grew {
        line.push_str(&format!("; in flight grew from {f0:.0} to {f1:.0}"));
    }
    if let Some((a, b)) = queue {
        line.push_str(&format!(
            "; the server's queue grew from {a:.0} to {b:.0} waiting"
        ));
    }
    line.push_str(&format!(
        "; the run took {overrun:.1} s past the workload's {span:.1} s: latencies include time queued behind the overload"
    ));
    Some(line)
}

/// The verdict's last findings, once every figure is known: saturation (a warning) and the
/// thresholds (any FAIL fails the run).
pub fn finish(s: &mut Summary, list: &[bench_config::Threshold]) {
    s.thresholds = thresholds(s, list);
    let was_ok = s.verdict.outcome == Outcome::Ok;
    if let Some(line) = saturation(s) {
        if s.verdict.outcome == Outcome::Ok {
            s.verdict.outcome = Outcome::Warning;
        }
        // after any failure line, before the rest
        let at = usize::from(s.verdict.outcome == Outcome::Failed && !was_ok);
        s.verdict.lines.insert(at.min(s.verdict.lines.len()), line);
    }
    let failed: Vec<&ThresholdResult> = s.thresholds.iter().filter(|t| !t.pass).collect();
    if !failed.is_empty() {
        let parts: Vec<String> = failed
            .iter()
            .map(|t| match t.value {
                Some(v) => format!("{} (is {})", t.threshold, crate::format::num(Some(v))),
                None => format!("{} (no value in this run)", t.threshold),
            })
            .collect();
        let line = format!(
            "{} of {} thresholds failed: {}",
            failed.len(),
            s.thresholds.len(),
            parts.join("; ")
        );
        let at = usize::from(s.verdict.outcome == Outcome::Failed);
        s.verdict.outcome = Outcome::Failed;
        s.verdict.lines.insert(at.min(s.verdict.lines.len()), line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 30 s open-loop workload offered at `offered` req/s that achieved `achieved` and ended
    /// `overrun` s after its last scheduled request, in flight going from `f0` to `f1`.
    fn load(offered: f64, achieved: f64, overrun: f64, f0: f64, f1: f64) -> Summary {
        let mut s = Summary {
            offered_rate: Some(offered),
            achieved_rate: Some(achieved),
            overrun_s: Some(overrun),
            in_flight_start: Some(f0),
            in_flight_end: Some(f1),
            ..Summary::default()
        };
        s.window.start_s = Some(0.0);
        s.window.end_s = Some(30.0 + overrun);
        s.e2el_ms.p50 = Some(1500.0);
        s.verdict.lines = vec!["100 of 100 sent requests succeeded".into()];
        s
    }

    #[test]
    fn saturation_is_said_with_its_numbers_and_a_healthy_run_is_left_alone() {
        // the Azure replay at 10x of the issue: 48.2 offered, 12.1 achieved, 89 s late
        let mut s = load(48.2, 12.1, 89.0, 3.0, 290.0);
        finish(&mut s, &[]);
        assert_eq!(s.verdict.outcome, Outcome::Warning);
        assert_eq!(
            s.verdict.lines[0],
            "server saturated: achieved 12.10 of 48.20 req/s offered; in flight grew from 3 to 290; the run took 89.0 s past the workload's 30.0 s: latencies include time queued behind the overload"
        );
        assert_eq!(s.verdict.lines.len(), 2, "the OK line stays, second");
        // a healthy run: achieved a little under offered (the window includes the last
        // request's latency), in flight steady
        let mut s = load(4.5, 4.05, 1.3, 6.0, 5.0);
        finish(&mut s, &[]);
        assert_eq!(s.verdict.outcome, Outcome::Ok);
        // growing queue alone, the run still long: said
        let mut s = load(10.0, 9.5, 5.0, 2.0, 40.0);
        finish(&mut s, &[]);
        assert!(s.verdict.lines[0].starts_with("server saturated: achieved 9.500 of 10.00 req/s offered; in flight grew from 2 to 40"), "{:?}", s.verdict.lines);
        // long requests: a run ends one latency after its last send, achieved trails offered
        // for that alone (60 s at 1 req/s of 30 s requests): not saturation
        let mut s = load(1.0, 0.67, 31.0, 20.0, 30.0);
        s.e2el_ms.p50 = Some(30_000.0);
        finish(&mut s, &[]);
        assert_eq!(s.verdict.outcome, Outcome::Ok, "{:?}", s.verdict.lines);
        // a closed loop has no offered rate: never saturated by this rule
        let mut s = load(10.0, 1.0, 50.0, 1.0, 100.0);
        s.offered_rate = None;
        finish(&mut s, &[]);
        assert_eq!(s.verdict.outcome, Outcome::Ok);
    }

    #[test]
    fn thresholds_pass_fail_and_missing_values_fail_the_run() {
        let mut s = load(4.5, 4.05, 1.3, 6.0, 5.0);
        s.ttft_ms.p99 = Some(612.5);
        s.error_rate = Some(0.0);
        let list: Vec<bench_config::Threshold> = [
            "ttft_ms.p99 < 500",
            "error_rate <= 0.01",
            "goodput_ratio >= 0.9",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        finish(&mut s, &list);
        let got: Vec<(Option<f64>, bool)> =
            s.thresholds.iter().map(|t| (t.value, t.pass)).collect();
        assert_eq!(
            got,
            [(Some(612.5), false), (Some(0.0), true), (None, false)]
        );
        assert_eq!(s.verdict.outcome, Outcome::Failed);
        assert_eq!(
            s.verdict.lines[0],
            "2 of 3 thresholds failed: ttft_ms.p99 < 500 (is 612.5); goodput_ratio >= 0.9 (no value in this run)"
        );
        // all pass: the outcome is untouched
        let mut s = load(4.5, 4.05, 1.3, 6.0, 5.0);
        s.error_rate = Some(0.0);
        finish(&mut s, &list[1..2]);
        assert_eq!(
            (s.verdict.outcome, s.thresholds[0].pass),
            (Outcome::Ok, true)
        );
    }

    #[test]
    fn messages_differing_in_numbers_share_a_shape() {
        assert_eq!(
            shape("buffered 103.8 MiB of 250 MiB"),
            shape("buffered 7.25 MiB of 250 MiB")
        );
        assert_eq!(
            shape("connect: 127.0.0.1:8000: refused"),
            "connect: #:#: refused"
        );
        assert_ne!(shape("HTTP 404: no model"), shape("HTTP 500: boom"));
    }
}

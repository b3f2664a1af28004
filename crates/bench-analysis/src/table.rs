//! The terminal summary printed at the end of every run.

use std::fmt::Write as _;

use crate::format::{num, pct};
use crate::goodput;
use crate::stats::Stats;
use crate::summary::Summary;

/// Width of the table's rules.
const WIDTH: usize = 92;

fn rule(out: &mut String, title: &str) {
    let pad = WIDTH.saturating_sub(title.len() + 4);
    let _ = writeln!(out, "== {title} {}", "=".repeat(pad));
}

/// Rows of the latency table: (label, summary.json key, stats).
pub fn metric_rows(s: &Summary) -> [(&'static str, &Stats); 9] {
    [
        ("TTFT (ms)", &s.ttft_ms),
        ("TPOT (ms)", &s.tpot_ms),
        ("ITL (ms)", &s.itl_ms),
        ("E2EL (ms)", &s.e2el_ms),
        ("TTFB (ms)", &s.ttfb_ms),
        ("Output tok/s per req", &s.request_output_throughput),
        ("Dispatch lag (ms)", &s.dispatch_lag_ms),
        ("Queue delay (ms)", &s.queue_delay_ms),
        ("Schedule lag (ms)", &s.schedule_lag_ms),
    ]
}

/// The text table for `s`.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    rule(&mut out, &format!("bench analysis: {}", s.run.run_dir));
    // what to know first: failures, coverage, the client's own health, token counts
    let v = &s.verdict;
    for (k, line) in v.lines.iter().enumerate() {
        let tag = if k == 0 { v.outcome.label() } else { "" };
        let _ = writeln!(out, "{tag:<8}{line}");
    }
    let c = &s.counts;
    let mut mode = s.run.mode.clone().unwrap_or_else(|| "-".into());
    if let Some(n) = s.run.concurrency {
        let _ = write!(mode, ", concurrency {n}");
    }
    let _ = writeln!(out, "{:<28}{}", "Mode", mode);
    if let Some(m) = &s.run.model {
        let _ = writeln!(out, "{:<28}{}", "Model", m);
    }
    let _ = writeln!(
        out,
        "{:<28}{} rows: {} ok, {} failed (http {} / timeout {} / transport {}), {} cancelled, {} not sent, {} warmup",
        "Requests",
        c.rows,
        c.ok,
        c.failed,
        c.http_error,
        c.timeout,
        c.transport_error,
        c.cancelled,
        c.not_sent,
        c.warmup
    );
    let excl: u64 = s
        .excluded
        .iter()
        .filter(|e| e.reason != "missing_rows")
        .map(|e| e.count)
        .sum();
    let why: Vec<String> = s
        .excluded
        .iter()
        .map(|e| format!("{} {}", e.count, e.reason))
        .collect();
    let _ = writeln!(
        out,
        "{:<28}{} measured, {} excluded{}",
        "Measured",
        c.measured,
        excl,
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        }
    );
    let _ = writeln!(out, "{:<28}{}", "Duration (s)", num(s.duration_s));
    let _ = writeln!(
        out,
        "{:<28}{}",
        "Request throughput (req/s)",
        num(s.request_throughput)
    );
    offered_row(&mut out, s);
    let _ = writeln!(
        out,
        "{:<28}{}",
        "Input tokens/s",
        num(s.input_token_throughput)
    );
    let _ = writeln!(
        out,
        "{:<28}{}",
        "Output tokens/s",
        num(s.output_token_throughput)
    );
    let _ = writeln!(
        out,
        "{:<28}{}",
        "Total tokens/s",
        num(s.total_token_throughput)
    );
    if s.workload_unit != "tokens" && !s.workload_unit.is_empty() {
        let _ = writeln!(
            out,
            "{:<28}{} ({})",
            "Workload units/s",
            num(s.workload_unit_throughput),
            s.workload_unit
        );
    }
    if let Some(b) = s.sent.as_ref().filter(|b| b.requests_with_images > 0) {
        let mb = |x: u64| x as f64 / 1e6;
        let _ = writeln!(
            out,
            "{:<28}{} requests, {:.1} MB of images (mean {:.1} KB per request), {:.1} MB of request bodies",
            "Images sent",
            b.requests_with_images,
            mb(b.image_bytes_total),
            b.image_bytes.mean.unwrap_or(0.0) / 1e3,
            mb(b.request_bytes_total)
        );
    }
    if s.slo.good_requests.is_some() {
        let _ = writeln!(
            out,
            "{:<28}{} req/s ({} good, {} of requests met {})",
            "Goodput",
            num(s.goodput),
            s.slo.good_requests.unwrap_or(0),
            pct(s.slo.attainment),
            goodput::describe(&s.slo)
        );
    } else {
        let _ = writeln!(out, "{:<28}- (no SLO set: analysis.slo.*)", "Goodput");
    }
    let h = &s.client_health;
    let _ = writeln!(
        out,
        "{:<28}{}",
        "Client timing",
        if h.ok {
            "ok"
        } else {
            "NOT OK: latencies are suspect (see above)"
        }
    );
    threshold_rows(&mut out, s);
    rule(&mut out, "per request");
    let cols = ["n", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"];
    let _ = write!(out, "{:<22}", "");
    for k in cols {
        let _ = write!(out, "{k:>8}");
    }
    out.push('\n');
    stat_rows(&mut out, &metric_rows(s), &cols);
    if let Some(q) = &s.reasoning {
        rule(
            &mut out,
            &format!(
                "reasoning ({} requests: {} reasoning + {} answer tokens)",
                q.requests_with_reasoning,
                num(Some(q.total_reasoning_tokens)),
                num(Some(q.total_answer_tokens))
            ),
        );
        stat_rows(&mut out, &reasoning_rows(q), &cols);
    }
    if !s.breakdowns.dataset.is_empty() {
        dataset_rows(&mut out, &s.breakdowns.dataset);
    }
    if let Some(sv) = &s.server {
        server_rows(&mut out, sv);
    }
    if let Some(t) = &s.server_timings {
        timing_rows(&mut out, t, s);
    }
    let notes: Vec<&String> = s
        .notes
        .iter()
        .filter(|n| !n.starts_with("excluded from the metrics"))
        .collect();
    if !notes.is_empty() {
        rule(&mut out, "notes");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    if !s.files.is_empty() {
        let plots = s.files.iter().filter(|f| f.starts_with("plots/")).count();
        let mut listed: Vec<String> = s
            .files
            .iter()
            .filter(|f| !f.starts_with("plots/"))
            .cloned()
            .collect();
        if plots > 0 {
            listed.push(format!("plots/ ({plots} files)"));
        }
        let _ = writeln!(out, "{:<28}{}", "Wrote", listed.join(", "));
    }
    out.push_str(&"=".repeat(WIDTH));
    out
}

/// Rows of the reasoning table: (label, stats).
pub fn reasoning_rows(q: &crate::summary::ReasoningSummary) -> [(&'static str, &Stats); 6] {
    [
        ("TTFT reasoning (ms)", &q.ttft_reasoning_ms),
        ("TTFT answer (ms)", &q.ttft_answer_ms),
        ("Thinking time (ms)", &q.thinking_ms),
        ("Answer TPOT (ms)", &q.answer_tpot_ms),
        ("Reasoning tokens", &q.reasoning_tokens),
        ("Answer tokens", &q.answer_tokens),
    ]
}

/// One line per statistic, the columns `cols` (`n` is the count).
fn stat_rows(out: &mut String, rows: &[(&str, &Stats)], cols: &[&str]) {
    for (label, st) in rows {
        let _ = write!(out, "{label:<22}");
        for &k in cols {
            let text = if k == "n" {
                st.count.to_string()
            } else {
                num(st.get(k))
            };
            let _ = write!(out, "{text:>8}");
        }
        out.push('\n');
    }
}

/// The measured requests of each named dataset: p50 and p99 of the latencies.
fn dataset_rows(out: &mut String, rows: &[crate::distributions::GroupRow]) {
    rule(out, "by dataset");
    let _ = writeln!(
        out,
        "{:<22}{:>6}{:>10}{:>8}{:>10}{:>8}{:>10}{:>8}{:>10}",
        "dataset", "n", "TTFT p50", "p99", "TPOT p50", "p99", "E2EL p50", "p99", "out tok/s"
    );
    for g in rows {
        let _ = writeln!(
            out,
            "{:<22}{:>6}{:>10}{:>8}{:>10}{:>8}{:>10}{:>8}{:>10}",
            g.label,
            g.requests,
            num(g.ttft_ms.p50),
            num(g.ttft_ms.p99),
            num(g.tpot_ms.p50),
            num(g.tpot_ms.p99),
            num(g.e2el_ms.p50),
            num(g.e2el_ms.p99),
            num(g.request_output_throughput.mean)
        );
    }
}

/// The server's side: its histograms beside the client's percentiles, its gauges and counters.
fn server_rows(out: &mut String, sv: &crate::server::ServerSummary) {
    rule(out, &format!("server ({})", sv.describe("scrapes")));
    let hists = [
        ("TTFT (ms)", &sv.ttft_ms),
        ("ITL (ms)", &sv.itl_ms),
        ("E2EL (ms)", &sv.e2el_ms),
        ("Queue (ms)", &sv.queue_ms),
        ("Prefill (ms)", &sv.prefill_ms),
        ("Decode (ms)", &sv.decode_ms),
    ];
    if hists.iter().any(|(_, h)| h.is_some()) {
        let _ = writeln!(
            out,
            "{:<22}{:>8}{:>8}{:>8}{:>8}{:>12}{:>12}{:>10}",
            "server vs client", "n", "mean", "p50", "p99", "client p50", "client p99", "gap p50"
        );
        for (label, h) in hists {
            let Some(h) = h else { continue };
            let _ = writeln!(
                out,
                "{label:<22}{:>8}{:>8}{:>8}{:>8}{:>12}{:>12}{:>10}",
                format!("{:.0}", h.count),
                num(h.mean),
                num(h.p50),
                num(h.p99),
                num(h.client_p50),
                num(h.client_p99),
                num(h.gap_p50_ms)
            );
        }
    }
    let pair = |label: &str, mean: Option<f64>, max: Option<f64>, out: &mut String| {
        if mean.is_some() || max.is_some() {
            let _ = writeln!(out, "{label:<28}mean {}, max {}", num(mean), num(max));
        }
    };
    pair("Running requests", sv.running_mean, sv.running_max, out);
    pair("Waiting requests", sv.waiting_mean, sv.waiting_max, out);
    pair(
        "KV-cache usage",
        sv.kv_cache_usage_mean,
        sv.kv_cache_usage_max,
        out,
    );
    if let Some(h) = sv.prefix_cache_hit_rate {
        let _ = writeln!(out, "{:<28}{}", "Prefix-cache hit rate", pct(Some(h)));
    }
    if sv.output_token_throughput.is_some() {
        let _ = writeln!(
            out,
            "{:<28}server {}, client {} (same window)",
            "Output tokens/s",
            num(sv.output_token_throughput),
            num(sv.client_output_token_throughput)
        );
    }
    if let Some(p) = sv.preemptions.filter(|p| *p > 0.0) {
        let _ = writeln!(out, "{:<28}{}", "Preemptions", num(Some(p)));
    }
}

/// The server's own per-request timings beside the client's figures for the same requests.
fn timing_rows(out: &mut String, t: &crate::server::ServerTimings, s: &Summary) {
    rule(
        out,
        &format!("server-reported timings ({} requests)", t.requests),
    );
    let _ = writeln!(
        out,
        "{:<22}{:>8}{:>8}{:>8}{:>8}   client's figure for the same",
        "", "n", "mean", "p50", "p99"
    );
    let rows: [(&str, &crate::stats::Stats, String); 6] = [
        ("Queue (ms)", &t.queue_ms, String::new()),
        (
            "Prefill (ms)",
            &t.prefill_ms,
            format!(
                "TTFT p50 {}, p99 {}",
                num(s.ttft_ms.p50),
                num(s.ttft_ms.p99)
            ),
        ),
        ("Decode (ms)", &t.decode_ms, String::new()),
        (
            "Decode/token (ms)",
            &t.server_tpot_ms,
            format!(
                "TPOT p50 {}, p99 {}",
                num(s.tpot_ms.p50),
                num(s.tpot_ms.p99)
            ),
        ),
        (
            "TTFT outside (ms)",
            &t.ttft_outside_ms,
            "TTFT - queue - prefill".into(),
        ),
        (
            "TPOT gap (ms)",
            &t.tpot_gap_ms,
            "client TPOT - server".into(),
        ),
    ];
    for (label, st, beside) in rows {
        if st.count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "{label:<22}{:>8}{:>8}{:>8}{:>8}   {beside}",
            st.count,
            num(st.mean),
            num(st.p50),
            num(st.p99)
        );
    }
    if let Some(c) = t.cached_prompt_tokens {
        let _ = writeln!(out, "{:<28}{}", "Cached prompt tokens", num(Some(c)));
    }
}

/// Offered against achieved rate, and how long the run went past the workload's span.
fn offered_row(out: &mut String, s: &Summary) {
    if let Some(offered) = s.offered_rate {
        let _ = writeln!(
            out,
            "{:<28}{} req/s offered, {} achieved; {} s past the workload's span",
            "Offered / achieved",
            num(Some(offered)),
            num(s.achieved_rate),
            num(s.overrun_s)
        );
    }
}

/// Every `analysis.thresholds` condition, PASS or FAIL with its value.
fn threshold_rows(out: &mut String, s: &Summary) {
    if !s.thresholds.is_empty() {
        let failed = s.thresholds.iter().filter(|t| !t.pass).count();
        let _ = writeln!(
            out,
            "{:<28}{} of {} pass",
            "Thresholds",
            s.thresholds.len() - failed,
            s.thresholds.len()
        );
        for t in &s.thresholds {
            let _ = writeln!(
                out,
                "  {:<6}{} (is {})",
                if t.pass { "PASS" } else { "FAIL" },
                t.threshold,
                t.value.map_or("no value".to_string(), |v| num(Some(v)))
            );
        }
    }
}

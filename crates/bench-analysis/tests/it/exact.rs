//! Every summary figure of a tiny run with known timestamps, checked against hand computation.
//!
//! The run (times in ms from the time origin; `+x` is relative to the request's sent time):
//!
//! | id | status | scheduled | ready | sent | first byte | first token | chunks | end | tokens in / out |
//! |---|---|---|---|---|---|---|---|---|---|
//! | 0 | ok, warmup | -50 | | -50 | | -40 | | -30 | |
//! | 1 (A) | ok, session 1 turn 0 | 0 | 0 | 0.5 | +50 | +100 | +100 +120 +150 +200 | +200 | usage 100 / usage 5 (client 5) |
//! | 2 (B) | ok, session 1 turn 1 | 100 | | 101 | +40 | +60 | +60 +100 | +300 | client 200 / client 3 |
//! | 3 (C) | ok | 200 | 200 | 210 | | +20 | +20 | +20 | usage 50 (client 52) / usage 1 |
//! | 4 (D) | http_error | 300 | | 300.25 | | | | 305 | |
//! | 5 (E) | cancelled | 400 | | 400 | | 410 | 410 420 | 430 | |
//! | 6 (F) | not_sent | 500 | | | | | | | |
//! | 7 (G) | ok, first token after end | 600 | | 600 | | 650 | | 640 | |
//!
//! and the file's metadata says the workload had 10 requests.

use crate::support::{MS, Row};
use bench_analysis::summary::Summary;
use bench_config::Config;
use bench_types::record::meta;

fn t(ms: f64) -> i64 {
    (ms * MS as f64).round() as i64
}

fn rows() -> Vec<Row> {
    let a_sent = t(0.5);
    let b_sent = t(101.0);
    let c_sent = t(210.0);
    vec![
        Row {
            request_id: 0,
            warmup: true,
            scheduled: t(-50.0),
            sent: Some(t(-50.0)),
            first_token: Some(t(-40.0)),
            end: Some(t(-30.0)),
            ..Row::default()
        },
        Row {
            request_id: 1,
            session_id: Some(1),
            turn: Some(0),
            scheduled: 0,
            ready: Some(0),
            sent: Some(a_sent),
            first_byte: Some(a_sent + 50 * MS),
            first_token: Some(a_sent + 100 * MS),
            chunks: [100, 120, 150, 200]
                .iter()
                .map(|x| a_sent + x * MS)
                .collect(),
            end: Some(a_sent + 200 * MS),
            prompt_tokens: Some(100),
            usage_prompt: Some(100),
            output_tokens: Some(5),
            usage_output: Some(5),
            ..Row::default()
        },
        Row {
            request_id: 2,
            session_id: Some(1),
            turn: Some(1),
            scheduled: t(100.0),
            sent: Some(b_sent),
            first_byte: Some(b_sent + 40 * MS),
            first_token: Some(b_sent + 60 * MS),
            chunks: vec![b_sent + 60 * MS, b_sent + 100 * MS],
            end: Some(b_sent + 300 * MS),
            prompt_tokens: Some(200),
            output_tokens: Some(3),
            ..Row::default()
        },
        Row {
            request_id: 3,
            scheduled: t(200.0),
            ready: Some(t(200.0)),
            sent: Some(c_sent),
            first_token: Some(c_sent + 20 * MS),
            chunks: vec![c_sent + 20 * MS],
            end: Some(c_sent + 20 * MS),
            prompt_tokens: Some(52),
            usage_prompt: Some(50),
            output_tokens: Some(1),
            usage_output: Some(1),
            ..Row::default()
        },
        Row {
            request_id: 4,
            status: "http_error",
            http_status: Some(500),
            error: Some("HTTP 500: internal error".into()),
            scheduled: t(300.0),
            sent: Some(t(300.25)),
            end: Some(t(305.0)),
            ..Row::default()
        },
        Row {
            request_id: 5,
            status: "cancelled",
            error: Some("cancelled".into()),
            scheduled: t(400.0),
            sent: Some(t(400.0)),
            first_token: Some(t(410.0)),
            chunks: vec![t(410.0), t(420.0)],
            end: Some(t(430.0)),
            ..Row::default()
        },
        Row {
            request_id: 6,
            status: "not_sent",
            http_status: None,
            error: Some("run stopped".into()),
            scheduled: t(500.0),
            ..Row::default()
        },
        Row {
            request_id: 7,
            scheduled: t(600.0),
            sent: Some(t(600.0)),
            first_token: Some(t(650.0)),
            end: Some(t(640.0)),
            output_tokens: Some(2),
            ..Row::default()
        },
    ]
}

fn config(plots: bool) -> Config {
    let mut cfg = Config::default();
    cfg.analysis.slo.ttft_ms = Some(70.0);
    cfg.analysis.slo.tpot_ms = Some(100.0);
    cfg.analysis.slo.itl_ms = Some(45.0);
    cfg.analysis.slo.e2el_ms = Some(250.0);
    cfg.analysis.bin_s = 0.1;
    cfg.analysis.length_bins = 2;
    cfg.analysis.plots = plots;
    cfg.analysis.report = plots;
    cfg
}

fn write(dir: &std::path::Path) {
    let kv = crate::support::kv(&[
        (meta::ANCHOR_UNIX_NS, "1700000000000000000"),
        (meta::WORKLOAD_REQUESTS, "10"),
        (meta::MODE, r#"{"mode":"open_loop"}"#),
    ]);
    crate::support::write_run(dir, &rows(), kv);
}

fn summary_of(dir: &std::path::Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Every number of `want` equals `got` within 2 ulp-ish (serde_json parses floats best-effort).
fn assert_json_matches(want: &serde_json::Value, got: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if k == "files" {
                    continue;
                }
                assert_json_matches(v, b.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_json_matches(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
                "{path}: {x} vs {y}"
            );
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

/// numpy's linear percentile on a sorted slice, by hand: x[lo] + frac (x[lo+1] - x[lo]).
fn lin(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    if lo + 1 >= sorted.len() {
        sorted[lo]
    } else {
        sorted[lo] + (h - lo as f64) * (sorted[lo + 1] - sorted[lo])
    }
}

fn assert_stats(name: &str, got: &bench_analysis::stats::Stats, sorted: &[f64]) {
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let std = (sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    assert_eq!(got.count, sorted.len() as u64, "{name}.count");
    assert_eq!(got.min, Some(sorted[0]), "{name}.min");
    assert_eq!(got.max, Some(sorted[sorted.len() - 1]), "{name}.max");
    for (k, q) in [
        ("p25", 0.25),
        ("p50", 0.5),
        ("p75", 0.75),
        ("p90", 0.9),
        ("p95", 0.95),
        ("p99", 0.99),
    ] {
        assert_eq!(got.get(k), Some(lin(sorted, q)), "{name}.{k}");
    }
    assert_eq!(got.mean, Some(mean), "{name}.mean");
    // the sum of squares depends on summation order in the last bit: 1e-12 relative
    let g = got.std.expect("std");
    assert!(
        (g - std).abs() <= 1e-12 * std.max(1e-300),
        "{name}.std: {g} vs {std}"
    );
}

#[test]
fn every_summary_figure_matches_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let out = bench_analysis::run(&config(false), dir.path()).unwrap();
    // Exact figures from the in-memory summary; summary.json holds the same within the
    // precision of serde_json's float parser (checked below).
    let s = bench_analysis::compute(dir.path(), &config(false).analysis)
        .unwrap()
        .summary;
    assert_json_matches(
        &serde_json::to_value(&s).unwrap(),
        &serde_json::to_value(summary_of(dir.path())).unwrap(),
        "",
    );

    // counts: 8 rows, 1 warmup; of the 7 others 4 ok (one of them inconsistent), 1 http_error,
    // 1 cancelled, 1 not_sent; 10 workload requests - 7 non-warmup rows = 3 rows missing.
    let c = &s.counts;
    assert_eq!(
        (
            c.rows,
            c.warmup,
            c.ok,
            c.http_error,
            c.timeout,
            c.transport_error,
            c.cancelled,
            c.not_sent
        ),
        (8, 1, 4, 1, 0, 0, 1, 1)
    );
    assert_eq!((c.measured, c.failed, c.missing_rows), (3, 1, Some(3)));
    let excluded: Vec<(&str, u64)> = s
        .excluded
        .iter()
        .map(|e| (e.reason.as_str(), e.count))
        .collect();
    assert_eq!(
        excluded,
        [
            ("warmup", 1),
            ("http_error", 1),
            ("cancelled", 1),
            ("not_sent", 1),
            ("inconsistent_times", 1),
            ("missing_rows", 3)
        ]
    );

    // window: first sent of any sent request (A, 0.5 ms) to the last end of any, whatever its
    // status (the inconsistent row 7, 640 ms); the measured ones alone span A to B (401 ms)
    assert_eq!(s.window.start_s, Some(0.0005));
    assert_eq!(s.window.end_s, Some(0.64));
    assert_eq!(s.duration_s, Some(0.6395));
    assert_eq!(s.window.measured_span_s, Some(0.4005));
    assert_eq!(s.request_throughput, Some(3.0 / 0.6395));
    // input tokens: 100 (usage) + 200 (client, no usage) + 50 (usage); output: 5 + 3 + 1
    assert_eq!(s.tokens.total_input, 350.0);
    assert_eq!(s.tokens.total_output, 9.0);
    assert_eq!(s.input_token_throughput, Some(350.0 / 0.6395));
    assert_eq!(s.output_token_throughput, Some(9.0 / 0.6395));
    assert_eq!(s.total_token_throughput, Some(359.0 / 0.6395));
    assert_eq!(
        (
            s.tokens.input_from_usage,
            s.tokens.input_from_client,
            s.tokens.output_from_usage,
            s.tokens.output_from_client
        ),
        (2, 1, 2, 1)
    );
    assert_eq!(
        (s.tokens.input_mismatches, s.tokens.output_mismatches),
        (1, 0)
    );

    // TTFT: A 100, B 60, C 20; TPOT: A (200-100)/4 = 25, B (300-60)/2 = 120, C none (1 token)
    assert_stats("ttft_ms", &s.ttft_ms, &[20.0, 60.0, 100.0]);
    assert_eq!(s.ttft_ms.p25, Some(40.0));
    assert_eq!(s.ttft_ms.p75, Some(80.0));
    assert_stats("tpot_ms", &s.tpot_ms, &[25.0, 120.0]);
    assert_eq!(s.tpot_ms.p50, Some(72.5));
    assert_eq!(s.tpot_ms.std, Some(47.5));
    // ITL pooled: A 20, 30, 50; B 40
    assert_stats("itl_ms", &s.itl_ms, &[20.0, 30.0, 40.0, 50.0]);
    assert_eq!(s.itl_ms.p50, Some(35.0));
    assert_eq!(s.itl_ms.std, Some(125f64.sqrt()));
    assert_stats("e2el_ms", &s.e2el_ms, &[20.0, 200.0, 300.0]);
    assert_stats("ttfb_ms", &s.ttfb_ms, &[40.0, 50.0]);
    // output tokens / E2EL: 5 / 0.2 s, 3 / 0.3 s, 1 / 0.02 s
    assert_eq!(s.request_output_throughput.count, 3);
    assert_eq!(s.request_output_throughput.min, Some(3.0 / 0.3));
    assert_eq!(s.request_output_throughput.p50, Some(5.0 / 0.2));
    assert_eq!(s.request_output_throughput.max, Some(1.0 / 0.02));
    // dispatch lag over every sent non-warmup row: A 0.5, B 1, C 10, D 0.25, E 0, G 0
    assert_stats(
        "dispatch_lag_ms",
        &s.dispatch_lag_ms,
        &[0.0, 0.0, 0.25, 0.5, 1.0, 10.0],
    );
    // queue delay where a ready time exists: A 0.5, C 10
    assert_stats("queue_delay_ms", &s.queue_delay_ms, &[0.5, 10.0]);
    // schedule lag = ready - scheduled (or sent - scheduled): A 0, B 1, C 0, D 0.25, E 0, G 0
    assert_stats(
        "schedule_lag_ms",
        &s.schedule_lag_ms,
        &[0.0, 0.0, 0.0, 0.0, 0.25, 1.0],
    );
    assert!(s.client_health.ok, "{}", s.client_health.message);
    assert_eq!(
        s.client_health.p99_ms,
        Some(0.25 + (5.0 * 0.99 - 4.0) * 0.75)
    );

    // goodput: ttft<=70 (B, C), tpot<=100 (A, C: none counts as met), itl<=45 (B, C: max ITL
    // of A is 50), e2el<=250 (A, C): only C meets all. Attainment = 1 / (3 measured + 1 failed).
    assert_eq!(s.slo.good_requests, Some(1));
    assert_eq!(
        (
            s.slo.met_ttft,
            s.slo.met_tpot,
            s.slo.met_itl,
            s.slo.met_e2el
        ),
        (Some(2), Some(2), Some(2), Some(2))
    );
    assert_eq!(s.goodput, Some(1.0 / 0.6395));
    assert_eq!(s.slo.attainment, Some(0.25));

    // input-length bins (2 bins over [50, 200], width 75): [50, 125) holds A and C, [125, 200] B
    let inp = &s.length_distributions.input;
    assert_eq!(inp.len(), 2);
    assert_eq!(
        (inp[0].lo, inp[0].hi, inp[0].requests),
        (Some(50.0), Some(125.0), 2)
    );
    assert_eq!(
        (inp[1].lo, inp[1].hi, inp[1].requests),
        (Some(125.0), Some(200.0), 1)
    );
    assert_eq!(inp[0].ttft_ms.mean, Some(60.0));
    assert_eq!(inp[0].ttft_ms.p95, Some(20.0 + 0.95 * 80.0));
    assert_eq!(inp[0].avg_output_tokens, Some(3.0));
    assert_eq!(inp[1].e2el_ms.p50, Some(300.0));
    // output-length bins over [1, 5]: [1, 3) holds C, [3, 5] holds A and B
    let outb = &s.length_distributions.output;
    assert_eq!((outb[0].requests, outb[1].requests), (1, 2));
    assert_eq!(outb[1].avg_input_tokens, Some(150.0));

    // in flight when sent: A 1; B 2 (A still running); C 2 (A ended at 200.5, B running)
    let conc: Vec<(&str, u64)> = s
        .breakdowns
        .concurrency
        .iter()
        .map(|g| (g.label.as_str(), g.requests))
        .collect();
    assert_eq!(conc, [("1", 1), ("2", 2)]);
    assert_eq!(s.breakdowns.concurrency[1].ttft_ms.mean, Some(40.0));
    let turns: Vec<(&str, u64)> = s
        .breakdowns
        .turn
        .iter()
        .map(|g| (g.label.as_str(), g.requests))
        .collect();
    assert_eq!(turns, [("0", 1), ("1", 1)]);

    // run info and notes
    assert_eq!(s.run.mode.as_deref(), Some("open_loop"));
    assert_eq!(s.run.workload_requests, Some(10));
    assert_eq!(
        s.run.started_at.as_deref(),
        Some("2023-11-14T22:13:20.000Z")
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("3 of 10 workload requests have no row")),
        "{:?}",
        s.notes
    );

    // the stage output: stats for the manifest, and the terminal table
    assert_eq!(out.stats["measured"], serde_json::json!(3));
    let table = out.display.expect("summary table");
    assert!(table.contains("3 measured, 5 excluded"), "{table}");
    assert!(table.contains("Goodput"), "{table}");
}

#[test]
fn time_series_bins_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let c = bench_analysis::compute(dir.path(), &config(false).analysis).unwrap();
    let ts = &c.series;
    // origin 0; last event: G scheduled at 600, ends at 640 -> 7 bins of 100 ms, the last 40 ms
    assert_eq!(ts.rows.len(), 7);
    assert!((ts.rows[6].width_s - 0.04).abs() < 1e-12);
    // offered: one request scheduled in each of bins 0..=6 -> 10/s
    assert!(
        ts.rows
            .iter()
            .take(6)
            .all(|r| (r.offered_rps - 10.0).abs() < 1e-9)
    );
    // completed: A (200.5) and C (230) end in bin 2, B (401) in bin 4
    let done: Vec<f64> = ts
        .rows
        .iter()
        .map(|r| (r.completed_rps * r.width_s).round())
        .collect();
    assert_eq!(done, [0.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0]);
    // failed: D ends at 305 -> bin 3
    assert!((ts.rows[3].failed_rps * 0.1 - 1.0).abs() < 1e-9);
    // in flight: bin 0 holds A from 0.5 to 100 -> 0.995; bin 1: A all, B from 101 -> 1.99
    assert!(
        (ts.rows[0].in_flight - 0.995).abs() < 1e-9,
        "{}",
        ts.rows[0].in_flight
    );
    assert!(
        (ts.rows[1].in_flight - 1.99).abs() < 1e-9,
        "{}",
        ts.rows[1].in_flight
    );
    // output tokens spread over chunks: A 1.25 per chunk at 100.5, 120.5, 150.5, 200.5; B 1.5 at
    // 161 and 201; C 1 at 230 -> bin 1: 3 * 1.25 + 1.5 = 5.25 tokens, bin 2: 1.25 + 1.5 + 1
    assert!(
        (ts.rows[1].output_tps - 52.5).abs() < 1e-9,
        "{}",
        ts.rows[1].output_tps
    );
    assert!(
        (ts.rows[2].output_tps - 37.5).abs() < 1e-9,
        "{}",
        ts.rows[2].output_tps
    );
    // latency by sent time: A in bin 0, B in bin 1, C in bin 2
    assert_eq!(ts.rows[0].ttft_ms.p50, Some(100.0));
    assert_eq!(ts.rows[2].e2el_ms.mean, Some(20.0));
}

#[test]
fn requests_csv_has_one_line_per_row_with_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    bench_analysis::run(&config(false), dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("requests.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9);
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let a: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(a.len(), header.len());
    assert_eq!(a[col("request_id")], "1");
    assert_eq!(a[col("ttft_ms")], "100");
    assert_eq!(a[col("tpot_ms")], "25");
    assert_eq!(a[col("itl_max_ms")], "50");
    assert_eq!(a[col("chunks")], "4");
    assert_eq!(a[col("meets_slo")], "false");
    assert_eq!(a[col("measured")], "true");
    let d: Vec<&str> = lines[5].split(',').collect();
    assert_eq!(d[col("status")], "http_error");
    assert_eq!(d[col("excluded_reason")], "http_error");
    assert_eq!(d[col("error")], "HTTP 500: internal error");
    let g: Vec<&str> = lines[8].split(',').collect();
    assert_eq!(g[col("excluded_reason")], "inconsistent_times");
    // summary.csv: header + one row, the same figures
    let sc = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    let sl: Vec<&str> = sc.lines().collect();
    assert_eq!(sl.len(), 2);
    let h: Vec<&str> = sl[0].split(',').collect();
    let v: Vec<&str> = sl[1].split(',').collect();
    let at = |k: &str| v[h.iter().position(|x| *x == k).unwrap()];
    assert_eq!(at("counts_measured"), "3");
    assert_eq!(at("ttft_ms_p50"), "60");
    assert_eq!(at("duration_s"), "0.6395");
}

#[test]
fn lagging_client_is_flagged_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let mut cfg = config(false);
    cfg.analysis.max_dispatch_lag_ms = 0.5; // schedule lag p99 is 0.9625 ms
    let out = bench_analysis::run(&cfg, dir.path()).unwrap();
    let s = summary_of(dir.path());
    assert!(!s.client_health.ok);
    assert!(
        s.client_health
            .message
            .contains("could not keep the schedule"),
        "{}",
        s.client_health.message
    );
    assert_eq!(s.verdict.outcome, bench_analysis::verdict::Outcome::Warning);
    assert!(
        s.verdict
            .lines
            .iter()
            .any(|l| l.starts_with("client: ") && l.contains("latencies are suspect")),
        "{:?}",
        s.verdict.lines
    );
    let table = out.display.unwrap();
    assert!(
        table.contains("client: the client could not keep the schedule"),
        "{table}"
    );
    assert!(table.contains("NOT OK"), "{table}");
}

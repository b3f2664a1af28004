//! Runs that ended badly (Ctrl-C, errors only, nothing at all, odd rows) and files that are not
//! a requests.parquet: analysis reads what can be read, says what it left out and why, and
//! fails with a one-line error naming the file (exit 2) when there is nothing to read.

use std::sync::Arc;

use crate::support::{MS, Row};
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bench_analysis::AnalysisError;
use bench_config::Config;
use bench_types::StageError;
use bench_types::record::meta;

fn quiet_config() -> Config {
    let mut cfg = Config::default();
    cfg.analysis.slo.ttft_ms = Some(100.0);
    cfg
}

fn summary(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn excluded(s: &serde_json::Value) -> Vec<(String, u64)> {
    s["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn missing_requests_parquet_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = bench_analysis::run(&quiet_config(), dir.path()).unwrap_err();
    assert!(matches!(e, AnalysisError::Input(_)));
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains(&dir.path().join("requests.parquet").display().to_string())
            && msg.contains("not found"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn a_file_that_is_not_parquet_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requests.parquet"),
        "request_id,status\n1,ok\n",
    )
    .unwrap();
    let e = bench_analysis::run(&quiet_config(), dir.path()).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("requests.parquet"), "{e}");
    assert!(e.to_string().contains("not a readable Parquet file"), "{e}");
}

#[test]
fn a_parquet_without_the_contract_columns_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("sent_ns", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["ok"])),
            Arc::new(StringArray::from(vec!["12"])),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(dir.path().join("requests.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = bench_analysis::run(&quiet_config(), dir.path()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("column `sent_ns` is Utf8, expected Int64"),
        "{msg}"
    );
    assert!(msg.contains("column `end_ns` is missing"), "{msg}");
    assert!(msg.contains("column `chunk_ns` is missing"), "{msg}");
}

/// A run stopped by Ctrl-C: a few finished, some cancelled in flight, the rest never sent, and
/// the file is a snapshot (bench.complete = false).
#[test]
fn interrupted_run_is_analysed_and_says_what_was_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for k in 0..5i64 {
        let s = k * 100 * MS;
        rows.push(Row {
            request_id: k as u64,
            scheduled: s,
            sent: Some(s),
            first_token: Some(s + 50 * MS),
            chunks: vec![s + 50 * MS, s + 60 * MS, s + 80 * MS],
            end: Some(s + 80 * MS),
            output_tokens: Some(3),
            prompt_tokens: Some(10),
            ..Row::default()
        });
    }
    for k in 5..8i64 {
        let s = k * 100 * MS;
        rows.push(Row {
            request_id: k as u64,
            status: "cancelled",
            error: Some("interrupted".into()),
            scheduled: s,
            sent: Some(s),
            first_token: None,
            end: Some(s + 5 * MS),
            ..Row::default()
        });
    }
    for k in 8..20i64 {
        rows.push(Row {
            request_id: k as u64,
            status: "not_sent",
            http_status: None,
            scheduled: k * 100 * MS,
            ..Row::default()
        });
    }
    let kv = crate::support::kv(&[
        (meta::WORKLOAD_REQUESTS, "25"),
        (meta::COMPLETE, "false"),
        (meta::ANCHOR_UNIX_NS, "1700000000000000000"),
    ]);
    crate::support::write_run(dir.path(), &rows, kv);
    let mut cfg = quiet_config();
    cfg.analysis.plots = true;
    cfg.analysis.report = true;
    let out = bench_analysis::run(&cfg, dir.path()).unwrap();
    let s = summary(dir.path());
    assert_eq!(s["counts"]["measured"], 5);
    assert_eq!(
        excluded(&s),
        [
            ("cancelled".to_string(), 3),
            ("not_sent".to_string(), 12),
            ("missing_rows".to_string(), 5)
        ]
    );
    let notes: Vec<&str> = s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(notes.iter().any(|n| n.contains("snapshot")), "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("5 of 25 workload requests have no row")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("3 cancelled, 12 not_sent")),
        "{notes:?}"
    );
    // window: first sent 0 to the last end of any sent request: the cancelled one sent at
    // 700 ms and stopped 5 ms later
    assert_eq!(s["duration_s"].as_f64(), Some(0.705));
    assert!(dir.path().join("report.html").is_file());
    // the verdict says first that the figures cover 5 of the 20 requests
    assert_eq!(s["verdict"]["outcome"], "warning");
    let first = s["verdict"]["lines"][0].as_str().unwrap();
    assert_eq!(
        first,
        "only 5 of 20 requests are measured (3 cancelled, 12 not sent): the latency figures cover those 5 alone"
    );
    let table = out.display.unwrap();
    assert!(table.contains(&format!("WARNING {first}")), "{table}");
    assert!(table.contains("5 measured, 15 excluded (3 cancelled, 12 not_sent, 5 missing_rows)"));
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(report.contains("<b>WARNING</b>: only 5 of 20 requests are measured"));
}

#[test]
fn a_run_where_nothing_succeeded_has_empty_metrics_and_still_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = (0..6i64)
        .map(|k| Row {
            request_id: k as u64,
            status: if k % 2 == 0 {
                "http_error"
            } else {
                "transport_error"
            },
            error: Some("HTTP 503: overloaded".into()),
            scheduled: k * MS,
            sent: Some(k * MS),
            end: Some(k * MS + 2 * MS),
            ..Row::default()
        })
        .collect();
    crate::support::write_run(dir.path(), &rows, crate::support::open_loop_kv(6));
    let mut cfg = quiet_config();
    cfg.analysis.plots = true;
    cfg.analysis.report = true;
    let out = bench_analysis::run(&cfg, dir.path()).unwrap();
    let s = summary(dir.path());
    assert_eq!(s["counts"]["measured"], 0);
    assert_eq!(s["counts"]["failed"], 6);
    // the six failures span 0 to 7 ms: 0 requests/s over that window, 0 good
    assert_eq!(s["duration_s"].as_f64(), Some(0.007));
    assert_eq!(s["request_throughput"].as_f64(), Some(0.0));
    assert_eq!(s["ttft_ms"]["count"], 0);
    assert!(s["ttft_ms"]["p50"].is_null());
    // an SLO is set, nothing met it: 0 good of 6 failed
    assert_eq!(s["slo"]["good_requests"], 0);
    assert_eq!(s["slo"]["attainment"], 0.0);
    assert_eq!(s["goodput"].as_f64(), Some(0.0));
    // dispatch lag still describes the client
    assert_eq!(s["dispatch_lag_ms"]["count"], 6);
    // the verdict leads with the failure and its most common error
    assert_eq!(s["verdict"]["outcome"], "failed");
    let first = s["verdict"]["lines"][0].as_str().unwrap();
    assert!(
        first.starts_with("6 of 6 sent requests failed (3 http, 0 timeout, 3 transport"),
        "{first}"
    );
    assert_eq!(s["verdict"]["top_error"]["count"], 6);
    assert_eq!(s["verdict"]["top_error"]["message"], "HTTP 503: overloaded");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("no measured request"),
        "report says why it is empty"
    );
    let table = out.display.unwrap();
    assert!(table.contains("0 measured, 6 excluded"), "{table}");
}

#[test]
fn an_empty_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_run(dir.path(), &[], crate::support::open_loop_kv(0));
    let mut cfg = quiet_config();
    cfg.analysis.plots = true;
    cfg.analysis.report = true;
    bench_analysis::run(&cfg, dir.path()).unwrap();
    let s = summary(dir.path());
    assert_eq!(s["counts"]["rows"], 0);
    assert_eq!(s["counts"]["measured"], 0);
    assert!(s["client_health"]["ok"].as_bool().unwrap());
}

/// Odd rows: an ok row without an end time, an unknown status, a non-streamed ok row (no first
/// token, no chunks), a row whose chunks go backwards, a single-token reply.
#[test]
fn odd_rows_are_classified_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |id: u64, s: i64| Row {
        request_id: id,
        scheduled: s,
        sent: Some(s),
        first_token: Some(s + 10 * MS),
        chunks: vec![s + 10 * MS, s + 20 * MS],
        end: Some(s + 20 * MS),
        output_tokens: Some(2),
        ..Row::default()
    };
    let rows = vec![
        ok(0, 0),
        Row {
            end: None,
            ..ok(1, MS)
        },
        Row {
            status: "rate_limited",
            ..ok(2, 2 * MS)
        },
        Row {
            first_token: None,
            chunks: vec![],
            output_tokens: Some(7),
            ..ok(3, 3 * MS)
        },
        Row {
            chunks: vec![4 * MS + 15 * MS, 4 * MS + 12 * MS],
            ..ok(4, 4 * MS)
        },
        Row {
            chunks: vec![5 * MS + 10 * MS],
            output_tokens: Some(1),
            ..ok(5, 5 * MS)
        },
    ];
    crate::support::write_run(dir.path(), &rows, crate::support::open_loop_kv(6));
    bench_analysis::run(&quiet_config(), dir.path()).unwrap();
    let s = summary(dir.path());
    assert_eq!(
        excluded(&s),
        [
            ("unknown_status".to_string(), 1),
            ("missing_times".to_string(), 1),
            ("inconsistent_times".to_string(), 1)
        ]
    );
    assert_eq!(s["counts"]["measured"], 3);
    assert_eq!(s["counts"]["unknown_status"], 1);
    // TTFT from rows 0 and 5 only; E2EL from all three; TPOT only from row 0 (row 3 has no
    // first token, row 5 one token)
    assert_eq!(s["ttft_ms"]["count"], 2);
    assert_eq!(s["e2el_ms"]["count"], 3);
    assert_eq!(s["tpot_ms"]["count"], 1);
    // TTFT SLO 100 ms: the non-streamed row has no first token, so it does not meet it
    assert_eq!(s["slo"]["good_requests"], 2);
    let csv = std::fs::read_to_string(dir.path().join("requests.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "every row is in requests.csv");
    assert!(csv.contains(",rate_limited,"));
}

#[test]
fn too_many_time_bins_are_widened_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = (0..3i64)
        .map(|k| Row {
            request_id: k as u64,
            scheduled: k * 1000 * MS,
            sent: Some(k * 1000 * MS),
            first_token: Some(k * 1000 * MS + 10 * MS),
            chunks: vec![k * 1000 * MS + 10 * MS],
            end: Some(k * 1000 * MS + 10 * MS),
            output_tokens: Some(1),
            ..Row::default()
        })
        .collect();
    crate::support::write_run(dir.path(), &rows, crate::support::open_loop_kv(3));
    let mut cfg = quiet_config();
    cfg.analysis.bin_s = 1e-6; // 2 s of run in 1 us bins: 2,010,000 bins
    let c = bench_analysis::compute(dir.path(), &cfg.analysis).unwrap();
    assert_eq!(c.series.rows.len(), 200_000);
    assert!(
        (c.series.bin_s - 2.01 / 200_000.0).abs() < 1e-12,
        "{}",
        c.series.bin_s
    );
    assert!(
        c.summary
            .notes
            .iter()
            .any(|n| n.contains("time series bins widened")),
        "{:?}",
        c.summary.notes
    );
    let completed: f64 = c
        .series
        .rows
        .iter()
        .map(|r| r.completed_rps * r.width_s)
        .sum();
    assert!((completed - 3.0).abs() < 1e-6, "{completed}");
}

/// A manifest.json that exists but is not a manifest is an input error naming it (exit 2), and
/// the analysis writes nothing rather than report run details it could not read.
#[test]
fn a_corrupt_manifest_is_an_input_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_run(
        dir.path(),
        &crate::support::realistic_rows(20, 10.0, 3, 0, 0),
        crate::support::open_loop_kv(20),
    );
    let m = dir.path().join("manifest.json");
    std::fs::write(&m, "{\"tool_version\": ").unwrap();
    let e = bench_analysis::run(&quiet_config(), dir.path()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(msg.starts_with(&m.display().to_string()), "{msg}");
    assert!(msg.contains("not a readable manifest"), "{msg}");
    assert!(!dir.path().join("summary.json").exists());
    assert_eq!(std::fs::read_to_string(&m).unwrap(), "{\"tool_version\": ");
}

/// A run directory with `key=value` path parts (`date=2024-01-01`, `a=b`) is just a path: no
/// hive-partition parsing (it once panicked inside Polars, exit 101).
#[test]
fn key_value_path_parts_are_plain_directories() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a=b").join("date=2024-01-01").join("run");
    std::fs::create_dir_all(&dir).unwrap();
    crate::support::write_run(
        &dir,
        &crate::support::realistic_rows(50, 10.0, 5, 0, 0),
        crate::support::open_loop_kv(50),
    );
    bench_analysis::run(&quiet_config(), &dir).unwrap();
    let s = summary(&dir);
    assert_eq!(s["counts"]["rows"], 50);
}

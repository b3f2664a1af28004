//! The whole pipeline through the binary, on the default config and the simulated engine.

#[path = "../../crates/bench-analysis/tests/it/support/check.rs"]
#[allow(dead_code)]
mod check;

use crate::common::*;

/// A short version of the default run: 3 s at 20 req/s.
const SHORT: &[&str] = &[
    "workload.duration_ms=3000",
    "workload.constant.target_qps=20",
    "dataset.random.num_prompts=50",
];

#[test]
fn stage_all_on_the_default_config_leaves_a_complete_verified_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let o = bench_ok(run, &overrides(SHORT));
    // The terminal summary table is what most users read first.
    let out = text(&o.stdout);
    assert!(
        out.contains("TTFT (ms)") && out.contains("Request throughput"),
        "{out}"
    );

    for f in [
        "dataset.jsonl",
        "workload.jsonl",
        "requests.parquet",
        "manifest.json",
        "summary.json",
        "report.html",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // One row per workload request, all answered by the simulated engine.
    let n = workload_requests(run);
    assert!(n > 20, "a 3 s run at 20 req/s has ~60 requests, got {n}");
    let rows = read_rows(run);
    assert_eq!(rows.len(), n);
    assert_eq!(rows.count("ok"), n);
    let mut ids = rows.request_id.clone();
    ids.sort_unstable();
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>());
    // The server's prompt token count equals the client's (and the dataset's exact 512).
    for (u, p) in rows.usage_prompt_tokens.iter().zip(&rows.prompt_tokens) {
        assert_eq!(u, p);
        assert_eq!(*u, Some(512));
    }

    // Manifest: resolved config, seed, version, every stage in order.
    let m = json(run, "manifest.json");
    assert_eq!(m["seed"], 42);
    assert_eq!(m["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["config"]["workload"]["constant"]["target_qps"], 20.0);
    assert_eq!(m["config"]["run_dir"], run.display().to_string());
    let stages: Vec<&str> = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["dataset", "workload", "client", "analysis"]);

    // summary.json: the contract keys, and every figure recomputed independently (no Polars).
    let s = json(run, "summary.json");
    for metric in ["ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"] {
        for k in [
            "min", "p25", "p50", "p75", "p90", "p95", "p99", "max", "mean", "std",
        ] {
            assert!(s[metric][k].is_number(), "summary.json lacks {metric}.{k}");
        }
    }
    for k in [
        "duration_s",
        "request_throughput",
        "output_token_throughput",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert_eq!(s["counts"]["ok"], n);
    assert!(
        s["goodput"]["requests_per_s"].is_number() || s["goodput"].is_number(),
        "{}",
        s["goodput"]
    );
    let c = check::verify_run(run, 1e-9);
    assert!(
        c.mismatches.is_empty(),
        "{} of {} figures differ:\n{}",
        c.mismatches.len(),
        c.figures,
        c.mismatches.join("\n")
    );
    assert!(c.figures > 50 && c.measured == n && c.itl_values > n * 100);
}

#[test]
fn same_config_and_seed_give_byte_identical_stage_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    for (dir, seed) in [
        (a.path(), "seed=7"),
        (b.path(), "seed=7"),
        (c.path(), "seed=8"),
    ] {
        for stage in ["dataset", "workload"] {
            let mut args = overrides(SHORT);
            args.extend(["--override", seed, "--stage", stage]);
            bench_ok(dir, &args);
        }
    }
    for f in ["dataset.jsonl", "workload.jsonl"] {
        let fa = std::fs::read(a.path().join(f)).unwrap();
        assert_eq!(
            fa,
            std::fs::read(b.path().join(f)).unwrap(),
            "{f} differs for the same seed"
        );
        assert_ne!(
            fa,
            std::fs::read(c.path().join(f)).unwrap(),
            "{f} ignores the seed"
        );
    }
}

#[test]
fn stages_run_one_at_a_time_each_reading_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let args = overrides(&[
        "workload.duration_ms=1500",
        "workload.constant.target_qps=10",
        "dataset.random.num_prompts=20",
    ]);
    for stage in ["dataset", "workload", "client", "analysis"] {
        let mut a = args.clone();
        a.extend(["--stage", stage]);
        bench_ok(run, &a);
    }
    let m = json(run, "manifest.json");
    assert_eq!(m["stages"].as_array().unwrap().len(), 4);
    assert_eq!(
        json(run, "summary.json")["counts"]["rows"],
        workload_requests(run)
    );

    // Analysis runs again on its own, on any run directory.
    let mut a = args.clone();
    a.extend([
        "--stage",
        "analysis",
        "--override",
        "analysis.slo.ttft_ms=1",
    ]);
    bench_ok(run, &a);
    let s = json(run, "summary.json");
    assert_eq!(s["slo"]["ttft_ms"], 1.0, "{}", s["slo"]);
}

#[test]
fn a_missing_stage_input_names_the_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = bench(dir.path(), &["--stage", "client"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("workload.jsonl"),
        "{}",
        text(&o.stderr)
    );
    let o = bench(dir.path(), &["--stage", "analysis"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("requests.parquet"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_malformed_input_row_names_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prompts.jsonl");
    std::fs::write(&data, "{\"prompt\": \"hello there\"}\n{\"prompt\": 3}\n").unwrap();
    let o = bench(
        dir.path(),
        &overrides(&[
            "dataset.type=custom",
            &format!("dataset.custom.path={}", data.display()),
        ]),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains(&format!("{}:2", data.display())), "{err}");
    assert!(
        !dir.path().join("dataset.jsonl").exists(),
        "no partial dataset is left behind"
    );
}

#[test]
fn compare_puts_runs_in_one_table_and_csv() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let short = [
        "workload.duration_ms=1000",
        "workload.constant.target_qps=10",
        "dataset.random.num_prompts=10",
    ];
    bench_ok(a.path(), &overrides(&short));
    let mut more = short.to_vec();
    more.push("client.api=openai-completions");
    bench_ok(b.path(), &overrides(&more));
    let csv = a.path().join("cmp.csv");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            a.path().to_str().unwrap(),
            b.path().to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let table = text(&o.stdout);
    let name = |d: &std::path::Path| d.file_name().unwrap().to_string_lossy().into_owned();
    let line = |d: &std::path::Path| {
        table
            .lines()
            .find(|l| l.starts_with(&name(d)))
            .unwrap_or_else(|| panic!("{table}"))
            .to_string()
    };
    assert!(line(a.path()).contains("openai-chat"), "{table}");
    assert!(line(b.path()).contains("openai-completions"), "{table}");
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + one row per run:\n{csv}");
}

#[test]
fn analysis_window_leaves_out_the_warm_up_and_cool_down_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    // 60 requests exactly 50 ms apart from t = 0; the first second (20 requests) and the last 5
    // are outside the window
    let mut o = SHORT.to_vec();
    o.extend([
        "workload.constant.arrival=fixed",
        "analysis.window={skip_first_s: 1, skip_last_requests: 5}",
    ]);
    bench_ok(run, &overrides(&o));
    let s = json(run, "summary.json");
    assert_eq!(s["counts"]["rows"], 60);
    assert_eq!(s["counts"]["outside_window"], 25, "{}", s["counts"]);
    assert_eq!(s["counts"]["measured"], 35);
    assert_eq!(
        s["counts"]["ok"], 35,
        "outside rows are not counted by status"
    );
    let ex = s["excluded"].as_array().unwrap();
    assert!(
        ex.iter()
            .any(|e| e["reason"] == "outside_window" && e["count"] == 25),
        "{ex:?}"
    );
    // the window starts at the first request inside it (scheduled 1.000 s after the first)
    let start = s["window"]["start_s"].as_f64().unwrap();
    assert!((1.0..1.05).contains(&start), "{start}");
    assert_eq!(s["verdict"]["outcome"], "ok", "{}", s["verdict"]);
    // requests.csv still lists every request, with the reason
    let csv = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    assert_eq!(csv.matches(",outside_window,").count(), 25);
}

#[test]
fn unique_prefix_makes_every_prompt_distinct_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    // 5 dataset prompts for ~60 requests: each prompt is sent a dozen times
    let mut o = SHORT.to_vec();
    o.extend([
        "dataset.random.num_prompts=5",
        "dataset.unique_prefix=true",
        "--stage",
        "dataset,workload",
    ]);
    let args: Vec<&str> = o
        .iter()
        .flat_map(|x| {
            if x.starts_with("--") || x.contains(',') && !x.contains('=') {
                vec![*x]
            } else {
                vec!["--override", x]
            }
        })
        .collect();
    bench_ok(run, &args);
    let wl = bench_types::workload::read(&run.join("workload.jsonl")).unwrap();
    let reqs: Vec<_> = wl.entries.iter().flat_map(|e| &e.requests).collect();
    assert!(reqs.len() > 40);
    let mut prompts: Vec<&str> = reqs.iter().map(|r| r.prompt.as_deref().unwrap()).collect();
    let tok = bench_text::Tokenizer::open(&bench_config::TokenizerSpec::default()).unwrap();
    for r in &reqs {
        let p = r.prompt.as_deref().unwrap();
        assert!(
            p.starts_with('[') && p.as_bytes()[9] == b']' && p.as_bytes()[10] == b'\n',
            "{p:.20}"
        );
        assert_eq!(
            r.prompt_length,
            Some(tok.count(p) as u32),
            "the prefix is counted"
        );
    }
    prompts.sort_unstable();
    prompts.dedup();
    assert_eq!(prompts.len(), reqs.len(), "two requests share a prompt");
}

//! The files of a run (plots, report.html, CSVs) and `bench compare`.

use std::path::Path;

use bench_config::Config;

fn analysed_run(dir: &Path, n: usize, rate: f64, seed: u64, plots: bool) {
    let rows = crate::support::realistic_rows(n, rate, seed, 0, 0);
    crate::support::write_run(dir, &rows, crate::support::open_loop_kv(n as u64));
    let mut cfg = Config::default();
    cfg.analysis.slo.ttft_ms = Some(300.0);
    cfg.analysis.plots = plots;
    cfg.analysis.report = plots;
    bench_analysis::run(&cfg, dir).unwrap();
}

#[test]
fn plots_are_svg_and_png_and_the_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    analysed_run(dir.path(), 800, 20.0, 3, true);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    let files: Vec<&str> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for name in [
        "ttft_distribution",
        "e2el_distribution",
        "output_throughput_distribution",
        "ttft_by_concurrency",
        "total_output_throughput",
        "load_over_time",
        "latency_over_time",
        "gantt",
        "pair_prompt_len_vs_ttft",
    ] {
        let svg = std::fs::read_to_string(dir.path().join(format!("plots/{name}.svg")))
            .unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}.svg");
        let png = std::fs::read(dir.path().join(format!("plots/{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is a PNG");
        assert!(
            png.len() > 5_000,
            "{name}.png has content ({} bytes)",
            png.len()
        );
        assert!(
            files.contains(&format!("plots/{name}.svg").as_str()),
            "{name} listed in summary.json files"
        );
    }
    for f in [
        "summary.json",
        "summary.csv",
        "requests.csv",
        "timeseries.csv",
        "distributions.csv",
        "pairs.csv",
        "report.html",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
        assert!(files.contains(&f), "{f} listed");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // self-contained: no external resource of any kind
    for bad in [
        "src=\"http",
        "href=\"http",
        "<link",
        "<script",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(bad), "report.html references `{bad}`");
    }
    // every chart inlined, and the summary tables present
    assert_eq!(
        html.matches("data:image/svg+xml;base64,").count(),
        files.iter().filter(|f| f.ends_with(".svg")).count()
    );
    for text in [
        "Latency per request",
        "Requests by status",
        "Excluded from the metrics",
        "Goodput",
        "By input and output length",
        "Breakdowns",
    ] {
        assert!(html.contains(text), "report.html has `{text}`");
    }
    let measured = s["counts"]["measured"].as_u64().unwrap().to_string();
    assert!(
        html.contains(&format!(">{measured}<")),
        "report shows the measured count"
    );

    // analysed again without pairs: the old pair plots and pairs.csv go, a user's file stays
    std::fs::write(dir.path().join("plots/notes.txt"), "mine").unwrap();
    let mut cfg = Config::default();
    cfg.analysis.pairs.clear();
    bench_analysis::run(&cfg, dir.path()).unwrap();
    assert!(
        !dir.path()
            .join("plots/pair_prompt_len_vs_ttft.svg")
            .exists()
    );
    assert!(
        !dir.path()
            .join("plots/pair_prompt_len_vs_ttft.png")
            .exists()
    );
    assert!(!dir.path().join("pairs.csv").exists());
    assert!(dir.path().join("plots/ttft_distribution.svg").exists());
    assert!(dir.path().join("plots/notes.txt").exists());
}

#[test]
fn compare_puts_runs_in_one_table_and_csv() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("rate10");
    let b = root.path().join("rate40");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    analysed_run(&a, 400, 10.0, 1, false);
    analysed_run(&b, 400, 40.0, 2, false);
    let csv = root.path().join("compare.csv");
    let table = bench_analysis::compare(&[a.clone(), b.clone()], Some(&csv)).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("run")
            && lines[0].contains("TTFT p50")
            && lines[0].contains("goodput")
            && lines[0].contains("offered")
            && lines[0].contains("achieved"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("rate10") && lines[3].starts_with("rate40"),
        "{table}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "header + one row per run");
    let header: Vec<&str> = rows[0].split(',').collect();
    let req = header
        .iter()
        .position(|h| *h == "request_throughput")
        .unwrap();
    let sa: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    let got: f64 = rows[1].split(',').nth(req).unwrap().parse().unwrap();
    let want = sa["request_throughput"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    // the same columns as the run's own summary.csv
    let own = std::fs::read_to_string(a.join("summary.csv")).unwrap();
    assert_eq!(own.lines().next(), Some(rows[0]));
    // every scalar of summary.json has its column
    fn leaves(v: &serde_json::Value, p: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| {
                leaves(
                    x,
                    &if p.is_empty() {
                        k.clone()
                    } else {
                        format!("{p}_{k}")
                    },
                    out,
                )
            }),
            serde_json::Value::Array(_) => {}
            _ => out.push(p.to_string()),
        }
    }
    let mut want = Vec::new();
    leaves(&sa, "", &mut want);
    assert_eq!(header, want);
    assert!(want.len() > 150, "{}", want.len());
    assert!(
        header.contains(&"window_measured_span_s") && header.contains(&"tokens_input_from_usage")
    );
    assert!(table.contains("goodput SLO: ttft<="), "{table}");

    // runs measured against different SLOs say so, run by run
    let mut sb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
    sb["slo"]["ttft_ms"] = serde_json::json!(123.0);
    std::fs::write(b.join("summary.json"), sb.to_string()).unwrap();
    let table = bench_analysis::compare(&[a.clone(), b.clone()], None).unwrap();
    assert!(
        table.lines().next().unwrap().ends_with("goodput SLO")
            && table.contains("ttft<=123ms")
            && table.contains("different SLOs"),
        "{table}"
    );
    // a summary of another schema version is refused with what to do
    sb["schema"] = serde_json::json!("bench.summary/1");
    std::fs::write(b.join("summary.json"), sb.to_string()).unwrap();
    let e = bench_analysis::compare(&[a, b], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bench.summary/1") && e.contains("--stage analysis"),
        "{e}"
    );
}

#[test]
fn compare_names_a_run_without_summary() {
    let root = tempfile::tempdir().unwrap();
    let e = bench_analysis::compare(&[root.path().to_path_buf()], None).unwrap_err();
    assert!(e.to_string().contains("summary.json: not found"), "{e}");
    assert_eq!(bench_types::StageError::exit_code(&e), 2);
}

//! The workload stage on the real traces in ../shared/data (skipped with a message when the
//! directory is absent, a failure under CI=true).

use std::path::Path;

use crate::common::*;
use bench_config::workload::StatTraceType;
use bench_types::testdata::shared_data;

/// 100 ns ticks since midnight of an Azure 2023 row's `YYYY-MM-DD HH:MM:SS.fffffff`, parsed here
/// independently of the crate (and the date, which must be the same on every row compared).
fn azure_ticks(line: &str) -> (String, i64) {
    let ts = line.split(',').next().unwrap();
    let (date, time) = ts.split_once(' ').unwrap();
    let (hms, frac) = time.split_once('.').unwrap();
    assert_eq!(frac.len(), 7);
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    (
        date.to_string(),
        ((p[0] * 60 + p[1]) * 60 + p[2]) * 10_000_000 + frac.parse::<i64>().unwrap(),
    )
}

/// (ticks from the first row, ContextTokens, GeneratedTokens) of every row.
fn azure_rows(path: &Path) -> Vec<(i64, u32, u32)> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains("\r\n") && !text.ends_with('\n'),
        "the published file: CRLF, no final newline"
    );
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("TIMESTAMP,ContextTokens,GeneratedTokens")
    );
    let rows: Vec<(String, i64, u32, u32)> = lines
        .map(|l| {
            let (d, t) = azure_ticks(l);
            let f: Vec<&str> = l.split(',').collect();
            (d, t, f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert!(rows.iter().all(|r| r.0 == rows[0].0), "one day");
    rows.iter().map(|r| (r.1 - rows[0].1, r.2, r.3)).collect()
}

const DATASET_LENS: [usize; 14] = [2, 3, 5, 8, 13, 21, 34, 34, 34, 55, 64, 89, 144, 233];

#[test]
fn azure_conv_replays_every_row_at_its_exact_time() {
    let Some(trace) = shared_data("azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv")
    else {
        return;
    };
    let rows = azure_rows(&trace);
    assert_eq!(rows.len(), 19_366);
    let dir = run_dir("azure-conv");
    plain_dataset(&dir, &DATASET_LENS, true);
    let mut cfg = config("azure");
    cfg.workload.azure.trace_path = Some(trace.display().to_string());
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    assert_eq!(reqs.len(), 19_366);
    assert_eq!(stat_u64(&out, "requests"), 19_366);
    let span_ms = rows.last().unwrap().0 as f64 / 1e4;
    assert_eq!(span_ms, 3_501_721.937);
    assert_eq!(reqs[0].0, 0.0);
    assert_eq!(
        reqs.last().unwrap().0,
        span_ms,
        "the last request is at the trace span, to the 100 ns"
    );
    assert_eq!(stat_f64(&out, "span_ms"), span_ms);
    let lens: Vec<u32> = DATASET_LENS.iter().map(|&l| l as u32).collect();
    for (i, ((t, r), row)) in reqs.iter().zip(&rows).enumerate() {
        assert_eq!(*t, row.0 as f64 / 1e4, "row {i}");
        assert_eq!(r.output_length, Some(row.2), "row {i}: GeneratedTokens");
        let best = lens.iter().map(|l| l.abs_diff(row.1)).min().unwrap();
        assert_eq!(
            r.prompt_length.unwrap().abs_diff(row.1),
            best,
            "row {i}: the closest dataset prompt to {}",
            row.1
        );
    }
    // Twice as fast: every timestamp exactly half, so exactly half the span.
    cfg.workload.time_scale = 0.5;
    let (_, half) = run(&cfg, &dir);
    let hreqs = requests(&half);
    assert_eq!(hreqs.len(), 19_366);
    assert!(reqs.iter().zip(&hreqs).all(|(a, b)| b.0 == a.0 / 2.0));
    assert_eq!(hreqs.last().unwrap().0, 1_750_860.968_5);
}

#[test]
fn azure_conv_window_selects_rows_by_time() {
    let Some(trace) = shared_data("azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv")
    else {
        return;
    };
    let rows = azure_rows(&trace);
    let dir = run_dir("azure-window");
    plain_dataset(&dir, &[1], true);
    let mut cfg = config("azure");
    cfg.workload.azure.trace_path = Some(trace.display().to_string());
    for (a, b) in [(1000.0, 2000.0), (0.0, 60.0), (3500.0, 4000.0)] {
        cfg.workload.azure.start_s = Some(a);
        cfg.workload.azure.end_s = Some(b);
        let (start, end) = ((a * 1e7) as i64, (b * 1e7) as i64);
        let want: Vec<i64> = rows
            .iter()
            .map(|r| r.0)
            .filter(|&t| t >= start && t < end)
            .collect();
        assert!(!want.is_empty());
        let (out, wl) = run(&cfg, &dir);
        let reqs = requests(&wl);
        assert_eq!(
            stat_u64(&out, "requests"),
            want.len() as u64,
            "window [{a}, {b}) s"
        );
        assert_eq!(reqs.len(), want.len());
        // Time 0 is the window start; gaps are the trace's.
        assert_eq!(reqs[0].0, (want[0] - start) as f64 / 1e4);
        assert_eq!(
            reqs.last().unwrap().0,
            (want.last().unwrap() - start) as f64 / 1e4
        );
    }
}

#[test]
fn mooncake_conversation_shares_prefix_blocks() {
    let Some(trace) = shared_data("mooncake/conversation_trace.jsonl") else {
        return;
    };
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 12_031);
    let dir = run_dir("mooncake-conv");
    let mut cfg = config("mooncake");
    cfg.workload.mooncake.trace_path = Some(trace.display().to_string());
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    assert_eq!(reqs.len(), 12_031);
    assert_eq!(stat_u64(&out, "requests"), 12_031);
    assert!(
        stat_u64(&out, "bytes") < 10_000_000,
        "block references keep the file small"
    );
    let spec = wl
        .header
        .as_ref()
        .and_then(|h| h.prompt_blocks.clone())
        .expect("prompt_blocks header");
    assert_eq!(spec.block_tokens, 512);
    for ((t, r), row) in reqs.iter().zip(&rows) {
        assert_eq!(*t, row["timestamp"].as_f64().unwrap());
        assert_eq!(
            r.prompt_length.unwrap() as u64,
            row["input_length"].as_u64().unwrap()
        );
        assert_eq!(
            r.output_length.unwrap() as u64,
            row["output_length"].as_u64().unwrap()
        );
        let ids: Vec<u64> = row["hash_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(r.hash_ids.as_ref().unwrap(), &ids);
        assert!(r.prompt.is_none());
    }
    assert_eq!(reqs.last().unwrap().0, 3_536_999.0);

    // Two requests sharing the most leading blocks (k >= 2), then diverging.
    let ids: Vec<&Vec<u64>> = reqs
        .iter()
        .map(|(_, r)| r.hash_ids.as_ref().unwrap())
        .collect();
    let mut best = (0, 0, 0);
    for i in 0..ids.len() {
        for j in i + 1..(i + 300).min(ids.len()) {
            let k = ids[i]
                .iter()
                .zip(ids[j])
                .take_while(|(a, b)| a == b)
                .count();
            if k > best.2 && k < ids[i].len() && k < ids[j].len() && k <= 12 {
                best = (i, j, k);
            }
        }
    }
    let (i, j, k) = best;
    assert!(
        k >= 2,
        "the conversation trace has requests sharing several leading blocks"
    );
    eprintln!("requests {i} and {j} share their first {k} blocks");
    let g = textgen();
    let tok = tok();
    let prompt = |n: usize| {
        let r = reqs[n].1;
        let mut s = String::new();
        g.blocks_prompt(
            spec.seed,
            r.hash_ids.as_ref().unwrap(),
            512,
            r.prompt_length.unwrap() as usize,
            &mut s,
        );
        s
    };
    let (a, b) = (prompt(i), prompt(j));
    let mut prefix = String::new();
    for &h in &ids[i][..k] {
        let block = g.block(spec.seed, h, 512);
        assert_eq!(tok.count(&block), 512, "block {h} is 512 tokens");
        prefix.push_str(&block);
    }
    assert!(
        a.starts_with(&prefix) && b.starts_with(&prefix),
        "the first {k} blocks are identical text"
    );
    assert_ne!(a[prefix.len()..].split(' ').nth(1), None);
    let next_a = g.block_prefix(spec.seed, ids[i][k], 512, 64);
    let next_b = g.block_prefix(spec.seed, ids[j][k], 512, 64);
    assert_ne!(next_a, next_b, "block {k} differs");
    assert!(a[prefix.len()..].starts_with(&next_a) && b[prefix.len()..].starts_with(&next_b));
    assert_eq!(
        tok.count(&a),
        reqs[i].1.prompt_length.unwrap() as usize,
        "prompt token length == input_length"
    );
    assert_eq!(tok.count(&b), reqs[j].1.prompt_length.unwrap() as usize);

    // Twice as fast: exactly half the span.
    cfg.workload.time_scale = 0.5;
    let (_, half) = run(&cfg, &dir);
    let h = requests(&half);
    assert_eq!(h.len(), 12_031);
    assert!(reqs.iter().zip(&h).all(|(a, b)| b.0 == a.0 / 2.0));
    assert_eq!(h.last().unwrap().0, 1_768_499.5);
}

#[test]
fn mooncake_materialized_prompts_are_what_the_client_builds() {
    let Some(trace) = shared_data("mooncake/conversation_trace.jsonl") else {
        return;
    };
    let dir = run_dir("mooncake-mat");
    let mut cfg = config("mooncake");
    cfg.workload.mooncake.trace_path = Some(trace.display().to_string());
    cfg.workload.mooncake.start_ms = Some(3000.0);
    cfg.workload.mooncake.end_ms = Some(5999.0);
    let (_, refs) = run(&cfg, &dir);
    assert_eq!(refs.num_requests(), 16, "the trace's 3000 ms bucket");
    assert!(
        requests(&refs).iter().all(|(t, _)| *t == 0.0),
        "time 0 is the window start"
    );
    cfg.workload.mooncake.materialize = true;
    let (_, mat) = run(&cfg, &dir);
    assert!(mat.header.is_none());
    let g = textgen();
    let tok = tok();
    for ((_, a), (_, b)) in requests(&refs).iter().zip(requests(&mat)) {
        let mut want = String::new();
        g.blocks_prompt(
            42,
            a.hash_ids.as_ref().unwrap(),
            512,
            a.prompt_length.unwrap() as usize,
            &mut want,
        );
        assert!(b.prompt.as_deref() == Some(want.as_str()));
        assert_eq!(tok.count(&want), b.prompt_length.unwrap() as usize);
        assert_eq!(b.prompt_length, a.prompt_length);
    }
}

/// (rate, P50, P95) of the completion file per window, from the CSVs, parsed here.
fn grafana(dir: &Path) -> (Vec<f64>, Vec<(f64, f64)>) {
    let col = |file: &str, i: usize| -> Vec<f64> {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.trim_end().split(',').nth(i).unwrap().parse().unwrap())
            .collect()
    };
    let rates = col("traffic.csv", 1);
    let p50 = col("completion_len.csv", 1);
    let p95 = col("completion_len.csv", 3);
    (rates, p50.into_iter().zip(p95).collect())
}

#[test]
fn grafana_maas_export_offers_the_trace_count() {
    let Some(gd) = shared_data("grafana-derived/azure-conv-15s") else {
        return;
    };
    let (rates, comp) = grafana(&gd);
    assert_eq!(rates.len(), 234);
    let expected: f64 = rates.iter().map(|r| r * 15.0).sum();
    assert!((expected - 19_366.08).abs() < 1e-6);
    let dir = run_dir("stat-maas");
    plain_dataset(&dir, &DATASET_LENS, true);
    let mut cfg = config("stat");
    cfg.workload.stat.traffic_file = Some(gd.join("traffic.csv").display().to_string());
    cfg.workload.stat.prompt_len_file = Some(gd.join("prompt_len.csv").display().to_string());
    cfg.workload.stat.completion_len_file =
        Some(gd.join("completion_len.csv").display().to_string());
    let (out, wl) = run(&cfg, &dir);
    let reqs = requests(&wl);
    // exact_counts: each window gets rate x 15 s rounded with carry, so the total is the rounded
    // sum of the export: 19,366 exactly (the export's rates are rounded to 3 decimals, which is
    // why the sum is 19,366.08 and not the trace's 19,366).
    assert_eq!(reqs.len(), 19_366);
    assert_eq!(stat_u64(&out, "windows"), 234);
    let last = reqs.last().unwrap().0;
    assert!(
        reqs[0].0 >= 0.0 && last < 234.0 * 15_000.0 && last > 3_495_000.0,
        "span {last} ms: ~3,500 s"
    );
    let mut per = vec![0usize; 234];
    for (t, _) in &reqs {
        per[(*t / 15_000.0) as usize] += 1;
    }
    for (i, (&n, &r)) in per.iter().zip(&rates).enumerate() {
        assert!(
            (n as f64 - r * 15.0).abs() < 1.0,
            "window {i}: {n} requests for rate {r}"
        );
    }
    // Completion lengths follow each window's percentiles: the fraction at or below P50 and P95.
    // Binomial sd over 19,366 draws is 0.0036 (at P50) and 0.0016 (at P95); rounding draws to
    // whole tokens adds < 0.005. The tolerances are those two summed, about 4 sd.
    let (mut le50, mut le95) = (0usize, 0usize);
    for (t, r) in &reqs {
        let (p50, p95) = comp[(*t / 15_000.0) as usize];
        let o = r.output_length.unwrap() as f64;
        le50 += (o <= p50) as usize;
        le95 += (o <= p95) as usize;
    }
    let (f50, f95) = (
        le50 as f64 / reqs.len() as f64,
        le95 as f64 / reqs.len() as f64,
    );
    eprintln!("outputs at or below their window's P50: {f50:.4}, P95: {f95:.4}");
    assert!(
        (f50 - 0.5).abs() < 0.02,
        "{f50} of outputs at or below their window's P50"
    );
    assert!(
        (f95 - 0.95).abs() < 0.012,
        "{f95} of outputs at or below their window's P95"
    );

    // Poisson counts instead: the total is Poisson(19,366.08); 4 sd = 557.
    cfg.workload.stat.exact_counts = false;
    let (out, _) = run(&cfg, &dir);
    let n = stat_u64(&out, "requests") as f64;
    assert!((n - 19_366.08).abs() < 4.0 * 19_366.08f64.sqrt(), "{n}");
    assert_ne!(n, 19_366.0, "a different process (this seed)");

    // Twice as fast: same count, half the windows' length.
    cfg.workload.stat.exact_counts = true;
    cfg.workload.time_scale = 0.5;
    let (out, wl) = run(&cfg, &dir);
    assert_eq!(stat_u64(&out, "requests"), 19_366);
    assert!(requests(&wl).last().unwrap().0 < 234.0 * 7_500.0);
}

#[test]
fn grafana_cloudide_export() {
    let Some(gd) = shared_data("grafana-derived/azure-conv-15s") else {
        return;
    };
    let dir = run_dir("stat-cloudide");
    plain_dataset(&dir, &[5, 10], true);
    let mut cfg = config("stat");
    cfg.workload.stat.trace_type = StatTraceType::Cloudide;
    cfg.workload.stat.traffic_file = Some(gd.join("cloudide_traffic.csv").display().to_string());
    let (out, wl) = run(&cfg, &dir);
    assert_eq!(wl.num_requests(), 19_366);
    assert_eq!(
        stat_u64(&out, "requests_without_output_length"),
        0,
        "the dataset's output lengths"
    );
    // Halving the rate with qps_scale halves the count.
    cfg.workload.stat.qps_scale = 2.0;
    let (out, _) = run(&cfg, &dir);
    assert_eq!(
        stat_u64(&out, "requests"),
        (19_366.08f64 / 2.0).round() as u64
    );
}

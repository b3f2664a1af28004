//! Issue 15's modes end to end against the simulated engine: reasoning models, named datasets
//! and mixes, interactive chat.

use bench_types::record::RecordTable;

use crate::common::*;

/// ~30 requests of 512 prompt and 40 output tokens, in 1.5 s.
const SHORT: &[&str] = &[
    "workload.duration_ms=1500",
    "workload.constant.target_qps=20",
    "dataset.random.num_prompts=20",
    "dataset.random.output_tokens=40",
];

#[test]
fn reasoning_mode_records_both_phases_with_exact_token_counts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let mut kv = SHORT.to_vec();
    // floor(0.3 x 40) = 12 reasoning tokens, then 28 answer tokens, in vLLM 0.10's `reasoning`
    kv.extend(["sim.reasoning_share=0.3", "sim.reasoning_field=reasoning"]);
    let o = bench_ok(run, &overrides(&kv));
    let out = text(&o.stdout);
    assert!(out.contains("TTFT answer (ms)"), "{out}");
    let n = workload_requests(run);
    let t = RecordTable::read(&run.join("requests.parquet")).unwrap();
    assert_eq!(t.rows, n);
    for i in 0..n {
        assert_eq!(t.output_tokens[i], Some(40), "row {i}");
        assert_eq!(t.usage_output_tokens[i], Some(40), "row {i}");
        assert_eq!(t.reasoning_tokens[i], Some(12), "row {i}");
        assert_eq!(t.usage_reasoning_tokens[i], Some(12), "row {i}");
        let (fr, fa, ft) = (
            t.first_reasoning_ns[i].unwrap(),
            t.first_answer_ns[i].unwrap(),
            t.first_token_ns[i].unwrap(),
        );
        assert_eq!(ft, fr, "TTFT counts the first reasoning token");
        assert!(fa > fr, "row {i}: the answer comes after the reasoning");
    }
    let s = json(run, "summary.json");
    let q = &s["reasoning"];
    assert_eq!(q["requests_with_reasoning"], n);
    assert_eq!(q["reasoning_from_usage"], n);
    assert_eq!(q["total_reasoning_tokens"], 12.0 * n as f64);
    assert_eq!(q["total_answer_tokens"], 28.0 * n as f64);
    assert_eq!(q["reasoning_tokens"]["max"], 12.0);
    assert_eq!(q["answer_tokens"]["min"], 28.0);
    let ttft = s["ttft_ms"]["p50"].as_f64().unwrap();
    let ttft_r = q["ttft_reasoning_ms"]["p50"].as_f64().unwrap();
    let ttft_a = q["ttft_answer_ms"]["p50"].as_f64().unwrap();
    let think = q["thinking_ms"]["p50"].as_f64().unwrap();
    assert_eq!(ttft, ttft_r);
    // 12 reasoning tokens take 11 decode steps (~10 ms each under the small preset) after the first
    assert!(think > 11.0 * 5.0 && ttft_a > ttft_r + think * 0.9, "{q}");
    // answer TPOT: (end - first answer) / 27, the same decode pace as the whole reply's TPOT
    let tpot = s["tpot_ms"]["p50"].as_f64().unwrap();
    let atpot = q["answer_tpot_ms"]["p50"].as_f64().unwrap();
    assert!((atpot - tpot).abs() < tpot * 0.25, "{atpot} vs {tpot}");

    // without the reasoning mode, nothing of it appears
    let dir2 = tempfile::tempdir().unwrap();
    bench_ok(dir2.path(), &overrides(SHORT));
    let s2 = json(dir2.path(), "summary.json");
    assert!(s2["reasoning"].is_null(), "{}", s2["reasoning"]);
    let t2 = RecordTable::read(&dir2.path().join("requests.parquet")).unwrap();
    assert!(t2.first_reasoning_ns.iter().all(Option::is_none));
    assert!(t2.usage_reasoning_tokens.iter().all(Option::is_none));
    assert_eq!(t2.first_answer_ns, t2.first_token_ns);
}

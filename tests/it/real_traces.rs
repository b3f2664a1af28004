//! Real traces from ../shared/data through the whole pipeline, against the simulated engine.
//! (Skipped with a printed reason when the data is absent; a failure under CI=true.)

use crate::common::*;
use bench_types::testdata::shared_data;

/// Seconds of day of an Azure TIMESTAMP (`2023-11-16 18:17:03.9799600`), in 100 ns units.
fn azure_ticks(ts: &str) -> i64 {
    let time = ts.split(' ').nth(1).unwrap();
    let (hms, frac) = time.split_once('.').unwrap();
    let mut it = hms.split(':').map(|x| x.parse::<i64>().unwrap());
    let (h, m, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    ((h * 60 + m) * 60 + s) * 10_000_000 + format!("{frac:0<7}")[..7].parse::<i64>().unwrap()
}

#[test]
fn azure_window_replays_every_row_with_exact_prompt_lengths() {
    let Some(trace) = shared_data("azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv")
    else {
        return;
    };
    // Independent parse of the first 20 s of the trace.
    let text = std::fs::read_to_string(&trace).unwrap();
    let rows: Vec<(i64, i64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.trim_end_matches('\r').split(',').collect();
            (azure_ticks(f[0]), f[1].parse().unwrap())
        })
        .collect();
    let t0 = rows[0].0;
    let want: Vec<i64> = rows
        .iter()
        .filter(|(t, _)| t - t0 < 30 * 10_000_000)
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(
        want.len(),
        59,
        "requests in the first 30 s of the conv trace"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = format!("workload.azure.trace_path={}", trace.display());
    bench_ok(
        dir.path(),
        &overrides(&[
            "workload.type=azure",
            &path,
            "workload.azure.end_s=30",
            "workload.time_scale=0.1",
            "workload.prompt_source=synthetic",
            "client.max_output_tokens=32",
            "sim.time_scale=0.05",
        ]),
    );
    let got = read_rows(dir.path());
    assert_eq!(got.len(), want.len());
    assert_eq!(got.count("ok"), want.len(), "{:?}", got.status);
    // The server counted exactly the trace's ContextTokens for every request, in trace order.
    let mut by_id: Vec<(i64, Option<i64>)> = got
        .request_id
        .iter()
        .copied()
        .zip(got.usage_prompt_tokens.iter().copied())
        .collect();
    by_id.sort_unstable();
    let usage: Vec<i64> = by_id.into_iter().map(|(_, u)| u.unwrap()).collect();
    assert_eq!(usage, want);
    // 30 s of trace at time scale 0.1 are sent within 3 s.
    let last_sent = got.sent_ns.iter().map(|s| s.unwrap()).max().unwrap();
    assert!(last_sent < 3_000_000_000, "last send at {last_sent} ns");
}

#[test]
fn mooncake_block_prompts_reach_the_server_with_the_trace_lengths() {
    let Some(trace) = shared_data("mooncake/conversation_trace.jsonl") else {
        return;
    };
    let want: Vec<i64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["timestamp"].as_f64().unwrap() < 6000.0)
        .map(|v| v["input_length"].as_i64().unwrap())
        .collect();
    assert!(want.len() > 5);

    let dir = tempfile::tempdir().unwrap();
    let path = format!("workload.mooncake.trace_path={}", trace.display());
    bench_ok(
        dir.path(),
        &overrides(&[
            "workload.type=mooncake",
            &path,
            "workload.mooncake.end_ms=6000",
            "workload.time_scale=0.2",
            "client.max_output_tokens=16",
            // Mooncake prompts reach 126k tokens: a long-context engine.
            "sim.max_model_len=131072",
            "sim.kv_cache_tokens=1000000",
            "sim.time_scale=0.02",
        ]),
    );
    // The workload refers to blocks; it is small, not ~50 KB of text per request.
    let size = std::fs::metadata(dir.path().join("workload.jsonl"))
        .unwrap()
        .len();
    assert!(
        size < 200 * want.len() as u64,
        "workload.jsonl is {size} bytes"
    );
    let got = read_rows(dir.path());
    assert_eq!(got.count("ok"), want.len(), "{:?}", got.status);
    let mut by_id: Vec<(i64, Option<i64>)> = got
        .request_id
        .iter()
        .copied()
        .zip(got.usage_prompt_tokens.iter().copied())
        .collect();
    by_id.sort_unstable();
    let usage: Vec<i64> = by_id.into_iter().map(|(_, u)| u.unwrap()).collect();
    assert_eq!(
        usage, want,
        "materialized block prompts have exactly input_length tokens"
    );
}

#[test]
fn sharegpt_sessions_send_each_turn_after_the_previous_reply_with_history() {
    let Some(sg) = shared_data("sharegpt/dialogstudio/original_example.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = format!("dataset.sharegpt.path={}", sg.display());
    bench_ok(
        dir.path(),
        &overrides(&[
            "dataset.type=sharegpt",
            &path,
            "workload.duration_ms=1500",
            "workload.constant.target_qps=10",
            "client.max_output_tokens=24",
            "sim.time_scale=0.1",
        ]),
    );
    let r = read_rows(dir.path());
    assert_eq!(r.len(), workload_requests(dir.path()));
    assert_eq!(r.count("ok"), r.len(), "{:?}", r.status);
    let mut turns: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for i in 0..r.len() {
        turns
            .entry(r.session_id[i].expect("every request is in a session"))
            .or_default()
            .push(i);
    }
    let mut later_turns = 0;
    for idx in turns.values_mut() {
        idx.sort_by_key(|&i| r.turn[i]);
        for w in idx.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert_eq!(
                r.turn[b],
                r.turn[a].map(|t| t + 1),
                "turns in order without gaps"
            );
            assert!(
                r.sent_ns[b].unwrap() >= r.end_ns[a].unwrap(),
                "turn sent before the previous reply ended"
            );
            // The history (earlier prompts and replies) is part of the later turn's prompt.
            assert!(r.usage_prompt_tokens[b].unwrap() > r.usage_prompt_tokens[a].unwrap());
            later_turns += 1;
        }
    }
    assert!(
        later_turns > 3,
        "the run exercised multi-turn sessions: {later_turns}"
    );
}

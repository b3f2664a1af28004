//! `bench merge` of 16 shards holding 1M request records in all: the shards' requests.parquet
//! read, checked (workload checksums, indexes, every request once) and written as one file
//! with a `shard` column, then the normal analysis of the merged run. The shards are synthetic
//! (the split of a 1M-request workload, 16 content chunks per request, as a client writes
//! them); the merge is the real binary. Target: the merge itself (the manifest's client stage)
//! under 30 s on the 2-core machine.
//!
//! `cargo bench -p bench --bench merge [-- --records 1000000 --shards 16]`; `cargo test
//! --all-targets` merges 20,000 records as a check.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bench_types::manifest::{Manifest, Stage, StageRecord};
use bench_types::record::meta;
use bench_types::record::schema::{RequestRecord, schema, to_batch, writer_properties};
use bench_types::{RequestStatus, Workload, WorkloadEntry, WorkloadRequest};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

/// A 1 ms-spaced open-loop workload of `n` requests (sessions of 4 turns every 10th request).
fn workload(n: usize) -> Workload {
    Workload {
        header: None,
        entries: (0..n)
            .map(|i| WorkloadEntry {
                timestamp: i as f64 * 0.01,
                requests: vec![WorkloadRequest {
                    prompt: Some("p".into()),
                    prompt_length: Some(100 + (i as u32 * 37) % 900),
                    output_length: Some(16),
                    session_id: (i % 10 == 0).then_some((i / 40) as u64),
                    ..Default::default()
                }],
            })
            .collect(),
    }
}

/// A finished request as the client records it: sent on schedule, 16 chunks 10 ms apart.
fn row(id: u64, scheduled: i64, session: Option<u64>) -> RequestRecord {
    let mut r = RequestRecord::new(id, scheduled, RequestStatus::Ok);
    r.session_id = session;
    let sent = scheduled + 50_000;
    r.ready_ns = Some(scheduled);
    r.sent_ns = Some(sent);
    r.first_byte_ns = Some(sent + 20_000_000);
    r.first_token_ns = Some(sent + 20_000_000);
    r.chunk_ns = (0..16)
        .map(|k| sent + 20_000_000 + k * 10_000_000)
        .collect();
    r.end_ns = Some(sent + 171_000_000);
    r.prompt_tokens = Some(100);
    r.output_tokens = Some(16);
    r.usage_prompt_tokens = Some(100);
    r.usage_output_tokens = Some(16);
    r.max_tokens = Some(16);
    r.finish_reason = Some("length".into());
    r.stream = true;
    r
}

fn write_shard(dir: &Path, index: u32, count: u32, wl_text: &[u8], rows: &[RequestRecord]) {
    std::fs::create_dir_all(dir).expect("shard dir");
    std::fs::write(dir.join("workload.jsonl"), wl_text).expect("workload");
    let mut config = serde_json::to_value(bench_config::Config::default()).expect("config");
    config["client"]["shard"] = serde_json::json!({"index": index, "count": count});
    config["analysis"]["plots"] = serde_json::json!(false);
    let anchor = 1_796_612_400_000_000_000i64;
    let m = Manifest {
        tool_version: "bench-merge-benchmark".into(),
        config,
        stages: vec![StageRecord {
            stage: Stage::Client,
            started_at: "2026-12-07T03:00:00Z".into(),
            seconds: 1.0,
            outputs: vec!["requests.parquet".into()],
            stats: [(
                "clock".to_string(),
                serde_json::json!({"host": format!("node-{index}"), "source": "chrony", "offset_ms": 0.2, "uncertainty_ms": 1.0, "detail": ""}),
            )]
            .into_iter()
            .collect(),
            config: serde_json::Value::Null,
        }],
        ..Manifest::empty(1)
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&m).expect("manifest"),
    )
    .expect("manifest");
    let f = std::fs::File::create(dir.join("requests.parquet")).expect("parquet");
    let mut w = ArrowWriter::try_new(f, schema(), Some(writer_properties("bench"))).expect("w");
    for chunk in rows.chunks(65_536) {
        w.write(&to_batch(chunk, 0).expect("batch")).expect("write");
    }
    for (k, v) in [
        (meta::ANCHOR_UNIX_NS, anchor.to_string()),
        (meta::WORKLOAD_REQUESTS, rows.len().to_string()),
        (meta::COMPLETE, "true".into()),
        (
            meta::MODE,
            r#"{"mode":"open_loop","concurrency":null}"#.into(),
        ),
        (meta::API, "openai-chat".into()),
    ] {
        w.append_key_value_metadata(KeyValue::new(k.to_string(), v));
    }
    w.close().expect("close");
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = arg("--records").map_or(if quick { 20_000 } else { 1_000_000 }, |v| {
        v.parse().expect("--records")
    });
    let count: u32 = arg("--shards").map_or(16, |v| v.parse().expect("--shards"));
    let dir = tempfile::tempdir().expect("tempdir");
    let wl = workload(n);
    let wl_path = dir.path().join("workload.jsonl");
    bench_types::workload::write(&wl_path, &wl).expect("workload");
    let wl_text = std::fs::read(&wl_path).expect("workload");
    let owner = bench_types::shard::assign(&wl, count);
    let mut parts: Vec<Vec<RequestRecord>> = vec![Vec::new(); count as usize];
    let mut id = 0u64;
    for e in &wl.entries {
        for r in &e.requests {
            let scheduled = (e.timestamp * 1e6).round() as i64;
            parts[owner[id as usize] as usize].push(row(id, scheduled, r.session_id));
            id += 1;
        }
    }
    let shards = dir.path().join("shards");
    let t0 = Instant::now();
    for (i, rows) in parts.iter().enumerate() {
        write_shard(
            &shards.join(format!("shard-{i:02}")),
            i as u32,
            count,
            &wl_text,
            rows,
        );
    }
    let made = t0.elapsed().as_secs_f64();
    let out = dir.path().join("merged");
    let t0 = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["merge", "-q"])
        .arg(&shards)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run bench merge");
    let wall = t0.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "bench merge failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m: Manifest = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("merged manifest"),
    )
    .expect("manifest");
    let client = m.stage(Stage::Client).expect("client stage");
    let merge_s = client.seconds;
    let analysis_s = m.stage(Stage::Analysis).map_or(0.0, |s| s.seconds);
    assert_eq!(client.stats["requests"], n as u64);
    assert_eq!(client.stats["ok"], n as u64);
    let size = std::fs::metadata(out.join("requests.parquet"))
        .expect("merged file")
        .len();
    let sizes: u64 = (0..count)
        .map(|i| {
            std::fs::metadata(shards.join(format!("shard-{i:02}/requests.parquet")))
                .map_or(0, |m| m.len())
        })
        .sum();
    println!(
        "merge: {count} shards, {n} records ({:.1} MB of shard files -> {:.1} MB): merge {merge_s:.2} s ({:.0} records/s), analysis {analysis_s:.2} s, {wall:.2} s in all for `bench merge` (the shards took {made:.1} s to write)",
        sizes as f64 / 1e6,
        size as f64 / 1e6,
        n as f64 / merge_s
    );
    if quick {
        assert!(merge_s < 10.0, "merge of {n} records took {merge_s:.2} s");
    }
}

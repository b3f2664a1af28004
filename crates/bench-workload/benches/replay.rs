//! Workload stage speed on the real traces, prompts included (release: `cargo bench -p
//! bench-workload --bench replay`). Prints one line per case: wall time, requests, file size.
//!
//! Cases: Azure conv (19,366 requests) with prompts matched from a generated dataset and with
//! generated prompts; Mooncake conversation (12,031 requests) as block references and fully
//! materialized; 100k generated prompts of 1,000 tokens (constant, fixed rate). Target: each
//! trace case under 5 s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bench_config::Config;
use bench_config::workload::{Arrival, PromptSource, WorkloadType};
use bench_text::{TextGen, Tokenizer};
use bench_types::dataset::{self, DatasetRecord, PlainPrompt};
use bench_types::testdata::shared_data;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn case(name: &str, cfg: &Config, dir: &Path) {
    let t0 = Instant::now();
    let out = bench_workload::run(cfg, dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let secs = t0.elapsed().as_secs_f64();
    let bytes = out.stats["bytes"].as_u64().unwrap_or(0);
    let requests = out.stats["requests"].as_u64().unwrap_or(0);
    let tokens = out.stats["prompt_tokens"].as_u64().unwrap_or(0);
    println!(
        "{name:<44} {secs:>7.3} s  {requests:>7} requests  {:>9.1} M prompt tokens  {:>8.1} MB written  {:>7.1} MB/s",
        tokens as f64 / 1e6,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
}

/// A dataset of `n` prompts with lengths log-uniform in [2, 16384] (the Azure range).
fn dataset(dir: &Path, n: usize) -> f64 {
    let t0 = Instant::now();
    let g = TextGen::new(&Tokenizer::load("builtin:cl100k_base").unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let recs: Vec<DatasetRecord> = (0..n)
        .map(|_| {
            let len =
                (2f64.ln() + rng.random::<f64>() * (16384f64.ln() - 2f64.ln())).exp() as usize;
            let (text, c) = g.generate(&mut rng, len);
            DatasetRecord::Plain(PlainPrompt {
                prompt_length: Some(c as u32),
                ..PlainPrompt::new(text)
            })
        })
        .collect();
    dataset::write(&dir.join("dataset.jsonl"), &recs).unwrap();
    t0.elapsed().as_secs_f64()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    println!(
        "threads available: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Some(trace) = shared_data("azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv") {
        let s = dataset(&dir, 2000);
        println!("(setup: 2,000-prompt dataset generated in {s:.2} s)");
        let mut cfg = Config::default();
        cfg.workload.kind = WorkloadType::Azure;
        cfg.workload.azure.trace_path = Some(trace.display().to_string());
        case("azure conv, prompts from dataset", &cfg, &dir);
        cfg.workload.prompt_source = PromptSource::Synthetic;
        case("azure conv, generated prompts", &cfg, &dir);
    }
    if let Some(trace) = shared_data("mooncake/conversation_trace.jsonl") {
        let mut cfg = Config::default();
        cfg.workload.kind = WorkloadType::Mooncake;
        cfg.workload.mooncake.trace_path = Some(trace.display().to_string());
        case("mooncake conversation, block references", &cfg, &dir);
        cfg.workload.mooncake.materialize = true;
        case("mooncake conversation, materialized", &cfg, &dir);
    }
    let mut cfg = Config::default();
    cfg.workload.prompt_source = PromptSource::Synthetic;
    cfg.workload.constant.prompt_length = Some(1000);
    cfg.workload.constant.output_length = Some(100);
    cfg.workload.constant.arrival = Arrival::Fixed;
    cfg.workload.constant.target_qps = 1000.0;
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small case as a check
    let quick = !std::env::args().any(|a| a == "--bench");
    cfg.workload.duration_ms = if quick { 2_000 } else { 100_000 };
    let n = cfg.workload.duration_ms;
    case(
        &format!("constant, {n} generated 1,000-token prompts"),
        &cfg,
        &dir,
    );
}

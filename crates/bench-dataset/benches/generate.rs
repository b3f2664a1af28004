//! Dataset stage speed (release build):
//! 1. random: 100,000 prompts of exactly 1,000 tokens, generated and written to dataset.jsonl
//!    (the target: under 10 s);
//! 2. sharegpt: the 1,000-conversation ShareGPT sample from ../shared/data repeated 100 times
//!    (100,000 conversations on one line, about 86 MB), parsed, tokenized and written (skipped
//!    when the shared data is missing).
//!
//! `cargo bench -p bench-dataset --bench generate [-- <num_prompts> <tokens> <threads>]`

use std::time::Instant;

use bench_config::Config;
use bench_config::dataset::DatasetType;
use bench_types::StageOutput;

fn run(cfg: &Config, dir: &std::path::Path, threads: Option<usize>) -> (StageOutput, f64) {
    let t0 = Instant::now();
    let out = match threads {
        Some(t) => bench_dataset::run_with_threads(cfg, dir, t),
        None => bench_dataset::run(cfg, dir),
    }
    .expect("dataset stage");
    (out, t0.elapsed().as_secs_f64())
}

fn n(out: &StageOutput, k: &str) -> u64 {
    out.stats[k].as_u64().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small case as a check
    let quick = !std::env::args().any(|a| a == "--bench");
    let num: u64 = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let tokens: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let threads: Option<usize> = args.get(2).and_then(|s| s.parse().ok());
    let threads_used = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = Config::default();
    cfg.dataset.kind = DatasetType::Random;
    cfg.dataset.random.num_prompts = num;
    cfg.dataset.random.input_tokens = tokens;
    cfg.dataset.random.output_tokens = 128;
    cfg.tokenizer = bench_text::TokenizerSpec::default();

    let (out, secs) = run(&cfg, dir.path(), threads);
    let (prompts, prompt_tokens, bytes) = (
        n(&out, "prompts"),
        n(&out, "prompt_tokens"),
        n(&out, "bytes"),
    );
    assert_eq!(prompts, num, "every prompt written");
    assert_eq!(
        prompt_tokens,
        num * u64::from(tokens),
        "every prompt has exactly {tokens} tokens"
    );
    let on_disk = std::fs::metadata(dir.path().join("dataset.jsonl"))
        .expect("dataset.jsonl")
        .len();
    assert_eq!(on_disk, bytes);

    println!("dataset generate (random, cl100k_base, {threads_used} threads)");
    println!("  prompts        {prompts} x {tokens} tokens");
    println!("  time           {secs:.3} s (tokenizer load, generation, write, fsync)");
    println!(
        "  throughput     {:.0} prompts/s, {:.2} M tokens/s",
        prompts as f64 / secs,
        prompt_tokens as f64 / secs / 1e6
    );
    println!(
        "  written        {:.1} MB ({:.1} MB/s)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    let verdict = match (num, tokens) {
        (100_000, 1000) if secs < 10.0 => "met",
        (100_000, 1000) => "MISSED",
        _ => "n/a (other size)",
    };
    println!("  target         < 10 s for 100,000 x 1,000: {verdict}");

    // ShareGPT conversion speed on a replicated real sample.
    let Some(src) =
        bench_types::testdata::shared_data("sharegpt/ml-energy/ShareGPT_V3_filtered_1000.json")
    else {
        return;
    };
    let body = std::fs::read_to_string(src).expect("sample");
    let inner = body.trim().trim_start_matches('[').trim_end_matches(']');
    let copies = 100;
    let big = format!("[{}]", vec![inner; copies].join(", "));
    let path = dir.path().join("sharegpt_x100.json");
    std::fs::write(&path, &big).expect("write the replicated file");
    cfg.dataset.kind = DatasetType::Sharegpt;
    cfg.dataset.sharegpt.path = Some(path.to_string_lossy().into_owned());
    let (out, secs) = run(&cfg, dir.path(), threads);
    assert_eq!(n(&out, "sessions"), 1000 * copies as u64);
    println!("dataset convert (sharegpt, cl100k_base, {threads_used} threads)");
    println!(
        "  input          {:.1} MB, {} conversations (one line)",
        big.len() as f64 / 1e6,
        1000 * copies
    );
    println!("  time           {secs:.3} s");
    println!(
        "  throughput     {:.0} conversations/s, {:.2} M prompt tokens/s, {:.1} MB/s of input",
        n(&out, "sessions") as f64 / secs,
        n(&out, "prompt_tokens") as f64 / secs / 1e6,
        big.len() as f64 / 1e6 / secs
    );
}

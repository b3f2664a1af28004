//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use bench_config::Config;
use bench_text::{TextGen, Tokenizer};
use bench_types::dataset::{self, DatasetRecord, PlainPrompt};
use bench_types::{StageOutput, Workload, WorkloadRequest, workload};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A fresh temporary directory, removed when dropped; derefs to its path.
pub struct Dir(tempfile::TempDir);

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh temporary run directory (`name` is the prefix of its name).
pub fn run_dir(name: &str) -> Dir {
    Dir(tempfile::Builder::new()
        .prefix(&format!("bench-workload-{name}-"))
        .tempdir()
        .expect("tempdir"))
}

pub fn tok() -> Tokenizer {
    Tokenizer::load("builtin:cl100k_base").unwrap()
}

pub fn textgen() -> TextGen {
    TextGen::new(&tok()).unwrap()
}

/// Writes a plain dataset with one prompt per length (exact under cl100k), output length
/// `10 + i`, `prompt_length` recorded or not.
pub fn plain_dataset(dir: &Path, lens: &[usize], with_lengths: bool) -> Vec<(String, u32)> {
    let g = textgen();
    let mut rng = StdRng::seed_from_u64(99);
    let mut out = Vec::new();
    let recs: Vec<DatasetRecord> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let (text, c) = g.generate(&mut rng, n);
            out.push((text.clone(), c as u32));
            DatasetRecord::Plain(PlainPrompt {
                prompt_length: with_lengths.then_some(c as u32),
                output_length: Some(10 + i as u32),
                ..PlainPrompt::new(text)
            })
        })
        .collect();
    dataset::write(&dir.join("dataset.jsonl"), &recs).unwrap();
    out
}

pub fn config(kind: &str) -> Config {
    let mut c = Config::default();
    c.workload.kind = serde_json::from_value(serde_json::Value::String(kind.into())).unwrap();
    c
}

pub fn run(cfg: &Config, dir: &Path) -> (StageOutput, Workload) {
    let out =
        bench_workload::run(cfg, dir).unwrap_or_else(|e| panic!("workload stage failed: {e}"));
    let wl = workload::read(&dir.join("workload.jsonl")).unwrap();
    (out, wl)
}

/// (timestamp, request) for every request, in file order.
pub fn requests(wl: &Workload) -> Vec<(f64, &WorkloadRequest)> {
    wl.entries
        .iter()
        .flat_map(|e| e.requests.iter().map(move |r| (e.timestamp, r)))
        .collect()
}

pub fn stat_u64(out: &StageOutput, k: &str) -> u64 {
    out.stats
        .get(k)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("stat {k} missing: {:?}", out.stats))
}

pub fn stat_f64(out: &StageOutput, k: &str) -> f64 {
    out.stats
        .get(k)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("stat {k} missing: {:?}", out.stats))
}

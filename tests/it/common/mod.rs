//! Running the `bench` binary the way a user does, and reading what it leaves behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bench_types::record::{RecordTable, Status};

/// The repository root (where config.yaml lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `bench` command run from the repository root, quiet, with the given run directory.
pub fn bench_cmd(run_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.current_dir(root())
        .env_remove("RUST_LOG")
        // tests that use the catalog give their own; the others leave no trace of one
        .env("BENCH_CATALOG__ENABLED", "false")
        .arg("-q")
        .args(["--config", "config.yaml"])
        .args(["--override", &format!("run_dir={}", run_dir.display())])
        .args(args);
    c
}

/// Runs `bench`, returning its output.
pub fn bench(run_dir: &Path, args: &[&str]) -> Output {
    bench_cmd(run_dir, args).output().expect("run bench")
}

/// Runs `bench` and asserts it succeeded.
pub fn bench_ok(run_dir: &Path, args: &[&str]) -> Output {
    let o = bench(run_dir, args);
    assert!(
        o.status.success(),
        "bench {args:?} failed ({:?}):\n{}",
        o.status,
        text(&o.stderr)
    );
    o
}

/// Lossy UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Turns `k=v` pairs into repeated `--override` arguments.
pub fn overrides<'a>(kv: &[&'a str]) -> Vec<&'a str> {
    kv.iter().flat_map(|o| ["--override", o]).collect()
}

/// The rows of a requests.parquet, with the columns these tests look at.
#[derive(Debug, Default)]
pub struct Rows {
    pub status: Vec<String>,
    pub request_id: Vec<i64>,
    pub usage_prompt_tokens: Vec<Option<i64>>,
    pub prompt_tokens: Vec<Option<i64>>,
    pub sent_ns: Vec<Option<i64>>,
    pub first_token_ns: Vec<Option<i64>>,
    pub end_ns: Vec<Option<i64>>,
    pub session_id: Vec<Option<i64>>,
    pub turn: Vec<Option<i64>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.status.len()
    }
    pub fn count(&self, status: &str) -> usize {
        self.status.iter().filter(|s| *s == status).count()
    }
}

/// Reads `<run_dir>/requests.parquet` with bench-types' records reader.
pub fn read_rows(run_dir: &Path) -> Rows {
    let path = run_dir.join("requests.parquet");
    let t = RecordTable::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let i = |v: &[Option<u32>]| v.iter().map(|x| x.map(i64::from)).collect();
    let u = |v: &[Option<u64>]| v.iter().map(|x| x.map(|x| x as i64)).collect();
    Rows {
        status: t
            .status
            .iter()
            .map(|s| match s {
                Status::Known(k) => k.as_str().to_string(),
                Status::Unknown(k) => t.unknown_statuses[*k as usize].clone(),
            })
            .collect(),
        request_id: t.request_id.iter().map(|x| x.unwrap() as i64).collect(),
        usage_prompt_tokens: i(&t.usage_prompt_tokens),
        prompt_tokens: i(&t.prompt_tokens),
        sent_ns: t.sent_ns.clone(),
        first_token_ns: t.first_token_ns.clone(),
        end_ns: t.end_ns.clone(),
        session_id: u(&t.session_id),
        turn: i(&t.turn),
    }
}

/// Number of requests in `<run_dir>/workload.jsonl`.
pub fn workload_requests(run_dir: &Path) -> usize {
    bench_types::workload::read(&run_dir.join("workload.jsonl"))
        .unwrap()
        .num_requests()
}

/// `<run_dir>/<name>` parsed as JSON.
pub fn json(run_dir: &Path, name: &str) -> serde_json::Value {
    let p = run_dir.join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

pub use bench_testkit::services::{http, http_json};

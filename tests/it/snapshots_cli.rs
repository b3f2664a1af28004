//! What a user reads, pinned (insta snapshots in tests/it/snapshots/): the help text, the
//! flag-to-override mapping, config error texts, `--override help`, and the failure-first
//! terminal summary with its timings filtered out. `cargo insta review` (or INSTA_UPDATE=always)
//! updates them after an intended change.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run bench")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn help_text() {
    let o = bench(&["--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!(text(&o.stdout));
}

#[test]
fn no_arguments_prints_help_and_runs_nothing() {
    let o = bench(&[]);
    assert_eq!(o.status.code(), Some(2), "clap's usage status");
    let err = text(&o.stderr);
    assert!(err.contains("Usage: bench"), "{err}");
    assert!(err.contains("--endpoint"), "{err}");
}

/// Every common flag, and the config it resolves to: the keys the help text promises.
#[test]
fn flags_map_to_their_overrides() {
    let o = bench(&[
        "--show-config",
        "--endpoint",
        "http://localhost:8000",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--api",
        "openai-completions",
        "--rate",
        "2.5",
        "--num-requests",
        "40",
        "--input-tokens",
        "1024",
        "--output-tokens",
        "64",
        "--duration",
        "12.5",
        "-o",
        "/tmp/bench-snap",
        "--name",
        "llama8b",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_yaml::Value = serde_yaml::from_str(&text(&o.stdout)).unwrap();
    let pick = |path: &str| {
        let mut cur = &v;
        for k in path.split('.') {
            cur = &cur[k];
        }
        format!("{path} = {}", serde_yaml::to_string(cur).unwrap().trim())
    };
    let keys = [
        "client.endpoint",
        "client.model",
        "client.api",
        "workload.type",
        "workload.constant.target_qps",
        "workload.num_requests",
        "dataset.type",
        "dataset.random.input_tokens",
        "dataset.random.output_tokens",
        "workload.duration_ms",
        "run_dir",
        "name",
    ];
    let lines: Vec<String> = keys.iter().map(|k| pick(k)).collect();
    insta::assert_snapshot!(lines.join("\n"));
    let o = bench(&["--show-config", "--concurrency", "16"]);
    let v: serde_yaml::Value = serde_yaml::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(v["workload"]["type"].as_str(), Some("concurrency"));
    assert_eq!(
        v["workload"]["concurrency"]["concurrency"].as_u64(),
        Some(16)
    );
    let o = bench(&["--show-config", "--concurrency", "16", "--rate", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn config_error_texts() {
    let o = bench(&[
        "--config",
        "config.yaml",
        "--override",
        "workload.constant.target_qsp=3",
        "--override",
        "workload.type=constnt",
        "--override",
        "tokenizer=builtin:p50k",
        "--override",
        "client.endpoint=localhost:8000",
        "--override",
        "analysis.pairs=[ttft]",
    ]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!(text(&o.stderr));
}

#[test]
fn override_help() {
    let o = bench(&["--override", "help"]);
    assert!(o.status.success());
    insta::assert_snapshot!(text(&o.stdout));
}

/// A run against a port nothing listens on: the summary leads with the failure and its most
/// common error, never "ok".
#[test]
fn failure_first_summary() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = bench(&[
        "-q",
        "--config",
        "config.yaml",
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--rate",
        "20",
        "--num-requests",
        "8",
        // past the preflight (which would stop a dead endpoint first), every request fails
        "--model",
        "m",
        "--override",
        "client.preflight=false",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    insta::with_settings!({filters => vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"bench analysis: \S+", "bench analysis: [run_dir]"),
        (r"(?m)^(Duration \(s\)\s+)\S+", "$1[s]"),
        (r"(?m)^(Request throughput \(req/s\)\s+)\S+", "$1[x]"),
        (r"(?m)^(Offered / achieved\s+).*$", "$1[rates]"),
        (r"(?m)^(TTFB \(ms\)|Dispatch lag \(ms\)|Queue delay \(ms\)|Schedule lag \(ms\)|E2EL \(ms\))\s.*$", "$1 [figures]"),
        (r"p99 schedule lag [0-9.]+ ms", "p99 schedule lag [x] ms"),
        (r"os error \d+", "os error [n]"),
    ]}, {
        insta::assert_snapshot!(out);
    });
    assert_eq!(
        o.status.code(),
        Some(3),
        "a run in which nothing succeeded fails"
    );
}

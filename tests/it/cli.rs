//! The binary's config surface, run the way a user runs it.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run bench")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn override_help_lists_every_contract_key_with_type_and_default() {
    let o = bench(&["--override", "help"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for key in [
        "run_dir  <string>",
        "seed  <unsigned integer>  [default: 42]",
        "tokenizer  <string>",
        "dataset.type  <",
        "dataset.random.num_prompts",
        "dataset.random.input_tokens",
        "dataset.random.output_tokens",
        "dataset.sharegpt.path",
        "dataset.client_trace.path",
        "dataset.custom.path",
        "workload.type  <",
        "workload.azure.trace_path",
        "workload.mooncake.trace_path",
        "workload.stat.traffic_file",
        "workload.stat.prompt_len_file",
        "workload.stat.completion_len_file",
        "workload.stat.trace_type",
        "workload.time_scale",
        "workload.duration_ms",
        "workload.constant.target_qps",
        "workload.concurrency.concurrency",
        "client.endpoint",
        "client.api  <",
        "client.model",
        "client.stream",
        "client.api_key_env",
        "client.timeout_s",
        "client.max_concurrency",
        "client.time_scale",
        "analysis.slo.ttft_ms",
        "analysis.slo.tpot_ms",
        "analysis.slo.itl_ms",
        "analysis.slo.e2el_ms",
    ] {
        assert!(out.contains(key), "`--override help` lacks {key}");
    }
}

#[test]
fn show_config_applies_overrides_as_yaml() {
    let o = bench(&[
        "--config",
        "config.yaml",
        "--show-config",
        "--override",
        "workload.constant.target_qps=2.5",
        "--override",
        "dataset.type=sharegpt",
        "--override",
        "dataset.sharegpt.path=/data/sg.json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(v["workload"]["constant"]["target_qps"].as_f64(), Some(2.5));
    assert_eq!(v["dataset"]["type"].as_str(), Some("sharegpt"));
    assert_eq!(
        v["dataset"]["sharegpt"]["path"].as_str(),
        Some("/data/sg.json")
    );
}

#[test]
fn every_config_problem_is_reported_at_once_with_exit_2() {
    let o = bench(&[
        "--config",
        "config.yaml",
        "--show-config",
        "--override",
        "workload.constant.target_qsp=3",
        "--override",
        "seed=-1",
        "--override",
        "client.timeout_s=soon",
        "--override",
        "workload.type=constnt",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("invalid config (4 problems)"), "{err}");
    assert!(
        err.contains("`workload.constant.target_qsp`: unknown key; did you mean `target_qps`?"),
        "{err}"
    );
    assert!(err.contains("`seed`: -1 must not be negative"), "{err}");
    assert!(
        err.contains("`client.timeout_s`: expected a number"),
        "{err}"
    );
    assert!(
        err.contains("`workload.type`: \"constnt\" is not one of"),
        "{err}"
    );
}

#[test]
fn env_layer_sits_between_file_and_overrides() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--config", "config.yaml", "--show-config"];
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("BENCH_WORKLOAD__CONSTANT__TARGET_QPS", "7")
            .env("BENCH_SEED", "5")
            // other tools' variables that share the prefix are not config
            .env("BENCH_BIN", "/usr/local/bin/bench")
            .env("BENCH_SHARED_DATA", "/data")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_yaml::Value = serde_yaml::from_str(&text(&o.stdout)).unwrap();
        assert_eq!(v["seed"].as_u64(), Some(5));
        v["workload"]["constant"]["target_qps"].as_f64()
    };
    assert_eq!(run(&[]), Some(7.0));
    assert_eq!(
        run(&["--override", "workload.constant.target_qps=9"]),
        Some(9.0)
    );
    // a nested name is meant as config: an unknown one is still an error naming the variable
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--config", "config.yaml", "--show-config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BENCH_WORKLAOD__TYPE", "azure")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("(from environment variable BENCH_WORKLAOD")
            && text(&o.stderr).contains("did you mean `workload`"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn missing_config_file_and_bad_yaml_exit_2_naming_the_file() {
    let o = bench(&["--config", "no/such/config.yaml", "--show-config"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no/such/config.yaml"));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "seed: 1\nworkload: [\n").unwrap();
    let o = bench(&["--config", p.to_str().unwrap(), "--show-config"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("bad.yaml:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
}

/// A preset extends config.yaml (`base:`) and its relative paths are relative to it, so it
/// works from any working directory and keeps the default SLOs.
#[test]
fn presets_work_from_any_directory_and_keep_the_base_settings() {
    let elsewhere = tempfile::tempdir().unwrap();
    let preset =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/workload/synthetic.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--show-config", "--config", preset.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_yaml::Value = serde_yaml::from_str(&text(&o.stdout)).unwrap();
    let traffic = v["workload"]["synthetic"]["traffic_file"].as_str().unwrap();
    assert!(std::path::Path::new(traffic).is_file(), "{traffic}");
    assert_eq!(
        v["analysis"]["slo"]["ttft_ms"].as_f64(),
        Some(2000.0),
        "from config.yaml"
    );
    assert_eq!(v["name"].as_str(), Some("workload-synthetic"));
}

/// Every run gets its own directory and `output/latest`; a finished run is not overwritten
/// without --force; `--stage analysis` alone continues the latest run.
#[test]
fn runs_get_their_own_directories_and_finished_ones_are_kept() {
    let work = tempfile::tempdir().unwrap();
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(["-q", "--config", cfg.to_str().unwrap()])
            .args([
                "--rate",
                "20",
                "--num-requests",
                "6",
                "--output-tokens",
                "4",
            ])
            .args(args)
            .current_dir(work.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let o = run(&["--name", "first"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = work.path().join("output");
    let dirs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let first = dirs
        .iter()
        .find(|d| d.starts_with("first-"))
        .expect("first-<time>");
    let latest = std::fs::read_link(out.join("latest")).unwrap();
    assert_eq!(latest.to_str(), Some(first.as_str()));
    assert!(out.join(first).join("summary.json").is_file());
    // the same directory again: refused, then allowed with --force
    let dir = out.join(first);
    let o = run(&["-o", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("holds a finished run") && err.contains("--force"),
        "{err}"
    );
    let o = run(&["-o", dir.to_str().unwrap(), "--force"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // analysis alone continues output/latest
    let o = run(&["--stage", "analysis"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!(
        "bench analysis: {}",
        dir.canonicalize().unwrap().display()
    )));
}

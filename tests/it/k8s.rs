//! `bench k8s render`: the manifests pinned (insta snapshots), checked against the Kubernetes
//! schemas offline (`kubernetes-validate`, installed by .ci/run), and their content checked
//! against what a local run makes: the ConfigMap's workload is byte for byte the workload
//! stage's, and its config loads back as a shard's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const START: &str = "2030-01-01T00:00:00Z";

fn render(out: &Path, input: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .env_remove("RUST_LOG")
        .args(["k8s", "render", input, "--out"])
        .arg(out)
        .args([
            "--shards",
            "4",
            "--start-at",
            START,
            "--image",
            "registry.example/bench:0.1.0",
        ])
        .args(["--namespace", "bench"])
        .args(extra)
        .output()
        .unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `kubernetes-validate` command, when installed (PATH or pip's --user bin).
fn validator() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(Path::new(&h).join(".local/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file())
}

/// Validates `files` against the Kubernetes 1.31 schemas, strictly, without a cluster.
fn validate(files: &[PathBuf]) {
    let Some(kv) = validator() else {
        let why = "kubernetes-validate not installed (pip install kubernetes-validate==1.31.0; .ci/run does)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping the schema check: {why}");
        return;
    };
    let o = Command::new(kv)
        .args(["-k", "1.31.0", "--strict"])
        .args(files)
        .output()
        .unwrap();
    let out = text(&o.stdout) + &text(&o.stderr);
    assert!(o.status.success(), "{out}");
    let docs: usize = files
        .iter()
        .map(|f| read(f).lines().filter(|l| l.starts_with("kind: ")).count())
        .sum();
    assert_eq!(out.matches(" passed for resource ").count(), docs, "{out}");
}

fn yaml(p: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(p)).unwrap()
}

#[test]
fn a_config_renders_valid_manifests_that_carry_its_workload() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k8s");
    let o = render(
        &out,
        "config.yaml",
        &[
            "--override",
            "client.endpoint=http://vllm.llm.svc:8000",
            "--override",
            "client.api_key_env=VLLM_API_KEY",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for f in [
        "10-shards-job.yaml",
        "20-merge-job.yaml",
        "01-results-pvc.yaml",
        "run.sh",
    ] {
        insta::assert_snapshot!(format!("pvc_{f}"), read(&out.join(f)));
    }
    let files: Vec<PathBuf> = [
        "00-config.yaml",
        "01-results-pvc.yaml",
        "10-shards-job.yaml",
        "20-merge-job.yaml",
    ]
    .iter()
    .map(|f| out.join(f))
    .collect();
    validate(&files);

    // the ConfigMap: the workload a local workload stage makes, and a shard's config
    let cm = yaml(&out.join("00-config.yaml"));
    let local = tmp.path().join("local");
    bench_ok(&local, &["--stage", "dataset,workload"]);
    assert_eq!(
        cm["data"]["workload.jsonl"].as_str().unwrap(),
        read(&local.join("workload.jsonl")),
        "the ConfigMap's workload is the workload stage's, byte for byte"
    );
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let shown = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--show-config", "--config"])
        .arg(&cfg)
        .env("JOB_COMPLETION_INDEX", "3")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let tree: serde_yaml::Value = serde_yaml::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        tree["client"]["shard"]["index"].as_u64(),
        Some(3),
        "JOB_COMPLETION_INDEX"
    );
    assert_eq!(tree["client"]["shard"]["count"].as_u64(), Some(4));
    assert_eq!(tree["client"]["start_at"].as_str(), Some(START));
    assert_eq!(
        tree["client"]["endpoint"].as_str(),
        Some("http://vllm.llm.svc:8000")
    );

    // object storage: no volume claim, credentials by reference, the merge reads the prefix
    let s3 = tmp.path().join("s3");
    let o = render(
        &s3,
        "config.yaml",
        &["--storage", "s3://bench-results/runs"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!s3.join("01-results-pvc.yaml").exists());
    for f in ["10-shards-job.yaml", "20-merge-job.yaml"] {
        insta::assert_snapshot!(format!("s3_{f}"), read(&s3.join(f)));
    }
    validate(&[s3.join("10-shards-job.yaml"), s3.join("20-merge-job.yaml")]);

    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .args(["k8s", "render", "config.yaml", "--out"])
        .arg(tmp.path().join("bad"))
        .args(["--start-at", "soon"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--start-at `soon`: not an RFC 3339 UTC time"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_experiment_renders_an_argo_workflow_of_valid_jobs_in_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("exp.yaml");
    std::fs::write(
        &exp,
        format!(
            "name: k8s-matrix\nbase: {}\noverrides:\n  client.endpoint: http://sglang:30000\n  dataset.random.num_prompts: 16\naxes:\n  - key: workload.constant.target_qps\n    values: [5, 10]\n",
            root().join("config.yaml").display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("k8s");
    let o = render(&out, exp.to_str().unwrap(), &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    insta::assert_snapshot!("experiment_workflow", read(&out.join("30-workflow.yaml")));
    // the Jobs inside the workflow, each checked like the others
    let wf = yaml(&out.join("30-workflow.yaml"));
    let mut files = vec![out.join("00-config.yaml"), out.join("01-results-pvc.yaml")];
    let templates = wf["spec"]["templates"].as_sequence().unwrap();
    let steps: Vec<&str> = templates[0]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s[0]["template"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["k8s-matrix-0", "k8s-matrix-1"],
        "one run after the other"
    );
    for (i, t) in templates.iter().enumerate() {
        if let Some(m) = t["resource"]["manifest"].as_str() {
            let p = tmp.path().join(format!("job-{i}.yaml"));
            std::fs::write(&p, m).unwrap();
            files.push(p);
        }
    }
    assert_eq!(
        files.len(),
        2 + 4,
        "two runs, each a shards Job and a merge Job"
    );
    validate(&files);
    let cms = read(&out.join("00-config.yaml"));
    assert_eq!(cms.matches("kind: ConfigMap").count(), 2);
    assert!(
        cms.contains("target_qps: 10.0") || cms.contains("target_qps: 10"),
        "{cms}"
    );
}

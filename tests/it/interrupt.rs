//! Ctrl-C in the middle of a run, through the real binary.

use std::time::{Duration, Instant};

use crate::common::*;

/// Runs every stage into `run` with `kv` overrides, sends `signal` (`-INT`, `-TERM`) `after`
/// the client has started writing records, and returns how the process ended.
fn signal_mid_run(
    run: &std::path::Path,
    kv: &[&str],
    signal: &str,
    after: Duration,
) -> std::process::Output {
    let child = bench_cmd(run, &overrides(kv))
        .args(["--stage", "all"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !run.join("requests.parquet").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(after);
    let kill = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait_with_output().unwrap()
}

#[test]
fn sigint_mid_run_exits_130_keeps_every_request_and_analysis_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    // 30 s of traffic; interrupted after ~3 s of sending.
    let out = signal_mid_run(
        run,
        &[
            "workload.duration_ms=30000",
            "workload.constant.target_qps=20",
            "dataset.random.num_prompts=50",
        ],
        "-INT",
        Duration::from_secs(3),
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        text(&out.stderr)
    );

    // Every workload request is exactly one row; the run is cut short, not lost.
    let n = workload_requests(run);
    let rows = read_rows(run);
    assert_eq!(rows.len(), n);
    let (ok, not_sent, cancelled) = (
        rows.count("ok"),
        rows.count("not_sent"),
        rows.count("cancelled"),
    );
    assert!(ok > 20, "about 3 s at 20 req/s were answered: {ok}");
    assert!(
        not_sent > n / 2,
        "most of the 30 s were never sent: {not_sent} of {n}"
    );
    assert_eq!(
        ok + not_sent + cancelled,
        n,
        "no other status in a clean interrupt"
    );
    // Rows that were never sent carry no send time.
    for (s, sent) in rows.status.iter().zip(&rows.sent_ns) {
        assert_eq!(s == "not_sent", sent.is_none());
    }
    let m = json(run, "manifest.json");
    let stages: Vec<&str> = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["dataset", "workload", "client", "analysis"],
        "--stage all summarizes what finished after an interrupt"
    );
    let first = json(run, "summary.json");
    assert_eq!(first["counts"]["measured"], ok);

    // Analysis reads the interrupted run again, on its own, and says what it excluded.
    bench_ok(run, &["--stage", "analysis"]);
    let s = json(run, "summary.json");
    assert_eq!(s["counts"]["not_sent"], not_sent);
    assert_eq!(s["counts"]["measured"], ok);
    let excluded = serde_json::to_string(&s["excluded"]).unwrap();
    assert!(excluded.contains("not_sent"), "{excluded}");
}

/// SIGTERM (what Kubernetes and systemd send) stops a run the same way, exit 128 + 15: every
/// workload request has its row, and the analysis of what finished is written.
#[test]
fn sigterm_mid_run_exits_143_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let out = signal_mid_run(
        run,
        &[
            "workload.duration_ms=20000",
            "workload.constant.target_qps=20",
            "dataset.random.num_prompts=20",
            "client.grace_s=0.2",
        ],
        "-TERM",
        Duration::from_secs(1),
    );
    assert_eq!(
        out.status.code(),
        Some(143),
        "stderr: {}",
        text(&out.stderr)
    );
    let rows = read_rows(run);
    assert_eq!(rows.len(), workload_requests(run));
    assert!(rows.count("not_sent") > rows.len() / 2, "{:?}", rows.status);
    assert!(run.join("summary.json").is_file());
}

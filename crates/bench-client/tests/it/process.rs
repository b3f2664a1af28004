//! Stopping and crashing: the stop handle (what the binary's signal listener calls on Ctrl-C;
//! real signals are tested on the binary in the top-level tests), SIGKILL mid-run (the file
//! stays readable), the duration limit, and the API key from the environment.
//!
//! Child processes re-run this test binary with `BENCH_CLIENT_CHILD` set: `child_process_entry`
//! then plays the client (and does nothing in a normal test run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use bench_client::{RunOptions, StopHandle};
use bench_config::client::Api;
use bench_testkit::{End, Reply, TestServer};
use bench_types::StageError;

fn slow(ttft_ms: u64) -> Reply {
    Reply::Stream {
        api: Api::OpenaiChat,
        tokens: vec!["a".into(), "b".into()],
        ttft: Duration::from_millis(ttft_ms),
        interval: Duration::from_millis(10),
        usage: None,
        role_chunk: false,
        end: End::Done,
        precise: false,
    }
}

/// The child side: runs the client as the parent asks, exits like the binary would.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var("BENCH_CLIENT_CHILD") else {
        return;
    };
    let dir = std::env::var("BENCH_CLIENT_CHILD_DIR").unwrap();
    let url = std::env::var("BENCH_CLIENT_CHILD_URL").unwrap();
    let mut cfg = config();
    cfg.client.grace_s = 0.3;
    if mode == "apikey" {
        cfg.client.api_key_env = Some("BENCH_CLIENT_TEST_KEY".into());
        cfg.client.write_aibrix_output = true;
    }
    if mode == "sigkill" {
        cfg.client.write_aibrix_output = true;
    }
    if mode == "fdlimit" {
        // as `ulimit -n 300` would: soft and hard, so the client cannot raise it
        use rustix::process::{Resource, Rlimit, setrlimit};
        let l = Rlimit {
            current: Some(300),
            maximum: Some(300),
        };
        setrlimit(Resource::Nofile, l).expect("setrlimit");
        cfg.client.timeout_s = 30.0;
        cfg.client.flush_interval_s = 0.2;
    }
    let opts = RunOptions {
        base_url: url,
        quiet: true,
        ..RunOptions::default()
    };
    let out = bench_client::run(&cfg, Path::new(&dir), &opts).expect("child run");
    std::process::exit(if out.interrupted { 130 } else { 0 });
}

fn child(mode: &str, dir: &Path, url: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "process::child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("BENCH_CLIENT_CHILD", mode)
    .env("BENCH_CLIENT_CHILD_DIR", dir)
    .env("BENCH_CLIENT_CHILD_URL", url)
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// A stop (the first Ctrl-C): stop sending, in-flight requests cancelled after the grace, the
/// rest not_sent, the file complete, the run reported as interrupted.
#[test]
fn stop_sends_nothing_more_and_cancels_in_flight_after_the_grace() {
    let server = TestServer::start(|_| slow(20_000));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(100, 100.0, 2));
    let mut cfg = config();
    cfg.client.grace_s = 0.3;
    cfg.client.timeout_s = 60.0;
    let stop = StopHandle::new();
    let opts = RunOptions {
        base_url: server.url(),
        quiet: true,
        stop: stop.clone(),
        process_start_unix_ns: None,
    };
    let (out, (sent_before, signalled)) = std::thread::scope(|sc| {
        let stopper = sc.spawn(|| {
            // Wait until a few requests are in flight at the server.
            let t0 = Instant::now();
            while server.count() < 5 && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let sent_before = server.count();
            stop.stop();
            (sent_before, Instant::now())
        });
        let out = bench_client::run(&cfg, dir.path(), &opts).unwrap();
        (out, stopper.join().unwrap())
    });
    let took = signalled.elapsed();
    assert!(out.interrupted);
    assert!(
        took < Duration::from_secs(10),
        "stopping took {took:?} (grace 0.3 s; replies take 20 s)"
    );
    let (rows, _, kv) = records(dir.path());
    assert_eq!(meta(&kv, "bench.complete"), Some("true"));
    assert_eq!(rows.len(), 100, "one row per workload request, sent or not");
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let (cancelled, not_sent) = (count("cancelled"), count("not_sent"));
    assert_eq!(
        cancelled + not_sent,
        100,
        "nothing finished (20 s replies); statuses: {:?}",
        rows.iter().map(|r| &r.status).collect::<Vec<_>>()
    );
    assert!(
        cancelled >= sent_before && cancelled <= sent_before + 1,
        "{cancelled} cancelled, {sent_before} were in flight"
    );
    assert_eq!(
        server.count(),
        cancelled,
        "nothing is sent after the signal"
    );
    for r in rows.iter().filter(|r| r.status == "cancelled") {
        assert!(r.sent_ns.is_some() && r.end_ns.is_some());
        assert!(r.error.as_deref().unwrap().contains("stopped"));
    }
    for r in rows.iter().filter(|r| r.status == "not_sent") {
        assert!(r.sent_ns.is_none());
    }
}

/// SIGKILL mid-run: requests.parquet is a complete Parquet file holding every request that
/// finished before the last snapshot, marked incomplete; output.jsonl holds whole lines.
///
/// The test reads requests.parquet while the run goes (every read must succeed: a reader never
/// meets a half-written file), kills the child once the file holds 100 rows, and requires the
/// file after the kill to hold at least what was seen before it. How far snapshots trail the
/// server depends on scheduling (the writer runs at low priority), so that is not asserted here.
#[test]
fn sigkill_leaves_a_readable_file() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 2));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(3000, 10.0, 2));
    let mut ch = child("sigkill", dir.path(), &server.url(), &[]);
    let t0 = Instant::now();
    let (mut seen, mut reads) = (0, 0);
    while seen < 100 && t0.elapsed() < Duration::from_secs(60) {
        if dir.path().join("requests.parquet").exists() {
            // Panics unless the snapshot is a readable file.
            let (rows, _, kv) = records(dir.path());
            assert_eq!(meta(&kv, "bench.complete"), Some("false"));
            assert!(rows.len() >= seen, "snapshots only grow");
            seen = rows.len();
            reads += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen >= 100, "the file held {seen} rows after 60 s");
    ch.kill().unwrap();
    ch.wait().unwrap();
    let answered = server.count();
    assert!(answered < 3000, "the kill came after the run had finished");
    let (rows, _, kv) = records(dir.path());
    assert_eq!(meta(&kv, "bench.complete"), Some("false"));
    assert_eq!(meta(&kv, "bench.workload_requests"), Some("3000"));
    assert!(
        meta(&kv, "bench.anchor_unix_ns")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 1_600_000_000_000_000_000
    );
    assert!(
        rows.len() >= seen && rows.len() <= answered,
        "{} rows in the file; {seen} seen before the kill ({reads} reads), {answered} answered",
        rows.len()
    );
    let ids: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.request_id).collect();
    assert_eq!(ids.len(), rows.len(), "no duplicate rows");
    assert!(
        rows.iter()
            .all(|r| r.status == "ok" && r.chunk_ns.len() == 2)
    );
    let lines = std::fs::read_to_string(dir.path().join("output.jsonl")).unwrap();
    for l in lines.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("whole JSON lines");
    }
    // No stray temporary file is mistaken for the output.
    assert!(dir.path().join("requests.parquet").is_file());
}

/// The API key comes from the environment variable named by client.api_key_env, goes out as
/// a Bearer token, and is written to no file.
#[test]
fn api_key_from_the_environment_is_sent_and_never_written() {
    let key = "sk-bench-test-7f3a9c";
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 2));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(3, 1.0, 2));
    let status = child(
        "apikey",
        dir.path(),
        &server.url(),
        &[("BENCH_CLIENT_TEST_KEY", key)],
    )
    .wait()
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.header("authorization") == Some("Bearer sk-bench-test-7f3a9c"))
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            memchr::memmem::find(&bytes, key.as_bytes()).is_none(),
            "API key found in {}",
            p.display()
        );
    }
}

#[test]
fn missing_api_key_variable_is_a_usage_error() {
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(1, 1.0, 2));
    let mut cfg = config();
    cfg.client.api_key_env = Some("BENCH_CLIENT_SURELY_UNSET_VARIABLE".into());
    let opts = RunOptions {
        base_url: "http://127.0.0.1:1".into(),
        ..RunOptions::default()
    };
    let e = bench_client::run(&cfg, dir.path(), &opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "client.api_key_env: environment variable BENCH_CLIENT_SURELY_UNSET_VARIABLE is not set"
    );
}

/// The stop handle (as embedders and tests use it) behaves like Ctrl-C; in-flight requests
/// that finish within the grace are kept as ok.
#[test]
fn stop_handle_drains_within_the_grace() {
    let server = TestServer::start(|_| slow(150));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(50, 40.0, 2));
    let mut cfg = config();
    cfg.client.grace_s = 2.0;
    let stop = StopHandle::new();
    let s2 = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        s2.stop();
    });
    let opts = RunOptions {
        base_url: server.url(),
        quiet: true,
        stop,
        process_start_unix_ns: None,
    };
    let out = bench_client::run(&cfg, dir.path(), &opts).unwrap();
    assert!(out.interrupted);
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows.len(), 50);
    let ok = rows.iter().filter(|r| r.status == "ok").count();
    let not_sent = rows.iter().filter(|r| r.status == "not_sent").count();
    assert_eq!(
        ok + not_sent,
        50,
        "in-flight requests finished within the grace"
    );
    assert!((6..=10).contains(&ok), "{ok} sent in 300 ms at 25 req/s");
    assert_eq!(out.by_status[bench_types::RequestStatus::Ok] as usize, ok);
}

/// client.duration_limit_s stops sending at anchor + limit (not interrupted).
#[test]
fn duration_limit_stops_sending() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 1));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(100, 10.0, 1));
    let mut cfg = config();
    cfg.client.duration_limit_s = Some(0.25);
    let out = run(&cfg, dir.path(), &server.url());
    assert!(!out.interrupted);
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows.len(), 100);
    let sent: Vec<_> = rows.iter().filter(|r| r.sent_ns.is_some()).collect();
    assert!(
        (24..=27).contains(&sent.len()),
        "{} sent within 250 ms at 100 req/s",
        sent.len()
    );
    assert!(
        rows.iter()
            .filter(|r| r.sent_ns.is_none())
            .all(|r| r.status == "not_sent" && r.scheduled_ns >= 240_000_000)
    );
}

/// Out of file descriptors (`ulimit -n 300`, a slow but correct server, 200 req/s for 4 s): no
/// record is lost. Requests that find no descriptor for a socket end as transport_error rows
/// saying so, the rest are ok, and requests.parquet is complete (the writer holds its own
/// descriptors from the start).
#[test]
fn out_of_file_descriptors_loses_no_record() {
    let server = TestServer::start(|_| slow(2_000));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(800, 5.0, 2));
    let status = child("fdlimit", dir.path(), &server.url(), &[])
        .wait()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the run completes");
    let (rows, _, kv) = records(dir.path());
    assert_eq!(meta(&kv, "bench.complete"), Some("true"));
    assert_eq!(rows.len(), 800, "one row per workload request");
    let ok = rows.iter().filter(|r| r.status == "ok").count();
    let no_fd: Vec<_> = rows
        .iter()
        .filter(|r| r.status == "transport_error")
        .collect();
    eprintln!(
        "descriptor exhaustion: {ok} ok, {} transport_error of 800",
        no_fd.len()
    );
    assert_eq!(ok + no_fd.len(), 800, "only ok and transport_error");
    assert!(
        ok > 100,
        "{ok} ok: the requests that had a socket succeeded"
    );
    assert!(
        !no_fd.is_empty(),
        "400 in flight cannot fit in 300 descriptors"
    );
    for r in &no_fd {
        let e = r.error.as_deref().unwrap_or("").to_lowercase();
        assert!(e.contains("too many open files"), "{e}");
    }
}

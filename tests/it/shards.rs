//! A sharded run: N local processes as the shards against one standalone `bench sim`, merged
//! into one run and compared with a single process sending the same workload; a shard killed
//! mid-run; the merge's refusals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use crate::common::*;
use crate::serve::Sim;

const SHARDS: u32 = 3;

/// The workload's settings (3 s at 40 req/s, about 120 requests), against `url`.
fn workload(url: &str) -> Vec<String> {
    [
        format!("client.endpoint={url}"),
        "workload.duration_ms=3000".into(),
        "workload.constant.target_qps=40".into(),
        "dataset.random.num_prompts=120".into(),
        "dataset.random.input_tokens=64".into(),
        "dataset.random.output_tokens=16".into(),
        "client.flush_interval_s=0.2".into(),
    ]
    .into()
}

/// An RFC 3339 UTC time `secs` from now, to the millisecond.
fn start_in(secs: f64) -> (String, SystemTime) {
    let t = SystemTime::now() + Duration::from_secs_f64(secs);
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap();
    (ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), t)
}

fn args_of(kv: &[String], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = kv
        .iter()
        .flat_map(|o| ["--override".into(), o.clone()])
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Shard `index` of [`SHARDS`] into `dir`, starting at `start`. Shard 2 takes its index from
/// `JOB_COMPLETION_INDEX`, as a pod of an Indexed Job does.
fn spawn_shard(dir: &Path, url: &str, index: u32, start: &str) -> Child {
    let mut kv = workload(url);
    let given = if index == 2 { 0 } else { index };
    kv.push(format!("client.shard={{index: {given}, count: {SHARDS}}}"));
    kv.push(format!("client.start_at={start}"));
    let a = args_of(&kv, &["--stage", "dataset,workload,client"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut c = bench_cmd(dir, &a);
    if index == 2 {
        c.env("JOB_COMPLETION_INDEX", "2");
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn merge(inputs: &[&Path], out: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.current_dir(root())
        .env_remove("RUST_LOG")
        .args(["merge", "-q"]);
    c.args(inputs).arg("--out").arg(out);
    c.output().unwrap()
}

/// The shards pushed to an S3-compatible store under one prefix, as the rendered Job's pods
/// do, merge from there (`bench merge s3://...`) into the same requests as the local merge.
fn merge_from_the_store(dirs: &[PathBuf], merged: &Path, tmp: &Path) {
    let Some(s3) = bench_testkit::services::S3Server::start() else {
        return;
    };
    s3.create_bucket("shards");
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
        c.current_dir(root()).env_remove("RUST_LOG").args(args);
        for (k, v) in s3.env() {
            c.env(k, v);
        }
        c.args(["--override", &format!("storage.endpoint={}", s3.endpoint())]);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    };
    for d in dirs {
        run(&["push", d.to_str().unwrap(), "--to", "s3://shards/run1"]);
    }
    let out = tmp.join("merged-from-s3");
    run(&[
        "merge",
        "-q",
        "s3://shards/run1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (a, b) = (read_rows(merged), read_rows(&out));
    assert_eq!(a.request_id, b.request_id);
    assert_eq!(a.first_token_ns, b.first_token_ns, "the very same records");
    assert!(
        tmp.join("merged-from-s3.shards/shard-2/manifest.json")
            .is_file()
    );
}

fn stat(s: &serde_json::Value, metric: &str, p: &str) -> f64 {
    s[metric][p]
        .as_f64()
        .unwrap_or_else(|| panic!("{metric}.{p} in summary"))
}

#[test]
fn shards_merge_into_the_single_process_run_and_a_dead_shard_is_named() {
    let sim = Sim::start();
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    let kv = args_of(&workload(&sim.1), &[]);
    bench_ok(&single, &kv.iter().map(String::as_str).collect::<Vec<_>>());
    let n = workload_requests(&single);
    assert!(n > 80, "{n} requests");

    // three shards on one shared start, after their dataset and workload stages
    let shards = tmp.path().join("shards");
    let (start, _) = start_in(4.0);
    let dirs: Vec<PathBuf> = (0..SHARDS)
        .map(|i| shards.join(format!("shard-{i}")))
        .collect();
    let children: Vec<Child> = (0..SHARDS)
        .map(|i| spawn_shard(&dirs[i as usize], &sim.1, i, &start))
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "shard {i}: {}", text(&o.stderr));
    }
    let merged = tmp.path().join("merged");
    let o = merge(&[&shards], &merged);
    assert!(o.status.success(), "{}", text(&o.stderr));
    merge_from_the_store(&dirs, &merged, tmp.path());

    // every workload request exactly once, all ok, each shard a fair part
    let rows = read_rows(&merged);
    let mut ids = rows.request_id.clone();
    ids.sort_unstable();
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>());
    assert_eq!(rows.count("ok"), n, "{:?}", rows.status);
    let m = json(&merged, "manifest.json");
    let client = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "client")
        .unwrap();
    let parts = client["stats"]["shards"].as_array().unwrap();
    assert_eq!(parts.len(), SHARDS as usize);
    let mut total = 0;
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["index"], i as u64);
        let k = p["rows"].as_u64().unwrap();
        let even = n as f64 / f64::from(SHARDS);
        assert!(
            (k as f64 - even).abs() <= 0.15 * even,
            "shard {i}: {k} of {n} rows"
        );
        total += k;
        assert_eq!(
            p["manifest"]["config"]["client"]["shard"]["index"],
            i as u64
        );
        assert!(p["clock"]["source"].is_string(), "{}", p["clock"]);
        assert_eq!(
            p["anchor_unix_ns"], parts[0]["anchor_unix_ns"],
            "one shared anchor"
        );
    }
    assert_eq!(total, n as u64);
    assert!(m["config"]["client"]["shard"].is_null());
    let shard_col = shard_column(&merged.join("requests.parquet"));
    for i in 0..SHARDS {
        assert_eq!(
            shard_col.iter().filter(|&&s| s == i).count() as u64,
            parts[i as usize]["rows"].as_u64().unwrap()
        );
    }

    // the merged figures agree with one process sending it all (tolerances: the same server
    // load; TTFT p50 within 30% or 10 ms, dispatch lag p50 within 2 ms, both p99 under 50 ms:
    // 2 shared cores run the server, three shards and other builds)
    let a = json(&single, "summary.json");
    let b = json(&merged, "summary.json");
    let (ta, tb) = (stat(&a, "ttft_ms", "p50"), stat(&b, "ttft_ms", "p50"));
    assert!(
        (ta - tb).abs() <= (0.3 * ta).max(10.0),
        "TTFT p50 {ta} vs merged {tb}"
    );
    let (la, lb) = (
        stat(&a, "dispatch_lag_ms", "p50"),
        stat(&b, "dispatch_lag_ms", "p50"),
    );
    assert!(
        (la - lb).abs() <= 2.0,
        "dispatch lag p50 {la} vs merged {lb}"
    );
    for s in [&a, &b] {
        assert!(
            stat(s, "dispatch_lag_ms", "p99") < 50.0,
            "{}",
            s["dispatch_lag_ms"]
        );
    }
    assert_eq!(b["counts"], a["counts"]);
    // one shared anchor: the merged schedule is the workload's, to the nanosecond
    let wl = bench_types::workload::read(&merged.join("workload.jsonl")).unwrap();
    let due: Vec<i64> = wl
        .entries
        .iter()
        .flat_map(|e| {
            e.requests
                .iter()
                .map(move |_| (e.timestamp * 1e6).round() as i64)
        })
        .collect();
    let table = bench_types::record::RecordTable::read(&merged.join("requests.parquet")).unwrap();
    for r in table.into_rows().unwrap() {
        assert_eq!(
            r.scheduled_ns, due[r.request_id as usize],
            "request {}",
            r.request_id
        );
    }

    // the merge's refusals name the problem
    let refused = |inputs: &[&Path], want: &str| {
        let o = merge(inputs, &tmp.path().join("refused"));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        let e = text(&o.stderr);
        assert!(e.contains(want), "want `{want}` in {e}");
    };
    refused(
        &[&dirs[0], &dirs[0], &dirs[1], &dirs[2]],
        "shard index 0 twice",
    );
    refused(&[&dirs[0], &dirs[2]], "shard 1 of 3 missing");
    refused(&[&single], "not a shard: client.shard is not set");
    refused(
        &[Path::new("s3://Bad_Bucket/shards")],
        "s3://Bad_Bucket/shards: ",
    );
    let other = tmp.path().join("other");
    let mut okv = workload(&sim.1);
    okv.push("workload.constant.target_qps=20".into());
    okv.push("client.shard={index: 1, count: 3}".into());
    let a = args_of(&okv, &["--stage", "dataset,workload"]);
    bench_ok(&other, &a.iter().map(String::as_str).collect::<Vec<_>>());
    refused(&[&dirs[0], &other, &dirs[2]], "ran different workloads");
    let o = merge(&[&shards], &merged);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("holds a run already"),
        "{}",
        text(&o.stderr)
    );

    // a shard too late for the shared start refuses, naming the delay
    let late = bench(
        &dirs[0],
        &[
            "--stage",
            "client",
            "--force",
            "--override",
            "client.start_at=2020-01-01T00:00:00Z",
        ]
        .iter()
        .copied()
        .chain(kv.iter().map(String::as_str))
        .collect::<Vec<_>>(),
    );
    assert_eq!(late.status.code(), Some(2), "{}", text(&late.stderr));
    assert!(
        text(&late.stderr)
            .contains("s after the shared start 2020-01-01T00:00:00Z (client.late_start: refuse)"),
        "{}",
        text(&late.stderr)
    );

    // shard 2 killed mid-run: its unrecorded requests become not_sent rows naming it
    let killed = tmp.path().join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    for d in &dirs[..2] {
        assert!(
            Command::new("cp")
                .arg("-r")
                .arg(d)
                .arg(&killed)
                .status()
                .unwrap()
                .success()
        );
    }
    let (start, at) = start_in(3.0);
    let mut c = spawn_shard(&killed.join("shard-2"), &sim.1, 2, &start);
    let kill_at = at + Duration::from_millis(1500);
    std::thread::sleep(
        kill_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    );
    c.kill().unwrap();
    let _ = c.wait();
    let out = tmp.path().join("merged-killed");
    let o = merge(&[&killed], &out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = read_rows(&out);
    let mut ids = rows.request_id.clone();
    ids.sort_unstable();
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>(), "every request once");
    let not_sent = rows.count("not_sent");
    let s2 = parts[2]["rows"].as_u64().unwrap() as usize;
    assert!(
        not_sent > 0 && not_sent < s2,
        "{not_sent} not sent of shard 2's {s2}"
    );
    assert_eq!(rows.count("ok") + not_sent, n, "{:?}", rows.status);
    let table = bench_types::record::RecordTable::read(&out.join("requests.parquet")).unwrap();
    let errors: Vec<String> = table
        .into_rows()
        .unwrap()
        .into_iter()
        .filter(|r| r.status == bench_types::RequestStatus::NotSent)
        .map(|r| r.error.unwrap_or_default())
        .collect();
    assert!(
        errors
            .iter()
            .all(|e| e.contains("shard 2 (") && e.contains("ended before recording it")),
        "{errors:?}"
    );
    let s = json(&out, "summary.json");
    assert_eq!(s["counts"]["not_sent"], not_sent as u64, "{}", s["counts"]);
}

/// The merged file's `shard` column.
fn shard_column(path: &Path) -> Vec<u32> {
    use arrow_array::cast::AsArray;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(path).unwrap();
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for b in r {
        let b = b.unwrap();
        let c = b.column_by_name("shard").expect("a shard column");
        out.extend(
            c.as_primitive::<arrow_array::types::UInt32Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    out
}

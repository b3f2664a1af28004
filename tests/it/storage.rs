//! Object storage against a real S3-compatible server (moto_server, started here on
//! 127.0.0.1): a run uploaded at its end and pulled back byte-identical, compare and analysis
//! on the pulled copy, a tampered object, a file in parts, a partial push, an unreachable store,
//! an interrupted run, a sweep's copy.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bench_testkit::services::S3Server;

use crate::common::*;

/// A credential that must appear in no file and no log line.
const SECRET: &str = "bench-test-secret-5d41402abc4b2a76";

/// A tiny run: 6 requests against the cost-free simulated engine (plots on: they are files).
const TINY: [&str; 5] = [
    "sim.preset=zero",
    "workload.constant.target_qps=50",
    "workload.num_requests=6",
    "dataset.random.num_prompts=20",
    "dataset.random.input_tokens=32",
];

/// A moto server with `bucket`, its endpoint, and a temporary directory; None: skip.
fn setup(bucket: &str) -> Option<(S3Server, String, tempfile::TempDir)> {
    let s3 = S3Server::start()?;
    s3.create_bucket(bucket);
    let ep = s3.endpoint();
    Some((s3, ep, tempfile::tempdir().unwrap()))
}

/// `bench ARGS` from the repository root with the store's endpoint and credentials.
fn bench_s3(s3: Option<&S3Server>, endpoint: &str, args: &[&str]) -> Output {
    bench_s3_cmd(s3, endpoint, args)
        .output()
        .expect("run bench")
}

/// The command of [`bench_s3`].
fn bench_s3_cmd(s3: Option<&S3Server>, endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.current_dir(root())
        .env_remove("RUST_LOG")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        // the subcommand first: the global flags follow it
        .args(args)
        .args(["--config", "config.yaml"])
        .args(["--override", &format!("storage.endpoint={endpoint}")]);
    if let Some(s) = s3 {
        for (k, v) in s.env() {
            if k != "AWS_SECRET_ACCESS_KEY" {
                c.env(k, v);
            }
        }
    }
    c
}

/// Every regular file under `dir`, relative, sorted (hidden ones included: none expected).
fn files(dir: &Path) -> Vec<PathBuf> {
    fn go(root: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// Both directories hold the same files, byte for byte.
fn assert_identical(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "{} vs {}", a.display(), b.display());
    for f in &fa {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{} differs",
            f.display()
        );
    }
}

/// Pulls `url` into `into` and checks it against the local `original`, byte for byte.
fn pull_identical(ep: &str, url: &str, original: &Path, into: &Path) -> Output {
    let o = bench_s3(None, ep, &["pull", url, into.to_str().unwrap()]);
    ok(&o, &format!("pull {url}"));
    assert_identical(original, into);
    o
}

fn no_secret_in(dir: &Path) {
    for f in files(dir) {
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in {}",
            f.display()
        );
    }
}

/// Replaces an object's content behind bench's back: a PUT whose signature moto does not check
/// (it wants the header, not a valid one).
fn tamper(s3: &S3Server, key: &str, body: &str) {
    let host = s3.endpoint().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(
        s,
        "PUT /{key} HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "tamper {key}: {out}");
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} ({:?}): {}{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn a_run_lands_in_the_store_and_comes_back_byte_identical() {
    let Some((s3, ep, tmp)) = setup("runs") else {
        return;
    };
    let run = tmp.path().join("run-a");
    // not quiet: every info line is searched for the secret too
    let mut args = vec!["--override", "storage.url=s3://runs/team"];
    let run_kv = format!("run_dir={}", run.display());
    args.extend(overrides(&[&run_kv]));
    args.extend(overrides(&TINY));
    let o = bench_s3(Some(&s3), &ep, &args);
    ok(&o, "the run");
    let logs = text(&o.stdout) + &text(&o.stderr);
    assert!(!logs.contains(SECRET), "secret in the output: {logs}");
    assert!(logs.contains("storage: pushed "), "{logs}");
    no_secret_in(&run);
    // the manifest lists every other file with its checksum
    let m = json(&run, "manifest.json");
    let listed: Vec<PathBuf> = m["artifacts"]
        .as_object()
        .unwrap()
        .keys()
        .map(PathBuf::from)
        .collect();
    let mut local = files(&run);
    local.retain(|f| f != Path::new("manifest.json"));
    assert_eq!(listed, local);
    assert!(local.iter().any(|f| f.starts_with("plots")), "{local:?}");

    // pulled back: the same files, byte for byte
    let back = tmp.path().join("pulled");
    let o = pull_identical(&ep, "s3://runs/team/run-a", &run, &back);
    assert!(text(&o.stdout).contains(&format!("{} files checked", local.len() + 1)));
    no_secret_in(&back);
    // compare and a new analysis work on the pulled copy
    let o = bench_s3(
        None,
        &ep,
        &["compare", run.to_str().unwrap(), back.to_str().unwrap()],
    );
    ok(&o, "compare");
    let table = text(&o.stdout);
    assert!(
        table.contains("run-a") && table.contains("pulled"),
        "{table}"
    );
    let before = json(&back, "summary.json");
    let o = bench_s3(
        None,
        &ep,
        &["-q", "--stage", "analysis", "-o", back.to_str().unwrap()],
    );
    ok(&o, "analysis of the pulled run");
    let after = json(&back, "summary.json");
    assert_eq!(
        before["output_token_throughput"], after["output_token_throughput"],
        "the same records give the same figures"
    );
    // into a directory that holds a run: refused
    let o = bench_s3(
        None,
        &ep,
        &["pull", "s3://runs/team/run-a", back.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("already holds manifest.json"));

    // a tampered object: the pull fails naming the file, which is not kept
    tamper(&s3, "runs/team/run-a/summary.json", "{}");
    let bad = tmp.path().join("tampered");
    let o = bench_s3(
        None,
        &ep,
        &["pull", "s3://runs/team/run-a", bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("summary.json: checksum mismatch")
            && err.contains(&m["artifacts"]["summary.json"]["sha256"].as_str().unwrap()[..16]),
        "{err}"
    );
    let left = files(&bad);
    assert!(!left.contains(&PathBuf::from("summary.json")), "{left:?}");
    assert!(!left.contains(&PathBuf::from("manifest.json")), "{left:?}");
    assert!(
        left.iter().all(|f| !f.to_string_lossy().ends_with(".part")),
        "{left:?}"
    );

    // a copy without its manifest
    let o = bench_s3(
        None,
        &ep,
        &["pull", "s3://runs/team/nothing", bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        "error: incomplete copy: no manifest.json at s3://runs/team/nothing"
    );

    // a file bigger than one part (16 MiB) goes up in parts, and comes back the same
    let big: Vec<u8> = (0..17u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(run.join("big.bin"), &big).unwrap();
    let o = bench_s3(
        None,
        &ep,
        &["push", run.to_str().unwrap(), "--to", "s3://runs/big"],
    );
    ok(&o, "push in parts");
    assert!(
        text(&o.stdout).starts_with("s3://runs/big/run-a: complete ("),
        "{}",
        text(&o.stdout)
    );
    let back_big = tmp.path().join("big");
    pull_identical(&ep, "s3://runs/big/run-a", &run, &back_big);

    // a partial push: a file no object key can name is reported, and the manifest is held
    // back so the copy stays incomplete
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = run.join(std::ffi::OsStr::from_bytes(b"notes-\xff.txt"));
        std::fs::write(&odd, "x").unwrap();
        let o = bench_s3(
            None,
            &ep,
            &["push", run.to_str().unwrap(), "--to", "s3://runs/partial"],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        let n = local.len() + 3;
        assert!(
            out.starts_with(&format!(
                "s3://runs/partial/run-a: partial: 1 of {n} files failed (notes-\u{fffd}.txt)"
            )),
            "{out}"
        );
        assert!(text(&o.stderr).contains("not UTF-8"), "{}", text(&o.stderr));
        let o = bench_s3(
            None,
            &ep,
            &["pull", "s3://runs/partial/run-a", bad.to_str().unwrap()],
        );
        assert!(
            text(&o.stderr).contains("incomplete copy"),
            "{}",
            text(&o.stderr)
        );
    }
}

#[test]
fn an_unreachable_store_is_a_bounded_one_line_error_and_the_run_keeps_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let port = bench_testkit::services::free_port();
    let dead = format!("http://127.0.0.1:{port}");
    let run = tmp.path().join("run-b");
    let run_kv = format!("run_dir={}", run.display());
    let mut args = vec![
        "-q",
        "--override",
        "storage.url=s3://runs/x",
        "--override",
        "storage.timeout_s=1",
        "--override",
        "storage.retries=2",
    ];
    args.extend(overrides(&[&run_kv]));
    args.extend(overrides(&TINY));
    args.extend(overrides(&["analysis.plots=false"]));
    let o = bench_s3(None, &dead, &args);
    // a warning, the run's status unchanged: its files are all local
    ok(&o, "the run with its store down");
    let err = text(&o.stderr);
    let warn: Vec<&str> = err.lines().filter(|l| l.contains("storage")).collect();
    assert_eq!(warn.len(), 1, "{err}");
    assert!(
        warn[0].contains("storage s3://runs/x/run-b: unreachable")
            && warn[0].contains(&run.display().to_string()),
        "{err}"
    );
    assert!(run.join("summary.json").is_file() && run.join("report.html").is_file());

    // bench push: the same error, within the timeout (and a little)
    let t0 = Instant::now();
    let o = bench_s3(
        None,
        &dead,
        &[
            "push",
            run.to_str().unwrap(),
            "--to",
            "s3://runs/x",
            "--override",
            "storage.timeout_s=1",
        ],
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: storage s3://runs/x/run-b: unreachable: "),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // storage.required: the run fails with status 1
    let o = bench_s3(
        None,
        &dead,
        &[
            "-q",
            "--stage",
            "analysis",
            "-o",
            run.to_str().unwrap(),
            "--override",
            "storage.url=s3://runs/x",
            "--override",
            "storage.required=true",
            "--override",
            "storage.timeout_s=0.5",
            "--override",
            "storage.retries=0",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // bad URLs are config errors
    let o = bench_s3(
        None,
        &dead,
        &["push", run.to_str().unwrap(), "--to", "http://x/y"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = bench_s3(
        None,
        &dead,
        &["--show-config", "--override", "storage.url=s3://A"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("storage.url"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_sweep_lands_its_runs_in_their_cells_and_pulls_back_whole() {
    let Some((s3, ep, tmp)) = setup("exps") else {
        return;
    };
    let exp_dir = tmp.path().join("exp-s");
    let f = tmp.path().join("exp.yaml");
    std::fs::write(
        &f,
        format!(
            "name: stored\nbase: {}\nexp_dir: {}\noverrides:\n  sim.preset: zero\n  workload.constant.target_qps: 50\n  workload.num_requests: 4\n  dataset.random.num_prompts: 10\n  dataset.random.input_tokens: 32\n  analysis.plots: false\n  storage.url: s3://exps/t\n  storage.endpoint: {ep}\naxes:\n  - key: dataset.random.output_tokens\n    values: [4, 8]\n",
            root().join("config.yaml").display(),
            exp_dir.display()
        ),
    )
    .unwrap();
    let o = bench_s3(Some(&s3), &ep, &["sweep", f.to_str().unwrap()]);
    ok(&o, "the sweep");
    // each run on its own, where its place in the experiment says
    let one = tmp.path().join("one");
    let o = bench_s3(
        None,
        &ep,
        &[
            "pull",
            "s3://exps/t/exp-s/cells/output_tokens=4/r1",
            one.to_str().unwrap(),
        ],
    );
    ok(&o, "pull one run");
    let whole = tmp.path().join("whole");
    pull_identical(&ep, "s3://exps/t/exp-s", &exp_dir, &whole);
    assert!(whole.join("SHA256SUMS").is_file());
    let o = bench_s3(None, &ep, &["compare", whole.to_str().unwrap()]);
    ok(&o, "compare the pulled experiment");
    let table = text(&o.stdout);
    assert_eq!(
        table.lines().filter(|l| l.contains("/r1")).count(),
        2,
        "both runs: {table}"
    );
}

#[test]
fn an_interrupted_run_is_uploaded_too() {
    let Some((s3, ep, tmp)) = setup("runs") else {
        return;
    };
    let run = tmp.path().join("run-i");
    let run_kv = format!("run_dir={}", run.display());
    let mut c = bench_s3_cmd(
        Some(&s3),
        &ep,
        &[
            "-q",
            "--override",
            &run_kv,
            "--override",
            "storage.url=s3://runs/i",
            "--override",
            "sim.preset=zero",
            "--override",
            "workload.duration_ms=30000",
            "--override",
            "workload.constant.target_qps=20",
            "--override",
            "dataset.random.num_prompts=20",
            "--override",
            "analysis.plots=false",
        ],
    );
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let t0 = Instant::now();
    while !run.join("requests.parquet").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let back = tmp.path().join("back");
    pull_identical(&ep, "s3://runs/i/run-i", &run, &back);
    assert!(back.join("summary.json").is_file());
}

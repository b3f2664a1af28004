//! `bench serve`: Bud's API end to end, the way a client uses it: a run posted through the API
//! against the simulated engine, then its result, request metrics, distributions and pairs in
//! Bud's shapes; auth, bad input, path traversal. The same suite runs on SQLite and on a real
//! PostgreSQL server.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

pub struct Service {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Service {
    /// `bench serve` on a free loopback port with `catalog` and the token (if any) in
    /// BENCH_TEST_TOKEN.
    pub fn start(catalog: &str, token: Option<&str>, extra: &[&str]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
        c.current_dir(root())
            .env_remove("RUST_LOG")
            .env_remove("BENCH_TEST_TOKEN")
            .args(["serve", "--listen", "127.0.0.1:0", "--catalog", catalog])
            .args(["--override", "serve.token_env=BENCH_TEST_TOKEN"])
            .args([
                "--override",
                &format!("serve.runs_dir={}", dir.path().join("runs").display()),
            ])
            // the client's tests keep /metrics scraping out of their timing
            .args(["--override", "metrics.enabled=false"])
            .args(extra)
            .stderr(Stdio::null());
        if let Some(t) = token {
            c.env("BENCH_TEST_TOKEN", t);
        }
        let (child, url) = bench_testkit::services::spawn_serving(&mut c);
        Service { child, url, dir }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        http_json("GET", &format!("{}{path}", self.url), token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let b = body.map(|b| b.to_string());
        http_json("POST", &format!("{}{path}", self.url), token, b.as_deref())
    }

    /// Waits until the benchmark is no longer processing; its final status.
    pub fn wait(&self, id: &str, token: Option<&str>) -> String {
        let t0 = Instant::now();
        loop {
            let (s, ev) = self.get(&format!("/benchmark/{id}/events"), token);
            assert_eq!(s, 200, "{ev}");
            let st = ev["status"].as_str().unwrap().to_string();
            if st != "processing" {
                return st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "run {id} still processing: {ev}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const T: Option<&str> = Some("s3cr3t-token");

fn the_api_in_buds_shapes(catalog: &str) {
    let svc = Service::start(catalog, T.map(|t| t.trim()), &[]);
    // auth: every API route needs the token
    for (m, p) in [
        ("GET", "/benchmark"),
        ("GET", "/openapi.json"),
        ("POST", "/benchmark/run-workflow"),
    ] {
        let (s, body) = http_json(m, &format!("{}{p}", svc.url), None, None);
        assert_eq!(s, 401, "{m} {p}: {body}");
        let (s, _) = http_json(m, &format!("{}{p}", svc.url), Some("wrong"), None);
        assert_eq!(s, 401);
    }
    // Bud's wizard, step by step; the run starts at trigger_workflow
    let (s, w) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "api-run", "tags": ["api", "ci"], "description": "posted through the API",
            "concurrent_requests": 4, "eval_with": "configuration", "workflow_total_steps": 3,
            "step_number": 1, "trigger_workflow": false})),
    );
    assert_eq!(s, 200, "{w}");
    assert_eq!(w["status"], "in_progress");
    let wid = w["workflow_id"].as_str().unwrap().to_string();
    let (s, w) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(
            &json!({"workflow_id": wid, "step_number": 2, "max_input_tokens": 64,
            "max_output_tokens": 12, "num_requests": 24, "trigger_workflow": false}),
        ),
    );
    assert_eq!((s, w["current_step"].as_u64()), (200, Some(2)), "{w}");
    let (s, w) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"workflow_id": wid, "step_number": 3, "endpoint": "sim", "trigger_workflow": true})),
    );
    assert_eq!(s, 200, "{w}");
    let id = w["benchmark_id"].as_str().unwrap().to_string();
    assert_eq!(svc.wait(&id, T), "success");

    // the list
    let (s, l) = svc.get("/benchmark?page=1&limit=10&tag=api", T);
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["object"], "benchmarks.list");
    assert_eq!(
        (
            l["page"].as_u64(),
            l["limit"].as_u64(),
            l["total_record"].as_u64()
        ),
        (Some(1), Some(10), Some(1))
    );
    let b = &l["benchmarks"][0];
    assert_eq!(
        (b["id"].as_str(), b["name"].as_str(), b["status"].as_str()),
        (Some(id.as_str()), Some("api-run"), Some("success"))
    );
    assert_eq!(b["concurrency"], 4);
    assert_eq!(b["tags"], json!(["api", "ci"]));
    assert_eq!(b["eval_with"], "configuration");
    let (_, l) = svc.get("/benchmark?search=API-RUN", T);
    assert_eq!(l["total_record"], 1);
    let (_, l) = svc.get("/benchmark?status=failed", T);
    assert_eq!(l["total_record"], 0);

    // the result, in Bud's field names, equal to the run's own summary
    let (s, r) = svc.get(&format!("/benchmark/result?benchmark_id={id}"), T);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["object"], "benchmark.result");
    let res = &r["param"]["result"];
    assert_eq!(res["successful_requests"], 24);
    assert_eq!(res["benchmark_id"], id.as_str());
    let run_dir = svc
        .dir
        .path()
        .join("runs")
        .join(format!("api-run-{}", &id[..8]));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(res["median_ttft_ms"], summary["ttft_ms"]["p50"]);
    assert_eq!(res["p99_e2el_ms"], summary["e2el_ms"]["p99"]);
    assert_eq!(res["output_throughput"], summary["output_token_throughput"]);
    assert_eq!(res["total_output_tokens"].as_f64(), Some(24.0 * 12.0));
    for k in [
        "mean_tpot_ms",
        "p25_itl_ms",
        "max_throughput",
        "duration",
        "request_throughput",
        "input_throughput",
    ] {
        assert!(res[k].is_number(), "{k}: {res}");
    }
    assert_eq!(summary["run"]["id"], id.as_str());
    assert_eq!(summary["run"]["tags"], json!(["api", "ci"]));

    // request metrics, paged; the ITL list has one entry per token (the first is the TTFT)
    let (s, m) = svc.get(
        &format!("/benchmark/request-metrics?benchmark_id={id}&page=3&limit=10"),
        T,
    );
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["total_record"].as_u64(), m["total_pages"].as_u64()),
        (Some(24), Some(3))
    );
    let items = m["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for it in items {
        assert_eq!(
            (
                it["success"].as_bool(),
                it["prompt_len"].as_u64(),
                it["output_len"].as_u64()
            ),
            (Some(true), Some(64), Some(12))
        );
        assert_eq!(it["itl"].as_array().unwrap().len(), 12);
        assert_eq!(it["itl"][0], it["ttft"]);
        let lat = it["latency"].as_f64().unwrap();
        assert!(
            (it["itl_sum"].as_f64().unwrap() - lat).abs() < 0.01 * lat + 0.002,
            "{it}"
        );
    }
    // distributions and pairs
    let (s, d) = svc.post(
        &format!("/benchmark/dataset/input-distribution?benchmark_id={id}&num_bins=4"),
        T,
        Some(&json!(["random"])),
    );
    assert_eq!(s, 200, "{d}");
    let bins = d["param"]["result"].as_array().unwrap();
    assert_eq!(bins.len(), 4);
    assert_eq!(
        bins.iter()
            .map(|b| b["requests"].as_u64().unwrap())
            .sum::<u64>(),
        24
    );
    assert_eq!(bins[3]["bin_range"], "48.0-64.0");
    assert_eq!(bins[3]["avg_output_len"], 12.0);
    let (s, d) = svc.post(
        &format!("/benchmark/dataset/output-distribution?benchmark_id={id}&num_bins=2"),
        T,
        None,
    );
    assert_eq!(
        (s, d["param"]["result"][1]["requests"].as_u64()),
        (200, Some(24)),
        "{d}"
    );
    let (s, p) = svc.post(
        &format!("/benchmark/{id}/analysis/field1_vs_field2?field1=prompt_len&field2=tpot"),
        T,
        None,
    );
    assert_eq!(s, 200, "{p}");
    let pts = p["param"]["result"].as_array().unwrap();
    assert_eq!(pts.len(), 24);
    assert_eq!(pts[0]["prompt_len"], 64.0);
    assert!(pts.iter().all(|x| x["tpot"].as_f64().unwrap() > 0.0));
    let (s, mc) = svc.get(&format!("/benchmark/{id}/model-cluster-detail"), T);
    assert_eq!(
        (s, mc["result"]["model"]["name"].as_str()),
        (200, Some("sim-model")),
        "{mc}"
    );
    let (s, ev) = svc.get(&format!("/benchmark/{id}/events"), T);
    assert_eq!(s, 200);
    let steps: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for st in [
        "queued",
        "dataset",
        "workload",
        "client",
        "analysis",
        "benchmark",
    ] {
        assert!(steps.contains(&st), "{steps:?}");
    }
    let (s, report) = http(
        "GET",
        &format!("{}/benchmark/{id}/files/report.html", svc.url),
        T,
        None,
    );
    assert_eq!(s, 200);
    assert!(
        report.contains("bench report: api-run") && report.contains("posted through the API"),
        "the report names the run"
    );

    // bad input: 4xx naming the field; nothing outside the run's directory
    let bad = |s: u16, v: &Value, field: &str| {
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["object"], "error");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    };
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "x", "concurent_requests": 3, "trigger_workflow": true})),
    );
    bad(s, &v, "concurent_requests");
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "x", "concurrent_requests": "many"})),
    );
    bad(s, &v, "concurrent_requests");
    assert_eq!(v["field"], "concurrent_requests");
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "x", "overrides": ["run_dir=/tmp/evil"], "trigger_workflow": true})),
    );
    bad(s, &v, "overrides[0]");
    let (s, v) = svc.post("/benchmark/run-workflow", T, Some(&json!({"name": "x", "overrides": ["dataset.path=/etc/passwd"], "trigger_workflow": true})));
    bad(s, &v, "overrides[0]");
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "x", "max_output_tokens": 0, "trigger_workflow": true})),
    );
    bad(s, &v, "dataset.random.output_tokens");
    let (s, v) = svc.post("/benchmark/run-workflow", T, Some(&json!({"name": "x", "eval_with": "dataset", "dataset_ids": ["nope"], "trigger_workflow": true})));
    bad(s, &v, "dataset_ids");
    let (s, v) = svc.get(
        &format!("/benchmark/{id}/analysis/field1_vs_field2?field1=ttft&field2=colour"),
        T,
    );
    assert_eq!(s, 405, "pairs are POST as in Bud: {v}");
    let (s, v) = svc.post(
        &format!("/benchmark/{id}/analysis/field1_vs_field2?field1=ttft&field2=colour"),
        T,
        None,
    );
    bad(s, &v, "field2");
    let (s, v) = svc.get("/benchmark/result?benchmark_id=not-a-uuid", T);
    bad(s, &v, "benchmark_id");
    let (s, v) = svc.get(
        "/benchmark/result?benchmark_id=0b7c7c52-1c3a-4c7e-9d55-3f1d2f0e9a11",
        T,
    );
    assert_eq!(s, 404, "{v}");
    let (s, v) = svc.get(
        &format!("/benchmark/request-metrics?benchmark_id={id}&limit=x"),
        T,
    );
    bad(s, &v, "limit");
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"workflow_id": "8a7c7c52-1c3a-4c7e-9d55-3f1d2f0e9a11", "step_number": 2})),
    );
    assert_eq!(s, 404, "{v}");
    for p in [
        "..%2F..%2Fcatalog.db",
        "%2Fetc%2Fpasswd",
        "plots%2F..%2F..%2Fx",
        "nope.txt",
    ] {
        let (s, v) = svc.get(&format!("/benchmark/{id}/files/{p}"), T);
        assert!(s == 400 || s == 404, "{p}: {s} {v}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", run_dir.join("escape")).unwrap();
        let (s, v) = svc.get(&format!("/benchmark/{id}/files/escape"), T);
        assert_eq!(s, 404, "a link out of the run is not followed: {v}");
    }

    // one post with a whole bench config starts at once
    let (s, w) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "cfg-run", "trigger_workflow": true, "config": {
            "dataset": {"type": "random", "random": {"input_tokens": 32, "output_tokens": 4}},
            "workload": {"type": "constant", "num_requests": 10, "constant": {"target_qps": 50}},
        }})),
    );
    assert_eq!(s, 200, "{w}");
    let id2 = w["benchmark_id"].as_str().unwrap().to_string();
    assert_eq!(svc.wait(&id2, T), "success");
    let (_, m) = svc.get(&format!("/benchmark/request-metrics?benchmark_id={id2}"), T);
    assert_eq!(m["total_record"], 10);
    let (_, l) = svc.get("/benchmark", T);
    assert_eq!(l["total_record"], 2);

    // an experiment: a sweep whose runs are catalogued under its id
    let (s, v) = svc.post("/benchmark/run-workflow", T, Some(&json!({"name": "x", "trigger_workflow": true,
        "experiment": {"exp_dir": "/tmp/x", "axes": [{"key": "workload.constant.target_qps", "values": [5]}]}})));
    bad(s, &v, "experiment.exp_dir");
    let (s, v) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "x", "trigger_workflow": true,
        "experiment": {"axes": [{"key": "workload.constant.target_qps", "values": [-5]}]}})),
    );
    bad(s, &v, "target_qps");
    let (s, w) = svc.post(
        "/benchmark/run-workflow",
        T,
        Some(&json!({"name": "api-sweep", "tags": ["sweep"], "trigger_workflow": true, "experiment": {
            "overrides": {"workload.duration_ms": 400, "dataset.random.output_tokens": 4},
            "axes": [{"key": "workload.constant.target_qps", "values": [10, 20]}],
        }})),
    );
    assert_eq!(s, 200, "{w}");
    let xid = w["benchmark_id"].as_str().unwrap().to_string();
    let st = svc.wait(&xid, T);
    let log = std::fs::read_to_string(
        svc.dir
            .path()
            .join("runs")
            .join(format!("api-sweep-{}", &xid[..8]))
            .join("bench.log"),
    )
    .unwrap_or_default();
    assert_eq!(st, "success", "{log}");
    let (_, l) = svc.get("/benchmark?limit=50", T);
    let all = l["benchmarks"].as_array().unwrap();
    let x = all.iter().find(|b| b["id"] == xid.as_str()).unwrap();
    assert_eq!(
        (x["kind"].as_str(), x["name"].as_str()),
        (Some("experiment"), Some("api-sweep"))
    );
    let cells: Vec<&Value> = all
        .iter()
        .filter(|b| b["experiment_id"] == xid.as_str())
        .collect();
    assert_eq!(cells.len(), 2, "{l}");
    assert!(cells.iter().all(|c| c["status"] == "success"));
    let (_, kinds) = svc.get("/benchmark?kind=experiment", T);
    assert_eq!(kinds["total_record"], 1);
    let (s, o) = svc.get("/openapi.json", T);
    assert_eq!(s, 200);
    assert!(o["paths"]["/benchmark/result"]["get"].is_object());
    // the token is never written anywhere
    for entry in walk(svc.dir.path()) {
        let b = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&b).contains("s3cr3t-token"),
            "{}",
            entry.display()
        );
    }
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_api_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    the_api_in_buds_shapes(&format!("sqlite://{}/catalog.db", d.path().display()));
}

#[test]
fn the_api_on_postgresql() {
    let Some(pg) = bench_testkit::services::Postgres::get() else {
        return;
    };
    the_api_in_buds_shapes(&pg.database("service_api"));
}

/// Bud's dataset evaluation over a list: `dataset_ids` of two becomes a weighted mix
/// (`datasets:` + `dataset.use`), every request names its dataset, the summary breaks down by it.
#[test]
fn a_list_of_datasets_runs_as_a_weighted_mix() {
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(
        &format!("sqlite://{}/catalog.db", d.path().display()),
        T,
        &[],
    );
    let post = |extra: Value| {
        let mut b = json!({"name": "mix", "eval_with": "dataset", "dataset_ids": ["random", "custom"],
            "num_requests": 20, "concurrent_requests": 4, "endpoint": "sim", "trigger_workflow": true});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        svc.post("/benchmark/run-workflow", T, Some(&b))
    };
    for (extra, field) in [
        (json!({"dataset_weights": [1.0]}), "dataset_weights"),
        (json!({"dataset_weights": [1.0, 0.0]}), "dataset_weights"),
        (json!({"dataset_ids": ["random", "nope"]}), "dataset_ids"),
        (json!({"dataset_ids": []}), "dataset_ids"),
    ] {
        let (s, v) = post(extra.clone());
        assert_eq!((s, v["field"].as_str()), (400, Some(field)), "{extra}: {v}");
    }
    let (s, w) = post(json!({"dataset_weights": [3.0, 1.0]}));
    assert_eq!(s, 200, "{w}");
    let id = w["benchmark_id"].as_str().unwrap().to_string();
    assert_eq!(svc.wait(&id, T), "success");
    let files = walk(svc.dir.path());
    let cfg = files
        .iter()
        .find(|p| p.ends_with("request-config.yaml"))
        .expect("the mix's config");
    let c: Value = serde_yaml::from_str(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    assert_eq!(
        c["dataset"]["use"],
        json!([{"name": "random", "weight": 3.0}, {"name": "custom", "weight": 1.0}])
    );
    assert_eq!(c["datasets"]["random"]["type"], "random");
    let custom = c["datasets"]["custom"]["custom"]["path"].as_str().unwrap();
    assert!(
        std::path::Path::new(custom).is_absolute()
            && custom.ends_with("datasets/custom_example.jsonl"),
        "{custom}"
    );
    // the custom file has 5 prompts: the largest mix at 3:1 that takes no more than those 5
    // is 22 records (the largest-remainder split of 22 is 17 + 5)
    let ds = files.iter().find(|p| p.ends_with("dataset.jsonl")).unwrap();
    let recs = bench_types::dataset::read(ds).unwrap();
    let named = |n: &str| {
        recs.iter()
            .filter(|r| matches!(r, bench_types::DatasetRecord::Plain(p) if p.dataset.as_deref() == Some(n)))
            .count()
    };
    assert_eq!((named("random"), named("custom")), (17, 5));
    let summary = files.iter().find(|p| p.ends_with("summary.json")).unwrap();
    let s: Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    let groups: Vec<&str> = s["breakdowns"]["dataset"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["label"].as_str())
        .collect();
    assert!(
        groups.contains(&"random") && groups.contains(&"custom"),
        "{groups:?}"
    );
}

#[test]
fn beyond_loopback_without_a_token_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .env_remove("BENCH_SERVE_TOKEN")
        .args(["serve", "--listen", "0.0.0.0:0", "--catalog"])
        .arg(format!("sqlite://{}/c.db", d.path().display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(e.contains("beyond loopback needs a token"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// The dashboard in Debian's Chromium, driven by Playwright (tests/browser/dashboard.mjs):
/// a run started from the form appears in the list and finishes; its page shows the headline
/// numbers, the report and the pair plot; search narrows the list. `BENCH_SCREENSHOT=PATH`
/// keeps the screenshot (docs/dashboard.png is one).
#[test]
fn the_dashboard_in_a_real_browser() {
    let dir = root().join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !dir.join("node_modules/playwright-core").is_dir()
        || !std::path::Path::new(&chromium).exists()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: .ci/run installs chromium and tests/browser's playwright-core"
        );
        eprintln!(
            "skipping: no Chromium or no tests/browser/node_modules (npm ci --prefix tests/browser)"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let svc = Service::start(
        &format!("sqlite://{}/catalog.db", d.path().display()),
        T,
        &[],
    );
    let shot = std::env::var("BENCH_SCREENSHOT")
        .unwrap_or_else(|_| d.path().join("dashboard.png").display().to_string());
    let o = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .args([svc.url.as_str(), T.unwrap(), shot.as_str()])
        .output()
        .expect("node runs");
    assert!(
        o.status.success(),
        "dashboard: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot"
    );
    // what the browser started is a run like any other
    let (_, l) = svc.get("/benchmark?search=browser-run", T);
    assert_eq!(l["total_record"], 1);
    assert_eq!(l["benchmarks"][0]["tags"], json!(["smoke", "ui"]));
}

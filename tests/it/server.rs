//! The server's side, end to end: the preflight (dead endpoint, wrong model, a server that
//! starts late, the model taken from the list, probe findings), /metrics scraped during the run
//! (and failing mid-run, or absent), thresholds and their exit status.
//!
//! The servers are bench-testkit's scripted server on 127.0.0.1 (vLLM's routes and a /metrics
//! whose counters move with each scrape), or the simulated engine: fault injection needs the
//! script; the real llama-server is scripts/real-server-test.sh.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bench_config::client::Api;
use bench_testkit::{Reply, Seen, TestServer, closed_port};

use crate::common::{bench, json, overrides, read_rows, text};

/// What /metrics answers.
#[derive(Clone, Copy, PartialEq)]
enum Metrics {
    /// A vLLM exposition whose counters grow with each scrape.
    Good,
    /// Good at the first scrape, then HTTP 500 and HTML pages in turn.
    FailsMidRun,
    /// 404.
    Absent,
}

/// Samples in one [`exposition`].
const SAMPLES: usize = 9;

/// The k-th scrape: running k % 3, waiting 0, generation tokens 100 k, and a TTFT histogram
/// gaining 2 observations per scrape, all in the (0.01, 0.1] s bucket.
fn exposition(k: usize) -> String {
    let m = "model_name=\"served-model\"";
    format!(
        "# HELP vllm:num_requests_running Requests in the batch.\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{m}}} {}\n\
         # TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{{m}}} 0\n\
         # TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total{{{m}}} {}\n\
         # TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{{{m}}} 0.25\n\
         # TYPE vllm:time_to_first_token_seconds histogram\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.01\",{m}}} 0\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.1\",{m}}} {n}\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",{m}}} {n}\n\
         vllm:time_to_first_token_seconds_count{{{m}}} {n}\n\
         vllm:time_to_first_token_seconds_sum{{{m}}} {}\n",
        k % 3,
        100 * k,
        0.05 * (2 * k) as f64,
        n = 2 * k,
    )
}

/// A vLLM-shaped server: /v1/models lists `served-model` (owned_by vllm, max_model_len 4096),
/// /version says 0.11.0, /metrics as `metrics` says, and every completion is `reply`.
fn vllm_like(
    metrics: Metrics,
    reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let scrapes = Arc::new(AtomicUsize::new(0));
    TestServer::start(move |seen| {
        match seen.path.as_str() {
        "/v1/models" => Reply::Body {
            status: 200,
            content_type: "application/json",
            body: r#"{"object":"list","data":[{"id":"served-model","object":"model","owned_by":"vllm","max_model_len":4096}]}"#.into(),
        },
        "/version" => Reply::Body {
            status: 200,
            content_type: "application/json",
            body: r#"{"version":"0.11.0"}"#.into(),
        },
        "/metrics" => {
            let k = scrapes.fetch_add(1, SeqCst);
            match (metrics, k) {
                (Metrics::Absent, _) => Reply::Body {
                    status: 404,
                    content_type: "text/plain",
                    body: "not found".into(),
                },
                (Metrics::FailsMidRun, k) if k > 0 && k % 2 == 1 => Reply::Body {
                    status: 500,
                    content_type: "text/plain",
                    body: "boom".into(),
                },
                (Metrics::FailsMidRun, k) if k > 0 => Reply::Body {
                    status: 200,
                    content_type: "text/html",
                    body: "<html><body>maintenance</body></html>".into(),
                },
                _ => Reply::Body {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    body: exposition(k),
                },
            }
        }
        _ => reply(seen),
    }
    })
}

/// A short run against `url`: 2 s of the default workload, metrics every 0.25 s.
fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--endpoint", url, "--duration", "2"];
    v.extend(overrides(&["metrics.interval_s=0.25"]));
    v.extend_from_slice(extra);
    v
}

fn client_stats(run_dir: &Path) -> serde_json::Value {
    let m = json(run_dir, "manifest.json");
    m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "client")
        .expect("client stage")["stats"]
        .clone()
}

#[test]
fn a_dead_endpoint_ends_before_any_file_with_exit_1_naming_url_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let t0 = Instant::now();
    let o = bench(&run, &args(&url, &[]));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.contains(&format!("client.endpoint {url}")) && last.contains("connection refused"),
        "{err}"
    );
    assert!(
        !run.exists(),
        "a run directory was made for a dead endpoint"
    );
}

#[test]
fn a_model_the_server_does_not_serve_ends_with_exit_1_listing_what_it_serves() {
    let server = vllm_like(Metrics::Good, |_| Reply::tokens(Api::OpenaiChat, 4));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(&run, &args(&server.url(), &["--model", "llama-9000"]));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not serve model `llama-9000`; it serves: served-model"),
        "{err}"
    );
    assert!(!run.exists());
    // nothing but the model list was asked for
    assert!(server.seen().iter().all(|s| s.path == "/v1/models"));
}

#[test]
fn the_only_served_model_is_used_and_the_server_is_described_and_scraped() {
    let server = vllm_like(Metrics::Good, |_| Reply::tokens(Api::OpenaiChat, 4));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // config.yaml gives no model: the server's only one is taken
    let o = bench(&run, &args(&server.url(), &[]));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let stats = client_stats(&run);
    let s = &stats["server"];
    assert_eq!(s["model"], "served-model", "{s}");
    assert_eq!(s["model_picked"], true);
    assert_eq!(s["engine"], "vllm");
    assert_eq!(s["version"], "0.11.0");
    assert_eq!(s["models"][0]["max_model_len"], 4096);
    assert_eq!(s["probe"]["status"], 200);
    assert_eq!(s["warnings"].as_array().unwrap().len(), 0, "{s}");
    // every request asked for the served model, the probe outside the records
    let posts: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|x| x.path == "/v1/chat/completions")
        .collect();
    let rows = read_rows(&run);
    assert_eq!(posts.len(), rows.len() + 1, "the probe plus one per record");
    assert!(posts.iter().all(|p| p.json()["model"] == "served-model"));
    assert_eq!(rows.count("ok"), rows.len());
    // the first scrape came after the probe and before the first measured request
    let seen = server.seen();
    let first_scrape = seen.iter().find(|x| x.path == "/metrics").unwrap().index;
    assert!(posts[0].index < first_scrape && first_scrape < posts[1].index);

    let m = &stats["metrics"];
    let scrapes = m["scrapes"].as_u64().unwrap();
    assert!(scrapes >= 4, "{m}");
    assert_eq!(m["failures"], 0);
    assert_eq!(m["engine"], "vllm");
    let samples = bench_types::server_metrics::read(&run.join("server_metrics.parquet")).unwrap();
    assert_eq!(samples.len() as u64, scrapes * SAMPLES as u64);
    assert_eq!(m["rows"].as_u64(), Some(samples.len() as u64));
    let summary = json(&run, "summary.json");
    let sv = &summary["server"];
    assert_eq!(sv["engine"], "vllm", "{sv}");
    // every observation between the first and last scrape lies in (0.01, 0.1]: the median
    // interpolates to 0.01 + 0.5 * 0.09 s
    assert!(
        (sv["ttft_ms"]["p50"].as_f64().unwrap() - 55.0).abs() < 1e-9,
        "{sv}"
    );
    assert_eq!(
        sv["ttft_ms"]["count"].as_f64().unwrap(),
        2.0 * (scrapes - 1) as f64
    );
    assert!((sv["ttft_ms"]["mean"].as_f64().unwrap() - 50.0).abs() < 1e-9);
    assert_eq!(sv["kv_cache_usage_max"], 0.25);
    assert_eq!(
        sv["generation_tokens"].as_f64(),
        Some(100.0 * (scrapes - 1) as f64)
    );
    assert_eq!(sv["running_max"], 2.0);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("serves served-model (max_model_len 4096) owned by vllm"));
    assert!(html.contains("engine vllm 0.11.0"));
    assert!(
        html.contains("The server's side (vLLM,"),
        "no server section"
    );
    let out = text(&o.stdout);
    assert!(out.contains("== server (vLLM,"), "{out}");
}

#[test]
fn metrics_that_fail_mid_run_are_counted_and_the_run_goes_on() {
    let server = vllm_like(Metrics::FailsMidRun, |_| Reply::tokens(Api::OpenaiChat, 4));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(&run, &args(&server.url(), &[]));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let m = &client_stats(&run)["metrics"];
    let (ok, failed) = (
        m["scrapes"].as_u64().unwrap(),
        m["failures"].as_u64().unwrap(),
    );
    assert_eq!(ok, 1, "only the first scrape was an exposition: {m}");
    assert!(failed >= 3, "{m}");
    assert_eq!(m["first_failure"], "HTTP 500");
    assert!(err.contains("failed: HTTP 500"), "{err}");
    assert!(err.contains("not the Prometheus text format"), "{err}");
    let rows = read_rows(&run);
    assert_eq!(rows.count("ok"), rows.len());
    assert_eq!(
        json(&run, "summary.json")["server"]["scrape_failures"],
        failed
    );
}

#[test]
fn a_server_without_metrics_turns_scraping_off_and_says_so() {
    let server = vllm_like(Metrics::Absent, |_| Reply::tokens(Api::OpenaiChat, 4));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(&run, &args(&server.url(), &[]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let m = &client_stats(&run)["metrics"];
    assert!(m["off"].as_str().unwrap().contains("HTTP 404"), "{m}");
    assert!(!run.join("server_metrics.parquet").exists());
    assert!(json(&run, "summary.json")["server"].is_null());
    let scrapes = server
        .seen()
        .iter()
        .filter(|s| s.path == "/metrics")
        .count();
    assert_eq!(scrapes, 1, "scraping goes on after a 404");
}

#[test]
fn a_server_that_starts_late_is_waited_for_with_wait_ready_s() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // not quiet: the progress line is what a user waiting sees
    let wait = [
        "--override",
        "client.wait_ready_s=10",
        "--override",
        "client.progress=false",
    ];
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(crate::common::root())
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .args(["--config", "config.yaml", "--run-dir"])
        .arg(&run)
        .args(args(&url, &wait))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = TestServer::start_on(addr, |s| match s.path.as_str() {
        "/v1/models" => Reply::Body {
            status: 200,
            content_type: "application/json",
            body: r#"{"data":[{"id":"sim-model"}]}"#.into(),
        },
        "/metrics" => Reply::Body {
            status: 404,
            content_type: "text/plain",
            body: String::new(),
        },
        _ => Reply::tokens(Api::OpenaiChat, 4),
    });
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("waiting for"), "no progress line: {err}");
    let waited = client_stats(&run)["server"]["waited_s"].as_f64().unwrap();
    assert!((2.5..10.0).contains(&waited), "waited {waited} s");
}

#[test]
fn the_probe_names_a_server_that_ignores_max_tokens_and_streams_without_usage() {
    let server = vllm_like(Metrics::Absent, |_| Reply::Stream {
        api: Api::OpenaiChat,
        tokens: (0..10).map(|i| format!("w{i} ")).collect(),
        ttft: Duration::ZERO,
        interval: Duration::ZERO,
        usage: None,
        role_chunk: false,
        end: bench_testkit::End::Done,
        precise: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(&run, &args(&server.url(), &[]));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "the server ignores max_tokens: the probe asked for 4 tokens and got 10 chunks"
        ),
        "{err}"
    );
    assert!(err.contains("streams without `usage`"), "{err}");
    let w = client_stats(&run)["server"]["warnings"].clone();
    assert_eq!(w.as_array().unwrap().len(), 2, "{w}");
}

#[test]
fn a_completions_route_that_answers_chat_is_named() {
    // the server streams chat chunks whatever the route
    let server = vllm_like(Metrics::Absent, |_| Reply::tokens(Api::OpenaiChat, 4));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(&run, &args(&server.url(), &["--api", "openai-completions"]));
    let err = text(&o.stderr);
    assert!(
        err.contains("the server answers chat (`chat.completion.chunk`) on the completions route"),
        "{err}"
    );
}

#[test]
fn without_the_preflight_a_url_needs_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let o = bench(&run, &args(&url, &["--override", "client.preflight=false"]));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("client.model: not given"), "{err}");
}

#[test]
fn a_failing_threshold_exits_3_once_every_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(
        &run,
        &[
            "--duration",
            "2",
            "--override",
            r#"analysis.thresholds=["ttft_ms.p99 < 0.001", "error_rate <= 0.01", "server.ttft_ms.p50 > 0"]"#,
        ],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("FAILED  1 of 3 thresholds failed: ttft_ms.p99 < 0.001 (is "),
        "{out}"
    );
    assert!(out.contains("  FAIL  ttft_ms.p99 < 0.001"), "{out}");
    assert!(out.contains("  PASS  error_rate <= 0.01 (is 0)"), "{out}");
    assert!(out.contains("  PASS  server.ttft_ms.p50 > 0"), "{out}");
    let s = json(&run, "summary.json");
    let t = s["thresholds"].as_array().unwrap();
    assert_eq!(
        t.iter()
            .map(|x| x["pass"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(s["verdict"]["outcome"], "failed");
    for f in [
        "report.html",
        "summary.csv",
        "requests.csv",
        "server_metrics.parquet",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    // a bad figure name is a config error naming the key, before anything runs
    let o = bench(
        &dir.path().join("other"),
        &["--override", r#"analysis.thresholds=["ttft_ms.p999 < 5"]"#],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("analysis.thresholds[0]") && err.contains("did you mean `ttft_ms.p99`"),
        "{err}"
    );
}

#[test]
fn the_simulated_engine_s_metrics_agree_with_the_client_s_counts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = bench(
        &run,
        &["--duration", "3", "--override", "metrics.interval_s=0.2"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = json(&run, "summary.json");
    let sv = &s["server"];
    assert_eq!(sv["engine"], "vllm", "{sv}");
    let rows = read_rows(&run);
    let n = rows.count("ok") as f64;
    // the probe ended before the first scrape; every request ended before the last one
    assert_eq!(sv["requests_finished"].as_f64(), Some(n), "{sv}");
    assert_eq!(sv["ttft_ms"]["count"].as_f64(), Some(n));
    assert_eq!(sv["e2el_ms"]["count"].as_f64(), Some(n));
    assert_eq!(
        sv["generation_tokens"].as_f64(),
        Some(s["tokens"]["total_output"].as_f64().unwrap())
    );
    assert_eq!(
        sv["prompt_tokens"].as_f64(),
        Some(s["tokens"]["total_input"].as_f64().unwrap())
    );
    assert!(sv["running_max"].as_f64().unwrap() >= 1.0);
    assert!(sv["kv_cache_usage_max"].as_f64().unwrap() > 0.0);
    for k in [
        "ttft",
        "itl",
        "e2e",
        "queue_time",
        "running",
        "waiting",
        "kv_cache_usage",
        "prefix_cache_hits",
    ] {
        assert!(sv["metrics"][k].is_string(), "no {k}: {sv}");
    }
    assert_eq!(sv["metrics"]["itl"], "vllm:inter_token_latency_seconds");
    // the server's TTFT percentiles sit within a bucket of the client's
    let (srv, cli) = (
        sv["ttft_ms"]["p50"].as_f64().unwrap(),
        sv["ttft_ms"]["client_p50"].as_f64().unwrap(),
    );
    assert!(srv > 0.0 && cli > 0.0, "{sv}");
    assert!(
        srv / cli < 4.0 && cli / srv < 4.0,
        "server {srv} vs client {cli}"
    );
}

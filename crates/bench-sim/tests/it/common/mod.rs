//! Helpers shared by the integration tests: start a sim, post JSON, parse SSE and /metrics.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bench_config::SimConfig;
use bench_config::sim::SimPreset;
use bench_sim::SimHandle;
use futures_util::StreamExt;
use serde_json::Value;

pub const TOKENIZER: &str = "builtin:cl100k_base";

pub fn zero() -> SimConfig {
    SimConfig::preset(SimPreset::Zero)
}

pub fn start(cfg: &SimConfig) -> SimHandle {
    start_seeded(cfg, 42)
}

pub fn start_seeded(cfg: &SimConfig, seed: u64) -> SimHandle {
    bench_sim::spawn(cfg, seed, "127.0.0.1:0".parse().unwrap()).expect("sim starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn tok() -> bench_text::Tokenizer {
    bench_text::Tokenizer::load(TOKENIZER).unwrap()
}

/// POSTs `body` to `base + path`; returns the status and the body text.
pub async fn post(c: &reqwest::Client, base: &str, path: &str, body: &Value) -> (u16, String) {
    let r = c
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

pub async fn get(c: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let r = c.get(format!("{base}{path}")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// The `data:` payloads of an SSE body, in order (with or without the space after the colon).
pub fn sse_data(text: &str) -> Vec<String> {
    assert!(
        text.ends_with("\n\n"),
        "SSE body ends with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let d = e
                .strip_prefix("data:")
                .unwrap_or_else(|| panic!("event is not a data line: {e:?}"));
            assert!(!d.contains('\n'), "one line per event: {e:?}");
            d.strip_prefix(' ').unwrap_or(d).to_string()
        })
        .collect()
}

pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Sum of the samples of `name` (exact metric name) whose labels contain `label` (may be "").
pub fn metric(text: &str, name: &str, label: &str) -> f64 {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = line.rsplit_once(' ').unwrap();
        let n = series.split('{').next().unwrap();
        if n == name && series.contains(label) {
            found = true;
            sum += v.parse::<f64>().unwrap();
        }
    }
    assert!(found, "metric {name} {label} not in /metrics:\n{text}");
    sum
}

pub async fn metrics(c: &reqwest::Client, base: &str) -> String {
    let (s, t) = get(c, base, "/metrics").await;
    assert_eq!(s, 200);
    t
}

/// Whether one SSE event carries generated text (a role-only chunk does not).
pub fn has_content(event: &str) -> bool {
    let d = event.trim_end().strip_prefix("data:").unwrap_or("");
    let d = d.strip_prefix(' ').unwrap_or(d);
    if d == "[DONE]" || d.is_empty() {
        return false;
    }
    let v = json(d);
    let nonempty = |x: &Value| x.as_str().is_some_and(|s| !s.is_empty());
    nonempty(&v["choices"][0]["delta"]["content"])
        || nonempty(&v["choices"][0]["text"])
        || nonempty(&v["token"]["text"])
}

/// Sends a streamed request; returns (time to the first content chunk, SSE body text).
pub async fn stream_ttft(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> (Duration, String) {
    let t0 = Instant::now();
    let r = c
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut s = r.bytes_stream();
    let mut text = String::new();
    let mut pending = String::new();
    let mut ttft = None;
    while let Some(b) = s.next().await {
        let b = b.unwrap();
        let chunk = std::str::from_utf8(&b).unwrap();
        text.push_str(chunk);
        pending.push_str(chunk);
        while let Some(i) = pending.find("\n\n") {
            let ev: String = pending.drain(..i + 2).collect();
            if ttft.is_none() && has_content(&ev) {
                ttft = Some(t0.elapsed());
            }
        }
    }
    (ttft.expect("a content chunk arrived"), text)
}

/// Chat request body with one user message.
pub fn chat(prompt: &str, max_tokens: u32, stream: bool) -> Value {
    serde_json::json!({
        "model": "sim-model",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

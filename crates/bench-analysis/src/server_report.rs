//! The report's server parts: the header line of what the preflight learnt, the server's view
//! from /metrics, and the timings the server reported per request.

use std::fmt::Write as _;

use crate::analyze::Analysis;
use crate::format::{num, pct};
use crate::plots::Chart;
use crate::report::{esc, figure, kv_table, stats_table};
use crate::summary::Summary;

/// The server's view and its own timings (each when the run has it).
pub(crate) fn section(o: &mut String, s: &Summary, charts: &[Chart]) {
    view(o, s, charts);
    timings(o, s);
}

/// The server's own per-request timings beside the client's TTFT and TPOT.
fn timings(o: &mut String, s: &Summary) {
    let Some(t) = &s.server_timings else {
        return;
    };
    let _ = write!(
        o,
        "<h2>Server-reported timings ({} requests)</h2>",
        t.requests
    );
    stats_table(
        o,
        &[
            ("server queue (ms)", &t.queue_ms),
            ("server prefill (ms)", &t.prefill_ms),
            ("client TTFT (ms)", &s.ttft_ms),
            ("TTFT outside the engine (ms)", &t.ttft_outside_ms),
            ("server decode (ms)", &t.decode_ms),
            ("server decode per token (ms)", &t.server_tpot_ms),
            ("client TPOT (ms)", &s.tpot_ms),
            ("client TPOT - server (ms)", &t.tpot_gap_ms),
        ],
    );
    o.push_str(r#"<div class="sub">What the server sent about its own time on each request (llama.cpp's <code>timings</code>, TGI's <code>x-queue-time</code> / <code>x-inference-time</code> headers), per measured request, beside the client's TTFT and TPOT of the same requests. TTFT outside the engine = client TTFT - server queue - server prefill.</div>"#);
}

/// What the preflight learnt of the server (manifest, client stage `server`): engine, version,
/// models and their context lengths. Bud's "model-cluster detail".
pub(crate) fn server_line(a: &Analysis) -> Option<String> {
    let m = a.manifest.as_ref()?;
    let stats = &m.stage(bench_types::manifest::Stage::Client)?.stats;
    let info = stats.get("server")?;
    let mut parts = Vec::new();
    if let Some(u) = info.get("url").and_then(|x| x.as_str()) {
        parts.push(format!("server {u}"));
    }
    let engine = info.get("engine").and_then(|x| x.as_str()).or_else(|| {
        stats
            .get("metrics")
            .and_then(|x| x.get("engine"))
            .and_then(|x| x.as_str())
            .filter(|e| *e != "unknown")
    });
    if let Some(e) = engine {
        let v = info.get("version").and_then(|x| x.as_str()).unwrap_or("");
        parts.push(format!("engine {e} {v}").trim_end().to_string());
    }
    if let Some(models) = info.get("models").and_then(|x| x.as_array()) {
        let list: Vec<String> = models
            .iter()
            .filter_map(|m| {
                let id = m.get("id")?.as_str()?;
                let mut t = id.to_string();
                if let Some(n) = m.get("max_model_len").and_then(|x| x.as_u64()) {
                    t.push_str(&format!(" (max_model_len {n})"));
                }
                if let Some(o) = m.get("owned_by").and_then(|x| x.as_str()) {
                    t.push_str(&format!(" owned by {o}"));
                }
                Some(t)
            })
            .collect();
        if !list.is_empty() {
            parts.push(format!("serves {}", list.join(", ")));
        }
    }
    if let Some(w) = info.get("warnings").and_then(|x| x.as_array())
        && !w.is_empty()
    {
        parts.push(format!(
            "{} preflight warning(s): {}",
            w.len(),
            w.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The server's side: its histogram estimates beside the client's percentiles, its gauges, and
/// the server charts.
fn view(o: &mut String, s: &Summary, charts: &[Chart]) {
    let find = |name: &str| charts.iter().find(|c| c.name == name);
    let Some(sv) = &s.server else {
        if let Some(c) = find("throughput_by_batch") {
            o.push_str("<h2>Throughput by batch size</h2>");
            figure(o, c);
        }
        return;
    };
    let _ = write!(
        o,
        "<h2>The server's side ({})</h2>",
        esc(&sv.describe("/metrics scrapes"))
    );
    o.push_str(r#"<table><tr><th class="l">figure</th><th>n</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>client p50</th><th>client p90</th><th>client p99</th><th>gap p50</th><th class="l">metric</th></tr>"#);
    for (label, h) in [
        ("TTFT (ms)", &sv.ttft_ms),
        ("ITL (ms)", &sv.itl_ms),
        ("E2EL (ms)", &sv.e2el_ms),
        ("queue (ms)", &sv.queue_ms),
        ("prefill (ms)", &sv.prefill_ms),
        ("decode (ms)", &sv.decode_ms),
    ] {
        let Some(h) = h else { continue };
        let _ = write!(
            o,
            r#"<tr><td class="l">{label}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="l">{}</td></tr>"#,
            h.count,
            num(h.mean),
            num(h.p50),
            num(h.p90),
            num(h.p99),
            num(h.client_p50),
            num(h.client_p90),
            num(h.client_p99),
            num(h.gap_p50_ms),
            esc(&h.metric)
        );
    }
    o.push_str("</table>");
    o.push_str(r#"<div class="sub">Server percentiles are estimated from the increase of each histogram's buckets over the run, interpolated linearly inside a bucket (Prometheus' histogram_quantile): they are only as fine as the engine's buckets. The gap between the client's and the server's median TTFT is time spent outside the engine: network, HTTP, a router or a queue in front of it.</div>"#);
    let mean_max = |m: Option<f64>, x: Option<f64>| format!("mean {}, max {}", num(m), num(x));
    kv_table(
        o,
        &[
            (
                "running requests",
                mean_max(sv.running_mean, sv.running_max),
            ),
            (
                "waiting requests",
                mean_max(sv.waiting_mean, sv.waiting_max),
            ),
            (
                "KV-cache usage",
                mean_max(sv.kv_cache_usage_mean, sv.kv_cache_usage_max),
            ),
            ("prefix-cache hit rate", pct(sv.prefix_cache_hit_rate)),
            (
                "output tokens/s",
                format!(
                    "server {}, client {} (same window)",
                    num(sv.output_token_throughput),
                    num(sv.client_output_token_throughput)
                ),
            ),
            (
                "prompt / generated tokens (server)",
                format!("{} / {}", num(sv.prompt_tokens), num(sv.generation_tokens)),
            ),
            ("preemptions", num(sv.preemptions)),
        ],
    );
    for name in [
        "server_queue",
        "server_cache",
        "server_throughput",
        "throughput_by_batch",
    ] {
        if let Some(c) = find(name) {
            figure(o, c);
        }
    }
}

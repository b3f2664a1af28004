//! Bud's response shapes, computed from a run's files: the result percentiles from
//! summary.json, per-request rows, the field-vs-field pairs and the length distributions from
//! requests.parquet. Times are in seconds where Bud's are (request rows, pairs, distributions)
//! and in milliseconds where Bud's names say `_ms` (the result).

use std::path::Path;
use std::sync::Arc;

use bench_catalog::Entry;
use bench_types::record::{RecordTable, Status};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One request as Bud's request-metrics table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    /// The workload's request id.
    pub request_id: Option<u64>,
    /// Whether the request completed (status ok).
    pub success: bool,
    /// The error, empty when none.
    pub error: String,
    /// Prompt tokens (the server's count, else the client's).
    pub prompt_len: Option<u32>,
    /// Output tokens (the server's count, else the client's).
    pub output_len: Option<u32>,
    /// End-to-end latency, s.
    pub latency: Option<f64>,
    /// Time to first token, s.
    pub ttft: Option<f64>,
    /// Time per output token after the first, s.
    pub tpot: Option<f64>,
    /// Output tokens per second of this request.
    pub req_output_throughput: Option<f64>,
    /// The first token's time, then the gaps between chunks, s (Bud's `itl` list).
    pub itl: Vec<f64>,
    /// Sum of `itl`, s.
    pub itl_sum: f64,
}

impl RequestRow {
    /// A numeric field by its Bud name (`itl`: the mean gap after the first token).
    pub fn field(&self, name: &str) -> Option<f64> {
        match name {
            "ttft" => self.ttft,
            "tpot" => self.tpot,
            "latency" => self.latency,
            "prompt_len" => self.prompt_len.map(f64::from),
            "output_len" => self.output_len.map(f64::from),
            "req_output_throughput" => self.req_output_throughput,
            "itl" => (self.itl.len() > 1)
                .then(|| self.itl[1..].iter().sum::<f64>() / (self.itl.len() - 1) as f64),
            _ => None,
        }
    }
}

/// The fields the pair analysis accepts (Bud's list).
pub const PAIR_FIELDS: [&str; 7] = [
    "ttft",
    "tpot",
    "latency",
    "prompt_len",
    "output_len",
    "req_output_throughput",
    "itl",
];

/// The non-warmup rows of `<dir>/requests.parquet`, in file order.
pub fn request_rows(dir: &Path) -> Result<Arc<Vec<RequestRow>>, String> {
    let t =
        RecordTable::read(&dir.join(bench_types::files::REQUESTS)).map_err(|e| e.to_string())?;
    let mut rows = Vec::with_capacity(t.rows);
    let s = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    t.chunk_ns.for_each(|i, chunks| {
        if t.warmup[i] {
            return;
        }
        let ok = t.status[i] == Status::Known(bench_types::RequestStatus::Ok);
        let sent = t.sent_ns[i];
        let ttft = s(sent, t.first_token_ns[i]);
        let latency = s(sent, t.end_ns[i]);
        let out = t.usage_output_tokens[i].or(t.output_tokens[i]);
        let tpot = match (ttft, latency, out) {
            (Some(a), Some(b), Some(n)) if n > 1 => Some((b - a) / f64::from(n - 1)),
            _ => None,
        };
        let mut itl = Vec::with_capacity(chunks.len());
        if let Some(f) = ttft {
            itl.push(f);
            itl.extend(chunks.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9));
        }
        let itl_sum = itl.iter().sum();
        rows.push(RequestRow {
            request_id: t.request_id[i],
            success: ok,
            error: t.error[i].clone().unwrap_or_default(),
            prompt_len: t.usage_prompt_tokens[i].or(t.prompt_tokens[i]),
            output_len: out,
            latency,
            ttft,
            tpot,
            req_output_throughput: match (out, latency) {
                (Some(n), Some(l)) if l > 0.0 => Some(f64::from(n) / l),
                _ => None,
            },
            itl,
            itl_sum,
        });
    });
    Ok(Arc::new(rows))
}

/// summary.json of a run directory.
pub fn summary(dir: &Path) -> Result<Value, String> {
    let p = dir.join(bench_types::files::SUMMARY);
    let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))
}

/// Bud's result object from summary.json.
pub fn result(e: &Entry, s: &Value) -> Value {
    let mut r = Map::new();
    let num = |p: &str| s.pointer(p).cloned().unwrap_or(Value::Null);
    for (m, key) in [
        ("ttft_ms", "ttft_ms"),
        ("tpot_ms", "tpot_ms"),
        ("itl_ms", "itl_ms"),
        ("e2el_ms", "e2el_ms"),
        ("request_output_throughput", "throughput"),
    ] {
        for (stat, name) in [
            ("mean", "mean"),
            ("p50", "median"),
            ("p25", "p25"),
            ("p75", "p75"),
            ("p95", "p95"),
            ("p99", "p99"),
            ("min", "min"),
            ("max", "max"),
            ("std", "std"),
        ] {
            r.insert(format!("{name}_{key}"), num(&format!("/{m}/{stat}")));
        }
    }
    r.insert("successful_requests".into(), num("/counts/ok"));
    r.insert("failed_requests".into(), num("/counts/failed"));
    r.insert("total_input_tokens".into(), num("/tokens/total_input"));
    r.insert("total_output_tokens".into(), num("/tokens/total_output"));
    r.insert("duration".into(), num("/duration_s"));
    r.insert("request_throughput".into(), num("/request_throughput"));
    r.insert("input_throughput".into(), num("/input_token_throughput"));
    r.insert("output_throughput".into(), num("/output_token_throughput"));
    r.insert(
        "total_token_throughput".into(),
        num("/total_token_throughput"),
    );
    r.insert("goodput".into(), num("/goodput"));
    r.insert("verdict".into(), num("/verdict/outcome"));
    r.insert("benchmark_id".into(), json!(e.id));
    r.insert("id".into(), json!(e.id));
    r.insert("created_at".into(), json!(e.started_at));
    r.insert("modified_at".into(), json!(e.ended_at));
    Value::Object(r)
}

/// Bud's list item.
pub fn list_item(e: &Entry) -> Value {
    let m = |k: &str| e.metrics.as_ref().and_then(|m| m.get(k)).cloned();
    let secs = |k: &str| m(k).and_then(|v| v.as_f64()).map(|ms| ms / 1000.0);
    let eval_with = if e.dataset_type.as_deref() == Some("random") {
        "configuration"
    } else {
        "dataset"
    };
    json!({
        "id": e.id,
        "name": e.name,
        "kind": e.kind.as_str(),
        "status": e.status.as_str(),
        "description": e.description,
        "tags": e.tags,
        "model": {"name": e.model, "uri": e.model, "source": e.api},
        "endpoint": e.endpoint,
        "concurrency": e.concurrency,
        "rate": e.rate,
        "ttft": secs("ttft_ms_p50"),
        "tpot": secs("tpot_ms_p50"),
        "output_throughput": m("output_throughput"),
        "created_at": e.started_at,
        "modified_at": e.ended_at,
        "eval_with": eval_with,
        "dataset_type": e.dataset_type,
        "workload_type": e.workload_type,
        "error": e.error,
        "experiment_id": e.experiment_id,
        "remote": e.remote,
    })
}

/// Bud's distribution bins over `by` (`prompt_len` or `output_len`), of the successful
/// requests: equal-width bins from 0 to the largest value; average and p95 of TTFT, TPOT and
/// latency in each (s, two decimals as Bud gives them; 0 for an empty bin).
pub fn distribution(rows: &[RequestRow], by: &str, bins: usize) -> Vec<Value> {
    let ok: Vec<&RequestRow> = rows
        .iter()
        .filter(|r| r.success && r.field(by).is_some())
        .collect();
    let max = ok.iter().filter_map(|r| r.field(by)).fold(0.0f64, f64::max);
    let width = if max > 0.0 { max / bins as f64 } else { 1.0 };
    let mut out = Vec::with_capacity(bins);
    for b in 0..bins {
        let (lo, hi) = (b as f64 * width, (b + 1) as f64 * width);
        let inside: Vec<&&RequestRow> = ok
            .iter()
            .filter(|r| {
                let v = r.field(by).unwrap_or(0.0);
                v >= lo && (v < hi || b + 1 == bins)
            })
            .collect();
        let col = |f: &str| -> Vec<f64> { inside.iter().filter_map(|r| r.field(f)).collect() };
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let avg = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                round(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        let p95 = |v: &[f64]| round(percentile(v, 95.0));
        let (ttft, tpot, lat) = (col("ttft"), col("tpot"), col("latency"));
        let mut bin = json!({
            "bin_id": b + 1,
            "bin_range": format!("{:.1}-{:.1}", lo, hi),
            "requests": inside.len(),
            "avg_ttft": avg(&ttft),
            "avg_tpot": avg(&tpot),
            "avg_latency": avg(&lat),
            "p95_ttft": p95(&ttft),
            "p95_tpot": p95(&tpot),
            "p95_latency": p95(&lat),
        });
        if by == "prompt_len" {
            bin["avg_output_len"] = json!(avg(&col("output_len")));
        }
        out.push(bin);
    }
    out
}

/// The q-th percentile with linear interpolation between closest ranks (numpy's default);
/// 0 for no values.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q / 100.0 * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The pairs `{field1: x, field2: y}` of the successful requests that have both.
pub fn pairs(rows: &[RequestRow], f1: &str, f2: &str) -> Vec<Value> {
    rows.iter()
        .filter(|r| r.success)
        .filter_map(|r| {
            let (a, b) = (r.field(f1)?, r.field(f2)?);
            let mut o = Map::new();
            o.insert(f1.to_string(), json!(a));
            o.insert(f2.to_string(), json!(b));
            Some(Value::Object(o))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(prompt: u32, out: u32, ttft: f64, lat: f64) -> RequestRow {
        RequestRow {
            request_id: None,
            success: true,
            error: String::new(),
            prompt_len: Some(prompt),
            output_len: Some(out),
            latency: Some(lat),
            ttft: Some(ttft),
            tpot: Some((lat - ttft) / f64::from(out - 1)),
            req_output_throughput: Some(f64::from(out) / lat),
            itl: vec![ttft, 0.1, 0.3],
            itl_sum: ttft + 0.4,
        }
    }

    #[test]
    fn distributions_bin_from_zero_to_the_largest_value() {
        let rows = vec![
            row(10, 3, 1.0, 2.0),
            row(100, 3, 3.0, 4.0),
            row(200, 5, 5.0, 9.0),
        ];
        let d = distribution(&rows, "prompt_len", 2);
        assert_eq!(d[0]["bin_range"], "0.0-100.0");
        assert_eq!(d[1]["bin_range"], "100.0-200.0");
        assert_eq!(
            (d[0]["requests"].as_u64(), d[1]["requests"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(d[1]["avg_ttft"], 4.0);
        assert_eq!(d[1]["p95_latency"], 8.75); // 4 + (9 - 4) * 0.95
        assert_eq!(d[1]["avg_output_len"], 4.0);
        let o = distribution(&rows, "output_len", 2);
        assert!(o[0].get("avg_output_len").is_none());
        assert_eq!(o[1]["requests"], 3); // 3, 3 and 5 all at or above 2.5
    }

    #[test]
    fn pairs_and_fields() {
        let rows = vec![row(10, 3, 1.0, 2.0)];
        let p = pairs(&rows, "prompt_len", "itl");
        assert_eq!(p, vec![json!({"prompt_len": 10.0, "itl": 0.2})]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
    }
}

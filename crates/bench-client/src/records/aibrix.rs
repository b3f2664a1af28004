//! AIBrix's client output (`output.jsonl`): one JSON object per request with the fields AIBrix's
//! benchmark client writes (`input`, `output`, `prompt_tokens`, `output_tokens`, `total_tokens`,
//! `latency`, `throughput`, `ttft`, `tpot`, ...), so AIBrix's tooling and the dataset stage's
//! `client_trace` converter can read a bench run.

use serde_json::{Value, json};

use crate::outcome::Outcome;
use bench_types::record::RequestRecord as Row;

/// The conversation sent, as AIBrix's `input`: the chat messages, or one user message holding
/// the completions / TGI prompt.
fn input_messages(body: Option<&[u8]>) -> Value {
    let Some(v) = body.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
        return json!([]);
    };
    if let Some(m) = v.get("messages") {
        return m.clone();
    }
    match v.get("prompt").or_else(|| v.get("inputs")) {
        Some(p) => json!([{"role": "user", "content": p}]),
        None => json!([]),
    }
}

/// One output.jsonl line (without the newline). `shift` turns base-relative instants into
/// anchor offsets; `anchor_unix_ns` dates them.
pub fn line(o: &Outcome, row: &Row, shift: i64, anchor_unix_ns: i64) -> String {
    let secs = |ns: i64| ns as f64 / 1e9;
    let unix = |t: Option<i64>| t.map(|t| secs(t - shift + anchor_unix_ns));
    let prompt_tokens = row.usage_prompt_tokens.or(row.prompt_tokens).unwrap_or(0) as u64;
    let output_tokens = row.usage_output_tokens.or(row.output_tokens).unwrap_or(0) as u64;
    let latency = match (row.sent_ns, row.end_ns) {
        (Some(s), Some(e)) => secs(e - s),
        _ => 0.0,
    };
    let ttft = match (row.sent_ns, row.first_token_ns) {
        (Some(s), Some(f)) => Some(secs(f - s)),
        _ => None,
    };
    let tpot = match (row.first_token_ns, row.end_ns) {
        (Some(f), Some(e)) if output_tokens > 1 => Some(secs(e - f) / (output_tokens - 1) as f64),
        _ => None,
    };
    let mut v = json!({
        "request_id": row.request_id,
        "status": if row.status == bench_types::RequestStatus::Ok { "success" } else { "error" },
        "input": input_messages(o.body.as_deref()),
        "output": o.content,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
        "latency": latency,
        "throughput": if latency > 0.0 { output_tokens as f64 / latency } else { 0.0 },
        "start_time": unix(row.sent_ns),
        "end_time": unix(row.end_ns),
        "ttft": ttft,
        "tpot": tpot,
        "session_id": row.session_id,
    });
    if row.status != bench_types::RequestStatus::Ok {
        v["error_type"] = json!(row.status.as_str());
        v["error_message"] = json!(row.error.as_deref().unwrap_or(""));
        v["status_code"] = json!(row.http_status);
    }
    v.to_string()
}

//! Prints a summary of a requests.parquet: rows by status, TTFT / TPOT / ITL / E2E latency
//! percentiles, token counts (client vs server), dispatch lag. A quick check without Python.
//!
//! `cargo run --release -p bench-client --example summarize -- <run_dir>/requests.parquet`

use bench_client::testkit::read_records;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn line(name: &str, mut v: Vec<f64>) {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n.max(1) as f64;
    println!(
        "{name:<22} n={n:<6} mean {mean:>9.2}  p50 {:>9.2}  p90 {:>9.2}  p99 {:>9.2}  max {:>9.2}",
        pct(&mut v, 0.5),
        pct(&mut v, 0.9),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0)
    );
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: summarize <requests.parquet>");
    let (rows, kv) = match read_records(std::path::Path::new(&path)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let meta = |k: &str| {
        kv.iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("?")
    };
    let (warm, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.warmup);
    println!(
        "{path}: {} rows (+{} warmup), workload {} requests, complete {}, api {}",
        rows.len(),
        warm.len(),
        meta("bench.workload_requests"),
        meta("bench.complete"),
        meta("bench.api")
    );
    let mut statuses: Vec<(String, usize)> = Vec::new();
    for r in &rows {
        match statuses.iter_mut().find(|(s, _)| *s == r.status) {
            Some(e) => e.1 += 1,
            None => statuses.push((r.status.clone(), 1)),
        }
    }
    println!(
        "status: {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for r in rows.iter().filter(|r| r.status != "ok").take(3) {
        println!(
            "  e.g. request {}: {} {:?}",
            r.request_id, r.status, r.error
        );
    }
    let ok: Vec<_> = rows.iter().filter(|r| r.status == "ok").collect();
    let ms = |ns: i64| ns as f64 / 1e6;
    line(
        "ttft (ms)",
        ok.iter()
            .filter_map(|r| Some(ms(r.first_token_ns? - r.sent_ns?)))
            .collect(),
    );
    line(
        "tpot (ms)",
        ok.iter()
            .filter_map(|r| {
                let n = r.usage_output_tokens.or(r.output_tokens)? as i64;
                (n > 1)
                    .then(|| Some(ms(r.end_ns? - r.first_token_ns?) / (n - 1) as f64))
                    .flatten()
            })
            .collect(),
    );
    line(
        "itl (ms)",
        ok.iter()
            .flat_map(|r| {
                r.chunk_ns
                    .windows(2)
                    .map(|w| ms(w[1] - w[0]))
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    line(
        "e2e latency (ms)",
        ok.iter()
            .filter_map(|r| Some(ms(r.end_ns? - r.sent_ns?)))
            .collect(),
    );
    line(
        "dispatch lag (ms)",
        rows.iter()
            .filter_map(|r| Some(ms(r.sent_ns? - r.scheduled_ns)))
            .collect(),
    );
    line(
        "queue delay (ms)",
        rows.iter()
            .filter_map(|r| Some(ms(r.sent_ns? - r.ready_ns?)))
            .collect(),
    );
    line(
        "chunks per request",
        ok.iter().map(|r| r.chunk_ns.len() as f64).collect(),
    );
    line(
        "output tokens (client)",
        ok.iter()
            .filter_map(|r| r.output_tokens.map(f64::from))
            .collect(),
    );
    line(
        "output tokens (server)",
        ok.iter()
            .filter_map(|r| r.usage_output_tokens.map(f64::from))
            .collect(),
    );
    line(
        "max_tokens asked",
        ok.iter()
            .filter_map(|r| r.max_tokens.map(f64::from))
            .collect(),
    );
    line(
        "prompt tokens (client)",
        ok.iter()
            .filter_map(|r| r.prompt_tokens.map(f64::from))
            .collect(),
    );
    line(
        "prompt tokens (server)",
        ok.iter()
            .filter_map(|r| r.usage_prompt_tokens.map(f64::from))
            .collect(),
    );
    if let Some(t) = ok.iter().find_map(|r| r.output_text.as_deref()) {
        println!(
            "first output text: {:?}",
            t.chars().take(160).collect::<String>()
        );
    }
}

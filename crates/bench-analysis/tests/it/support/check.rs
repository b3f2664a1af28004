//! An independent recomputation of summary.json, for checking the Polars path.
//!
//! Reads requests.parquet with the parquet crate's row API (neither Arrow nor Polars), recomputes the
//! definitions of docs/METRICS.md from scratch (full sorts and numpy's linear percentile
//! formula, not the selection algorithm of the crate), and compares every figure with the
//! run's summary.json within a relative tolerance.

use std::fs::File;
use std::path::Path;

use bench_types::record::columns as col;
use serde_json::Value;

/// One row, as read independently.
#[derive(Debug, Clone, Default)]
struct R {
    status: String,
    warmup: bool,
    scheduled: Option<i64>,
    ready: Option<i64>,
    sent: Option<i64>,
    first_byte: Option<i64>,
    first_token: Option<i64>,
    end: Option<i64>,
    chunks: Vec<i64>,
    prompt: Option<i64>,
    output: Option<i64>,
    usage_prompt: Option<i64>,
    usage_output: Option<i64>,
}

/// Reads every row with the parquet crate's row API (`parquet::record`), a path that shares
/// nothing with the Arrow reader analysis uses.
fn read_rows(path: &Path) -> Vec<R> {
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::SerializedFileReader;
    use parquet::record::Field;
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = SerializedFileReader::new(file).expect("parquet");
    let int = |f: &Field| -> Option<i64> {
        match f {
            Field::Null => None,
            Field::Byte(v) => Some(*v as i64),
            Field::Short(v) => Some(*v as i64),
            Field::Int(v) => Some(*v as i64),
            Field::Long(v) => Some(*v),
            Field::UByte(v) => Some(*v as i64),
            Field::UShort(v) => Some(*v as i64),
            Field::UInt(v) => Some(*v as i64),
            Field::ULong(v) => Some(*v as i64),
            other => panic!("not an integer: {other:?}"),
        }
    };
    let mut out = Vec::new();
    for row in reader.get_row_iter(None).expect("rows") {
        let row = row.expect("row");
        let mut r = R::default();
        for (name, f) in row.get_column_iter() {
            match name.as_str() {
                col::STATUS => {
                    if let Field::Str(v) = f {
                        r.status = v.clone();
                    }
                }
                col::WARMUP => r.warmup = matches!(f, Field::Bool(true)),
                col::SCHEDULED_NS => r.scheduled = int(f),
                col::READY_NS => r.ready = int(f),
                col::SENT_NS => r.sent = int(f),
                col::FIRST_BYTE_NS => r.first_byte = int(f),
                col::FIRST_TOKEN_NS => r.first_token = int(f),
                col::END_NS => r.end = int(f),
                col::PROMPT_TOKENS => r.prompt = int(f),
                col::OUTPUT_TOKENS => r.output = int(f),
                col::USAGE_PROMPT_TOKENS => r.usage_prompt = int(f),
                col::USAGE_OUTPUT_TOKENS => r.usage_output = int(f),
                col::CHUNK_NS => {
                    if let Field::ListInternal(l) = f {
                        r.chunks = l.elements().iter().map(|e| int(e).unwrap()).collect();
                    }
                }
                _ => {}
            }
        }
        out.push(r);
    }
    out
}

/// numpy.percentile(values, 100 q) with the default linear method (numpy's `_lerp`).
pub fn np_percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, t) = (sorted[lo], sorted[hi], h - lo as f64);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// count, min, p25, p50, p75, p90, p95, p99, max, mean, std (population).
fn reference_stats(mut v: Vec<f64>) -> Vec<(&'static str, Option<f64>)> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let keys = [
        "min", "p25", "p50", "p75", "p90", "p95", "p99", "max", "mean", "std",
    ];
    if n == 0 {
        return std::iter::once(("count", Some(0.0)))
            .chain(keys.iter().map(|k| (*k, None)))
            .collect();
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    vec![
        ("count", Some(n as f64)),
        ("min", Some(v[0])),
        ("p25", Some(np_percentile(&v, 0.25))),
        ("p50", Some(np_percentile(&v, 0.50))),
        ("p75", Some(np_percentile(&v, 0.75))),
        ("p90", Some(np_percentile(&v, 0.90))),
        ("p95", Some(np_percentile(&v, 0.95))),
        ("p99", Some(np_percentile(&v, 0.99))),
        ("max", Some(v[n - 1])),
        ("mean", Some(mean)),
        ("std", Some(std)),
    ]
}

/// What the check compared.
#[derive(Debug, Default)]
pub struct Checked {
    /// Figures compared.
    pub figures: usize,
    /// Mismatches, one line each.
    pub mismatches: Vec<String>,
    /// Measured requests in the reference.
    pub measured: usize,
    /// Pooled ITL values in the reference.
    pub itl_values: usize,
}

impl Checked {
    fn cmp(&mut self, what: &str, got: Option<f64>, want: Option<f64>, rel: f64) {
        self.figures += 1;
        let ok = match (got, want) {
            (None, None) => true,
            (Some(g), Some(w)) => {
                g == w || (g - w).abs() <= rel * g.abs().max(w.abs()) || (g - w).abs() < 1e-12
            }
            _ => false,
        };
        if !ok {
            self.mismatches
                .push(format!("{what}: summary.json {got:?}, recomputed {want:?}"));
        }
    }
}

fn num(v: &Value, path: &str) -> Option<f64> {
    path.split('.')
        .try_fold(v, |cur, k| cur.get(k))
        .and_then(Value::as_f64)
}

fn ms(a: Option<i64>, b: Option<i64>) -> Option<f64> {
    Some((a? - b?) as f64 / 1e6)
}

/// Recomputes `<run_dir>/summary.json` from `<run_dir>/requests.parquet` and compares every
/// figure (counts, window, throughputs, goodput, and the stats of TTFT, TPOT, ITL, E2EL, TTFB,
/// per-request output throughput, dispatch lag, queue delay, schedule lag) within `rel`.
pub fn verify_run(run_dir: &Path, rel: f64) -> Checked {
    let rows = read_rows(&run_dir.join("requests.parquet"));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    let mut c = Checked::default();

    let nonwarm: Vec<&R> = rows.iter().filter(|r| !r.warmup).collect();
    let count = |s: &str| nonwarm.iter().filter(|r| r.status == s).count() as f64;
    c.cmp(
        "counts.rows",
        num(&summary, "counts.rows"),
        Some(rows.len() as f64),
        0.0,
    );
    c.cmp(
        "counts.warmup",
        num(&summary, "counts.warmup"),
        Some((rows.len() - nonwarm.len()) as f64),
        0.0,
    );
    for s in [
        "ok",
        "http_error",
        "timeout",
        "transport_error",
        "cancelled",
        "not_sent",
    ] {
        c.cmp(
            &format!("counts.{s}"),
            num(&summary, &format!("counts.{s}")),
            Some(count(s)),
            0.0,
        );
    }
    let failed = count("http_error") + count("timeout") + count("transport_error");
    c.cmp(
        "counts.failed",
        num(&summary, "counts.failed"),
        Some(failed),
        0.0,
    );

    // measured: ok, not warmup, sent and end present, times in order
    let measured: Vec<&R> = nonwarm
        .iter()
        .copied()
        .filter(|r| r.status == "ok")
        .filter(|r| match (r.sent, r.end) {
            (Some(s), Some(e)) => {
                e >= s
                    && r.first_token.is_none_or(|f| s <= f && f <= e)
                    && r.chunks.windows(2).all(|w| w[0] <= w[1])
                    && r.chunks.iter().all(|&t| s <= t && t <= e)
            }
            _ => false,
        })
        .collect();
    c.measured = measured.len();
    c.cmp(
        "counts.measured",
        num(&summary, "counts.measured"),
        Some(measured.len() as f64),
        0.0,
    );

    let out_tokens = |r: &R| r.usage_output.or(r.output);
    let in_tokens = |r: &R| r.usage_prompt.or(r.prompt);
    // the window: every sent non-warmup request that ended, whatever its status
    let spans: Vec<(i64, i64)> = nonwarm
        .iter()
        .filter_map(|r| Some((r.sent?, r.end?)))
        .filter(|(s, e)| e >= s)
        .collect();
    let start = spans.iter().map(|x| x.0).min();
    let end = spans.iter().map(|x| x.1).max();
    let duration = match (start, end) {
        (Some(s), Some(e)) if e > s => Some((e - s) as f64 / 1e9),
        _ => None,
    };
    c.cmp("duration_s", num(&summary, "duration_s"), duration, rel);
    let total_in: i64 = measured.iter().filter_map(|r| in_tokens(r)).sum();
    let total_out: i64 = measured.iter().filter_map(|r| out_tokens(r)).sum();
    let per_s = |x: f64| duration.map(|d| x / d);
    c.cmp(
        "request_throughput",
        num(&summary, "request_throughput"),
        per_s(measured.len() as f64),
        rel,
    );
    c.cmp(
        "input_token_throughput",
        num(&summary, "input_token_throughput"),
        per_s(total_in as f64),
        rel,
    );
    c.cmp(
        "output_token_throughput",
        num(&summary, "output_token_throughput"),
        per_s(total_out as f64),
        rel,
    );
    c.cmp(
        "total_token_throughput",
        num(&summary, "total_token_throughput"),
        per_s((total_in + total_out) as f64),
        rel,
    );

    let ttft: Vec<Option<f64>> = measured.iter().map(|r| ms(r.first_token, r.sent)).collect();
    let e2el: Vec<Option<f64>> = measured.iter().map(|r| ms(r.end, r.sent)).collect();
    let tpot: Vec<Option<f64>> = measured
        .iter()
        .map(|r| match (out_tokens(r), r.first_token, r.end) {
            (Some(n), Some(f), Some(e)) if n >= 2 => Some((e - f) as f64 / 1e6 / (n - 1) as f64),
            _ => None,
        })
        .collect();
    let itl_max: Vec<Option<f64>> = measured
        .iter()
        .map(|r| {
            r.chunks
                .windows(2)
                .map(|w| w[1] - w[0])
                .max()
                .map(|d| d as f64 / 1e6)
        })
        .collect();
    let itl: Vec<f64> = measured
        .iter()
        .flat_map(|r| r.chunks.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e6))
        .collect();
    c.itl_values = itl.len();
    let ttfb: Vec<f64> = measured
        .iter()
        .filter_map(|r| ms(r.first_byte, r.sent))
        .collect();
    let tps: Vec<f64> = measured
        .iter()
        .filter_map(|r| {
            let e2el_ns = r.end? - r.sent?;
            (e2el_ns > 0).then_some(())?;
            Some(out_tokens(r)? as f64 / (e2el_ns as f64 / 1e9))
        })
        .collect();
    let sent: Vec<&R> = nonwarm
        .iter()
        .copied()
        .filter(|r| r.sent.is_some())
        .collect();
    let lag: Vec<f64> = sent
        .iter()
        .filter_map(|r| ms(r.sent, r.scheduled))
        .collect();
    let queue: Vec<f64> = sent.iter().filter_map(|r| ms(r.sent, r.ready)).collect();
    let sched_lag: Vec<f64> = sent
        .iter()
        .filter_map(|r| ms(r.ready.or(r.sent), r.scheduled))
        .collect();
    let metrics: [(&str, Vec<f64>); 9] = [
        ("ttft_ms", ttft.iter().flatten().copied().collect()),
        ("tpot_ms", tpot.iter().flatten().copied().collect()),
        ("itl_ms", itl),
        ("e2el_ms", e2el.iter().flatten().copied().collect()),
        ("ttfb_ms", ttfb),
        ("request_output_throughput", tps),
        ("dispatch_lag_ms", lag),
        ("queue_delay_ms", queue),
        ("schedule_lag_ms", sched_lag.clone()),
    ];
    for (m, v) in metrics {
        for (k, want) in reference_stats(v) {
            c.cmp(
                &format!("{m}.{k}"),
                num(&summary, &format!("{m}.{k}")),
                want,
                rel,
            );
        }
    }
    let mut sl = sched_lag;
    sl.sort_by(f64::total_cmp);
    c.cmp(
        "client_health.p99_ms",
        num(&summary, "client_health.p99_ms"),
        (!sl.is_empty()).then(|| np_percentile(&sl, 0.99)),
        rel,
    );

    // goodput with the SLOs recorded in summary.json
    let slo = |k: &str| num(&summary, &format!("slo.{k}"));
    let (s_ttft, s_tpot, s_itl, s_e2el) = (
        slo("ttft_ms"),
        slo("tpot_ms"),
        slo("itl_ms"),
        slo("e2el_ms"),
    );
    if s_ttft.is_some() || s_tpot.is_some() || s_itl.is_some() || s_e2el.is_some() {
        let good = (0..measured.len())
            .filter(|&i| {
                s_ttft.is_none_or(|l| ttft[i].is_some_and(|v| v <= l))
                    && s_tpot.is_none_or(|l| tpot[i].is_none_or(|v| v <= l))
                    && s_itl.is_none_or(|l| itl_max[i].is_none_or(|v| v <= l))
                    && s_e2el.is_none_or(|l| e2el[i].is_some_and(|v| v <= l))
            })
            .count() as f64;
        c.cmp(
            "slo.good_requests",
            num(&summary, "slo.good_requests"),
            Some(good),
            0.0,
        );
        c.cmp("goodput", num(&summary, "goodput"), per_s(good), rel);
        let denom = measured.len() as f64 + failed;
        c.cmp(
            "slo.attainment",
            num(&summary, "slo.attainment"),
            (denom > 0.0).then(|| good / denom),
            rel,
        );
    } else {
        c.cmp("goodput", num(&summary, "goodput"), None, rel);
    }
    c
}

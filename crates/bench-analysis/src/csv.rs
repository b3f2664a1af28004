//! CSV outputs: summary.csv (one row per run, also `bench compare --csv`), requests.csv (one
//! row per request: SambaNova's "individual responses"), timeseries.csv, distributions.csv and
//! pairs.csv.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::AnalysisError;
use crate::analyze::Analysis;
use crate::distributions::{Brief, GroupRow};
use crate::format::{csv_num, csv_text};
use crate::load::Status;
use crate::summary::Summary;
use crate::timeseries::TimeSeries;

/// Every scalar of summary.json (numbers, strings, booleans, nulls) as a dotted path, in the
/// file's key order; lists (exclusions, notes, distributions, breakdowns, files) are left to
/// summary.json and the other CSVs. The union over `summaries`, so runs of different versions
/// still line up.
pub fn summary_paths(summaries: &[Value]) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(x, &p, out);
                }
            }
            Value::Array(_) => {}
            _ => {
                if !out.iter().any(|q| q == prefix) {
                    out.push(prefix.to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    for s in summaries {
        walk(s, "", &mut out);
    }
    out
}

/// The value at a dotted path.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, k| cur.get(k))
}

/// A JSON value as a CSV field.
fn field(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => csv_text(s),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|x| csv_num(Some(x)))
            .unwrap_or_else(|| n.to_string()),
        Some(other) => csv_text(&other.to_string()),
    }
}

/// summary.csv's header and one row per summary (as JSON values).
pub fn summary_csv(summaries: &[Value]) -> String {
    let paths = summary_paths(summaries);
    let mut out = paths
        .iter()
        .map(|p| p.replace('.', "_"))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for s in summaries {
        out.push_str(
            &paths
                .iter()
                .map(|p| field(lookup(s, p)))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, AnalysisError> {
    let f = std::fs::File::create(path)
        .map_err(|e| AnalysisError::Other(format!("{}: {e}", path.display())))?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, f))
}

fn io_err(path: &Path, e: std::io::Error) -> AnalysisError {
    AnalysisError::Other(format!("{}: {e}", path.display()))
}

/// Writes `text` to `path`.
pub fn write_text(path: &Path, text: &str) -> Result<(), AnalysisError> {
    std::fs::write(path, text).map_err(|e| io_err(path, e))
}

fn f(v: f64) -> String {
    csv_num(Some(v))
}

/// Header of requests.csv.
pub const REQUESTS_HEADER: &str = "request_id,session_id,turn,status,warmup,measured,excluded_reason,error,\
scheduled_s,sent_s,first_token_s,end_s,dispatch_lag_ms,queue_delay_ms,ttfb_ms,ttft_ms,tpot_ms,e2el_ms,\
itl_mean_ms,itl_max_ms,chunks,input_tokens,output_tokens,client_prompt_tokens,usage_prompt_tokens,\
client_output_tokens,usage_output_tokens,output_tps,in_flight_at_send,meets_slo,server_queue_ms,\
server_prefill_ms,server_decode_ms,server_inference_ms,cached_prompt_tokens,ttft_reasoning_ms,\
ttft_answer_ms,thinking_ms,answer_tpot_ms,reasoning_tokens,answer_tokens,dataset";

/// Appends `v` (nothing for NaN) and a comma.
fn push_num(line: &mut String, v: f64) {
    if !v.is_nan() {
        let _ = write!(line, "{v}");
    }
    line.push(',');
}

/// Writes requests.csv: every row of requests.parquet with its metrics (times in seconds since
/// the time origin); `good[k]` says whether the k-th measured row meets every SLO.
pub fn write_requests(
    a: &Analysis,
    good: Option<&[bool]>,
    path: &Path,
) -> Result<(), AnalysisError> {
    let r = &a.rec;
    let d = &r.derived;
    let mut w = create(path)?;
    let mut line = String::with_capacity(512);
    writeln!(w, "{REQUESTS_HEADER}").map_err(|e| io_err(path, e))?;
    let mut k = 0usize;
    for i in 0..r.rows {
        line.clear();
        let measured = a.reason[i].is_none();
        let meets = match (measured, good) {
            (true, Some(g)) => {
                k += 1;
                if g[k - 1] { "true" } else { "false" }
            }
            _ => "",
        };
        for v in [r.request_id[i], r.session_id[i], r.turn[i].map(u64::from)] {
            if let Some(v) = v {
                let _ = write!(line, "{v}");
            }
            line.push(',');
        }
        match r.status[i] {
            Status::Known(s) => line.push_str(s.as_str()),
            Status::Unknown(u) => line.push_str(&csv_text(&r.unknown_statuses[u as usize])),
        }
        let _ = write!(
            line,
            ",{},{measured},{},",
            r.warmup[i],
            a.reason[i].map(|x| x.key()).unwrap_or("")
        );
        if let Some(e) = &r.error[i] {
            line.push_str(&csv_text(e));
        }
        line.push(',');
        for t in [r.scheduled[i], r.sent[i], r.first_token[i], r.end[i]] {
            push_num(&mut line, t.map_or(f64::NAN, |t| a.secs(t)));
        }
        for v in [
            d.dispatch_lag_ms[i],
            d.queue_delay_ms[i],
            d.ttfb_ms[i],
            d.ttft_ms[i],
            d.tpot_ms[i],
            d.e2el_ms[i],
            a.itl.mean_ms[i],
            a.itl.max_ms[i],
        ] {
            push_num(&mut line, v);
        }
        let _ = write!(line, "{},", a.itl.chunks[i]);
        for v in [
            d.input_tokens[i],
            d.output_tokens[i],
            d.client_prompt_tokens[i],
            d.usage_prompt_tokens[i],
            d.client_output_tokens[i],
            d.usage_output_tokens[i],
            d.output_tps[i],
            a.in_flight[i],
        ] {
            push_num(&mut line, v);
        }
        line.push_str(meets);
        let sc = &r.server;
        let q = &d.reasoning;
        for v in [
            sc.queue_ms[i],
            sc.prefill_ms[i],
            sc.decode_ms[i],
            sc.inference_ms[i],
            sc.cached_prompt_tokens[i],
            q.ttft_reasoning_ms[i],
            q.ttft_answer_ms[i],
            q.thinking_ms[i],
            q.answer_tpot_ms[i],
            q.reasoning_tokens[i],
            q.answer_tokens[i],
        ] {
            line.push(',');
            if !v.is_nan() {
                let _ = write!(line, "{v}");
            }
        }
        line.push(',');
        if let Some(name) = &r.dataset[i] {
            line.push_str(&csv_text(name));
        }
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(|e| io_err(path, e))?;
    }
    w.flush().map_err(|e| io_err(path, e))
}

fn brief_cols(b: &Brief) -> String {
    [b.mean, b.p50, b.p95, b.p99]
        .iter()
        .map(|v| csv_num(*v))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes timeseries.csv.
pub fn write_timeseries(ts: &TimeSeries, path: &Path) -> Result<(), AnalysisError> {
    let mut out = String::from(
        "t_s,width_s,offered_rps,sent_rps,completed_rps,failed_rps,in_flight,output_tps,measured_sent,\
ttft_ms_mean,ttft_ms_p50,ttft_ms_p95,ttft_ms_p99,tpot_ms_mean,tpot_ms_p50,tpot_ms_p95,tpot_ms_p99,\
e2el_ms_mean,e2el_ms_p50,e2el_ms_p95,e2el_ms_p99,avg_input_tokens,avg_output_tokens\n",
    );
    for r in &ts.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            f(r.t_s),
            f(r.width_s),
            f(r.offered_rps),
            f(r.sent_rps),
            f(r.completed_rps),
            f(r.failed_rps),
            f(r.in_flight),
            f(r.output_tps),
            r.measured_sent,
            brief_cols(&r.ttft_ms),
            brief_cols(&r.tpot_ms),
            brief_cols(&r.e2el_ms),
            csv_num(r.avg_input_tokens),
            csv_num(r.avg_output_tokens),
        );
    }
    write_text(path, &out)
}

/// Writes distributions.csv: the length bins and breakdowns of summary.json, one table after
/// the other, with a `table` column naming each.
pub fn write_distributions(s: &Summary, path: &Path) -> Result<(), AnalysisError> {
    let mut out = String::from(
        "table,label,lo,hi,requests,ttft_ms_mean,ttft_ms_p50,ttft_ms_p95,ttft_ms_p99,tpot_ms_mean,tpot_ms_p50,tpot_ms_p95,\
tpot_ms_p99,e2el_ms_mean,e2el_ms_p50,e2el_ms_p95,e2el_ms_p99,output_tps_mean,output_tps_p50,output_tps_p95,output_tps_p99,\
avg_input_tokens,avg_output_tokens\n",
    );
    let tables: [(&str, &[GroupRow]); 4] = [
        ("input_length", &s.length_distributions.input),
        ("output_length", &s.length_distributions.output),
        ("concurrency", &s.breakdowns.concurrency),
        ("turn", &s.breakdowns.turn),
    ];
    for (name, rows) in tables {
        for g in rows {
            let _ = writeln!(
                out,
                "{name},{},{},{},{},{},{},{},{},{},{}",
                csv_text(&g.label),
                csv_num(g.lo),
                csv_num(g.hi),
                g.requests,
                brief_cols(&g.ttft_ms),
                brief_cols(&g.tpot_ms),
                brief_cols(&g.e2el_ms),
                brief_cols(&g.request_output_throughput),
                csv_num(g.avg_input_tokens),
                csv_num(g.avg_output_tokens),
            );
        }
    }
    write_text(path, &out)
}

/// Writes pairs.csv: for each pair of analysis.pairs, y by bins of x.
pub fn write_pairs(s: &Summary, path: &Path) -> Result<(), AnalysisError> {
    let mut out = String::from("x,y,x_lo,x_hi,requests,y_mean,y_p50,y_p95,y_p99\n");
    for p in &s.pairs {
        for b in &p.bins {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                p.x,
                p.y,
                f(b.lo),
                f(b.hi),
                b.requests,
                brief_cols(&b.y)
            );
        }
    }
    write_text(path, &out)
}

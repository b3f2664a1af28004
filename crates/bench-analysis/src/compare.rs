//! `bench compare RUN_DIR...`: the summaries of several runs in one table, and as CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::AnalysisError;
use crate::csv::{lookup, summary_csv, write_text};
use crate::format::num;

/// Columns of the text table: header, dotted path into summary.json.
const COLUMNS: [(&str, &str); 22] = [
    ("model", "run.model"),
    ("api", "run.api"),
    ("verdict", "verdict.outcome"),
    ("measured", "counts.measured"),
    ("failed", "counts.failed"),
    ("cancelled", "counts.cancelled"),
    ("not sent", "counts.not_sent"),
    ("dur s", "duration_s"),
    ("offered", "offered_rate"),
    ("achieved", "achieved_rate"),
    ("out tok/s", "output_token_throughput"),
    ("goodput", "goodput"),
    ("TTFT p50", "ttft_ms.p50"),
    ("TTFT p99", "ttft_ms.p99"),
    ("TPOT p50", "tpot_ms.p50"),
    ("TPOT p99", "tpot_ms.p99"),
    ("ITL p50", "itl_ms.p50"),
    ("ITL p99", "itl_ms.p99"),
    ("E2EL p50", "e2el_ms.p50"),
    ("E2EL p99", "e2el_ms.p99"),
    ("lag p99", "client_health.p99_ms"),
    ("conc", "run.concurrency"),
];

/// Reads `<dir>/summary.json` (or `dir` itself when it is a summary file).
pub fn read_summary(dir: &Path) -> Result<Value, AnalysisError> {
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join(bench_types::files::SUMMARY)
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AnalysisError::Input(format!(
                "{}: not found (analyse the run first: bench --stage analysis --override run_dir={})",
                path.display(),
                dir.display()
            ))
        } else {
            AnalysisError::Input(format!("{}: {e}", path.display()))
        }
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| AnalysisError::Input(format!("{}: not JSON: {e}", path.display())))?;
    match v.get("schema").and_then(Value::as_str) {
        // /4 only added figures: a /3 summary compares, its new columns empty
        Some(crate::summary::SCHEMA | "bench.summary/3") => Ok(v),
        Some(s) if s.starts_with("bench.summary/") => Err(AnalysisError::Input(format!(
            "{}: schema `{s}` is not `{}`, whose figures this bench compares (re-analyse the run: \
             bench --stage analysis --override run_dir={})",
            path.display(),
            crate::summary::SCHEMA,
            dir.display()
        ))),
        Some(s) => Err(AnalysisError::Input(format!(
            "{}: not a bench summary (`schema` is `{s}`, not `bench.summary/N`)",
            path.display()
        ))),
        None => Err(AnalysisError::Input(format!(
            "{}: not a bench summary (no `schema` key)",
            path.display()
        ))),
    }
}

/// The SLOs a summary's goodput was measured against, e.g. `ttft<=200ms, tpot<=50ms`.
fn slo_text(s: &Value) -> String {
    let parts: Vec<String> = ["ttft", "tpot", "itl", "e2el"]
        .iter()
        .filter_map(|k| {
            lookup(s, &format!("slo.{k}_ms"))
                .and_then(Value::as_f64)
                .map(|v| format!("{k}<={v}ms"))
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Short names for the runs: the directory names, or the full paths when names repeat.
fn labels(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            let d = if d.is_file() {
                d.parent().unwrap_or(d)
            } else {
                d.as_path()
            };
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| d.display().to_string())
        })
        .collect();
    let unique = names
        .iter()
        .all(|n| names.iter().filter(|m| *m == n).count() == 1);
    if unique {
        names
    } else {
        dirs.iter().map(|d| d.display().to_string()).collect()
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u.to_string(),
            (None, x) => num(x),
        },
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "-".into(),
    }
}

/// The table of `summaries` (one row per run) as text.
pub fn table(names: &[String], summaries: &[Value]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.push(
        std::iter::once("run".to_string())
            .chain(COLUMNS.iter().map(|c| c.0.to_string()))
            .collect(),
    );
    // goodput is only comparable under the same SLOs: show them when they differ
    let slos: Vec<String> = summaries.iter().map(slo_text).collect();
    let slos_differ = slos.iter().any(|x| Some(x) != slos.first());
    if slos_differ {
        rows[0].push("goodput SLO".into());
    }
    for ((name, s), slo) in names.iter().zip(summaries).zip(&slos) {
        let mut r = vec![name.clone()];
        r.extend(COLUMNS.iter().map(|(_, p)| cell(lookup(s, p))));
        if slos_differ {
            r.push(slo.clone());
        }
        if lookup(s, "client_health.ok") == Some(&Value::Bool(false)) {
            r[0].push_str(" (!)");
        }
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|k| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        for (k, c) in r.iter().enumerate() {
            if k == 0 {
                let _ = write!(out, "{c:<w$}", w = widths[0]);
            } else {
                let _ = write!(out, "  {c:>w$}", w = widths[k]);
            }
        }
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    if summaries
        .iter()
        .any(|s| lookup(s, "client_health.ok") == Some(&Value::Bool(false)))
    {
        out.push_str(
            "(!) the client could not keep the schedule in this run: its latencies are suspect\n",
        );
    }
    if slos_differ {
        out.push_str("goodput was measured against different SLOs in these runs (goodput SLO)\n");
    } else {
        let _ = writeln!(out, "goodput SLO: {}", slos.first().map_or("none", |s| s));
    }
    out.push_str("times in ms; goodput in req/s; lag p99 = client schedule lag\n");
    out
}

/// Reads every run's summary.json, returns the table, and writes the CSV to `csv` when given.
pub fn compare(run_dirs: &[PathBuf], csv: Option<&Path>) -> Result<String, AnalysisError> {
    if run_dirs.is_empty() {
        return Err(AnalysisError::Input(
            "bench compare: name at least one run directory".into(),
        ));
    }
    let summaries = run_dirs
        .iter()
        .map(|d| read_summary(d))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = csv {
        write_text(path, &summary_csv(&summaries))?;
    }
    Ok(table(&labels(run_dirs), &summaries))
}

//! The analysis stage: metrics, goodput, distributions, plots and report from `requests.parquet`.
//!
//! [`run`] reads `<run_dir>/requests.parquet` (one lazy Polars scan), classifies every row
//! (measured, or excluded with a reason), and writes into the run directory:
//! summary.json and summary.csv, requests.csv, timeseries.csv, distributions.csv, pairs.csv,
//! plots/*.svg and plots/*.png, and report.html. The definitions of every figure are in
//! docs/METRICS.md; how to read the report is in docs/REPORT.md.
//! [`compare`] puts the summaries of several runs in one table.

pub mod analyze;
pub mod compare;
pub mod csv;
pub mod distributions;
pub mod experiment;
pub mod format;
pub mod goodput;
pub mod load;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod server;
mod server_report;
pub mod summary;
pub mod table;
pub mod timeseries;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::time::Instant;

use bench_config::{AnalysisConfig, Config};
use bench_types::stage::exit;
use bench_types::{StageError, StageOutput};

pub use analyze::Analysis;
/// Summary statistics (percentiles, mean, std): shared with the client, defined in bench-types.
pub use bench_types::stats;
pub use summary::Summary;

/// Analysis errors.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The run directory lacks a readable requests.parquet, or it is malformed (exit 2).
    #[error("{0}")]
    Input(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

impl StageError for AnalysisError {
    fn exit_code(&self) -> i32 {
        match self {
            AnalysisError::Input(_) => exit::BAD_INPUT,
            AnalysisError::Other(_) => exit::FAILURE,
        }
    }
}

/// Everything computed from one run, before anything is written.
#[derive(Debug)]
pub struct Computed {
    /// The loaded, classified run.
    pub analysis: Analysis,
    /// summary.json's content.
    pub summary: Summary,
    /// The time series.
    pub series: timeseries::TimeSeries,
    /// The server's series, one point per /metrics scrape (when scraped).
    pub server_series: Option<server::ServerSeries>,
}

/// Loads `<run_dir>/requests.parquet` and computes the summary and the time series.
pub fn compute(run_dir: &Path, cfg: &AnalysisConfig) -> Result<Computed, AnalysisError> {
    let mut analysis = Analysis::load(run_dir, cfg)?;
    let mut pooled = std::mem::take(&mut analysis.itl.pooled_ns);
    let a = &analysis;
    // The pooled ITLs (tens of millions in a long run), the time series and the rest of the
    // summary are independent: compute them side by side.
    let (itl, series, mut summary) = std::thread::scope(|sc| {
        let itl = sc.spawn(move || stats::Stats::of_ns_as_ms(&mut pooled));
        let series = sc.spawn(move || timeseries::build(a));
        let summary = summary::build(a);
        let itl = itl.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (
            itl,
            series
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            summary,
        )
    });
    summary.itl_ms = itl;
    if let Some(n) = &series.note {
        summary.notes.push(n.clone());
    }
    summary::load_figures(&analysis, &mut summary, &series);
    let (view, note) = server::build(&analysis, &summary, &series);
    summary.notes.extend(note);
    let server_series = view.map(|v| {
        summary.server = Some(v.summary);
        v.series
    });
    verdict::finish(&mut summary, &cfg.thresholds);
    Ok(Computed {
        analysis,
        summary,
        series,
        server_series,
    })
}

/// Removes plots an earlier analysis of this run wrote that this one does not (a pair no longer
/// asked for, a breakdown the run no longer has), so plots/ matches summary.json's `files`.
fn remove_stale_plots(dir: &Path, charts: &[plots::Chart]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let ours = matches!(p.extension().and_then(|x| x.to_str()), Some("svg" | "png"));
        let stem = p.file_stem().and_then(|x| x.to_str()).unwrap_or("");
        if ours && !charts.iter().any(|c| c.name == stem) {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn mkdir(p: &Path) -> Result<(), AnalysisError> {
    std::fs::create_dir_all(p).map_err(|e| AnalysisError::Other(format!("{}: {e}", p.display())))
}

/// Writes the CSV files of `c` into its run directory; returns their names.
pub fn write_tables(c: &Computed) -> Result<Vec<String>, AnalysisError> {
    let a = &c.analysis;
    let dir = &a.run_dir;
    let mut files = Vec::new();
    if a.cfg.requests_csv {
        let good = a.cfg.slo.any().then(|| goodput::good_flags(a, &a.cfg.slo));
        csv::write_requests(a, good.as_deref(), &dir.join("requests.csv"))?;
        files.push("requests.csv".to_string());
    }
    csv::write_timeseries(&c.series, &dir.join("timeseries.csv"))?;
    csv::write_distributions(&c.summary, &dir.join("distributions.csv"))?;
    files.extend([
        "timeseries.csv".to_string(),
        "distributions.csv".to_string(),
    ]);
    if !c.summary.pairs.is_empty() {
        csv::write_pairs(&c.summary, &dir.join("pairs.csv"))?;
        files.push("pairs.csv".to_string());
    } else {
        // an earlier analysis with pairs: don't leave its table beside this summary
        let _ = std::fs::remove_file(dir.join("pairs.csv"));
    }
    Ok(files)
}

/// Renders the plots (written as SVG and PNG when `analysis.plots`) and report.html (when
/// `analysis.report`); returns the files written.
pub fn write_visuals(c: &Computed) -> Result<Vec<String>, AnalysisError> {
    let a = &c.analysis;
    let mut files = Vec::new();
    if !a.cfg.plots && !a.cfg.report {
        return Ok(files);
    }
    let charts = plots::render_all(a, &c.summary, &c.series, c.server_series.as_ref())?;
    if a.cfg.plots {
        let dir = a.run_dir.join("plots");
        mkdir(&dir)?;
        remove_stale_plots(&dir, &charts);
        for ch in &charts {
            csv::write_text(&dir.join(format!("{}.svg", ch.name)), &ch.svg)?;
            plots::write_png(ch, &dir.join(format!("{}.png", ch.name)))?;
            files.push(format!("plots/{}.svg", ch.name));
            files.push(format!("plots/{}.png", ch.name));
        }
    }
    if a.cfg.report {
        let mut summary = c.summary.clone();
        summary.files.extend(files.iter().cloned());
        summary.files.push(bench_types::files::REPORT.to_string());
        let html = report::html(a, &summary, &c.series, &charts);
        csv::write_text(&a.run_dir.join(bench_types::files::REPORT), &html)?;
        files.push(bench_types::files::REPORT.to_string());
    }
    Ok(files)
}

/// Runs the analysis of `run_dir`.
pub fn run(cfg: &Config, run_dir: &Path) -> Result<StageOutput, AnalysisError> {
    let t0 = Instant::now();
    let mut c = compute(run_dir, &cfg.analysis)?;
    tracing::debug!(
        "analysis: summary of {} rows in {:.3}s",
        c.analysis.rec.rows,
        t0.elapsed().as_secs_f64()
    );
    let mut files = vec![
        bench_types::files::SUMMARY.to_string(),
        "summary.csv".to_string(),
    ];
    files.extend(write_tables(&c)?);
    c.summary.files = files.clone();
    let visuals = write_visuals(&c)?;
    files.extend(visuals);
    c.summary.files = files.clone();
    let json = serde_json::to_string_pretty(&c.summary)
        .map_err(|e| AnalysisError::Other(e.to_string()))?;
    csv::write_text(&run_dir.join(bench_types::files::SUMMARY), &(json + "\n"))?;
    let value =
        serde_json::to_value(&c.summary).map_err(|e| AnalysisError::Other(e.to_string()))?;
    csv::write_text(&run_dir.join("summary.csv"), &csv::summary_csv(&[value]))?;

    let s = &c.summary;
    let mut out = StageOutput {
        outputs: files,
        ..StageOutput::default()
    };
    out.stat("rows", s.counts.rows)
        .stat("measured", s.counts.measured)
        .stat("failed", s.counts.failed);
    let opt = |v: Option<f64>| {
        v.map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null)
    };
    out.stat("duration_s", opt(s.duration_s))
        .stat("request_throughput", opt(s.request_throughput))
        .stat("output_token_throughput", opt(s.output_token_throughput))
        .stat("goodput", opt(s.goodput))
        .stat("ttft_ms_p50", opt(s.ttft_ms.p50))
        .stat("client_ok", s.client_health.ok)
        .stat(
            "verdict",
            serde_json::to_value(s.verdict.outcome).unwrap_or_default(),
        );
    if cfg.analysis.print_summary {
        out.display = Some(table::render(s));
    }
    if !s.client_health.ok {
        tracing::warn!("analysis: {}", s.client_health.message);
    }
    for n in &s.notes {
        tracing::debug!("analysis: {n}");
    }
    Ok(out)
}

/// `bench compare`: one table across runs (text), and the same as CSV at `csv` when given.
pub fn compare(run_dirs: &[PathBuf], csv: Option<&Path>) -> Result<String, AnalysisError> {
    compare::compare(run_dirs, csv)
}

//! One analysed run: the records, which rows are measured, and the per-row figures that
//! several outputs share.

use std::path::{Path, PathBuf};

use bench_config::AnalysisConfig;
use bench_types::Manifest;

use crate::AnalysisError;
use crate::load::{self, Records};
use crate::metrics::{self, Exclusion, Itl};
use bench_config::analysis::WindowConfig;

/// A run, loaded and classified.
#[derive(Debug)]
pub struct Analysis {
    /// The run directory.
    pub run_dir: PathBuf,
    /// `analysis.*`.
    pub cfg: AnalysisConfig,
    /// The rows of requests.parquet.
    pub rec: Records,
    /// Per row: why it is excluded, or None when measured.
    pub reason: Vec<Option<Exclusion>>,
    /// Inter-token latencies.
    pub itl: Itl,
    /// Rows that are measured (ok, not warmup, complete and consistent times), in file order.
    pub measured: Vec<usize>,
    /// Rows that are not warmup, inside `analysis.window`, and were sent (any status), in file
    /// order.
    pub sent_rows: Vec<usize>,
    /// Per row: outside `analysis.window` (left out like warmup, counted as `outside_window`).
    pub outside: Vec<bool>,
    /// Per row: dispatch lag not counting queueing (ready - scheduled, or sent - scheduled
    /// without a ready time), ms; NaN when not sent.
    pub schedule_lag_ms: Vec<f64>,
    /// Per row: requests in flight (sent, not yet ended, this one included) at its send time;
    /// NaN when not sent or warmup.
    pub in_flight: Vec<f64>,
    /// Time origin of timelines (ns on the file's clock): the earliest scheduled or sent time
    /// of a non-warmup row.
    pub t0_ns: i64,
    /// manifest.json of the run, when present and readable.
    pub manifest: Option<Manifest>,
    /// Problems worth a line in the report that did not stop the analysis.
    pub notes: Vec<String>,
}

impl Analysis {
    /// Loads `<run_dir>/requests.parquet` (and manifest.json when present: a corrupt one is an
    /// input error naming it) and classifies rows.
    pub fn load(run_dir: &Path, cfg: &AnalysisConfig) -> Result<Analysis, AnalysisError> {
        let manifest = bench_types::manifest::read(run_dir)
            .map_err(|e| AnalysisError::Input(e.to_string()))?;
        let path = run_dir.join(bench_types::files::REQUESTS);
        let rec = load::load(&path, cfg.token_source)?;
        Ok(Self::from_records(run_dir, cfg, rec, manifest))
    }

    /// Classifies already loaded records.
    pub fn from_records(
        run_dir: &Path,
        cfg: &AnalysisConfig,
        rec: Records,
        manifest: Option<Manifest>,
    ) -> Analysis {
        let notes = Vec::new();
        let (mut reason, itl) = metrics::classify(&rec);
        let outside = outside_window(&rec, &cfg.window);
        for (i, o) in outside.iter().enumerate() {
            if *o {
                reason[i] = Some(Exclusion::OutsideWindow);
            }
        }
        let measured: Vec<usize> = (0..rec.rows).filter(|&i| reason[i].is_none()).collect();
        let sent_rows: Vec<usize> = (0..rec.rows)
            .filter(|&i| !rec.warmup[i] && !outside[i] && rec.sent[i].is_some())
            .collect();
        let mut schedule_lag_ms = vec![f64::NAN; rec.rows];
        for &i in &sent_rows {
            if let (Some(sent), Some(sched)) = (rec.sent[i], rec.scheduled[i]) {
                let released = rec.ready[i].unwrap_or(sent);
                schedule_lag_ms[i] = (released - sched) as f64 / 1e6;
            }
        }
        let t0_ns = (0..rec.rows)
            .filter(|&i| !rec.warmup[i])
            .filter_map(|i| match (rec.scheduled[i], rec.sent[i]) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min()
            .unwrap_or(0);
        let in_flight = in_flight_at_send(&rec, &sent_rows);
        Analysis {
            run_dir: run_dir.to_path_buf(),
            cfg: cfg.clone(),
            rec,
            reason,
            itl,
            measured,
            sent_rows,
            outside,
            schedule_lag_ms,
            in_flight,
            t0_ns,
            manifest,
            notes,
        }
    }

    /// The non-NaN values of `per_row` over the measured rows.
    pub fn measured_values(&self, per_row: &[f64]) -> Vec<f64> {
        self.measured
            .iter()
            .map(|&i| per_row[i])
            .filter(|v| !v.is_nan())
            .collect()
    }

    /// Seconds since [`Analysis::t0_ns`].
    pub fn secs(&self, t_ns: i64) -> f64 {
        (t_ns - self.t0_ns) as f64 / 1e9
    }
}

/// For each sent row: how many sent rows had been sent at or before its send time and had not
/// ended by then (itself included).
fn in_flight_at_send(rec: &Records, sent_rows: &[usize]) -> Vec<f64> {
    let mut sent: Vec<i64> = sent_rows.iter().filter_map(|&i| rec.sent[i]).collect();
    let mut ends: Vec<i64> = sent_rows.iter().filter_map(|&i| rec.end[i]).collect();
    sent.sort_unstable();
    ends.sort_unstable();
    let mut out = vec![f64::NAN; rec.rows];
    for &i in sent_rows {
        if let Some(s) = rec.sent[i] {
            let started = sent.partition_point(|&x| x <= s);
            let ended = ends.partition_point(|&x| x <= s);
            out[i] = started.saturating_sub(ended) as f64;
        }
    }
    out
}

/// Per row: whether `w` leaves it out. Non-warmup rows by scheduled time: the first and last
/// seconds of the schedule, and the first and last requests in schedule order.
pub fn outside_window(rec: &Records, w: &WindowConfig) -> Vec<bool> {
    let mut out = vec![false; rec.rows];
    if !w.any() {
        return out;
    }
    let mut rows: Vec<(i64, usize)> = (0..rec.rows)
        .filter(|&i| !rec.warmup[i])
        .filter_map(|i| rec.scheduled[i].map(|t| (t, i)))
        .collect();
    rows.sort_unstable();
    let (Some(&(first, _)), Some(&(last, _))) = (rows.first(), rows.last()) else {
        return out;
    };
    let lo = first + (w.skip_first_s * 1e9) as i64;
    let hi = last - (w.skip_last_s * 1e9) as i64;
    let n = rows.len();
    for (k, &(t, i)) in rows.iter().enumerate() {
        let by_count =
            (k as u64) < w.skip_first_requests || ((n - 1 - k) as u64) < w.skip_last_requests;
        let by_time = (w.skip_first_s > 0.0 && t < lo) || (w.skip_last_s > 0.0 && t > hi);
        out[i] = by_count || by_time;
    }
    out
}

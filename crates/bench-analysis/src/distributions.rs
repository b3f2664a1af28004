//! Distributions and breakdowns of the measured requests: input/output length bins (Bud's
//! analyses), observed concurrency, session turn, and field-against-field tables.

use bench_config::PairField;
use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::stats;

/// mean, p50, p95, p99 of one metric within a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Brief {
    /// Of the non-NaN values of `per_row` at `rows`.
    pub fn of(per_row: &[f64], rows: &[usize]) -> Brief {
        let mut v: Vec<f64> = rows
            .iter()
            .map(|&i| per_row[i])
            .filter(|x| !x.is_nan())
            .collect();
        if v.is_empty() {
            return Brief::default();
        }
        let mean = stats::mean(&v);
        let p = stats::percentiles(&mut v, &[0.5, 0.95, 0.99]);
        Brief {
            mean,
            p50: Some(p[0]),
            p95: Some(p[1]),
            p99: Some(p[2]),
        }
    }
}

/// One group of measured requests (a length bin, a concurrency level, a turn).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// 1-based bin number, or the group's value.
    pub label: String,
    /// Lower edge (inclusive) of the bin, when the group is a bin.
    pub lo: Option<f64>,
    /// Upper edge (exclusive, inclusive for the last bin).
    pub hi: Option<f64>,
    /// Measured requests in the group.
    pub requests: u64,
    /// TTFT, ms.
    pub ttft_ms: Brief,
    /// TPOT, ms.
    pub tpot_ms: Brief,
    /// E2EL, ms.
    pub e2el_ms: Brief,
    /// Output tokens/s per request.
    pub request_output_throughput: Brief,
    /// Mean input tokens.
    pub avg_input_tokens: Option<f64>,
    /// Mean output tokens.
    pub avg_output_tokens: Option<f64>,
}

impl GroupRow {
    /// The row for `rows` (indices of measured rows).
    pub fn of(
        a: &Analysis,
        label: String,
        lo: Option<f64>,
        hi: Option<f64>,
        rows: &[usize],
    ) -> GroupRow {
        let d = &a.rec.derived;
        let avg = |v: &[f64]| Brief::of(v, rows).mean;
        GroupRow {
            label,
            lo,
            hi,
            requests: rows.len() as u64,
            ttft_ms: Brief::of(&d.ttft_ms, rows),
            tpot_ms: Brief::of(&d.tpot_ms, rows),
            e2el_ms: Brief::of(&d.e2el_ms, rows),
            request_output_throughput: Brief::of(&d.output_tps, rows),
            avg_input_tokens: avg(&d.input_tokens),
            avg_output_tokens: avg(&d.output_tokens),
        }
    }
}

/// Equal-width bins over [min, max] of `per_row` among measured rows: `n` bins, the last one
/// closed; one bin when all values are equal. Rows with no value are left out.
pub fn equal_width_bins(a: &Analysis, per_row: &[f64], n: usize) -> Vec<(f64, f64, Vec<usize>)> {
    let rows: Vec<usize> = a
        .measured
        .iter()
        .copied()
        .filter(|&i| !per_row[i].is_nan())
        .collect();
    let Some(lo) = rows.iter().map(|&i| per_row[i]).reduce(f64::min) else {
        return Vec::new();
    };
    let hi = rows.iter().map(|&i| per_row[i]).fold(lo, f64::max);
    if hi == lo {
        return vec![(lo, hi, rows)];
    }
    let w = (hi - lo) / n as f64;
    let mut bins: Vec<(f64, f64, Vec<usize>)> = (0..n)
        .map(|k| {
            (
                lo + k as f64 * w,
                if k + 1 == n {
                    hi
                } else {
                    lo + (k + 1) as f64 * w
                },
                Vec::new(),
            )
        })
        .collect();
    for i in rows {
        let k = (((per_row[i] - lo) / w).floor() as usize).min(n - 1);
        bins[k].2.push(i);
    }
    bins
}

/// Bud's input/output-length distribution: measured requests in `analysis.length_bins`
/// equal-width bins of `length`.
pub fn length_bins(a: &Analysis, length: &[f64]) -> Vec<GroupRow> {
    equal_width_bins(a, length, a.cfg.length_bins as usize)
        .into_iter()
        .enumerate()
        .map(|(k, (lo, hi, rows))| GroupRow::of(a, (k + 1).to_string(), Some(lo), Some(hi), &rows))
        .collect()
}

/// A group of rows with its label and range.
#[derive(Debug, Clone)]
pub struct Group {
    /// Label.
    pub label: String,
    /// Lowest value of the group.
    pub lo: Option<f64>,
    /// Highest value of the group.
    pub hi: Option<f64>,
    /// Row indices.
    pub rows: Vec<usize>,
}

/// Groups of integer values: one group per distinct value when there are at most
/// `max_groups`, else `max_groups` buckets of equal integer width.
fn integer_groups(rows: &[(usize, u64)], max_groups: usize) -> Vec<Group> {
    let mut distinct: Vec<u64> = rows.iter().map(|r| r.1).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= max_groups {
        return distinct
            .iter()
            .map(|&v| Group {
                label: v.to_string(),
                lo: Some(v as f64),
                hi: Some(v as f64),
                rows: rows.iter().filter(|r| r.1 == v).map(|r| r.0).collect(),
            })
            .collect();
    }
    let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
    let width = (hi - lo + 1).div_ceil(max_groups as u64);
    let mut out: Vec<Group> = (0..max_groups as u64)
        .map(|k| {
            let a = lo + k * width;
            let b = (a + width - 1).min(hi);
            Group {
                label: format!("{a}-{b}"),
                lo: Some(a as f64),
                hi: Some(b as f64),
                rows: Vec::new(),
            }
        })
        .filter(|g| g.lo.unwrap_or(0.0) <= hi as f64)
        .collect();
    for &(i, v) in rows {
        out[((v - lo) / width) as usize].rows.push(i);
    }
    out
}

/// Groups of measured requests by the number of requests in flight when each was sent.
pub fn concurrency_groups(a: &Analysis) -> Vec<Group> {
    let rows: Vec<(usize, u64)> = a
        .measured
        .iter()
        .filter(|&&i| !a.in_flight[i].is_nan())
        .map(|&i| (i, a.in_flight[i] as u64))
        .collect();
    integer_groups(&rows, 12.max(a.cfg.length_bins as usize))
}

/// Measured requests by the number of requests in flight when each was sent.
pub fn by_concurrency(a: &Analysis) -> Vec<GroupRow> {
    concurrency_groups(a)
        .into_iter()
        .map(|g| GroupRow::of(a, g.label, g.lo, g.hi, &g.rows))
        .collect()
}

/// Turns beyond this are grouped together.
const MAX_TURN_GROUPS: u32 = 16;

/// Measured requests by session turn (turns from 16 on together); empty without turns.
pub fn by_turn(a: &Analysis) -> Vec<GroupRow> {
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); MAX_TURN_GROUPS as usize + 1];
    let mut any = false;
    for &i in &a.measured {
        if let Some(t) = a.rec.turn[i] {
            groups[t.min(MAX_TURN_GROUPS) as usize].push(i);
            any = true;
        }
    }
    if !any {
        return Vec::new();
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(t, rows)| {
            let label = if t as u32 == MAX_TURN_GROUPS {
                format!("{t}+")
            } else {
                t.to_string()
            };
            GroupRow::of(
                a,
                label,
                Some(t as f64),
                (t as u32 != MAX_TURN_GROUPS).then_some(t as f64),
                &rows,
            )
        })
        .collect()
}

/// Measured requests by the named dataset they came from (`dataset.use`), in name order; empty
/// when no request names one.
pub fn by_dataset(a: &Analysis) -> Vec<GroupRow> {
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for &i in &a.measured {
        if let Some(d) = &a.rec.dataset[i] {
            groups.entry(d.as_str()).or_default().push(i);
        }
    }
    groups
        .into_iter()
        .map(|(name, rows)| GroupRow::of(a, name.to_string(), None, None, &rows))
        .collect()
}

/// The per-row values of a field of `analysis.pairs` (NaN: no value).
pub fn field(a: &Analysis, f: PairField) -> &[f64] {
    let d = &a.rec.derived;
    match f {
        PairField::Ttft => &d.ttft_ms,
        PairField::Tpot => &d.tpot_ms,
        PairField::Latency => &d.e2el_ms,
        PairField::PromptLen => &d.input_tokens,
        PairField::OutputLen => &d.output_tokens,
        PairField::ReqOutputThroughput => &d.output_tps,
        PairField::Itl => &a.itl.mean_ms,
        PairField::ItlMax => &a.itl.max_ms,
        PairField::Ttfb => &d.ttfb_ms,
        PairField::DispatchLag => &d.dispatch_lag_ms,
        PairField::InFlight => &a.in_flight,
    }
}

/// One bin of x in a pair table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairBin {
    /// Lower edge of x.
    pub lo: f64,
    /// Upper edge of x.
    pub hi: f64,
    /// Requests in the bin.
    pub requests: u64,
    /// y within the bin.
    pub y: Brief,
}

/// y against bins of x, over measured requests that have both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairTable {
    /// Field on the x axis.
    pub x: PairField,
    /// Field on the y axis.
    pub y: PairField,
    /// Requests with both values.
    pub requests: u64,
    /// Equal-width bins of x.
    pub bins: Vec<PairBin>,
}

/// The tables of `analysis.pairs`.
pub fn pairs(a: &Analysis) -> Vec<PairTable> {
    a.cfg
        .pairs
        .iter()
        .map(|p| {
            let (xs, ys) = (field(a, p.x), field(a, p.y));
            // x restricted to rows that also have y
            let masked: Vec<f64> = xs
                .iter()
                .zip(ys)
                .map(|(&xv, &yv)| if yv.is_nan() { f64::NAN } else { xv })
                .collect();
            let bins = equal_width_bins(a, &masked, a.cfg.length_bins as usize);
            let requests = bins.iter().map(|b| b.2.len() as u64).sum();
            let bins = bins
                .into_iter()
                .map(|(lo, hi, rows)| PairBin {
                    lo,
                    hi,
                    requests: rows.len() as u64,
                    y: Brief::of(ys, &rows),
                })
                .collect();
            PairTable {
                x: p.x,
                y: p.y,
                requests,
                bins,
            }
        })
        .collect()
}

//! Summary statistics of one metric: min, p25, p50, p75, p90, p95, p99, max, mean, std.
//!
//! Percentiles use linear interpolation between the two closest ranks (numpy's default
//! `method="linear"`, the one vLLM's `bench serve` reports): for `n` sorted values `x[0..n]`
//! and quantile `q`, with `h = (n - 1) q`, `lo = floor(h)`, the value is
//! `x[lo] + (h - lo) (x[lo + 1] - x[lo])`. `std` is the population standard deviation
//! (ddof = 0, numpy's default). Values are selected, never fully sorted: one quickselect per
//! distinct rank needed, each on a shrinking part of the slice.

use serde::{Deserialize, Serialize};

/// min, p25, p50, p75, p90, p95, p99, max, mean, std of one metric, and how many values.
///
/// Every figure is `None` when `count` is 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: Option<f64>,
    /// 25th percentile.
    pub p25: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0).
    pub std: Option<f64>,
}

impl Stats {
    /// Statistics of `values` (finite numbers, any order; the slice is reordered).
    pub fn of(values: &mut [f64]) -> Stats {
        let n = values.len();
        if n == 0 {
            return Stats::default();
        }
        let (mean, std) = mean_std(values);
        let p = percentiles(values, &[0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]);
        Stats {
            count: n as u64,
            min: Some(p[0]),
            p25: Some(p[1]),
            p50: Some(p[2]),
            p75: Some(p[3]),
            p90: Some(p[4]),
            p95: Some(p[5]),
            p99: Some(p[6]),
            max: Some(p[7]),
            mean: Some(mean),
            std: Some(std),
        }
    }

    /// Statistics in ms of `values` in integer nanoseconds (any order; reordered): the same
    /// figures as [`Stats::of`] on `ns / 1e6`, selected on the integers.
    pub fn of_ns_as_ms(values: &mut [i64]) -> Stats {
        let n = values.len();
        if n == 0 {
            return Stats::default();
        }
        let ms = |x: i64| x as f64 / 1e6;
        let mean = values.iter().map(|&x| ms(x)).sum::<f64>() / n as f64;
        let var = values
            .iter()
            .map(|&x| (ms(x) - mean) * (ms(x) - mean))
            .sum::<f64>()
            / n as f64;
        let p = percentiles_by(
            values,
            &[0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0],
            i64::cmp,
            ms,
        );
        Stats {
            count: n as u64,
            min: Some(p[0]),
            p25: Some(p[1]),
            p50: Some(p[2]),
            p75: Some(p[3]),
            p90: Some(p[4]),
            p95: Some(p[5]),
            p99: Some(p[6]),
            max: Some(p[7]),
            mean: Some(mean),
            std: Some(var.sqrt()),
        }
    }

    /// The figure named `key` (`count`, `min`, `p25` ... `max`, `mean`, `std`).
    pub fn get(&self, key: &str) -> Option<f64> {
        match key {
            "count" => Some(self.count as f64),
            "min" => self.min,
            "p25" => self.p25,
            "p50" => self.p50,
            "p75" => self.p75,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "max" => self.max,
            "mean" => self.mean,
            "std" => self.std,
            _ => None,
        }
    }

    /// The keys of [`Stats::get`] in report order.
    pub const KEYS: [&'static str; 11] = [
        "count", "min", "p25", "p50", "p75", "p90", "p95", "p99", "max", "mean", "std",
    ];
}

/// Mean and population standard deviation (two passes, so large offsets cost no precision).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Mean of `values`, `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Linear-interpolated percentiles of `values` at each of `qs` (each in 0..=1, any order).
///
/// `values` must be non-empty and hold no NaN; it is reordered.
pub fn percentiles(values: &mut [f64], qs: &[f64]) -> Vec<f64> {
    percentiles_by(values, qs, f64::total_cmp, |x| x)
}

/// [`percentiles`] of values ordered by `cmp` and converted by the monotonic `to_f64` before
/// interpolating (so integer nanoseconds select as fast as integers and interpolate in ms
/// exactly as the converted values would).
pub fn percentiles_by<T: Copy>(
    values: &mut [T],
    qs: &[f64],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering + Copy,
    to_f64: impl Fn(T) -> f64,
) -> Vec<f64> {
    let n = values.len();
    assert!(n > 0, "percentiles of an empty slice");
    // Every rank whose value is needed: floor(h) and, when interpolating, floor(h) + 1.
    let mut ranks: Vec<usize> = Vec::with_capacity(qs.len() * 2);
    let pos: Vec<(usize, f64)> = qs
        .iter()
        .map(|&q| {
            let h = (n - 1) as f64 * q;
            let lo = (h.floor() as usize).min(n - 1);
            let frac = h - lo as f64;
            ranks.push(lo);
            if frac > 0.0 && lo + 1 < n {
                ranks.push(lo + 1);
            }
            (lo, frac)
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut picked = vec![values[0]; ranks.len()];
    multi_select(values, 0, &ranks, &mut picked, cmp);
    let at = |r: usize| to_f64(picked[ranks.binary_search(&r).expect("rank was selected")]);
    pos.into_iter()
        .map(|(lo, frac)| {
            let lower = at(lo);
            if frac > 0.0 && lo + 1 < n {
                lower + frac * (at(lo + 1) - lower)
            } else {
                lower
            }
        })
        .collect()
}

/// Puts the values of the (sorted, distinct) `ranks` of the whole array into `out`; `v` is the
/// part of the array starting at rank `offset`, holding exactly the values of those ranks.
fn multi_select<T: Copy>(
    v: &mut [T],
    offset: usize,
    ranks: &[usize],
    out: &mut [T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering + Copy,
) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let r = ranks[mid] - offset;
    let (left, nth, right) = v.select_nth_unstable_by(r, cmp);
    out[mid] = *nth;
    let (out_l, out_r) = out.split_at_mut(mid);
    multi_select(left, offset, &ranks[..mid], out_l, cmp);
    multi_select(
        right,
        offset + r + 1,
        &ranks[mid + 1..],
        &mut out_r[1..],
        cmp,
    );
}

/// The value at quantile `q` of `values` (see [`percentiles`]); `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    (!values.is_empty()).then(|| percentiles(values, &[q])[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy.percentile(x, q) with the default linear method, on a sorted copy.
    fn reference(values: &[f64], q: f64) -> f64 {
        let mut s = values.to_vec();
        s.sort_by(f64::total_cmp);
        let h = (s.len() - 1) as f64 * q;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(s.len() - 1);
        s[lo] + (h - lo as f64) * (s[hi] - s[lo])
    }

    #[test]
    fn hand_computed_percentiles_of_four_values() {
        // numpy.percentile([10, 20, 30, 40], [25, 50, 75, 90, 95, 99]) =
        // [17.5, 25.0, 32.5, 37.0, 38.5, 39.7]
        let mut v = vec![40.0, 10.0, 30.0, 20.0];
        let s = Stats::of(&mut v);
        assert_eq!(s.count, 4);
        assert_eq!(s.min, Some(10.0));
        assert_eq!(s.p25, Some(17.5));
        assert_eq!(s.p50, Some(25.0));
        assert_eq!(s.p75, Some(32.5));
        assert_eq!(s.max, Some(40.0));
        assert_eq!(s.mean, Some(25.0));
        // population std: sqrt(((15^2 + 5^2) * 2) / 4) = sqrt(125)
        assert_eq!(s.std, Some(125f64.sqrt()));
        assert!((s.p90.unwrap() - 37.0).abs() < 1e-12);
        assert!((s.p95.unwrap() - 38.5).abs() < 1e-12);
        assert!((s.p99.unwrap() - 39.7).abs() < 1e-12);
    }

    #[test]
    fn nanosecond_stats_equal_stats_of_the_milliseconds() {
        let ns: Vec<i64> = (0..1001)
            .map(|k| (k * 7_919_003) % 50_000_017 + 1_000)
            .collect();
        let mut ms: Vec<f64> = ns.iter().map(|&x| x as f64 / 1e6).collect();
        let a = Stats::of_ns_as_ms(&mut ns.clone());
        let b = Stats::of(&mut ms);
        for k in Stats::KEYS {
            let (x, y) = (a.get(k).unwrap(), b.get(k).unwrap());
            assert!((x - y).abs() <= 1e-12 * y.abs(), "{k}: {x} vs {y}");
        }
        assert_eq!((a.p50, a.p99, a.min, a.max), (b.p50, b.p99, b.min, b.max));
    }

    #[test]
    fn single_value_and_empty() {
        let s = Stats::of(&mut [7.5]);
        for k in [
            "min", "p25", "p50", "p75", "p90", "p95", "p99", "max", "mean",
        ] {
            assert_eq!(s.get(k), Some(7.5), "{k}");
        }
        assert_eq!(s.std, Some(0.0));
        let e = Stats::of(&mut []);
        assert_eq!(e.count, 0);
        assert!(Stats::KEYS[1..].iter().all(|k| e.get(k).is_none()));
    }

    #[test]
    fn matches_sorted_reference_on_pseudo_random_data_with_ties() {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for n in [2usize, 3, 5, 10, 99, 100, 101, 1000, 4097] {
            let vals: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // few distinct values for n large: many ties
                    ((x % 997) as f64) * 0.25
                })
                .collect();
            let qs = [0.99, 0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 0.333];
            let got = percentiles(&mut vals.clone(), &qs);
            for (q, g) in qs.iter().zip(got) {
                let want = reference(&vals, *q);
                assert!(
                    (g - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "n={n} q={q}: {g} vs {want}"
                );
            }
        }
    }
}

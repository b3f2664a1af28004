//! Token lengths drawn from a few percentiles (a Grafana P50/P70/P90/P99 row).
//!
//! The percentiles are knots `(q, value)` of a piecewise-linear inverse CDF; a length is
//! `F⁻¹(u)` for `u ~ U[0, 1)`, so exactly a fraction `q` of the draws falls at or below each
//! given percentile. The exports give only the upper half, so the lower half is completed by
//! mirroring every knot above the median in log space around it: `value(1-q) = P50² / value(q)`
//! (exact for a log-normal, the usual fit for LLM prompt and reply lengths, and what AIBrix
//! fits). Below the lowest and above the highest knot the first and last segments are
//! extended linearly to `u = 0` and `u = 1`. Lengths are at least 1 token.

/// Knots of one row: `(quantile in (0, 1), value)`, sorted by quantile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quantiles {
    q: Vec<f64>,
    v: Vec<f64>,
}

impl Quantiles {
    /// Builds the inverse CDF from the given percentiles (`q` in (0, 1), values in tokens).
    /// Errors when the values decrease with the quantile.
    pub(crate) fn new(mut knots: Vec<(f64, f64)>) -> Result<Self, String> {
        knots.sort_by(|a, b| a.0.total_cmp(&b.0));
        if knots.is_empty() {
            return Err("no percentiles".into());
        }
        for w in knots.windows(2) {
            if w[1].1 < w[0].1 {
                return Err(format!(
                    "percentiles decrease: P{} = {} but P{} = {}",
                    fmt_q(w[0].0),
                    w[0].1,
                    fmt_q(w[1].0),
                    w[1].1
                ));
            }
        }
        let median = knots
            .iter()
            .find(|k| (k.0 - 0.5).abs() < 1e-12)
            .map(|k| k.1);
        if let Some(m) = median
            && knots.iter().all(|k| k.0 >= 0.5)
        {
            let mirrored: Vec<(f64, f64)> = knots
                .iter()
                .filter(|k| k.0 > 0.5)
                .map(|&(q, v)| (1.0 - q, if v > 0.0 { m * m / v } else { m }))
                .collect();
            knots.extend(mirrored);
            knots.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        // Extend the end segments to u = 0 and u = 1.
        let (q, mut v): (Vec<f64>, Vec<f64>) = knots.into_iter().unzip();
        let mut qs = Vec::with_capacity(q.len() + 2);
        let n = q.len();
        let lo = if n >= 2 {
            v[0] - (v[1] - v[0]) / (q[1] - q[0]) * q[0]
        } else {
            v[0]
        };
        let hi = if n >= 2 {
            v[n - 1] + (v[n - 1] - v[n - 2]) / (q[n - 1] - q[n - 2]) * (1.0 - q[n - 1])
        } else {
            v[0]
        };
        qs.push(0.0);
        qs.extend(&q);
        qs.push(1.0);
        v.insert(0, lo.max(0.0).min(v[0]));
        v.push(hi.max(v[v.len() - 1]));
        Ok(Quantiles { q: qs, v })
    }

    /// `F⁻¹(u)` (tokens, not rounded).
    pub(crate) fn inverse(&self, u: f64) -> f64 {
        let i = self
            .q
            .partition_point(|&q| q <= u)
            .clamp(1, self.q.len() - 1);
        let (q0, q1, v0, v1) = (self.q[i - 1], self.q[i], self.v[i - 1], self.v[i]);
        if q1 <= q0 {
            v1
        } else {
            v0 + (v1 - v0) * (u - q0) / (q1 - q0)
        }
    }

    /// A length for `u ~ U[0,1)`, divided by `scale`, rounded, at least 1.
    pub(crate) fn draw(&self, u: f64, scale: f64) -> u32 {
        (self.inverse(u) / scale)
            .round()
            .clamp(1.0, u32::MAX as f64) as u32
    }
}

fn fmt_q(q: f64) -> String {
    let p = q * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round())
    } else {
        format!("{p}")
    }
}

/// Parses a percentile column name: `P50`, `p99`, `P99.9` -> 0.5, 0.99, 0.999.
pub(crate) fn percentile_column(name: &str) -> Option<f64> {
    let n = name.trim();
    let rest = n.strip_prefix('P').or_else(|| n.strip_prefix('p'))?;
    let p: f64 = rest.parse().ok()?;
    (p > 0.0 && p < 100.0).then_some(p / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_every_given_percentile_and_mirrors_the_lower_half() {
        let q = Quantiles::new(vec![
            (0.5, 400.0),
            (0.7, 500.0),
            (0.9, 1000.0),
            (0.99, 4000.0),
        ])
        .unwrap();
        assert!((q.inverse(0.5) - 400.0).abs() < 1e-9);
        assert!((q.inverse(0.7) - 500.0).abs() < 1e-9);
        assert!((q.inverse(0.9) - 1000.0).abs() < 1e-9);
        assert!((q.inverse(0.99) - 4000.0).abs() < 1e-9);
        // Mirrored: P30 = 400²/500 = 320, P10 = 160, P1 = 40.
        assert!((q.inverse(0.3) - 320.0).abs() < 1e-9);
        assert!((q.inverse(0.1) - 160.0).abs() < 1e-9);
        assert!((q.inverse(0.01) - 40.0).abs() < 1e-9);
        // Linear in between, extended at the ends, never decreasing.
        assert!((q.inverse(0.6) - 450.0).abs() < 1e-9);
        assert!(q.inverse(0.0) >= 0.0 && q.inverse(0.0) <= 40.0);
        assert!(q.inverse(0.999_999) > 4000.0);
        let mut prev = 0.0;
        for k in 0..=1000 {
            let x = q.inverse(k as f64 / 1000.0);
            assert!(x >= prev);
            prev = x;
        }
    }

    #[test]
    fn draws_follow_the_percentiles() {
        // P95 knot (completion files): 95% of draws at or below it.
        let q = Quantiles::new(vec![
            (0.5, 84.0),
            (0.7, 125.8),
            (0.95, 160.8),
            (0.99, 171.2),
        ])
        .unwrap();
        let n = 100_000;
        let draws: Vec<u32> = (0..n)
            .map(|i| q.draw((i as f64 + 0.5) / n as f64, 1.0))
            .collect();
        let frac = |x: f64| draws.iter().filter(|&&d| d as f64 <= x).count() as f64 / n as f64;
        assert!((frac(84.0) - 0.5).abs() < 0.005, "{}", frac(84.0));
        assert!((frac(160.8) - 0.95).abs() < 0.005, "{}", frac(160.8));
        assert!(draws.iter().all(|&d| d >= 1));
        // input/output scale divides.
        assert_eq!(q.draw(0.5, 2.0), 42);
    }

    #[test]
    fn degenerate_rows() {
        let q = Quantiles::new(vec![(0.5, 0.0), (0.7, 0.0), (0.9, 0.0), (0.99, 0.0)]).unwrap();
        assert_eq!(q.draw(0.3, 1.0), 1);
        let q = Quantiles::new(vec![(0.5, 7.0)]).unwrap();
        assert_eq!(q.draw(0.01, 1.0), 7);
        assert_eq!(q.draw(0.99, 1.0), 7);
        let e = Quantiles::new(vec![(0.5, 10.0), (0.9, 5.0)]).unwrap_err();
        assert!(e.contains("P50 = 10 but P90 = 5"), "{e}");
    }

    #[test]
    fn percentile_columns() {
        assert_eq!(percentile_column("P50"), Some(0.5));
        assert_eq!(percentile_column(" p99 "), Some(0.99));
        assert!((percentile_column("P99.9").unwrap() - 0.999).abs() < 1e-12);
        assert_eq!(percentile_column("Time"), None);
        assert_eq!(percentile_column("P100"), None);
    }
}

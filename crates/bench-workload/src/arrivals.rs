//! Arrival processes over a (piecewise-constant) rate curve.
//!
//! Every process is a renewal process with unit-mean gaps in *operational time*
//! `u = Λ(t) = ∫ rate`, mapped back to wall time with `t = Λ⁻¹(u)` (the time-rescaling
//! theorem). For a constant rate this is the usual process with mean gap `1/qps`; under a
//! rate curve the expected number of arrivals in any interval is the integral of the rate over
//! it, for every process. `exact_counts` instead fixes each segment's count by rounding the
//! cumulative integral with carry, so the total is the rounded integral.

use bench_config::workload::Arrival;
use rand::RngExt;
use rand::distr::Distribution;
use rand::rngs::StdRng;

/// A rate that is constant on consecutive segments `[start, end)` (ms), in requests per ms.
#[derive(Debug, Clone)]
pub(crate) struct RateCurve {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    end: f64,
    rate: f64,
    /// Λ at `start`.
    cum: f64,
}

/// [`bench_config::MAX_REQUESTS`] as a rate curve's expected count.
pub(crate) const MAX_REQUESTS: f64 = bench_config::MAX_REQUESTS as f64;

impl RateCurve {
    /// Refuses a curve that expects more than [`MAX_REQUESTS`] arrivals (or a non-finite
    /// number), before any is drawn; `keys` names the config keys or file that set the rate.
    pub(crate) fn check_size(&self, keys: &str) -> Result<(), crate::WorkloadError> {
        let total = self.total();
        if total <= MAX_REQUESTS {
            return Ok(());
        }
        Err(crate::WorkloadError::Input {
            key: keys.into(),
            msg: format!(
                "the rate and duration ask for {total:.4e} requests, more than the {MAX_REQUESTS:.0} \
                 one workload may hold (lower the rate, the duration or the file's values)"
            ),
        })
    }

    /// A curve from `(start_ms, end_ms, requests_per_second)` segments, in order and
    /// non-overlapping. Negative or non-finite rates count as 0.
    pub(crate) fn new(segments: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        let mut cum = 0.0;
        let segments = segments
            .into_iter()
            .map(|(start, end, rps)| {
                let rate = if rps.is_finite() && rps > 0.0 {
                    rps / 1000.0
                } else {
                    0.0
                };
                let s = Segment {
                    start,
                    end,
                    rate,
                    cum,
                };
                cum += rate * (end - start);
                s
            })
            .collect();
        RateCurve { segments }
    }

    /// A constant rate over `[0, duration_ms)`.
    pub(crate) fn constant(rps: f64, duration_ms: f64) -> Self {
        RateCurve::new([(0.0, duration_ms, rps)])
    }

    /// Λ over the whole curve: the expected number of arrivals.
    pub(crate) fn total(&self) -> f64 {
        self.segments
            .last()
            .map_or(0.0, |s| s.cum + s.rate * (s.end - s.start))
    }

    /// Index of the segment holding time `t` (the last one for `t` past the end).
    pub(crate) fn segment_of(&self, t: f64) -> usize {
        self.segments
            .partition_point(|s| s.end <= t)
            .min(self.segments.len().saturating_sub(1))
    }

    /// Arrival times (ms, ascending) of `process` under this curve.
    pub(crate) fn arrivals(&self, process: Process, rng: &mut StdRng) -> Vec<f64> {
        let total = self.total();
        let mut out = Vec::with_capacity(total.ceil().min(1e8) as usize + 16);
        let mut u = process.first(rng);
        let mut seg = 0;
        while u < total {
            while seg + 1 < self.segments.len() && self.segments[seg + 1].cum <= u {
                seg += 1;
            }
            // Skip zero-rate segments (their cum equals the next one's).
            while self.segments[seg].rate == 0.0 && seg + 1 < self.segments.len() {
                seg += 1;
            }
            let s = self.segments[seg];
            let t = (s.start + (u - s.cum) / s.rate).min(s.end);
            out.push(t);
            u += process.gap(rng);
        }
        out
    }

    /// Arrival times with each segment's count fixed: `round(Λ(end)) - round(Λ(start))`,
    /// placed uniformly at random inside the segment (`random`) or evenly (`!random`).
    pub(crate) fn exact_count_arrivals(&self, random: bool, rng: &mut StdRng) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.total().round() as usize + 1);
        for s in &self.segments {
            let before = round_half_up(s.cum);
            let after = round_half_up(s.cum + s.rate * (s.end - s.start));
            let n = (after - before) as usize;
            let len = s.end - s.start;
            let first = out.len();
            for j in 0..n {
                let x = if random {
                    rng.random::<f64>()
                } else {
                    (j as f64 + 0.5) / n as f64
                };
                out.push(s.start + x * len);
            }
            out[first..].sort_by(f64::total_cmp);
        }
        out
    }
}

fn round_half_up(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

/// A renewal process with unit-mean gaps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Process {
    kind: Arrival,
    gamma: Option<statrs::distribution::Gamma>,
}

impl Process {
    /// The process `kind`; `burstiness` is the gamma shape.
    pub(crate) fn new(kind: Arrival, burstiness: f64) -> Self {
        let gamma = match kind {
            // Shape k, rate k: mean 1, coefficient of variation 1/sqrt(k).
            Arrival::Gamma => statrs::distribution::Gamma::new(burstiness, burstiness).ok(),
            _ => None,
        };
        Process { kind, gamma }
    }

    /// Operational time of the first arrival: 0 for fixed (the first request starts the run),
    /// one gap for the others (for Poisson that is exactly the stationary process).
    pub(crate) fn first(&self, rng: &mut StdRng) -> f64 {
        match self.kind {
            Arrival::Fixed => 0.0,
            _ => self.gap(rng),
        }
    }

    /// One gap (mean 1).
    pub(crate) fn gap(&self, rng: &mut StdRng) -> f64 {
        match self.kind {
            Arrival::Poisson => -(1.0 - rng.random::<f64>()).ln(),
            Arrival::Fixed => 1.0,
            Arrival::Uniform => 2.0 * rng.random::<f64>(),
            Arrival::Gamma => self.gamma.map_or(1.0, |g| g.sample(rng)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn count(kind: Arrival, shape: f64, qps: f64, dur_s: f64, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        RateCurve::constant(qps, dur_s * 1000.0).arrivals(Process::new(kind, shape), &mut rng)
    }

    /// Mean rate over a long run: the count must be within 4 standard deviations of
    /// qps*duration, where the count's variance is λ·CV² for a renewal process with gap
    /// coefficient of variation CV (Poisson 1, uniform 1/3, gamma 1/shape). A correct
    /// generator fails this with probability < 1e-4 per seed; a rate off by 2% fails surely.
    #[test]
    fn mean_rate_equals_target_for_every_process() {
        let qps = 100.0;
        let dur = 2000.0;
        let lambda = qps * dur;
        for (kind, shape, cv2) in [
            (Arrival::Poisson, 1.0, 1.0),
            (Arrival::Uniform, 1.0, 1.0 / 3.0),
            (Arrival::Gamma, 0.25, 4.0),
            (Arrival::Gamma, 4.0, 0.25),
        ] {
            for seed in [1, 2] {
                let n = count(kind, shape, qps, dur, seed).len() as f64;
                let tol = 4.0 * (lambda * cv2).sqrt();
                assert!(
                    (n - lambda).abs() <= tol,
                    "{kind:?} shape {shape} seed {seed}: {n} arrivals, expected {lambda} ± {tol}"
                );
                assert!(tol < 0.02 * lambda);
            }
        }
    }

    #[test]
    fn fixed_is_exact() {
        let t = count(Arrival::Fixed, 1.0, 5.0, 20.0, 0);
        assert_eq!(t.len(), 100);
        for (k, &x) in t.iter().enumerate() {
            assert!((x - 200.0 * k as f64).abs() < 1e-6, "{k}: {x}");
        }
        // Non-integral qps*duration: ceil(qps*duration) arrivals, the last before the end.
        let t = count(Arrival::Fixed, 1.0, 3.0, 1.5, 0);
        assert_eq!(t.len(), 5);
        assert!(*t.last().unwrap() < 1500.0);
    }

    #[test]
    fn burstiness_sets_the_gap_variability() {
        for (shape, want_cv) in [(0.25, 2.0), (1.0, 1.0), (4.0, 0.5)] {
            let t = count(Arrival::Gamma, shape, 100.0, 500.0, 7);
            let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
            let cv = var.sqrt() / mean;
            assert!(
                (mean - 10.0).abs() < 0.3,
                "shape {shape}: mean gap {mean} ms"
            );
            assert!(
                (cv - want_cv).abs() < 0.08 * want_cv,
                "shape {shape}: cv {cv}, want {want_cv}"
            );
        }
    }

    #[test]
    fn curve_follows_the_rate_and_skips_idle_segments() {
        // 10 s at 0, 10 s at 20 rps, 10 s at 0, 10 s at 5 rps.
        let c = RateCurve::new([
            (0.0, 10e3, 0.0),
            (10e3, 20e3, 20.0),
            (20e3, 30e3, 0.0),
            (30e3, 40e3, 5.0),
        ]);
        assert!((c.total() - 250.0).abs() < 1e-9);
        let t = c.arrivals(
            Process::new(Arrival::Fixed, 1.0),
            &mut StdRng::seed_from_u64(0),
        );
        assert_eq!(t.len(), 250);
        assert_eq!(t[0], 10e3);
        assert!(
            t.iter()
                .all(|&x| (10e3..20e3).contains(&x) || (30e3..40e3).contains(&x))
        );
        assert_eq!(t.iter().filter(|&&x| x >= 30e3).count(), 50);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn exact_counts_round_with_carry() {
        // 1.6, 2.2 and 3.667 rps over 15 s windows: 24, 33, 55.005 -> 24, 33, 55 (total 112).
        let c = RateCurve::new([
            (0.0, 15e3, 1.6),
            (15e3, 30e3, 2.2),
            (30e3, 45e3, 3.667),
            (45e3, 60e3, 0.0),
            (60e3, 75e3, 0.03),
        ]);
        for random in [true, false] {
            let t = c.exact_count_arrivals(random, &mut StdRng::seed_from_u64(3));
            let per: Vec<usize> = (0..5)
                .map(|i| {
                    t.iter()
                        .filter(|&&x| x >= i as f64 * 15e3 && x < (i + 1) as f64 * 15e3)
                        .count()
                })
                .collect();
            assert_eq!(per, [24, 33, 55, 0, 0]);
            assert!(t.windows(2).all(|w| w[0] <= w[1]));
        }
        let even = c.exact_count_arrivals(false, &mut StdRng::seed_from_u64(3));
        assert!((even[0] - 15e3 / 48.0).abs() < 1e-9);
    }
}

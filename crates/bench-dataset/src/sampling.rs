//! Seeds and the length distributions shared by the generators.
//!
//! Every random choice comes from a [`StdRng`] seeded with [`item_seed`]`(cfg.seed, stream,
//! a, b)`: one independent stream per generator and per item (prompt, session, prefix), so
//! an item's text does not depend on how many items came before it or on which thread made
//! it. All samplers draw uniforms from `next_u64` and invert CDFs, so they consume a fixed
//! number of draws and do not depend on rand's float or distribution internals.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::function::erf::{erfc, erfc_inv};

use bench_config::dataset::LengthDistribution;

/// Stream ids: one per generator (and per kind of item inside a generator).
pub(crate) mod stream {
    /// dataset.type=random, one per prompt.
    pub const RANDOM: u64 = 0x5241_4e44;
    /// synthetic_shared: per prompt (lengths and unique suffix).
    pub const SHARED_PROMPT: u64 = 0x5348_5052;
    /// synthetic_shared: the text of prefix (group, prefix).
    pub const SHARED_PREFIX: u64 = 0x5348_5046;
    /// synthetic_shared: the shuffle.
    pub const SHARED_SHUFFLE: u64 = 0x5348_5348;
    /// synthetic_multiturn: the session count.
    pub const MULTI_COUNT: u64 = 0x4d54_434e;
    /// synthetic_multiturn: per session (turn count, lengths, text).
    pub const MULTI_SESSION: u64 = 0x4d54_5353;
    /// synthetic_multiturn: the shared system prefix.
    pub const MULTI_PREFIX: u64 = 0x4d54_5046;
    /// dataset.use: the subset of one named dataset (a = the name's key).
    pub const MIX_SUBSET: u64 = 0x4d49_5853;
    /// dataset.use: the order of the mix.
    pub const MIX_ORDER: u64 = 0x4d49_584f;
    /// dataset.images: image `b` of record `a`.
    pub const IMAGES: u64 = 0x494d_4753;
}

/// The seed of item (`a`, `b`) of `stream` under the run seed.
pub(crate) fn item_seed(seed: u64, stream: u64, a: u64, b: u64) -> u64 {
    use bench_text::seed::{GOLDEN, mix64};
    let mut h = mix64(seed ^ GOLDEN);
    h = mix64(h ^ stream);
    h = mix64(h ^ a.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    mix64(h ^ b.wrapping_mul(0xA076_1D64_78BD_642F))
}

/// An RNG for item (`a`, `b`) of `stream`.
pub(crate) fn item_rng(seed: u64, stream: u64, a: u64, b: u64) -> StdRng {
    StdRng::seed_from_u64(item_seed(seed, stream, a, b))
}

/// A uniform in the open interval (0, 1), from one `next_u64`.
pub(crate) fn unit(rng: &mut impl Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal CDF.
fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile, for p in (0, 1).
fn phi_inv(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// A standard normal truncated to [a, b] (a < b, either may be infinite), from uniform `u`,
/// by inverting the CDF. Uses the lower tail for precision when the range is in the upper one.
fn trunc_std_normal(u: f64, a: f64, b: f64) -> f64 {
    if a > 0.0 {
        return -trunc_std_normal(1.0 - u, -b, -a);
    }
    let (pa, pb) = (phi(a), phi(b));
    if pb <= pa {
        // The range is so far in the tail that the CDF cannot tell its ends apart.
        return if a.is_finite() { a } else { b };
    }
    let p = (pa + u * (pb - pa)).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
    phi_inv(p).clamp(a, b)
}

/// Normal(mean, std) truncated to [lo, hi] (std 0: the mean clamped to the range).
pub(crate) fn truncated_normal(rng: &mut impl Rng, mean: f64, std: f64, lo: f64, hi: f64) -> f64 {
    let u = unit(rng);
    if std <= 0.0 || !std.is_finite() {
        return mean.clamp(lo, hi);
    }
    let z = trunc_std_normal(u, (lo - mean) / std, (hi - mean) / std);
    (mean + std * z).clamp(lo, hi)
}

/// Normal(mean, std), untruncated.
pub(crate) fn normal(rng: &mut impl Rng, mean: f64, std: f64) -> f64 {
    truncated_normal(rng, mean, std, f64::NEG_INFINITY, f64::INFINITY)
}

/// Pareto (type I) with the given mean and std parameter, as AIBrix's ParetoSampler sets it
/// up: r = std/mean, alpha = 2 + 1/r^2, x_m = mean*(alpha-1)/alpha. Its mean is `mean`; its
/// std is below `std` (the formula does not invert the Pareto variance). std 0: `mean`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pareto {
    alpha: f64,
    x_m: f64,
}

impl Pareto {
    /// From AIBrix's mean/std parameters.
    pub(crate) fn from_mean_std(mean: f64, std: f64) -> Self {
        if std <= 0.0 {
            return Pareto {
                alpha: f64::INFINITY,
                x_m: mean,
            };
        }
        let r = std / mean;
        let alpha = 2.0 + 1.0 / (r * r);
        Pareto {
            alpha,
            x_m: mean * (alpha - 1.0) / alpha,
        }
    }

    /// One draw (inverse CDF: x_m * U^(-1/alpha)).
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> f64 {
        let u = unit(rng);
        if self.alpha.is_infinite() {
            return self.x_m;
        }
        self.x_m * u.powf(-1.0 / self.alpha)
    }

    /// Shape parameter.
    #[cfg(test)]
    pub(crate) fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Scale parameter (the smallest value).
    #[cfg(test)]
    pub(crate) fn x_m(&self) -> f64 {
        self.x_m
    }
}

/// A token-length distribution with a mean, std and an inclusive [min, max] range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LengthSampler {
    pub(crate) dist: LengthDistribution,
    pub(crate) mean: f64,
    pub(crate) std: f64,
    pub(crate) min: u32,
    pub(crate) max: u32,
}

impl LengthSampler {
    /// One length. Always consumes exactly one uniform, whatever the shape, so the draws that
    /// follow do not depend on the distribution chosen.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> u32 {
        let (lo, hi) = (f64::from(self.min), f64::from(self.max));
        let u = unit(rng);
        let x = if self.std <= 0.0 {
            self.mean
        } else {
            match self.dist {
                LengthDistribution::Fixed => self.mean,
                LengthDistribution::Normal => {
                    self.mean
                        + self.std
                            * trunc_std_normal(
                                u,
                                (lo - self.mean) / self.std,
                                (hi - self.mean) / self.std,
                            )
                }
                LengthDistribution::Uniform => {
                    let w = self.std * 3f64.sqrt();
                    let (a, b) = ((self.mean - w).max(lo), (self.mean + w).min(hi));
                    if a >= b { self.mean } else { a + u * (b - a) }
                }
                LengthDistribution::Lognormal => {
                    let s2 = (1.0 + (self.std / self.mean).powi(2)).ln();
                    let (mu, s) = (self.mean.ln() - s2 / 2.0, s2.sqrt());
                    (mu + s * trunc_std_normal(u, (lo.ln() - mu) / s, (hi.ln() - mu) / s)).exp()
                }
            }
        };
        x.round().clamp(lo, hi) as u32
    }
}

/// Fisher-Yates shuffle of `v` driven by `rng`, with the same `unit`-based index draws on
/// every platform.
pub(crate) fn shuffle<T>(rng: &mut impl Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = ((unit(rng) * (i + 1) as f64) as usize).min(i);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        (m, v.sqrt())
    }

    #[test]
    fn seeds_differ_by_every_input_and_repeat() {
        let base = item_seed(1, 2, 3, 4);
        assert_eq!(base, item_seed(1, 2, 3, 4));
        let others = [
            item_seed(0, 2, 3, 4),
            item_seed(1, 0, 3, 4),
            item_seed(1, 2, 0, 4),
            item_seed(1, 2, 3, 0),
            item_seed(1, 2, 4, 3),
        ];
        for o in others {
            assert_ne!(o, base);
        }
    }

    #[test]
    fn normal_matches_mean_and_std() {
        let mut rng = item_rng(7, 1, 0, 0);
        let xs: Vec<f64> = (0..200_000)
            .map(|_| normal(&mut rng, 100.0, 15.0))
            .collect();
        let (m, s) = stats(&xs);
        assert!((m - 100.0).abs() < 0.2, "mean {m}");
        assert!((s - 15.0).abs() < 0.2, "std {s}");
    }

    #[test]
    fn truncated_normal_stays_in_range_and_handles_far_tails() {
        let mut rng = item_rng(7, 2, 0, 0);
        for _ in 0..10_000 {
            let x = truncated_normal(&mut rng, 3997.0, 17.0, 1.0, f64::INFINITY);
            assert!(x >= 1.0);
            let y = truncated_normal(&mut rng, 0.0, 1.0, 40.0, 41.0);
            assert!((40.0..=41.0).contains(&y), "{y}");
            let z = truncated_normal(&mut rng, 0.5, 0.3, 0.0, 1.0);
            assert!((0.0..=1.0).contains(&z));
        }
        // Truncation at 1 of Normal(0, 100): the half-normal mean is 100*sqrt(2/pi) ≈ 79.8.
        let xs: Vec<f64> = (0..100_000)
            .map(|_| truncated_normal(&mut rng, 0.0, 100.0, 0.0, f64::INFINITY))
            .collect();
        let (m, _) = stats(&xs);
        assert!((m - 79.79).abs() < 1.0, "half-normal mean {m}");
    }

    #[test]
    fn pareto_follows_aibrix_parameters() {
        let p = Pareto::from_mean_std(80.0, 472.0);
        let r: f64 = 472.0 / 80.0;
        assert!((p.alpha() - (2.0 + 1.0 / (r * r))).abs() < 1e-12);
        assert!((p.x_m() - 80.0 * (p.alpha() - 1.0) / p.alpha()).abs() < 1e-12);
        // A lighter tail, so the sample mean converges: mean 100, std 10 -> alpha 102.
        let p = Pareto::from_mean_std(100.0, 10.0);
        let mut rng = item_rng(3, 3, 0, 0);
        let xs: Vec<f64> = (0..100_000).map(|_| p.sample(&mut rng)).collect();
        assert!(xs.iter().all(|&x| x >= p.x_m()));
        let (m, _) = stats(&xs);
        assert!((m - 100.0).abs() < 0.1, "pareto mean {m}");
        let fixed = Pareto::from_mean_std(50.0, 0.0);
        assert_eq!(fixed.sample(&mut rng), 50.0);
    }

    #[test]
    fn length_samplers_match_their_moments_and_bounds() {
        let mut rng = item_rng(9, 9, 0, 0);
        for dist in [
            LengthDistribution::Normal,
            LengthDistribution::Uniform,
            LengthDistribution::Lognormal,
        ] {
            let s = LengthSampler {
                dist,
                mean: 1000.0,
                std: 100.0,
                min: 1,
                max: 1_000_000,
            };
            let xs: Vec<f64> = (0..100_000)
                .map(|_| f64::from(s.sample(&mut rng)))
                .collect();
            let (m, sd) = stats(&xs);
            assert!((m - 1000.0).abs() < 2.0, "{dist:?} mean {m}");
            assert!((sd - 100.0).abs() < 2.0, "{dist:?} std {sd}");
            let narrow = LengthSampler {
                dist,
                mean: 1000.0,
                std: 500.0,
                min: 900,
                max: 1100,
            };
            for _ in 0..1000 {
                let x = narrow.sample(&mut rng);
                assert!((900..=1100).contains(&x), "{dist:?} {x}");
            }
        }
        let fixed = LengthSampler {
            dist: LengthDistribution::Fixed,
            mean: 77.0,
            std: 50.0,
            min: 1,
            max: 100,
        };
        assert!((0..100).all(|_| fixed.sample(&mut rng) == 77));
        let zero_std = LengthSampler {
            dist: LengthDistribution::Normal,
            mean: 77.0,
            std: 0.0,
            min: 1,
            max: 100,
        };
        assert!((0..100).all(|_| zero_std.sample(&mut rng) == 77));
    }

    #[test]
    fn shuffle_is_a_permutation_and_seeded() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut item_rng(1, 1, 1, 1), &mut a);
        shuffle(&mut item_rng(1, 1, 1, 1), &mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }
}

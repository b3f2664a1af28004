//! AIBrix's fluctuation patterns: `value(t) = A·sin(2π·t/period) + B + N(0, σ²)`, optionally
//! never falling (`only_rise`: a running maximum).
//!
//! A pattern comes from a preset (AIBrix's `to_fluctuate_pattern_config`: A is a fraction of the
//! mean and the period is a number of periods over the run) or a pattern file
//! `{"fluctuate": A, "mean": B, "noise": σ, "period_len_ms": P, "only_rise": bool}` (AIBrix's
//! `user_to_synthetic_config`). Files may give `"periods": n` (periods over the run) instead of
//! `period_len_ms`, which is how the presets are written in config/patterns/.

use std::path::Path;

use bench_config::workload::PatternPreset;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use serde::Deserialize;

/// A pattern file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternFile {
    /// Amplitude A.
    pub fluctuate: f64,
    /// Mean B.
    pub mean: f64,
    /// Standard deviation of the Gaussian noise added to every step.
    pub noise: f64,
    /// Length of one period in ms.
    #[serde(default)]
    pub period_len_ms: Option<f64>,
    /// Number of periods over the run (instead of `period_len_ms`).
    #[serde(default)]
    pub periods: Option<f64>,
    /// Never decrease (running maximum).
    #[serde(default)]
    pub only_rise: bool,
}

/// A pattern ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    amplitude: f64,
    mean: f64,
    noise: f64,
    period: Period,
    only_rise: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Period {
    Ms(f64),
    OverRun(f64),
}

impl Pattern {
    /// AIBrix's preset `p` around `mean`.
    pub(crate) fn preset(p: PatternPreset, mean: f64) -> Self {
        let (a, periods, only_rise) = match p {
            PatternPreset::QuickRising => (0.5, 5.0, true),
            PatternPreset::SlowRising => (0.5, 0.25, true),
            PatternPreset::SlightFluctuation => (0.1, 1.0, false),
            PatternPreset::SevereFluctuation => (0.5, 12.0, false),
        };
        Pattern {
            amplitude: a * mean,
            mean,
            noise: 0.1,
            period: Period::OverRun(periods),
            only_rise,
        }
    }

    /// Reads a pattern file; errors are `path: message`.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = bench_types::jsonl::read_text(path)?;
        let f: PatternFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}: {e}", path.display(), e.line()))?;
        Self::from_file(&f).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub(crate) fn from_file(f: &PatternFile) -> Result<Self, String> {
        let period = match (f.period_len_ms, f.periods) {
            (Some(ms), None) if ms > 0.0 && ms.is_finite() => Period::Ms(ms),
            (None, Some(n)) if n > 0.0 && n.is_finite() => Period::OverRun(n),
            (Some(_), Some(_)) => {
                return Err("give either period_len_ms or periods, not both".into());
            }
            (None, None) => return Err("missing field `period_len_ms` (or `periods`)".into()),
            _ => return Err("period_len_ms / periods must be a positive number".into()),
        };
        if !(f.noise >= 0.0 && f.noise.is_finite() && f.mean.is_finite() && f.fluctuate.is_finite())
        {
            return Err("fluctuate, mean and noise must be finite numbers, noise >= 0".into());
        }
        Ok(Pattern {
            amplitude: f.fluctuate,
            mean: f.mean,
            noise: f.noise,
            period,
            only_rise: f.only_rise,
        })
    }

    /// The curve's value at the start of each of `steps` steps of `step_ms` over a run of
    /// `run_ms`, noise drawn from `rng`, with `round` applied before the running maximum.
    pub(crate) fn sample(
        &self,
        steps: usize,
        step_ms: f64,
        run_ms: f64,
        rng: &mut StdRng,
        round: bool,
    ) -> Vec<f64> {
        let period_ms = match self.period {
            Period::Ms(p) => p,
            Period::OverRun(n) => run_ms / n,
        };
        let noise = (self.noise > 0.0)
            .then(|| statrs::distribution::Normal::new(0.0, self.noise).expect("noise checked"));
        let mut prev = f64::NEG_INFINITY;
        (0..steps)
            .map(|k| {
                let t = k as f64 * step_ms;
                let mut v =
                    self.amplitude * (std::f64::consts::TAU * t / period_ms).sin() + self.mean;
                if let Some(n) = &noise {
                    v += n.sample(rng);
                }
                if round {
                    v = v.round();
                }
                if self.only_rise {
                    v = v.max(prev);
                    prev = v;
                }
                v
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn quiet(mut p: Pattern) -> Pattern {
        p.noise = 0.0;
        p
    }

    #[test]
    fn presets_match_aibrix_formulas() {
        // AIBrix: omega = 2*pi / (length / period); trend = A*sin(omega*t) + B with t the step.
        let n = 600;
        let mut rng = StdRng::seed_from_u64(0);
        for (preset, a, periods) in [
            (PatternPreset::QuickRising, 3.0, 5.0),
            (PatternPreset::SlowRising, 3.0, 0.25),
            (PatternPreset::SlightFluctuation, 0.6, 1.0),
            (PatternPreset::SevereFluctuation, 3.0, 12.0),
        ] {
            let p = quiet(Pattern::preset(preset, 6.0));
            let v = p.sample(n, 1000.0, n as f64 * 1000.0, &mut rng, false);
            let mut prev = f64::NEG_INFINITY;
            for (k, &x) in v.iter().enumerate() {
                let omega = std::f64::consts::TAU / (n as f64 / periods);
                let mut want = a * (omega * k as f64).sin() + 6.0;
                if p.only_rise {
                    want = want.max(prev);
                    prev = want;
                }
                assert!(
                    (x - want).abs() < 1e-9,
                    "{preset:?} step {k}: {x} vs {want}"
                );
            }
        }
        // quick_rising peaks at 1.5x mean a twentieth into the run and stays there.
        let v = quiet(Pattern::preset(PatternPreset::QuickRising, 6.0))
            .sample(n, 1000.0, 600e3, &mut rng, false);
        assert!((v[30] - 9.0).abs() < 1e-9 && (v[599] - 9.0).abs() < 1e-9);
        // slow_rising reaches its peak only at the end.
        let v = quiet(Pattern::preset(PatternPreset::SlowRising, 6.0))
            .sample(n, 1000.0, 600e3, &mut rng, false);
        assert!(v[300] < 8.2 && v[599] > 8.99);
    }

    #[test]
    fn aibrix_sample_file_and_periods_variant() {
        let f: PatternFile = serde_json::from_str(r#"{"fluctuate": 2, "mean": 6, "noise": 0.1, "period_len_ms": 300000, "only_rise": false}"#).unwrap();
        let p = Pattern::from_file(&f).unwrap();
        let v = quiet(p).sample(601, 1000.0, 600e3, &mut StdRng::seed_from_u64(0), false);
        assert!((v[75] - 8.0).abs() < 1e-9, "quarter period: {}", v[75]);
        assert!((v[300] - 6.0).abs() < 1e-9);
        let f: PatternFile =
            serde_json::from_str(r#"{"fluctuate": 1, "mean": 2, "noise": 0, "periods": 2}"#)
                .unwrap();
        let v = Pattern::from_file(&f).unwrap().sample(
            8,
            1.0,
            8.0,
            &mut StdRng::seed_from_u64(0),
            false,
        );
        assert!((v[1] - 3.0).abs() < 1e-9 && (v[5] - 3.0).abs() < 1e-9);
        for bad in [
            r#"{"fluctuate": 1, "mean": 2, "noise": 0}"#,
            r#"{"fluctuate": 1, "mean": 2, "noise": 0, "periods": 1, "period_len_ms": 5}"#,
            r#"{"fluctuate": 1, "mean": 2, "noise": -1, "periods": 1}"#,
        ] {
            let f: PatternFile = serde_json::from_str(bad).unwrap();
            assert!(Pattern::from_file(&f).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_str::<PatternFile>(
                r#"{"fluctuate": 1, "mean": 2, "noise": 0, "periods": 1, "typo": 1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn noise_has_the_given_std_and_only_rise_never_falls() {
        let f = PatternFile {
            fluctuate: 0.0,
            mean: 100.0,
            noise: 5.0,
            period_len_ms: Some(1000.0),
            periods: None,
            only_rise: false,
        };
        let v = Pattern::from_file(&f).unwrap().sample(
            20_000,
            1.0,
            20e3,
            &mut StdRng::seed_from_u64(4),
            false,
        );
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(
            (m - 100.0).abs() < 0.2 && (sd - 5.0).abs() < 0.15,
            "mean {m} sd {sd}"
        );
        let p = Pattern {
            only_rise: true,
            ..Pattern::preset(PatternPreset::SevereFluctuation, 1024.0)
        };
        let v = p.sample(500, 1000.0, 500e3, &mut StdRng::seed_from_u64(4), true);
        assert!(v.windows(2).all(|w| w[1] >= w[0]));
        assert!(v.iter().all(|x| x.fract() == 0.0));
    }

    #[test]
    fn shipped_preset_files_are_the_presets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/patterns");
        for (name, preset) in [
            ("quick_rising", PatternPreset::QuickRising),
            ("slow_rising", PatternPreset::SlowRising),
            ("slight_fluctuation", PatternPreset::SlightFluctuation),
            ("severe_fluctuation", PatternPreset::SevereFluctuation),
        ] {
            let f = Pattern::load(&dir.join(format!("{name}.json"))).unwrap();
            let p = Pattern::preset(preset, 6.0);
            assert!(
                (f.amplitude - p.amplitude).abs() < 1e-12 && f.mean == p.mean && f.noise == p.noise,
                "{name}"
            );
            assert_eq!((f.period, f.only_rise), (p.period, p.only_rise), "{name}");
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            Pattern::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

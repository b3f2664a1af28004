//! `synthetic`: AIBrix's fluctuating curves for the request rate, the prompt length and the
//! completion length, one value per `interval_ms` step over `duration_ms`.
//!
//! The rate curve drives the arrival process (in operational time, so the expected count in a
//! step is rate x step); each request takes the prompt and completion length of its step.
//! Differences from AIBrix, on purpose: the rate is not rounded to an integer (a 0.5 rps curve
//! stays 0.5 rps), and steps are indexed by `interval_ms` (AIBrix indexed a per-interval list
//! by seconds, which is wrong for any other interval).

use std::path::Path;

use bench_config::Config;
use bench_config::workload::PatternPreset;

use crate::WorkloadError;
use crate::arrivals::{Process, RateCurve};
use crate::pattern::Pattern;
use crate::plan::{Demand, Generated, Want};
use crate::seeds;

pub(crate) fn generate(cfg: &Config) -> Result<Generated, WorkloadError> {
    let w = &cfg.workload;
    let s = &w.synthetic;
    let mut g = Generated::default();
    let mut pick = |key: &'static str,
                    file: &Option<String>,
                    preset: Option<PatternPreset>,
                    mean: f64|
     -> Result<Option<Pattern>, WorkloadError> {
        if let Some(f) = file {
            g.inputs.push((key.to_string(), f.into()));
            return Pattern::load(Path::new(f))
                .map(Some)
                .map_err(|msg| WorkloadError::Input {
                    key: key.into(),
                    msg,
                });
        }
        Ok(preset.map(|p| Pattern::preset(p, mean)))
    };
    let traffic = pick(
        "workload.synthetic.traffic_file",
        &s.traffic_file,
        s.traffic_pattern,
        s.traffic_mean,
    )?
    .ok_or_else(|| WorkloadError::Input {
        key: "workload.synthetic.traffic_pattern".into(),
        msg: "needs a preset or a traffic_file".into(),
    })?;
    let prompt = pick(
        "workload.synthetic.prompt_len_file",
        &s.prompt_len_file,
        s.prompt_len_pattern,
        s.prompt_len_mean,
    )?;
    let completion = pick(
        "workload.synthetic.completion_len_file",
        &s.completion_len_file,
        s.completion_len_pattern,
        s.completion_len_mean,
    )?;

    let dur = w.duration_ms as f64;
    let step = w.interval_ms as f64;
    if dur / step > crate::arrivals::MAX_REQUESTS {
        return Err(WorkloadError::Input {
            key: "workload.interval_ms".into(),
            msg: format!(
                "workload.duration_ms / workload.interval_ms = {:.4e} pattern steps: too many",
                dur / step
            ),
        });
    }
    let steps = (dur / step).ceil() as usize;
    let mut rng = seeds::rng(cfg.seed, seeds::PATTERN);
    let rates = traffic.sample(steps, step, dur, &mut rng, false);
    let prompt_lens = prompt.map(|p| p.sample(steps, step, dur, &mut rng, true));
    let completion_lens = completion.map(|p| p.sample(steps, step, dur, &mut rng, true));
    let curve = RateCurve::new(
        rates
            .iter()
            .enumerate()
            .map(|(k, &r)| (k as f64 * step, ((k + 1) as f64 * step).min(dur), r)),
    );
    curve.check_size("workload.synthetic.traffic_mean or traffic_file")?;
    let times = curve.arrivals(
        Process::new(s.arrival, s.burstiness),
        &mut seeds::rng(cfg.seed, seeds::ARRIVALS),
    );
    let to_len = |v: f64| v.clamp(1.0, u32::MAX as f64) as u32;
    g.demands = times
        .into_iter()
        .map(|t_ms| {
            let k = curve.segment_of(t_ms);
            Demand {
                t_ms,
                want: prompt_lens
                    .as_ref()
                    .map_or(Want::AsIs, |l| Want::Length(to_len(l[k]))),
                output_length: completion_lens.as_ref().map(|l| to_len(l[k])),
            }
        })
        .collect();
    let (lo, hi) = rates
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &r| {
            (a.min(r.max(0.0)), b.max(r.max(0.0)))
        });
    g.stat("duration_ms", w.duration_ms);
    g.stat("steps", steps as u64);
    g.stat("expected_requests", curve.total());
    g.stat("rate_min_rps", lo);
    g.stat("rate_max_rps", hi);
    Ok(g)
}

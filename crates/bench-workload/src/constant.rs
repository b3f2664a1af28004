//! `constant`: a target QPS for `duration_ms` with an arrival process.

use bench_config::Config;
use bench_config::workload::{Ramp, RampShape};

use crate::arrivals::{Process, RateCurve};
use crate::plan::{Demand, Generated, Want};
use crate::seeds;

pub(crate) fn generate(cfg: &Config) -> Result<Generated, crate::WorkloadError> {
    let w = &cfg.workload;
    let c = &w.constant;
    let process = Process::new(c.arrival, c.burstiness);
    let rng = &mut seeds::rng(cfg.seed, seeds::ARRIVALS);
    let times = match w.num_requests {
        // exactly n arrivals of the process at the target rate, however long they take
        Some(n) => {
            let per_ms = c.target_qps / 1000.0;
            let mut u = process.first(rng);
            let mut t = Vec::with_capacity(n as usize);
            for _ in 0..n {
                t.push(u / per_ms);
                u += process.gap(rng);
            }
            t
        }
        None => {
            let curve = match &c.ramp {
                Some(r) => ramp_curve(r, c.target_qps, w.duration_ms as f64),
                None => RateCurve::constant(c.target_qps, w.duration_ms as f64),
            };
            curve.check_size("workload.constant.target_qps")?;
            curve.arrivals(process, rng)
        }
    };
    let want = c.prompt_length.map_or(Want::AsIs, Want::Length);
    let mut g = Generated {
        demands: times
            .into_iter()
            .map(|t_ms| Demand {
                t_ms,
                want: want.clone(),
                output_length: c.output_length,
            })
            .collect(),
        ..Default::default()
    };
    match w.num_requests {
        Some(n) => {
            g.stat("requests", n);
        }
        None => {
            g.stat("duration_ms", w.duration_ms);
            g.stat(
                "expected_requests",
                c.target_qps * w.duration_ms as f64 / 1000.0,
            );
        }
    }
    Ok(g)
}

/// Width of the steps a ramp is drawn with, ms: each step runs at the ramp's exact average rate
/// over it, so the expected count of every step, and of the whole ramp, is the ramp's integral.
const RAMP_STEP_MS: f64 = 100.0;

/// The rate of a ramp `start` -> `target` over `len` ms, averaged over `[a, b)` (ms into it).
fn ramp_average(shape: RampShape, start: f64, target: f64, len: f64, a: f64, b: f64) -> f64 {
    match shape {
        RampShape::Linear => {
            let at = |t: f64| start + (target - start) * t / len;
            (at(a) + at(b)) / 2.0
        }
        RampShape::Exponential => {
            // r(t) = start * e^(k t), k = ln(target / start) / len
            let k = (target / start).ln() / len;
            if k.abs() < 1e-12 {
                return start;
            }
            start * ((k * b).exp() - (k * a).exp()) / (k * (b - a))
        }
    }
}

/// The rate curve of a ramped constant workload: up over `ramp_s`, the target, down over
/// `down_s`.
fn ramp_curve(r: &Ramp, target: f64, duration_ms: f64) -> RateCurve {
    let up = (r.ramp_s * 1000.0).min(duration_ms);
    let down = (r.down_s * 1000.0).min(duration_ms - up);
    let mut segs = Vec::new();
    let steps = |from: f64, len: f64, lo: f64, hi: f64, segs: &mut Vec<(f64, f64, f64)>| {
        let n = (len / RAMP_STEP_MS).ceil().max(1.0) as usize;
        for i in 0..n {
            let a = len * i as f64 / n as f64;
            let b = len * (i + 1) as f64 / n as f64;
            segs.push((from + a, from + b, ramp_average(r.shape, lo, hi, len, a, b)));
        }
    };
    if up > 0.0 {
        steps(0.0, up, r.start_qps, target, &mut segs);
    }
    let hold_end = duration_ms - down;
    if hold_end > up {
        segs.push((up, hold_end, target));
    }
    if down > 0.0 {
        steps(hold_end, down, target, r.start_qps, &mut segs);
    }
    RateCurve::new(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_integrate_to_their_exact_counts() {
        // linear 2 -> 10 req/s over 10 s, hold 10 s, down 10 -> 2 over 5 s: 60 + 100 + 30
        let r = Ramp {
            shape: RampShape::Linear,
            start_qps: 2.0,
            ramp_s: 10.0,
            down_s: 5.0,
        };
        let c = ramp_curve(&r, 10.0, 25_000.0);
        assert!((c.total() - 190.0).abs() < 1e-9, "{}", c.total());
        // exponential 1 -> 16 req/s over 4 s: the integral of e^(k t), k = ln 16 / 4 s, is
        // (16 - 1) / k = 60 / ln 16 = 21.64 requests
        let r = Ramp {
            shape: RampShape::Exponential,
            start_qps: 1.0,
            ramp_s: 4.0,
            down_s: 0.0,
        };
        let c = ramp_curve(&r, 16.0, 4_000.0);
        let want = 60.0 / 16f64.ln();
        assert!((c.total() - want).abs() < 1e-9, "{} vs {want}", c.total());
        // the workload itself: fixed arrivals follow the ramp second by second
        let mut cfg = Config::default();
        cfg.workload.duration_ms = 25_000;
        cfg.workload.constant.target_qps = 10.0;
        cfg.workload.constant.arrival = bench_config::workload::Arrival::Fixed;
        cfg.workload.constant.ramp = Some(Ramp {
            shape: RampShape::Linear,
            start_qps: 2.0,
            ramp_s: 10.0,
            down_s: 5.0,
        });
        cfg.validate().unwrap();
        let g = generate(&cfg).unwrap();
        let t: Vec<f64> = g.demands.iter().map(|d| d.t_ms).collect();
        assert!((t.len() as i64 - 190).abs() <= 1, "{}", t.len());
        let per_s = |a: f64, b: f64| t.iter().filter(|&&x| x >= a * 1e3 && x < b * 1e3).count();
        // expected: 2.4 in the first second, 9.6 in the tenth, 10 a second on hold, 2.8 in the last
        assert!((2..=3).contains(&per_s(0.0, 1.0)), "{}", per_s(0.0, 1.0));
        assert!((9..=10).contains(&per_s(9.0, 10.0)), "{}", per_s(9.0, 10.0));
        assert_eq!(per_s(12.0, 17.0), 50);
        assert!(
            (2..=3).contains(&per_s(24.0, 25.0)),
            "{}",
            per_s(24.0, 25.0)
        );
        // a ramp longer than the run, or with num_requests, is refused naming the key
        cfg.workload.constant.ramp.as_mut().unwrap().ramp_s = 30.0;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.contains("workload.constant.ramp") && e.contains("longer than"),
            "{e}"
        );
        // the rate at the end of the ramp is the target, within one step
        let last = ramp_average(RampShape::Linear, 2.0, 10.0, 10_000.0, 9_900.0, 10_000.0);
        assert!((last - 9.96).abs() < 1e-9);
    }
}

//! `constant`: a target QPS for `duration_ms` with an arrival process.

use bench_config::Config;

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
            let curve = RateCurve::constant(c.target_qps, w.duration_ms as f64);
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

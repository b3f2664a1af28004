//! `constant`: a target QPS for `duration_ms` with an arrival process.

use bench_config::Config;

use crate::arrivals::{Process, RateCurve};
use crate::plan::{Demand, Generated, Want};
use crate::seeds;

pub(crate) fn generate(cfg: &Config) -> Result<Generated, crate::WorkloadError> {
    let w = &cfg.workload;
    let c = &w.constant;
    let curve = RateCurve::constant(c.target_qps, w.duration_ms as f64);
    curve.check_size("workload.constant.target_qps")?;
    let times = curve.arrivals(
        Process::new(c.arrival, c.burstiness),
        &mut seeds::rng(cfg.seed, seeds::ARRIVALS),
    );
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
    g.stat("duration_ms", w.duration_ms);
    g.stat("expected_requests", curve.total());
    Ok(g)
}

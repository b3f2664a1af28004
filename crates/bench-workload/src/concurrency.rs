//! `concurrency`: a closed loop. The header says `closed_loop` with the concurrency; every
//! request has timestamp 0 (they share one entry) and the order in the file is the send order.

use bench_config::Config;
use bench_types::LoopMode;

use crate::plan::{Demand, Generated, Want};
use crate::prompts::Pool;

pub(crate) fn generate(cfg: &Config, pool: Option<&Pool>) -> Generated {
    let c = &cfg.workload.concurrency;
    let n = cfg
        .workload
        .num_requests
        .or(c.num_requests)
        .unwrap_or_else(|| pool.map_or(0, |p| p.num_prompts() as u64));
    let want = c.prompt_length.map_or(Want::AsIs, Want::Length);
    Generated {
        demands: (0..n)
            .map(|_| Demand {
                t_ms: 0.0,
                want: want.clone(),
                output_length: c.output_length,
            })
            .collect(),
        mode: LoopMode::ClosedLoop,
        concurrency: Some(c.concurrency),
        ..Default::default()
    }
}

//! Goodput: measured requests that meet every SLO of `analysis.slo`.
//!
//! A request meets
//! - `ttft_ms` when it has a first token no later than the SLO (no first token: not met);
//! - `tpot_ms` when its TPOT is within the SLO, or it has no TPOT (fewer than 2 output
//!   tokens: nothing after the first token can be late; vLLM counts these as TPOT 0);
//! - `itl_ms` when its largest inter-token gap is within the SLO, or it has fewer than 2 chunks
//!   (DistServe/vLLM-style per-request check: one slow gap breaks the request);
//! - `e2el_ms` when its end-to-end latency is within the SLO.
//!
//! Failed requests (http_error, timeout, transport_error) meet no SLO: they count in the
//! attainment's denominator. Cancelled and not_sent rows were stopped by the user, not the
//! server, and count nowhere.

use bench_config::analysis::SloConfig;
use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;

/// The SLOs and who met them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Goodput {
    /// analysis.slo.ttft_ms.
    pub ttft_ms: Option<f64>,
    /// analysis.slo.tpot_ms.
    pub tpot_ms: Option<f64>,
    /// analysis.slo.itl_ms.
    pub itl_ms: Option<f64>,
    /// analysis.slo.e2el_ms.
    pub e2el_ms: Option<f64>,
    /// Measured requests meeting every SLO given (null when none is given).
    pub good_requests: Option<u64>,
    /// good_requests / (measured + failed requests) (null when no SLO is given or nothing ran).
    pub attainment: Option<f64>,
    /// Measured requests meeting the TTFT SLO.
    pub met_ttft: Option<u64>,
    /// Measured requests meeting the TPOT SLO.
    pub met_tpot: Option<u64>,
    /// Measured requests meeting the ITL SLO.
    pub met_itl: Option<u64>,
    /// Measured requests meeting the E2EL SLO.
    pub met_e2el: Option<u64>,
}

/// Per measured row (in `a.measured` order): whether it meets every SLO.
pub fn good_flags(a: &Analysis, slo: &SloConfig) -> Vec<bool> {
    a.measured
        .iter()
        .map(|&i| checks(a, slo, i).iter().all(|c| c.unwrap_or(true)))
        .collect()
}

/// Whether row `i` meets each SLO (ttft, tpot, itl, e2el); None for an SLO not given.
fn checks(a: &Analysis, slo: &SloConfig, i: usize) -> [Option<bool>; 4] {
    let d = &a.rec.derived;
    let within = |v: f64, limit: f64| v <= limit;
    [
        slo.ttft_ms
            .map(|l| !d.ttft_ms[i].is_nan() && within(d.ttft_ms[i], l)),
        slo.tpot_ms
            .map(|l| d.tpot_ms[i].is_nan() || within(d.tpot_ms[i], l)),
        slo.itl_ms
            .map(|l| a.itl.max_ms[i].is_nan() || within(a.itl.max_ms[i], l)),
        slo.e2el_ms.map(|l| within(d.e2el_ms[i], l)),
    ]
}

/// Evaluates `slo` over the measured rows; `failed` is the number of failed requests.
pub fn evaluate(a: &Analysis, slo: &SloConfig, failed: u64) -> Goodput {
    let mut out = Goodput {
        ttft_ms: slo.ttft_ms,
        tpot_ms: slo.tpot_ms,
        itl_ms: slo.itl_ms,
        e2el_ms: slo.e2el_ms,
        ..Goodput::default()
    };
    if !slo.any() {
        return out;
    }
    let mut met = [0u64; 4];
    let mut good = 0u64;
    for &i in &a.measured {
        let c = checks(a, slo, i);
        for (m, v) in met.iter_mut().zip(c) {
            *m += u64::from(v == Some(true));
        }
        good += u64::from(c.iter().all(|v| v.unwrap_or(true)));
    }
    let given = [slo.ttft_ms, slo.tpot_ms, slo.itl_ms, slo.e2el_ms].map(|s| s.is_some());
    let pick = |k: usize| given[k].then_some(met[k]);
    out.met_ttft = pick(0);
    out.met_tpot = pick(1);
    out.met_itl = pick(2);
    out.met_e2el = pick(3);
    out.good_requests = Some(good);
    let denom = a.measured.len() as u64 + failed;
    out.attainment = (denom > 0).then(|| good as f64 / denom as f64);
    out
}

/// Short text of the SLOs given, e.g. `ttft<=200ms, tpot<=50ms`.
pub fn describe(g: &Goodput) -> String {
    let parts: Vec<String> = [
        ("ttft", g.ttft_ms),
        ("tpot", g.tpot_ms),
        ("itl", g.itl_ms),
        ("e2el", g.e2el_ms),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}<={v}ms")))
    .collect();
    parts.join(", ")
}

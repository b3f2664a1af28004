//! `analysis.*`: metrics, goodput, plots, report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// `analysis.slo`: service-level objectives in ms; a request is "good" when it meets all given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Time to first token, ms.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub ttft_ms: Option<f64>,
    /// Time per output token, ms.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub tpot_ms: Option<f64>,
    /// Largest inter-token latency of the request, ms.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub itl_ms: Option<f64>,
    /// End-to-end latency, ms.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub e2el_ms: Option<f64>,
}

/// `analysis`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// SLOs for goodput.
    pub slo: SloConfig,
    /// Width of the time-series bins, seconds.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub bin_s: f64,
    /// Number of bins of the input/output length distributions.
    #[schemars(range(min = 1))]
    pub length_bins: u32,
    /// If dispatch lag p99 exceeds this (ms), the summary says the client could not keep the
    /// schedule and latencies are suspect.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub max_dispatch_lag_ms: f64,
    /// Write SVG and PNG plots.
    pub plots: bool,
    /// Write report.html.
    pub report: bool,
    /// Print the summary table at the end of the stage.
    pub print_summary: bool,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            slo: SloConfig::default(),
            bin_s: 1.0,
            length_bins: 10,
            max_dispatch_lag_ms: 5.0,
            plots: true,
            report: true,
            print_summary: true,
        }
    }
}

impl AnalysisConfig {
    pub(crate) fn validate(&self, _e: &mut Errors) {}
}

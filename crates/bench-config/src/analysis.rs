//! `analysis.*`: metrics, goodput, plots, report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// `analysis.slo`: service-level objectives in ms; a request is "good" when it meets all given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Time to first token, ms (a request without a first token does not meet it).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub ttft_ms: Option<f64>,
    /// Time per output token, ms (met by requests with fewer than 2 output tokens).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub tpot_ms: Option<f64>,
    /// Largest inter-token latency of the request, ms (met by requests with fewer than 2 chunks).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub itl_ms: Option<f64>,
    /// End-to-end latency, ms.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub e2el_ms: Option<f64>,
}

impl SloConfig {
    /// Whether any SLO is given.
    pub fn any(&self) -> bool {
        self.ttft_ms.is_some()
            || self.tpot_ms.is_some()
            || self.itl_ms.is_some()
            || self.e2el_ms.is_some()
    }
}

/// Per-request fields `analysis.pairs` may name (Bud's field1_vs_field2 names, plus a few).
pub const PAIR_FIELDS: [&str; 11] = [
    "ttft",
    "tpot",
    "latency",
    "prompt_len",
    "output_len",
    "req_output_throughput",
    "itl",
    "itl_max",
    "ttfb",
    "dispatch_lag",
    "in_flight",
];

/// `analysis`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// SLOs for goodput.
    pub slo: SloConfig,
    /// Width of the time-series bins, seconds.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub bin_s: f64,
    /// Number of bins of the input/output length distributions (and of the `pairs` tables).
    #[schemars(range(min = 1, max = 1000))]
    pub length_bins: u32,
    /// If dispatch lag p99 (not counting time held by a concurrency cap or a session's previous
    /// turn) exceeds this (ms), the summary says the client could not keep the schedule and
    /// latencies are suspect.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub max_dispatch_lag_ms: f64,
    /// Field pairs `x:y` to tabulate (y by bins of x) and plot as scatter plots. Fields: ttft,
    /// tpot, latency, prompt_len, output_len, req_output_throughput, itl (the request's mean
    /// ITL), itl_max, ttfb, dispatch_lag, in_flight (requests in flight when it was sent).
    pub pairs: Vec<String>,
    /// Requests drawn in the Gantt timeline: the first this many sent (contiguous, so overlaps
    /// stay visible).
    #[schemars(range(min = 1))]
    pub gantt_max_requests: u32,
    /// Write requests.csv (one row per request with its metrics).
    pub requests_csv: bool,
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
            pairs: vec![
                "prompt_len:ttft".into(),
                "output_len:latency".into(),
                "in_flight:tpot".into(),
            ],
            gantt_max_requests: 400,
            requests_csv: true,
            plots: true,
            report: true,
            print_summary: true,
        }
    }
}

impl AnalysisConfig {
    /// The pairs of `pairs`, split at `:` (only valid after [`Self::validate`]).
    pub fn pair_fields(&self) -> Vec<(&str, &str)> {
        self.pairs
            .iter()
            .filter_map(|p| p.split_once(':'))
            .collect()
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        for (i, p) in self.pairs.iter().enumerate() {
            let key = format!("analysis.pairs[{i}]");
            match p.split_once(':') {
                None => e.push(&key, format!("`{p}` is not `x:y`")),
                Some((x, y)) => {
                    for f in [x, y] {
                        if !PAIR_FIELDS.contains(&f) {
                            e.push(
                                &key,
                                format!(
                                    "unknown field `{f}`; expected one of {}",
                                    PAIR_FIELDS.join(", ")
                                ),
                            );
                        }
                    }
                    if x == y {
                        e.push(&key, format!("`{p}` pairs a field with itself"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(a: &AnalysisConfig) -> Vec<String> {
        let mut e = Errors::default();
        a.validate(&mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_pairs_are_valid() {
        assert!(errors(&AnalysisConfig::default()).is_empty());
        assert_eq!(
            AnalysisConfig::default().pair_fields()[0],
            ("prompt_len", "ttft")
        );
    }

    #[test]
    fn bad_pairs_name_the_key_and_the_field() {
        let a = AnalysisConfig {
            pairs: vec!["ttft".into(), "prompt_len:ttfx".into(), "tpot:tpot".into()],
            ..Default::default()
        };
        let e = errors(&a);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].contains("analysis.pairs[0]") && e[0].contains("not `x:y`"),
            "{}",
            e[0]
        );
        assert!(
            e[1].contains("analysis.pairs[1]") && e[1].contains("unknown field `ttfx`"),
            "{}",
            e[1]
        );
        assert!(
            e[2].contains("analysis.pairs[2]") && e[2].contains("with itself"),
            "{}",
            e[2]
        );
    }
}

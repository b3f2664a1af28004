//! `analysis.*`: metrics, goodput, plots, report.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::parsed::{Pair, PairField, Threshold};

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

/// `analysis.window`: measure the steady state only (guidellm's warmup and cooldown). Requests
/// scheduled in the first or last seconds of the workload, or the first or last requests by
/// schedule, are left out of every figure and counted as `outside_window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// Leave out requests scheduled in the first this many seconds.
    #[schemars(range(min = 0.0))]
    pub skip_first_s: f64,
    /// Leave out requests scheduled in the last this many seconds.
    #[schemars(range(min = 0.0))]
    pub skip_last_s: f64,
    /// Leave out the first this many requests (by schedule).
    pub skip_first_requests: u64,
    /// Leave out the last this many requests (by schedule).
    pub skip_last_requests: u64,
}

impl WindowConfig {
    /// Whether anything is left out.
    pub fn any(&self) -> bool {
        *self != WindowConfig::default()
    }
}

/// Which token counts the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage` when it reported one, else the client's own count.
    #[default]
    Usage,
    /// Always the client's count (its tokenizer on the received text and the sent prompt).
    Client,
}

/// `analysis`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// SLOs for goodput.
    pub slo: SloConfig,
    /// The steady-state window (nothing left out by default).
    pub window: WindowConfig,
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
    pub pairs: Vec<Pair>,
    /// Requests drawn in the Gantt timeline: the first this many sent (contiguous, so overlaps
    /// stay visible).
    #[schemars(range(min = 1))]
    pub gantt_max_requests: u32,
    /// A run in which more than this share of the sent requests failed (http_error, timeout,
    /// transport_error) is a failed run: its verdict says so first and `bench` exits with
    /// status 3 once every file is written. A run in which nothing succeeded always fails.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_error_rate: f64,
    /// Pass/fail conditions on summary.json figures, each `figure op number` with `<`, `<=`,
    /// `>` or `>=`: `ttft_ms.p99 < 500`, `error_rate <= 0.01`, `goodput_ratio >= 0.9`,
    /// `request_throughput >= 20`, `server.ttft_ms.p99 < 400`. Each is reported PASS or FAIL
    /// (terminal, summary.json, report); any FAIL makes `bench` exit with status 3 once every
    /// file is written. A figure the run has no value for (no SLO given, /metrics not scraped)
    /// fails.
    pub thresholds: Vec<Threshold>,
    /// Token counts behind throughput, TPOT and the length figures: `usage` (the server's
    /// when reported, else the client's) or `client`.
    pub token_source: TokenSource,
    /// Write requests.csv (one row per request with its metrics).
    pub requests_csv: bool,
    /// Write SVG and PNG plots.
    pub plots: bool,
    /// Write report.html.
    pub report: bool,
    /// Print the summary table at the end of the stage.
    pub print_summary: bool,
    /// What one request's work counts as, for `workload_unit_throughput` (units/s, beside
    /// tokens/s): `tokens` (its output tokens), `image` (Vast's image formula: width x height x
    /// steps / 1000 + `image_unit.resolution_adjustment` + `image_unit.step_adjustment`, from
    /// the request's fields), or an arithmetic expression over the request's figures
    /// (`output_tokens`, `input_tokens`, `e2el_s`, `ttft_s`) and its numeric fields (`width`,
    /// `height`, `steps`, ...), such as `output_tokens + input_tokens / 10`.
    pub workload_unit: String,
    /// The adjustments of the `image` workload unit.
    pub image_unit: ImageUnit,
}

/// `analysis.image_unit`: the two adjustments of Vast's image workload formula. The seed names
/// them without values; both default to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ImageUnit {
    /// Added to every image's units.
    pub resolution_adjustment: f64,
    /// Added to every image's units.
    pub step_adjustment: f64,
}

/// `analysis.workload_unit`, parsed.
#[derive(Debug, Clone)]
pub enum WorkloadUnit {
    /// Output tokens.
    Tokens,
    /// width x height x steps / 1000 + adjustments.
    Image,
    /// An arithmetic expression (its text, its tree).
    Expr(String, evalexpr::Node<evalexpr::DefaultNumericTypes>),
}

impl WorkloadUnit {
    /// Parses `tokens`, `image` or an expression (its syntax checked now).
    pub fn parse(s: &str) -> Result<WorkloadUnit, String> {
        match s.trim() {
            "tokens" => Ok(WorkloadUnit::Tokens),
            "image" => Ok(WorkloadUnit::Image),
            "" => Err("is empty: `tokens`, `image` or an arithmetic expression".into()),
            e => {
                let node = evalexpr::build_operator_tree::<evalexpr::DefaultNumericTypes>(e)
                    .map_err(|err| {
                        format!("`{e}` is neither `tokens`, `image` nor an arithmetic expression ({err})")
                    })?;
                if node.iter_variable_identifiers().next().is_none() {
                    return Err(format!(
                        "`{e}` names no figure of the request (output_tokens, width, ...): every request would count the same"
                    ));
                }
                if let Some(f) = node.iter_function_identifiers().next() {
                    return Err(format!(
                        "`{e}`: functions ({f}) are not supported; use + - * / % ^ and parentheses"
                    ));
                }
                // the tree is built leniently (`a +` parses): a trial evaluation finds the rest
                let unit = WorkloadUnit::Expr(e.to_string(), node);
                if let WorkloadUnit::Expr(_, node) = &unit {
                    let mut ctx = evalexpr::HashMapContext::<evalexpr::DefaultNumericTypes>::new();
                    for name in node.iter_variable_identifiers() {
                        use evalexpr::ContextWithMutableVariables;
                        let _ = ctx.set_value(name.to_string(), evalexpr::Value::Float(1.0));
                    }
                    if let Err(err) = node.eval_number_with_context(&ctx) {
                        return Err(format!(
                            "`{e}` is neither `tokens`, `image` nor an arithmetic expression ({err})"
                        ));
                    }
                }
                Ok(unit)
            }
        }
    }

    /// The units of one request whose figures `var` gives (None: the request lacks one).
    pub fn units(&self, var: &dyn Fn(&str) -> Option<f64>, image: &ImageUnit) -> Option<f64> {
        match self {
            WorkloadUnit::Tokens => var("output_tokens"),
            WorkloadUnit::Image => Some(
                var("width")? * var("height")? * var("steps")? / 1000.0
                    + image.resolution_adjustment
                    + image.step_adjustment,
            ),
            WorkloadUnit::Expr(_, node) => {
                let mut ctx = evalexpr::HashMapContext::<evalexpr::DefaultNumericTypes>::new();
                for name in node.iter_variable_identifiers() {
                    use evalexpr::ContextWithMutableVariables;
                    ctx.set_value(name.to_string(), evalexpr::Value::Float(var(name)?))
                        .ok()?;
                }
                node.eval_number_with_context(&ctx)
                    .ok()
                    .filter(|x| x.is_finite())
            }
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            slo: SloConfig::default(),
            window: WindowConfig::default(),
            bin_s: 1.0,
            length_bins: 10,
            max_dispatch_lag_ms: 5.0,
            pairs: vec![
                Pair {
                    x: PairField::PromptLen,
                    y: PairField::Ttft,
                },
                Pair {
                    x: PairField::OutputLen,
                    y: PairField::Latency,
                },
                Pair {
                    x: PairField::InFlight,
                    y: PairField::Tpot,
                },
            ],
            gantt_max_requests: 400,
            max_error_rate: 0.5,
            thresholds: Vec::new(),
            token_source: TokenSource::Usage,
            requests_csv: true,
            plots: true,
            report: true,
            print_summary: true,
            workload_unit: "tokens".into(),
            image_unit: ImageUnit::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{LoadError, Sources};

    #[test]
    fn workload_units_tokens_image_and_expressions() {
        use super::{ImageUnit, WorkloadUnit};
        let vars = |n: &str| match n {
            "output_tokens" => Some(40.0),
            "input_tokens" => Some(100.0),
            "width" | "height" => Some(512.0),
            "steps" => Some(20.0),
            _ => None,
        };
        let adj = ImageUnit {
            resolution_adjustment: 1.5,
            step_adjustment: -0.5,
        };
        let u = |s: &str| WorkloadUnit::parse(s).unwrap().units(&vars, &adj);
        assert_eq!(u("tokens"), Some(40.0));
        assert_eq!(u("image"), Some(512.0 * 512.0 * 20.0 / 1000.0 + 1.0));
        assert_eq!(u("output_tokens + input_tokens / 10"), Some(50.0));
        assert_eq!(u("width * height / 2 ^ 10"), Some(256.0));
        assert_eq!(u("output_tokens * missing"), None);
        for (bad, why) in [
            (
                "output_tokens +",
                "neither `tokens`, `image` nor an arithmetic expression",
            ),
            ("1 + 2", "names no figure"),
            (
                "floor(output_tokens)",
                "functions (floor) are not supported",
            ),
        ] {
            let e = WorkloadUnit::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let r = crate::load(&Sources {
            files: vec![],
            overrides: vec!["analysis.workload_unit=tokns * 2 +".into()],
            env: false,
        });
        let Err(LoadError::Invalid(e)) = r else {
            panic!("accepted: {r:?}");
        };
        assert!(e.to_string().contains("`analysis.workload_unit`"), "{e}");
    }

    #[test]
    fn bad_pairs_name_the_key_and_the_field() {
        let r = crate::load(&Sources {
            files: vec![],
            overrides: vec![
                "analysis.pairs=[ttft, 'prompt_len:ttfx', 'tpot:tpot', 'itl:ttfb']".into(),
            ],
            env: false,
        });
        let Err(LoadError::Invalid(e)) = r else {
            panic!("bad pairs accepted: {r:?}");
        };
        let e: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].contains("`analysis.pairs[0]`") && e[0].contains("not `x:y`"),
            "{}",
            e[0]
        );
        assert!(
            e[1].contains("`analysis.pairs[1]`") && e[1].contains("unknown field `ttfx`"),
            "{}",
            e[1]
        );
        assert!(
            e[2].contains("`analysis.pairs[2]`") && e[2].contains("with itself"),
            "{}",
            e[2]
        );
    }
}

//! Config values written as one string but typed inside: the endpoint (`sim` or a URL), the
//! tokenizer spec, the field pairs of `analysis.pairs` (`x:y`), the pass/fail conditions of
//! `analysis.thresholds` (`ttft_ms.p99 < 500`).
//!
//! Each such type is parsed by its `FromStr` and printed back by its `Display`. Its JSON schema
//! is a string with a `format` naming the type, so the schema check ([`crate::schema`]) runs
//! the parser on every value and reports a bad one with its key, beside every other problem,
//! before typed deserialization (which then cannot fail on it).

use std::fmt::Display;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether a string parses as one of these types.
type Check = fn(&str) -> Result<(), String>;

/// The `format` names of the string-parsed types, and their checks.
const FORMATS: [(&str, Check); 4] = [
    ("bench-endpoint", |s| Endpoint::from_str(s).map(drop)),
    ("bench-tokenizer", |s| {
        bench_text::TokenizerSpec::from_str(s).map(drop)
    }),
    ("bench-pair", |s| Pair::from_str(s).map(drop)),
    ("bench-threshold", |s| Threshold::from_str(s).map(drop)),
];

/// Runs the parser of schema format `format` on `value`: None when the format is not one of
/// these types, else whether it parses.
pub(crate) fn check_format(format: &str, value: &str) -> Option<Result<(), String>> {
    FORMATS
        .iter()
        .find(|(name, _)| *name == format)
        .map(|(_, check)| check(value))
}

fn string_schema(format: &str, description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "format": format,
        "description": description,
    })
}

/// serde through `Display` / `FromStr` (`#[serde(with = "crate::parsed::as_string")]`).
pub(crate) mod as_string {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// serde of an `Option` through `Display` / `FromStr` (null for `None`).
pub(crate) mod as_opt_string {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

const TOKENIZER: &str = "builtin:cl100k_base, builtin:o200k_base, or the path of a tokenizer.json";

/// The schema of `tokenizer`.
pub(crate) fn tokenizer_schema(_: &mut SchemaGenerator) -> Schema {
    string_schema("bench-tokenizer", TOKENIZER)
}

/// The schema of `sim.tokenizer` (null: the run's).
pub(crate) fn opt_tokenizer_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "format": "bench-tokenizer",
        "description": TOKENIZER,
    })
}

/// Where the client sends: the in-process simulated engine, or a server's base URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// `sim`: start the simulated engine in-process on 127.0.0.1.
    #[default]
    Sim,
    /// An `http://` or `https://` base URL (`http://localhost:8000`).
    Url(String),
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "sim" {
            Ok(Endpoint::Sim)
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Endpoint::Url(s.to_string()))
        } else {
            Err(format!("`{s}` is neither `sim` nor an http(s):// URL"))
        }
    }
}

impl Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Sim => f.write_str("sim"),
            Endpoint::Url(u) => f.write_str(u),
        }
    }
}

impl Endpoint {
    /// An `https://` URL.
    pub fn is_https(&self) -> bool {
        matches!(self, Endpoint::Url(u) if u.starts_with("https://"))
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_string::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        as_string::deserialize(d)
    }
}

impl JsonSchema for Endpoint {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Endpoint".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema("bench-endpoint", "`sim` or an http(s):// base URL")
    }
}

/// A per-request field of `analysis.pairs`, with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairField {
    /// Time to first token, ms.
    Ttft,
    /// Time per output token, ms.
    Tpot,
    /// End-to-end latency, ms.
    Latency,
    /// Input tokens.
    PromptLen,
    /// Output tokens.
    OutputLen,
    /// Output tokens per second of the request.
    ReqOutputThroughput,
    /// Mean inter-token latency of the request, ms.
    Itl,
    /// Largest inter-token latency of the request, ms.
    ItlMax,
    /// Time to first byte, ms.
    Ttfb,
    /// Dispatch lag, ms.
    DispatchLag,
    /// Requests in flight when it was sent.
    InFlight,
}

impl PairField {
    /// Every field, in the order `--override help` lists them.
    pub const ALL: [PairField; 11] = [
        PairField::Ttft,
        PairField::Tpot,
        PairField::Latency,
        PairField::PromptLen,
        PairField::OutputLen,
        PairField::ReqOutputThroughput,
        PairField::Itl,
        PairField::ItlMax,
        PairField::Ttfb,
        PairField::DispatchLag,
        PairField::InFlight,
    ];
    /// The name used in `x:y` (Bud's field names, plus a few).
    pub fn name(self) -> &'static str {
        match self {
            PairField::Ttft => "ttft",
            PairField::Tpot => "tpot",
            PairField::Latency => "latency",
            PairField::PromptLen => "prompt_len",
            PairField::OutputLen => "output_len",
            PairField::ReqOutputThroughput => "req_output_throughput",
            PairField::Itl => "itl",
            PairField::ItlMax => "itl_max",
            PairField::Ttfb => "ttfb",
            PairField::DispatchLag => "dispatch_lag",
            PairField::InFlight => "in_flight",
        }
    }
    /// Its unit, for axis labels and table headers.
    pub fn unit(self) -> &'static str {
        match self {
            PairField::PromptLen | PairField::OutputLen => "tokens",
            PairField::ReqOutputThroughput => "tokens/s",
            PairField::InFlight => "requests",
            _ => "ms",
        }
    }
}

impl FromStr for PairField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PairField::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = PairField::ALL.iter().map(|f| f.name()).collect();
                format!("unknown field `{s}`; expected one of {}", names.join(", "))
            })
    }
}

impl Display for PairField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for PairField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_string::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for PairField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        as_string::deserialize(d)
    }
}

/// `x:y`: y tabulated by bins of x, and plotted against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The binned field.
    pub x: PairField,
    /// The field summarised per bin.
    pub y: PairField,
}

impl FromStr for Pair {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (x, y) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not `x:y`"))?;
        let (x, y) = (x.parse::<PairField>()?, y.parse::<PairField>()?);
        if x == y {
            return Err(format!("`{s}` pairs a field with itself"));
        }
        Ok(Pair { x, y })
    }
}

impl Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.x, self.y)
    }
}

impl Serialize for Pair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_string::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        as_string::deserialize(d)
    }
}

impl JsonSchema for Pair {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Pair".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema("bench-pair", "`x:y`, two per-request fields")
    }
}

/// A comparison of `analysis.thresholds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// Its symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    /// Whether `x op bound` holds.
    pub fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Op::Lt => x < bound,
            Op::Le => x <= bound,
            Op::Gt => x > bound,
            Op::Ge => x >= bound,
        }
    }
}

/// The per-request figures of summary.json that carry percentiles (`<name>.p99`).
pub const THRESHOLD_STATS_ROOTS: [&str; 11] = [
    "ttft_ms",
    "tpot_ms",
    "itl_ms",
    "e2el_ms",
    "ttfb_ms",
    "request_output_throughput",
    "input_tokens",
    "output_tokens",
    "dispatch_lag_ms",
    "queue_delay_ms",
    "schedule_lag_ms",
];
/// The statistics of each of [`THRESHOLD_STATS_ROOTS`].
pub const THRESHOLD_STATS: [&str; 11] = [
    "count", "min", "p25", "p50", "p75", "p90", "p95", "p99", "max", "mean", "std",
];
/// The run-level scalars of summary.json a threshold may name.
pub const THRESHOLD_SCALARS: [&str; 17] = [
    "duration_s",
    "request_throughput",
    "input_token_throughput",
    "output_token_throughput",
    "total_token_throughput",
    "goodput",
    "goodput_ratio",
    "error_rate",
    "offered_rate",
    "achieved_rate",
    "overrun_s",
    "counts.ok",
    "counts.failed",
    "counts.http_error",
    "counts.timeout",
    "counts.transport_error",
    "counts.cancelled",
];
/// The server's figures (summary.json's `server` section, present when /metrics was scraped):
/// `server.<root>.<stat>` for these histogram estimates, and these scalars.
pub const THRESHOLD_SERVER_ROOTS: [&str; 4] = ["ttft_ms", "itl_ms", "e2el_ms", "queue_ms"];
/// See [`THRESHOLD_SERVER_ROOTS`].
pub const THRESHOLD_SERVER_STATS: [&str; 4] = ["p50", "p90", "p99", "mean"];
/// See [`THRESHOLD_SERVER_ROOTS`].
pub const THRESHOLD_SERVER_SCALARS: [&str; 7] = [
    "running_max",
    "waiting_max",
    "kv_cache_usage_max",
    "prefix_cache_hit_rate",
    "output_token_throughput",
    "preemptions",
    "scrape_failures",
];

/// Whether `path` names a figure a threshold can test.
fn known_figure(path: &str) -> bool {
    if THRESHOLD_SCALARS.contains(&path) {
        return true;
    }
    if let Some(rest) = path.strip_prefix("server.") {
        if THRESHOLD_SERVER_SCALARS.contains(&rest) {
            return true;
        }
        return rest.split_once('.').is_some_and(|(root, stat)| {
            THRESHOLD_SERVER_ROOTS.contains(&root) && THRESHOLD_SERVER_STATS.contains(&stat)
        });
    }
    path.split_once('.').is_some_and(|(root, stat)| {
        THRESHOLD_STATS_ROOTS.contains(&root) && THRESHOLD_STATS.contains(&stat)
    })
}

/// Every figure a threshold can name, for the error message's suggestion.
fn known_figures() -> Vec<String> {
    let mut v: Vec<String> = THRESHOLD_SCALARS.iter().map(|s| s.to_string()).collect();
    for r in THRESHOLD_STATS_ROOTS {
        v.extend(THRESHOLD_STATS.iter().map(|s| format!("{r}.{s}")));
    }
    v.extend(
        THRESHOLD_SERVER_SCALARS
            .iter()
            .map(|s| format!("server.{s}")),
    );
    for r in THRESHOLD_SERVER_ROOTS {
        v.extend(
            THRESHOLD_SERVER_STATS
                .iter()
                .map(|s| format!("server.{r}.{s}")),
        );
    }
    v
}

/// `figure op number`: a pass/fail condition on a summary.json figure, such as
/// `ttft_ms.p99 < 500` or `error_rate <= 0.01`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The figure's dotted path in summary.json.
    pub figure: String,
    /// The comparison.
    pub op: Op,
    /// The bound.
    pub bound: f64,
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| format!("`{s}` is not `figure < number` (operators: <, <=, >, >=)"))?;
        let (figure, rest) = t.split_at(at);
        let (op, num) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        let figure = figure.trim();
        if !known_figure(figure) {
            let all = known_figures();
            let hint = all
                .iter()
                .map(|k| (strsim::jaro_winkler(k, figure), k))
                .filter(|(d, _)| *d > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| "; see the summary.json figures in docs/METRICS.md".to_string());
            return Err(format!(
                "`{figure}` is not a summary figure a threshold can test{hint}"
            ));
        }
        let bound: f64 = num
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| format!("`{}` in `{s}` is not a number", num.trim()))?;
        Ok(Threshold {
            figure: figure.to_string(),
            op,
            bound,
        })
    }
}

impl Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.figure, self.op.symbol(), self.bound)
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_string::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        as_string::deserialize(d)
    }
}

impl JsonSchema for Threshold {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Threshold".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            "bench-threshold",
            "`figure op number`, such as `ttft_ms.p99 < 500`",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_strings() {
        for s in ["sim", "http://localhost:8000", "https://api.example.com/v1"] {
            assert_eq!(s.parse::<Endpoint>().unwrap().to_string(), s);
        }
        for s in ["prompt_len:ttft", "in_flight:tpot"] {
            assert_eq!(s.parse::<Pair>().unwrap().to_string(), s);
        }
        let p: Pair = "output_len:latency".parse().unwrap();
        assert_eq!((p.x.unit(), p.y.unit()), ("tokens", "ms"));
    }

    #[test]
    fn bad_values_say_why() {
        assert!(
            "localhost:8000"
                .parse::<Endpoint>()
                .unwrap_err()
                .contains("neither `sim` nor an http(s):// URL")
        );
        assert!("ttft".parse::<Pair>().unwrap_err().contains("not `x:y`"));
        assert!(
            "prompt_len:ttfx"
                .parse::<Pair>()
                .unwrap_err()
                .contains("unknown field `ttfx`")
        );
        assert!(
            "tpot:tpot"
                .parse::<Pair>()
                .unwrap_err()
                .contains("with itself")
        );
        assert_eq!(
            check_format("bench-pair", "a"),
            Some(Err("`a` is not `x:y`".into()))
        );
        assert_eq!(check_format("uint32", "a"), None);
    }

    #[test]
    fn thresholds_parse_and_say_what_is_wrong() {
        let t: Threshold = " ttft_ms.p99<500".parse().unwrap();
        assert_eq!(
            (t.figure.as_str(), t.op, t.bound),
            ("ttft_ms.p99", Op::Lt, 500.0)
        );
        assert_eq!(t.to_string(), "ttft_ms.p99 < 500");
        for (s, op) in [
            ("error_rate <= 0.01", Op::Le),
            ("goodput_ratio >= 0.9", Op::Ge),
            ("request_throughput > 20", Op::Gt),
            ("server.ttft_ms.p99 < 0.5e3", Op::Lt),
        ] {
            let t: Threshold = s.parse().unwrap();
            assert_eq!(t.op, op, "{s}");
            assert_eq!(t.to_string().parse::<Threshold>().unwrap(), t);
        }
        assert!(Op::Le.holds(1.0, 1.0) && !Op::Lt.holds(1.0, 1.0));
        assert!(Op::Ge.holds(2.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
        let e = "ttft_ms.p999 < 5".parse::<Threshold>().unwrap_err();
        assert!(
            e.contains("`ttft_ms.p999` is not a summary figure")
                && e.contains("did you mean `ttft_ms.p99`"),
            "{e}"
        );
        let e = "ttft_ms.p99 = 5".parse::<Threshold>().unwrap_err();
        assert!(e.contains("operators: <, <=, >, >="), "{e}");
        let e = "ttft_ms.p99 < fast".parse::<Threshold>().unwrap_err();
        assert!(
            e.contains("`fast` in `ttft_ms.p99 < fast` is not a number"),
            "{e}"
        );
        assert!("ttft_ms.p99 < inf".parse::<Threshold>().is_err());
        assert!(
            check_format("bench-threshold", "nothing < 1")
                .unwrap()
                .unwrap_err()
                .contains("see the summary.json figures")
        );
    }
}

//! The Prometheus text exposition (format 0.0.4, and OpenMetrics 1.0 when the body ends in
//! `# EOF`), parsed by the `openmetrics-parser` crate and flattened into one row per sample line.
//!
//! The crate is stricter than the format and than Prometheus' own scraper in a few places that
//! real servers reach, so the body goes through a line filter first (`prepare`), which changes
//! no sample:
//!
//! - blank lines are dropped: the format ignores them, the crate ends a family at one, so
//!   `# TYPE g gauge`, a blank line, then `g 1` failed with "Found a metric family called g,
//!   after that family was finalised";
//! - comment lines other than `# HELP` and `# TYPE` (and `# UNIT` in OpenMetrics) are dropped: the
//!   crate only knows `# ` followed by text, and rejects `#comment` and a body of comments only;
//! - leading and trailing blanks of a line are trimmed (the format allows both, the crate
//!   neither), and the last line gets its missing newline (the crate rejects a last line
//!   without one);
//! - a family declared without samples is dropped (prometheus_client declares a labelled metric
//!   before its first observation): the crate takes one or two descriptor lines, then samples,
//!   as a family, so a lone `# TYPE a counter` swallowed the next family's `# HELP b` and failed
//!   on the second name (OpenMetrics: on any declared family without samples);
//! - a sample whose name does not belong to the family declared just before it gets a
//!   `# TYPE <name> untyped` line of its own. The format lets a metric go without TYPE line;
//!   the crate folds every sample up to the next TYPE or HELP line into one family and fails on
//!   the second name (`foo 1`, `bar 2`, or a typed family followed by an undeclared sample).
//!   "Belongs" is what the crate accepts for the family's type (`_bucket`, `_sum`, `_count` for a
//!   histogram, ...), so anything else, `_created` series included, becomes a family of its own.
//!
//! What stays rejected, whole body: a family split in two (HELP or TYPE after its samples, or
//! the same name twice), two HELP lines for one family, the same label set twice, a counter
//! that is NaN or negative, a histogram without `+Inf` bucket or with non-integer `_count`,
//! tabs between tokens, and `Inf` without sign. Prometheus accepts some of these; no engine
//! this crate knows emits them.
//!
//! The crate is called under `catch_unwind`: no input found a panic (a million random and
//! mutated bodies), but it asserts its own invariants with `unwrap` and `unreachable!`, and a
//! scrape body is untrusted input that must not end a benchmark run (a panic would still be
//! printed by the panic hook, then come back as an `Err`).

use openmetrics_parser::{
    HistogramValue, OpenMetricsValue, ParseError, PrometheusValue, Sample, SummaryValue,
};

/// One sample line of a scrape, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatSample {
    /// The sample's full name as exposed: `vllm:num_requests_running`, `vllm:prompt_tokens_total`,
    /// `vllm:time_to_first_token_seconds_bucket`, `..._sum`, `..._count`; summaries likewise
    /// (quantile rows keep the family name).
    pub metric: String,
    /// Labels other than `le` and `quantile`, sorted by name, rendered `k="v",k2="v2"` (values
    /// escaped as in the format); empty when none.
    pub labels: String,
    /// The bucket's upper bound (`le`, +Inf as `f64::INFINITY`) for `_bucket` rows, the quantile
    /// for summary quantile rows, else None.
    pub le: Option<f64>,
    /// The sample's value (NaN and ±Inf as parsed).
    pub value: f64,
}

/// Parses one scrape body (text format 0.0.4; OpenMetrics when its last line is `# EOF`).
///
/// Empty text, or text of comments and blank lines only, is `Ok(vec![])`. The error is one line
/// naming the problem, with the line number when the parser gives one; any input, binary or HTML
/// included, gives `Ok` or `Err`, never a panic. Rows are sorted by metric, labels, then `le`.
pub fn parse(text: &str) -> Result<Vec<FlatSample>, String> {
    let prepared = prepare(text);
    if prepared.lines.is_empty() {
        return Ok(Vec::new());
    }
    let parsed = std::panic::catch_unwind(|| convert(&prepared.text, prepared.openmetrics));
    let mut samples = match parsed {
        Ok(Ok(samples)) => samples,
        Ok(Err(e)) => return Err(describe(&e, &prepared, text)),
        Err(_) => return Err("the exposition parser panicked on this body".to_owned()),
    };
    samples.sort_by(|a, b| {
        (a.metric.as_str(), a.labels.as_str())
            .cmp(&(b.metric.as_str(), b.labels.as_str()))
            .then_with(|| match (a.le, b.le) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            })
    });
    Ok(samples)
}

/// The sum of `metric`'s values over all its label sets (`_bucket` rows: over the rows of every
/// bound, so use [`crate::histogram::buckets`] for those); None when no row has that name.
pub fn sum(samples: &[FlatSample], metric: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

/// The body as handed to the crate, and where each of its lines came from.
struct Prepared {
    text: String,
    /// 1-based line number in the original body of each line of `text`.
    lines: Vec<usize>,
    openmetrics: bool,
}

/// The line filter described in the module doc.
fn prepare(text: &str) -> Prepared {
    let openmetrics = text.lines().map(str::trim).rfind(|l| !l.is_empty()) == Some("# EOF");
    let mut out = Prepared {
        text: String::with_capacity(text.len() + 64),
        lines: Vec::new(),
        openmetrics,
    };
    // The family declared by the last HELP or TYPE line (or inserted TYPE line): name and type.
    let mut family: Option<(&str, &str)> = None;
    // Its HELP and TYPE lines, held until its first sample: a family without samples is
    // dropped, since the crate would fold the next family's lines into it.
    let mut pending: Vec<(&str, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            let descriptor = ["# HELP ", "# TYPE "]
                .into_iter()
                .chain(openmetrics.then_some("# UNIT "))
                .find_map(|d| line.strip_prefix(d).map(|rest| (d, rest)));
            let Some((kind, rest)) = descriptor else {
                continue;
            };
            let mut words = rest.split(' ');
            let name = words.next().unwrap_or_default();
            let declared = (kind == "# TYPE ").then(|| words.next().unwrap_or_default());
            match family {
                // Another line of the family: held with the others, or (after its samples)
                // passed on for the crate to reject.
                Some((current, ty)) if current == name => {
                    family = Some((name, declared.unwrap_or(ty)));
                    if pending.is_empty() {
                        out.push(line, i + 1);
                    } else {
                        pending.push((line, i + 1));
                    }
                }
                _ => {
                    family = Some((name, declared.unwrap_or("untyped")));
                    pending.clear();
                    pending.push((line, i + 1));
                }
            }
            continue;
        }
        let name = &line[..line.find(['{', ' ', '\t']).unwrap_or(line.len())];
        if is_metric_name(name) && !family.is_some_and(|(f, ty)| belongs(name, f, ty, openmetrics))
        {
            let untyped = if openmetrics { "unknown" } else { "untyped" };
            pending.clear();
            out.push(&format!("# TYPE {name} {untyped}"), i + 1);
            family = Some((name, untyped));
        }
        for (held, from) in pending.drain(..) {
            out.push(held, from);
        }
        out.push(line, i + 1);
    }
    if openmetrics && !out.lines.is_empty() {
        let last = out.lines[out.lines.len() - 1];
        out.push("# EOF", last);
    }
    out
}

impl Prepared {
    fn push(&mut self, line: &str, from: usize) {
        self.text.push_str(line);
        self.text.push('\n');
        self.lines.push(from);
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the names the crate reads without quotes.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether the crate takes a sample named `name` as part of family `family` of type `ty`.
fn belongs(name: &str, family: &str, ty: &str, openmetrics: bool) -> bool {
    let Some(suffix) = name.strip_prefix(family) else {
        return false;
    };
    let allowed: &[&str] = match (ty, openmetrics) {
        ("histogram", false) => &["_bucket", "_sum", "_count"],
        ("histogram", true) => &["_bucket", "_sum", "_count", "_created"],
        ("gaugehistogram", true) => &["_bucket", "_gsum", "_gcount"],
        ("summary", _) => &["", "_sum", "_count"],
        ("counter", true) => &["_total", "_created"],
        ("info", true) => &["_info"],
        _ => &[""],
    };
    allowed.contains(&suffix)
}

/// Runs the crate and flattens its families.
fn convert(text: &str, openmetrics: bool) -> Result<Vec<FlatSample>, ParseError> {
    let mut out = Vec::new();
    if openmetrics {
        let exposition = openmetrics_parser::openmetrics::parse_openmetrics(text)?;
        for family in exposition.families.values() {
            for sample in family.iter_samples() {
                flatten_om(
                    &mut out,
                    &family.family_name,
                    &labels(sample)?,
                    &sample.value,
                );
            }
        }
    } else {
        let exposition = openmetrics_parser::prometheus::parse_prometheus(text)?;
        for family in exposition.families.values() {
            for sample in family.iter_samples() {
                flatten_prom(
                    &mut out,
                    &family.family_name,
                    &labels(sample)?,
                    &sample.value,
                );
            }
        }
    }
    Ok(out)
}

fn flatten_prom(out: &mut Vec<FlatSample>, name: &str, labels: &str, value: &PrometheusValue) {
    match value {
        PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => {
            row(out, name, "", labels, None, n.as_f64())
        }
        PrometheusValue::Counter(c) => row(out, name, "", labels, None, c.value.as_f64()),
        PrometheusValue::Histogram(h) => histogram(out, name, labels, h, "_sum", "_count"),
        PrometheusValue::Summary(s) => summary(out, name, labels, s),
    }
}

fn flatten_om(out: &mut Vec<FlatSample>, name: &str, labels: &str, value: &OpenMetricsValue) {
    match value {
        OpenMetricsValue::Unknown(n)
        | OpenMetricsValue::Gauge(n)
        | OpenMetricsValue::StateSet(n) => {
            row(out, name, "", labels, None, n.as_f64());
        }
        // The family is named without `_total`; the sample as exposed has it.
        OpenMetricsValue::Counter(c) => row(out, name, "_total", labels, None, c.value.as_f64()),
        // The crate keeps no value for an info sample: it is 1 by definition.
        OpenMetricsValue::Info => row(out, name, "_info", labels, None, 1.0),
        OpenMetricsValue::Histogram(h) => histogram(out, name, labels, h, "_sum", "_count"),
        OpenMetricsValue::GaugeHistogram(h) => histogram(out, name, labels, h, "_gsum", "_gcount"),
        OpenMetricsValue::Summary(s) => summary(out, name, labels, s),
    }
}

fn histogram(
    out: &mut Vec<FlatSample>,
    name: &str,
    labels: &str,
    h: &HistogramValue,
    sum: &str,
    count: &str,
) {
    for b in &h.buckets {
        row(
            out,
            name,
            "_bucket",
            labels,
            Some(b.upper_bound),
            b.count.as_f64(),
        );
    }
    if let Some(s) = &h.sum {
        row(out, name, sum, labels, None, s.as_f64());
    }
    if let Some(c) = h.count {
        row(out, name, count, labels, None, c as f64);
    }
}

fn summary(out: &mut Vec<FlatSample>, name: &str, labels: &str, s: &SummaryValue) {
    for q in &s.quantiles {
        row(out, name, "", labels, Some(q.quantile), q.value.as_f64());
    }
    if let Some(sum) = &s.sum {
        row(out, name, "_sum", labels, None, sum.as_f64());
    }
    if let Some(c) = s.count {
        row(out, name, "_count", labels, None, c as f64);
    }
}

fn row(
    out: &mut Vec<FlatSample>,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<f64>,
    value: f64,
) {
    out.push(FlatSample {
        metric: format!("{name}{suffix}"),
        labels: labels.to_owned(),
        le,
        value,
    });
}

/// A sample's labels (the family's, which exclude `le` and `quantile`) rendered
/// `k="v",k2="v2"`, sorted by name.
fn labels<V>(sample: &Sample<V>) -> Result<String, ParseError>
where
    V: openmetrics_parser::RenderableMetricValue + Clone,
{
    let set = sample.get_labelset()?;
    let mut pairs: Vec<(&String, &String)> = set.iter().collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if is_metric_name(name) && !name.contains(':') {
            out.push_str(name);
        } else {
            out.push('"');
            escape(&mut out, name);
            out.push('"');
        }
        out.push_str("=\"");
        escape(&mut out, value);
        out.push('"');
    }
    Ok(out)
}

/// Escapes a label value as the format does: backslash, double quote, newline.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// One line naming the problem. The crate's syntax errors are pest's multi-line reports
/// (` --> 3:10`, the offending line, `= expected number`): they become `line 3: expected
/// number: <the original line>`. Its other errors name no line and are passed on.
fn describe(error: &ParseError, prepared: &Prepared, original: &str) -> String {
    let ParseError::ParseError(report) = error else {
        return format!("invalid exposition: {}", clip(&error.to_string(), 200));
    };
    let position = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(|p| p.split(':').next()?.parse::<usize>().ok());
    let expected = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .unwrap_or("syntax error");
    match position.and_then(|p| prepared.lines.get(p.checked_sub(1)?)) {
        Some(&line) => {
            let text = original.lines().nth(line - 1).unwrap_or_default().trim();
            format!("line {line}: {}: {}", clip(expected, 200), clip(text, 80))
        }
        None => format!("at the end of the body: {}", clip(expected, 200)),
    }
}

/// `text` cut to `max` characters (`...` when cut), control characters escaped: one line.
fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        prepare(text).text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn prepare_inserts_a_type_line_for_undeclared_samples_only() {
        let text = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nfoo 3\nfoo{a=\"1\"} 4\nbar 5\n";
        assert_eq!(
            lines(text),
            [
                "# HELP h x",
                "# TYPE h histogram",
                "h_bucket{le=\"+Inf\"} 1",
                "h_sum 1",
                "h_count 1",
                "# TYPE foo untyped",
                "foo 3",
                "foo{a=\"1\"} 4",
                "# TYPE bar untyped",
                "bar 5",
            ]
        );
        // The original line numbers follow: the inserted line is attributed to its sample.
        assert_eq!(prepare(text).lines, [1, 2, 3, 4, 5, 6, 6, 7, 8, 8]);
    }

    #[test]
    fn prepare_drops_blank_and_comment_lines_and_trims() {
        let text = "#comment\n\n  # TYPE g gauge\n\n g 1 \r\n# EOF is only a comment here";
        assert_eq!(lines(text), ["# TYPE g gauge", "g 1"]);
        assert!(prepare("# a\n\n#b\n").lines.is_empty());
    }

    #[test]
    fn prepare_openmetrics_keeps_unit_and_ends_in_eof() {
        let text = "# TYPE c counter\n# UNIT c tokens\nc_total 1\nc_created 2\nother 3\n# EOF\n";
        let p = prepare(text);
        assert!(p.openmetrics);
        assert_eq!(
            lines(text),
            [
                "# TYPE c counter",
                "# UNIT c tokens",
                "c_total 1",
                "c_created 2",
                "# TYPE other unknown",
                "other 3",
                "# EOF"
            ]
        );
    }

    #[test]
    fn prepare_drops_families_without_samples_and_keeps_late_descriptors() {
        let text = "# HELP a x\n# TYPE a counter\n# TYPE b gauge\n# HELP c y\nc 1\n# HELP c again\n# TYPE d gauge\n";
        // `a` and `d` have no samples; `c`'s late HELP stays, for the crate to reject.
        assert_eq!(lines(text), ["# HELP c y", "c 1", "# HELP c again"]);
        assert_eq!(prepare(text).lines, [4, 5, 6]);
        // A counter declared OpenMetrics-style in a 0.0.4 body: its sample becomes untyped.
        assert_eq!(
            lines("# TYPE a counter\na_total 5\n"),
            ["# TYPE a_total untyped", "a_total 5"]
        );
    }
}

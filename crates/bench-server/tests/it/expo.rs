//! `parse` on the format's corners and on hostile input: each outcome exact, never a panic.

use bench_server::expo::{self, FlatSample};

use super::value;

fn flat(metric: &str, labels: &str, le: Option<f64>, value: f64) -> FlatSample {
    FlatSample {
        metric: metric.to_owned(),
        labels: labels.to_owned(),
        le,
        value,
    }
}

#[test]
fn empty_and_comment_only_bodies_have_no_samples() {
    for body in [
        "",
        "\n",
        "  \n\r\n",
        "# just a comment\n",
        "#comment\n\n# EOF\n",
        "# EOF",
    ] {
        assert_eq!(expo::parse(body), Ok(vec![]), "{body:?}");
    }
    // Declared families without samples (a labelled metric never observed) are valid too.
    assert_eq!(expo::parse("# HELP g x\n# TYPE g gauge\n"), Ok(vec![]));
}

#[test]
fn untyped_metrics_with_colons_and_special_values() {
    let body = "foo 1\nbar:baz{a=\"1\"} -2.5e3\n# TYPE g gauge\ng{k=\"nan\"} NaN\ng{k=\"inf\"} +Inf\ng{k=\"-inf\"} -Inf\nafter_typed 7 1700000000000\n";
    let s = expo::parse(body).unwrap();
    assert_eq!(s.len(), 6);
    assert_eq!(value(&s, "foo", ""), 1.0);
    assert_eq!(value(&s, "bar:baz", r#"a="1""#), -2500.0);
    assert!(value(&s, "g", r#"k="nan""#).is_nan());
    assert_eq!(value(&s, "g", r#"k="inf""#), f64::INFINITY);
    assert_eq!(value(&s, "g", r#"k="-inf""#), f64::NEG_INFINITY);
    // A timestamp is read and dropped.
    assert_eq!(value(&s, "after_typed", ""), 7.0);
}

#[test]
fn labels_are_sorted_and_escaped_as_in_the_format() {
    let s = expo::parse("g{b=\"2\",a=\"x\\\"y\\\\z\\nw\",c=\"é ✓\",} 1\n").unwrap();
    assert_eq!(s, [flat("g", r#"a="x\"y\\z\nw",b="2",c="é ✓""#, None, 1.0)]);
}

#[test]
fn histograms_and_summaries_flatten_one_row_per_line() {
    let body = "# HELP h x\n# TYPE h histogram\n\
        h_bucket{m=\"a\",le=\"0.1\"} 1\nh_bucket{m=\"a\",le=\"+Inf\"} 2\nh_sum{m=\"a\"} 0.5\nh_count{m=\"a\"} 2\n\
        # TYPE s summary\ns{quantile=\"0.5\"} 0.2\ns{quantile=\"0.99\"} NaN\ns_sum 3\ns_count 4\n";
    let want = [
        flat("h_bucket", r#"m="a""#, Some(0.1), 1.0),
        flat("h_bucket", r#"m="a""#, Some(f64::INFINITY), 2.0),
        flat("h_count", r#"m="a""#, None, 2.0),
        flat("h_sum", r#"m="a""#, None, 0.5),
        // Summaries: NaN is what a quantile is before any observation.
        flat("s", "", Some(0.5), 0.2),
        flat("s", "", Some(0.99), f64::NAN),
        flat("s_count", "", None, 4.0),
        flat("s_sum", "", None, 3.0),
    ];
    // Compared as text: NaN is not equal to itself.
    assert_eq!(
        format!("{:?}", expo::parse(body).unwrap()),
        format!("{want:?}")
    );
}

#[test]
fn output_order_does_not_depend_on_the_body_order() {
    let a = "# TYPE x gauge\nx{i=\"2\"} 2\nx{i=\"1\"} 1\n# TYPE a counter\na_total 5\n";
    let b = "# TYPE a counter\na_total 5\n# TYPE x gauge\nx{i=\"1\"} 1\nx{i=\"2\"} 2\n";
    let parsed = expo::parse(a).unwrap();
    assert_eq!(parsed, expo::parse(b).unwrap());
    assert_eq!(
        parsed.iter().map(|s| s.metric.as_str()).collect::<Vec<_>>(),
        ["a_total", "x", "x"]
    );
}

#[test]
fn lenient_where_real_servers_are() {
    // Last line without newline, CRLF, blank lines inside a family, indented lines, trailing blanks.
    let body = "# TYPE g gauge\r\n\r\n  g{a=\"1\"} 1  \r\ng{a=\"2\"} 2";
    assert_eq!(expo::parse(body).unwrap().len(), 2);
    // A family declared without samples (prometheus_client's labelled metrics before their first
    // observation), with one descriptor line: the crate folds the next family into it unless
    // it is dropped.
    let body =
        "# TYPE a counter\n# TYPE b gauge\nb 1\n# HELP c x\n# TYPE c gauge\n# HELP d y\nd 2\n";
    assert_eq!(
        expo::parse(body).unwrap(),
        [flat("b", "", None, 1.0), flat("d", "", None, 2.0)]
    );
    // `_created` after a counter (prometheus_client's OpenMetrics habit, here without `# EOF`).
    let body = "# TYPE c counter\nc_total 3\nc_created 1.7e9\n";
    let s = expo::parse(body).unwrap();
    assert_eq!(
        (value(&s, "c_total", ""), value(&s, "c_created", "")),
        (3.0, 1.7e9)
    );
}

#[test]
fn openmetrics_bodies_end_in_eof() {
    let body = "# TYPE c counter\n# HELP c Tokens.\nc_total{m=\"x\"} 12.0\nc_created{m=\"x\"} 1.7e+09\n\
        # TYPE h histogram\nh_bucket{le=\"1.0\"} 1.0\nh_bucket{le=\"+Inf\"} 2.0\nh_count 2.0\nh_sum 3.0\nh_created 1.7e+09\n\
        # HELP e Never observed.\n# TYPE e counter\n\
        # TYPE b info\nb_info{version=\"1\"} 1\n# EOF\n";
    assert_eq!(
        expo::parse(body).unwrap(),
        [
            flat("b_info", r#"version="1""#, None, 1.0),
            flat("c_total", r#"m="x""#, None, 12.0),
            flat("h_bucket", "", Some(1.0), 1.0),
            flat("h_bucket", "", Some(f64::INFINITY), 2.0),
            flat("h_count", "", None, 2.0),
            flat("h_sum", "", None, 3.0),
        ]
    );
}

#[test]
fn invalid_bodies_are_one_line_errors() {
    let cases: [(&str, &str); 11] = [
        // A family split in two, or declared twice.
        (
            "g 1\n# TYPE g gauge\ng 2\n",
            "invalid exposition: Found a metric family called g, after that family was finalised",
        ),
        (
            "# TYPE g gauge\ng{a=\"1\"} 1\n# TYPE h gauge\nh 1\n# TYPE g gauge\ng{a=\"2\"} 2\n",
            "invalid exposition: Found a metric family called g, after that family was finalised",
        ),
        (
            "# TYPE g gauge\ng 1\n# HELP g late\n",
            "invalid exposition: Found a metric family called g, after that family was finalised",
        ),
        (
            "# HELP g x\n# HELP g y\n# TYPE g gauge\ng 1\n",
            "invalid exposition: Got two help lines in the same metric family",
        ),
        (
            "# TYPE g gauge\ng 1\ng 2\n",
            "invalid exposition: Found two metrics with the same labelset",
        ),
        (
            "# TYPE c_total counter\nc_total NaN\n",
            "invalid exposition: Counter totals must be non negative (got: NaN)",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
            "invalid exposition: Histograms must have a +INF bucket: [HistogramBucket { count: Int(1), upper_bound: 1.0, exemplar: None }]",
        ),
        // Syntax: the line number is the body's, blank and comment lines counted.
        (
            "# TYPE g gauge\n\n# note\ng{a=\"1\"} one\n",
            "line 4: expected number: g{a=\"1\"} one",
        ),
        ("g\t1\n", "line 1: expected labels: g\\t1"),
        ("g Inf\n", "line 1: expected labels or number: g Inf"),
        (
            "# TYPE g gauge\ng{a=\"1\n",
            "line 2: expected label: g{a=\"1",
        ),
    ];
    for (body, error) in cases {
        assert_eq!(expo::parse(body), Err(error.to_owned()), "{body:?}");
    }
}

#[test]
fn garbage_never_panics() {
    let html = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1></body></html>\n";
    assert_eq!(
        expo::parse(html),
        Err("line 1: expected metricfamily: <!DOCTYPE html>".to_owned())
    );

    let binary = String::from_utf8_lossy(&[0x00, 0x9f, 0x92, 0x96, 0xff, b'\n', 0x1f, 0x8b, 0x08])
        .into_owned();
    assert_eq!(
        expo::parse(&binary),
        Err("line 1: expected metricfamily: \\u{0}\u{fffd}\u{fffd}\u{fffd}\u{fffd}".to_owned())
    );

    // A lone word is a metric name without a value.
    assert_eq!(
        expo::parse("NaN\n"),
        Err("line 1: expected labels: NaN".to_owned())
    );
    // Truncated inside a value, and after the name.
    assert_eq!(
        expo::parse("# TYPE g gauge\ng{a=\"1\"} 1.5e\n"),
        Err("line 2: expected exemplar: g{a=\"1\"} 1.5e".to_owned())
    );
    assert_eq!(
        expo::parse("# TYPE g gauge\ng"),
        Err("line 2: expected labels: g".to_owned())
    );
}

#[test]
fn a_one_megabyte_line() {
    let big = "x".repeat(1 << 20);
    // As a label value it is a valid sample.
    let s = expo::parse(&format!("g{{a=\"{big}\"}} 1\n")).unwrap();
    assert_eq!(
        (s.len(), s[0].labels.len(), s[0].value),
        (1, (1 << 20) + 4, 1.0)
    );
    // As a name without a value it is an error, and the error stays one short line.
    let err = expo::parse(&format!("{big}\n")).unwrap_err();
    assert_eq!(err, format!("line 1: expected labels: {}...", &big[..80]));
    // As an unterminated label value, too.
    let err = expo::parse(&format!("g{{a=\"{big}\n")).unwrap_err();
    assert_eq!(
        err,
        format!("line 1: expected label: g{{a=\"{}...", &big[..75])
    );
}

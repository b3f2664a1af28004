//! report.html: one self-contained file (inline CSS, charts as base64 SVG data URIs, no
//! scripts, no network) with the summary tables and every chart.

use std::fmt::Write as _;

use crate::analyze::Analysis;
use crate::distributions::{Brief, GroupRow};
use crate::format::{num, pct};
use crate::goodput;
use crate::plots::Chart;
use crate::stats::Stats;
use crate::summary::Summary;
use crate::table::metric_rows;
use crate::timeseries::TimeSeries;

pub(crate) const CSS: &str = r#"
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:34px 0 10px;border-bottom:2px solid #d8dce3;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:#5b6475;font-size:13px;margin-bottom:14px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}
.card .k{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:22px;font-weight:bold;margin-top:2px}.card .u{font-size:12px;color:#5b6475}
.banner{border-radius:6px;padding:10px 14px;margin:12px 0;font-size:14px}
.ok{background:#e5f4e8;border:1px solid #9fd3aa}.bad{background:#fde8e8;border:1px solid #f0a3a3;font-weight:bold}
.notes{background:#fff8e1;border:1px solid #f2d98a}.notes li{margin:3px 0}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0 10px;width:100%}
th,td{border:1px solid #dde1e8;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#eef0f4;font-weight:600}td.l,th.l{text-align:left;white-space:normal}
figure{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:14px 0;padding:8px}
figure img{width:100%;height:auto;display:block}figcaption{font-size:12.5px;color:#4a5263;padding:6px 4px 2px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:14px}
table.grp{font-size:12px}table.grp th,table.grp td{padding:3px 5px}table.grp th{white-space:normal}
code{background:#eef0f4;padding:1px 4px;border-radius:3px;font-size:12px}
footer{font-size:12px;color:#5b6475;margin-top:30px}
"#;

/// HTML-escapes `s`.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Standard base64 of `data`.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn card(out: &mut String, k: &str, v: &str, u: &str) {
    let _ = write!(
        out,
        r#"<div class="card"><div class="k">{}</div><div class="v">{}</div><div class="u">{}</div></div>"#,
        esc(k),
        esc(v),
        esc(u)
    );
}

pub(crate) fn kv_table(out: &mut String, rows: &[(&str, String)]) {
    out.push_str("<table>");
    for (k, v) in rows {
        let _ = write!(
            out,
            r#"<tr><th class="l">{}</th><td class="l">{}</td></tr>"#,
            esc(k),
            esc(v)
        );
    }
    out.push_str("</table>");
}

pub(crate) fn stats_table(out: &mut String, rows: &[(&str, &Stats)]) {
    let keys = [
        "count", "mean", "std", "min", "p25", "p50", "p75", "p90", "p95", "p99", "max",
    ];
    out.push_str(r#"<table><tr><th class="l">metric</th>"#);
    for k in keys {
        let _ = write!(out, "<th>{k}</th>");
    }
    out.push_str("</tr>");
    for (label, st) in rows {
        let _ = write!(out, r#"<tr><td class="l">{}</td>"#, esc(label));
        for k in keys {
            let v = if k == "count" {
                st.count.to_string()
            } else {
                num(st.get(k))
            };
            let _ = write!(out, "<td>{v}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn brief(b: &Brief) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td>",
        num(b.mean),
        num(b.p50),
        num(b.p95)
    )
}

fn group_table(out: &mut String, first: &str, rows: &[GroupRow], show_range: bool) {
    let _ = write!(
        out,
        r#"<table class="grp"><tr><th class="l" rowspan="2">{}</th>{}<th rowspan="2">requests</th><th colspan="3">TTFT ms</th><th colspan="3">TPOT ms</th><th colspan="3">E2EL ms</th><th colspan="3">output tok/s per request</th><th rowspan="2">mean input tokens</th><th rowspan="2">mean output tokens</th></tr><tr>{}</tr>"#,
        esc(first),
        if show_range {
            r#"<th rowspan="2">range</th>"#
        } else {
            ""
        },
        "<th>mean</th><th>p50</th><th>p95</th>".repeat(4)
    );
    for g in rows {
        let range = if show_range {
            format!(
                "<td>{}</td>",
                esc(&format!("{} - {}", num(g.lo), num(g.hi)))
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"<tr><td class="l">{}</td>{range}<td>{}</td>{}{}{}{}<td>{}</td><td>{}</td></tr>"#,
            esc(&g.label),
            g.requests,
            brief(&g.ttft_ms),
            brief(&g.tpot_ms),
            brief(&g.e2el_ms),
            brief(&g.request_output_throughput),
            num(g.avg_input_tokens),
            num(g.avg_output_tokens)
        );
    }
    out.push_str("</table>");
}

/// A chart as an inline SVG figure with its caption.
pub fn figure(out: &mut String, c: &Chart) {
    let _ = write!(
        out,
        r#"<figure id="{}"><img alt="{}" src="data:image/svg+xml;base64,{}"><figcaption>{}</figcaption></figure>"#,
        esc(&c.name),
        esc(&c.title),
        base64(c.svg.as_bytes()),
        esc(&c.caption)
    );
}

/// The report of one run.
pub fn html(a: &Analysis, s: &Summary, ts: &TimeSeries, charts: &[Chart]) -> String {
    let mut o = String::with_capacity(1 << 20);
    let title = match &s.run.name {
        Some(n) => format!("bench report: {n} ({})", s.run.run_dir),
        None => format!("bench report: {}", s.run.run_dir),
    };
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{}</title><style>{CSS}</style></head><body><main>"#,
        esc(&title)
    );
    let _ = write!(o, "<h1>{}</h1>", esc(&title));
    let mut sub = Vec::new();
    if let Some(t) = &s.run.started_at {
        sub.push(format!("started {t}"));
    }
    sub.push(format!(
        "mode {}",
        s.run.mode.clone().unwrap_or_else(|| "unknown".into())
    ));
    if let Some(c) = s.run.concurrency {
        sub.push(format!("concurrency {c}"));
    }
    if let Some(m) = &s.run.model {
        sub.push(format!("model {m}"));
    }
    if let Some(v) = &s.run.tool_version {
        sub.push(format!("bench {v}"));
    }
    let _ = write!(o, r#"<div class="sub">{}</div>"#, esc(&sub.join(" · ")));
    if let Some(d) = &s.run.description {
        let _ = write!(o, r#"<p class="desc">{}</p>"#, esc(d));
    }
    let mut ident = Vec::new();
    if !s.run.tags.is_empty() {
        ident.push(format!("tags {}", s.run.tags.join(", ")));
    }
    if let Some(id) = &s.run.id {
        ident.push(format!("id {id}"));
    }
    if !ident.is_empty() {
        let _ = write!(o, r#"<div class="sub">{}</div>"#, esc(&ident.join(" · ")));
    }
    if let Some(line) = crate::server_report::server_line(a) {
        let _ = write!(o, r#"<div class="sub">{}</div>"#, esc(&line));
    }

    let v = &s.verdict;
    let class = match v.outcome {
        crate::verdict::Outcome::Ok => "ok",
        crate::verdict::Outcome::Warning => "notes",
        crate::verdict::Outcome::Failed => "bad",
    };
    let _ = write!(
        o,
        r#"<div class="banner {class}"><b>{}</b>: {}"#,
        v.outcome.label(),
        esc(v.lines.first().map_or("", String::as_str))
    );
    if v.lines.len() > 1 {
        o.push_str("<ul>");
        for l in &v.lines[1..] {
            let _ = write!(o, "<li>{}</li>", esc(l));
        }
        o.push_str("</ul>");
    }
    o.push_str("</div>");
    if !s.notes.is_empty() {
        o.push_str(r#"<div class="banner notes"><b>Notes</b><ul>"#);
        for n in &s.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul></div>");
    }

    if !s.thresholds.is_empty() {
        o.push_str(r#"<h2>Thresholds</h2><table><tr><th class="l">result</th><th class="l">condition</th><th>value</th></tr>"#);
        for t in &s.thresholds {
            let _ = write!(
                o,
                r#"<tr><td class="l"><b>{}</b></td><td class="l">{}</td><td>{}</td></tr>"#,
                if t.pass { "PASS" } else { "FAIL" },
                esc(&t.threshold),
                t.value.map_or("no value".to_string(), |v| num(Some(v)))
            );
        }
        o.push_str("</table>");
    }

    o.push_str(r#"<div class="cards">"#);
    card(
        &mut o,
        "measured requests",
        &s.counts.measured.to_string(),
        &format!("of {} rows, {} failed", s.counts.rows, s.counts.failed),
    );
    card(
        &mut o,
        "duration",
        &num(s.duration_s),
        "s, first send to last end",
    );
    card(
        &mut o,
        "request throughput",
        &num(s.request_throughput),
        "requests/s",
    );
    if let Some(offered) = s.offered_rate {
        card(
            &mut o,
            "offered / achieved",
            &format!("{} / {}", num(Some(offered)), num(s.achieved_rate)),
            &format!(
                "requests/s; {} s past the workload's span",
                num(s.overrun_s)
            ),
        );
    }
    card(
        &mut o,
        "output throughput",
        &num(s.output_token_throughput),
        "tokens/s",
    );
    match s.goodput {
        Some(g) => card(
            &mut o,
            "goodput",
            &num(Some(g)),
            &format!(
                "req/s, {} met {}",
                pct(s.slo.attainment),
                goodput::describe(&s.slo)
            ),
        ),
        None if s.slo.good_requests.is_some() => card(
            &mut o,
            "goodput",
            "-",
            &format!("no request ran; SLO {}", goodput::describe(&s.slo)),
        ),
        None => card(&mut o, "goodput", "-", "no SLO set (analysis.slo.*)"),
    }
    card(
        &mut o,
        "TTFT p50 / p99",
        &format!("{} / {}", num(s.ttft_ms.p50), num(s.ttft_ms.p99)),
        "ms",
    );
    card(
        &mut o,
        "TPOT p50 / p99",
        &format!("{} / {}", num(s.tpot_ms.p50), num(s.tpot_ms.p99)),
        "ms",
    );
    card(
        &mut o,
        "E2EL p50 / p99",
        &format!("{} / {}", num(s.e2el_ms.p50), num(s.e2el_ms.p99)),
        "ms",
    );
    o.push_str("</div>");

    o.push_str("<h2>Latency per request</h2>");
    let mut rows: Vec<(&str, &Stats)> = metric_rows(s).to_vec();
    rows.push(("Input tokens", &s.input_tokens));
    rows.push(("Output tokens", &s.output_tokens));
    stats_table(&mut o, &rows);
    if let Some(q) = &s.reasoning {
        let _ = write!(
            o,
            "<h3>Reasoning ({} requests: {} reasoning + {} answer tokens; {} reasoning counts from the server's usage)</h3>",
            q.requests_with_reasoning,
            num(Some(q.total_reasoning_tokens)),
            num(Some(q.total_answer_tokens)),
            q.reasoning_from_usage
        );
        stats_table(&mut o, &crate::table::reasoning_rows(q));
    }
    o.push_str(r#"<div class="sub">Percentiles interpolate linearly between ranks (numpy's default); std is the population standard deviation. ITL pools every gap between consecutive content chunks of every measured request. Latencies and token figures cover measured requests; dispatch lag, queue delay and schedule lag cover every sent request. Definitions: docs/METRICS.md.</div>"#);

    o.push_str("<h2>Requests, throughput and goodput</h2><div class=\"two\"><div>");
    let c = &s.counts;
    o.push_str("<h3>Requests by status</h3>");
    kv_table(
        &mut o,
        &[
            ("rows in requests.parquet", c.rows.to_string()),
            ("warmup", c.warmup.to_string()),
            ("ok", c.ok.to_string()),
            ("http_error", c.http_error.to_string()),
            ("timeout", c.timeout.to_string()),
            ("transport_error", c.transport_error.to_string()),
            ("cancelled", c.cancelled.to_string()),
            ("not_sent", c.not_sent.to_string()),
            ("measured", c.measured.to_string()),
            (
                "workload requests",
                s.run
                    .workload_requests
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
        ],
    );
    o.push_str("<h3>Excluded from the metrics</h3>");
    if s.excluded.is_empty() {
        o.push_str("<p>Nothing: every row is measured.</p>");
    } else {
        o.push_str(
            r#"<table><tr><th class="l">reason</th><th>count</th><th class="l">why</th></tr>"#,
        );
        for e in &s.excluded {
            let _ = write!(
                o,
                r#"<tr><td class="l">{}</td><td>{}</td><td class="l">{}</td></tr>"#,
                esc(&e.reason),
                e.count,
                esc(&e.why)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</div><div><h3>Throughput (first send to last end)</h3>");
    kv_table(&mut o, &throughput_rows(s));
    o.push_str("<h3>Goodput</h3>");
    if s.slo.good_requests.is_some() {
        let g = &s.slo;
        let met = |slo: Option<f64>, m: Option<u64>| {
            slo.map(|v| format!("<= {v} ms: {} requests", m.unwrap_or(0)))
                .unwrap_or_else(|| "-".into())
        };
        kv_table(
            &mut o,
            &[
                ("goodput", format!("{} req/s", num(s.goodput))),
                (
                    "good requests",
                    format!(
                        "{} ({} of measured + failed)",
                        g.good_requests.unwrap_or(0),
                        pct(g.attainment)
                    ),
                ),
                ("TTFT", met(g.ttft_ms, g.met_ttft)),
                ("TPOT", met(g.tpot_ms, g.met_tpot)),
                ("max ITL", met(g.itl_ms, g.met_itl)),
                ("E2EL", met(g.e2el_ms, g.met_e2el)),
            ],
        );
    } else {
        o.push_str("<p>No SLO set: give <code>analysis.slo.ttft_ms</code>, <code>tpot_ms</code>, <code>itl_ms</code> or <code>e2el_ms</code>.</p>");
    }
    o.push_str("</div></div>");

    let find = |prefix: &'static str| charts.iter().filter(move |c| c.name.starts_with(prefix));
    o.push_str("<h2>Distributions</h2>");
    for c in find("ttft_")
        .chain(find("e2el_"))
        .chain(find("output_throughput_"))
    {
        figure(&mut o, c);
    }
    if charts.is_empty() {
        o.push_str("<p>No chart: nothing was measured.</p>");
    }
    o.push_str("<h2>Over time</h2>");
    for c in find("total_output_throughput")
        .chain(find("load_over_time"))
        .chain(find("latency_over_time"))
        .chain(find("gantt"))
    {
        figure(&mut o, c);
    }
    let _ = write!(
        o,
        r#"<div class="sub">Bins of {} s; every bin is in timeseries.csv.</div>"#,
        num(Some(ts.bin_s))
    );

    crate::server_report::section(&mut o, s, charts);

    o.push_str("<h2>By input and output length</h2>");
    o.push_str("<h3>Input length (tokens)</h3>");
    group_table(&mut o, "bin", &s.length_distributions.input, true);
    o.push_str("<h3>Output length (tokens)</h3>");
    group_table(&mut o, "bin", &s.length_distributions.output, true);

    o.push_str("<h2>Breakdowns</h2><h3>By requests in flight when sent</h3>");
    group_table(&mut o, "in flight", &s.breakdowns.concurrency, false);
    if !s.breakdowns.dataset.is_empty() {
        o.push_str("<h3>By dataset</h3>");
        group_table(&mut o, "dataset", &s.breakdowns.dataset, false);
    }
    if !s.breakdowns.turn.is_empty() {
        o.push_str("<h3>By session turn</h3>");
        group_table(&mut o, "turn", &s.breakdowns.turn, false);
    }

    if !s.pairs.is_empty() {
        o.push_str("<h2>Field against field</h2>");
        for p in &s.pairs {
            let _ = write!(o, "<h3>{} by {}</h3>", esc(p.y.name()), esc(p.x.name()));
            if let Some(c) = charts
                .iter()
                .find(|c| c.name == format!("pair_{}_vs_{}", p.x, p.y))
            {
                figure(&mut o, c);
            }
            let _ = write!(
                o,
                r#"<table><tr><th class="l">{} range</th><th>requests</th><th>{} mean</th><th>p50</th><th>p95</th><th>p99</th></tr>"#,
                esc(p.x.name()),
                esc(p.y.name())
            );
            for b in &p.bins {
                let _ = write!(
                    o,
                    r#"<tr><td class="l">{} - {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    num(Some(b.lo)),
                    num(Some(b.hi)),
                    b.requests,
                    num(b.y.mean),
                    num(b.y.p50),
                    num(b.y.p95),
                    num(b.y.p99)
                );
            }
            o.push_str("</table>");
        }
    }

    let _ = writeln!(
        o,
        "<footer>Written by bench analysis from {} ({} rows). Files in the run directory: {}.</footer></main></body></html>",
        esc(&a.rec.path.display().to_string()),
        a.rec.rows,
        esc(&s.files.join(", "))
    );
    o
}

/// The throughput table: window, rates, token counts and their sources, bytes sent.
fn throughput_rows(s: &Summary) -> Vec<(&'static str, String)> {
    let mut rows: Vec<(&'static str, String)> = vec![
        (
            "window",
            match (s.window.start_s, s.window.end_s) {
                // Seconds since the time origin, to the millisecond.
                (Some(a), Some(b)) => {
                    format!("{a:.3} s to {b:.3} s after start ({:.3} s)", b - a)
                }
                _ => "-".into(),
            },
        ),
        ("requests/s", num(s.request_throughput)),
        ("input tokens/s", num(s.input_token_throughput)),
        ("output tokens/s", num(s.output_token_throughput)),
        ("total tokens/s", num(s.total_token_throughput)),
        (
            "workload units/s",
            format!("{} ({})", num(s.workload_unit_throughput), s.workload_unit),
        ),
        (
            "input / output tokens",
            format!(
                "{} / {}",
                num(Some(s.tokens.total_input)),
                num(Some(s.tokens.total_output))
            ),
        ),
        (
            "output tokens counted by",
            format!(
                "server usage {}, client {}, none {}",
                s.tokens.output_from_usage, s.tokens.output_from_client, s.tokens.output_missing
            ),
        ),
        (
            "usage vs client output tokens",
            if s.tokens.output_from_usage == 0 {
                "- (the server reported no usage)".to_string()
            } else {
                format!(
                    "{} vs {} ({} requests differ)",
                    num(Some(s.tokens.output_usage_sum)),
                    num(Some(s.tokens.output_client_sum)),
                    s.tokens.output_mismatches
                )
            },
        ),
    ];
    if let Some(b) = &s.sent {
        let mb = |x: u64| x as f64 / 1e6;
        let images = if b.requests_with_images == 0 {
            "no images".to_string()
        } else {
            format!(
                "{} requests with images, {:.1} MB of images (mean {:.1} KB per request, before base64)",
                b.requests_with_images,
                mb(b.image_bytes_total),
                b.image_bytes.mean.unwrap_or(0.0) / 1e3
            )
        };
        rows.push((
            "bytes sent",
            format!(
                "{:.1} MB of request bodies; {images}",
                mb(b.request_bytes_total)
            ),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

//! How long one /metrics answer takes to parse: the scraper's CPU cost per scrape, on the
//! client's machine. The body is vllm.prom (an engine's exposition as its docs give it) repeated
//! under distinct model names up to a busy vLLM's size (~1,000 to 4,000 lines).
//!
//! `cargo bench -p bench-server --bench parse`; `cargo test --all-targets` runs it once short.

use std::time::Instant;

fn body(copies: usize) -> String {
    let one = include_str!("../tests/data/vllm.prom");
    let mut out = String::new();
    // one family block per copy would repeat families (invalid): copies go inside each family
    let mut families: Vec<String> = Vec::new();
    for block in one.split("# HELP ").filter(|b| !b.trim().is_empty()) {
        let whole = format!("# HELP {block}");
        let mut fam: String = whole
            .lines()
            .filter(|l| l.starts_with('#'))
            .flat_map(|l| [l, "\n"])
            .collect();
        let samples: Vec<String> = whole
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        for k in 0..copies {
            for s in &samples {
                // every sample gets a `copy` label: a distinct label set per copy
                let labelled = match s.find('{') {
                    Some(i) => format!("{}{{copy=\"{k}\",{}", &s[..i], &s[i + 1..]),
                    None => s.replacen(' ', &format!("{{copy=\"{k}\"}} "), 1),
                };
                fam.push_str(&labelled);
                fam.push('\n');
            }
        }
        families.push(fam);
    }
    for f in families {
        out.push_str(&f);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    println!(
        "{:>8} {:>9} {:>9} {:>11} {:>10}",
        "copies", "lines", "bytes", "samples", "ms/parse"
    );
    for copies in if quick {
        vec![1, 4]
    } else {
        vec![1, 4, 10, 40]
    } {
        let text = body(copies);
        let n = bench_server::expo::parse(&text).expect("parses").len();
        let rounds = if quick { 3 } else { 20 };
        let t0 = Instant::now();
        for _ in 0..rounds {
            let got = bench_server::expo::parse(&text).expect("parses");
            assert_eq!(got.len(), n);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3 / rounds as f64;
        println!(
            "{copies:>8} {:>9} {:>9} {n:>11} {ms:>10.2}",
            text.lines().count(),
            text.len()
        );
    }
}

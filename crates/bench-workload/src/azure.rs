//! `azure`: replay of the Azure LLM inference trace CSV.
//!
//! Header `TIMESTAMP,ContextTokens,GeneratedTokens` (columns found by name, so the multimodal
//! trace's extra `NumImages` column is fine). `TIMESTAMP` is parsed exactly with integers
//! (2023: 7 fractional digits = 100 ns; 2024: 6 digits and `+00:00`). Each row is one request
//! at `(TIMESTAMP - window start) x time_scale`, where the window starts `start_s` after the
//! earliest row (default: at it), so without a window the first row is at 0 and the last at
//! the trace span; rows in `[start_s, end_s)` are kept. The prompt has `ContextTokens` tokens
//! (dataset match or generated), the output length is `GeneratedTokens` (a 0 in either becomes
//! 1, counted in `zero_lengths_raised`). Rows out of time order are replayed in time order.

use std::path::Path;

use bench_config::Config;

use crate::WorkloadError;
use crate::csv::{self, CsvFile, err};
use crate::datetime;
use crate::plan::{Demand, Generated, Want};

/// One trace row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub time_ns: i64,
    pub context: u32,
    pub generated: u32,
}

/// Reads every row of an Azure trace.
pub(crate) fn read(path: &Path, f: &CsvFile) -> Result<Vec<Row>, WorkloadError> {
    let mut records = f.records(path);
    let (hl, header) = records.next().transpose()?.ok_or_else(|| {
        err(
            path,
            0,
            "empty file (expected the header TIMESTAMP,ContextTokens,GeneratedTokens)",
        )
    })?;
    let col = |name: &str| {
        csv::column(&header, name).ok_or_else(|| {
            let h = header.iter().collect::<Vec<_>>().join(",");
            err(path, hl, format!("no `{name}` column in the header `{h}` (expected TIMESTAMP,ContextTokens,GeneratedTokens)"))
        })
    };
    let (ct, cc, cg) = (
        col("TIMESTAMP")?,
        col("ContextTokens")?,
        col("GeneratedTokens")?,
    );
    let width = header.len();
    let mut rows = Vec::new();
    for r in records {
        let (n, cells) = r?;
        if cells.len() != width {
            return Err(err(
                path,
                n,
                format!("{} fields, the header has {width}", cells.len()),
            )
            .into());
        }
        let time_ns = datetime::parse_ns(&cells[ct]).map_err(|e| err(path, n, e))?;
        let int = |i: usize, name: &str| -> Result<u32, WorkloadError> {
            cells[i].trim().parse::<u32>().map_err(|_| {
                err(
                    path,
                    n,
                    format!("{name} `{}` is not a token count", cells[i].trim()),
                )
                .into()
            })
        };
        rows.push(Row {
            time_ns,
            context: int(cc, "ContextTokens")?,
            generated: int(cg, "GeneratedTokens")?,
        });
    }
    if rows.is_empty() {
        return Err(err(path, 0, "no data rows").into());
    }
    Ok(rows)
}

pub(crate) fn generate(cfg: &Config) -> Result<Generated, WorkloadError> {
    let w = &cfg.workload;
    let a = &w.azure;
    let key = "workload.azure.trace_path";
    let path = a
        .trace_path
        .as_deref()
        .ok_or_else(|| WorkloadError::Input {
            key: key.into(),
            msg: "is required when workload.type is azure".into(),
        })?;
    let p = Path::new(path);
    let f = CsvFile::read(p).map_err(|e| WorkloadError::Input {
        key: key.into(),
        msg: format!("{path}: {e}"),
    })?;
    let mut rows = read(p, &f)?;
    rows.sort_by_key(|r| r.time_ns);
    let first = rows[0].time_ns;
    let span_ns = rows[rows.len() - 1].time_ns - first;
    let s_to_ns = |s: f64| (s * 1e9).round() as i64;
    let start = a.start_s.map_or(0, s_to_ns);
    let end = a.end_s.map_or(i64::MAX, s_to_ns);
    let mut g = Generated::default();
    g.inputs.push((key.into(), p.into()));
    let mut raised = 0u64;
    let mut len = |v: u32| {
        raised += (v == 0) as u64;
        v.max(1)
    };
    for r in &rows {
        let rel = r.time_ns - first;
        if rel < start || rel >= end {
            continue;
        }
        let t_ms = (rel - start) as f64 * w.time_scale / 1e6;
        g.demands.push(Demand {
            t_ms,
            want: Want::Length(len(r.context)),
            output_length: Some(len(r.generated)),
        });
    }
    if g.demands.is_empty() {
        return Err(WorkloadError::Input {
            key: "workload.azure.start_s".into(),
            msg: format!(
                "the window [{} s, {}) holds none of the trace's rows (it spans {} s)",
                a.start_s.unwrap_or(0.0),
                a.end_s.map_or("the end".into(), |e| format!("{e} s")),
                span_ns as f64 / 1e9
            ),
        });
    }
    g.stat("trace_rows", rows.len() as u64);
    g.stat("trace_span_ms", span_ns as f64 / 1e6);
    g.stat("zero_lengths_raised", raised);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Row>, String> {
        read(Path::new("a.csv"), &CsvFile::from_text(text)).map_err(|e| e.to_string())
    }

    #[test]
    fn crlf_no_final_newline_and_2024_format() {
        let r = parse("TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:50.9951690,396,109").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].time_ns - r[0].time_ns, 4_314_579_000);
        assert_eq!((r[1].context, r[1].generated), (396, 109));
        let r = parse("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-05-10 00:00:00.009930+00:00,10,2\n2024-05-10 00:00:01.5+00:00,3,1\n").unwrap();
        assert_eq!(r[1].time_ns - r[0].time_ns, 1_490_070_000);
        let r = parse(
            "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n2024-05-10 00:00:00,2,10,3\n",
        )
        .unwrap();
        assert_eq!((r[0].context, r[0].generated), (10, 3));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let h = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n";
        let ok = "2023-11-16 18:15:46.6805900,374,44\r\n";
        for (bad, want) in [
            (
                "2023-11-16 18:15:47.1,x,4",
                "a.csv:3: ContextTokens `x` is not a token count",
            ),
            (
                "2023-11-16 18:15:47.1,5,-4",
                "a.csv:3: GeneratedTokens `-4` is not a token count",
            ),
            (
                "2023-11-16 18:15:47.1,5",
                "a.csv:3: 2 fields, the header has 3",
            ),
            (
                "2023-11-16 25:15:47.1,5,4",
                "a.csv:3: timestamp `2023-11-16 25:15:47.1`: bad time of day",
            ),
            ("18:15:47,5,4", "a.csv:3: timestamp `18:15:47`"),
        ] {
            let e = parse(&format!("{h}{ok}{bad}")).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = parse("time,ctx,gen\n").unwrap_err();
        assert!(e.contains("a.csv:1: no `TIMESTAMP` column"), "{e}");
        let e = parse(h).unwrap_err();
        assert!(e.contains("a.csv:0: no data rows"), "{e}");
    }
}

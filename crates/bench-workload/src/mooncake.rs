//! `mooncake`: replay of a Mooncake trace, `{"timestamp": ms, "input_length", "output_length",
//! "hash_ids"}` per line.
//!
//! Each hash id is one `block_tokens`-token block of text, the same wherever it appears, so
//! requests that share leading ids share a prompt prefix (what prefix caching feeds on).
//! By default requests carry `hash_ids` and `prompt_length` (= input_length) but no text; the
//! header's `prompt_blocks` says how the client turns them into text when it sends
//! (`TextGen::blocks_prompt`: every block in full but the last, cut so the prompt is
//! exactly input_length tokens). That keeps the conversation trace at ~3 MB instead of ~600 MB
//! and costs the client one block generation per id it sends. `materialize: true` writes the
//! text instead (AIBrix-compatible, no header).
//!
//! Every row must have `ceil(input_length / block_tokens)` ids (true of every row of the
//! published traces); anything else means the block size is wrong, so it is an error naming
//! the line. Time: `(timestamp - window start) x time_scale`, the window starting `start_ms`
//! after the earliest row (default: at it).

use std::collections::HashSet;
use std::path::Path;

use bench_config::Config;
use bench_types::{FormatError, jsonl};
use serde::Deserialize;

use crate::WorkloadError;
use crate::plan::{Demand, Generated, Want};

#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: u64,
    output_length: u64,
    hash_ids: Vec<u64>,
}

/// One trace row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub timestamp_ms: f64,
    pub input_length: u32,
    pub output_length: u32,
    pub hash_ids: Vec<u64>,
}

/// Reads and checks every row.
pub(crate) fn read(path: &Path, block_tokens: u32) -> Result<Vec<Row>, FormatError> {
    let mut rows = Vec::new();
    jsonl::for_each_line(path, jsonl::open(path)?, |n, l| {
        let r: Line = jsonl::parse_line(path, n, l)?;
        let bad = |m: String| FormatError::parse(path, n, m);
        if !(r.timestamp.is_finite() && r.timestamp >= 0.0) {
            return Err(bad(format!(
                "timestamp {} is not a non-negative number of ms",
                r.timestamp
            )));
        }
        let input_length = u32::try_from(r.input_length)
            .ok()
            .filter(|&x| x > 0)
            .ok_or_else(|| bad(format!("input_length {} is out of range", r.input_length)))?;
        let output_length = u32::try_from(r.output_length)
            .map_err(|_| bad(format!("output_length {} is out of range", r.output_length)))?;
        let want = input_length.div_ceil(block_tokens) as usize;
        if r.hash_ids.len() != want {
            return Err(bad(format!(
                "{} hash_ids for input_length {input_length}, but {block_tokens}-token blocks need {want} (check workload.mooncake.block_tokens)",
                r.hash_ids.len()
            )));
        }
        rows.push(Row {
            timestamp_ms: r.timestamp,
            input_length,
            output_length,
            hash_ids: r.hash_ids,
        });
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(FormatError::parse(path, 0, "no rows"));
    }
    Ok(rows)
}

pub(crate) fn generate(cfg: &Config) -> Result<Generated, WorkloadError> {
    let w = &cfg.workload;
    let m = &w.mooncake;
    let key = "workload.mooncake.trace_path";
    let path = m
        .trace_path
        .as_deref()
        .ok_or_else(|| WorkloadError::Input {
            key: key.into(),
            msg: "is required when workload.type is mooncake".into(),
        })?;
    let p = Path::new(path);
    if let Err(e) = std::fs::metadata(p) {
        return Err(WorkloadError::Input {
            key: key.into(),
            msg: format!("{path}: {e}"),
        });
    }
    let mut rows = read(p, m.block_tokens)?;
    rows.sort_by(|a, b| a.timestamp_ms.total_cmp(&b.timestamp_ms));
    let first = rows[0].timestamp_ms;
    let span = rows[rows.len() - 1].timestamp_ms - first;
    let start = m.start_ms.unwrap_or(0.0);
    let end = m.end_ms.unwrap_or(f64::INFINITY);
    let mut g = Generated::default();
    g.inputs.push((key.into(), p.into()));
    let mut unique = HashSet::new();
    let (mut refs, mut raised) = (0u64, 0u64);
    let total = rows.len();
    for r in rows {
        let rel = r.timestamp_ms - first;
        if rel < start || rel >= end {
            continue;
        }
        refs += r.hash_ids.len() as u64;
        unique.extend(r.hash_ids.iter().copied());
        raised += (r.output_length == 0) as u64;
        g.demands.push(Demand {
            t_ms: (rel - start) * w.time_scale,
            want: Want::Blocks {
                hash_ids: r.hash_ids,
                input_length: r.input_length,
            },
            output_length: Some(r.output_length.max(1)),
        });
    }
    if g.demands.is_empty() {
        return Err(WorkloadError::Input {
            key: "workload.mooncake.start_ms".into(),
            msg: format!(
                "the window [{start}, {end}) ms holds none of the trace's rows (it spans {span} ms)"
            ),
        });
    }
    g.stat("trace_rows", total as u64);
    g.stat("trace_span_ms", span);
    g.stat("block_refs", refs);
    g.stat("unique_blocks", unique.len() as u64);
    g.stat("zero_lengths_raised", raised);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` written to a file named `name` in a fresh temporary directory (kept alive by
    /// the returned guard).
    fn tmp(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn reads_rows_and_checks_block_counts() {
        let (_d, p) = tmp(
            "ok.jsonl",
            "{\"timestamp\": 0, \"input_length\": 513, \"output_length\": 5, \"hash_ids\": [0, 1]}\n{\"timestamp\": 3000.5, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [0]}",
        );
        let r = read(&p, 512).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].timestamp_ms, 3000.5);
        assert_eq!(r[0].hash_ids, [0, 1]);
        let e = read(&p, 256).unwrap_err().to_string();
        assert!(
            e.contains("ok.jsonl:1: 2 hash_ids for input_length 513, but 256-token blocks need 3"),
            "{e}"
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (text, want) in [
            (
                "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5, \"hash_ids\": [0]}\n{\"timestamp\": 1, \"input_length\": 5}\n",
                "bad.jsonl:2: missing field `output_length`",
            ),
            (
                "{\"timestamp\": -1, \"input_length\": 5, \"output_length\": 5, \"hash_ids\": [0]}\n",
                "bad.jsonl:1: timestamp -1",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 5, \"hash_ids\": []}\n",
                "bad.jsonl:1: input_length 0 is out of range",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5, \"hash_ids\": [0]}\n{not json\n",
                "bad.jsonl:2: ",
            ),
        ] {
            let (_d, p) = tmp("bad.jsonl", text);
            let e = read(&p, 512).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}

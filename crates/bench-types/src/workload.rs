//! `workload.jsonl`: when each request is sent, in AIBrix's layout.
//!
//! ```text
//! {"bench_workload": {"version": 1, "generator": "mooncake", "mode": "open_loop", ...}}   <- optional header
//! {"timestamp": 0, "requests": [{"prompt": "...", "prompt_length": 12, "output_length": 40}]}
//! {"timestamp": 12.5, "requests": [{"hash_ids": [0, 1], "prompt_length": 700, "output_length": 9}]}
//! ```
//!
//! * `timestamp` is milliseconds from the start of the run; all requests on a line are due at
//!   that time. Integral values are written as integers (as AIBrix does); fractional values keep
//!   up to 6 decimals (ns resolution).
//! * The header line is written only when the workload needs something AIBrix's layout cannot
//!   say: closed-loop mode, or prompts given by shared block ids ([`BlockSpec`]). A file
//!   without a header is a plain open-loop AIBrix workload.
//! * Readers accept `prompt_length`/`"Prompt Length"` and `output_length`/`"Output Length"`,
//!   a line carrying many requests, CRLF, no final newline, and AIBrix's older array layout
//!   `[[timestamp_ms, [[prompt, prompt_len, output_len, null], ...]], ...]`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::jsonl::{self, FormatError};

/// How the client drives the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoopMode {
    /// Each request is sent at its timestamp, whatever the server does.
    #[default]
    OpenLoop,
    /// Keep `concurrency` requests in flight until all are done; timestamps give only the order.
    ClosedLoop,
}

/// How to turn a request's `hash_ids` into prompt text: block `h` is the deterministic text
/// `bench_text::block_text(tokenizer, seed, h, block_tokens)`, the same wherever `h` appears, so
/// requests that share leading ids share a textual (and token) prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// Text generator and its version, e.g. `bench-text/1`.
    pub generator: String,
    /// Tokenizer the block lengths are measured with (config syntax, e.g. `builtin:cl100k_base`).
    pub tokenizer: String,
    /// Seed of the block text.
    pub seed: u64,
    /// Tokens per block (512 for Mooncake traces).
    pub block_tokens: u32,
}

/// The optional first line of a workload file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadHeader {
    /// Format version (1).
    pub version: u32,
    /// The workload type that produced the file (`constant`, `mooncake`, ...).
    pub generator: String,
    /// Open or closed loop.
    #[serde(default)]
    pub mode: LoopMode,
    /// Requests kept in flight in closed-loop mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// How `hash_ids` become text, when requests use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_blocks: Option<BlockSpec>,
    /// Number of requests in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests: Option<u64>,
}

impl WorkloadHeader {
    /// A header for an open-loop workload from `generator`.
    pub fn open_loop(generator: &str) -> Self {
        WorkloadHeader {
            version: 1,
            generator: generator.to_string(),
            mode: LoopMode::OpenLoop,
            concurrency: None,
            prompt_blocks: None,
            num_requests: None,
        }
    }
    /// Whether the header says anything AIBrix's layout cannot (and so must be written).
    pub fn is_needed(&self) -> bool {
        self.mode != LoopMode::OpenLoop || self.prompt_blocks.is_some()
    }
}

#[derive(Serialize, Deserialize)]
struct HeaderLine {
    bench_workload: WorkloadHeader,
}

/// One request of a workload entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WorkloadRequest {
    /// The prompt text. Absent when the prompt is given by `hash_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Prompt length in tokens under the run's tokenizer.
    #[serde(
        default,
        alias = "Prompt Length",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_length: Option<u32>,
    /// Requested output length in tokens (`max_tokens`); `null` lets the server decide.
    #[serde(default, alias = "Output Length")]
    pub output_length: Option<u32>,
    /// Session this request belongs to; turns of one session are sent in order, each after
    /// the previous reply, with the conversation so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// 0-based turn within the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// Prompt given as shared blocks (see [`BlockSpec`]), instead of `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_ids: Option<Vec<u64>>,
    /// Image sent with the prompt (chat content part), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// Synthetic images made by the client and sent with the prompt (after `image_path`'s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<crate::image::SyntheticImage>>,
    /// The named dataset (`datasets:`) the prompt came from, in a mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Other fields of the request (an image job's `width`, `height`, `steps`, `workflow`):
    /// `{{field.NAME}}` in a `client.api: template` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl WorkloadRequest {
    /// Whether the request sends an image (a file's, or synthetic ones).
    pub fn has_images(&self) -> bool {
        self.image_path.is_some() || self.images.as_ref().is_some_and(|v| !v.is_empty())
    }
}

/// A group of requests due at the same time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEntry {
    /// Milliseconds from the start of the run.
    #[serde(serialize_with = "ser_ms")]
    pub timestamp: f64,
    /// The requests due at `timestamp`.
    pub requests: Vec<WorkloadRequest>,
}

/// Writes integral milliseconds as integers, others rounded to nanoseconds.
fn ser_ms<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    let ns = (v * 1e6).round();
    if ns % 1e6 == 0.0 && ns.abs() < 9e15 {
        s.serialize_i64((ns / 1e6) as i64)
    } else {
        s.serialize_f64(ns / 1e6)
    }
}

/// A whole workload file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workload {
    /// The header line, when the file has one.
    pub header: Option<WorkloadHeader>,
    /// The entries, in file order.
    pub entries: Vec<WorkloadEntry>,
}

impl Workload {
    /// Total number of requests.
    pub fn num_requests(&self) -> usize {
        self.entries.iter().map(|e| e.requests.len()).sum()
    }
    /// Loop mode (open loop when there is no header).
    pub fn mode(&self) -> LoopMode {
        self.header.as_ref().map(|h| h.mode).unwrap_or_default()
    }
    /// Last timestamp minus first, in ms (0 for an empty workload).
    pub fn span_ms(&self) -> f64 {
        match (self.entries.first(), self.entries.last()) {
            (Some(a), Some(b)) => b.timestamp - a.timestamp,
            _ => 0.0,
        }
    }
}

/// Reads a workload file (JSONL with optional header, or AIBrix's older JSON array layout).
pub fn read(path: &Path) -> Result<Workload, FormatError> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return read_legacy_array(path, &bytes);
    }
    let mut wl = Workload::default();
    let mut first_line = true;
    jsonl::for_each_line(path, &bytes[..], |n, line| {
        let is_first = std::mem::replace(&mut first_line, false);
        if is_first && line.trim_start().starts_with("{\"bench_workload\"") {
            let h: HeaderLine = jsonl::parse_line(path, n, line)?;
            if h.bench_workload.version != 1 {
                return Err(FormatError::parse(
                    path,
                    n,
                    format!("unsupported workload version {}", h.bench_workload.version),
                ));
            }
            wl.header = Some(h.bench_workload);
            return Ok(());
        }
        let e: WorkloadEntry = jsonl::parse_line(path, n, line)?;
        check_entry(path, n, &e, wl.header.as_ref())?;
        wl.entries.push(e);
        Ok(())
    })?;
    Ok(wl)
}

fn check_entry(
    path: &Path,
    n: usize,
    e: &WorkloadEntry,
    h: Option<&WorkloadHeader>,
) -> Result<(), FormatError> {
    if !e.timestamp.is_finite() || e.timestamp < 0.0 {
        return Err(FormatError::parse(
            path,
            n,
            format!(
                "timestamp {} is not a non-negative number of ms",
                e.timestamp
            ),
        ));
    }
    for (i, r) in e.requests.iter().enumerate() {
        match (&r.prompt, &r.hash_ids) {
            (None, None) => {
                return Err(FormatError::parse(
                    path,
                    n,
                    format!("request {i} has neither \"prompt\" nor \"hash_ids\""),
                ));
            }
            (None, Some(_)) if h.and_then(|h| h.prompt_blocks.as_ref()).is_none() => {
                return Err(FormatError::parse(
                    path,
                    n,
                    format!(
                        "request {i} gives its prompt as \"hash_ids\" but the file has no header with \"prompt_blocks\""
                    ),
                ));
            }
            (None, Some(_)) if r.prompt_length.is_none() => {
                return Err(FormatError::parse(
                    path,
                    n,
                    format!("request {i} has \"hash_ids\" but no \"prompt_length\""),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_legacy_array(path: &Path, bytes: &[u8]) -> Result<Workload, FormatError> {
    type Legacy = Vec<(
        f64,
        Vec<(String, Option<u32>, Option<u32>, serde_json::Value)>,
    )>;
    let v: Legacy = serde_json::from_slice(bytes)
        .map_err(|e| FormatError::parse(path, e.line(), e.to_string()))?;
    let entries = v
        .into_iter()
        .map(|(ts, reqs)| WorkloadEntry {
            timestamp: ts,
            requests: reqs
                .into_iter()
                .map(|(prompt, pl, ol, _)| WorkloadRequest {
                    prompt: Some(prompt),
                    prompt_length: pl,
                    output_length: ol,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    Ok(Workload {
        header: None,
        entries,
    })
}

/// Streams a workload file out: header (when needed) then entries.
pub struct WorkloadWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    requests: u64,
}

impl WorkloadWriter {
    /// Creates `path`; writes `header` first when it [is needed](WorkloadHeader::is_needed).
    pub fn create(path: &Path, header: &WorkloadHeader) -> Result<Self, FormatError> {
        let mut out = jsonl::create(path)?;
        if header.is_needed() {
            jsonl::write_line(
                path,
                &mut out,
                &HeaderLine {
                    bench_workload: header.clone(),
                },
            )?;
        }
        Ok(WorkloadWriter {
            path: path.to_path_buf(),
            out,
            requests: 0,
        })
    }
    /// Appends one entry.
    pub fn write(&mut self, e: &WorkloadEntry) -> Result<(), FormatError> {
        self.requests += e.requests.len() as u64;
        jsonl::write_line(&self.path, &mut self.out, e)
    }
    /// Flushes and closes; returns the number of requests written.
    pub fn finish(mut self) -> Result<u64, FormatError> {
        self.out
            .flush()
            .map_err(|e| FormatError::io(&self.path, e))?;
        Ok(self.requests)
    }
}

/// Writes a whole workload.
pub fn write(path: &Path, wl: &Workload) -> Result<u64, FormatError> {
    let header = wl
        .header
        .clone()
        .unwrap_or_else(|| WorkloadHeader::open_loop("unknown"));
    let mut w = WorkloadWriter::create(path, &header)?;
    for e in &wl.entries {
        w.write(e)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file path in a fresh temporary directory (kept alive by the returned guard).
    fn tmp(_name: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.jsonl");
        (d, p)
    }

    #[test]
    fn reads_aibrix_spellings_collapsed_line_and_no_final_newline() {
        let (_d, p) = tmp("a");
        std::fs::write(
            &p,
            "{\"timestamp\": 0, \"requests\": [{\"Prompt Length\": 5, \"Output Length\": 2, \"prompt\": \"a\"}, {\"prompt\": \"b\", \"prompt_length\": 1, \"output_length\": null}]}\r\n{\"timestamp\": 17, \"requests\": [{\"prompt\": \"c\"}]}",
        )
        .unwrap();
        let wl = read(&p).unwrap();
        assert_eq!(wl.num_requests(), 3);
        assert_eq!(wl.entries[0].requests[0].prompt_length, Some(5));
        assert_eq!(wl.entries[0].requests[0].output_length, Some(2));
        assert_eq!(wl.entries[0].requests[1].output_length, None);
        assert_eq!(wl.span_ms(), 17.0);
        assert!(wl.header.is_none());
    }

    #[test]
    fn header_and_fractional_timestamps_round_trip_byte_exact() {
        let (_d, p) = tmp("b");
        let mut h = WorkloadHeader::open_loop("mooncake");
        h.prompt_blocks = Some(BlockSpec {
            generator: "bench-text/1".into(),
            tokenizer: "builtin:cl100k_base".into(),
            seed: 1,
            block_tokens: 512,
        });
        let wl = Workload {
            header: Some(h),
            entries: vec![
                WorkloadEntry {
                    timestamp: 0.0,
                    requests: vec![WorkloadRequest {
                        hash_ids: Some(vec![0, 1]),
                        prompt_length: Some(600),
                        output_length: Some(3),
                        ..Default::default()
                    }],
                },
                WorkloadEntry {
                    timestamp: 0.2,
                    requests: vec![WorkloadRequest {
                        prompt: Some("x".into()),
                        ..Default::default()
                    }],
                },
            ],
        };
        write(&p, &wl).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"timestamp\":0,"), "{text}");
        assert!(text.contains("\"timestamp\":0.2,"), "{text}");
        let back = read(&p).unwrap();
        assert_eq!(back, wl);
        write(&p, &back).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    }

    #[test]
    fn errors_name_the_line() {
        let (_d, p) = tmp("c");
        std::fs::write(&p, "{\"timestamp\": 0, \"requests\": [{\"prompt\": \"a\"}]}\n{\"timestamp\": -1, \"requests\": []}\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("w.jsonl:2: timestamp -1"), "{e}");
        std::fs::write(
            &p,
            "{\"timestamp\": 0, \"requests\": [{\"hash_ids\": [1], \"prompt_length\": 3}]}\n",
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":1: request 0 gives its prompt as \"hash_ids\""),
            "{e}"
        );
    }

    #[test]
    fn legacy_array_layout() {
        let (_d, p) = tmp("d");
        std::fs::write(
            &p,
            r#"[[0, [["hello", 1, 4, null]]], [250, [["a", 1, null, null], ["b", 1, 2, null]]]]"#,
        )
        .unwrap();
        let wl = read(&p).unwrap();
        assert_eq!(wl.num_requests(), 3);
        assert_eq!(wl.entries[1].timestamp, 250.0);
    }
}

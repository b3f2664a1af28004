//! `dataset.type: client_trace`: a client output file -> plain prompts.
//!
//! Reads AIBrix's client `output.jsonl` (and the same fields written by our client with
//! `client.write_aibrix_output`): `{"input": [{"role", "content"}...] | "text", "output",
//! "prompt_tokens", "output_tokens", "status", ...}`. Other fields are ignored.
//!
//! * The prompt is every message's content joined by a blank line (`messages: joined`, the
//!   default: a replayed request carries the tokens the original sent, history included) or
//!   the last user message (`messages: last_user`). Content given as a list of parts keeps
//!   its text parts.
//! * `output_length` is the request's `output_tokens` (the server's count), absent when the
//!   file has none or 0. `prompt_length` is measured on the prompt as written, with the run's
//!   tokenizer (the file's `prompt_tokens` includes the chat template).
//! * Failed requests (`status` present and not `success`/`ok`, as AIBrix writes
//!   `"status": "error"`) are skipped and counted in the stats.

use std::path::Path;

use bench_config::dataset::TraceMessages;
use bench_types::jsonl::{self, FormatError};
use bench_types::{DatasetRecord, PlainPrompt};
use serde_json::Value;

use crate::output::{DatasetWriter, par_map};
use crate::text::Text;
use crate::{DatasetError, Report};

/// The text of a message `content`: a string, or the text parts of a list of parts.
fn content_text(c: &Value) -> Result<String, String> {
    match c {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    _ => None,
                })
                .collect();
            Ok(texts.join("\n\n"))
        }
        other => Err(format!(
            "message content must be a string or a list of parts, got {other}"
        )),
    }
}

/// The prompt text of one request's `input`.
fn prompt_of(input: &Value, mode: TraceMessages) -> Result<String, String> {
    let msgs = match input {
        Value::String(s) => return Ok(s.clone()),
        Value::Array(m) => m,
        _ => {
            return Err(
                "\"input\" must be a string or a list of {\"role\", \"content\"} messages".into(),
            );
        }
    };
    let mut parts: Vec<(String, String)> = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("input message {i} has no \"role\" string"))?;
        let content = m
            .get("content")
            .ok_or_else(|| format!("input message {i} has no \"content\""))?;
        parts.push((
            role.to_string(),
            content_text(content).map_err(|e| format!("input message {i}: {e}"))?,
        ));
    }
    match mode {
        TraceMessages::Joined => Ok(parts
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| !t.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")),
        TraceMessages::LastUser => parts
            .into_iter()
            .rev()
            .find(|(r, _)| r == "user")
            .map(|(_, t)| t)
            .ok_or_else(|| {
                "\"input\" has no user message (dataset.client_trace.messages is last_user)".into()
            }),
    }
}

/// What one line holds.
enum Parsed {
    Ok(PlainPrompt),
    Failed,
}

fn parse(
    path: &Path,
    line_no: usize,
    line: &str,
    mode: TraceMessages,
) -> Result<Parsed, FormatError> {
    let err = |msg: String| FormatError::parse(path, line_no, msg);
    let v: Value = jsonl::parse_line(path, line_no, line)?;
    let obj = v
        .as_object()
        .ok_or_else(|| err("expected a JSON object (one client record per line)".into()))?;
    match obj.get("status") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "success" | "ok") => {}
        Some(Value::String(_)) => return Ok(Parsed::Failed),
        Some(other) => return Err(err(format!("\"status\" must be a string, got {other}"))),
    }
    let input = obj
        .get("input")
        .ok_or_else(|| err("missing field `input`".into()))?;
    let prompt = prompt_of(input, mode).map_err(err)?;
    if prompt.trim().is_empty() {
        return Err(err("the request's prompt is empty".into()));
    }
    let output_length = match obj.get("output_tokens") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(k) => Some(
                u32::try_from(k).map_err(|_| err(format!("\"output_tokens\" {k} is too large")))?,
            ),
            None => {
                return Err(err(format!(
                    "\"output_tokens\" must be a non-negative integer, got {n}"
                )));
            }
        },
        Some(other) => {
            return Err(err(format!(
                "\"output_tokens\" must be an integer, got {other}"
            )));
        }
    };
    Ok(Parsed::Ok(PlainPrompt {
        output_length,
        ..PlainPrompt::new(prompt)
    }))
}

/// Converts the client output at `path`.
pub(crate) fn run(
    path: &Path,
    mode: TraceMessages,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let mut recs = Vec::new();
    let mut failed = 0u64;
    jsonl::for_each_line(path, jsonl::open(path)?, |n, line| {
        match parse(path, n, crate::without_bom(n, line), mode)? {
            Parsed::Ok(p) => recs.push(p),
            Parsed::Failed => failed += 1,
        }
        Ok(())
    })?;
    if failed > 0 {
        tracing::warn!(
            "client_trace: skipped {failed} failed requests in {}",
            path.display()
        );
    }
    let lengths = par_map(&recs, threads, |p| text.count(&p.prompt));
    let mut no_output = 0u64;
    for (mut p, n) in recs.into_iter().zip(lengths) {
        p.prompt_length = Some(n);
        no_output += u64::from(p.output_length.is_none());
        w.write(&DatasetRecord::Plain(p))?;
    }
    let mut rep = Report::default();
    rep.stat("failed_skipped", failed);
    rep.stat("without_output_length", no_output);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str, mode: TraceMessages) -> Result<Option<PlainPrompt>, String> {
        match parse(Path::new("out.jsonl"), 2, line, mode) {
            Ok(Parsed::Ok(p)) => Ok(Some(p)),
            Ok(Parsed::Failed) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn messages_joined_or_last_user() {
        let line = r#"{"input":[{"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":[{"type":"text","text":"q2"},{"type":"image_url","image_url":{"url":"x"}}]}],"output":"o","output_tokens":12}"#;
        let p = one(line, TraceMessages::Joined).unwrap().unwrap();
        assert_eq!(p.prompt, "S\n\nq1\n\na1\n\nq2");
        assert_eq!(p.output_length, Some(12));
        let p = one(line, TraceMessages::LastUser).unwrap().unwrap();
        assert_eq!(p.prompt, "q2");
        let p = one(
            r#"{"input":"plain text","output_tokens":0,"status":"success"}"#,
            TraceMessages::Joined,
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.prompt.as_str(), p.output_length), ("plain text", None));
    }

    #[test]
    fn failed_requests_are_skipped() {
        let line = r#"{"request_id":3,"status":"error","error_type":"APITimeoutError","input":[{"role":"user","content":"q"}]}"#;
        assert!(one(line, TraceMessages::Joined).unwrap().is_none());
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        for (line, want) in [
            (r#"{"output":"x"}"#, "missing field `input`"),
            (r#"{"input":5}"#, "\"input\" must be a string or a list"),
            (
                r#"{"input":[{"content":"x"}]}"#,
                "input message 0 has no \"role\"",
            ),
            (
                r#"{"input":[{"role":"user","content":7}]}"#,
                "input message 0: message content must be",
            ),
            (
                r#"{"input":[{"role":"user","content":""}]}"#,
                "prompt is empty",
            ),
            (
                r#"{"input":"x","output_tokens":-3}"#,
                "\"output_tokens\" must be a non-negative integer",
            ),
            (
                r#"{"input":"x","output_tokens":"12"}"#,
                "\"output_tokens\" must be an integer",
            ),
            (r#"{"input":"x","status":1}"#, "\"status\" must be a string"),
            (r#"{"input":"x""#, "EOF while parsing"),
        ] {
            let e = one(line, TraceMessages::Joined)
                .err()
                .unwrap_or_else(|| panic!("{line} should fail"));
            assert!(e.starts_with("out.jsonl:2: "), "{e}");
            assert!(e.contains(want), "{line}: {e}");
        }
        let e = one(
            r#"{"input":[{"role":"system","content":"s"}]}"#,
            TraceMessages::LastUser,
        )
        .unwrap_err();
        assert!(e.contains("no user message"), "{e}");
    }
}

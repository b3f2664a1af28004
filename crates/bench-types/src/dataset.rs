//! `dataset.jsonl`: the prompts, in AIBrix's plain or session layout.
//!
//! Plain: `{"prompt": "...", "prompt_length": 128, "output_length": 64}` (lengths optional).
//! Session: `{"session_id": 0, "prompts": ["...", "..."], "completions": ["...", "..."]}`.
//! Lengths are always tokens under the run's tokenizer, measured on the text as written.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::jsonl::{self, FormatError};

/// One prompt without a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainPrompt {
    /// The prompt text.
    pub prompt: String,
    /// Prompt length in tokens (of the text as written), when known.
    #[serde(
        default,
        alias = "Prompt Length",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_length: Option<u32>,
    /// Desired output length in tokens, when known.
    #[serde(
        default,
        alias = "Output Length",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_length: Option<u32>,
    /// Path of an image to send with the prompt (custom datasets, multimodal endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// Synthetic images the client makes and sends with the prompt (`dataset.images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<crate::image::SyntheticImage>>,
    /// Shared-prefix group this prompt belongs to (synthetic_shared), for analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_group: Option<u32>,
    /// The named dataset (`datasets:`) this prompt came from, in a mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Other fields of the request, carried to the workload (an image job's `width`,
    /// `height`, `steps`, `workflow`): `{{field.NAME}}` in a `client.api: template` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PlainPrompt {
    /// A prompt with nothing but its text.
    pub fn new(prompt: impl Into<String>) -> Self {
        PlainPrompt {
            prompt: prompt.into(),
            prompt_length: None,
            output_length: None,
            image_path: None,
            images: None,
            prefix_group: None,
            dataset: None,
            fields: None,
        }
    }
}

/// A multi-turn session: turn `k` is `prompts[k]`, answered (in the source data) by
/// `completions[k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session identifier, unique in the file.
    pub session_id: u64,
    /// The user turns, in order.
    pub prompts: Vec<String>,
    /// The reference replies, one per prompt, when the source has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<Vec<String>>,
    /// Token length of each prompt, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_lengths: Option<Vec<u32>>,
    /// Token length of each reference reply (tokens, never characters), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_lengths: Option<Vec<u32>>,
    /// The identifier in the source data (e.g. a ShareGPT id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The named dataset (`datasets:`) this session came from, in a mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

/// One line of `dataset.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DatasetRecord {
    /// A prompt without a session.
    Plain(PlainPrompt),
    /// A multi-turn session.
    Session(SessionRecord),
}

impl DatasetRecord {
    /// Number of prompts (turns) in this record.
    pub fn num_prompts(&self) -> usize {
        match self {
            DatasetRecord::Plain(_) => 1,
            DatasetRecord::Session(s) => s.prompts.len(),
        }
    }
}

/// Parses one dataset line: a session when it has `prompts`, plain when it has `prompt`.
pub fn parse_record(path: &Path, line_no: usize, line: &str) -> Result<DatasetRecord, FormatError> {
    // Cheap look at the keys first so the error message can say which layout was expected.
    let v: serde_json::Value = jsonl::parse_line(path, line_no, line)?;
    let obj = v
        .as_object()
        .ok_or_else(|| FormatError::parse(path, line_no, "expected a JSON object"))?;
    if obj.contains_key("prompts") {
        let s: SessionRecord = serde_json::from_value(v)
            .map_err(|e| FormatError::parse(path, line_no, format!("session record: {e}")))?;
        if s.prompts.is_empty() {
            return Err(FormatError::parse(
                path,
                line_no,
                format!("session {} has no prompts", s.session_id),
            ));
        }
        for (what, n) in [
            ("prompt_lengths", s.prompt_lengths.as_ref().map(Vec::len)),
            (
                "completion_lengths",
                s.completion_lengths.as_ref().map(Vec::len),
            ),
        ] {
            if let Some(n) = n.filter(|&n| n != s.prompts.len()) {
                return Err(FormatError::parse(
                    path,
                    line_no,
                    format!(
                        "session {}: {} prompts but {n} {what}",
                        s.session_id,
                        s.prompts.len()
                    ),
                ));
            }
        }
        if let Some(c) = &s.completions
            && c.len() != s.prompts.len()
        {
            return Err(FormatError::parse(
                path,
                line_no,
                format!(
                    "session {}: {} prompts but {} completions",
                    s.session_id,
                    s.prompts.len(),
                    c.len()
                ),
            ));
        }
        Ok(DatasetRecord::Session(s))
    } else if obj.contains_key("prompt") {
        let p: PlainPrompt = serde_json::from_value(v)
            .map_err(|e| FormatError::parse(path, line_no, format!("plain record: {e}")))?;
        Ok(DatasetRecord::Plain(p))
    } else {
        Err(FormatError::parse(
            path,
            line_no,
            "record has neither \"prompt\" nor \"prompts\"",
        ))
    }
}

/// Reads a whole dataset file.
pub fn read(path: &Path) -> Result<Vec<DatasetRecord>, FormatError> {
    let mut out = Vec::new();
    jsonl::for_each_line(path, jsonl::open(path)?, |n, line| {
        out.push(parse_record(path, n, line)?);
        Ok(())
    })?;
    Ok(out)
}

/// Writes a whole dataset file (LF, final newline).
pub fn write(path: &Path, records: &[DatasetRecord]) -> Result<(), FormatError> {
    jsonl::write_all(path, records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_and_both_spellings() {
        let p = Path::new("d.jsonl");
        let a = parse_record(p, 1, r#"{"prompt":"hi","Prompt Length":3}"#).unwrap();
        assert_eq!(
            a,
            DatasetRecord::Plain(PlainPrompt {
                prompt_length: Some(3),
                ..PlainPrompt::new("hi")
            })
        );
        let b = parse_record(p, 2, r#"{"session_id":4,"prompts":["a","b"]}"#).unwrap();
        assert_eq!(b.num_prompts(), 2);
        let e = parse_record(p, 3, r#"{"text":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.jsonl:3: "), "{e}");
        let e = parse_record(p, 4, r#"{"session_id":1,"prompts":["a"],"completions":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 prompts but 0 completions"), "{e}");
        let e = parse_record(p, 5, r#"{"session_id":0,"prompts":[]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "d.jsonl:5: session 0 has no prompts");
        let e = parse_record(
            p,
            6,
            r#"{"session_id":2,"prompts":["a"],"prompt_lengths":[1,2]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 prompts but 2 prompt_lengths"), "{e}");
    }

    #[test]
    fn round_trip_is_byte_exact() {
        let recs = vec![
            DatasetRecord::Plain(PlainPrompt {
                prompt_length: Some(2),
                output_length: Some(9),
                ..PlainPrompt::new("a \"q\"\n")
            }),
            DatasetRecord::Session(SessionRecord {
                session_id: 7,
                prompts: vec!["x".into(), "y".into()],
                completions: Some(vec!["1".into(), "2".into()]),
                prompt_lengths: Some(vec![1, 1]),
                completion_lengths: Some(vec![1, 1]),
                source_id: Some("abc_0".into()),
                dataset: Some("mix_a".into()),
            }),
        ];
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.jsonl");
        write(&f, &recs).unwrap();
        let bytes = std::fs::read(&f).unwrap();
        let back = read(&f).unwrap();
        assert_eq!(back, recs);
        write(&f, &back).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), bytes);
    }
}

//! `dataset.type: custom`: a user JSONL of plain prompts, validated line by line.
//!
//! Each line is an object with `prompt` (a non-empty string, required) and optionally
//! `output_length` (an integer >= 1; `"Output Length"` accepted), `image_path` (a file that
//! must exist; a relative path is relative to the JSONL file's directory, and is written
//! resolved so the client finds it from any working directory), `prefix_group`, `fields` (an
//! object passed on to the workload, for `{{field.NAME}}` in a template body), and
//! `prompt_length` (`"Prompt Length"`), which is ignored: lengths are always measured with
//! the run's tokenizer. Any other key is an error, so a typo (`promt`, `output_len`) is
//! caught rather than dropped; a dataset.jsonl written by this stage in plain layout is a
//! valid custom file.

use std::path::{Path, PathBuf};

use bench_types::jsonl::{self, FormatError};
use bench_types::{DatasetRecord, PlainPrompt};
use serde::Deserialize;

use crate::output::{DatasetWriter, par_map};
use crate::text::Text;
use crate::{DatasetError, Report};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    #[serde(default)]
    image_path: Option<String>,
    #[serde(default, alias = "Output Length")]
    output_length: Option<u32>,
    #[serde(default, alias = "Prompt Length")]
    prompt_length: Option<u32>,
    #[serde(default)]
    prefix_group: Option<u32>,
    #[serde(default)]
    fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One validated line.
struct Item {
    rec: PlainPrompt,
    given_length: Option<u32>,
}

fn check(path: &Path, base: &Path, line_no: usize, line: &str) -> Result<Item, FormatError> {
    let err = |msg: String| FormatError::parse(path, line_no, msg);
    let v: serde_json::Value = jsonl::parse_line(path, line_no, line)?;
    let Some(obj) = v.as_object() else {
        return Err(err("expected a JSON object with a \"prompt\"".into()));
    };
    if obj.contains_key("prompts") || obj.contains_key("session_id") {
        return Err(err(
            "session records are not custom prompts: each line must be {\"prompt\": ...}".into(),
        ));
    }
    // from the text, not the Value: a key given twice is an error, not silently the last one
    let l: Line = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
    if l.prompt.trim().is_empty() {
        return Err(err("\"prompt\" is empty".into()));
    }
    if l.output_length == Some(0) {
        return Err(err("\"output_length\" must be at least 1".into()));
    }
    let image_path = match l.image_path {
        None => None,
        Some(p) if p.trim().is_empty() => return Err(err("\"image_path\" is empty".into())),
        Some(p) => {
            let resolved: PathBuf = if Path::new(&p).is_absolute() {
                PathBuf::from(&p)
            } else {
                base.join(&p)
            };
            if !resolved.is_file() {
                return Err(err(format!(
                    "image_path {p:?} is not a file (looked at {})",
                    resolved.display()
                )));
            }
            Some(resolved.to_string_lossy().into_owned())
        }
    };
    let rec = PlainPrompt {
        output_length: l.output_length,
        image_path,
        prefix_group: l.prefix_group,
        fields: l.fields,
        ..PlainPrompt::new(l.prompt)
    };
    Ok(Item {
        rec,
        given_length: l.prompt_length,
    })
}

/// Validates and converts the custom file at `path`.
pub(crate) fn run(
    path: &Path,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut items = Vec::new();
    jsonl::for_each_line(path, jsonl::open(path)?, |n, line| {
        items.push(check(path, base, n, crate::without_bom(n, line))?);
        Ok(())
    })?;
    let lengths = par_map(&items, threads, |it| text.count(&it.rec.prompt));
    let mut replaced = 0u64;
    let mut images = 0u64;
    for (mut it, n) in items.into_iter().zip(lengths) {
        if it.given_length.is_some_and(|g| g != n) {
            replaced += 1;
        }
        images += u64::from(it.rec.image_path.is_some());
        it.rec.prompt_length = Some(n);
        w.write(&DatasetRecord::Plain(it.rec))?;
    }
    if replaced > 0 {
        tracing::warn!(
            "custom: {replaced} prompts carried a prompt_length that differs from the tokenizer's count; the measured length was written"
        );
    }
    let mut rep = Report::default();
    rep.stat("images", images);
    rep.stat("prompt_length_replaced", replaced);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_str(line: &str, base: &Path) -> Result<Item, String> {
        check(Path::new("c.jsonl"), base, 4, line).map_err(|e| e.to_string())
    }

    #[test]
    fn valid_lines_and_resolved_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cat.png"), b"png").unwrap();
        let it = check_str(r#"{"prompt":"Describe it.","image_path":"cat.png","Output Length":9,"prompt_length":3}"#, dir.path()).unwrap();
        assert_eq!(it.rec.prompt, "Describe it.");
        assert_eq!(it.rec.output_length, Some(9));
        assert_eq!(it.given_length, Some(3));
        assert_eq!(
            it.rec.image_path.as_deref(),
            Some(dir.path().join("cat.png").to_str().unwrap())
        );
    }

    #[test]
    fn every_problem_names_file_and_line() {
        let d = Path::new("/nonexistent-dir");
        for (line, want) in [
            (r#"{"image_path":"a.png"}"#, "missing field `prompt`"),
            (
                r#"{"prompt":3}"#,
                "invalid type: integer `3`, expected a string",
            ),
            (r#"{"prompt":"  "}"#, "\"prompt\" is empty"),
            (
                r#"{"prompt":"x","output_length":0}"#,
                "\"output_length\" must be at least 1",
            ),
            (
                r#"{"prompt":"x","output_length":"long"}"#,
                "invalid type: string \"long\"",
            ),
            (
                r#"{"prompt":"x","image_path":"nope.png"}"#,
                "image_path \"nope.png\" is not a file (looked at /nonexistent-dir/nope.png)",
            ),
            (r#"{"prompt":"x","promt":"y"}"#, "unknown field `promt`"),
            (
                r#"{"session_id":1,"prompts":["a"]}"#,
                "session records are not custom prompts",
            ),
            (r#"["x"]"#, "expected a JSON object"),
            (r#"{"prompt": "x""#, "EOF while parsing"),
        ] {
            let e = check_str(line, d)
                .err()
                .unwrap_or_else(|| panic!("{line} should fail"));
            assert!(e.starts_with("c.jsonl:4: "), "{e}");
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_an_error() {
        let p = Path::new("c.jsonl");
        let e = check(p, Path::new("."), 3, r#"{"prompt":"x","prompt":"y"}"#)
            .err()
            .expect("duplicate key rejected")
            .to_string();
        assert!(e.starts_with("c.jsonl:3: duplicate field `prompt`"), "{e}");
        let ok = check(p, Path::new("."), 1, r#"{"prompt":"x","output_length":4}"#).unwrap();
        assert_eq!(ok.rec.output_length, Some(4));
    }
}

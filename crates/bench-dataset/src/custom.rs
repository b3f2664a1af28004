//! `dataset.type: custom`: a user JSONL of plain prompts or of sessions (AIBrix's two layouts),
//! validated line by line.
//!
//! Session layout (AIBrix): `{"session_id": 0, "prompts": ["...", "..."]}`, optionally with
//! `completions` (reference replies, one per prompt), `prompt_lengths` (ignored: measured),
//! `completion_lengths` (the output length of each turn; measured from `completions` when those
//! are given), `source_id` and `dataset`. `session_id` is a non-negative integer, unique in the
//! file; `prompts` a non-empty list of non-empty strings; every list has one entry per prompt.
//! A file is in one layout: the first line decides, and a line of the other layout is an error
//! naming both lines. A dataset.jsonl written by this stage, or by `bench chat`'s `/save`, is a
//! valid custom file.
//!
//! Each line is an object with `prompt` (a non-empty string, required) and optionally
//! `output_length` (an integer >= 1; `"Output Length"` accepted), `image_path` (a file that
//! must exist; a relative path is relative to the JSONL file's directory, and is written
//! resolved so the client finds it from any working directory), `prefix_group`, `fields` (an
//! object passed on to the workload, for `{{field.NAME}}` in a template body), `images`
//! (synthetic image specs as `dataset.images` writes them: `width`, `height`, `format`,
//! `seed`), and
//! `prompt_length` (`"Prompt Length"`), which is ignored: lengths are always measured with
//! the run's tokenizer. Any other key is an error, so a typo (`promt`, `output_len`) is
//! caught rather than dropped; a dataset.jsonl written by this stage in plain layout is a
//! valid custom file.

use std::path::{Path, PathBuf};

use bench_types::jsonl::{self, FormatError};
use bench_types::{DatasetRecord, PlainPrompt, SessionRecord};
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
    dataset: Option<String>,
    #[serde(default)]
    fields: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    images: Option<Vec<bench_types::image::SyntheticImage>>,
}

/// A session line (AIBrix's session layout).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionLine {
    session_id: u64,
    prompts: Vec<String>,
    #[serde(default)]
    completions: Option<Vec<String>>,
    #[serde(default)]
    prompt_lengths: Option<Vec<u32>>,
    #[serde(default)]
    completion_lengths: Option<Vec<u32>>,
    #[serde(default)]
    source_id: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
}

/// One validated line.
struct Item {
    rec: DatasetRecord,
    /// Prompt lengths the line gave (replaced by the measured ones).
    given_lengths: Option<Vec<u32>>,
}

/// Checks a session line.
fn check_session(path: &Path, line_no: usize, line: &str) -> Result<Item, FormatError> {
    let err = |msg: String| FormatError::parse(path, line_no, msg);
    let l: SessionLine =
        serde_json::from_str(line).map_err(|e| err(format!("session record: {e}")))?;
    let k = l.prompts.len();
    if k == 0 {
        return Err(err(format!("session {} has no prompts", l.session_id)));
    }
    if let Some(i) = l.prompts.iter().position(|p| p.trim().is_empty()) {
        return Err(err(format!(
            "session {}: prompts[{i}] is empty",
            l.session_id
        )));
    }
    for (what, n) in [
        ("completions", l.completions.as_ref().map(Vec::len)),
        ("prompt_lengths", l.prompt_lengths.as_ref().map(Vec::len)),
        (
            "completion_lengths",
            l.completion_lengths.as_ref().map(Vec::len),
        ),
    ] {
        if let Some(n) = n.filter(|&n| n != k) {
            return Err(err(format!(
                "session {}: {k} prompts but {n} {what}",
                l.session_id
            )));
        }
    }
    if let Some(i) = l
        .completion_lengths
        .as_ref()
        .and_then(|c| c.iter().position(|&n| n == 0))
    {
        return Err(err(format!(
            "session {}: completion_lengths[{i}] must be at least 1",
            l.session_id
        )));
    }
    let rec = SessionRecord {
        session_id: l.session_id,
        prompts: l.prompts,
        completions: l.completions,
        prompt_lengths: None,
        completion_lengths: l.completion_lengths,
        source_id: l.source_id,
        dataset: l.dataset,
    };
    Ok(Item {
        rec: DatasetRecord::Session(rec),
        given_lengths: l.prompt_lengths,
    })
}

fn check(path: &Path, base: &Path, line_no: usize, line: &str) -> Result<Item, FormatError> {
    let err = |msg: String| FormatError::parse(path, line_no, msg);
    let v: serde_json::Value = jsonl::parse_line(path, line_no, line)?;
    let Some(obj) = v.as_object() else {
        return Err(err("expected a JSON object with a \"prompt\"".into()));
    };
    if obj.contains_key("prompts") || obj.contains_key("session_id") {
        return check_session(path, line_no, line);
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
    for im in l.images.iter().flatten() {
        let max = bench_types::image::MAX_IMAGE_SIDE;
        if !(1..=max).contains(&im.width) || !(1..=max).contains(&im.height) {
            return Err(err(format!(
                "synthetic image {}x{}: each side must be 1..={max}",
                im.width, im.height
            )));
        }
    }
    let rec = PlainPrompt {
        output_length: l.output_length,
        image_path,
        images: l.images,
        prefix_group: l.prefix_group,
        dataset: l.dataset,
        fields: l.fields,
        ..PlainPrompt::new(l.prompt)
    };
    Ok(Item {
        rec: DatasetRecord::Plain(rec),
        given_lengths: l.prompt_length.map(|n| vec![n]),
    })
}

/// The layout of the first line, and its line number.
#[derive(Clone, Copy)]
struct Layout {
    sessions: bool,
    line: usize,
}

impl Layout {
    fn name(self) -> &'static str {
        if self.sessions { "session" } else { "plain" }
    }
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
    let mut layout: Option<Layout> = None;
    // session id -> its line
    let mut ids = std::collections::HashMap::new();
    jsonl::for_each_line(path, jsonl::open(path)?, |n, line| {
        let it = check(path, base, n, crate::without_bom(n, line))?;
        let here = Layout {
            sessions: matches!(it.rec, DatasetRecord::Session(_)),
            line: n,
        };
        let first = *layout.get_or_insert(here);
        if first.sessions != here.sessions {
            return Err(FormatError::parse(
                path,
                n,
                format!(
                    "a {} record in a file of {} records (line {} is {}): a custom file is in one layout",
                    here.name(),
                    first.name(),
                    first.line,
                    first.name()
                ),
            ));
        }
        if let DatasetRecord::Session(s) = &it.rec
            && let Some(prev) = ids.insert(s.session_id, n)
        {
            return Err(FormatError::parse(
                path,
                n,
                format!("session_id {} is already used on line {prev}", s.session_id),
            ));
        }
        items.push(it);
        Ok(())
    })?;
    // every prompt's length, and every reference reply's (the turn's output length)
    let lengths = par_map(&items, threads, |it| match &it.rec {
        DatasetRecord::Plain(p) => (vec![text.count(&p.prompt)], None),
        DatasetRecord::Session(s) => (
            s.prompts
                .iter()
                .map(|p| text.count(p))
                .collect::<Vec<u32>>(),
            s.completions
                .as_ref()
                .map(|c| c.iter().map(|x| text.count(x).max(1)).collect::<Vec<u32>>()),
        ),
    });
    let mut replaced = 0u64;
    let mut images = 0u64;
    for (mut it, (n, replies)) in items.into_iter().zip(lengths) {
        if it.given_lengths.as_ref().is_some_and(|g| *g != n) {
            replaced += 1;
        }
        match &mut it.rec {
            DatasetRecord::Plain(p) => {
                images += u64::from(p.image_path.is_some());
                p.prompt_length = Some(n[0]);
            }
            DatasetRecord::Session(s) => {
                s.prompt_lengths = Some(n);
                if let Some(r) = replies {
                    s.completion_lengths = Some(r);
                }
            }
        }
        w.write(&it.rec)?;
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
        let DatasetRecord::Plain(p) = it.rec else {
            panic!("plain")
        };
        assert_eq!(p.prompt, "Describe it.");
        assert_eq!(p.output_length, Some(9));
        assert_eq!(it.given_lengths, Some(vec![3]));
        assert_eq!(
            p.image_path.as_deref(),
            Some(dir.path().join("cat.png").to_str().unwrap())
        );
        // a dataset.jsonl with synthetic images (dataset.images) is a custom file
        let line = r#"{"prompt":"x","images":[{"width":64,"height":48,"format":"png","seed":7}]}"#;
        let DatasetRecord::Plain(p) = check_str(line, dir.path()).unwrap().rec else {
            panic!("plain")
        };
        assert_eq!(serde_json::to_string(&p).unwrap(), line);
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
                r#"{"prompt":"x","images":[{"width":0,"height":5,"seed":1}]}"#,
                "synthetic image 0x5: each side must be 1..=8192",
            ),
            (
                r#"{"prompt":"x","images":[{"width":4,"height":5,"format":"gif","seed":1}]}"#,
                "unknown variant `gif`",
            ),
            (
                r#"{"session_id":1,"prompts":[]}"#,
                "session 1 has no prompts",
            ),
            (
                r#"{"session_id":1,"prompts":["a"," "]}"#,
                "session 1: prompts[1] is empty",
            ),
            (
                r#"{"session_id":1,"prompts":["a","b"],"completions":["x"]}"#,
                "session 1: 2 prompts but 1 completions",
            ),
            (
                r#"{"session_id":-1,"prompts":["a"]}"#,
                "session record: invalid value: integer `-1`",
            ),
            (
                r#"{"session_id":2,"prompts":["a"],"completion_lengths":[0]}"#,
                "completion_lengths[0] must be at least 1",
            ),
            (
                r#"{"session_id":2,"prompts":["a"],"turns":3}"#,
                "unknown field `turns`",
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
        assert!(matches!(
            ok.rec,
            DatasetRecord::Plain(PlainPrompt {
                output_length: Some(4),
                ..
            })
        ));
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    fn run_file(body: &str) -> Result<Vec<DatasetRecord>, String> {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("s.jsonl");
        std::fs::write(&f, body).unwrap();
        let text = Text::load(&bench_config::TokenizerSpec::default()).unwrap();
        let mut w = DatasetWriter::create(d.path()).unwrap();
        run(&f, &text, &mut w, 2).map_err(|e| e.to_string())?;
        w.finish().unwrap();
        Ok(bench_types::dataset::read(&d.path().join(bench_types::files::DATASET)).unwrap())
    }

    #[test]
    fn aibrix_session_layout_is_measured_and_checked_line_by_line() {
        // AIBrix's example (seed 002), CRLF and no final newline
        let recs = run_file(
            "{\"session_id\": 0, \"prompts\": [\"XXX\", \"YYY\"]}\r\n{\"session_id\": 1, \"prompts\": [\"AAA\", \"BBB\", \"CCC\"], \"completions\": [\"a b\", \"c\", \"d e f\"], \"prompt_lengths\": [9, 9, 9]}",
        )
        .unwrap();
        assert_eq!(recs.len(), 2);
        let DatasetRecord::Session(s) = &recs[1] else {
            panic!("session")
        };
        assert_eq!((s.session_id, s.prompts.len()), (1, 3));
        assert_eq!(
            s.prompt_lengths,
            Some(vec![1, 2, 1]),
            "measured, not the 9s given"
        );
        assert_eq!(s.completion_lengths, Some(vec![2, 1, 3]));
        let DatasetRecord::Session(s0) = &recs[0] else {
            panic!("session")
        };
        assert_eq!(s0.completion_lengths, None);

        let e = run_file("{\"session_id\": 0, \"prompts\": [\"a\"]}\n{\"prompt\": \"b\"}\n")
            .unwrap_err();
        assert!(
            e.ends_with("s.jsonl:2: a plain record in a file of session records (line 1 is session): a custom file is in one layout"),
            "{e}"
        );
        let e = run_file("{\"session_id\": 4, \"prompts\": [\"a\"]}\n{\"session_id\": 4, \"prompts\": [\"b\"]}\n").unwrap_err();
        assert!(
            e.ends_with("s.jsonl:2: session_id 4 is already used on line 1"),
            "{e}"
        );
    }
}

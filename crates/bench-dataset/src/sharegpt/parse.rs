//! Reading ShareGPT files one conversation at a time.
//!
//! A JSON array (pretty-printed or on one line, as the canonical 640 MB file is) is read with
//! a streaming sequence visitor, so only one conversation is materialized at a time. A file
//! whose first value is an object is read as JSONL (one conversation per line). Unknown
//! fields are ignored (files in the wild carry `model`, `prompt`, `meta`, token counts...).

use std::path::Path;

use bench_types::jsonl::{self, FormatError};
use serde::Deserialize;

/// One conversation as found in the file.
#[derive(Debug, Deserialize)]
pub(crate) struct RawConv {
    /// ShareGPT's id (a string; some dumps use numbers).
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Used when `id` is absent (chat-demo-playground style files).
    #[serde(default)]
    pub conversation_id: Option<serde_json::Value>,
    /// The turns (`conversation` and `messages` are accepted spellings).
    #[serde(alias = "conversation", alias = "messages")]
    pub conversations: Vec<RawTurn>,
}

impl RawConv {
    /// The conversation's identifier as text, if it has one.
    pub(crate) fn source_id(&self) -> Option<String> {
        let v = self
            .id
            .as_ref()
            .filter(|v| !v.is_null())
            .or(self.conversation_id.as_ref())?;
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// One turn: `{"from": ..., "value": ...}` (or `role` / `content`).
#[derive(Debug, Deserialize)]
pub(crate) struct RawTurn {
    /// Who speaks.
    #[serde(alias = "role")]
    pub from: String,
    /// The text (null or missing counts as empty).
    #[serde(alias = "content", default)]
    pub value: Option<String>,
}

/// Error text without serde_json's trailing " at line L column C" (the caller reports it).
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Calls `each(index, conversation)` for every conversation in `path`, in file order.
/// An error returned by `each` stops the read and is reported at the line where that
/// conversation starts.
pub(crate) fn read(
    path: &Path,
    mut each: impl FnMut(usize, RawConv) -> Result<(), String>,
) -> Result<(), FormatError> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match body.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) if body[i] == b'[' => Array {
            path,
            body,
            pos: i,
            line: 1,
            line_start: 0,
        }
        .read(&mut each),
        Some(i) if body[i] == b'{' => {
            let mut index = 0;
            jsonl::for_each_line(path, body, |line_no, line| {
                let conv: RawConv = jsonl::parse_line(path, line_no, line)?;
                each(index, conv).map_err(|msg| FormatError::parse(path, line_no, msg))?;
                index += 1;
                Ok(())
            })
        }
        Some(_) => Err(FormatError::parse(
            path,
            1,
            "not a ShareGPT file: expected a JSON array of conversations or JSONL with one conversation object per line",
        )),
        None => Err(FormatError::parse(path, 0, "the file is empty")),
    }
}

/// A JSON array read element by element: each element is parsed by its own deserializer,
/// so only one conversation is in memory at a time and every error has an exact line and
/// column (serde_json's positions are relative to where the element starts).
struct Array<'a> {
    path: &'a Path,
    body: &'a [u8],
    pos: usize,
    /// 1-based line of `pos`, and the offset where that line starts.
    line: usize,
    line_start: usize,
}

impl Array<'_> {
    fn advance(&mut self, to: usize) {
        for (k, &b) in self.body[self.pos..to].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.pos + k + 1;
            }
        }
        self.pos = to;
    }

    fn skip_ws(&mut self) {
        let n = self.body[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.advance(self.pos + n);
    }

    fn column(&self) -> usize {
        self.pos - self.line_start + 1
    }

    fn err(&self, msg: String) -> FormatError {
        FormatError::parse(
            self.path,
            self.line,
            format!("{msg} (column {})", self.column()),
        )
    }

    fn read(
        mut self,
        each: &mut impl FnMut(usize, RawConv) -> Result<(), String>,
    ) -> Result<(), FormatError> {
        self.advance(self.pos + 1); // '['
        let mut index = 0usize;
        loop {
            self.skip_ws();
            match self.body.get(self.pos) {
                None => {
                    return Err(
                        self.err("unexpected end of file inside the array of conversations".into())
                    );
                }
                Some(b']') => {
                    self.advance(self.pos + 1);
                    self.skip_ws();
                    if self.pos < self.body.len() {
                        return Err(
                            self.err("trailing characters after the array of conversations".into())
                        );
                    }
                    return Ok(());
                }
                Some(b',') if index > 0 => {
                    self.advance(self.pos + 1);
                    self.skip_ws();
                }
                Some(_) if index > 0 => {
                    return Err(self.err("expected `,` or `]` after a conversation".into()));
                }
                Some(_) => {}
            }
            let (line, col) = (self.line, self.column());
            let mut stream =
                serde_json::Deserializer::from_slice(&self.body[self.pos..]).into_iter::<RawConv>();
            match stream.next() {
                None => {
                    return Err(self.err("unexpected end of file, expected a conversation".into()));
                }
                Some(Err(e)) => {
                    let (l, c) = if e.line() <= 1 {
                        (line, col + e.column().saturating_sub(1))
                    } else {
                        (line + e.line() - 1, e.column())
                    };
                    let msg = format!(
                        "conversation {index}: {} (column {c})",
                        strip_position(&e.to_string())
                    );
                    return Err(FormatError::parse(self.path, l, msg));
                }
                Some(Ok(conv)) => {
                    let end = self.pos + stream.byte_offset();
                    each(index, conv).map_err(|msg| {
                        FormatError::parse(
                            self.path,
                            line,
                            format!("{msg} (conversation starts at column {col})"),
                        )
                    })?;
                    self.advance(end);
                }
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &str) -> Result<Vec<(usize, Option<String>, usize)>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sg.json");
        std::fs::write(&p, data).unwrap();
        let mut out = Vec::new();
        read(&p, |i, c| {
            out.push((i, c.source_id(), c.conversations.len()));
            Ok(())
        })
        .map_err(|e| e.to_string().replace(&p.display().to_string(), "sg.json"))?;
        Ok(out)
    }

    #[test]
    fn arrays_on_one_line_or_pretty_and_jsonl() {
        let one = r#"[{"id":"a","conversations":[{"from":"human","value":"hi"}]},{"id":7,"conversations":[]}]"#;
        let want = vec![(0, Some("a".to_string()), 1), (1, Some("7".to_string()), 0)];
        assert_eq!(collect(one).unwrap(), want);
        let pretty = "\u{feff}[\n  {\n    \"id\": \"a\",\n    \"model\": \"\",\n    \"conversations\": [\n      {\"from\": \"human\", \"value\": \"hi\", \"markdown\": null}\n    ]\n  },\n  {\"id\": 7, \"conversations\": []}\n]\n";
        assert_eq!(collect(pretty).unwrap(), want);
        let jsonl = "{\"id\":\"a\",\"conversations\":[{\"from\":\"human\",\"value\":\"hi\"}]}\r\n\r\n{\"id\":7,\"conversations\":[]}";
        assert_eq!(collect(jsonl).unwrap(), want);
        let other = r#"[{"conversation_id":"x_0","prompt":"p","conversations":[{"role":"user","content":null}]}]"#;
        assert_eq!(
            collect(other).unwrap(),
            vec![(0, Some("x_0".to_string()), 1)]
        );
    }

    #[test]
    fn malformed_files_name_file_line_and_column() {
        let e = collect("[\n  {\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]},\n  {\"id\": \"b\", \"conversations\": [{\"from\": \"human\" \"value\": 1}]}\n]").unwrap_err();
        assert!(e.starts_with("sg.json:3: "), "{e}");
        assert!(e.contains("column"), "{e}");
        let e = collect("[\n {\"id\": \"a\"}\n]").unwrap_err();
        assert!(
            e.starts_with("sg.json:2: conversation 0: missing field `conversations`"),
            "{e}"
        );
        let e = collect(
            "[\n {\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": 3}]}\n]",
        )
        .unwrap_err();
        assert!(
            e.starts_with("sg.json:2: conversation 0: invalid type: integer `3`"),
            "{e}"
        );
        let e = collect("{\"id\":\"a\",\"conversations\":[]}\n{\"id\":\"b\"}\n").unwrap_err();
        assert!(
            e.starts_with("sg.json:2: missing field `conversations`"),
            "{e}"
        );
        let e = collect("[{\"id\":\"a\",\"conversations\":[]}] trailing").unwrap_err();
        assert!(e.starts_with("sg.json:1: trailing characters"), "{e}");
        let e = collect("[{\"id\":\"a\",\"conversations\":[]} {\"id\":\"b\"}]").unwrap_err();
        assert_eq!(
            e,
            "sg.json:1: expected `,` or `]` after a conversation (column 32)"
        );
        let e = collect("[{\"id\":\"a\",\"conversations\":[]},\n  {\"id\":\"b\",\"conversations\":[{\"from\":1}]}]").unwrap_err();
        assert!(
            e.starts_with("sg.json:2: conversation 1: invalid type: integer `1`"),
            "{e}"
        );
        assert!(e.ends_with("(column 38)"), "{e}");
        let e = collect("[{\"id\":\"a\",\"conversations\":[]},").unwrap_err();
        assert!(e.contains("unexpected end of file"), "{e}");
        assert!(
            collect("hello")
                .unwrap_err()
                .starts_with("sg.json:1: not a ShareGPT file")
        );
        assert!(collect("  \n").unwrap_err().contains("empty"));
    }

    #[test]
    fn callback_errors_stop_at_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sg.json");
        std::fs::write(
            &p,
            "[\n{\"id\":\"a\",\"conversations\":[]},\n{\"id\":\"b\",\"conversations\":[]}\n]",
        )
        .unwrap();
        let e = read(&p, |i, _| {
            if i == 1 {
                Err("bad role".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        match e {
            FormatError::Parse { line, msg, .. } => {
                assert_eq!(line, 3);
                assert_eq!(msg, "bad role (conversation starts at column 1)");
            }
            other => panic!("{other}"),
        }
    }
}

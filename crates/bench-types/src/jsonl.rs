//! Line-oriented JSON reading and writing with file/line error reporting.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// An error reading or writing a stage file. The message always names the file, and the
/// 1-based line when the problem is in the content.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line (or the whole file, line 0 meaning "not line-specific") is not valid.
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number; 0 when the problem is not tied to a line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The file's content as a whole is not what was expected (not line-oriented: Parquet).
    #[error("{}: {msg}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl FormatError {
    /// Builds an I/O error for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// Builds an error about the content of `path` as a whole.
    pub fn content(path: &Path, msg: impl Into<String>) -> Self {
        FormatError::Content {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    /// Builds a parse error for `path` at `line` (1-based).
    pub fn parse(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        FormatError::Parse {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }
}

/// Opens `path` for buffered reading, with a 1 MiB buffer.
pub fn open(path: &Path) -> Result<BufReader<File>, FormatError> {
    let f = File::open(path).map_err(|e| FormatError::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 20, f))
}

/// Creates (truncating) `path` for buffered writing, creating parent directories.
pub fn create(path: &Path) -> Result<BufWriter<File>, FormatError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FormatError::io(parent, e))?;
    }
    let f = File::create(path).map_err(|e| FormatError::io(path, e))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

/// `bytes` as UTF-8, or where it is not: `line N, column C: not UTF-8` (1-based; the column
/// counts bytes).
pub fn utf8_or_position(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let b = e.as_bytes();
        let line = 1 + b[..at].iter().filter(|&&c| c == b'\n').count();
        let col = at
            - b[..at]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        format!("line {line}, column {col}: not UTF-8")
    })
}

/// Reads `path` as UTF-8 text; an invalid byte is reported as `path:line: not UTF-8 (column C)`.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    utf8_or_position(bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Calls `f(line_no, line)` for every non-blank line of `reader`, with line endings (LF or
/// CRLF) stripped; a missing final newline is fine. A line that is not UTF-8 is an error.
pub fn for_each_line<R: Read>(
    path: &Path,
    reader: R,
    mut f: impl FnMut(usize, &str) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| FormatError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let line = std::str::from_utf8(&buf)
            .map_err(|e| FormatError::parse(path, line_no, format!("not valid UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        f(line_no, line)?;
    }
}

/// Reads every non-blank line of a JSONL file as a `T`.
pub fn read_all<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, FormatError> {
    let mut out = Vec::new();
    for_each_line(path, open(path)?, |line_no, line| {
        out.push(parse_line(path, line_no, line)?);
        Ok(())
    })?;
    Ok(out)
}

/// Parses one JSON line, mapping the error to `path:line: message`.
pub fn parse_line<T: DeserializeOwned>(
    path: &Path,
    line_no: usize,
    line: &str,
) -> Result<T, FormatError> {
    serde_json::from_str(line).map_err(|e| FormatError::parse(path, line_no, json_msg(&e)))
}

/// A serde_json error message without its own "at line 1 column N" suffix noise when the
/// position is already given by the caller; the column is kept since it helps on long lines.
fn json_msg(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &s[..i], e.column()),
        None => s,
    }
}

/// Writes each item as one JSON line (LF, final newline) to `path`.
pub fn write_all<'a, T: serde::Serialize + 'a>(
    path: &Path,
    items: impl IntoIterator<Item = &'a T>,
) -> Result<(), FormatError> {
    let mut w = create(path)?;
    for item in items {
        write_line(path, &mut w, item)?;
    }
    w.flush().map_err(|e| FormatError::io(path, e))
}

/// Writes one JSON line.
pub fn write_line<W: Write, T: serde::Serialize + ?Sized>(
    path: &Path,
    w: &mut W,
    item: &T,
) -> Result<(), FormatError> {
    serde_json::to_writer(&mut *w, item).map_err(|e| FormatError::io(path, e.into()))?;
    w.write_all(b"\n").map_err(|e| FormatError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_handle_crlf_blank_and_no_final_newline() {
        let data = b"a\r\n\r\nb\nc";
        let mut seen = Vec::new();
        for_each_line(Path::new("x"), &data[..], |n, l| {
            seen.push((n, l.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![(1, "a".into()), (3, "b".into()), (4, "c".into())]
        );
    }

    #[test]
    fn invalid_utf8_is_placed_by_line_and_column() {
        assert_eq!(utf8_or_position(b"ab\ncd".to_vec()).unwrap(), "ab\ncd");
        assert_eq!(
            utf8_or_position(b"a,b\n1,2\n3,\xff\n".to_vec()).unwrap_err(),
            "line 3, column 3: not UTF-8"
        );
    }

    #[test]
    fn parse_error_names_file_and_line() {
        let e = parse_line::<serde_json::Value>(Path::new("w.jsonl"), 7, "{bad").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("w.jsonl:7: "), "{s}");
    }
}

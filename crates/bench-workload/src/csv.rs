//! Just enough CSV for traces and Grafana exports: a header row, comma-separated fields,
//! optional double quotes (with `""` escapes and commas inside), LF or CRLF line endings (mixed
//! is fine), a UTF-8 BOM, blank lines, no final newline. Fields never span lines.

use std::path::Path;

use bench_types::FormatError;

/// A CSV file read into memory.
pub(crate) struct CsvFile {
    text: String,
}

impl CsvFile {
    /// Reads `path` (an I/O failure is reported by the caller with the config key).
    pub(crate) fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let text = bench_types::jsonl::utf8_or_position(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(CsvFile { text })
    }

    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Self {
        CsvFile {
            text: text.to_string(),
        }
    }

    /// Non-blank lines with their 1-based numbers, line endings stripped.
    pub(crate) fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        let text = self.text.strip_prefix('\u{feff}').unwrap_or(&self.text);
        text.split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty())
    }
}

/// Splits one line into fields, unquoting them. Errors on an unterminated quote.
pub(crate) fn fields<'a>(
    line: &'a str,
    out: &mut Vec<std::borrow::Cow<'a, str>>,
) -> Result<(), String> {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        // Skip spaces before a quoted field (`a, "b"`).
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'"' {
            let mut s = String::new();
            let mut k = j + 1;
            loop {
                match b.get(k) {
                    None => return Err("unterminated quoted field".into()),
                    Some(b'"') if b.get(k + 1) == Some(&b'"') => {
                        s.push('"');
                        k += 2;
                    }
                    Some(b'"') => {
                        k += 1;
                        break;
                    }
                    Some(_) => {
                        let next = line[k..].find('"').map_or(line.len(), |n| k + n);
                        s.push_str(&line[k..next]);
                        k = next;
                    }
                }
            }
            while k < b.len() && b[k] == b' ' {
                k += 1;
            }
            out.push(std::borrow::Cow::Owned(s));
            match b.get(k) {
                None => return Ok(()),
                Some(b',') => i = k + 1,
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |n| i + n);
            out.push(std::borrow::Cow::Borrowed(line[i..end].trim()));
            if end == line.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// `path:line: msg` as a [`FormatError`].
pub(crate) fn err(path: &Path, line: usize, msg: impl Into<String>) -> FormatError {
    FormatError::parse(path, line, msg)
}

/// Index of the header column named `name` (case-insensitive, surrounding spaces ignored).
pub(crate) fn column(header: &[std::borrow::Cow<'_, str>], name: &str) -> Option<usize> {
    header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        let mut v = Vec::new();
        fields(line, &mut v).unwrap();
        v.into_iter().map(|c| c.into_owned()).collect()
    }

    #[test]
    fn quoted_and_plain_fields() {
        assert_eq!(
            split(r#""Time","Total","4xx Error""#),
            ["Time", "Total", "4xx Error"]
        );
        assert_eq!(
            split("2023-11-16 18:15:46,1.6,0"),
            ["2023-11-16 18:15:46", "1.6", "0"]
        );
        assert_eq!(
            split(r#""a, b",c,"say ""hi""""#),
            ["a, b", "c", r#"say "hi""#]
        );
        assert_eq!(split("a,,b,"), ["a", "", "b", ""]);
        assert_eq!(split(r#"x, "y" ,z"#), ["x", "y", "z"]);
        let mut v = Vec::new();
        assert!(fields(r#""open,1"#, &mut v).is_err());
        assert!(fields(r#""a"b,1"#, &mut v).is_err());
    }

    #[test]
    fn lines_handle_bom_crlf_mixed_blank_and_no_final_newline() {
        let f = CsvFile::from_text("\u{feff}\"Time\",\"Rate\"\n1,2\r\n\r\n3,4");
        let l: Vec<(usize, &str)> = f.lines().collect();
        assert_eq!(l, vec![(1, "\"Time\",\"Rate\""), (2, "1,2"), (4, "3,4")]);
    }
}

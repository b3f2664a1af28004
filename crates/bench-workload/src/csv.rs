//! CSV for traces and Grafana exports, read with the `csv` crate: a header row, comma-separated
//! fields, optional double quotes (with `""` escapes and commas inside), LF or CRLF line endings
//! (mixed is fine), a UTF-8 BOM, blank lines, no final newline. Fields are not trimmed (the csv
//! crate's trimming copies every record): callers trim. A field never spans lines: a line break
//! inside quotes is reported as an unterminated quote.

use std::path::Path;

use bench_types::FormatError;
pub(crate) use csv::StringRecord;

/// A CSV file read into memory (checked to be UTF-8 up front, so a bad byte is reported with its
/// line and column).
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

    /// The non-blank records with the 1-based line each starts on; errors name `path` and line.
    pub(crate) fn records<'a>(
        &'a self,
        path: &'a Path,
    ) -> impl Iterator<Item = Result<(usize, StringRecord), FormatError>> + 'a {
        let bytes = self.text.as_bytes();
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes)
            .into_records()
            .filter_map(move |r| {
                let rec = match r {
                    Ok(rec) => rec,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() as usize);
                        return Some(Err(err(path, line, e.to_string())));
                    }
                };
                // A record's position is where the previous one ended, before any blank lines
                // (which the reader skips) and the rest of a CRLF: count the line breaks there.
                let pos = rec
                    .position()
                    .expect("the reader sets every record's position");
                let line = pos.line() as usize
                    + bytes[pos.byte() as usize..]
                        .iter()
                        .take_while(|&&b| b == b'\r' || b == b'\n')
                        .filter(|&&b| b == b'\n')
                        .count();
                if rec.len() == 1 && rec[0].trim().is_empty() {
                    None // a line of spaces
                } else if rec.iter().any(|f| f.contains(['\n', '\r'])) {
                    Some(Err(err(
                        path,
                        line,
                        "unterminated quoted field (a field runs past its line)",
                    )))
                } else {
                    Some(Ok((line, rec)))
                }
            })
    }
}

/// `path:line: msg` as a [`FormatError`].
pub(crate) fn err(path: &Path, line: usize, msg: impl Into<String>) -> FormatError {
    FormatError::parse(path, line, msg)
}

/// Index of the header column named `name` (case-insensitive, surrounding spaces ignored).
pub(crate) fn column<'h>(header: impl IntoIterator<Item = &'h str>, name: &str) -> Option<usize> {
    header
        .into_iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
        CsvFile::from_text(text)
            .records(Path::new("f.csv"))
            .map(|r| {
                r.map(|(n, rec)| (n, rec.iter().map(String::from).collect()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn split(line: &str) -> Vec<String> {
        let mut v = parse(line).unwrap();
        assert_eq!(v.len(), 1, "{line}");
        v.remove(0).1
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
        assert_eq!(split(" x , y ,z"), [" x ", " y ", "z"]);
        // RFC 4180: a quote opens a field only as its first character; the csv crate is lenient
        // about text after a closing quote.
        assert_eq!(split(r#"x, "y""#), ["x", r#" "y""#]);
        assert_eq!(split(r#""a"b,1"#), ["ab", "1"]);
        let e = parse("h\n\"open,1\n2,3\n").unwrap_err();
        assert!(e.contains("f.csv:2: unterminated quoted field"), "{e}");
    }

    #[test]
    fn lines_handle_bom_crlf_mixed_blank_and_no_final_newline() {
        let r = parse("\u{feff}\"Time\",\"Rate\"\n1,2\r\n\r\n  \n\n3,4").unwrap();
        let l: Vec<(usize, Vec<&str>)> = r
            .iter()
            .map(|(n, f)| (*n, f.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            l,
            vec![
                (1, vec!["Time", "Rate"]),
                (2, vec!["1", "2"]),
                (6, vec!["3", "4"])
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\r\n\n").unwrap().is_empty());
    }

    #[test]
    fn header_columns_by_name() {
        let h = StringRecord::from(vec!["Time", " TOTAL "]);
        assert_eq!(column(&h, "total"), Some(1));
        assert_eq!(column(["Time"], "Total"), None);
    }
}

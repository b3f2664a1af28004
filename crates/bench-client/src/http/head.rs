//! HTTP/1.x response head parsing (the syntax is checked by `httparse`; framing and
//! connection reuse are decided here).

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: n`.
    Length(u64),
    /// Until the server closes the connection.
    Eof,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Body framing.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Most header fields a response head may have (hyper's default limit too, so a server that
/// works over https through reqwest also works here).
const MAX_HEADERS: usize = 100;

/// Position just past the blank line ending the head in `buf`, if it is complete. `from` is
/// where to resume searching (bytes before it were already searched).
///
/// Lines may end in CRLF or a bare LF (rare, tolerated, as `parse` does). When `buf` can
/// already be seen not to start an HTTP/1.x response (say an SSH banner), this returns
/// `buf.len()` without waiting for a blank line that may never come: [`parse`] then reports it.
pub fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    if !may_be_http1(buf) {
        return Some(buf.len());
    }
    // A blank line is a LF followed by LF or CRLF; its first LF may sit 2 bytes before `from`.
    let start = from.saturating_sub(2).min(buf.len());
    memchr::memchr_iter(b'\n', &buf[start..]).find_map(|i| {
        let i = start + i;
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 2),
            Some([b'\r', b'\n', ..]) => Some(i + 3),
            _ => None,
        }
    })
}

/// Whether `buf` (a head, or its first bytes) may still turn out to be an HTTP/1.x response:
/// after any empty lines, it starts with `HTTP/1.0` or `HTTP/1.1`, or a prefix of them.
fn may_be_http1(buf: &[u8]) -> bool {
    let rest = skip_empty_lines(buf);
    let n = rest.len().min(8);
    rest[..n] == b"HTTP/1.1"[..n] || rest[..n] == b"HTTP/1.0"[..n]
}

/// `buf` without the CR and LF bytes it starts with (httparse skips empty lines before the
/// status line).
fn skip_empty_lines(buf: &[u8]) -> &[u8] {
    let n = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    &buf[n..]
}

/// Parses a complete head (`buf` ends with the blank line, as [`find_end`] found it).
pub fn parse(buf: &[u8]) -> Result<Head, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n == buf.len() => {}
        Ok(httparse::Status::Complete(n)) => {
            return Err(format!(
                "malformed response head: it ends after {n} of {} bytes",
                buf.len()
            ));
        }
        Ok(httparse::Status::Partial) => return Err(incomplete(buf)),
        Err(e) => return Err(describe_error(buf, e)),
    }
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        // Complete always sets both.
        return Err(incomplete(buf));
    };
    if status < 100 {
        return Err(format!(
            "malformed response head: invalid status code {status:03} in {}",
            excerpt(buf, 0)
        ));
    }
    let http10 = minor == 0;

    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for h in res.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked must be the final one.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value).ok_or_else(|| {
                format!(
                    "malformed response head: invalid Content-Length \"{}\"",
                    printable(value, 40)
                )
            })?;
            if let Some(l) = length.filter(|&l| l != n) {
                return Err(format!(
                    "malformed response head: conflicting Content-Length headers ({l} and {n})"
                ));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for tok in value.split(|&b| b == b',') {
                let tok = tok.trim_ascii();
                conn_close |= tok.eq_ignore_ascii_case(b"close");
                conn_keep_alive |= tok.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if status < 200 || status == 204 || status == 304 {
        // Never a body (RFC 9112 §6.3), whatever the headers say.
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Eof
    };
    let keep_alive = framing != Framing::Eof && !conn_close && (!http10 || conn_keep_alive);
    Ok(Head {
        status,
        framing,
        keep_alive,
    })
}

/// A Content-Length value: decimal digits only (no sign, no list), fitting in a u64.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn incomplete(buf: &[u8]) -> String {
    if skip_empty_lines(buf).is_empty() {
        "malformed response head: empty".into()
    } else {
        format!(
            "malformed response head: incomplete (no blank line after the headers): {}",
            excerpt(buf, 0)
        )
    }
}

/// One line describing httparse's error `e` on `buf`, naming the offending line.
fn describe_error(buf: &[u8], e: httparse::Error) -> String {
    use httparse::Error as E;
    if e == E::TooManyHeaders {
        return format!("malformed response head: more than {MAX_HEADERS} header fields");
    }
    let at = error_offset(buf);
    let line = line_number(buf, at);
    match e {
        E::Version if skip_empty_lines(buf).starts_with(b"HTTP/") => format!(
            "response is not HTTP/1.0 or HTTP/1.1: status line {}",
            excerpt(buf, at)
        ),
        E::Version => format!("response is not HTTP: it starts with {}", excerpt(buf, at)),
        E::Status => format!(
            "malformed response head: invalid status line {}",
            excerpt(buf, at)
        ),
        E::HeaderName if matches!(buf.get(line_start(buf, at)), Some(b' ' | b'\t')) => {
            let status_line = line_number(buf, buf.len() - skip_empty_lines(buf).len());
            let what = if line == status_line + 1 {
                "first header line starts with whitespace"
            } else {
                "obsolete line folding (continuation line)"
            };
            format!(
                "malformed response head: {what} at line {line}: {}",
                excerpt(buf, at)
            )
        }
        E::HeaderName => format!(
            "malformed response head: invalid header name at line {line}: {}",
            excerpt(buf, at)
        ),
        E::HeaderValue => format!(
            "malformed response head: invalid byte in header value at line {line}: {}",
            excerpt(buf, at)
        ),
        E::NewLine => format!(
            "malformed response head: invalid line ending at line {line}: {}",
            excerpt(buf, at)
        ),
        e => format!(
            "malformed response head: {e} at line {line}: {}",
            excerpt(buf, at)
        ),
    }
}

/// Offset of the byte httparse rejected in `buf` (on which it fails): the parser is
/// incremental, so every shorter prefix than the one ending with that byte is `Partial`.
/// Binary search; only on the error path.
fn error_offset(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    // parse(buf[..lo]) is not an error, parse(buf[..hi]) is.
    let (mut lo, mut hi) = (0, buf.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if httparse::Response::new(&mut headers)
            .parse(&buf[..mid])
            .is_err()
        {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.saturating_sub(1)
}

fn line_start(buf: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &buf[..at.min(buf.len())]).map_or(0, |i| i + 1)
}

/// 1-based number of the line holding `buf[at]`.
fn line_number(buf: &[u8], at: usize) -> usize {
    memchr::memchr_iter(b'\n', &buf[..at.min(buf.len())]).count() + 1
}

/// The line of `buf` holding `buf[at]` (after any leading empty lines when `at` is in them),
/// quoted and escaped, cut around `at` when long.
fn excerpt(buf: &[u8], at: usize) -> String {
    const BEFORE: usize = 40;
    const WIDTH: usize = 60;
    let skipped = buf.len() - skip_empty_lines(buf).len();
    let at = at.max(skipped).min(buf.len());
    let start = line_start(buf, at);
    let end = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i);
    let mut line = &buf[start..end];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let from = (at - start).saturating_sub(BEFORE).min(line.len());
    let cut = &line[from..];
    let lead = if from > 0 { "..." } else { "" };
    format!("\"{lead}{}\"", printable(cut, WIDTH))
}

/// At most `width` bytes of `b`, escaped to printable ASCII, "..." marking a cut.
fn printable(b: &[u8], width: usize) -> String {
    let shown = &b[..b.len().min(width)];
    let tail = if b.len() > width { "..." } else { "" };
    format!("{}{tail}", shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(buf: &[u8]) -> String {
        let e = parse(buf).unwrap_err();
        assert!(
            !e.contains('\n') && !e.contains('\r'),
            "not one line: {e:?}"
        );
        assert!(
            e.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{e:?}"
        );
        e
    }

    #[test]
    fn parses_common_heads() {
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Chunked,
                keep_alive: true
            }
        );
        let h = parse(
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 12\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            h,
            Head {
                status: 429,
                framing: Framing::Length(12),
                keep_alive: false
            }
        );
        let h = parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Eof,
                keep_alive: false
            }
        );
        let h = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        assert!(h.keep_alive);
        // No reason phrase.
        let h = parse(b"HTTP/1.1 200\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(3), true)
        );
    }

    #[test]
    fn connection_tokens_and_framing_precedence() {
        let h =
            parse(b"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 1\r\n\r\n")
                .unwrap();
        assert!(!h.keep_alive);
        let h =
            parse(b"HTTP/1.0 200 OK\r\nconnection: foo , Keep-Alive\r\nContent-Length: 1\r\n\r\n")
                .unwrap();
        assert!(h.keep_alive);
        // HTTP/1.1 without Content-Length or chunked: read to EOF, no reuse.
        let h = parse(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Eof, false));
        // chunked wins over Content-Length, if it is the last coding.
        let h = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Eof);
        // Repeated identical Content-Length is fine.
        let h =
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(7));
    }

    #[test]
    fn bodiless_statuses() {
        for status in [b"100", b"204", b"304"] {
            let mut head = b"HTTP/1.1 ".to_vec();
            head.extend_from_slice(status);
            head.extend_from_slice(
                b" X\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let h = parse(&head).unwrap();
            assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), true));
        }
        let h = parse(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        assert_eq!(h.status, 100);
    }

    #[test]
    fn rejects_bad_content_length() {
        for v in ["x", "-1", "+5", "5, 5", "", "99999999999999999999"] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
            let e = err(head.as_bytes());
            assert!(e.contains("invalid Content-Length"), "{v:?}: {e}");
        }
        let e = err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(
            e.contains("conflicting Content-Length headers (5 and 6)"),
            "{e}"
        );
        // Validated even when chunked takes precedence.
        let e = err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n");
        assert!(e.contains("Content-Length"), "{e}");
    }

    #[test]
    fn rejects_non_http() {
        let e = err(b"SSH-2.0-OpenSSH\r\n");
        assert_eq!(
            e,
            "response is not HTTP: it starts with \"SSH-2.0-OpenSSH\""
        );
        let e = err(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(e.contains("not HTTP"), "{e}");
        let e = err(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00");
        assert!(
            e.starts_with("response is not HTTP: it starts with \"\\x00\\x00"),
            "{e}"
        );
        let e = err(b"HTTP/2 200\r\n\r\n");
        assert_eq!(
            e,
            "response is not HTTP/1.0 or HTTP/1.1: status line \"HTTP/2 200\""
        );
        let e = err(b"HTTP/1.1 abc\r\n\r\n");
        assert_eq!(
            e,
            "malformed response head: invalid status line \"HTTP/1.1 abc\""
        );
        let e = err(b"HTTP/1.1 099 Low\r\n\r\n");
        assert!(e.contains("invalid status code 099"), "{e}");
        assert!(err(b"HTTP/1.1 2000 OK\r\n\r\n").contains("invalid status line"));
        assert!(err(b"HTTP/1.1  200 OK\r\n\r\n").contains("invalid status line"));
        assert_eq!(err(b""), "malformed response head: empty");
        assert!(err(b"HTTP/1.1 200 OK\r\n").contains("incomplete"));
    }

    #[test]
    fn rejects_bad_header_lines() {
        // Obsolete line folding.
        let e = err(b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            e,
            "malformed response head: obsolete line folding (continuation line) at line 3: \" two\""
        );
        let e = err(b"HTTP/1.1 204 No Content\r\n\tConnection: close\r\n\r\n");
        assert_eq!(
            e,
            "malformed response head: first header line starts with whitespace at line 2: \"\\tConnection: close\""
        );
        // A control byte in a value.
        let e = err(b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n");
        assert_eq!(
            e,
            "malformed response head: invalid byte in header value at line 2: \"X-A: a\\x01b\""
        );
        // No colon, a space before the colon, an empty name.
        let e = err(b"HTTP/1.1 200 OK\r\nA: b\r\nnot a header\r\n\r\n");
        assert_eq!(
            e,
            "malformed response head: invalid header name at line 3: \"not a header\""
        );
        assert!(err(b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n").contains("header name"));
        assert!(err(b"HTTP/1.1 200 OK\r\n: v\r\n\r\n").contains("header name"));
        // A long line is cut around the bad byte.
        let mut head = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 500));
        head.extend_from_slice(b"\x7fzz\r\n\r\n");
        let e = err(&head);
        assert!(
            e.contains("at line 2: \"...aaaa") && e.contains("\\x7fzz\""),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        // obs-text (non-ASCII) in a value or the reason phrase is allowed.
        let h =
            parse(b"HTTP/1.1 200 \xc9t\xe9\r\nX-A: caf\xe9\r\nContent-Length: 1\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(1));
    }

    #[test]
    fn too_many_headers() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        let mut ok = head.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(parse(&ok).unwrap().framing, Framing::Eof);
        head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert_eq!(
            err(&head),
            format!("malformed response head: more than {MAX_HEADERS} header fields")
        );
    }

    #[test]
    fn bare_lf_heads() {
        let buf = b"HTTP/1.1 200 OK\nContent-Length: 2\nConnection: close\n\nok";
        let end = find_end(buf, 0).unwrap();
        assert_eq!(end, buf.len() - 2);
        let h = parse(&buf[..end]).unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(2), false));
        // Mixed line endings.
        for buf in [
            &b"HTTP/1.1 204 No Content\r\nA: b\n\r\nrest"[..],
            &b"HTTP/1.1 204 No Content\nA: b\r\n\nrest"[..],
        ] {
            let end = find_end(buf, 0).unwrap();
            assert_eq!(&buf[end..], b"rest");
            assert_eq!(parse(&buf[..end]).unwrap().status, 204);
        }
    }

    #[test]
    fn finds_the_end_across_reads() {
        let buf = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        assert_eq!(find_end(buf, 0), Some(buf.len() - 4));
        assert_eq!(find_end(buf, 22), Some(buf.len() - 4));
        assert_eq!(find_end(b"HTTP/1.1 200 OK\r\n", 0), None);
        // Every split point of the blank line.
        for cut in 0..buf.len() {
            if find_end(&buf[..cut], 0).is_none() {
                assert_eq!(find_end(buf, cut), Some(buf.len() - 4), "cut at {cut}");
            }
        }
        // The first blank line wins, even before a CRLFCRLF in the body.
        let buf = b"HTTP/1.1 200 OK\nA: b\n\nx\r\n\r\n";
        assert_eq!(find_end(buf, 0), Some(buf.len() - 5));
        // A leading CRLF (left over after a previous body) is skipped by the parser.
        let buf = b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(find_end(buf, 0), Some(buf.len()));
        assert_eq!(parse(buf).unwrap().status, 200);
        // Partial but plausible: keep reading.
        for part in [&b"H"[..], b"HTTP/1", b"\r\nHTTP/1.1 2", b""] {
            assert_eq!(find_end(part, 0), None, "{part:?}");
        }
        // Clearly not HTTP/1.x: hand it to parse at once, which rejects it.
        for part in [
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            b"S",
            b"HTTP/2",
            b"HTTP/1.2",
            b"\x00\x00",
        ] {
            assert_eq!(find_end(part, 0), Some(part.len()), "{part:?}");
            assert!(parse(part).unwrap_err().contains("not HTTP"), "{part:?}");
        }
    }
}

//! HTTP/1.x response head parsing.

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

/// Position just past the blank line ending the head in `buf`, if it is complete. `from` is
/// where to resume searching (bytes before it were already searched).
pub fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    memchr::memmem::find(&buf[start..], b"\r\n\r\n")
        .map(|i| start + i + 4)
        .or_else(|| {
            // Bare-LF heads (rare, tolerated).
            memchr::memmem::find(&buf[from.saturating_sub(1)..], b"\n\n")
                .map(|i| from.saturating_sub(1) + i + 2)
        })
}

/// Parses a complete head (`buf` ends with the blank line).
pub fn parse(buf: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(format!(
                "not an HTTP/1.x response: {:?}",
                truncate(status_line, 60)
            ));
        }
    };
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("bad status line {:?}", truncate(status_line, 60)))?;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {:?}", truncate(line, 60)));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("connection") {
            for tok in value.split(',') {
                let tok = tok.trim();
                conn_close |= tok.eq_ignore_ascii_case("close");
                conn_keep_alive |= tok.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let framing = if status == 204 || status == 304 {
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

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn rejects_non_http() {
        assert!(
            parse(b"SSH-2.0-OpenSSH\r\n\r\n")
                .unwrap_err()
                .contains("not an HTTP/1.x")
        );
        assert!(
            parse(b"HTTP/1.1 abc\r\n\r\n")
                .unwrap_err()
                .contains("bad status")
        );
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .contains("Content-Length")
        );
    }

    #[test]
    fn finds_the_end_across_reads() {
        let buf = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        assert_eq!(find_end(buf, 0), Some(buf.len() - 4));
        assert_eq!(find_end(buf, 22), Some(buf.len() - 4));
        assert_eq!(find_end(b"HTTP/1.1 200 OK\r\n", 0), None);
    }
}

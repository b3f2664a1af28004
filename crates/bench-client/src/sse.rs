//! Server-sent events, parsed incrementally from arbitrary read boundaries.
//!
//! Lines end in LF or CRLF; `data:` lines accumulate (joined by LF) until a blank line
//! dispatches the event; `:` comments (keep-alive pings), `id:` and `retry:` are skipped;
//! `event: error` marks the event as an error. Unlike a browser, any other line is an error:
//! for a benchmark a garbled stream must fail loudly, not be skipped.

/// A dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `data` payload.
    pub data: &'a [u8],
    /// Sent as `event: error`.
    pub error: bool,
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum SseError<E> {
    /// A line that is not SSE.
    Malformed(String),
    /// The event handler refused an event.
    Handler(E),
}

/// Buffers larger than this are freed once consumed, not kept for the next line or event: a
/// stream's one huge line must not hold its memory for the rest of the stream.
const KEEP_CAPACITY: usize = 64 << 10;

/// Incremental SSE parser state.
#[derive(Debug, Default)]
pub struct SseParser {
    /// A partial line carried over from the previous input.
    line: Vec<u8>,
    /// Data of the event being built.
    data: Vec<u8>,
    has_data: bool,
    error: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held and not yet consumed: a partial line, and the data of an event not yet
    /// dispatched.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len()
    }

    /// Whether the input so far ends inside a line (no line end after its last bytes).
    pub fn partial_line(&self) -> bool {
        !self.line.is_empty()
    }

    /// Parses `input`, calling `on` for every event completed inside it.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', input) {
            let seg = &input[start..nl];
            start = nl + 1;
            if self.line.is_empty() {
                self.line_done(seg, on)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(seg);
                let r = self.line_done(&line, on);
                if line.capacity() <= KEEP_CAPACITY {
                    line.clear();
                    self.line = line;
                }
                r?;
            }
        }
        if start < input.len() {
            self.line.extend_from_slice(&input[start..]);
            if self.line.len() > 64 << 20 {
                return Err(SseError::Malformed("SSE line longer than 64 MiB".into()));
            }
        }
        Ok(())
    }

    /// End of stream: a last line or event without its terminating blank line is still
    /// dispatched (servers that close right after the final `data:` line).
    pub fn finish<E>(
        &mut self,
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, on)?;
        }
        self.line_done(b"", on)
    }

    fn line_done<E>(
        &mut self,
        line: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                let r = on(Event {
                    data: &self.data,
                    error: self.error,
                });
                if self.data.capacity() > KEEP_CAPACITY {
                    self.data = Vec::new();
                } else {
                    self.data.clear();
                }
                self.has_data = false;
                self.error = false;
                r.map_err(SseError::Handler)?;
            } else {
                self.error = false;
            }
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.error = value == b"error",
            b"id" | b"retry" => {}
            _ if line.starts_with(b"{") => {
                // a server that answers a streamed request with one JSON object: say what it said
                return Err(SseError::Malformed(format!(
                    "a JSON body instead of an SSE stream: {}",
                    crate::protocol::response::error_message(line)
                )));
            }
            _ => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                let cut = if line.len() > 80 { "..." } else { "" };
                return Err(SseError::Malformed(format!(
                    "malformed SSE line \"{}{cut}\"",
                    shown.escape_debug()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], split: usize) -> Result<Vec<(String, bool)>, SseError<()>> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut on = |e: Event<'_>| {
            out.push((String::from_utf8(e.data.to_vec()).unwrap(), e.error));
            Ok::<(), ()>(())
        };
        for part in input.chunks(split.max(1)) {
            p.feed(part, &mut on)?;
        }
        p.finish(&mut on)?;
        Ok(out)
    }

    #[test]
    fn events_at_every_split() {
        let s = b"data: {\"a\":1}\n\n: ping\r\n\r\ndata:{\"b\":2}\r\n\r\nevent: error\ndata: x\ndata: y\n\nid: 7\nretry: 10\ndata: [DONE]\n\n";
        for split in 1..=s.len() {
            let ev = collect(s, split).unwrap();
            assert_eq!(
                ev,
                vec![
                    ("{\"a\":1}".to_string(), false),
                    ("{\"b\":2}".to_string(), false),
                    ("x\ny".to_string(), true),
                    ("[DONE]".to_string(), false)
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        assert_eq!(
            collect(b"data: 1\n\ndata: 2", 100).unwrap(),
            vec![("1".into(), false), ("2".into(), false)]
        );
    }

    #[test]
    fn garbage_line_is_an_error() {
        let e = collect(b"data: 1\n\nthis is not sse\n\n", 4).unwrap_err();
        assert!(
            matches!(&e, SseError::Malformed(m) if m.contains("this is not sse")),
            "{e:?}"
        );
    }

    #[test]
    fn buffers_are_counted_and_freed_once_consumed() {
        let mut p = SseParser::new();
        let mut on = |_e: Event<'_>| Ok::<(), ()>(());
        p.feed(b"data: {\"a\":1}\n\ndata: ", &mut on).unwrap();
        assert_eq!((p.buffered(), p.partial_line()), (6, true));
        p.feed(&vec![b'a'; 1 << 20], &mut on).unwrap();
        assert_eq!(p.buffered(), 6 + (1 << 20));
        // The line ends: its data waits for the blank line; the line buffer is freed.
        p.feed(b"\n", &mut on).unwrap();
        assert_eq!((p.buffered(), p.partial_line()), (1 << 20, false));
        assert_eq!(p.line.capacity(), 0);
        p.feed(b"\n", &mut on).unwrap();
        assert_eq!(p.buffered(), 0);
        assert_eq!(p.data.capacity(), 0);
    }

    #[test]
    fn long_garbage_lines_are_cut_visibly() {
        let line = format!("{}\n", "x".repeat(100));
        let e = collect(line.as_bytes(), 7).unwrap_err();
        assert_eq!(
            e,
            SseError::Malformed(format!("malformed SSE line \"{}...\"", "x".repeat(80)))
        );
    }

    #[test]
    fn handler_error_stops() {
        let mut p = SseParser::new();
        let r = p.feed(b"data: 1\n\ndata: 2\n\n", &mut |_e: Event<'_>| Err("stop"));
        assert_eq!(r, Err(SseError::Handler("stop")));
    }
}

//! HTTP/1.1 chunked transfer decoding, incremental over arbitrary read boundaries.

/// Decoder state between reads.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being parsed, or bytes left in the current chunk.
    size: u64,
    /// Hex digits seen on the size line (to reject empty sizes).
    digits: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the size line.
    #[default]
    Size,
    /// After the digits: extensions or whitespace until the line's end.
    SizeRest,
    /// After a CR on the size line: LF must follow.
    SizeLf,
    /// Inside chunk data (`size` bytes left).
    Data,
    /// Expecting CR LF after the data.
    DataCr,
    DataLf,
    /// In the trailer section, at the start of a line.
    TrailerStart,
    /// In a trailer line, until LF.
    TrailerLine,
    /// The final CRLF has been read.
    Done,
}

impl ChunkedDecoder {
    /// Whether the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `out` with each run of payload bytes in order. Returns the number
    /// of bytes consumed: all of `input`, or fewer when the body ended inside it (the rest is
    /// not part of this response).
    pub fn decode<E>(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, DecodeError<E>> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Size => {
                    let b = input[i];
                    if let Some(d) = (b as char).to_digit(16) {
                        if self.digits >= 15 {
                            return Err(DecodeError::Bad("chunk size too large".into()));
                        }
                        self.size = self.size * 16 + d as u64;
                        self.digits += 1;
                    } else if self.digits == 0 {
                        return Err(DecodeError::Bad(format!(
                            "chunk size line starts with byte 0x{b:02x}"
                        )));
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::SizeRest;
                    } else if b == b'\n' {
                        self.end_size_line();
                    } else {
                        return Err(DecodeError::Bad(format!(
                            "bad byte 0x{b:02x} in chunk size"
                        )));
                    }
                    i += 1;
                }
                State::SizeRest => match memchr::memchr2(b'\r', b'\n', &input[i..]) {
                    Some(j) => {
                        if input[i + j] == b'\r' {
                            self.state = State::SizeLf;
                        } else {
                            self.end_size_line();
                        }
                        i += j + 1;
                    }
                    None => i = input.len(),
                },
                State::SizeLf => {
                    if input[i] != b'\n' {
                        return Err(DecodeError::Bad(format!(
                            "expected LF after CR on the chunk size line, got 0x{:02x}",
                            input[i]
                        )));
                    }
                    self.end_size_line();
                    i += 1;
                }
                State::Data => {
                    let take = ((input.len() - i) as u64).min(self.size) as usize;
                    out(&input[i..i + take]).map_err(DecodeError::Sink)?;
                    i += take;
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    match input[i] {
                        b'\r' => self.state = State::DataLf,
                        b'\n' => self.state = State::Size,
                        b => {
                            return Err(DecodeError::Bad(format!(
                                "expected CRLF after chunk data, got 0x{b:02x}"
                            )));
                        }
                    }
                    i += 1;
                }
                State::DataLf => {
                    if input[i] != b'\n' {
                        return Err(DecodeError::Bad("expected LF after chunk data".into()));
                    }
                    self.state = State::Size;
                    i += 1;
                }
                State::TrailerStart => {
                    match input[i] {
                        b'\n' => {
                            self.state = State::Done;
                            return Ok(i + 1);
                        }
                        b'\r' => {}
                        _ => self.state = State::TrailerLine,
                    }
                    i += 1;
                }
                State::TrailerLine => match memchr::memchr(b'\n', &input[i..]) {
                    Some(j) => {
                        i += j + 1;
                        self.state = State::TrailerStart;
                    }
                    None => i = input.len(),
                },
                State::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn end_size_line(&mut self) {
        self.digits = 0;
        if self.size == 0 {
            self.state = State::TrailerStart;
        } else {
            self.state = State::Data;
        }
    }
}

/// Why decoding stopped.
#[derive(Debug)]
pub enum DecodeError<E> {
    /// The chunk framing is broken.
    Bad(String),
    /// The payload consumer refused the data.
    Sink(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], split: usize) -> (Vec<u8>, bool, usize) {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut consumed = 0;
        for part in input.chunks(split) {
            consumed += d
                .decode::<()>(part, |b| {
                    out.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            if d.is_done() {
                break;
            }
        }
        (out, d.is_done(), consumed)
    }

    #[test]
    fn decodes_at_every_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
        for split in 1..=body.len() {
            let (out, done, consumed) = decode_split(body, split);
            assert_eq!(out, b"hello 0123456789", "split {split}");
            assert!(done, "split {split}");
            assert_eq!(consumed, body.len(), "split {split}");
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let mut d = ChunkedDecoder::default();
        let n = d
            .decode::<()>(b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200", |_| Ok(()))
            .unwrap();
        assert_eq!(n, 12);
        assert!(d.is_done());
    }

    #[test]
    fn rejects_garbage() {
        let mut d = ChunkedDecoder::default();
        assert!(matches!(
            d.decode::<()>(b"zz\r\n", |_| Ok(())),
            Err(DecodeError::Bad(_))
        ));
        let mut d = ChunkedDecoder::default();
        assert!(matches!(
            d.decode::<()>(b"2\r\nokXX", |_| Ok(())),
            Err(DecodeError::Bad(_))
        ));
        // A CR on the size line not followed by LF (hyper rejects it too), in one read or two.
        for parts in [
            &[&b"5\r\r\nhello"[..]][..],
            &[b"5\r", b"\rhello"],
            &[b"5;x\r", b"x"],
        ] {
            let mut d = ChunkedDecoder::default();
            let r = parts
                .iter()
                .try_for_each(|p| d.decode::<()>(p, |_| Ok(())).map(|_| ()));
            assert!(
                matches!(&r, Err(DecodeError::Bad(m)) if m.contains("expected LF after CR")),
                "{parts:?}"
            );
        }
        // More than 15 hex digits: not a size any server sends (hyper waits for the bytes).
        let mut d = ChunkedDecoder::default();
        assert!(matches!(
            d.decode::<()>(b"ffffffffffffffff\r\n", |_| Ok(())),
            Err(DecodeError::Bad(m)) if m == "chunk size too large"
        ));
    }

    #[test]
    fn sink_errors_pass_through() {
        let mut d = ChunkedDecoder::default();
        let r = d.decode(b"2\r\nok\r\n", |_| Err("nope"));
        assert!(matches!(r, Err(DecodeError::Sink("nope"))));
    }
}

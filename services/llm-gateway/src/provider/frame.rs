//! Framing of streamed responses: Server-Sent Events (OpenAI, Anthropic) and newline-delimited
//! JSON (Ollama). Bytes arrive in arbitrary pieces; a frame is complete only at its delimiter.

/// Longest pending frame: an upstream that never sends a delimiter cannot grow memory forever.
const MAX_FRAME: usize = 8 * 1024 * 1024;

#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// SSE: `data:` lines of the event being read.
    data: Vec<u8>,
    has_data: bool,
}

impl Framer {
    /// Adds bytes; calls `emit` with each complete frame's payload (an SSE event's data, or an
    /// NDJSON line). Stops early and returns the error if `emit` fails.
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        sse: bool,
        mut emit: impl FnMut(&[u8]) -> Result<bool, E>,
        too_long: impl FnOnce() -> E,
    ) -> Result<bool, E> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut done = false;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            start = end + 1;
            if sse {
                if line.is_empty() {
                    if self.has_data {
                        let data = std::mem::take(&mut self.data);
                        self.has_data = false;
                        if emit(&data)? {
                            done = true;
                            break;
                        }
                    }
                } else if let Some(rest) = line.strip_prefix(b"data:") {
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(rest);
                    self.has_data = true;
                }
                // `event:`, `id:`, `retry:` and comments: the data says everything needed.
            } else if !line.iter().all(u8::is_ascii_whitespace) && emit(line)? {
                done = true;
                break;
            }
        }
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > MAX_FRAME {
            return Err(too_long());
        }
        Ok(done)
    }

    /// The stream closed: an unterminated last frame is delivered too.
    pub fn finish<E>(
        &mut self,
        sse: bool,
        mut emit: impl FnMut(&[u8]) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let rest = std::mem::take(&mut self.buf);
        if sse {
            if let Some(d) = rest.strip_prefix(b"data:") {
                let d = d.strip_prefix(b" ").unwrap_or(d);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(d);
                self.has_data = true;
            }
            if self.has_data {
                self.has_data = false;
                let data = std::mem::take(&mut self.data);
                return emit(&data);
            }
            Ok(false)
        } else if !rest.iter().all(u8::is_ascii_whitespace) {
            emit(&rest)
        } else {
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&str], sse: bool) -> Vec<String> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push::<()>(
                c.as_bytes(),
                sse,
                |d| {
                    out.push(String::from_utf8_lossy(d).into_owned());
                    Ok(false)
                },
                || (),
            )
            .unwrap();
        }
        f.finish::<()>(sse, |d| {
            out.push(String::from_utf8_lossy(d).into_owned());
            Ok(false)
        })
        .unwrap();
        out
    }

    #[test]
    fn sse_events_split_anywhere() {
        let got = frames(
            &[
                "event: a\nda",
                "ta: {\"x\":1}\n",
                "\r\n: comment\ndata: two\ndata: lines\n\n",
            ],
            true,
        );
        assert_eq!(got, vec!["{\"x\":1}", "two\nlines"]);
    }

    #[test]
    fn ndjson_lines_and_unterminated_tail() {
        let got = frames(&["{\"a\":1}\n\n{\"b\"", ":2}\n{\"c\":3}"], false);
        assert_eq!(got, vec!["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }
}

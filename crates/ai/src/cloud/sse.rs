//! A Server-Sent Events parser (the WHATWG event-stream format): bytes in, `(event, data)` out.
//! Handles `\n`, `\r\n` and `\r` line ends, multi-line `data:`, comments and chunk boundaries
//! anywhere (even inside a UTF-8 character).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `message` if none was given.
    pub event: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` starting the next chunk belongs to it.
    pending_cr: bool,
}

/// Longest line we accept (a single event larger than this is a protocol error).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut out = Vec::new();
        let mut chunk = chunk;
        if self.pending_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.pending_cr = false;
        let mut start = 0;
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if b == b'\n' || b == b'\r' {
                self.buf.extend_from_slice(&chunk[start..i]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line, &mut out)?;
                if b == b'\r' {
                    if i + 1 < chunk.len() {
                        if chunk[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.pending_cr = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buf.extend_from_slice(&chunk[start..]);
        if self.buf.len() > MAX_LINE {
            return Err(format!("SSE line longer than {MAX_LINE} bytes"));
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        if line.is_empty() {
            if self.has_data {
                let event = if self.event.is_empty() { "message".to_string() } else { std::mem::take(&mut self.event) };
                out.push(SseEvent { event, data: std::mem::take(&mut self.data) });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| "SSE line is not UTF-8".to_string())?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter here
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.push(c).unwrap()).collect()
    }

    #[test]
    fn parses_events_split_anywhere() {
        let text = "event: message_start\ndata: {\"a\":1}\n\n: comment\nevent: ping\ndata: {}\n\ndata: x\ndata: y\n\n";
        let whole = all(&[text.as_bytes()]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0], SseEvent { event: "message_start".into(), data: "{\"a\":1}".into() });
        assert_eq!(whole[2], SseEvent { event: "message".into(), data: "x\ny".into() });
        for split in 1..text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            assert_eq!(all(&[a, b]), whole, "split at {split}");
        }
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let crlf = all(&[b"event: a\r\ndata: 1\r\n\r\n"]);
        assert_eq!(crlf, vec![SseEvent { event: "a".into(), data: "1".into() }]);
        let split = all(&[b"event: a\r", b"\ndata: 1\r", b"\n\r", b"\n"]);
        assert_eq!(split, crlf);
        let cr = all(&[b"event: a\rdata: 1\r\r"]);
        assert_eq!(cr, crlf);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo\n\n".as_bytes();
        let (a, b) = text.split_at(8); // inside 'é'
        assert_eq!(all(&[a, b])[0].data, "héllo");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(SseParser::new().push(b"data: \xff\n\n").is_err());
    }
}

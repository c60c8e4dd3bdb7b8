//! Incremental parser of `text/event-stream` bodies (the WHATWG server-sent events format).

use crate::LlmError;

/// A line longer than this means the peer is not speaking SSE (or is hostile): stop buffering.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if the frame had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Turns body chunks, split anywhere (even inside a line or a UTF-8 character), into events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to that line end.
    skip_lf: bool,
    frame: Frame,
}

#[derive(Debug, Default)]
struct Frame {
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Frame {
    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
        }
        self.event = None;
        self.has_data = false;
    }
}

impl SseParser {
    /// Feeds a chunk; complete events are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while start < self.buf.len() {
            if std::mem::take(&mut self.skip_lf) && self.buf[start] == b'\n' {
                start += 1;
                continue;
            }
            let Some(rel) = self.buf[start..].iter().position(|b| *b == b'\n' || *b == b'\r') else { break };
            let end = start + rel;
            self.skip_lf = self.buf[end] == b'\r';
            let line = std::str::from_utf8(&self.buf[start..end])
                .map_err(|_| LlmError::Protocol("the event stream is not valid UTF-8".into()))?;
            self.frame.line(line, out);
            start = end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LlmError::Protocol("an event stream line exceeds 8 MiB".into()));
        }
        Ok(())
    }

    /// Ends the stream: a last event without its blank line is still delivered.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = std::str::from_utf8(&rest)
                .map_err(|_| LlmError::Protocol("the event stream is not valid UTF-8".into()))?;
            self.frame.line(line, out);
        }
        self.frame.dispatch(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            parser.push(chunk, &mut out).unwrap();
        }
        parser.finish(&mut out).unwrap();
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.map(str::to_owned), data: data.to_owned() }
    }

    #[test]
    fn parses_events_split_at_every_byte() {
        let input =
            "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: héllo\ndata: wörld\n\ndata: [DONE]\n\n";
        let expected = vec![ev(Some("message_start"), "{\"a\":1}"), ev(None, "héllo\nwörld"), ev(None, "[DONE]")];
        for piece in [1, 2, 3, 7, input.len()] {
            assert_eq!(parse_in_pieces(input.as_bytes(), piece), expected, "piece size {piece}");
        }
    }

    #[test]
    fn accepts_crlf_and_cr_line_ends_split_between_chunks() {
        let input = b"data: a\r\n\r\ndata: b\r\rdata:c\n\n";
        for piece in [1, 2, 5, input.len()] {
            assert_eq!(parse_in_pieces(input, piece), vec![ev(None, "a"), ev(None, "b"), ev(None, "c")]);
        }
    }

    #[test]
    fn event_name_does_not_leak_into_the_next_event() {
        let out = parse_in_pieces(b"event: ping\n\ndata: x\n\n", 4);
        assert_eq!(out, vec![ev(None, "x")]);
    }

    #[test]
    fn last_event_without_blank_line_is_delivered() {
        assert_eq!(parse_in_pieces(b"data: tail", 3), vec![ev(None, "tail")]);
    }

    #[test]
    fn invalid_utf8_is_a_protocol_error() {
        let mut parser = SseParser::default();
        let err = parser.push(b"data: \xff\xfe\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, LlmError::Protocol(_)));
    }
}

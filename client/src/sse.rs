//! A reader of Server-Sent Events (the `text/event-stream` format of the WHATWG HTML standard): frames of
//! `event:`, `id:` and `data:` lines ended by a blank line; `:` comments (the server's keep-alives) are skipped.

use bytes_stream::ByteStream;
use serde::Serialize;
use serde_json::Value;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SseEvent {
    /// The `event:` name (`message` when the frame has none).
    pub event: String,
    /// The `id:`, when the frame has one (`<job_id>:<seq>` for this API).
    pub id: Option<String>,
    /// The `data:` lines joined, parsed as JSON (a JSON string when they are not JSON).
    pub data: Value,
}

/// Accumulates bytes and yields the complete events among them.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, skip)) = frame_end(&self.pending) {
            let frame: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            if let Some(event) = parse_frame(&String::from_utf8_lossy(&frame)) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first frame ends (`\n\n`, `\r\n\r\n` or `\r\r`) and how long the separator is.
fn frame_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        for separator in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buffer[i..].starts_with(separator) {
                return Some((i, separator.len()));
            }
        }
        i += 1;
    }
    None
}

fn parse_frame(frame: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut id = None;
    let mut data: Option<String> = None;
    for line in frame.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    // A frame of comments only (a keep-alive) is no event.
    if event.is_none() && data.is_none() {
        return None;
    }
    let data = data.unwrap_or_default();
    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
    Some(SseEvent { event: event.unwrap_or_else(|| "message".to_owned()), id, data })
}

/// Events read from a streaming HTTP response.
pub struct SseStream {
    body: ByteStream,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
}

/// How a stream's read ended when it gave no event.
#[derive(Debug)]
pub enum StreamEnd {
    /// The server closed the body.
    Closed,
    /// The connection broke.
    Broken(reqwest::Error),
}

impl SseStream {
    /// The events of `response`'s body.
    pub fn new(response: reqwest::Response) -> SseStream {
        SseStream { body: bytes_stream::of(response), parser: SseParser::default(), ready: Default::default() }
    }

    /// The next event, or how the stream ended.
    pub async fn next(&mut self) -> Result<SseEvent, StreamEnd> {
        use futures::StreamExt;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.ready.extend(self.parser.push(&chunk)),
                Some(Err(e)) => return Err(StreamEnd::Broken(e)),
                None => return Err(StreamEnd::Closed),
            }
        }
    }
}

mod bytes_stream {
    use futures::StreamExt;
    use futures::stream::BoxStream;

    pub type ByteStream = BoxStream<'static, reqwest::Result<Vec<u8>>>;

    pub fn of(response: reqwest::Response) -> ByteStream {
        response.bytes_stream().map(|chunk| chunk.map(|bytes| bytes.to_vec())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_split_anywhere_become_events() {
        let text = "event: progress\nid: j:1\ndata: {\"stage\":\"analyzing\"}\n\n: keep-alive\n\n\
                    event: result\r\nid: j:2\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nevent: reconnect\ndata: text\n\n";
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for byte in text.as_bytes() {
            events.extend(parser.push(std::slice::from_ref(byte)));
        }
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0].event, "progress");
        assert_eq!(events[0].id.as_deref(), Some("j:1"));
        assert_eq!(events[0].data, json!({"stage": "analyzing"}));
        assert_eq!(events[1].data, json!({"a": 1}), "data lines are joined with a newline");
        assert_eq!(events[2].event, "reconnect");
        assert_eq!(events[2].id, None);
        assert_eq!(events[2].data, json!("text"));
    }
}

//! A minimal SSE client for tests: reads `event:`/`data:`/`id:` frames from a streaming response.

use futures::StreamExt;
use serde_json::Value;

/// One received SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

impl SseEvent {
    /// The sequence number in the event's `id` (`<job_id>:<seq>`).
    pub fn seq(&self) -> u32 {
        let id = self.id.as_deref().unwrap_or_else(|| panic!("an event without id: {self:?}"));
        let (_, seq) = id.split_once(':').unwrap_or_else(|| panic!("id is not <job_id>:<seq>: {id}"));
        seq.parse().unwrap_or_else(|_| panic!("not a sequence number: {id}"))
    }
}

/// An open event stream.
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    pub conversation_id_header: Option<String>,
}

impl SseStream {
    pub fn new(response: reqwest::Response) -> Self {
        let conversation_id_header =
            response.headers().get("x-conversation-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        SseStream { body: response.bytes_stream().boxed(), buffer: String::new(), conversation_id_header }
    }

    /// The next event, `None` when the stream ended. Comments (keep-alives) are skipped.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_frame(&frame) {
                    return Some(event);
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                _ => return None,
            }
        }
    }

    /// Every remaining event until the stream ends (or `limit` of them).
    pub async fn collect(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
            if events.len() > 100 {
                panic!("runaway stream: {events:?}");
            }
        }
        events
    }
}

fn parse_frame(frame: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut id = None;
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    let event = event?;
    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
    Some(SseEvent { event, id, data })
}

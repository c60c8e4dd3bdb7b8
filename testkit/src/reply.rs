//! Scripted answers of the fake server.

use std::time::Duration;

/// Text of the reply used when nothing else was scripted.
pub const DEFAULT_REPLY_TEXT: &str = "```sql\nSELECT 1\n```";

/// How many pieces [`Reply::text`] splits its text into when streamed (fewer for very short texts).
const STREAM_PIECES: usize = 6;

/// How a scripted completion ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model finished: `finish_reason: "stop"` (Anthropic `stop_reason: "end_turn"`).
    Finished,
    /// The token limit was reached: `finish_reason: "length"` (Anthropic `stop_reason: "max_tokens"`).
    Length,
    /// No reason at all, as when llama-cpp-python interrupts a running reply because another request
    /// arrived: a stream sends its text and then its end marker (`data: [DONE]`, Anthropic `message_stop`)
    /// without the event carrying the reason (nor OpenAI's usage chunk); a plain reply has `null` for it.
    Interrupted,
}

/// One scripted answer of the fake LLM.
///
/// Every variant is answered in the format of the protocol the request used (OpenAI or Anthropic).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A completion ending as `stop` says. Streamed requests receive one delta per chunk, with `chunk_delay`
    /// between consecutive events; plain requests receive the chunks concatenated.
    Text { chunks: Vec<String>, chunk_delay: Duration, stop: Stop },
    /// An HTTP error with a provider-shaped JSON body; `retry_after` adds the `retry-after` header
    /// (and OpenAI's `retry-after-ms`).
    Error { status: u16, message: String, retry_after: Option<Duration> },
    /// HTTP 400 for a prompt over a context window of `context_window` tokens, streamed or not, worded with
    /// the request's token counts as llama-cpp-python (OpenAI: `code: "context_length_exceeded"`) and
    /// Anthropic (`prompt is too long: N tokens > M maximum`) word it.
    ContextOverflow { context_window: u64 },
    /// Waits `delay` before answering with `reply`.
    Delayed { delay: Duration, reply: Box<Reply> },
    /// Never answers (until the server is dropped): for timeout tests.
    Hang,
    /// An arbitrary body, for tests of malformed or unusual provider output.
    Raw { status: u16, content_type: String, body: String },
}

impl Reply {
    /// A completion with `text`, split into several chunks when streamed.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::ending(text, Stop::Finished)
    }

    /// A reply with `text` cut short without any finish reason ([`Stop::Interrupted`]).
    pub fn interrupted(text: impl Into<String>) -> Reply {
        Reply::ending(text, Stop::Interrupted)
    }

    /// A reply with `text` stopped by the token limit ([`Stop::Length`]).
    pub fn length_limit(text: impl Into<String>) -> Reply {
        Reply::ending(text, Stop::Length)
    }

    /// A 200 `text/event-stream` response with an empty body, whatever was asked: what llama-cpp-python sends
    /// for a streamed prompt over its context window.
    pub fn empty_stream() -> Reply {
        Reply::raw(200, "text/event-stream", "")
    }

    /// HTTP 400 for a prompt over a context window of `context_window` tokens ([`Reply::ContextOverflow`]):
    /// what llama-cpp-python sends for a plain (not streamed) prompt over its window, and OpenAI or Anthropic
    /// for any.
    pub fn context_length_exceeded(context_window: u64) -> Reply {
        Reply::ContextOverflow { context_window }
    }

    fn ending(text: impl Into<String>, stop: Stop) -> Reply {
        Reply::Text { chunks: split_pieces(&text.into(), STREAM_PIECES), chunk_delay: Duration::ZERO, stop }
    }

    /// A completion streamed exactly as the given chunks.
    pub fn text_chunks<I, S>(chunks: I) -> Reply
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply::Text {
            chunks: chunks.into_iter().map(Into::into).collect(),
            chunk_delay: Duration::ZERO,
            stop: Stop::Finished,
        }
    }

    /// An HTTP error `status` whose provider-shaped body carries `message`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::Error { status, message: message.into(), retry_after: None }
    }

    /// A 429 asking the client to wait `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Reply {
        Reply::Error {
            status: 429,
            message: "Rate limit reached for requests. Please try again later.".into(),
            retry_after: Some(retry_after),
        }
    }

    /// Answers with `reply` after `delay`.
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delayed { delay, reply: Box::new(reply) }
    }

    /// Never answers.
    pub fn hang() -> Reply {
        Reply::Hang
    }

    /// An arbitrary response body with the given status and content type.
    pub fn raw(status: u16, content_type: impl Into<String>, body: impl Into<String>) -> Reply {
        Reply::Raw { status, content_type: content_type.into(), body: body.into() }
    }

    /// The same reply with `delay` between streamed events (applies to the text inside [`Reply::Delayed`] too;
    /// other variants are returned unchanged).
    pub fn with_chunk_delay(self, delay: Duration) -> Reply {
        match self {
            Reply::Text { chunks, stop, .. } => Reply::Text { chunks, chunk_delay: delay, stop },
            Reply::Delayed { delay: before, reply } => {
                Reply::Delayed { delay: before, reply: Box::new(reply.with_chunk_delay(delay)) }
            }
            other => other,
        }
    }
}

impl Default for Reply {
    fn default() -> Self {
        Reply::text(DEFAULT_REPLY_TEXT)
    }
}

/// Splits `text` into at most `pieces` non-empty parts of similar length, on character boundaries.
fn split_pieces(text: &str, pieces: usize) -> Vec<String> {
    let chars = text.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    let per_piece = chars.div_ceil(pieces);
    let mut out = Vec::with_capacity(pieces);
    let mut current = String::new();
    for (i, c) in text.chars().enumerate() {
        current.push(c);
        if (i + 1) % per_piece == 0 {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_split_into_several_chunks_that_reassemble() {
        let text = "SELECT name, count(*) FROM users GROUP BY name";
        let Reply::Text { chunks, .. } = Reply::text(text) else { panic!("not text") };
        assert!(chunks.len() > 1 && chunks.len() <= STREAM_PIECES, "{chunks:?}");
        assert_eq!(chunks.concat(), text);
        assert!(chunks.iter().all(|c| !c.is_empty()));
    }

    #[test]
    fn split_respects_multibyte_characters() {
        let text = "查询所有年龄大于三十岁的用户";
        let chunks = split_pieces(text, 4);
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks.len(), 4);
    }

    #[test]
    fn chunk_delay_reaches_through_delayed() {
        let reply = Reply::delayed(Duration::from_millis(5), Reply::text("x")).with_chunk_delay(Duration::from_secs(1));
        let Reply::Delayed { reply, .. } = reply else { panic!("not delayed") };
        assert!(matches!(*reply, Reply::Text { chunk_delay, .. } if chunk_delay == Duration::from_secs(1)));
    }
}

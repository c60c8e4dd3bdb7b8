//! Finding the statement in what a model wrote.
//!
//! Real replies come as a fenced block (```sql, ```postgresql, a bare ``` fence...), bare SQL with prose around
//! it, a JSON object `{"sql": ..., "explanation": ...}` (alone, in a ```json fence or inside prose), with
//! Windows newlines, and sometimes after a `<think>...</think>` reasoning block. The rules here only ever return
//! text the model wrote as a statement: prose such as "Select the table you need." or "I cannot answer that" gives
//! `sql: None` (the prose then becomes the explanation).
//!
//! The extracted text is returned as written (comments and all) except for surrounding whitespace and one
//! trailing `;`. Deciding whether it is safe to run is the validator's job, so write statements are extracted too.
//!
//! The rules are tried in this order, one module each: a JSON reply (`json`), a fenced block (`fences`), a bare
//! statement outside the fences (`bare`, with `redis` for command lines), then inline code (`prose`, which
//! also finds the explanation around a statement).

mod bare;
mod fences;
mod json;
mod prose;
mod redis;

use bare::*;
use fences::*;
use json::*;
use prose::*;
use redis::*;

/// A statement and the model's explanation of it, as found in a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The statement (SQL, or Redis command lines for [`extract_command`]); `None` when the reply has none.
    pub sql: Option<String>,
    /// The model's explanation: the JSON `explanation` field, or the prose around the statement.
    pub explanation: Option<String>,
}

/// Extracts an SQL statement from a model reply.
pub fn extract_sql(reply: &str) -> Extracted {
    extract(reply, Target::Sql)
}

/// Extracts Redis command lines (one command per line) from a model reply.
pub fn extract_command(reply: &str) -> Extracted {
    extract(reply, Target::Redis)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Sql,
    Redis,
}

/// How many `{` positions are tried as the start of a JSON object (bounds the work on long replies).
const MAX_JSON_STARTS: usize = 32;

fn extract(reply: &str, target: Target) -> Extracted {
    let normalized = reply.replace("\r\n", "\n").replace('\r', "\n");
    let text = strip_reasoning(&normalized);
    let text = text.trim();
    if text.is_empty() {
        return Extracted::default();
    }
    let fences = parse_fences(text);
    if let Some(found) = from_json(text, &fences, target) {
        return found;
    }
    if let Some(found) = from_fences(text, &fences, target) {
        return found;
    }
    // Bare statements are only looked for outside code blocks (an unrelated ```python block is not SQL).
    let outside = blank_out(text, &fences);
    if let Some((start, end, statement)) = find_bare(&outside, target) {
        return Extracted { sql: Some(statement), explanation: explanation_around(&outside[..start], &outside[end..]) };
    }
    if let Some(statement) = find_inline_code(&outside, target) {
        return Extracted { sql: Some(statement), explanation: non_empty(text) };
    }
    Extracted { sql: None, explanation: non_empty(text) }
}

/// Removes `<think>...</think>` (and `<thinking>`) blocks. An unclosed block runs to the end of the reply; a
/// closing tag without an opening one (servers that put the opening tag in the prompt template) ends a block
/// that started at the beginning.
fn strip_reasoning(text: &str) -> String {
    const TAGS: [(&str, &str); 2] = [("<think>", "</think>"), ("<thinking>", "</thinking>")];
    let mut out = text.to_owned();
    for (open, close) in TAGS {
        let lower = out.to_ascii_lowercase();
        if let Some(close_at) = lower.find(close)
            && lower.find(open).is_none_or(|open_at| open_at > close_at)
        {
            out.replace_range(..close_at + close.len(), "");
        }
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(start) = lower.find(open) else { break };
            let end = lower[start..].find(close).map_or(out.len(), |i| start + i + close.len());
            out.replace_range(start..end, "");
        }
    }
    out
}

#[cfg(test)]
mod tests;

//! Inline code, the explanation around a statement, and small text helpers the other parts share.

use super::*;

/// The first `` `inline code` `` span holding a statement.
pub(super) fn find_inline_code(text: &str, target: Target) -> Option<String> {
    let mut parts = text.split('`');
    parts.next();
    // Odd-indexed pieces are inside backticks.
    let spans: Vec<&str> = parts.step_by(2).collect();
    spans.into_iter().find_map(|span| match target {
        Target::Sql => looks_like_sql(span).then(|| finish_sql(span)),
        Target::Redis => is_bare_redis_command(span).then(|| span.trim().trim_end_matches(';').to_owned()),
    })
}

/// The prose before and after a statement, minus the lead-in line ("Here is the query:") and labels.
pub(super) fn explanation_around(before: &str, after: &str) -> Option<String> {
    let before = before.trim();
    let before = match before.rsplit_once('\n') {
        Some((head, last)) if is_lead_in(last) => head.trim_end(),
        None if is_lead_in(before) => "",
        _ => before,
    };
    let after = strip_label(after.trim());
    let joined = [before, after].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n\n");
    non_empty(&joined)
}

pub(super) fn is_lead_in(line: &str) -> bool {
    line.trim().trim_end_matches('*').trim_end().ends_with([':', '：'])
}

/// Removes a leading "Explanation:" label (with Markdown emphasis or heading marks).
pub(super) fn strip_label(s: &str) -> &str {
    const LABELS: &[&str] = &["explanation", "解释", "说明", "解析"];
    let t = s.trim_start_matches(['#', '*', ' ']);
    for label in LABELS {
        if t.len() >= label.len() && t.is_char_boundary(label.len()) && t[..label.len()].eq_ignore_ascii_case(label) {
            let rest = t[label.len()..].trim_start_matches(['*', ' ']);
            if let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：')) {
                return rest.trim_start_matches(['*', ' ']).trim();
            }
        }
    }
    s
}

/// Trims `s`, drops trailing spaces of lines and collapses runs of blank lines (left by removed blocks).
pub(super) fn non_empty(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_owned())
}

pub(super) fn first_word(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')).unwrap_or(s.len());
    &s[..end]
}

/// `s` with the contents of quoted strings and identifiers ('...', "...", `...`) replaced by spaces. An
/// apostrophe between two letters (`you'd`, `can't`) is prose, not a quote.
pub(super) fn unquoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            // Same byte length, so offsets found in the result are valid in `s`.
            Some(_) => out.extend(std::iter::repeat_n(' ', c.len_utf8())),
            None => {
                let apostrophe = c == '\''
                    && prev.is_some_and(char::is_alphabetic)
                    && chars.peek().is_some_and(|n| n.is_alphabetic());
                if (c == '\'' && !apostrophe) || c == '"' || c == '`' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
        prev = Some(c);
    }
    out
}

/// [`unquoted`] with SQL comments (`-- ...`, `/* ... */`) blanked too: what is left is code.
pub(super) fn sql_code_only(s: &str) -> String {
    let mut code = unquoted(s);
    while let Some(start) = code.find("/*") {
        let end = code[start..].find("*/").map_or(code.len(), |i| start + i + 2);
        code.replace_range(start..end, &" ".repeat(end - start));
    }
    while let Some(start) = code.find("--") {
        let end = code[start..].find('\n').map_or(code.len(), |i| start + i);
        code.replace_range(start..end, &" ".repeat(end - start));
    }
    code
}

pub(super) fn unquoted_semicolon(s: &str) -> Option<usize> {
    unquoted(s).find(';')
}

/// English words that do not occur in SQL or Redis syntax but fill every sentence.
pub(super) fn has_prose_words(unquoted: &str) -> bool {
    const PROSE: &[&str] = &[
        "the",
        "this",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "will",
        "would",
        "should",
        "could",
        "here",
        "here's",
        "following",
        "please",
        "sorry",
        "cannot",
        "can't",
        "i'm",
        "which",
        "there",
        "an",
        "it's",
        "don't",
        "doesn't",
        "isn't",
        "unfortunately",
        "however",
        "because",
    ];
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .any(|w| PROSE.iter().any(|p| p.eq_ignore_ascii_case(w)))
}

/// Chinese sentence punctuation: no statement contains it outside quotes.
pub(super) fn has_cjk_punctuation(unquoted: &str) -> bool {
    unquoted.contains(['，', '。', '：', '？', '！', '；', '、'])
}

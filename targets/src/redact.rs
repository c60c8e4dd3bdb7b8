//! Hiding a connection's password in the error messages shown to people.
//!
//! A password reaches a message in two ways: inside a connection string that a driver or a server echoes (a URL's
//! `user:password@`, a `password=...` pair), or verbatim because the statement or the data held it. Replacing
//! every substring equal to the password would mangle ordinary messages when the password is short (with `x`:
//! "column ... does not e***ist") and hide nothing: a one-letter password occurring in a message is a
//! coincidence, not a leak. So:
//!
//! * connection-string patterns are hidden whatever the password, even one that is not this connection's;
//! * the password itself is hidden where it stands as a whole token, when it has at least
//!   [`MIN_BARE_SECRET_CHARS`] characters.

use std::ops::Range;

/// Shorter passwords are hidden only inside connection-string patterns. Below this length a whole-word match is
/// far more likely to be a column, a role or a keyword than a leak (`x`, `ab`, `root`, `select`, `column`), and
/// such a password protects little anyway; eight is the usual minimum of password policies.
pub(crate) const MIN_BARE_SECRET_CHARS: usize = 8;

/// Keys of `key=value` pairs whose value is a password (libpq conninfo, ODBC, JDBC and URL query parameters),
/// compared ASCII-case-insensitively.
const PASSWORD_KEYS: [&str; 3] = ["password", "passwd", "pwd"];

const MASK: &str = "***";

/// `message` with the password patterns and the whole-token occurrences of `secret` replaced by `***`.
pub(crate) fn redact(message: &str, secret: &str) -> String {
    let mut hidden = url_passwords(message, secret);
    hidden.extend(pair_passwords(message, secret));
    hidden.extend(bare_secret(message, secret));
    if hidden.is_empty() {
        return message.to_owned();
    }
    hidden.sort_by_key(|range| range.start);
    let mut out = String::with_capacity(message.len());
    let mut copied = 0;
    for range in hidden {
        if range.end <= copied {
            continue;
        }
        if range.start >= copied {
            out.push_str(&message[copied..range.start]);
            out.push_str(MASK);
        }
        // An overlapping range extends the mask already written.
        copied = range.end;
    }
    out.push_str(&message[copied..]);
    out
}

/// Letters, digits and `_`: the characters that continue a word.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where an unquoted value ends: at white space, at a separator of pairs (`;`, `&`) or at a quote that encloses
/// the whole string.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '&' | '"' | '\'')
}

/// `end` moved past `secret` when the text from `start` begins with it, so that a password holding a space or a
/// separator is hidden whole.
fn past_secret(message: &str, start: usize, end: usize, secret: &str) -> usize {
    if !secret.is_empty() && message[start..].starts_with(secret) { end.max(start + secret.len()) } else { end }
}

/// The password of each URL's userinfo (`scheme://user:password@host`). The userinfo runs to the last `@` before
/// white space or a quote, so that a password holding a raw `@` is hidden whole.
fn url_passwords(message: &str, secret: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    for (at, separator) in message.match_indices("://") {
        let authority = at + separator.len();
        let rest = &message[authority..];
        let span = rest.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>')).unwrap_or(rest.len());
        let Some(userinfo_end) = rest[..span].rfind('@') else {
            continue;
        };
        let Some(colon) = rest[..userinfo_end].find(':') else {
            continue;
        };
        let start = authority + colon + 1;
        let end = past_secret(message, start, authority + userinfo_end, secret);
        if start < end {
            ranges.push(start..end);
        }
    }
    ranges
}

/// The value of each `password=...` pair (also `passwd`, `pwd`; spaces around `=`; a quoted value is hidden
/// inside its quotes).
fn pair_passwords(message: &str, secret: &str) -> Vec<Range<usize>> {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` are positions in `message`.
    let lower = message.to_ascii_lowercase();
    let mut ranges = Vec::new();
    for key in PASSWORD_KEYS {
        for (at, _) in lower.match_indices(key) {
            if message[..at].chars().next_back().is_some_and(is_word) {
                continue;
            }
            let after_key = &message[at + key.len()..];
            let Some(value) = after_key.trim_start().strip_prefix('=') else {
                continue;
            };
            let value = value.trim_start();
            let start = message.len() - value.len();
            let (start, end) = match value.chars().next() {
                Some(quote @ ('\'' | '"')) => {
                    let inner = start + 1;
                    (inner, quoted_end(message, inner, quote))
                }
                _ => (start, value.find(ends_value).map_or(message.len(), |len| start + len)),
            };
            let end = past_secret(message, start, end, secret);
            if start < end {
                ranges.push(start..end);
            }
        }
    }
    ranges
}

/// The offset of the quote closing a value that starts at `start`, skipping backslash escapes (libpq's `\'`);
/// the end of the message when it is not closed.
fn quoted_end(message: &str, start: usize, quote: char) -> usize {
    let mut escaped = false;
    for (offset, c) in message[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return start + offset,
            _ => {}
        }
    }
    message.len()
}

/// The occurrences of `secret` that are whole tokens: not glued to a letter, digit or `_` on a side where the
/// secret itself begins or ends with one. Only for secrets of [`MIN_BARE_SECRET_CHARS`] characters or more.
fn bare_secret(message: &str, secret: &str) -> Vec<Range<usize>> {
    if secret.chars().count() < MIN_BARE_SECRET_CHARS {
        return Vec::new();
    }
    let first_is_word = secret.chars().next().is_some_and(is_word);
    let last_is_word = secret.chars().next_back().is_some_and(is_word);
    message
        .match_indices(secret)
        .map(|(at, _)| at..at + secret.len())
        .filter(|range| {
            let glued_before = first_is_word && message[..range.start].chars().next_back().is_some_and(is_word);
            let glued_after = last_is_word && message[range.end..].chars().next().is_some_and(is_word);
            !glued_before && !glued_after
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages the servers really write, which no password may change.
    const ORDINARY: [&str; 5] = [
        r#"column "exist_x" does not exist"#,
        "Unknown column 'exist_x' in 'field list'",
        r#"relation "tab" does not exist"#,
        "Access denied for user 'root'@'localhost' (using password: YES)",
        r#"syntax error at or near "select""#,
    ];

    #[test]
    fn short_passwords_leave_ordinary_messages_alone() {
        for secret in ["x", "e", "ab", "s", "YES", "root", "tab", "exist_x"] {
            for message in ORDINARY {
                assert_eq!(redact(message, secret), message, "secret {secret:?}");
            }
        }
    }

    #[test]
    fn common_words_are_hidden_only_when_long_and_whole() {
        for secret in ["column", "select", "exists", "relations"] {
            for message in ORDINARY {
                assert_eq!(redact(message, secret), message, "secret {secret:?}");
            }
        }
        // Long enough to be hidden: the message loses the word but stays readable.
        assert_eq!(redact(ORDINARY[3], "password"), "Access denied for user 'root'@'localhost' (using ***: YES)");
        assert_eq!(redact(r#"relation "relation" does not exist"#, "relation"), r#"*** "***" does not exist"#);
        assert_eq!(redact("relations and relation_id", "relation"), "relations and relation_id");
    }

    #[test]
    fn a_long_password_is_hidden_where_it_stands_alone() {
        let secret = "hunter2hunter2";
        assert_eq!(
            redact(r#"invalid input syntax for type integer: "hunter2hunter2""#, secret),
            r#"invalid input syntax for type integer: "***""#
        );
        assert_eq!(redact("login hunter2hunter2 failed for hunter2hunter2", secret), "login *** failed for ***");
        // Punctuation at its edges is part of it, whatever is next to it.
        assert_eq!(redact("key=x-s3cret-p@ss!, next", "-s3cret-p@ss!"), "key=x***, next");
    }

    #[test]
    fn url_passwords_are_hidden_whatever_the_secret() {
        let message = "cannot parse postgres://bob:x@db.internal:5432/sales?sslmode=require";
        let expected = "cannot parse postgres://bob:***@db.internal:5432/sales?sslmode=require";
        assert_eq!(redact(message, "x"), expected);
        assert_eq!(redact(message, ""), expected);
        assert_eq!(redact(message, "something-else"), expected);
        // A raw `@` in the password: everything up to the last `@` of the authority.
        assert_eq!(redact("mysql://root:p@ss@host/db failed", "p@ss"), "mysql://root:***@host/db failed");
        // No password in the userinfo, or no userinfo: nothing to hide.
        assert_eq!(redact("postgres://bob@db/sales", "bob"), "postgres://bob@db/sales");
        assert_eq!(redact("see https://example.com:8080/x", "x"), "see https://example.com:8080/x");
    }

    #[test]
    fn password_pairs_are_hidden_whatever_the_secret() {
        assert_eq!(
            redact("invalid connection string: host=db password=x dbname=sales", "x"),
            "invalid connection string: host=db password=*** dbname=sales"
        );
        assert_eq!(redact("host=db password = 'a b\\'c' port=5432", ""), "host=db password = '***' port=5432");
        assert_eq!(
            redact(r#"dsn "Server=db;UID=sa;PWD=ab;" refused"#, "ab"),
            r#"dsn "Server=db;UID=sa;PWD=***;" refused"#
        );
        assert_eq!(redact("jdbc:mysql://db/x?user=a&Passwd=zz&ssl=1", ""), "jdbc:mysql://db/x?user=a&Passwd=***&ssl=1");
        // A password holding a separator is hidden whole when it is the connection's.
        assert_eq!(redact("host=db password=a b port=1", "a b"), "host=db password=*** port=1");
        // Only the key as a word, and only with `=`: MySQL's "(using password: YES)" stays.
        assert_eq!(redact("bypassword=1 mypwd=2", ""), "bypassword=1 mypwd=2");
        assert_eq!(redact(ORDINARY[3], ""), ORDINARY[3]);
    }

    #[test]
    fn overlapping_matches_give_one_mask() {
        let secret = "longsecret-1";
        assert_eq!(
            redact("postgres://u:longsecret-1@h password=longsecret-1", secret),
            "postgres://u:***@h password=***"
        );
    }
}

//! Field checks shared by the request handlers. Each failure is a 422 `VALIDATION_ERROR` whose details name the
//! field and a stable reason: `required` (missing or blank), `too_long`, `too_short`, `invalid_format`,
//! `unsupported`, `taken`, `blocked_address`.

use querygpt_common::netguard::{Blocked, NetworkPolicy};
use serde_json::Map;

use crate::error::ApiError;

/// Longest accepted e-mail address (RFC 5321 path limit).
pub(crate) const MAX_EMAIL_CHARS: usize = 254;

/// `value` trimmed; blank is `required`, longer than `max_chars` is `too_long`.
pub(crate) fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "required", format!("`{field}` must not be empty")));
    }
    check_length(field, value, max_chars)?;
    Ok(value.to_owned())
}

/// `value` trimmed, with blank treated as absent.
pub(crate) fn optional_text(field: &str, value: Option<&str>, max_chars: usize) -> Result<Option<String>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(value) => check_length(field, value, max_chars).map(|()| Some(value.to_owned())),
        None => Ok(None),
    }
}

fn check_length(field: &str, value: &str, max_chars: usize) -> Result<(), ApiError> {
    if value.chars().count() > max_chars {
        let mut extra = Map::new();
        extra.insert("max_length".into(), max_chars.into());
        return Err(ApiError::invalid_field_with(
            field,
            "too_long",
            format!("`{field}` must be at most {max_chars} characters"),
            extra,
        ));
    }
    Ok(())
}

/// A plausible e-mail address, trimmed: `local@domain.tld` without spaces or control characters. Deliverability
/// is not checked; this only refuses what cannot be an address.
pub(crate) fn email(value: &str) -> Result<String, ApiError> {
    let email = required_text("email", value, MAX_EMAIL_CHARS)?;
    if is_plausible_email(&email) {
        Ok(email)
    } else {
        Err(ApiError::invalid_field("email", "invalid_format", "`email` is not a valid e-mail address"))
    }
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '<' | '>' | ',' | ';' | '"');
    let label_ok = |label: &str| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-');
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(forbidden)
        && !domain.contains(forbidden)
        && domain.contains('.')
        && domain.split('.').all(label_ok)
}

/// Refuses a destination the SSRF guard blocks (loopback, private, link-local... unless the operator allows them;
/// see `querygpt_common::netguard`). A name that does not resolve from here is accepted: workers may see other
/// DNS, and they check every address again before each connection.
pub(crate) async fn allowed_destination(
    policy: &NetworkPolicy,
    field: &str,
    host: &str,
    port: u16,
) -> Result<(), ApiError> {
    match policy.resolve(host, port).await {
        Ok(_) | Err(Blocked::Unresolved { .. }) => Ok(()),
        Err(blocked) => Err(ApiError::invalid_field(field, "blocked_address", blocked.to_string())),
    }
}

/// Refuses a SQLite `database` path that leaves `dir` (`worker.sqlite_dir`): relative paths are taken inside it,
/// absolute ones must lie inside it, `..` cannot climb out. The check is lexical, because the file lives where the
/// workers run; each worker checks the canonical path (symlinks followed) again before opening it.
pub(crate) fn sqlite_path(dir: &std::path::Path, database: &str) -> Result<(), ApiError> {
    let absolute = match std::env::current_dir() {
        Ok(cwd) if dir.is_relative() => cwd.join(dir),
        _ => dir.to_owned(),
    };
    // The directory as configured, and as it resolves here when it exists (it may be reached through a symlink,
    // and the embedded demo database is registered by its canonical path).
    let dirs = [Some(absolute.clone()), std::fs::canonicalize(&absolute).ok()];
    let database = std::path::Path::new(database.trim());
    if dirs.iter().flatten().any(|dir| querygpt_common::paths::lexically_inside(&dir.join(database), dir)) {
        return Ok(());
    }
    let mut extra = Map::new();
    extra.insert("allowed_dir".into(), absolute.display().to_string().into());
    Err(ApiError::invalid_field_with(
        "database",
        "path_not_allowed",
        "SQLite files must be inside the directory the operator allows (worker.sqlite_dir)",
        extra,
    ))
}

/// `#[serde(default, deserialize_with = "validate::nullable")]` on an `Option<Option<T>>`: an omitted field is
/// `None` (unchanged), `null` is `Some(None)` (cleared), a value is `Some(Some(v))`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@mail.example.com", "  padded@example.org ", "用户@例子.中国"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        assert_eq!(email(" x@y.io ").unwrap(), "x@y.io");
        for bad in ["", "plain", "@example.com", "a@", "a@localhost", "a b@c.com", "a@b..com", "a@-b.com", "a@b@c.com"]
        {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sqlite_paths_stay_in_their_directory() {
        let dir = std::path::Path::new("/srv/data");
        for ok in ["shop.db", "sub/shop.db", "/srv/data/shop.db", "a/../shop.db"] {
            assert!(sqlite_path(dir, ok).is_ok(), "{ok}");
        }
        for bad in ["/etc/passwd", "../shop.db", "/srv/data/../x.db", "sub/../../x.db"] {
            let err = sqlite_path(dir, bad).unwrap_err();
            assert!(matches!(err, ApiError::Validation { ref details, .. } if details["reason"] == "path_not_allowed"));
        }
        assert!(sqlite_path(std::path::Path::new("data"), "demo.db").is_ok(), "relative directories work");
    }

    #[test]
    fn text_fields() {
        assert_eq!(required_text("name", "  x ", 5).unwrap(), "x");
        assert!(required_text("name", "   ", 5).is_err());
        assert!(required_text("name", "abcdef", 5).is_err());
        assert_eq!(required_text("name", "ééééé", 5).unwrap(), "ééééé", "length counts characters");
        assert_eq!(optional_text("x", Some("  "), 5).unwrap(), None);
        assert_eq!(optional_text("x", None, 5).unwrap(), None);
        assert_eq!(optional_text("x", Some(" y "), 5).unwrap(), Some("y".into()));
    }
}

//! Timestamps as the documents show them: RFC 3339 in UTC with whole seconds (`2024-01-01T00:00:00Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "crate::timestamp::rfc3339")]`.
pub(crate) fn rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `#[serde(serialize_with = "crate::timestamp::rfc3339_optional")]`: `null` when absent.
pub(crate) fn rfc3339_optional<S: Serializer>(time: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}

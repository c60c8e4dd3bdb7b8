//! The schema of a Redis database, from a bounded `SCAN` sample: keys grouped into patterns (`user:1001` becomes
//! `user:*`), each pattern a "table" whose columns depend on the type of its keys.

use super::Session;
use crate::error::TargetError;
use crate::schema::{ColumnInfo, DbSchema, TableInfo, TableKind};
use crate::session::Limits;
use redis::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Keys of one pattern whose hash fields or stream entries are read for its columns.
const KEYS_DESCRIBED: usize = 3;

/// Fields of a hash read per described key (one HSCAN page).
const FIELDS_READ: u64 = 100;

/// Caps of the sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleLimits {
    /// Keys sampled at most.
    pub keys: usize,
    /// Time the sample may take; what was seen by then is the schema.
    pub time: Duration,
}

struct Pattern {
    name: String,
    kind: String,
    keys: Vec<String>,
    count: i64,
}

/// The sampled schema: one table per (key pattern, type), named by the pattern, with a comment giving the type
/// and the number of sampled keys; `row_count` is that number.
pub(crate) async fn schema(
    pool: &super::RedisPool,
    slots: &Semaphore,
    limits: &Limits,
    sample: SampleLimits,
) -> Result<DbSchema, TargetError> {
    let mut session = Session::open(pool, slots, limits).await?;
    let deadline = Instant::now() + sample.time;
    let mut patterns: Vec<Pattern> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut cursor = "0".to_owned();
    let mut sampled = 0;
    loop {
        let reply = session.run("SCAN", &[cursor.clone(), "COUNT".to_owned(), "200".to_owned()]).await?;
        let (next, keys) = super::shape::scan_items(reply, 1)
            .ok_or_else(|| TargetError::QueryFailed("SCAN: unexpected reply".into()))?;
        for key in keys.into_iter().filter_map(|mut row| row.pop()) {
            if sampled >= sample.keys {
                break;
            }
            let key = match key {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            let kind = super::text(session.run("TYPE", std::slice::from_ref(&key)).await?);
            sampled += 1;
            let name = pattern_of(&key);
            let at = *index.entry((name.clone(), kind.clone())).or_insert_with(|| {
                patterns.push(Pattern { name, kind, keys: Vec::new(), count: 0 });
                patterns.len() - 1
            });
            let p = &mut patterns[at];
            p.count += 1;
            if p.keys.len() < KEYS_DESCRIBED {
                p.keys.push(key);
            }
        }
        if next == 0 || sampled >= sample.keys || Instant::now() >= deadline {
            break;
        }
        cursor = next.to_string();
    }
    patterns.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(&b.kind)));
    let mut schema = DbSchema::default();
    for p in patterns {
        let columns = columns_of(&mut session, &p, deadline).await?;
        schema.tables.push(TableInfo {
            comment: Some(format!("Redis {} keys, {} in the sample (e.g. {})", p.kind, p.count, p.keys[0])),
            name: p.name,
            kind: TableKind::Table,
            columns,
            foreign_keys: Vec::new(),
            row_count: Some(p.count),
        });
    }
    Ok(schema)
}

/// Columns by type: string `value`; hash its fields (from a few keys, one HSCAN page each); list `index, value`;
/// set `member`; zset `member, score`; stream `id` and the fields of the first entry of a few keys.
async fn columns_of(session: &mut Session<'_>, p: &Pattern, deadline: Instant) -> Result<Vec<ColumnInfo>, TargetError> {
    let names: Vec<String> = match p.kind.as_str() {
        "hash" => {
            let mut fields = Vec::new();
            for key in &p.keys {
                if Instant::now() >= deadline {
                    break;
                }
                let args = [key.clone(), "0".to_owned(), "COUNT".to_owned(), FIELDS_READ.to_string()];
                if let Some((_, rows)) = super::shape::scan_items(session.run("HSCAN", &args).await?, 2) {
                    for row in rows {
                        let field = super::shape_text(&row[0]);
                        if !fields.contains(&field) {
                            fields.push(field);
                        }
                    }
                }
            }
            fields
        }
        "stream" => {
            let mut fields = vec!["id".to_owned()];
            for key in &p.keys {
                let args = [key.clone(), "-".to_owned(), "+".to_owned(), "COUNT".to_owned(), "1".to_owned()];
                if let Value::Array(entries) = session.run("XRANGE", &args).await?
                    && let Some(Value::Array(entry)) = entries.into_iter().next()
                    && let Some(Value::Array(pairs)) = entry.into_iter().nth(1)
                {
                    for field in pairs.into_iter().step_by(2).map(super::text) {
                        if !fields.contains(&field) {
                            fields.push(field);
                        }
                    }
                }
            }
            fields
        }
        "list" => vec!["index".to_owned(), "value".to_owned()],
        "set" => vec!["member".to_owned()],
        "zset" => vec!["member".to_owned(), "score".to_owned()],
        _ => vec!["value".to_owned()],
    };
    Ok(names
        .into_iter()
        .map(|name| ColumnInfo { name, data_type: p.kind.clone(), nullable: true, primary: false, comment: None })
        .collect())
}

/// The pattern of a key: `:`-separated segments that look like ids (digits, UUIDs, long hex) become `*`.
pub(crate) fn pattern_of(key: &str) -> String {
    key.split(':').map(|s| if is_id(s) { "*" } else { s }).collect::<Vec<_>>().join(":")
}

fn is_id(segment: &str) -> bool {
    let digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let uuid = segment.len() == 36 && uuid::Uuid::parse_str(segment).is_ok();
    let hex = segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit());
    digits || uuid || hex
}

#[cfg(test)]
mod tests {
    use super::pattern_of;

    #[test]
    fn id_segments_become_stars() {
        assert_eq!(pattern_of("user:1001"), "user:*");
        assert_eq!(pattern_of("user:1001:orders"), "user:*:orders");
        assert_eq!(pattern_of("session:6f1c2a9e-8b1d-4c5e-9f00-0123456789ab"), "session:*");
        assert_eq!(pattern_of("config"), "config");
        assert_eq!(pattern_of("cache:deadbeefdeadbeef"), "cache:*");
        assert_eq!(pattern_of("cache:beef"), "cache:beef");
    }
}

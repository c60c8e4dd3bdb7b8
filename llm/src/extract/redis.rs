//! Redis command lines: the commands a model may write, `redis-cli` prompts and output, bare command lines.

use super::*;

/// Redis command words: reads first, then writes and administration (extracted so the validator can refuse them).
pub(super) const REDIS_COMMANDS: &[&str] = &[
    "GET",
    "MGET",
    "GETRANGE",
    "STRLEN",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "EXPIRETIME",
    "KEYS",
    "SCAN",
    "DBSIZE",
    "RANDOMKEY",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HSTRLEN",
    "HSCAN",
    "HRANDFIELD",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "LPOS",
    "SMEMBERS",
    "SISMEMBER",
    "SMISMEMBER",
    "SCARD",
    "SSCAN",
    "SRANDMEMBER",
    "SINTER",
    "SUNION",
    "SDIFF",
    "SINTERCARD",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZREVRANGEBYLEX",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "ZRANDMEMBER",
    "ZUNION",
    "ZINTER",
    "ZDIFF",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XINFO",
    "XREAD",
    "BITCOUNT",
    "BITPOS",
    "GETBIT",
    "PFCOUNT",
    "GEOPOS",
    "GEODIST",
    "GEOHASH",
    "GEOSEARCH",
    "GEORADIUS_RO",
    "GEORADIUSBYMEMBER_RO",
    "OBJECT",
    "MEMORY",
    "INFO",
    "TIME",
    "PING",
    "ECHO",
    "LCS",
    "SUBSTR",
    "SORT_RO",
    "JSON.GET",
    "JSON.MGET",
    "JSON.TYPE",
    "JSON.STRLEN",
    "JSON.ARRLEN",
    "JSON.OBJKEYS",
    "FT.SEARCH",
    "FT.AGGREGATE",
    "FT.INFO",
    "TS.GET",
    "TS.RANGE",
    "TS.MRANGE",
    "TS.INFO",
    "SET",
    "SETEX",
    "SETNX",
    "MSET",
    "GETSET",
    "GETDEL",
    "GETEX",
    "APPEND",
    "INCR",
    "INCRBY",
    "DECR",
    "DECRBY",
    "DEL",
    "UNLINK",
    "EXPIRE",
    "PEXPIRE",
    "PERSIST",
    "RENAME",
    "HSET",
    "HSETNX",
    "HMSET",
    "HDEL",
    "HINCRBY",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LSET",
    "LREM",
    "LTRIM",
    "SADD",
    "SREM",
    "SPOP",
    "ZADD",
    "ZREM",
    "ZINCRBY",
    "XADD",
    "XDEL",
    "SORT",
    "FLUSHDB",
    "FLUSHALL",
    "CONFIG",
    "EVAL",
    "EVALSHA",
    "FCALL",
    "SCRIPT",
    "FUNCTION",
    "MODULE",
    "SHUTDOWN",
    "DEBUG",
    "MIGRATE",
    "RESTORE",
    "DUMP",
    "MOVE",
    "COPY",
    "SELECT",
    "SWAPDB",
    "CLIENT",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "REPLICAOF",
    "SLAVEOF",
    "ACL",
    "PUBLISH",
    "SUBSCRIBE",
    "MULTI",
    "EXEC",
    "WATCH",
];

/// Commands that take no argument (so a one-word line is a command).
pub(super) const REDIS_NO_ARGS: &[&str] =
    &["DBSIZE", "RANDOMKEY", "INFO", "TIME", "PING", "FLUSHDB", "FLUSHALL", "SAVE", "BGSAVE", "MULTI", "EXEC"];

pub(super) fn is_redis_command(word: &str) -> bool {
    REDIS_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// Strips a `redis-cli [options]` invocation or an interactive prompt (`127.0.0.1:6379>`, `redis>`, `$`).
pub(super) fn strip_redis_prompt(line: &str) -> &str {
    let mut s = line.trim();
    s = s.strip_prefix("$ ").unwrap_or(s).trim_start();
    if let Some(gt) = s.find("> ")
        && s[..gt].chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
    {
        s = s[gt + 2..].trim_start();
    }
    if let Some(rest) = s.strip_prefix("redis-cli") {
        let mut tokens = rest.split_whitespace();
        while let Some(token) = tokens.next() {
            if !token.starts_with('-') {
                // `token` borrows from `rest`: its offset is the distance between the two pointers.
                let at = token.as_ptr() as usize - rest.as_ptr() as usize;
                return &rest[at..];
            }
            if ["-h", "-p", "-n", "-a", "-u", "--user", "--pass", "-s"].contains(&token) {
                tokens.next();
            }
        }
        return "";
    }
    s
}

/// Redis command lines of a block. In a block tagged `redis`, any line starting with an upper-case word counts
/// (module commands); elsewhere only known command words do. Comments and redis-cli output lines are skipped.
pub(super) fn redis_lines(block: &str, tagged: bool) -> Option<String> {
    let mut commands = Vec::new();
    for line in block.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") || trimmed.starts_with("--") {
            continue;
        }
        let command = strip_redis_prompt(trimmed);
        if command.is_empty() || is_redis_output(command) {
            continue;
        }
        let word = first_word(command);
        let upper_word = !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase() || c == '.' || c == '_');
        let accepted = if tagged { is_redis_command(word) || upper_word } else { is_bare_redis_command(command) };
        if accepted {
            commands.push(command.trim_end_matches(';').trim_end().to_owned());
        } else if !tagged {
            // A shell or plain block with other content is not a Redis block.
            return None;
        }
    }
    (!commands.is_empty()).then(|| commands.join("\n"))
}

/// redis-cli reply lines: `(integer) 1`, `"value"`, `1) "a"`, `OK`, `(nil)`.
pub(super) fn is_redis_output(line: &str) -> bool {
    line.starts_with('(')
        || line.starts_with('"')
        || line == "OK"
        || line.split_once(')').is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

pub(super) fn is_bare_redis_command(line: &str) -> bool {
    let line = line.trim().trim_end_matches(';').trim_end();
    let word = first_word(line);
    if !is_redis_command(word) {
        return false;
    }
    let unquoted = unquoted(line);
    if has_prose_words(&unquoted) || has_cjk_punctuation(&unquoted) || line.ends_with(['.', '?', '!', ':']) {
        return false;
    }
    let upper = word.to_ascii_uppercase();
    let args = line.split_whitespace().count() - 1;
    let shouted = word == upper;
    if args == 0 {
        return shouted && REDIS_NO_ARGS.contains(&upper.as_str());
    }
    // Lower-case lines must look like command syntax: a key with a separator, a number or a pattern.
    shouted || line[word.len()..].chars().any(|c| ":*_{}0123456789\"'".contains(c))
}

pub(super) fn bare_redis_at(
    text: &str,
    lines: &[(usize, usize)],
    index: usize,
    start: usize,
) -> Option<(usize, usize, String)> {
    let first = strip_redis_prompt(&text[start..lines[index].1]);
    if !is_bare_redis_command(first) {
        return None;
    }
    let mut commands = vec![first.trim().trim_end_matches(';').trim_end().to_owned()];
    let mut end = lines[index].1;
    for &(line_start, line_end) in &lines[index + 1..] {
        let command = strip_redis_prompt(&text[line_start..line_end]);
        if !is_bare_redis_command(command) {
            break;
        }
        commands.push(command.trim().trim_end_matches(';').trim_end().to_owned());
        end = line_end;
    }
    Some((start, end, commands.join("\n")))
}

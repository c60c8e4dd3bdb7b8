//! Redis target: LLM output is one command per line, each split like `redis-cli` does and checked against an
//! allowlist of read-only commands. `KEYS` (which blocks the server while it walks every key) becomes a bounded
//! `SCAN`, and `COUNT` options of the SCAN family are capped.

use serde::{Deserialize, Serialize};

use crate::sql::MAX_INPUT_BYTES;
use crate::{Rejection, Rule};

/// Most commands accepted in one input.
pub const MAX_REDIS_COMMANDS: usize = 100;

/// `COUNT` given to the `SCAN` that replaces `KEYS pattern`. `SCAN` returns a cursor: the executor continues
/// the iteration only while it still needs rows (at most its row cap).
pub const KEYS_SCAN_COUNT: u64 = 1_000;

/// Largest `COUNT` accepted in SCAN/HSCAN/SSCAN/ZSCAN; a larger one is lowered to this.
pub const MAX_SCAN_COUNT: u64 = 1_000;

/// One validated command: `name` is uppercase, `args` are the unquoted arguments, ready to send as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisCommand {
    pub name: String,
    pub args: Vec<String>,
}

impl RedisCommand {
    /// The command as one `redis-cli` line: arguments with whitespace, quotes, backslashes or control characters
    /// (and empty ones) are double-quoted with escapes, so that splitting the line gives back the same words.
    pub fn to_line(&self) -> String {
        let mut line = self.name.clone();
        for arg in &self.args {
            line.push(' ');
            let plain = !arg.is_empty()
                && arg.chars().all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\'' | '\\'));
            if plain {
                line.push_str(arg);
                continue;
            }
            line.push('"');
            for c in arg.chars() {
                match c {
                    '"' => line.push_str("\\\""),
                    '\\' => line.push_str("\\\\"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    '\t' => line.push_str("\\t"),
                    c if c.is_control() => {
                        for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                            line.push_str(&format!("\\x{byte:02x}"));
                        }
                    }
                    c => line.push(c),
                }
            }
            line.push('"');
        }
        line
    }
}

/// Validates LLM-written Redis commands, one per line (blank lines are skipped). Any rejected line rejects the
/// whole input, with the line number in the message.
pub fn validate_redis(commands: &str) -> Result<Vec<RedisCommand>, Rejection> {
    if commands.len() > MAX_INPUT_BYTES {
        return Err(Rejection::new(
            Rule::TooLong,
            format!("input is {} bytes; the limit is {MAX_INPUT_BYTES}", commands.len()),
        ));
    }
    let mut validated = Vec::new();
    for (index, line) in commands.lines().enumerate() {
        let at_line = |r: Rejection| Rejection::new(r.rule, format!("line {}: {}", index + 1, r.message));
        let words = split_line(line).map_err(|message| at_line(Rejection::new(Rule::ParseError, message)))?;
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        if validated.len() == MAX_REDIS_COMMANDS {
            return Err(Rejection::new(Rule::TooLong, format!("more than {MAX_REDIS_COMMANDS} commands")));
        }
        validated.push(check_command(name, args.to_vec()).map_err(at_line)?);
    }
    if validated.is_empty() {
        return Err(Rejection::new(Rule::Empty, "no command found"));
    }
    Ok(validated)
}

/// Splits a line into words the way `redis-cli` does: whitespace-separated, with `"..."` (escapes `\n \r \t \b
/// \a \\ \" \xHH`) and `'...'` (escape `\'`) quoting. A closing quote must end the word.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = Vec::new();
        match first {
            '"' | '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {first} quote")),
                        Some(c) if c == first => break,
                        Some('\\') if first == '\'' => match chars.next() {
                            Some('\'') => word.push(b'\''),
                            Some(other) => {
                                word.push(b'\\');
                                push_char(other, &mut word);
                            }
                            None => return Err(format!("unterminated {first} quote")),
                        },
                        Some('\\') => match chars.next() {
                            Some('n') => word.push(b'\n'),
                            Some('r') => word.push(b'\r'),
                            Some('t') => word.push(b'\t'),
                            Some('b') => word.push(0x08),
                            Some('a') => word.push(0x07),
                            Some('x') => {
                                let high = chars.next().and_then(|c| c.to_digit(16));
                                let low = chars.next().and_then(|c| c.to_digit(16));
                                let (Some(high), Some(low)) = (high, low) else {
                                    return Err("\\x must be followed by two hex digits".to_owned());
                                };
                                word.push((high * 16 + low) as u8);
                            }
                            Some(other) => push_char(other, &mut word),
                            None => return Err(format!("unterminated {first} quote")),
                        },
                        Some(c) => push_char(c, &mut word),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err("a closing quote must be followed by a space".to_owned());
                }
            }
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    push_char(c, &mut word);
                }
            }
        }
        words.push(String::from_utf8(word).map_err(|_| "argument is not valid UTF-8".to_owned())?);
    }
}

fn push_char(c: char, word: &mut Vec<u8>) {
    word.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

/// How a command is treated.
enum Kind {
    /// Read-only, with the accepted number of arguments (max `None` = unbounded).
    Read(usize, Option<usize>),
    /// `SCAN cursor [...]` or `xSCAN key cursor [...]`; the value is the index of the cursor argument.
    Scan(usize),
    Keys,
    Xread,
    Object,
    Xinfo,
    Write,
    Scripting,
    Admin,
    Blocking,
    Unknown,
}

fn kind(name: &str) -> Kind {
    use Kind::*;
    match name {
        "GET" | "STRLEN" | "TYPE" | "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" | "HGETALL" | "HKEYS" | "HVALS"
        | "HLEN" | "LLEN" | "SMEMBERS" | "SCARD" | "ZCARD" | "XLEN" => Read(1, Some(1)),
        "MGET" | "EXISTS" | "SINTER" | "SUNION" | "SDIFF" | "PFCOUNT" | "GEOPOS" | "GEOHASH" | "BITFIELD_RO" => {
            Read(1, None)
        }
        "HGET" | "HEXISTS" | "HSTRLEN" | "LINDEX" | "SISMEMBER" | "ZSCORE" | "GETBIT" => Read(2, Some(2)),
        "HMGET" | "SMISMEMBER" | "SINTERCARD" | "ZMSCORE" | "ZINTER" | "ZUNION" | "ZDIFF" | "ZINTERCARD" => {
            Read(2, None)
        }
        "GETRANGE" | "SUBSTR" | "LRANGE" | "ZCOUNT" | "ZLEXCOUNT" => Read(3, Some(3)),
        "DBSIZE" | "RANDOMKEY" => Read(0, Some(0)),
        "HRANDFIELD" | "ZRANDMEMBER" => Read(1, Some(3)),
        "SRANDMEMBER" => Read(1, Some(2)),
        "LPOS" => Read(2, Some(8)),
        "ZRANK" | "ZREVRANK" => Read(2, Some(3)),
        "ZRANGE" => Read(3, Some(9)),
        "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => Read(3, Some(8)),
        "ZRANGEBYLEX" | "ZREVRANGEBYLEX" => Read(3, Some(6)),
        "ZREVRANGE" => Read(3, Some(4)),
        "XRANGE" | "XREVRANGE" => Read(3, Some(5)),
        "GEODIST" => Read(3, Some(4)),
        "GEOSEARCH" => Read(4, None),
        "GEORADIUS_RO" => Read(5, None),
        "GEORADIUSBYMEMBER_RO" => Read(4, None),
        "BITCOUNT" => Read(1, Some(4)),
        "BITPOS" => Read(2, Some(5)),
        "LCS" => Read(2, Some(7)),
        "SCAN" => Scan(0),
        "HSCAN" | "SSCAN" | "ZSCAN" => Scan(1),
        "KEYS" => Keys,
        "XREAD" => Xread,
        "OBJECT" => Object,
        "XINFO" => Xinfo,
        "SET" | "SETNX" | "SETEX" | "PSETEX" | "GETSET" | "GETDEL" | "GETEX" | "APPEND" | "INCR" | "INCRBY"
        | "INCRBYFLOAT" | "DECR" | "DECRBY" | "MSET" | "MSETNX" | "DEL" | "UNLINK" | "EXPIRE" | "PEXPIRE"
        | "EXPIREAT" | "PEXPIREAT" | "PERSIST" | "RENAME" | "RENAMENX" | "MOVE" | "COPY" | "RESTORE" | "TOUCH"
        | "HSET" | "HSETNX" | "HMSET" | "HDEL" | "HINCRBY" | "HINCRBYFLOAT" | "HEXPIRE" | "HPEXPIRE" | "HEXPIREAT"
        | "HPEXPIREAT" | "HPERSIST" | "HGETDEL" | "HGETEX" | "HSETEX" | "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX"
        | "LPOP" | "RPOP" | "LSET" | "LINSERT" | "LREM" | "LTRIM" | "LMOVE" | "RPOPLPUSH" | "LMPOP" | "SADD"
        | "SREM" | "SPOP" | "SMOVE" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" | "ZADD" | "ZINCRBY" | "ZREM"
        | "ZREMRANGEBYSCORE" | "ZREMRANGEBYRANK" | "ZREMRANGEBYLEX" | "ZPOPMIN" | "ZPOPMAX" | "ZMPOP"
        | "ZRANGESTORE" | "ZINTERSTORE" | "ZUNIONSTORE" | "ZDIFFSTORE" | "XADD" | "XDEL" | "XTRIM" | "XGROUP"
        | "XACK" | "XCLAIM" | "XAUTOCLAIM" | "XSETID" | "XREADGROUP" | "PFADD" | "PFMERGE" | "GEOADD" | "GEORADIUS"
        | "GEORADIUSBYMEMBER" | "GEOSEARCHSTORE" | "SETBIT" | "SETRANGE" | "BITFIELD" | "BITOP" | "SORT" => Write,
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "SCRIPT" | "FUNCTION" | "FCALL" | "FCALL_RO" => Scripting,
        "CONFIG" | "FLUSHALL" | "FLUSHDB" | "SHUTDOWN" | "DEBUG" | "MODULE" | "ACL" | "CLIENT" | "SAVE" | "BGSAVE"
        | "BGREWRITEAOF" | "LASTSAVE" | "REPLICAOF" | "SLAVEOF" | "MIGRATE" | "SYNC" | "PSYNC" | "CLUSTER"
        | "FAILOVER" | "SWAPDB" | "SELECT" | "AUTH" | "HELLO" | "RESET" | "QUIT" | "INFO" | "SLOWLOG" | "LATENCY"
        | "MEMORY" | "COMMAND" | "LOLWUT" | "PUBLISH" | "SPUBLISH" | "PUBSUB" | "MULTI" | "EXEC" | "DISCARD"
        | "WATCH" | "UNWATCH" | "READONLY" | "READWRITE" | "ASKING" | "ROLE" => Admin,
        "BLPOP" | "BRPOP" | "BRPOPLPUSH" | "BLMOVE" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX" | "BZMPOP" | "WAIT"
        | "WAITAOF" | "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE"
        | "MONITOR" => Blocking,
        _ => Unknown,
    }
}

fn wrong_arguments(message: String) -> Rejection {
    Rejection::new(Rule::WrongArguments, message)
}

fn check_command(name: &str, mut args: Vec<String>) -> Result<RedisCommand, Rejection> {
    let name = name.to_ascii_uppercase();
    let refuse = |rule: Rule, what: &str| Err(Rejection::new(rule, format!("{name} is {what}")));
    match kind(&name) {
        Kind::Read(min, max) => {
            if args.len() < min || max.is_some_and(|max| args.len() > max) {
                let expected = match max {
                    Some(max) if max == min => format!("{min}"),
                    Some(max) => format!("{min} to {max}"),
                    None => format!("at least {min}"),
                };
                return Err(wrong_arguments(format!("{name} takes {expected} arguments, got {}", args.len())));
            }
        }
        Kind::Scan(cursor) => check_scan(&name, cursor, &mut args)?,
        Kind::Keys => {
            let [pattern] = <[String; 1]>::try_from(args)
                .map_err(|args| wrong_arguments(format!("KEYS takes 1 argument, got {}", args.len())))?;
            return Ok(RedisCommand {
                name: "SCAN".to_owned(),
                args: vec![
                    "0".to_owned(),
                    "MATCH".to_owned(),
                    pattern,
                    "COUNT".to_owned(),
                    KEYS_SCAN_COUNT.to_string(),
                ],
            });
        }
        Kind::Xread => check_xread(&args)?,
        Kind::Object => match args.first().map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT") if args.len() == 2 => {}
            _ => return Err(wrong_arguments("OBJECT takes ENCODING|FREQ|IDLETIME|REFCOUNT and a key".to_owned())),
        },
        Kind::Xinfo => match args.first().map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("STREAM") if (2..=4).contains(&args.len()) => {}
            Some("GROUPS") if args.len() == 2 => {}
            Some("CONSUMERS") if args.len() == 3 => {}
            _ => return Err(wrong_arguments("XINFO takes STREAM|GROUPS|CONSUMERS and a key".to_owned())),
        },
        Kind::Write => return refuse(Rule::WriteCommand, "a write command"),
        Kind::Scripting => return refuse(Rule::ScriptingCommand, "a scripting command"),
        Kind::Admin => return refuse(Rule::AdminCommand, "an administrative, connection or transaction command"),
        Kind::Blocking => return refuse(Rule::BlockingCommand, "a blocking command"),
        Kind::Unknown => return refuse(Rule::CommandNotAllowed, "not on the read-only command allowlist"),
    }
    Ok(RedisCommand { name, args })
}

/// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` and `HSCAN|SSCAN|ZSCAN key cursor [MATCH p] [COUNT n]
/// [NOVALUES]`: checks the option syntax and caps `COUNT` at [`MAX_SCAN_COUNT`].
fn check_scan(name: &str, cursor: usize, args: &mut [String]) -> Result<(), Rejection> {
    if args.len() <= cursor || args[cursor].parse::<u64>().is_err() {
        return Err(wrong_arguments(format!("{name} needs a numeric cursor")));
    }
    let mut i = cursor + 1;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        match option.as_str() {
            "NOVALUES" if name == "HSCAN" => i += 1,
            "MATCH" | "COUNT" | "TYPE" if i + 1 < args.len() => {
                if option == "TYPE" && name != "SCAN" {
                    return Err(wrong_arguments(format!("{name} has no TYPE option")));
                }
                if option == "COUNT" {
                    let count: u64 = args[i + 1]
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| wrong_arguments("COUNT must be a positive integer".to_owned()))?;
                    args[i + 1] = count.min(MAX_SCAN_COUNT).to_string();
                }
                i += 2;
            }
            _ => return Err(wrong_arguments(format!("unexpected {name} argument `{}`", args[i]))),
        }
    }
    Ok(())
}

/// `XREAD [COUNT n] STREAMS key... id...`; `BLOCK` makes it a blocking command.
fn check_xread(args: &[String]) -> Result<(), Rejection> {
    let mut i = 0;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_str() {
            "BLOCK" => return Err(Rejection::new(Rule::BlockingCommand, "XREAD BLOCK is a blocking command")),
            "COUNT" if i + 1 < args.len() => i += 2,
            "STREAMS" => {
                let rest = args.len() - i - 1;
                if rest == 0 || !rest.is_multiple_of(2) {
                    return Err(wrong_arguments("XREAD STREAMS needs as many ids as keys".to_owned()));
                }
                return Ok(());
            }
            _ => return Err(wrong_arguments(format!("unexpected XREAD argument `{}`", args[i]))),
        }
    }
    Err(wrong_arguments("XREAD needs STREAMS".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_splits_back_into_its_words() {
        let words = ["plain", "", "two words", "quo\"te", "it's", "back\\slash", "tab\tnew\nline", "\u{85}nel", "用户"];
        let command = RedisCommand { name: "HMGET".into(), args: words.iter().map(|w| w.to_string()).collect() };
        let line = command.to_line();
        assert!(line.starts_with("HMGET plain \"\" \"two words\""), "{line}");
        assert_eq!(split_line(&line).unwrap(), [&["HMGET"][..], &words[..]].concat());
    }

    #[test]
    fn splits_like_redis_cli() {
        assert_eq!(split_line(r#"HGET "user:1 x" 'na\'me'"#).unwrap(), ["HGET", "user:1 x", "na'me"]);
        assert_eq!(split_line(r#"GET "a\x41\n""#).unwrap(), ["GET", "aA\n"]);
        assert_eq!(split_line("   ").unwrap(), Vec::<String>::new());
        assert!(split_line(r#"GET "open"#).is_err());
        assert!(split_line(r#"GET "a"b"#).is_err());
        assert!(split_line(r#"GET "\xff""#).is_err());
    }

    #[test]
    fn keys_becomes_a_bounded_scan() {
        let commands = validate_redis("keys user:*").unwrap();
        assert_eq!(commands[0].name, "SCAN");
        assert_eq!(commands[0].args, ["0", "MATCH", "user:*", "COUNT", "1000"]);
    }

    #[test]
    fn scan_count_is_capped() {
        let commands = validate_redis("SCAN 0 MATCH a* COUNT 99999999\nHSCAN h 0 COUNT 5").unwrap();
        assert_eq!(commands[0].args, ["0", "MATCH", "a*", "COUNT", "1000"]);
        assert_eq!(commands[1].args, ["h", "0", "COUNT", "5"]);
        assert_eq!(validate_redis("SCAN 0 COUNT 0").unwrap_err().rule, Rule::WrongArguments);
        assert_eq!(validate_redis("SSCAN s 0 TYPE hash").unwrap_err().rule, Rule::WrongArguments);
    }

    #[test]
    fn each_line_is_validated() {
        let err = validate_redis("GET a\n\nDEL a").unwrap_err();
        assert_eq!(err.rule, Rule::WriteCommand);
        assert!(err.message.starts_with("line 3:"), "{}", err.message);
        assert_eq!(validate_redis("GET a\r\nHGET h f\r\n").unwrap().len(), 2);
    }
}

//! PostgreSQL values (binary wire format) to JSON, by type OID.
//!
//! The wire format is read directly rather than through sqlx's per-type decoders, so arrays of anything,
//! domains, enums and NUMERIC of any precision all work; a type not known here becomes its text when its bytes
//! plainly are text (extension types such as `citext`), otherwise null.

use crate::output;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use sqlx::postgres::{PgRow, PgTypeInfo, PgTypeKind, PgValueFormat};
use sqlx::{Row, ValueRef};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Column `index` of `row` as JSON.
pub(super) fn value(row: &PgRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let ty = raw.type_info().into_owned();
    match raw.format() {
        PgValueFormat::Text => raw.as_str().map(|s| Value::String(s.to_owned())).unwrap_or(Value::Null),
        PgValueFormat::Binary => raw.as_bytes().map(|b| typed(&ty, b)).unwrap_or(Value::Null),
    }
}

fn typed(ty: &PgTypeInfo, b: &[u8]) -> Value {
    match ty.kind() {
        PgTypeKind::Domain(base) => typed(base, b),
        PgTypeKind::Enum(_) => text(b),
        PgTypeKind::Array(element) => array(element, b).unwrap_or(Value::Null),
        _ => match ty.oid() {
            Some(oid) => by_oid(oid.0, b),
            None => output::unknown(b),
        },
    }
}

/// Binary array: ndim, flags, element OID, (length, lower bound) per dimension, then each element as a
/// length-prefixed value (-1 for NULL), row-major.
fn array(element: &PgTypeInfo, b: &[u8]) -> Option<Value> {
    let mut r = Reader(b);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let element_oid = r.u32()?;
    if ndim == 0 {
        return Some(Value::Array(Vec::new()));
    }
    if !(1..=6).contains(&ndim) {
        return None;
    }
    let mut dims = Vec::with_capacity(6);
    for _ in 0..ndim {
        dims.push(usize::try_from(r.i32()?).ok()?);
        let _lower_bound = r.i32()?;
    }
    let total = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d))?;
    // Every element takes at least its 4-byte length: a larger count is a corrupt header.
    if total > r.0.len() / 4 {
        return None;
    }
    // Builtin element types carry their OID in the type info; declared-by-name ones are read by the payload OID.
    let by_type = element.oid().is_some() || !matches!(element.kind(), PgTypeKind::Simple | PgTypeKind::Pseudo);
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        if len < 0 {
            items.push(Value::Null);
            continue;
        }
        let bytes = r.take(usize::try_from(len).ok()?)?;
        items.push(if by_type { typed(element, bytes) } else { by_oid(element_oid, bytes) });
    }
    Some(nest(&mut items.into_iter(), &dims))
}

fn nest(items: &mut impl Iterator<Item = Value>, dims: &[usize]) -> Value {
    match dims {
        [] => Value::Null,
        [n] => Value::Array(items.by_ref().take(*n).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(items, rest)).collect()),
    }
}

fn by_oid(oid: u32, b: &[u8]) -> Value {
    let v = match oid {
        16 => b.first().map(|v| Value::Bool(*v != 0)),
        17 => Some(output::bytes(b)),
        // "char", name, text, xml, unknown, bpchar, varchar
        18 | 19 | 25 | 142 | 705 | 1042 | 1043 => Some(text(b)),
        20 => exact(b).map(|a| Value::from(i64::from_be_bytes(a))),
        21 => exact(b).map(|a| Value::from(i16::from_be_bytes(a))),
        23 => exact(b).map(|a| Value::from(i32::from_be_bytes(a))),
        // oid, regproc, xid, cid and the reg* aliases are unsigned 32-bit
        24 | 26 | 28 | 29 | 2202..=2206 | 3734 | 3769 | 4089 | 4096 => {
            exact(b).map(|a| Value::from(u32::from_be_bytes(a)))
        }
        5069 => exact(b).map(|a| Value::from(u64::from_be_bytes(a))),
        114 => std::str::from_utf8(b).ok().map(output::json_text),
        3802 => b
            .split_first()
            .filter(|(v, _)| **v == 1)
            .and_then(|(_, t)| std::str::from_utf8(t).ok())
            .map(output::json_text),
        4072 => b.split_first().map(|(_, t)| text(t)),
        700 => exact(b).map(|a| output::float32(f32::from_be_bytes(a))),
        701 => exact(b).map(|a| output::float(f64::from_be_bytes(a))),
        790 => exact(b).map(|a| output::decimal(&cents(i64::from_be_bytes(a)))),
        1700 => numeric(b).map(|s| output::decimal(&s)),
        2950 => uuid::Uuid::from_slice(b).ok().map(|u| Value::String(u.to_string())),
        1082 => exact(b).map(|a| Value::String(date(i32::from_be_bytes(a)))),
        1083 => exact(b).and_then(|a| time(i64::from_be_bytes(a))).map(Value::String),
        1266 => timetz(b).map(Value::String),
        1114 => exact(b).and_then(|a| timestamp(i64::from_be_bytes(a), false)).map(Value::String),
        1184 => exact(b).and_then(|a| timestamp(i64::from_be_bytes(a), true)).map(Value::String),
        1186 => interval(b).map(Value::String),
        650 | 869 => inet(b).map(Value::String),
        774 | 829 => Some(Value::String(b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":"))),
        1560 | 1562 => bits(b).map(Value::String),
        600 => point(b).map(Value::String),
        _ => Some(output::unknown(b)),
    };
    v.unwrap_or(Value::Null)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn exact<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

/// NUMERIC: digit count, weight (of the first base-10000 digit), sign, display scale, then base-10000 digits.
fn numeric(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let ndigits = usize::from(r.u16()?);
    let weight = i64::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => return None,
    }
    let digits = (0..ndigits).map(|_| r.u16().filter(|d| *d < 10_000)).collect::<Option<Vec<u16>>>()?;
    let digit = |i: i64| usize::try_from(i).ok().and_then(|i| digits.get(i).copied()).unwrap_or(0);
    let mut s = String::with_capacity(ndigits * 4 + dscale + 2);
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let d = digit(i);
            // Writing to a String cannot fail.
            let _ = if i == 0 { write!(s, "{d}") } else { write!(s, "{d:04}") };
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

/// MONEY is an integer count of the currency's smallest unit; two fractional digits in nearly every locale.
fn cents(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN)
}

/// DATE: days since 2000-01-01; the extremes mean ±infinity.
fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => epoch()
            .date()
            .checked_add_signed(TimeDelta::days(i64::from(d)))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| d.to_string()),
    }
}

/// TIME: microseconds since midnight (24:00:00 is valid in PostgreSQL).
fn time(micros: i64) -> Option<String> {
    if micros == 86_400_000_000 {
        return Some("24:00:00".into());
    }
    let secs = u32::try_from(micros.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).map(|t| t.format("%H:%M:%S%.f").to_string())
}

/// TIMETZ: TIME then the zone as seconds *west* of UTC.
fn timetz(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let t = time(r.i64()?)?;
    let east = -r.i32()?;
    let sign = if east < 0 { '-' } else { '+' };
    let abs = east.unsigned_abs();
    let mut out = format!("{t}{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60);
    if abs % 60 != 0 {
        let _ = write!(out, ":{:02}", abs % 60);
    }
    Some(out)
}

/// TIMESTAMP[TZ]: microseconds since 2000-01-01 00:00 (UTC for TIMESTAMPTZ); the extremes mean ±infinity.
fn timestamp(micros: i64, utc: bool) -> Option<String> {
    match micros {
        i64::MAX => return Some("infinity".into()),
        i64::MIN => return Some("-infinity".into()),
        _ => {}
    }
    let naive = epoch().checked_add_signed(TimeDelta::microseconds(micros))?;
    Some(if utc {
        DateTime::<Utc>::from_naive_utc_and_offset(naive, Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true)
    } else {
        naive.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
    })
}

/// INTERVAL (microseconds, days, months) as an ISO 8601 duration: `P1Y2M3DT4H5M6.5S`.
fn interval(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let micros = r.i64()?;
    let days = r.i32()?;
    let months = r.i32()?;
    Some(iso_duration(months, days, micros))
}

fn iso_duration(months: i32, days: i32, micros: i64) -> String {
    if months == 0 && days == 0 && micros == 0 {
        return "PT0S".into();
    }
    let mut s = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if n != 0 {
            let _ = write!(s, "{n}{unit}");
        }
    }
    if micros != 0 {
        s.push('T');
        let (hours, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
        let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
        if hours != 0 {
            let _ = write!(s, "{hours}H");
        }
        if minutes != 0 {
            let _ = write!(s, "{minutes}M");
        }
        if rest != 0 {
            let abs = rest.unsigned_abs();
            let sign = if rest < 0 { "-" } else { "" };
            let _ = write!(s, "{sign}{}", abs / 1_000_000);
            let frac = abs % 1_000_000;
            if frac != 0 {
                let digits = format!("{frac:06}");
                let _ = write!(s, ".{}", digits.trim_end_matches('0'));
            }
            s.push('S');
        }
    }
    s
}

/// INET/CIDR: family (2 = IPv4, 3 = IPv6), prefix bits, is-cidr flag, address length, address.
fn inet(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let len = usize::from(r.u8()?);
    let addr = r.take(len)?;
    let (text, full) = match family {
        2 => (Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?).to_string(), 32),
        3 => (Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?).to_string(), 128),
        _ => return None,
    };
    Some(if is_cidr || bits != full { format!("{text}/{bits}") } else { text })
}

/// BIT/VARBIT: bit length, then the bits packed high-first.
fn bits(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let len = usize::try_from(r.i32()?).ok()?;
    let data = r.take(len.div_ceil(8))?;
    Some((0..len).map(|i| if data[i / 8] & (0x80 >> (i % 8)) != 0 { '1' } else { '0' }).collect())
}

fn point(b: &[u8]) -> Option<String> {
    let mut r = Reader(b);
    let x = f64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let y = f64::from_be_bytes(r.take(8)?.try_into().ok()?);
    Some(format!("({x},{y})"))
}

/// Big-endian reader over a value's bytes; every read checks the length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn fixed<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.fixed::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.fixed().map(u16::from_be_bytes)
    }

    fn i16(&mut self) -> Option<i16> {
        self.fixed().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.fixed().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.fixed().map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.fixed().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((digits.len() as u16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(dscale.to_be_bytes());
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_text_is_exact() {
        assert_eq!(numeric(&numeric_bytes(0, 0, 2, &[12, 3000])).unwrap(), "12.30");
        assert_eq!(numeric(&numeric_bytes(-1, 0x4000, 4, &[1])).unwrap(), "-0.0001");
        assert_eq!(numeric(&numeric_bytes(-2, 0, 8, &[1])).unwrap(), "0.00000001");
        assert_eq!(numeric(&numeric_bytes(2, 0, 0, &[1, 2345, 6789])).unwrap(), "123456789");
        assert_eq!(numeric(&numeric_bytes(1, 0, 0, &[1])).unwrap(), "10000");
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric(&numeric_bytes(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert!(numeric(&[0, 1]).is_none());
    }

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(iso_duration(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000), "P1Y2M3DT4H5M6.5S");
        assert_eq!(iso_duration(0, 0, -500_000), "PT-0.5S");
        assert_eq!(iso_duration(0, 0, 0), "PT0S");
    }

    #[test]
    fn times_and_stamps() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(time(3_723_000_000).unwrap(), "01:02:03");
        assert_eq!(timestamp(1_500_000, true).unwrap(), "2000-01-01T00:00:01.500Z");
        assert_eq!(timestamp(0, false).unwrap(), "2000-01-01T00:00:00");
        assert_eq!(cents(-1234), "-12.34");
    }
}

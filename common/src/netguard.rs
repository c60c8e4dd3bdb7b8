//! Outbound address policy: the guard against server-side request forgery.
//!
//! A user names hosts the service then connects to (a connection's database host, a model's `base_url`). Without
//! a check, a user could make the service reach its own loopback services, the cloud metadata endpoint
//! (169.254.169.254) or the private network. Every address a name resolves to is classified and checked, and the
//! caller connects to the checked address itself, so a DNS answer that changes between check and connect (DNS
//! rebinding) gains nothing.
//!
//! Numeric spellings are normalised first: `127.1`, `2130706433`, `0x7f000001` and `017700000001` all mean
//! 127.0.0.1 to the C resolver, and `::ffff:127.0.0.1` (and the other IPv6 forms that embed an IPv4 address) is
//! judged by the IPv4 address inside.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which kinds of destination the operator allows. Public addresses are always allowed; link-local (cloud
/// metadata), unspecified, multicast, broadcast, documentation and reserved addresses never are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NetworkPolicy {
    /// 127.0.0.0/8 and ::1 (a database or an LLM server on the same machine).
    pub allow_loopback: bool,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT) and fc00::/7 (a database on the private network).
    pub allow_private: bool,
}

/// What kind of address an IP is, for [`NetworkPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    /// Link-local, unspecified, multicast, broadcast, documentation, benchmarking or reserved: never reachable.
    Internal,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::Internal => "internal",
        })
    }
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("`{host}` is not a valid host name")]
    InvalidHost { host: String },
    #[error("`{host}` does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    #[error("`{host}` resolves to {ip}, a {class} address; the service does not connect there{hint}")]
    Address { host: String, ip: IpAddr, class: AddressClass, hint: &'static str },
}

impl NetworkPolicy {
    /// A policy that allows loopback and private addresses (tests, and single-machine setups that opt in).
    pub fn permissive() -> Self {
        NetworkPolicy { allow_loopback: true, allow_private: true }
    }

    /// Checks one address.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        let class = classify(ip);
        let (allowed, hint) = match class {
            AddressClass::Public => (true, ""),
            AddressClass::Loopback => (self.allow_loopback, " (an operator can allow it with network.allow_loopback)"),
            AddressClass::Private => (self.allow_private, " (an operator can allow it with network.allow_private)"),
            AddressClass::Internal => (false, ""),
        };
        if allowed { Ok(()) } else { Err(Blocked::Address { host: host.to_string(), ip, class, hint }) }
    }

    /// Resolves `host` (a name, an IP address in any spelling, or a bracketed IPv6 address) and checks every
    /// address it resolves to: one refused address refuses the host. Returns the checked addresses, to connect to.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Blocked> {
        let name = host.trim().trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() || name.contains(['/', ' ', '@', '?', '#']) {
            return Err(Blocked::InvalidHost { host: host.to_string() });
        }
        let addrs: Vec<SocketAddr> = match parse_ip(name) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| Blocked::Unresolved { host: host.to_string(), reason: e.to_string() })?
                .collect(),
        };
        self.check_resolved(host, addrs)
    }

    /// Checks what `host` resolved to: every address must be allowed.
    pub fn check_resolved(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Blocked> {
        if addrs.is_empty() {
            return Err(Blocked::Unresolved { host: host.to_string(), reason: "no address".into() });
        }
        for addr in &addrs {
            self.check_ip(host, addr.ip())?;
        }
        Ok(addrs)
    }
}

/// Parses an IP address in any spelling the C resolver accepts: dotted IPv4 with one to four parts in decimal,
/// octal (`0` prefix) or hexadecimal (`0x` prefix), and IPv6 (optionally bracketed).
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    legacy_ipv4(host).map(IpAddr::V4)
}

/// `inet_aton`'s forms: `a`, `a.b`, `a.b.c`, `a.b.c.d`, where the last part fills the remaining bytes.
fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| parse_number(p)).collect::<Option<_>>()?;
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if last_bits < 64 && *last >= 1u64 << last_bits {
        return None;
    }
    let value = leading.iter().enumerate().fold(*last, |acc, (i, &n)| acc | n << (24 - 8 * i as u32));
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn parse_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if part.len() > 1 && part.starts_with('0') {
        return u64::from_str_radix(&part[1..], 8).ok();
    }
    part.parse().ok()
}

/// Classifies an address; IPv6 addresses that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are
/// judged by the embedded address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// IPv4 ranges that are never a legitimate destination: (network, prefix length, what it is).
const INTERNAL_V4: [(Ipv4Addr, u32, &str); 9] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network, including 0.0.0.0"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local: cloud metadata lives here"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "TEST-NET-1"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "TEST-NET-2"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "TEST-NET-3"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved, including broadcast"),
];

/// IPv6 ranges that are never a legitimate destination: (network, prefix length, what it is).
const INTERNAL_V6: [(Ipv6Addr, u32, &str); 6] = [
    (Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo: tunnels to arbitrary IPv4 hosts"),
    (Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (deprecated)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn in_v4(ip: Ipv4Addr, (network, prefix, _): &(Ipv4Addr, u32, &str)) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(*network)
}

fn in_v6(ip: Ipv6Addr, (network, prefix, _): &(Ipv6Addr, u32, &str)) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(*network)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let carrier_nat = in_v4(ip, &(Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT"));
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() || carrier_nat {
        AddressClass::Private
    } else if INTERNAL_V4.iter().any(|range| in_v4(ip, range)) {
        AddressClass::Internal
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let unique_local = in_v6(ip, &(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local"));
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if unique_local {
        AddressClass::Private
    } else if ip.is_unspecified() || INTERNAL_V6.iter().any(|range| in_v6(ip, range)) {
        AddressClass::Internal
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96)
/// or 6to4 (2002::/16) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> NetworkPolicy {
        NetworkPolicy::default()
    }

    #[test]
    fn loopback_spellings_are_all_loopback() {
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "017700000001",
            "0x7f.1",
            "[::ffff:127.0.0.1]",
            "::1",
            "[::1]",
            "::ffff:7f00:1",
        ] {
            let ip = parse_ip(host).unwrap_or_else(|| panic!("{host} parses"));
            assert_eq!(classify(ip), AddressClass::Loopback, "{host} -> {ip}");
        }
    }

    #[test]
    fn metadata_and_other_internal_ranges_are_never_allowed() {
        let permissive = NetworkPolicy::permissive();
        for host in [
            "169.254.169.254",
            "0.0.0.0",
            "::",
            "fe80::1",
            "[::ffff:169.254.169.254]",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.10",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            let ip = parse_ip(host).unwrap_or_else(|| panic!("{host} parses"));
            assert!(permissive.check_ip(host, ip).is_err(), "{host} must be refused even when private is allowed");
        }
    }

    #[test]
    fn private_ranges_need_the_operator_s_consent() {
        for host in ["10.0.0.5", "172.16.3.4", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd12:3456::1"] {
            let ip = parse_ip(host).unwrap();
            assert_eq!(classify(ip), AddressClass::Private, "{host}");
            assert!(strict().check_ip(host, ip).is_err());
            assert!(NetworkPolicy { allow_private: true, ..strict() }.check_ip(host, ip).is_ok());
        }
    }

    #[test]
    fn public_addresses_pass() {
        for host in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "1.1"] {
            let ip = parse_ip(host).unwrap();
            assert_eq!(classify(ip), AddressClass::Public, "{host} -> {ip}");
            assert!(strict().check_ip(host, ip).is_ok());
        }
    }

    #[test]
    fn malformed_numbers_are_not_addresses() {
        for host in ["256.1.1.1", "1.2.3.4.5", "0x", "1..2", "example.com", "09.1.1.1", "4294967296"] {
            assert!(parse_ip(host).is_none(), "{host} parsed as {:?}", parse_ip(host));
        }
    }

    #[test]
    fn a_name_resolving_to_any_private_address_is_refused() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let answer = vec![addr("93.184.215.14:5432"), addr("10.0.0.5:5432")];
        let error = strict().check_resolved("db.rebind.example", answer.clone()).unwrap_err();
        assert!(matches!(error, Blocked::Address { class: AddressClass::Private, .. }), "{error}");
        assert!(NetworkPolicy { allow_private: true, ..strict() }.check_resolved("db.rebind.example", answer).is_ok());
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_is_checked() {
        let error = strict().resolve("localhost", 5432).await.unwrap_err();
        assert!(matches!(error, Blocked::Address { class: AddressClass::Loopback, .. }), "{error}");
        assert!(error.to_string().contains("network.allow_loopback"), "{error}");
        let allowed = NetworkPolicy { allow_loopback: true, ..strict() }.resolve("localhost", 5432).await.unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback() && a.port() == 5432), "{allowed:?}");
        assert!(strict().resolve("2130706433", 80).await.is_err());
        assert!(matches!(strict().resolve("a b", 80).await, Err(Blocked::InvalidHost { .. })));
        assert!(matches!(strict().resolve("no-such-host.invalid", 80).await, Err(Blocked::Unresolved { .. })));
    }
}

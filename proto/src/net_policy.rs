//! Which network addresses a function's outbound traffic (its `http(s)`
//! resources, an async call's callback) may reach: public addresses, and
//! what the operator allows by CIDR. Pure and shared: the worker vets every
//! address a name resolves to, and connects to exactly those; the gateway
//! vets callback URLs that are IP literals before accepting a call.
//!
//! Not public (denied unless allowed): unspecified, loopback, RFC 1918,
//! carrier-grade NAT, link-local (so `169.254.169.254`, the cloud metadata
//! service), the IETF and benchmarking ranges, documentation ranges,
//! multicast, broadcast and reserved space; in IPv6 the same plus
//! unique-local and link-local, and the IPv4 address inside IPv4-mapped,
//! IPv4-compatible, NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) forms is
//! judged as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// The operator's allowances on top of public addresses, and exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
    denied: Vec<IpNet>,
}

/// An entry of a CIDR list that is neither a CIDR nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a CIDR or an address: {source}")]
pub struct BadCidr {
    /// The entry as written.
    pub entry: String,
    /// Why it does not parse as a CIDR.
    pub source: ipnet::AddrParseError,
}

impl FromStr for AddressPolicy {
    type Err = BadCidr;

    /// Comma-separated CIDRs (`10.20.0.0/16, fd00::/8`); empty for none. A
    /// `!` before one denies it, whether public or inside an allowed range
    /// (`10.20.0.0/16, !10.20.5.0/24`: the platform's own services).
    fn from_str(list: &str) -> Result<Self, BadCidr> {
        let mut policy = AddressPolicy::default();
        for entry in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (into, cidr) = match entry.strip_prefix('!') {
                Some(rest) => (&mut policy.denied, rest.trim()),
                None => (&mut policy.allowed, entry),
            };
            let net = match cidr.parse::<IpNet>() {
                Ok(net) => net,
                Err(source) => {
                    cidr.parse::<IpAddr>().map(IpNet::from).map_err(|_| BadCidr { entry: entry.to_owned(), source })?
                }
            };
            into.push(net);
        }
        Ok(policy)
    }
}

impl AddressPolicy {
    /// Whether outbound traffic may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let within = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        !within(&self.denied) && (is_public(ip) || within(&self.allowed))
    }

    /// The allowed range holding `ip`, if one does and `ip` is not public:
    /// for warning that an allowance opens a platform service.
    pub fn opened_by(&self, ip: IpAddr) -> Option<IpNet> {
        let ip = ip.to_canonical();
        if is_public(ip) || self.denied.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        self.allowed.iter().find(|net| net.contains(&ip)).copied()
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0                                        // 0.0.0.0/8 "this network"
        || ip.is_loopback()                              // 127/8
        || ip.is_private()                               // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (64..128).contains(&b))          // 100.64/10 CGNAT
        || ip.is_link_local()                            // 169.254/16
        || (a == 192 && b == 0 && c == 0)                // 192.0.0/24 IETF
        || (a == 192 && b == 0 && c == 2)                // 192.0.2/24 TEST-NET-1
        || (a == 198 && (b == 18 || b == 19))            // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)             // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)              // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // An IPv4 address in disguise is judged as that address.
    let embedded = |hi: usize| Ipv4Addr::new((s[hi] >> 8) as u8, s[hi] as u8, (s[hi + 1] >> 8) as u8, s[hi + 1] as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded(6)); // IPv4-compatible ::a.b.c.d
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(6)); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(1)); // 6to4 2002:a.b.c.d::/48
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00                    // fc00::/7 unique-local
        || (s[0] & 0xffc0) == 0xfe80                    // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0                    // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)           // documentation
        || (s[0] == 0x2001 && s[1] == 0)                // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])     // discard-only 100::/64
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1)) // local-use NAT64 64:ff9b:1::/48
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_is_public() {
        for inside in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(!is_public(ip(inside)), "{inside} is not public");
        }
        for outside in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "100.63.0.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(is_public(ip(outside)), "{outside} is public");
        }
    }

    #[test]
    fn the_operator_allows_by_cidr() {
        let none = AddressPolicy::default();
        assert!(!none.permits(ip("127.0.0.1")));
        assert!(none.permits(ip("1.1.1.1")));
        let some: AddressPolicy = "127.0.0.0/8, fd00::/8".parse().unwrap();
        assert!(some.permits(ip("127.0.0.1")));
        assert!(some.permits(ip("::ffff:127.0.0.1")), "a mapped address is judged as IPv4");
        assert!(some.permits(ip("fd00::5")));
        assert!(!some.permits(ip("169.254.169.254")));
        assert!("10.0.0.0/33".parse::<AddressPolicy>().is_err());
        assert!("!".parse::<AddressPolicy>().is_err());

        // Exceptions win over allowances and over being public.
        let holes: AddressPolicy = "10.0.0.0/8, !10.0.5.0/24, !1.1.1.1, ! 10.9.9.9".parse().unwrap();
        assert!(holes.permits(ip("10.0.4.1")));
        assert!(!holes.permits(ip("10.0.5.1")));
        assert!(!holes.permits(ip("::ffff:10.0.5.1")));
        assert!(!holes.permits(ip("1.1.1.1")));
        assert!(!holes.permits(ip("10.9.9.9")));
        assert!(holes.permits(ip("1.0.0.1")));
        assert_eq!(holes.opened_by(ip("10.0.4.1")), Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(holes.opened_by(ip("10.0.5.1")), None);
        assert_eq!(holes.opened_by(ip("1.0.0.1")), None);
        assert_eq!("".parse::<AddressPolicy>().unwrap(), AddressPolicy::default());
    }
}

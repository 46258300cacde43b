//! The address guard: which IP addresses outgoing webhooks may reach.
//!
//! A webhook URL is user input, so without a guard anyone who can register a
//! webhook could make Herald probe its own network or read a cloud metadata
//! service. The guard refuses every address that is not an ordinary public
//! unicast address, unless an allowed CIDR covers it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub ip: IpAddr,
    /// What kind of address it is, e.g. "a loopback address".
    pub kind: &'static str,
    /// For IPv6 forms of IPv4 addresses: the IPv4 address judged.
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused {}: ", self.ip)?;
        if let Some(v4) = self.embedded {
            write!(f, "it embeds {v4}, ")?;
        }
        write!(
            f,
            "{}; webhooks are not sent there unless an allowed CIDR (--allow-cidr) covers it",
            self.kind
        )
    }
}

const UNSPECIFIED: &str = "an unspecified (\"this network\") address";
const LOOPBACK: &str = "a loopback address";
const PRIVATE: &str = "a private-network address";
const LINK_LOCAL: &str = "a link-local address";
const METADATA: &str = "a cloud metadata service address";
const CGNAT: &str = "a carrier-grade NAT (shared) address";
const MULTICAST: &str = "a multicast address";
const BROADCAST: &str = "the broadcast address";
const RESERVED: &str = "a reserved address";
const BENCHMARKING: &str = "a benchmarking address";
const DOCUMENTATION: &str = "a documentation address";

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

// Most specific first: the first match names the kind.
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4(169, 254, 169, 254, 32), METADATA),
    (v4(100, 100, 100, 200, 32), METADATA),
    (v4(255, 255, 255, 255, 32), BROADCAST),
    (v4(0, 0, 0, 0, 8), UNSPECIFIED),
    (v4(127, 0, 0, 0, 8), LOOPBACK),
    (v4(10, 0, 0, 0, 8), PRIVATE),
    (v4(172, 16, 0, 0, 12), PRIVATE),
    (v4(192, 168, 0, 0, 16), PRIVATE),
    (v4(169, 254, 0, 0, 16), LINK_LOCAL),
    (v4(100, 64, 0, 0, 10), CGNAT),
    (v4(224, 0, 0, 0, 4), MULTICAST),
    (v4(240, 0, 0, 0, 4), RESERVED),
    (v4(198, 18, 0, 0, 15), BENCHMARKING),
    (v4(192, 0, 2, 0, 24), DOCUMENTATION),
    (v4(198, 51, 100, 0, 24), DOCUMENTATION),
    (v4(203, 0, 113, 0, 24), DOCUMENTATION),
];

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), UNSPECIFIED),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), LOOPBACK),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), PRIVATE),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), LINK_LOCAL),
    // Site-local, deprecated but still private in spirit.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), PRIVATE),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), MULTICAST),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), DOCUMENTATION),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), DOCUMENTATION),
    // Local-use NAT64 translates to whatever the operator chose: private in effect.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), PRIVATE),
];

/// Judges target addresses. Cheap to clone; built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allow: Vec<IpNet>,
}

impl AddressGuard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// `Ok` when a webhook may be sent to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let embedded = match ip {
            IpAddr::V4(_) => None,
            IpAddr::V6(v6) => embedded_ipv4(v6),
        };
        if self.allows(ip) || embedded.is_some_and(|v4| self.allows(IpAddr::V4(v4))) {
            return Ok(());
        }
        let kind = match (ip, embedded) {
            (_, Some(v4)) => refused_v4_kind(v4),
            (IpAddr::V4(v4), None) => refused_v4_kind(v4),
            (IpAddr::V6(v6), None) => refused_v6_kind(v6),
        };
        match kind {
            Some(kind) => Err(Refusal { ip, kind, embedded }),
            None => Ok(()),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

fn refused_v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

fn refused_v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    REFUSED_V6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

/// The IPv4 address an IPv6 address stands for, where the network would carry
/// it to that IPv4 host: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_kind(guard: &AddressGuard, text: &str) -> Option<&'static str> {
        guard.check(text.parse().unwrap()).err().map(|r| r.kind)
    }

    fn assert_refused(text: &str, kind: &str) {
        assert_eq!(
            refused_kind(&AddressGuard::default(), text),
            Some(kind),
            "{text}"
        );
    }

    #[test]
    fn public_addresses_pass() {
        let guard = AddressGuard::default();
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert!(guard.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
    }

    #[test]
    fn unspecified_is_refused() {
        assert_refused("0.0.0.0", UNSPECIFIED);
        assert_refused("0.1.2.3", UNSPECIFIED);
        assert_refused("::", UNSPECIFIED);
    }

    #[test]
    fn loopback_is_refused() {
        assert_refused("127.0.0.1", LOOPBACK);
        assert_refused("127.255.0.9", LOOPBACK);
        assert_refused("::1", LOOPBACK);
    }

    #[test]
    fn private_networks_are_refused() {
        assert_refused("10.1.2.3", PRIVATE);
        assert_refused("172.16.0.1", PRIVATE);
        assert_refused("172.31.255.255", PRIVATE);
        assert_refused("192.168.1.1", PRIVATE);
        assert_refused("fd00::1", PRIVATE);
        assert_refused("fc00::1", PRIVATE);
        assert!(
            AddressGuard::default()
                .check("172.32.0.1".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn link_local_and_metadata_are_refused() {
        assert_refused("169.254.1.1", LINK_LOCAL);
        assert_refused("169.254.169.254", METADATA);
        assert_refused("fe80::1", LINK_LOCAL);
    }

    #[test]
    fn cgnat_and_its_metadata_address_are_refused() {
        assert_refused("100.64.0.1", CGNAT);
        assert_refused("100.127.255.255", CGNAT);
        assert_refused("100.100.100.200", METADATA);
    }

    #[test]
    fn multicast_broadcast_and_reserved_are_refused() {
        assert_refused("224.0.0.1", MULTICAST);
        assert_refused("239.255.255.250", MULTICAST);
        assert_refused("ff02::1", MULTICAST);
        assert_refused("255.255.255.255", BROADCAST);
        assert_refused("240.0.0.1", RESERVED);
    }

    #[test]
    fn benchmarking_and_documentation_are_refused() {
        assert_refused("198.18.0.1", BENCHMARKING);
        assert_refused("198.19.255.1", BENCHMARKING);
        assert_refused("192.0.2.10", DOCUMENTATION);
        assert_refused("198.51.100.10", DOCUMENTATION);
        assert_refused("203.0.113.10", DOCUMENTATION);
        assert_refused("2001:db8::1", DOCUMENTATION);
    }

    #[test]
    fn ipv6_forms_of_ipv4_are_judged_as_their_ipv4() {
        assert_refused("::ffff:127.0.0.1", LOOPBACK);
        assert_refused("::ffff:169.254.169.254", METADATA);
        assert_refused("64:ff9b::10.0.0.1", PRIVATE);
        assert_refused("64:ff9b::a9fe:a9fe", METADATA);
        assert_refused("::127.0.0.1", LOOPBACK);
        assert_refused("2002:7f00:1::", LOOPBACK);
        let refusal = AddressGuard::default()
            .check("::ffff:10.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(refusal.embedded, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(refusal.to_string().contains("embeds 10.0.0.1"), "{refusal}");
        assert!(
            AddressGuard::default()
                .check("::ffff:8.8.8.8".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn an_allowed_cidr_overrides_the_refusal() {
        let guard = AddressGuard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(guard.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check("fd00::5".parse().unwrap()).is_ok());
        assert_eq!(refused_kind(&guard, "10.0.0.1"), Some(PRIVATE));
        assert_eq!(refused_kind(&guard, "::1"), Some(LOOPBACK));
    }

    #[test]
    fn the_refusal_says_why_and_how_to_allow() {
        let text = AddressGuard::default()
            .check("127.0.0.1".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("127.0.0.1")
                && text.contains("loopback")
                && text.contains("--allow-cidr"),
            "{text}"
        );
    }
}

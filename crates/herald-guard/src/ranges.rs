//! The refused ranges: every entry of the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries whose "Globally Reachable" is False (or N/A for a
//! deprecated block), plus multicast and cloud metadata addresses, which no
//! webhook receiver or repository host lives at. Where the registry lists a
//! globally reachable exception inside a refused block (anycast service
//! addresses such as 192.0.0.9/32 or 2001:1::1/128, AMT, ORCHIDv2), the whole
//! block stays refused: none of them serves HTTP or git.
//!
//! The IPv6 blocks that only embed an IPv4 address (IPv4-mapped, the NAT64
//! well-known prefix, 6to4) are not listed: the embedded address is judged
//! instead (see `embedded_ipv4`).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

pub(crate) const UNSPECIFIED: &str = "an unspecified (\"this network\") address";
pub(crate) const LOOPBACK: &str = "a loopback address";
pub(crate) const PRIVATE: &str = "a private-network address";
pub(crate) const LINK_LOCAL: &str = "a link-local address";
pub(crate) const METADATA: &str = "a cloud metadata service address";
pub(crate) const CGNAT: &str = "a carrier-grade NAT (shared) address";
pub(crate) const MULTICAST: &str = "a multicast address";
pub(crate) const BROADCAST: &str = "the broadcast address";
pub(crate) const RESERVED: &str = "a reserved address";
pub(crate) const BENCHMARKING: &str = "a benchmarking address";
pub(crate) const DOCUMENTATION: &str = "a documentation address";
pub(crate) const PROTOCOL_ASSIGNMENTS: &str = "an IETF protocol assignments address";
pub(crate) const RELAY_ANYCAST: &str = "a deprecated 6to4 relay anycast address";
pub(crate) const DISCARD: &str = "a discard-only address";
pub(crate) const DUMMY: &str = "a dummy address";
pub(crate) const SEGMENT_ROUTING: &str = "a segment routing (SRv6) SID";
pub(crate) const LOCAL_TRANSLATION: &str = "a local-use IPv4/IPv6 translation address";

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

// Most specific first: the first match names the kind.
pub(crate) const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    // AWS, GCP, Azure, OpenStack (inside link-local); Alibaba Cloud (inside shared space).
    (v4(169, 254, 169, 254, 32), METADATA),
    (v4(100, 100, 100, 200, 32), METADATA),
    // Limited broadcast: RFC 8190, RFC 919 section 7.
    (v4(255, 255, 255, 255, 32), BROADCAST),
    // "This network" (RFC 791 section 3.2; 0.0.0.0/32 "this host", RFC 1122).
    (v4(0, 0, 0, 0, 8), UNSPECIFIED),
    // Private-Use: RFC 1918.
    (v4(10, 0, 0, 0, 8), PRIVATE),
    (v4(172, 16, 0, 0, 12), PRIVATE),
    (v4(192, 168, 0, 0, 16), PRIVATE),
    // Shared Address Space: RFC 6598.
    (v4(100, 64, 0, 0, 10), CGNAT),
    // Loopback: RFC 1122 section 3.2.1.3.
    (v4(127, 0, 0, 0, 8), LOOPBACK),
    // Link Local: RFC 3927.
    (v4(169, 254, 0, 0, 16), LINK_LOCAL),
    // IETF Protocol Assignments: RFC 6890 section 2.1 (with the IPv4 Service
    // Continuity Prefix, RFC 7335; the dummy address, RFC 7600; NAT64/DNS64
    // discovery, RFC 8880).
    (v4(192, 0, 0, 0, 24), PROTOCOL_ASSIGNMENTS),
    // Documentation (TEST-NET-1, -2, -3): RFC 5737.
    (v4(192, 0, 2, 0, 24), DOCUMENTATION),
    (v4(198, 51, 100, 0, 24), DOCUMENTATION),
    (v4(203, 0, 113, 0, 24), DOCUMENTATION),
    // Deprecated 6to4 Relay Anycast: RFC 7526.
    (v4(192, 88, 99, 0, 24), RELAY_ANYCAST),
    // Benchmarking: RFC 2544.
    (v4(198, 18, 0, 0, 15), BENCHMARKING),
    // Multicast: RFC 5771 (not special-purpose, but never a unicast host).
    (v4(224, 0, 0, 0, 4), MULTICAST),
    // Reserved: RFC 1112 section 4.
    (v4(240, 0, 0, 0, 4), RESERVED),
];

pub(crate) const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    // Unspecified and Loopback: RFC 4291.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), UNSPECIFIED),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), LOOPBACK),
    // Local-use IPv4/IPv6 translation: RFC 8215. Translates to whatever the
    // operator chose, so refused even when the embedded address is public.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), LOCAL_TRANSLATION),
    // Discard-Only Address Block: RFC 6666.
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), DISCARD),
    // Dummy IPv6 Prefix: RFC 9780.
    (v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64), DUMMY),
    // Documentation: RFC 3849 and RFC 9637.
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), DOCUMENTATION),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), DOCUMENTATION),
    // IETF Protocol Assignments: RFC 2928 (with TEREDO, RFC 4380; benchmarking,
    // RFC 5180; ORCHID, RFC 4843 and RFC 7343).
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), PROTOCOL_ASSIGNMENTS),
    // Segment Routing (SRv6) SIDs: RFC 9602.
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), SEGMENT_ROUTING),
    // Unique-Local: RFC 4193.
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), PRIVATE),
    // Link-Local Unicast: RFC 4291.
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), LINK_LOCAL),
    // Site-local: RFC 3879 deprecated it; still private in spirit.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), PRIVATE),
    // Multicast: RFC 4291.
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), MULTICAST),
];

pub(crate) fn refused_v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

pub(crate) fn refused_v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    REFUSED_V6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

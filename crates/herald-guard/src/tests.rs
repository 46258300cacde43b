use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ranges::*;
use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test address")
}

fn refused_kind(guard: &AddressGuard, text: &str) -> Option<&'static str> {
    guard.check(ip(text)).err().map(|r| r.kind)
}

/// One refused range: an address at each end inside it, and the addresses
/// just outside each end with what the guard says of them (`None`: allowed).
struct Case {
    first: &'static str,
    last: &'static str,
    kind: &'static str,
    before: (&'static str, Option<&'static str>),
    after: (&'static str, Option<&'static str>),
}

const fn case(
    first: &'static str,
    last: &'static str,
    kind: &'static str,
    before: (&'static str, Option<&'static str>),
    after: (&'static str, Option<&'static str>),
) -> Case {
    Case {
        first,
        last,
        kind,
        before,
        after,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    case("169.254.169.254", "169.254.169.254", METADATA, ("169.254.169.253", Some(LINK_LOCAL)), ("169.254.169.255", Some(LINK_LOCAL))),
    case("100.100.100.200", "100.100.100.200", METADATA, ("100.100.100.199", Some(CGNAT)), ("100.100.100.201", Some(CGNAT))),
    case("255.255.255.255", "255.255.255.255", BROADCAST, ("255.255.255.254", Some(RESERVED)), ("255.255.255.254", Some(RESERVED))),
    case("0.0.0.0", "0.255.255.255", UNSPECIFIED, ("0.0.0.0", Some(UNSPECIFIED)), ("1.0.0.0", None)),
    case("10.0.0.0", "10.255.255.255", PRIVATE, ("9.255.255.255", None), ("11.0.0.0", None)),
    case("172.16.0.0", "172.31.255.255", PRIVATE, ("172.15.255.255", None), ("172.32.0.0", None)),
    case("192.168.0.0", "192.168.255.255", PRIVATE, ("192.167.255.255", None), ("192.169.0.0", None)),
    case("100.64.0.0", "100.127.255.255", CGNAT, ("100.63.255.255", None), ("100.128.0.0", None)),
    case("127.0.0.0", "127.255.255.255", LOOPBACK, ("126.255.255.255", None), ("128.0.0.0", None)),
    case("169.254.0.0", "169.254.255.255", LINK_LOCAL, ("169.253.255.255", None), ("169.255.0.0", None)),
    case("192.0.0.0", "192.0.0.255", PROTOCOL_ASSIGNMENTS, ("191.255.255.255", None), ("192.0.1.0", None)),
    case("192.0.2.0", "192.0.2.255", DOCUMENTATION, ("192.0.1.255", None), ("192.0.3.0", None)),
    case("198.51.100.0", "198.51.100.255", DOCUMENTATION, ("198.51.99.255", None), ("198.51.101.0", None)),
    case("203.0.113.0", "203.0.113.255", DOCUMENTATION, ("203.0.112.255", None), ("203.0.114.0", None)),
    case("192.88.99.0", "192.88.99.255", RELAY_ANYCAST, ("192.88.98.255", None), ("192.88.100.0", None)),
    case("198.18.0.0", "198.19.255.255", BENCHMARKING, ("198.17.255.255", None), ("198.20.0.0", None)),
    case("224.0.0.0", "239.255.255.255", MULTICAST, ("223.255.255.255", None), ("240.0.0.0", Some(RESERVED))),
    case("240.0.0.0", "255.255.255.254", RESERVED, ("239.255.255.255", Some(MULTICAST)), ("255.255.255.255", Some(BROADCAST))),
    case("::", "::", UNSPECIFIED, ("::", Some(UNSPECIFIED)), ("::1", Some(LOOPBACK))),
    case("::1", "::1", LOOPBACK, ("::", Some(UNSPECIFIED)), ("::2", Some(UNSPECIFIED))),
    case("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", LOCAL_TRANSLATION, ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", None), ("64:ff9b:2::", None)),
    case("100::", "100::ffff:ffff:ffff:ffff", DISCARD, ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("100:0:0:1::", Some(DUMMY))),
    case("100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff", DUMMY, ("100::ffff:ffff:ffff:ffff", Some(DISCARD)), ("100:0:0:2::", None)),
    case("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", DOCUMENTATION, ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None), ("2001:db9::", None)),
    case("3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", DOCUMENTATION, ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("3fff:1000::", None)),
    case("2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", PROTOCOL_ASSIGNMENTS, ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("2001:200::", None)),
    case("5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SEGMENT_ROUTING, ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("5f01::", None)),
    case("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIVATE, ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("fe00::", None)),
    case("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LINK_LOCAL, ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None), ("fec0::", Some(PRIVATE))),
    case("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIVATE, ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LINK_LOCAL)), ("ff00::", Some(MULTICAST))),
    case("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MULTICAST, ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(PRIVATE)), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(MULTICAST))),
];

#[test]
fn every_range_is_refused_inside_and_judged_just_outside() {
    let guard = AddressGuard::default();
    for case in CASES {
        for inside in [case.first, case.last] {
            assert_eq!(refused_kind(&guard, inside), Some(case.kind), "{inside}");
        }
        for (outside, expected) in [case.before, case.after] {
            assert_eq!(refused_kind(&guard, outside), expected, "{outside}");
        }
    }
}

#[test]
fn every_listed_range_has_a_case() {
    let firsts: Vec<IpAddr> = CASES.iter().map(|c| ip(c.first)).collect();
    for (net, _) in REFUSED_V4 {
        assert!(firsts.contains(&IpAddr::V4(net.network())), "{net}");
    }
    for (net, _) in REFUSED_V6 {
        assert!(firsts.contains(&IpAddr::V6(net.network())), "{net}");
    }
}

#[test]
fn public_addresses_pass() {
    let guard = AddressGuard::default();
    for text in [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        // Globally reachable special-purpose blocks: AS112 (RFC 7535, 7534).
        "192.31.196.1",
        "192.175.48.1",
    ] {
        assert!(guard.check(ip(text)).is_ok(), "{text}");
    }
}

#[test]
fn ipv6_forms_of_ipv4_are_judged_as_their_ipv4() {
    let guard = AddressGuard::default();
    for (text, kind) in [
        ("::ffff:127.0.0.1", LOOPBACK),
        ("::ffff:169.254.169.254", METADATA),
        ("::ffff:0:7f00:1", LOOPBACK),
        ("::ffff:0:192.0.0.8", PROTOCOL_ASSIGNMENTS),
        ("::127.0.0.1", LOOPBACK),
        ("64:ff9b::10.0.0.1", PRIVATE),
        ("64:ff9b::a9fe:a9fe", METADATA),
        ("64:ff9b:1::7f00:1", LOCAL_TRANSLATION),
        ("2002:7f00:1::", LOOPBACK),
        ("2002:c058:6301::", RELAY_ANYCAST),
    ] {
        assert_eq!(refused_kind(&guard, text), Some(kind), "{text}");
    }
    for public in [
        "::ffff:8.8.8.8",
        "::ffff:0:808:808",
        "64:ff9b::8.8.8.8",
        "2002:808:808::",
    ] {
        assert!(guard.check(ip(public)).is_ok(), "{public}");
    }
    let refusal = guard.check(ip("::ffff:10.0.0.1")).unwrap_err();
    assert_eq!(refusal.embedded, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert!(refusal.to_string().contains("embeds 10.0.0.1"), "{refusal}");
}

#[test]
fn local_use_translation_is_refused_even_for_a_public_ipv4() {
    let refusal = AddressGuard::default()
        .check(ip("64:ff9b:1::8.8.8.8"))
        .unwrap_err();
    assert_eq!(refusal.kind, LOCAL_TRANSLATION);
    assert_eq!(refusal.embedded, Some(Ipv4Addr::new(8, 8, 8, 8)));
}

#[test]
fn an_allowed_cidr_overrides_the_refusal() {
    let guard = AddressGuard::new(vec![
        "127.0.0.0/8".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
        "192.0.0.0/24".parse().unwrap(),
        "2001::/23".parse().unwrap(),
        "100::/64".parse().unwrap(),
    ]);
    for allowed in [
        "127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b::7f00:1",
        "fd00::5",
        "192.0.0.8",
        "2001::1",
        "100::1",
    ] {
        assert!(guard.check(ip(allowed)).is_ok(), "{allowed}");
    }
    assert_eq!(refused_kind(&guard, "10.0.0.1"), Some(PRIVATE));
    assert_eq!(refused_kind(&guard, "::1"), Some(LOOPBACK));
    assert_eq!(refused_kind(&guard, "fc00::1"), Some(PRIVATE));
    assert_eq!(refused_kind(&guard, "192.88.99.1"), Some(RELAY_ANYCAST));
}

#[test]
fn the_refusal_says_why_and_how_to_allow() {
    let text = AddressGuard::default()
        .check(ip("127.0.0.1"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("127.0.0.1") && text.contains("loopback") && text.contains("--allow-cidr"),
        "{text}"
    );
}

#[test]
fn keep_allowed_drops_refused_addresses_and_says_why_when_none_remain() {
    let guard = AddressGuard::default();
    let public = SocketAddr::new(ip("8.8.8.8"), 443);
    let loopback = SocketAddr::new(ip("127.0.0.1"), 443);
    assert_eq!(
        guard.keep_allowed("mixed", [loopback, public]).unwrap(),
        [public]
    );
    let refused = guard.keep_allowed("local", [loopback]).unwrap_err();
    assert_eq!(refused.refusal.kind, LOOPBACK);
    assert!(
        refused
            .to_string()
            .starts_with("local resolves only to refused addresses"),
        "{refused}"
    );
}

#[test]
fn resolve_judges_literals_and_resolved_names() {
    let guard = AddressGuard::default();
    assert!(matches!(
        resolve(&guard, "169.254.169.254", 80),
        Err(ResolveError::Refused(HostRefused {
            refusal: Refusal { kind: METADATA, .. },
            ..
        }))
    ));
    assert!(matches!(
        resolve(&guard, "localhost", 80),
        Err(ResolveError::Refused(_))
    ));
    let allowing = AddressGuard::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let kept = resolve(&allowing, "localhost", 8080).unwrap();
    assert!(
        kept.iter()
            .all(|a| a.ip() == Ipv4Addr::LOCALHOST && a.port() == 8080),
        "{kept:?}"
    );
    assert_eq!(
        resolve(&allowing, "127.0.0.1", 80).unwrap(),
        [SocketAddr::new(ip("127.0.0.1"), 80)]
    );
    let v6: Ipv6Addr = "::1".parse().unwrap();
    assert!(resolve(&allowing, &v6.to_string(), 80).is_err());
}

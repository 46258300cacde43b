//! The address guard: which IP addresses Herald may connect to.
//!
//! Webhook URLs and repository clone URLs are user input, so without a guard
//! anyone who can register one could make Herald probe its own network or read
//! a cloud metadata service. The guard refuses every address that the IANA
//! special-purpose address registries mark as not globally reachable (plus
//! multicast and a few cloud metadata addresses), unless an allowed CIDR
//! covers it. IPv6 forms of IPv4 addresses are judged as the IPv4 address the
//! network would carry them to.
//!
//! Layout:
//! - `ranges` (private): the refused ranges, each with its RFC.
//! - [`AddressGuard`]: judges one address ([`AddressGuard::check`]) or filters a
//!   name's resolved addresses ([`AddressGuard::keep_allowed`]).
//! - [`resolve`]: the blocking resolver for callers outside an async runtime
//!   (the `git` fetches); asynchronous callers resolve themselves and filter
//!   with [`AddressGuard::keep_allowed`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use ipnet::IpNet;

mod ranges;

use ranges::{refused_v4_kind, refused_v6_kind};

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
            "{}; Herald connects there only if an allowed CIDR (--allow-cidr) covers it",
            self.kind
        )
    }
}

/// A name whose every address the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves only to refused addresses; {refusal}")]
pub struct HostRefused {
    pub host: String,
    pub refusal: Refusal,
}

/// Why [`resolve`] has no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error(transparent)]
    Refused(#[from] HostRefused),
}

/// Judges target addresses. Cheap to clone; built once from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressGuard {
    allow: Vec<IpNet>,
}

impl AddressGuard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// `Ok` when Herald may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let embedded = match ip {
            IpAddr::V4(_) => None,
            IpAddr::V6(v6) => embedded_ipv4(v6),
        };
        if self.allows(ip) || embedded.is_some_and(|v4| self.allows(IpAddr::V4(v4))) {
            return Ok(());
        }
        let refuse = |kind| Err(Refusal { ip, kind, embedded });
        match (ip, embedded) {
            // The IPv6 block's own kind first: a local-use translation prefix is refused
            // whatever it embeds.
            (IpAddr::V6(v6), Some(v4)) => match refused_v6_kind(v6).or(refused_v4_kind(v4)) {
                Some(kind) => refuse(kind),
                None => Ok(()),
            },
            (IpAddr::V4(v4), _) => refused_v4_kind(v4).map_or(Ok(()), refuse),
            (IpAddr::V6(v6), None) => refused_v6_kind(v6).map_or(Ok(()), refuse),
        }
    }

    /// The addresses `host` resolved to that Herald may connect to; an error
    /// naming the first refusal when there are none.
    pub fn keep_allowed(
        &self,
        host: &str,
        resolved: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, HostRefused> {
        let mut refusal = None;
        let kept: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| match self.check(addr.ip()) {
                Ok(()) => true,
                Err(refused) => {
                    refusal.get_or_insert(refused);
                    false
                }
            })
            .collect();
        match (kept.is_empty(), refusal) {
            (true, Some(refusal)) => Err(HostRefused {
                host: host.to_owned(),
                refusal,
            }),
            _ => Ok(kept),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// Resolves `host` with the system resolver (blocking) and keeps the addresses
/// the guard allows. An IP literal is judged as it is.
pub fn resolve(
    guard: &AddressGuard,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|source| ResolveError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect(),
    };
    let kept = guard.keep_allowed(host, resolved)?;
    if kept.is_empty() {
        return Err(ResolveError::NoAddress(host.to_owned()));
    }
    Ok(kept)
}

/// The IPv4 address an IPv6 address stands for, where the network would carry
/// it to that IPv4 host: IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291), IPv4-translated
/// (`::ffff:0:a.b.c.d`, RFC 2765), IPv4-compatible (`::a.b.c.d`, RFC 4291,
/// deprecated), NAT64 with the well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052)
/// or the local-use one (`64:ff9b:1::/48`, RFC 8215, as a /96 carrying the
/// address in its last 32 bits), and 6to4 (`2002:AABB:CCDD::`, RFC 3056).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

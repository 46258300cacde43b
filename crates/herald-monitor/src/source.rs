//! Where mirrors may be fetched from: the rule ([`SourcePolicy::check`], pure, so the API can
//! answer a refused clone URL at once) and its enforcement before every fetch
//! ([`SourcePolicy::pin`], which resolves the host through the address guard again, since DNS
//! can change, and follows symbolic links in local paths).
//!
//! Allowed, by default: `https://` and `http://` URLs whose host the address guard accepts.
//! `ssh://` and scp-like `host:path` only when the configuration allows ssh; local paths and
//! `file://` URLs only under a configured root. Everything else — `git://`, remote helpers
//! (`ext::`), option-looking sources (`--upload-pack=...`) — is refused.

use std::fmt;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};

pub use herald_guard::AddressGuard;
use herald_guard::ResolveError;
use percent_encoding::percent_decode_str;
use url::{Host, Url};

/// What the server lets mirrors be fetched from. Built once from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePolicy {
    /// The same guard (and allowed CIDRs) as webhook deliveries.
    pub guard: AddressGuard,
    /// Directories under which local repositories may be mirrored; empty refuses every local
    /// path and `file://` URL.
    pub local_roots: Vec<PathBuf>,
    /// Whether `ssh://` and scp-like sources are allowed.
    pub allow_ssh: bool,
}

/// Why a source is refused. The message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceRefused {
    #[error("{0}")]
    Malformed(&'static str),
    #[error(
        "scheme {0:?} is not allowed; use https:// or http:// (ssh:// where the server allows ssh)"
    )]
    Scheme(String),
    #[error(
        "ssh sources are off on this server; use https:// with credentials in the URL, or set allow_ssh = true in [monitors]"
    )]
    SshOff,
    #[error(
        "local paths and file:// URLs are refused unless they lie under a directory listed in local_roots of [monitors]{0}"
    )]
    OutsideRoots(String),
    #[error("the host {0}")]
    Address(String),
    #[error("{path} cannot be mirrored: {reason}")]
    Local { path: PathBuf, reason: String },
}

/// A source the policy allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Remote(RemoteSource),
    /// An absolute path, as given (its real path is checked at each fetch).
    Local(PathBuf),
}

/// A network source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub transport: Transport,
    /// The URL without credentials: what git is given and the mirror's config keeps.
    pub url: String,
    /// The host name or IP literal (no brackets).
    pub host: String,
    pub port: u16,
    /// The URL's user and password, answered to git's prompts, never on a command line.
    pub credentials: Option<Credentials>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
    Ssh,
}

impl Transport {
    /// The name `GIT_ALLOW_PROTOCOL` knows it by.
    pub(crate) fn protocol(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Http => "http",
            Transport::Ssh => "ssh",
        }
    }
}

/// Basic-auth credentials from a clone URL. `Debug` shows only the user.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A source checked just before a fetch: where git may connect, or the real local path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pinned {
    Remote {
        source: RemoteSource,
        /// The guard-approved addresses git is pinned to; empty for an IP literal host.
        addresses: Vec<IpAddr>,
    },
    Local(PathBuf),
}

impl SourcePolicy {
    /// Whether `source` may be mirrored, judged without any IO: its form, its scheme, an IP
    /// literal host against the address guard, a local path against the roots as written.
    /// Host names and symbolic links are judged again by [`SourcePolicy::pin`] at each fetch.
    pub fn check(&self, source: &str) -> Result<Source, SourceRefused> {
        refuse_malformed(source)?;
        if let Some((scheme, _)) = source.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "https" | "http" | "ssh" => self.check_url(source),
                "file" => self.check_file_url(source),
                _ => Err(SourceRefused::Scheme(scheme.to_owned())),
            };
        }
        if names_a_helper(source) {
            return Err(SourceRefused::Malformed(
                "remote helpers (`<transport>::<address>`) are not allowed",
            ));
        }
        if source.starts_with('/') {
            return self.check_local(Path::new(source));
        }
        match scp_host(source) {
            Some(host) => self.check_scp(source, host),
            None => Err(SourceRefused::Malformed(
                "must be a clone URL (https://, ssh://, git@host:path) or an absolute path",
            )),
        }
    }

    /// Checks `source` again just before a fetch: resolves a host name and keeps the addresses
    /// the guard allows (git is then pinned to them), or finds the real path of a local source
    /// and requires it under a root (the mirror then checks the repository it holds).
    pub fn pin(&self, source: &Source) -> Result<Pinned, SourceRefused> {
        match source {
            Source::Remote(remote) => self.pin_remote(remote),
            Source::Local(path) => self.pin_local(path),
        }
    }

    fn check_url(&self, text: &str) -> Result<Source, SourceRefused> {
        let url = Url::parse(text).map_err(|_| SourceRefused::Malformed("is not a valid URL"))?;
        let transport = match url.scheme() {
            "https" => Transport::Https,
            "http" => Transport::Http,
            _ => Transport::Ssh,
        };
        if transport == Transport::Ssh && !self.allow_ssh {
            return Err(SourceRefused::SshOff);
        }
        let host = match url.host() {
            Some(Host::Domain(name)) => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(SourceRefused::Malformed("the URL names no host")),
        };
        let port = url.port_or_known_default().unwrap_or(22);
        let (url, credentials) = match transport {
            // An ssh user name is no secret, and ssh authenticates with keys.
            Transport::Ssh => (url.to_string(), None),
            _ => split_credentials(url),
        };
        self.remote(RemoteSource {
            transport,
            url,
            host,
            port,
            credentials,
        })
    }

    fn check_scp(&self, text: &str, host: &str) -> Result<Source, SourceRefused> {
        if !self.allow_ssh {
            return Err(SourceRefused::SshOff);
        }
        self.remote(RemoteSource {
            transport: Transport::Ssh,
            url: text.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: 22,
            credentials: None,
        })
    }

    /// Refuses a remote whose host is an IP literal the guard refuses.
    fn remote(&self, remote: RemoteSource) -> Result<Source, SourceRefused> {
        if let Ok(ip) = remote.host.parse::<IpAddr>() {
            self.guard
                .check(ip)
                .map_err(|refusal| SourceRefused::Address(refusal.to_string()))?;
        }
        Ok(Source::Remote(remote))
    }

    fn check_file_url(&self, text: &str) -> Result<Source, SourceRefused> {
        let path = Url::parse(text)
            .ok()
            .and_then(|url| url.to_file_path().ok())
            .ok_or(SourceRefused::Malformed(
                "a file:// URL must name an absolute path on this host",
            ))?;
        self.check_local(&path)
    }

    fn check_local(&self, path: &Path) -> Result<Source, SourceRefused> {
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(SourceRefused::Malformed(
                "a local path must not contain `..`",
            ));
        }
        if !self.local_roots.iter().any(|root| path.starts_with(root)) {
            return Err(self.outside_roots());
        }
        Ok(Source::Local(path.to_owned()))
    }

    fn outside_roots(&self) -> SourceRefused {
        let roots: Vec<String> = self
            .local_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        SourceRefused::OutsideRoots(if roots.is_empty() {
            " (none is)".to_owned()
        } else {
            format!(" (now {})", roots.join(", "))
        })
    }

    fn pin_remote(&self, remote: &RemoteSource) -> Result<Pinned, SourceRefused> {
        let literal = remote.host.parse::<IpAddr>().is_ok();
        let resolved =
            herald_guard::resolve(&self.guard, &remote.host, remote.port).map_err(|error| {
                match error {
                    ResolveError::Refused(refused) => SourceRefused::Address(refused.to_string()),
                    other => SourceRefused::Address(other.to_string()),
                }
            })?;
        let mut addresses: Vec<IpAddr> = Vec::new();
        for ip in resolved.iter().map(SocketAddr::ip) {
            if !literal && !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        Ok(Pinned::Remote {
            source: remote.clone(),
            addresses,
        })
    }

    fn pin_local(&self, path: &Path) -> Result<Pinned, SourceRefused> {
        let real = fs::canonicalize(path).map_err(|error| SourceRefused::Local {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        if !self.under_real_root(&real) {
            return Err(SourceRefused::Local {
                path: path.to_owned(),
                reason: format!(
                    "it resolves to {}, outside every directory in local_roots of [monitors]",
                    real.display()
                ),
            });
        }
        Ok(Pinned::Local(real))
    }

    /// Whether `real` (a canonical path) lies under a root, with the roots' own symbolic
    /// links followed.
    pub(crate) fn under_real_root(&self, real: &Path) -> bool {
        self.local_roots
            .iter()
            .filter_map(|root| fs::canonicalize(root).ok())
            .any(|root| real.starts_with(root))
    }
}

fn refuse_malformed(source: &str) -> Result<(), SourceRefused> {
    if source.trim().is_empty() {
        return Err(SourceRefused::Malformed("it is empty"));
    }
    if source.starts_with('-') {
        return Err(SourceRefused::Malformed("it must not start with '-'"));
    }
    if source.chars().any(char::is_control) {
        return Err(SourceRefused::Malformed("it contains control characters"));
    }
    Ok(())
}

/// Whether git would hand `source` to a remote helper: `<transport>::<address>`, the transport
/// spelled like a URL scheme (git's `is_urlschemechar`).
fn names_a_helper(source: &str) -> bool {
    let scheme_len = source
        .char_indices()
        .take_while(|&(i, c)| {
            c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || "+-.".contains(c)))
        })
        .count();
    source[scheme_len..].starts_with("::")
}

/// The host of an scp-like source (`[user@]host:path`, `[user@][::1]:path`), as git tells it
/// from a local path: a colon before any slash.
fn scp_host(text: &str) -> Option<&str> {
    let after_user = text.split_once('@').map_or(text, |(user, rest)| {
        if user.contains('/') || user.contains(':') {
            text
        } else {
            rest
        }
    });
    let host = if after_user.starts_with('[') {
        let end = after_user.find("]:")?;
        &after_user[..=end]
    } else {
        after_user.split_once(':')?.0
    };
    (!host.is_empty() && !host.contains('/')).then_some(host)
}

/// The URL without its user and password, and those (percent-decoded) apart.
fn split_credentials(mut url: Url) -> (String, Option<Credentials>) {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let credentials =
        (!url.username().is_empty() || url.password().is_some()).then(|| Credentials {
            username: decode(url.username()),
            password: decode(url.password().unwrap_or("")),
        });
    // Both succeed on http(s) URLs, which always have a host.
    let _ = url.set_password(None);
    let _ = url.set_username("");
    (url.to_string(), credentials)
}

#[cfg(test)]
mod tests;

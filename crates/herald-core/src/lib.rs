//! Herald's domain, free of IO.
//!
//! Layout:
//! - [`id`]: time-ordered (UUID v7) identifiers, one newtype per entity.
//! - [`time`]: `Timestamp`, milliseconds since the Unix epoch, with RFC 3339 on the wire.
//! - [`secret`]: webhook secrets: generation, redacted `Debug`, the signing key they yield.
//! - [`api_token`]: API tokens: generation, and the SHA-256 digest they are stored as.
//! - [`signing`]: Standard Webhooks and hex HMAC signatures, and their constant-time checks.
//! - [`event_type`]: event type names and the patterns webhooks subscribe with.
//! - [`webhook`]: validation of a webhook's fields, and the target URL with its credentials.
//! - [`shown_url`]: URLs as people and logs see them, credentials and tokens masked.
//! - [`retry`]: the retry schedule, jitter and `Retry-After` bounds.
//! - [`cipher`]: sealing secrets at rest with XChaCha20-Poly1305.
//! - [`validation`]: the error every validator returns: which field, which rule.
//!
//! Nothing here touches the network, the disk or the clock, except [`time::Timestamp::now`]
//! and the operating system's random number generator.

pub mod api_token;
pub mod cipher;
pub mod event_type;
pub mod id;
pub mod ordering;
pub mod retry;
pub mod secret;
pub mod shown_url;
pub mod signing;
pub mod time;
pub mod validation;
pub mod webhook;

/// The `User-Agent` every outgoing request carries.
pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

//! Herald's event catalogue: which event types exist, what their payloads look
//! like, and how each family's deliveries look on the wire. A pure library: no IO,
//! no HTTP, no clock.
//!
//! Layout:
//! - [`catalogue`]: [`Catalogue`], the registry of [`EventTypeDef`]s (built-in and
//!   custom), each with a JSON Schema compiled once; payload validation with the
//!   JSON Pointer of the first offending field, and "did you mean" for unknown types.
//! - [`family`]: [`Family`], and [`native_headers`], the product-specific headers
//!   (Sourcegraph, SonarQube) a delivery carries besides the common ones.
//! - [`keys`]: the built-in event type keys.
//! - `builtin` (private): one module per family with its types' schemas and the
//!   seeds' example payloads.
//! - [`payloads`]: the payloads Herald builds itself (code monitor notifications,
//!   `herald:*` operational events) and the SonarQube properties merge
//!   ([`prepare_payload`]). herald-ingest builds `repo:push` and code-host changesets.
//! - `violation` (private): JSON Schema errors turned into pointer + rule.
//! - `closest` (private): edit-distance suggestions.
//!
//! How the rest of Herald uses it: the server builds [`Catalogue::builtin`] at start,
//! registers the stored custom types, validates published payloads with
//! [`Catalogue::validate`], applies [`prepare_payload`] before storing the event, and
//! refuses webhook patterns for which [`Catalogue::matches_any`] is false. The
//! delivery engine adds [`native_headers`] for the type's [`Family`] to each request.
//!
//! Adding a family:
//! 1. add a variant to [`Family`] (with its serde name and `as_str`), and its headers
//!    in [`native_headers`] (a function per family; compute signatures over the exact
//!    body bytes, with `herald_core::signing`);
//! 2. add its keys to [`keys`], and a module under `src/builtin/` whose
//!    `definitions()` gives each type's description, schema (draft 2020-12) and the
//!    product's documented example, in its documented field order; list it in
//!    `builtin::definitions`;
//! 3. if Herald builds or rewrites its payloads, add the builder under [`payloads`],
//!    with a test that the builder reproduces the example byte for byte;
//! 4. run `HERALD_BLESS=1 cargo test -p herald-catalogue --test golden`, review the
//!    new `tests/golden/<key>.txt` files, and add rejection cases to `tests/schemas.rs`.

mod builtin;
pub mod catalogue;
mod closest;
pub mod family;
pub mod keys;
pub mod payloads;
mod violation;

pub use catalogue::{
    Catalogue, CatalogueError, CustomType, EventTypeDef, PayloadError, Registration,
};
pub use family::{Family, envelope_headers, native_headers};
pub use payloads::code_monitor::{MonitorResult, code_monitor_notification};
pub use payloads::sonarqube::prepare_payload;

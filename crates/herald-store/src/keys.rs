//! The secrets key a database belongs to: the key check every node compares at
//! start, and the one-time binding of values sealed before bindings existed.

use std::sync::Arc;

use herald_core::cipher::SealedColumn;
use uuid::Uuid;

/// Every sealed column, as both stores name it: its binding, table and value
/// column (the row's id is the table's `id`).
pub const SEALED_COLUMNS: &[(SealedColumn, &str, &str)] = &[
    (SealedColumn::WebhookUrl, "webhooks", "url_sealed"),
    (SealedColumn::WebhookSecret, "webhooks", "secret_sealed"),
    (
        SealedColumn::ReceiverCredentials,
        "receivers",
        "credentials_sealed",
    ),
    (
        SealedColumn::ReceiverCredentials,
        "receivers",
        "previous_credentials_sealed",
    ),
    (
        SealedColumn::RepositorySource,
        "monitor_repositories",
        "source_sealed",
    ),
];

/// Re-seals one value sealed without a binding so that it is bound to its
/// column and row; `None` when this node's key cannot open it.
pub type Rebind = Arc<dyn Fn(SealedColumn, Uuid, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// What [`crate::Store::adopt_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The stored key check is this node's.
    Matches,
    /// No key check was stored: this node's became the database's, after every
    /// sealed value already stored (`rebound` of them) was bound to its place.
    Adopted { rebound: u64 },
    /// The stored key check is another key's.
    Mismatch,
    /// No key check was stored and this key does not open a value already
    /// stored: the database's secrets were sealed with another key.
    Unopenable { column: SealedColumn, row: Uuid },
}

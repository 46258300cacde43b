//! API tokens: who may call the API besides the configured admin token. A
//! token is stored as the SHA-256 digest of its secret, never the secret, with
//! a name, one scope (as text: the application parses it), and the times it
//! was created, last used and expires. Revoking deletes the row, so a revoked
//! token and an unknown one look the same.
//!
//! The store owns the clock: it sets `created_at` and `last_used_at`, turns
//! `expires_in` into `expires_at`, and leaves expired tokens out of lookups.

use std::time::Duration;

use async_trait::async_trait;
use herald_core::api_token::TokenDigest;
use herald_core::time::Timestamp;

pub use herald_core::id::TokenId;

use crate::StoreResult;

/// How long after a token's `last_used_at` another use is recorded: a request
/// is not a write.
pub const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);

/// A token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: TokenId,
    pub name: String,
    pub digest: TokenDigest,
    /// As the application writes it, e.g. `read` or `project:payments`.
    pub scope: String,
    /// From the store's now; `None` never expires.
    pub expires_in: Option<Duration>,
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub digest: TokenDigest,
    pub scope: String,
    pub created_at: Timestamp,
    /// Within [`LAST_USED_GRANULARITY`] of the last use; `None` if never used.
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord>;
    /// Every token, expired ones included, oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// The token with this digest, unless it has expired (by the store's clock).
    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<TokenRecord>>;
    /// Records a use now, unless one was recorded less than
    /// [`LAST_USED_GRANULARITY`] ago (by any node).
    async fn touch_token(&self, id: TokenId) -> StoreResult<()>;
    /// Deletes the token; false when there was none with this id.
    async fn revoke_token(&self, id: TokenId) -> StoreResult<bool>;
}

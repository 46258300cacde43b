//! The store's errors, and how they reach callers of the `Store` trait.
//!
//! Messages name what failed and never the connection string: sqlx's own errors
//! carry the server's message or the IO error, not the URL it was given.

use herald_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("PostgreSQL: {0}")]
    Query(#[from] sqlx::Error),
    #[error(
        "schema name {0:?} must be 1 to 63 ASCII letters, digits or underscores, not starting with a digit"
    )]
    InvalidSchema(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this Herald knows ({known}); upgrade Herald"
    )]
    SchemaTooNew { found: i32, known: i32 },
    #[error("unreadable row: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
}

impl PgError {
    /// True when the server refused the statement itself (a constraint, a
    /// deadlock), as opposed to the connection or the pool failing.
    pub(crate) fn is_statement_error(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(_)))
    }

    /// True when the server aborted the transaction to break a lock cycle
    /// (SQLSTATE 40P01); running it again is expected to succeed.
    pub(crate) fn is_deadlock(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40P01"))
    }
}

impl From<PgError> for StoreError {
    fn from(err: PgError) -> Self {
        match err {
            PgError::Closed | PgError::Query(sqlx::Error::PoolClosed) => StoreError::Closed,
            other => StoreError::Backend(other.to_string()),
        }
    }
}

pub(crate) type PgResult<T> = Result<T, PgError>;

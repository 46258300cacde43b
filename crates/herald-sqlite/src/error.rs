//! Errors of the SQLite store, and how they reach callers of the `Store` trait.
//!
//! Messages name the operation and SQLite's own error text, never a stored or
//! bound value, so no secret or payload can leak through them.

use std::io;
use std::path::{Path, PathBuf};

use herald_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot create the data directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot locate the database file {}: {source}", path.display())]
    Locate { path: PathBuf, source: io::Error },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database is at schema version {found}, newer than this Herald knows ({known}); run a newer Herald"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("cannot encode a value as JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(&'static str),
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        source: io::Error,
    },
    #[error("a store operation panicked; its changes were rolled back")]
    Panicked,
    #[error(
        "the database file {} was removed while the store had it open; \
         nothing can be made durable in it any more",
        path.display()
    )]
    Vanished { path: PathBuf },
}

/// Fails with [`SqliteError::Vanished`] once the database file is gone from
/// its path. SQLite itself would go on writing into the removed file, where
/// no commit survives the process, and a connection that opens the
/// write-ahead log later (by name, on its first read) fails with a bare
/// "disk I/O error".
pub(crate) fn ensure_present(path: &Path) -> Result<(), SqliteError> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(SqliteError::Vanished {
            path: path.to_owned(),
        }),
        // Anything else (a permission change, say) is SQLite's to report.
        _ => Ok(()),
    }
}

impl From<SqliteError> for StoreError {
    fn from(error: SqliteError) -> Self {
        StoreError::Backend(error.to_string())
    }
}

/// Why one store operation did not happen: refused by a rule (its error goes
/// to the caller as is), or a database failure.
#[derive(Debug)]
pub(crate) enum Failure {
    Refused(StoreError),
    Db(SqliteError),
}

impl From<SqliteError> for Failure {
    fn from(error: SqliteError) -> Self {
        Failure::Db(error)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Failure::Db(SqliteError::Sqlite(error))
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(error) => error,
            Failure::Db(error) => error.into(),
        }
    }
}

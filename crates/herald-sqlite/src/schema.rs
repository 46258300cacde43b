//! Opening connections, and the schema with its migrations.
//!
//! The schema version lives in `PRAGMA user_version`: migration `n` (1-based)
//! brings the database to version `n`. All pending migrations run in one
//! transaction, so a crash mid-migration leaves the previous version intact.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::SqliteConfig;
use crate::error::SqliteError;

/// Every migration, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    INITIAL,
    crate::receivers::MIGRATION,
    crate::monitors::MIGRATION,
    crate::event_types::MIGRATION,
    crate::monitors::RUN_NOTIFICATIONS_MIGRATION,
    crate::cleanup::MIGRATION,
    crate::tokens::MIGRATION,
    crate::keys::MIGRATION,
    crate::receivers::UNVERIFIED_CAP_MIGRATION,
    crate::health::MIGRATION,
    crate::flow::MIGRATION,
    crate::work::FAILED_BY_AGE_MIGRATION,
    crate::ordering::MIGRATION,
    crate::work::STATUS_CHECK_MIGRATION,
];

const INITIAL: &str = r#"
CREATE TABLE webhooks (
    id              BLOB PRIMARY KEY,
    name            TEXT NOT NULL,
    url_display     TEXT NOT NULL,
    url_sealed      BLOB NOT NULL,
    secret_sealed   BLOB NOT NULL,
    event_types     TEXT NOT NULL,  -- JSON array of patterns
    project         TEXT,           -- NULL: global
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX webhooks_by_project ON webhooks (project);

-- A rowid table, because payloads can be large.
CREATE TABLE events (
    id          BLOB PRIMARY KEY,
    event_type  TEXT NOT NULL,
    project     TEXT,
    payload     BLOB NOT NULL,  -- the exact bytes that are signed and sent
    properties  TEXT NOT NULL,  -- JSON object of strings
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_created_at ON events (created_at);

-- Small rows, updated often: clustered on the id, with no separate rowid tree.
CREATE TABLE deliveries (
    id                   BLOB PRIMARY KEY,
    event_id             BLOB NOT NULL REFERENCES events (id),
    webhook_id           BLOB NOT NULL REFERENCES webhooks (id),
    event_type           TEXT NOT NULL,  -- copied from the event for listing
    status               TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    failures_in_schedule INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER,        -- pending only: due time, or the end of the lease
    lease_token          INTEGER,        -- the current claim, if any
    last_status_code     INTEGER,
    last_error           TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- The work queue: claims walk it in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, webhook_id) WHERE status = 'pending';
-- The delivery log of a webhook, newest first; also serves deletes of a webhook.
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
-- One webhook's work queue: claims that must skip saturated webhooks seek each
-- other webhook here instead of walking past the skipped ones' backlog.
CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
-- Whether an event is still needed, and foreign key checks when purging events.
CREATE INDEX deliveries_by_event ON deliveries (event_id);
-- Retention: finished deliveries by age.
CREATE INDEX deliveries_finished ON deliveries (created_at) WHERE status <> 'pending';

-- A rowid table, because response bodies can be large; rowid order is log order.
CREATE TABLE attempts (
    id               BLOB PRIMARY KEY,
    delivery_id      BLOB NOT NULL REFERENCES deliveries (id),
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    request_url      TEXT NOT NULL,
    request_headers  TEXT NOT NULL,  -- JSON array of [name, value]
    response_status  INTEGER,
    response_headers TEXT NOT NULL,  -- JSON array of [name, value]
    response_body    TEXT,
    error            TEXT
) STRICT;
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    response   TEXT NOT NULL,  -- JSON of the first publish's answer
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at);
"#;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens (creating if needed) the one connection that writes, in WAL mode, and
/// brings the schema up to date.
pub(crate) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(config.busy_timeout)?;
    // WAL lets readers work while the writer commits; the mode is stored in the file.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteError::Inconsistent(
            "the database refused WAL journal mode",
        ));
    }
    // FULL syncs the WAL on every commit, so a call that returned survives power loss.
    let synchronous = if config.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "cache_size", -32 * 1024)?;
    // Statement journals (a multi-row statement that may need undoing) and
    // sorts stay in memory instead of costing a temporary file write per page.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    rusqlite::vtab::array::load_module(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read-only connection; the writer must have created the database.
pub(crate) fn open_reader(path: &Path, config: &SqliteConfig) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(config.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// The schema version of the database at `path`, read without changing it
/// (`herald doctor`); 0 for a database no migration has run on.
pub fn applied_version(path: &Path) -> Result<i64, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Runs the migrations the database has not seen yet. Running it again is a no-op.
fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = SCHEMA_VERSION;
    if found > known {
        return Err(SqliteError::SchemaTooNew { found, known });
    }
    let done = usize::try_from(found).unwrap_or(0);
    for migration in &MIGRATIONS[done..] {
        tx.execute_batch(migration)?;
    }
    if found != known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(())
}

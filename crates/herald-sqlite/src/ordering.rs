//! Ordered delivery (`herald_store::ordered_key`): a delivery ordered under a
//! key is published *waiting* (no due time, so no claim sees it) while an
//! earlier delivery of the same (webhook, key) is pending, and the oldest
//! waiting one falls due when the one before it finishes. Claims are
//! untouched: the head of each key is the only one of its key with a due
//! time. Everything here runs on the writer, so publishing and finishing
//! never race.

use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqliteError;

/// Migration: each webhook's ordering mode, each event's ordering key, and on
/// each delivery the key it is ordered under with its place in that key's
/// line. The index finds a key's pending deliveries in publish order, one
/// seek whatever the backlog or the number of keys.
pub(crate) const MIGRATION: &str = r#"
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none'
    CHECK (ordering IN ('none', 'key'));
ALTER TABLE events ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;  -- NULL: not ordered
ALTER TABLE deliveries ADD COLUMN ordering_seq INTEGER;
CREATE INDEX deliveries_by_ordering_key ON deliveries (webhook_id, ordering_key, ordering_seq)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
"#;

/// Where a new delivery ordered under `key` goes: its place in the key's line
/// (after the last pending one), and whether it must wait (some delivery of
/// the key is pending ahead of it).
pub(crate) fn place(
    conn: &Connection,
    webhook: WebhookId,
    key: &str,
) -> Result<(i64, bool), SqliteError> {
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT ordering_seq FROM deliveries INDEXED BY deliveries_by_ordering_key \
             WHERE webhook_id = ?1 AND ordering_key = ?2 AND status = 'pending' AND ordering_key IS NOT NULL \
             ORDER BY ordering_seq DESC LIMIT 1",
        )?
        .query_row(params![webhook.as_bytes(), key], |row| row.get(0))
        .optional()?;
    Ok(match last {
        Some(seq) => (seq.saturating_add(1), true),
        None => (0, false),
    })
}

/// After a delivery of (webhook, key) finished: makes the oldest waiting one
/// of the key due now, unless one of the key is due or leased already.
pub(crate) fn release_next(
    conn: &Connection,
    webhook: WebhookId,
    key: &str,
    now: Timestamp,
) -> Result<(), SqliteError> {
    let head: Option<(Vec<u8>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT id, next_attempt_at FROM deliveries INDEXED BY deliveries_by_ordering_key \
             WHERE webhook_id = ?1 AND ordering_key = ?2 AND status = 'pending' AND ordering_key IS NOT NULL \
             ORDER BY ordering_seq LIMIT 1",
        )?
        .query_row(params![webhook.as_bytes(), key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((id, None)) = head {
        conn.prepare_cached(
            "UPDATE deliveries SET next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, now.millis()])?;
    }
    Ok(())
}

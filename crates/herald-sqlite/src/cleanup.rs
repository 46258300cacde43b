//! Bulk work done in bounded batches: deleting a webhook with its deliveries,
//! failing a disabled webhook's pending deliveries, deleting a receiver with
//! its request log.
//!
//! The call that starts such work marks the record in its first write job
//! (`webhooks.deleting`, `webhooks.failing_until`, `receivers.deleting`) and
//! does a first batch there too, so a small backlog is done in one job as
//! before. From the mark on, the work is invisible: a deleting record is gone
//! from every read, and claims skip a webhook whose backlog is being failed or
//! deleted. The rest runs as one write job per [`CLEANUP_BATCH`] rows, so
//! publishes queue behind a few milliseconds of it at a time, never behind all
//! of it. A crash leaves the mark, and [`unfinished`] finds the work again
//! (`Store::finish_cleanups`, which the janitor runs).

use herald_core::id::{ReceiverId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::CLEANUP_BATCH;
use rusqlite::{Connection, params};

use crate::error::{Failure, SqliteError};
use crate::writer::Writer;

/// Appended to the schema's migrations.
pub(crate) const MIGRATION: &str = r#"
-- A deleted webhook stays, hidden from every read, fan-out and claims, until
-- its deliveries are deleted in batches; the last batch deletes the row.
ALTER TABLE webhooks ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
-- A disabled webhook whose pending deliveries created up to this time are
-- being failed in batches; claims skip the webhook meanwhile.
ALTER TABLE webhooks ADD COLUMN failing_until INTEGER;
-- A deleted receiver stays, hidden, until its request log is deleted in batches.
ALTER TABLE receivers ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
"#;

/// One piece of bulk work that runs in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    DeleteWebhook(WebhookId),
    FailBacklog(WebhookId),
    DeleteReceiver(ReceiverId),
}

/// What one batch did.
pub(crate) struct Batch {
    /// Rows deleted or failed.
    pub(crate) rows: u64,
    /// Whether the work is done and its mark removed.
    pub(crate) finished: bool,
}

impl Cleanup {
    /// One write job's worth of the work.
    pub(crate) fn run_batch(self, w: &Writer) -> Result<Batch, Failure> {
        let batch = match self {
            Self::DeleteWebhook(id) => delete_webhook_batch(w, id)?,
            Self::FailBacklog(id) => fail_backlog_batch(w, id)?,
            Self::DeleteReceiver(id) => delete_receiver_batch(w.conn(), id)?,
        };
        Ok(batch)
    }

    /// The first batch, run in the job that set the mark: `None` when it
    /// finished the work, else the work left for further jobs.
    pub(crate) fn start(self, w: &Writer) -> Result<Option<Self>, Failure> {
        Ok((!self.run_batch(w)?.finished).then_some(self))
    }
}

/// Every piece of work a mark says is unfinished.
pub(crate) fn unfinished(conn: &Connection) -> Result<Vec<Cleanup>, Failure> {
    let mut work = Vec::new();
    let mut webhooks = conn.prepare_cached(
        "SELECT id, deleting FROM webhooks WHERE deleting = 1 OR failing_until IS NOT NULL",
    )?;
    for row in webhooks.query_map([], |row| Ok((row.get(0)?, row.get::<_, bool>(1)?)))? {
        let (id, deleting) = row?;
        let id = WebhookId::from_bytes(id);
        // Deleting supersedes failing: the deliveries go either way.
        work.push(if deleting {
            Cleanup::DeleteWebhook(id)
        } else {
            Cleanup::FailBacklog(id)
        });
    }
    let mut receivers = conn.prepare_cached("SELECT id FROM receivers WHERE deleting = 1")?;
    for id in receivers.query_map([], |row| row.get(0))? {
        work.push(Cleanup::DeleteReceiver(ReceiverId::from_bytes(id?)));
    }
    Ok(work)
}

fn batch_limit() -> i64 {
    i64::from(CLEANUP_BATCH)
}

/// Deletes up to a batch of the webhook's deliveries with their attempts; once
/// none are left, the webhook's row.
fn delete_webhook_batch(w: &Writer, id: WebhookId) -> Result<Batch, SqliteError> {
    let conn = w.conn();
    let deliveries: Vec<[u8; 16]> = conn
        .prepare_cached("SELECT id FROM deliveries WHERE webhook_id = ?1 LIMIT ?2")?
        .query_map(params![id.as_bytes(), batch_limit()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut delete_attempts = conn.prepare_cached("DELETE FROM attempts WHERE delivery_id = ?1")?;
    let mut delete_delivery = conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?;
    let mut rows = 0;
    for delivery in &deliveries {
        rows += delete_attempts.execute([delivery])? as u64;
        rows += delete_delivery.execute([delivery])? as u64;
    }
    let finished = deliveries.len() < CLEANUP_BATCH as usize;
    if finished {
        conn.prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND deleting = 1")?
            .execute([id.as_bytes()])?;
        w.invalidate_webhooks();
    }
    Ok(Batch { rows, finished })
}

/// Fails up to a batch of the webhook's pending deliveries created by its
/// `failing_until`; once none are left, clears the mark. Clearing the lease
/// token makes an attempt still in flight stale: it is logged, but cannot move
/// the delivery on.
fn fail_backlog_batch(w: &Writer, id: WebhookId) -> Result<Batch, SqliteError> {
    let conn = w.conn();
    let failed = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, \
             last_error = 'webhook disabled', updated_at = ?2 \
             WHERE id IN (SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                          WHERE d.webhook_id = ?1 AND d.status = 'pending' AND d.created_at <= w.failing_until \
                          LIMIT ?3)",
        )?
        .execute(params![
            id.as_bytes(),
            Timestamp::now().millis(),
            batch_limit()
        ])?;
    let finished = failed < CLEANUP_BATCH as usize;
    if finished {
        conn.prepare_cached("UPDATE webhooks SET failing_until = NULL WHERE id = ?1")?
            .execute([id.as_bytes()])?;
        w.invalidate_webhooks();
    }
    Ok(Batch {
        rows: failed as u64,
        finished,
    })
}

/// Deletes up to a batch of the receiver's logged requests and of its
/// remembered delivery ids; once none are left, the receiver's row.
fn delete_receiver_batch(conn: &Connection, id: ReceiverId) -> Result<Batch, SqliteError> {
    let requests = conn
        .prepare_cached(
            "DELETE FROM receiver_requests WHERE rowid IN \
             (SELECT rowid FROM receiver_requests WHERE receiver_id = ?1 LIMIT ?2)",
        )?
        .execute(params![id.as_bytes(), batch_limit()])?;
    let delivery_ids = conn
        .prepare_cached(
            "DELETE FROM receiver_delivery_ids WHERE receiver_id = ?1 AND delivery_id IN \
             (SELECT delivery_id FROM receiver_delivery_ids WHERE receiver_id = ?1 LIMIT ?2)",
        )?
        .execute(params![id.as_bytes(), batch_limit()])?;
    let limit = CLEANUP_BATCH as usize;
    let finished = requests < limit && delivery_ids < limit;
    if finished {
        conn.prepare_cached("DELETE FROM receivers WHERE id = ?1 AND deleting = 1")?
            .execute([id.as_bytes()])?;
    }
    Ok(Batch {
        rows: (requests + delivery_ids) as u64,
        finished,
    })
}

//! Bulk work done in short statements of a bounded batch each: deleting a
//! webhook with its deliveries, failing a disabled webhook's pending
//! deliveries, deleting a receiver with its request log.
//!
//! The call that starts such work marks the record first, in its own short
//! transaction (`webhooks.deleting`, `webhooks.failing_until`,
//! `receivers.deleting`, migration 7). From then on the work is invisible on
//! every node: a deleting record is gone from every read, and claims skip a
//! webhook that is being deleted or whose backlog is being failed. Each batch
//! then is one statement of at most [`CLEANUP_BATCH`] deliveries or log rows
//! (their attempts go with them, `ON DELETE CASCADE`), so no transaction grows
//! with the backlog and no lock is held long. A crash leaves the mark, and
//! [`finish_all`] finds the work again (`Store::finish_cleanups`).

use herald_core::id::{ReceiverId, WebhookId};
use herald_store::CLEANUP_BATCH;
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgResult;
use crate::pool::Pool;

/// One piece of bulk work that runs in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    DeleteWebhook(WebhookId),
    FailBacklog(WebhookId),
    DeleteReceiver(ReceiverId),
}

impl Cleanup {
    /// Runs the work to its end, one statement per batch; returns the rows it
    /// deleted or failed (a webhook's attempts not counted).
    pub(crate) async fn run(self, pool: &Pool) -> PgResult<u64> {
        let mut rows = 0;
        loop {
            let (picked, finished) = match self {
                Self::DeleteWebhook(id) => delete_webhook_batch(pool, id).await?,
                Self::FailBacklog(id) => fail_backlog_batch(pool, id).await?,
                Self::DeleteReceiver(id) => delete_receiver_batch(pool, id).await?,
            };
            rows += picked;
            if finished {
                return Ok(rows);
            }
        }
    }
}

/// Every piece of work a mark says is unfinished, run to its end.
pub(crate) async fn finish_all(pool: &Pool) -> PgResult<u64> {
    let found = sqlx::query(
        "SELECT id, deleting, false AS receiver FROM webhooks WHERE deleting OR failing_until IS NOT NULL \
         UNION ALL SELECT id, true, true FROM receivers WHERE deleting",
    )
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    let mut rows = 0;
    for row in &found {
        let id = row.try_get("id")?;
        let work = match (row.try_get("receiver")?, row.try_get("deleting")?) {
            (true, _) => Cleanup::DeleteReceiver(ReceiverId(id)),
            // Deleting supersedes failing: the deliveries go either way.
            (false, true) => Cleanup::DeleteWebhook(WebhookId(id)),
            (false, false) => Cleanup::FailBacklog(WebhookId(id)),
        };
        rows += work.run(pool).await?;
    }
    Ok(rows)
}

fn batch_limit() -> i64 {
    i64::from(CLEANUP_BATCH)
}

/// Runs one batch's statement, which takes the record's id as `$1` and the
/// batch size as `$2` and answers two counts.
async fn batch_counts(pool: &Pool, statement: &'static str, id: Uuid) -> PgResult<(i64, i64)> {
    let row = sqlx::query(statement)
        .bind(id)
        .bind(batch_limit())
        .fetch_one(&mut *pool.acquire().await?)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Whether a batch that picked `picked` rows may have left some behind.
fn was_full(picked: i64) -> bool {
    picked >= batch_limit()
}

/// Deletes up to a batch of the webhook's deliveries; after a short batch, the
/// webhook itself, with whatever few deliveries a racing writer added.
async fn delete_webhook_batch(pool: &Pool, id: WebhookId) -> PgResult<(u64, bool)> {
    let picked: i64 = sqlx::query_scalar(
        "WITH picked AS (SELECT id FROM deliveries WHERE webhook_id = $1 LIMIT $2), \
         deleted AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM picked) RETURNING 1) \
         SELECT count(*) FROM deleted",
    )
    .bind(id.0)
    .bind(batch_limit())
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    if was_full(picked) {
        return Ok((picked.unsigned_abs(), false));
    }
    sqlx::query("DELETE FROM webhooks WHERE id = $1 AND deleting")
        .bind(id.0)
        .execute(&mut *pool.acquire().await?)
        .await?;
    Ok((picked.unsigned_abs(), true))
}

/// Fails up to a batch of the webhook's pending deliveries created by its
/// `failing_until`; after a short batch, clears the mark unless one is left.
/// Clearing the lease token makes an attempt still in flight stale: it is
/// logged, but cannot move the delivery on.
async fn fail_backlog_batch(pool: &Pool, id: WebhookId) -> PgResult<(u64, bool)> {
    let (picked, failed) = batch_counts(
        pool,
        "WITH picked AS ( \
             SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.webhook_id = $1 AND d.status = 'pending' AND d.created_at <= w.failing_until \
             LIMIT $2 \
         ), failed AS ( \
             UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, \
                 last_error = 'webhook disabled', updated_at = herald_now_ms() \
             WHERE id IN (SELECT id FROM picked) AND status = 'pending' \
             RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM failed)",
        id.0,
    )
    .await?;
    if was_full(picked) {
        return Ok((failed.unsigned_abs(), false));
    }
    let cleared = sqlx::query(
        "UPDATE webhooks w SET failing_until = NULL WHERE w.id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending' \
             AND d.created_at <= w.failing_until)",
    )
    .bind(id.0)
    .execute(&mut *pool.acquire().await?)
    .await?;
    let gone: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND failing_until IS NOT NULL)",
    )
    .bind(id.0)
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    Ok((failed.unsigned_abs(), cleared.rows_affected() > 0 || gone))
}

/// Deletes up to a batch of the receiver's logged requests and of its
/// remembered delivery ids; after a short batch, the receiver itself.
async fn delete_receiver_batch(pool: &Pool, id: ReceiverId) -> PgResult<(u64, bool)> {
    let (requests, delivery_ids) = batch_counts(
        pool,
        "WITH requests AS ( \
             DELETE FROM receiver_requests WHERE id IN \
                 (SELECT id FROM receiver_requests WHERE receiver_id = $1 LIMIT $2) RETURNING 1 \
         ), delivery_ids AS ( \
             DELETE FROM receiver_delivery_ids WHERE receiver_id = $1 AND delivery_id IN \
                 (SELECT delivery_id FROM receiver_delivery_ids WHERE receiver_id = $1 LIMIT $2) RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM delivery_ids)",
        id.0,
    )
    .await?;
    let rows = (requests + delivery_ids).unsigned_abs();
    if was_full(requests) || was_full(delivery_ids) {
        return Ok((rows, false));
    }
    sqlx::query("DELETE FROM receivers WHERE id = $1 AND deleting")
        .bind(id.0)
        .execute(&mut *pool.acquire().await?)
        .await?;
    Ok((rows, true))
}

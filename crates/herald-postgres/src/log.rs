//! The delivery log: reading deliveries with their attempts, and requeueing them.

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{DeliveryDetail, DeliveryPage, DeliveryQuery, DeliveryRecord, RECOVER_BATCH};
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgResult;
use crate::pool::Pool;
use crate::rows::{self, attempt_columns, delivery_columns, event_columns};

pub(crate) async fn get_delivery(pool: &Pool, id: DeliveryId) -> PgResult<Option<DeliveryDetail>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        ", ",
        event_columns!(),
        " FROM deliveries d JOIN events e ON e.id = d.event_id \
          JOIN webhooks w ON w.id = d.webhook_id AND NOT w.deleting WHERE d.id = $1"
    ))
    .bind(id.0)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?
    else {
        return Ok(None);
    };
    let attempts = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM attempts a WHERE a.delivery_id = $1 ORDER BY a.seq"
    ))
    .bind(id.0)
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    Ok(Some(DeliveryDetail {
        delivery: rows::delivery(&row)?,
        event: rows::event(&row)?,
        attempts: attempts
            .iter()
            .map(rows::attempt)
            .collect::<PgResult<_>>()?,
    }))
}

pub(crate) async fn list_deliveries(pool: &Pool, query: DeliveryQuery) -> PgResult<DeliveryPage> {
    let limit = query.limit.max(1);
    // One row more than asked tells whether another page follows.
    let found = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d \
          WHERE d.webhook_id = $1 \
            AND ($2::text IS NULL OR d.status = $2) \
            AND ($3::bigint IS NULL OR d.created_at >= $3) \
            AND ($4::bigint IS NULL OR d.created_at < $4) \
            AND ($5::uuid IS NULL OR d.id < $5) \
            AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND w.deleting) \
          ORDER BY d.id DESC LIMIT $6"
    ))
    .bind(query.webhook_id.0)
    .bind(query.status.map(|s| s.as_str()))
    .bind(query.since.map(Timestamp::millis))
    .bind(query.until.map(Timestamp::millis))
    .bind(query.cursor.map(|c| c.0))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    let mut items: Vec<DeliveryRecord> =
        found.iter().map(rows::delivery).collect::<PgResult<_>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(DeliveryPage { items, next_cursor })
}

/// Requeues a delivery now with a fresh schedule, unless it is pending under a
/// lease that has not ended (it is being attempted) or waiting behind an
/// earlier delivery of its ordering key (it goes in its turn): then it stays
/// as it is. A finished delivery goes again outside its key's order
/// (`ordering_key` cleared): it is an old event sent again on request, and
/// must neither wait for the key's newer events nor hold them up.
pub(crate) async fn redeliver(pool: &Pool, id: DeliveryId) -> PgResult<Option<DeliveryRecord>> {
    let requeued = sqlx::query(concat!(
        "UPDATE deliveries d SET status = 'pending', next_attempt_at = herald_now_ms(), failures_in_schedule = 0, \
         lease_token = NULL, updated_at = herald_now_ms(), \
         ordering_key = CASE WHEN d.status = 'pending' THEN d.ordering_key END \
         WHERE d.id = $1 AND d.webhook_id NOT IN (SELECT id FROM webhooks WHERE deleting) \
           AND NOT (d.status = 'pending' AND d.lease_token IS NOT NULL AND d.next_attempt_at > herald_now_ms()) \
           AND NOT (d.status = 'pending' AND d.next_attempt_at IS NULL) \
         RETURNING ",
        delivery_columns!()
    ))
    .bind(id.0)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?;
    if let Some(row) = requeued {
        return rows::delivery(&row).map(Some);
    }
    let leased = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d WHERE d.id = $1 AND d.webhook_id NOT IN (SELECT id FROM webhooks WHERE deleting)"
    ))
    .bind(id.0)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?;
    leased.as_ref().map(rows::delivery).transpose()
}

/// One batch of a recovery, one short statement: picks up to `$4` failed
/// deliveries of the webhook created at or after `$3` with ids after `$2`, in id
/// order, and requeues those still failed (a concurrent redelivery may have
/// moved one on since the pick). It reports how many it picked, so a short pick
/// (not a short update) ends the walk, and the last id picked, where the next
/// batch starts. Like a redelivery, a recovered delivery goes outside its
/// key's order.
const RECOVER_BATCH_SQL: &str = "WITH picked AS ( \
         SELECT id FROM deliveries \
         WHERE webhook_id = $1 AND id > $2 AND status = 'failed' AND created_at >= $3 \
           AND webhook_id NOT IN (SELECT id FROM webhooks WHERE deleting) \
         ORDER BY id LIMIT $4 \
     ), requeued AS ( \
         UPDATE deliveries SET status = 'pending', next_attempt_at = herald_now_ms(), \
             failures_in_schedule = 0, lease_token = NULL, updated_at = herald_now_ms(), \
             ordering_key = NULL \
         WHERE id IN (SELECT id FROM picked) AND status = 'failed' \
         RETURNING 1 \
     ) \
     SELECT (SELECT count(*) FROM picked) AS picked, \
            (SELECT count(*) FROM requeued) AS requeued, \
            (SELECT id FROM picked ORDER BY id DESC LIMIT 1) AS last";

/// Requeues in batches of [`RECOVER_BATCH`], each its own statement, so a large
/// backlog never becomes a long transaction. The walk goes by id, so a delivery
/// that fails again while the recovery runs lies behind the cursor and is not
/// requeued twice.
pub(crate) async fn recover(pool: &Pool, webhook: WebhookId, since: Timestamp) -> PgResult<u64> {
    let batch = i64::from(RECOVER_BATCH);
    let mut after = Uuid::nil();
    let mut total = 0;
    loop {
        let row = sqlx::query(RECOVER_BATCH_SQL)
            .bind(webhook.0)
            .bind(after)
            .bind(since.millis())
            .bind(batch)
            .fetch_one(&mut *pool.acquire().await?)
            .await?;
        let picked: i64 = row.try_get("picked")?;
        let requeued: i64 = row.try_get("requeued")?;
        total += requeued.unsigned_abs();
        match row.try_get::<Option<Uuid>, _>("last")? {
            Some(last) if picked >= batch => after = last,
            _ => return Ok(total),
        }
    }
}

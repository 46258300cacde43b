//! The delivery log: reading deliveries with their attempts, and queueing them
//! again (redelivery, recovery).

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{
    DeliveryDetail, DeliveryPage, DeliveryQuery, DeliveryRecord, DeliveryStatus, RECOVER_BATCH,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Failure, SqliteError};
use crate::rows::{
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS, attempt_from_row, delivery_from_row,
    event_from_row,
};
use crate::writer::Writer;

/// Hides the deliveries of a webhook being deleted from every read.
const OF_A_KEPT_WEBHOOK: &str =
    "AND webhook_id NOT IN (SELECT id FROM webhooks WHERE deleting = 1)";

/// Sorts after every UUID: the cursor of the first page.
const AFTER_ALL_IDS: [u8; 16] = [0xff; 16];
/// Sorts before every UUID: where a recovery's walk starts.
pub(crate) const BEFORE_ALL_IDS: [u8; 16] = [0x00; 16];

pub(crate) fn get_delivery(
    conn: &mut Connection,
    id: DeliveryId,
) -> Result<Option<DeliveryDetail>, Failure> {
    // One read transaction, so the delivery, its event and its attempts agree.
    let tx = conn.transaction()?;
    let Some(delivery) = find(&tx, id)? else {
        return Ok(None);
    };
    let event = tx
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
        .query_row([delivery.event_id.as_bytes()], |row| event_from_row(row, 0))?;
    let attempts = tx
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ?1 ORDER BY rowid"
        ))?
        .query_map([id.as_bytes()], attempt_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(Some(DeliveryDetail {
        delivery,
        event,
        attempts,
    }))
}

/// A delivery, unless its webhook is being deleted.
fn find(conn: &Connection, id: DeliveryId) -> Result<Option<DeliveryRecord>, SqliteError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1 {OF_A_KEPT_WEBHOOK}"
        ))?
        .query_row([id.as_bytes()], delivery_from_row)
        .optional()?)
}

/// Newest first. Ids are time-ordered, so "before the cursor" is "older than
/// the last item shown", and the walk follows the (webhook_id, id) index.
pub(crate) fn list_deliveries(
    conn: &Connection,
    query: &DeliveryQuery,
) -> Result<DeliveryPage, Failure> {
    let limit = query.limit.max(1);
    let cursor = query.cursor.map_or(AFTER_ALL_IDS, |id| *id.as_bytes());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries \
         WHERE webhook_id = ?1 AND id < ?2 \
           AND (?3 IS NULL OR status = ?3) \
           AND (?4 IS NULL OR created_at >= ?4) \
           AND (?5 IS NULL OR created_at < ?5) {OF_A_KEPT_WEBHOOK} \
         ORDER BY id DESC LIMIT ?6"
    ))?;
    let mut items: Vec<DeliveryRecord> = stmt
        .query_map(
            params![
                query.webhook_id.as_bytes(),
                cursor,
                query.status.map(DeliveryStatus::as_str),
                query.since.map(Timestamp::millis),
                query.until.map(Timestamp::millis),
                // One more than asked tells whether another page follows.
                i64::from(limit) + 1,
            ],
            delivery_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(DeliveryPage { items, next_cursor })
}

/// Queues one more attempt now with a fresh schedule, unless the delivery is
/// leased right now.
pub(crate) fn redeliver(w: &Writer, id: DeliveryId) -> Result<Option<DeliveryRecord>, Failure> {
    let conn = w.conn();
    let now = Timestamp::now();
    let Some(current) = find(conn, id)? else {
        return Ok(None);
    };
    if is_leased(conn, &current, now)? {
        return Ok(Some(current));
    }
    if current.status == DeliveryStatus::Pending && current.next_attempt_at.is_none() {
        // Waiting behind an earlier delivery of its ordering key: it goes in
        // its turn, not before.
        return Ok(Some(current));
    }
    // A finished delivery goes again outside its key's order
    // (`ordering_key` cleared): it is an old event sent again on request,
    // and must neither wait for the key's newer events nor hold them up.
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, failures_in_schedule = 0, \
         lease_token = NULL, updated_at = ?2, \
         ordering_key = CASE WHEN status = 'pending' THEN ordering_key END WHERE id = ?1",
    )?
    .execute(params![id.as_bytes(), now.millis()])?;
    Ok(find(conn, id)?)
}

fn is_leased(
    conn: &Connection,
    delivery: &DeliveryRecord,
    now: Timestamp,
) -> Result<bool, SqliteError> {
    if delivery.status != DeliveryStatus::Pending
        || delivery.next_attempt_at.is_none_or(|at| at <= now)
    {
        return Ok(false);
    }
    let token: Option<i64> = conn
        .prepare_cached("SELECT lease_token FROM deliveries WHERE id = ?1")?
        .query_row([delivery.id.as_bytes()], |row| row.get(0))?;
    Ok(token.is_some())
}

/// What one batch of a recovery did.
pub(crate) struct RecoverBatch {
    pub(crate) requeued: u64,
    /// The id to resume after when the batch was full; `None` once the walk is
    /// done.
    pub(crate) resume_after: Option<[u8; 16]>,
}

/// One write job of a recovery: requeues up to [`RECOVER_BATCH`] failed
/// deliveries of the webhook, created at or after `since`, with ids after
/// `after`, in id order. Walking by id rather than by status means a delivery
/// that fails again while the recovery runs lies behind the cursor and is not
/// requeued a second time.
pub(crate) fn recover_batch(
    w: &Writer,
    webhook: WebhookId,
    since: Timestamp,
    after: [u8; 16],
) -> Result<RecoverBatch, Failure> {
    let conn = w.conn();
    // Selecting the ids first makes a short batch mean "no failed deliveries
    // left", however many other deliveries the walk passed over.
    let ids: Vec<[u8; 16]> = conn
        .prepare_cached(&format!(
            "SELECT id FROM deliveries WHERE webhook_id = ?1 AND id > ?2 AND status = 'failed' \
                 AND created_at >= ?3 {OF_A_KEPT_WEBHOOK} ORDER BY id LIMIT ?4"
        ))?
        .query_map(
            params![
                webhook.as_bytes(),
                after,
                since.millis(),
                i64::from(RECOVER_BATCH)
            ],
            |row| row.get(0),
        )?
        .collect::<Result<_, _>>()?;
    let now = Timestamp::now();
    // Like a redelivery, a recovered delivery goes outside its key's order.
    let mut requeue = conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, failures_in_schedule = 0, \
         lease_token = NULL, updated_at = ?2, ordering_key = NULL WHERE id = ?1",
    )?;
    let mut requeued = 0;
    for id in &ids {
        requeued += requeue.execute(params![id, now.millis()])? as u64;
    }
    let resume_after = if ids.len() < RECOVER_BATCH as usize {
        None
    } else {
        ids.last().copied()
    };
    Ok(RecoverBatch {
        requeued,
        resume_after,
    })
}

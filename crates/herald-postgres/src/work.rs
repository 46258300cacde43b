//! Delivery work: claiming due deliveries by lease, and recording attempts.
//!
//! A claim is one statement: a CTE picks the due deliveries in due order with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers on any node pass over each
//! other's rows instead of waiting or sharing them, and moves each one's
//! `next_attempt_at` to the end of its lease with a fresh token from a
//! sequence. A claimer that reads a row another one has just leased re-checks
//! it against the new `next_attempt_at`, finds it no longer due, and skips it.

use std::time::Duration;

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, Backlog, ClaimRequest, ClaimedDelivery, FinishedCounts, LeaseToken, NextStep,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::cleanup::Cleanup;
use crate::error::{PgError, PgResult};
use crate::floor::{DueFloor, above_floor};
use crate::pool::Pool;
use crate::rows::{self, event_columns, millis, text_without_nul, webhook_columns};
use crate::{health, ordering, webhooks};

/// Leases the rows picked by the `due` CTE given, and returns them with their
/// event and webhook.
macro_rules! claim {
    ($due:expr) => {
        concat!(
            "WITH due AS (",
            $due,
            "), claimed AS ( \
                 UPDATE deliveries d \
                 SET next_attempt_at = herald_now_ms() + $3, lease_token = nextval('lease_tokens') \
                 FROM due WHERE d.id = due.id \
                 RETURNING d.id, d.event_id, d.webhook_id, d.lease_token, d.attempts, d.failures_in_schedule, \
                           due.next_attempt_at AS was_due \
             ) \
             SELECT c.id AS d_id, c.lease_token AS d_lease_token, c.attempts AS d_attempts, \
                    c.failures_in_schedule AS d_failures_in_schedule, c.was_due AS d_was_due, ",
            event_columns!(),
            ", ",
            webhook_columns!(),
            " FROM claimed c JOIN events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id \
             ORDER BY c.was_due, c.id"
        )
    };
}

/// The oldest due deliveries, whatever their webhook. `$2` is unused here.
const CLAIM: &str = claim!(concat!(
    "SELECT id, next_attempt_at FROM deliveries \
     WHERE status = 'pending' AND ",
    above_floor!("$4"),
    " AND next_attempt_at <= herald_now_ms() \
       AND cardinality($2::uuid[]) = 0 \
     ORDER BY next_attempt_at, id \
     LIMIT $1 \
     FOR UPDATE SKIP LOCKED"
));

/// Due deliveries of every webhook not in `$2`, one index seek per webhook.
/// Walking the global queue with the skipped webhooks filtered out would cost
/// as much as their whole backlog on every claim, and a saturated webhook (a
/// hanging receiver) usually has the biggest backlog of all; so does a webhook
/// being deleted, or whose backlog is being failed, which are skipped too.
const CLAIM_SKIPPING: &str = claim!(concat!(
    "SELECT d.id, d.next_attempt_at FROM webhooks w \
     CROSS JOIN LATERAL ( \
         SELECT id, next_attempt_at FROM deliveries \
         WHERE webhook_id = w.id AND status = 'pending' AND ",
    above_floor!("$4"),
    " AND next_attempt_at <= herald_now_ms() \
         ORDER BY next_attempt_at, id \
         LIMIT $1 \
         FOR UPDATE SKIP LOCKED \
     ) d \
     WHERE w.id <> ALL($2) AND NOT w.deleting AND w.failing_until IS NULL \
     LIMIT $1"
));

/// The oldest due delivery of each webhook in `$2` whose probe this claim
/// took (`health::take_probe`).
const CLAIM_PROBES: &str = claim!(concat!(
    "SELECT d.id, d.next_attempt_at FROM webhooks w \
     CROSS JOIN LATERAL ( \
         SELECT id, next_attempt_at FROM deliveries \
         WHERE webhook_id = w.id AND status = 'pending' AND ",
    above_floor!("$4"),
    " AND next_attempt_at <= herald_now_ms() \
         ORDER BY next_attempt_at, id \
         LIMIT 1 \
         FOR UPDATE SKIP LOCKED \
     ) d \
     WHERE w.id = ANY($2) AND NOT w.deleting AND w.failing_until IS NULL \
     LIMIT $1"
));

pub(crate) async fn claim_due(
    pool: &Pool,
    floor: &DueFloor,
    request: ClaimRequest,
) -> PgResult<Vec<ClaimedDelivery>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let view = health::claim_view(pool).await?;
    let walk = Walk {
        lease: millis(request.lease),
        floor: floor.get(pool).await,
    };
    let mut skip: Vec<Uuid> = request
        .skip_webhooks
        .iter()
        .map(WebhookId::as_uuid)
        .collect();
    let mut probes = Vec::new();
    for (id, seen) in &view.probes {
        if probes.len() < request.limit
            && !skip.contains(&id.0)
            && health::take_probe(pool, *id, seen, walk.lease, walk.floor).await?
        {
            probes.push(id.0);
        }
    }
    let mut claimed = Vec::new();
    if !probes.is_empty() {
        claimed = run_claim(pool, CLAIM_PROBES, probes.len(), &probes, walk).await?;
    }
    skip.extend(view.closed.iter().map(WebhookId::as_uuid));
    skip.extend(view.probes.iter().map(|(id, _)| id.0));
    let room = request.limit.saturating_sub(claimed.len());
    if room > 0 {
        let statement = if skip.is_empty() && !view.hides {
            CLAIM
        } else {
            CLAIM_SKIPPING
        };
        claimed.extend(run_claim(pool, statement, room, &skip, walk).await?);
    }
    Ok(claimed)
}

/// What every claim statement of one claim binds besides its webhooks.
#[derive(Clone, Copy)]
struct Walk {
    /// The lease's length, in milliseconds.
    lease: i64,
    /// The due floor, where the walk starts.
    floor: i64,
}

async fn run_claim(
    pool: &Pool,
    statement: &'static str,
    limit: usize,
    webhooks: &[Uuid],
    walk: Walk,
) -> PgResult<Vec<ClaimedDelivery>> {
    let found = sqlx::query(statement)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(webhooks)
        .bind(walk.lease)
        .bind(walk.floor)
        .fetch_all(&mut *pool.acquire().await?)
        .await?;
    found.iter().map(claimed).collect()
}

fn claimed(row: &PgRow) -> PgResult<ClaimedDelivery> {
    let attempts: i32 = row.try_get("d_attempts")?;
    let failures: i32 = row.try_get("d_failures_in_schedule")?;
    let counter = |value: i32| {
        u32::try_from(value).map_err(|_| PgError::Corrupt(format!("negative counter {value}")))
    };
    Ok(ClaimedDelivery {
        delivery_id: DeliveryId(row.try_get("d_id")?),
        lease: LeaseToken(row.try_get("d_lease_token")?),
        attempt_number: counter(attempts)?.saturating_add(1),
        failures_in_schedule: counter(failures)?,
        due_at: Timestamp(row.try_get("d_was_due")?),
        event: rows::event(row)?,
        webhook: rows::webhook(row)?,
    })
}

/// Drops a current lease and makes the delivery due now; nothing else changes.
pub(crate) async fn release(
    pool: &Pool,
    delivery: DeliveryId,
    lease: LeaseToken,
) -> PgResult<bool> {
    let released = sqlx::query(
        "UPDATE deliveries SET next_attempt_at = herald_now_ms(), lease_token = NULL, \
         updated_at = herald_now_ms() WHERE id = $1 AND lease_token = $2",
    )
    .bind(delivery.as_uuid())
    .bind(lease.0)
    .execute(&mut *pool.acquire().await?)
    .await?;
    Ok(released.rows_affected() == 1)
}

/// Moves a delivery on after an attempt, if the lease is still current. The
/// token is cleared in every case, so a lease moves its delivery on only once.
/// A current token implies a pending delivery (migration 6); naming the status
/// as well would let a stale-statistics plan look the id up in a partial index.
const MOVE_ON: &str = "UPDATE deliveries SET \
         status = $3, \
         attempts = attempts + 1, \
         failures_in_schedule = failures_in_schedule + $7, \
         next_attempt_at = CASE WHEN $3 = 'pending' THEN herald_now_ms() + $4 END, \
         lease_token = NULL, \
         last_status_code = $5, \
         last_error = $6, \
         updated_at = herald_now_ms() \
     WHERE id = $1 AND lease_token = $2 \
     RETURNING webhook_id";

pub(crate) async fn record_attempt(pool: &Pool, outcome: AttemptOutcome) -> PgResult<bool> {
    let attempt = &outcome.attempt;
    let error = attempt.error.as_deref().map(text_without_nul);
    let mut tx = pool.begin().await?;
    // An ordered delivery that finishes lets the next of its line go: its
    // line is locked first (`crate::ordering`). A 410 fails the whole
    // backlog instead.
    let line = if matches!(outcome.next, NextStep::Succeeded | NextStep::Failed) {
        let line = ordering::lines_of(&mut tx, &[attempt.delivery_id.0])
            .await?
            .remove(&attempt.delivery_id.0);
        ordering::lock(&mut tx, line.as_slice()).await?;
        line
    } else {
        None
    };
    if matches!(outcome.next, NextStep::FailedAndDisableWebhook { .. }) {
        lock_webhook_of(&mut tx, attempt.delivery_id).await?;
    }
    // Locking the delivery first keeps a concurrent delete (of its webhook) from
    // slipping in between; one already deleted leaves no log to append to.
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM deliveries WHERE id = $1 FOR NO KEY UPDATE")
            .bind(attempt.delivery_id.0)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, request_url, request_headers, \
         response_status, response_headers, response_body, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(attempt.id.0)
    .bind(attempt.delivery_id.0)
    .bind(i32::try_from(attempt.number).unwrap_or(i32::MAX))
    .bind(attempt.started_at.millis())
    .bind(i32::try_from(attempt.duration_ms).unwrap_or(i32::MAX))
    .bind(text_without_nul(&attempt.request_url).as_ref())
    .bind(rows::to_json(&attempt.request_headers))
    .bind(attempt.response_status.map(i32::from))
    .bind(rows::to_json(&attempt.response_headers))
    .bind(attempt.response_body.as_deref().map(str::as_bytes))
    .bind(error.as_deref())
    .execute(&mut *tx)
    .await?;

    let step = outcome.next.moved_on();
    let moved: Option<Uuid> = sqlx::query_scalar(MOVE_ON)
        .bind(attempt.delivery_id.0)
        .bind(outcome.lease.0)
        .bind(step.status.as_str())
        .bind(step.retry_in.map(millis))
        .bind(attempt.response_status.map(i32::from))
        .bind(error.as_deref())
        .bind(i32::from(step.uses_a_retry))
        .fetch_optional(&mut *tx)
        .await?;
    if moved.is_some()
        && let Some(line) = line
    {
        ordering::release_next(&mut tx, &[line]).await?;
    }
    let disabled = match (moved, &outcome.next) {
        (Some(webhook), NextStep::FailedAndDisableWebhook { reason }) => {
            let webhook = WebhookId(webhook);
            webhooks::disable_in(&mut tx, webhook, reason).await?;
            Some(webhook)
        }
        _ => None,
    };
    tx.commit().await?;
    if let Some(webhook) = disabled {
        Cleanup::FailBacklog(webhook).run(pool).await?;
    }
    Ok(moved.is_some())
}

/// Takes the webhook's row lock before any delivery's, the order every webhook
/// change (disable, delete) uses, so a 410 racing a user's disable cannot deadlock.
async fn lock_webhook_of(conn: &mut PgConnection, delivery: DeliveryId) -> PgResult<()> {
    sqlx::query(
        "SELECT 1 FROM webhooks WHERE id = (SELECT webhook_id FROM deliveries WHERE id = $1) FOR NO KEY UPDATE",
    )
    .bind(delivery.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The pending deliveries by state: range counts over the `deliveries_due`
/// index, reading rows only within the lease horizon (`$1` ms) to tell
/// leased ones from scheduled retries.
pub(crate) async fn backlog(pool: &Pool, longest_lease: Duration) -> PgResult<Backlog> {
    let row = sqlx::query(
        "SELECT \
           (SELECT count(*) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= herald_now_ms()) AS due, \
           (SELECT count(*) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at > herald_now_ms()) AS later, \
           (SELECT count(*) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at > herald_now_ms() \
               AND next_attempt_at <= herald_now_ms() + $1 AND lease_token IS NOT NULL) AS leased, \
           (SELECT count(*) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at IS NULL) AS waiting, \
           (SELECT min(next_attempt_at) FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= herald_now_ms()) AS oldest",
    )
    .bind(millis(longest_lease))
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    let count = |column: &str| -> PgResult<u64> {
        let found: i64 = row.try_get(column)?;
        Ok(u64::try_from(found).unwrap_or(0))
    };
    let leased = count("leased")?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(Backlog {
        due: count("due")?,
        scheduled: count("later")?.saturating_sub(leased),
        leased,
        waiting: count("waiting")?,
        oldest_due_at: oldest.map(Timestamp),
    })
}

/// Finished deliveries created within `window` of the database's now, by
/// outcome: two range counts, over `deliveries_finished` (both outcomes) and
/// `deliveries_failed` (migration 13), each answerable from its index alone.
pub(crate) async fn finished_within(pool: &Pool, window: Duration) -> PgResult<FinishedCounts> {
    let row = sqlx::query(
        "SELECT \
           (SELECT count(*) FROM deliveries \
             WHERE status <> 'pending' AND created_at >= herald_now_ms() - $1) AS finished, \
           (SELECT count(*) FROM deliveries \
             WHERE status = 'failed' AND created_at >= herald_now_ms() - $1) AS failed",
    )
    .bind(millis(window))
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    let count = |column: &str| -> PgResult<u64> {
        let found: i64 = row.try_get(column)?;
        Ok(u64::try_from(found).unwrap_or(0))
    };
    let failed = count("failed")?;
    Ok(FinishedCounts {
        succeeded: count("finished")?.saturating_sub(failed),
        failed,
    })
}

/// When the earliest pending delivery at or above the due floor falls due.
pub(crate) async fn next_due_at(pool: &Pool, floor: &DueFloor) -> PgResult<Option<Timestamp>> {
    let floor = floor.get(pool).await;
    let due: Option<i64> = sqlx::query_scalar(concat!(
        "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending' AND ",
        above_floor!("$1"),
    ))
    .bind(floor)
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    Ok(due.map(Timestamp))
}

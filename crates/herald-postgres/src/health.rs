//! Endpoint health, stored with each webhook: noting an attempt's signal,
//! and the claim's view of the webhooks whose health gates them. The rule is
//! `herald_store::health`; this file reads rows, applies it by the database's
//! clock and writes what it says.

use std::collections::HashMap;

use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use herald_store::{Gate, HealthChange, HealthPolicy, HealthSignal, WebhookHealth};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::PgResult;
use crate::floor::above_floor;
use crate::pool::Pool;
use crate::rows::{self, text_without_nul};

pub(crate) async fn store(
    conn: &mut PgConnection,
    id: WebhookId,
    health: &WebhookHealth,
) -> PgResult<()> {
    sqlx::query(
        "UPDATE webhooks SET health_state = $2, health_failures = $3, health_pauses = $4, health_until = $5, \
         health_failing_since = $6, health_last_error = $7, health_last_success = $8, \
         health_disabled_reason = $9 WHERE id = $1",
    )
    .bind(id.0)
    .bind(health.state.as_str())
    .bind(i32::try_from(health.consecutive_failures).unwrap_or(i32::MAX))
    .bind(i32::try_from(health.pauses).unwrap_or(i32::MAX))
    .bind(health.until.map(Timestamp::millis))
    .bind(health.failing_since.map(Timestamp::millis))
    .bind(health.last_error.as_deref().map(text_without_nul))
    .bind(health.last_success.map(Timestamp::millis))
    .bind(health.disabled_reason.as_deref().map(text_without_nul))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies the signal under the webhook's row lock, so nodes noting at once
/// take turns and each change is returned to one of them only. A first read
/// without the lock settles the common case, a success that changes nothing,
/// so steady successes neither write nor queue on the webhook's row.
pub(crate) async fn note(
    pool: &Pool,
    id: WebhookId,
    signal: &HealthSignal,
    policy: &HealthPolicy,
) -> PgResult<Vec<HealthChange>> {
    note_seen(pool, id, signal, policy, Seen::Unread).await
}

/// A webhook's health as read without a lock, with the database's clock at
/// the read.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub health: WebhookHealth,
    pub now: Timestamp,
}

/// What an unlocked read found of a webhook whose attempt is to be noted.
#[derive(Debug)]
pub(crate) enum Seen {
    /// Not read (not asked for, or the batch's read failed): [`note_seen`]
    /// reads it.
    Unread,
    /// Gone, or being deleted: nothing to note.
    Gone,
    Read(Found),
}

/// [`note`] with its unlocked read already made (by the record batch, once
/// for all of the batch's attempts of the webhook): only a signal that
/// changes what was read takes the lock and reads again.
pub(crate) async fn note_seen(
    pool: &Pool,
    id: WebhookId,
    signal: &HealthSignal,
    policy: &HealthPolicy,
    seen: Seen,
) -> PgResult<Vec<HealthChange>> {
    let found = match seen {
        Seen::Unread => read(pool, &[id]).await?.remove(&id),
        Seen::Gone => None,
        Seen::Read(found) => Some(found),
    };
    let Some(Found { mut health, now }) = found else {
        return Ok(Vec::new());
    };
    if !health.note(signal, policy, now).changed {
        return Ok(Vec::new());
    }
    note_locked(pool, id, signal, policy).await
}

/// Unlocked reads of the webhooks' health in one statement; webhooks gone or
/// being deleted are absent.
pub(crate) async fn read(pool: &Pool, ids: &[WebhookId]) -> PgResult<HashMap<WebhookId, Found>> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let rows = sqlx::query(concat!(
        "SELECT ",
        rows::webhook_columns!(),
        ", herald_now_ms() AS now_ms FROM webhooks w WHERE w.id = ANY($1) AND NOT w.deleting"
    ))
    .bind(&ids)
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    rows.iter()
        .map(|row| {
            let found = Found {
                health: rows::health(row)?,
                now: Timestamp(row.try_get("now_ms")?),
            };
            Ok((WebhookId(row.try_get("id")?), found))
        })
        .collect()
}

async fn note_locked(
    pool: &Pool,
    id: WebhookId,
    signal: &HealthSignal,
    policy: &HealthPolicy,
) -> PgResult<Vec<HealthChange>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        rows::webhook_columns!(),
        ", herald_now_ms() AS now_ms FROM webhooks w WHERE w.id = $1 AND NOT w.deleting FOR NO KEY UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let mut health = rows::health(&row)?;
    let noted = health.note(signal, policy, Timestamp(row.try_get("now_ms")?));
    if noted.changed {
        store(&mut tx, id, &health).await?;
        tx.commit().await?;
    }
    Ok(noted.changes)
}

/// What the next claim must know about health, at the database's `now`.
pub(crate) struct ClaimView {
    /// Some webhook is being deleted or has its backlog failed.
    pub hides: bool,
    /// Webhooks none of whose deliveries may be claimed now.
    pub closed: Vec<WebhookId>,
    /// Webhooks due a probe, with the health the probe must find unchanged.
    pub probes: Vec<(WebhookId, WebhookHealth)>,
}

pub(crate) async fn claim_view(pool: &Pool) -> PgResult<ClaimView> {
    let head = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM webhooks WHERE deleting OR failing_until IS NOT NULL) AS hides, \
         EXISTS (SELECT 1 FROM webhooks WHERE health_state <> 'healthy') AS unhealthy",
    )
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    let mut view = ClaimView {
        hides: head.try_get("hides")?,
        closed: Vec::new(),
        probes: Vec::new(),
    };
    if !head.try_get::<bool, _>("unhealthy")? {
        return Ok(view);
    }
    let found = sqlx::query(concat!(
        "SELECT ",
        rows::webhook_columns!(),
        ", herald_now_ms() AS now_ms FROM webhooks w WHERE w.health_state <> 'healthy' AND NOT w.deleting"
    ))
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    for row in &found {
        let id = WebhookId(row.try_get("id")?);
        let health = rows::health(row)?;
        match health.gate(Timestamp(row.try_get("now_ms")?)) {
            Gate::Open => {}
            Gate::Closed => view.closed.push(id),
            Gate::Probe => view.probes.push((id, health)),
        }
    }
    Ok(view)
}

/// Marks the webhook probing until `lease` from now, if its health is still
/// `seen` (no other node took the probe) and it has a delivery due at or
/// above the due floor (`crate::floor`), where the claim will look for it.
/// True when this claim owns the probe.
pub(crate) async fn take_probe(
    pool: &Pool,
    id: WebhookId,
    seen: &WebhookHealth,
    lease_ms: i64,
    floor: i64,
) -> PgResult<bool> {
    let taken = sqlx::query(concat!(
        "UPDATE webhooks SET health_state = 'probing', health_until = herald_now_ms() + $4 \
         WHERE id = $1 AND health_state = $2 AND health_until IS NOT DISTINCT FROM $3 \
           AND NOT deleting AND failing_until IS NULL \
           AND EXISTS (SELECT 1 FROM deliveries WHERE webhook_id = $1 AND status = 'pending' AND ",
        above_floor!("$5"),
        " AND next_attempt_at <= herald_now_ms())",
    ))
    .bind(id.0)
    .bind(seen.state.as_str())
    .bind(seen.until.map(Timestamp::millis))
    .bind(lease_ms)
    .bind(floor)
    .execute(&mut *pool.acquire().await?)
    .await?;
    Ok(taken.rows_affected() == 1)
}

//! The work queue: claiming due deliveries by lease, and recording attempts.
//!
//! A claim moves `next_attempt_at` to the end of the lease and sets a fresh
//! random `lease_token`. A lease that runs out therefore leaves the delivery
//! due again, and a late attempt carries a token that no longer matches.

use std::collections::HashMap;
use std::time::Duration;

use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, Backlog, ClaimRequest, ClaimedDelivery, DeliveryStatus, EventRecord,
    FinishedCounts, LeaseToken, NextStep,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cleanup::Cleanup;
use crate::error::{Failure, SqliteError};
use crate::health;
use crate::rows::{ATTEMPT_COLUMNS, EVENT_COLUMNS, event_from_row, small, to_json};
use crate::webhooks::{self, WebhookCache};
use crate::writer::Writer;

struct Due {
    id: DeliveryId,
    event_id: EventId,
    webhook_id: WebhookId,
    attempts: u32,
    failures_in_schedule: u32,
    due_at: Timestamp,
}

pub(crate) fn claim_due(
    w: &Writer,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, Failure> {
    let conn = w.conn();
    let now = Timestamp::now();
    let lease_end = now.saturating_add(request.lease);
    let webhooks = w.webhooks()?;
    let gates = webhooks.gates(now);
    let mut due = claim_probes(w, &webhooks, &gates.probes, request, lease_end, now)?;
    let room = request.limit.saturating_sub(due.len());
    if room > 0 {
        let nothing_passed_over =
            request.skip_webhooks.is_empty() && gates.closed.is_empty() && gates.probes.is_empty();
        if nothing_passed_over && !webhooks.hides_deliveries() {
            due.extend(select_due(conn, room, now)?);
        } else {
            let mut skip = request.skip_webhooks.clone();
            skip.extend(gates.closed);
            skip.extend(gates.probes);
            let request = ClaimRequest {
                limit: room,
                lease: request.lease,
                skip_webhooks: skip,
            };
            due.extend(select_due_skipping(
                conn,
                &webhooks.claimable_ids(),
                &request,
                now,
            )?);
        }
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }

    let mut lease = conn.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2, lease_token = ?3 WHERE id = ?1",
    )?;
    let mut events: HashMap<EventId, EventRecord> = HashMap::new();
    let mut claimed = Vec::with_capacity(due.len());
    for item in due {
        let token: i64 = rand::random();
        lease.execute(params![item.id.as_bytes(), lease_end.millis(), token])?;
        let event = match events.get(&item.event_id) {
            Some(event) => event.clone(),
            None => {
                let event = load_event(conn, item.event_id)?;
                events.insert(item.event_id, event.clone());
                event
            }
        };
        let webhook = webhooks
            .get(item.webhook_id)
            .cloned()
            .ok_or(SqliteError::Inconsistent("a delivery's webhook is missing"))?;
        claimed.push(ClaimedDelivery {
            delivery_id: item.id,
            lease: LeaseToken(token),
            attempt_number: item.attempts.saturating_add(1),
            failures_in_schedule: item.failures_in_schedule,
            due_at: item.due_at,
            event,
            webhook,
        });
    }
    Ok(claimed)
}

/// Takes the probe of each webhook whose pause has ended (and is not
/// skipped): its oldest due delivery, with the webhook marked probing until
/// the lease ends. A webhook with nothing due stays as it is.
fn claim_probes(
    w: &Writer,
    webhooks: &WebhookCache,
    probes: &[WebhookId],
    request: &ClaimRequest,
    lease_end: Timestamp,
    now: Timestamp,
) -> Result<Vec<Due>, Failure> {
    let mut due = Vec::new();
    for id in probes {
        if due.len() >= request.limit {
            break;
        }
        if request.skip_webhooks.contains(id) || !webhooks.is_claimable(*id) {
            continue;
        }
        let Some(hook) = webhooks.get(*id) else {
            continue;
        };
        let probe = ClaimRequest {
            limit: 1,
            lease: request.lease,
            skip_webhooks: Vec::new(),
        };
        let found = select_due_skipping(w.conn(), &[*id], &probe, now)?;
        if found.is_empty() {
            continue;
        }
        let mut health = hook.health.clone();
        health.start_probe(lease_end);
        health::store(w.conn(), *id, &health)?;
        w.invalidate_webhooks();
        due.extend(found);
    }
    Ok(due)
}

const DUE_COLUMNS: &str =
    "id, event_id, webhook_id, attempts, failures_in_schedule, next_attempt_at";

fn due_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Due> {
    Ok(Due {
        id: DeliveryId::from_bytes(row.get(0)?),
        event_id: EventId::from_bytes(row.get(1)?),
        webhook_id: WebhookId::from_bytes(row.get(2)?),
        attempts: small(row, 3)?,
        failures_in_schedule: small(row, 4)?,
        due_at: Timestamp::from_millis(row.get(5)?),
    })
}

/// The oldest due deliveries, whatever their webhook.
///
/// The claim queries bind no `LIMIT`: SQLite plans a statement again whenever
/// a `LIMIT` bound to it changes, and every claim has its own room, so each
/// claim re-prepared its query. The index hands the rows over in due order,
/// and only as many as there is room for are stepped to.
fn select_due(conn: &Connection, limit: usize, now: Timestamp) -> Result<Vec<Due>, SqliteError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DUE_COLUMNS} FROM deliveries \
         WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at"
    ))?;
    let rows = stmt.query_map(params![now.millis()], due_from_row)?;
    Ok(rows.take(limit).collect::<Result<_, _>>()?)
}

/// Due deliveries of every webhook not skipped, one index seek per webhook
/// (with no bound `LIMIT`, as in [`select_due`]).
/// Walking the global queue with the skipped webhooks filtered out would cost
/// as much as their whole backlog on every claim, and a saturated webhook (a
/// hanging receiver) usually has the biggest backlog of all; so does a webhook
/// being deleted, or whose backlog is being failed, which are not in
/// `webhook_ids`.
/// The first webhook asked rotates with the clock, so no webhook is always last.
fn select_due_skipping(
    conn: &Connection,
    webhook_ids: &[WebhookId],
    request: &ClaimRequest,
    now: Timestamp,
) -> Result<Vec<Due>, SqliteError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DUE_COLUMNS} FROM deliveries \
         WHERE webhook_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2 \
         ORDER BY next_attempt_at"
    ))?;
    let mut due = Vec::new();
    let start =
        usize::try_from(now.millis().unsigned_abs()).unwrap_or(0) % webhook_ids.len().max(1);
    let rotated = webhook_ids[start..].iter().chain(&webhook_ids[..start]);
    for id in rotated.filter(|id| !request.skip_webhooks.contains(id)) {
        let room = request.limit.saturating_sub(due.len());
        if room == 0 {
            break;
        }
        let rows = stmt.query_map(params![id.as_bytes(), now.millis()], due_from_row)?;
        for row in rows.take(room) {
            due.push(row?);
        }
    }
    Ok(due)
}

fn load_event(conn: &Connection, id: EventId) -> Result<EventRecord, SqliteError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
        .query_row([id.as_bytes()], |row| event_from_row(row, 0))?)
}

/// Drops a current lease and makes the delivery due now; nothing else changes.
pub(crate) fn release(
    w: &Writer,
    delivery: DeliveryId,
    lease: LeaseToken,
) -> Result<bool, Failure> {
    let released = w
        .conn()
        .prepare_cached(
            "UPDATE deliveries SET next_attempt_at = ?3, lease_token = NULL \
             WHERE id = ?1 AND lease_token = ?2 AND status = 'pending'",
        )?
        .execute(params![
            delivery.as_bytes(),
            lease.0,
            Timestamp::now().millis()
        ])?;
    Ok(released == 1)
}

/// A delivery as recording an attempt finds it: status, lease token,
/// webhook and the ordering key it is ordered under.
type CurrentDelivery = (String, Option<i64>, [u8; 16], Option<String>);

/// Logs the attempt; if its lease is still the delivery's current one, also
/// moves the delivery on. A 410 Gone disables the webhook: what the first batch
/// of failing its backlog left comes back with the answer.
pub(crate) fn record_attempt(
    w: &Writer,
    outcome: &AttemptOutcome,
) -> Result<(bool, Option<Cleanup>), Failure> {
    let conn = w.conn();
    let attempt = &outcome.attempt;
    let current: Option<CurrentDelivery> = conn
        .prepare_cached(
            "SELECT status, lease_token, webhook_id, ordering_key FROM deliveries WHERE id = ?1",
        )?
        .query_row([attempt.delivery_id.as_bytes()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    // A delivery deleted with its webhook, or about to be, has no log left
    // to append to.
    let Some((status, token, webhook_id, ordering_key)) = current else {
        return Ok((false, None));
    };
    let webhook_id = WebhookId::from_bytes(webhook_id);
    if w.webhooks()?.get(webhook_id).is_none() {
        return Ok((false, None));
    }
    append_attempt(conn, outcome)?;
    let lease_held = status == DeliveryStatus::Pending.as_str() && token == Some(outcome.lease.0);
    if !lease_held {
        return Ok((false, None));
    }

    let now = Timestamp::now();
    let moved = outcome.next.moved_on();
    let next_attempt_at = moved
        .retry_in
        .map(|delay| now.saturating_add(delay).millis());
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = attempts + 1, failures_in_schedule = failures_in_schedule + ?3, \
         next_attempt_at = ?4, lease_token = NULL, last_status_code = ?5, last_error = ?6, updated_at = ?7 WHERE id = ?1",
    )?
    .execute(params![
        attempt.delivery_id.as_bytes(),
        moved.status.as_str(),
        i64::from(moved.uses_a_retry),
        next_attempt_at,
        attempt.response_status,
        attempt.error,
        now.millis(),
    ])?;
    let rest = match &outcome.next {
        NextStep::FailedAndDisableWebhook { reason } => webhooks::disable(w, webhook_id, reason)?,
        NextStep::Succeeded | NextStep::Failed => {
            // The head of its key is done: the next of the key may go.
            if let Some(key) = ordering_key {
                crate::ordering::release_next(conn, webhook_id, &key, now)?;
            }
            None
        }
        NextStep::RetryIn(_) | NextStep::Deferred(_) => None,
    };
    Ok((true, rest))
}

fn append_attempt(conn: &Connection, outcome: &AttemptOutcome) -> Result<(), SqliteError> {
    let a = &outcome.attempt;
    conn.prepare_cached(&format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        a.id.as_bytes(),
        a.delivery_id.as_bytes(),
        a.number,
        a.started_at.millis(),
        a.duration_ms,
        a.request_url,
        to_json(&a.request_headers)?,
        a.response_status,
        to_json(&a.response_headers)?,
        a.response_body,
        a.error,
    ])?;
    Ok(())
}

/// The pending deliveries by state: range counts over the `deliveries_due`
/// index, reading rows only within the lease horizon to tell leased ones
/// (which hold a token) from scheduled retries.
pub(crate) fn backlog(conn: &Connection, longest_lease: Duration) -> Result<Backlog, Failure> {
    let now = Timestamp::now();
    let horizon = now.saturating_add(longest_lease);
    let count = |sql: &str, bounds: &[i64]| -> Result<u64, Failure> {
        let found: i64 = conn
            .prepare_cached(sql)?
            .query_row(rusqlite::params_from_iter(bounds), |row| row.get(0))?;
        Ok(u64::try_from(found).unwrap_or(0))
    };
    let due = count(
        "SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?1",
        &[now.millis()],
    )?;
    let later = count(
        "SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at > ?1",
        &[now.millis()],
    )?;
    let leased = count(
        "SELECT count(*) FROM deliveries INDEXED BY deliveries_due \
         WHERE status = 'pending' AND next_attempt_at > ?1 AND next_attempt_at <= ?2 \
         AND lease_token IS NOT NULL",
        &[now.millis(), horizon.millis()],
    )?;
    let waiting = count(
        "SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at IS NULL",
        &[],
    )?;
    let oldest_due_at = next_due_at(conn)?.filter(|due_at| *due_at <= now);
    Ok(Backlog {
        due,
        scheduled: later.saturating_sub(leased),
        leased,
        waiting,
        oldest_due_at,
    })
}

/// Migration: the failed deliveries by age, so the overview counts a day's
/// failures from an index range (`deliveries_finished` holds both outcomes).
pub(crate) const FAILED_BY_AGE_MIGRATION: &str =
    "CREATE INDEX deliveries_failed ON deliveries (created_at) WHERE status = 'failed';";

/// Migration: the same check of a delivery's status, written so that SQLite
/// evaluates it with three comparisons. A constant `IN` list of three or more
/// is evaluated by building a temporary B-tree of its values, and this check
/// runs on every delivery inserted and every attempt recorded (2–3 % of
/// Herald's CPU in the delivery scenario's profile). The new check
/// accepts exactly the values the old one did and no row changes, so the
/// table's definition is edited in place, as SQLite documents for changing a
/// constraint ("Making Other Kinds Of Table Schema Changes"); the throwaway
/// table moves the schema cookie, so any other connection reloads the schema.
pub(crate) const STATUS_CHECK_MIGRATION: &str = "
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql,
       'CHECK (status IN (''pending'', ''succeeded'', ''failed''))',
       'CHECK (status = ''pending'' OR status = ''succeeded'' OR status = ''failed'')')
 WHERE type = 'table' AND name = 'deliveries';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_cookie_moved (unused INTEGER);
DROP TABLE schema_cookie_moved;
";

/// Finished deliveries created within `window`, by outcome: two range counts,
/// over `deliveries_finished` (both outcomes) and `deliveries_failed`.
pub(crate) fn finished_within(
    conn: &Connection,
    window: Duration,
) -> Result<FinishedCounts, Failure> {
    let since = Timestamp::now().saturating_sub(window).millis();
    let count = |sql: &str| -> Result<u64, Failure> {
        let found: i64 = conn
            .prepare_cached(sql)?
            .query_row([since], |row| row.get(0))?;
        Ok(u64::try_from(found).unwrap_or(0))
    };
    let finished = count(
        "SELECT count(*) FROM deliveries INDEXED BY deliveries_finished \
         WHERE status <> 'pending' AND created_at >= ?1",
    )?;
    let failed = count(
        "SELECT count(*) FROM deliveries INDEXED BY deliveries_failed \
         WHERE status = 'failed' AND created_at >= ?1",
    )?;
    Ok(FinishedCounts {
        succeeded: finished.saturating_sub(failed),
        failed,
    })
}

pub(crate) fn next_due_at(conn: &Connection) -> Result<Option<Timestamp>, Failure> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT next_attempt_at FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT 1",
        )?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok(next.map(Timestamp::from_millis))
}

//! Publishing: the event, its fan-out to deliveries, and its idempotency key,
//! all in one job so they commit together.

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_core::time::Timestamp;
use herald_store::{NewEvent, Published, ordered_key};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Failure, SqliteError};
use crate::rows::to_json;
use crate::writer::Writer;

pub(crate) fn publish(
    w: &Writer,
    event: &NewEvent,
    idempotency_key: Option<&str>,
) -> Result<Published, Failure> {
    let conn = w.conn();
    if let Some(key) = idempotency_key
        && let Some(first) = earlier_answer(conn, key)?
    {
        return Ok(Published {
            replayed: true,
            ..first
        });
    }
    let now = Timestamp::now();
    let webhooks = w.webhooks()?;
    let targets = webhooks
        .matching(event.project.as_deref(), &event.event_type)
        .map(|hook| (hook.id, hook.ordering));
    let deliveries = insert_event(conn, event, targets, now)?;

    let published = Published {
        event_id: event.id,
        deliveries,
        replayed: false,
    };
    if let Some(key) = idempotency_key {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (key, response, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![key, to_json(&published)?, now.millis()])?;
    }
    Ok(published)
}

/// Stores the event and one pending delivery for each of `webhooks` (with
/// its ordering mode); returns how many. Fan-out (here, or a code monitor's
/// targeted events) chooses the webhooks. A delivery is due now, unless it
/// is ordered under a key with a pending delivery ahead of it: then it waits
/// (`crate::ordering`).
pub(crate) fn insert_event(
    conn: &Connection,
    event: &NewEvent,
    webhooks: impl IntoIterator<Item = (WebhookId, DeliveryOrdering)>,
    now: Timestamp,
) -> Result<u32, SqliteError> {
    conn.prepare_cached(
        "INSERT INTO events (id, event_type, project, payload, properties, created_at, ordering_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        event.id.as_bytes(),
        event.event_type,
        event.project,
        event.payload,
        to_json(&event.properties)?,
        now.millis(),
        event.ordering_key,
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, \
         updated_at, ordering_key, ordering_seq) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6, ?7, ?8)",
    )?;
    let mut deliveries = 0u32;
    for (webhook, ordering) in webhooks {
        let key = ordered_key(ordering, event.ordering_key.as_deref());
        let (seq, waits) = match key {
            Some(key) => {
                let (seq, waits) = crate::ordering::place(conn, webhook, key)?;
                (Some(seq), waits)
            }
            None => (None, false),
        };
        insert.execute(params![
            DeliveryId::new().as_bytes(),
            event.id.as_bytes(),
            webhook.as_bytes(),
            event.event_type,
            (!waits).then_some(now.millis()),
            now.millis(),
            key,
            seq,
        ])?;
        deliveries += 1;
    }
    Ok(deliveries)
}

/// The answer stored with a key, until the janitor purges it.
fn earlier_answer(conn: &Connection, key: &str) -> Result<Option<Published>, SqliteError> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT response FROM idempotency_keys WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    stored
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|_| SqliteError::Inconsistent("unreadable idempotency answer"))
        })
        .transpose()
}

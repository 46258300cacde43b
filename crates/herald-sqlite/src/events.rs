//! Publishing: the event, its fan-out to deliveries, and its idempotency key,
//! all in one job so they commit together.

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{NewEvent, Published};
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
        .map(|hook| hook.id);
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

/// Stores the event and one pending delivery, due now, for each of `webhooks`;
/// returns how many. Fan-out (here, or a code monitor's targeted events)
/// chooses the webhooks.
pub(crate) fn insert_event(
    conn: &Connection,
    event: &NewEvent,
    webhooks: impl IntoIterator<Item = WebhookId>,
    now: Timestamp,
) -> Result<u32, SqliteError> {
    conn.prepare_cached(
        "INSERT INTO events (id, event_type, project, payload, properties, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.id.as_bytes(),
        event.event_type,
        event.project,
        event.payload,
        to_json(&event.properties)?,
        now.millis(),
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5)",
    )?;
    let mut deliveries = 0u32;
    for webhook in webhooks {
        insert.execute(params![
            DeliveryId::new().as_bytes(),
            event.id.as_bytes(),
            webhook.as_bytes(),
            event.event_type,
            now.millis(),
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

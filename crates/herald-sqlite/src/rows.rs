//! How records map to rows: ids are 16-byte UUID blobs, times integer
//! milliseconds, lists and maps JSON text. Each `*_COLUMNS` list matches the
//! column indexes its `*_from_row` reads. Shown URLs are masked again as they
//! are read, so that rows written before a masking rule existed (query tokens,
//! Slack-style token paths) show none.

use std::collections::BTreeMap;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_store::{AttemptRecord, DeliveryRecord, DeliveryStatus, EventRecord, WebhookRecord};
use rusqlite::Row;
use rusqlite::types::Type;

use crate::error::SqliteError;

/// Then ten for the endpoint's health and settings (`crate::health`), and
/// two the webhook's flow limits (`crate::flow`), and the last its ordering mode.
pub(crate) const WEBHOOK_COLUMNS: &str = "id, name, url_display, url_sealed, secret_sealed, event_types, \
     project, enabled, disabled_reason, created_at, updated_at, health_state, health_failures, \
     health_pauses, health_until, health_failing_since, health_last_error, health_last_success, \
     health_disabled_reason, failing_after, disable_after, max_in_flight, max_per_second, ordering";

/// How many columns [`WEBHOOK_COLUMNS`] names.
pub(crate) const WEBHOOK_COLUMN_COUNT: usize = 11 + crate::health::COUNT + crate::flow::COUNT + 1;

pub(crate) const EVENT_COLUMNS: &str =
    "id, event_type, project, payload, properties, created_at, ordering_key";

pub(crate) const DELIVERY_COLUMNS: &str = "id, event_id, webhook_id, event_type, status, attempts, \
     next_attempt_at, last_status_code, last_error, created_at, updated_at";

pub(crate) const ATTEMPT_COLUMNS: &str = "id, delivery_id, number, started_at, duration_ms, request_url, \
     request_headers, response_status, response_headers, response_body, error";

pub(crate) fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<WebhookRecord> {
    let (health, health_overrides) = crate::health::health_from_row(row, 11)?;
    Ok(WebhookRecord {
        id: WebhookId::from_bytes(row.get(0)?),
        name: row.get(1)?,
        url_display: shown_url::obscure_text(&row.get::<_, String>(2)?),
        url_sealed: row.get(3)?,
        secret_sealed: row.get(4)?,
        event_types: patterns_from_json(5, &row.get::<_, String>(5)?)?,
        project: row.get(6)?,
        enabled: row.get(7)?,
        disabled_reason: row.get(8)?,
        health,
        health_overrides,
        flow_limits: crate::flow::limits_from_row(row, 11 + crate::health::COUNT)?,
        ordering: ordering(row, 11 + crate::health::COUNT + crate::flow::COUNT)?,
        created_at: timestamp(row, 9)?,
        updated_at: timestamp(row, 10)?,
    })
}

/// Reads an event from `row`, whose first event column is at `at`.
pub(crate) fn event_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: EventId::from_bytes(row.get(at)?),
        event_type: row.get(at + 1)?,
        project: row.get(at + 2)?,
        payload: row.get(at + 3)?,
        properties: from_json::<BTreeMap<String, String>>(at + 4, &row.get::<_, String>(at + 4)?)?,
        created_at: timestamp(row, at + 5)?,
        ordering_key: row.get(at + 6)?,
    })
}

pub(crate) fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let status: String = row.get(4)?;
    Ok(DeliveryRecord {
        id: DeliveryId::from_bytes(row.get(0)?),
        event_id: EventId::from_bytes(row.get(1)?),
        webhook_id: WebhookId::from_bytes(row.get(2)?),
        event_type: row.get(3)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(4, format!("unknown status {status:?}")))?,
        attempts: small(row, 5)?,
        next_attempt_at: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_millis),
        last_status_code: status_code(row, 7)?,
        last_error: row.get(8)?,
        created_at: timestamp(row, 9)?,
        updated_at: timestamp(row, 10)?,
    })
}

pub(crate) fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
    Ok(AttemptRecord {
        id: AttemptId::from_bytes(row.get(0)?),
        delivery_id: DeliveryId::from_bytes(row.get(1)?),
        number: small(row, 2)?,
        started_at: timestamp(row, 3)?,
        duration_ms: small(row, 4)?,
        request_url: shown_url::obscure_text(&row.get::<_, String>(5)?),
        request_headers: from_json(6, &row.get::<_, String>(6)?)?,
        response_status: status_code(row, 7)?,
        response_headers: from_json(8, &row.get::<_, String>(8)?)?,
        response_body: row.get(9)?,
        error: row.get(10)?,
    })
}

pub(crate) fn timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    row.get(index).map(Timestamp::from_millis)
}

/// A counter or a duration stored as INTEGER that the model keeps as `u32`.
pub(crate) fn small(row: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let value: i64 = row.get(index)?;
    u32::try_from(value).map_err(|e| corrupt(index, e))
}

fn status_code(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u16>> {
    row.get::<_, Option<i64>>(index)?
        .map(|code| u16::try_from(code).map_err(|e| corrupt(index, e)))
        .transpose()
}

pub(crate) fn patterns_to_json(patterns: &[EventTypePattern]) -> Result<String, SqliteError> {
    let texts: Vec<&str> = patterns.iter().map(EventTypePattern::as_str).collect();
    to_json(&texts)
}

fn patterns_from_json(index: usize, json: &str) -> rusqlite::Result<Vec<EventTypePattern>> {
    from_json::<Vec<String>>(index, json)?
        .iter()
        .map(|text| EventTypePattern::parse("event_types", text).map_err(|e| corrupt(index, e)))
        .collect()
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, SqliteError> {
    serde_json::to_string(value).map_err(SqliteError::Json)
}

fn from_json<T: serde::de::DeserializeOwned>(index: usize, json: &str) -> rusqlite::Result<T> {
    serde_json::from_str(json).map_err(|e| corrupt(index, e))
}

fn corrupt(
    index: usize,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.into())
}

fn ordering(row: &Row<'_>, index: usize) -> rusqlite::Result<DeliveryOrdering> {
    let text: String = row.get(index)?;
    DeliveryOrdering::parse(&text)
        .ok_or_else(|| corrupt(index, format!("unknown ordering {text:?}")))
}

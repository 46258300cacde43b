//! Column lists and the conversions between rows and the store's records.
//!
//! The column lists are macros so queries stay `&'static str` (built with
//! `concat!`), which is what sqlx accepts without an injection audit. Event
//! columns carry an `e_` prefix so they can share a row with a delivery's or a
//! webhook's.
//!
//! Shown URLs are masked again as they are read, so that rows written before
//! a masking rule existed (query tokens, Slack-style token paths) show none.

use std::collections::BTreeMap;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_store::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, EventRecord, FlowLimits, HealthOverrides,
    HealthState, WebhookHealth, WebhookRecord,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{PgError, PgResult};

macro_rules! webhook_columns {
    () => {
        "w.id, w.name, w.url_display, w.url_sealed, w.secret_sealed, w.event_types, w.project, \
         w.enabled, w.disabled_reason, w.created_at, w.updated_at, w.health_state, w.health_failures, \
         w.health_pauses, w.health_until, w.health_failing_since, w.health_last_error, \
         w.health_last_success, w.health_disabled_reason, w.failing_after, w.disable_after, \
         w.max_in_flight, w.max_per_second, w.ordering"
    };
}

macro_rules! event_columns {
    () => {
        "e.id AS e_id, e.event_type AS e_event_type, e.project AS e_project, e.payload AS e_payload, \
         e.properties AS e_properties, e.created_at AS e_created_at, e.ordering_key AS e_ordering_key"
    };
}

macro_rules! delivery_columns {
    () => {
        "d.id, d.event_id, d.webhook_id, d.event_type, d.status, d.attempts, d.next_attempt_at, \
         d.last_status_code, d.last_error, d.created_at, d.updated_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "a.id, a.delivery_id, a.number, a.started_at, a.duration_ms, a.request_url, a.request_headers, \
         a.response_status, a.response_headers, a.response_body, a.error"
    };
}

pub(crate) use {attempt_columns, delivery_columns, event_columns, webhook_columns};

pub(crate) fn webhook(row: &PgRow) -> PgResult<WebhookRecord> {
    let patterns: Vec<String> = row.try_get("event_types")?;
    Ok(WebhookRecord {
        id: WebhookId(row.try_get("id")?),
        name: row.try_get("name")?,
        url_display: shown_url::obscure_text(&row.try_get::<String, _>("url_display")?),
        url_sealed: row.try_get("url_sealed")?,
        secret_sealed: row.try_get("secret_sealed")?,
        event_types: parse_patterns(&patterns)?,
        project: row.try_get("project")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        health: health(row)?,
        health_overrides: health_overrides(row)?,
        flow_limits: flow_limits(row)?,
        ordering: ordering(row)?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

/// The endpoint health columns of a row (see `webhook_columns!`).
pub(crate) fn health(row: &PgRow) -> PgResult<WebhookHealth> {
    let state: String = row.try_get("health_state")?;
    let state = HealthState::parse(&state)
        .ok_or_else(|| PgError::Corrupt(format!("unknown health state {state:?}")))?;
    let time = |column: &str| -> PgResult<Option<Timestamp>> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
    };
    Ok(WebhookHealth {
        state,
        consecutive_failures: counter(row, "health_failures")?,
        pauses: counter(row, "health_pauses")?,
        until: time("health_until")?,
        failing_since: time("health_failing_since")?,
        last_error: row.try_get("health_last_error")?,
        last_success: time("health_last_success")?,
        disabled_reason: row.try_get("health_disabled_reason")?,
    })
}

fn health_overrides(row: &PgRow) -> PgResult<HealthOverrides> {
    let setting = |column: &str| -> PgResult<Option<u32>> {
        row.try_get::<Option<i32>, _>(column)?
            .map(|v| u32::try_from(v).map_err(|_| PgError::Corrupt(format!("negative {column}"))))
            .transpose()
    };
    Ok(HealthOverrides {
        failing_after: setting("failing_after")?,
        disable_after: setting("disable_after")?.map(|n| (n > 0).then_some(n)),
    })
}

fn flow_limits(row: &PgRow) -> PgResult<FlowLimits> {
    let limit = |column: &str| -> PgResult<Option<u32>> {
        row.try_get::<Option<i32>, _>(column)?
            .map(|v| u32::try_from(v).map_err(|_| PgError::Corrupt(format!("negative {column}"))))
            .transpose()
    };
    Ok(FlowLimits {
        max_in_flight: limit("max_in_flight")?,
        max_per_second: limit("max_per_second")?,
    })
}

/// How a flow limit is stored: NULL for none.
pub(crate) fn flow_limit_column(limit: Option<u32>) -> Option<i32> {
    limit.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// How `disable_after` is stored: NULL for the node's setting, 0 for never.
pub(crate) fn disable_after_column(overrides: &HealthOverrides) -> Option<i32> {
    overrides
        .disable_after
        .map(|n| i32::try_from(n.unwrap_or(0)).unwrap_or(i32::MAX))
}

/// How `failing_after` is stored: NULL for the node's setting.
pub(crate) fn failing_after_column(overrides: &HealthOverrides) -> Option<i32> {
    overrides
        .failing_after
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

fn counter(row: &PgRow, column: &str) -> PgResult<u32> {
    let value: i32 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| PgError::Corrupt(format!("negative {column} {value}")))
}

pub(crate) fn parse_patterns(stored: &[String]) -> PgResult<Vec<EventTypePattern>> {
    stored
        .iter()
        .map(|p| {
            EventTypePattern::parse("event_types", p).map_err(|e| PgError::Corrupt(e.to_string()))
        })
        .collect()
}

pub(crate) fn pattern_texts(patterns: &[EventTypePattern]) -> Vec<String> {
    patterns.iter().map(|p| p.as_str().to_owned()).collect()
}

pub(crate) fn event(row: &PgRow) -> PgResult<EventRecord> {
    let properties: String = row.try_get("e_properties")?;
    Ok(EventRecord {
        id: EventId(row.try_get("e_id")?),
        event_type: row.try_get("e_event_type")?,
        project: row.try_get("e_project")?,
        payload: row.try_get("e_payload")?,
        properties: parse_json(&properties, "event properties")?,
        created_at: Timestamp(row.try_get("e_created_at")?),
        ordering_key: row.try_get("e_ordering_key")?,
    })
}

pub(crate) fn delivery(row: &PgRow) -> PgResult<DeliveryRecord> {
    let status: String = row.try_get("status")?;
    Ok(DeliveryRecord {
        id: DeliveryId(row.try_get("id")?),
        event_id: EventId(row.try_get("event_id")?),
        webhook_id: WebhookId(row.try_get("webhook_id")?),
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| PgError::Corrupt(format!("unknown delivery status {status:?}")))?,
        attempts: unsigned(row.try_get("attempts")?, "attempts")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(Timestamp),
        last_status_code: row
            .try_get::<Option<i32>, _>("last_status_code")?
            .map(status_code)
            .transpose()?,
        last_error: row.try_get("last_error")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

pub(crate) fn attempt(row: &PgRow) -> PgResult<AttemptRecord> {
    let request_headers: String = row.try_get("request_headers")?;
    let response_headers: String = row.try_get("response_headers")?;
    let body: Option<Vec<u8>> = row.try_get("response_body")?;
    Ok(AttemptRecord {
        id: AttemptId(row.try_get("id")?),
        delivery_id: DeliveryId(row.try_get("delivery_id")?),
        number: unsigned(row.try_get("number")?, "number")?,
        started_at: Timestamp(row.try_get("started_at")?),
        duration_ms: unsigned(row.try_get("duration_ms")?, "duration_ms")?,
        request_url: shown_url::obscure_text(&row.try_get::<String, _>("request_url")?),
        request_headers: parse_json(&request_headers, "request headers")?,
        response_status: row
            .try_get::<Option<i32>, _>("response_status")?
            .map(status_code)
            .transpose()?,
        response_headers: parse_json(&response_headers, "response headers")?,
        response_body: body
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| PgError::Corrupt("response body is not UTF-8".to_owned()))
            })
            .transpose()?,
        error: row.try_get("error")?,
    })
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Maps of strings and lists of string pairs always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> PgResult<T> {
    serde_json::from_str(text).map_err(|e| PgError::Corrupt(format!("{what}: {e}")))
}

fn unsigned(value: i32, column: &str) -> PgResult<u32> {
    u32::try_from(value).map_err(|_| PgError::Corrupt(format!("{column} is negative: {value}")))
}

fn status_code(value: i32) -> PgResult<u16> {
    u16::try_from(value).map_err(|_| PgError::Corrupt(format!("HTTP status {value} out of range")))
}

/// PostgreSQL `text` cannot hold NUL. The fields this is used for come from a
/// receiver or the network stack; one stray NUL must not make an attempt
/// unrecordable (its delivery would retry forever), so it becomes U+FFFD.
pub(crate) fn text_without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Properties as stored: a JSON object of strings.
pub(crate) fn properties_json(properties: &BTreeMap<String, String>) -> String {
    to_json(properties)
}

pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn ordering(row: &PgRow) -> PgResult<DeliveryOrdering> {
    let text: String = row.try_get("ordering")?;
    DeliveryOrdering::parse(&text)
        .ok_or_else(|| PgError::Corrupt(format!("unknown ordering {text:?}")))
}

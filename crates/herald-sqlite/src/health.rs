//! Endpoint health, stored with each webhook: the columns, and noting an
//! attempt's signal. The rule itself is `herald_store::health`; this file only
//! reads the row, applies it and writes what it says.

use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use herald_store::{
    HealthChange, HealthOverrides, HealthPolicy, HealthSignal, HealthState, WebhookHealth,
};
use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};

use crate::error::Failure;
use crate::rows::small;
use crate::writer::Writer;

/// Migration: the health of each webhook's endpoint, and its own settings
/// (`disable_after` 0: never; NULL: the node's setting).
pub(crate) const MIGRATION: &str = r#"
ALTER TABLE webhooks ADD COLUMN health_state TEXT NOT NULL DEFAULT 'healthy'
    CHECK (health_state IN ('healthy', 'paused', 'probing', 'throttled', 'disabled'));
ALTER TABLE webhooks ADD COLUMN health_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN health_pauses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN health_until INTEGER;
ALTER TABLE webhooks ADD COLUMN health_failing_since INTEGER;
ALTER TABLE webhooks ADD COLUMN health_last_error TEXT;
ALTER TABLE webhooks ADD COLUMN health_last_success INTEGER;
ALTER TABLE webhooks ADD COLUMN health_disabled_reason TEXT;
ALTER TABLE webhooks ADD COLUMN failing_after INTEGER;
ALTER TABLE webhooks ADD COLUMN disable_after INTEGER;
"#;

/// How many columns [`health_from_row`] reads (the last ten of
/// `rows::WEBHOOK_COLUMNS`).
pub(crate) const COUNT: usize = 10;

pub(crate) fn health_from_row(
    row: &Row<'_>,
    at: usize,
) -> rusqlite::Result<(WebhookHealth, HealthOverrides)> {
    let state: String = row.get(at)?;
    let state = HealthState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            at,
            Type::Text,
            format!("unknown health state {state:?}").into(),
        )
    })?;
    let time = |i: usize| {
        row.get::<_, Option<i64>>(at + i)
            .map(|t| t.map(Timestamp::from_millis))
    };
    let health = WebhookHealth {
        state,
        consecutive_failures: small(row, at + 1)?,
        pauses: small(row, at + 2)?,
        until: time(3)?,
        failing_since: time(4)?,
        last_error: row.get(at + 5)?,
        last_success: time(6)?,
        disabled_reason: row.get(at + 7)?,
    };
    let setting = |i: usize| {
        row.get::<_, Option<i64>>(at + i)?
            .map(|v| {
                u32::try_from(v).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(at + i, Type::Integer, e.into())
                })
            })
            .transpose()
    };
    let overrides = HealthOverrides {
        failing_after: setting(8)?,
        disable_after: setting(9)?.map(|n| (n > 0).then_some(n)),
    };
    Ok((health, overrides))
}

/// How `disable_after` is stored: NULL for the node's setting, 0 for never.
pub(crate) fn disable_after_column(overrides: &HealthOverrides) -> Option<u32> {
    overrides.disable_after.map(|n| n.unwrap_or(0))
}

pub(crate) fn store(
    conn: &Connection,
    id: WebhookId,
    health: &WebhookHealth,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET health_state = ?2, health_failures = ?3, health_pauses = ?4, health_until = ?5, \
         health_failing_since = ?6, health_last_error = ?7, health_last_success = ?8, \
         health_disabled_reason = ?9 WHERE id = ?1",
    )?
    .execute(params![
        id.as_bytes(),
        health.state.as_str(),
        health.consecutive_failures,
        health.pauses,
        health.until.map(Timestamp::millis),
        health.failing_since.map(Timestamp::millis),
        health.last_error,
        health.last_success.map(Timestamp::millis),
        health.disabled_reason,
    ])?;
    Ok(())
}

/// Applies the signal to the webhook's stored health on the writer, so it is
/// serialized with every claim; the cache follows the row.
pub(crate) fn note(
    w: &Writer,
    id: WebhookId,
    signal: &HealthSignal,
    policy: &HealthPolicy,
) -> Result<Vec<HealthChange>, Failure> {
    let Some(mut health) = w.webhooks()?.get(id).map(|hook| hook.health.clone()) else {
        return Ok(Vec::new());
    };
    let noted = health.note(signal, policy, Timestamp::now());
    if noted.changed {
        store(w.conn(), id, &health)?;
        w.cache_health(id, &health);
    }
    Ok(noted.changes)
}

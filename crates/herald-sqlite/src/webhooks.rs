//! Webhook records: their writes (all on the writer thread), their reads, and
//! the writer's in-memory copy that fan-out and claims use.

use std::collections::HashMap;

use herald_core::event_type::any_matches;
use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use herald_store::{NewWebhook, StoreError, WebhookPatch, WebhookRecord, scope_label};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Failure, SqliteError};
use crate::rows::{WEBHOOK_COLUMNS, patterns_to_json, webhook_from_row};
use crate::writer::Writer;

/// Every webhook, as the writer's transaction sees them, indexed for fan-out.
/// Rebuilt from the table after any change, so it never disagrees with it.
pub(crate) struct WebhookCache {
    by_id: HashMap<WebhookId, WebhookRecord>,
    /// Enabled global webhooks.
    global: Vec<WebhookId>,
    /// Enabled webhooks of each project.
    projects: HashMap<String, Vec<WebhookId>>,
}

impl WebhookCache {
    pub(crate) fn load(conn: &Connection) -> Result<Self, SqliteError> {
        let mut cache = Self {
            by_id: HashMap::new(),
            global: Vec::new(),
            projects: HashMap::new(),
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))?;
        for record in stmt.query_map([], webhook_from_row)? {
            let record = record?;
            if record.enabled {
                match &record.project {
                    Some(project) => cache
                        .projects
                        .entry(project.clone())
                        .or_default()
                        .push(record.id),
                    None => cache.global.push(record.id),
                }
            }
            cache.by_id.insert(record.id, record);
        }
        Ok(cache)
    }

    pub(crate) fn get(&self, id: WebhookId) -> Option<&WebhookRecord> {
        self.by_id.get(&id)
    }

    /// Every webhook's id, enabled or not, in a stable order.
    pub(crate) fn ids(&self) -> Vec<WebhookId> {
        let mut ids: Vec<WebhookId> = self.by_id.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The enabled webhooks an event of this type in this project goes to.
    pub(crate) fn matching<'a>(
        &'a self,
        project: Option<&str>,
        event_type: &'a str,
    ) -> impl Iterator<Item = &'a WebhookRecord> {
        let in_project = project
            .and_then(|p| self.projects.get(p))
            .map_or(&[][..], Vec::as_slice);
        self.global
            .iter()
            .chain(in_project)
            .filter_map(|id| self.by_id.get(id))
            .filter(move |hook| any_matches(&hook.event_types, event_type))
    }
}

pub(crate) fn create(
    w: &Writer,
    new: NewWebhook,
    max_per_scope: u32,
) -> Result<WebhookRecord, Failure> {
    ensure_room(w.conn(), new.project.as_deref(), max_per_scope)?;
    let now = Timestamp::now();
    let record = WebhookRecord {
        id: new.id,
        name: new.name,
        url_display: new.url_display,
        url_sealed: new.url_sealed,
        secret_sealed: new.secret_sealed,
        event_types: new.event_types,
        project: new.project,
        enabled: new.enabled,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    w.conn()
        .prepare_cached(&format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"))?
        .execute(params![
            record.id.as_bytes(),
            record.name,
            record.url_display,
            record.url_sealed,
            record.secret_sealed,
            patterns_to_json(&record.event_types)?,
            record.project,
            record.enabled,
            record.disabled_reason,
            record.created_at.millis(),
            record.updated_at.millis(),
        ])?;
    w.invalidate_webhooks();
    Ok(record)
}

pub(crate) fn update(
    w: &Writer,
    id: WebhookId,
    patch: WebhookPatch,
    max_per_scope: u32,
) -> Result<Option<WebhookRecord>, Failure> {
    let Some(current) = w.webhooks()?.get(id).cloned() else {
        return Ok(None);
    };
    if let Some(project) = &patch.project
        && *project != current.project
    {
        ensure_room(w.conn(), project.as_deref(), max_per_scope)?;
    }
    let disabling = patch.enabled == Some(false);
    let record = patched(current, patch, Timestamp::now());
    w.conn()
        .prepare_cached(
            "UPDATE webhooks SET name = ?2, url_display = ?3, url_sealed = ?4, secret_sealed = ?5, event_types = ?6, \
             project = ?7, enabled = ?8, disabled_reason = ?9, updated_at = ?10 WHERE id = ?1",
        )?
        .execute(params![
            record.id.as_bytes(),
            record.name,
            record.url_display,
            record.url_sealed,
            record.secret_sealed,
            patterns_to_json(&record.event_types)?,
            record.project,
            record.enabled,
            record.disabled_reason,
            record.updated_at.millis(),
        ])?;
    if disabling {
        fail_pending_deliveries(w.conn(), id, record.updated_at)?;
    }
    w.invalidate_webhooks();
    Ok(Some(record))
}

/// The record with the patch applied. A reason to be disabled only outlives an
/// update that leaves the webhook disabled.
fn patched(mut record: WebhookRecord, patch: WebhookPatch, now: Timestamp) -> WebhookRecord {
    if let Some(name) = patch.name {
        record.name = name;
    }
    if let Some((display, sealed)) = patch.url {
        record.url_display = display;
        record.url_sealed = sealed;
    }
    if let Some(secret) = patch.secret_sealed {
        record.secret_sealed = secret;
    }
    if let Some(types) = patch.event_types {
        record.event_types = types;
    }
    if let Some(project) = patch.project {
        record.project = project;
    }
    match patch.enabled {
        Some(true) => record.disabled_reason = None,
        Some(false) if record.enabled => record.disabled_reason = None,
        _ => {}
    }
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
    }
    record.updated_at = now;
    record
}

pub(crate) fn delete(w: &Writer, id: WebhookId) -> Result<bool, Failure> {
    let conn = w.conn();
    conn.prepare_cached("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = ?1)")?
        .execute([id.as_bytes()])?;
    conn.prepare_cached("DELETE FROM deliveries WHERE webhook_id = ?1")?
        .execute([id.as_bytes()])?;
    let deleted = conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
        .execute([id.as_bytes()])?;
    w.invalidate_webhooks();
    Ok(deleted > 0)
}

/// Disables a webhook with a reason and fails its pending deliveries.
pub(crate) fn disable(w: &Writer, id: WebhookId, reason: &str) -> Result<(), Failure> {
    let now = Timestamp::now();
    let changed = w
        .conn()
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id.as_bytes(), reason, now.millis()])?;
    if changed > 0 {
        fail_pending_deliveries(w.conn(), id, now)?;
        w.invalidate_webhooks();
    }
    Ok(())
}

/// A disabled webhook gets nothing more: its queued deliveries fail, and any
/// lease on them is void.
fn fail_pending_deliveries(
    conn: &Connection,
    id: WebhookId,
    now: Timestamp,
) -> Result<(), SqliteError> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, \
         last_error = 'webhook disabled', updated_at = ?2 WHERE webhook_id = ?1 AND status = 'pending'",
    )?
    .execute(params![id.as_bytes(), now.millis()])?;
    Ok(())
}

fn ensure_room(
    conn: &Connection,
    project: Option<&str>,
    max_per_scope: u32,
) -> Result<(), Failure> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM webhooks WHERE project IS ?1")?
        .query_row([project], |row| row.get(0))?;
    if count >= i64::from(max_per_scope) {
        return Err(Failure::Refused(StoreError::ScopeFull {
            scope: scope_label(project),
            limit: max_per_scope,
        }));
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: WebhookId) -> Result<Option<WebhookRecord>, Failure> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
        ))?
        .query_row([id.as_bytes()], webhook_from_row)
        .optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<WebhookRecord>, Failure> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
    ))?;
    let records = stmt
        .query_map([], webhook_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

//! Webhook records: their writes (all on the writer thread), their reads, and
//! the writer's in-memory copy that fan-out and claims use.

use std::collections::HashMap;

use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use herald_store::{
    Gate, HealthState, NewWebhook, StoreError, WebhookHealth, WebhookPatch, WebhookRecord,
    receives, scope_label,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cleanup::Cleanup;
use crate::error::{Failure, SqliteError};
use crate::health;
use crate::rows::{WEBHOOK_COLUMN_COUNT, WEBHOOK_COLUMNS, patterns_to_json, webhook_from_row};
use crate::writer::Writer;

/// Every webhook, as the writer's transaction sees them, indexed for fan-out.
/// Rebuilt from the table after any change, so it never disagrees with it. A
/// webhook being deleted is not in it at all.
pub(crate) struct WebhookCache {
    by_id: HashMap<WebhookId, WebhookRecord>,
    /// Enabled global webhooks.
    global: Vec<WebhookId>,
    /// Enabled webhooks of each project.
    projects: HashMap<String, Vec<WebhookId>>,
    /// Webhooks whose backlog is being failed in batches: claims skip them.
    failing: Vec<WebhookId>,
    /// Whether some webhook is being deleted: its deliveries are still in the
    /// queue, and claims must pass over them.
    deleting: bool,
    /// Webhooks whose health is not plainly healthy: their gate
    /// ([`WebhookHealth::gate`]) depends on the time of each claim.
    unhealthy: Vec<WebhookId>,
}

/// Which webhooks a claim at one instant must treat apart.
pub(crate) struct Gates {
    /// Nothing of theirs may be claimed.
    pub closed: Vec<WebhookId>,
    /// Only their oldest due delivery, as a probe.
    pub probes: Vec<WebhookId>,
}

impl WebhookCache {
    pub(crate) fn load(conn: &Connection) -> Result<Self, SqliteError> {
        let mut cache = Self {
            by_id: HashMap::new(),
            global: Vec::new(),
            projects: HashMap::new(),
            failing: Vec::new(),
            deleting: false,
            unhealthy: Vec::new(),
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS}, deleting, failing_until IS NOT NULL FROM webhooks ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], |row| {
            Ok((
                webhook_from_row(row)?,
                row.get(WEBHOOK_COLUMN_COUNT)?,
                row.get(WEBHOOK_COLUMN_COUNT + 1)?,
            ))
        })?;
        for row in rows {
            let (record, deleting, failing): (WebhookRecord, bool, bool) = row?;
            if deleting {
                cache.deleting = true;
                continue;
            }
            if failing {
                cache.failing.push(record.id);
            }
            if record.health.state != HealthState::Healthy {
                cache.unhealthy.push(record.id);
            }
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

    /// Whether claims must pass over some webhooks' deliveries besides those
    /// they are asked to skip.
    pub(crate) fn hides_deliveries(&self) -> bool {
        self.deleting || !self.failing.is_empty()
    }

    /// The webhooks whose health gates claims at `now`.
    pub(crate) fn gates(&self, now: Timestamp) -> Gates {
        let mut gates = Gates {
            closed: Vec::new(),
            probes: Vec::new(),
        };
        for id in &self.unhealthy {
            let gate = self
                .by_id
                .get(id)
                .map_or(Gate::Open, |hook| hook.health.gate(now));
            match gate {
                Gate::Open => {}
                Gate::Closed => gates.closed.push(*id),
                Gate::Probe => gates.probes.push(*id),
            }
        }
        gates
    }

    /// Whether the webhook's deliveries may be claimed at all (it exists, and
    /// its backlog is not being failed).
    pub(crate) fn is_claimable(&self, id: WebhookId) -> bool {
        self.by_id.contains_key(&id) && !self.failing.contains(&id)
    }

    /// The webhooks whose deliveries may be claimed, in a stable order.
    pub(crate) fn claimable_ids(&self) -> Vec<WebhookId> {
        let mut ids: Vec<WebhookId> = self
            .by_id
            .keys()
            .filter(|id| !self.failing.contains(id))
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Sets one webhook's health, keeping the list of unhealthy ones as
    /// [`WebhookCache::load`] would make it.
    pub(crate) fn set_health(&mut self, id: WebhookId, health: WebhookHealth) {
        let Some(hook) = self.by_id.get_mut(&id) else {
            return;
        };
        let unhealthy = health.state != HealthState::Healthy;
        hook.health = health;
        let listed = self.unhealthy.contains(&id);
        if unhealthy && !listed {
            self.unhealthy.push(id);
        } else if !unhealthy && listed {
            self.unhealthy.retain(|other| *other != id);
        }
    }

    pub(crate) fn get(&self, id: WebhookId) -> Option<&WebhookRecord> {
        self.by_id.get(&id)
    }

    /// The enabled webhooks an event of this type in this project goes to. The
    /// index only picks the candidates; `receives` decides.
    pub(crate) fn matching<'a>(
        &'a self,
        project: Option<&'a str>,
        event_type: &'a str,
    ) -> impl Iterator<Item = &'a WebhookRecord> {
        let in_project = project
            .and_then(|p| self.projects.get(p))
            .map_or(&[][..], Vec::as_slice);
        self.global
            .iter()
            .chain(in_project)
            .filter_map(|id| self.by_id.get(id))
            .filter(move |hook| {
                receives(
                    hook.project.as_deref(),
                    &hook.event_types,
                    project,
                    event_type,
                )
            })
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
        health: WebhookHealth::default(),
        health_overrides: new.health_overrides,
        flow_limits: new.flow_limits,
        ordering: new.ordering,
        created_at: now,
        updated_at: now,
    };
    w.conn()
        .prepare_cached(&format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'healthy', 0, 0, NULL, NULL, NULL, NULL, NULL, ?12, ?13, ?14, ?15, ?16)"))?
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
            record.health_overrides.failing_after,
            health::disable_after_column(&record.health_overrides),
            record.flow_limits.max_in_flight,
            record.flow_limits.max_per_second,
            record.ordering.as_str(),
        ])?;
    w.invalidate_webhooks();
    Ok(record)
}

/// Applies the patch. A patch that disables the webhook starts failing its
/// backlog; what the first batch left is returned.
pub(crate) fn update(
    w: &Writer,
    id: WebhookId,
    patch: WebhookPatch,
    max_per_scope: u32,
) -> Result<(Option<WebhookRecord>, Option<Cleanup>), Failure> {
    let Some(mut record) = w.webhooks()?.get(id).cloned() else {
        return Ok((None, None));
    };
    if let Some(project) = &patch.project
        && *project != record.project
    {
        ensure_room(w.conn(), project.as_deref(), max_per_scope)?;
    }
    let disabling = patch.apply_to(&mut record);
    record.updated_at = Timestamp::now();
    w.conn()
        .prepare_cached(
            "UPDATE webhooks SET name = ?2, url_display = ?3, url_sealed = ?4, secret_sealed = ?5, event_types = ?6, \
             project = ?7, enabled = ?8, disabled_reason = ?9, updated_at = ?10, failing_after = ?11, \
             disable_after = ?12, max_in_flight = ?13, max_per_second = ?14, ordering = ?15 WHERE id = ?1",
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
            record.health_overrides.failing_after,
            health::disable_after_column(&record.health_overrides),
            record.flow_limits.max_in_flight,
            record.flow_limits.max_per_second,
            record.ordering.as_str(),
        ])?;
    health::store(w.conn(), id, &record.health)?;
    w.invalidate_webhooks();
    let rest = if disabling {
        start_failing_backlog(w, id, record.updated_at)?
    } else {
        None
    };
    Ok((Some(record), rest))
}

/// Hides the webhook from every read, from fan-out and from claims, and
/// deletes a first batch of its deliveries. `None` when there was no such
/// webhook; else what the first batch left.
pub(crate) fn delete(w: &Writer, id: WebhookId) -> Result<Option<Option<Cleanup>>, Failure> {
    let marked = w
        .conn()
        .prepare_cached(
            "UPDATE webhooks SET deleting = 1, enabled = 0 WHERE id = ?1 AND deleting = 0",
        )?
        .execute([id.as_bytes()])?;
    if marked == 0 {
        return Ok(None);
    }
    w.invalidate_webhooks();
    Ok(Some(Cleanup::DeleteWebhook(id).start(w)?))
}

/// Disables a webhook with a reason and starts failing its backlog; returns
/// what the first batch left.
pub(crate) fn disable(w: &Writer, id: WebhookId, reason: &str) -> Result<Option<Cleanup>, Failure> {
    let now = Timestamp::now();
    let changed = w
        .conn()
        .prepare_cached(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1 AND deleting = 0",
        )?
        .execute(params![id.as_bytes(), reason, now.millis()])?;
    if changed == 0 {
        return Ok(None);
    }
    w.invalidate_webhooks();
    start_failing_backlog(w, id, now)
}

/// A disabled webhook gets nothing more: its deliveries pending now fail, in
/// batches, and claims skip it until they have.
fn start_failing_backlog(
    w: &Writer,
    id: WebhookId,
    now: Timestamp,
) -> Result<Option<Cleanup>, Failure> {
    w.conn()
        .prepare_cached("UPDATE webhooks SET failing_until = ?2 WHERE id = ?1")?
        .execute(params![id.as_bytes(), now.millis()])?;
    w.invalidate_webhooks();
    Cleanup::FailBacklog(id).start(w)
}

fn ensure_room(
    conn: &Connection,
    project: Option<&str>,
    max_per_scope: u32,
) -> Result<(), Failure> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM webhooks WHERE project IS ?1 AND deleting = 0")?
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
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND deleting = 0"
        ))?
        .query_row([id.as_bytes()], webhook_from_row)
        .optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<WebhookRecord>, Failure> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE deleting = 0 ORDER BY created_at, id"
    ))?;
    let records = stmt
        .query_map([], webhook_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

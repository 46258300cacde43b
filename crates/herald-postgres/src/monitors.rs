//! Code monitors ([`MonitorStore`]) on PostgreSQL.
//!
//! Every write is one transaction. Rows are locked in one order — the monitor,
//! then its searched heads, then webhooks — so writers never deadlock with
//! each other. `record_search` locks the monitor `FOR SHARE` (a concurrent
//! disable or delete waits, then finds the search recorded) and its searched
//! heads `FOR UPDATE`: of two nodes that searched the same range, the second
//! waits for the first, then finds the heads moved and records nothing. Its
//! events go through the publisher's `insert_events` and `insert_deliveries`,
//! the rows a publish writes, to the webhooks of each event's audience, read
//! `FOR SHARE` like a publish's fan-out.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_store::{
    ActionChange, FetchResult, HeadsMap, MonitorAction, MonitorEvent, MonitorId, MonitorPatch,
    MonitorRecord, MonitorRunId, MonitorRunRecord, MonitorState, MonitorStore, MonitorWrite,
    NewAction, NewEvent, NewMonitor, NewMonitorRun, NewRepository, NewWebhook, Published,
    RUNS_KEPT_PER_MONITOR, RepositoryId, RepositoryPatch, RepositoryRecord, RepositoryWrite,
    SearchRecord, SearchRecorded, StoreResult, WebhookPatch, monitor_project, receives,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::PgStore;
use crate::cleanup;
use crate::error::{PgError, PgResult};
use crate::publish::{WORK_CHANNEL, insert_deliveries, insert_events};
use crate::rows::{self, millis, parse_patterns, pattern_texts, text_without_nul, to_json};
use crate::webhooks;

macro_rules! repository_columns {
    () => {
        "id, name, source_display, source_sealed, branches, fetch_interval_ms, heads, last_fetched_at, \
         last_error, created_at, updated_at"
    };
}

macro_rules! monitor_columns {
    () => {
        "m.id, m.description, m.query, m.enabled, m.actions, m.created_at, m.updated_at"
    };
}

macro_rules! run_columns {
    () => {
        "id, monitor_id, repository_id, repository_name, started_at, finished_at, commits_scanned, matches, \
         commits, truncated, error, event_ids, notifications"
    };
}

/// SQLSTATE of a unique constraint violation.
const UNIQUE_VIOLATION: &str = "23505";

// ---- rows ----

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> PgResult<T> {
    serde_json::from_str(text).map_err(|e| PgError::Corrupt(format!("{what}: {e}")))
}

fn count(row: &PgRow, column: &str) -> PgResult<u64> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| PgError::Corrupt(format!("{column} is negative: {value}")))
}

fn repository(row: &PgRow) -> PgResult<RepositoryRecord> {
    let interval: Option<i64> = row.try_get("fetch_interval_ms")?;
    let heads: Option<String> = row.try_get("heads")?;
    Ok(RepositoryRecord {
        id: RepositoryId(row.try_get("id")?),
        name: row.try_get("name")?,
        // Masked again: rows from before a masking rule existed.
        source_display: shown_url::obscure_text(&row.try_get::<String, _>("source_display")?),
        source_sealed: row.try_get("source_sealed")?,
        branches: row.try_get("branches")?,
        fetch_interval: interval
            .map(|ms| {
                u64::try_from(ms)
                    .map(Duration::from_millis)
                    .map_err(|_| PgError::Corrupt(format!("negative fetch interval {ms}")))
            })
            .transpose()?,
        heads: heads
            .map(|text| parse(&text, "repository heads"))
            .transpose()?,
        last_fetched_at: row
            .try_get::<Option<i64>, _>("last_fetched_at")?
            .map(Timestamp),
        last_error: row.try_get("last_error")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

fn monitor(row: &PgRow) -> PgResult<MonitorRecord> {
    let actions: String = row.try_get("actions")?;
    Ok(MonitorRecord {
        id: MonitorId(row.try_get("id")?),
        description: row.try_get("description")?,
        query: row.try_get("query")?,
        enabled: row.try_get("enabled")?,
        actions: parse(&actions, "monitor actions")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

fn run(row: &PgRow) -> PgResult<MonitorRunRecord> {
    let event_ids: Vec<Uuid> = row.try_get("event_ids")?;
    let notifications: String = row.try_get("notifications")?;
    Ok(MonitorRunRecord {
        id: MonitorRunId(row.try_get("id")?),
        monitor_id: MonitorId(row.try_get("monitor_id")?),
        repository_id: RepositoryId(row.try_get("repository_id")?),
        repository_name: row.try_get("repository_name")?,
        started_at: Timestamp(row.try_get("started_at")?),
        finished_at: Timestamp(row.try_get("finished_at")?),
        commits_scanned: count(row, "commits_scanned")?,
        matches: count(row, "matches")?,
        commits: row.try_get("commits")?,
        truncated: row.try_get("truncated")?,
        error: row.try_get("error")?,
        event_ids: event_ids.into_iter().map(EventId).collect(),
        notifications: parse(&notifications, "run notifications")?,
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION))
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

// ---- repositories ----

async fn find_repository(
    conn: &mut PgConnection,
    id: RepositoryId,
    lock: bool,
) -> PgResult<Option<RepositoryRecord>> {
    let sql = if lock {
        concat!(
            "SELECT ",
            repository_columns!(),
            " FROM monitor_repositories WHERE id = $1 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            repository_columns!(),
            " FROM monitor_repositories WHERE id = $1"
        )
    };
    let row = sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(repository).transpose()
}

async fn create_repository(
    conn: &mut PgConnection,
    new: NewRepository,
) -> PgResult<RepositoryWrite> {
    let row = sqlx::query(concat!(
        "INSERT INTO monitor_repositories (id, name, source_display, source_sealed, branches, fetch_interval_ms, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, herald_now_ms(), herald_now_ms()) \
         ON CONFLICT (name) DO NOTHING RETURNING ",
        repository_columns!()
    ))
    .bind(new.id.0)
    .bind(&new.name)
    .bind(&new.source_display)
    .bind(&new.source_sealed)
    .bind(&new.branches)
    .bind(new.fetch_interval.map(millis))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(row) => RepositoryWrite::Saved(repository(&row)?),
        None => RepositoryWrite::NameTaken,
    })
}

async fn update_repository(
    conn: &mut PgConnection,
    id: RepositoryId,
    patch: RepositoryPatch,
) -> PgResult<RepositoryWrite> {
    let Some(mut record) = find_repository(&mut *conn, id, true).await? else {
        return Ok(RepositoryWrite::NotFound);
    };
    let reset = patch.apply_to(&mut record);
    if reset {
        sqlx::query("DELETE FROM monitor_heads WHERE repository_id = $1")
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    }
    let updated = sqlx::query(concat!(
        "UPDATE monitor_repositories SET name = $2, source_display = $3, source_sealed = $4, branches = $5, \
         fetch_interval_ms = $6, heads = CASE WHEN $7 THEN NULL ELSE heads END, updated_at = herald_now_ms() \
         WHERE id = $1 RETURNING ",
        repository_columns!()
    ))
    .bind(id.0)
    .bind(&record.name)
    .bind(&record.source_display)
    .bind(&record.source_sealed)
    .bind(&record.branches)
    .bind(record.fetch_interval.map(millis))
    .bind(reset)
    .fetch_one(&mut *conn)
    .await;
    match updated {
        Ok(row) => Ok(RepositoryWrite::Saved(repository(&row)?)),
        Err(err) if is_unique_violation(&err) => Ok(RepositoryWrite::NameTaken),
        Err(err) => Err(err.into()),
    }
}

async fn record_fetch(
    conn: &mut PgConnection,
    id: RepositoryId,
    result: FetchResult,
) -> PgResult<Option<RepositoryRecord>> {
    let (heads, error) = match result {
        FetchResult::Fetched(heads) => (Some(to_json(&heads)), None),
        FetchResult::Failed(error) => (None, Some(text_without_nul(&error).into_owned())),
    };
    let row = sqlx::query(concat!(
        "UPDATE monitor_repositories SET heads = coalesce($2, heads), last_error = $3, \
         last_fetched_at = herald_now_ms() WHERE id = $1 RETURNING ",
        repository_columns!()
    ))
    .bind(id.0)
    .bind(heads)
    .bind(error)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(repository).transpose()
}

// ---- monitors ----

/// How a read locks the monitor's row until the transaction ends.
#[derive(Clone, Copy)]
enum Lock {
    None,
    /// Against a change or delete meanwhile (a search being recorded).
    Share,
    /// To change or delete it.
    Update,
}

async fn find_monitor(
    conn: &mut PgConnection,
    id: MonitorId,
    lock: Lock,
) -> PgResult<Option<MonitorRecord>> {
    let sql = match lock {
        Lock::Update => concat!(
            "SELECT ",
            monitor_columns!(),
            " FROM monitors m WHERE m.id = $1 FOR UPDATE"
        ),
        Lock::Share => concat!(
            "SELECT ",
            monitor_columns!(),
            " FROM monitors m WHERE m.id = $1 FOR SHARE"
        ),
        Lock::None => concat!(
            "SELECT ",
            monitor_columns!(),
            " FROM monitors m WHERE m.id = $1"
        ),
    };
    let row = sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(monitor).transpose()
}

async fn save_monitor(
    conn: &mut PgConnection,
    record: &MonitorRecord,
    insert: bool,
) -> PgResult<MonitorRecord> {
    let sql = if insert {
        concat!(
            "INSERT INTO monitors AS m (id, description, query, enabled, actions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, herald_now_ms(), herald_now_ms()) RETURNING ",
            monitor_columns!()
        )
    } else {
        concat!(
            "UPDATE monitors AS m SET description = $2, query = $3, enabled = $4, actions = $5, \
             updated_at = herald_now_ms() WHERE m.id = $1 RETURNING ",
            monitor_columns!()
        )
    };
    let row = sqlx::query(sql)
        .bind(record.id.0)
        .bind(&record.description)
        .bind(&record.query)
        .bind(record.enabled)
        .bind(to_json(&record.actions))
        .fetch_one(&mut *conn)
        .await?;
    monitor(&row)
}

/// Records every fetched repository's current heads as searched by `monitor`,
/// replacing whatever it had searched.
async fn start_from_current_heads(conn: &mut PgConnection, monitor: MonitorId) -> PgResult<()> {
    sqlx::query("DELETE FROM monitor_heads WHERE monitor_id = $1")
        .bind(monitor.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO monitor_heads (monitor_id, repository_id, heads, updated_at) \
         SELECT $1, id, heads, herald_now_ms() FROM monitor_repositories WHERE heads IS NOT NULL",
    )
    .bind(monitor.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts an action's webhook in the monitor's scope. The monitor's actions
/// are bounded by the API, not by the scope limit.
async fn add_action(
    conn: &mut PgConnection,
    monitor: MonitorId,
    action: NewAction,
) -> PgResult<MonitorAction> {
    let NewWebhook {
        id,
        name,
        url_display,
        url_sealed,
        secret_sealed,
        event_types,
        enabled,
        ..
    } = action.webhook;
    sqlx::query(
        "INSERT INTO webhooks (id, name, url_display, url_sealed, secret_sealed, event_types, project, enabled, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, herald_now_ms(), herald_now_ms())",
    )
    .bind(id.0)
    .bind(&name)
    .bind(&url_display)
    .bind(&url_sealed)
    .bind(&secret_sealed)
    .bind(pattern_texts(&event_types))
    .bind(monitor_project(monitor))
    .bind(enabled)
    .execute(&mut *conn)
    .await?;
    Ok(MonitorAction {
        webhook_id: id,
        kind: action.kind,
        include_results: action.include_results,
    })
}

/// Applies a kept action's webhook patch; its scope stays the monitor's.
async fn patch_action_webhook(
    conn: &mut PgConnection,
    id: WebhookId,
    patch: WebhookPatch,
) -> PgResult<()> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        rows::webhook_columns!(),
        " FROM webhooks w WHERE w.id = $1 AND NOT w.deleting FOR NO KEY UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let mut hook = rows::webhook(&row)?;
    let patch = WebhookPatch {
        project: None,
        ..patch
    };
    let disabling = patch.apply_to(&mut hook);
    sqlx::query(
        "UPDATE webhooks SET name = $2, url_display = $3, url_sealed = $4, secret_sealed = $5, event_types = $6, \
         enabled = $7, disabled_reason = $8, updated_at = herald_now_ms() WHERE id = $1",
    )
    .bind(id.0)
    .bind(&hook.name)
    .bind(&hook.url_display)
    .bind(&hook.url_sealed)
    .bind(&hook.secret_sealed)
    .bind(pattern_texts(&hook.event_types))
    .bind(hook.enabled)
    .bind(&hook.disabled_reason)
    .execute(&mut *conn)
    .await?;
    if disabling {
        webhooks::start_failing_backlog(&mut *conn, id).await?;
    }
    Ok(())
}

async fn create_monitor(conn: &mut PgConnection, new: NewMonitor) -> PgResult<MonitorRecord> {
    let mut actions = Vec::with_capacity(new.actions.len());
    for action in new.actions {
        actions.push(add_action(&mut *conn, new.id, action).await?);
    }
    let record = MonitorRecord {
        id: new.id,
        description: new.description,
        query: new.query,
        enabled: new.enabled,
        actions,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    let saved = save_monitor(&mut *conn, &record, true).await?;
    start_from_current_heads(&mut *conn, saved.id).await?;
    Ok(saved)
}

async fn update_monitor(
    conn: &mut PgConnection,
    id: MonitorId,
    patch: MonitorPatch,
) -> PgResult<MonitorWrite> {
    let Some(mut record) = find_monitor(&mut *conn, id, Lock::Update).await? else {
        return Ok(MonitorWrite::NotFound);
    };
    if let Some(changes) = &patch.actions
        && let Some(stranger) = unknown_action(&record, changes)
    {
        return Ok(MonitorWrite::UnknownAction(stranger));
    }
    let new_query = patch.query.as_ref().is_some_and(|q| *q != record.query);
    let enabling = patch.enabled == Some(true) && !record.enabled;
    if let Some(description) = patch.description {
        record.description = description;
    }
    if let Some(query) = patch.query {
        record.query = query;
    }
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
    }
    if let Some(changes) = patch.actions {
        record.actions = apply_actions(&mut *conn, id, &record.actions, changes).await?;
    }
    let saved = save_monitor(&mut *conn, &record, false).await?;
    if new_query || enabling {
        start_from_current_heads(&mut *conn, id).await?;
    }
    Ok(MonitorWrite::Saved(saved))
}

/// A kept action that is not one of the monitor's.
fn unknown_action(record: &MonitorRecord, changes: &[ActionChange]) -> Option<WebhookId> {
    changes.iter().find_map(|change| match change {
        ActionChange::Keep { webhook_id, .. }
            if !record.actions.iter().any(|a| a.webhook_id == *webhook_id) =>
        {
            Some(*webhook_id)
        }
        _ => None,
    })
}

/// Deletes the dropped actions' webhooks, patches the kept ones and creates
/// the new ones; returns the new list, in the order given.
async fn apply_actions(
    conn: &mut PgConnection,
    monitor: MonitorId,
    current: &[MonitorAction],
    changes: Vec<ActionChange>,
) -> PgResult<Vec<MonitorAction>> {
    let kept: HashSet<WebhookId> = changes
        .iter()
        .filter_map(|change| match change {
            ActionChange::Keep { webhook_id, .. } => Some(*webhook_id),
            ActionChange::Add(_) => None,
        })
        .collect();
    for dropped in current.iter().filter(|a| !kept.contains(&a.webhook_id)) {
        webhooks::mark_deleting(&mut *conn, dropped.webhook_id).await?;
    }
    let mut actions = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            ActionChange::Keep {
                webhook_id,
                include_results,
                webhook,
            } => {
                let kind = current
                    .iter()
                    .find(|a| a.webhook_id == webhook_id)
                    .map(|a| a.kind)
                    .ok_or_else(|| PgError::Corrupt("a kept action vanished".to_owned()))?;
                patch_action_webhook(&mut *conn, webhook_id, webhook).await?;
                actions.push(MonitorAction {
                    webhook_id,
                    kind,
                    include_results,
                });
            }
            ActionChange::Add(action) => {
                actions.push(add_action(&mut *conn, monitor, action).await?)
            }
        }
    }
    Ok(actions)
}

async fn delete_monitor(conn: &mut PgConnection, id: MonitorId) -> PgResult<bool> {
    let Some(record) = find_monitor(&mut *conn, id, Lock::Update).await? else {
        return Ok(false);
    };
    for action in &record.actions {
        webhooks::mark_deleting(&mut *conn, action.webhook_id).await?;
    }
    // Searched heads and runs go with it (ON DELETE CASCADE).
    sqlx::query("DELETE FROM monitors WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

// ---- searching ----

async fn set_baseline(
    conn: &mut PgConnection,
    monitor: MonitorId,
    repository: RepositoryId,
    heads: &HeadsMap,
) -> PgResult<bool> {
    let done = sqlx::query(
        "INSERT INTO monitor_heads (monitor_id, repository_id, heads, updated_at) \
         SELECT $1, $2, $3, herald_now_ms() \
         WHERE EXISTS (SELECT 1 FROM monitors WHERE id = $1) \
         AND EXISTS (SELECT 1 FROM monitor_repositories WHERE id = $2) \
         ON CONFLICT (monitor_id, repository_id) DO NOTHING",
    )
    .bind(monitor.0)
    .bind(repository.0)
    .bind(to_json(heads))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

async fn record_search(conn: &mut PgConnection, record: SearchRecord) -> PgResult<SearchRecorded> {
    if !find_monitor(&mut *conn, record.monitor_id, Lock::Share)
        .await?
        .is_some_and(|m| m.enabled)
    {
        return Ok(SearchRecorded::Inactive);
    }
    let searched: Option<String> = sqlx::query_scalar(
        "SELECT heads FROM monitor_heads WHERE monitor_id = $1 AND repository_id = $2 FOR UPDATE",
    )
    .bind(record.monitor_id.0)
    .bind(record.repository_id.0)
    .fetch_optional(&mut *conn)
    .await?;
    let searched: Option<HeadsMap> = searched.map(|t| parse(&t, "searched heads")).transpose()?;
    if searched.as_ref() != Some(&record.from) {
        return Ok(SearchRecorded::Stale);
    }
    sqlx::query(
        "UPDATE monitor_heads SET heads = $3, updated_at = herald_now_ms() \
         WHERE monitor_id = $1 AND repository_id = $2",
    )
    .bind(record.monitor_id.0)
    .bind(record.repository_id.0)
    .bind(to_json(&record.to))
    .execute(&mut *conn)
    .await?;
    let published = publish_to_audiences(&mut *conn, &record.events).await?;
    if let Some(run) = &record.run {
        let event_ids: Vec<Uuid> = published.iter().map(|p| p.event_id.0).collect();
        insert_run(&mut *conn, run, &event_ids).await?;
    }
    Ok(SearchRecorded::Recorded { published })
}

/// The events, each with a delivery for every enabled webhook of its audience.
async fn publish_to_audiences(
    conn: &mut PgConnection,
    events: &[MonitorEvent],
) -> PgResult<Vec<Published>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let named: Vec<Uuid> = events
        .iter()
        .flat_map(|e| e.webhooks.iter().map(|id| id.0))
        .collect();
    let found = sqlx::query(
        "SELECT id, project, event_types FROM webhooks \
         WHERE enabled AND (project IS NULL OR id = ANY($1)) ORDER BY id FOR SHARE",
    )
    .bind(&named)
    .fetch_all(&mut *conn)
    .await?;
    let mut candidates: Vec<(WebhookId, Option<String>, Vec<EventTypePattern>)> = Vec::new();
    for row in &found {
        let patterns: Vec<String> = row.try_get("event_types")?;
        candidates.push((
            WebhookId(row.try_get("id")?),
            row.try_get("project")?,
            parse_patterns(&patterns)?,
        ));
    }
    let enabled: HashSet<WebhookId> = candidates.iter().map(|(id, _, _)| *id).collect();
    let fan_out: Vec<Vec<WebhookId>> = events
        .iter()
        .map(|event| {
            let mut seen = HashSet::new();
            // The global audience is whoever an event with no project reaches.
            let subscribers = candidates
                .iter()
                .filter(|(_, scope, patterns)| {
                    event.global_subscribers
                        && receives(scope.as_deref(), patterns, None, &event.event.event_type)
                })
                .map(|(id, _, _)| *id);
            let named = event
                .webhooks
                .iter()
                .filter(|id| enabled.contains(id))
                .copied();
            subscribers
                .chain(named)
                .filter(|id| seen.insert(*id))
                .collect()
        })
        .collect();
    let inputs: Vec<(NewEvent, Option<String>)> =
        events.iter().map(|e| (e.event.clone(), None)).collect();
    let fresh = vec![true; inputs.len()];
    insert_events(&mut *conn, &inputs, &fresh).await?;
    // A code monitor's events carry no ordering key: none of its deliveries waits.
    let deliveries =
        insert_deliveries(&mut *conn, &inputs, &fan_out, &fresh, &HashSet::new()).await?;
    if deliveries > 0 {
        // As a publish does: the wake-up goes out with the commit.
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(WORK_CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(events
        .iter()
        .zip(&fan_out)
        .map(|(event, hooks)| Published {
            event_id: event.event.id,
            deliveries: u32::try_from(hooks.len()).unwrap_or(u32::MAX),
            replayed: false,
        })
        .collect())
}

async fn insert_run(
    conn: &mut PgConnection,
    run: &NewMonitorRun,
    event_ids: &[Uuid],
) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO monitor_runs (id, monitor_id, repository_id, repository_name, started_at, finished_at, \
         commits_scanned, matches, commits, truncated, error, event_ids, notifications) \
         VALUES ($1, $2, $3, $4, $5, herald_now_ms(), $6, $7, $8, false, $9, $10, $11)",
    )
    .bind(run.id.0)
    .bind(run.monitor_id.0)
    .bind(run.repository_id.0)
    .bind(&run.repository_name)
    .bind(run.started_at.millis())
    .bind(saturating_i64(run.commits_scanned))
    .bind(saturating_i64(run.matches))
    .bind(&run.commits)
    // `truncated` is false: every match is delivered now; the column keeps
    // older runs' flag.
    .bind(run.error.as_deref().map(text_without_nul))
    .bind(event_ids)
    .bind(to_json(&run.notifications))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM monitor_runs WHERE monitor_id = $1 AND id NOT IN \
         (SELECT id FROM monitor_runs WHERE monitor_id = $1 ORDER BY id DESC LIMIT $2)",
    )
    .bind(run.monitor_id.0)
    .bind(i64::from(RUNS_KEPT_PER_MONITOR))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn record_run(conn: &mut PgConnection, run: &NewMonitorRun) -> PgResult<bool> {
    if find_monitor(&mut *conn, run.monitor_id, Lock::Share)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    insert_run(&mut *conn, run, &[]).await?;
    Ok(true)
}

/// Runs `op` in a transaction and commits it.
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $body:expr) => {{
        async {
            let mut tx = $store.pool.begin().await?;
            let $conn: &mut PgConnection = &mut tx;
            let out = $body.await?;
            tx.commit().await?;
            Ok::<_, PgError>(out)
        }
        .await
        .map_err(herald_store::StoreError::from)
    }};
}

#[async_trait]
impl MonitorStore for PgStore {
    async fn create_repository(&self, new: NewRepository) -> StoreResult<RepositoryWrite> {
        in_transaction!(self, |conn| create_repository(conn, new))
    }

    async fn get_repository(&self, id: RepositoryId) -> StoreResult<Option<RepositoryRecord>> {
        let mut conn = self.pool.acquire().await?;
        Ok(find_repository(&mut conn, id, false).await?)
    }

    async fn get_repository_by_name(&self, name: &str) -> StoreResult<Option<RepositoryRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM monitor_repositories WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(row.as_ref().map(repository).transpose()?)
    }

    async fn list_repositories(&self) -> StoreResult<Vec<RepositoryRecord>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM monitor_repositories ORDER BY created_at, id"
        ))
        .fetch_all(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(found.iter().map(repository).collect::<PgResult<_>>()?)
    }

    async fn update_repository(
        &self,
        id: RepositoryId,
        patch: RepositoryPatch,
    ) -> StoreResult<RepositoryWrite> {
        in_transaction!(self, |conn| update_repository(conn, id, patch))
    }

    async fn delete_repository(&self, id: RepositoryId) -> StoreResult<bool> {
        // Searched heads go with it (ON DELETE CASCADE); runs stay.
        let done = sqlx::query("DELETE FROM monitor_repositories WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.pool.acquire().await?)
            .await
            .map_err(PgError::from)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_fetch(
        &self,
        id: RepositoryId,
        result: FetchResult,
    ) -> StoreResult<Option<RepositoryRecord>> {
        in_transaction!(self, |conn| record_fetch(conn, id, result))
    }

    async fn create_monitor(&self, new: NewMonitor) -> StoreResult<MonitorRecord> {
        in_transaction!(self, |conn| create_monitor(conn, new))
    }

    async fn get_monitor(&self, id: MonitorId) -> StoreResult<Option<MonitorRecord>> {
        let mut conn = self.pool.acquire().await?;
        Ok(find_monitor(&mut conn, id, Lock::None).await?)
    }

    async fn list_monitors(&self) -> StoreResult<Vec<MonitorRecord>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            monitor_columns!(),
            " FROM monitors m ORDER BY m.created_at, m.id"
        ))
        .fetch_all(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(found.iter().map(monitor).collect::<PgResult<_>>()?)
    }

    async fn update_monitor(
        &self,
        id: MonitorId,
        patch: MonitorPatch,
    ) -> StoreResult<MonitorWrite> {
        let written = in_transaction!(self, |conn| update_monitor(conn, id, patch))?;
        // The actions' webhooks deleted or disabled have their rows to go.
        cleanup::finish_all(&self.pool).await?;
        Ok(written)
    }

    async fn delete_monitor(&self, id: MonitorId) -> StoreResult<bool> {
        let deleted = in_transaction!(self, |conn| delete_monitor(conn, id))?;
        cleanup::finish_all(&self.pool).await?;
        Ok(deleted)
    }

    async fn monitor_states(&self, repository: RepositoryId) -> StoreResult<Vec<MonitorState>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            monitor_columns!(),
            ", h.heads AS searched FROM monitors m \
             LEFT JOIN monitor_heads h ON h.monitor_id = m.id AND h.repository_id = $1 \
             WHERE m.enabled ORDER BY m.created_at, m.id"
        ))
        .bind(repository.0)
        .fetch_all(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        let states = found
            .iter()
            .map(|row| {
                let searched: Option<String> = row.try_get("searched")?;
                Ok(MonitorState {
                    monitor: monitor(row)?,
                    searched: searched.map(|t| parse(&t, "searched heads")).transpose()?,
                })
            })
            .collect::<PgResult<_>>()?;
        Ok(states)
    }

    async fn set_baseline(
        &self,
        monitor: MonitorId,
        repository: RepositoryId,
        heads: HeadsMap,
    ) -> StoreResult<bool> {
        in_transaction!(self, |conn| set_baseline(conn, monitor, repository, &heads))
    }

    async fn record_search(&self, record: SearchRecord) -> StoreResult<SearchRecorded> {
        in_transaction!(self, |conn| record_search(conn, record))
    }

    async fn record_run(&self, run: NewMonitorRun) -> StoreResult<bool> {
        in_transaction!(self, |conn| record_run(conn, &run))
    }

    async fn list_runs(
        &self,
        monitor: MonitorId,
        limit: u32,
    ) -> StoreResult<Vec<MonitorRunRecord>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM monitor_runs WHERE monitor_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(monitor.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(found.iter().map(run).collect::<PgResult<_>>()?)
    }
}

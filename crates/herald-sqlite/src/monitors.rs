//! Code monitors ([`MonitorStore`]): repositories, monitors, searched heads and
//! runs. Every write is one writer job, so a monitor and its action webhooks,
//! or a search's heads, run and events, commit together. A search's events
//! are stored with `events::insert_event`, the rows a publish writes, sent to
//! the webhooks the writer's webhook cache names.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::{EventId, WebhookId};
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_store::{
    ActionChange, FetchResult, HeadsMap, MonitorAction, MonitorEvent, MonitorId, MonitorPatch,
    MonitorRecord, MonitorRunId, MonitorRunRecord, MonitorState, MonitorStore, MonitorWrite,
    NewMonitor, NewMonitorRun, NewRepository, Published, RUNS_KEPT_PER_MONITOR, RepositoryId,
    RepositoryPatch, RepositoryRecord, RepositoryWrite, SearchRecord, SearchRecorded, StoreResult,
    WebhookPatch, monitor_project,
};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::cleanup::Cleanup;
use crate::error::{Failure, SqliteError};
use crate::events::insert_event;
use crate::rows::{timestamp, to_json};
use crate::webhooks;
use crate::writer::Writer;

/// Appended to the schema's migrations.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE monitor_repositories (
    id                BLOB PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    source_display    TEXT NOT NULL,
    source_sealed     BLOB NOT NULL,
    branches          TEXT,           -- JSON array; NULL: the default branch
    fetch_interval_ms INTEGER,        -- NULL: the server's default
    heads             TEXT,           -- JSON object ref -> commit; NULL before a fetch
    last_fetched_at   INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE monitors (
    id          BLOB PRIMARY KEY,
    description TEXT NOT NULL,
    query       TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    actions     TEXT NOT NULL,  -- JSON array of {webhook_id, kind, include_results}
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- What each monitor has searched in each repository.
CREATE TABLE monitor_heads (
    monitor_id    BLOB NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    repository_id BLOB NOT NULL REFERENCES monitor_repositories (id) ON DELETE CASCADE,
    heads         TEXT NOT NULL,  -- JSON object ref -> commit
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, repository_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX monitor_heads_by_repository ON monitor_heads (repository_id);

-- Runs outlive their repository, so the repository is not a foreign key.
CREATE TABLE monitor_runs (
    id              BLOB PRIMARY KEY,
    monitor_id      BLOB NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    repository_id   BLOB NOT NULL,
    repository_name TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER NOT NULL,
    commits_scanned INTEGER NOT NULL,
    matches         INTEGER NOT NULL,
    commits         TEXT NOT NULL,  -- JSON array of commit ids
    truncated       INTEGER NOT NULL,
    error           TEXT,
    event_ids       TEXT NOT NULL   -- JSON array of event ids
) STRICT;
CREATE INDEX monitor_runs_by_monitor ON monitor_runs (monitor_id, id);
"#;

/// A run's split over notifications (JSON array of `RunNotification`); runs
/// logged before it have none.
pub(crate) const RUN_NOTIFICATIONS_MIGRATION: &str =
    "ALTER TABLE monitor_runs ADD COLUMN notifications TEXT NOT NULL DEFAULT '[]';";

const REPOSITORY_COLUMNS: &str = "id, name, source_display, source_sealed, branches, fetch_interval_ms, heads, \
     last_fetched_at, last_error, created_at, updated_at";
const MONITOR_COLUMNS: &str =
    "m.id, m.description, m.query, m.enabled, m.actions, m.created_at, m.updated_at";
const RUN_COLUMNS: &str = "id, monitor_id, repository_id, repository_name, started_at, finished_at, \
     commits_scanned, matches, commits, truncated, error, event_ids, notifications";

// ---- rows ----

fn corrupt(
    index: usize,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.into())
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| corrupt(index, e))
}

fn optional_json<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(index, e)))
        .transpose()
}

fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|e| corrupt(index, e))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn repository_from_row(row: &Row<'_>) -> rusqlite::Result<RepositoryRecord> {
    let interval: Option<i64> = row.get(5)?;
    Ok(RepositoryRecord {
        id: RepositoryId::from_bytes(row.get(0)?),
        name: row.get(1)?,
        // Masked again: rows from before a masking rule existed.
        source_display: shown_url::obscure_text(&row.get::<_, String>(2)?),
        source_sealed: row.get(3)?,
        branches: optional_json(row, 4)?,
        fetch_interval: interval
            .map(|ms| {
                u64::try_from(ms)
                    .map(Duration::from_millis)
                    .map_err(|e| corrupt(5, e))
            })
            .transpose()?,
        heads: optional_json(row, 6)?,
        last_fetched_at: row.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        last_error: row.get(8)?,
        created_at: timestamp(row, 9)?,
        updated_at: timestamp(row, 10)?,
    })
}

fn monitor_from_row(row: &Row<'_>) -> rusqlite::Result<MonitorRecord> {
    Ok(MonitorRecord {
        id: MonitorId::from_bytes(row.get(0)?),
        description: row.get(1)?,
        query: row.get(2)?,
        enabled: row.get(3)?,
        actions: json_column(row, 4)?,
        created_at: timestamp(row, 5)?,
        updated_at: timestamp(row, 6)?,
    })
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<MonitorRunRecord> {
    Ok(MonitorRunRecord {
        id: MonitorRunId::from_bytes(row.get(0)?),
        monitor_id: MonitorId::from_bytes(row.get(1)?),
        repository_id: RepositoryId::from_bytes(row.get(2)?),
        repository_name: row.get(3)?,
        started_at: timestamp(row, 4)?,
        finished_at: timestamp(row, 5)?,
        commits_scanned: count(row, 6)?,
        matches: count(row, 7)?,
        commits: json_column(row, 8)?,
        truncated: row.get(9)?,
        error: row.get(10)?,
        event_ids: json_column(row, 11)?,
        notifications: json_column(row, 12)?,
    })
}

// ---- repositories ----

fn find_repository(
    conn: &Connection,
    id: RepositoryId,
) -> Result<Option<RepositoryRecord>, SqliteError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM monitor_repositories WHERE id = ?1"
        ))?
        .query_row([id.as_bytes()], repository_from_row)
        .optional()?)
}

fn find_repository_by_name(
    conn: &Connection,
    name: &str,
) -> Result<Option<RepositoryRecord>, Failure> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REPOSITORY_COLUMNS} FROM monitor_repositories WHERE name = ?1"
        ))?
        .query_row([name], repository_from_row)
        .optional()?)
}

fn list_repositories(conn: &Connection) -> Result<Vec<RepositoryRecord>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {REPOSITORY_COLUMNS} FROM monitor_repositories ORDER BY created_at, id"
    ))?;
    let records = select
        .query_map([], repository_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

fn name_taken(
    conn: &Connection,
    name: &str,
    except: Option<RepositoryId>,
) -> Result<bool, SqliteError> {
    let owner: Option<[u8; 16]> = conn
        .prepare_cached("SELECT id FROM monitor_repositories WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    Ok(owner.is_some_and(|id| Some(RepositoryId::from_bytes(id)) != except))
}

fn save_repository(conn: &Connection, record: &RepositoryRecord) -> Result<(), SqliteError> {
    conn.prepare_cached(&format!(
        "INSERT INTO monitor_repositories ({REPOSITORY_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, source_display = excluded.source_display, \
         source_sealed = excluded.source_sealed, branches = excluded.branches, \
         fetch_interval_ms = excluded.fetch_interval_ms, heads = excluded.heads, \
         last_fetched_at = excluded.last_fetched_at, last_error = excluded.last_error, \
         updated_at = excluded.updated_at"
    ))?
    .execute(params![
        record.id.as_bytes(),
        record.name,
        record.source_display,
        record.source_sealed,
        record.branches.as_ref().map(to_json).transpose()?,
        record.fetch_interval.map(millis),
        record.heads.as_ref().map(to_json).transpose()?,
        record.last_fetched_at.map(Timestamp::millis),
        record.last_error,
        record.created_at.millis(),
        record.updated_at.millis(),
    ])?;
    Ok(())
}

fn create_repository(w: &Writer, new: NewRepository) -> Result<RepositoryWrite, Failure> {
    let conn = w.conn();
    if name_taken(conn, &new.name, None)? {
        return Ok(RepositoryWrite::NameTaken);
    }
    let now = Timestamp::now();
    let record = RepositoryRecord {
        id: new.id,
        name: new.name,
        source_display: new.source_display,
        source_sealed: new.source_sealed,
        branches: new.branches,
        fetch_interval: new.fetch_interval,
        heads: None,
        last_fetched_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    save_repository(conn, &record)?;
    Ok(RepositoryWrite::Saved(record))
}

fn update_repository(
    w: &Writer,
    id: RepositoryId,
    patch: RepositoryPatch,
) -> Result<RepositoryWrite, Failure> {
    let conn = w.conn();
    let Some(mut record) = find_repository(conn, id)? else {
        return Ok(RepositoryWrite::NotFound);
    };
    if let Some(name) = &patch.name
        && name_taken(conn, name, Some(id))?
    {
        return Ok(RepositoryWrite::NameTaken);
    }
    if patch.apply_to(&mut record) {
        conn.prepare_cached("DELETE FROM monitor_heads WHERE repository_id = ?1")?
            .execute([id.as_bytes()])?;
    }
    record.updated_at = Timestamp::now();
    save_repository(conn, &record)?;
    Ok(RepositoryWrite::Saved(record))
}

fn delete_repository(w: &Writer, id: RepositoryId) -> Result<bool, Failure> {
    let conn = w.conn();
    conn.prepare_cached("DELETE FROM monitor_heads WHERE repository_id = ?1")?
        .execute([id.as_bytes()])?;
    let deleted = conn
        .prepare_cached("DELETE FROM monitor_repositories WHERE id = ?1")?
        .execute([id.as_bytes()])?;
    Ok(deleted > 0)
}

fn record_fetch(
    w: &Writer,
    id: RepositoryId,
    result: FetchResult,
) -> Result<Option<RepositoryRecord>, Failure> {
    let conn = w.conn();
    let Some(mut record) = find_repository(conn, id)? else {
        return Ok(None);
    };
    let now = Timestamp::now();
    match result {
        FetchResult::Fetched(heads) => {
            record.heads = Some(heads);
            record.last_error = None;
        }
        FetchResult::Failed(error) => record.last_error = Some(error),
    }
    record.last_fetched_at = Some(now);
    save_repository(conn, &record)?;
    Ok(Some(record))
}

// ---- monitors ----

fn find_monitor(conn: &Connection, id: MonitorId) -> Result<Option<MonitorRecord>, SqliteError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MONITOR_COLUMNS} FROM monitors m WHERE m.id = ?1"
        ))?
        .query_row([id.as_bytes()], monitor_from_row)
        .optional()?)
}

fn list_monitors(conn: &Connection) -> Result<Vec<MonitorRecord>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {MONITOR_COLUMNS} FROM monitors m ORDER BY m.created_at, m.id"
    ))?;
    let records = select
        .query_map([], monitor_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

fn save_monitor(conn: &Connection, record: &MonitorRecord) -> Result<(), SqliteError> {
    conn.prepare_cached(
        "INSERT INTO monitors (id, description, query, enabled, actions, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (id) DO UPDATE SET description = excluded.description, query = excluded.query, \
         enabled = excluded.enabled, actions = excluded.actions, updated_at = excluded.updated_at",
    )?
    .execute(params![
        record.id.as_bytes(),
        record.description,
        record.query,
        record.enabled,
        to_json(&record.actions)?,
        record.created_at.millis(),
        record.updated_at.millis(),
    ])?;
    Ok(())
}

/// Records every fetched repository's current heads as searched by `monitor`,
/// replacing whatever it had searched.
fn start_from_current_heads(
    conn: &Connection,
    monitor: MonitorId,
    now: Timestamp,
) -> Result<(), SqliteError> {
    conn.prepare_cached("DELETE FROM monitor_heads WHERE monitor_id = ?1")?
        .execute([monitor.as_bytes()])?;
    conn.prepare_cached(
        "INSERT INTO monitor_heads (monitor_id, repository_id, heads, updated_at) \
         SELECT ?1, id, heads, ?2 FROM monitor_repositories WHERE heads IS NOT NULL",
    )?
    .execute(params![monitor.as_bytes(), now.millis()])?;
    Ok(())
}

fn add_action(
    w: &Writer,
    monitor: MonitorId,
    action: herald_store::NewAction,
) -> Result<MonitorAction, Failure> {
    let mut webhook = action.webhook;
    webhook.project = Some(monitor_project(monitor));
    // A monitor's actions are bounded by the API, not by the scope limit.
    let created = webhooks::create(w, webhook, u32::MAX)?;
    Ok(MonitorAction {
        webhook_id: created.id,
        kind: action.kind,
        include_results: action.include_results,
    })
}

fn create_monitor(w: &Writer, new: NewMonitor) -> Result<MonitorRecord, Failure> {
    let now = Timestamp::now();
    let mut actions = Vec::with_capacity(new.actions.len());
    for action in new.actions {
        actions.push(add_action(w, new.id, action)?);
    }
    let record = MonitorRecord {
        id: new.id,
        description: new.description,
        query: new.query,
        enabled: new.enabled,
        actions,
        created_at: now,
        updated_at: now,
    };
    save_monitor(w.conn(), &record)?;
    start_from_current_heads(w.conn(), record.id, now)?;
    Ok(record)
}

/// Applies the patch; returns what came of it and what the first batches of
/// the actions' webhook changes left.
fn update_monitor(
    w: &Writer,
    id: MonitorId,
    patch: MonitorPatch,
) -> Result<(MonitorWrite, Vec<Cleanup>), Failure> {
    let conn = w.conn();
    let Some(mut record) = find_monitor(conn, id)? else {
        return Ok((MonitorWrite::NotFound, Vec::new()));
    };
    if let Some(changes) = &patch.actions
        && let Some(stranger) = unknown_action(&record, changes)
    {
        return Ok((MonitorWrite::UnknownAction(stranger), Vec::new()));
    }
    let now = Timestamp::now();
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
    let mut left = Vec::new();
    if let Some(changes) = patch.actions {
        record.actions = apply_actions(w, id, &record.actions, changes, &mut left)?;
    }
    record.updated_at = now;
    save_monitor(conn, &record)?;
    if new_query || enabling {
        start_from_current_heads(conn, id, now)?;
    }
    Ok((MonitorWrite::Saved(record), left))
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
fn apply_actions(
    w: &Writer,
    monitor: MonitorId,
    current: &[MonitorAction],
    changes: Vec<ActionChange>,
    left: &mut Vec<Cleanup>,
) -> Result<Vec<MonitorAction>, Failure> {
    let kept: HashSet<WebhookId> = changes
        .iter()
        .filter_map(|change| match change {
            ActionChange::Keep { webhook_id, .. } => Some(*webhook_id),
            ActionChange::Add(_) => None,
        })
        .collect();
    for dropped in current.iter().filter(|a| !kept.contains(&a.webhook_id)) {
        left.extend(webhooks::delete(w, dropped.webhook_id)?.flatten());
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
                    .ok_or(SqliteError::Inconsistent("a kept action vanished"))?;
                // The scope stays the monitor's.
                let patch = WebhookPatch {
                    project: None,
                    ..webhook
                };
                let (_, rest) = webhooks::update(w, webhook_id, patch, u32::MAX)?;
                left.extend(rest);
                actions.push(MonitorAction {
                    webhook_id,
                    kind,
                    include_results,
                });
            }
            ActionChange::Add(action) => actions.push(add_action(w, monitor, action)?),
        }
    }
    Ok(actions)
}

/// Deletes the monitor with its actions' webhooks; returns whether it existed
/// and what the first batches of deleting the webhooks left.
fn delete_monitor(w: &Writer, id: MonitorId) -> Result<(bool, Vec<Cleanup>), Failure> {
    let conn = w.conn();
    let Some(record) = find_monitor(conn, id)? else {
        return Ok((false, Vec::new()));
    };
    let mut left = Vec::new();
    for action in &record.actions {
        left.extend(webhooks::delete(w, action.webhook_id)?.flatten());
    }
    for table in ["monitor_heads", "monitor_runs"] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE monitor_id = ?1"))?
            .execute([id.as_bytes()])?;
    }
    conn.prepare_cached("DELETE FROM monitors WHERE id = ?1")?
        .execute([id.as_bytes()])?;
    Ok((true, left))
}

// ---- searching ----

fn monitor_states(
    conn: &Connection,
    repository: RepositoryId,
) -> Result<Vec<MonitorState>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {MONITOR_COLUMNS}, h.heads FROM monitors m \
         LEFT JOIN monitor_heads h ON h.monitor_id = m.id AND h.repository_id = ?1 \
         WHERE m.enabled ORDER BY m.created_at, m.id"
    ))?;
    let states = select
        .query_map([repository.as_bytes()], |row| {
            Ok(MonitorState {
                monitor: monitor_from_row(row)?,
                searched: optional_json(row, 7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(states)
}

fn searched_heads(
    conn: &Connection,
    monitor: MonitorId,
    repository: RepositoryId,
) -> Result<Option<HeadsMap>, SqliteError> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT heads FROM monitor_heads WHERE monitor_id = ?1 AND repository_id = ?2",
        )?
        .query_row([monitor.as_bytes(), repository.as_bytes()], |row| {
            row.get(0)
        })
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|_| SqliteError::Inconsistent("unreadable searched heads"))
    })
    .transpose()
}

fn set_baseline(
    w: &Writer,
    monitor: MonitorId,
    repository: RepositoryId,
    heads: &HeadsMap,
) -> Result<bool, Failure> {
    let inserted = w
        .conn()
        .prepare_cached(
            "INSERT INTO monitor_heads (monitor_id, repository_id, heads, updated_at) \
             SELECT ?1, ?2, ?3, ?4 \
             WHERE EXISTS (SELECT 1 FROM monitors WHERE id = ?1) \
             AND EXISTS (SELECT 1 FROM monitor_repositories WHERE id = ?2) \
             ON CONFLICT (monitor_id, repository_id) DO NOTHING",
        )?
        .execute(params![
            monitor.as_bytes(),
            repository.as_bytes(),
            to_json(heads)?,
            Timestamp::now().millis()
        ])?;
    Ok(inserted > 0)
}

fn record_search(w: &Writer, record: SearchRecord) -> Result<SearchRecorded, Failure> {
    let conn = w.conn();
    if !find_monitor(conn, record.monitor_id)?.is_some_and(|m| m.enabled) {
        return Ok(SearchRecorded::Inactive);
    }
    if searched_heads(conn, record.monitor_id, record.repository_id)?.as_ref() != Some(&record.from)
    {
        return Ok(SearchRecorded::Stale);
    }
    let now = Timestamp::now();
    conn.prepare_cached(
        "UPDATE monitor_heads SET heads = ?3, updated_at = ?4 WHERE monitor_id = ?1 AND repository_id = ?2",
    )?
    .execute(params![
        record.monitor_id.as_bytes(),
        record.repository_id.as_bytes(),
        to_json(&record.to)?,
        now.millis()
    ])?;
    let mut published = Vec::with_capacity(record.events.len());
    for event in &record.events {
        published.push(publish_to_audience(w, event, now)?);
    }
    if let Some(run) = &record.run {
        let event_ids: Vec<EventId> = published.iter().map(|p| p.event_id).collect();
        insert_run(conn, run, &event_ids, now)?;
    }
    Ok(SearchRecorded::Recorded { published })
}

/// The event, with a delivery for each enabled webhook of its audience, once.
fn publish_to_audience(
    w: &Writer,
    event: &MonitorEvent,
    now: Timestamp,
) -> Result<Published, Failure> {
    let cache = w.webhooks()?;
    let mut seen = HashSet::new();
    let subscribers = event
        .global_subscribers
        .then(|| {
            cache
                .matching(None, &event.event.event_type)
                .map(|hook| hook.id)
        })
        .into_iter()
        .flatten();
    let named = event
        .webhooks
        .iter()
        .filter(|id| cache.get(**id).is_some_and(|hook| hook.enabled))
        .copied();
    let targets: Vec<WebhookId> = subscribers
        .chain(named)
        .filter(|id| seen.insert(*id))
        .collect();
    let targets = targets.into_iter().filter_map(|id| {
        let ordering = cache.get(id)?.ordering;
        Some((id, ordering))
    });
    let deliveries = insert_event(w.conn(), &event.event, targets, now)?;
    Ok(Published {
        event_id: event.event.id,
        deliveries,
        replayed: false,
    })
}

fn insert_run(
    conn: &Connection,
    run: &NewMonitorRun,
    event_ids: &[EventId],
    now: Timestamp,
) -> Result<(), SqliteError> {
    conn.prepare_cached(&format!(
        "INSERT INTO monitor_runs ({RUN_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        run.id.as_bytes(),
        run.monitor_id.as_bytes(),
        run.repository_id.as_bytes(),
        run.repository_name,
        run.started_at.millis(),
        now.millis(),
        i64::try_from(run.commits_scanned).unwrap_or(i64::MAX),
        i64::try_from(run.matches).unwrap_or(i64::MAX),
        to_json(&run.commits)?,
        // Every match is delivered now; the column keeps older runs' flag.
        false,
        run.error,
        to_json(event_ids)?,
        to_json(&run.notifications)?,
    ])?;
    conn.prepare_cached(
        "DELETE FROM monitor_runs WHERE monitor_id = ?1 AND id NOT IN \
         (SELECT id FROM monitor_runs WHERE monitor_id = ?1 ORDER BY id DESC LIMIT ?2)",
    )?
    .execute(params![run.monitor_id.as_bytes(), RUNS_KEPT_PER_MONITOR])?;
    Ok(())
}

fn record_run(w: &Writer, run: &NewMonitorRun) -> Result<bool, Failure> {
    if find_monitor(w.conn(), run.monitor_id)?.is_none() {
        return Ok(false);
    }
    insert_run(w.conn(), run, &[], Timestamp::now())?;
    Ok(true)
}

fn list_runs(
    conn: &Connection,
    monitor: MonitorId,
    limit: u32,
) -> Result<Vec<MonitorRunRecord>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM monitor_runs WHERE monitor_id = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let runs = select
        .query_map(params![monitor.as_bytes(), limit], run_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(runs)
}

#[async_trait]
impl MonitorStore for SqliteStore {
    async fn create_repository(&self, new: NewRepository) -> StoreResult<RepositoryWrite> {
        self.writer
            .run(move |w| create_repository(w, new.clone()))
            .await
    }

    async fn get_repository(&self, id: RepositoryId) -> StoreResult<Option<RepositoryRecord>> {
        self.readers
            .run(move |conn| find_repository(conn, id).map_err(Failure::from))
            .await
    }

    async fn get_repository_by_name(&self, name: &str) -> StoreResult<Option<RepositoryRecord>> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| find_repository_by_name(conn, &name))
            .await
    }

    async fn list_repositories(&self) -> StoreResult<Vec<RepositoryRecord>> {
        self.readers.run(|conn| list_repositories(conn)).await
    }

    async fn update_repository(
        &self,
        id: RepositoryId,
        patch: RepositoryPatch,
    ) -> StoreResult<RepositoryWrite> {
        self.writer
            .run(move |w| update_repository(w, id, patch.clone()))
            .await
    }

    async fn delete_repository(&self, id: RepositoryId) -> StoreResult<bool> {
        self.writer.run(move |w| delete_repository(w, id)).await
    }

    async fn record_fetch(
        &self,
        id: RepositoryId,
        result: FetchResult,
    ) -> StoreResult<Option<RepositoryRecord>> {
        self.writer
            .run(move |w| record_fetch(w, id, result.clone()))
            .await
    }

    async fn create_monitor(&self, new: NewMonitor) -> StoreResult<MonitorRecord> {
        self.writer
            .run(move |w| create_monitor(w, new.clone()))
            .await
    }

    async fn get_monitor(&self, id: MonitorId) -> StoreResult<Option<MonitorRecord>> {
        self.readers
            .run(move |conn| find_monitor(conn, id).map_err(Failure::from))
            .await
    }

    async fn list_monitors(&self) -> StoreResult<Vec<MonitorRecord>> {
        self.readers.run(|conn| list_monitors(conn)).await
    }

    async fn update_monitor(
        &self,
        id: MonitorId,
        patch: MonitorPatch,
    ) -> StoreResult<MonitorWrite> {
        let (written, left) = self
            .writer
            .run(move |w| update_monitor(w, id, patch.clone()))
            .await?;
        for rest in left {
            self.finish(Some(rest)).await?;
        }
        Ok(written)
    }

    async fn delete_monitor(&self, id: MonitorId) -> StoreResult<bool> {
        let (deleted, left) = self.writer.run(move |w| delete_monitor(w, id)).await?;
        for rest in left {
            self.finish(Some(rest)).await?;
        }
        Ok(deleted)
    }

    async fn monitor_states(&self, repository: RepositoryId) -> StoreResult<Vec<MonitorState>> {
        self.readers
            .run(move |conn| monitor_states(conn, repository))
            .await
    }

    async fn set_baseline(
        &self,
        monitor: MonitorId,
        repository: RepositoryId,
        heads: HeadsMap,
    ) -> StoreResult<bool> {
        self.writer
            .run(move |w| set_baseline(w, monitor, repository, &heads))
            .await
    }

    async fn record_search(&self, record: SearchRecord) -> StoreResult<SearchRecorded> {
        self.writer
            .run(move |w| record_search(w, record.clone()))
            .await
    }

    async fn record_run(&self, run: NewMonitorRun) -> StoreResult<bool> {
        self.writer.run(move |w| record_run(w, &run)).await
    }

    async fn list_runs(
        &self,
        monitor: MonitorId,
        limit: u32,
    ) -> StoreResult<Vec<MonitorRunRecord>> {
        self.readers
            .run(move |conn| list_runs(conn, monitor, limit))
            .await
    }
}

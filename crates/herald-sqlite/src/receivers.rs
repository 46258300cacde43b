//! Incoming webhook receivers ([`ReceiverStore`]): the receivers, their
//! request log, the host delivery ids seen, and changeset records.
//!
//! An ingest is one write job: the delivery id check-and-insert, the changeset
//! read, the caller's plan, the changeset writes, the events (published with
//! `events::publish`, the same fan-out as `Store::publish`) and the log row
//! are one job, so they commit together or not at all. The one
//! writer thread runs jobs one after another, which is what makes the
//! changeset read-modify-write safe against concurrent requests.

use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::EventId;
use herald_core::time::Timestamp;
use herald_store::receivers::head_prefix;
use herald_store::{
    ChangesetLookup, ChangesetPlan, Ingest, IngestOutcome, NewEvent, NewReceiver,
    NewReceiverRequest, ReceiverId, ReceiverPatch, ReceiverPurgePolicy, ReceiverPurgeReport,
    ReceiverRecord, ReceiverRequestDetail, ReceiverRequestId, ReceiverRequestPage,
    ReceiverRequestQuery, ReceiverRequestSummary, ReceiverStore, RequestOutcome, StoreError,
    StoreResult, StoredChangeset,
};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::cleanup::Cleanup;
use crate::error::{Failure, SqliteError};
use crate::events;
use crate::rows::{timestamp, to_json};
use crate::writer::Writer;

/// Appended to the schema's migrations.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE receivers (
    id                          BLOB PRIMARY KEY,
    name                        TEXT,
    kind                        TEXT NOT NULL,
    urn                         TEXT NOT NULL,
    credentials_sealed          BLOB NOT NULL,
    previous_credentials_sealed BLOB,
    previous_valid_until        INTEGER,
    github_legacy_sha1          INTEGER NOT NULL,
    gitlab_standard_webhooks    INTEGER NOT NULL,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
) STRICT;

-- A rowid table, because bodies can be large.
CREATE TABLE receiver_requests (
    id             BLOB PRIMARY KEY,
    receiver_id    BLOB NOT NULL REFERENCES receivers (id),
    received_at    INTEGER NOT NULL,
    headers        TEXT NOT NULL,  -- JSON array of [name, value], redacted
    body           BLOB NOT NULL,
    body_truncated INTEGER NOT NULL,
    verified       INTEGER NOT NULL,
    verification   TEXT NOT NULL,
    status_code    INTEGER NOT NULL,
    event_name     TEXT,
    delivery_id    TEXT,
    outcome        TEXT NOT NULL,
    message        TEXT,
    event_ids      TEXT NOT NULL   -- JSON array of event ids
) STRICT;
-- A receiver's log, newest first.
CREATE INDEX receiver_requests_by_receiver ON receiver_requests (receiver_id, id);
-- Retention.
CREATE INDEX receiver_requests_by_received_at ON receiver_requests (received_at);

CREATE TABLE receiver_delivery_ids (
    receiver_id BLOB NOT NULL REFERENCES receivers (id),
    delivery_id TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (receiver_id, delivery_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX receiver_delivery_ids_by_created_at ON receiver_delivery_ids (created_at);

CREATE TABLE changeset_records (
    urn         TEXT NOT NULL,
    repository  TEXT NOT NULL,
    external_id TEXT NOT NULL,
    head_sha    TEXT,
    head_prefix TEXT,           -- the head's first 7 characters, lower-case
    state       TEXT NOT NULL,  -- the caller's JSON
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (urn, repository, external_id)
) STRICT;
-- Commit checks find their changesets by head commit.
CREATE INDEX changeset_records_by_head ON changeset_records (urn, repository, head_prefix);
"#;

/// Appended to the schema's migrations: the cap on unverified log rows.
pub(crate) const UNVERIFIED_CAP_MIGRATION: &str = r#"
ALTER TABLE receivers ADD COLUMN unverified_dropped INTEGER NOT NULL DEFAULT 0;
-- A receiver's unverified rows, oldest first, for the cap.
CREATE INDEX receiver_requests_unverified ON receiver_requests (receiver_id, id) WHERE verified = 0;
"#;

/// The columns a new receiver is written with.
const RECEIVER_COLUMNS: &str = "id, name, kind, urn, credentials_sealed, previous_credentials_sealed, \
     previous_valid_until, github_legacy_sha1, gitlab_standard_webhooks, created_at, updated_at";

/// The columns a receiver is read with: [`RECEIVER_COLUMNS`] and its counters.
const RECEIVER_READ_COLUMNS: &str = "id, name, kind, urn, credentials_sealed, \
     previous_credentials_sealed, previous_valid_until, github_legacy_sha1, \
     gitlab_standard_webhooks, created_at, updated_at, unverified_dropped";

const SUMMARY_COLUMNS: &str = "id, receiver_id, received_at, verified, verification, status_code, \
     event_name, delivery_id, outcome, message, event_ids";

const CHANGESET_COLUMNS: &str = "urn, repository, external_id, head_sha, state";

/// Hides the log of a receiver being deleted from every read.
const OF_A_KEPT_RECEIVER: &str =
    "AND receiver_id NOT IN (SELECT id FROM receivers WHERE deleting = 1)";

/// Sorts after every UUID: the cursor of the first page.
const AFTER_ALL_IDS: [u8; 16] = [0xff; 16];

fn receiver_from_row(row: &Row<'_>) -> rusqlite::Result<ReceiverRecord> {
    Ok(ReceiverRecord {
        id: ReceiverId::from_bytes(row.get(0)?),
        name: row.get(1)?,
        kind: row.get(2)?,
        urn: row.get(3)?,
        credentials_sealed: row.get(4)?,
        previous_credentials_sealed: row.get(5)?,
        previous_valid_until: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_millis),
        github_legacy_sha1: row.get(7)?,
        gitlab_standard_webhooks: row.get(8)?,
        created_at: timestamp(row, 9)?,
        updated_at: timestamp(row, 10)?,
        unverified_dropped: row.get::<_, i64>(11)?.try_into().unwrap_or(0),
    })
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<ReceiverRequestSummary> {
    let outcome: String = row.get(8)?;
    let status: i64 = row.get(5)?;
    Ok(ReceiverRequestSummary {
        id: ReceiverRequestId::from_bytes(row.get(0)?),
        receiver_id: ReceiverId::from_bytes(row.get(1)?),
        received_at: timestamp(row, 2)?,
        verified: row.get(3)?,
        verification: row.get(4)?,
        status_code: u16::try_from(status).map_err(|e| corrupt(5, e))?,
        event_name: row.get(6)?,
        delivery_id: row.get(7)?,
        outcome: RequestOutcome::parse(&outcome)
            .ok_or_else(|| corrupt(8, format!("unknown outcome {outcome:?}")))?,
        message: row.get(9)?,
        event_ids: json_column(row, 10)?,
    })
}

fn changeset_from_row(row: &Row<'_>) -> rusqlite::Result<StoredChangeset> {
    Ok(StoredChangeset {
        urn: row.get(0)?,
        repository: row.get(1)?,
        external_id: row.get(2)?,
        head_sha: row.get(3)?,
        state: row.get(4)?,
    })
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| corrupt(index, e))
}

fn corrupt(
    index: usize,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.into())
}

// ---- receivers ----

fn find_receiver(conn: &Connection, id: ReceiverId) -> Result<Option<ReceiverRecord>, SqliteError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {RECEIVER_READ_COLUMNS} FROM receivers WHERE id = ?1 AND deleting = 0"
        ))?
        .query_row([id.as_bytes()], receiver_from_row)
        .optional()?)
}

fn list_receivers(conn: &Connection) -> Result<Vec<ReceiverRecord>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {RECEIVER_READ_COLUMNS} FROM receivers WHERE deleting = 0 ORDER BY created_at, id"
    ))?;
    let records = select
        .query_map([], receiver_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(records)
}

fn create_receiver(w: &Writer, new: NewReceiver) -> Result<ReceiverRecord, Failure> {
    let now = Timestamp::now();
    let record = ReceiverRecord {
        id: new.id,
        name: new.name,
        kind: new.kind,
        urn: new.urn,
        credentials_sealed: new.credentials_sealed,
        previous_credentials_sealed: None,
        previous_valid_until: None,
        github_legacy_sha1: new.github_legacy_sha1,
        gitlab_standard_webhooks: new.gitlab_standard_webhooks,
        created_at: now,
        updated_at: now,
        unverified_dropped: 0,
    };
    w.conn()
        .prepare_cached(&format!(
            "INSERT INTO receivers ({RECEIVER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))?
        .execute(params![
            record.id.as_bytes(),
            record.name,
            record.kind,
            record.urn,
            record.credentials_sealed,
            record.previous_credentials_sealed,
            record.previous_valid_until.map(Timestamp::millis),
            record.github_legacy_sha1,
            record.gitlab_standard_webhooks,
            record.created_at.millis(),
            record.updated_at.millis(),
        ])?;
    Ok(record)
}

/// Writes every mutable field of `record`.
fn save_receiver(conn: &Connection, record: &ReceiverRecord) -> Result<(), SqliteError> {
    conn.prepare_cached(
        "UPDATE receivers SET name = ?2, urn = ?3, credentials_sealed = ?4, previous_credentials_sealed = ?5, \
         previous_valid_until = ?6, github_legacy_sha1 = ?7, gitlab_standard_webhooks = ?8, updated_at = ?9 \
         WHERE id = ?1",
    )?
    .execute(params![
        record.id.as_bytes(),
        record.name,
        record.urn,
        record.credentials_sealed,
        record.previous_credentials_sealed,
        record.previous_valid_until.map(Timestamp::millis),
        record.github_legacy_sha1,
        record.gitlab_standard_webhooks,
        record.updated_at.millis(),
    ])?;
    Ok(())
}

fn update_receiver(
    w: &Writer,
    id: ReceiverId,
    patch: ReceiverPatch,
) -> Result<Option<ReceiverRecord>, Failure> {
    let Some(mut record) = find_receiver(w.conn(), id)? else {
        return Ok(None);
    };
    if let Some(name) = patch.name {
        record.name = name;
    }
    if let Some(urn) = patch.urn {
        record.urn = urn;
    }
    if let Some(credentials) = patch.credentials_sealed {
        record.credentials_sealed = credentials;
        record.previous_credentials_sealed = None;
        record.previous_valid_until = None;
    }
    if let Some(legacy) = patch.github_legacy_sha1 {
        record.github_legacy_sha1 = legacy;
    }
    if let Some(standard) = patch.gitlab_standard_webhooks {
        record.gitlab_standard_webhooks = standard;
    }
    record.updated_at = Timestamp::now();
    save_receiver(w.conn(), &record)?;
    Ok(Some(record))
}

fn rotate(
    w: &Writer,
    id: ReceiverId,
    credentials: Vec<u8>,
    grace: Duration,
) -> Result<Option<ReceiverRecord>, Failure> {
    let Some(mut record) = find_receiver(w.conn(), id)? else {
        return Ok(None);
    };
    let now = Timestamp::now();
    let replaced = std::mem::replace(&mut record.credentials_sealed, credentials);
    if grace.is_zero() {
        record.previous_credentials_sealed = None;
        record.previous_valid_until = None;
    } else {
        record.previous_credentials_sealed = Some(replaced);
        record.previous_valid_until = Some(now.saturating_add(grace));
    }
    record.updated_at = now;
    save_receiver(w.conn(), &record)?;
    Ok(Some(record))
}

/// Hides the receiver and its log from every read and deletes a first batch of
/// the log. `None` when there was no such receiver; else what the first batch
/// left.
fn delete_receiver(w: &Writer, id: ReceiverId) -> Result<Option<Option<Cleanup>>, Failure> {
    let marked = w
        .conn()
        .prepare_cached("UPDATE receivers SET deleting = 1 WHERE id = ?1 AND deleting = 0")?
        .execute([id.as_bytes()])?;
    if marked == 0 {
        return Ok(None);
    }
    Ok(Some(Cleanup::DeleteReceiver(id).start(w)?))
}

// ---- requests ----

fn insert_request(
    conn: &Connection,
    request: &NewReceiverRequest,
    outcome: RequestOutcome,
    event_ids: Vec<EventId>,
) -> Result<ReceiverRequestSummary, SqliteError> {
    let now = Timestamp::now();
    conn.prepare_cached(
        "INSERT INTO receiver_requests (id, receiver_id, received_at, headers, body, body_truncated, verified, \
         verification, status_code, event_name, delivery_id, outcome, message, event_ids) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        request.id.as_bytes(),
        request.receiver_id.as_bytes(),
        now.millis(),
        to_json(&request.headers)?,
        request.body,
        request.body_truncated,
        request.verified,
        request.verification,
        i64::from(request.status_code),
        request.event_name,
        request.delivery_id,
        outcome.as_str(),
        request.message,
        to_json(&event_ids)?,
    ])?;
    Ok(ReceiverRequestSummary {
        id: request.id,
        receiver_id: request.receiver_id,
        received_at: now,
        verified: request.verified,
        verification: request.verification.clone(),
        status_code: request.status_code,
        event_name: request.event_name.clone(),
        delivery_id: request.delivery_id.clone(),
        outcome,
        message: request.message.clone(),
        event_ids,
    })
}

fn record_request(
    w: &Writer,
    request: &NewReceiverRequest,
) -> Result<ReceiverRequestSummary, Failure> {
    Ok(insert_request(
        w.conn(),
        request,
        request.outcome,
        Vec::new(),
    )?)
}

fn record_unverified(
    w: &Writer,
    request: &NewReceiverRequest,
    keep: u32,
) -> Result<ReceiverRequestSummary, Failure> {
    let logged = record_request(w, request)?;
    let conn = w.conn();
    let receiver = request.receiver_id.as_bytes();
    let dropped = conn
        .prepare_cached(
            "DELETE FROM receiver_requests WHERE id IN (\
             SELECT id FROM receiver_requests WHERE receiver_id = ?1 AND verified = 0 \
             ORDER BY id DESC LIMIT -1 OFFSET ?2)",
        )
        .and_then(|mut delete| delete.execute(params![receiver, i64::from(keep)]))
        .map_err(SqliteError::from)?;
    if dropped > 0 {
        conn.prepare_cached(
            "UPDATE receivers SET unverified_dropped = unverified_dropped + ?2 WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![receiver, dropped as i64]))
        .map_err(SqliteError::from)?;
    }
    Ok(logged)
}

/// Remembers the delivery id; false when it was remembered already.
fn first_sighting(
    conn: &Connection,
    receiver: ReceiverId,
    delivery_id: &str,
) -> Result<bool, SqliteError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO receiver_delivery_ids (receiver_id, delivery_id, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![receiver.as_bytes(), delivery_id, Timestamp::now().millis()])?;
    Ok(inserted == 1)
}

fn ingest(w: &Writer, ingest: &Ingest) -> Result<IngestOutcome, Failure> {
    let conn = w.conn();
    let request = &ingest.request;
    if let Some(delivery_id) = &request.delivery_id
        && !first_sighting(conn, request.receiver_id, delivery_id)?
    {
        return Ok(IngestOutcome {
            request: insert_request(conn, request, RequestOutcome::Duplicate, Vec::new())?,
            duplicate: true,
            deliveries: 0,
        });
    }
    let mut planned = Vec::new();
    if let Some(work) = &ingest.changesets {
        let found = find_changesets(conn, &work.lookup)?;
        let plan: ChangesetPlan = (work.apply)(found).map_err(|e| {
            Failure::Refused(StoreError::Backend(format!(
                "the changeset update failed: {e}"
            )))
        })?;
        for record in &plan.writes {
            write_changeset(conn, record)?;
        }
        planned = plan.events;
    }
    let to_publish: Vec<&NewEvent> = ingest.events.iter().chain(&planned).collect();
    let mut deliveries = 0u32;
    let mut event_ids = Vec::with_capacity(to_publish.len());
    for event in to_publish {
        let published = events::publish(w, event, None)?;
        deliveries = deliveries.saturating_add(published.deliveries);
        event_ids.push(published.event_id);
    }
    Ok(IngestOutcome {
        request: insert_request(conn, request, request.outcome, event_ids)?,
        duplicate: false,
        deliveries,
    })
}

fn list_requests(
    conn: &Connection,
    query: &ReceiverRequestQuery,
) -> Result<ReceiverRequestPage, Failure> {
    let limit = query.limit.max(1);
    let cursor = query.cursor.map_or(AFTER_ALL_IDS, |id| *id.as_bytes());
    let mut items: Vec<ReceiverRequestSummary> = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM receiver_requests WHERE receiver_id = ?1 AND id < ?2 \
             {OF_A_KEPT_RECEIVER} ORDER BY id DESC LIMIT ?3"
        ))?
        // One more than asked tells whether another page follows.
        .query_map(
            params![query.receiver_id.as_bytes(), cursor, i64::from(limit) + 1],
            summary_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(ReceiverRequestPage { items, next_cursor })
}

fn get_request(
    conn: &Connection,
    receiver: ReceiverId,
    id: ReceiverRequestId,
) -> Result<Option<ReceiverRequestDetail>, Failure> {
    let detail = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, headers, body, body_truncated FROM receiver_requests \
             WHERE id = ?1 AND receiver_id = ?2 {OF_A_KEPT_RECEIVER}"
        ))?
        .query_row(params![id.as_bytes(), receiver.as_bytes()], |row| {
            Ok(ReceiverRequestDetail {
                summary: summary_from_row(row)?,
                headers: json_column(row, 11)?,
                body: row.get(12)?,
                body_truncated: row.get(13)?,
            })
        })
        .optional()?;
    Ok(detail)
}

// ---- changesets ----

fn find_changesets(
    conn: &Connection,
    lookup: &ChangesetLookup,
) -> Result<Vec<StoredChangeset>, SqliteError> {
    let found = match lookup {
        ChangesetLookup::Key {
            urn,
            repository,
            external_id,
        } => conn
            .prepare_cached(&format!(
                "SELECT {CHANGESET_COLUMNS} FROM changeset_records \
                 WHERE urn = ?1 AND repository = ?2 AND external_id = ?3"
            ))?
            .query_map(params![urn, repository, external_id], changeset_from_row)?
            .collect::<Result<_, _>>()?,
        ChangesetLookup::Commit {
            urn,
            repository,
            sha,
            external_ids,
        } => conn
            .prepare_cached(&format!(
                "SELECT {CHANGESET_COLUMNS} FROM changeset_records WHERE urn = ?1 AND repository = ?2 \
                 AND (head_prefix = ?3 OR external_id IN (SELECT value FROM json_each(?4)))"
            ))?
            .query_map(
                params![urn, repository, head_prefix(sha), to_json(external_ids)?],
                changeset_from_row,
            )?
            .collect::<Result<_, _>>()?,
    };
    Ok(found)
}

fn write_changeset(conn: &Connection, record: &StoredChangeset) -> Result<(), SqliteError> {
    let now = Timestamp::now().millis();
    conn.prepare_cached(
        "INSERT INTO changeset_records (urn, repository, external_id, head_sha, head_prefix, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (urn, repository, external_id) DO UPDATE SET head_sha = excluded.head_sha, \
         head_prefix = excluded.head_prefix, state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![
        record.urn,
        record.repository,
        record.external_id,
        record.head_sha,
        record.head_sha.as_deref().map(head_prefix),
        record.state,
        now,
    ])?;
    Ok(())
}

// ---- retention ----

fn purge_batch(w: &Writer, policy: &ReceiverPurgePolicy) -> Result<ReceiverPurgeReport, Failure> {
    let conn = w.conn();
    let now = Timestamp::now();
    let batch = i64::from(policy.batch.max(1));
    let requests = conn
        .prepare_cached(
            "DELETE FROM receiver_requests WHERE rowid IN \
             (SELECT rowid FROM receiver_requests WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
        )?
        .execute(params![now.saturating_sub(policy.retention).millis(), batch])?;
    let dedupe_keys = conn
        .prepare_cached(
            "DELETE FROM receiver_delivery_ids WHERE (receiver_id, delivery_id) IN \
             (SELECT receiver_id, delivery_id FROM receiver_delivery_ids WHERE created_at < ?1 \
              ORDER BY created_at LIMIT ?2)",
        )?
        .execute(params![
            now.saturating_sub(policy.dedupe_ttl).millis(),
            batch
        ])?;
    Ok(ReceiverPurgeReport {
        requests: requests as u64,
        dedupe_keys: dedupe_keys as u64,
    })
}

#[async_trait]
impl ReceiverStore for SqliteStore {
    async fn create_receiver(&self, new: NewReceiver) -> StoreResult<ReceiverRecord> {
        self.writer
            .run(move |w| create_receiver(w, new.clone()))
            .await
    }

    async fn get_receiver(&self, id: ReceiverId) -> StoreResult<Option<ReceiverRecord>> {
        self.readers
            .run(move |conn| Ok(find_receiver(conn, id)?))
            .await
    }

    async fn list_receivers(&self) -> StoreResult<Vec<ReceiverRecord>> {
        self.readers.run(|conn| list_receivers(conn)).await
    }

    async fn update_receiver(
        &self,
        id: ReceiverId,
        patch: ReceiverPatch,
    ) -> StoreResult<Option<ReceiverRecord>> {
        self.writer
            .run(move |w| update_receiver(w, id, patch.clone()))
            .await
    }

    async fn rotate_receiver_credentials(
        &self,
        id: ReceiverId,
        credentials_sealed: Vec<u8>,
        grace: Duration,
    ) -> StoreResult<Option<ReceiverRecord>> {
        self.writer
            .run(move |w| rotate(w, id, credentials_sealed.clone(), grace))
            .await
    }

    async fn delete_receiver(&self, id: ReceiverId) -> StoreResult<bool> {
        match self.writer.run(move |w| delete_receiver(w, id)).await? {
            Some(rest) => {
                self.finish(rest).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn ingest(&self, work: Ingest) -> StoreResult<IngestOutcome> {
        self.writer.run(move |w| ingest(w, &work)).await
    }

    async fn record_request(
        &self,
        request: NewReceiverRequest,
    ) -> StoreResult<ReceiverRequestSummary> {
        self.writer.run(move |w| record_request(w, &request)).await
    }

    async fn record_unverified(
        &self,
        request: NewReceiverRequest,
        keep: u32,
    ) -> StoreResult<ReceiverRequestSummary> {
        self.writer
            .run(move |w| record_unverified(w, &request, keep))
            .await
    }

    async fn list_requests(&self, query: ReceiverRequestQuery) -> StoreResult<ReceiverRequestPage> {
        self.readers
            .run(move |conn| list_requests(conn, &query))
            .await
    }

    async fn get_request(
        &self,
        receiver: ReceiverId,
        id: ReceiverRequestId,
    ) -> StoreResult<Option<ReceiverRequestDetail>> {
        self.readers
            .run(move |conn| get_request(conn, receiver, id))
            .await
    }

    async fn find_changesets(&self, lookup: ChangesetLookup) -> StoreResult<Vec<StoredChangeset>> {
        self.readers
            .run(move |conn| Ok(find_changesets(conn, &lookup)?))
            .await
    }

    async fn purge_receivers(
        &self,
        policy: ReceiverPurgePolicy,
    ) -> StoreResult<ReceiverPurgeReport> {
        let mut total = ReceiverPurgeReport::default();
        let batch = u64::from(policy.batch.max(1));
        loop {
            let done = self.writer.run(move |w| purge_batch(w, &policy)).await?;
            total.requests += done.requests;
            total.dedupe_keys += done.dedupe_keys;
            if done.requests < batch && done.dedupe_keys < batch {
                return Ok(total);
            }
        }
    }
}

//! Incoming webhook receivers ([`ReceiverStore`]) on PostgreSQL.
//!
//! An ingest is one transaction: the delivery id is inserted first (a second
//! node inserting the same id waits for this one, then sees a duplicate);
//! changeset work takes a transaction-scoped advisory lock on its repository,
//! so two requests about one repository run their read-modify-write one after
//! the other even when the record does not exist yet, and reads the records
//! `FOR UPDATE`; the events go through the publisher's `store_batch`, the same
//! fan-out and wake-up as `Store::publish`; the log row comes last. Times come
//! from `herald_now_ms()`, the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::EventId;
use herald_core::time::Timestamp;
use herald_store::receivers::head_prefix;
use herald_store::{
    ChangesetLookup, Ingest, IngestOutcome, NewEvent, NewReceiver, NewReceiverRequest, ReceiverId,
    ReceiverPatch, ReceiverPurgePolicy, ReceiverPurgeReport, ReceiverRecord, ReceiverRequestDetail,
    ReceiverRequestId, ReceiverRequestPage, ReceiverRequestQuery, ReceiverRequestSummary,
    ReceiverStore, RequestOutcome, StoreError, StoreResult, StoredChangeset,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::PgStore;
use crate::cleanup::Cleanup;
use crate::error::{PgError, PgResult};
use crate::pool::Pool;
use crate::publish;
use crate::rows::{millis, text_without_nul, to_json};

macro_rules! receiver_columns {
    () => {
        "id, name, kind, urn, credentials_sealed, previous_credentials_sealed, previous_valid_until, \
         github_legacy_sha1, gitlab_standard_webhooks, created_at, updated_at, unverified_dropped"
    };
}

macro_rules! summary_columns {
    () => {
        "id, receiver_id, received_at, verified, verification, status_code, event_name, delivery_id, \
         outcome, message, event_ids"
    };
}

macro_rules! changeset_columns {
    () => {
        "urn, repository, external_id, head_sha, state"
    };
}

fn receiver(row: &PgRow) -> PgResult<ReceiverRecord> {
    Ok(ReceiverRecord {
        id: ReceiverId(row.try_get("id")?),
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        urn: row.try_get("urn")?,
        credentials_sealed: row.try_get("credentials_sealed")?,
        previous_credentials_sealed: row.try_get("previous_credentials_sealed")?,
        previous_valid_until: row
            .try_get::<Option<i64>, _>("previous_valid_until")?
            .map(Timestamp),
        github_legacy_sha1: row.try_get("github_legacy_sha1")?,
        gitlab_standard_webhooks: row.try_get("gitlab_standard_webhooks")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
        unverified_dropped: row
            .try_get::<i64, _>("unverified_dropped")?
            .try_into()
            .unwrap_or(0),
    })
}

fn summary(row: &PgRow) -> PgResult<ReceiverRequestSummary> {
    let outcome: String = row.try_get("outcome")?;
    let status: i32 = row.try_get("status_code")?;
    let event_ids: Vec<Uuid> = row.try_get("event_ids")?;
    Ok(ReceiverRequestSummary {
        id: ReceiverRequestId(row.try_get("id")?),
        receiver_id: ReceiverId(row.try_get("receiver_id")?),
        received_at: Timestamp(row.try_get("received_at")?),
        verified: row.try_get("verified")?,
        verification: row.try_get("verification")?,
        status_code: u16::try_from(status)
            .map_err(|_| PgError::Corrupt(format!("HTTP status {status} out of range")))?,
        event_name: row.try_get("event_name")?,
        delivery_id: row.try_get("delivery_id")?,
        outcome: RequestOutcome::parse(&outcome)
            .ok_or_else(|| PgError::Corrupt(format!("unknown outcome {outcome:?}")))?,
        message: row.try_get("message")?,
        event_ids: event_ids.into_iter().map(EventId).collect(),
    })
}

fn changeset(row: &PgRow) -> PgResult<StoredChangeset> {
    Ok(StoredChangeset {
        urn: row.try_get("urn")?,
        repository: row.try_get("repository")?,
        external_id: row.try_get("external_id")?,
        head_sha: row.try_get("head_sha")?,
        state: row.try_get("state")?,
    })
}

// ---- receivers ----

/// Logs an unverified request and deletes its receiver's unverified rows
/// beyond the newest `keep`, counting them, in one transaction. The
/// receiver's row is locked first, so that two nodes logging for one
/// receiver count each deleted row once.
async fn record_unverified(
    pool: &Pool,
    request: &NewReceiverRequest,
    keep: u32,
) -> PgResult<ReceiverRequestSummary> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM receivers WHERE id = $1 FOR UPDATE")
        .bind(request.receiver_id.0)
        .fetch_optional(&mut *tx)
        .await?;
    let logged = insert_request(&mut tx, request, request.outcome, &[]).await?;
    let dropped = sqlx::query(
        "DELETE FROM receiver_requests WHERE id IN (\
         SELECT id FROM receiver_requests WHERE receiver_id = $1 AND NOT verified \
         ORDER BY id DESC OFFSET $2)",
    )
    .bind(request.receiver_id.0)
    .bind(i64::from(keep))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if dropped > 0 {
        sqlx::query(
            "UPDATE receivers SET unverified_dropped = unverified_dropped + $2 WHERE id = $1",
        )
        .bind(request.receiver_id.0)
        .bind(i64::try_from(dropped).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(logged)
}

async fn create_receiver(pool: &Pool, new: NewReceiver) -> PgResult<ReceiverRecord> {
    let row = sqlx::query(concat!(
        "INSERT INTO receivers (id, name, kind, urn, credentials_sealed, github_legacy_sha1, gitlab_standard_webhooks, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, herald_now_ms(), herald_now_ms()) RETURNING ",
        receiver_columns!()
    ))
    .bind(new.id.0)
    .bind(&new.name)
    .bind(&new.kind)
    .bind(&new.urn)
    .bind(&new.credentials_sealed)
    .bind(new.github_legacy_sha1)
    .bind(new.gitlab_standard_webhooks)
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    receiver(&row)
}

async fn get_receiver(pool: &Pool, id: ReceiverId) -> PgResult<Option<ReceiverRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        receiver_columns!(),
        " FROM receivers WHERE id = $1 AND NOT deleting"
    ))
    .bind(id.0)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?;
    row.as_ref().map(receiver).transpose()
}

async fn list_receivers(pool: &Pool) -> PgResult<Vec<ReceiverRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        receiver_columns!(),
        " FROM receivers WHERE NOT deleting ORDER BY created_at, id"
    ))
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    rows.iter().map(receiver).collect()
}

/// One statement: each field is set when its flag says the patch has it, so
/// concurrent patches of different fields never undo each other.
async fn update_receiver(
    pool: &Pool,
    id: ReceiverId,
    patch: ReceiverPatch,
) -> PgResult<Option<ReceiverRecord>> {
    let new_credentials = patch.credentials_sealed.is_some();
    let row = sqlx::query(concat!(
        "UPDATE receivers SET \
           name = CASE WHEN $2 THEN $3 ELSE name END, \
           urn = coalesce($4, urn), \
           credentials_sealed = coalesce($5, credentials_sealed), \
           previous_credentials_sealed = CASE WHEN $6 THEN NULL ELSE previous_credentials_sealed END, \
           previous_valid_until = CASE WHEN $6 THEN NULL ELSE previous_valid_until END, \
           github_legacy_sha1 = coalesce($7, github_legacy_sha1), \
           gitlab_standard_webhooks = coalesce($8, gitlab_standard_webhooks), \
           updated_at = herald_now_ms() \
         WHERE id = $1 AND NOT deleting RETURNING ",
        receiver_columns!()
    ))
    .bind(id.0)
    .bind(patch.name.is_some())
    .bind(patch.name.flatten())
    .bind(patch.urn)
    .bind(patch.credentials_sealed)
    .bind(new_credentials)
    .bind(patch.github_legacy_sha1)
    .bind(patch.gitlab_standard_webhooks)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?;
    row.as_ref().map(receiver).transpose()
}

async fn rotate(
    pool: &Pool,
    id: ReceiverId,
    credentials: Vec<u8>,
    grace: Duration,
) -> PgResult<Option<ReceiverRecord>> {
    let keep = !grace.is_zero();
    let row = sqlx::query(concat!(
        "UPDATE receivers SET \
           previous_credentials_sealed = CASE WHEN $3 THEN credentials_sealed END, \
           previous_valid_until = CASE WHEN $3 THEN herald_now_ms() + $4 END, \
           credentials_sealed = $2, \
           updated_at = herald_now_ms() \
         WHERE id = $1 AND NOT deleting RETURNING ",
        receiver_columns!()
    ))
    .bind(id.0)
    .bind(credentials)
    .bind(keep)
    .bind(millis(grace))
    .fetch_optional(&mut *pool.acquire().await?)
    .await?;
    row.as_ref().map(receiver).transpose()
}

/// Hides the receiver and its log from every read, then deletes the log and
/// the delivery ids in batches and the receiver last.
async fn delete_receiver(pool: &Pool, id: ReceiverId) -> PgResult<bool> {
    let marked = sqlx::query("UPDATE receivers SET deleting = true WHERE id = $1 AND NOT deleting")
        .bind(id.0)
        .execute(&mut *pool.acquire().await?)
        .await?;
    if marked.rows_affected() == 0 {
        return Ok(false);
    }
    Cleanup::DeleteReceiver(id).run(pool).await?;
    Ok(true)
}

// ---- requests ----

async fn insert_request(
    conn: &mut PgConnection,
    request: &NewReceiverRequest,
    outcome: RequestOutcome,
    event_ids: &[EventId],
) -> PgResult<ReceiverRequestSummary> {
    let ids: Vec<Uuid> = event_ids.iter().map(|id| id.0).collect();
    let row = sqlx::query(concat!(
        "INSERT INTO receiver_requests (id, receiver_id, received_at, headers, body, body_truncated, verified, \
         verification, status_code, event_name, delivery_id, outcome, message, event_ids) \
         VALUES ($1, $2, herald_now_ms(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ",
        summary_columns!()
    ))
    .bind(request.id.0)
    .bind(request.receiver_id.0)
    .bind(text_without_nul(&to_json(&request.headers)).into_owned())
    .bind(&request.body)
    .bind(request.body_truncated)
    .bind(request.verified)
    .bind(text_without_nul(&request.verification).into_owned())
    .bind(i32::from(request.status_code))
    .bind(request.event_name.as_deref().map(|t| text_without_nul(t).into_owned()))
    .bind(request.delivery_id.as_deref().map(|t| text_without_nul(t).into_owned()))
    .bind(outcome.as_str())
    .bind(request.message.as_deref().map(|t| text_without_nul(t).into_owned()))
    .bind(&ids)
    .fetch_one(&mut *conn)
    .await?;
    summary(&row)
}

/// Remembers the delivery id; false when it was remembered already. A
/// concurrent insert of the same id waits for the other transaction's end.
async fn first_sighting(
    conn: &mut PgConnection,
    receiver: ReceiverId,
    delivery_id: &str,
) -> PgResult<bool> {
    let done = sqlx::query(
        "INSERT INTO receiver_delivery_ids (receiver_id, delivery_id, created_at) VALUES ($1, $2, herald_now_ms()) \
         ON CONFLICT DO NOTHING",
    )
    .bind(receiver.0)
    .bind(text_without_nul(delivery_id).into_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn ingest(pool: &Pool, work: Ingest) -> StoreResult<IngestOutcome> {
    let Ingest {
        request,
        events: mut to_publish,
        changesets,
    } = work;
    let mut tx = pool.begin().await?;
    if let Some(delivery_id) = &request.delivery_id
        && !first_sighting(&mut tx, request.receiver_id, delivery_id).await?
    {
        let logged = insert_request(&mut tx, &request, RequestOutcome::Duplicate, &[]).await?;
        tx.commit().await.map_err(PgError::from)?;
        return Ok(IngestOutcome {
            request: logged,
            duplicate: true,
            deliveries: 0,
        });
    }
    if let Some(work) = changesets {
        lock_repository(&mut tx, &work.lookup).await?;
        let found = find_changesets(&mut tx, &work.lookup, true).await?;
        let plan = (work.apply)(found)
            .map_err(|e| StoreError::Backend(format!("the changeset update failed: {e}")))?;
        for record in &plan.writes {
            write_changeset(&mut tx, record).await?;
        }
        to_publish.extend(plan.events);
    }
    let (event_ids, deliveries) = publish_all(&mut tx, to_publish).await?;
    let logged = insert_request(&mut tx, &request, request.outcome, &event_ids).await?;
    tx.commit().await.map_err(PgError::from)?;
    Ok(IngestOutcome {
        request: logged,
        duplicate: false,
        deliveries,
    })
}

/// Publishes inside the ingest's transaction; the event ids in order and the
/// deliveries created.
async fn publish_all(
    conn: &mut PgConnection,
    events: Vec<NewEvent>,
) -> PgResult<(Vec<EventId>, u32)> {
    if events.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let inputs: Vec<(NewEvent, Option<String>)> = events.into_iter().map(|e| (e, None)).collect();
    let answers = publish::store_batch(conn, &inputs).await?;
    let deliveries = answers
        .iter()
        .fold(0u32, |sum, a| sum.saturating_add(a.deliveries));
    Ok((
        answers.into_iter().map(|a| a.event_id).collect(),
        deliveries,
    ))
}

/// Serializes changeset work on one repository of one code host until the
/// transaction ends. Row locks alone could not: a record not yet written has
/// no row to lock, and two first sightings would both insert.
async fn lock_repository(conn: &mut PgConnection, lookup: &ChangesetLookup) -> PgResult<()> {
    let key = format!(
        "herald changesets\n{}\n{}",
        lookup.urn(),
        lookup.repository()
    );
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(text_without_nul(&key).into_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn list_requests(pool: &Pool, query: ReceiverRequestQuery) -> PgResult<ReceiverRequestPage> {
    let limit = query.limit.max(1);
    // One row more than asked tells whether another page follows.
    let rows = sqlx::query(concat!(
        "SELECT ",
        summary_columns!(),
        " FROM receiver_requests WHERE receiver_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         AND receiver_id NOT IN (SELECT id FROM receivers WHERE deleting) ORDER BY id DESC LIMIT $3"
    ))
    .bind(query.receiver_id.0)
    .bind(query.cursor.map(|c| c.0))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    let mut items: Vec<ReceiverRequestSummary> =
        rows.iter().map(summary).collect::<PgResult<_>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(ReceiverRequestPage { items, next_cursor })
}

async fn get_request(
    pool: &Pool,
    receiver: ReceiverId,
    id: ReceiverRequestId,
) -> PgResult<Option<ReceiverRequestDetail>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        summary_columns!(),
        ", headers, body, body_truncated FROM receiver_requests WHERE id = $1 AND receiver_id = $2 \
         AND receiver_id NOT IN (SELECT id FROM receivers WHERE deleting)"
    ))
    .bind(id.0)
    .bind(receiver.0)
    .fetch_optional(&mut *pool.acquire().await?)
    .await?
    else {
        return Ok(None);
    };
    let headers: String = row.try_get("headers")?;
    Ok(Some(ReceiverRequestDetail {
        summary: summary(&row)?,
        headers: serde_json::from_str(&headers)
            .map_err(|e| PgError::Corrupt(format!("request headers: {e}")))?,
        body: row.try_get("body")?,
        body_truncated: row.try_get("body_truncated")?,
    }))
}

// ---- changesets ----

/// `for_update` locks the rows found until the transaction ends.
async fn find_changesets(
    conn: &mut PgConnection,
    lookup: &ChangesetLookup,
    for_update: bool,
) -> PgResult<Vec<StoredChangeset>> {
    let rows = match (lookup, for_update) {
        (
            ChangesetLookup::Key {
                urn,
                repository,
                external_id,
            },
            lock,
        ) => {
            let sql = if lock {
                concat!(
                    "SELECT ",
                    changeset_columns!(),
                    " FROM changeset_records WHERE urn = $1 AND repository = $2 AND external_id = $3 FOR UPDATE"
                )
            } else {
                concat!(
                    "SELECT ",
                    changeset_columns!(),
                    " FROM changeset_records WHERE urn = $1 AND repository = $2 AND external_id = $3"
                )
            };
            sqlx::query(sql)
                .bind(urn)
                .bind(repository)
                .bind(external_id)
                .fetch_all(&mut *conn)
                .await?
        }
        (
            ChangesetLookup::Commit {
                urn,
                repository,
                sha,
                external_ids,
            },
            lock,
        ) => {
            let sql = if lock {
                concat!(
                    "SELECT ",
                    changeset_columns!(),
                    " FROM changeset_records WHERE urn = $1 AND repository = $2 \
                     AND (head_prefix = $3 OR external_id = ANY($4)) FOR UPDATE"
                )
            } else {
                concat!(
                    "SELECT ",
                    changeset_columns!(),
                    " FROM changeset_records WHERE urn = $1 AND repository = $2 \
                     AND (head_prefix = $3 OR external_id = ANY($4))"
                )
            };
            sqlx::query(sql)
                .bind(urn)
                .bind(repository)
                .bind(head_prefix(sha))
                .bind(external_ids)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(changeset).collect()
}

async fn write_changeset(conn: &mut PgConnection, record: &StoredChangeset) -> PgResult<()> {
    sqlx::query(
        "INSERT INTO changeset_records (urn, repository, external_id, head_sha, head_prefix, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, herald_now_ms(), herald_now_ms()) \
         ON CONFLICT (urn, repository, external_id) DO UPDATE SET head_sha = excluded.head_sha, \
         head_prefix = excluded.head_prefix, state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(&record.urn)
    .bind(&record.repository)
    .bind(&record.external_id)
    .bind(&record.head_sha)
    .bind(record.head_sha.as_deref().map(head_prefix))
    .bind(&record.state)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---- retention ----

const PURGE_REQUESTS: &str = "DELETE FROM receiver_requests WHERE id IN ( \
         SELECT id FROM receiver_requests WHERE received_at < $1 \
         ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

const PURGE_DELIVERY_IDS: &str = "DELETE FROM receiver_delivery_ids WHERE (receiver_id, delivery_id) IN ( \
         SELECT receiver_id, delivery_id FROM receiver_delivery_ids WHERE created_at < $1 \
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Each batch is one statement of its own; batches run until one comes back
/// short. The cutoffs come from the database's clock, once per purge.
async fn purge(pool: &Pool, policy: ReceiverPurgePolicy) -> PgResult<ReceiverPurgeReport> {
    let batch = i64::from(policy.batch.max(1));
    let cutoffs =
        sqlx::query("SELECT herald_now_ms() - $1 AS requests, herald_now_ms() - $2 AS ids")
            .bind(millis(policy.retention))
            .bind(millis(policy.dedupe_ttl))
            .fetch_one(&mut *pool.acquire().await?)
            .await?;
    let mut report = ReceiverPurgeReport::default();
    for (statement, cutoff, count) in [
        (
            PURGE_REQUESTS,
            cutoffs.try_get::<i64, _>("requests")?,
            &mut report.requests,
        ),
        (
            PURGE_DELIVERY_IDS,
            cutoffs.try_get::<i64, _>("ids")?,
            &mut report.dedupe_keys,
        ),
    ] {
        loop {
            let gone = sqlx::query(statement)
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *pool.acquire().await?)
                .await?
                .rows_affected();
            *count += gone;
            if gone < batch.unsigned_abs() {
                break;
            }
        }
    }
    Ok(report)
}

#[async_trait]
impl ReceiverStore for PgStore {
    async fn create_receiver(&self, new: NewReceiver) -> StoreResult<ReceiverRecord> {
        Ok(create_receiver(&self.pool, new).await?)
    }

    async fn get_receiver(&self, id: ReceiverId) -> StoreResult<Option<ReceiverRecord>> {
        Ok(get_receiver(&self.pool, id).await?)
    }

    async fn list_receivers(&self) -> StoreResult<Vec<ReceiverRecord>> {
        Ok(list_receivers(&self.pool).await?)
    }

    async fn update_receiver(
        &self,
        id: ReceiverId,
        patch: ReceiverPatch,
    ) -> StoreResult<Option<ReceiverRecord>> {
        Ok(update_receiver(&self.pool, id, patch).await?)
    }

    async fn rotate_receiver_credentials(
        &self,
        id: ReceiverId,
        credentials_sealed: Vec<u8>,
        grace: Duration,
    ) -> StoreResult<Option<ReceiverRecord>> {
        Ok(rotate(&self.pool, id, credentials_sealed, grace).await?)
    }

    async fn delete_receiver(&self, id: ReceiverId) -> StoreResult<bool> {
        Ok(delete_receiver(&self.pool, id).await?)
    }

    async fn ingest(&self, work: Ingest) -> StoreResult<IngestOutcome> {
        ingest(&self.pool, work).await
    }

    async fn record_request(
        &self,
        request: NewReceiverRequest,
    ) -> StoreResult<ReceiverRequestSummary> {
        let mut conn = self.pool.acquire().await?;
        Ok(insert_request(&mut conn, &request, request.outcome, &[]).await?)
    }

    async fn record_unverified(
        &self,
        request: NewReceiverRequest,
        keep: u32,
    ) -> StoreResult<ReceiverRequestSummary> {
        Ok(record_unverified(&self.pool, &request, keep).await?)
    }

    async fn list_requests(&self, query: ReceiverRequestQuery) -> StoreResult<ReceiverRequestPage> {
        Ok(list_requests(&self.pool, query).await?)
    }

    async fn get_request(
        &self,
        receiver: ReceiverId,
        id: ReceiverRequestId,
    ) -> StoreResult<Option<ReceiverRequestDetail>> {
        Ok(get_request(&self.pool, receiver, id).await?)
    }

    async fn find_changesets(&self, lookup: ChangesetLookup) -> StoreResult<Vec<StoredChangeset>> {
        let mut conn = self.pool.acquire().await?;
        Ok(find_changesets(&mut conn, &lookup, false).await?)
    }

    async fn purge_receivers(
        &self,
        policy: ReceiverPurgePolicy,
    ) -> StoreResult<ReceiverPurgeReport> {
        Ok(purge(&self.pool, policy).await?)
    }
}

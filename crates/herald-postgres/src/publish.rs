//! Publishing with group commit.
//!
//! `publish` queues its event on a channel and waits. A few writer tasks take
//! turns draining the channel: each takes everything queued (up to a batch
//! limit) and stores it in one transaction — events and deliveries as `UNNEST`
//! array inserts, idempotency keys alongside — then answers every caller once
//! the commit is durable. Under load a commit (one WAL flush) carries hundreds
//! of events; alone, an event commits immediately.
//!
//! Fan-out reads the enabled webhooks of the batch's scopes inside the batch's
//! transaction with `FOR SHARE`: a concurrent disable or delete waits for the
//! batch to commit and then fails (or deletes) its deliveries too, and no
//! cache can go stale across nodes.
//!
//! If the database refuses a batch (a constraint, a deadlock), each of its
//! events is retried in a transaction of its own, so one bad request cannot
//! fail the others.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_store::{NewEvent, Published, StoreError, StoreResult, ordered_key, receives};
use sqlx::{PgConnection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::error::{PgError, PgResult};
use crate::pool::Pool;
use crate::{ordering, rows};

/// The channel's capacity: callers beyond it wait, which pushes back on them.
const QUEUE: usize = 16_384;

/// A batch also closes once its payloads reach this many bytes.
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// How many times a batch is tried when the server breaks a deadlock with it.
const DEADLOCK_TRIES: u32 = 3;

/// The channel on which notifications about new work go out.
pub(crate) const WORK_CHANNEL: &str = "herald_work";

pub(crate) struct Publisher {
    queue: mpsc::Sender<Request>,
}

struct Request {
    event: NewEvent,
    key: Option<String>,
    reply: oneshot::Sender<StoreResult<Published>>,
}

impl Publisher {
    /// Starts `writers` writer tasks, each committing batches of at most
    /// `batch` events. They stop once the publisher is dropped.
    pub(crate) fn start(pool: Pool, writers: usize, batch: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(
                pool.clone(),
                Arc::clone(&receiver),
                batch.max(1),
            ));
        }
        Self { queue }
    }

    pub(crate) async fn publish(
        &self,
        event: NewEvent,
        key: Option<String>,
    ) -> StoreResult<Published> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request { event, key, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_batches(pool: Pool, receiver: Arc<Mutex<mpsc::Receiver<Request>>>, batch: usize) {
    while let Some(requests) = next_batch(&receiver, batch).await {
        commit_and_answer(&pool, requests).await;
    }
}

/// Waits for a request, then takes whatever else is already queued. The lock
/// is released before the batch is written, so another writer can gather the
/// next batch meanwhile.
async fn next_batch(
    receiver: &Mutex<mpsc::Receiver<Request>>,
    batch: usize,
) -> Option<Vec<Request>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut bytes = first.event.payload.len();
    let mut requests = vec![first];
    while requests.len() < batch && bytes < BATCH_BYTES {
        match receiver.try_recv() {
            Ok(request) => {
                bytes += request.event.payload.len();
                requests.push(request);
            }
            Err(_) => break,
        }
    }
    Some(requests)
}

async fn commit_and_answer(pool: &Pool, requests: Vec<Request>) {
    let (inputs, replies): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .map(|r| ((r.event, r.key), r.reply))
        .unzip();
    match commit_retrying_deadlocks(pool, &inputs).await {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that gave up still has its event stored; nobody to tell.
                let _ = reply.send(Ok(answer));
            }
        }
        Err(err) if err.is_statement_error() && inputs.len() > 1 => {
            tracing::warn!(error = %err, events = inputs.len(), "publish batch refused; committing its events one by one");
            for (input, reply) in inputs.into_iter().zip(replies) {
                let answer = commit_retrying_deadlocks(pool, std::slice::from_ref(&input))
                    .await
                    .and_then(|answers| {
                        answers
                            .into_iter()
                            .next()
                            .ok_or(PgError::Corrupt("a batch of one gave no answer".to_owned()))
                    });
                let _ = reply.send(answer.map_err(StoreError::from));
            }
        }
        Err(err) => {
            let message = err.to_string();
            let closed = matches!(StoreError::from(err), StoreError::Closed);
            for reply in replies {
                let error = if closed {
                    StoreError::Closed
                } else {
                    StoreError::Backend(message.clone())
                };
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// A webhook as fan-out sees it.
struct Target {
    id: WebhookId,
    project: Option<String>,
    patterns: Vec<herald_core::event_type::EventTypePattern>,
    ordering: DeliveryOrdering,
}

/// Batches touching the same idempotency keys and webhooks can, rarely, form
/// a lock cycle with each other or a webhook change; the server aborts one,
/// which then simply runs again.
async fn commit_retrying_deadlocks(
    pool: &Pool,
    inputs: &[(NewEvent, Option<String>)],
) -> PgResult<Vec<Published>> {
    let mut tries = 1;
    loop {
        match commit(pool, inputs).await {
            Err(err) if err.is_deadlock() && tries < DEADLOCK_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// Stores a batch in one transaction; answers in the order of `inputs`.
async fn commit(pool: &Pool, inputs: &[(NewEvent, Option<String>)]) -> PgResult<Vec<Published>> {
    let started = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    let answers = store_batch(&mut tx, inputs).await?;
    tx.commit().await?;
    herald_store::metrics::record_commit(inputs.len(), started.elapsed());
    Ok(answers)
}

/// Stores a batch inside the caller's transaction: fan-out, idempotency keys,
/// events, deliveries and the wake-up notification. An ingest of a code host's
/// webhook publishes through it, in the transaction that logs the request.
pub(crate) async fn store_batch(
    tx: &mut PgConnection,
    inputs: &[(NewEvent, Option<String>)],
) -> PgResult<Vec<Published>> {
    let targets = lock_targets(&mut *tx, inputs).await?;
    let fan_out: Vec<Vec<WebhookId>> = inputs
        .iter()
        .map(|(event, _)| matching(&targets, event))
        .collect();
    let mut answers: Vec<Published> = inputs
        .iter()
        .zip(&fan_out)
        .map(|((event, _), hooks)| Published {
            event_id: event.id,
            deliveries: u32::try_from(hooks.len()).unwrap_or(u32::MAX),
            replayed: false,
        })
        .collect();
    let fresh = claim_keys(&mut *tx, inputs, &mut answers).await?;
    let ordered: HashSet<WebhookId> = targets
        .iter()
        .filter(|t| t.ordering == DeliveryOrdering::Key)
        .map(|t| t.id)
        .collect();
    insert_events(&mut *tx, inputs, &fresh).await?;
    let deliveries = insert_deliveries(&mut *tx, inputs, &fan_out, &fresh, &ordered).await?;
    if deliveries > 0 {
        // Delivered with the commit, or not at all; the payload lets listeners
        // sharing the database ignore other schemas' work.
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(WORK_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    Ok(answers)
}

/// Reads, and share-locks, the enabled webhooks that could receive an event of
/// the batch: the global ones and those of the batch's projects.
async fn lock_targets(
    conn: &mut PgConnection,
    inputs: &[(NewEvent, Option<String>)],
) -> PgResult<Vec<Target>> {
    let projects: Vec<&str> = inputs
        .iter()
        .filter_map(|(event, _)| event.project.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = sqlx::query(
        "SELECT id, project, event_types, ordering FROM webhooks \
         WHERE enabled AND (project IS NULL OR project = ANY($1)) ORDER BY id FOR SHARE",
    )
    .bind(projects)
    .fetch_all(&mut *conn)
    .await?;
    found
        .iter()
        .map(|row| {
            let patterns: Vec<String> = row.try_get("event_types")?;
            let ordering: String = row.try_get("ordering")?;
            Ok(Target {
                id: WebhookId(row.try_get("id")?),
                project: row.try_get("project")?,
                patterns: rows::parse_patterns(&patterns)?,
                ordering: DeliveryOrdering::parse(&ordering)
                    .ok_or_else(|| PgError::Corrupt(format!("unknown ordering {ordering:?}")))?,
            })
        })
        .collect()
}

fn matching(targets: &[Target], event: &NewEvent) -> Vec<WebhookId> {
    targets
        .iter()
        .filter(|t| {
            receives(
                t.project.as_deref(),
                &t.patterns,
                event.project.as_deref(),
                &event.event_type,
            )
        })
        .map(|t| t.id)
        .collect()
}

/// Records the batch's idempotency keys. Returns, per input, whether its event
/// is to be stored; a replayed input gets the first answer in `answers`.
///
/// A key seen earlier in the same batch replays that earlier input's answer.
/// Keys are inserted in sorted order so two batches holding the same keys wait
/// on each other instead of deadlocking; a key another transaction is
/// inserting blocks until that one commits, and then counts as seen.
async fn claim_keys(
    conn: &mut PgConnection,
    inputs: &[(NewEvent, Option<String>)],
    answers: &mut [Published],
) -> PgResult<Vec<bool>> {
    let mut fresh = vec![true; inputs.len()];
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (i, (_, key)) in inputs.iter().enumerate() {
        let Some(key) = key.as_deref() else { continue };
        match first_with_key.get(key) {
            Some(&first) => {
                fresh[i] = false;
                answers[i] = Published {
                    replayed: true,
                    ..answers[first]
                };
            }
            None => {
                first_with_key.insert(key, i);
            }
        }
    }
    if first_with_key.is_empty() {
        return Ok(fresh);
    }
    let mut leaders: Vec<(&str, usize)> = first_with_key.into_iter().collect();
    leaders.sort_unstable();
    let keys: Vec<&str> = leaders.iter().map(|(key, _)| *key).collect();
    let event_ids: Vec<Uuid> = leaders
        .iter()
        .map(|(_, i)| answers[*i].event_id.0)
        .collect();
    let counts: Vec<i32> = leaders
        .iter()
        .map(|(_, i)| i32::try_from(answers[*i].deliveries).unwrap_or(i32::MAX))
        .collect();
    let inserted: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (key, event_id, deliveries, created_at) \
         SELECT key, event_id, deliveries, herald_now_ms() \
         FROM UNNEST($1::text[], $2::uuid[], $3::int4[]) AS k (key, event_id, deliveries) ORDER BY key \
         ON CONFLICT (key) DO NOTHING RETURNING key",
    )
    .bind(&keys)
    .bind(&event_ids)
    .bind(&counts)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let seen: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !inserted.contains(*k))
        .collect();
    if seen.is_empty() {
        return Ok(fresh);
    }
    let stored: HashMap<String, Published> =
        sqlx::query("SELECT key, event_id, deliveries FROM idempotency_keys WHERE key = ANY($1)")
            .bind(&seen)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                let deliveries: i32 = row.try_get("deliveries")?;
                let answer = Published {
                    event_id: EventId(row.try_get("event_id")?),
                    deliveries: u32::try_from(deliveries).unwrap_or(0),
                    replayed: true,
                };
                Ok((row.try_get("key")?, answer))
            })
            .collect::<PgResult<_>>()?;
    for (i, (_, key)) in inputs.iter().enumerate() {
        let Some(answer) = key.as_deref().and_then(|k| stored.get(k)) else {
            continue;
        };
        fresh[i] = false;
        answers[i] = *answer;
    }
    Ok(fresh)
}

pub(crate) async fn insert_events(
    conn: &mut PgConnection,
    inputs: &[(NewEvent, Option<String>)],
    fresh: &[bool],
) -> PgResult<()> {
    let events: Vec<&NewEvent> = inputs
        .iter()
        .zip(fresh)
        .filter(|(_, f)| **f)
        .map(|((e, _), _)| e)
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id.0).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let projects: Vec<Option<&str>> = events.iter().map(|e| e.project.as_deref()).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let properties: Vec<String> = events
        .iter()
        .map(|e| rows::properties_json(&e.properties))
        .collect();
    let ordering_keys: Vec<Option<&str>> =
        events.iter().map(|e| e.ordering_key.as_deref()).collect();
    sqlx::query(
        "INSERT INTO events (id, event_type, project, payload, properties, created_at, ordering_key) \
         SELECT id, event_type, project, payload, properties, herald_now_ms(), ordering_key \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[]) \
         AS e (id, event_type, project, payload, properties, ordering_key)",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&projects)
    .bind(&payloads)
    .bind(&properties)
    .bind(&ordering_keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts one pending delivery per (event, webhook) of the fan-out. A
/// delivery to a webhook of `ordered_by_key` whose event has an ordering key
/// goes at the end of its (webhook, key) line, in batch order, and waits (no
/// due time) if anything of the line is pending ahead of it; every other one
/// is due now.
pub(crate) async fn insert_deliveries(
    conn: &mut PgConnection,
    inputs: &[(NewEvent, Option<String>)],
    fan_out: &[Vec<WebhookId>],
    fresh: &[bool],
    ordered_by_key: &HashSet<WebhookId>,
) -> PgResult<usize> {
    let mut ids = Vec::new();
    let mut event_ids = Vec::new();
    let mut webhook_ids = Vec::new();
    let mut types = Vec::new();
    let mut keys: Vec<Option<&str>> = Vec::new();
    for (((event, _), hooks), _) in inputs.iter().zip(fan_out).zip(fresh).filter(|(_, f)| **f) {
        for hook in hooks {
            let ordering = if ordered_by_key.contains(hook) {
                DeliveryOrdering::Key
            } else {
                DeliveryOrdering::None
            };
            ids.push(DeliveryId::new().0);
            event_ids.push(event.id.0);
            webhook_ids.push(hook.0);
            types.push(event.event_type.as_str());
            keys.push(ordered_key(ordering, event.ordering_key.as_deref()));
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let (seqs, waits) = place_in_lines(conn, &webhook_ids, &keys).await?;
    sqlx::query(
        "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, \
         updated_at, ordering_key, ordering_seq) \
         SELECT id, event_id, webhook_id, event_type, 'pending', CASE WHEN waits THEN NULL ELSE herald_now_ms() END, \
                herald_now_ms(), herald_now_ms(), ordering_key, ordering_seq \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::bool[]) \
         AS d (id, event_id, webhook_id, event_type, ordering_key, ordering_seq, waits)",
    )
    .bind(&ids)
    .bind(&event_ids)
    .bind(&webhook_ids)
    .bind(&types)
    .bind(&keys)
    .bind(&seqs)
    .bind(&waits)
    .execute(&mut *conn)
    .await?;
    Ok(ids.len())
}

/// Each new delivery's place in its line (after the line's last pending
/// one, and after those earlier in the batch) and whether it waits. Takes
/// the lines' locks, held until the batch commits (`crate::ordering`).
async fn place_in_lines(
    conn: &mut PgConnection,
    webhook_ids: &[Uuid],
    keys: &[Option<&str>],
) -> PgResult<(Vec<Option<i64>>, Vec<bool>)> {
    let mut lines: Vec<ordering::Line> = webhook_ids
        .iter()
        .zip(keys)
        .filter_map(|(w, k)| Some((*w, (*k)?.to_owned())))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    ordering::lock(&mut *conn, &lines).await?;
    let mut last = ordering::last_places(&mut *conn, &lines).await?;
    let mut seqs = Vec::with_capacity(keys.len());
    let mut waits = Vec::with_capacity(keys.len());
    for (webhook, key) in webhook_ids.iter().zip(keys) {
        let Some(key) = key else {
            seqs.push(None);
            waits.push(false);
            continue;
        };
        let line = (*webhook, (*key).to_owned());
        let ahead = last.get(&line).copied();
        let seq = ahead.map_or(0, |seq| seq.saturating_add(1));
        last.insert(line, seq);
        seqs.push(Some(seq));
        waits.push(ahead.is_some());
    }
    Ok((seqs, waits))
}

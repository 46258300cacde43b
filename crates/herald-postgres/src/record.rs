//! Recording attempts with group commit.
//!
//! `record_attempt` queues its outcome and waits. A few writer tasks take
//! turns draining the queue and record a whole batch in one transaction: lock
//! the batch's deliveries in id order (so batches never deadlock each other),
//! append every attempt with one `UNNEST` insert, move on every delivery whose
//! lease is still current with one `UPDATE ... FROM UNNEST`, commit, then
//! answer each caller. Under load one commit (one WAL flush, a handful of round
//! trips) carries hundreds of attempts instead of each paying for its own.
//!
//! Attempts recorded with a health note also get their webhooks' health
//! read once per batch, right after the commit (`health::read`), instead of
//! once per attempt: a success that changes nothing, the common case, then
//! costs no round trip of its own.
//!
//! A 410 that disables the webhook goes through `work::record_attempt` alone:
//! it must lock the webhook before the delivery. If the database refuses a
//! batch, each of its attempts is recorded on its own the same way, so one bad
//! attempt cannot fail the others.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use herald_core::id::WebhookId;
use herald_store::{AttemptOutcome, NextStep, StoreError, StoreResult};
use sqlx::{PgConnection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::error::{PgError, PgResult};
use crate::health::{self, Seen};
use crate::pool::Pool;
use crate::rows::{self, millis, text_without_nul};
use crate::{ordering, work};

/// The channel's capacity: callers beyond it wait.
const QUEUE: usize = 16_384;
/// Writer tasks: one gathers the next batch while another commits.
const WRITERS: usize = 2;
/// The most attempts one transaction records.
const BATCH: usize = 512;
/// How many times a batch is tried when the server breaks a deadlock with it
/// (a webhook delete cascading over the same deliveries, say).
const DEADLOCK_TRIES: u32 = 3;

pub(crate) struct Recorder {
    queue: mpsc::Sender<Request>,
}

struct Request {
    outcome: AttemptOutcome,
    /// The webhook whose health the caller notes if the attempt moves its
    /// delivery on.
    noting: Option<WebhookId>,
    reply: oneshot::Sender<StoreResult<Answer>>,
}

/// What recording one attempt did.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The lease was current and the delivery moved on.
    pub moved_on: bool,
    /// The noted webhook's health as read after the commit.
    pub seen: Seen,
}

impl Recorder {
    /// Starts the writer tasks; they stop once the recorder is dropped.
    pub(crate) fn start(pool: Pool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(pool.clone(), Arc::clone(&receiver)));
        }
        Self { queue }
    }

    pub(crate) async fn record(
        &self,
        outcome: AttemptOutcome,
        noting: Option<WebhookId>,
    ) -> StoreResult<Answer> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request {
                outcome,
                noting,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_batches(pool: Pool, receiver: Arc<Mutex<mpsc::Receiver<Request>>>) {
    while let Some(requests) = next_batch(&receiver).await {
        let (alone, batch): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .partition(|r| matches!(r.outcome.next, NextStep::FailedAndDisableWebhook { .. }));
        if !batch.is_empty() {
            commit_and_answer(&pool, batch).await;
        }
        for request in alone {
            record_alone(&pool, request).await;
        }
    }
}

/// Waits for a request, then takes whatever else is already queued. The lock
/// is released before the batch is written.
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Request>>) -> Option<Vec<Request>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut requests = vec![first];
    while requests.len() < BATCH {
        match receiver.try_recv() {
            Ok(request) => requests.push(request),
            Err(_) => break,
        }
    }
    Some(requests)
}

async fn record_alone(pool: &Pool, request: Request) {
    let answer = work::record_attempt(pool, request.outcome)
        .await
        .map(|moved_on| Answer {
            moved_on,
            seen: Seen::Unread,
        })
        .map_err(StoreError::from);
    // A caller that gave up still has its attempt recorded; nobody to tell.
    let _ = request.reply.send(answer);
}

async fn commit_and_answer(pool: &Pool, requests: Vec<Request>) {
    let outcomes: Vec<&AttemptOutcome> = requests.iter().map(|r| &r.outcome).collect();
    match commit_retrying_deadlocks(pool, &outcomes).await {
        Ok(moved) => {
            let moved_on =
                |r: &Request| moved.contains(&(r.outcome.attempt.delivery_id.0, r.outcome.lease.0));
            let mut noted: Vec<WebhookId> = requests
                .iter()
                .filter(|r| moved_on(r))
                .filter_map(|r| r.noting)
                .collect();
            noted.sort_unstable();
            noted.dedup();
            // A failed read is not the record's failure: each caller reads for itself.
            let found = if noted.is_empty() {
                None
            } else {
                health::read(pool, &noted).await.ok()
            };
            for request in requests {
                let answer = Answer {
                    moved_on: moved_on(&request),
                    seen: seen_by_batch(found.as_ref(), request.noting),
                };
                let _ = request.reply.send(Ok(answer));
            }
        }
        Err(err) if err.is_statement_error() && requests.len() > 1 => {
            tracing::warn!(error = %err, attempts = requests.len(), "attempt batch refused; recording its attempts one by one");
            for request in requests {
                record_alone(pool, request).await;
            }
        }
        Err(err) => {
            let message = err.to_string();
            let closed = matches!(StoreError::from(err), StoreError::Closed);
            for request in requests {
                let error = if closed {
                    StoreError::Closed
                } else {
                    StoreError::Backend(message.clone())
                };
                let _ = request.reply.send(Err(error));
            }
        }
    }
}

/// What the batch's read says of the webhook an attempt notes. Each attempt
/// gets its own copy: two attempts of one webhook are noted one after the
/// other by their callers, as if each had read it.
fn seen_by_batch(
    found: Option<&HashMap<WebhookId, health::Found>>,
    noting: Option<WebhookId>,
) -> Seen {
    match (found, noting) {
        (Some(found), Some(id)) => found.get(&id).cloned().map_or(Seen::Gone, Seen::Read),
        _ => Seen::Unread,
    }
}

async fn commit_retrying_deadlocks(
    pool: &Pool,
    outcomes: &[&AttemptOutcome],
) -> PgResult<HashSet<(Uuid, i64)>> {
    let mut tries = 1;
    loop {
        match commit(pool, outcomes).await {
            Err(err) if err.is_deadlock() && tries < DEADLOCK_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// Records a batch in one transaction; returns the (delivery, lease) pairs
/// that moved their delivery on.
async fn commit(pool: &Pool, outcomes: &[&AttemptOutcome]) -> PgResult<HashSet<(Uuid, i64)>> {
    let mut tx = pool.begin().await?;
    // The ordered deliveries this batch may finish: their lines are locked
    // first (`crate::ordering`), and their next falls due once they have.
    let finishing: Vec<Uuid> = outcomes
        .iter()
        .filter(|o| finishes(&o.next))
        .map(|o| o.attempt.delivery_id.0)
        .collect();
    let lines = ordering::lines_of(&mut tx, &finishing).await?;
    let mut locked: Vec<ordering::Line> = lines.values().cloned().collect();
    locked.sort_unstable();
    locked.dedup();
    ordering::lock(&mut tx, &locked).await?;
    let existing = lock_deliveries(&mut tx, outcomes).await?;
    let present: Vec<&AttemptOutcome> = outcomes
        .iter()
        .copied()
        .filter(|o| existing.contains(&o.attempt.delivery_id.0))
        .collect();
    // A delivery deleted meanwhile (with its webhook) leaves no log to append to.
    if !present.is_empty() {
        insert_attempts(&mut tx, &present).await?;
    }
    let moved = if present.is_empty() {
        HashSet::new()
    } else {
        move_on(&mut tx, &present).await?
    };
    let finished: Vec<ordering::Line> = moved
        .iter()
        .filter_map(|(id, _)| lines.get(id).cloned())
        .collect();
    ordering::release_next(&mut tx, &finished).await?;
    tx.commit().await?;
    Ok(moved)
}

/// Whether the step takes the delivery out of pending. A 410 is not among
/// them here: it goes through `work::record_attempt`, and fails the
/// webhook's whole backlog anyway.
fn finishes(next: &NextStep) -> bool {
    matches!(next, NextStep::Succeeded | NextStep::Failed)
}

/// Locks the batch's deliveries in id order; returns the ones that exist.
async fn lock_deliveries(
    tx: &mut PgConnection,
    outcomes: &[&AttemptOutcome],
) -> PgResult<HashSet<Uuid>> {
    let ids: Vec<Uuid> = outcomes.iter().map(|o| o.attempt.delivery_id.0).collect();
    let found: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(found.into_iter().collect())
}

async fn insert_attempts(tx: &mut PgConnection, outcomes: &[&AttemptOutcome]) -> PgResult<()> {
    let count = outcomes.len();
    let mut ids = Vec::with_capacity(count);
    let mut deliveries = Vec::with_capacity(count);
    let mut numbers = Vec::with_capacity(count);
    let mut started = Vec::with_capacity(count);
    let mut durations = Vec::with_capacity(count);
    let mut urls = Vec::with_capacity(count);
    let mut request_headers = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut response_headers = Vec::with_capacity(count);
    let mut bodies: Vec<Option<Vec<u8>>> = Vec::with_capacity(count);
    let mut errors: Vec<Option<String>> = Vec::with_capacity(count);
    for outcome in outcomes {
        let attempt = &outcome.attempt;
        ids.push(attempt.id.0);
        deliveries.push(attempt.delivery_id.0);
        numbers.push(i32::try_from(attempt.number).unwrap_or(i32::MAX));
        started.push(attempt.started_at.millis());
        durations.push(i32::try_from(attempt.duration_ms).unwrap_or(i32::MAX));
        urls.push(text_without_nul(&attempt.request_url).into_owned());
        request_headers.push(rows::to_json(&attempt.request_headers));
        statuses.push(attempt.response_status.map(i32::from));
        response_headers.push(rows::to_json(&attempt.response_headers));
        bodies.push(
            attempt
                .response_body
                .as_ref()
                .map(|b| b.as_bytes().to_vec()),
        );
        errors.push(
            attempt
                .error
                .as_deref()
                .map(|e| text_without_nul(e).into_owned()),
        );
    }
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, request_url, request_headers, \
         response_status, response_headers, response_body, error) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::int8[], $5::int4[], $6::text[], $7::text[], \
                              $8::int4[], $9::text[], $10::bytea[], $11::text[])",
    )
    .bind(&ids)
    .bind(&deliveries)
    .bind(&numbers)
    .bind(&started)
    .bind(&durations)
    .bind(&urls)
    .bind(&request_headers)
    .bind(&statuses)
    .bind(&response_headers)
    .bind(&bodies)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves on each delivery whose lease is current, as `work::record_attempt`
/// does for one. The token is part of the join, so a stale outcome for the
/// same delivery never takes the current one's place, and it implies the
/// delivery is pending (migration 6), which is why the status is not named.
const MOVE_ON: &str = "UPDATE deliveries d SET \
         status = u.status, \
         attempts = d.attempts + 1, \
         failures_in_schedule = d.failures_in_schedule + u.used, \
         next_attempt_at = CASE WHEN u.status = 'pending' THEN herald_now_ms() + u.delay END, \
         lease_token = NULL, \
         last_status_code = u.code, \
         last_error = u.error, \
         updated_at = herald_now_ms() \
     FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::int8[], $5::int4[], $6::text[], $7::int4[]) \
         AS u (id, token, status, delay, code, error, used) \
     WHERE d.id = u.id AND d.lease_token = u.token \
     RETURNING d.id, u.token";

async fn move_on(
    tx: &mut PgConnection,
    outcomes: &[&AttemptOutcome],
) -> PgResult<HashSet<(Uuid, i64)>> {
    let count = outcomes.len();
    let mut ids = Vec::with_capacity(count);
    let mut tokens = Vec::with_capacity(count);
    let mut statuses = Vec::with_capacity(count);
    let mut delays: Vec<Option<i64>> = Vec::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    let mut errors: Vec<Option<String>> = Vec::with_capacity(count);
    let mut used = Vec::with_capacity(count);
    for outcome in outcomes {
        let step = outcome.next.moved_on();
        ids.push(outcome.attempt.delivery_id.0);
        tokens.push(outcome.lease.0);
        statuses.push(step.status.as_str());
        delays.push(step.retry_in.map(millis));
        used.push(i32::from(step.uses_a_retry));
        codes.push(outcome.attempt.response_status.map(i32::from));
        errors.push(
            outcome
                .attempt
                .error
                .as_deref()
                .map(|e| text_without_nul(e).into_owned()),
        );
    }
    let rows = sqlx::query(MOVE_ON)
        .bind(&ids)
        .bind(&tokens)
        .bind(&statuses)
        .bind(&delays)
        .bind(&codes)
        .bind(&errors)
        .bind(&used)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get::<Uuid, _>(0)?, row.try_get::<i64, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(PgError::from)
}

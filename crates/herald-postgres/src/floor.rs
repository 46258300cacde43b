//! The due floor: a time no pending delivery is due before, where claims
//! start their walk of the due indexes.
//!
//! A claim moves each delivery it takes to the end of its lease and a record
//! takes it out of the pending indexes, so the left end of `deliveries_due`
//! (and of each webhook's `deliveries_due_by_webhook`) fills with dead
//! entries that every claim walked through until a vacuum removed them: 96
//! buffers read for each row claimed at fan-out 10 before the floor, 38
//! after (BENCHMARKS.md). Claims (with their probes' check for a due
//! delivery) and `next_due_at` therefore only look at `next_attempt_at >=
//! floor`.
//!
//! The floor is worked out again at most once a [`REFRESH`], from scratch:
//! the earliest pending delivery, the start of the oldest transaction open in
//! the database (every time the store writes is its transaction's start,
//! `herald_now_ms()`, so a transaction still open cannot write anything
//! earlier) and the database's now, less a [`MARGIN`]. A delivery written
//! below it all the same (a transaction that `pg_stat_activity` did not show
//! yet, another role's session it hides, the database's clock stepped back)
//! is found by the next refresh: it waits at most a refresh longer, and is
//! never lost.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::PgResult;
use crate::pool::Pool;

/// Where a walk of the due indexes starts: at the due floor ([`DueFloor`]),
/// the parameter given. A row comparison, because PostgreSQL would pair a
/// plain `next_attempt_at >= $n` with a claim's upper bound into a range it
/// guesses at ten rows, and then read every due row and sort them rather than
/// walk the index in order.
macro_rules! above_floor {
    ($floor:literal) => {
        concat!(
            "(next_attempt_at, id) >= (",
            $floor,
            ", '00000000-0000-0000-0000-000000000000'::uuid)"
        )
    };
}

pub(crate) use above_floor;

/// How often the floor is worked out again.
const REFRESH: Duration = Duration::from_secs(1);
/// Kept below what the floor's sources say, in milliseconds.
const MARGIN_MS: i64 = 1_000;

#[derive(Debug)]
pub(crate) struct DueFloor {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// Milliseconds by the database's clock; `i64::MIN` until first worked out.
    floor: i64,
    refreshed: Option<Instant>,
}

impl DueFloor {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                floor: i64::MIN,
                refreshed: None,
            }),
        }
    }

    /// The floor now, worked out again first if it is older than [`REFRESH`].
    /// A failed refresh keeps the floor it had, which stays below every
    /// delivery it was below.
    pub(crate) async fn get(&self, pool: &Pool) -> i64 {
        let now = Instant::now();
        let state = *self.lock();
        if state
            .refreshed
            .is_some_and(|at| now.duration_since(at) < REFRESH)
        {
            return state.floor;
        }
        self.lock().refreshed = Some(now);
        match work_out(pool).await {
            Ok(floor) => {
                self.lock().floor = floor;
                floor
            }
            Err(e) => {
                tracing::warn!(error = %e, "working out the due floor failed; keeping the last one");
                state.floor
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain values, whole after any panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn work_out(pool: &Pool) -> PgResult<i64> {
    let floor: i64 = sqlx::query_scalar(
        "SELECT LEAST( \
             (SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'), \
             (SELECT floor(extract(epoch FROM min(xact_start)) * 1000)::bigint \
                FROM pg_stat_activity WHERE datname = current_database()), \
             herald_now_ms() \
         ) - $1",
    )
    .bind(MARGIN_MS)
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    Ok(floor)
}

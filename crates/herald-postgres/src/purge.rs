//! Retention in bounded batches.
//!
//! Each batch is one short statement (its own transaction): at most `batch`
//! finished deliveries with their attempts, or `batch` events, or `batch`
//! idempotency keys. Batches run until one comes back short, so no transaction
//! grows with the backlog and autovacuum can reclaim space as the purge goes.
//! Rows another transaction holds are skipped, not waited for; the next purge
//! gets them. The cutoffs come from the database's clock, once per purge.

use herald_store::{PurgePolicy, PurgeReport};
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgResult;
use crate::pool::Pool;
use crate::rows::millis;

const DELIVERIES: &str = "WITH doomed AS ( \
         SELECT id FROM deliveries WHERE status <> 'pending' AND created_at < $1 \
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED \
     ), gone_attempts AS ( \
         DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM doomed) RETURNING 1 \
     ), gone AS ( \
         DELETE FROM deliveries WHERE id IN (SELECT id FROM doomed) RETURNING 1 \
     ) \
     SELECT (SELECT count(*) FROM gone) AS deliveries, (SELECT count(*) FROM gone_attempts) AS attempts";

/// Walks events by (created_at, id) from a cursor, so events still held by a
/// pending delivery are passed over once, not rescanned by every batch.
const EVENTS: &str = "WITH doomed AS ( \
         SELECT e.id, e.created_at FROM events e \
         WHERE e.created_at < $1 AND (e.created_at, e.id) > ($3, $4) \
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
         ORDER BY e.created_at, e.id LIMIT $2 FOR UPDATE SKIP LOCKED \
     ), gone AS ( \
         DELETE FROM events WHERE id IN (SELECT id FROM doomed) RETURNING created_at, id \
     ) \
     SELECT created_at, id FROM gone ORDER BY created_at DESC, id DESC";

const KEYS: &str = "DELETE FROM idempotency_keys WHERE key IN ( \
         SELECT key FROM idempotency_keys WHERE created_at < $1 \
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

pub(crate) async fn purge(pool: &Pool, policy: PurgePolicy) -> PgResult<PurgeReport> {
    let batch = i64::from(policy.batch.max(1));
    let cutoffs = sqlx::query("SELECT herald_now_ms() - $1 AS work, herald_now_ms() - $2 AS keys")
        .bind(millis(policy.retention))
        .bind(millis(policy.idempotency_ttl))
        .fetch_one(&mut *pool.acquire().await?)
        .await?;
    let work_cutoff: i64 = cutoffs.try_get("work")?;
    let key_cutoff: i64 = cutoffs.try_get("keys")?;
    let mut report = PurgeReport::default();

    loop {
        let row = sqlx::query(DELIVERIES)
            .bind(work_cutoff)
            .bind(batch)
            .fetch_one(&mut *pool.acquire().await?)
            .await?;
        let deliveries: i64 = row.try_get("deliveries")?;
        let attempts: i64 = row.try_get("attempts")?;
        report.deliveries += deliveries.unsigned_abs();
        report.attempts += attempts.unsigned_abs();
        if deliveries < batch {
            break;
        }
    }

    let mut after: (i64, Uuid) = (i64::MIN, Uuid::nil());
    loop {
        let gone = sqlx::query(EVENTS)
            .bind(work_cutoff)
            .bind(batch)
            .bind(after.0)
            .bind(after.1)
            .fetch_all(&mut *pool.acquire().await?)
            .await?;
        report.events += gone.len() as u64;
        match gone.first() {
            Some(last) if (gone.len() as i64) >= batch => {
                after = (last.try_get("created_at")?, last.try_get("id")?)
            }
            _ => break,
        }
    }

    loop {
        let gone = sqlx::query(KEYS)
            .bind(key_cutoff)
            .bind(batch)
            .execute(&mut *pool.acquire().await?)
            .await?
            .rows_affected();
        report.idempotency_keys += gone;
        if gone < batch.unsigned_abs() {
            break;
        }
    }
    Ok(report)
}

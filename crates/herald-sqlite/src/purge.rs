//! Retention. One call of [`purge_batch`] is one write job: it deletes at most
//! `batch` finished deliveries (with their attempts), `batch` unneeded events
//! and `batch` expired idempotency keys. The store runs batches until one comes
//! back short, so no transaction grows with the backlog.

use herald_core::time::Timestamp;
use herald_store::{PurgePolicy, PurgeReport};
use rusqlite::params;

use crate::error::Failure;
use crate::writer::Writer;

/// True when the batch may have left rows behind, so another is worth running.
pub(crate) fn batch_was_full(report: &PurgeReport, policy: &PurgePolicy) -> bool {
    let batch = u64::from(policy.batch.max(1));
    report.deliveries >= batch || report.events >= batch || report.idempotency_keys >= batch
}

pub(crate) fn purge_batch(w: &Writer, policy: &PurgePolicy) -> Result<PurgeReport, Failure> {
    let conn = w.conn();
    let now = Timestamp::now();
    let cutoff = now.saturating_sub(policy.retention).millis();
    let key_cutoff = now.saturating_sub(policy.idempotency_ttl).millis();
    let batch = i64::from(policy.batch.max(1));
    let mut report = PurgeReport::default();

    let finished: Vec<[u8; 16]> = conn
        .prepare_cached(
            "SELECT id FROM deliveries WHERE status <> 'pending' AND created_at < ?1 ORDER BY created_at LIMIT ?2",
        )?
        .query_map(params![cutoff, batch], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut delete_attempts = conn.prepare_cached("DELETE FROM attempts WHERE delivery_id = ?1")?;
    let mut delete_delivery = conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?;
    for id in &finished {
        report.attempts += delete_attempts.execute([id])? as u64;
        report.deliveries += delete_delivery.execute([id])? as u64;
    }

    // An event stays while any delivery still needs it.
    report.events = conn
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events AS e WHERE e.created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id) ORDER BY e.created_at LIMIT ?2)",
        )?
        .execute(params![cutoff, batch])? as u64;

    report.idempotency_keys = conn
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN \
             (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
        )?
        .execute(params![key_cutoff, batch])? as u64;
    Ok(report)
}

//! Ordered delivery (`herald_store::ordered_key`): a delivery ordered under a
//! key is published *waiting* (no due time, so no claim sees it) while an
//! earlier delivery of the same (webhook, key) is pending, and the oldest
//! waiting one falls due when the one before it finishes. Claims are
//! untouched: the head of each key is the only one of its key with a due
//! time, and its lease makes it one attempt at a time on every node.
//!
//! A publish deciding that a delivery need not wait, and an attempt finishing
//! the key's head, must not interleave (the new delivery would wait for a head
//! that is gone, and nothing would wake it): both take the key's advisory
//! lock, in sorted order, until their transaction ends. Under it, each
//! statement reads what the other committed.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::PgResult;

/// One (webhook, ordering key) line.
pub(crate) type Line = (Uuid, String);

/// Takes the advisory lock of each line (hashed; a collision only makes two
/// lines take turns), in one sorted order so that no two callers deadlock.
pub(crate) async fn lock(conn: &mut PgConnection, lines: &[Line]) -> PgResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let (webhooks, keys) = split(lines);
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('herald.ordering'), h) FROM ( \
             SELECT DISTINCT hashtext(w::text || '/' || k) AS h \
             FROM UNNEST($1::uuid[], $2::text[]) AS l (w, k) ORDER BY h \
         ) sorted",
    )
    .bind(&webhooks)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The place of the last pending delivery of each line that has one; the
/// caller holds the lines' locks.
pub(crate) async fn last_places(
    conn: &mut PgConnection,
    lines: &[Line],
) -> PgResult<HashMap<Line, i64>> {
    if lines.is_empty() {
        return Ok(HashMap::new());
    }
    let (webhooks, keys) = split(lines);
    let found = sqlx::query(
        "SELECT l.w, l.k, ( \
             SELECT d.ordering_seq FROM deliveries d \
             WHERE d.webhook_id = l.w AND d.ordering_key = l.k \
               AND d.status = 'pending' AND d.ordering_key IS NOT NULL \
             ORDER BY d.ordering_seq DESC LIMIT 1 \
         ) AS last \
         FROM UNNEST($1::uuid[], $2::text[]) AS l (w, k)",
    )
    .bind(&webhooks)
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut places = HashMap::new();
    for row in &found {
        if let Some(last) = row.try_get::<Option<i64>, _>("last")? {
            places.insert((row.try_get("w")?, row.try_get("k")?), last);
        }
    }
    Ok(places)
}

/// The lines of the given deliveries that are ordered, by delivery id. Read
/// without a lock: a delivery's key changes only once it has finished
/// (a redelivery or a recovery clears it), never under a current lease.
pub(crate) async fn lines_of(
    conn: &mut PgConnection,
    deliveries: &[Uuid],
) -> PgResult<HashMap<Uuid, Line>> {
    if deliveries.is_empty() {
        return Ok(HashMap::new());
    }
    let found = sqlx::query(
        "SELECT id, webhook_id, ordering_key FROM deliveries \
         WHERE id = ANY($1) AND ordering_key IS NOT NULL",
    )
    .bind(deliveries)
    .fetch_all(&mut *conn)
    .await?;
    found
        .iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                (row.try_get("webhook_id")?, row.try_get("ordering_key")?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// After the head of each line finished: makes the oldest pending delivery of
/// the line due now if it is waiting (one already due or leased is left as
/// it is). The caller holds the lines' locks. The row is found by id; its
/// status is not named (the subquery chose a pending one), so no plan can
/// answer the lookup from a partial index of pending deliveries instead.
pub(crate) async fn release_next(conn: &mut PgConnection, lines: &[Line]) -> PgResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let (webhooks, keys) = split(lines);
    sqlx::query(
        "UPDATE deliveries d SET next_attempt_at = herald_now_ms(), updated_at = herald_now_ms() \
         FROM ( \
             SELECT ( \
                 SELECT h.id FROM deliveries h \
                 WHERE h.webhook_id = l.w AND h.ordering_key = l.k \
                   AND h.status = 'pending' AND h.ordering_key IS NOT NULL \
                 ORDER BY h.ordering_seq LIMIT 1 \
             ) AS id \
             FROM UNNEST($1::uuid[], $2::text[]) AS l (w, k) \
         ) head \
         WHERE d.id = head.id AND d.next_attempt_at IS NULL",
    )
    .bind(&webhooks)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn split(lines: &[Line]) -> (Vec<Uuid>, Vec<&str>) {
    lines.iter().map(|(w, k)| (*w, k.as_str())).unzip()
}

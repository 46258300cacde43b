//! The database's secrets key check, and binding the sealed values stored
//! before bindings existed (see `herald_store::Store::adopt_key`).
//!
//! Adopting takes the migration lock, so nodes starting together take turns:
//! the first binds and writes the check, the others find it and compare.

use herald_store::{KeyVerdict, Readiness, Rebind, SEALED_COLUMNS};
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::error::PgResult;
use crate::pool::Pool;
use crate::schema::lock_migrations;

pub(crate) async fn adopt(
    pool: &Pool,
    schema: Option<&str>,
    check: [u8; 32],
    rebind: &Rebind,
) -> PgResult<KeyVerdict> {
    if let Some(stored) = stored_check(&mut *pool.acquire().await?).await? {
        return Ok(compare(&stored, check));
    }
    let mut tx = pool.begin().await?;
    lock_migrations(&mut tx, schema).await?;
    // Another node may have adopted while we waited for the lock.
    if let Some(stored) = stored_check(&mut tx).await? {
        return Ok(compare(&stored, check));
    }
    let mut rebound = 0;
    for &(column, table, value_column) in SEALED_COLUMNS {
        for (row, sealed) in sealed_values(&mut tx, table, value_column).await? {
            // Returning drops the transaction, which rolls back what was rebound.
            let Some(bound) = rebind(column, row, &sealed) else {
                return Ok(KeyVerdict::Unopenable { column, row });
            };
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {table} SET {value_column} = $2 WHERE id = $1"
            )))
            .bind(row)
            .bind(bound)
            .execute(&mut *tx)
            .await?;
            rebound += 1;
        }
    }
    sqlx::query("INSERT INTO key_check (id, check_value) VALUES (1, $1)")
        .bind(check.as_slice())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(KeyVerdict::Adopted { rebound })
}

fn compare(stored: &[u8], check: [u8; 32]) -> KeyVerdict {
    if stored == check {
        KeyVerdict::Matches
    } else {
        KeyVerdict::Mismatch
    }
}

/// The schema version and the stored key check, read without changing anything.
pub(crate) async fn readiness(pool: &Pool) -> PgResult<Readiness> {
    let schema = crate::schema::status(pool).await?;
    let key_check = if schema.applied > 0 {
        stored_check(&mut *pool.acquire().await?).await?
    } else {
        None
    };
    Ok(Readiness {
        schema_version: i64::from(schema.applied),
        expected_schema_version: i64::from(schema.latest),
        key_check,
    })
}

async fn stored_check(conn: &mut PgConnection) -> PgResult<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT check_value FROM key_check WHERE id = 1")
            .fetch_optional(conn)
            .await?,
    )
}

async fn sealed_values(
    conn: &mut PgConnection,
    table: &str,
    value_column: &str,
) -> PgResult<Vec<(Uuid, Vec<u8>)>> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT id, {value_column} FROM {table} WHERE {value_column} IS NOT NULL FOR UPDATE"
    )))
    .fetch_all(conn)
    .await?)
}

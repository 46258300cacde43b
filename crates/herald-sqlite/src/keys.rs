//! The database's secrets key check, and binding the sealed values stored
//! before bindings existed (see `herald_store::Store::adopt_key`).
//!
//! SQLite has one writer, so the adoption is one write job: no other node can
//! interleave.

use herald_store::{KeyVerdict, Readiness, Rebind, SEALED_COLUMNS};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::error::Failure;
use crate::schema::SCHEMA_VERSION;
use crate::writer::Writer;

/// Migration: the key check, one row at most.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE key_check (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    check_value BLOB NOT NULL
) STRICT;
"#;

/// The schema version and the stored key check, read without changing anything.
pub(crate) fn readiness(conn: &Connection) -> Result<Readiness, Failure> {
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let key_check = conn
        .query_row(
            "SELECT check_value FROM key_check WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(Readiness {
        schema_version,
        expected_schema_version: SCHEMA_VERSION,
        key_check,
    })
}

pub(crate) fn adopt(w: &Writer, check: [u8; 32], rebind: &Rebind) -> Result<KeyVerdict, Failure> {
    let conn = w.conn();
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT check_value FROM key_check WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(stored) = stored {
        return Ok(if stored == check {
            KeyVerdict::Matches
        } else {
            KeyVerdict::Mismatch
        });
    }
    // Every value is rebound in memory first, so a value the key cannot open
    // leaves the database untouched.
    let mut rebound = Vec::new();
    for &(column, table, value_column) in SEALED_COLUMNS {
        for (id, sealed) in sealed_values(conn, table, value_column)? {
            let row = Uuid::from_bytes(id);
            let Some(bound) = rebind(column, row, &sealed) else {
                return Ok(KeyVerdict::Unopenable { column, row });
            };
            rebound.push((table, value_column, id, bound));
        }
    }
    for (table, value_column, id, bound) in &rebound {
        conn.prepare_cached(&format!(
            "UPDATE {table} SET {value_column} = ?2 WHERE id = ?1"
        ))?
        .execute(params![id.as_slice(), bound])?;
    }
    conn.execute(
        "INSERT INTO key_check (id, check_value) VALUES (1, ?1)",
        [check.as_slice()],
    )?;
    w.invalidate_webhooks();
    Ok(KeyVerdict::Adopted {
        rebound: rebound.len() as u64,
    })
}

/// A row's id and one of its sealed values.
type SealedRow = ([u8; 16], Vec<u8>);

fn sealed_values(
    conn: &Connection,
    table: &str,
    value_column: &str,
) -> Result<Vec<SealedRow>, Failure> {
    let rows = conn
        .prepare(&format!(
            "SELECT id, {value_column} FROM {table} WHERE {value_column} IS NOT NULL"
        ))?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

//! Custom event types ([`EventTypeStore`]): one row per type, the schema and
//! example kept as the JSON text they came as. Writes go through the writer like
//! every other write; reads through the reader pool.

use async_trait::async_trait;
use herald_core::time::Timestamp;
use herald_store::{EventTypeRecord, EventTypeStore, NewEventType, PutEventType, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::error::Failure;
use crate::rows::timestamp;
use crate::writer::Writer;

/// Appended to the schema's migrations.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE event_types (
    key          TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    family       TEXT NOT NULL,
    schema_json  TEXT NOT NULL,  -- as given: the catalogue keeps field order
    example_json TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
"#;

const COLUMNS: &str = "key, description, family, schema_json, example_json, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<EventTypeRecord> {
    Ok(EventTypeRecord {
        key: row.get(0)?,
        description: row.get(1)?,
        family: row.get(2)?,
        schema_json: row.get(3)?,
        example_json: row.get(4)?,
        created_at: timestamp(row, 5)?,
        updated_at: timestamp(row, 6)?,
    })
}

fn list(conn: &Connection) -> Result<Vec<EventTypeRecord>, Failure> {
    let mut select =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM event_types ORDER BY key"))?;
    let records = select.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(records)
}

/// The writer runs one job at a time, so reading `created_at` first cannot race.
fn put(w: &Writer, new: NewEventType) -> Result<PutEventType, Failure> {
    let conn = w.conn();
    let now = Timestamp::now();
    let existing: Option<i64> = conn
        .prepare_cached("SELECT created_at FROM event_types WHERE key = ?1")?
        .query_row([&new.key], |row| row.get(0))
        .optional()?;
    let created_at = existing.map_or(now, Timestamp::from_millis);
    conn.prepare_cached(
        "INSERT INTO event_types (key, description, family, schema_json, example_json, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (key) DO UPDATE SET description = excluded.description, family = excluded.family, \
         schema_json = excluded.schema_json, example_json = excluded.example_json, updated_at = excluded.updated_at",
    )?
    .execute(params![
        new.key,
        new.description,
        new.family,
        new.schema_json,
        new.example_json,
        created_at.millis(),
        now.millis(),
    ])?;
    Ok(PutEventType {
        created: existing.is_none(),
        record: EventTypeRecord {
            key: new.key,
            description: new.description,
            family: new.family,
            schema_json: new.schema_json,
            example_json: new.example_json,
            created_at,
            updated_at: now,
        },
    })
}

fn delete(w: &Writer, key: &str) -> Result<bool, Failure> {
    let deleted = w
        .conn()
        .prepare_cached("DELETE FROM event_types WHERE key = ?1")?
        .execute([key])?;
    Ok(deleted > 0)
}

#[async_trait]
impl EventTypeStore for SqliteStore {
    async fn list_event_types(&self) -> StoreResult<Vec<EventTypeRecord>> {
        self.readers.run(|conn| list(conn)).await
    }

    async fn put_event_type(&self, new: NewEventType) -> StoreResult<PutEventType> {
        self.writer.run(move |w| put(w, new.clone())).await
    }

    async fn delete_event_type(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.writer.run(move |w| delete(w, &key)).await
    }
}

//! Custom event types ([`EventTypeStore`]): one row per type, shared by every
//! node on the database. A put is one upsert, so nodes registering the same key
//! at once never fail on the primary key and exactly one of them creates it.

use async_trait::async_trait;
use herald_core::time::Timestamp;
use herald_store::{EventTypeRecord, EventTypeStore, NewEventType, PutEventType, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{PgError, PgResult};

const LIST: &str = "SELECT key, description, family, schema_json, example_json, created_at, updated_at \
     FROM event_types ORDER BY key";

fn record(row: &PgRow) -> PgResult<EventTypeRecord> {
    Ok(EventTypeRecord {
        key: row.try_get("key")?,
        description: row.try_get("description")?,
        family: row.try_get("family")?,
        schema_json: row.try_get("schema_json")?,
        example_json: row.try_get("example_json")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

#[async_trait]
impl EventTypeStore for PgStore {
    async fn list_event_types(&self) -> StoreResult<Vec<EventTypeRecord>> {
        let rows = sqlx::query(LIST)
            .fetch_all(&mut *self.pool.acquire().await?)
            .await
            .map_err(PgError::from)?;
        Ok(rows.iter().map(record).collect::<PgResult<_>>()?)
    }

    async fn put_event_type(&self, new: NewEventType) -> StoreResult<PutEventType> {
        // `xmax` is 0 on a row this statement inserted, and the updating
        // transaction's id on one it updated.
        let row = sqlx::query(
            "INSERT INTO event_types AS t (key, description, family, schema_json, example_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, herald_now_ms(), herald_now_ms()) \
             ON CONFLICT (key) DO UPDATE SET description = excluded.description, family = excluded.family, \
             schema_json = excluded.schema_json, example_json = excluded.example_json, updated_at = excluded.updated_at \
             RETURNING t.key, t.description, t.family, t.schema_json, t.example_json, t.created_at, t.updated_at, \
             (t.xmax = 0) AS created",
        )
        .bind(&new.key)
        .bind(&new.description)
        .bind(&new.family)
        .bind(&new.schema_json)
        .bind(&new.example_json)
        .fetch_one(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        let created: bool = row.try_get("created").map_err(PgError::from)?;
        Ok(PutEventType {
            record: record(&row)?,
            created,
        })
    }

    async fn delete_event_type(&self, key: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM event_types WHERE key = $1")
            .bind(key)
            .execute(&mut *self.pool.acquire().await?)
            .await
            .map_err(PgError::from)?;
        Ok(deleted.rows_affected() > 0)
    }
}

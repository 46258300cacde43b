//! API tokens ([`TokenStore`]): one row per token, found by the SHA-256 digest
//! of its secret through the primary-key-like unique index. Writes go through
//! the writer like every other write; reads through the reader pool.

use std::time::Duration;

use async_trait::async_trait;
use herald_core::api_token::TokenDigest;
use herald_core::time::Timestamp;
use herald_store::{
    LAST_USED_GRANULARITY, NewToken, StoreResult, TokenId, TokenRecord, TokenStore,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::error::Failure;
use crate::rows::timestamp;
use crate::writer::Writer;

/// Appended to the schema's migrations.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    digest       BLOB NOT NULL UNIQUE,  -- SHA-256 of the token; the token itself is never stored
    scope        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER
) STRICT;
"#;

const COLUMNS: &str = "id, name, digest, scope, created_at, last_used_at, expires_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let optional_time = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
    };
    Ok(TokenRecord {
        id: TokenId::from_bytes(row.get(0)?),
        name: row.get(1)?,
        digest: row.get(2)?,
        scope: row.get(3)?,
        created_at: timestamp(row, 4)?,
        last_used_at: optional_time(5)?,
        expires_at: optional_time(6)?,
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn create(w: &Writer, new: NewToken) -> Result<TokenRecord, Failure> {
    let now = Timestamp::now();
    let expires_at = new
        .expires_in
        .map(|ttl| Timestamp::from_millis(now.millis().saturating_add(millis(ttl))));
    w.conn()
        .prepare_cached(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"
        ))?
        .execute(params![
            new.id.as_bytes(),
            new.name,
            new.digest,
            new.scope,
            now.millis(),
            expires_at.map(Timestamp::millis),
        ])?;
    Ok(TokenRecord {
        id: new.id,
        name: new.name,
        digest: new.digest,
        scope: new.scope,
        created_at: now,
        last_used_at: None,
        expires_at,
    })
}

fn list(conn: &Connection) -> Result<Vec<TokenRecord>, Failure> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
    ))?;
    let records = select.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(records)
}

fn find(conn: &Connection, digest: &TokenDigest) -> Result<Option<TokenRecord>, Failure> {
    let now = Timestamp::now().millis();
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE digest = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
        ))?
        .query_row(params![digest, now], from_row)
        .optional()?)
}

fn touch(w: &Writer, id: TokenId) -> Result<(), Failure> {
    let now = Timestamp::now().millis();
    w.conn()
        .prepare_cached(
            "UPDATE api_tokens SET last_used_at = ?2 \
             WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
        )?
        .execute(params![id.as_bytes(), now, millis(LAST_USED_GRANULARITY)])?;
    Ok(())
}

fn revoke(w: &Writer, id: TokenId) -> Result<bool, Failure> {
    let deleted = w
        .conn()
        .prepare_cached("DELETE FROM api_tokens WHERE id = ?1")?
        .execute([id.as_bytes()])?;
    Ok(deleted > 0)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        self.writer.run(move |w| create(w, new.clone())).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.readers.run(|conn| list(conn)).await
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<TokenRecord>> {
        let digest = *digest;
        self.readers.run(move |conn| find(conn, &digest)).await
    }

    async fn touch_token(&self, id: TokenId) -> StoreResult<()> {
        self.writer.run(move |w| touch(w, id)).await
    }

    async fn revoke_token(&self, id: TokenId) -> StoreResult<bool> {
        self.writer.run(move |w| revoke(w, id)).await
    }
}

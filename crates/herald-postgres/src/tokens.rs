//! API tokens ([`TokenStore`]): one row per token, shared by every node and
//! found by the SHA-256 digest of its secret through a unique index. Every
//! time is the database's (`herald_now_ms()`), so nodes agree on expiry.

use std::time::Duration;

use async_trait::async_trait;
use herald_core::api_token::TokenDigest;
use herald_core::time::Timestamp;
use herald_store::{
    LAST_USED_GRANULARITY, NewToken, StoreResult, TokenId, TokenRecord, TokenStore,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{PgError, PgResult};

/// The record's columns, in every statement's `RETURNING` or `SELECT`.
macro_rules! columns {
    () => {
        "id, name, digest, scope, created_at, last_used_at, expires_at"
    };
}

fn record(row: &PgRow) -> PgResult<TokenRecord> {
    let digest: Vec<u8> = row.try_get("digest")?;
    let digest = TokenDigest::try_from(digest.as_slice())
        .map_err(|_| PgError::Corrupt(format!("a token digest of {} bytes", digest.len())))?;
    let optional_time = |column: &str| -> PgResult<Option<Timestamp>> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
    };
    Ok(TokenRecord {
        id: TokenId(row.try_get("id")?),
        name: row.try_get("name")?,
        digest,
        scope: row.try_get("scope")?,
        created_at: Timestamp(row.try_get("created_at")?),
        last_used_at: optional_time("last_used_at")?,
        expires_at: optional_time("expires_at")?,
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl TokenStore for PgStore {
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        // One `herald_now_ms()` for both times, so the expiry is exactly
        // `expires_in` after the creation.
        let row = sqlx::query(concat!(
            "WITH now AS (SELECT herald_now_ms() AS ms) INSERT INTO api_tokens (",
            columns!(),
            ") SELECT $1, $2, $3, $4, now.ms, NULL, now.ms + $5 FROM now RETURNING ",
            columns!()
        ))
        .bind(new.id.0)
        .bind(&new.name)
        .bind(new.digest.as_slice())
        .bind(&new.scope)
        .bind(new.expires_in.map(millis))
        .fetch_one(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(record(&row)?)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM api_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(rows.iter().map(record).collect::<PgResult<_>>()?)
    }

    async fn find_token(&self, digest: &TokenDigest) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM api_tokens WHERE digest = $1 AND (expires_at IS NULL OR expires_at > herald_now_ms())"
        ))
        .bind(digest.as_slice())
        .fetch_optional(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    async fn touch_token(&self, id: TokenId) -> StoreResult<()> {
        // A row the condition leaves out is not written, so a busy token costs
        // one write a minute across all nodes.
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = herald_now_ms() \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= herald_now_ms() - $2)",
        )
        .bind(id.0)
        .bind(millis(LAST_USED_GRANULARITY))
        .execute(&mut *self.pool.acquire().await?)
        .await
        .map_err(PgError::from)?;
        Ok(())
    }

    async fn revoke_token(&self, id: TokenId) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.pool.acquire().await?)
            .await
            .map_err(PgError::from)?;
        Ok(deleted.rows_affected() > 0)
    }
}

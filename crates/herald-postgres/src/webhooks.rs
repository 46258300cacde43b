//! Webhook registration, with the per-scope limit enforced across nodes.
//!
//! Counting a scope and inserting into it happen under a transaction-scoped
//! advisory lock on the scope, so two nodes creating the 11th webhook of a
//! project at once cannot both succeed.

use herald_core::id::WebhookId;
use herald_store::{NewWebhook, StoreError, WebhookPatch, WebhookRecord, scope_label};
use sqlx::{PgConnection, PgPool};

use crate::error::{PgError, PgResult};
use crate::rows::{self, pattern_texts, webhook_columns};

/// Why `create` or `update` refused, besides the database failing.
pub(crate) enum WebhookError {
    ScopeFull { scope: String, limit: u32 },
    Pg(PgError),
}

impl From<PgError> for WebhookError {
    fn from(err: PgError) -> Self {
        Self::Pg(err)
    }
}

impl From<sqlx::Error> for WebhookError {
    fn from(err: sqlx::Error) -> Self {
        Self::Pg(err.into())
    }
}

impl From<WebhookError> for StoreError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::ScopeFull { scope, limit } => StoreError::ScopeFull { scope, limit },
            WebhookError::Pg(err) => err.into(),
        }
    }
}

const SELECT_ONE: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks w WHERE w.id = $1"
);

pub(crate) async fn create(
    pool: &PgPool,
    new: NewWebhook,
    max_per_scope: u32,
) -> Result<WebhookRecord, WebhookError> {
    let mut tx = pool.begin().await?;
    ensure_room(&mut tx, new.project.as_deref(), max_per_scope).await?;
    let row = sqlx::query(concat!(
        "INSERT INTO webhooks AS w (id, name, url_display, url_sealed, secret_sealed, event_types, project, \
         enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, herald_now_ms(), herald_now_ms()) RETURNING ",
        webhook_columns!()
    ))
    .bind(new.id.0)
    .bind(&new.name)
    .bind(&new.url_display)
    .bind(&new.url_sealed)
    .bind(&new.secret_sealed)
    .bind(pattern_texts(&new.event_types))
    .bind(&new.project)
    .bind(new.enabled)
    .fetch_one(&mut *tx)
    .await?;
    let record = rows::webhook(&row)?;
    tx.commit().await?;
    Ok(record)
}

/// Fails with `ScopeFull` unless the scope has room for one more webhook, and
/// holds the scope's lock until the transaction ends.
async fn ensure_room(
    conn: &mut PgConnection,
    project: Option<&str>,
    max_per_scope: u32,
) -> Result<(), WebhookError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('herald.scope'), \
         hashtext(current_schema() || ':' || coalesce('p:' || $1, 'global')))",
    )
    .bind(project)
    .execute(&mut *conn)
    .await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhooks WHERE ($1::text IS NULL AND project IS NULL) OR project = $1",
    )
    .bind(project)
    .fetch_one(&mut *conn)
    .await?;
    if count >= i64::from(max_per_scope) {
        return Err(WebhookError::ScopeFull {
            scope: scope_label(project),
            limit: max_per_scope,
        });
    }
    Ok(())
}

pub(crate) async fn get(pool: &PgPool, id: WebhookId) -> PgResult<Option<WebhookRecord>> {
    let row = sqlx::query(SELECT_ONE)
        .bind(id.0)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::webhook).transpose()
}

pub(crate) async fn list(pool: &PgPool) -> PgResult<Vec<WebhookRecord>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w ORDER BY w.created_at, w.id"
    ))
    .fetch_all(pool)
    .await?;
    found.iter().map(rows::webhook).collect()
}

pub(crate) async fn update(
    pool: &PgPool,
    id: WebhookId,
    patch: WebhookPatch,
    max_per_scope: u32,
) -> Result<Option<WebhookRecord>, WebhookError> {
    let mut tx = pool.begin().await?;
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w WHERE w.id = $1 FOR NO KEY UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let current = rows::webhook(&row)?;
    if let Some(project) = &patch.project
        && *project != current.project
    {
        ensure_room(&mut tx, project.as_deref(), max_per_scope).await?;
    }
    let disabling = patch.enabled == Some(false);
    let next = apply(current, patch);
    let row = sqlx::query(concat!(
        "UPDATE webhooks w SET name = $2, url_display = $3, url_sealed = $4, secret_sealed = $5, \
         event_types = $6, project = $7, enabled = $8, disabled_reason = $9, updated_at = herald_now_ms() \
         WHERE w.id = $1 RETURNING ",
        webhook_columns!()
    ))
    .bind(id.0)
    .bind(&next.name)
    .bind(&next.url_display)
    .bind(&next.url_sealed)
    .bind(&next.secret_sealed)
    .bind(pattern_texts(&next.event_types))
    .bind(&next.project)
    .bind(next.enabled)
    .bind(&next.disabled_reason)
    .fetch_one(&mut *tx)
    .await?;
    if disabling {
        fail_pending_deliveries(&mut tx, id).await?;
    }
    let record = rows::webhook(&row)?;
    tx.commit().await?;
    Ok(Some(record))
}

fn apply(mut record: WebhookRecord, patch: WebhookPatch) -> WebhookRecord {
    if let Some(name) = patch.name {
        record.name = name;
    }
    if let Some((display, sealed)) = patch.url {
        record.url_display = display;
        record.url_sealed = sealed;
    }
    if let Some(secret) = patch.secret_sealed {
        record.secret_sealed = secret;
    }
    if let Some(types) = patch.event_types {
        record.event_types = types;
    }
    if let Some(project) = patch.project {
        record.project = project;
    }
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
        if enabled {
            record.disabled_reason = None;
        }
    }
    record
}

pub(crate) async fn delete(pool: &PgPool, id: WebhookId) -> PgResult<bool> {
    // Deliveries and their attempts go with it (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn disable(pool: &PgPool, id: WebhookId, reason: &str) -> PgResult<()> {
    let mut tx = pool.begin().await?;
    disable_in(&mut tx, id, reason).await?;
    tx.commit().await?;
    Ok(())
}

/// Disables a webhook with a reason inside the caller's transaction.
pub(crate) async fn disable_in(
    conn: &mut PgConnection,
    id: WebhookId,
    reason: &str,
) -> PgResult<()> {
    sqlx::query(
        "UPDATE webhooks SET enabled = false, disabled_reason = $2, updated_at = herald_now_ms() WHERE id = $1",
    )
    .bind(id.0)
    .bind(rows::text_without_nul(reason).as_ref())
    .execute(&mut *conn)
    .await?;
    fail_pending_deliveries(conn, id).await
}

/// Clearing the lease token makes any attempt still in flight stale: it will be
/// logged, but cannot move the delivery on.
async fn fail_pending_deliveries(conn: &mut PgConnection, id: WebhookId) -> PgResult<()> {
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, \
         last_error = 'webhook disabled', updated_at = herald_now_ms() \
         WHERE webhook_id = $1 AND status = 'pending'",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

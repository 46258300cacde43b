//! Webhook registration, with the per-scope limit enforced across nodes.
//!
//! Counting a scope and inserting into it happen under a transaction-scoped
//! advisory lock on the scope, so two nodes creating the 11th webhook of a
//! project at once cannot both succeed.

use herald_core::id::WebhookId;
use herald_store::{NewWebhook, StoreError, WebhookPatch, WebhookRecord, scope_label};
use sqlx::PgConnection;

use crate::cleanup::Cleanup;
use crate::error::{PgError, PgResult};
use crate::pool::Pool;
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
    " FROM webhooks w WHERE w.id = $1 AND NOT w.deleting"
);

pub(crate) async fn create(
    pool: &Pool,
    new: NewWebhook,
    max_per_scope: u32,
) -> Result<WebhookRecord, WebhookError> {
    let mut tx = pool.begin().await?;
    ensure_room(&mut tx, new.project.as_deref(), max_per_scope).await?;
    let row = sqlx::query(concat!(
        "INSERT INTO webhooks AS w (id, name, url_display, url_sealed, secret_sealed, event_types, project, \
         enabled, failing_after, disable_after, max_in_flight, max_per_second, ordering, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, herald_now_ms(), herald_now_ms()) RETURNING ",
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
    .bind(rows::failing_after_column(&new.health_overrides))
    .bind(rows::disable_after_column(&new.health_overrides))
    .bind(rows::flow_limit_column(new.flow_limits.max_in_flight))
    .bind(rows::flow_limit_column(new.flow_limits.max_per_second))
    .bind(new.ordering.as_str())
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
        "SELECT count(*) FROM webhooks \
         WHERE (($1::text IS NULL AND project IS NULL) OR project = $1) AND NOT deleting",
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

pub(crate) async fn get(pool: &Pool, id: WebhookId) -> PgResult<Option<WebhookRecord>> {
    let row = sqlx::query(SELECT_ONE)
        .bind(id.0)
        .fetch_optional(&mut *pool.acquire().await?)
        .await?;
    row.as_ref().map(rows::webhook).transpose()
}

pub(crate) async fn list(pool: &Pool) -> PgResult<Vec<WebhookRecord>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w WHERE NOT w.deleting ORDER BY w.created_at, w.id"
    ))
    .fetch_all(&mut *pool.acquire().await?)
    .await?;
    found.iter().map(rows::webhook).collect()
}

/// Applies the patch; a patch that disables the webhook fails its backlog in
/// batches once the change is committed.
pub(crate) async fn update(
    pool: &Pool,
    id: WebhookId,
    patch: WebhookPatch,
    max_per_scope: u32,
) -> Result<Option<WebhookRecord>, WebhookError> {
    let mut tx = pool.begin().await?;
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w WHERE w.id = $1 AND NOT w.deleting FOR NO KEY UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let mut next = rows::webhook(&row)?;
    if let Some(project) = &patch.project
        && *project != next.project
    {
        ensure_room(&mut tx, project.as_deref(), max_per_scope).await?;
    }
    let disabling = patch.apply_to(&mut next);
    let row = sqlx::query(concat!(
        "UPDATE webhooks w SET name = $2, url_display = $3, url_sealed = $4, secret_sealed = $5, \
         event_types = $6, project = $7, enabled = $8, disabled_reason = $9, updated_at = herald_now_ms(), \
         failing_after = $10, disable_after = $11, max_in_flight = $12, max_per_second = $13, ordering = $14 \
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
    .bind(rows::failing_after_column(&next.health_overrides))
    .bind(rows::disable_after_column(&next.health_overrides))
    .bind(rows::flow_limit_column(next.flow_limits.max_in_flight))
    .bind(rows::flow_limit_column(next.flow_limits.max_per_second))
    .bind(next.ordering.as_str())
    .fetch_one(&mut *tx)
    .await?;
    crate::health::store(&mut tx, id, &next.health).await?;
    if disabling {
        start_failing_backlog(&mut tx, id).await?;
    }
    let record = WebhookRecord {
        health: next.health,
        ..rows::webhook(&row)?
    };
    tx.commit().await?;
    if disabling {
        Cleanup::FailBacklog(id).run(pool).await?;
    }
    Ok(Some(record))
}

/// Hides the webhook from every read, fan-out and claims, then deletes its
/// deliveries in batches and the webhook last.
pub(crate) async fn delete(pool: &Pool, id: WebhookId) -> PgResult<bool> {
    let mut tx = pool.begin().await?;
    let marked = mark_deleting(&mut tx, id).await?;
    tx.commit().await?;
    if marked {
        Cleanup::DeleteWebhook(id).run(pool).await?;
    }
    Ok(marked)
}

/// Marks the webhook as being deleted inside the caller's transaction, which
/// must run `Cleanup::DeleteWebhook` after committing; false if there is no
/// such webhook. Taking the row lock waits for the publishes that have the
/// webhook locked for fan-out, so none adds a delivery after the commit.
pub(crate) async fn mark_deleting(conn: &mut PgConnection, id: WebhookId) -> PgResult<bool> {
    let marked = sqlx::query(
        "UPDATE webhooks SET deleting = true, enabled = false WHERE id = $1 AND NOT deleting",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(marked.rows_affected() > 0)
}

pub(crate) async fn disable(pool: &Pool, id: WebhookId, reason: &str) -> PgResult<()> {
    let mut tx = pool.begin().await?;
    disable_in(&mut tx, id, reason).await?;
    tx.commit().await?;
    Cleanup::FailBacklog(id).run(pool).await?;
    Ok(())
}

/// Disables a webhook with a reason inside the caller's transaction, which
/// must run `Cleanup::FailBacklog` after committing.
pub(crate) async fn disable_in(
    conn: &mut PgConnection,
    id: WebhookId,
    reason: &str,
) -> PgResult<()> {
    sqlx::query(
        "UPDATE webhooks SET enabled = false, disabled_reason = $2, updated_at = herald_now_ms() \
         WHERE id = $1 AND NOT deleting",
    )
    .bind(id.0)
    .bind(rows::text_without_nul(reason).as_ref())
    .execute(&mut *conn)
    .await?;
    start_failing_backlog(conn, id).await
}

/// A disabled webhook gets nothing more: its deliveries pending now are to
/// fail, and claims skip it until they have.
pub(crate) async fn start_failing_backlog(conn: &mut PgConnection, id: WebhookId) -> PgResult<()> {
    sqlx::query(
        "UPDATE webhooks SET failing_until = herald_now_ms() WHERE id = $1 AND NOT deleting",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

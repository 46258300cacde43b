//! Wake-ups for idle delivery workers, through `LISTEN`/`NOTIFY`.
//!
//! Every publish batch that creates deliveries sends one notification on commit,
//! with the schema as payload. A wake-up is a hint, not a queue: a worker still
//! polls `next_due_at` (retries fall due without any notification), and a lost
//! connection is reported as a wake-up because notifications may have been
//! missed while it was down.

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::error::PgResult;
use crate::publish::WORK_CHANNEL;

pub struct WorkListener {
    listener: PgListener,
    schema: String,
    /// Keeps the listener's dedicated connection out of the store's pool.
    _pool: PgPool,
}

impl WorkListener {
    pub(crate) async fn start(pool: PgPool, schema: String) -> PgResult<Self> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        Ok(Self {
            listener,
            schema,
            _pool: pool,
        })
    }

    /// Returns when new deliveries may be due: a publish in this store's schema
    /// committed, or the connection was lost and re-established.
    pub async fn wait(&mut self) -> PgResult<()> {
        loop {
            match self.listener.try_recv().await? {
                Some(notification) if notification.payload() != self.schema => continue,
                _ => return Ok(()),
            }
        }
    }
}

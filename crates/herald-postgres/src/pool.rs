//! The connection pool, counted: sqlx's pool says how many connections are
//! open and idle but not how many callers wait for one, which is the figure
//! that says the pool is too small. Every connection the store takes goes
//! through [`Pool::acquire`] or [`Pool::begin`], which count their callers
//! while they wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::PgResult;

#[derive(Clone, Debug)]
pub(crate) struct Pool {
    inner: PgPool,
    waiting: Arc<AtomicUsize>,
}

/// Counts one waiting caller for as long as it lives, so a wait that is
/// cancelled (its future dropped) is uncounted too.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub(crate) fn new(inner: PgPool) -> Self {
        Self {
            inner,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) async fn acquire(&self) -> PgResult<PoolConnection<Postgres>> {
        let _waiting = Waiting::start(&self.waiting);
        Ok(self.inner.acquire().await?)
    }

    pub(crate) async fn begin(&self) -> PgResult<Transaction<'static, Postgres>> {
        let _waiting = Waiting::start(&self.waiting);
        Ok(self.inner.begin().await?)
    }

    /// Callers waiting for a connection now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Connections open now, and how many of them are idle.
    pub(crate) fn open_and_idle(&self) -> (u32, usize) {
        (self.inner.size(), self.inner.num_idle())
    }

    pub(crate) async fn close(&self) {
        self.inner.close().await;
    }
}

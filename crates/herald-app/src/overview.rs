//! What the console's overview shows first: the last day's finished
//! deliveries by outcome and the backlog. Both are figures over every
//! webhook, so only a principal who may read everything sees them.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_core::time::Timestamp;
use herald_store::{Backlog, FinishedCounts};

use crate::tokens::{Permission, Principal};
use crate::{App, AppError};

/// The window the outcome counts cover.
pub const OUTCOME_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long one count of the window's outcomes serves the overview: the
/// count is an index range over a day's finished deliveries (tens of
/// milliseconds at a million), which a page render should not pay each time;
/// a person who just saw a delivery fail sees it counted within seconds.
const OUTCOMES_TTL: Duration = Duration::from_secs(10);

/// The overview's delivery figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOverview {
    /// Deliveries created within [`OUTCOME_WINDOW`] that finished, by outcome.
    pub finished: FinishedCounts,
    /// The pending deliveries now (the metrics' snapshot, a few seconds old).
    pub backlog: Backlog,
}

impl DeliveryOverview {
    /// How long the oldest due delivery has waited, as of `now`.
    pub fn oldest_due_age(&self, now: Timestamp) -> Option<Duration> {
        self.backlog.oldest_due_at.map(|due_at| {
            let millis = now.millis().saturating_sub(due_at.millis());
            Duration::from_millis(u64::try_from(millis).unwrap_or(0))
        })
    }

    /// Every pending delivery, whatever its state.
    pub fn pending(&self) -> u64 {
        self.backlog.due + self.backlog.scheduled + self.backlog.leased
    }
}

/// The last count of the window's outcomes and when it was taken.
#[derive(Default)]
pub(crate) struct OutcomesCache {
    taken: Mutex<Option<(Instant, FinishedCounts)>>,
}

impl App {
    /// The last day's outcomes (counted at most every [`OUTCOMES_TTL`]) and
    /// the backlog (shared with the metrics' gauges).
    pub async fn delivery_overview(&self, by: &Principal) -> Result<DeliveryOverview, AppError> {
        by.require(Permission::Read)?;
        let backlog = self.snapshot().await?.backlog;
        Ok(DeliveryOverview {
            finished: self.recent_outcomes().await?,
            backlog,
        })
    }

    async fn recent_outcomes(&self) -> Result<FinishedCounts, AppError> {
        let cache = &self.inner.outcomes.taken;
        let cached = *cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((taken, counts)) = cached
            && taken.elapsed() < OUTCOMES_TTL
        {
            return Ok(counts);
        }
        let counts = self.store().finished_within(OUTCOME_WINDOW).await?;
        *cache.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), counts));
        Ok(counts)
    }
}

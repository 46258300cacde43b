//! The scheduler: syncs each repository when its fetch interval has passed
//! since its last fetch (as the store recorded it, so a restart or another
//! node's fetch counts), and at once on a push.
//!
//! Syncs run as tasks, at most `max_concurrent` at once. A repository has at
//! most one queued sync running; a push that arrives during it asks for one
//! more after it, since the running fetch may have missed the pushed commits.

use std::sync::PoisonError;
use std::time::Duration;

use herald_core::time::Timestamp;
use herald_store::{RepositoryId, StoreResult};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::monitors::service::MonitorService;

/// The longest the scheduler sleeps, so new repositories and changed
/// intervals are noticed without a signal.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// The shortest, so a repository due again at once cannot make it spin.
const MIN_IDLE: Duration = Duration::from_millis(200);

impl MonitorService {
    /// Runs the scheduler until `shutdown` is cancelled; syncs under way then
    /// finish (each is bounded by the fetch and search timeouts) and no new
    /// ones start.
    pub fn spawn(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let idle = match service.queue_due().await {
                    Ok(idle) => idle,
                    Err(error) => {
                        tracing::warn!(%error, "cannot list repositories to fetch");
                        MAX_IDLE
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(idle) => {}
                    () = service.inner.rescan.notified() => {}
                }
            }
            service.inner.shutdown.cancel();
        })
    }

    /// A repository was created, changed or deleted: the scheduler looks at
    /// the intervals again now rather than at its next wake-up.
    pub fn repositories_changed(&self) {
        self.inner.rescan.notify_one();
    }

    /// Queues a sync of every repository whose interval has passed; returns
    /// how long until the next one is due.
    async fn queue_due(&self) -> StoreResult<Duration> {
        let now = Timestamp::now();
        let mut idle = MAX_IDLE;
        for repo in self.inner.monitors.list_repositories().await? {
            let interval = repo
                .fetch_interval
                .unwrap_or(self.inner.config.fetch_interval);
            let due = repo
                .last_fetched_at
                .map_or(now, |last| last.saturating_add(interval));
            if due <= now {
                self.queue_sync(repo.id, false);
            } else {
                let wait = u64::try_from(due.millis() - now.millis()).unwrap_or(0);
                idle = idle.min(Duration::from_millis(wait));
            }
        }
        Ok(idle.max(MIN_IDLE))
    }

    /// Starts a sync task for the repository unless one is running; with
    /// `again`, a running one is followed by another.
    pub(crate) fn queue_sync(&self, id: RepositoryId, again: bool) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        {
            let mut running = self
                .inner
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(wanted) = running.get_mut(&id) {
                *wanted |= again;
                return;
            }
            running.insert(id, false);
        }
        let service = self.clone();
        tokio::spawn(async move { service.sync_until_settled(id).await });
    }

    async fn sync_until_settled(self, id: RepositoryId) {
        loop {
            if !self.inner.shutdown.is_cancelled() {
                // The semaphore is never closed.
                if let Ok(_permit) = self.inner.permits.acquire().await
                    && let Err(error) = self.sync_repository(id).await
                {
                    tracing::warn!(%error, repository = %id, "a repository sync failed");
                }
            }
            let mut running = self
                .inner
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if running.get(&id) == Some(&true) && !self.inner.shutdown.is_cancelled() {
                running.insert(id, false);
                continue;
            }
            running.remove(&id);
            return;
        }
    }
}

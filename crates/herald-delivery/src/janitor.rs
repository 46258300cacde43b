//! The janitor: on a fixed interval, finishes the bulk work an interrupted
//! call left (deletions, failing a disabled webhook's backlog), then purges old
//! deliveries, attempts, events and idempotency keys.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{PurgePolicy, Store};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// `tokio::time::interval` refuses a zero period; this floor also keeps a
/// misconfigured interval from turning purging into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
pub struct JanitorConfig {
    pub interval: Duration,
    pub policy: PurgePolicy,
}

/// Runs once right away (so a restart finishes what a crash interrupted), then
/// every `config.interval`, until `shutdown`.
pub fn spawn_janitor(
    store: Arc<dyn Store>,
    config: JanitorConfig,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.interval.max(MIN_INTERVAL));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            // Both run in many batches over a large backlog; shutdown need not wait for all.
            tokio::select! {
                () = shutdown.cancelled() => break,
                finished = store.finish_cleanups() => match finished {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "janitor finished interrupted deletions"),
                    Err(e) => tracing::warn!(error = %e, "janitor: finishing interrupted deletions failed; trying again next round"),
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                report = store.purge(config.policy) => match report {
                    Ok(report) if report == Default::default() => tracing::debug!("janitor: nothing to purge"),
                    Ok(report) => tracing::info!(
                        events = report.events,
                        deliveries = report.deliveries,
                        attempts = report.attempts,
                        idempotency_keys = report.idempotency_keys,
                        "janitor purged old records"
                    ),
                    Err(e) => tracing::warn!(error = %e, "janitor: purge failed; trying again next round"),
                },
            }
        }
        tracing::debug!("janitor stopped");
    })
}

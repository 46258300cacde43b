//! The janitor: purges old deliveries, attempts, events and idempotency keys
//! on a fixed interval.

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

/// Purges once right away, then every `config.interval`, until `shutdown`.
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
            // A purge of a large backlog runs in many batches; shutdown need not wait for all.
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

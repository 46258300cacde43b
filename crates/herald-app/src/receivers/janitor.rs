//! Retention of the receivers' state: request log rows past the retention the
//! outgoing delivery log also uses, and delivery ids past their dedupe window,
//! purged on a fixed interval in bounded batches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use herald_store::{ReceiverPurgePolicy, ReceiverStore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// `tokio::time::interval` refuses a zero period; the floor also keeps a
/// misconfigured interval from turning purging into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
pub struct ReceiverJanitorConfig {
    pub interval: Duration,
    pub policy: ReceiverPurgePolicy,
}

/// Purges once right away, then every `config.interval`, until `shutdown` resolves.
pub fn spawn_receiver_janitor(
    store: Arc<dyn ReceiverStore>,
    config: ReceiverJanitorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.interval.max(MIN_INTERVAL));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                () = &mut shutdown => break,
                report = store.purge_receivers(config.policy) => match report {
                    Ok(report) if report == Default::default() => {
                        tracing::debug!("receiver janitor: nothing to purge");
                    }
                    Ok(report) => tracing::info!(
                        requests = report.requests,
                        delivery_ids = report.dedupe_keys,
                        "receiver janitor purged old records"
                    ),
                    Err(e) => tracing::warn!(error = %e, "receiver janitor: purge failed; trying again next round"),
                },
            }
        }
        tracing::debug!("receiver janitor stopped");
    })
}

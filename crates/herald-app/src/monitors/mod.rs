//! Code monitors at work: the scheduler that keeps bare mirrors fetched and
//! searches their new commits, and what the monitors' actions are sent.
//! herald-monitor does the git and matching; the store keeps the state; this
//! crate ties them together and publishes through the delivery engine.
//!
//! Layout:
//! - [`MonitorService`] (`service`): syncing one repository — fetch its mirror
//!   (on a blocking thread, with a timeout), record the fetch, then for every
//!   enabled monitor whose query may match it search the commits new since the
//!   heads the monitor last searched, one shared pass per distinct range, and
//!   record each outcome with [`herald_store::MonitorStore::record_search`].
//!   Also "run now", the test notification of each action, and `monitorURL`.
//! - `scheduler`: [`MonitorService::spawn`] syncs each repository when its
//!   fetch interval has passed since its last fetch, and
//!   [`MonitorService::notify_push`] (or [`MonitorService::notify_event`] with
//!   a `repo:push`) at once; one sync per repository at a time.
//! - [`actions`]: which events a search publishes (the notification with and
//!   without results, the Slack message) and to which action webhooks, split
//!   into as many parts as [`NotificationLimits`] need.
//! - [`payloads`]: the bodies: `code_monitor:notification` through
//!   herald-catalogue's builder, and the `code_monitor:slack` Block Kit message.
//! - [`config`]: the service's settings, [`MonitorsConfig`] and
//!   [`NotificationLimits`].
//! - [`operations`]: the monitors' operations on [`crate::App`] (create,
//!   change, test, run now, the run log) and the query check.
//!
//! Invariants (with the store, which makes them atomic):
//! - **History before a monitor's creation is never reported.** A monitor
//!   starts from the heads the store recorded at its creation; a repository it
//!   has no heads for (fetched for the first time since, or reset) gets the
//!   current heads as baseline without a search; a baseline with no branch at
//!   all is replaced the same way, rather than reporting the whole history
//!   that appears with the first branch.
//! - **Every match is reported.** The search keeps every result; the limits
//!   only split them over more notifications, recorded with the run.
//! - **Each commit is reported at most once per monitor.** A search covers the
//!   commits reachable from the fetched heads and from none of the searched
//!   ones, and its results, its run and the new searched heads are committed
//!   together, only if the searched heads did not move meanwhile. A failed
//!   search records its error and keeps the heads, so the next sync searches
//!   the same commits again; rewritten history resets the baseline.
//! - Fetch and search errors are recorded (on the repository, on the run) and
//!   logged; nothing here panics or stops the scheduler.

pub mod actions;
pub mod config;
pub mod operations;
pub mod payloads;
mod scheduler;
mod service;

pub use config::{MonitorsConfig, NotificationLimits};
pub use service::{ActionTest, MonitorService, RunNow, ServiceError};

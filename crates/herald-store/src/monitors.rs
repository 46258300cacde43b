//! Code monitors' durable state: the watched repositories, the monitors with
//! their actions, the heads each monitor last searched in each repository, and
//! the log of runs.
//!
//! The store does not search or parse queries; it keeps what the scheduler
//! needs to uphold two invariants, and makes them atomic:
//! - **History before a monitor's creation is never reported.** Creating a
//!   monitor records, in the same transaction, the last fetched heads of every
//!   repository as already searched ([`MonitorStore::create_monitor`]); so do
//!   changing its query and enabling it again ([`MonitorStore::update_monitor`]).
//!   A repository whose heads are reset (its source or branches changed) loses
//!   every monitor's searched heads, and the scheduler records the next fetched
//!   heads as the baseline ([`MonitorStore::set_baseline`]).
//! - **Each commit is reported at most once per monitor.**
//!   [`MonitorStore::record_search`] stores the newly searched heads, the run,
//!   and the notification events with their deliveries in one transaction, and
//!   only if the monitor's searched heads are still those the search started
//!   from (compare-and-set). A crash, or another node that searched the same
//!   range first, can therefore neither report a commit twice nor lose a
//!   notification.
//!
//! A monitor's actions are ordinary webhooks owned by the monitor: the store
//! creates, changes and deletes them with it, in the monitor's scope
//! [`monitor_project`]. Their URLs and secrets are sealed by the caller and live
//! only in the webhook records.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::{EventId, WebhookId};
pub use herald_core::id::{MonitorId, MonitorRunId, RepositoryId};
use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{NewEvent, NewWebhook, Published, StoreResult, WebhookPatch};

/// The scope (project key) of a monitor's own webhooks and of the events it
/// publishes.
pub fn monitor_project(id: MonitorId) -> String {
    format!("code-monitor:{id}")
}

/// Branch heads: full ref name (`refs/heads/main`) → commit id.
pub type HeadsMap = BTreeMap<String, String>;

/// The most runs kept per monitor; older ones are deleted as new ones come.
pub const RUNS_KEPT_PER_MONITOR: u32 = 100;

/// A watched repository as stored. The source (a clone URL, which may carry
/// credentials, or a local path) is sealed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRecord {
    pub id: RepositoryId,
    /// Unique, e.g. `github.com/owner/repo`: what `repo:` filters and results name.
    pub name: String,
    /// The source with any credentials obscured, safe to show.
    pub source_display: String,
    pub source_sealed: Vec<u8>,
    /// Branches watched (short or full ref names); `None` is the default branch.
    pub branches: Option<Vec<String>>,
    /// How often to fetch; `None` is the server's default.
    pub fetch_interval: Option<Duration>,
    /// The watched branches' heads at the last successful fetch; `None` before one.
    pub heads: Option<HeadsMap>,
    /// When the last fetch (successful or not) finished.
    pub last_fetched_at: Option<Timestamp>,
    /// Why the last fetch failed; `None` after a success.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewRepository {
    pub id: RepositoryId,
    pub name: String,
    pub source_display: String,
    pub source_sealed: Vec<u8>,
    pub branches: Option<Vec<String>>,
    pub fetch_interval: Option<Duration>,
}

/// Fields to change; `None` leaves a field as it is. Changing the name, the
/// source or the branches resets the repository's heads and every monitor's
/// searched heads in it: the next fetch is a new baseline.
#[derive(Debug, Clone, Default)]
pub struct RepositoryPatch {
    pub name: Option<String>,
    /// `(source_display, source_sealed)`.
    pub source: Option<(String, Vec<u8>)>,
    pub branches: Option<Option<Vec<String>>>,
    pub fetch_interval: Option<Option<Duration>>,
}

/// What a repository write came to.
#[expect(
    clippy::large_enum_variant,
    reason = "one per API call; boxing would only burden callers"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryWrite {
    Saved(RepositoryRecord),
    /// Another repository has that name; nothing changed.
    NameTaken,
    /// No repository with that id.
    NotFound,
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResult {
    /// The watched branches' heads after the fetch.
    Fetched(HeadsMap),
    /// Why it failed; the previous heads stay.
    Failed(String),
}

/// What a monitor's action does with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// "Call a webhook": the `code_monitor:notification` payload, signed.
    Webhook,
    /// A Slack incoming webhook: a Block Kit message.
    Slack,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
        }
    }
}

/// One action of a monitor; its target, secret and delivery log are those of
/// its webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorAction {
    /// The action's own webhook, in the monitor's scope. Also the action's id.
    pub webhook_id: WebhookId,
    pub kind: ActionKind,
    /// False leaves `results` out of what this action is sent.
    pub include_results: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRecord {
    pub id: MonitorId,
    pub description: String,
    /// The query's source text, as given.
    pub query: String,
    pub enabled: bool,
    /// In the order given.
    pub actions: Vec<MonitorAction>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An action to create, with its webhook. The store puts the webhook in the
/// monitor's scope, whatever `webhook.project` says.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub kind: ActionKind,
    pub include_results: bool,
    pub webhook: NewWebhook,
}

#[derive(Debug, Clone)]
pub struct NewMonitor {
    pub id: MonitorId,
    pub description: String,
    pub query: String,
    pub enabled: bool,
    pub actions: Vec<NewAction>,
}

/// One entry of a monitor's new action list.
#[derive(Debug, Clone)]
pub enum ActionChange {
    /// An existing action, kept, with its webhook patched. Its kind cannot change.
    Keep {
        webhook_id: WebhookId,
        include_results: bool,
        webhook: WebhookPatch,
    },
    Add(NewAction),
}

/// Fields to change; `None` leaves a field as it is. `actions` replaces the
/// whole list: actions not kept are deleted with their webhooks and delivery
/// logs. A new query, or enabling a disabled monitor, records the current
/// heads of every repository as searched: the monitor reports only commits
/// that arrive from then on.
#[derive(Debug, Clone, Default)]
pub struct MonitorPatch {
    pub description: Option<String>,
    pub query: Option<String>,
    pub enabled: Option<bool>,
    pub actions: Option<Vec<ActionChange>>,
}

/// What a monitor update came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorWrite {
    Saved(MonitorRecord),
    NotFound,
    /// A kept action names a webhook that is not one of the monitor's actions;
    /// nothing changed.
    UnknownAction(WebhookId),
}

/// An enabled monitor and the heads it last searched in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorState {
    pub monitor: MonitorRecord,
    /// `None` when no baseline exists yet for this repository.
    pub searched: Option<HeadsMap>,
}

/// An event a search publishes, and who receives it.
#[derive(Debug, Clone)]
pub struct MonitorEvent {
    pub event: NewEvent,
    /// Also deliver to every enabled global webhook subscribed to the type.
    pub global_subscribers: bool,
    /// Deliver to these webhooks (skipped if missing or disabled).
    pub webhooks: Vec<WebhookId>,
}

/// One notification a run published: which part it is of the run's
/// notifications of its kind, and how many results it carries. A run's
/// matches are split over as many parts as the per-notification limits need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNotification {
    pub event_id: EventId,
    /// `code_monitor:notification` or `code_monitor:slack`.
    pub event_type: String,
    /// 1-based, in the order of the run's results.
    pub part: u32,
    /// Parts of this kind (type, and with or without results) in the run.
    pub parts: u32,
    /// Results in this part; 0 for the parts of actions that leave results out.
    pub results: u32,
}

/// One run as the caller reports it; the store adds its finish time and the
/// ids of the events published with it.
#[derive(Debug, Clone)]
pub struct NewMonitorRun {
    pub id: MonitorRunId,
    pub monitor_id: MonitorId,
    pub repository_id: RepositoryId,
    pub repository_name: String,
    pub started_at: Timestamp,
    pub commits_scanned: u64,
    /// Results reported (diff and message results both count).
    pub matches: u64,
    /// The matched commits, each once, newest first.
    pub commits: Vec<String>,
    pub error: Option<String>,
    /// The notifications published with the run, in the order of
    /// [`SearchRecord::events`].
    pub notifications: Vec<RunNotification>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRunRecord {
    pub id: MonitorRunId,
    pub monitor_id: MonitorId,
    pub repository_id: RepositoryId,
    pub repository_name: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub commits_scanned: u64,
    pub matches: u64,
    pub commits: Vec<String>,
    /// More commits matched than were reported. Only runs recorded before
    /// every match was delivered (in as many parts as needed) can say so.
    pub truncated: bool,
    pub error: Option<String>,
    /// The events published with the run: the notification first.
    pub event_ids: Vec<EventId>,
    /// How the run's matches were split over notifications; empty for runs
    /// recorded before parts were kept.
    pub notifications: Vec<RunNotification>,
}

/// A finished search, to record atomically.
#[derive(Debug, Clone)]
pub struct SearchRecord {
    pub monitor_id: MonitorId,
    pub repository_id: RepositoryId,
    /// The searched heads the search started from: the record applies only if
    /// they are still the monitor's.
    pub from: HeadsMap,
    /// The heads searched up to, recorded as searched.
    pub to: HeadsMap,
    /// `None` to move the heads on without logging a run.
    pub run: Option<NewMonitorRun>,
    pub events: Vec<MonitorEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchRecorded {
    /// Heads, run and events are committed. `published` is in the order of
    /// `SearchRecord::events`.
    Recorded { published: Vec<Published> },
    /// The monitor's searched heads moved since the search started (another
    /// node, or a reset); nothing was written.
    Stale,
    /// The monitor was deleted or disabled meanwhile; nothing was written.
    Inactive,
}

#[async_trait]
pub trait MonitorStore: Send + Sync + 'static {
    // ---- repositories ----

    async fn create_repository(&self, new: NewRepository) -> StoreResult<RepositoryWrite>;
    async fn get_repository(&self, id: RepositoryId) -> StoreResult<Option<RepositoryRecord>>;
    async fn get_repository_by_name(&self, name: &str) -> StoreResult<Option<RepositoryRecord>>;
    /// Every repository, oldest first.
    async fn list_repositories(&self) -> StoreResult<Vec<RepositoryRecord>>;
    async fn update_repository(
        &self,
        id: RepositoryId,
        patch: RepositoryPatch,
    ) -> StoreResult<RepositoryWrite>;
    /// Deletes a repository and every monitor's searched heads in it; runs stay.
    async fn delete_repository(&self, id: RepositoryId) -> StoreResult<bool>;
    /// Records how a fetch ended; `None` if the repository is gone.
    async fn record_fetch(
        &self,
        id: RepositoryId,
        result: FetchResult,
    ) -> StoreResult<Option<RepositoryRecord>>;

    // ---- monitors ----

    /// Creates the monitor, its actions' webhooks, and its searched heads: the
    /// current heads of every repository fetched so far.
    async fn create_monitor(&self, new: NewMonitor) -> StoreResult<MonitorRecord>;
    async fn get_monitor(&self, id: MonitorId) -> StoreResult<Option<MonitorRecord>>;
    /// Every monitor, oldest first.
    async fn list_monitors(&self) -> StoreResult<Vec<MonitorRecord>>;
    async fn update_monitor(&self, id: MonitorId, patch: MonitorPatch)
    -> StoreResult<MonitorWrite>;
    /// Deletes the monitor with its webhooks (and their deliveries), searched
    /// heads and runs.
    async fn delete_monitor(&self, id: MonitorId) -> StoreResult<bool>;

    // ---- searching ----

    /// The enabled monitors, oldest first, each with the heads it last
    /// searched in this repository.
    async fn monitor_states(&self, repository: RepositoryId) -> StoreResult<Vec<MonitorState>>;
    /// Records `heads` as searched for a monitor that has no searched heads in
    /// this repository yet; false (and nothing written) if it has, or if the
    /// monitor or repository is gone.
    async fn set_baseline(
        &self,
        monitor: MonitorId,
        repository: RepositoryId,
        heads: HeadsMap,
    ) -> StoreResult<bool>;
    /// Records a search's outcome atomically; see [`SearchRecorded`].
    async fn record_search(&self, record: SearchRecord) -> StoreResult<SearchRecorded>;
    /// Logs a run that moved nothing (a failed search); false if the monitor is gone.
    async fn record_run(&self, run: NewMonitorRun) -> StoreResult<bool>;
    /// A monitor's latest runs, newest first, at most `limit`.
    async fn list_runs(&self, monitor: MonitorId, limit: u32)
    -> StoreResult<Vec<MonitorRunRecord>>;
}

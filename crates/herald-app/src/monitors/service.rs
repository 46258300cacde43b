//! [`MonitorService`]: syncing a repository (fetch its mirror, then search the
//! new commits for every monitor on it and record the outcome), running a
//! monitor now, and testing its actions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use herald_catalogue::keys::REPO_PUSH;
use herald_core::cipher::{SealedColumn, SecretCipher};
use herald_core::id::WebhookId;
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_delivery::{EngineHandle, TestOutcome};
use herald_monitor::{
    Heads, MatchResult, Mirror, NewRange, Query, QueryError, SearchError, SearchOptions,
    SearchOutcome, parse_query, search_new_commits,
};
use herald_store::{
    ActionKind, FetchResult, HeadsMap, MonitorId, MonitorRecord, MonitorRunId, MonitorRunRecord,
    MonitorStore, NewMonitorRun, RUNS_KEPT_PER_MONITOR, RepositoryId, RepositoryRecord,
    SearchRecord, SearchRecorded, Store, StoreError, StoreResult,
};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::monitors::actions::{search_events, test_event};
use crate::monitors::config::MonitorsConfig;
use crate::{AppError, metrics};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored query no longer parses (the API refuses bad ones, so only an
    /// upgrade that narrowed the language could cause it).
    #[error("the monitor's stored query is invalid: {0}")]
    Query(#[from] QueryError),
}

/// What a manual run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunNow {
    NotFound,
    Disabled,
    /// The runs it logged, newest first: one per repository with new commits
    /// the monitor's query may match.
    Ran(Vec<MonitorRunRecord>),
}

/// What a test notification to one action got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTest {
    pub webhook_id: WebhookId,
    pub kind: ActionKind,
    /// `None` when the action's webhook was deleted (through the webhooks API).
    pub outcome: Option<TestOutcome>,
}

/// Code monitors at work. Cheap to clone.
#[derive(Clone)]
pub struct MonitorService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) monitors: Arc<dyn MonitorStore>,
    webhooks: Arc<dyn Store>,
    cipher: SecretCipher,
    engine: EngineHandle,
    pub(crate) config: MonitorsConfig,
    /// One sync at a time per repository: a mirror takes one fetch at a time,
    /// and a search must see the heads its own fetch recorded.
    locks: Mutex<HashMap<RepositoryId, Arc<tokio::sync::Mutex<()>>>>,
    /// Repositories with a queued sync running, and whether another is wanted
    /// after it (a push arrived meanwhile).
    pub(crate) running: Mutex<HashMap<RepositoryId, bool>>,
    pub(crate) permits: Semaphore,
    pub(crate) shutdown: CancellationToken,
    /// Wakes the scheduler to look at the repositories again.
    pub(crate) rescan: Notify,
    /// What `monitorURL` links start with, without a trailing slash.
    external_url: RwLock<String>,
}

impl MonitorService {
    pub fn new(
        monitors: Arc<dyn MonitorStore>,
        webhooks: Arc<dyn Store>,
        cipher: SecretCipher,
        engine: EngineHandle,
        config: MonitorsConfig,
    ) -> MonitorService {
        let permits = Semaphore::new(config.max_concurrent.max(1));
        let external_url = config
            .external_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        MonitorService {
            inner: Arc::new(Inner {
                monitors,
                webhooks,
                cipher,
                engine,
                config,
                locks: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
                permits,
                shutdown: CancellationToken::new(),
                rescan: Notify::new(),
                external_url: RwLock::new(external_url),
            }),
        }
    }

    /// Where the monitors' state is kept.
    pub fn store(&self) -> &dyn MonitorStore {
        &*self.inner.monitors
    }

    pub fn config(&self) -> &MonitorsConfig {
        &self.inner.config
    }

    /// The monitor's page in Herald: its API resource (Herald has no UI).
    pub fn monitor_url(&self, id: MonitorId) -> String {
        let base = self
            .inner
            .external_url
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        format!("{base}/api/v1/monitors/{id}")
    }

    /// The server's external URL, for `monitorURL` links when the
    /// configuration names none.
    pub fn default_external_url(&self, url: &str) {
        if self.inner.config.external_url.is_none() {
            let mut current = self
                .inner
                .external_url
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            *current = url.trim_end_matches('/').to_owned();
        }
    }

    /// A published event reached Herald: a `repo:push` makes its repository's
    /// sync due at once. Anything else is ignored.
    pub fn notify_event(&self, event_type: &str, payload: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Push {
            repository: String,
        }
        if event_type != REPO_PUSH {
            return;
        }
        match serde_json::from_slice::<Push>(payload) {
            Ok(push) => self.notify_push(&push.repository),
            Err(error) => tracing::debug!(%error, "a repo:push without a repository name"),
        }
    }

    /// A push to the repository called `name` was reported (a receiver's
    /// `repo:push`): fetch and search it at once, and once more after a sync
    /// already under way. Unknown names are ignored.
    pub fn notify_push(&self, name: &str) {
        let service = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            match service.inner.monitors.get_repository_by_name(&name).await {
                Ok(Some(repo)) => service.queue_sync(repo.id, true),
                Ok(None) => {
                    tracing::debug!(repository = %name, "a push to a repository no monitor watches")
                }
                Err(error) => {
                    tracing::warn!(%error, repository = %name, "cannot look up a pushed repository")
                }
            }
        });
    }

    /// Fetches and searches a repository in the background, soon (a new
    /// repository's first fetch).
    pub fn sync_soon(&self, id: RepositoryId) {
        self.queue_sync(id, true);
    }

    /// Fetches the repository, records how the fetch went, then searches its
    /// new commits for every enabled monitor and records each outcome. Returns
    /// the repository as it stands after the fetch; `None` if it is gone.
    /// Fetch and search failures are recorded, never returned.
    pub async fn sync_repository(&self, id: RepositoryId) -> StoreResult<Option<RepositoryRecord>> {
        let lock = self.repository_lock(id);
        let _held = lock.lock().await;
        let Some(repo) = self.inner.monitors.get_repository(id).await? else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        match self.fetch(&repo).await {
            Err(error) => {
                metrics::record_fetch(false, started.elapsed());
                tracing::warn!(repository = %repo.name, %error, elapsed_ms = started.elapsed().as_millis(), "repository fetch failed");
                self.inner
                    .monitors
                    .record_fetch(id, FetchResult::Failed(error))
                    .await
            }
            Ok((mirror, heads)) => {
                metrics::record_fetch(true, started.elapsed());
                let fetched = FetchResult::Fetched(heads_map(&heads));
                let Some(repo) = self.inner.monitors.record_fetch(id, fetched).await? else {
                    return Ok(None);
                };
                tracing::info!(
                    repository = %repo.name,
                    branches = heads.len(),
                    elapsed_ms = started.elapsed().as_millis(),
                    "repository fetched"
                );
                self.search(&repo, &mirror, &heads).await?;
                Ok(Some(repo))
            }
        }
    }

    /// Syncs every repository the monitor's query may match, and returns the
    /// runs that logged.
    pub async fn run_monitor(&self, id: MonitorId) -> Result<RunNow, ServiceError> {
        let monitors = &self.inner.monitors;
        let Some(monitor) = monitors.get_monitor(id).await? else {
            return Ok(RunNow::NotFound);
        };
        if !monitor.enabled {
            return Ok(RunNow::Disabled);
        }
        let query = parse_query(&monitor.query)?;
        let before: HashSet<MonitorRunId> = monitors
            .list_runs(id, RUNS_KEPT_PER_MONITOR)
            .await?
            .iter()
            .map(|run| run.id)
            .collect();
        for repo in monitors.list_repositories().await? {
            if query.may_match_repo(&repo.name) {
                self.sync_repository(repo.id).await?;
            }
        }
        let runs = monitors.list_runs(id, RUNS_KEPT_PER_MONITOR).await?;
        Ok(RunNow::Ran(
            runs.into_iter()
                .filter(|run| !before.contains(&run.id))
                .collect(),
        ))
    }

    /// Sends each action its test notification now (the notification with query
    /// "test query" and no results, or a Slack test message), signed like a
    /// delivery; records nothing. A webhook this node's key cannot open is the
    /// node's fault: unavailable, like any sealed value an API call meets.
    pub async fn test_monitor(&self, monitor: &MonitorRecord) -> Result<Vec<ActionTest>, AppError> {
        let url = self.monitor_url(monitor.id);
        let mut tests = Vec::with_capacity(monitor.actions.len());
        for action in &monitor.actions {
            let outcome = match self.inner.webhooks.get_webhook(action.webhook_id).await? {
                Some(webhook) => {
                    let (event_type, payload) = test_event(monitor, &url, action.kind);
                    Some(
                        self.inner
                            .engine
                            .send_test(&webhook, event_type, payload)
                            .await
                            .map_err(|unsealable| AppError::unavailable(unsealable.to_string()))?,
                    )
                }
                None => None,
            };
            tests.push(ActionTest {
                webhook_id: action.webhook_id,
                kind: action.kind,
                outcome,
            });
        }
        Ok(tests)
    }

    fn repository_lock(&self, id: RepositoryId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(id).or_default())
    }

    /// `git fetch` into the mirror (created if needed), then the watched
    /// branches' heads. Errors come back as text with the source's credentials
    /// replaced by its display form.
    async fn fetch(&self, repo: &RepositoryRecord) -> Result<(Mirror, Heads), String> {
        let source = self
            .inner
            .cipher
            .open(
                &repo.source_sealed,
                &SealedColumn::RepositorySource.of(repo.id.as_uuid()),
            )
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("this node's secrets key cannot open the stored source; every node sharing a database needs the same secret.key")?;
        let dir = self.inner.config.mirror_dir.clone();
        let timeout = self.inner.config.fetch_timeout;
        let policy = self.inner.config.sources.clone();
        let (name, branches) = (repo.name.clone(), repo.branches.clone());
        let clone_url = source.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let mirror = Mirror::ensure_in(&dir, &name, &clone_url, &policy)?;
            mirror.fetch(timeout)?;
            let heads = mirror.heads(branches.as_deref())?;
            Ok::<_, herald_monitor::MirrorError>((mirror, heads))
        })
        .await;
        match fetched {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(error)) => Err(redact(&error.to_string(), &source, &repo.source_display)),
            Err(error) => Err(format!("the fetch task failed: {error}")),
        }
    }

    /// Searches what is new since each monitor last searched this repository.
    /// Monitors that searched up to the same heads share one pass.
    async fn search(
        &self,
        repo: &RepositoryRecord,
        mirror: &Mirror,
        heads: &Heads,
    ) -> StoreResult<()> {
        let current = heads_map(heads);
        let mut pending: BTreeMap<HeadsMap, Vec<(MonitorRecord, Query)>> = BTreeMap::new();
        for state in self.inner.monitors.monitor_states(repo.id).await? {
            let query = match parse_query(&state.monitor.query) {
                Ok(query) => query,
                Err(error) => {
                    tracing::warn!(monitor = %state.monitor.id, %error, "a stored query does not parse; skipped");
                    continue;
                }
            };
            if !query.may_match_repo(&repo.name) {
                continue;
            }
            match state.searched {
                None => {
                    // History before a monitor knew this repository is never reported.
                    self.inner
                        .monitors
                        .set_baseline(state.monitor.id, repo.id, current.clone())
                        .await?;
                }
                Some(searched) if searched == current => {}
                Some(searched) => pending
                    .entry(searched)
                    .or_default()
                    .push((state.monitor, query)),
            }
        }
        for (from, monitors) in pending {
            self.search_range(repo, mirror, from, heads, monitors)
                .await?;
        }
        Ok(())
    }

    async fn search_range(
        &self,
        repo: &RepositoryRecord,
        mirror: &Mirror,
        from: HeadsMap,
        heads: &Heads,
        monitors: Vec<(MonitorRecord, Query)>,
    ) -> StoreResult<()> {
        let to = heads_map(heads);
        let last: Heads = from.clone().into_iter().collect();
        let range = NewRange::between(&last, heads);
        // Nothing new (branches moved back or went away), or nothing searched
        // before to tell new commits from old ones (the watched branches did not
        // exist yet): move on without reporting history.
        if range.is_empty() || from.is_empty() {
            for (monitor, _) in &monitors {
                self.record(SearchRecord {
                    monitor_id: monitor.id,
                    repository_id: repo.id,
                    from: from.clone(),
                    to: to.clone(),
                    run: None,
                    events: Vec::new(),
                })
                .await?;
            }
            return Ok(());
        }
        let started = Timestamp::now();
        let queries: Vec<Query> = monitors.iter().map(|(_, query)| query.clone()).collect();
        let searched = self.search_blocking(mirror.clone(), range, queries).await;
        for (index, (monitor, _)) in monitors.iter().enumerate() {
            let mut run = NewMonitorRun {
                id: MonitorRunId::new(),
                monitor_id: monitor.id,
                repository_id: repo.id,
                repository_name: repo.name.clone(),
                started_at: started,
                commits_scanned: 0,
                matches: 0,
                commits: Vec::new(),
                error: None,
                notifications: Vec::new(),
            };
            let record = |run: NewMonitorRun, events| SearchRecord {
                monitor_id: monitor.id,
                repository_id: repo.id,
                from: from.clone(),
                to: to.clone(),
                run: Some(run),
                events,
            };
            match &searched {
                Searched::Found(outcome) => {
                    let results = outcome
                        .monitors
                        .iter()
                        .find(|m| m.monitor == index)
                        .map_or(&[][..], |m| &m.results[..]);
                    run.commits_scanned = outcome.commits_scanned as u64;
                    run.matches = results.len() as u64;
                    run.commits = matched_commits(results);
                    let events = if results.is_empty() {
                        Vec::new()
                    } else {
                        let url = self.monitor_url(monitor.id);
                        let limits = self.inner.config.notification_limits;
                        let planned = search_events(monitor, &url, &repo.name, results, limits);
                        run.notifications = planned.notifications;
                        planned.events
                    };
                    self.record(record(run, events)).await?;
                }
                Searched::HistoryRewritten(error) => {
                    // History was rewritten: the old heads cannot bound the range,
                    // so the current heads become the baseline, reporting nothing.
                    run.error = Some(format!("{error}; searching from the current heads on"));
                    self.record(record(run, Vec::new())).await?;
                }
                Searched::Failed(error) => {
                    // The heads stay: the next sync searches the same commits again.
                    run.error = Some(error.clone());
                    self.inner.monitors.record_run(run).await?;
                }
            }
        }
        Ok(())
    }

    async fn search_blocking(
        &self,
        mirror: Mirror,
        range: NewRange,
        queries: Vec<Query>,
    ) -> Searched {
        let options = SearchOptions {
            timeout: self.inner.config.search_timeout,
            // Every match is reported, over as many notifications as it takes.
            max_results_per_monitor: usize::MAX,
            ..SearchOptions::default()
        };
        let started = std::time::Instant::now();
        let searched = tokio::task::spawn_blocking(move || {
            let refs: Vec<&Query> = queries.iter().collect();
            search_new_commits(&mirror, &range, &refs, &options)
        })
        .await;
        let result = match &searched {
            Ok(Ok(_)) => "success",
            Ok(Err(SearchError::MissingRevisions(_))) => "history_rewritten",
            _ => "failure",
        };
        metrics::record_search(result, started.elapsed());
        match searched {
            Ok(Ok(outcome)) => Searched::Found(outcome),
            Ok(Err(error @ SearchError::MissingRevisions(_))) => {
                Searched::HistoryRewritten(error.to_string())
            }
            Ok(Err(error)) => Searched::Failed(error.to_string()),
            Err(error) => Searched::Failed(format!("the search task failed: {error}")),
        }
    }

    async fn record(&self, record: SearchRecord) -> StoreResult<()> {
        let monitor = record.monitor_id;
        let searched = record
            .run
            .as_ref()
            .map(|run| (run.commits_scanned, run.matches, run.error.is_some()));
        match self.inner.monitors.record_search(record).await? {
            SearchRecorded::Recorded { published } => {
                if published.iter().any(|p| p.deliveries > 0) {
                    self.inner.engine.wake();
                }
                metrics::record_notifications(published.len());
                if let Some((commits, matches, failed)) = searched {
                    metrics::record_commits_searched(commits);
                    if !published.is_empty() {
                        tracing::info!(
                            %monitor,
                            results = matches,
                            notifications = published.len(),
                            "monitor notification sent"
                        );
                    }
                    tracing::info!(
                        %monitor,
                        commits,
                        matches,
                        failed,
                        notifications = published.len(),
                        deliveries = published.iter().map(|p| p.deliveries).sum::<u32>(),
                        "monitor searched"
                    );
                }
            }
            SearchRecorded::Stale => {
                tracing::debug!(%monitor, "another search recorded these commits first");
            }
            SearchRecorded::Inactive => {}
        }
        Ok(())
    }
}

/// How one shared pass over a range went.
enum Searched {
    Found(SearchOutcome),
    /// Previously searched commits are gone from the mirror.
    HistoryRewritten(String),
    Failed(String),
}

fn heads_map(heads: &Heads) -> HeadsMap {
    heads
        .iter()
        .map(|(r, o)| (r.to_owned(), o.to_owned()))
        .collect()
}

/// Each matched commit once, in result order (newest first).
fn matched_commits(results: &[MatchResult]) -> Vec<String> {
    let mut seen = HashSet::new();
    results
        .iter()
        .filter(|r| seen.insert(r.commit.as_str()))
        .map(|r| r.commit.clone())
        .collect()
}

/// Git's messages may quote the source, credentials and all, or only its
/// `user:password` part, a query value or a token path segment.
fn redact(message: &str, source: &str, display: &str) -> String {
    let mut redacted = message.replace(source, display);
    // Short parts (a user `git`) would scrub ordinary words out of the message.
    for part in shown_url::hidden_parts(source)
        .iter()
        .filter(|p| p.len() > 3)
    {
        redacted = redacted.replace(part.as_str(), "***");
    }
    let userinfo = source
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    if let Some(userinfo) = userinfo.filter(|u| !u.is_empty()) {
        redacted = redacted.replace(userinfo, "***");
        for part in userinfo.split(':').filter(|p| p.len() > 3) {
            redacted = redacted.replace(part, "***");
        }
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_git_messages_are_replaced() {
        let source = "https://bot:s3cret-token@git.example.com/a.git";
        let display = "https://***:***@git.example.com/a.git";
        let whole = redact(
            &format!("fatal: unable to access '{source}/'"),
            source,
            display,
        );
        assert_eq!(whole, format!("fatal: unable to access '{display}/'"));
        let password = redact("Authentication failed for s3cret-token", source, display);
        assert_eq!(password, "Authentication failed for ***");
        assert_eq!(
            redact("no credentials here", "/srv/git/a", "/srv/git/a"),
            "no credentials here"
        );
        let query = "https://git.example.com/a.git?private_token=glpat-s3cret";
        let shown = redact(
            "fatal: 'https://git.example.com/a.git?private_token=glpat-s3cret' and glpat-s3cret",
            query,
            "https://git.example.com/a.git?private_token=***",
        );
        assert!(!shown.contains("glpat-s3cret"), "{shown}");
    }
}

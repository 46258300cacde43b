//! The behaviours every [`MonitorStore`] must show, run by each store crate's
//! tests with [`monitor_store_contract_tests!`](crate::monitor_store_contract_tests):
//!
//! ```ignore
//! herald_store::monitor_store_contract_tests!(async { fresh_store().await });
//! ```
//!
//! The factory yields a [`MonitorFixture`]: the store seen both as a
//! [`MonitorStore`] and as a [`Store`] (a search publishes through the same
//! deliveries as every event), plus whatever must stay alive meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};

use crate::{
    ActionChange, ActionKind, DeliveryQuery, DeliveryRecord, FetchResult, HeadsMap, MonitorEvent,
    MonitorId, MonitorPatch, MonitorRecord, MonitorRunId, MonitorStore, MonitorWrite, NewAction,
    NewEvent, NewMonitor, NewMonitorRun, NewRepository, NewWebhook, RUNS_KEPT_PER_MONITOR,
    RepositoryId, RepositoryPatch, RepositoryRecord, RepositoryWrite, RunNotification,
    SearchRecord, SearchRecorded, Store, WebhookPatch, monitor_project,
};

/// What a test factory yields.
pub trait MonitorFixture: Send {
    fn monitors(&self) -> Arc<dyn MonitorStore>;
    fn store(&self) -> Arc<dyn Store>;
}

impl<S: MonitorStore + Store, G: Send> MonitorFixture for (Arc<S>, G) {
    fn monitors(&self) -> Arc<dyn MonitorStore> {
        Arc::clone(&self.0) as Arc<dyn MonitorStore>
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.0) as Arc<dyn Store>
    }
}

/// Expands to one `#[tokio::test]` per case. `$factory` is an async expression
/// yielding a fresh [`MonitorFixture`](crate::contract_monitors::MonitorFixture).
#[macro_export]
macro_rules! monitor_store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::monitor_store_contract_tests!(@cases $factory;
            repository_round_trip,
            repository_names_are_unique,
            record_fetch_keeps_the_last_heads_and_the_last_error,
            a_new_source_or_branches_reset_every_baseline,
            monitor_round_trip_with_action_webhooks,
            a_new_monitor_starts_from_the_fetched_heads,
            monitor_states_list_enabled_monitors_only,
            set_baseline_only_fills_a_missing_baseline,
            record_search_moves_heads_logs_the_run_and_publishes_together,
            a_run_commits_every_notification_part_with_it,
            record_search_from_stale_heads_writes_nothing,
            record_search_for_an_inactive_monitor_writes_nothing,
            concurrent_searches_of_one_range_record_once,
            a_failed_run_is_logged_without_moving_heads,
            updating_actions_keeps_adds_and_deletes_their_webhooks,
            a_new_query_or_enabling_again_restarts_from_the_current_heads,
            deleting_a_monitor_deletes_its_webhooks_state_and_runs,
            deleting_a_repository_deletes_its_baselines,
            runs_are_listed_newest_first_and_pruned,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let monitors = $crate::contract_monitors::MonitorFixture::monitors(&fixture);
                let store = $crate::contract_monitors::MonitorFixture::store(&fixture);
                $crate::contract_monitors::$case(monitors, store).await;
                drop(fixture);
            }
        )*
    };
}

type Monitors = Arc<dyn MonitorStore>;
type Events = Arc<dyn Store>;

const NOTIFICATION: &str = "code_monitor:notification";
const SLACK: &str = "code_monitor:slack";

fn heads(pairs: &[(&str, &str)]) -> HeadsMap {
    pairs
        .iter()
        .map(|(r, o)| ((*r).to_owned(), (*o).to_owned()))
        .collect()
}

fn oid(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn main_at(c: char) -> HeadsMap {
    heads(&[("refs/heads/main", &oid(c))])
}

fn new_repository(name: &str) -> NewRepository {
    NewRepository {
        id: RepositoryId::new(),
        name: name.to_owned(),
        source_display: format!("https://***:***@git.example.com/{name}.git"),
        source_sealed: name.as_bytes().to_vec(),
        branches: None,
        fetch_interval: None,
    }
}

fn new_webhook(name: &str, types: &[&str], project: Option<&str>) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: name.to_owned(),
        url_display: format!("https://hooks.example.com/{name}"),
        url_sealed: vec![1, 2, 3],
        secret_sealed: vec![4, 5, 6],
        event_types: types
            .iter()
            .map(|t| EventTypePattern::parse("event_types", t).unwrap())
            .collect(),
        project: project.map(str::to_owned),
        enabled: true,
    }
}

fn action(kind: ActionKind, include_results: bool) -> NewAction {
    let event_type = match kind {
        ActionKind::Webhook => NOTIFICATION,
        ActionKind::Slack => SLACK,
    };
    NewAction {
        kind,
        include_results,
        // A project the store must replace with the monitor's own.
        webhook: new_webhook(kind.as_str(), &[event_type], Some("elsewhere")),
    }
}

fn new_monitor(actions: Vec<NewAction>) -> NewMonitor {
    NewMonitor {
        id: MonitorId::new(),
        description: "Secrets in diffs".to_owned(),
        query: "type:diff BEGIN".to_owned(),
        enabled: true,
        actions,
    }
}

async fn repository(monitors: &Monitors, name: &str) -> RepositoryRecord {
    match monitors
        .create_repository(new_repository(name))
        .await
        .unwrap()
    {
        RepositoryWrite::Saved(record) => record,
        other => panic!("creating {name}: {other:?}"),
    }
}

async fn fetched(monitors: &Monitors, name: &str, at: &HeadsMap) -> RepositoryRecord {
    let repo = repository(monitors, name).await;
    monitors
        .record_fetch(repo.id, FetchResult::Fetched(at.clone()))
        .await
        .unwrap()
        .unwrap()
}

async fn searched(monitors: &Monitors, monitor: MonitorId, repo: RepositoryId) -> Option<HeadsMap> {
    monitors
        .monitor_states(repo)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.monitor.id == monitor)
        .and_then(|s| s.searched)
}

fn run(monitor: MonitorId, repo: &RepositoryRecord, error: Option<&str>) -> NewMonitorRun {
    NewMonitorRun {
        id: MonitorRunId::new(),
        monitor_id: monitor,
        repository_id: repo.id,
        repository_name: repo.name.clone(),
        started_at: herald_core::time::Timestamp::now(),
        commits_scanned: 3,
        matches: if error.is_some() { 0 } else { 1 },
        commits: if error.is_some() {
            vec![]
        } else {
            vec![oid('b')]
        },
        error: error.map(str::to_owned),
        notifications: Vec::new(),
    }
}

fn event(monitor: MonitorId, event_type: &str, payload: &str) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: Some(monitor_project(monitor)),
        payload: payload.as_bytes().to_vec(),
        properties: BTreeMap::new(),
        ordering_key: None,
    }
}

fn search(
    monitor: &MonitorRecord,
    repo: &RepositoryRecord,
    from: &HeadsMap,
    to: &HeadsMap,
) -> SearchRecord {
    SearchRecord {
        monitor_id: monitor.id,
        repository_id: repo.id,
        from: from.clone(),
        to: to.clone(),
        run: Some(run(monitor.id, repo, None)),
        events: vec![MonitorEvent {
            event: event(monitor.id, NOTIFICATION, r#"{"query":"q"}"#),
            global_subscribers: true,
            webhooks: monitor.actions.iter().map(|a| a.webhook_id).collect(),
        }],
    }
}

async fn deliveries(store: &Events, webhook: WebhookId) -> Vec<DeliveryRecord> {
    store
        .list_deliveries(DeliveryQuery {
            webhook_id: webhook,
            status: None,
            since: None,
            until: None,
            cursor: None,
            limit: 100,
        })
        .await
        .unwrap()
        .items
}

fn saved(write: MonitorWrite) -> MonitorRecord {
    match write {
        MonitorWrite::Saved(record) => record,
        other => panic!("expected a saved monitor, got {other:?}"),
    }
}

pub async fn repository_round_trip(monitors: Monitors, _store: Events) {
    let mut new = new_repository("github.com/acme/api");
    new.branches = Some(vec!["main".to_owned(), "release".to_owned()]);
    new.fetch_interval = Some(Duration::from_secs(90));
    let RepositoryWrite::Saved(created) = monitors.create_repository(new.clone()).await.unwrap()
    else {
        panic!("not created");
    };
    assert_eq!(created.id, new.id);
    assert_eq!(created.name, "github.com/acme/api");
    assert_eq!(created.source_sealed, new.source_sealed);
    assert_eq!(created.source_display, new.source_display);
    assert_eq!(created.branches, new.branches);
    assert_eq!(created.fetch_interval, Some(Duration::from_secs(90)));
    assert_eq!(
        (
            created.heads.clone(),
            created.last_fetched_at,
            created.last_error.clone()
        ),
        (None, None, None)
    );
    assert_eq!(
        monitors.get_repository(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        monitors
            .get_repository_by_name("github.com/acme/api")
            .await
            .unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        monitors
            .get_repository_by_name("github.com/acme/other")
            .await
            .unwrap(),
        None
    );

    let second = repository(&monitors, "github.com/acme/web").await;
    let listed = monitors.list_repositories().await.unwrap();
    assert_eq!(listed, vec![created.clone(), second.clone()]);

    let patch = RepositoryPatch {
        fetch_interval: Some(None),
        branches: Some(None),
        ..RepositoryPatch::default()
    };
    let RepositoryWrite::Saved(updated) =
        monitors.update_repository(created.id, patch).await.unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(
        (updated.fetch_interval, updated.branches.clone()),
        (None, None)
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(
        monitors.get_repository(created.id).await.unwrap(),
        Some(updated)
    );

    assert!(monitors.delete_repository(created.id).await.unwrap());
    assert!(!monitors.delete_repository(created.id).await.unwrap());
    assert_eq!(monitors.get_repository(created.id).await.unwrap(), None);
    assert_eq!(
        monitors
            .update_repository(created.id, RepositoryPatch::default())
            .await
            .unwrap(),
        RepositoryWrite::NotFound
    );
    assert_eq!(monitors.list_repositories().await.unwrap(), vec![second]);
}

pub async fn repository_names_are_unique(monitors: Monitors, _store: Events) {
    let first = repository(&monitors, "github.com/acme/api").await;
    let second = repository(&monitors, "github.com/acme/web").await;
    assert_eq!(
        monitors
            .create_repository(new_repository("github.com/acme/api"))
            .await
            .unwrap(),
        RepositoryWrite::NameTaken
    );
    let rename = RepositoryPatch {
        name: Some(first.name.clone()),
        ..RepositoryPatch::default()
    };
    assert_eq!(
        monitors.update_repository(second.id, rename).await.unwrap(),
        RepositoryWrite::NameTaken
    );
    assert_eq!(
        monitors.get_repository(second.id).await.unwrap(),
        Some(second.clone())
    );
    // Keeping one's own name is no clash.
    let same = RepositoryPatch {
        name: Some(second.name.clone()),
        ..RepositoryPatch::default()
    };
    assert!(matches!(
        monitors.update_repository(second.id, same).await.unwrap(),
        RepositoryWrite::Saved(_)
    ));
    assert_eq!(monitors.list_repositories().await.unwrap().len(), 2);
}

pub async fn record_fetch_keeps_the_last_heads_and_the_last_error(
    monitors: Monitors,
    _store: Events,
) {
    let repo = repository(&monitors, "github.com/acme/api").await;
    let failed = monitors
        .record_fetch(
            repo.id,
            FetchResult::Failed("could not resolve host".to_owned()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.heads, None);
    assert_eq!(failed.last_error.as_deref(), Some("could not resolve host"));
    let first_try = failed.last_fetched_at.expect("a failed fetch is a fetch");

    let at = heads(&[
        ("refs/heads/main", &oid('a')),
        ("refs/heads/dev", &oid('b')),
    ]);
    let ok = monitors
        .record_fetch(repo.id, FetchResult::Fetched(at.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.heads, Some(at.clone()));
    assert_eq!(ok.last_error, None);
    assert!(ok.last_fetched_at.unwrap() >= first_try);

    let again = monitors
        .record_fetch(repo.id, FetchResult::Failed("timed out".to_owned()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.heads, Some(at), "a failure keeps the last good heads");
    assert_eq!(again.last_error.as_deref(), Some("timed out"));
    assert_eq!(monitors.get_repository(repo.id).await.unwrap(), Some(again));

    assert!(monitors.delete_repository(repo.id).await.unwrap());
    assert_eq!(
        monitors
            .record_fetch(repo.id, FetchResult::Fetched(main_at('c')))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_new_source_or_branches_reset_every_baseline(monitors: Monitors, _store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let other = fetched(&monitors, "github.com/acme/web", &main_at('a')).await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );

    // Only the fetch interval: nothing reset.
    let interval = RepositoryPatch {
        fetch_interval: Some(Some(Duration::from_secs(60))),
        ..RepositoryPatch::default()
    };
    monitors.update_repository(repo.id, interval).await.unwrap();
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );

    let branches = RepositoryPatch {
        branches: Some(Some(vec!["dev".to_owned()])),
        ..RepositoryPatch::default()
    };
    let RepositoryWrite::Saved(changed) =
        monitors.update_repository(repo.id, branches).await.unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(changed.heads, None);
    assert_eq!(searched(&monitors, monitor.id, repo.id).await, None);
    assert_eq!(
        searched(&monitors, monitor.id, other.id).await,
        Some(main_at('a')),
        "other repositories keep theirs"
    );

    monitors
        .record_fetch(repo.id, FetchResult::Fetched(main_at('b')))
        .await
        .unwrap();
    assert!(
        monitors
            .set_baseline(monitor.id, repo.id, main_at('b'))
            .await
            .unwrap()
    );
    let source = RepositoryPatch {
        source: Some(("/srv/git/api".to_owned(), b"/srv/git/api".to_vec())),
        ..RepositoryPatch::default()
    };
    let RepositoryWrite::Saved(moved) = monitors.update_repository(repo.id, source).await.unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(
        (moved.heads, moved.source_display.as_str()),
        (None, "/srv/git/api")
    );
    assert_eq!(searched(&monitors, monitor.id, repo.id).await, None);
}

pub async fn monitor_round_trip_with_action_webhooks(monitors: Monitors, store: Events) {
    let new = new_monitor(vec![
        action(ActionKind::Webhook, true),
        action(ActionKind::Slack, false),
    ]);
    let created = monitors.create_monitor(new.clone()).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.description, "Secrets in diffs");
    assert_eq!(created.query, "type:diff BEGIN");
    assert!(created.enabled);
    assert_eq!(created.actions.len(), 2);
    for (made, asked) in created.actions.iter().zip(&new.actions) {
        assert_eq!(
            (made.webhook_id, made.kind, made.include_results),
            (asked.webhook.id, asked.kind, asked.include_results)
        );
        let hook = store
            .get_webhook(made.webhook_id)
            .await
            .unwrap()
            .expect("the action's webhook");
        assert_eq!(
            hook.project.as_deref(),
            Some(monitor_project(created.id).as_str())
        );
        assert_eq!(hook.url_sealed, asked.webhook.url_sealed);
        assert_eq!(hook.secret_sealed, asked.webhook.secret_sealed);
        assert_eq!(hook.event_types, asked.webhook.event_types);
        assert!(hook.enabled);
    }
    assert_eq!(
        monitors.get_monitor(created.id).await.unwrap(),
        Some(created.clone())
    );
    let second = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    assert_eq!(
        monitors.list_monitors().await.unwrap(),
        vec![created.clone(), second]
    );

    let patch = MonitorPatch {
        description: Some("Private keys".to_owned()),
        ..MonitorPatch::default()
    };
    let updated = saved(monitors.update_monitor(created.id, patch).await.unwrap());
    assert_eq!(updated.description, "Private keys");
    assert_eq!(updated.actions, created.actions);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(
        monitors.get_monitor(created.id).await.unwrap(),
        Some(updated)
    );
    assert_eq!(
        monitors
            .update_monitor(MonitorId::new(), MonitorPatch::default())
            .await
            .unwrap(),
        MonitorWrite::NotFound
    );
}

pub async fn a_new_monitor_starts_from_the_fetched_heads(monitors: Monitors, _store: Events) {
    let at = heads(&[
        ("refs/heads/main", &oid('a')),
        ("refs/heads/dev", &oid('b')),
    ]);
    let fetched_repo = fetched(&monitors, "github.com/acme/api", &at).await;
    let never_fetched = repository(&monitors, "github.com/acme/web").await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    assert_eq!(
        searched(&monitors, monitor.id, fetched_repo.id).await,
        Some(at)
    );
    let states = monitors.monitor_states(never_fetched.id).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        (states[0].monitor.id, states[0].searched.clone()),
        (monitor.id, None)
    );
}

pub async fn monitor_states_list_enabled_monitors_only(monitors: Monitors, _store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let first = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let mut off = new_monitor(vec![]);
    off.enabled = false;
    let off = monitors.create_monitor(off).await.unwrap();
    let third = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let states = monitors.monitor_states(repo.id).await.unwrap();
    let ids: Vec<MonitorId> = states.iter().map(|s| s.monitor.id).collect();
    assert_eq!(ids, vec![first.id, third.id]);
    assert_eq!(states[0].monitor, first);

    let disable = MonitorPatch {
        enabled: Some(false),
        ..MonitorPatch::default()
    };
    monitors.update_monitor(first.id, disable).await.unwrap();
    let ids: Vec<MonitorId> = monitors
        .monitor_states(repo.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.monitor.id)
        .collect();
    assert_eq!(ids, vec![third.id]);
    assert!(!ids.contains(&off.id));
}

pub async fn set_baseline_only_fills_a_missing_baseline(monitors: Monitors, _store: Events) {
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let repo = repository(&monitors, "github.com/acme/api").await;
    assert!(
        monitors
            .set_baseline(monitor.id, repo.id, main_at('a'))
            .await
            .unwrap()
    );
    assert!(
        !monitors
            .set_baseline(monitor.id, repo.id, main_at('b'))
            .await
            .unwrap()
    );
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );
    assert!(
        !monitors
            .set_baseline(MonitorId::new(), repo.id, main_at('a'))
            .await
            .unwrap()
    );
    assert!(
        !monitors
            .set_baseline(monitor.id, RepositoryId::new(), main_at('a'))
            .await
            .unwrap()
    );
}

pub async fn record_search_moves_heads_logs_the_run_and_publishes_together(
    monitors: Monitors,
    store: Events,
) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![
            action(ActionKind::Webhook, true),
            action(ActionKind::Webhook, false),
            action(ActionKind::Slack, true),
        ]))
        .await
        .unwrap();
    let [with_results, without_results, slack] = [0, 1, 2].map(|i| monitor.actions[i].webhook_id);
    let subscribed = store
        .create_webhook(new_webhook("global", &["code_monitor:*"], None), 10)
        .await
        .unwrap();
    let unsubscribed = store
        .create_webhook(new_webhook("other", &["changeset:*"], None), 10)
        .await
        .unwrap();
    let in_project = store
        .create_webhook(new_webhook("project", &["*"], Some("acme")), 10)
        .await
        .unwrap();

    let notification = event(monitor.id, NOTIFICATION, r#"{"results":[1]}"#);
    let summary = event(monitor.id, NOTIFICATION, r#"{"query":"q"}"#);
    let blocks = event(monitor.id, SLACK, r#"{"blocks":[]}"#);
    let new_run = run(monitor.id, &repo, None);
    let recorded = monitors
        .record_search(SearchRecord {
            monitor_id: monitor.id,
            repository_id: repo.id,
            from: main_at('a'),
            to: main_at('b'),
            run: Some(new_run.clone()),
            events: vec![
                MonitorEvent {
                    event: notification.clone(),
                    global_subscribers: true,
                    webhooks: vec![with_results],
                },
                MonitorEvent {
                    event: summary.clone(),
                    global_subscribers: false,
                    webhooks: vec![without_results],
                },
                MonitorEvent {
                    event: blocks.clone(),
                    global_subscribers: false,
                    webhooks: vec![slack, WebhookId::new()],
                },
            ],
        })
        .await
        .unwrap();
    let SearchRecorded::Recorded { published } = recorded else {
        panic!("expected a recorded search, got {recorded:?}");
    };
    let counts: Vec<(EventId, u32)> = published
        .iter()
        .map(|p| (p.event_id, p.deliveries))
        .collect();
    assert_eq!(
        counts,
        vec![(notification.id, 2), (summary.id, 1), (blocks.id, 1)]
    );
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('b'))
    );

    let got = |hook| {
        let store = Arc::clone(&store);
        async move {
            deliveries(&store, hook)
                .await
                .iter()
                .map(|d| (d.event_id, d.event_type.clone()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        got(with_results).await,
        vec![(notification.id, NOTIFICATION.to_owned())]
    );
    assert_eq!(
        got(subscribed.id).await,
        vec![(notification.id, NOTIFICATION.to_owned())]
    );
    assert_eq!(
        got(without_results).await,
        vec![(summary.id, NOTIFICATION.to_owned())]
    );
    assert_eq!(got(slack).await, vec![(blocks.id, SLACK.to_owned())]);
    assert!(got(unsubscribed.id).await.is_empty());
    assert!(got(in_project.id).await.is_empty());
    let delivered = store
        .get_delivery(deliveries(&store, slack).await[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.event.payload, blocks.payload);
    assert_eq!(delivered.event.project, Some(monitor_project(monitor.id)));

    let runs = monitors.list_runs(monitor.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let logged = &runs[0];
    assert_eq!(logged.id, new_run.id);
    assert_eq!(
        (logged.monitor_id, logged.repository_id),
        (monitor.id, repo.id)
    );
    assert_eq!(logged.repository_name, repo.name);
    assert_eq!(logged.started_at, new_run.started_at);
    assert!(logged.finished_at >= logged.started_at);
    assert_eq!((logged.commits_scanned, logged.matches), (3, 1));
    assert_eq!(logged.commits, vec![oid('b')]);
    assert!(!logged.truncated);
    assert_eq!(logged.error, None);
    assert_eq!(
        logged.event_ids,
        vec![notification.id, summary.id, blocks.id]
    );

    // Heads that move without a run or events: no run logged.
    let quiet = SearchRecord {
        run: None,
        events: vec![],
        ..search(&monitor, &repo, &main_at('b'), &main_at('c'))
    };
    assert_eq!(
        monitors.record_search(quiet).await.unwrap(),
        SearchRecorded::Recorded { published: vec![] }
    );
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('c'))
    );
    assert_eq!(monitors.list_runs(monitor.id, 10).await.unwrap().len(), 1);
}

/// A run split over many notifications commits them all with its heads: every
/// part is delivered once, keeps its properties, and the run lists the split;
/// recording the same range again adds nothing.
pub async fn a_run_commits_every_notification_part_with_it(monitors: Monitors, store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![action(ActionKind::Webhook, true)]))
        .await
        .unwrap();
    let hook = monitor.actions[0].webhook_id;
    let parts: Vec<NewEvent> = (1..=5)
        .map(|part| NewEvent {
            properties: BTreeMap::from([
                ("notification_part".to_owned(), part.to_string()),
                ("notification_parts".to_owned(), "5".to_owned()),
            ]),
            ..event(monitor.id, NOTIFICATION, &format!(r#"{{"part":{part}}}"#))
        })
        .collect();
    let notifications: Vec<RunNotification> = parts
        .iter()
        .zip(1..)
        .map(|(event, part)| RunNotification {
            event_id: event.id,
            event_type: NOTIFICATION.to_owned(),
            part,
            parts: 5,
            results: if part < 5 { 100 } else { 3 },
        })
        .collect();
    let split = |from: char, to: char| SearchRecord {
        monitor_id: monitor.id,
        repository_id: repo.id,
        from: main_at(from),
        to: main_at(to),
        run: Some(NewMonitorRun {
            matches: 403,
            notifications: notifications.clone(),
            ..run(monitor.id, &repo, None)
        }),
        events: parts
            .iter()
            .map(|event| MonitorEvent {
                event: event.clone(),
                global_subscribers: true,
                webhooks: vec![hook],
            })
            .collect(),
    };
    let recorded = monitors.record_search(split('a', 'b')).await.unwrap();
    let SearchRecorded::Recorded { published } = recorded else {
        panic!("expected a recorded search, got {recorded:?}");
    };
    assert_eq!(published.len(), 5);
    assert!(published.iter().all(|p| p.deliveries == 1), "{published:?}");

    let part_ids: Vec<EventId> = parts.iter().map(|e| e.id).collect();
    let delivered = deliveries(&store, hook).await;
    let mut ids: Vec<EventId> = delivered.iter().map(|d| d.event_id).collect();
    ids.sort();
    let mut expected = part_ids.clone();
    expected.sort();
    assert_eq!(ids, expected, "each part delivered once");
    for delivery in &delivered {
        let detail = store.get_delivery(delivery.id).await.unwrap().unwrap();
        let part = parts.iter().find(|e| e.id == detail.event.id).unwrap();
        assert_eq!(detail.event.properties, part.properties);
    }

    let runs = monitors.list_runs(monitor.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].notifications, notifications);
    assert_eq!(runs[0].event_ids, part_ids);

    // The same range once more (a retry, another node): nothing is added.
    assert_eq!(
        monitors.record_search(split('a', 'b')).await.unwrap(),
        SearchRecorded::Stale
    );
    assert_eq!(deliveries(&store, hook).await.len(), 5);
    assert_eq!(monitors.list_runs(monitor.id, 10).await.unwrap().len(), 1);
}

pub async fn record_search_from_stale_heads_writes_nothing(monitors: Monitors, store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![action(ActionKind::Webhook, true)]))
        .await
        .unwrap();
    let stale = search(&monitor, &repo, &main_at('z'), &main_at('b'));
    assert_eq!(
        monitors.record_search(stale).await.unwrap(),
        SearchRecorded::Stale
    );
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );
    assert!(
        deliveries(&store, monitor.actions[0].webhook_id)
            .await
            .is_empty()
    );
    assert!(monitors.list_runs(monitor.id, 10).await.unwrap().is_empty());

    // Without a baseline there is nothing to compare with: stale too.
    let fresh = repository(&monitors, "github.com/acme/web").await;
    let unbased = search(&monitor, &fresh, &main_at('a'), &main_at('b'));
    assert_eq!(
        monitors.record_search(unbased).await.unwrap(),
        SearchRecorded::Stale
    );
    assert_eq!(searched(&monitors, monitor.id, fresh.id).await, None);
}

pub async fn record_search_for_an_inactive_monitor_writes_nothing(
    monitors: Monitors,
    store: Events,
) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![action(ActionKind::Webhook, true)]))
        .await
        .unwrap();
    let global = store
        .create_webhook(new_webhook("global", &[NOTIFICATION], None), 10)
        .await
        .unwrap();
    let disable = MonitorPatch {
        enabled: Some(false),
        ..MonitorPatch::default()
    };
    saved(monitors.update_monitor(monitor.id, disable).await.unwrap());
    let recorded = monitors
        .record_search(search(&monitor, &repo, &main_at('a'), &main_at('b')))
        .await
        .unwrap();
    assert_eq!(recorded, SearchRecorded::Inactive);
    assert!(deliveries(&store, global.id).await.is_empty());
    assert!(monitors.list_runs(monitor.id, 10).await.unwrap().is_empty());

    assert!(monitors.delete_monitor(monitor.id).await.unwrap());
    let recorded = monitors
        .record_search(search(&monitor, &repo, &main_at('a'), &main_at('b')))
        .await
        .unwrap();
    assert_eq!(recorded, SearchRecorded::Inactive);
    assert!(deliveries(&store, global.id).await.is_empty());
}

pub async fn concurrent_searches_of_one_range_record_once(monitors: Monitors, store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![action(ActionKind::Webhook, true)]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let monitors = Arc::clone(&monitors);
            let record = search(&monitor, &repo, &main_at('a'), &main_at('b'));
            tokio::spawn(async move { monitors.record_search(record).await.unwrap() })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        match task.await.unwrap() {
            SearchRecorded::Recorded { .. } => recorded += 1,
            SearchRecorded::Stale => {}
            SearchRecorded::Inactive => panic!("the monitor is active"),
        }
    }
    assert_eq!(
        recorded, 1,
        "one search of a range is recorded, the others are stale"
    );
    assert_eq!(
        deliveries(&store, monitor.actions[0].webhook_id)
            .await
            .len(),
        1
    );
    assert_eq!(monitors.list_runs(monitor.id, 10).await.unwrap().len(), 1);
}

pub async fn a_failed_run_is_logged_without_moving_heads(monitors: Monitors, _store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let failed = run(monitor.id, &repo, Some("git log timed out"));
    assert!(monitors.record_run(failed.clone()).await.unwrap());
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );
    let runs = monitors.list_runs(monitor.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, failed.id);
    assert_eq!(runs[0].error.as_deref(), Some("git log timed out"));
    assert!(runs[0].event_ids.is_empty());
    assert!(
        !monitors
            .record_run(run(MonitorId::new(), &repo, Some("x")))
            .await
            .unwrap()
    );
}

pub async fn updating_actions_keeps_adds_and_deletes_their_webhooks(
    monitors: Monitors,
    store: Events,
) {
    let monitor = monitors
        .create_monitor(new_monitor(vec![
            action(ActionKind::Webhook, true),
            action(ActionKind::Slack, true),
        ]))
        .await
        .unwrap();
    let (kept, dropped) = (monitor.actions[0].webhook_id, monitor.actions[1].webhook_id);
    let added = action(ActionKind::Webhook, false);
    let added_id = added.webhook.id;
    let patch = MonitorPatch {
        actions: Some(vec![
            ActionChange::Add(added),
            ActionChange::Keep {
                webhook_id: kept,
                include_results: false,
                webhook: WebhookPatch {
                    url: Some(("https://hooks.example.com/moved".to_owned(), vec![9])),
                    ..WebhookPatch::default()
                },
            },
        ]),
        ..MonitorPatch::default()
    };
    let updated = saved(monitors.update_monitor(monitor.id, patch).await.unwrap());
    let actions: Vec<(WebhookId, ActionKind, bool)> = updated
        .actions
        .iter()
        .map(|a| (a.webhook_id, a.kind, a.include_results))
        .collect();
    assert_eq!(
        actions,
        vec![
            (added_id, ActionKind::Webhook, false),
            (kept, ActionKind::Webhook, false)
        ]
    );
    let moved = store.get_webhook(kept).await.unwrap().unwrap();
    assert_eq!(
        (moved.url_display.as_str(), moved.url_sealed.as_slice()),
        ("https://hooks.example.com/moved", &[9][..])
    );
    assert_eq!(moved.project, Some(monitor_project(monitor.id)));
    let new_hook = store.get_webhook(added_id).await.unwrap().unwrap();
    assert_eq!(new_hook.project, Some(monitor_project(monitor.id)));
    assert_eq!(store.get_webhook(dropped).await.unwrap(), None);

    // A kept action must be one of the monitor's own; nothing changes otherwise.
    let stranger = store
        .create_webhook(new_webhook("stranger", &[NOTIFICATION], None), 10)
        .await
        .unwrap();
    let patch = MonitorPatch {
        description: Some("changed".to_owned()),
        actions: Some(vec![ActionChange::Keep {
            webhook_id: stranger.id,
            include_results: true,
            webhook: WebhookPatch::default(),
        }]),
        ..MonitorPatch::default()
    };
    assert_eq!(
        monitors.update_monitor(monitor.id, patch).await.unwrap(),
        MonitorWrite::UnknownAction(stranger.id)
    );
    assert_eq!(
        monitors.get_monitor(monitor.id).await.unwrap(),
        Some(updated)
    );
    assert_eq!(
        store.get_webhook(stranger.id).await.unwrap(),
        Some(stranger)
    );
}

pub async fn a_new_query_or_enabling_again_restarts_from_the_current_heads(
    monitors: Monitors,
    _store: Events,
) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    monitors
        .record_fetch(repo.id, FetchResult::Fetched(main_at('b')))
        .await
        .unwrap();
    // The same query again, or another description: the baseline stays.
    let same = MonitorPatch {
        query: Some(monitor.query.clone()),
        description: Some("renamed".to_owned()),
        enabled: Some(true),
        ..MonitorPatch::default()
    };
    saved(monitors.update_monitor(monitor.id, same).await.unwrap());
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('a'))
    );

    let query = MonitorPatch {
        query: Some("type:commit fix".to_owned()),
        ..MonitorPatch::default()
    };
    saved(monitors.update_monitor(monitor.id, query).await.unwrap());
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('b'))
    );

    let off = MonitorPatch {
        enabled: Some(false),
        ..MonitorPatch::default()
    };
    saved(monitors.update_monitor(monitor.id, off).await.unwrap());
    monitors
        .record_fetch(repo.id, FetchResult::Fetched(main_at('c')))
        .await
        .unwrap();
    let on = MonitorPatch {
        enabled: Some(true),
        ..MonitorPatch::default()
    };
    saved(monitors.update_monitor(monitor.id, on).await.unwrap());
    assert_eq!(
        searched(&monitors, monitor.id, repo.id).await,
        Some(main_at('c')),
        "commits fetched while disabled are never reported"
    );
}

pub async fn deleting_a_monitor_deletes_its_webhooks_state_and_runs(
    monitors: Monitors,
    store: Events,
) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors
        .create_monitor(new_monitor(vec![action(ActionKind::Webhook, true)]))
        .await
        .unwrap();
    let other = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let recorded = monitors
        .record_search(search(&monitor, &repo, &main_at('a'), &main_at('b')))
        .await
        .unwrap();
    assert!(matches!(recorded, SearchRecorded::Recorded { .. }));
    let hook = monitor.actions[0].webhook_id;
    assert_eq!(deliveries(&store, hook).await.len(), 1);

    assert!(monitors.delete_monitor(monitor.id).await.unwrap());
    assert!(!monitors.delete_monitor(monitor.id).await.unwrap());
    assert_eq!(monitors.get_monitor(monitor.id).await.unwrap(), None);
    assert_eq!(store.get_webhook(hook).await.unwrap(), None);
    assert!(monitors.list_runs(monitor.id, 10).await.unwrap().is_empty());
    let states = monitors.monitor_states(repo.id).await.unwrap();
    assert_eq!(
        states.iter().map(|s| s.monitor.id).collect::<Vec<_>>(),
        vec![other.id]
    );
    assert_eq!(monitors.list_monitors().await.unwrap(), vec![other]);
}

pub async fn deleting_a_repository_deletes_its_baselines(monitors: Monitors, _store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    assert!(
        monitors
            .record_run(run(monitor.id, &repo, Some("failed")))
            .await
            .unwrap()
    );
    assert!(monitors.delete_repository(repo.id).await.unwrap());
    assert_eq!(searched(&monitors, monitor.id, repo.id).await, None);
    assert!(
        !monitors
            .set_baseline(monitor.id, repo.id, main_at('a'))
            .await
            .unwrap()
    );
    let recreated = fetched(&monitors, "github.com/acme/api", &main_at('b')).await;
    assert_eq!(searched(&monitors, monitor.id, recreated.id).await, None);
    assert_eq!(
        monitors.list_runs(monitor.id, 10).await.unwrap().len(),
        1,
        "runs stay"
    );
}

pub async fn runs_are_listed_newest_first_and_pruned(monitors: Monitors, _store: Events) {
    let repo = fetched(&monitors, "github.com/acme/api", &main_at('a')).await;
    let monitor = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    let other = monitors.create_monitor(new_monitor(vec![])).await.unwrap();
    assert!(
        monitors
            .record_run(run(other.id, &repo, Some("other")))
            .await
            .unwrap()
    );
    let mut ids = Vec::new();
    for _ in 0..=RUNS_KEPT_PER_MONITOR {
        let new = run(monitor.id, &repo, Some("failed"));
        ids.push(new.id);
        assert!(monitors.record_run(new).await.unwrap());
    }
    let newest: Vec<MonitorRunId> = ids.iter().rev().take(3).copied().collect();
    let listed: Vec<MonitorRunId> = monitors
        .list_runs(monitor.id, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, newest);
    let all = monitors.list_runs(monitor.id, 1000).await.unwrap();
    assert_eq!(all.len(), RUNS_KEPT_PER_MONITOR as usize);
    assert!(
        !all.iter().any(|r| r.id == ids[0]),
        "the oldest run is pruned"
    );
    assert_eq!(monitors.list_runs(other.id, 10).await.unwrap().len(), 1);
}

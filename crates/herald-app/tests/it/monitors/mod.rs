//! The service against real git repositories, a real SQLite store and the
//! delivery engine: what monitors report, to whom, and when.

mod split;
mod support;

use std::time::Duration;

use herald_app::monitors::RunNow;
use herald_store::{
    ActionKind, MonitorPatch, MonitorStore, MonitorWrite, RepositoryPatch, RepositoryWrite,
};
use serde_json::json;

use support::{EXTERNAL_URL, Fixture, Source, eventually, highlighted};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_matching_commits_are_reported_once_with_byte_ranges() {
    let fx = Fixture::new().await;
    let source = Source::new();
    source.commit_file("old.txt", "BEGIN old history\n", "history");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    let fetched = fx.sync(&repo).await;
    assert_eq!(fetched.last_error, None);
    assert_eq!(fetched.heads.as_ref().map(|h| h.len()), Some(1));

    let monitor = fx
        .monitor("type:diff BEGIN", &[(ActionKind::Webhook, true)])
        .await;
    let hook = monitor.actions[0].webhook_id;
    // Nothing new since the monitor's creation: the old BEGIN stays unreported.
    fx.sync(&repo).await;
    assert!(fx.runs(&monitor).await.is_empty());
    assert!(fx.payloads(hook).await.is_empty());

    let commit = source.commit_file("key.txt", "漢字 🎉 BEGIN key\nplain\n", "add a key");
    fx.sync(&repo).await;
    let runs = fx.runs(&monitor).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].commits_scanned,
            runs[0].matches,
            runs[0].error.clone()
        ),
        (1, 1, None)
    );
    assert_eq!(runs[0].commits, vec![commit.clone()]);
    assert_eq!(runs[0].event_ids.len(), 1);

    let payloads = fx.payloads(hook).await;
    assert_eq!(payloads.len(), 1);
    let body = &payloads[0];
    assert_eq!(body["monitorDescription"], "Keys in diffs");
    assert_eq!(
        body["monitorURL"],
        format!("{EXTERNAL_URL}api/v1/monitors/{}", monitor.id)
    );
    assert_eq!(body["query"], "type:diff BEGIN");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["repository"], "github.com/acme/api");
    assert_eq!(results[0]["commit"], commit);
    assert_eq!(
        results[0]["diff"],
        "/dev/null key.txt\n@@ -0,0 +1,2 @@ \n+漢字 🎉 BEGIN key\n+plain\n"
    );
    // Byte offsets: "+漢字 🎉 " is 13 bytes but 6 characters.
    let diff = results[0]["diff"].as_str().unwrap();
    let start = diff.find("BEGIN").unwrap();
    assert_eq!(results[0]["matchedDiffRanges"], json!([[start, start + 5]]));
    assert_eq!(
        highlighted(&results[0], "diff", "matchedDiffRanges"),
        vec!["BEGIN"]
    );

    // Nothing new: nothing more.
    fx.sync(&repo).await;
    assert_eq!(fx.runs(&monitor).await.len(), 1);
    assert_eq!(fx.payloads(hook).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_on_one_repository_each_get_their_own_results_from_one_pass() {
    let fx = Fixture::new().await;
    let source = Source::new();
    source.commit_file("a.txt", "start\n", "start");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    fx.sync(&repo).await;
    let diffs = fx
        .monitor("type:diff secret", &[(ActionKind::Webhook, true)])
        .await;
    let messages = fx
        .monitor("type:commit fix", &[(ActionKind::Webhook, true)])
        .await;
    let elsewhere = fx
        .monitor(
            "repo:^github\\.com/other/ type:commit fix",
            &[(ActionKind::Webhook, true)],
        )
        .await;
    source.commit_file("a.txt", "start\nsecret = 1\n", "add a setting");
    source.commit_file("b.txt", "b\n", "fix: the 修正 of b");

    fx.sync(&repo).await;
    let (diff_runs, message_runs) = (fx.runs(&diffs).await, fx.runs(&messages).await);
    assert_eq!((diff_runs.len(), message_runs.len()), (1, 1));
    assert_eq!(diff_runs[0].commits_scanned, 2);
    assert_eq!(message_runs[0].commits_scanned, 2);
    assert_eq!((diff_runs[0].matches, message_runs[0].matches), (1, 1));
    assert!(
        fx.runs(&elsewhere).await.is_empty(),
        "a query that cannot match the repository skips it"
    );

    let message = &fx.payloads(messages.actions[0].webhook_id).await[0]["results"][0];
    assert_eq!(message["message"], "fix: the 修正 of b");
    assert_eq!(
        highlighted(message, "message", "matchedMessageRanges"),
        vec!["fix"]
    );
    assert!(message.get("diff").is_none());
    let diff = &fx.payloads(diffs.actions[0].webhook_id).await[0]["results"][0];
    assert_eq!(
        highlighted(diff, "diff", "matchedDiffRanges"),
        vec!["secret"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_gets_its_own_body() {
    let fx = Fixture::new().await;
    let source = Source::new();
    source.commit_file("a.txt", "a\n", "start");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    fx.sync(&repo).await;
    let monitor = fx
        .monitor(
            "type:diff TODO",
            &[(ActionKind::Webhook, false), (ActionKind::Slack, true)],
        )
        .await;
    source.commit_file("a.txt", "a\nTODO: <fix> & ship\n", "todo");
    fx.sync(&repo).await;

    let summary = fx.payloads(monitor.actions[0].webhook_id).await;
    assert_eq!(summary.len(), 1);
    assert!(
        summary[0].get("results").is_none(),
        "include_results: false leaves them out"
    );
    assert_eq!(summary[0]["query"], "type:diff TODO");

    let slack = fx.payloads(monitor.actions[1].webhook_id).await;
    assert_eq!(slack.len(), 1);
    let texts: Vec<&str> = slack[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts[0],
        "Code monitor *Keys in diffs* found *1 new match*."
    );
    assert!(texts[1].starts_with("Diff match in `github.com/acme/api` at `"));
    assert_eq!(
        texts[2],
        "```\na.txt a.txt\n@@ -1,1 +1,2 @@ \n a\n+TODO: &lt;fix&gt; &amp; ship\n```"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_errors_are_recorded_and_cleared() {
    let fx = Fixture::new().await;
    let missing = tempfile::tempdir().unwrap();
    let path = missing.path().join("nothing-here");
    let repo = fx
        .repository("github.com/acme/gone", path.to_str().unwrap())
        .await;
    let failed = fx.sync(&repo).await;
    assert!(failed.last_error.is_some(), "{failed:?}");
    assert!(failed.last_fetched_at.is_some());
    assert_eq!(failed.heads, None);

    let source = Source::new();
    source.commit_file("a.txt", "a\n", "start");
    let patch = RepositoryPatch {
        source: Some((
            source.path().display().to_string(),
            fx.cipher.seal(
                source.path().to_str().unwrap().as_bytes(),
                &herald_core::cipher::SealedColumn::RepositorySource.of(repo.id.0),
            ),
        )),
        ..RepositoryPatch::default()
    };
    let RepositoryWrite::Saved(_) = fx.store.update_repository(repo.id, patch).await.unwrap()
    else {
        panic!("not updated");
    };
    let fixed = fx.sync(&repo).await;
    assert_eq!(fixed.last_error, None);
    assert!(fixed.heads.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_the_guard_refuses_is_never_fetched_and_says_why() {
    let fx = Fixture::new().await;
    // Stored directly, as a source accepted before the rule existed would be.
    let repo = fx
        .repository("github.com/acme/internal", "http://127.0.0.1:9/acme.git")
        .await;
    let failed = fx.sync(&repo).await;
    let error = failed.last_error.expect("a refusal");
    assert!(error.contains("--allow-cidr"), "{error}");
    assert_eq!(failed.heads, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_monitor_reports_nothing_then_or_later() {
    let fx = Fixture::new().await;
    let source = Source::new();
    source.commit_file("a.txt", "a\n", "start");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    fx.sync(&repo).await;
    let monitor = fx
        .monitor("type:commit deploy", &[(ActionKind::Webhook, true)])
        .await;
    let off = MonitorPatch {
        enabled: Some(false),
        ..MonitorPatch::default()
    };
    assert!(matches!(
        fx.store.update_monitor(monitor.id, off).await.unwrap(),
        MonitorWrite::Saved(_)
    ));
    assert_eq!(
        fx.service.run_monitor(monitor.id).await.unwrap(),
        RunNow::Disabled
    );
    source.commit_file("a.txt", "b\n", "deploy while disabled");
    fx.sync(&repo).await;
    assert!(fx.runs(&monitor).await.is_empty());

    let on = MonitorPatch {
        enabled: Some(true),
        ..MonitorPatch::default()
    };
    assert!(matches!(
        fx.store.update_monitor(monitor.id, on).await.unwrap(),
        MonitorWrite::Saved(_)
    ));
    source.commit_file("a.txt", "c\n", "deploy again");
    let RunNow::Ran(runs) = fx.service.run_monitor(monitor.id).await.unwrap() else {
        panic!("the monitor is enabled");
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].commits_scanned, 1,
        "only the commit made after enabling"
    );
    let results = &fx.payloads(monitor.actions[0].webhook_id).await[0]["results"];
    assert_eq!(results.as_array().unwrap().len(), 1);
    assert_eq!(results[0]["message"], "deploy again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_syncs_its_repository_at_once_and_the_scheduler_on_its_interval() {
    let fx = Fixture::new().await;
    let source = Source::new();
    source.commit_file("a.txt", "a\n", "start");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    // Never fetched: due at once.
    let _scheduler = fx.service.spawn(fx.shutdown.clone());
    eventually("the first fetch", || async {
        fx.store
            .get_repository(repo.id)
            .await
            .unwrap()
            .unwrap()
            .heads
            .is_some()
    })
    .await;
    let monitor = fx.monitor("type:commit hotfix", &[]).await;

    // A push: synced at once (the default interval is five minutes).
    source.commit_file("a.txt", "b\n", "hotfix one");
    let push = json!({"repository": "github.com/acme/api", "ref": "refs/heads/main"});
    fx.service
        .notify_event("repo:push", push.to_string().as_bytes());
    eventually("the pushed commit's run", || async {
        fx.runs(&monitor).await.len() == 1
    })
    .await;

    // Pushes to other repositories, and other event types, change nothing.
    source.commit_file("a.txt", "c\n", "hotfix two");
    fx.service
        .notify_event("repo:push", br#"{"repository":"github.com/acme/other"}"#);
    fx.service.notify_event(
        "changeset:update",
        br#"{"repository":"github.com/acme/api"}"#,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.runs(&monitor).await.len(), 1);

    // A short interval of its own: the scheduler gets there by itself.
    let patch = RepositoryPatch {
        fetch_interval: Some(Some(Duration::from_millis(300))),
        ..RepositoryPatch::default()
    };
    fx.store.update_repository(repo.id, patch).await.unwrap();
    fx.service.repositories_changed();
    eventually("the scheduled run", || async {
        fx.runs(&monitor).await.len() == 2
    })
    .await;
    assert_eq!(fx.runs(&monitor).await[0].commits_scanned, 1);
}

//! Runs with more matches than one notification carries: every match reaches
//! a real receiver exactly once, in order, over as many notifications as the
//! limits need, each saying which part it is.

use std::collections::HashSet;

use herald_app::monitors::NotificationLimits;
use herald_store::{ActionKind, MonitorStore, RepositoryRecord};

use super::support::{Fixture, Received, Receiver, Source};

/// A watched repository, fetched once: what it holds now is never reported.
async fn watched(fx: &Fixture) -> (Source, RepositoryRecord) {
    let source = Source::new();
    source.commit_file("start.txt", "start\n", "start");
    let repo = fx
        .repository("github.com/acme/api", source.path().to_str().unwrap())
        .await;
    fx.sync(&repo).await;
    (source, repo)
}

/// Commits `count` fixes; returns them newest first, the order results come in.
fn commit_fixes(source: &Source, count: usize) -> Vec<String> {
    let mut fixes: Vec<String> = (0..count)
        .map(|i| {
            if i % 5 == 0 {
                source.commit_file("other.txt", &format!("{i}\n"), "chore: unrelated");
            }
            source.commit_file("f.txt", &format!("{i}\n"), &format!("fix: number {i}"))
        })
        .collect();
    fixes.reverse();
    fixes
}

/// The parts sorted by their part header, after checking each names the same
/// total and every number from 1 to it arrived once.
fn in_part_order(mut received: Vec<Received>) -> Vec<Received> {
    received.sort_by_key(|r| r.part().0);
    let total = received.len();
    let parts: Vec<(usize, usize)> = received.iter().map(Received::part).collect();
    let expected: Vec<(usize, usize)> = (1..=total).map(|n| (n, total)).collect();
    assert_eq!(parts, expected);
    let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), total, "each part is an event of its own");
    received
}

fn result_commits(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .flat_map(|r| {
            r.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|result| result["commit"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_match_arrives_once_in_order_over_numbered_parts() {
    let fx = Fixture::delivering(NotificationLimits {
        max_results: 10,
        max_bytes: 1024 * 1024,
    })
    .await;
    let (source, repo) = watched(&fx).await;
    let hook = Receiver::start().await;
    let monitor = fx
        .monitor_to(
            "type:commit fix",
            &[(ActionKind::Webhook, true, &hook.url("/fixes"))],
        )
        .await;
    let fixes = commit_fixes(&source, 25);
    fx.sync(&repo).await;

    let parts = in_part_order(hook.wait_for(3).await);
    assert_eq!(parts.len(), 3);
    assert_eq!(result_commits(&parts), fixes, "all 25, once, newest first");
    let sizes: Vec<usize> = parts
        .iter()
        .map(|p| p.json()["results"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    for part in &parts {
        assert_eq!(
            part.header("x-herald-event-type"),
            "code_monitor:notification"
        );
        assert_eq!(part.json()["query"], "type:commit fix");
    }

    let runs = fx.store.list_runs(monitor.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].matches, runs[0].truncated), (25, false));
    assert_eq!(runs[0].commits, fixes);
    let split: Vec<(u32, u32, u32)> = runs[0]
        .notifications
        .iter()
        .map(|n| (n.part, n.parts, n.results))
        .collect();
    assert_eq!(split, vec![(1, 3, 10), (2, 3, 10), (3, 3, 5)]);

    // Nothing new: nothing more, not even a repeat.
    fx.sync(&repo).await;
    assert_eq!(hook.wait_for(3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notification_is_larger_than_the_byte_cap() {
    let max_bytes = 4096;
    let fx = Fixture::delivering(NotificationLimits {
        max_results: 100,
        max_bytes,
    })
    .await;
    let (source, repo) = watched(&fx).await;
    let hook = Receiver::start().await;
    fx.monitor_to(
        "type:diff secret",
        &[(ActionKind::Webhook, true, &hook.url("/secrets"))],
    )
    .await;
    let mut secrets: Vec<String> = (0..12)
        .map(|i| {
            let line = format!("secret_{i} = \"{}\"\n", "x".repeat(600));
            source.commit_file(&format!("s{i}.txt"), &line, "add a setting")
        })
        .collect();
    secrets.reverse();
    fx.sync(&repo).await;

    // About 700 bytes a result: a handful fit in 4 KiB, so several parts.
    let first = hook.wait_for(1).await;
    let total = first[0].part().1;
    assert!(total >= 3, "{total} parts");
    let parts = in_part_order(hook.wait_for(total).await);
    for part in &parts {
        assert!(part.body.len() <= max_bytes, "{} bytes", part.body.len());
    }
    assert_eq!(result_commits(&parts), secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_action_gets_every_match_in_messages_of_at_most_50_blocks() {
    let fx = Fixture::delivering(NotificationLimits::default()).await;
    let (source, repo) = watched(&fx).await;
    let slack = Receiver::start().await;
    fx.monitor_to(
        "type:commit fix",
        &[(ActionKind::Slack, true, &slack.url("/services/T0/B0/X"))],
    )
    .await;
    let fixes = commit_fixes(&source, 30);
    fx.sync(&repo).await;

    let messages = in_part_order(slack.wait_for(2).await);
    assert_eq!(messages.len(), 2);
    let mut shown = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let body = message.json();
        let blocks: Vec<&str> = body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"]["text"].as_str().unwrap())
            .collect();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        assert_eq!(
            blocks[0],
            format!(
                "Code monitor *Keys in diffs* found *30 new matches* (part {} of 2).",
                index + 1
            )
        );
        // Each result is a header naming its commit, then its code block.
        for header in blocks[1..blocks.len() - 1].iter().step_by(2) {
            let short = header.rsplit('`').nth(1).unwrap();
            shown.push(short.to_owned());
        }
    }
    let expected: Vec<String> = fixes.iter().map(|c| c[..7].to_owned()).collect();
    assert_eq!(shown, expected, "every match once, newest first");
}

//! From a monitor's new results to the events its actions get, and the test
//! notification each action is sent.
//!
//! One search publishes up to four events, all in the monitor's scope
//! ([`monitor_project`]) and recorded with the searched heads:
//! 1. `code_monitor:notification` with `results`: to every enabled global
//!    webhook subscribed to the type, and to the webhook actions that include
//!    results. Published whenever there are results, so global subscribers get
//!    it even from a monitor with no actions.
//! 2. the same type without `results` (Sourcegraph's "include results" off):
//!    only to the webhook actions that omit them. A separate event because a
//!    delivery sends its event's exact bytes.
//! 3. and 4. `code_monitor:slack`, with and without results, to the Slack
//!    actions.

use std::collections::BTreeMap;

use herald_catalogue::keys::{CODE_MONITOR_NOTIFICATION, CODE_MONITOR_SLACK};
use herald_core::id::{EventId, WebhookId};
use herald_monitor::MatchResult;
use herald_store::{ActionKind, MonitorEvent, MonitorRecord, NewEvent, monitor_project};

use crate::monitors::payloads::{TEST_QUERY, notification, slack_message, slack_test_message};

/// The events a search that found `results` (of `matches` in all) publishes.
pub fn search_events(
    monitor: &MonitorRecord,
    monitor_url: &str,
    repository: &str,
    matches: usize,
    results: &[MatchResult],
) -> Vec<MonitorEvent> {
    let targets = |kind: ActionKind, include_results: bool| -> Vec<WebhookId> {
        monitor
            .actions
            .iter()
            .filter(|a| a.kind == kind && a.include_results == include_results)
            .map(|a| a.webhook_id)
            .collect()
    };
    let event = |event_type: &str, payload: Vec<u8>| NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: Some(monitor_project(monitor.id)),
        payload,
        properties: BTreeMap::from([
            ("monitor_id".to_owned(), monitor.id.to_string()),
            ("repository".to_owned(), repository.to_owned()),
        ]),
    };
    let (description, query) = (monitor.description.as_str(), monitor.query.as_str());
    let mut events = vec![MonitorEvent {
        event: event(
            CODE_MONITOR_NOTIFICATION,
            notification(description, monitor_url, query, results),
        ),
        global_subscribers: true,
        webhooks: targets(ActionKind::Webhook, true),
    }];
    let without_results = targets(ActionKind::Webhook, false);
    if !without_results.is_empty() {
        events.push(MonitorEvent {
            event: event(
                CODE_MONITOR_NOTIFICATION,
                notification(description, monitor_url, query, &[]),
            ),
            global_subscribers: false,
            webhooks: without_results,
        });
    }
    for (include_results, shown) in [(true, results), (false, &[][..])] {
        let slack = targets(ActionKind::Slack, include_results);
        if !slack.is_empty() {
            events.push(MonitorEvent {
                event: event(
                    CODE_MONITOR_SLACK,
                    slack_message(description, monitor_url, matches, shown),
                ),
                global_subscribers: false,
                webhooks: slack,
            });
        }
    }
    events
}

/// The event type and body a test sends to an action of this kind: the
/// notification with query "test query" and no results, or a Slack test message.
pub fn test_event(
    monitor: &MonitorRecord,
    monitor_url: &str,
    kind: ActionKind,
) -> (&'static str, Vec<u8>) {
    match kind {
        ActionKind::Webhook => (
            CODE_MONITOR_NOTIFICATION,
            notification(&monitor.description, monitor_url, TEST_QUERY, &[]),
        ),
        ActionKind::Slack => (
            CODE_MONITOR_SLACK,
            slack_test_message(&monitor.description, monitor_url),
        ),
    }
}

#[cfg(test)]
mod tests {
    use herald_core::time::Timestamp;
    use herald_monitor::{ByteRange, Matched};
    use herald_store::{MonitorAction, MonitorId};

    use super::*;

    fn monitor(actions: &[(ActionKind, bool)]) -> MonitorRecord {
        MonitorRecord {
            id: MonitorId::new(),
            description: "Secrets".to_owned(),
            query: "type:diff BEGIN".to_owned(),
            enabled: true,
            actions: actions
                .iter()
                .map(|&(kind, include_results)| MonitorAction {
                    webhook_id: WebhookId::new(),
                    kind,
                    include_results,
                })
                .collect(),
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn result() -> MatchResult {
        MatchResult {
            repository: "github.com/acme/api".to_owned(),
            commit: "a".repeat(40),
            matched: Matched::Message {
                message: "BEGIN".to_owned(),
                ranges: vec![ByteRange { start: 0, end: 5 }],
            },
        }
    }

    fn body(event: &MonitorEvent) -> serde_json::Value {
        serde_json::from_slice(&event.event.payload).unwrap()
    }

    #[test]
    fn each_kind_of_action_gets_its_own_event() {
        let monitor = monitor(&[
            (ActionKind::Webhook, true),
            (ActionKind::Webhook, false),
            (ActionKind::Slack, true),
            (ActionKind::Slack, false),
        ]);
        let ids: Vec<WebhookId> = monitor.actions.iter().map(|a| a.webhook_id).collect();
        let events = search_events(
            &monitor,
            "https://h/m",
            "github.com/acme/api",
            1,
            &[result()],
        );
        let summary: Vec<(&str, bool, Vec<WebhookId>, bool)> = events
            .iter()
            .map(|e| {
                let has_results = match e.event.event_type.as_str() {
                    CODE_MONITOR_NOTIFICATION => body(e).get("results").is_some(),
                    _ => body(e)["blocks"].as_array().unwrap().len() > 2,
                };
                (
                    e.event.event_type.as_str(),
                    e.global_subscribers,
                    e.webhooks.clone(),
                    has_results,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (CODE_MONITOR_NOTIFICATION, true, vec![ids[0]], true),
                (CODE_MONITOR_NOTIFICATION, false, vec![ids[1]], false),
                (CODE_MONITOR_SLACK, false, vec![ids[2]], true),
                (CODE_MONITOR_SLACK, false, vec![ids[3]], false),
            ]
        );
        for event in &events {
            assert_eq!(event.event.project, Some(monitor_project(monitor.id)));
            assert_eq!(event.event.properties["repository"], "github.com/acme/api");
        }
    }

    #[test]
    fn global_subscribers_hear_of_a_monitor_without_actions() {
        let events = search_events(&monitor(&[]), "https://h/m", "r", 1, &[result()]);
        assert_eq!(events.len(), 1);
        assert!(events[0].global_subscribers && events[0].webhooks.is_empty());
        assert_eq!(body(&events[0])["monitorURL"], "https://h/m");
    }

    #[test]
    fn the_test_notification_has_the_test_query_and_no_results() {
        let monitor = monitor(&[]);
        let (event_type, payload) = test_event(&monitor, "https://h/m", ActionKind::Webhook);
        assert_eq!(event_type, CODE_MONITOR_NOTIFICATION);
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"monitorDescription":"Secrets","monitorURL":"https://h/m","query":"test query"}"#
        );
        let (event_type, _) = test_event(&monitor, "https://h/m", ActionKind::Slack);
        assert_eq!(event_type, CODE_MONITOR_SLACK);
    }
}

//! From a monitor's new results to the events its actions get, and the test
//! notification each action is sent. This is the one place that decides what
//! each action receives; the stores only deliver the events to the audiences
//! named here.
//!
//! A search publishes these events, all in the monitor's scope
//! ([`monitor_project`]) and recorded with the searched heads in one
//! transaction:
//! 1. `code_monitor:notification` with `results`: to every enabled global
//!    webhook subscribed to the type, and to the webhook actions that include
//!    results. Published whenever there are results, so global subscribers get
//!    it even from a monitor with no actions.
//! 2. the same type without `results` (Sourcegraph's "include results" off):
//!    only to the webhook actions that omit them. A separate event because a
//!    delivery sends its event's exact bytes.
//! 3. and 4. `code_monitor:slack`, with and without results, to the Slack
//!    actions.
//!
//! Every match is delivered: the events with results are split, in the
//! results' order, into as many parts as [`NotificationLimits`] need (a Slack
//! message also holds at most [`SLACK_RESULTS_PER_MESSAGE`]). Each event
//! carries its part in its properties, which deliveries send as the
//! `Herald-Notification-Part` and `-Parts` headers, so the seed's payload
//! stays as it is.

use std::collections::BTreeMap;
use std::ops::Range;

use herald_catalogue::family::{NOTIFICATION_PART_PROPERTY, NOTIFICATION_PARTS_PROPERTY};
use herald_catalogue::keys::{CODE_MONITOR_NOTIFICATION, CODE_MONITOR_SLACK};
use herald_core::id::{EventId, WebhookId};
use herald_monitor::MatchResult;
use herald_store::{
    ActionKind, MonitorEvent, MonitorRecord, NewEvent, RunNotification, monitor_project,
};

use crate::monitors::config::NotificationLimits;
use crate::monitors::payloads::{
    Part, SLACK_RESULTS_PER_MESSAGE, TEST_QUERY, notification, slack_message, slack_test_message,
};

/// What a search publishes: the events, and the run's account of them, in
/// the same order.
#[derive(Debug, Clone)]
pub struct Planned {
    pub events: Vec<MonitorEvent>,
    pub notifications: Vec<RunNotification>,
}

/// The events a search that found `results` publishes, each notification
/// within `limits`.
pub fn search_events(
    monitor: &MonitorRecord,
    monitor_url: &str,
    repository: &str,
    results: &[MatchResult],
    limits: NotificationLimits,
) -> Planned {
    let mut plan = Planner {
        monitor,
        repository,
        max_bytes: limits.max_bytes,
        planned: Planned {
            events: Vec::new(),
            notifications: Vec::new(),
        },
    };
    let bodies = Bodies {
        description: &monitor.description,
        monitor_url,
        query: &monitor.query,
        results,
    };
    let webhook_type = action_event_type(ActionKind::Webhook);
    let slack_type = action_event_type(ActionKind::Slack);
    // Global subscribers get the notification even from a monitor with no actions.
    plan.add_parts(
        webhook_type,
        true,
        targets(monitor, ActionKind::Webhook, true),
        bodies.notifications(limits),
    );
    plan.add_summary(
        webhook_type,
        targets(monitor, ActionKind::Webhook, false),
        bodies.notification(&[]),
    );
    let slack = targets(monitor, ActionKind::Slack, true);
    if !slack.is_empty() {
        plan.add_parts(slack_type, false, slack, bodies.slack_messages(limits));
    }
    plan.add_summary(
        slack_type,
        targets(monitor, ActionKind::Slack, false),
        bodies.slack_message(&[], Part::ONLY),
    );
    plan.planned
}

/// The event type an action of this kind is sent, which its webhook
/// subscribes to.
pub fn action_event_type(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Webhook => CODE_MONITOR_NOTIFICATION,
        ActionKind::Slack => CODE_MONITOR_SLACK,
    }
}

/// The test event type and body sent to an action of this kind: the
/// notification with query "test query" and no results, or a Slack test message.
pub fn test_event(
    monitor: &MonitorRecord,
    monitor_url: &str,
    kind: ActionKind,
) -> (&'static str, Vec<u8>) {
    let body = match kind {
        ActionKind::Webhook => notification(&monitor.description, monitor_url, TEST_QUERY, &[]),
        ActionKind::Slack => slack_test_message(&monitor.description, monitor_url),
    };
    (action_event_type(kind), body)
}

/// The webhooks of the monitor's actions of this kind that do, or do not,
/// include results.
fn targets(monitor: &MonitorRecord, kind: ActionKind, include_results: bool) -> Vec<WebhookId> {
    monitor
        .actions
        .iter()
        .filter(|a| a.kind == kind && a.include_results == include_results)
        .map(|a| a.webhook_id)
        .collect()
}

/// The bodies of one search's events.
struct Bodies<'a> {
    description: &'a str,
    monitor_url: &'a str,
    query: &'a str,
    results: &'a [MatchResult],
}

impl Bodies<'_> {
    fn notification(&self, shown: &[MatchResult]) -> Vec<u8> {
        notification(self.description, self.monitor_url, self.query, shown)
    }

    fn slack_message(&self, shown: &[MatchResult], part: Part) -> Vec<u8> {
        let matches = self.results.len();
        slack_message(self.description, self.monitor_url, matches, shown, part)
    }

    /// The notifications with results, each with the number it shows.
    fn notifications(&self, limits: NotificationLimits) -> Vec<(Vec<u8>, usize)> {
        let ranges = split(
            self.results,
            limits.max_results,
            limits.max_bytes,
            |shown| self.notification(shown).len(),
        );
        ranges
            .into_iter()
            .map(|range| (self.notification(&self.results[range.clone()]), range.len()))
            .collect()
    }

    /// The Slack messages with results, each with the number it shows.
    fn slack_messages(&self, limits: NotificationLimits) -> Vec<(Vec<u8>, usize)> {
        // Sized with the longest label a part can have, which its digits bound.
        let widest = Part {
            number: self.results.len(),
            of: self.results.len(),
        };
        let per_message = limits.max_results.min(SLACK_RESULTS_PER_MESSAGE);
        let ranges = split(self.results, per_message, limits.max_bytes, |shown| {
            self.slack_message(shown, widest).len()
        });
        let of = ranges.len();
        ranges
            .into_iter()
            .enumerate()
            .map(|(index, range)| {
                let part = Part {
                    number: index + 1,
                    of,
                };
                (
                    self.slack_message(&self.results[range.clone()], part),
                    range.len(),
                )
            })
            .collect()
    }
}

struct Planner<'a> {
    monitor: &'a MonitorRecord,
    repository: &'a str,
    max_bytes: usize,
    planned: Planned,
}

impl Planner<'_> {
    /// One event per `(body, results shown)`, numbered in order.
    fn add_parts(
        &mut self,
        event_type: &str,
        global_subscribers: bool,
        webhooks: Vec<WebhookId>,
        bodies: Vec<(Vec<u8>, usize)>,
    ) {
        let parts = bodies.len();
        for (index, (payload, results)) in bodies.into_iter().enumerate() {
            if payload.len() > self.max_bytes {
                tracing::warn!(
                    monitor = %self.monitor.id,
                    bytes = payload.len(),
                    max_bytes = self.max_bytes,
                    "one result is larger than a notification may be; it is sent whole, alone"
                );
            }
            let part = index + 1;
            let event = self.event(event_type, payload, part, parts);
            self.planned.notifications.push(RunNotification {
                event_id: event.id,
                event_type: event_type.to_owned(),
                part: saturating_u32(part),
                parts: saturating_u32(parts),
                results: saturating_u32(results),
            });
            self.planned.events.push(MonitorEvent {
                event,
                global_subscribers,
                webhooks: webhooks.clone(),
            });
        }
    }

    /// The one body without results, for the actions that leave them out.
    fn add_summary(&mut self, event_type: &str, webhooks: Vec<WebhookId>, payload: Vec<u8>) {
        if !webhooks.is_empty() {
            self.add_parts(event_type, false, webhooks, vec![(payload, 0)]);
        }
    }

    fn event(&self, event_type: &str, payload: Vec<u8>, part: usize, parts: usize) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            event_type: event_type.to_owned(),
            project: Some(monitor_project(self.monitor.id)),
            payload,
            properties: BTreeMap::from([
                ("monitor_id".to_owned(), self.monitor.id.to_string()),
                ("repository".to_owned(), self.repository.to_owned()),
                (NOTIFICATION_PART_PROPERTY.to_owned(), part.to_string()),
                (NOTIFICATION_PARTS_PROPERTY.to_owned(), parts.to_string()),
            ]),
            ordering_key: None,
        }
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Splits `items` into consecutive ranges of at most `max_items`, each as long
/// as its rendering, measured by `size`, stays within `max_bytes`. `size` must
/// not shrink as items are added. An item too big on its own gets a range to
/// itself rather than be dropped.
fn split<T>(
    items: &[T],
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&[T]) -> usize,
) -> Vec<Range<usize>> {
    let max_items = max_items.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let most = max_items.min(items.len() - start);
        let fits = |count: usize| size(&items[start..start + count]) <= max_bytes;
        let count = if fits(most) {
            most
        } else {
            longest_fitting(most, fits)
        };
        ranges.push(start..start + count);
        start += count;
    }
    ranges
}

/// The largest count below `too_many` that `fits` (binary search: rendering
/// is the cost), and at least 1.
fn longest_fitting(too_many: usize, fits: impl Fn(usize) -> bool) -> usize {
    let (mut fitting, mut too_many) = (1, too_many);
    while too_many - fitting > 1 {
        let middle = fitting + (too_many - fitting) / 2;
        if fits(middle) {
            fitting = middle;
        } else {
            too_many = middle;
        }
    }
    fitting
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
            &[result()],
            NotificationLimits::default(),
        )
        .events;
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
        let limits = NotificationLimits::default();
        let events = search_events(&monitor(&[]), "https://h/m", "r", &[result()], limits).events;
        assert_eq!(events.len(), 1);
        assert!(events[0].global_subscribers && events[0].webhooks.is_empty());
        assert_eq!(body(&events[0])["monitorURL"], "https://h/m");
    }

    fn numbered(n: usize) -> Vec<MatchResult> {
        (0..n)
            .map(|i| MatchResult {
                commit: format!("{i:040}"),
                ..result()
            })
            .collect()
    }

    fn commits(event: &MonitorEvent) -> Vec<String> {
        body(event)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["commit"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn results_past_the_limit_go_to_further_parts_in_order() {
        let monitor = monitor(&[(ActionKind::Webhook, true), (ActionKind::Webhook, false)]);
        let results = numbered(25);
        let limits = NotificationLimits {
            max_results: 10,
            max_bytes: usize::MAX,
        };
        let planned = search_events(&monitor, "https://h/m", "r", &results, limits);
        let parts: Vec<(u32, u32, u32)> = planned
            .notifications
            .iter()
            .map(|n| (n.part, n.parts, n.results))
            .collect();
        assert_eq!(
            parts,
            vec![(1, 3, 10), (2, 3, 10), (3, 3, 5), (1, 1, 0)],
            "three parts with results, then the one without"
        );
        let delivered: Vec<String> = planned.events[..3].iter().flat_map(commits).collect();
        let expected: Vec<String> = results.iter().map(|r| r.commit.clone()).collect();
        assert_eq!(delivered, expected);
        for (event, noted) in planned.events.iter().zip(&planned.notifications) {
            assert_eq!(event.event.id, noted.event_id);
            let properties = &event.event.properties;
            assert_eq!(
                properties[NOTIFICATION_PART_PROPERTY],
                noted.part.to_string()
            );
            assert_eq!(
                properties[NOTIFICATION_PARTS_PROPERTY],
                noted.parts.to_string()
            );
        }
        assert!(planned.events[..3].iter().all(|e| e.global_subscribers));
    }

    #[test]
    fn parts_stay_within_the_byte_cap() {
        let monitor = monitor(&[(ActionKind::Webhook, true), (ActionKind::Slack, true)]);
        let results = numbered(40);
        let one = notification("Secrets", "https://h/m", "type:diff BEGIN", &results[..1]).len();
        let limits = NotificationLimits {
            max_results: 100,
            max_bytes: one * 4,
        };
        let planned = search_events(&monitor, "https://h/m", "r", &results, limits);
        let (notifications, slack): (Vec<&MonitorEvent>, Vec<&MonitorEvent>) = planned
            .events
            .iter()
            .partition(|e| e.event.event_type == CODE_MONITOR_NOTIFICATION);
        for event in planned.events.iter() {
            assert!(event.event.payload.len() <= limits.max_bytes);
        }
        let delivered: Vec<String> = notifications.iter().copied().flat_map(commits).collect();
        let expected: Vec<String> = results.iter().map(|r| r.commit.clone()).collect();
        assert_eq!(delivered, expected);
        // Packed as tightly as the cap allows: one more result would not fit.
        let full = commits(notifications[0]).len();
        assert!(notifications.len() > 2, "{} parts", notifications.len());
        let one_more = notification(
            "Secrets",
            "https://h/m",
            "type:diff BEGIN",
            &results[..full + 1],
        );
        assert!(one_more.len() > limits.max_bytes);
        let shown: usize = planned
            .notifications
            .iter()
            .filter(|n| n.event_type == CODE_MONITOR_SLACK)
            .map(|n| n.results as usize)
            .sum();
        assert_eq!(shown, 40);
        assert!(!slack.is_empty());
    }

    #[test]
    fn a_slack_action_gets_every_result_within_its_block_limit() {
        let monitor = monitor(&[(ActionKind::Slack, true)]);
        let results = numbered(60);
        let planned = search_events(
            &monitor,
            "https://h/m",
            "r",
            &results,
            NotificationLimits::default(),
        );
        let slack: Vec<&MonitorEvent> = planned
            .events
            .iter()
            .filter(|e| e.event.event_type == CODE_MONITOR_SLACK)
            .collect();
        assert_eq!(slack.len(), 3);
        let blocks: Vec<usize> = slack
            .iter()
            .map(|e| body(e)["blocks"].as_array().unwrap().len())
            .collect();
        assert_eq!(blocks, vec![50, 50, 2 + 2 * 12]);
        assert_eq!(
            body(slack[2])["blocks"][0]["text"]["text"],
            "Code monitor *Secrets* found *60 new matches* (part 3 of 3)."
        );
    }

    #[test]
    fn a_result_larger_than_the_cap_is_sent_alone_and_whole() {
        let ranges = split(&[1, 50, 1, 1], 10, 10, |items| items.iter().sum());
        assert_eq!(ranges, vec![0..1, 1..2, 2..4]);
        assert!(split(&[] as &[usize], 10, 10, |items| items.len()).is_empty());
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

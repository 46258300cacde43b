//! Flow control with real receivers: a webhook's own `failing_after`, its
//! `max_in_flight` (the receiver counts requests in progress) and
//! `max_per_second` (the receiver counts requests within any one second), and
//! adaptive concurrency, which opens up for a fast receiver and closes down
//! for one that answers 503.

use std::time::Duration;

use herald_delivery::DeliveryConfig;
use herald_store::{DeliveryStatus, FlowLimits, HealthOverrides, HealthPolicy, HealthState};

use crate::receiver::Receiver;
use crate::{Harness, config, eventually, fast_schedule};

/// Room for many attempts at once, health that never pauses on its own (so
/// only what a test sets changes the flow), and retries every 10 ms.
fn roomy(adaptive: bool) -> DeliveryConfig {
    DeliveryConfig {
        max_in_flight: 64,
        max_in_flight_per_webhook: 16,
        claim_batch: 64,
        retry: fast_schedule(200),
        health: HealthPolicy {
            failing_after: 10_000,
            disable_after: None,
            ..HealthPolicy::default()
        },
        adaptive_concurrency: adaptive,
        ..config()
    }
}

async fn publish_many(h: &Harness, n: usize) {
    for i in 0..n {
        h.publish("ping", format!("{{\"n\":{i}}}").as_bytes()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_own_failing_after_pauses_it_sooner_than_the_node_would() {
    let receiver = Receiver::start().await;
    let mut node = roomy(false);
    node.health = HealthPolicy {
        failing_after: 50,
        disable_after: None,
        first_pause: Duration::from_secs(600),
        longest_pause: Duration::from_secs(600),
    };
    let h = Harness::start(node).await;
    let webhook = h
        .tuned_webhook(&receiver.url("/always-500"), |new| {
            new.health_overrides = HealthOverrides {
                failing_after: Some(2),
                disable_after: None,
            };
        })
        .await;
    h.publish("ping", b"{}").await;

    let health = eventually("the webhook paused", async || {
        let record = h.store.get_webhook(webhook.id).await.unwrap().unwrap();
        (record.health.state == HealthState::Paused).then_some(record.health)
    })
    .await;
    // One attempt may have been claimed between the second failure's record
    // and its health note; the node's own setting would have waited for 50.
    assert!((2..=3).contains(&health.consecutive_failures), "{health:?}");
    assert!(receiver.hits("/always-500").len() <= 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_max_in_flight_is_never_exceeded() {
    let receiver = Receiver::start().await;
    let h = Harness::start(roomy(false)).await;
    let webhook = h
        .tuned_webhook(&receiver.url("/slow"), |new| {
            new.flow_limits = FlowLimits {
                max_in_flight: Some(3),
                max_per_second: None,
            };
        })
        .await;
    publish_many(&h, 40).await;

    h.settled(webhook.id, 40, DeliveryStatus::Succeeded).await;
    let most = receiver.most_at_once("/slow");
    assert!(most <= 3, "{most} requests at once");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_max_per_second_bounds_requests_in_any_second() {
    let receiver = Receiver::start().await;
    let h = Harness::start(roomy(false)).await;
    let webhook = h
        .tuned_webhook(&receiver.url("/ok"), |new| {
            new.flow_limits = FlowLimits {
                max_in_flight: None,
                max_per_second: Some(10),
            };
        })
        .await;
    publish_many(&h, 45).await;

    h.settled(webhook.id, 45, DeliveryStatus::Succeeded).await;
    let arrivals: Vec<_> = receiver.hits("/ok").iter().map(|hit| hit.at).collect();
    let busiest_second = arrivals
        .iter()
        .map(|start| {
            arrivals
                .iter()
                .filter(|at| **at >= *start && at.duration_since(*start) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    // One second's refill (10) and a full bucket (1), with ample room for a
    // loaded machine bunching arrivals; unpaced, all 45 come within a second.
    assert!(
        busiest_second <= 30,
        "{busiest_second} requests within one second"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_concurrency_opens_up_for_a_fast_receiver_and_closes_down_for_an_overloaded_one() {
    let receiver = Receiver::start().await;
    let h = Harness::start(roomy(true)).await;
    let fast = h.tuned_webhook(&receiver.url("/slow"), |_| {}).await;
    h.tuned_webhook(&receiver.url("/overloaded"), |_| {}).await;
    publish_many(&h, 300).await;

    h.settled(fast.id, 300, DeliveryStatus::Succeeded).await;
    let opened = receiver.most_at_once("/slow");
    assert!(
        opened > 4,
        "the window never grew past its start of 4: {opened} at once"
    );
    let answered = eventually("the overloaded receiver's later requests", async || {
        let hits = receiver.hits("/overloaded");
        (hits.len() >= 50).then_some(hits)
    })
    .await;
    let first = answered[..8].iter().map(|hit| hit.concurrent).max();
    let later = answered[30..50].iter().map(|hit| hit.concurrent).max();
    assert!(first >= Some(3), "it started at 4 at once: {first:?}");
    assert!(
        later <= Some(2),
        "503s should have cut the window to 1 or 2: {later:?} at once"
    );
    h.stop().await;
}

use herald_core::time::Timestamp;
use serde_json::{Value, json};

use crate::harness::{Receiver, TestApp, assert_error, hook_body, send};

async fn ids_of(herald: &TestApp, path: &str) -> (Vec<String>, Value) {
    let (status, page) = send(herald.get(path)).await;
    assert_eq!(status, 200, "{page}");
    let ids = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, page["next_cursor"].clone())
}

#[tokio::test]
async fn redeliver_sends_a_failed_delivery_again() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("a").await;
    let mut receiver = Receiver::start().await;
    receiver.answer_with(500);
    let created = herald
        .create_webhook(hook_body("flaky", &receiver.url, &["a"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    herald
        .publish(json!({"type": "a", "payload": {"n": 1}}))
        .await;
    receiver.next().await;
    let delivery_id = herald.deliveries(webhook_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = herald.wait_for_delivery(&delivery_id, "failed").await;
    assert_eq!(failed["delivery"]["last_status_code"], 500);

    receiver.answer_with(200);
    let (status, queued) =
        send(herald.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"))).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["id"], delivery_id.as_str());
    assert_eq!(queued["status"], "pending");
    let again = receiver.next().await;
    assert_eq!(again.body, "{\"n\": 1}".replace(' ', "").as_bytes());
    let detail = herald.wait_for_delivery(&delivery_id, "succeeded").await;
    let statuses: Vec<&Value> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["response_status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(200)]);
    assert_eq!(detail["delivery"]["attempts"], 2);
}

#[tokio::test]
async fn recover_requeues_failed_deliveries_since_a_time() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("a").await;
    let mut receiver = Receiver::start().await;
    receiver.answer_with(503);
    let created = herald
        .create_webhook(hook_body("down", &receiver.url, &["a"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{webhook_id}/recover");

    let refused: Vec<(Value, &str, &str)> = vec![
        (json!({}), "missing_field", "since"),
        (json!({"since": "yesterday"}), "invalid_field", "since"),
        (
            json!({"since": "2026-01-01T00:00:00Z", "until": "x"}),
            "unknown_field",
            "until",
        ),
    ];
    for (body, code, field) in refused {
        let (status, error) = send(herald.post(&path).json(&body)).await;
        assert_error(status, &error, 422, code, Some(field));
    }

    let before = Timestamp::now().to_rfc3339();
    for n in 0..2 {
        herald
            .publish(json!({"type": "a", "payload": {"n": n}}))
            .await;
    }
    receiver.next().await;
    receiver.next().await;
    let ids: Vec<String> = herald
        .deliveries(webhook_id)
        .await
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        herald.wait_for_delivery(id, "failed").await;
    }

    let (status, result) = send(
        herald
            .post(&path)
            .json(&json!({"since": "2999-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!((status, &result["requeued"]), (200, &json!(0)));

    receiver.answer_with(204);
    let (status, result) = send(herald.post(&path).json(&json!({"since": before}))).await;
    assert_eq!((status, &result["requeued"]), (200, &json!(2)), "{result}");
    receiver.next().await;
    receiver.next().await;
    for id in &ids {
        herald.wait_for_delivery(id, "succeeded").await;
    }
}

#[tokio::test]
async fn the_delivery_log_pages_newest_first_and_filters() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("a").await;
    let receiver = Receiver::start().await;
    let created = herald
        .create_webhook(hook_body("log", &receiver.url, &["a"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    let base = format!("/api/v1/webhooks/{webhook_id}/deliveries");
    for n in 0..5 {
        herald
            .publish(json!({"type": "a", "payload": {"n": n}}))
            .await;
    }
    let (all, cursor) = ids_of(&herald, &base).await;
    assert_eq!((all.len(), cursor), (5, Value::Null));
    let mut newest_first = all.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        all, newest_first,
        "v7 ids sort by creation; the log is newest first"
    );
    for id in &all {
        herald.wait_for_delivery(id, "succeeded").await;
    }

    let mut paged = Vec::new();
    let mut path = format!("{base}?limit=2");
    loop {
        let (ids, cursor) = ids_of(&herald, &path).await;
        assert!(ids.len() <= 2);
        paged.extend(ids);
        match cursor.as_str() {
            Some(cursor) => path = format!("{base}?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(paged.len() <= 5, "paging does not end");
    }
    assert_eq!(paged, all);

    assert_eq!(
        ids_of(&herald, &format!("{base}?status=succeeded"))
            .await
            .0
            .len(),
        5
    );
    assert!(
        ids_of(&herald, &format!("{base}?status=failed"))
            .await
            .0
            .is_empty()
    );
    assert!(
        ids_of(&herald, &format!("{base}?since=2999-01-01T00:00:00Z"))
            .await
            .0
            .is_empty()
    );
    assert_eq!(
        ids_of(
            &herald,
            &format!("{base}?until=2999-01-01T00:00:00Z&since=2000-01-01T00:00:00Z")
        )
        .await
        .0
        .len(),
        5
    );
    assert!(
        ids_of(&herald, &format!("{base}?until=2000-01-01T00:00:00Z"))
            .await
            .0
            .is_empty()
    );

    let bad: Vec<(&str, &str)> = vec![
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("limit=ten", "limit"),
        ("status=done", "status"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("cursor=not-an-id", "cursor"),
        ("colour=red", "colour"),
    ];
    for (query, parameter) in bad {
        let (status, error) = send(herald.get(&format!("{base}?{query}"))).await;
        assert_error(status, &error, 400, "invalid_query", Some(parameter));
    }
}

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, assert_error, send};

const UNKNOWN: &str = "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a";

#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ids_400() {
    let herald = TestApp::spawn().await;
    let recover = json!({"since": "2026-01-01T00:00:00Z"});
    for id in [UNKNOWN, "not-a-uuid"] {
        let requests = [
            herald.get(&format!("/api/v1/webhooks/{id}")),
            herald
                .patch(&format!("/api/v1/webhooks/{id}"))
                .json(&json!({"name": "x"})),
            herald.request(Method::DELETE, &format!("/api/v1/webhooks/{id}")),
            herald.get(&format!("/api/v1/webhooks/{id}/secret")),
            herald.post(&format!("/api/v1/webhooks/{id}/test")),
            herald
                .post(&format!("/api/v1/webhooks/{id}/recover"))
                .json(&recover),
            herald.get(&format!("/api/v1/webhooks/{id}/deliveries")),
            herald.get(&format!("/api/v1/deliveries/{id}")),
            herald.post(&format!("/api/v1/deliveries/{id}/redeliver")),
        ];
        for request in requests {
            let (status, error) = send(request).await;
            if id == UNKNOWN {
                assert_error(status, &error, 404, "not_found", None);
                assert!(
                    error["message"].as_str().unwrap().contains(UNKNOWN),
                    "{error}"
                );
            } else {
                assert_error(status, &error, 400, "invalid_id", None);
                assert!(
                    error["message"].as_str().unwrap().contains("not-a-uuid"),
                    "{error}"
                );
            }
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let herald = TestApp::spawn().await;
    let (status, error) = send(herald.get("/api/v1/nothing-here")).await;
    assert_error(status, &error, 404, "not_found", None);
    let (status, error) = send(herald.client.get(format!("{}/favicon.ico", herald.base))).await;
    assert_error(status, &error, 404, "not_found", None);

    let response = herald
        .request(Method::PUT, "/api/v1/webhooks")
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let (status, error) = crate::harness::status_and_json(response).await;
    assert_error(status, &error, 405, "method_not_allowed", None);
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let (status, error) = send(herald.request(Method::DELETE, "/api/v1/events")).await;
    assert_error(status, &error, 405, "method_not_allowed", None);
    let (status, error) = send(herald.client.post(format!("{}/healthz", herald.base))).await;
    assert_error(status, &error, 405, "method_not_allowed", None);
}

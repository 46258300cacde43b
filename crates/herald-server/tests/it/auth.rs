use reqwest::header::WWW_AUTHENTICATE;

use crate::harness::{TestApp, TOKEN, assert_error, send, status_and_json};

#[tokio::test]
async fn every_api_route_needs_the_token_and_healthz_does_not() {
    let herald = TestApp::spawn().await;
    let paths = [
        "/api/v1/webhooks",
        "/api/openapi.json",
        "/api/v1/no-such-route",
        "/api",
    ];
    for path in paths {
        let url = format!("{}{path}", herald.base);
        let attempts = [
            herald.client.get(&url),
            herald.client.get(&url).bearer_auth("wrong-token"),
            herald.client.get(&url).bearer_auth(format!("{TOKEN}x")),
            herald.client.get(&url).basic_auth("admin", Some(TOKEN)),
            herald.client.get(&url).header("Authorization", TOKEN),
        ];
        for request in attempts {
            let response = request.send().await.unwrap();
            let challenge = response.headers().get(WWW_AUTHENTICATE).cloned();
            let (status, body) = status_and_json(response).await;
            assert_error(status, &body, 401, "unauthorized", None);
            assert!(
                challenge.unwrap().to_str().unwrap().starts_with("Bearer"),
                "{path}"
            );
        }
    }

    let (status, body) = send(herald.client.get(format!("{}/healthz", herald.base))).await;
    assert_eq!((status, &body["status"]), (200, &"ok".into()));

    let (status, _) = send(herald.get("/api/v1/webhooks")).await;
    assert_eq!(status, 200);
    let lower_case_scheme = herald
        .client
        .get(format!("{}/api/v1/webhooks", herald.base))
        .header("Authorization", format!("bearer {TOKEN}"));
    assert_eq!(send(lower_case_scheme).await.0, 200);
}

#[tokio::test]
async fn a_refused_write_changes_nothing() {
    let herald = TestApp::spawn().await;
    let create = herald
        .client
        .post(format!("{}/api/v1/webhooks", herald.base))
        .json(&crate::harness::webhook_body(
            "sneaky",
            "https://example.com/",
        ));
    let (status, body) = send(create).await;
    assert_error(status, &body, 401, "unauthorized", None);
    assert!(herald.webhooks().await.is_empty());
}

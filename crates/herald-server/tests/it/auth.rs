use herald_server::{Access, route_table};
use reqwest::Method;
use reqwest::header::WWW_AUTHENTICATE;

use crate::harness::{TOKEN, TestApp, assert_error, send, status_and_json};

/// The routes anyone may call; every other route needs a credential (a
/// console route: a session).
const PUBLIC: [(&str, &str); 7] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    ("POST", "/.api/webhooks/{id}"),
    ("GET", "/"),
    ("POST", "/sign-in"),
    ("GET", "/console/assets/{file}"),
];

/// A concrete path for a route's template: any well-formed id will do, as
/// the credential is checked before anything is looked up.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a")
        .replace("{request_id}", "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7b")
        .replace("{key}", "deploy:finished")
        .replace("{file}", "console.css")
}

/// Console pages send people without a session to sign in; anything else
/// they refuse with 401.
async fn assert_console_refuses(request: reqwest::RequestBuilder, method: &Method, path: &str) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if *method == Method::GET {
        assert_eq!(status, 303, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/?next="), "{path}: {location}");
    } else {
        assert_eq!(status, 401, "{method} {path}");
    }
}

#[tokio::test]
async fn every_route_outside_the_public_list_refuses_a_missing_or_wrong_token() {
    let herald = TestApp::spawn().await;
    let table = route_table();
    assert!(table.len() > 40, "the table lists every route: {table:?}");
    let mut public: Vec<(String, String)> = table
        .iter()
        .filter(|route| route.access == Access::Public)
        .map(|route| (route.method.to_string(), route.path.clone()))
        .collect();
    public.sort();
    let mut expected: Vec<(String, String)> = PUBLIC
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(public, expected, "the public routes changed");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for route in table.iter().filter(|route| route.access != Access::Public) {
        let url = format!("{}{}", herald.base, concrete(&route.path));
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        if route.path.starts_with("/console") || route.path == "/sign-out" {
            for request in [
                no_redirects.request(method.clone(), &url),
                no_redirects
                    .request(method.clone(), &url)
                    .bearer_auth(TOKEN),
            ] {
                assert_console_refuses(request, &method, &route.path).await;
            }
            continue;
        }
        for request in [
            herald.client.request(method.clone(), &url),
            herald
                .client
                .request(method.clone(), &url)
                .bearer_auth("wrong"),
        ] {
            let (status, body) = send(request.json(&serde_json::json!({}))).await;
            assert_error(status, &body, 401, "unauthorized", None);
        }
    }
}

#[tokio::test]
async fn api_routes_need_the_token_and_healthz_and_the_api_document_do_not() {
    let herald = TestApp::spawn().await;
    let paths = ["/api/v1/webhooks", "/api/v1/no-such-route", "/api"];
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
    // The API's description is no secret: tools load it before anyone has a token.
    let (status, document) = send(
        herald
            .client
            .get(format!("{}/api/openapi.json", herald.base)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(document["paths"]["/api/v1/webhooks"].is_object());

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

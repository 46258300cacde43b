//! API tokens through the API: created once and never shown again, each
//! scope's allowed and refused routes (walking `route_table()`), a project
//! token's confinement to its project, expiry, revocation and last use.

use std::time::{Duration, Instant};

use herald_core::time::Timestamp;
use herald_server::{Access, route_table};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::harness::{Receiver, TestApp, assert_error, send};

/// A concrete path for a route's template; the scope is checked before any
/// id is looked up.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a")
        .replace("{request_id}", "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7b")
        .replace("{key}", "deploy:finished")
}

/// How long a wait for a background write (last use) or an expiry may take.
const WAIT: Duration = Duration::from_secs(10);

/// Creates a token with the admin token; returns the 201 body.
async fn create_token(herald: &TestApp, body: Value) -> Value {
    let (status, created) = send(herald.post("/api/v1/tokens").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn token_with_scope(herald: &TestApp, scope: &str) -> String {
    let created = create_token(herald, json!({"name": scope, "scope": scope})).await;
    created["token"].as_str().unwrap().to_owned()
}

fn with_token(herald: &TestApp, token: &str, method: Method, path: &str) -> RequestBuilder {
    herald
        .client
        .request(method, format!("{}{path}", herald.base))
        .bearer_auth(token)
}

async fn listed_tokens(herald: &TestApp) -> Vec<Value> {
    let (status, list) = send(herald.get("/api/v1/tokens")).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// The scope a refusal of a route with this access names.
fn scope_named(access: Access) -> &'static str {
    match access {
        Access::Read | Access::ReadWebhooks => "the read scope",
        Access::Publish => "the publish scope",
        Access::Admin | Access::ManageWebhooks => "the admin scope",
        Access::Public => unreachable!("public routes check no scope"),
        Access::Session => unreachable!("only console routes take any session"),
    }
}

/// Sends every non-public API route to `token`: those in `allowed` must get
/// past the scope check (any answer but 401 and 403), every other must be
/// refused with 403 naming the scope it needs. Console routes take no bearer
/// token (tests/it/console.rs checks their scopes with sessions).
async fn walk_routes(herald: &TestApp, token: &str, scope: &str, allowed: &[Access]) {
    for route in route_table().iter().filter(|route| {
        route.access != Access::Public
            && !route.path.starts_with("/console")
            && route.path != "/sign-out"
    }) {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let path = concrete(&route.path);
        let request = with_token(herald, token, method, &path).json(&json!({}));
        let (status, body) = send(request).await;
        let what = format!("{} {} ({:?})", route.method, route.path, route.access);
        if allowed.contains(&route.access) {
            assert!(status != 401 && status != 403, "{what}: {status} {body}");
            continue;
        }
        assert_error(status, &body, 403, "forbidden", None);
        let message = body["message"].as_str().unwrap();
        let needed = format!("needs {}", scope_named(route.access));
        assert!(message.contains(&needed), "{what}: {message}");
        assert!(
            message.contains(&format!("has the {scope} scope")),
            "{what}: {message}"
        );
    }
}

#[tokio::test]
async fn a_token_is_shown_once_and_its_use_is_listed() {
    let herald = TestApp::spawn().await;
    let created = create_token(
        &herald,
        json!({"name": "dashboards", "scope": "read", "expires_in": "30d"}),
    )
    .await;
    let token = created["token"].as_str().unwrap();
    assert!(
        token.starts_with("hrld_") && token.len() >= 5 + 43,
        "{token}"
    );
    assert_eq!(created["name"], "dashboards");
    assert_eq!(created["scope"], "read");
    assert!(created["last_used_at"].is_null());
    assert!(created["expires_at"].is_string());

    let (status, list) = send(herald.get("/api/v1/tokens")).await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(token), "never shown again");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created["id"]);
    assert!(items[0].get("token").is_none(), "{list}");

    let (status, _) = send(with_token(&herald, token, Method::GET, "/api/v1/webhooks")).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = listed_tokens(&herald).await;
        if listed[0]["last_used_at"].is_string() {
            // Compared as instants: RFC 3339 text drops trailing zeros of the
            // fraction (`10Z`, `10.5Z`), so its order is not the strings' order.
            let at = |v: &Value| Timestamp::parse_rfc3339(v.as_str().unwrap()).unwrap();
            assert!(at(&listed[0]["last_used_at"]) >= at(&created["created_at"]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the use never showed: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_read_token_reads_everything_but_secrets_and_tokens() {
    let herald = TestApp::spawn().await;
    let token = token_with_scope(&herald, "read").await;
    walk_routes(
        &herald,
        &token,
        "read",
        &[Access::Read, Access::ReadWebhooks],
    )
    .await;

    let webhook = herald
        .create_webhook(
            json!({"name": "p", "url": "https://e.com/", "event_types": ["*"], "project": "p"}),
        )
        .await;
    let id = webhook["id"].as_str().unwrap();
    let (status, list) = send(with_token(&herald, &token, Method::GET, "/api/v1/webhooks")).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
    let secret = format!("/api/v1/webhooks/{id}/secret");
    let (status, body) = send(with_token(&herald, &token, Method::GET, &secret)).await;
    assert_error(status, &body, 403, "forbidden", None);
}

#[tokio::test]
async fn a_publish_token_only_publishes() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("build:done").await;
    let token = token_with_scope(&herald, "publish").await;
    walk_routes(&herald, &token, "publish", &[Access::Publish]).await;

    let event = json!({"type": "build:done", "payload": {"ok": true}});
    let request = with_token(&herald, &token, Method::POST, "/api/v1/events").json(&event);
    let (status, body) = send(request).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn an_admin_token_may_do_what_the_configured_admin_token_does() {
    let herald = TestApp::spawn().await;
    let token = token_with_scope(&herald, "admin").await;
    let create = with_token(&herald, &token, Method::POST, "/api/v1/webhooks")
        .json(&json!({"name": "g", "url": "https://e.com/", "event_types": ["*"]}));
    let (status, created) = send(create).await;
    assert_eq!(status, 201, "{created}");
    let secret = format!(
        "/api/v1/webhooks/{}/secret",
        created["id"].as_str().unwrap()
    );
    assert_eq!(
        send(with_token(&herald, &token, Method::GET, &secret))
            .await
            .0,
        200
    );
    let (status, list) = send(with_token(&herald, &token, Method::GET, "/api/v1/tokens")).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn a_project_token_sees_and_manages_only_its_projects_webhooks() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("order:paid").await;
    let receiver = Receiver::start().await;
    let hook = |name: &str, project: Value| json!({"name": name, "url": receiver.url, "event_types": ["order:*"], "project": project});
    let alpha = herald.create_webhook(hook("alpha", json!("alpha"))).await;
    let beta = herald.create_webhook(hook("beta", json!("beta"))).await;
    let global = herald.create_webhook(hook("global", Value::Null)).await;
    let (alpha_id, beta_id) = (alpha["id"].as_str().unwrap(), beta["id"].as_str().unwrap());
    let global_id = global["id"].as_str().unwrap();
    for project in ["alpha", "beta"] {
        herald
            .publish(json!({"type": "order:paid", "project": project, "payload": {}}))
            .await;
    }
    let beta_delivery = herald.deliveries(beta_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_with_scope(&herald, "project:alpha").await;
    let call = |method: Method, path: &str| with_token(&herald, &token, method, path);

    // Listing shows only alpha's webhook; the others are not found.
    let (status, list) = send(call(Method::GET, "/api/v1/webhooks")).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [alpha_id]);
    for id in [beta_id, global_id] {
        for (method, path) in [
            (Method::GET, format!("/api/v1/webhooks/{id}")),
            (Method::GET, format!("/api/v1/webhooks/{id}/secret")),
            (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
            (Method::POST, format!("/api/v1/webhooks/{id}/test")),
            (Method::DELETE, format!("/api/v1/webhooks/{id}")),
        ] {
            let (status, body) = send(call(method, &path)).await;
            assert_error(status, &body, 404, "not_found", None);
        }
        let rename =
            call(Method::PATCH, &format!("/api/v1/webhooks/{id}")).json(&json!({"name": "x"}));
        assert_error_status(send(rename).await, 404);
    }
    for (method, path) in [
        (Method::GET, format!("/api/v1/deliveries/{beta_delivery}")),
        (
            Method::POST,
            format!("/api/v1/deliveries/{beta_delivery}/redeliver"),
        ),
    ] {
        let (status, body) = send(call(method, &path)).await;
        assert_error(status, &body, 404, "not_found", None);
    }

    // Its own project's webhook, deliveries and secret are its to manage.
    assert_eq!(
        send(call(
            Method::GET,
            &format!("/api/v1/webhooks/{alpha_id}/secret")
        ))
        .await
        .0,
        200
    );
    let deliveries = format!("/api/v1/webhooks/{alpha_id}/deliveries");
    let (status, page) = send(call(Method::GET, &deliveries)).await;
    assert_eq!(status, 200, "{page}");
    let alpha_delivery = page["items"][0]["id"].as_str().unwrap();
    let detail = format!("/api/v1/deliveries/{alpha_delivery}");
    assert_eq!(send(call(Method::GET, &detail)).await.0, 200);
    let rename = call(Method::PATCH, &format!("/api/v1/webhooks/{alpha_id}"))
        .json(&json!({"name": "renamed"}));
    assert_eq!(send(rename).await.0, 200);

    // Creating or moving a webhook outside the project is refused.
    for project in [json!("beta"), Value::Null] {
        let create = call(Method::POST, "/api/v1/webhooks").json(&hook("elsewhere", project));
        assert_error_status(send(create).await, 403);
    }
    let moved = call(Method::PATCH, &format!("/api/v1/webhooks/{alpha_id}"))
        .json(&json!({"project": "beta"}));
    assert_error_status(send(moved).await, 403);
    let create = call(Method::POST, "/api/v1/webhooks").json(&hook("mine", json!("alpha")));
    let (status, created) = send(create).await;
    assert_eq!(
        (status, &created["project"]),
        (201, &json!("alpha")),
        "{created}"
    );

    // Nothing outside webhooks: not publishing, not the catalogue, not tokens.
    for (method, path, needs) in [
        (Method::POST, "/api/v1/events", "needs the publish scope"),
        (Method::GET, "/api/v1/event-types", "needs the read scope"),
        (Method::GET, "/api/v1/tokens", "needs the admin scope"),
    ] {
        let (status, body) = send(call(method, path).json(&json!({}))).await;
        assert_error(status, &body, 403, "forbidden", None);
        assert!(body["message"].as_str().unwrap().contains(needs), "{body}");
    }
    // The admin still sees all four.
    assert_eq!(herald.webhooks().await.len(), 4);
}

fn assert_error_status((status, body): (u16, Value), want: u16) {
    let code = if want == 403 {
        "forbidden"
    } else {
        "not_found"
    };
    assert_error(status, &body, want, code, None);
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let herald = TestApp::spawn().await;
    let created = create_token(&herald, json!({"name": "ci", "scope": "read"})).await;
    let token = created["token"].as_str().unwrap();
    let path = format!("/api/v1/tokens/{}", created["id"].as_str().unwrap());
    assert_eq!(
        send(with_token(&herald, token, Method::GET, "/api/v1/webhooks"))
            .await
            .0,
        200
    );

    let (status, _) = send(herald.request(Method::DELETE, &path)).await;
    assert_eq!(status, 204);
    let (status, body) = send(with_token(&herald, token, Method::GET, "/api/v1/webhooks")).await;
    assert_error(status, &body, 401, "unauthorized", None);
    let (status, body) = send(herald.request(Method::DELETE, &path)).await;
    assert_error(status, &body, 404, "not_found", None);
    assert!(listed_tokens(&herald).await.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refused_but_still_listed() {
    let herald = TestApp::spawn().await;
    let created = create_token(
        &herald,
        json!({"name": "brief", "scope": "read", "expires_in": "1s"}),
    )
    .await;
    let token = created["token"].as_str().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) =
            send(with_token(&herald, token, Method::GET, "/api/v1/webhooks")).await;
        if status == 401 {
            assert_error(status, &body, 401, "unauthorized", None);
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed_tokens(&herald).await[0]["id"], created["id"]);
}

#[tokio::test]
async fn a_token_that_was_never_issued_is_unauthorized() {
    let herald = TestApp::spawn().await;
    let forged = format!("hrld_{}", "A".repeat(43));
    let (status, body) = send(with_token(
        &herald,
        &forged,
        Method::GET,
        "/api/v1/webhooks",
    ))
    .await;
    assert_error(status, &body, 401, "unauthorized", None);
}

#[tokio::test]
async fn a_token_needs_a_known_scope_and_a_valid_expiry() {
    let herald = TestApp::spawn().await;
    for (body, field) in [
        (json!({"name": "x", "scope": "write"}), "scope"),
        (json!({"name": "x", "scope": "project:"}), "scope"),
        (
            json!({"name": "x", "scope": "read", "expires_in": "soon"}),
            "expires_in",
        ),
        (json!({"name": "", "scope": "read"}), "name"),
    ] {
        let (status, answer) = send(herald.post("/api/v1/tokens").json(&body)).await;
        assert_error(status, &answer, 422, "invalid_field", Some(field));
    }
    assert!(listed_tokens(&herald).await.is_empty());
}

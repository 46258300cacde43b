//! The web console over HTTP: its security headers, signing in, the session
//! cookie (forged, revoked), CSRF refusals and escaping. Flows in a real
//! browser live in `console-tests/`.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, redirect};
use serde_json::json;

use crate::harness::{TOKEN, TestApp, send};

/// A client that shows redirects instead of following them, as the tests
/// look at where the console sends people.
fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Signs in with `token`; returns the `Cookie` header value of the session.
async fn sign_in(herald: &TestApp, token: &str) -> String {
    let response = client()
        .post(format!("{}/sign-in", herald.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("token", token), ("next", "/console/webhooks")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/console/webhooks");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    // Served over plain http here: a Secure cookie would never come back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

async fn get(herald: &TestApp, cookie: &str, path: &str) -> Response {
    client()
        .get(format!("{}{path}", herald.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn post(herald: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Response {
    client()
        .post(format!("{}{path}", herald.base))
        .header(COOKIE, cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap()
}

/// The session's CSRF token, as every page's sign-out form carries it.
async fn csrf_of(herald: &TestApp, cookie: &str) -> String {
    let page = get(herald, cookie, "/console").await.text().await.unwrap();
    let start = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn is_sign_in_redirect(response: &Response) -> bool {
    response.status() == 303
        && response.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/?next=")
}

#[tokio::test]
async fn every_console_answer_carries_the_security_headers() {
    let herald = TestApp::spawn().await;
    let cookie = sign_in(&herald, TOKEN).await;
    for response in [
        client()
            .get(format!("{}/", herald.base))
            .send()
            .await
            .unwrap(),
        get(&herald, &cookie, "/console").await,
        get(&herald, &cookie, "/console/webhooks").await,
        get(&herald, &cookie, "/console/webhooks/not-an-id").await,
    ] {
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["cache-control"], "no-store");
    }
    // The page names its stylesheet and script; both are served, cached for long.
    let page = get(&herald, &cookie, "/console")
        .await
        .text()
        .await
        .unwrap();
    for prefix in ["/console/assets/console-"] {
        let mut found = 0;
        for piece in page.split('"').filter(|p| p.starts_with(prefix)) {
            let asset = client()
                .get(format!("{}{piece}", herald.base))
                .send()
                .await
                .unwrap();
            assert_eq!(asset.status(), 200, "{piece}");
            assert!(
                asset.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
            found += 1;
        }
        assert_eq!(found, 2, "one stylesheet and one script");
    }
    // No inline script or style attribute for the CSP to block.
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "{page}"
    );
}

#[tokio::test]
async fn signing_in_needs_a_live_token_and_the_console_needs_a_session() {
    let herald = TestApp::spawn().await;
    let refused = client()
        .post(format!("{}/sign-in", herald.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("token", "wrong")]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get(SET_COOKIE).is_none());

    let anonymous = client()
        .get(format!("{}/console/webhooks", herald.base))
        .send()
        .await
        .unwrap();
    assert!(is_sign_in_redirect(&anonymous));
    // A bearer token is an API credential, not a console session.
    let bearer = client()
        .get(format!("{}/console/webhooks", herald.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(is_sign_in_redirect(&bearer));
    // A cookie nobody sealed with this server's key is no session.
    let forged = get(
        &herald,
        "herald_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/console",
    )
    .await;
    assert!(is_sign_in_redirect(&forged));

    let cookie = sign_in(&herald, TOKEN).await;
    assert_eq!(
        get(&herald, &cookie, "/console/webhooks").await.status(),
        200
    );
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let herald = TestApp::spawn().await;
    let response = client()
        .post(format!("{}/sign-in", herald.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body(form(&[("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let herald = TestApp::spawn().await;
    let (status, created) = send(
        herald
            .post("/api/v1/tokens")
            .json(&json!({"name": "person", "scope": "read"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let cookie = sign_in(&herald, created["token"].as_str().unwrap()).await;
    assert_eq!(
        get(&herald, &cookie, "/console/webhooks").await.status(),
        200
    );
    let path = format!("/api/v1/tokens/{}", created["id"].as_str().unwrap());
    let (status, _) = send(herald.request(reqwest::Method::DELETE, &path)).await;
    assert_eq!(status, 204);
    assert!(is_sign_in_redirect(
        &get(&herald, &cookie, "/console/webhooks").await
    ));
}

/// A webhook form as the console's page sends it, with `csrf`.
fn fields(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf", csrf),
        ("name", "from-a-form"),
        ("url", "http://127.0.0.1:9/hook"),
        ("event_type", "build:finished"),
        ("enabled", "true"),
    ]
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_change_nothing() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("build:finished").await;
    let cookie = sign_in(&herald, TOKEN).await;
    for csrf in ["", "forged-token"] {
        let response = post(&herald, &cookie, "/console/webhooks", &fields(csrf)).await;
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
    }
    // Another session's token is no good either.
    let other = sign_in(&herald, TOKEN).await;
    let others_csrf = csrf_of(&herald, &other).await;
    let response = post(&herald, &cookie, "/console/webhooks", &fields(&others_csrf)).await;
    assert_eq!(response.status(), 403);
    assert!(herald.webhooks().await.is_empty(), "nothing was created");

    let csrf = csrf_of(&herald, &cookie).await;
    let response = post(&herald, &cookie, "/console/webhooks", &fields(&csrf)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(herald.webhooks().await.len(), 1);
    // Signing out is a form too.
    assert_eq!(post(&herald, &cookie, "/sign-out", &[]).await.status(), 403);
}

#[tokio::test]
async fn user_supplied_text_is_escaped() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("build:finished").await;
    let name = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let created = herald
        .create_webhook(json!({
            "name": name, "url": "http://127.0.0.1:9/x?a=<b>", "event_types": ["build:finished"]
        }))
        .await;
    let cookie = sign_in(&herald, TOKEN).await;
    let id = created["id"].as_str().unwrap();
    for path in [
        "/console/webhooks".to_owned(),
        format!("/console/webhooks/{id}"),
    ] {
        let page = get(&herald, &cookie, &path).await.text().await.unwrap();
        assert!(!page.contains("<script>alert"), "{path}: {page}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_read_session_is_refused_changes_and_secrets_by_the_server() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("build:finished").await;
    let created = herald
        .create_webhook(
            json!({"name": "h", "url": "http://127.0.0.1:9/", "event_types": ["build:finished"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, token) = send(
        herald
            .post("/api/v1/tokens")
            .json(&json!({"name": "reader", "scope": "read"})),
    )
    .await;
    let cookie = sign_in(&herald, token["token"].as_str().unwrap()).await;
    let csrf = csrf_of(&herald, &cookie).await;
    for path in [
        format!("/console/webhooks/{id}/delete"),
        format!("/console/webhooks/{id}/secret"),
        format!("/console/webhooks/{id}/test"),
        "/console/tokens".to_owned(),
    ] {
        let response = post(&herald, &cookie, &path, &[("csrf", &csrf)]).await;
        assert_eq!(response.status(), 403, "{path}");
    }
    assert_eq!(get(&herald, &cookie, "/console/tokens").await.status(), 403);
    assert_eq!(herald.webhooks().await.len(), 1);
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_herald_is_served_over_https() {
    let herald = TestApp::spawn_with(|config| {
        config.app.external_url = "https://herald.example.com".to_owned();
    })
    .await;
    let response = client()
        .post(format!("{}/sign-in", herald.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn the_delivery_log_pages_through_the_applications_cursor_and_filters_by_status() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("build:finished").await;
    // An endpoint nothing listens on: every delivery fails at its one attempt.
    let created = herald
        .create_webhook(
            json!({"name": "h", "url": "http://127.0.0.1:9/", "event_types": ["build:finished"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    for n in 0..55 {
        herald
            .publish(json!({"type": "build:finished", "payload": {"n": n}}))
            .await;
    }
    let cookie = sign_in(&herald, TOKEN).await;
    let rows = |page: &str| page.matches("href=\"/console/deliveries/").count();
    let first = get(&herald, &cookie, &format!("/console/webhooks/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&first), 50, "the first page");
    assert!(first.contains("rel=\"next\""), "a link to older deliveries");
    let start = first.find("?cursor=").unwrap();
    let next: String = first[start..].chars().take_while(|c| *c != '"').collect();
    let second = get(&herald, &cookie, &format!("/console/webhooks/{id}{next}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&second), 5, "the rest");
    assert!(!second.contains("rel=\"next\""), "the last page");
    // Only the first page refreshes itself.
    assert!(first.contains("data-refresh") && !second.contains("data-refresh=\""));
    let succeeded = get(
        &herald,
        &cookie,
        &format!("/console/webhooks/{id}?status=succeeded"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(rows(&succeeded), 0);
    assert!(succeeded.contains("No deliveries match."));
}

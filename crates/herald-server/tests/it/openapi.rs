use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{TestApp, send};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json")
}

/// The committed `openapi.json` must match the code. To regenerate it:
/// `HERALD_BLESS=1 cargo test -p herald-server openapi`.
#[test]
fn openapi_json_is_current() {
    let generated = herald_server::openapi_json();
    let path = committed_path();
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale; regenerate it with `HERALD_BLESS=1 cargo test -p herald-server openapi` and commit it",
        path.display()
    );
}

#[tokio::test]
async fn the_served_document_describes_every_route() {
    let herald = TestApp::spawn().await;
    let (status, document) = send(herald.get("/api/openapi.json")).await;
    assert_eq!(status, 200);
    let generated: Value = serde_json::from_str(&herald_server::openapi_json()).unwrap();
    assert_eq!(document, generated);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/api/v1/webhooks", ["get", "post"].as_slice()),
        ("/api/v1/webhooks/{id}", &["get", "patch", "delete"]),
        ("/api/v1/webhooks/{id}/secret", &["get"]),
        ("/api/v1/webhooks/{id}/test", &["post"]),
        ("/api/v1/webhooks/{id}/recover", &["post"]),
        ("/api/v1/webhooks/{id}/deliveries", &["get"]),
        ("/api/v1/events", &["post"]),
        ("/api/v1/event-types", &["get", "post"]),
        ("/api/v1/event-types/{key}", &["get", "put", "delete"]),
        ("/api/v1/deliveries/{id}", &["get"]),
        ("/api/v1/deliveries/{id}/redeliver", &["post"]),
        ("/api/v1/receivers", &["get", "post"]),
        ("/api/v1/receivers/{id}", &["get", "patch", "delete"]),
        ("/api/v1/receivers/{id}/rotate-secret", &["post"]),
        ("/api/v1/receivers/{id}/requests", &["get"]),
        ("/api/v1/receivers/{id}/requests/{request_id}", &["get"]),
        ("/.api/webhooks/{id}", &["post"]),
        ("/api/v1/repositories", &["get", "post"]),
        ("/api/v1/repositories/{id}", &["get", "patch", "delete"]),
        ("/api/v1/repositories/{id}/fetch", &["post"]),
        ("/api/v1/monitors", &["get", "post"]),
        ("/api/v1/monitors/{id}", &["get", "patch", "delete"]),
        ("/api/v1/monitors/{id}/test", &["post"]),
        ("/api/v1/monitors/{id}/run", &["post"]),
        ("/api/v1/monitors/{id}/runs", &["get"]),
        ("/api/v1/tokens", &["get", "post"]),
        ("/api/v1/tokens/{id}", &["delete"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/api/openapi.json", &["get"]),
    ];
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, methods) in expected {
        for method in methods {
            assert!(
                paths[path].get(*method).is_some(),
                "{method} {path} is not documented"
            );
        }
    }
    assert_eq!(
        document["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    assert_eq!(
        paths["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
    assert_eq!(
        paths["/.api/webhooks/{id}"]["post"]["security"],
        serde_json::json!([{}]),
        "code hosts send no bearer token"
    );
}

//! The console's one stylesheet and one script, embedded in the binary and
//! served with a long cache lifetime. Their paths carry a digest of their
//! content, so a new build's pages load the new files at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

pub static STYLESHEET_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/console/assets/console-{}.css", digest(STYLESHEET)));
pub static SCRIPT_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/console/assets/console-{}.js", digest(SCRIPT)));

/// The first 8 bytes of an HMAC-SHA256 of the content under a fixed label, as hex.
fn digest(content: &str) -> String {
    let hash = herald_core::signing::hmac_sha256(b"herald console asset", &[content.as_bytes()]);
    hash.iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `GET /console/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let path = format!("/console/assets/{file}");
    let (content, content_type) = if path == *STYLESHEET_PATH {
        (STYLESHEET, "text/css; charset=utf-8")
    } else if path == *SCRIPT_PATH {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        content,
    )
        .into_response()
}

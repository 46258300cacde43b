//! What every request gets on its way through: a request id (the caller's
//! `x-request-id` when it is a sane value, else a fresh one), returned in the
//! response's `x-request-id` and carried as the `request_id` field of a span
//! that every log line about the request sits in; the HTTP metrics,
//! labelled by route template (never the path itself, whose ids are unbounded);
//! and, at `debug`, a line for each request answered.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

use crate::metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 128;

/// The route label of a request no route matched: one value for them all.
const UNMATCHED: &str = "unmatched";

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let answered = async move {
        let response = next.run(request).await;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        metrics::record_request(&route, method.as_str(), status, elapsed);
        let elapsed_ms = elapsed.as_secs_f64() * 1e3;
        tracing::debug!(%method, route, status, elapsed_ms, "request answered");
        response
    };
    let mut response = answered.instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The caller's id if it is 1 to 128 characters of letters, digits and
/// `-_.:` (safe in a header and a log line), else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

fn is_sane(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken_from_the_caller() {
        assert!(is_sane("req-42_a.b:c"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane(&"x".repeat(129)));
    }
}

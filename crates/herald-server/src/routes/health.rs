//! `GET /healthz` (public): is the store answering? `GET /readyz` (public):
//! should this node get traffic? `GET /metrics` (the `read` scope): the
//! Prometheus exposition.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::metrics;
use crate::routes::Routes;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Public, routes!(healthz))
        .add(Access::Public, routes!(readyz))
        .add(Access::Read, routes!(prometheus_metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[utoipa::path(
    get, path = "/healthz", tag = "health",
    security(()),
    responses(
        (status = 200, description = "The server and its store answer", body = Health),
        (status = 503, description = "The store does not answer", body = ErrorBody),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.app().check_health().await?;
    Ok(Json(Health { status: "ok" }))
}

#[utoipa::path(
    get, path = "/readyz", tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready: the store answers, its schema is this build's and its key check is this node's key's", body = Health),
        (status = 503, description = "Not ready, and why", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.app().check_readiness().await?;
    Ok(Json(Health { status: "ok" }))
}

#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Every metric in the Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token lacks the `read` scope", body = ErrorBody),
        (status = 404, description = "Metrics are switched off on this node (`[metrics] enabled = false`): `metrics_off`", body = ErrorBody),
    )
)]
pub async fn prometheus_metrics(State(state): State<AppState>) -> Response {
    exposition(&state).await
}

/// The gauges refreshed from the store, then every metric as text.
pub async fn exposition(state: &AppState) -> Response {
    state.app().refresh_gauges().await;
    let Some(text) = metrics::render() else {
        return ApiError::metrics_off().into_response();
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
    response
}

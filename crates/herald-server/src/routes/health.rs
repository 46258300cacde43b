//! `GET /healthz` (no token): is the store answering?

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

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
pub async fn healthz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    match app.store.next_due_at().await {
        Ok(_) => Ok(Json(Health { status: "ok" })),
        Err(error) => {
            tracing::warn!(%error, "health check: the store did not answer");
            Err(ApiError::unavailable("the store is not answering"))
        }
    }
}

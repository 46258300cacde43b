//! `GET /healthz` (public): is the store answering?

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new().add(Access::Public, routes!(healthz))
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

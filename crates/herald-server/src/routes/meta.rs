//! `GET /api/openapi.json` (public): the API's description is no secret, and
//! tools load it before anyone has a token.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use crate::auth::Access;
use crate::openapi::openapi_json;
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new().add(Access::Public, routes!(openapi_document))
}

#[utoipa::path(
    get, path = "/api/openapi.json", tag = "meta",
    security(()),
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"),
    )
)]
pub async fn openapi_document() -> Response {
    let mut response = openapi_json().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

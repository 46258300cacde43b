//! `POST /.api/webhooks/{id}`: where code hosts send their webhooks. No bearer
//! token: the request proves itself with the receiver's secret.
//!
//! The work (verify, identify, normalize, store, log) is
//! [`herald_app::App::ingest`]'s. Here: the receiver id from the path, the body
//! read from the connection up to 25 MiB (only once the receiver is found), and
//! the answer as a status and JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_app::receivers::{IngestAnswer, MAX_INCOMING_BODY_BYTES, UnreadBody};
use herald_core::id::EventId;
use herald_store::{ReceiverId, ReceiverRequestId, ReceiverRequestSummary};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;
use crate::routes::receivers::Outcome;

pub fn router() -> Routes {
    Routes::new().add(Access::Public, routes!(receive))
}

/// Herald's answer to a code host.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The request's id in the receiver's log.
    #[schema(value_type = String, format = Uuid)]
    pub request_id: ReceiverRequestId,
    pub outcome: Outcome,
    /// The events published (none for a duplicate, a ping or an ignored event).
    pub event_ids: Vec<EventId>,
}

impl From<ReceiverRequestSummary> for Accepted {
    fn from(logged: ReceiverRequestSummary) -> Self {
        Self {
            request_id: logged.id,
            outcome: logged.outcome.into(),
            event_ids: logged.event_ids,
        }
    }
}

#[utoipa::path(
    post, path = "/.api/webhooks/{id}", tag = "incoming",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id, from its `url`")),
    request_body(content = Value, description = "The code host's webhook payload, as it sends it", content_type = "application/json"),
    security(()),
    responses(
        (status = 200, description = "Verified and logged: processed (its events published), a duplicate delivery id (not processed again), a ping, or an event kind Herald ignores", body = Accepted),
        (status = 204, description = "GitLab only: an event kind Herald ignores, so that GitLab does not retry it"),
        (status = 400, description = "Malformed receiver id, or a verified payload Herald cannot read", body = ErrorBody),
        (status = 401, description = "The signature, token or basic auth does not match the receiver's; logged as unverified, nothing else happens", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
        (status = 413, description = "The body is over 25 MiB", body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id: ReceiverId = raw_id.parse().map_err(|_| ApiError::invalid_id(&raw_id))?;
    let answer = state.app().ingest(id, &headers, read_body(body)).await?;
    Ok(match answer {
        IngestAnswer::Logged(logged) => {
            (StatusCode::OK, Json(Accepted::from(logged))).into_response()
        }
        IngestAnswer::NoContent => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn read_body(body: Body) -> Result<Vec<u8>, UnreadBody> {
    match Limited::new(body, MAX_INCOMING_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes().into()),
        Err(error) if error.is::<LengthLimitError>() => Err(UnreadBody::TooLarge),
        Err(error) => Err(UnreadBody::Broken(error.to_string())),
    }
}

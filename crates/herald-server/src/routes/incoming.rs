//! `POST /.api/webhooks/{id}`: where code hosts send their webhooks. No bearer
//! token: the request proves itself with the receiver's secret.
//!
//! The work (verify, identify, normalize, store, log, and what unverified
//! bodies may hold) is [`herald_app::App::ingest`]'s. Here: the receiver id
//! from the path, the body as a [`BodySource`] that reads the connection piece
//! by piece under one deadline for the whole body, and the answer as a status
//! and JSON.

use axum::Json;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_app::receivers::{BodySource, IngestAnswer, UnreadBody};
use herald_core::id::EventId;
use herald_store::{ReceiverId, ReceiverRequestId, ReceiverRequestSummary};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::time::Instant;
use tower_http::timeout::TimeoutError;
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
        (status = 408, description = "The body did not arrive within the body read timeout", body = ErrorBody),
        (status = 413, description = "The body is over 25 MiB", body = ErrorBody),
        (status = 429, description = "The receiver is already reading as many unverified bodies as it may; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "The node holds as many unverified bytes as its budget allows; retry after `Retry-After` seconds", body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id: ReceiverId = raw_id.parse().map_err(|_| ApiError::invalid_id(&raw_id))?;
    let body = Incoming {
        announced: announced_len(&headers),
        body,
        deadline: Instant::now() + state.body_read_timeout,
    };
    let answer = state.app().ingest(id, &headers, body).await?;
    Ok(match answer {
        IngestAnswer::Logged(logged) => {
            (StatusCode::OK, Json(Accepted::from(logged))).into_response()
        }
        IngestAnswer::NoContent => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The request body off the connection. The whole body must arrive by
/// `deadline`: the router's body timeout bounds only the pause between
/// pieces, which a client trickling a byte at a time never exceeds.
struct Incoming {
    announced: Option<u64>,
    body: Body,
    deadline: Instant,
}

impl BodySource for Incoming {
    type Chunk = Bytes;

    fn announced_len(&self) -> Option<u64> {
        self.announced
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, UnreadBody> {
        loop {
            let frame = tokio::time::timeout_at(self.deadline, self.body.frame())
                .await
                .map_err(|_| UnreadBody::TimedOut)?;
            match frame {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(error)) if is_timeout(&error) => return Err(UnreadBody::TimedOut),
                Some(Err(error)) => return Err(UnreadBody::Broken(error.to_string())),
            }
        }
    }
}

fn is_timeout(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<TimeoutError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The `Content-Length` the client announced, when it is a number.
fn announced_len(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

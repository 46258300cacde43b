//! `POST /.api/webhooks/{id}`: where code hosts send their webhooks. No bearer
//! token: the request proves itself with the receiver's secret.
//!
//! The order matters: find the receiver (400, 404), read the body up to 25 MiB
//! (413), verify it over the raw bytes before anything parses it (401), then
//! identify, normalize and hand the work to the store in one transaction with
//! the log row. Every request that reached a receiver is logged, whatever its
//! answer; an answer other than 5xx is sent only after the log row is durable.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_core::id::EventId;
use herald_core::time::Timestamp;
use herald_ingest::{
    CodeHostKind, IngestError, KeyUsed, Normalized, Verified, identify, ignored_status, normalize,
    redact_headers, verify,
};
use herald_store::{
    Ingest, IngestOutcome, NewReceiverRequest, ReceiverId, ReceiverRecord, ReceiverRequestId,
    ReceiverRequestSummary, RequestOutcome,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;
use crate::routes::receivers::{Outcome, receivers, stored_kind};
use herald_app::receivers::{MAX_INCOMING_BODY_BYTES, credentials, plan};
use utoipa_axum::routes;

pub fn router() -> Routes {
    Routes::new().add(Access::Public, routes!(receive))
}

/// How much of an unverified body the log keeps: enough to debug a
/// misconfigured secret, too little for strangers to fill the disk with.
pub const UNVERIFIED_BODY_KEPT: usize = 64 * 1024;

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

/// What the handler knows about a request so far, for its log row.
struct Received {
    receiver_id: ReceiverId,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Received {
    fn log(
        &self,
        outcome: RequestOutcome,
        status: StatusCode,
        verification: String,
    ) -> NewReceiverRequest {
        NewReceiverRequest {
            id: ReceiverRequestId::new(),
            receiver_id: self.receiver_id,
            headers: self.headers.clone(),
            body: self.body.to_vec(),
            body_truncated: false,
            verified: false,
            verification,
            status_code: status.as_u16(),
            event_name: None,
            delivery_id: None,
            outcome,
            message: None,
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
    State(app): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id: ReceiverId = raw_id.parse().map_err(|_| ApiError::invalid_id(&raw_id))?;
    let store = receivers(&app)?;
    let record = store
        .get_receiver(id)
        .await?
        .ok_or_else(|| ApiError::not_found("receiver", id))?;
    let kind = stored_kind(&record)?;
    let mut received = Received {
        receiver_id: id,
        headers: redact_headers(kind, &headers),
        body: Bytes::new(),
    };
    received.body = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refuse_unread(&app, &received, refusal).await,
    };
    let creds = credentials::for_verification(app.app().cipher(), &record, Timestamp::now())?;
    let verified = match verify(kind, &creds, &headers, &received.body) {
        Ok(verified) => verified,
        Err(error) => {
            let mut log = received.log(
                RequestOutcome::Unverified,
                StatusCode::UNAUTHORIZED,
                error.to_string(),
            );
            keep_start_of_body(&mut log);
            store.record_request(log).await?;
            return Err(ApiError::unverified(format!(
                "{error}; the request was logged and ignored"
            )));
        }
    };
    let mut log = received.log(
        RequestOutcome::Processed,
        StatusCode::OK,
        describe(verified),
    );
    log.verified = true;
    process(&app, &record, kind, &headers, log).await
}

/// Identifies and normalizes a verified request, and stores its work.
async fn process(
    app: &AppState,
    record: &ReceiverRecord,
    kind: CodeHostKind,
    headers: &HeaderMap,
    mut log: NewReceiverRequest,
) -> Result<Response, ApiError> {
    let store = receivers(app)?;
    let normalized = identify(kind, headers, &log.body).and_then(|incoming| {
        log.event_name = Some(incoming.event_name.clone());
        log.delivery_id = incoming.delivery_id;
        normalize(kind, &record.urn, &incoming.event_name, &log.body)
    });
    let normalized = match normalized {
        Ok(normalized) => normalized,
        Err(error) => return refuse_payload(app, log, error).await,
    };
    let work = match normalized {
        Normalized::Ping => {
            log.outcome = RequestOutcome::Ping;
            return Ok(answer(store.record_request(log).await?));
        }
        Normalized::Ignored { reason } => {
            let status = ignored_status(kind);
            log.outcome = RequestOutcome::Ignored;
            log.status_code = status;
            log.message = Some(reason);
            let logged = store.record_request(log).await?;
            if status == StatusCode::NO_CONTENT.as_u16() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            return Ok(answer(logged));
        }
        Normalized::Push(pushes) => Ingest {
            events: plan::push_events(&app.app().catalogue().current(), record.id, &pushes)
                .map_err(|e| ApiError::internal("a normalized push was refused", &e))?,
            request: log,
            changesets: None,
        },
        Normalized::Changeset(observation) => Ingest {
            request: log,
            events: Vec::new(),
            changesets: Some(plan::changeset_work(
                app.app().catalogue().current(),
                record.id,
                observation,
            )),
        },
    };
    app.notify_monitors(&work.events);
    let outcome: IngestOutcome = store.ingest(work).await?;
    if outcome.deliveries > 0 {
        app.app().engine().wake();
    }
    Ok(answer(outcome.request))
}

fn answer(logged: ReceiverRequestSummary) -> Response {
    let status = StatusCode::from_u16(logged.status_code).unwrap_or(StatusCode::OK);
    let body = Accepted {
        request_id: logged.id,
        outcome: logged.outcome.into(),
        event_ids: logged.event_ids,
    };
    (status, Json(body)).into_response()
}

/// `hmac_sha256 (current secret)`, for the log.
fn describe(verified: Verified) -> String {
    let method = serde_json::to_value(verified.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match verified.key {
        Some(KeyUsed::Current) => format!("{method} (current secret)"),
        Some(KeyUsed::Previous) => format!("{method} (previous secret, in its grace period)"),
        None => method,
    }
}

fn keep_start_of_body(log: &mut NewReceiverRequest) {
    if log.body.len() > UNVERIFIED_BODY_KEPT {
        log.body.truncate(UNVERIFIED_BODY_KEPT);
        log.body_truncated = true;
    }
}

/// Why a body could not be read.
enum Unread {
    TooLarge,
    Broken(String),
}

async fn read_body(body: Body) -> Result<Bytes, Unread> {
    match Limited::new(body, MAX_INCOMING_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(Unread::TooLarge),
        Err(error) => Err(Unread::Broken(error.to_string())),
    }
}

/// Logs a request whose body could not be read, and answers it.
async fn refuse_unread(
    app: &AppState,
    received: &Received,
    unread: Unread,
) -> Result<Response, ApiError> {
    let (outcome, status, error, note) = match unread {
        Unread::TooLarge => {
            let limit = MAX_INCOMING_BODY_BYTES / (1024 * 1024);
            (
                RequestOutcome::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::payload_too_large(format!(
                    "the body is over {limit} MiB, the most a receiver accepts"
                )),
                format!("not checked: the body is over {limit} MiB"),
            )
        }
        Unread::Broken(reason) => (
            RequestOutcome::Invalid,
            StatusCode::BAD_REQUEST,
            ApiError::unreadable_body(format!("the request body could not be read: {reason}")),
            "not checked: the body could not be read".to_owned(),
        ),
    };
    let mut log = received.log(outcome, status, note);
    log.body_truncated = true;
    receivers(app)?.record_request(log).await?;
    Err(error)
}

/// Logs a verified request whose payload could not be read, and answers 400.
async fn refuse_payload(
    app: &AppState,
    mut log: NewReceiverRequest,
    error: IngestError,
) -> Result<Response, ApiError> {
    log.outcome = RequestOutcome::Invalid;
    log.status_code = StatusCode::BAD_REQUEST.as_u16();
    log.message = Some(error.to_string());
    receivers(app)?.record_request(log).await?;
    Err(match error {
        IngestError::Json(_) => ApiError::invalid_json(format!("{error}")),
        other => ApiError::invalid_payload(other.to_string()),
    })
}

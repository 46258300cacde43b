//! The delivery log: a webhook's deliveries, one delivery with its attempts, and
//! redelivery.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{AttemptRecord, DeliveryRecord, DeliveryStatus, EventRecord};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, IdPath};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::ReadWebhooks, routes!(list_deliveries))
        .add(Access::ReadWebhooks, routes!(get_delivery))
        .add(Access::ManageWebhooks, routes!(redeliver))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

impl From<DeliveryStatus> for Status {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// One (event, webhook) pair: the unit that is attempted and retried.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    pub status: Status,
    /// Attempts made so far.
    pub attempts: u32,
    /// For a pending delivery: when the next attempt is due; null while it
    /// waits behind an earlier delivery of its ordering key.
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&DeliveryRecord> for Delivery {
    fn from(record: &DeliveryRecord) -> Self {
        Self {
            id: record.id,
            event_id: record.event_id,
            webhook_id: record.webhook_id,
            event_type: record.event_type.clone(),
            status: record.status.into(),
            attempts: record.attempts,
            next_attempt_at: record.next_attempt_at,
            last_status_code: record.last_status_code,
            last_error: record.last_error.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<DeliveryId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub project: Option<String>,
    /// The payload exactly as published.
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    pub properties: BTreeMap<String, String>,
    /// The key its deliveries are ordered by on webhooks ordered by key.
    pub ordering_key: Option<String>,
    pub created_at: Timestamp,
}

impl Event {
    fn from_record(record: EventRecord) -> Result<Self, ApiError> {
        let text = String::from_utf8(record.payload)
            .map_err(|e| ApiError::internal("a stored payload is not UTF-8", &e))?;
        let payload = RawValue::from_string(text)
            .map_err(|e| ApiError::internal("a stored payload is not JSON", &e))?;
        Ok(Self {
            id: record.id,
            event_type: record.event_type,
            project: record.project,
            payload,
            properties: record.properties,
            ordering_key: record.ordering_key,
            created_at: record.created_at,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
}

fn headers(pairs: Vec<(String, String)>) -> Vec<Header> {
    pairs
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect()
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub id: AttemptId,
    /// 1 for the delivery's first attempt.
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u32,
    /// With credentials obscured.
    pub request_url: String,
    /// As sent, with secrets redacted.
    pub request_headers: Vec<Header>,
    /// Null when no response came (see `error`).
    pub response_status: Option<u16>,
    pub response_headers: Vec<Header>,
    /// The start of the response body (16 KiB by default).
    pub response_body: Option<String>,
    /// Why no response came: refused address, timeout, connection error.
    pub error: Option<String>,
}

impl From<AttemptRecord> for Attempt {
    fn from(record: AttemptRecord) -> Self {
        Self {
            id: record.id,
            number: record.number,
            started_at: record.started_at,
            duration_ms: record.duration_ms,
            request_url: record.request_url,
            request_headers: headers(record.request_headers),
            response_status: record.response_status,
            response_headers: headers(record.response_headers),
            response_body: record.response_body,
            error: record.error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub event: Event,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// Filters and paging of a webhook's delivery log. Values are parsed here rather
/// than by serde so that each error names its parameter and rule.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Created at or after this RFC 3339 instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Created before this RFC 3339 instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>, format = Uuid)]
    pub cursor: Option<String>,
    /// Page size, 1 to 250; 50 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
}

impl From<DeliveryFilter> for herald_app::deliveries::DeliveryFilter {
    fn from(filter: DeliveryFilter) -> Self {
        Self {
            status: filter.status,
            since: filter.since,
            until: filter.until,
            cursor: filter.cursor,
            limit: filter.limit,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "deliveries",
    params(("id" = WebhookId, Path, description = "The webhook's id"), DeliveryFilter),
    responses(
        (status = 200, description = "The webhook's deliveries, newest first", body = DeliveryPage),
        (status = 400, description = "Malformed id or query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let page = state.app().list_deliveries(&by, id, filter.into()).await?;
    Ok(Json(DeliveryPage {
        items: page.items.iter().map(Delivery::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = DeliveryId, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery, its event and every attempt", body = DeliveryDetail),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    )
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<DeliveryId>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let detail = state.app().delivery(&by, id).await?;
    Ok(Json(DeliveryDetail {
        delivery: Delivery::from(&detail.delivery),
        event: Event::from_record(detail.event)?,
        attempts: detail.attempts.into_iter().map(Attempt::from).collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/deliveries/{id}/redeliver", tag = "deliveries",
    params(("id" = DeliveryId, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Queued for another attempt now, with a fresh retry schedule (left as it is while an attempt is in flight)", body = Delivery),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "The delivery's webhook is disabled", body = ErrorBody),
    )
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<DeliveryId>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let record = state.app().redeliver(&by, id).await?;
    Ok((StatusCode::ACCEPTED, Json(Delivery::from(&record))))
}

//! `POST /api/v1/events`: publish an event to every matching webhook.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_app::Limits;
use herald_app::events::EventInput;
use herald_core::id::EventId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::Routes;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that repeats an earlier publish with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Room for an event's type, project and properties around its payload, which
/// alone is held to `max_payload_bytes`.
const EVENT_ENVELOPE_ALLOWANCE: usize = 64 * 1024;

pub fn router(limits: &Limits) -> Routes {
    let body_limit = limits
        .max_payload_bytes
        .saturating_add(EVENT_ENVELOPE_ALLOWANCE);
    let (schemas, paths, method_router) = routes!(publish_event);
    let limited = method_router.layer(DefaultBodyLimit::max(body_limit));
    Routes::new().add(Access::Publish, (schemas, paths, limited))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// The event type, 1 to 100 of `A-Z a-z 0-9 _ - . :`, e.g. `changeset:update`;
    /// one of the catalogue's (`GET /api/v1/event-types`), not `herald:*`.
    /// Which types exist, and so which payloads match, is the live catalogue's
    /// to say: an unknown type or a payload its schema refuses is a 422.
    #[serde(rename = "type")]
    #[schema(example = "changeset:update")]
    pub event_type: String,
    /// The project the event belongs to: it goes to this project's webhooks and the
    /// global ones. Omitted or null: global webhooks only.
    #[serde(default)]
    pub project: Option<String>,
    /// A JSON object or array matching the type's schema, sent byte for byte as
    /// the request body (for `sonarqube:analysis`, after merging the
    /// `sonar.analysis.*` properties into its `properties`).
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    /// Free string properties kept with the event. For `sonarqube:analysis`, those
    /// named `sonar.analysis.*` are also merged into the payload's `properties`,
    /// as SonarQube does with the scanner's parameters.
    #[serde(default)]
    pub properties: Option<BTreeMap<String, String>>,
    /// 1 to 255 characters, no control characters or surrounding spaces, e.g.
    /// the repository or the changeset the event is about. Each webhook
    /// created with `"ordering": "key"` gets the events with the same key one
    /// at a time, in publish order (publishes that overlap in time have no
    /// order between them: publish a key's next event after the `202`). A
    /// failing delivery holds back only its own key. Omitted or null: the
    /// event is never held back.
    #[serde(default)]
    #[schema(example = "acme/app")]
    pub ordering_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub id: EventId,
    /// How many deliveries the event created (one per matching enabled webhook).
    pub deliveries: u32,
}

#[utoipa::path(
    post, path = "/api/v1/events", tag = "events",
    request_body = PublishEvent,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 255 visible ASCII characters. A publish repeated with the same key (within 24 h) answers as the first did and creates nothing.")),
    responses(
        (status = 202, description = "The event and its deliveries are committed; delivery goes on in the background. A replayed key also sets `Idempotent-Replayed: true`.", body = Published,
            headers(("Idempotent-Replayed" = String, description = "`true` when this repeats an earlier answer"))),
        (status = 400, description = "Invalid JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 413, description = "The payload is larger than the server's limit (1 MiB by default)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown (`invalid_field`, `unknown_field`, `missing_field`); the type is not in the catalogue (`unknown_event_type`, with the nearest known types in `suggestions`) or is one of Herald's own `herald:*` types; or the payload does not match the type's schema (`schema_violation`, with the JSON Pointer of the first offending value in `pointer` and the broken rule in `rule`)", body = ErrorBody),
    )
)]
pub async fn publish_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PublishEvent>,
) -> Result<Response, ApiError> {
    let input = EventInput {
        event_type: request.event_type,
        project: request.project,
        payload: request.payload.get().to_owned(),
        properties: request.properties.unwrap_or_default(),
        ordering_key: request.ordering_key,
        idempotency_key: headers.get(IDEMPOTENCY_KEY).map(|v| v.as_bytes().to_vec()),
    };
    let published = state.app().publish(input).await?;
    let body = Json(Published {
        id: published.event_id,
        deliveries: published.deliveries,
    });
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    if published.replayed {
        response.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

//! `POST /api/v1/events`: publish an event to every matching webhook.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_catalogue::keys::HERALD_PREFIX;
use herald_catalogue::{PayloadError, prepare_payload};
use herald_core::event_type::validate_type_name;
use herald_core::id::EventId;
use herald_core::validation::FieldError;
use herald_core::webhook::validate_project;
use herald_store::NewEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that repeats an earlier publish with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// The event type, 1 to 100 of `A-Z a-z 0-9 _ - . :`, e.g. `changeset:update`;
    /// one of the catalogue's (`GET /api/v1/event-types`), not `herald:*`.
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub id: EventId,
    /// How many deliveries the event created (one per matching enabled webhook).
    pub deliveries: u32,
}

impl PublishEvent {
    fn validate(self) -> Result<NewEvent, FieldError> {
        validate_type_name("type", &self.event_type)?;
        let project = validate_project(self.project.as_deref())?;
        let properties = self.properties.unwrap_or_default();
        if properties.keys().any(String::is_empty) {
            return Err(FieldError::new(
                "properties",
                "property names may not be empty",
            ));
        }
        let payload = self.payload.get();
        if !(payload.starts_with('{') || payload.starts_with('[')) {
            return Err(FieldError::new("payload", "must be a JSON object or array"));
        }
        Ok(NewEvent {
            id: EventId::new(),
            event_type: self.event_type,
            project,
            payload: payload.as_bytes().to_vec(),
            properties,
        })
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let visible = bytes.iter().all(|b| b.is_ascii_graphic());
    if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN || !visible {
        return Err(ApiError::invalid_header(
            "Idempotency-Key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters (no spaces)"
            ),
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Refuses Herald's own types, types the catalogue does not have (after reloading
/// it once: another node may have registered the type), and payloads their
/// type's schema refuses, naming the JSON Pointer and the rule.
async fn check_against_catalogue(app: &AppState, event: &NewEvent) -> Result<(), ApiError> {
    if event.event_type.starts_with(HERALD_PREFIX) {
        return Err(ApiError::invalid_field(FieldError::new(
            "type",
            format!(
                "{:?} is one of Herald's own operational events; only Herald publishes {HERALD_PREFIX}* types",
                event.event_type
            ),
        )));
    }
    let payload: Value = serde_json::from_slice(&event.payload).map_err(|e| {
        ApiError::invalid_field(FieldError::new("payload", format!("is not JSON: {e}")))
    })?;
    let checked = match app
        .catalogue
        .current()
        .validate(&event.event_type, &payload)
    {
        Err(PayloadError::UnknownType { .. }) => app
            .catalogue
            .reload()
            .await?
            .validate(&event.event_type, &payload),
        checked => checked,
    };
    let Err(error) = checked else {
        return Ok(());
    };
    let message = error.to_string();
    Err(match error {
        PayloadError::UnknownType { closest, .. } => ApiError::unknown_event_type(
            "type",
            format!(
                "type: {message}; GET /api/v1/event-types lists the known types, and POST registers one"
            ),
            closest,
        ),
        PayloadError::Invalid { pointer, rule } => ApiError::schema_violation(
            pointer,
            rule,
            format!(
                "payload does not match the schema of {:?}: {message}",
                event.event_type
            ),
        ),
    })
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
        (status = 413, description = "The payload is larger than the server's limit (1 MiB by default)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown (`invalid_field`, `unknown_field`, `missing_field`); the type is not in the catalogue (`unknown_event_type`, with the nearest known types in `suggestions`) or is one of Herald's own `herald:*` types; or the payload does not match the type's schema (`schema_violation`, with the JSON Pointer of the first offending value in `pointer` and the broken rule in `rule`)", body = ErrorBody),
    )
)]
pub async fn publish_event(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PublishEvent>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let payload_len = request.payload.get().len();
    let limit = app.config.max_payload_bytes;
    if payload_len > limit {
        return Err(ApiError::payload_too_large(format!(
            "the payload is {payload_len} bytes; the limit is {limit} bytes"
        )));
    }
    let mut event = request.validate().map_err(ApiError::invalid_field)?;
    check_against_catalogue(&app, &event).await?;
    event.payload = prepare_payload(&event.event_type, &event.payload, &event.properties);
    app.notify_monitors(std::slice::from_ref(&event));
    let published = app.store.publish(event, key).await?;
    if !published.replayed && published.deliveries > 0 {
        app.engine.wake();
    }
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

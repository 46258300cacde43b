//! `/api/v1/event-types`: the catalogue. Lists every type with its schema and
//! example; producers register (POST), replace (PUT) and delete their own types.
//! Built-in types cannot be changed.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use herald_app::event_types::EventTypeInput;
use herald_catalogue::{EventTypeDef, Registration};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Read, routes!(list_event_types))
        .add(Access::Read, routes!(get_event_type))
        .add(Access::Admin, routes!(create_event_type))
        .add(Access::Admin, routes!(replace_event_type))
        .add(Access::Admin, routes!(delete_event_type))
}

/// One event type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventType {
    #[schema(example = "sonarqube:analysis")]
    pub key: String,
    pub description: String,
    /// Decides the native headers deliveries carry: `sourcegraph`
    /// (`X-Sourcegraph-Webhook-*`), `sonarqube` (`X-SonarQube-Project`,
    /// `X-Sonar-Webhook-HMAC-SHA256`), or none for `code_monitor`, `semgrep`,
    /// `code_host`, `herald` and `custom`.
    #[schema(example = "sonarqube")]
    pub family: String,
    /// True for Herald's own types, which cannot be changed or deleted.
    pub builtin: bool,
    /// The JSON Schema (draft 2020-12 unless `$schema` says otherwise) every
    /// published payload of this type must match.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// A payload that matches the schema; the Test button sends it. An object
    /// or an array for the built-in types (`semgrep:findings` is an array).
    #[schema(value_type = Object)]
    pub example: Value,
}

impl From<&EventTypeDef> for EventType {
    fn from(def: &EventTypeDef) -> Self {
        Self {
            key: def.key.clone(),
            description: def.description.clone(),
            family: def.family.as_str().to_owned(),
            builtin: def.builtin,
            schema: def.schema.clone(),
            example: def.example.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    /// Ordered by key.
    pub items: Vec<EventType>,
}

/// A custom event type to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// 1 to 100 of `A-Z a-z 0-9 _ - . :`; not a built-in key, not `herald:…`.
    #[schema(example = "deploy:finished")]
    pub key: String,
    /// At most 1000 characters.
    pub description: String,
    /// `custom` (the default: no native headers), or the product family whose
    /// native headers your receivers expect: `sourcegraph`, `sonarqube`,
    /// `code_monitor`, `semgrep`, `code_host`.
    #[serde(default)]
    pub family: Option<String>,
    /// A JSON Schema for the payload; draft 2020-12 unless `$schema` says
    /// otherwise. Remote `$ref`s are not fetched.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// Any JSON value that `schema` accepts; that it does is checked on
    /// registration (422), which this document cannot state.
    #[schema(value_type = Object)]
    pub example: Value,
}

/// The new definition of a custom event type, replacing the old one whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceEventType {
    /// Optional; when given, it must be the key in the path (422 otherwise).
    #[serde(default)]
    pub key: Option<String>,
    pub description: String,
    /// As for creating; omitted means `custom`.
    #[serde(default)]
    pub family: Option<String>,
    #[schema(value_type = Object)]
    pub schema: Value,
    #[schema(value_type = Object)]
    pub example: Value,
}

/// The `{key}` of the path.
pub struct KeyPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(key)| KeyPath(key))
            .map_err(|rejection| {
                ApiError::invalid_field(FieldError::new("key", rejection.body_text()))
            })
    }
}

fn definition(
    description: String,
    family: Option<String>,
    schema: Value,
    example: Value,
) -> EventTypeInput {
    EventTypeInput {
        description,
        family,
        schema,
        example,
    }
}

/// 201 for a type that is new, 200 for one replaced.
fn registered(def: &EventTypeDef, registration: Registration) -> (StatusCode, Json<EventType>) {
    let status = match registration {
        Registration::Created => StatusCode::CREATED,
        Registration::Replaced => StatusCode::OK,
    };
    (status, Json(EventType::from(def)))
}

#[utoipa::path(
    get, path = "/api/v1/event-types", tag = "event-types",
    responses(
        (status = 200, description = "Every event type, built-in and custom, with its schema and example", body = EventTypeList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
    )
)]
pub async fn list_event_types(State(state): State<AppState>) -> Json<EventTypeList> {
    let catalogue = state.app().event_types();
    Json(EventTypeList {
        items: catalogue.list().map(EventType::from).collect(),
    })
}

#[utoipa::path(
    get, path = "/api/v1/event-types/{key}", tag = "event-types",
    params(("key" = String, Path, description = "The event type's key, e.g. `changeset:update`")),
    responses(
        (status = 200, description = "The event type", body = EventType),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such event type; `suggestions` lists the nearest keys", body = ErrorBody),
        (status = 422, description = "The key in the path is not UTF-8 once percent-decoded", body = ErrorBody),
    )
)]
pub async fn get_event_type(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
) -> Result<Json<EventType>, ApiError> {
    let def = state.app().event_type(&key).await?;
    Ok(Json(EventType::from(&def)))
}

#[utoipa::path(
    post, path = "/api/v1/event-types", tag = "event-types",
    request_body = CreateEventType,
    responses(
        (status = 201, description = "Registered: events of this type can be published and subscribed to", body = EventType),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 409, description = "The key is built in (`builtin_event_type`) or registered already (`already_exists`; PUT replaces)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule: the key, the family, a schema that does not compile, or an example the schema refuses", body = ErrorBody),
    )
)]
pub async fn create_event_type(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateEventType>,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let input = definition(
        request.description,
        request.family,
        request.schema,
        request.example,
    );
    let def = state.app().create_event_type(request.key, input).await?;
    Ok((StatusCode::CREATED, Json(EventType::from(&def))))
}

#[utoipa::path(
    put, path = "/api/v1/event-types/{key}", tag = "event-types",
    params(("key" = String, Path, description = "The custom event type's key")),
    request_body = ReplaceEventType,
    responses(
        (status = 200, description = "Replaced", body = EventType),
        (status = 201, description = "There was no type of this key: created", body = EventType),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 409, description = "The key is built in: `builtin_event_type`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
    )
)]
pub async fn replace_event_type(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
    ApiJson(request): ApiJson<ReplaceEventType>,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let input = definition(
        request.description,
        request.family,
        request.schema,
        request.example,
    );
    let (def, registration) = state
        .app()
        .put_event_type(key, request.key.as_deref(), input)
        .await?;
    Ok(registered(&def, registration))
}

#[utoipa::path(
    delete, path = "/api/v1/event-types/{key}", tag = "event-types",
    params(("key" = String, Path, description = "The custom event type's key")),
    responses(
        (status = 204, description = "Deleted. Webhooks subscribed to it keep their patterns; publishing it is refused from now on."),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 409, description = "The type is built in and cannot be deleted: `builtin_event_type`", body = ErrorBody),
        (status = 422, description = "The key in the path is not UTF-8 once percent-decoded", body = ErrorBody),
    )
)]
pub async fn delete_event_type(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
) -> Result<StatusCode, ApiError> {
    state.app().delete_event_type(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/api/v1/event-types`: the catalogue. Lists every type with its schema and
//! example; producers register (POST), replace (PUT) and delete their own types.
//! Built-in types cannot be changed.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use herald_catalogue::{
    Catalogue, CatalogueError, CustomType, EventTypeDef, Family, PayloadError, Registration,
};
use herald_core::validation::FieldError;
use herald_delivery::ChangeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

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
    /// A payload that matches the schema; the Test button sends it.
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
    /// A payload that matches `schema`.
    #[schema(value_type = Object)]
    pub example: Value,
}

/// The new definition of a custom event type, replacing the old one whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceEventType {
    /// Optional; when given, it must be the key in the path.
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

fn parse_family(family: Option<&str>) -> Result<Family, ApiError> {
    let Some(name) = family else {
        return Ok(Family::Custom);
    };
    serde_json::from_value(Value::String(name.to_owned())).map_err(|_| {
        ApiError::invalid_field(FieldError::new(
            "family",
            format!(
                "unknown family {name:?}; use custom, sourcegraph, sonarqube, code_monitor, semgrep or code_host"
            ),
        ))
    })
}

fn no_nul(field: &str, text: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        return Err(ApiError::invalid_field(FieldError::new(
            field,
            "may not contain NUL characters",
        )));
    }
    Ok(())
}

impl CreateEventType {
    fn validate(self) -> Result<CustomType, ApiError> {
        no_nul("description", &self.description)?;
        Ok(CustomType {
            family: parse_family(self.family.as_deref())?,
            key: self.key,
            description: self.description,
            schema: self.schema,
            example: self.example,
        })
    }
}

impl ReplaceEventType {
    fn validate(self, key: String) -> Result<CustomType, ApiError> {
        if let Some(given) = self.key.as_deref().filter(|given| *given != key) {
            return Err(ApiError::invalid_field(FieldError::new(
                "key",
                format!(
                    "{given:?} differs from {key:?} in the path; a type cannot be renamed, create a new one"
                ),
            )));
        }
        CreateEventType {
            key,
            description: self.description,
            family: self.family,
            schema: self.schema,
            example: self.example,
        }
        .validate()
    }
}

/// The nearest known keys to `key`, for "did you mean".
pub(crate) fn suggestions(catalogue: &Catalogue, key: &str) -> Vec<String> {
    // `validate` is the catalogue's one door to its suggestions; for a key it
    // does not know it answers with them, whatever the payload.
    match catalogue.validate(key, &Value::Null) {
        Err(PayloadError::UnknownType { closest, .. }) => closest,
        _ => Vec::new(),
    }
}

/// The type of `key`, reloading once from the store if this node does not know
/// it (another node may have registered it).
async fn find(app: &AppState, key: &str) -> Result<EventType, ApiError> {
    if let Some(def) = app.catalogue.current().get(key) {
        return Ok(EventType::from(def));
    }
    let catalogue = app.catalogue.reload().await?;
    match catalogue.get(key) {
        Some(def) => Ok(EventType::from(def)),
        None => Err(ApiError::event_type_not_found(
            key,
            suggestions(&catalogue, key),
        )),
    }
}

fn change_error(error: ChangeError) -> ApiError {
    match error {
        ChangeError::Store(error) => error.into(),
        ChangeError::Refused(error @ CatalogueError::BuiltIn { .. }) => {
            ApiError::event_type_conflict("builtin_event_type", error.to_string())
        }
        ChangeError::Refused(CatalogueError::NotFound { key }) => {
            ApiError::event_type_not_found(&key, Vec::new())
        }
        ChangeError::Refused(error) => {
            let field = error.field();
            ApiError::invalid_field(FieldError::new(field, error.to_string()))
        }
    }
}

async fn put(
    app: &AppState,
    custom: CustomType,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let (def, registration) = app.catalogue.put(custom).await.map_err(change_error)?;
    let status = match registration {
        Registration::Created => StatusCode::CREATED,
        Registration::Replaced => StatusCode::OK,
    };
    Ok((status, Json(EventType::from(&def))))
}

#[utoipa::path(
    get, path = "/api/v1/event-types", tag = "event-types",
    responses(
        (status = 200, description = "Every event type, built-in and custom, with its schema and example", body = EventTypeList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub async fn list_event_types(State(app): State<AppState>) -> Json<EventTypeList> {
    let catalogue = app.catalogue.current();
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
        (status = 404, description = "No such event type; `suggestions` lists the nearest keys", body = ErrorBody),
    )
)]
pub async fn get_event_type(
    State(app): State<AppState>,
    KeyPath(key): KeyPath,
) -> Result<Json<EventType>, ApiError> {
    find(&app, &key).await.map(Json)
}

#[utoipa::path(
    post, path = "/api/v1/event-types", tag = "event-types",
    request_body = CreateEventType,
    responses(
        (status = 201, description = "Registered: events of this type can be published and subscribed to", body = EventType),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "The key is built in (`builtin_event_type`) or registered already (`already_exists`; PUT replaces)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule: the key, the family, a schema that does not compile, or an example the schema refuses", body = ErrorBody),
    )
)]
pub async fn create_event_type(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateEventType>,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let custom = request.validate()?;
    // Registered on another node, or here, since this node last looked.
    let catalogue = app.catalogue.reload().await?;
    if let Some(existing) = catalogue.get(&custom.key) {
        return Err(if existing.builtin {
            change_error(ChangeError::Refused(CatalogueError::BuiltIn {
                key: custom.key,
            }))
        } else {
            ApiError::event_type_conflict(
                "already_exists",
                format!(
                    "key: event type {:?} exists already; PUT /api/v1/event-types/{{key}} replaces it",
                    custom.key
                ),
            )
        });
    }
    put(&app, custom).await
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
        (status = 409, description = "The key is built in: `builtin_event_type`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
    )
)]
pub async fn replace_event_type(
    State(app): State<AppState>,
    KeyPath(key): KeyPath,
    ApiJson(request): ApiJson<ReplaceEventType>,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let custom = request.validate(key)?;
    put(&app, custom).await
}

#[utoipa::path(
    delete, path = "/api/v1/event-types/{key}", tag = "event-types",
    params(("key" = String, Path, description = "The custom event type's key")),
    responses(
        (status = 204, description = "Deleted. Webhooks subscribed to it keep their patterns; publishing it is refused from now on."),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such event type", body = ErrorBody),
        (status = 409, description = "The type is built in and cannot be deleted: `builtin_event_type`", body = ErrorBody),
    )
)]
pub async fn delete_event_type(
    State(app): State<AppState>,
    KeyPath(key): KeyPath,
) -> Result<StatusCode, ApiError> {
    app.catalogue.remove(&key).await.map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT)
}

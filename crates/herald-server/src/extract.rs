//! Extractors that turn every rejection (content type, body size, JSON syntax,
//! unknown or mistyped fields, malformed ids and query strings) into an `ApiError`.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use herald_core::validation::FieldError;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;

use crate::error::ApiError;

/// A JSON object body. Needs `Content-Type: application/json`; the type should
/// use `#[serde(deny_unknown_fields)]` so that typos are refused, not ignored.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        check_shape(&bytes)?;
        // One parse on the way every well-formed request takes; only a body
        // that does not fit is read again, to tell bad JSON from a bad field.
        deserialize(&bytes)
            .map_err(|field_error| check_syntax(&bytes).err().unwrap_or(field_error))
            .map(ApiJson)
    }
}

/// Refuses anything but an object: serde would also fill a struct from an
/// array of its fields in order. What is not JSON at all is told so first.
fn check_shape(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(());
    }
    check_syntax(bytes)?;
    Err(ApiError::invalid_body(
        "the body must be a JSON object, such as {\"name\": ...}",
    ))
}

/// Reports bad JSON as such (with serde's line and column), which takes
/// precedence over a field error found before the syntax error was reached.
fn check_syntax(bytes: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))
}

fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type(
            "the body must be JSON, sent with `Content-Type: application/json`",
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "the body must be JSON, sent with `Content-Type: application/json`; got {:?}",
            value.to_str().unwrap_or("<not text>")
        )))
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::payload_too_large(
            "the request body is larger than this endpoint accepts; send a smaller one",
        );
    }
    ApiError::unreadable_body(format!(
        "the request body could not be read: {}",
        rejection.body_text()
    ))
}

/// Deserializes well-formed JSON, naming the offending field (as a path such as
/// `event_types[1]`) when it does not fit.
fn deserialize<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    // Nothing but whitespace may follow the object.
    deserializer
        .end()
        .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if matches!(
        inner.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return ApiError::invalid_json(format!("the body is not valid JSON: {inner}"));
    }
    let message = inner.to_string();
    // The path of an unknown field ends with the field itself.
    if message.starts_with("unknown field `") {
        return ApiError::unknown_field(&path, format!("{path}: {message}"));
    }
    // The path of a missing field is its parent; serde names the field in the message.
    if let Some(name) = quoted_name(&message, "missing field `") {
        let field = join_path(&path, name);
        return ApiError::missing_field(&field, format!("{field}: {message}"));
    }
    if path == "." {
        return ApiError::invalid_body(format!(
            "the body does not have the expected shape: {message}"
        ));
    }
    ApiError::invalid_field(FieldError::new(path, message))
}

fn quoted_name<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

fn join_path(parent: &str, name: &str) -> String {
    if parent == "." {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// One id from the path, such as `{id}` in `/api/v1/webhooks/{id}`. A malformed
/// id is a 400, so a 404 always means "well-formed but unknown".
pub struct IdPath<T>(pub T);

impl<S: Send + Sync, T: FromStr> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_id(&rejection.body_text()))?;
        raw.parse()
            .map(IdPath)
            .map_err(|_| ApiError::invalid_id(&raw))
    }
}

/// A query string; the type should use `#[serde(deny_unknown_fields)]`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(query_rejection)
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    let message = rejection.body_text();
    let unknown = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split('`').next())
        .map(str::to_owned);
    ApiError::invalid_query(unknown.as_deref(), message)
}

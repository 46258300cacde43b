//! `ApiError`: every failure the API answers with, as `{"code", "message"}` JSON.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_app::{AppError, ErrorKind};
use herald_core::validation::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, snake_case identifier of the rule that was broken.
    #[schema(example = "invalid_field")]
    pub code: &'static str,
    /// What went wrong and what to change.
    pub message: String,
    /// The request field at fault, when one is (a JSON path such as `event_types[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a payload its event type's schema refuses: the JSON Pointer of the first
    /// offending value in the payload (`""` is the whole payload).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/project/key")]
    pub pointer: Option<String>,
    /// For a payload its event type's schema refuses: the schema rule it broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "required field \"key\" is missing")]
    pub rule: Option<String>,
    /// For an unknown event type: the nearest known ones, nearest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
    /// For a code monitor query the parser refuses: the byte offset in the query
    /// where the problem is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// A failure, with the status it answers with. Build it with the constructors below,
/// so each kind of failure keeps one code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Seconds for a `Retry-After` header, for a refusal that passes with time.
    retry_after: Option<u64>,
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, and the body's
    /// optional details would make every such `Result` large.
    body: Box<ErrorBody>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            retry_after: None,
            body: Box::new(ErrorBody {
                code,
                message: message.into(),
                field: None,
                pointer: None,
                rule: None,
                suggestions: Vec::new(),
                position: None,
            }),
        }
    }

    fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// A well-formed request whose field breaks a rule.
    pub fn invalid_field(error: FieldError) -> Self {
        let message = error.to_string();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
            .with_field(error.field)
    }

    /// A body field the endpoint does not know.
    pub fn unknown_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_field", message).with_field(field)
    }

    pub fn missing_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "missing_field", message).with_field(field)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// Well-formed JSON of the wrong shape as a whole (an array for an object).
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
    }

    /// A request target longer than the server reads.
    pub fn uri_too_long(message: impl Into<String>) -> Self {
        Self::new(StatusCode::URI_TOO_LONG, "uri_too_long", message)
    }

    /// More header fields, or more header bytes, than the server reads.
    pub fn headers_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            message,
        )
    }

    pub fn unreadable_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unreadable_body", message)
    }

    pub fn invalid_query(parameter: Option<&str>, message: impl Into<String>) -> Self {
        let error = Self::new(StatusCode::BAD_REQUEST, "invalid_query", message);
        match parameter {
            Some(name) => error.with_field(name),
            None => error,
        }
    }

    pub fn invalid_id(raw: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!(
                "{raw:?} is not an id; ids are UUIDs such as 0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a"
            ),
        )
    }

    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}; see /api/openapi.json for the API"),
        )
    }

    pub fn metrics_off() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "metrics_off",
            "metrics are switched off on this node; set [metrics] enabled = true (the default) to record and serve them",
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not accept {method}; the Allow header lists the methods it does"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token or a live API token as `Authorization: Bearer <token>`",
        )
    }

    /// A failure that is our fault. The cause goes to the log only: it may name
    /// tables, files or keys that callers have no business seeing.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }
}

/// The status every front end of this server answers an error `kind` with.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Malformed => StatusCode::BAD_REQUEST,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unverified => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TimedOut => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let status = status_of(error.kind);
        let details = *error.details;
        Self {
            status,
            retry_after: details.retry_after.map(|after| after.as_secs().max(1)),
            body: Box::new(ErrorBody {
                code: error.code,
                message: error.message,
                field: details.field,
                pointer: details.pointer,
                rule: details.rule,
                suggestions: details.suggestions,
                position: details.position,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A code host refused by a receiver is not asked for a bearer token.
        let wants_bearer =
            self.status == StatusCode::UNAUTHORIZED && self.body.code == "unauthorized";
        let mut response = (self.status, Json(*self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if wants_bearer {
            // RFC 6750: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"herald\""),
            );
        }
        response
    }
}

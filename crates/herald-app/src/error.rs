//! `AppError`: every way an operation can refuse or fail, typed by what the
//! caller should do about it. Front ends map the kind to their own terms (the
//! API to a status code and `{"code","message"}` JSON, the console to a page).

use std::fmt;
use std::time::Duration;

use herald_core::cipher::CipherError;
use herald_core::validation::FieldError;
use herald_store::StoreError;

/// What kind of failure an [`AppError`] is, which decides how a front end answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input cannot be read at all (a malformed id, header or query).
    Malformed,
    /// Well-formed input that breaks a rule (a field, a schema, a query).
    Invalid,
    /// A code host's request that does not prove itself with the receiver's credential.
    Unverified,
    /// A known caller whose token's scope does not allow the operation.
    Forbidden,
    NotFound,
    /// The target's current state forbids the change.
    Conflict,
    TooLarge,
    /// The caller sent too slowly (a request body past its read timeout).
    TimedOut,
    /// One target has as many requests in progress as it may; retry later.
    TooManyRequests,
    /// This node cannot serve the request now; another node or a retry may.
    Unavailable,
    /// A failure that is ours, not the caller's; the cause was logged.
    Internal,
}

/// A refusal or failure, with a stable snake_case `code`, a message saying what
/// to change, and the details that locate the fault.
#[derive(Debug)]
pub struct AppError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    /// Boxed: every operation returns `Result<_, AppError>`, and the optional
    /// details would make each such `Result` large.
    pub details: Box<ErrorDetails>,
}

/// Where exactly the fault is, when one place is at fault.
#[derive(Debug, Default)]
pub struct ErrorDetails {
    /// The input field at fault, as a JSON path such as `event_types[2]`.
    pub field: Option<String>,
    /// For a payload its type's schema refuses: the JSON Pointer of the value.
    pub pointer: Option<String>,
    /// For a payload its type's schema refuses: the rule it broke.
    pub rule: Option<String>,
    /// For an unknown event type: the nearest known ones, nearest first.
    pub suggestions: Vec<String>,
    /// For a code monitor query: the byte offset of the problem.
    pub position: Option<usize>,
    /// For a refusal that passes with time: when to try again.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            details: Box::default(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.details.field = Some(field.into());
        self
    }

    /// Well-formed input whose field breaks a rule.
    pub fn invalid_field(error: FieldError) -> Self {
        let message = error.to_string();
        Self::new(ErrorKind::Invalid, "invalid_field", message).with_field(error.field)
    }

    /// An input field the operation does not take in this case.
    pub fn unknown_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, "unknown_field", message).with_field(field)
    }

    pub fn invalid_header(header: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, "invalid_header", message).with_field(header)
    }

    pub fn invalid_query(parameter: Option<&str>, message: impl Into<String>) -> Self {
        let error = Self::new(ErrorKind::Malformed, "invalid_query", message);
        match parameter {
            Some(name) => error.with_field(name),
            None => error,
        }
    }

    pub fn invalid_id(raw: &str) -> Self {
        Self::new(
            ErrorKind::Malformed,
            "invalid_id",
            format!(
                "{raw:?} is not an id; ids are UUIDs such as 0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a"
            ),
        )
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, "invalid_json", message)
    }

    pub fn unreadable_body(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, "unreadable_body", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, "payload_too_large", message)
    }

    /// `what` names the kind of thing, e.g. "webhook".
    pub fn not_found(what: &str, id: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no {what} with id {id}"),
        )
    }

    /// Work was asked of a disabled webhook; it would only be sent nowhere.
    pub fn webhook_disabled(id: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Conflict,
            "webhook_disabled",
            format!(
                "webhook {id} is disabled; enable it (PATCH {{\"enabled\": true}}) before redelivering"
            ),
        )
    }

    /// A caller whose scope does not allow this; the message names the scope
    /// it would need.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", message)
    }

    /// A code host's request whose signature, token or basic auth does not
    /// match its receiver's.
    pub fn unverified(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unverified, "unverified", message)
    }

    /// A verified code-host payload that lacks what its event should carry.
    pub fn invalid_payload(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, "invalid_payload", message)
    }

    /// A published payload that its event type's schema refuses.
    pub fn schema_violation(pointer: String, rule: String, message: impl Into<String>) -> Self {
        let mut error =
            Self::new(ErrorKind::Invalid, "schema_violation", message).with_field("payload");
        error.details.pointer = Some(pointer);
        error.details.rule = Some(rule);
        error
    }

    /// An event type the catalogue does not have, named in input field `field`.
    pub fn unknown_event_type(
        field: &str,
        message: impl Into<String>,
        suggestions: Vec<String>,
    ) -> Self {
        let mut error =
            Self::new(ErrorKind::Invalid, "unknown_event_type", message).with_field(field);
        error.details.suggestions = suggestions;
        error
    }

    /// No event type of that key.
    pub fn event_type_not_found(key: &str, suggestions: Vec<String>) -> Self {
        let mut error = Self::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no event type {key:?}; GET /api/v1/event-types lists them"),
        );
        error.details.suggestions = suggestions;
        error
    }

    /// A change the event type's state forbids: it is built in, or it exists already.
    pub fn event_type_conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message).with_field("key")
    }

    /// A code monitor query the parser refuses: where (a byte offset into the
    /// query) and why.
    pub fn invalid_search_query(position: usize, reason: &str) -> Self {
        let mut error = Self::new(
            ErrorKind::Invalid,
            "invalid_search_query",
            format!("query: {reason} (at byte {position})"),
        )
        .with_field("query");
        error.details.position = Some(position);
        error
    }

    /// A request the target's current state forbids (a taken name, a disabled
    /// monitor), naming the field that decides it.
    pub fn conflict(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message).with_field(field)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "unavailable", message)
    }

    /// A request body that did not arrive within its read timeout.
    pub fn body_timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TimedOut, "body_timeout", message)
    }

    /// A receiver already reading as many unverified bodies as it may.
    pub fn receiver_busy(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut error = Self::new(ErrorKind::TooManyRequests, "receiver_busy", message);
        error.details.retry_after = Some(retry_after);
        error
    }

    /// This node holds as many unverified bytes as its budget allows.
    pub fn ingest_busy(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut error = Self::new(ErrorKind::Unavailable, "ingest_busy", message);
        error.details.retry_after = Some(retry_after);
        error
    }

    /// A failure that is our fault. The cause goes to the log only: it may name
    /// tables, files or keys that callers have no business seeing.
    pub fn internal(context: &str, cause: &dyn fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(
            ErrorKind::Internal,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        Self::invalid_field(error)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ScopeFull { .. } => {
                Self::new(ErrorKind::Conflict, "scope_full", error.to_string())
            }
            StoreError::Closed => {
                Self::unavailable("the server is shutting down; retry on another node or later")
            }
            StoreError::Backend(_) => Self::internal("store operation failed", &error),
        }
    }
}

/// A sealed value this node cannot open is the node's fault (its secrets key
/// is not the cluster's, or the row was tampered with), never the caller's:
/// 503, so the caller retries on a node that works.
impl From<CipherError> for AppError {
    fn from(error: CipherError) -> Self {
        tracing::error!(%error, "a sealed value could not be opened");
        Self::unavailable(
            "this node's secrets key cannot open a stored secret; every node sharing \
             a database needs the same secret.key",
        )
    }
}

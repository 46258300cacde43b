//! Why a verified request could not be identified or normalized.

/// A payload Herald could not read. The server answers 400 and logs it; the
/// code host sent something other than what its documentation describes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the request names no event: it has no {0}")]
    MissingEventName(&'static str),
    #[error("the payload has no {0}")]
    MissingField(String),
    #[error("the payload's {field} is not valid: {reason}")]
    BadField { field: String, reason: String },
    #[error("the receiver's code host URN {0:?} is not a URL")]
    BadUrn(String),
}

//! Which event a verified request carries, and the host's delivery id that
//! redeliveries repeat (the dedupe key).

use http::HeaderMap;
use serde_json::Value;

use crate::error::IngestError;
use crate::json;
use crate::kind::CodeHostKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The host's own event name (`pull_request`, `Merge Request Hook`,
    /// `pr:merged`, `git.push`), as [`crate::normalize()`] takes it.
    pub event_name: String,
    /// `None` when the host sent none; such a request cannot be deduplicated.
    pub delivery_id: Option<String>,
}

/// Reads the event name and delivery id from the headers, or from the body
/// where the host puts them there (GitLab's `object_kind` fallback, Azure
/// DevOps' `eventType` and `id`). Call it only after [`crate::verify()`].
pub fn identify(
    kind: CodeHostKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Incoming, IngestError> {
    match kind {
        CodeHostKind::GitHub => from_headers(headers, "X-GitHub-Event", &["X-GitHub-Delivery"]),
        CodeHostKind::GitLab => identify_gitlab(headers, body),
        CodeHostKind::BitbucketServer => from_headers(headers, "X-Event-Key", &["X-Request-Id"]),
        CodeHostKind::BitbucketCloud => from_headers(headers, "X-Event-Key", &["X-Request-UUID"]),
        CodeHostKind::AzureDevOps => identify_azure(body),
    }
}

fn from_headers(
    headers: &HeaderMap,
    event: &'static str,
    delivery: &[&str],
) -> Result<Incoming, IngestError> {
    let event_name = header(headers, event).ok_or(IngestError::MissingEventName(event))?;
    Ok(Incoming {
        event_name: event_name.to_owned(),
        delivery_id: first_header(headers, delivery),
    })
}

/// GitLab's delivery id. In Standard Webhooks mode the signed `webhook-id`
/// comes first: `Idempotency-Key` and `X-Gitlab-Event-UUID` are not signed, so
/// a replayed request could change them to pass the dedupe check.
fn identify_gitlab(headers: &HeaderMap, body: &[u8]) -> Result<Incoming, IngestError> {
    let delivery_id = first_header(
        headers,
        &["webhook-id", "Idempotency-Key", "X-Gitlab-Event-UUID"],
    );
    if let Some(event) = header(headers, "X-Gitlab-Event") {
        return Ok(Incoming {
            event_name: event.to_owned(),
            delivery_id,
        });
    }
    let v = json::parse(body)?;
    let kind = json::str_at(&v, "/object_kind").ok_or(IngestError::MissingEventName(
        "X-Gitlab-Event header or body object_kind",
    ))?;
    Ok(Incoming {
        event_name: gitlab_event_for_object_kind(kind).to_owned(),
        delivery_id,
    })
}

/// The `X-Gitlab-Event` value GitLab sends with each `object_kind`.
fn gitlab_event_for_object_kind(kind: &str) -> &str {
    match kind {
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "merge_request" => "Merge Request Hook",
        "pipeline" => "Pipeline Hook",
        "note" => "Note Hook",
        "issue" => "Issue Hook",
        "build" => "Job Hook",
        other => other,
    }
}

fn identify_azure(body: &[u8]) -> Result<Incoming, IngestError> {
    let v: Value = json::parse(body)?;
    let event_name =
        json::string_at(&v, "/eventType").ok_or(IngestError::MissingEventName("body eventType"))?;
    Ok(Incoming {
        event_name,
        delivery_id: json::id_at(&v, "/id"),
    })
}

fn first_header(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| header(headers, name))
        .map(str::to_owned)
}

/// A non-empty header value; one that is not ASCII is treated as absent.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

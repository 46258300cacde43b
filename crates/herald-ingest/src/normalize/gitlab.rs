//! GitLab: `Push Hook`, `Tag Push Hook`, `Merge Request Hook`, `Pipeline Hook`
//! and `Note Hook` on a merge request.

use serde_json::Value;

use super::{Ctx, Normalized, fork_from_path, ignored, observed, pull_request};
use crate::changeset::{ChangesetState, CheckState, Details, Observed, ReviewState, label_set};
use crate::error::IngestError;
use crate::json::{
    self, array_at, bool_at, id_at, req_id, req_str, req_time, str_at, string_at, time_at,
};
use crate::push::{PushCommit, Pusher, RepoPush};

pub(super) fn normalize(
    ctx: &Ctx<'_>,
    event: &str,
    body: &[u8],
) -> Result<Normalized, IngestError> {
    match event {
        "Push Hook" | "Tag Push Hook" => push(ctx, &json::parse(body)?),
        "Merge Request Hook" => merge_request(ctx, &json::parse(body)?),
        "Pipeline Hook" => pipeline(ctx, &json::parse(body)?),
        "Note Hook" => note(ctx, &json::parse(body)?),
        other => Ok(ignored(ctx.kind, other)),
    }
}

fn repository(ctx: &Ctx<'_>, v: &Value) -> Result<String, IngestError> {
    Ok(ctx.repository(req_str(v, "/project/path_with_namespace")?))
}

fn push(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let commits = array_at(v, "/commits")
        .iter()
        .map(|c| {
            Ok(PushCommit {
                id: req_str(c, "/id")?.to_owned(),
                message: string_at(c, "/message"),
                author_name: string_at(c, "/author/name"),
                author_email: email(c, "/author/email"),
                timestamp: time_at(c, "/timestamp")?,
                url: string_at(c, "/url"),
            })
        })
        .collect::<Result<_, IngestError>>()?;
    let pusher = string_at(v, "/user_username")
        .or_else(|| string_at(v, "/user_name"))
        .map(|name| Pusher {
            name,
            email: email(v, "/user_email"),
        });
    Ok(Normalized::Push(vec![RepoPush {
        repository: repository(ctx, v)?,
        code_host: ctx.code_host(),
        ref_name: req_str(v, "/ref")?.to_owned(),
        before: req_str(v, "/before")?.to_owned(),
        after: req_str(v, "/after")?.to_owned(),
        commits,
        pusher,
    }]))
}

/// GitLab replaces addresses it may not disclose with `[REDACTED]`.
fn email(v: &Value, ptr: &str) -> Option<String> {
    string_at(v, ptr).filter(|e| e != "[REDACTED]")
}

fn merge_request(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let mr = v
        .pointer("/object_attributes")
        .ok_or_else(|| json::missing("/object_attributes"))?;
    let action = str_at(mr, "/action").unwrap_or_default();
    // The hook names only the acting user; on `open` that is the author.
    let author = if action == "open" {
        string_at(v, "/user/username")
    } else {
        None
    };
    let details = details(mr, labels(v), author)?;
    let review = match action {
        "approved" | "approval" => Some(ReviewState::Approved),
        "unapproved" | "unapproval" => Some(ReviewState::Pending),
        _ => None,
    };
    let at = details.at;
    let key = ctx.key(repository(ctx, v)?, req_id(mr, "/iid")?);
    Ok(pull_request(
        key,
        Some(details),
        review.map(|r| observed(r, at)),
    ))
}

/// A merge request object: `object_attributes` of the Merge Request Hook, or
/// `merge_request` of the Note Hook.
fn details(
    mr: &Value,
    labels: Option<Vec<String>>,
    author_name: Option<String>,
) -> Result<Observed<Details>, IngestError> {
    let draft =
        bool_at(mr, "/draft").unwrap_or(false) || bool_at(mr, "/work_in_progress").unwrap_or(false);
    let state = match str_at(mr, "/state") {
        Some("opened") if draft => Some(ChangesetState::Draft),
        Some("opened") => Some(ChangesetState::Open),
        Some("closed") => Some(ChangesetState::Closed),
        Some("merged") => Some(ChangesetState::Merged),
        // `locked` is the moment of merging; the `merged` event follows.
        _ => None,
    };
    let fork = match (
        id_at(mr, "/source_project_id"),
        id_at(mr, "/target_project_id"),
    ) {
        (Some(source), Some(target)) if source != target => {
            Some(str_at(mr, "/source/path_with_namespace").and_then(fork_from_path))
        }
        (Some(_), Some(_)) => Some(None),
        _ => None,
    };
    Ok(observed(
        Details {
            state,
            title: string_at(mr, "/title"),
            body: Some(string_at(mr, "/description").unwrap_or_default()),
            labels,
            author_name,
            author_email: None,
            external_url: string_at(mr, "/url"),
            fork,
            head_sha: string_at(mr, "/last_commit/id"),
            created_at: time_at(mr, "/created_at")?,
        },
        req_time(mr, "/updated_at")?,
    ))
}

/// `None` when the payload has no `labels` (older GitLab versions).
fn labels(container: &Value) -> Option<Vec<String>> {
    let labels = container.pointer("/labels")?.as_array()?;
    Some(label_set(
        labels.iter().filter_map(|l| string_at(l, "/title")),
    ))
}

fn pipeline(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let p = v
        .pointer("/object_attributes")
        .ok_or_else(|| json::missing("/object_attributes"))?;
    let status = req_str(p, "/status")?;
    let check_state = match status {
        "created"
        | "waiting_for_resource"
        | "preparing"
        | "pending"
        | "running"
        | "scheduled"
        | "manual"
        | "waiting_for_callback" => CheckState::Pending,
        "success" | "skipped" => CheckState::Passed,
        "failed" | "canceled" | "canceling" => CheckState::Failed,
        other => {
            return Ok(Normalized::Ignored {
                reason: format!("pipeline with unknown status {other:?}"),
            });
        }
    };
    // Running pipelines have no finish time; their creation dates them.
    let at = match time_at(p, "/finished_at")? {
        Some(at) => at,
        None => req_time(p, "/created_at")?,
    };
    let merge_requests = id_at(v, "/merge_request/iid").into_iter().collect();
    Ok(ctx.commit_check(
        repository(ctx, v)?,
        req_str(p, "/sha")?,
        check_state,
        at,
        merge_requests,
    ))
}

/// Comments on merge requests carry the merge request, which may have changed.
fn note(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let Some(mr) = v.pointer("/merge_request").filter(|m| m.is_object()) else {
        let on = str_at(v, "/object_attributes/noteable_type").unwrap_or("something else");
        return Ok(Normalized::Ignored {
            reason: format!("Note Hook on {on}, not a merge request"),
        });
    };
    let labels = labels(mr);
    let key = ctx.key(repository(ctx, v)?, req_id(mr, "/iid")?);
    Ok(pull_request(key, Some(details(mr, labels, None)?), None))
}

//! GitHub: `push`, `pull_request`, `pull_request_review`,
//! `pull_request_review_comment`, `issue_comment` on a pull request,
//! `check_suite`, `check_run`, `status` and `ping`.

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
        "ping" => Ok(Normalized::Ping),
        "push" => push(ctx, &json::parse(body)?),
        "pull_request" | "pull_request_review_comment" => {
            pull_request_activity(ctx, &json::parse(body)?)
        }
        "pull_request_review" => review(ctx, &json::parse(body)?),
        "issue_comment" => issue_comment(ctx, &json::parse(body)?),
        "check_suite" => check(ctx, &json::parse(body)?, "/check_suite", "/updated_at"),
        "check_run" => check(ctx, &json::parse(body)?, "/check_run", "/completed_at"),
        "status" => status(ctx, &json::parse(body)?),
        other => Ok(ignored(ctx.kind, other)),
    }
}

fn repository(ctx: &Ctx<'_>, v: &Value) -> Result<String, IngestError> {
    Ok(ctx.repository(req_str(v, "/repository/full_name")?))
}

fn push(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let commits = array_at(v, "/commits")
        .iter()
        .map(|c| {
            Ok(PushCommit {
                id: req_str(c, "/id")?.to_owned(),
                message: string_at(c, "/message"),
                author_name: string_at(c, "/author/name"),
                author_email: string_at(c, "/author/email"),
                timestamp: time_at(c, "/timestamp")?,
                url: string_at(c, "/url"),
            })
        })
        .collect::<Result<_, IngestError>>()?;
    Ok(Normalized::Push(vec![RepoPush {
        repository: repository(ctx, v)?,
        code_host: ctx.code_host(),
        ref_name: req_str(v, "/ref")?.to_owned(),
        before: req_str(v, "/before")?.to_owned(),
        after: req_str(v, "/after")?.to_owned(),
        commits,
        pusher: string_at(v, "/pusher/name").map(|name| Pusher {
            name,
            email: string_at(v, "/pusher/email"),
        }),
    }]))
}

/// `pull_request` and `pull_request_review_comment`: the request's fields only.
fn pull_request_activity(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let pr = v
        .pointer("/pull_request")
        .ok_or_else(|| json::missing("/pull_request"))?;
    let key = ctx.key(repository(ctx, v)?, req_id(pr, "/number")?);
    Ok(pull_request(key, Some(details(pr)?), None))
}

fn review(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let pr = v
        .pointer("/pull_request")
        .ok_or_else(|| json::missing("/pull_request"))?;
    let key = ctx.key(repository(ctx, v)?, req_id(pr, "/number")?);
    let state = req_str(v, "/review/state")?.to_ascii_lowercase();
    // A comment-only review leaves the review state as it was.
    let review_state = match state.as_str() {
        "approved" => Some(ReviewState::Approved),
        "changes_requested" => Some(ReviewState::ChangesRequested),
        "dismissed" => Some(ReviewState::Pending),
        _ => None,
    };
    let at = match time_at(v, "/review/submitted_at")? {
        Some(at) => at,
        None => req_time(pr, "/updated_at")?,
    };
    Ok(pull_request(
        key,
        Some(details(pr)?),
        review_state.map(|s| observed(s, at)),
    ))
}

/// The pull request object of `pull_request*` events.
fn details(pr: &Value) -> Result<Observed<Details>, IngestError> {
    let merged = bool_at(pr, "/merged").unwrap_or(false) || str_at(pr, "/merged_at").is_some();
    let draft = bool_at(pr, "/draft").unwrap_or(false);
    let fork = match (
        str_at(pr, "/head/repo/full_name"),
        str_at(pr, "/base/repo/full_name"),
    ) {
        (Some(head), Some(base)) if head != base => Some(fork_from_path(head)),
        (Some(_), Some(_)) => Some(None),
        // The head repository was deleted, or the event does not say.
        _ => None,
    };
    Ok(observed(
        Details {
            state: state(str_at(pr, "/state"), merged, draft),
            title: string_at(pr, "/title"),
            body: Some(string_at(pr, "/body").unwrap_or_default()),
            labels: Some(labels(pr)),
            author_name: string_at(pr, "/user/login"),
            author_email: None,
            external_url: string_at(pr, "/html_url"),
            fork,
            head_sha: string_at(pr, "/head/sha"),
            created_at: time_at(pr, "/created_at")?,
        },
        req_time(pr, "/updated_at")?,
    ))
}

fn state(state: Option<&str>, merged: bool, draft: bool) -> Option<ChangesetState> {
    match state? {
        "closed" if merged => Some(ChangesetState::Merged),
        "closed" => Some(ChangesetState::Closed),
        "open" if draft => Some(ChangesetState::Draft),
        "open" => Some(ChangesetState::Open),
        _ => None,
    }
}

fn labels(object: &Value) -> Vec<String> {
    label_set(
        array_at(object, "/labels")
            .iter()
            .filter_map(|l| string_at(l, "/name")),
    )
}

/// Comments on pull requests arrive as `issue_comment`, with the request as
/// an issue: no head commit, no fork information.
fn issue_comment(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let issue = v.pointer("/issue").ok_or_else(|| json::missing("/issue"))?;
    let Some(pr_links) = issue.pointer("/pull_request").filter(|p| p.is_object()) else {
        return Ok(Normalized::Ignored {
            reason: "issue_comment on an issue, not a pull request".to_owned(),
        });
    };
    let merged = str_at(pr_links, "/merged_at").is_some();
    let draft = bool_at(issue, "/draft").unwrap_or(false);
    let details = Details {
        state: state(str_at(issue, "/state"), merged, draft),
        title: string_at(issue, "/title"),
        body: Some(string_at(issue, "/body").unwrap_or_default()),
        labels: Some(labels(issue)),
        author_name: string_at(issue, "/user/login"),
        author_email: None,
        external_url: string_at(pr_links, "/html_url").or_else(|| string_at(issue, "/html_url")),
        fork: None,
        head_sha: None,
        created_at: time_at(issue, "/created_at")?,
    };
    let key = ctx.key(repository(ctx, v)?, req_id(issue, "/number")?);
    Ok(pull_request(
        key,
        Some(observed(details, req_time(issue, "/updated_at")?)),
        None,
    ))
}

/// `check_suite` and `check_run`: a check of a commit, with the pull requests
/// of this repository whose head it is.
fn check(
    ctx: &Ctx<'_>,
    v: &Value,
    object: &str,
    time_field: &str,
) -> Result<Normalized, IngestError> {
    let c = v.pointer(object).ok_or_else(|| json::missing(object))?;
    let status = str_at(c, "/status").unwrap_or_default();
    let conclusion = str_at(c, "/conclusion").unwrap_or_default();
    let Some(check_state) = check_state(status, conclusion) else {
        return Ok(Normalized::Ignored {
            reason: format!(
                "{object} with status {status:?} and conclusion {conclusion:?} has no check state"
            ),
        });
    };
    // A check run that has not completed is dated by its start.
    let at = match time_at(c, time_field)? {
        Some(at) => at,
        None => req_time(c, "/started_at")?,
    };
    let repo_id = id_at(v, "/repository/id");
    let prs = array_at(c, "/pull_requests")
        .iter()
        .filter(|pr| repo_id.is_none() || id_at(pr, "/base/repo/id") == repo_id)
        .filter_map(|pr| id_at(pr, "/number"))
        .collect();
    Ok(ctx.commit_check(
        repository(ctx, v)?,
        req_str(c, "/head_sha")?,
        check_state,
        at,
        prs,
    ))
}

fn check_state(status: &str, conclusion: &str) -> Option<CheckState> {
    match status {
        "queued" | "in_progress" | "requested" | "waiting" | "pending" => Some(CheckState::Pending),
        "completed" => match conclusion {
            "success" | "neutral" | "skipped" => Some(CheckState::Passed),
            "failure" | "timed_out" | "cancelled" | "startup_failure" => Some(CheckState::Failed),
            // Waiting on a person is not a verdict yet.
            "action_required" => Some(CheckState::Pending),
            _ => None,
        },
        _ => None,
    }
}

fn status(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let check_state = match req_str(v, "/state")? {
        "success" => CheckState::Passed,
        "failure" | "error" => CheckState::Failed,
        "pending" => CheckState::Pending,
        other => {
            return Ok(Normalized::Ignored {
                reason: format!("status with unknown state {other:?}"),
            });
        }
    };
    let at = match time_at(v, "/updated_at")? {
        Some(at) => at,
        None => req_time(v, "/created_at")?,
    };
    Ok(ctx.commit_check(
        repository(ctx, v)?,
        req_str(v, "/sha")?,
        check_state,
        at,
        Vec::new(),
    ))
}

//! Bitbucket Server / Data Center: `repo:refs_changed`, every `pr:*` event,
//! `repo:build_status` (sent by the Sourcegraph Bitbucket Server plugin) and
//! `diagnostics:ping`.

use serde_json::Value;

use super::{Ctx, Normalized, ignored, observed, pull_request};
use crate::changeset::{ChangesetState, CheckState, Details, Fork, Observed, ReviewState};
use crate::error::IngestError;
use crate::json::{
    self, array_at, bool_at, id_at, req_id, req_str, req_time, str_at, string_at, time_at,
};
use crate::push::{Pusher, RepoPush};

pub(super) fn normalize(
    ctx: &Ctx<'_>,
    event: &str,
    body: &[u8],
) -> Result<Normalized, IngestError> {
    match event {
        "diagnostics:ping" => Ok(Normalized::Ping),
        "repo:refs_changed" => refs_changed(ctx, &json::parse(body)?),
        "repo:build_status" => build_status(ctx, &json::parse(body)?),
        pr if pr.starts_with("pr:") => pull_request_event(ctx, &json::parse(body)?),
        other => Ok(ignored(ctx.kind, other)),
    }
}

/// `PROJECT/slug` of a repository object; personal projects have keys like `~user`.
fn repo_path(repo: &Value) -> Result<String, IngestError> {
    Ok(format!(
        "{}/{}",
        req_str(repo, "/project/key")?,
        req_str(repo, "/slug")?
    ))
}

fn refs_changed(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let repo = v
        .pointer("/repository")
        .ok_or_else(|| json::missing("/repository"))?;
    let repository = ctx.repository(&repo_path(repo)?);
    let pusher = string_at(v, "/actor/name").map(|name| Pusher {
        name,
        email: string_at(v, "/actor/emailAddress"),
    });
    let pushes = array_at(v, "/changes")
        .iter()
        .map(|change| {
            let ref_name =
                str_at(change, "/ref/id").map_or_else(|| req_str(change, "/refId"), Ok)?;
            Ok(RepoPush {
                repository: repository.clone(),
                code_host: ctx.code_host(),
                ref_name: ref_name.to_owned(),
                before: req_str(change, "/fromHash")?.to_owned(),
                after: req_str(change, "/toHash")?.to_owned(),
                // Bitbucket Server's payload lists no commits.
                commits: Vec::new(),
                pusher: pusher.clone(),
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(Normalized::Push(pushes))
}

fn pull_request_event(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let pr = v
        .pointer("/pullRequest")
        .ok_or_else(|| json::missing("/pullRequest"))?;
    let details = details(pr, v)?;
    // Reviewer changes do not touch `updatedDate`; the event's own date orders them.
    let review_at = match time_at(v, "/date")? {
        Some(at) => at,
        None => details.at,
    };
    let review = observed(review_state(pr), review_at);
    let key = pr_key(ctx, pr)?;
    Ok(pull_request(key, Some(details), Some(review)))
}

fn pr_key(ctx: &Ctx<'_>, pr: &Value) -> Result<crate::changeset::ChangesetKey, IngestError> {
    let target = pr
        .pointer("/toRef/repository")
        .ok_or_else(|| json::missing("/toRef/repository"))?;
    Ok(ctx.key(ctx.repository(&repo_path(target)?), req_id(pr, "/id")?))
}

fn details(pr: &Value, event: &Value) -> Result<Observed<Details>, IngestError> {
    let state = match str_at(pr, "/state") {
        Some("OPEN") if bool_at(pr, "/draft").unwrap_or(false) => Some(ChangesetState::Draft),
        Some("OPEN") => Some(ChangesetState::Open),
        Some("MERGED") => Some(ChangesetState::Merged),
        Some("DECLINED") => Some(ChangesetState::Closed),
        _ => None,
    };
    let source = pr.pointer("/fromRef/repository");
    let target = pr.pointer("/toRef/repository");
    let fork = match (source, target) {
        (Some(source), Some(target)) if id_at(source, "/id") != id_at(target, "/id") => {
            Some(Some(Fork {
                namespace: req_str(source, "/project/key")?.to_owned(),
                name: req_str(source, "/slug")?.to_owned(),
            }))
        }
        (Some(_), Some(_)) => Some(None),
        _ => None,
    };
    let at = match time_at(pr, "/updatedDate")? {
        Some(at) => at,
        None => req_time(event, "/date")?,
    };
    Ok(observed(
        Details {
            state,
            title: string_at(pr, "/title"),
            // Bitbucket Server leaves `description` out when it is empty.
            body: Some(string_at(pr, "/description").unwrap_or_default()),
            // Bitbucket Server has no pull request labels.
            labels: None,
            author_name: string_at(pr, "/author/user/name"),
            author_email: string_at(pr, "/author/user/emailAddress"),
            external_url: string_at(pr, "/links/self/0/href"),
            fork,
            head_sha: string_at(pr, "/fromRef/latestCommit"),
            created_at: time_at(pr, "/createdDate")?,
        },
        at,
    ))
}

/// Any reviewer asking for work outweighs approvals.
fn review_state(pr: &Value) -> ReviewState {
    let statuses: Vec<&str> = array_at(pr, "/reviewers")
        .iter()
        .filter_map(|r| str_at(r, "/status"))
        .collect();
    if statuses.contains(&"NEEDS_WORK") {
        ReviewState::ChangesRequested
    } else if statuses.contains(&"APPROVED") {
        ReviewState::Approved
    } else {
        ReviewState::Pending
    }
}

/// The plugin's build status event: `{commit, status {state, dateAdded, …},
/// pullRequests [pull request objects]}`.
fn build_status(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let check_state = match req_str(v, "/status/state")? {
        "SUCCESSFUL" => CheckState::Passed,
        "FAILED" => CheckState::Failed,
        "INPROGRESS" => CheckState::Pending,
        other => {
            return Ok(Normalized::Ignored {
                reason: format!("build status with unknown state {other:?}"),
            });
        }
    };
    let prs = array_at(v, "/pullRequests");
    let Some(first) = prs.first() else {
        return Ok(Normalized::Ignored {
            reason: "build status of a commit with no pull request".to_owned(),
        });
    };
    let repository = pr_key(ctx, first)?.repository;
    let ids = prs.iter().filter_map(|pr| id_at(pr, "/id")).collect();
    let at = req_time(v, "/status/dateAdded")?;
    Ok(ctx.commit_check(repository, req_str(v, "/commit")?, check_state, at, ids))
}

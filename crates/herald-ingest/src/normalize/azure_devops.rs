//! Azure DevOps service hooks: `git.push` and every `git.pullrequest.*` event.
//! Azure names the event in the body (`eventType`), and dates the notification
//! (`createdDate`), which orders pull request observations.

use serde_json::Value;

use super::{Ctx, Normalized, ignored, observed, pull_request};
use crate::changeset::{ChangesetState, Details, Fork, ReviewState, label_set};
use crate::error::IngestError;
use crate::json::{self, array_at, bool_at, req_id, req_str, req_time, str_at, string_at, time_at};
use crate::push::{PushCommit, Pusher, RepoPush};

pub(super) fn normalize(
    ctx: &Ctx<'_>,
    event: &str,
    body: &[u8],
) -> Result<Normalized, IngestError> {
    match event {
        "git.push" => push(ctx, &json::parse(body)?),
        pr if pr.starts_with("git.pullrequest.") => pull_request_event(ctx, &json::parse(body)?),
        other => Ok(ignored(ctx.kind, other)),
    }
}

/// `project/repository` under the organization the receiver's URN names
/// (`https://dev.azure.com/org` gives `dev.azure.com/org/project/repository`).
fn repository(ctx: &Ctx<'_>, repo: &Value) -> Result<String, IngestError> {
    Ok(ctx.repository(&format!(
        "{}/{}",
        req_str(repo, "/project/name")?,
        req_str(repo, "/name")?
    )))
}

fn push(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let resource = v
        .pointer("/resource")
        .ok_or_else(|| json::missing("/resource"))?;
    let repo = resource
        .pointer("/repository")
        .ok_or_else(|| json::missing("/resource/repository"))?;
    let repository = repository(ctx, repo)?;
    let pusher = string_at(resource, "/pushedBy/uniqueName")
        .or_else(|| string_at(resource, "/pushedBy/displayName"))
        .map(|name| Pusher { name, email: None });
    let updates = array_at(resource, "/refUpdates");
    // Azure lists the push's commits once, not per ref: they belong to a ref
    // only when the push updated just one.
    let commits = if updates.len() == 1 {
        array_at(resource, "/commits")
            .iter()
            .map(commit)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let pushes = updates
        .iter()
        .map(|update| {
            Ok(RepoPush {
                repository: repository.clone(),
                code_host: ctx.code_host(),
                ref_name: req_str(update, "/name")?.to_owned(),
                before: req_str(update, "/oldObjectId")?.to_owned(),
                after: req_str(update, "/newObjectId")?.to_owned(),
                commits: commits.clone(),
                pusher: pusher.clone(),
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(Normalized::Push(pushes))
}

fn commit(c: &Value) -> Result<PushCommit, IngestError> {
    Ok(PushCommit {
        id: req_str(c, "/commitId")?.to_owned(),
        message: string_at(c, "/comment"),
        author_name: string_at(c, "/author/name"),
        author_email: string_at(c, "/author/email"),
        timestamp: time_at(c, "/author/date")?,
        url: string_at(c, "/url"),
    })
}

fn pull_request_event(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let pr = v
        .pointer("/resource")
        .ok_or_else(|| json::missing("/resource"))?;
    let repo = pr
        .pointer("/repository")
        .ok_or_else(|| json::missing("/resource/repository"))?;
    let at = req_time(v, "/createdDate")?;
    let id = req_id(pr, "/pullRequestId")?;
    let details = details(pr, repo, &id)?;
    let review = observed(review_state(pr), at);
    let key = ctx.key(repository(ctx, repo)?, id);
    Ok(pull_request(key, Some(observed(details, at)), Some(review)))
}

fn details(pr: &Value, repo: &Value, id: &str) -> Result<Details, IngestError> {
    let state = match str_at(pr, "/status") {
        Some("active") if bool_at(pr, "/isDraft").unwrap_or(false) => Some(ChangesetState::Draft),
        Some("active") => Some(ChangesetState::Open),
        Some("completed") => Some(ChangesetState::Merged),
        Some("abandoned") => Some(ChangesetState::Closed),
        _ => None,
    };
    // Service hooks carry the API URL; the page is the repository's web URL
    // plus `/pullrequest/<id>`.
    let external_url = string_at(pr, "/_links/web/href")
        .or_else(|| str_at(repo, "/remoteUrl").map(|remote| format!("{remote}/pullrequest/{id}")));
    let fork = match pr.pointer("/forkSource/repository") {
        Some(fork) => Some(Fork {
            namespace: req_str(fork, "/project/name")?.to_owned(),
            name: req_str(fork, "/name")?.to_owned(),
        }),
        None => None,
    };
    let labels = pr
        .pointer("/labels")
        .and_then(Value::as_array)
        .map(|labels| label_set(labels.iter().filter_map(|l| string_at(l, "/name"))));
    Ok(Details {
        state,
        title: string_at(pr, "/title"),
        body: Some(string_at(pr, "/description").unwrap_or_default()),
        labels,
        author_name: string_at(pr, "/createdBy/uniqueName"),
        author_email: None,
        external_url,
        fork: Some(fork),
        head_sha: string_at(pr, "/lastMergeSourceCommit/commitId"),
        created_at: time_at(pr, "/creationDate")?,
    })
}

/// Votes: 10 approved, 5 approved with suggestions, 0 none, -5 waiting for
/// the author, -10 rejected. Any negative vote outweighs approvals.
fn review_state(pr: &Value) -> ReviewState {
    let votes: Vec<i64> = array_at(pr, "/reviewers")
        .iter()
        .filter_map(|r| r.pointer("/vote")?.as_i64())
        .collect();
    if votes.iter().any(|v| *v < 0) {
        ReviewState::ChangesRequested
    } else if votes.iter().any(|v| *v > 0) {
        ReviewState::Approved
    } else {
        ReviewState::Pending
    }
}

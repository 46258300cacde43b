//! Bitbucket Cloud: `repo:push`, every `pullrequest:*` event and
//! `repo:commit_status_created` / `repo:commit_status_updated`.

use serde_json::Value;

use super::{Ctx, Normalized, fork_from_path, ignored, observed, pull_request};
use crate::changeset::{ChangesetState, CheckState, Details, Observed, ReviewState};
use crate::error::IngestError;
use crate::json::{self, array_at, bool_at, req_id, req_str, req_time, str_at, string_at, time_at};
use crate::push::{NULL_SHA, PushCommit, Pusher, RepoPush};

pub(super) fn normalize(
    ctx: &Ctx<'_>,
    event: &str,
    body: &[u8],
) -> Result<Normalized, IngestError> {
    match event {
        "repo:push" => push(ctx, &json::parse(body)?),
        "repo:commit_status_created" | "repo:commit_status_updated" => {
            commit_status(ctx, &json::parse(body)?)
        }
        pr if pr.starts_with("pullrequest:") => pull_request_event(ctx, pr, &json::parse(body)?),
        other => Ok(ignored(ctx.kind, other)),
    }
}

fn repository(ctx: &Ctx<'_>, v: &Value) -> Result<String, IngestError> {
    Ok(ctx.repository(req_str(v, "/repository/full_name")?))
}

/// The account's public handle: `nickname` today, `username` in older payloads.
fn account_name(account: &Value) -> Option<String> {
    string_at(account, "/nickname")
        .or_else(|| string_at(account, "/username"))
        .or_else(|| string_at(account, "/display_name"))
}

fn push(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let repository = repository(ctx, v)?;
    let pusher = v
        .pointer("/actor")
        .and_then(account_name)
        .map(|name| Pusher { name, email: None });
    let pushes = array_at(v, "/push/changes")
        .iter()
        .map(|change| {
            let new = change.pointer("/new").filter(|n| n.is_object());
            let old = change.pointer("/old").filter(|o| o.is_object());
            // A deletion has no `new`; its ref is the old one's.
            let named = new
                .or(old)
                .ok_or_else(|| json::missing("/push/changes/*/new"))?;
            Ok(RepoPush {
                repository: repository.clone(),
                code_host: ctx.code_host(),
                ref_name: full_ref(named)?,
                before: old
                    .and_then(|o| string_at(o, "/target/hash"))
                    .unwrap_or_else(|| NULL_SHA.to_owned()),
                after: new
                    .and_then(|n| string_at(n, "/target/hash"))
                    .unwrap_or_else(|| NULL_SHA.to_owned()),
                commits: array_at(change, "/commits")
                    .iter()
                    .map(commit)
                    .collect::<Result<_, _>>()?,
                pusher: pusher.clone(),
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(Normalized::Push(pushes))
}

fn full_ref(named: &Value) -> Result<String, IngestError> {
    let name = req_str(named, "/name")?;
    Ok(match str_at(named, "/type") {
        Some("tag") => format!("refs/tags/{name}"),
        _ => format!("refs/heads/{name}"),
    })
}

fn commit(c: &Value) -> Result<PushCommit, IngestError> {
    let (author_name, author_email) = match str_at(c, "/author/raw") {
        Some(raw) => split_raw_author(raw),
        None => (c.pointer("/author/user").and_then(account_name), None),
    };
    Ok(PushCommit {
        id: req_str(c, "/hash")?.to_owned(),
        message: string_at(c, "/message"),
        author_name,
        author_email,
        timestamp: time_at(c, "/date")?,
        url: string_at(c, "/links/html/href"),
    })
}

/// `Name <email>` as git records it.
fn split_raw_author(raw: &str) -> (Option<String>, Option<String>) {
    match raw.split_once('<') {
        Some((name, rest)) => {
            let name = name.trim();
            let email = rest.trim_end().trim_end_matches('>').trim();
            (
                Some(name.to_owned()).filter(|n| !n.is_empty()),
                Some(email.to_owned()).filter(|e| !e.is_empty()),
            )
        }
        None => (Some(raw.trim().to_owned()).filter(|n| !n.is_empty()), None),
    }
}

fn pull_request_event(ctx: &Ctx<'_>, event: &str, v: &Value) -> Result<Normalized, IngestError> {
    let pr = v
        .pointer("/pullrequest")
        .ok_or_else(|| json::missing("/pullrequest"))?;
    let details = details(pr)?;
    let review = review(event, v, pr, details.at)?;
    let key = ctx.key(repository(ctx, v)?, req_id(pr, "/id")?);
    Ok(pull_request(key, Some(details), review))
}

fn details(pr: &Value) -> Result<Observed<Details>, IngestError> {
    let state = match str_at(pr, "/state") {
        Some("OPEN") if bool_at(pr, "/draft").unwrap_or(false) => Some(ChangesetState::Draft),
        Some("OPEN") => Some(ChangesetState::Open),
        Some("MERGED") => Some(ChangesetState::Merged),
        Some("DECLINED" | "SUPERSEDED") => Some(ChangesetState::Closed),
        // Anything else (Atlassian's sample says "OPEN|MERGED|DECLINED") says nothing.
        _ => None,
    };
    let fork = match (
        str_at(pr, "/source/repository/full_name"),
        str_at(pr, "/destination/repository/full_name"),
    ) {
        (Some(source), Some(target)) if source != target => Some(fork_from_path(source)),
        (Some(_), Some(_)) => Some(None),
        _ => None,
    };
    Ok(observed(
        Details {
            state,
            title: string_at(pr, "/title"),
            body: Some(string_at(pr, "/description").unwrap_or_default()),
            // Bitbucket Cloud has no pull request labels.
            labels: None,
            author_name: pr.pointer("/author").and_then(account_name),
            author_email: None,
            external_url: string_at(pr, "/links/html/href"),
            fork,
            head_sha: string_at(pr, "/source/commit/hash"),
            created_at: time_at(pr, "/created_on")?,
        },
        req_time(pr, "/updated_on")?,
    ))
}

/// Approval events carry their own date; other events carry the participants,
/// whose approvals and change requests give the review state.
fn review(
    event: &str,
    v: &Value,
    pr: &Value,
    updated_at: herald_core::time::Timestamp,
) -> Result<Option<Observed<ReviewState>>, IngestError> {
    let dated = |ptr: &str, state| -> Result<_, IngestError> {
        Ok(Some(observed(
            state,
            time_at(v, ptr)?.unwrap_or(updated_at),
        )))
    };
    match event {
        "pullrequest:approved" => dated("/approval/date", ReviewState::Approved),
        "pullrequest:changes_request_created" => {
            dated("/changes_request/date", ReviewState::ChangesRequested)
        }
        _ => {
            let Some(participants) = pr.pointer("/participants").and_then(Value::as_array) else {
                return Ok(None);
            };
            let state = if participants
                .iter()
                .any(|p| str_at(p, "/state") == Some("changes_requested"))
            {
                ReviewState::ChangesRequested
            } else if participants
                .iter()
                .any(|p| bool_at(p, "/approved") == Some(true))
            {
                ReviewState::Approved
            } else {
                ReviewState::Pending
            };
            Ok(Some(observed(state, updated_at)))
        }
    }
}

fn commit_status(ctx: &Ctx<'_>, v: &Value) -> Result<Normalized, IngestError> {
    let status = v
        .pointer("/commit_status")
        .ok_or_else(|| json::missing("/commit_status"))?;
    let check_state = match req_str(status, "/state")? {
        "SUCCESSFUL" => CheckState::Passed,
        "FAILED" | "STOPPED" => CheckState::Failed,
        "INPROGRESS" => CheckState::Pending,
        other => {
            return Ok(Normalized::Ignored {
                reason: format!("commit status with unknown state {other:?}"),
            });
        }
    };
    // Older payloads name the commit only through its API link.
    let sha = string_at(status, "/commit/hash")
        .or_else(|| {
            str_at(status, "/links/commit/href")
                .and_then(|href| href.rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(|| json::missing("/commit_status/commit/hash"))?;
    let at = match time_at(status, "/updated_on")? {
        Some(at) => at,
        None => req_time(status, "/created_on")?,
    };
    Ok(ctx.commit_check(repository(ctx, v)?, &sha, check_state, at, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_authors_split_into_name_and_email() {
        assert_eq!(
            split_raw_author("Brad Rydzewski <brad@example.com>"),
            (
                Some("Brad Rydzewski".into()),
                Some("brad@example.com".into())
            )
        );
        assert_eq!(
            split_raw_author("just a name"),
            (Some("just a name".into()), None)
        );
    }
}

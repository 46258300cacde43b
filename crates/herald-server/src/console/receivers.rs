//! Receivers (incoming webhooks): the list, creating one (its secret shown
//! once), the detail page with the unique URL, a copy button and the code
//! host's setup steps (as seed 002 lists them per host), rotating the secret
//! with its grace period, and the request log with each request's
//! verification result, answer and headers and body.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_app::receivers::admin::{ReceiverCreate, ReceiverView, RequestFilter, SecretRotation};
use herald_app::tokens::Permission;
use herald_app::{AppError, ErrorKind};
use herald_core::secret::Secret;
use herald_store::{ReceiverId, ReceiverRequestId, ReceiverRequestSummary};
use maud::{Markup, html};

use crate::AppState;
use crate::console::form::{Form, PathId, PathIds};
use crate::console::page::{
    Area, ConsoleError, DeleteConfirmation, Html, Viewer, badge, delete_confirmation, flash, page,
    redirect, time,
};

const KINDS: [(&str, &str); 5] = [
    ("github", "GitHub"),
    ("gitlab", "GitLab"),
    ("bitbucket_server", "Bitbucket Server / Data Center"),
    ("bitbucket_cloud", "Bitbucket Cloud"),
    ("azure_devops", "Azure DevOps"),
];

fn kind_label(kind: &str) -> &str {
    KINDS
        .iter()
        .find(|(wire, _)| *wire == kind)
        .map_or(kind, |(_, label)| label)
}

fn receiver_title(view: &ReceiverView) -> String {
    view.record
        .name
        .clone()
        .unwrap_or_else(|| format!("{} receiver", kind_label(&view.record.kind)))
}

#[derive(Debug, serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /console/receivers`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Query(query): axum::extract::Query<Done>,
) -> Result<Html, ConsoleError> {
    let notice = (query.done.as_deref() == Some("deleted")).then(|| {
        flash(
            "ok",
            "Receiver deleted, with its request log; its URL answers 404 from now on.",
        )
    });
    receivers_page(&state, &viewer, &CreateFields::default(), None, notice).await
}

#[derive(Debug, Default)]
struct CreateFields {
    name: String,
    kind: String,
    urn: String,
    username: String,
    github_legacy_sha1: bool,
    gitlab_standard_webhooks: bool,
}

async fn receivers_page(
    state: &AppState,
    viewer: &Viewer,
    fields: &CreateFields,
    error: Option<&AppError>,
    notice: Option<Markup>,
) -> Result<Html, ConsoleError> {
    let receivers = state.app().list_receivers().await?;
    let admin = viewer.can(Permission::Admin);
    let content = html! {
        div.page-head { div {
            h1 { "Receivers" }
            p.muted { "Each receiver is a URL of Herald's that accepts one code host's webhooks, verifies them and publishes them as events." }
        } }
        @if let Some(notice) = notice { (notice) }
        @if let Some(error) = error { p.flash.error role="alert" { (error.message) } }
        table #receivers {
            thead { tr { th { "Name" } th { "Code host" } th { "URN" } th { "Receiver URL" } th { "Created" } } }
            tbody {
                @for view in &receivers {
                    tr {
                        td { a href={"/console/receivers/" (view.record.id)} { (receiver_title(view)) } }
                        td { (kind_label(&view.record.kind)) }
                        td.url { (view.record.urn) }
                        td.url { (view.url) }
                        td { (time(view.record.created_at)) }
                    }
                }
                @if receivers.is_empty() { tr { td.empty colspan="5" { "No receivers yet." } } }
            }
        }
        @if admin {
            h2 { "Add a receiver" }
            form.stacked.card method="post" action="/console/receivers" {
                (viewer.csrf_field())
                label for="receiver-kind" { "Code host" }
                select #receiver-kind name="kind" {
                    @for (wire, label) in KINDS { option value=(wire) selected[fields.kind == wire] { (label) } }
                }
                label for="receiver-urn" { "Code host URL (URN)" }
                input #receiver-urn.mono type="url" name="urn" value=(fields.urn) required placeholder="https://github.com";
                label for="receiver-name" { "Name" }
                input #receiver-name type="text" name="name" value=(fields.name) placeholder="optional";
                label for="receiver-username" { "Username (Azure DevOps only)" }
                input #receiver-username type="text" name="username" value=(fields.username) placeholder="herald";
                fieldset #receiver-options {
                    legend { "Signature options" }
                    label.check {
                        input type="checkbox" name="github_legacy_sha1" value="true" checked[fields.github_legacy_sha1];
                        span { "GitHub only: also accept the SHA-1 " code { "X-Hub-Signature" } " (old GitHub Enterprise)" }
                    }
                    label.check {
                        input type="checkbox" name="gitlab_standard_webhooks" value="true" checked[fields.gitlab_standard_webhooks];
                        span { "GitLab only: verify Standard Webhooks signatures (" code { "webhook-signature" } ")" }
                    }
                }
                p.hint { "Herald generates the secret (for Azure DevOps, the password) and shows it once." }
                div.form-actions { button.primary type="submit" { "Create receiver" } }
            }
        }
    };
    Ok(page(viewer, Area::Receivers, "Receivers", content))
}

/// `POST /console/receivers`.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = CreateFields {
        name: form.get("name").unwrap_or_default().trim().to_owned(),
        kind: form.get("kind").unwrap_or_default().to_owned(),
        urn: form.get("urn").unwrap_or_default().trim().to_owned(),
        username: form.get("username").unwrap_or_default().trim().to_owned(),
        github_legacy_sha1: form.get("github_legacy_sha1") == Some("true"),
        gitlab_standard_webhooks: form.get("gitlab_standard_webhooks") == Some("true"),
    };
    let input = ReceiverCreate {
        name: (!fields.name.is_empty()).then(|| fields.name.clone()),
        kind: fields.kind.clone(),
        urn: fields.urn.clone(),
        secret: None,
        username: (fields.kind == "azure_devops" && !fields.username.is_empty())
            .then(|| fields.username.clone()),
        // An option checked for another kind of host is the application's
        // to refuse, with the reason shown above the form.
        github_legacy_sha1: fields.github_legacy_sha1,
        gitlab_standard_webhooks: fields.gitlab_standard_webhooks,
    };
    match state.app().create_receiver(input).await {
        Ok(created) => {
            let html =
                detail_page(&state, &viewer, &created.receiver, Some(&created.secret)).await?;
            Ok((StatusCode::CREATED, html).into_response())
        }
        Err(error) if matches!(error.kind, ErrorKind::Invalid | ErrorKind::Malformed) => {
            let html = receivers_page(&state, &viewer, &fields, Some(&error), None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /console/receivers/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<ReceiverId>,
) -> Result<Html, ConsoleError> {
    let view = state.app().receiver(id).await?;
    detail_page(&state, &viewer, &view, None).await
}

/// `POST /console/receivers/{id}/rotate`: a new secret now; the old one
/// keeps verifying for the grace period chosen.
pub async fn rotate(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<ReceiverId>,
    form: Form,
) -> Result<Html, ConsoleError> {
    let hours = form.get("grace_hours").unwrap_or("24").trim();
    let grace = hours.parse::<u64>().map_err(|_| {
        ConsoleError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The grace period is a whole number of hours.",
        )
    })?;
    let rotation = SecretRotation {
        secret: None,
        grace_period_seconds: Some(grace.saturating_mul(3600)),
    };
    let rotated = state.app().rotate_receiver_secret(id, rotation).await?;
    detail_page(&state, &viewer, &rotated.receiver, Some(&rotated.secret)).await
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    view: &ReceiverView,
    new_secret: Option<&Secret>,
) -> Result<Html, ConsoleError> {
    let id = view.record.id;
    let requests = state
        .app()
        .receiver_requests(id, RequestFilter::default())
        .await?;
    let title = receiver_title(view);
    let content = html! {
        div.page-head {
            div {
                div.crumbs { a href="/console/receivers" { "Receivers" } " / " }
                h1 { (title) }
            }
            @if viewer.can(Permission::Admin) {
                div.actions { a.button.danger href={"/console/receivers/" (id) "/delete"} { "Delete" } }
            }
        }
        div.card {
            h2 { "Receiver URL" }
            div.secret-box {
                code #receiver-url { (view.url) }
                button.small type="button" data-copy="receiver-url" hidden { "Copy" }
            }
            @if let Some(secret) = new_secret {
                h3 { @if view.username.is_some() { "Password" } @else { "Secret" } " (shown once)" }
                div.secret-box {
                    code #receiver-secret { (secret.expose()) }
                    button.small type="button" data-copy="receiver-secret" hidden { "Copy" }
                }
            }
            dl.facts {
                dt { "Code host" } dd { (kind_label(&view.record.kind)) }
                dt { "URN" } dd.url { (view.record.urn) }
                @if let Some(username) = &view.username { dt { "Username" } dd { code { (username) } } }
                @if view.record.github_legacy_sha1 { dt { "Signature" } dd { "SHA-256, or the legacy SHA-1 " code { "X-Hub-Signature" } } }
                @if view.record.gitlab_standard_webhooks { dt { "Signature" } dd { code { "X-Gitlab-Token" } " or Standard Webhooks " code { "webhook-signature" } } }
                @if let Some(until) = view.previous_secret_expires_at { dt { "Previous secret valid until" } dd { (time(until)) } }
                dt { "Created" } dd { (time(view.record.created_at)) }
            }
        }
        div.two {
            div.card {
                h2 { "Set it up on " (kind_label(&view.record.kind)) }
                (setup_steps(&view.record.kind))
            }
            @if viewer.can(Permission::Admin) {
                div.card {
                    h2 { "Rotate the secret" }
                    p.muted { "A new secret takes effect at once; the current one keeps verifying during the grace period, so you can update the code host without losing a request." }
                    form method="post" action={"/console/receivers/" (id) "/rotate"} {
                        (viewer.csrf_field())
                        label for="grace-hours" { "Grace period (hours)" }
                        input #grace-hours type="text" name="grace_hours" value="24" inputmode="numeric";
                        div.form-actions { button type="submit" { "Rotate secret" } }
                    }
                }
            }
        }
        h2 { "Request log" }
        table #receiver-requests {
            thead { tr { th { "Received" } th { "Event" } th { "Verification" } th.num { "Answer" } th { "Outcome" } th.num { "Events" } } }
            tbody #request-rows data-refresh="3" data-refresh-url={"/console/receivers/" (id)} {
                @for request in &requests.items { (request_row(id, request)) }
                @if requests.items.is_empty() { tr { td.empty colspan="6" { "No request yet. Point the code host at the URL above." } } }
            }
        }
    };
    Ok(page(viewer, Area::Receivers, &title, content))
}

fn request_row(receiver: ReceiverId, request: &ReceiverRequestSummary) -> Markup {
    html! {
        tr {
            td { a href={"/console/receivers/" (receiver) "/requests/" (request.id)} { (time(request.received_at)) } }
            td { code { (request.event_name.as_deref().unwrap_or("—")) } }
            td {
                (badge(if request.verified { "verified" } else { "failed" }))
                " " span.hint { (request.verification) }
            }
            td.num { code { (request.status_code) } }
            td { (request.outcome.as_str()) @if let Some(message) = &request.message { div.hint { (message) } } }
            td.num { (request.event_ids.len()) }
        }
    }
}

/// `GET /console/receivers/{id}/delete`: asks first.
pub async fn delete_confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<ReceiverId>,
) -> Result<Html, ConsoleError> {
    let view = state.app().receiver(id).await?;
    let title = receiver_title(&view);
    let base = format!("/console/receivers/{id}");
    let ask = DeleteConfirmation {
        list: ("Receivers", "/console/receivers"),
        base: &base,
        name: &title,
        noun: "receiver",
        consequence: html! { "This deletes the receiver with its request log. The code host's webhook to " span.url { (view.url) } " gets 404 from then on." },
    };
    Ok(delete_confirmation(&viewer, Area::Receivers, ask))
}

/// `POST /console/receivers/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    PathId(id): PathId<ReceiverId>,
) -> Result<Response, ConsoleError> {
    state.app().delete_receiver(id).await?;
    Ok(redirect("/console/receivers?done=deleted"))
}

/// `GET /console/receivers/{id}/requests/{request_id}`: one logged request.
pub async fn request(
    State(state): State<AppState>,
    viewer: Viewer,
    PathIds(id, request_id): PathIds<ReceiverId, ReceiverRequestId>,
) -> Result<Html, ConsoleError> {
    let view = state.app().receiver(id).await?;
    let detail = state.app().receiver_request(id, request_id).await?;
    let summary = &detail.summary;
    let title = receiver_title(&view);
    let content = html! {
        div.page-head { div {
            div.crumbs { a href="/console/receivers" { "Receivers" } " / " a href={"/console/receivers/" (id)} { (title) } " / " }
            h1 { "Request " code { (summary.event_name.as_deref().unwrap_or("")) } " " (badge(if summary.verified { "verified" } else { "failed" })) }
        } }
        div.card {
            dl.facts {
                dt { "Received" } dd { (time(summary.received_at)) }
                dt { "Verification" } dd { (summary.verification) }
                dt { "Answered" } dd { code { (summary.status_code) } }
                dt { "Outcome" } dd { (summary.outcome.as_str()) @if let Some(message) = &summary.message { " · " (message) } }
                @if let Some(delivery) = &summary.delivery_id { dt { "Delivery id" } dd.mono { (delivery) } }
                dt { "Events produced" } dd { @for event in &summary.event_ids { div.mono { (event) } } @if summary.event_ids.is_empty() { "none" } }
            }
        }
        div.card {
            h2 { "Headers" }
            table.headers { tbody { @for (name, value) in &detail.headers { tr { td { (name) } td { (value) } } } } }
            h2 { "Body" @if detail.body_truncated { " (truncated)" } }
            pre { (String::from_utf8_lossy(&detail.body)) }
        }
    };
    Ok(page(&viewer, Area::Receivers, "Request", content))
}

/// Which events to select on each code host, as seed 002 lists them.
fn setup_steps(kind: &str) -> Markup {
    match kind {
        "github" => html! { ol {
            li { "Open the organization's (or repository's) " b { "Settings › Webhooks › Add webhook" } "." }
            li { b { "Payload URL" } ": the receiver URL; " b { "Content type" } ": " code { "application/json" } "; " b { "Secret" } ": the receiver's secret." }
            li { b { "Let me select individual events" } ": Issue comments, Pull requests, Pull request reviews, Pull request review comments, Check runs, Check suites, Statuses, and Pushes." }
            li { "Click " b { "Add webhook" } ": GitHub's " code { "ping" } " appears in the request log below." }
        } },
        "gitlab" => html! { ol {
            li { "Open the project's (or group's) " b { "Settings › Webhooks › Add new webhook" } "." }
            li { b { "URL" } ": the receiver URL; " b { "Secret token" } ": the receiver's secret." }
            li { b { "Trigger" } ": Merge request events, Pipeline events, Comments, Push events and Tag push events." }
            li { "Click " b { "Add webhook" } ", then " b { "Test" } "." }
        } },
        "bitbucket_server" => html! { ol {
            li { "Open the repository's (or project's) " b { "Settings › Webhooks › Create webhook" } "." }
            li { b { "URL" } ": the receiver URL; " b { "Secret" } ": the receiver's secret." }
            li { b { "Events" } ": Repository: Push; every Pull request event; Build status where offered." }
            li { b { "Test connection" } " (logged as " code { "diagnostics:ping" } "), then " b { "Save" } "." }
        } },
        "bitbucket_cloud" => html! { ol {
            li { "Open " b { "Repository settings › Webhooks › Add webhook" } "." }
            li { b { "URL" } ": the receiver URL; " b { "Secret" } ": the receiver's secret." }
            li { b { "Triggers" } ": Repository: Push, Build status created and updated, and every Pull request trigger." }
            li { "Click " b { "Save" } "." }
        } },
        _ => html! { ol {
            li { "Open " b { "Project settings › Service hooks" } ", click " b { "+" } " and choose " b { "Web Hooks" } "." }
            li { "Triggers: Code pushed; Pull request created, updated, merged and commented on; Build completed." }
            li { b { "URL" } ": the receiver URL; " b { "Basic authentication" } ": the username and password shown here." }
            li { b { "Resource details to send" } ": All; then " b { "Test" } " and " b { "Finish" } "." }
        } },
    }
}

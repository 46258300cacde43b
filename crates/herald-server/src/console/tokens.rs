//! API tokens (admin): create with a scope and an expiry (the token is shown
//! once), the list with each token's last use, and revoking.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_app::AppError;
use herald_app::tokens::TokenCreate;
use herald_core::id::TokenId;
use herald_store::TokenRecord;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::console::form::{Form, PathId};
use crate::console::page::{Area, ConsoleError, Html, Viewer, flash, page, redirect, time};

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /console/tokens`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<Done>,
) -> Result<Html, ConsoleError> {
    let notice = (query.done.as_deref() == Some("revoked")).then(|| {
        flash(
            "ok",
            "Token revoked: every request and console session using it is refused from now on.",
        )
    });
    tokens_page(&state, &viewer, notice, &TokenFields::default(), None).await
}

#[derive(Debug, Default)]
struct TokenFields {
    name: String,
    scope: String,
    project: String,
    expires_in: String,
}

impl TokenFields {
    fn from_form(form: &Form) -> Self {
        Self {
            name: form.get("name").unwrap_or_default().to_owned(),
            scope: form.get("scope").unwrap_or_default().to_owned(),
            project: form.get("project").unwrap_or_default().trim().to_owned(),
            expires_in: form.get("expires_in").unwrap_or_default().trim().to_owned(),
        }
    }

    /// The scope as the application reads it: `project` takes the key typed next to it.
    fn scope(&self) -> String {
        if self.scope == "project" {
            format!("project:{}", self.project)
        } else {
            self.scope.clone()
        }
    }
}

async fn tokens_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<Markup>,
    fields: &TokenFields,
    error: Option<&AppError>,
) -> Result<Html, ConsoleError> {
    let tokens = state.app().list_tokens(&viewer.principal).await?;
    let content = html! {
        div.page-head { div {
            h1 { "API tokens" }
            p.muted { "Tokens sign programs in to the API and people in to this console. Herald keeps only a digest of each." }
        } }
        @if let Some(notice) = notice { (notice) }
        @if let Some(error) = error { p.flash.error role="alert" { (error.message) } }
        table #tokens {
            thead { tr { th { "Name" } th { "Scope" } th { "Created" } th { "Last used" } th { "Expires" } th { span.skip-label { "Actions" } } } }
            tbody {
                @for token in &tokens { (token_row(viewer, token)) }
                @if tokens.is_empty() { tr { td.empty colspan="6" { "No API tokens yet; the admin token from the data directory always works." } } }
            }
        }
        h2 { "Create a token" }
        form.stacked.card method="post" action="/console/tokens" {
            (viewer.csrf_field())
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" value=(fields.name) required maxlength="100" placeholder="what uses it, e.g. ci-publisher";
            label for="token-scope" { "Scope" }
            select #token-scope name="scope" {
                @for (value, label) in [
                    ("read", "read: see everything, change nothing, no secrets"),
                    ("publish", "publish: publish events only"),
                    ("project", "project: one project's webhooks and deliveries"),
                    ("admin", "admin: everything"),
                ] {
                    option value=(value) selected[fields.scope == value] { (label) }
                }
            }
            label for="token-project" { "Project key" }
            input #token-project type="text" name="project" value=(fields.project) placeholder="for the project scope only";
            label for="token-expires" { "Expires in" }
            input #token-expires type="text" name="expires_in" value=(fields.expires_in) placeholder="e.g. 30d, 12h; empty: never";
            p.hint { "A whole number and s, m, h or d, at most 3650d." }
            div.form-actions { button.primary type="submit" { "Create token" } }
        }
    };
    Ok(page(viewer, Area::Tokens, "API tokens", content))
}

fn token_row(viewer: &Viewer, token: &TokenRecord) -> Markup {
    html! {
        tr {
            td { (token.name) }
            td { span.tag { code { (token.scope) } } }
            td { (time(token.created_at)) }
            td { @match token.last_used_at { Some(at) => { (time(at)) } None => { span.muted { "never" } } } }
            td { @match token.expires_at { Some(at) => { (time(at)) } None => { span.muted { "never" } } } }
            td {
                form method="post" action={"/console/tokens/" (token.id) "/revoke"} {
                    (viewer.csrf_field())
                    button.small.danger type="submit" aria-label={"Revoke " (token.name)} { "Revoke" }
                }
            }
        }
    }
}

/// `POST /console/tokens`: creates the token and shows it, once.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = TokenFields::from_form(&form);
    let input = TokenCreate {
        name: fields.name.clone(),
        scope: fields.scope(),
        expires_in: (!fields.expires_in.is_empty()).then(|| fields.expires_in.clone()),
    };
    match state.app().create_token(&viewer.principal, input).await {
        Ok(created) => {
            let notice = html! {
                div.card {
                    h2 { "Token " (created.record.name) " created" }
                    p { "Copy it now: Herald keeps only its digest and cannot show it again." }
                    div.secret-box {
                        code #new-token { (created.token.expose()) }
                        button.small type="button" data-copy="new-token" hidden { "Copy" }
                    }
                }
            };
            let html =
                tokens_page(&state, &viewer, Some(notice), &TokenFields::default(), None).await?;
            Ok((StatusCode::CREATED, html).into_response())
        }
        Err(error) if error.kind == herald_app::ErrorKind::Invalid => {
            let html = tokens_page(&state, &viewer, None, &fields, Some(&error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /console/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<TokenId>,
) -> Result<Response, ConsoleError> {
    state.app().revoke_token(&viewer.principal, id).await?;
    Ok(redirect("/console/tokens?done=revoked"))
}

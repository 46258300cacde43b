//! Repositories and code monitors: the repositories with their last fetch,
//! heads and last error; monitors with their query, actions and state;
//! creating and editing a monitor (description, query, webhook and Slack
//! actions) with its query checked as it is typed (the error shown at its
//! position); "run now"; and the run log as Sourcegraph shows it, with each
//! action's status and message.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_app::monitors::operations::{
    ActionInput, ActionTestResult, MonitorCreate, MonitorDetails, MonitorUpdate, RunActionOutcome,
    RunLogEntry,
};
use herald_app::tokens::Permission;
use herald_app::{AppError, ErrorKind};
use herald_core::id::WebhookId;
use herald_store::{ActionKind, MonitorId, RepositoryId, RepositoryRecord};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::console::form::{Form, PathId};
use crate::console::page::{Area, ConsoleError, Html, Viewer, badge, flash, page, redirect, time};

/// `GET /console/monitors`: repositories and monitors.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html, ConsoleError> {
    monitors_page(&state, &viewer, &MonitorFields::default(), None).await
}

#[derive(Debug, Default)]
struct MonitorFields {
    description: String,
    query: String,
    /// The new action's kind as the form names it: `webhook` or `slack`.
    kind: String,
    url: String,
}

impl MonitorFields {
    fn from_form(form: &Form) -> Self {
        Self {
            description: form
                .get("description")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            query: form.get("query").unwrap_or_default().to_owned(),
            kind: form.get("kind").unwrap_or("webhook").to_owned(),
            url: form.get("url").unwrap_or_default().trim().to_owned(),
        }
    }

    fn kind(&self) -> ActionKind {
        if self.kind == "slack" {
            ActionKind::Slack
        } else {
            ActionKind::Webhook
        }
    }

    /// The action the form adds, if its URL was given.
    fn new_action(&self) -> Option<ActionInput> {
        (!self.url.is_empty()).then(|| ActionInput {
            id: None,
            kind: self.kind(),
            url: Some(self.url.clone()),
            secret: None,
            include_results: Some(true),
        })
    }
}

async fn monitors_page(
    state: &AppState,
    viewer: &Viewer,
    fields: &MonitorFields,
    error: Option<&AppError>,
) -> Result<Html, ConsoleError> {
    let repositories = state.app().list_repositories().await?;
    let monitors = state.app().list_monitors().await?;
    let admin = viewer.can(Permission::Admin);
    let content = html! {
        div.page-head { div {
            h1 { "Code monitors" }
            p.muted { "Monitors search the new commits of mirrored repositories and notify their actions of every match." }
        } }
        h2 { "Repositories" }
        table #repositories {
            thead { tr { th { "Repository" } th { "Source" } th { "Last fetch" } th { "Heads" } th { "Last error" } @if admin { th { span { "Fetch" } } } } }
            tbody {
                @for repository in &repositories { (repository_row(viewer, repository, admin)) }
                @if repositories.is_empty() { tr { td.empty colspan="5" { "No repositories yet (add them with the API or the CLI)." } } }
            }
        }
        h2 { "Monitors" }
        table #monitors {
            thead { tr { th { "Description" } th { "Query" } th { "Actions" } th { "State" } } }
            tbody {
                @for monitor in &monitors {
                    tr {
                        td { a href={"/console/monitors/" (monitor.id)} { (monitor.description) } }
                        td { code { (monitor.query) } }
                        td { @for action in &monitor.actions { span.tag { (action.kind.as_str()) } } }
                        td { (badge(if monitor.enabled { "enabled" } else { "disabled" })) }
                    }
                }
                @if monitors.is_empty() { tr { td.empty colspan="4" { "No monitors yet." } } }
            }
        }
        @if admin { (create_form(viewer, fields, error)) }
    };
    Ok(page(viewer, Area::Monitors, "Code monitors", content))
}

fn repository_row(viewer: &Viewer, repository: &RepositoryRecord, admin: bool) -> Markup {
    html! {
        tr {
            td { code { (repository.name) } }
            td.url { (repository.source_display) }
            td { @match repository.last_fetched_at { Some(at) => { (time(at)) } None => { span.muted { "never" } } } }
            td {
                @if let Some(heads) = &repository.heads {
                    @for (branch, head) in heads.iter() { div.mono { (branch) " " (head.chars().take(10).collect::<String>()) } }
                }
            }
            td { @if let Some(error) = &repository.last_error { span.field-error { (error) } } }
            @if admin {
                td {
                    form method="post" action={"/console/repositories/" (repository.id) "/fetch"} {
                        (viewer.csrf_field())
                        button.small type="submit" aria-label={"Fetch " (repository.name) " now"} { "Fetch now" }
                    }
                }
            }
        }
    }
}

fn create_form(viewer: &Viewer, fields: &MonitorFields, error: Option<&AppError>) -> Markup {
    html! {
        h2 { "Create a monitor" }
        form.stacked.card method="post" action="/console/monitors" {
            (viewer.csrf_field())
            (description_and_query(fields, error))
            (new_action_fields(fields, "Action", true))
            (field_error(error, "actions"))
            div.form-actions { button.primary type="submit" { "Create monitor" } }
        }
    }
}

/// The description and the query, checked as it is typed; a refusal of the
/// query is shown under it at its position.
fn description_and_query(fields: &MonitorFields, error: Option<&AppError>) -> Markup {
    let position = error.and_then(|e| e.details.position);
    let query_at_fault = error.is_some_and(|e| {
        e.details.position.is_some() || e.details.field.as_deref() == Some("query")
    });
    html! {
        label for="monitor-description" { "Description" }
        input #monitor-description type="text" name="description" value=(fields.description) required;
        (field_error(error, "description"))
        label for="monitor-query" { "Query" }
        input #monitor-query.mono type="text" name="query" value=(fields.query) required
            data-check-query="/console/monitors/check-query" aria-describedby="query-check"
            placeholder="repo:github.com/acme/web type:diff select:commit.diff.added TODO";
        div #query-check aria-live="polite" {
            @if let Some(error) = error.filter(|_| query_at_fault) {
                (query_error(&fields.query, position, &error.message))
            }
        }
    }
}

/// The application's refusal, if it names `field` (or one of its parts).
fn field_error(error: Option<&AppError>, field: &str) -> Markup {
    let names = |e: &&AppError| {
        e.details.field.as_deref().is_some_and(|at| {
            at == field
                || at.starts_with(&format!("{field}["))
                || at.starts_with(&format!("{field}."))
        })
    };
    html! {
        @if let Some(error) = error.filter(names) { p.field-error role="alert" { (error.message) } }
    }
}

/// A new action: its kind (a signed webhook or a Slack incoming webhook) and URL.
fn new_action_fields(fields: &MonitorFields, legend: &str, required: bool) -> Markup {
    html! {
        fieldset.new-action {
            legend { (legend) }
            div.choices {
                label.check { input type="radio" name="kind" value="webhook" checked[fields.kind() == ActionKind::Webhook]; " Call a webhook" }
                label.check { input type="radio" name="kind" value="slack" checked[fields.kind() == ActionKind::Slack]; " Send a Slack message" }
            }
            label for="monitor-url" { "Action URL" }
            input #monitor-url.mono type="url" name="url" value=(fields.url) required[required] placeholder="https://hooks.example.com/monitor";
            p.hint { "A webhook gets Sourcegraph's code monitor payload, signed with a generated secret; a Slack incoming webhook (https://hooks.slack.com/services/…) gets a message listing the matches." }
        }
    }
}

/// The query with a mark where the parser stopped, and its reason.
fn query_error(query: &str, position: Option<usize>, message: &str) -> Markup {
    let at = position.map(|p| {
        let mut at = p.min(query.len());
        while !query.is_char_boundary(at) {
            at -= 1;
        }
        at
    });
    html! {
        div.query-error role="alert" {
            @if let Some(at) = at {
                pre.query { (&query[..at]) mark { (query[at..].chars().next().map(String::from).unwrap_or_else(|| " ".to_owned())) } (query[at..].chars().skip(1).collect::<String>()) }
            }
            p.field-error { (message) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    query: String,
}

#[derive(Debug, Serialize)]
pub struct QueryCheck {
    ok: bool,
    message: Option<String>,
    position: Option<usize>,
}

/// `GET /console/monitors/check-query?query=`: the script's check as the
/// person types, with the parser's own error and position.
pub async fn check_query(
    State(state): State<AppState>,
    Query(query): Query<CheckQuery>,
) -> Json<QueryCheck> {
    Json(match state.app().check_monitor_query(&query.query) {
        Ok(()) => QueryCheck {
            ok: true,
            message: None,
            position: None,
        },
        Err(error) => QueryCheck {
            ok: false,
            position: error.details.position,
            message: Some(error.message),
        },
    })
}

/// `POST /console/monitors`.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = MonitorFields::from_form(&form);
    let input = MonitorCreate {
        description: fields.description.clone(),
        query: fields.query.clone(),
        enabled: true,
        actions: fields.new_action().into_iter().collect(),
    };
    match state.app().create_monitor(input).await {
        Ok(created) => {
            let html = detail_page(&state, &viewer, &created, None).await?;
            Ok((StatusCode::CREATED, html).into_response())
        }
        Err(error) if matches!(error.kind, ErrorKind::Invalid | ErrorKind::Malformed) => {
            let html = monitors_page(&state, &viewer, &fields, Some(&error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /console/monitors/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<MonitorId>,
) -> Result<Html, ConsoleError> {
    let monitor = state.app().monitor(id).await?;
    let fields = MonitorFields {
        description: monitor.description.clone(),
        query: monitor.query.clone(),
        ..MonitorFields::default()
    };
    Ok(edit_page(&viewer, &monitor, &fields, &[], None))
}

fn edit_page(
    viewer: &Viewer,
    monitor: &MonitorDetails,
    fields: &MonitorFields,
    removed: &[WebhookId],
    error: Option<&AppError>,
) -> Html {
    let content = html! {
        div.page-head { div {
            div.crumbs { a href="/console/monitors" { "Code monitors" } " / " a href={"/console/monitors/" (monitor.id)} { (monitor.description) } " / " }
            h1 { "Edit monitor" }
        } }
        form.stacked.card method="post" action={"/console/monitors/" (monitor.id)} {
            (viewer.csrf_field())
            (description_and_query(fields, error))
            fieldset #actions {
                legend { "Actions" }
                @if monitor.actions.is_empty() { p.muted { "No actions: the monitor notifies nobody." } }
                @for (index, action) in monitor.actions.iter().enumerate() {
                    div.action-row {
                        input type="hidden" name="action" value=(action.id);
                        input type="hidden" name="action_kind" value=(action.kind.as_str());
                        label for={"action-url-" (index)} {
                            span.tag { (action.kind.as_str()) } " "
                            span.url { (action.url.as_deref().unwrap_or("deleted")) }
                        }
                        input id={"action-url-" (index)} .mono type="url" name="action_url"
                            placeholder="New URL (leave empty to keep the current one)";
                        label.check {
                            input type="checkbox" name="remove" value=(action.id) checked[removed.contains(&action.id)];
                            " Remove this action"
                        }
                    }
                }
            }
            (new_action_fields(fields, "Add an action (optional)", false))
            (field_error(error, "actions"))
            div.form-actions {
                button.primary type="submit" { "Save monitor" }
                a.button href={"/console/monitors/" (monitor.id)} { "Cancel" }
            }
        }
    };
    page(viewer, Area::Monitors, "Edit monitor", content)
}

/// The actions the edit form keeps (a new URL or none), in the monitor's
/// order, then the one it adds.
fn edited_actions(form: &Form, fields: &MonitorFields) -> (Vec<ActionInput>, Vec<WebhookId>) {
    let removed: Vec<WebhookId> = form
        .all("remove")
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    let ids = form.all("action");
    let kinds = form.all("action_kind");
    let urls = form.all("action_url");
    let mut actions = Vec::with_capacity(ids.len() + 1);
    for ((id, kind), url) in ids.iter().zip(&kinds).zip(&urls) {
        let Ok(id) = id.parse::<WebhookId>() else {
            continue;
        };
        if removed.contains(&id) {
            continue;
        }
        let url = url.trim();
        actions.push(ActionInput {
            id: Some(id),
            kind: if kind == "slack" {
                ActionKind::Slack
            } else {
                ActionKind::Webhook
            },
            url: (!url.is_empty()).then(|| url.to_owned()),
            secret: None,
            include_results: None,
        });
    }
    actions.extend(fields.new_action());
    (actions, removed)
}

/// `POST /console/monitors/{id}`: saves the edit form.
pub async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<MonitorId>,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = MonitorFields::from_form(&form);
    let (actions, removed) = edited_actions(&form, &fields);
    let update = MonitorUpdate {
        description: Some(fields.description.clone()),
        query: Some(fields.query.clone()),
        enabled: None,
        actions: Some(actions),
    };
    match state.app().update_monitor(id, update).await {
        Ok(updated) => {
            let notice = flash("ok", "Monitor saved.");
            let html = detail_page(&state, &viewer, &updated, Some(notice)).await?;
            Ok(html.into_response())
        }
        Err(error) if matches!(error.kind, ErrorKind::Invalid | ErrorKind::Malformed) => {
            let monitor = state.app().monitor(id).await?;
            let html = edit_page(&viewer, &monitor, &fields, &removed, Some(&error));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /console/monitors/{id}`: the monitor and its run log.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<MonitorId>,
) -> Result<Html, ConsoleError> {
    let monitor = state.app().monitor(id).await?;
    detail_page(&state, &viewer, &monitor, None).await
}

/// `POST /console/repositories/{id}/fetch`: fetches now; the list shows the result.
pub async fn fetch(
    State(state): State<AppState>,
    PathId(id): PathId<RepositoryId>,
) -> Result<Response, ConsoleError> {
    state.app().fetch_repository(id).await?;
    Ok(redirect("/console/monitors"))
}

/// `POST /console/monitors/{id}/enabled`.
pub async fn set_enabled(
    State(state): State<AppState>,
    PathId(id): PathId<MonitorId>,
    form: Form,
) -> Result<Response, ConsoleError> {
    let update = MonitorUpdate {
        enabled: Some(form.get("enabled") == Some("true")),
        ..MonitorUpdate::default()
    };
    state.app().update_monitor(id, update).await?;
    Ok(redirect(&format!("/console/monitors/{id}")))
}

/// `POST /console/monitors/{id}/test`: sends every action a test notification now.
pub async fn test(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<MonitorId>,
) -> Result<Html, ConsoleError> {
    let results = state.app().test_monitor(id).await?;
    let monitor = state.app().monitor(id).await?;
    detail_page(&state, &viewer, &monitor, Some(test_results(&results))).await
}

fn test_results(results: &[ActionTestResult]) -> Markup {
    html! {
        div #test-result.card {
            h2 { "Test notifications" }
            table {
                thead { tr { th { "Action" } th { "Result" } th.num { "Status" } th.num { "Duration" } th { "Answer or error" } } }
                tbody {
                    @for result in results {
                        tr {
                            td { span.tag { (result.kind.as_str()) } }
                            td { (badge(if result.outcome.success { "succeeded" } else { "failed" })) }
                            td.num { @if let Some(status) = result.outcome.status { code { (status) } } }
                            td.num { (result.outcome.duration_ms) " ms" }
                            td {
                                @if let Some(error) = &result.outcome.error { (error) }
                                @if let Some(body) = &result.outcome.body_excerpt { div.mono { (body) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /console/monitors/{id}/run`: searches now, then shows the run log.
pub async fn run(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<MonitorId>,
) -> Result<Html, ConsoleError> {
    let runs = state.app().run_monitor(id).await?;
    let monitor = state.app().monitor(id).await?;
    let notice = flash(
        "ok",
        &format!(
            "Searched {} repositories now; their runs are in the log below.",
            runs.len()
        ),
    );
    detail_page(&state, &viewer, &monitor, Some(notice)).await
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    monitor: &MonitorDetails,
    notice: Option<Markup>,
) -> Result<Html, ConsoleError> {
    let runs = state.app().monitor_run_log(monitor.id, None).await?;
    let content = html! {
        div.page-head {
            div {
                div.crumbs { a href="/console/monitors" { "Code monitors" } " / " }
                h1 { (monitor.description) }
            }
            @if viewer.can(Permission::Admin) {
                div.actions {
                    a.button href={"/console/monitors/" (monitor.id) "/edit"} { "Edit" }
                    form method="post" action={"/console/monitors/" (monitor.id) "/enabled"} {
                        (viewer.csrf_field())
                        input type="hidden" name="enabled" value=(if monitor.enabled { "false" } else { "true" });
                        button type="submit" { (if monitor.enabled { "Disable" } else { "Enable" }) }
                    }
                    form method="post" action={"/console/monitors/" (monitor.id) "/test"} {
                        (viewer.csrf_field())
                        button type="submit" { "Send test notification" }
                    }
                    form method="post" action={"/console/monitors/" (monitor.id) "/run"} {
                        (viewer.csrf_field())
                        button.primary type="submit" { "Run now" }
                    }
                }
            }
        }
        @if let Some(notice) = notice { (notice) }
        div.card {
            dl.facts {
                dt { "Query" } dd { code { (monitor.query) } }
                dt { "State" } dd { (badge(if monitor.enabled { "enabled" } else { "disabled" })) }
                dt { "Actions" } dd {
                    @for action in &monitor.actions {
                        div {
                            span.tag { (action.kind.as_str()) } " "
                            a href={"/console/webhooks/" (action.id)} { span.url { (action.url.as_deref().unwrap_or("deleted")) } }
                            @if let Some(secret) = &action.secret { " · secret (shown once): " code { (secret.expose()) } }
                        }
                    }
                }
                dt { "Created" } dd { (time(monitor.created_at)) }
            }
        }
        h2 { "Run log" }
        table #runs {
            thead { tr { th { "Finished" } th { "Repository" } th.num { "Commits searched" } th.num { "Results" } th { "Actions" } th { "Error" } } }
            tbody { @for entry in &runs { (run_row(entry)) }
                @if runs.is_empty() { tr { td.empty colspan="6" { "No run yet: monitors search commits fetched after they were created." } } } }
        }
    };
    Ok(page(viewer, Area::Monitors, &monitor.description, content))
}

/// How many of a run's matched commits its row lists (the notification
/// behind the action's status has them all).
const SHOWN_COMMITS: usize = 3;

fn run_row(entry: &RunLogEntry) -> Markup {
    let run = &entry.run;
    html! {
        tr {
            td { (time(run.finished_at)) }
            td { code { (run.repository_name) } }
            td.num { (run.commits_scanned) }
            td.num {
                span.results { (run.matches) }
                @for commit in run.commits.iter().take(SHOWN_COMMITS) {
                    div.hint { code title=(commit) { (commit.get(..12).unwrap_or(commit)) } }
                }
                @if run.commits.len() > SHOWN_COMMITS {
                    div.hint { "and " (run.commits.len() - SHOWN_COMMITS) " more" }
                }
            }
            td {
                @if run.event_ids.is_empty() { span.muted { "nothing to notify" } }
                @for outcome in &entry.actions { (action_outcome(outcome)) }
            }
            td { @if let Some(error) = &run.error { (badge("error")) " " (error) } }
        }
    }
}

/// One action's status for a run and its message: the answer's status code
/// or the error, linking to the delivery's attempts.
fn action_outcome(outcome: &RunActionOutcome) -> Markup {
    html! {
        div.run-action {
            span.tag { (outcome.kind.as_str()) } " "
            @match &outcome.delivery {
                Some(delivery) => {
                    a href={"/console/deliveries/" (delivery.id)} { (badge(delivery.status.as_str())) }
                    @if let Some(code) = delivery.last_status_code { " " code { "HTTP " (code) } }
                    @if let Some(error) = &delivery.last_error { " " span.field-error { (error) } }
                    @if delivery.attempts == 0 { " " span.muted { "not attempted yet" } }
                }
                None => { span.muted { "no delivery (action added later, or purged)" } }
            }
        }
    }
}

//! `/api/v1/monitors`: code monitors. Create (the query is checked, and the
//! monitor starts from the repositories' current heads), list, read, change and
//! delete them; send each action a test notification; run one now; read its
//! last runs.
//!
//! Each action is a webhook of its own in the monitor's scope
//! (`code-monitor:<monitor id>`, named `code monitor <id> · <type>`): it is
//! signed, retried and logged like any webhook, and `GET
//! /api/v1/webhooks/{action id}/deliveries` is its delivery log. The webhook
//! list shows these webhooks too, recognisable by their project; change them
//! through the monitor, which creates, updates and deletes them with itself.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_app::monitors::operations::{
    ActionDetails, ActionInput, ActionTestResult as AppActionTest, MonitorCreate, MonitorDetails,
    MonitorUpdate,
};
use herald_core::id::{EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{ActionKind, MonitorId, MonitorRunRecord, RepositoryId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Admin, routes!(create_monitor))
        .add(Access::Read, routes!(list_monitors))
        .add(Access::Read, routes!(get_monitor))
        .add(Access::Admin, routes!(update_monitor))
        .add(Access::Admin, routes!(delete_monitor))
        .add(Access::Admin, routes!(test_monitor))
        .add(Access::Admin, routes!(run_monitor))
        .add(Access::Read, routes!(list_runs))
}

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// "Call a webhook": POSTs the `code_monitor:notification` payload, signed
    /// (Standard Webhooks) with the action's secret.
    Webhook,
    /// A Slack incoming webhook: POSTs a Block Kit message (`code_monitor:slack`).
    Slack,
}

impl From<ActionKind> for ActionType {
    fn from(kind: ActionKind) -> Self {
        match kind {
            ActionKind::Webhook => Self::Webhook,
            ActionKind::Slack => Self::Slack,
        }
    }
}

impl From<ActionType> for ActionKind {
    fn from(kind: ActionType) -> Self {
        match kind {
            ActionType::Webhook => Self::Webhook,
            ActionType::Slack => Self::Slack,
        }
    }
}

/// An action as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Action {
    /// The action's webhook; its delivery log is `GET /api/v1/webhooks/{id}/deliveries`.
    pub id: WebhookId,
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// The target, credentials obscured (and a Slack URL's token); null if the
    /// webhook was deleted through the webhooks API.
    pub url: Option<String>,
    /// False leaves `results` out of what this action is sent.
    pub include_results: bool,
    /// False once Herald disabled the webhook (its target answered 410 Gone).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The webhook action's signing secret: only in the answer that created the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Monitor {
    #[schema(value_type = String, format = Uuid)]
    pub id: MonitorId,
    pub description: String,
    #[schema(example = "type:diff repo:^github\\.com/acme/ BEGIN RSA PRIVATE KEY")]
    pub query: String,
    pub enabled: bool,
    pub actions: Vec<Action>,
    /// This monitor's page, the `monitorURL` of its notifications.
    pub url: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorList {
    /// Oldest first.
    pub items: Vec<Monitor>,
}

fn enabled_by_default() -> bool {
    true
}

/// One action of a create or update request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Keeps an existing action of this monitor (updates only); its fields
    /// below change only when given. Omitted: a new action.
    #[serde(default)]
    pub id: Option<WebhookId>,
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// `http` or `https`, at most 512 characters. Required for a new action.
    #[serde(default)]
    pub url: Option<String>,
    /// Webhook actions: 1 to 200 characters; a new one without it gets a
    /// generated `whsec_` secret. Slack actions take none.
    #[serde(default)]
    pub secret: Option<String>,
    /// Default true for a new action.
    #[serde(default)]
    pub include_results: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMonitor {
    /// 1 to 1000 characters.
    pub description: String,
    /// A code monitor query: `type:diff` or `type:commit` in every branch, with
    /// `repo:`, `file:`, `author:`, `message:`, `before:`, `after:`, `case:yes`,
    /// `patterntype:` and `OR`. A query the parser refuses is a 422
    /// (`invalid_search_query`), a grammar this schema does not state.
    pub query: String,
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// At most 10.
    #[serde(default)]
    pub actions: Vec<ActionRequest>,
}

/// Changes the fields present. `actions` replaces the list: actions listed
/// with their `id` are kept (and changed as given), the others are deleted
/// with their delivery logs, and those without `id` are created. A new query,
/// or enabling a disabled monitor, starts it from the repositories' current
/// heads.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMonitor {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub actions: Option<Vec<ActionRequest>>,
}

/// One run: a search of one repository's new commits.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    #[schema(value_type = String, format = Uuid)]
    pub id: herald_store::MonitorRunId,
    #[schema(value_type = String, format = Uuid)]
    pub repository_id: RepositoryId,
    pub repository: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// New commits read.
    pub commits_scanned: u64,
    /// Results notified (a commit matching both its diff and its message counts twice).
    pub matches: u64,
    /// The matched commits, newest first.
    pub commits: Vec<String>,
    /// Some matches were not reported. Only runs from before every match was
    /// delivered (over as many notifications as needed) can say so.
    pub truncated: bool,
    /// Why the search failed; its commits are searched again at the next fetch.
    pub error: Option<String>,
    /// The events published: the `code_monitor:notification` first.
    pub event_ids: Vec<EventId>,
    /// How the matches were split: one entry per notification published, in
    /// order. A delivery says which part it is in its `Herald-Notification-Part`
    /// and `Herald-Notification-Parts` headers.
    pub notifications: Vec<RunNotification>,
}

/// One notification of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunNotification {
    #[schema(value_type = String, format = Uuid)]
    pub event_id: EventId,
    /// `code_monitor:notification` or `code_monitor:slack`.
    pub event_type: String,
    /// Which part this is (1-based) of the run's notifications of its kind
    /// (type, and with or without results).
    pub part: u32,
    pub parts: u32,
    /// Results it carries; 0 for actions that leave results out.
    pub results: u32,
}

impl From<herald_store::RunNotification> for RunNotification {
    fn from(n: herald_store::RunNotification) -> Self {
        Self {
            event_id: n.event_id,
            event_type: n.event_type,
            part: n.part,
            parts: n.parts,
            results: n.results,
        }
    }
}

impl From<MonitorRunRecord> for Run {
    fn from(run: MonitorRunRecord) -> Self {
        Self {
            id: run.id,
            repository_id: run.repository_id,
            repository: run.repository_name,
            started_at: run.started_at,
            finished_at: run.finished_at,
            commits_scanned: run.commits_scanned,
            matches: run.matches,
            commits: run.commits,
            truncated: run.truncated,
            error: run.error,
            event_ids: run.event_ids,
            notifications: run
                .notifications
                .into_iter()
                .map(RunNotification::from)
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// Newest first.
    pub items: Vec<Run>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// 1 to 100; default 20.
    pub limit: Option<u32>,
}

/// What one action's test notification got.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionTestResult {
    /// The action's id.
    pub id: WebhookId,
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// True when the target answered 2xx.
    pub success: bool,
    /// The target's HTTP status; null when no response came.
    pub status: Option<u16>,
    pub duration_ms: u32,
    pub body_excerpt: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorTest {
    /// One per action, in the monitor's order.
    pub results: Vec<ActionTestResult>,
}

impl From<ActionDetails> for Action {
    fn from(action: ActionDetails) -> Self {
        Self {
            id: action.id,
            kind: action.kind.into(),
            url: action.url,
            include_results: action.include_results,
            enabled: action.enabled,
            disabled_reason: action.disabled_reason,
            secret: action.secret.map(|secret| secret.expose().to_owned()),
        }
    }
}

impl From<MonitorDetails> for Monitor {
    fn from(monitor: MonitorDetails) -> Self {
        Self {
            id: monitor.id,
            description: monitor.description,
            query: monitor.query,
            enabled: monitor.enabled,
            actions: monitor.actions.into_iter().map(Action::from).collect(),
            url: monitor.url,
            created_at: monitor.created_at,
            updated_at: monitor.updated_at,
        }
    }
}

impl From<ActionRequest> for ActionInput {
    fn from(request: ActionRequest) -> Self {
        Self {
            id: request.id,
            kind: request.kind.into(),
            url: request.url,
            secret: request.secret,
            include_results: request.include_results,
        }
    }
}

fn action_inputs(requests: Vec<ActionRequest>) -> Vec<ActionInput> {
    requests.into_iter().map(ActionInput::from).collect()
}

impl From<CreateMonitor> for MonitorCreate {
    fn from(request: CreateMonitor) -> Self {
        Self {
            description: request.description,
            query: request.query,
            enabled: request.enabled,
            actions: action_inputs(request.actions),
        }
    }
}

impl From<UpdateMonitor> for MonitorUpdate {
    fn from(request: UpdateMonitor) -> Self {
        Self {
            description: request.description,
            query: request.query,
            enabled: request.enabled,
            actions: request.actions.map(action_inputs),
        }
    }
}

impl From<AppActionTest> for ActionTestResult {
    fn from(test: AppActionTest) -> Self {
        Self {
            id: test.id,
            kind: test.kind.into(),
            success: test.outcome.success,
            status: test.outcome.status,
            duration_ms: test.outcome.duration_ms,
            body_excerpt: test.outcome.body_excerpt,
            error: test.outcome.error,
        }
    }
}

fn run_list(runs: Vec<MonitorRunRecord>) -> RunList {
    RunList {
        items: runs.into_iter().map(Run::from).collect(),
    }
}

#[utoipa::path(
    post, path = "/api/v1/monitors", tag = "code monitors",
    request_body = CreateMonitor,
    responses(
        (status = 201, description = "Created. It reports only commits fetched from now on; history is never reported. Webhook actions' secrets are in this answer only.", body = Monitor),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown; a query the parser refuses is `invalid_search_query`, with the byte `position` in the query and the `reason`", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn create_monitor(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateMonitor>,
) -> Result<(StatusCode, Json<Monitor>), ApiError> {
    let monitor = app.app().create_monitor(request.into()).await?;
    Ok((StatusCode::CREATED, Json(monitor.into())))
}

#[utoipa::path(
    get, path = "/api/v1/monitors", tag = "code monitors",
    responses(
        (status = 200, description = "Every monitor, oldest first", body = MonitorList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_monitors(State(app): State<AppState>) -> Result<Json<MonitorList>, ApiError> {
    let monitors = app.app().list_monitors().await?;
    Ok(Json(MonitorList {
        items: monitors.into_iter().map(Monitor::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "The monitor; `monitorURL` in its notifications links here", body = Monitor),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn get_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<Monitor>, ApiError> {
    Ok(Json(app.app().monitor(id).await?.into()))
}

#[utoipa::path(
    patch, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    request_body = UpdateMonitor,
    responses(
        (status = 200, description = "The updated monitor; secrets of webhook actions it created are in this answer only", body = Monitor),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown; a bad query is `invalid_search_query` with `position` and `reason`", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn update_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
    ApiJson(request): ApiJson<UpdateMonitor>,
) -> Result<Json<Monitor>, ApiError> {
    let monitor = app.app().update_monitor(id, request.into()).await?;
    Ok(Json(monitor.into()))
}

#[utoipa::path(
    delete, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 204, description = "Deleted, with its actions' webhooks and their delivery logs, what it had searched, and its runs"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn delete_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<StatusCode, ApiError> {
    app.app().delete_monitor(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/monitors/{id}/test", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "Sent each action its test notification now and waited for the answers: webhook actions get `code_monitor:notification` with query \"test query\" and no results, signed like any delivery; Slack actions a test message. Nothing is stored.", body = MonitorTest),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn test_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<MonitorTest>, ApiError> {
    let tests = app.app().test_monitor(id).await?;
    Ok(Json(MonitorTest {
        results: tests.into_iter().map(ActionTestResult::from).collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/monitors/{id}/run", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "Fetched every repository the query may match and searched the new commits now (for every monitor on them); the runs this monitor logged, newest first. None when nothing was new.", body = RunList),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 409, description = "The monitor is disabled: `monitor_disabled`", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn run_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<RunList>, ApiError> {
    Ok(Json(run_list(app.app().run_monitor(id).await?)))
}

#[utoipa::path(
    get, path = "/api/v1/monitors/{id}/runs", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id"), RunsQuery),
    responses(
        (status = 200, description = "The monitor's last runs, newest first, with their matched commits and errors (the last 100 are kept)", body = RunList),
        (status = 400, description = "Malformed id or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_runs(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    Ok(Json(run_list(
        app.app().monitor_runs(id, query.limit).await?,
    )))
}

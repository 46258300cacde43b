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
use herald_core::cipher::SecretCipher;
use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::{TargetUrl, refuse_control_chars};
use herald_monitor::parse_query;
use herald_monitors_service::actions::action_event_type;
use herald_monitors_service::{ActionTest, MonitorService, RunNow};
use herald_store::{
    ActionChange, ActionKind, MonitorAction, MonitorId, MonitorPatch, MonitorRecord,
    MonitorRunRecord, MonitorWrite, NewAction, NewMonitor, NewWebhook, RUNS_KEPT_PER_MONITOR,
    RepositoryId, WebhookPatch,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::routes::repositories::monitors;

pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Actions per monitor.
pub const MAX_ACTIONS: usize = 10;
pub const DEFAULT_RUNS: u32 = 20;

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
    /// `patterntype:` and `OR`.
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

fn validate_description(text: &str) -> Result<String, FieldError> {
    refuse_control_chars("description", text)?;
    let trimmed = text.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > MAX_DESCRIPTION_LEN {
        return Err(FieldError::new(
            "description",
            format!("must be 1 to {MAX_DESCRIPTION_LEN} characters long, got {len}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The query as given, once the parser accepts it.
fn validate_query(text: &str) -> Result<String, ApiError> {
    if let Some(bad) = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !c.is_whitespace())
    {
        return Err(ApiError::invalid_search_query(
            bad.0,
            &format!("control character U+{:04X} in the query", u32::from(bad.1)),
        ));
    }
    parse_query(text)
        .map(|_| text.to_owned())
        .map_err(|error| ApiError::invalid_search_query(error.position, &error.reason))
}

/// The URL to show: a Slack URL's path is its credential, so its last segment
/// is obscured too.
fn shown_url(url: &TargetUrl, kind: ActionKind) -> String {
    let shown = url.display();
    match kind {
        ActionKind::Webhook => shown,
        ActionKind::Slack => match shown.rsplit_once('/') {
            Some((head, last)) if !last.is_empty() => format!("{head}/***"),
            _ => shown,
        },
    }
}

/// A new action, with its secret when it signs with one shown to the caller.
struct ValidAction {
    action: NewAction,
    secret: Option<Secret>,
}

fn new_action(
    index: usize,
    request: &ActionRequest,
    monitor: MonitorId,
    cipher: &SecretCipher,
) -> Result<ValidAction, FieldError> {
    let field = |name: &str| format!("actions[{index}].{name}");
    let kind = ActionKind::from(request.kind);
    let url_text = request
        .url
        .as_deref()
        .ok_or_else(|| FieldError::new(field("url"), "a new action needs a url"))?;
    let url = TargetUrl::parse(url_text).map_err(|e| FieldError::new(field("url"), e.message))?;
    let secret = action_secret(index, request)?;
    let (signing, shown) = match (kind, secret) {
        (_, Some(secret)) => (secret.clone(), Some(secret)),
        (ActionKind::Webhook, None) => {
            let secret = Secret::generate();
            (secret.clone(), Some(secret))
        }
        // Slack ignores signatures; the webhook still needs a key to sign with.
        (ActionKind::Slack, None) => (Secret::generate(), None),
    };
    let event_type = action_event_type(kind);
    let webhook = NewWebhook {
        id: WebhookId::new(),
        name: format!("code monitor {monitor} · {}", kind.as_str()),
        url_display: shown_url(&url, kind),
        url_sealed: cipher.seal(url.expose().as_bytes()),
        secret_sealed: cipher.seal(signing.expose().as_bytes()),
        event_types: vec![EventTypePattern::parse("event_types", event_type)?],
        project: None,
        enabled: true,
    };
    Ok(ValidAction {
        action: NewAction {
            kind,
            include_results: request.include_results.unwrap_or(true),
            webhook,
        },
        secret: shown,
    })
}

fn action_secret(index: usize, request: &ActionRequest) -> Result<Option<Secret>, FieldError> {
    let field = format!("actions[{index}].secret");
    match (request.kind, request.secret.as_deref()) {
        (_, None) => Ok(None),
        (ActionType::Slack, Some(_)) => Err(FieldError::new(
            field,
            "Slack actions take no secret: Slack does not check signatures",
        )),
        (ActionType::Webhook, Some(text)) => Secret::parse(text)
            .map(Some)
            .map_err(|e| FieldError::new(field, e.message)),
    }
}

fn check_action_count(count: usize) -> Result<(), FieldError> {
    if count > MAX_ACTIONS {
        return Err(FieldError::new(
            "actions",
            format!("a monitor has at most {MAX_ACTIONS} actions, got {count}"),
        ));
    }
    Ok(())
}

/// The secrets of actions created by this request, to show once.
type NewSecrets = Vec<(WebhookId, Secret)>;

fn new_secret(valid: &ValidAction) -> Option<(WebhookId, Secret)> {
    valid
        .secret
        .clone()
        .map(|secret| (valid.action.webhook.id, secret))
}

/// The request's actions as changes to `current`'s.
fn action_changes(
    requests: &[ActionRequest],
    current: &MonitorRecord,
    cipher: &SecretCipher,
) -> Result<(Vec<ActionChange>, NewSecrets), FieldError> {
    check_action_count(requests.len())?;
    let mut changes = Vec::with_capacity(requests.len());
    let mut secrets = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let Some(id) = request.id else {
            let valid = new_action(index, request, current.id, cipher)?;
            secrets.extend(new_secret(&valid));
            changes.push(ActionChange::Add(valid.action));
            continue;
        };
        changes.push(kept_action(index, request, id, current, cipher)?);
    }
    Ok((changes, secrets))
}

fn kept_action(
    index: usize,
    request: &ActionRequest,
    id: WebhookId,
    current: &MonitorRecord,
    cipher: &SecretCipher,
) -> Result<ActionChange, FieldError> {
    let field = |name: &str| format!("actions[{index}].{name}");
    let Some(existing) = current.actions.iter().find(|a| a.webhook_id == id) else {
        return Err(FieldError::new(
            field("id"),
            format!("{id} is not one of this monitor's actions"),
        ));
    };
    if ActionType::from(existing.kind) != request.kind {
        return Err(FieldError::new(
            field("type"),
            "an action's type cannot change; delete it and add another",
        ));
    }
    let url = request
        .url
        .as_deref()
        .map(TargetUrl::parse)
        .transpose()
        .map_err(|e| FieldError::new(field("url"), e.message))?;
    let secret = action_secret(index, request)?;
    Ok(ActionChange::Keep {
        webhook_id: id,
        include_results: request.include_results.unwrap_or(existing.include_results),
        webhook: WebhookPatch {
            url: url.map(|url| {
                (
                    shown_url(&url, existing.kind),
                    cipher.seal(url.expose().as_bytes()),
                )
            }),
            secret_sealed: secret.map(|s| cipher.seal(s.expose().as_bytes())),
            ..WebhookPatch::default()
        },
    })
}

/// The monitor as the API shows it, with each action's webhook looked up.
async fn show(
    service: &MonitorService,
    app: &AppState,
    record: MonitorRecord,
    secrets: &NewSecrets,
) -> Result<Monitor, ApiError> {
    let mut actions = Vec::with_capacity(record.actions.len());
    for action in &record.actions {
        actions.push(show_action(app, action, secrets).await?);
    }
    Ok(Monitor {
        id: record.id,
        url: service.monitor_url(record.id),
        description: record.description,
        query: record.query,
        enabled: record.enabled,
        actions,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

async fn show_action(
    app: &AppState,
    action: &MonitorAction,
    secrets: &NewSecrets,
) -> Result<Action, ApiError> {
    let webhook = app.store.get_webhook(action.webhook_id).await?;
    Ok(Action {
        id: action.webhook_id,
        kind: action.kind.into(),
        url: webhook.as_ref().map(|w| w.url_display.clone()),
        include_results: action.include_results,
        enabled: webhook.as_ref().is_some_and(|w| w.enabled),
        disabled_reason: webhook.and_then(|w| w.disabled_reason),
        secret: secrets
            .iter()
            .find(|(id, _)| *id == action.webhook_id)
            .map(|(_, secret)| secret.expose().to_owned()),
    })
}

async fn find_monitor(service: &MonitorService, id: MonitorId) -> Result<MonitorRecord, ApiError> {
    service
        .store()
        .get_monitor(id)
        .await?
        .ok_or_else(|| ApiError::not_found("monitor", id))
}

#[utoipa::path(
    post, path = "/api/v1/monitors", tag = "code monitors",
    request_body = CreateMonitor,
    responses(
        (status = 201, description = "Created. It reports only commits fetched from now on; history is never reported. Webhook actions' secrets are in this answer only.", body = Monitor),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown; a query the parser refuses is `invalid_search_query`, with the byte `position` in the query and the `reason`", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn create_monitor(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateMonitor>,
) -> Result<(StatusCode, Json<Monitor>), ApiError> {
    let service = monitors(&app)?;
    let description =
        validate_description(&request.description).map_err(ApiError::invalid_field)?;
    let query = validate_query(&request.query)?;
    check_action_count(request.actions.len()).map_err(ApiError::invalid_field)?;
    let id = MonitorId::new();
    let mut actions = Vec::with_capacity(request.actions.len());
    let mut secrets = Vec::new();
    for (index, action) in request.actions.iter().enumerate() {
        if action.id.is_some() {
            return Err(ApiError::unknown_field(
                &format!("actions[{index}].id"),
                format!("actions[{index}].id: a new monitor has no actions to keep; leave id out"),
            ));
        }
        let valid = new_action(index, action, id, &app.cipher).map_err(ApiError::invalid_field)?;
        secrets.extend(new_secret(&valid));
        actions.push(valid.action);
    }
    let record = service
        .store()
        .create_monitor(NewMonitor {
            id,
            description,
            query,
            enabled: request.enabled,
            actions,
        })
        .await?;
    let shown = show(service, &app, record, &secrets).await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

#[utoipa::path(
    get, path = "/api/v1/monitors", tag = "code monitors",
    responses(
        (status = 200, description = "Every monitor, oldest first", body = MonitorList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_monitors(State(app): State<AppState>) -> Result<Json<MonitorList>, ApiError> {
    let service = monitors(&app)?;
    let mut items = Vec::new();
    for record in service.store().list_monitors().await? {
        items.push(show(service, &app, record, &Vec::new()).await?);
    }
    Ok(Json(MonitorList { items }))
}

#[utoipa::path(
    get, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "The monitor; `monitorURL` in its notifications links here", body = Monitor),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn get_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<Monitor>, ApiError> {
    let service = monitors(&app)?;
    let record = find_monitor(service, id).await?;
    Ok(Json(show(service, &app, record, &Vec::new()).await?))
}

#[utoipa::path(
    patch, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    request_body = UpdateMonitor,
    responses(
        (status = 200, description = "The updated monitor; secrets of webhook actions it created are in this answer only", body = Monitor),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
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
    let service = monitors(&app)?;
    let current = find_monitor(service, id).await?;
    let description = request
        .description
        .as_deref()
        .map(validate_description)
        .transpose()
        .map_err(ApiError::invalid_field)?;
    let query = request.query.as_deref().map(validate_query).transpose()?;
    let (actions, secrets) = match &request.actions {
        Some(requests) => {
            let (changes, secrets) =
                action_changes(requests, &current, &app.cipher).map_err(ApiError::invalid_field)?;
            (Some(changes), secrets)
        }
        None => (None, Vec::new()),
    };
    let patch = MonitorPatch {
        description,
        query,
        enabled: request.enabled,
        actions,
    };
    let record = match service.store().update_monitor(id, patch).await? {
        MonitorWrite::Saved(record) => record,
        MonitorWrite::NotFound => return Err(ApiError::not_found("monitor", id)),
        // Another request changed the actions since they were read.
        MonitorWrite::UnknownAction(action) => {
            return Err(ApiError::invalid_field(FieldError::new(
                "actions",
                format!(
                    "{action} is no longer one of this monitor's actions; read the monitor again"
                ),
            )));
        }
    };
    Ok(Json(show(service, &app, record, &secrets).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/monitors/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 204, description = "Deleted, with its actions' webhooks and their delivery logs, what it had searched, and its runs"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn delete_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<StatusCode, ApiError> {
    if monitors(&app)?.store().delete_monitor(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("monitor", id))
    }
}

#[utoipa::path(
    post, path = "/api/v1/monitors/{id}/test", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "Sent each action its test notification now and waited for the answers: webhook actions get `code_monitor:notification` with query \"test query\" and no results, signed like any delivery; Slack actions a test message. Nothing is stored.", body = MonitorTest),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn test_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<MonitorTest>, ApiError> {
    let service = monitors(&app)?;
    let record = find_monitor(service, id).await?;
    let tests = service.test_monitor(&record).await?;
    Ok(Json(MonitorTest {
        results: tests.into_iter().map(test_result).collect(),
    }))
}

fn test_result(test: ActionTest) -> ActionTestResult {
    match test.outcome {
        Some(outcome) => ActionTestResult {
            id: test.webhook_id,
            kind: test.kind.into(),
            success: outcome.success,
            status: outcome.status,
            duration_ms: outcome.duration_ms,
            body_excerpt: outcome.body_excerpt,
            error: outcome.error,
        },
        None => ActionTestResult {
            id: test.webhook_id,
            kind: test.kind.into(),
            success: false,
            status: None,
            duration_ms: 0,
            body_excerpt: None,
            error: Some(
                "the action's webhook was deleted; update the monitor's actions".to_owned(),
            ),
        },
    }
}

#[utoipa::path(
    post, path = "/api/v1/monitors/{id}/run", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id")),
    responses(
        (status = 200, description = "Fetched every repository the query may match and searched the new commits now (for every monitor on them); the runs this monitor logged, newest first. None when nothing was new.", body = RunList),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 409, description = "The monitor is disabled: `monitor_disabled`", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn run_monitor(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
) -> Result<Json<RunList>, ApiError> {
    let ran = monitors(&app)?
        .run_monitor(id)
        .await
        .map_err(|e| ApiError::internal("a monitor run failed", &e))?;
    match ran {
        RunNow::Ran(runs) => Ok(Json(RunList {
            items: runs.into_iter().map(Run::from).collect(),
        })),
        RunNow::NotFound => Err(ApiError::not_found("monitor", id)),
        RunNow::Disabled => Err(ApiError::conflict(
            "monitor_disabled",
            "enabled",
            format!("monitor {id} is disabled; enable it (PATCH {{\"enabled\": true}}) to run it"),
        )),
    }
}

#[utoipa::path(
    get, path = "/api/v1/monitors/{id}/runs", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The monitor's id"), RunsQuery),
    responses(
        (status = 200, description = "The monitor's last runs, newest first, with their matched commits and errors (the last 100 are kept)", body = RunList),
        (status = 400, description = "Malformed id or query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_runs(
    State(app): State<AppState>,
    IdPath(id): IdPath<MonitorId>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_RUNS);
    if !(1..=RUNS_KEPT_PER_MONITOR).contains(&limit) {
        return Err(ApiError::invalid_query(
            Some("limit"),
            format!("limit must be 1 to {RUNS_KEPT_PER_MONITOR}"),
        ));
    }
    let service = monitors(&app)?;
    find_monitor(service, id).await?;
    let runs = service.store().list_runs(id, limit).await?;
    Ok(Json(RunList {
        items: runs.into_iter().map(Run::from).collect(),
    }))
}

impl AppState {
    /// Events just published (or about to be): a `repo:push` makes the code
    /// monitors fetch its repository at once.
    pub(crate) fn notify_monitors(&self, events: &[herald_store::NewEvent]) {
        if let Some(service) = &self.monitors {
            for event in events {
                service.notify_event(&event.event_type, &event.payload);
            }
        }
    }
}

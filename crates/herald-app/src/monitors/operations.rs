//! Code monitors as front ends manage them: create (the query is checked, and
//! the monitor starts from the repositories' current heads), list, read,
//! change and delete them; send each action a test notification; run one now;
//! read its last runs; check a query alone.
//!
//! Each action is a webhook of its own in the monitor's scope, named
//! `code monitor <id> · <type>`: signed, retried and logged like any webhook.
//! The monitor creates, updates and deletes these webhooks with itself.

use herald_core::cipher::SealedColumn;
use herald_core::event_type::EventTypePattern;
use herald_core::id::WebhookId;
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::{TargetUrl, refuse_control_chars};
use herald_delivery::TestOutcome;
use herald_monitor::parse_query;
use herald_store::{
    ActionChange, ActionKind, DeliveryQuery, DeliveryRecord, DeliveryStatus, MonitorAction,
    MonitorId, MonitorPatch, MonitorRecord, MonitorRunRecord, MonitorWrite, NewAction, NewMonitor,
    NewWebhook, RUNS_KEPT_PER_MONITOR, WebhookPatch,
};

use crate::monitors::actions::action_event_type;
use crate::monitors::{ActionTest, RunNow};
use crate::{App, AppError};

pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Actions per monitor.
pub const MAX_ACTIONS: usize = 10;
/// Runs listed when the caller names no limit.
pub const DEFAULT_RUNS: u32 = 20;

/// One action of a monitor to create or change, as given.
#[derive(Debug)]
pub struct ActionInput {
    /// Keeps this existing action (updates only); `None`: a new action.
    pub id: Option<WebhookId>,
    pub kind: ActionKind,
    /// Required for a new action; `None` keeps an existing one's.
    pub url: Option<String>,
    /// Webhook actions only; a new one without it gets a generated secret.
    pub secret: Option<String>,
    /// `None`: true for a new action, unchanged for a kept one.
    pub include_results: Option<bool>,
}

/// A monitor to create, as a person or a program gave it.
#[derive(Debug)]
pub struct MonitorCreate {
    pub description: String,
    pub query: String,
    pub enabled: bool,
    pub actions: Vec<ActionInput>,
}

/// Changes to a monitor: `None` leaves a field as it is. `actions` replaces
/// the list: kept actions name their `id`, the others are deleted with their
/// delivery logs, and those without `id` are created.
#[derive(Debug, Default)]
pub struct MonitorUpdate {
    pub description: Option<String>,
    pub query: Option<String>,
    pub enabled: Option<bool>,
    pub actions: Option<Vec<ActionInput>>,
}

/// A monitor with its actions' webhooks looked up.
#[derive(Debug)]
pub struct MonitorDetails {
    pub id: MonitorId,
    pub description: String,
    pub query: String,
    pub enabled: bool,
    /// In the monitor's order.
    pub actions: Vec<ActionDetails>,
    /// The monitor's page, the `monitorURL` of its notifications.
    pub url: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An action and what its webhook says.
#[derive(Debug)]
pub struct ActionDetails {
    /// The action's webhook, and so its delivery log.
    pub id: WebhookId,
    pub kind: ActionKind,
    /// The target as shown; `None` once the webhook was deleted (through the
    /// webhooks API).
    pub url: Option<String>,
    pub include_results: bool,
    /// False once Herald disabled the webhook, or it was deleted.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The signing secret, only in the answer of the call that created the action.
    pub secret: Option<Secret>,
}

/// One run of the run log with what each action did with its notifications,
/// as Sourcegraph's run logs show it.
#[derive(Debug, Clone)]
pub struct RunLogEntry {
    pub run: MonitorRunRecord,
    /// In the monitor's order of actions; empty when the run notified nobody.
    pub actions: Vec<RunActionOutcome>,
}

/// What one action did with a run's notifications: the delivery that says
/// the least (a failed one, then a pending one, then any).
#[derive(Debug, Clone)]
pub struct RunActionOutcome {
    pub action_id: WebhookId,
    pub kind: ActionKind,
    /// `None`: the action has no delivery of the run's events (it was added
    /// after the run, or its deliveries were purged).
    pub delivery: Option<DeliveryRecord>,
}

/// What one action's test notification got.
#[derive(Debug)]
pub struct ActionTestResult {
    pub id: WebhookId,
    pub kind: ActionKind,
    /// For an action whose webhook was deleted, a failure saying so.
    pub outcome: TestOutcome,
}

/// A new action, with its secret when it signs with one shown to the caller.
struct ValidAction {
    action: NewAction,
    secret: Option<Secret>,
}

/// The secrets of actions created by one call, to show once.
type NewSecrets = Vec<(WebhookId, Secret)>;

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

/// The query as given, once the parser accepts it. Control characters are
/// refused here, with their position, since the parser would take them as text.
fn validate_query(text: &str) -> Result<String, AppError> {
    if let Some((position, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !c.is_whitespace())
    {
        return Err(AppError::invalid_search_query(
            position,
            &format!("control character U+{:04X} in the query", u32::from(c)),
        ));
    }
    parse_query(text)
        .map(|_| text.to_owned())
        .map_err(|error| AppError::invalid_search_query(error.position, &error.reason))
}

fn action_field(index: usize, name: &str) -> String {
    format!("actions[{index}].{name}")
}

fn parse_action_url(index: usize, text: &str) -> Result<TargetUrl, FieldError> {
    TargetUrl::parse(text).map_err(|e| FieldError::new(action_field(index, "url"), e.message))
}

fn new_action(
    index: usize,
    input: &ActionInput,
    monitor: MonitorId,
    app: &App,
) -> Result<ValidAction, FieldError> {
    let cipher = app.cipher();
    let url_text = input
        .url
        .as_deref()
        .ok_or_else(|| FieldError::new(action_field(index, "url"), "a new action needs a url"))?;
    let url = parse_action_url(index, url_text)?;
    let secret = action_secret(index, input)?;
    let (signing, shown) = match (input.kind, secret) {
        (_, Some(secret)) => (secret.clone(), Some(secret)),
        (ActionKind::Webhook, None) => {
            let secret = Secret::generate();
            (secret.clone(), Some(secret))
        }
        // Slack ignores signatures; the webhook still needs a key to sign with.
        (ActionKind::Slack, None) => (Secret::generate(), None),
    };
    let event_type = action_event_type(input.kind);
    let id = WebhookId::new();
    let webhook = NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id,
        name: format!("code monitor {monitor} · {}", input.kind.as_str()),
        url_display: url.display(),
        url_sealed: cipher.seal(
            url.expose().as_bytes(),
            &SealedColumn::WebhookUrl.of(id.as_uuid()),
        ),
        secret_sealed: cipher.seal(
            signing.expose().as_bytes(),
            &SealedColumn::WebhookSecret.of(id.as_uuid()),
        ),
        event_types: vec![EventTypePattern::parse("event_types", event_type)?],
        project: None,
        enabled: true,
    };
    Ok(ValidAction {
        action: NewAction {
            kind: input.kind,
            include_results: input.include_results.unwrap_or(true),
            webhook,
        },
        secret: shown,
    })
}

fn action_secret(index: usize, input: &ActionInput) -> Result<Option<Secret>, FieldError> {
    let field = action_field(index, "secret");
    match (input.kind, input.secret.as_deref()) {
        (_, None) => Ok(None),
        (ActionKind::Slack, Some(_)) => Err(FieldError::new(
            field,
            "Slack actions take no secret: Slack does not check signatures",
        )),
        (ActionKind::Webhook, Some(text)) => Secret::parse(text)
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

fn new_secret(valid: &ValidAction) -> Option<(WebhookId, Secret)> {
    valid
        .secret
        .clone()
        .map(|secret| (valid.action.webhook.id, secret))
}

/// A new monitor's actions: none may name an `id`, there being none to keep.
fn new_actions(
    inputs: &[ActionInput],
    monitor: MonitorId,
    app: &App,
) -> Result<(Vec<NewAction>, NewSecrets), AppError> {
    check_action_count(inputs.len())?;
    let mut actions = Vec::with_capacity(inputs.len());
    let mut secrets = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        if input.id.is_some() {
            let field = action_field(index, "id");
            return Err(AppError::unknown_field(
                &field,
                format!("{field}: a new monitor has no actions to keep; leave id out"),
            ));
        }
        let valid = new_action(index, input, monitor, app)?;
        secrets.extend(new_secret(&valid));
        actions.push(valid.action);
    }
    Ok((actions, secrets))
}

/// The given actions as changes to `current`'s.
fn action_changes(
    inputs: &[ActionInput],
    current: &MonitorRecord,
    app: &App,
) -> Result<(Vec<ActionChange>, NewSecrets), FieldError> {
    check_action_count(inputs.len())?;
    let mut changes = Vec::with_capacity(inputs.len());
    let mut secrets = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let Some(id) = input.id else {
            let valid = new_action(index, input, current.id, app)?;
            secrets.extend(new_secret(&valid));
            changes.push(ActionChange::Add(valid.action));
            continue;
        };
        changes.push(kept_action(index, input, id, current, app)?);
    }
    Ok((changes, secrets))
}

fn kept_action(
    index: usize,
    input: &ActionInput,
    id: WebhookId,
    current: &MonitorRecord,
    app: &App,
) -> Result<ActionChange, FieldError> {
    let Some(existing) = current.actions.iter().find(|a| a.webhook_id == id) else {
        return Err(FieldError::new(
            action_field(index, "id"),
            format!("{id} is not one of this monitor's actions"),
        ));
    };
    if existing.kind != input.kind {
        return Err(FieldError::new(
            action_field(index, "type"),
            "an action's type cannot change; delete it and add another",
        ));
    }
    let url = input
        .url
        .as_deref()
        .map(|text| parse_action_url(index, text))
        .transpose()?;
    let secret = action_secret(index, input)?;
    let cipher = app.cipher();
    Ok(ActionChange::Keep {
        webhook_id: id,
        include_results: input.include_results.unwrap_or(existing.include_results),
        webhook: WebhookPatch {
            url: url.map(|url| {
                (
                    url.display(),
                    cipher.seal(
                        url.expose().as_bytes(),
                        &SealedColumn::WebhookUrl.of(id.as_uuid()),
                    ),
                )
            }),
            secret_sealed: secret.map(|s| {
                cipher.seal(
                    s.expose().as_bytes(),
                    &SealedColumn::WebhookSecret.of(id.as_uuid()),
                )
            }),
            ..WebhookPatch::default()
        },
    })
}

fn check_runs_limit(limit: u32) -> Result<(), AppError> {
    if (1..=RUNS_KEPT_PER_MONITOR).contains(&limit) {
        Ok(())
    } else {
        Err(AppError::invalid_query(
            Some("limit"),
            format!("limit must be 1 to {RUNS_KEPT_PER_MONITOR}"),
        ))
    }
}

/// A deleted webhook gets no test; it shows as a failed one, saying why.
fn test_result(test: ActionTest) -> ActionTestResult {
    let outcome = test.outcome.unwrap_or_else(|| TestOutcome {
        success: false,
        status: None,
        duration_ms: 0,
        body_excerpt: None,
        error: Some("the action's webhook was deleted; update the monitor's actions".to_owned()),
    });
    ActionTestResult {
        id: test.webhook_id,
        kind: test.kind,
        outcome,
    }
}

impl App {
    /// Checks a query as creating a monitor would; a refusal names the byte
    /// position of the problem.
    pub fn check_monitor_query(&self, query: &str) -> Result<(), AppError> {
        validate_query(query).map(|_| ())
    }

    /// Creates a monitor and its actions' webhooks. It reports only commits
    /// fetched from now on. The answer carries the webhook actions' secrets,
    /// which nothing shows again.
    pub async fn create_monitor(&self, input: MonitorCreate) -> Result<MonitorDetails, AppError> {
        let description = validate_description(&input.description)?;
        let query = validate_query(&input.query)?;
        let id = MonitorId::new();
        let (actions, secrets) = new_actions(&input.actions, id, self)?;
        let record = self
            .inner
            .monitors
            .store()
            .create_monitor(NewMonitor {
                id,
                description,
                query,
                enabled: input.enabled,
                actions,
            })
            .await?;
        self.monitor_details(record, &secrets).await
    }

    /// Every monitor, oldest first.
    pub async fn list_monitors(&self) -> Result<Vec<MonitorDetails>, AppError> {
        let records = self.inner.monitors.store().list_monitors().await?;
        let mut monitors = Vec::with_capacity(records.len());
        for record in records {
            monitors.push(self.monitor_details(record, &Vec::new()).await?);
        }
        Ok(monitors)
    }

    pub async fn monitor(&self, id: MonitorId) -> Result<MonitorDetails, AppError> {
        let record = self.monitor_record(id).await?;
        self.monitor_details(record, &Vec::new()).await
    }

    /// A new query, or enabling a disabled monitor, starts it from the
    /// repositories' current heads. The answer carries the secrets of the
    /// webhook actions this call created.
    pub async fn update_monitor(
        &self,
        id: MonitorId,
        input: MonitorUpdate,
    ) -> Result<MonitorDetails, AppError> {
        let current = self.monitor_record(id).await?;
        let description = input
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?;
        let query = input.query.as_deref().map(validate_query).transpose()?;
        let (actions, secrets) = match &input.actions {
            Some(inputs) => {
                let (changes, secrets) = action_changes(inputs, &current, self)?;
                (Some(changes), secrets)
            }
            None => (None, Vec::new()),
        };
        let patch = MonitorPatch {
            description,
            query,
            enabled: input.enabled,
            actions,
        };
        let record = match self
            .inner
            .monitors
            .store()
            .update_monitor(id, patch)
            .await?
        {
            MonitorWrite::Saved(record) => record,
            MonitorWrite::NotFound => return Err(AppError::not_found("monitor", id)),
            // Another call changed the actions since they were read.
            MonitorWrite::UnknownAction(action) => {
                return Err(AppError::invalid_field(FieldError::new(
                    "actions",
                    format!(
                        "{action} is no longer one of this monitor's actions; read the monitor again"
                    ),
                )));
            }
        };
        self.monitor_details(record, &secrets).await
    }

    /// Deletes the monitor with its actions' webhooks and their delivery logs,
    /// what it had searched, and its runs.
    pub async fn delete_monitor(&self, id: MonitorId) -> Result<(), AppError> {
        if self.inner.monitors.store().delete_monitor(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found("monitor", id))
        }
    }

    /// Sends each action its test notification now and waits for the answers,
    /// in the monitor's order; nothing is stored.
    pub async fn test_monitor(&self, id: MonitorId) -> Result<Vec<ActionTestResult>, AppError> {
        let record = self.monitor_record(id).await?;
        let tests = self.inner.monitors.test_monitor(&record).await?;
        Ok(tests.into_iter().map(test_result).collect())
    }

    /// Fetches every repository the query may match and searches their new
    /// commits now; answers the runs this monitor logged, newest first (none
    /// when nothing was new).
    pub async fn run_monitor(&self, id: MonitorId) -> Result<Vec<MonitorRunRecord>, AppError> {
        let ran = self
            .inner
            .monitors
            .run_monitor(id)
            .await
            .map_err(|e| AppError::internal("a monitor run failed", &e))?;
        match ran {
            RunNow::Ran(runs) => Ok(runs),
            RunNow::NotFound => Err(AppError::not_found("monitor", id)),
            RunNow::Disabled => Err(AppError::conflict(
                "monitor_disabled",
                "enabled",
                format!(
                    "monitor {id} is disabled; enable it (PATCH {{\"enabled\": true}}) to run it"
                ),
            )),
        }
    }

    /// The monitor's last `limit` runs (default [`DEFAULT_RUNS`]), newest first.
    pub async fn monitor_runs(
        &self,
        id: MonitorId,
        limit: Option<u32>,
    ) -> Result<Vec<MonitorRunRecord>, AppError> {
        let limit = limit.unwrap_or(DEFAULT_RUNS);
        check_runs_limit(limit)?;
        self.monitor_record(id).await?;
        Ok(self.inner.monitors.store().list_runs(id, limit).await?)
    }

    /// The monitor's last `limit` runs, newest first, each with the state of
    /// every current action's delivery of the run's notifications.
    pub async fn monitor_run_log(
        &self,
        id: MonitorId,
        limit: Option<u32>,
    ) -> Result<Vec<RunLogEntry>, AppError> {
        let record = self.monitor_record(id).await?;
        let runs = self.monitor_runs(id, limit).await?;
        let Some(since) = runs.iter().map(|run| run.started_at).min() else {
            return Ok(Vec::new());
        };
        let mut deliveries = Vec::with_capacity(record.actions.len());
        for action in &record.actions {
            deliveries.push(
                self.action_deliveries_since(action.webhook_id, since)
                    .await?,
            );
        }
        Ok(runs
            .into_iter()
            .map(|run| run_log_entry(run, &record.actions, &deliveries))
            .collect())
    }

    /// Every delivery of the action's webhook created at or after `since`:
    /// an action's webhook receives nothing but its monitor's notifications,
    /// so these are the logged runs' deliveries, a few per run.
    async fn action_deliveries_since(
        &self,
        webhook_id: WebhookId,
        since: Timestamp,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store()
                .list_deliveries(DeliveryQuery {
                    webhook_id,
                    status: None,
                    since: Some(since),
                    until: None,
                    cursor,
                    limit: crate::deliveries::MAX_PAGE_SIZE,
                })
                .await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn monitor_record(&self, id: MonitorId) -> Result<MonitorRecord, AppError> {
        self.inner
            .monitors
            .store()
            .get_monitor(id)
            .await?
            .ok_or_else(|| AppError::not_found("monitor", id))
    }

    async fn monitor_details(
        &self,
        record: MonitorRecord,
        secrets: &NewSecrets,
    ) -> Result<MonitorDetails, AppError> {
        let mut actions = Vec::with_capacity(record.actions.len());
        for action in &record.actions {
            actions.push(self.action_details(action, secrets).await?);
        }
        Ok(MonitorDetails {
            id: record.id,
            url: self.inner.monitors.monitor_url(record.id),
            description: record.description,
            query: record.query,
            enabled: record.enabled,
            actions,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    async fn action_details(
        &self,
        action: &MonitorAction,
        secrets: &NewSecrets,
    ) -> Result<ActionDetails, AppError> {
        let webhook = self.store().get_webhook(action.webhook_id).await?;
        Ok(ActionDetails {
            id: action.webhook_id,
            kind: action.kind,
            url: webhook.as_ref().map(|w| w.url_display.clone()),
            include_results: action.include_results,
            enabled: webhook.as_ref().is_some_and(|w| w.enabled),
            disabled_reason: webhook.and_then(|w| w.disabled_reason),
            secret: secrets
                .iter()
                .find(|(id, _)| *id == action.webhook_id)
                .map(|(_, secret)| secret.clone()),
        })
    }
}

fn run_log_entry(
    run: MonitorRunRecord,
    actions: &[MonitorAction],
    deliveries: &[Vec<DeliveryRecord>],
) -> RunLogEntry {
    if run.event_ids.is_empty() {
        return RunLogEntry {
            run,
            actions: Vec::new(),
        };
    }
    let outcomes = actions
        .iter()
        .zip(deliveries)
        .map(|(action, deliveries)| RunActionOutcome {
            action_id: action.webhook_id,
            kind: action.kind,
            delivery: deciding_delivery(
                deliveries
                    .iter()
                    .filter(|d| run.event_ids.contains(&d.event_id)),
            ),
        })
        .collect();
    RunLogEntry {
        run,
        actions: outcomes,
    }
}

/// Of one action's deliveries of a run, the one that says the least: a
/// failed one, else a pending one, else a succeeded one.
fn deciding_delivery<'a>(
    deliveries: impl Iterator<Item = &'a DeliveryRecord>,
) -> Option<DeliveryRecord> {
    let rank = |status: DeliveryStatus| match status {
        DeliveryStatus::Failed => 0,
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Succeeded => 2,
    };
    deliveries.min_by_key(|d| rank(d.status)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::id::{DeliveryId, EventId};
    use herald_store::{MonitorRunId, RepositoryId};

    fn run(event_ids: Vec<EventId>) -> MonitorRunRecord {
        let now = Timestamp::now();
        MonitorRunRecord {
            id: MonitorRunId::new(),
            monitor_id: MonitorId::new(),
            repository_id: RepositoryId::new(),
            repository_name: "example.com/acme/app".to_owned(),
            started_at: now,
            finished_at: now,
            commits_scanned: 1,
            matches: 1,
            commits: Vec::new(),
            truncated: false,
            error: None,
            event_ids,
            notifications: Vec::new(),
        }
    }

    fn action(kind: ActionKind) -> MonitorAction {
        MonitorAction {
            webhook_id: WebhookId::new(),
            kind,
            include_results: true,
        }
    }

    fn delivery(
        event_id: EventId,
        action: &MonitorAction,
        status: DeliveryStatus,
    ) -> DeliveryRecord {
        let now = Timestamp::now();
        DeliveryRecord {
            id: DeliveryId::new(),
            event_id,
            webhook_id: action.webhook_id,
            event_type: "code_monitor:notification".to_owned(),
            status,
            attempts: 1,
            next_attempt_at: None,
            last_status_code: Some(if status == DeliveryStatus::Failed {
                500
            } else {
                200
            }),
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Each action's status for a run comes from its deliveries of that run's
    /// events only, the least successful deciding.
    #[test]
    fn a_run_shows_each_action_s_least_successful_delivery_of_its_events() {
        let (first, second, other) = (EventId::new(), EventId::new(), EventId::new());
        let (webhook, slack, added_later) = (
            action(ActionKind::Webhook),
            action(ActionKind::Slack),
            action(ActionKind::Webhook),
        );
        let deliveries = vec![
            vec![
                delivery(first, &webhook, DeliveryStatus::Succeeded),
                delivery(second, &webhook, DeliveryStatus::Failed),
                delivery(other, &webhook, DeliveryStatus::Pending),
            ],
            vec![
                delivery(first, &slack, DeliveryStatus::Succeeded),
                delivery(other, &slack, DeliveryStatus::Failed),
            ],
            vec![delivery(other, &added_later, DeliveryStatus::Succeeded)],
        ];
        let actions = [webhook.clone(), slack.clone(), added_later.clone()];
        let entry = run_log_entry(run(vec![first, second]), &actions, &deliveries);
        let status = |index: usize| entry.actions[index].delivery.as_ref().map(|d| d.status);
        assert_eq!(entry.actions.len(), 3);
        assert_eq!(entry.actions[0].action_id, webhook.webhook_id);
        assert_eq!(status(0), Some(DeliveryStatus::Failed));
        assert_eq!(entry.actions[1].kind, ActionKind::Slack);
        assert_eq!(status(1), Some(DeliveryStatus::Succeeded));
        assert_eq!(status(2), None, "no delivery of this run's events");
    }

    #[test]
    fn a_run_that_notified_nobody_lists_no_action() {
        let webhook = action(ActionKind::Webhook);
        let deliveries = vec![vec![delivery(
            EventId::new(),
            &webhook,
            DeliveryStatus::Succeeded,
        )]];
        let entry = run_log_entry(run(Vec::new()), &[webhook], &deliveries);
        assert!(entry.actions.is_empty());
    }

    #[test]
    fn a_query_error_names_its_byte_position() {
        let error = validate_query("type:diff a\u{7}b").unwrap_err();
        assert_eq!(error.code, "invalid_search_query");
        assert_eq!(error.details.position, Some(11));
        assert_eq!(error.details.field.as_deref(), Some("query"));
        assert!(validate_query("type:diff BEGIN").is_ok());
    }

    /// A Slack URL's last segment is its token, whichever kind of action
    /// carries it (herald-core's `shown_url` masks it wherever a URL is shown).
    #[test]
    fn a_slack_url_hides_its_token() {
        let url = TargetUrl::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(url.display(), "https://hooks.slack.com/services/T0/B0/***");
    }
}

//! Webhooks: the list (with each one's last delivery, as SonarQube shows it),
//! create and edit, enable and disable, delete with confirmation, the Test
//! button and revealing the secret. The delivery log is `deliveries`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_app::AppError;
use herald_app::deliveries::DeliveryFilter;
use herald_app::tokens::Permission;
use herald_app::webhooks::{DeliverySettings, WebhookCreate, WebhookUpdate};
use herald_catalogue::EventTypeDef;
use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_store::{DeliveryRecord, SettingsChange, ShownHealth, WebhookRecord};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::console::deliveries::{self, log_page};
use crate::console::form::{Form, PathId};
use crate::console::page::{
    Area, ConsoleError, DeleteConfirmation, Html, Viewer, badge, delete_confirmation, flash, page,
    project_of, redirect, scope_text, time,
};

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// What a finished action says on the page it returns to.
fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "updated" => Some("Webhook saved."),
        "deleted" => Some("Webhook deleted, with its deliveries."),
        "enabled" => Some("Webhook enabled."),
        "disabled" => Some("Webhook disabled; its pending deliveries were failed."),
        _ => None,
    }
}

/// `GET /console/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<Done>,
) -> Result<Html, ConsoleError> {
    let webhooks = state.app().list_webhooks(&viewer.principal).await?;
    let mut rows = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let last = last_delivery(&state, &viewer, webhook.id).await?;
        rows.push((webhook, last));
    }
    let manage = viewer.can(Permission::ManageWebhooks);
    let content = html! {
        div.page-head {
            div {
                h1 { "Webhooks" }
                p.muted { "Each webhook sends the events it subscribes to, signed, to its endpoint." }
            }
            @if manage {
                div.actions { a.button.primary href="/console/webhooks/new" { "New webhook" } }
            }
        }
        @if let Some(message) = done_message(query.done.as_deref()) { (flash("ok", message)) }
        table #webhooks {
            thead { tr {
                th { "Name" } th { "Endpoint" } th { "Scope" } th { "Event types" }
                th { "Health" } th { "Last delivery" }
            } }
            tbody {
                @for (webhook, last) in &rows { (webhook_row(&viewer, webhook, last.as_ref(), manage)) }
                @if rows.is_empty() {
                    tr { td.empty colspan="6" { "No webhooks yet." } }
                }
            }
        }
    };
    Ok(page(&viewer, Area::Webhooks, "Webhooks", content))
}

fn webhook_row(
    viewer: &Viewer,
    webhook: &WebhookRecord,
    last: Option<&DeliveryRecord>,
    manage: bool,
) -> Markup {
    let id = webhook.id.to_string();
    html! {
        tr {
            td { a href={"/console/webhooks/" (id)} { (webhook.name) } }
            td.url { (webhook.url_display) }
            td { (scope_text(webhook.project.as_deref())) }
            td { @for pattern in &webhook.event_types { span.tag { code { (pattern.as_str()) } } } }
            td {
                (health_summary(webhook, Timestamp::now()))
                @if manage { (enabled_toggle(viewer, webhook)) }
            }
            td {
                @match last {
                    Some(delivery) => {
                        a href={"/console/deliveries/" (delivery.id)} { (badge(delivery.status.as_str())) }
                        div.hint { (time(delivery.updated_at)) }
                    }
                    None => { span.muted { "never" } }
                }
            }
        }
    }
}

/// The webhook's health as a badge and, unless healthy, a line saying why or
/// until when: what the list and the overview show.
pub fn health_summary(webhook: &WebhookRecord, now: Timestamp) -> Markup {
    let shown = webhook.shown_health(now);
    html! {
        (badge(shown.as_str()))
        @match shown {
            ShownHealth::Healthy => {}
            ShownHealth::Paused => {
                @if let Some(until) = webhook.health.paused_until(now) { div.hint { "until " (time(until)) } }
            }
            ShownHealth::Failing => {
                div.hint { (webhook.health.consecutive_failures) " failures in a row; a probe decides" }
            }
            ShownHealth::Disabled => {
                div.hint { (disabled_reason(webhook)) }
            }
        }
    }
}

/// Why a disabled webhook is disabled: the reason Herald recorded, or a person.
pub fn disabled_reason(webhook: &WebhookRecord) -> &str {
    webhook
        .disabled_reason
        .as_deref()
        .or(webhook.health.disabled_reason.as_deref())
        .unwrap_or("disabled by a person")
}

/// Disable, or Enable for a disabled webhook, whoever disabled it: enabling
/// starts its health afresh and delivers its backlog.
pub fn enabled_toggle(viewer: &Viewer, webhook: &WebhookRecord) -> Markup {
    let enable = webhook.shown_health(Timestamp::now()) == ShownHealth::Disabled;
    let verb = if enable { "Enable" } else { "Disable" };
    html! {
        form method="post" action={"/console/webhooks/" (webhook.id) "/enabled"} {
            (viewer.csrf_field())
            input type="hidden" name="enabled" value=(if enable { "true" } else { "false" });
            " "
            button.small type="submit" aria-label={(verb) " " (webhook.name)} { (verb) }
        }
    }
}

/// The webhook's newest delivery, the result SonarQube shows next to each webhook.
async fn last_delivery(
    state: &AppState,
    viewer: &Viewer,
    id: WebhookId,
) -> Result<Option<DeliveryRecord>, AppError> {
    let filter = DeliveryFilter {
        limit: Some("1".to_owned()),
        ..DeliveryFilter::default()
    };
    let page = state
        .app()
        .list_deliveries(&viewer.principal, id, filter)
        .await?;
    Ok(page.items.into_iter().next())
}

/// What the webhook form holds, as the person typed it.
#[derive(Debug, Default)]
struct Fields {
    name: String,
    url: String,
    secret: String,
    /// Exact catalogue keys, ticked.
    keys: Vec<String>,
    /// Everything else: patterns such as `changeset:*`, space or comma separated.
    patterns: String,
    project: String,
    enabled: bool,
    /// The webhook's own delivery settings, as typed: empty takes the node's.
    failing_after: String,
    disable_after: String,
    max_in_flight: String,
    max_per_second: String,
    /// `none` or `key`.
    ordering: String,
}

/// The delivery settings' fields: form name, label, and what they mean.
const SETTING_FIELDS: [(&str, &str, &str); 4] = [
    (
        "failing_after",
        "Pause after",
        "Failed attempts in a row that pause the webhook. Empty: the server's setting.",
    ),
    (
        "disable_after",
        "Disable after",
        "Failed attempts in a row that disable it until someone enables it; 0 never. Empty: the server's setting.",
    ),
    (
        "max_in_flight",
        "Most in flight",
        "Attempts in flight to the endpoint at once, on each node. Empty: no limit of its own.",
    ),
    (
        "max_per_second",
        "Most per second",
        "Attempts started per second, on each node. Empty: no limit of its own.",
    ),
];

impl Fields {
    fn from_form(form: &Form) -> Self {
        Self {
            name: form.get("name").unwrap_or_default().to_owned(),
            url: form.get("url").unwrap_or_default().to_owned(),
            secret: form.get("secret").unwrap_or_default().to_owned(),
            keys: form.all("event_type"),
            patterns: form.get("patterns").unwrap_or_default().to_owned(),
            project: form.get("project").unwrap_or_default().to_owned(),
            enabled: form.get("enabled").is_some(),
            failing_after: typed(form, "failing_after"),
            disable_after: typed(form, "disable_after"),
            max_in_flight: typed(form, "max_in_flight"),
            max_per_second: typed(form, "max_per_second"),
            ordering: typed(form, "ordering"),
        }
    }

    fn from_record(record: &WebhookRecord, catalogue: &[EventTypeDef]) -> Self {
        let settings = DeliverySettings::of(record);
        let (keys, patterns): (Vec<String>, Vec<String>) = record
            .event_types
            .iter()
            .map(|p| p.as_str().to_owned())
            .partition(|p| catalogue.iter().any(|t| t.key == *p));
        Self {
            name: record.name.clone(),
            url: String::new(),
            secret: String::new(),
            keys,
            patterns: patterns.join(" "),
            project: record.project.clone().unwrap_or_default(),
            enabled: record.enabled,
            failing_after: shown(settings.failing_after),
            disable_after: shown(settings.disable_after),
            max_in_flight: shown(settings.max_in_flight),
            max_per_second: shown(settings.max_per_second),
            ordering: record.ordering.as_str().to_owned(),
        }
    }

    fn setting(&self, name: &str) -> &str {
        match name {
            "failing_after" => &self.failing_after,
            "disable_after" => &self.disable_after,
            "max_in_flight" => &self.max_in_flight,
            _ => &self.max_per_second,
        }
    }

    /// The delivery settings as typed; the application checks their ranges.
    fn settings(&self) -> Result<DeliverySettings, AppError> {
        Ok(DeliverySettings {
            failing_after: whole_number("failing_after", &self.failing_after)?,
            disable_after: whole_number("disable_after", &self.disable_after)?,
            max_in_flight: whole_number("max_in_flight", &self.max_in_flight)?,
            max_per_second: whole_number("max_per_second", &self.max_per_second)?,
        })
    }

    /// Every setting, named: an emptied field returns it to the server's.
    fn settings_change(&self) -> Result<SettingsChange, AppError> {
        let settings = self.settings()?;
        Ok(SettingsChange {
            failing_after: Some(settings.failing_after),
            disable_after: Some(settings.disable_after),
            max_in_flight: Some(settings.max_in_flight),
            max_per_second: Some(settings.max_per_second),
        })
    }

    fn ordering(&self) -> Option<String> {
        let ordering = self.ordering.trim();
        (!ordering.is_empty()).then(|| ordering.to_owned())
    }

    fn event_types(&self) -> Vec<String> {
        let patterns = self
            .patterns
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        self.keys.iter().cloned().chain(patterns).collect()
    }

    fn project(&self) -> Option<String> {
        let key = self.project.trim();
        (!key.is_empty()).then(|| key.to_owned())
    }

    fn secret(&self) -> Option<String> {
        let secret = self.secret.trim();
        (!secret.is_empty()).then(|| secret.to_owned())
    }
}

fn typed(form: &Form, name: &str) -> String {
    form.get(name).unwrap_or_default().trim().to_owned()
}

fn shown(setting: Option<u32>) -> String {
    setting.map(|n| n.to_string()).unwrap_or_default()
}

/// A setting's field: empty is `None`, anything but a whole number a refusal.
fn whole_number(field: &str, text: &str) -> Result<Option<u32>, AppError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        AppError::invalid_field(FieldError::new(
            field,
            format!(
                "{field} must be a whole number, or empty for the server's setting; got {text:?}"
            ),
        ))
    })
}

/// Where the form posts, and what it is for.
enum FormKind<'a> {
    Create,
    Edit(&'a WebhookRecord),
}

fn catalogue(state: &AppState) -> Vec<EventTypeDef> {
    state.app().event_types().list().cloned().collect()
}

/// The create and edit form. `error` is the application's refusal of the
/// last submission, shown at the top and next to its field.
fn webhook_form(
    viewer: &Viewer,
    kind: &FormKind<'_>,
    types: &[EventTypeDef],
    fields: &Fields,
    error: Option<&AppError>,
) -> Html {
    let (title, action, submit) = match kind {
        FormKind::Create => (
            "New webhook",
            "/console/webhooks".to_owned(),
            "Create webhook",
        ),
        FormKind::Edit(record) => (
            "Edit webhook",
            format!("/console/webhooks/{}", record.id),
            "Save changes",
        ),
    };
    let field_at_fault = error
        .and_then(|e| e.details.field.clone())
        .unwrap_or_default();
    let fault = |name: &str| -> Markup {
        html! {
            @if let Some(error) = error {
                @if field_at_fault == name || field_at_fault.starts_with(&format!("{name}[")) {
                    p.field-error id={"error-" (name)} { (error.message) }
                }
            }
        }
    };
    let mut families: BTreeMap<&str, Vec<&EventTypeDef>> = BTreeMap::new();
    for def in types {
        families.entry(def.family.as_str()).or_default().push(def);
    }
    let content = html! {
        div.page-head {
            div {
                div.crumbs { a href="/console/webhooks" { "Webhooks" } " / " }
                h1 { (title) }
            }
        }
        @if let Some(error) = error { p.flash.error role="alert" { (error.message) } }
        form.stacked.wide.card method="post" action=(action) {
            (viewer.csrf_field())
            label for="name" { "Name" }
            input #name type="text" name="name" value=(fields.name) required maxlength="100";
            (fault("name"))
            label for="url" { "Endpoint URL" }
            @if let FormKind::Edit(record) = kind {
                p.hint { "Now " span.url { (record.url_display) } ". Leave empty to keep it." }
                input #url.mono type="url" name="url" value=(fields.url) placeholder="https://hooks.example.com/herald";
            } @else {
                input #url.mono type="url" name="url" value=(fields.url) required placeholder="https://hooks.example.com/herald";
            }
            (fault("url"))
            label for="secret" { "Signing secret" }
            div.inline-field {
                input #secret.mono type="password" name="secret" value=(fields.secret) autocomplete="off";
                button type="button" data-generate="secret" hidden { "Generate" }
            }
            p.hint {
                @if matches!(kind, FormKind::Create) {
                    "Leave empty and Herald generates a whsec_ secret, shown once after creating."
                } @else {
                    "Leave empty to keep the current secret."
                }
            }
            (fault("secret"))
            label for="project" { "Project" }
            input #project type="text" name="project" value=(fields.project) placeholder="empty: global (every project's events)";
            p.hint { "A project's webhook gets that project's events; a global one gets every event." }
            (fault("project"))
            h2 { "Event types" }
            (fault("event_types"))
            div.families {
                @for (family, defs) in &families {
                    fieldset.family {
                        legend { (family) }
                        @for def in defs {
                            label {
                                input type="checkbox" name="event_type" value=(def.key) checked[fields.keys.contains(&def.key)];
                                span { code { (def.key) } " " span.desc { (first_sentence(&def.description)) } }
                            }
                        }
                    }
                }
            }
            label for="patterns" { "Patterns" }
            input #patterns.mono type="text" name="patterns" value=(fields.patterns) placeholder="changeset:* batch_change:*";
            p.hint { "Other event types or patterns, separated by spaces: a trailing * matches a family, as in changeset:*." }
            h2 { "Delivery" }
            div.settings {
                @for (name, label, hint) in SETTING_FIELDS {
                    div {
                        label for=(name) { (label) }
                        input id=(name) type="number" min="0" step="1" name=(name) value=(fields.setting(name)) inputmode="numeric";
                        p.hint { (hint) }
                        (fault(name))
                    }
                }
            }
            label for="ordering" { "Order" }
            select #ordering name="ordering" {
                option value="none" selected[fields.ordering != "key"] { "Any order (fastest)" }
                option value="key" selected[fields.ordering == "key"] { "In publish order, per ordering key" }
            }
            p.hint { "By key: deliveries of events with the same ordering_key go one at a time, in publish order. A change applies to events published from then on." }
            (fault("ordering"))
            label.check {
                input type="checkbox" name="enabled" value="true" checked[fields.enabled];
                "Enabled"
            }
            div.form-actions {
                button.primary type="submit" { (submit) }
                a.button href="/console/webhooks" { "Cancel" }
            }
        }
    };
    page(viewer, Area::Webhooks, title, content)
}

fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(first, _)| first)
}

/// `GET /console/webhooks/new`.
pub async fn new_form(State(state): State<AppState>, viewer: Viewer) -> Html {
    let fields = Fields {
        enabled: true,
        project: project_of(&viewer).unwrap_or_default().to_owned(),
        ..Fields::default()
    };
    webhook_form(
        &viewer,
        &FormKind::Create,
        &catalogue(&state),
        &fields,
        None,
    )
}

/// `POST /console/webhooks`: creates the webhook and shows its secret once.
pub async fn create(State(state): State<AppState>, viewer: Viewer, form: Form) -> Response {
    let fields = Fields::from_form(&form);
    let created = match fields.settings() {
        Ok(settings) => {
            let input = WebhookCreate {
                name: fields.name.clone(),
                url: fields.url.clone(),
                secret: fields.secret(),
                event_types: fields.event_types(),
                project: fields.project(),
                enabled: fields.enabled,
                settings,
                ordering: fields.ordering(),
            };
            state.app().create_webhook(&viewer.principal, input).await
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(created) => {
            let id = created.record.id;
            let content = html! {
                div.page-head { div {
                    div.crumbs { a href="/console/webhooks" { "Webhooks" } " / " }
                    h1 { "Webhook " (created.record.name) " created" }
                } }
                @for warning in &created.warnings { (flash("info", warning)) }
                div.card {
                    h2 { "Signing secret" }
                    p { "Your endpoint verifies each delivery's " code { "webhook-signature" } " with this secret. Copy it now: the webhook list never shows it." }
                    div.secret-box {
                        code #new-secret { (created.secret.expose()) }
                        button.small type="button" data-copy="new-secret" hidden { "Copy" }
                    }
                }
                p { a.button.primary href={"/console/webhooks/" (id)} { "Open the webhook" } " " a.button href="/console/webhooks" { "Back to webhooks" } }
            };
            (
                StatusCode::CREATED,
                page(&viewer, Area::Webhooks, "Webhook created", content),
            )
                .into_response()
        }
        Err(error) if is_form_error(&error) => {
            let status = crate::error::status_of(error.kind);
            let html = webhook_form(
                &viewer,
                &FormKind::Create,
                &catalogue(&state),
                &fields,
                Some(&error),
            );
            (status, html).into_response()
        }
        Err(error) => ConsoleError::from(error).into_response(),
    }
}

/// A refusal the person fixes in the form, rather than a page of its own.
fn is_form_error(error: &AppError) -> bool {
    use herald_app::ErrorKind::*;
    matches!(
        error.kind,
        Invalid | Malformed | Conflict | Forbidden | TooLarge
    )
}

/// `GET /console/webhooks/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
) -> Result<Html, ConsoleError> {
    let record = state.app().webhook(&viewer.principal, id).await?;
    let types = catalogue(&state);
    let fields = Fields::from_record(&record, &types);
    Ok(webhook_form(
        &viewer,
        &FormKind::Edit(&record),
        &types,
        &fields,
        None,
    ))
}

/// `POST /console/webhooks/{id}`: saves the form.
pub async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = Fields::from_form(&form);
    let url = fields.url.trim();
    let updated = match fields.settings_change() {
        Ok(settings) => {
            let input = WebhookUpdate {
                name: Some(fields.name.clone()),
                url: (!url.is_empty()).then(|| url.to_owned()),
                secret: fields.secret(),
                event_types: Some(fields.event_types()),
                project: Some(fields.project()),
                enabled: Some(fields.enabled),
                settings,
                ordering: fields.ordering(),
            };
            state
                .app()
                .update_webhook(&viewer.principal, id, input)
                .await
        }
        Err(error) => Err(error),
    };
    match updated {
        Ok(_) => Ok(redirect(&format!("/console/webhooks/{id}?done=updated"))),
        Err(error) if is_form_error(&error) => {
            let record = state.app().webhook(&viewer.principal, id).await?;
            let status = crate::error::status_of(error.kind);
            let html = webhook_form(
                &viewer,
                &FormKind::Edit(&record),
                &catalogue(&state),
                &fields,
                Some(&error),
            );
            Ok((status, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /console/webhooks/{id}/enabled`: the list's toggle.
pub async fn set_enabled(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
    form: Form,
) -> Result<Response, ConsoleError> {
    let enabled = form.get("enabled") == Some("true");
    let input = WebhookUpdate {
        enabled: Some(enabled),
        ..WebhookUpdate::default()
    };
    state
        .app()
        .update_webhook(&viewer.principal, id, input)
        .await?;
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(redirect(&format!("/console/webhooks?done={done}")))
}

/// `GET /console/webhooks/{id}/delete`: asks first.
pub async fn delete_confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
) -> Result<Html, ConsoleError> {
    let record = state.app().webhook(&viewer.principal, id).await?;
    let base = format!("/console/webhooks/{id}");
    let ask = DeleteConfirmation {
        list: ("Webhooks", "/console/webhooks"),
        base: &base,
        name: &record.name,
        noun: "webhook",
        consequence: html! { "This deletes the webhook " strong { (record.name) } " (" span.url { (record.url_display) } ") with every delivery and attempt in its log. It cannot be undone." },
    };
    Ok(delete_confirmation(&viewer, Area::Webhooks, ask))
}

/// `POST /console/webhooks/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
) -> Result<Response, ConsoleError> {
    state.app().delete_webhook(&viewer.principal, id).await?;
    Ok(redirect("/console/webhooks?done=deleted"))
}

/// `POST /console/webhooks/{id}/test`: sends a test event now and shows
/// what the endpoint answered, above the webhook's log.
pub async fn test(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
) -> Result<Html, ConsoleError> {
    let outcome = state.app().test_webhook(&viewer.principal, id).await?;
    let result = html! {
        div #test-result class={"card attempt " (if outcome.success { "ok" } else { "bad" })} {
            h2 { "Test event " (badge(if outcome.success { "succeeded" } else { "failed" })) }
            dl.facts {
                dt { "Status" } dd { @match outcome.status { Some(status) => { code { (status) } } None => { "no response" } } }
                dt { "Duration" } dd { (outcome.duration_ms) " ms" }
                @if let Some(error) = &outcome.error { dt { "Error" } dd { (error) } }
            }
            @if let Some(body) = &outcome.body_excerpt {
                h3 { "Response body" }
                pre { (body) }
            }
        }
    };
    log_page(
        &state,
        &viewer,
        id,
        deliveries::LogQuery::default(),
        Some(result),
    )
    .await
}

/// `POST /console/webhooks/{id}/secret`: shows the signing secret (admin only).
pub async fn reveal_secret(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
) -> Result<Html, ConsoleError> {
    let secret = state.app().webhook_secret(&viewer.principal, id).await?;
    let shown = html! {
        div.card {
            h2 { "Signing secret" }
            div.secret-box {
                code #revealed-secret { (secret.expose()) }
                button.small type="button" data-copy="revealed-secret" hidden { "Copy" }
            }
        }
    };
    log_page(
        &state,
        &viewer,
        id,
        deliveries::LogQuery::default(),
        Some(shown),
    )
    .await
}

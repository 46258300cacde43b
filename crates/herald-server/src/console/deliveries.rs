//! A webhook's page with its delivery log (filters, keyset pagination through
//! the application's cursor, a list that refreshes itself), recovering failed
//! deliveries, and one delivery's detail: the payload, every attempt, and
//! redelivery.

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use herald_app::deliveries::DeliveryFilter;
use herald_app::tokens::Permission;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{AttemptRecord, DeliveryRecord, ShownHealth, WebhookRecord};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::console::form::{Form, PathId};
use crate::console::page::{
    Area, ConsoleError, Html, Viewer, badge, flash, page, redirect, scope_text, time,
};
use crate::console::webhooks::{disabled_reason, enabled_toggle};

/// The log's filters and page, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

impl LogQuery {
    fn filter(&self) -> DeliveryFilter {
        DeliveryFilter {
            status: filled(self.status.as_deref()),
            since: filled(self.since.as_deref()).map(|t| as_rfc3339(&t)),
            until: filled(self.until.as_deref()).map(|t| as_rfc3339(&t)),
            cursor: filled(self.cursor.as_deref()),
            limit: None,
        }
    }

    /// This query's filters, without a page.
    fn filters_only(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        self.append_filters(&mut query);
        query.finish()
    }

    fn append_filters(&self, query: &mut url::form_urlencoded::Serializer<'_, String>) {
        for (name, value) in [
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = filled(value.as_deref()) {
                query.append_pair(name, &value);
            }
        }
    }

    /// This query for the next page.
    fn next_page(&self, cursor: DeliveryId) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        self.append_filters(&mut query);
        query.append_pair("cursor", &cursor.to_string());
        query.finish()
    }
}

fn filled(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A browser's `datetime-local` value (`2026-12-07T10:30`, no offset) read as
/// UTC, as the form says; RFC 3339 text passes unchanged.
fn as_rfc3339(text: &str) -> String {
    let has_offset = text.ends_with('Z') || text.ends_with('z') || {
        let tail = text.rsplit_once('T').map_or("", |(_, t)| t);
        tail.contains('+') || tail.contains('-')
    };
    match (has_offset, text.len()) {
        (true, _) => text.to_owned(),
        // HH:MM only
        (false, 16) => format!("{text}:00Z"),
        (false, _) => format!("{text}Z"),
    }
}

/// `GET /console/webhooks/{id}`: the webhook and its delivery log.
pub async fn log(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
    Query(query): Query<LogQuery>,
) -> Result<Html, ConsoleError> {
    log_page(&state, &viewer, id, query, None).await
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "updated" => Some("Webhook saved."),
        "redelivered" => Some("Delivery queued for another attempt now."),
        _ => None,
    }
}

/// The webhook's page; `notice` (a test's result, a revealed secret, a
/// recovery's count) goes above the log.
pub async fn log_page(
    state: &AppState,
    viewer: &Viewer,
    id: WebhookId,
    query: LogQuery,
    notice: Option<Markup>,
) -> Result<Html, ConsoleError> {
    let webhook = state.app().webhook(&viewer.principal, id).await?;
    let page_of = state
        .app()
        .list_deliveries(&viewer.principal, id, query.filter())
        .await?;
    let manage = viewer.can(Permission::ManageWebhooks);
    let first_page = query.cursor.is_none();
    let refresh_url = format!("/console/webhooks/{id}?{}", query.filters_only());
    let content = html! {
        (webhook_head(viewer, &webhook, manage))
        @if let Some(message) = done_message(query.done.as_deref()) { (flash("ok", message)) }
        @if let Some(notice) = notice { (notice) }
        (webhook_facts(viewer, &webhook, manage))
        h2 { "Delivery log" }
        form.filters method="get" action={"/console/webhooks/" (id)} {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    @for (value, label) in [("", "Any"), ("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed")] {
                        option value=(value) selected[query.status.as_deref().unwrap_or("") == value] { (label) }
                    }
                }
            }
            div {
                label for="since" { "Created from (UTC)" }
                input #since type="datetime-local" name="since" value=(query.since.as_deref().unwrap_or(""));
            }
            div {
                label for="until" { "Created before (UTC)" }
                input #until type="datetime-local" name="until" value=(query.until.as_deref().unwrap_or(""));
            }
            div { button type="submit" { "Filter" } " " a.button href={"/console/webhooks/" (id)} { "Clear" } }
        }
        table {
            thead { tr {
                th { "Delivery" } th { "Event type" } th { "Status" } th.num { "Attempts" }
                th { "Last answer" } th { "Created" }
            } }
            // The first page keeps itself current; later pages stay put.
            @if first_page {
                tbody #delivery-rows data-refresh="3" data-refresh-url=(refresh_url) { (delivery_rows(&page_of.items)) }
            } @else {
                tbody #delivery-rows { (delivery_rows(&page_of.items)) }
            }
        }
        div.pager {
            @if !first_page { a href={"/console/webhooks/" (id)} { "First page" } }
            @if let Some(cursor) = page_of.next_cursor {
                a href={"/console/webhooks/" (id) "?" (query.next_page(cursor))} rel="next" { "Older deliveries →" }
            }
        }
        @if manage { (recover_form(viewer, id)) }
    };
    Ok(page(viewer, Area::Webhooks, &webhook.name, content))
}

fn webhook_head(viewer: &Viewer, webhook: &WebhookRecord, manage: bool) -> Markup {
    let id = webhook.id;
    html! {
        div.page-head {
            div {
                div.crumbs { a href="/console/webhooks" { "Webhooks" } " / " }
                h1 { (webhook.name) }
            }
            div.actions {
                @if manage {
                    form method="post" action={"/console/webhooks/" (id) "/test"} {
                        (viewer.csrf_field())
                        button type="submit" { "Test" }
                    }
                    a.button href={"/console/webhooks/" (id) "/edit"} { "Edit" }
                }
                @if viewer.can(Permission::Admin) {
                    form method="post" action={"/console/webhooks/" (id) "/secret"} {
                        (viewer.csrf_field())
                        button type="submit" { "Reveal secret" }
                    }
                }
                @if manage {
                    a.button.danger href={"/console/webhooks/" (id) "/delete"} { "Delete" }
                }
            }
        }
    }
}

fn webhook_facts(viewer: &Viewer, webhook: &WebhookRecord, manage: bool) -> Markup {
    let now = Timestamp::now();
    let health = &webhook.health;
    html! {
        div.card {
            dl.facts {
                dt { "Endpoint" } dd.url { (webhook.url_display) }
                dt { "Scope" } dd { (scope_text(webhook.project.as_deref())) }
                dt { "Event types" } dd { @for pattern in &webhook.event_types { span.tag { code { (pattern.as_str()) } } } }
                dt { "Created" } dd { (time(webhook.created_at)) }
            }
        }
        div.card #health {
            h2 { "Endpoint health" }
            dl.facts {
                dt { "Health" } dd {
                    (badge(webhook.shown_health(now).as_str()))
                    @if manage { (enabled_toggle(viewer, webhook)) }
                }
                @if webhook.shown_health(now) == ShownHealth::Disabled {
                    dt { "Why disabled" } dd { (disabled_reason(webhook)) }
                }
                dt { "Failures in a row" } dd { (health.consecutive_failures) }
                dt { "Paused until" } dd { @match health.paused_until(now) { Some(until) => { (time(until)) } None => { span.muted { "not paused" } } } }
                dt { "Last error" } dd { @match &health.last_error { Some(error) => { code { (error) } } None => { span.muted { "none" } } } }
                dt { "Last success" } dd { @match health.last_success { Some(at) => { (time(at)) } None => { span.muted { "never" } } } }
            }
        }
    }
}

fn delivery_rows(items: &[DeliveryRecord]) -> Markup {
    html! {
        @for delivery in items {
            tr {
                td { a.mono href={"/console/deliveries/" (delivery.id)} { (short_id(&delivery.id.to_string())) } }
                td { code { (delivery.event_type) } }
                td { (badge(delivery.status.as_str())) }
                td.num { (delivery.attempts) }
                td {
                    @if let Some(code) = delivery.last_status_code { code { (code) } " " }
                    @if let Some(error) = &delivery.last_error { span.hint { (error) } }
                }
                td { (time(delivery.created_at)) }
            }
        }
        @if items.is_empty() {
            tr { td.empty colspan="6" { "No deliveries match." } }
        }
    }
}

/// The end of an id, enough to tell deliveries apart in a list.
fn short_id(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn recover_form(viewer: &Viewer, id: WebhookId) -> Markup {
    html! {
        div.card {
            h2 { "Recover failed deliveries" }
            p.muted { "Queues every failed delivery created since the time you give for another attempt now, as after an outage of the endpoint." }
            form.filters method="post" action={"/console/webhooks/" (id) "/recover"} {
                (viewer.csrf_field())
                div {
                    label for="recover-since" { "Failed since (UTC)" }
                    input #recover-since type="datetime-local" name="since" required;
                }
                div { button type="submit" { "Recover failed deliveries" } }
            }
        }
    }
}

/// `POST /console/webhooks/{id}/recover`.
pub async fn recover(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<WebhookId>,
    form: Form,
) -> Result<Html, ConsoleError> {
    let since_text = as_rfc3339(form.get("since").unwrap_or_default().trim());
    let notice = match Timestamp::parse_rfc3339(&since_text) {
        Ok(since) => {
            let requeued = state
                .app()
                .recover_webhook(&viewer.principal, id, since)
                .await?;
            flash(
                "ok",
                &format!("{requeued} failed deliveries queued for another attempt."),
            )
        }
        Err(_) => flash("error", "Give the time to recover from as a date and time."),
    };
    log_page(&state, &viewer, id, LogQuery::default(), Some(notice)).await
}

/// `GET /console/deliveries/{id}`: the payload and every attempt.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<DeliveryId>,
) -> Result<Html, ConsoleError> {
    let detail = state.app().delivery(&viewer.principal, id).await?;
    let webhook = state
        .app()
        .webhook(&viewer.principal, detail.delivery.webhook_id)
        .await?;
    let delivery = &detail.delivery;
    let manage = viewer.can(Permission::ManageWebhooks);
    let content = html! {
        div.page-head {
            div {
                div.crumbs {
                    a href="/console/webhooks" { "Webhooks" } " / "
                    a href={"/console/webhooks/" (webhook.id)} { (webhook.name) } " / "
                }
                h1 { "Delivery " span.mono { (short_id(&id.to_string())) } " " (badge(delivery.status.as_str())) }
            }
            @if manage {
                div.actions {
                    form method="post" action={"/console/deliveries/" (id) "/redeliver"} {
                        (viewer.csrf_field())
                        button.primary type="submit" { "Redeliver" }
                    }
                }
            }
        }
        div.card {
            dl.facts {
                dt { "Delivery" } dd.mono { (id) }
                dt { "Event" } dd.mono { (detail.event.id) }
                dt { "Event type" } dd { code { (delivery.event_type) } }
                dt { "Project" } dd { (scope_text(detail.event.project.as_deref())) }
                dt { "Attempts" } dd { (delivery.attempts) }
                @if let Some(next) = delivery.next_attempt_at { dt { "Next attempt" } dd { (time(next)) } }
                dt { "Created" } dd { (time(delivery.created_at)) }
            }
        }
        div.card {
            div.page-head {
                h2 { "Payload" }
                div.actions { a.button.small href={"/console/deliveries/" (id) "/payload"} download { "Exact bytes" } }
            }
            pre #payload { (pretty(&detail.event.payload)) }
        }
        h2 { "Attempts" }
        @for attempt in detail.attempts.iter().rev() { (attempt_card(attempt)) }
        @if detail.attempts.is_empty() { p.muted { "No attempt yet." } }
    };
    Ok(page(&viewer, Area::Webhooks, "Delivery", content))
}

/// The payload indented for reading; the exact bytes are a link away.
fn pretty(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned())
}

fn attempt_card(attempt: &AttemptRecord) -> Markup {
    let ok = attempt
        .response_status
        .is_some_and(|s| (200..300).contains(&s));
    html! {
        section class={"card attempt " (if ok { "ok" } else { "bad" })} {
            h3 {
                "Attempt " (attempt.number) " · "
                @match attempt.response_status {
                    Some(status) => { (badge(if ok { "succeeded" } else { "failed" })) " HTTP " code { (status) } }
                    None => { (badge("failed")) " no response" }
                }
            }
            dl.facts {
                dt { "Started" } dd { (time(attempt.started_at)) }
                dt { "Duration" } dd { (attempt.duration_ms) " ms" }
                dt { "URL" } dd.url { (attempt.request_url) }
                @if let Some(error) = &attempt.error { dt { "Error" } dd { (error) } }
            }
            div.two {
                div {
                    h3 { "Request headers" }
                    (headers_table(&attempt.request_headers))
                }
                div {
                    h3 { "Response headers" }
                    (headers_table(&attempt.response_headers))
                }
            }
            @if let Some(body) = &attempt.response_body {
                h3 { "Response body" }
                pre { (body) }
            }
        }
    }
}

fn headers_table(headers: &[(String, String)]) -> Markup {
    html! {
        @if headers.is_empty() {
            p.muted { "None." }
        } @else {
            table.headers { tbody {
                @for (name, value) in headers { tr { td { (name) } td { (value) } } }
            } }
        }
    }
}

/// `GET /console/deliveries/{id}/payload`: the payload's exact bytes, as a
/// download (never rendered, so nothing in it can run).
pub async fn exact_bytes(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<DeliveryId>,
) -> Result<Response, ConsoleError> {
    let detail = state.app().delivery(&viewer.principal, id).await?;
    let disposition = format!("attachment; filename=\"{}.json\"", detail.event.id);
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        detail.event.payload,
    )
        .into_response())
}

/// `POST /console/deliveries/{id}/redeliver`.
pub async fn redeliver(
    State(state): State<AppState>,
    viewer: Viewer,
    PathId(id): PathId<DeliveryId>,
) -> Result<Response, ConsoleError> {
    let record = state.app().redeliver(&viewer.principal, id).await?;
    Ok(redirect(&format!(
        "/console/webhooks/{}?done=redelivered",
        record.webhook_id
    )))
}

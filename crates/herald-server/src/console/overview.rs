//! The overview: what needs attention first. Each figure links to the list
//! behind it, and shows only what the viewer's scope may read.

use std::time::Duration;

use axum::extract::State;
use herald_app::overview::DeliveryOverview;
use herald_app::receivers::admin::RequestFilter;
use herald_app::tokens::Permission;
use herald_core::time::Timestamp;
use herald_store::{
    MonitorRunRecord, ReceiverId, ReceiverRequestSummary, ShownHealth, WebhookRecord,
};
use maud::{Markup, html};

use crate::AppState;
use crate::console::page::{Area, ConsoleError, Html, Viewer, badge, page, time};

/// How many unverified requests and failed runs the overview lists.
const RECENT: usize = 5;

/// The newest requests, over every receiver, that failed verification.
async fn unverified_requests(
    state: &AppState,
) -> Result<Vec<(ReceiverId, ReceiverRequestSummary)>, ConsoleError> {
    let mut found = Vec::new();
    for receiver in state.app().list_receivers().await? {
        let id = receiver.record.id;
        let page_of = state
            .app()
            .receiver_requests(id, RequestFilter::default())
            .await?;
        found.extend(
            page_of
                .items
                .into_iter()
                .filter(|request| !request.verified)
                .map(|request| (id, request)),
        );
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.1.received_at));
    found.truncate(RECENT);
    Ok(found)
}

/// The newest monitor runs, over every monitor, that ended in an error.
async fn failed_runs(state: &AppState) -> Result<Vec<(String, MonitorRunRecord)>, ConsoleError> {
    let mut found = Vec::new();
    for monitor in state.app().list_monitors().await? {
        let runs = state.app().monitor_runs(monitor.id, None).await?;
        found.extend(
            runs.into_iter()
                .filter(|run| run.error.is_some())
                .map(|run| (monitor.description.clone(), run)),
        );
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.1.finished_at));
    found.truncate(RECENT);
    Ok(found)
}

fn incoming_section(
    requests: &[(ReceiverId, ReceiverRequestSummary)],
    runs: &[(String, MonitorRunRecord)],
) -> Markup {
    html! {
        div.two {
            div {
                h2 { "Requests that failed verification" }
                table {
                    thead { tr { th { "Received" } th { "Event" } th { "Why" } } }
                    tbody {
                        @for (receiver, request) in requests {
                            tr {
                                td { a href={"/console/receivers/" (receiver) "/requests/" (request.id)} { (time(request.received_at)) } }
                                td { code { (request.event_name.as_deref().unwrap_or("—")) } }
                                td { (request.verification) }
                            }
                        }
                        @if requests.is_empty() { tr { td.empty colspan="3" { "None." } } }
                    }
                }
            }
            div {
                h2 { "Monitor runs with errors" }
                table {
                    thead { tr { th { "Finished" } th { "Monitor" } th { "Error" } } }
                    tbody {
                        @for (description, run) in runs {
                            tr {
                                td { a href={"/console/monitors/" (run.monitor_id)} { (time(run.finished_at)) } }
                                td { (description) }
                                td { (run.error.as_deref().unwrap_or("")) }
                            }
                        }
                        @if runs.is_empty() { tr { td.empty colspan="3" { "None." } } }
                    }
                }
            }
        }
    }
}

/// A duration as people read a wait: seconds, minutes, hours or days.
fn age_text(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// The last day's outcomes and the backlog. No list of deliveries spans
/// every webhook, so each figure links to the webhook list, where each
/// webhook's last delivery is shown and its log filters by status.
fn deliveries_section(figures: &DeliveryOverview) -> Markup {
    let now = Timestamp::now();
    let oldest = figures.oldest_due_age(now);
    html! {
        h2 { "Deliveries created in the last 24 hours" }
        div.grid #outcomes {
            a.stat href="/console/webhooks" { div.label { (badge("succeeded")) } div.value { (figures.finished.succeeded) } }
            a.stat href="/console/webhooks" { div.label { (badge("failed")) " retries exhausted or given up" } div.value { (figures.finished.failed) } }
        }
        h2 { "Backlog" }
        div.grid #backlog {
            a.stat href="/console/webhooks" { div.label { "Pending deliveries" } div.value { (figures.pending()) } }
            a.stat href="/console/webhooks" { div.label { "Due now, waiting for a slot" } div.value { (figures.backlog.due) } }
            a.stat href="/console/webhooks" { div.label { "Waiting for a retry" } div.value { (figures.backlog.scheduled) } }
            a.stat href="/console/webhooks" { div.label { "Being attempted" } div.value { (figures.backlog.leased) } }
            a.stat href="/console/webhooks" {
                div.label { "Oldest due delivery has waited" }
                div.value { @match oldest { Some(age) => { (age_text(age)) } None => { "—" } } }
            }
        }
    }
}

/// Why a webhook needs attention, in the words of its health.
fn attention_reason(webhook: &WebhookRecord, shown: ShownHealth, now: Timestamp) -> Markup {
    html! {
        @match shown {
            ShownHealth::Disabled => {
                (webhook.disabled_reason.as_deref().or(webhook.health.disabled_reason.as_deref()).unwrap_or("disabled by a person"))
            }
            ShownHealth::Paused => {
                @if let Some(until) = webhook.health.paused_until(now) { "Paused until " (time(until)) ". " }
                (webhook.health.last_error.as_deref().unwrap_or(""))
            }
            _ => {
                (webhook.health.consecutive_failures) " failed attempts in a row. "
                (webhook.health.last_error.as_deref().unwrap_or(""))
            }
        }
    }
}

/// `GET /console`.
pub async fn overview(State(state): State<AppState>, viewer: Viewer) -> Result<Html, ConsoleError> {
    let webhooks = if viewer.can(Permission::ReadWebhooks) {
        state.app().list_webhooks(&viewer.principal).await?
    } else {
        Vec::new()
    };
    let now = Timestamp::now();
    let shown: Vec<ShownHealth> = webhooks.iter().map(|w| w.shown_health(now)).collect();
    let count = |wanted: &[ShownHealth]| shown.iter().filter(|s| wanted.contains(s)).count();
    let failing = count(&[ShownHealth::Failing, ShownHealth::Paused]);
    let disabled = count(&[ShownHealth::Disabled]);
    let attention: Vec<_> = webhooks
        .iter()
        .zip(&shown)
        .filter(|(_, shown)| **shown != ShownHealth::Healthy)
        .collect();
    let (figures, incoming) = if viewer.can(Permission::Read) {
        (
            Some(state.app().delivery_overview(&viewer.principal).await?),
            Some(incoming_section(
                &unverified_requests(&state).await?,
                &failed_runs(&state).await?,
            )),
        )
    } else {
        (None, None)
    };
    let content = html! {
        div.page-head { div {
            h1 { "Overview" }
            p.muted { "Signed in with the " code { (viewer.principal.scope) } " scope." }
        } }
        @if viewer.can(Permission::ReadWebhooks) {
            @if let Some(figures) = &figures { (deliveries_section(figures)) }
            h2 { "Webhooks" }
            div.grid #webhook-health {
                a.stat href="/console/webhooks" { div.label { "Webhooks" } div.value { (webhooks.len()) } }
                a.stat href="/console/webhooks" { div.label { (badge("failing")) " or " (badge("paused")) } div.value { (failing) } }
                a.stat href="/console/webhooks" { div.label { (badge("disabled")) } div.value { (disabled) } }
            }
            h2 { "Needs attention" }
            table #attention {
                thead { tr { th { "Webhook" } th { "Health" } th { "Why" } } }
                tbody {
                    @for (webhook, shown) in &attention {
                        tr {
                            td { a href={"/console/webhooks/" (webhook.id)} { (webhook.name) } }
                            td { (badge(shown.as_str())) }
                            td { (attention_reason(webhook, **shown, now)) }
                        }
                    }
                    @if attention.is_empty() { tr { td.empty colspan="3" { "Every webhook is healthy." } } }
                }
            }
            @if let Some(incoming) = incoming { (incoming) }
        } @else {
            div.card { p { "This token may publish events through the API; the console has nothing else to show it." } }
        }
    };
    Ok(page(&viewer, Area::Overview, "Overview", content))
}

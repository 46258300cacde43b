//! The overview: what needs attention first. Each figure links to the list
//! behind it, and shows only what the viewer's scope may read.

use axum::extract::State;
use herald_app::deliveries::DeliveryFilter;
use herald_app::receivers::admin::RequestFilter;
use herald_app::tokens::Permission;
use herald_store::{DeliveryStatus, MonitorRunRecord, ReceiverId, ReceiverRequestSummary};
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

/// `GET /console`.
pub async fn overview(State(state): State<AppState>, viewer: Viewer) -> Result<Html, ConsoleError> {
    let webhooks = if viewer.can(Permission::ReadWebhooks) {
        state.app().list_webhooks(&viewer.principal).await?
    } else {
        Vec::new()
    };
    let mut latest = Vec::with_capacity(webhooks.len());
    for webhook in &webhooks {
        let filter = DeliveryFilter {
            limit: Some("1".to_owned()),
            ..DeliveryFilter::default()
        };
        let page_of = state
            .app()
            .list_deliveries(&viewer.principal, webhook.id, filter)
            .await?;
        latest.push(page_of.items.into_iter().next());
    }
    let disabled = webhooks.iter().filter(|w| !w.enabled).count();
    let failing = latest
        .iter()
        .filter(|d| {
            d.as_ref()
                .is_some_and(|d| d.status == DeliveryStatus::Failed)
        })
        .count();
    let attention: Vec<_> = webhooks
        .iter()
        .zip(&latest)
        .filter(|(w, d)| {
            !w.enabled
                || d.as_ref()
                    .is_some_and(|d| d.status == DeliveryStatus::Failed)
        })
        .collect();
    let incoming = if viewer.can(Permission::Read) {
        Some(incoming_section(
            &unverified_requests(&state).await?,
            &failed_runs(&state).await?,
        ))
    } else {
        None
    };
    let content = html! {
        div.page-head { div {
            h1 { "Overview" }
            p.muted { "Signed in with the " code { (viewer.principal.scope) } " scope." }
        } }
        @if viewer.can(Permission::ReadWebhooks) {
            div.grid {
                a.stat href="/console/webhooks" { div.label { "Webhooks" } div.value { (webhooks.len()) } }
                a.stat href="/console/webhooks" { div.label { "Last delivery failed" } div.value { (failing) } }
                a.stat href="/console/webhooks" { div.label { "Disabled" } div.value { (disabled) } }
            }
            h2 { "Needs attention" }
            table {
                thead { tr { th { "Webhook" } th { "State" } th { "Last delivery" } th { "Why" } } }
                tbody {
                    @for (webhook, last) in &attention {
                        tr {
                            td { a href={"/console/webhooks/" (webhook.id)} { (webhook.name) } }
                            td { (badge(if webhook.enabled { "enabled" } else { "disabled" })) }
                            td { @match last { Some(d) => { a href={"/console/deliveries/" (d.id)} { (badge(d.status.as_str())) } " " (time(d.updated_at)) } None => { span.muted { "never" } } } }
                            td {
                                @if let Some(reason) = &webhook.disabled_reason { (reason) }
                                @else if let Some(Some(d)) = Some(last) { @if let Some(error) = &d.last_error { (error) } @else if let Some(code) = d.last_status_code { "HTTP " (code) } }
                            }
                        }
                    }
                    @if attention.is_empty() { tr { td.empty colspan="4" { "Every webhook is enabled and its last delivery succeeded." } } }
                }
            }
            @if let Some(incoming) = incoming { (incoming) }
        } @else {
            div.card { p { "This token may publish events through the API; the console has nothing else to show it." } }
        }
    };
    Ok(page(&viewer, Area::Overview, "Overview", content))
}

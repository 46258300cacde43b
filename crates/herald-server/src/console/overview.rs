//! The overview: what needs attention first. Each figure links to the list
//! behind it, and shows only what the viewer's scope may read.

use axum::extract::State;
use herald_app::deliveries::DeliveryFilter;
use herald_app::tokens::Permission;
use herald_store::DeliveryStatus;
use maud::html;

use crate::AppState;
use crate::console::page::{Area, ConsoleError, Html, Viewer, badge, page, time};

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
        } @else {
            div.card { p { "This token may publish events through the API; the console has nothing else to show it." } }
        }
    };
    Ok(page(&viewer, Area::Overview, "Overview", content))
}

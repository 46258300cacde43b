//! The event catalogue: every type by family, with its description, and one
//! type's JSON Schema and example payload.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use herald_catalogue::EventTypeDef;
use maud::html;

use crate::AppState;
use crate::console::page::{Area, ConsoleError, Html, Viewer, page};

/// `GET /console/event-types`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Html {
    let catalogue = state.app().event_types();
    let mut families: BTreeMap<&str, Vec<&EventTypeDef>> = BTreeMap::new();
    for def in catalogue.list() {
        families.entry(def.family.as_str()).or_default().push(def);
    }
    let content = html! {
        div.page-head { div {
            h1 { "Event catalogue" }
            p.muted { "Every event type Herald knows: the built-in families of the products it speaks for, and the types producers registered." }
        } }
        @for (family, defs) in &families {
            h2 { (family) }
            table {
                thead { tr { th { "Type" } th { "Description" } th { "Origin" } } }
                tbody {
                    @for def in defs {
                        tr {
                            td { a href={"/console/event-types/" (def.key)} { code { (def.key) } } }
                            td { (def.description) }
                            td { @if def.builtin { "built-in" } @else { "custom" } }
                        }
                    }
                }
            }
        }
    };
    page(&viewer, Area::EventTypes, "Event catalogue", content)
}

/// `GET /console/event-types/{key}`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(key): Path<String>,
) -> Result<Html, ConsoleError> {
    let def = state.app().event_type(&key).await?;
    let schema = serde_json::to_string_pretty(&def.schema).unwrap_or_default();
    let example = serde_json::to_string_pretty(&def.example).unwrap_or_default();
    let content = html! {
        div.page-head { div {
            div.crumbs { a href="/console/event-types" { "Event catalogue" } " / " }
            h1 { code { (def.key) } }
            p.muted { (def.description) }
        } }
        div.two {
            div.card { h2 { "Example payload" } pre { (example) } }
            div.card { h2 { "JSON Schema" } pre { (schema) } }
        }
    };
    Ok(page(&viewer, Area::EventTypes, &def.key, content))
}

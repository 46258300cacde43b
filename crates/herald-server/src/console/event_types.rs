//! The event catalogue: every type by family, with its description; one
//! type's JSON Schema and example payload; registering and replacing a custom
//! type (the application's refusal shown next to the field at fault) and
//! deleting one.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use herald_app::AppError;
use herald_app::event_types::EventTypeInput;
use herald_app::tokens::Permission;
use herald_catalogue::EventTypeDef;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::console::form::Form;
use crate::console::page::{Area, ConsoleError, Html, Viewer, flash, page, redirect};

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// What the registration form holds, as typed.
#[derive(Debug, Default)]
struct TypeFields {
    key: String,
    description: String,
    schema: String,
    example: String,
}

/// `GET /console/event-types`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<Done>,
) -> Html {
    let notice = match query.done.as_deref() {
        Some("registered") => Some(flash("ok", "Event type registered.")),
        Some("deleted") => Some(flash("ok", "Event type deleted.")),
        _ => None,
    };
    let fields = TypeFields {
        schema: "{\n  \"type\": \"object\"\n}".to_owned(),
        example: "{}".to_owned(),
        ..TypeFields::default()
    };
    catalogue_page(&state, &viewer, notice, &fields, None)
}

fn catalogue_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<Markup>,
    fields: &TypeFields,
    error: Option<&AppError>,
) -> Html {
    let catalogue = state.app().event_types();
    let mut families: BTreeMap<&str, Vec<&EventTypeDef>> = BTreeMap::new();
    for def in catalogue.list() {
        families.entry(def.family.as_str()).or_default().push(def);
    }
    let admin = viewer.can(Permission::Admin);
    let content = html! {
        div.page-head { div {
            h1 { "Event catalogue" }
            p.muted { "Every event type Herald knows: the built-in families of the products it speaks for, and the types producers registered." }
        } }
        @if let Some(notice) = notice { (notice) }
        @for (family, defs) in &families {
            h2 { (family) }
            table {
                thead { tr { th { "Type" } th { "Description" } th { "Origin" } } }
                tbody {
                    @for def in defs {
                        tr {
                            td { a href={"/console/event-types/" (def.key)} { code { (def.key) } } }
                            td { (def.description) }
                            td {
                                @if def.builtin { "built-in" } @else {
                                    "custom"
                                    @if admin {
                                        " "
                                        form method="post" action={"/console/event-types/" (def.key) "/delete"} {
                                            (viewer.csrf_field())
                                            button.small.danger type="submit" aria-label={"Delete " (def.key)} { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin { (register_form(viewer, fields, error)) }
    };
    page(viewer, Area::EventTypes, "Event catalogue", content)
}

/// The registration form; `error` goes next to the field it names.
fn register_form(viewer: &Viewer, fields: &TypeFields, error: Option<&AppError>) -> Markup {
    html! {
        h2 #register { "Register an event type" }
        (type_form(viewer, "/console/event-types", fields, error, true, "Register event type"))
    }
}

/// The fields of a custom type, posted to `action`; the key is an input only
/// when registering (a type cannot be renamed). `error` goes next to the
/// field it names, or above the form when it names none of them.
fn type_form(
    viewer: &Viewer,
    action: &str,
    fields: &TypeFields,
    error: Option<&AppError>,
    key_input: bool,
    submit: &str,
) -> Markup {
    let at_fault = error
        .and_then(|e| e.details.field.clone())
        .unwrap_or_default();
    let names = |name: &str| {
        at_fault == name
            || at_fault.starts_with(&format!("{name}."))
            || at_fault.starts_with(&format!("{name}/"))
    };
    let fault = |name: &str| -> Markup {
        html! {
            @if let Some(error) = error.filter(|_| names(name)) {
                p.field-error role="alert" { (error.message) }
            }
        }
    };
    let shown_elsewhere = ["key", "description", "schema", "example"]
        .iter()
        .any(|name| names(name) && (key_input || *name != "key"));
    html! {
        @if let Some(error) = error { @if !shown_elsewhere { p.flash.error role="alert" { (error.message) } } }
        form.stacked.wide.card method="post" action=(action) {
            (viewer.csrf_field())
            @if key_input {
                label for="type-key" { "Key" }
                input #type-key.mono type="text" name="key" value=(fields.key) required placeholder="build:finished";
                (fault("key"))
            }
            label for="type-description" { "Description" }
            input #type-description type="text" name="description" value=(fields.description) required;
            (fault("description"))
            div.two {
                div {
                    label for="type-schema" { "JSON Schema" }
                    textarea #type-schema.mono name="schema" rows="10" { (fields.schema) }
                    (fault("schema"))
                }
                div {
                    label for="type-example" { "Example payload" }
                    textarea #type-example.mono name="example" rows="10" { (fields.example) }
                    (fault("example"))
                }
            }
            div.form-actions { button.primary type="submit" { (submit) } }
        }
    }
}

/// Reads a JSON field of the form, or says which one is not JSON.
fn json_field(name: &str, text: &str) -> Result<serde_json::Value, AppError> {
    serde_json::from_str(text).map_err(|e| {
        AppError::invalid_field(herald_core::validation::FieldError::new(
            name,
            format!("{name}: not JSON: {e}"),
        ))
    })
}

impl TypeFields {
    fn from_form(form: &Form) -> Self {
        Self {
            key: form.get("key").unwrap_or_default().trim().to_owned(),
            description: form
                .get("description")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            schema: form.get("schema").unwrap_or_default().to_owned(),
            example: form.get("example").unwrap_or_default().to_owned(),
        }
    }

    /// The definition as the application takes it, or which field is not JSON.
    fn input(&self) -> Result<EventTypeInput, AppError> {
        Ok(EventTypeInput {
            description: self.description.clone(),
            family: None,
            schema: json_field("schema", &self.schema)?,
            example: json_field("example", &self.example)?,
        })
    }
}

/// `POST /console/event-types`: registers a custom type.
pub async fn register(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = TypeFields::from_form(&form);
    let registered = match fields.input() {
        Ok(input) => {
            state
                .app()
                .create_event_type(fields.key.clone(), input)
                .await
        }
        Err(error) => Err(error),
    };
    match registered {
        Ok(_) => Ok(redirect("/console/event-types?done=registered")),
        Err(error) if error.kind != herald_app::ErrorKind::Internal => {
            let status = crate::error::status_of(error.kind);
            let html = catalogue_page(&state, &viewer, None, &fields, Some(&error));
            Ok((status, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /console/event-types/{key}`: replaces a custom type's description,
/// schema and example.
pub async fn replace(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(key): Path<String>,
    form: Form,
) -> Result<Response, ConsoleError> {
    let fields = TypeFields {
        key: key.clone(),
        ..TypeFields::from_form(&form)
    };
    // Only an existing custom type is replaced here: registering is the
    // catalogue page's form, and a built-in type is refused by the catalogue.
    let def = state.app().event_type(&key).await?;
    let replaced = match fields.input() {
        Ok(input) => state.app().put_event_type(key.clone(), None, input).await,
        Err(error) => Err(error),
    };
    match replaced {
        Ok(_) => Ok(redirect(&format!(
            "/console/event-types/{key}?done=replaced"
        ))),
        Err(error) if error.kind != herald_app::ErrorKind::Internal => {
            let status = crate::error::status_of(error.kind);
            let html = detail_page(&viewer, &def, None, &fields, Some(&error));
            Ok((status, html).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /console/event-types/{key}/delete`: deletes a custom type.
pub async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ConsoleError> {
    state.app().delete_event_type(&key).await?;
    Ok(redirect("/console/event-types?done=deleted"))
}

/// `GET /console/event-types/{key}`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(key): Path<String>,
    Query(query): Query<Done>,
) -> Result<Html, ConsoleError> {
    let def = state.app().event_type(&key).await?;
    let notice =
        (query.done.as_deref() == Some("replaced")).then(|| flash("ok", "Event type replaced."));
    let fields = TypeFields {
        key: def.key.clone(),
        description: def.description.clone(),
        schema: pretty(&def.schema),
        example: pretty(&def.example),
    };
    Ok(detail_page(&viewer, &def, notice, &fields, None))
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// One type's schema and example; for a custom type and an admin, the form
/// that replaces it, holding `fields`.
fn detail_page(
    viewer: &Viewer,
    def: &EventTypeDef,
    notice: Option<Markup>,
    fields: &TypeFields,
    error: Option<&AppError>,
) -> Html {
    let replaceable = !def.builtin && viewer.can(Permission::Admin);
    let content = html! {
        div.page-head { div {
            div.crumbs { a href="/console/event-types" { "Event catalogue" } " / " }
            h1 { code { (def.key) } }
            p.muted { (def.description) }
        } }
        @if let Some(notice) = notice { (notice) }
        div.two {
            div.card { h2 { "Example payload" } pre { (pretty(&def.example)) } }
            div.card { h2 { "JSON Schema" } pre { (pretty(&def.schema)) } }
        }
        @if replaceable {
            h2 #replace { "Replace this type" }
            p.muted { "Events published from now on are checked against the new schema; the key stays." }
            (type_form(viewer, &format!("/console/event-types/{}", def.key), fields, error, false, "Replace event type"))
        }
    };
    page(viewer, Area::EventTypes, &def.key, content)
}

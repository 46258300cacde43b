//! The built-in event types: one module per family, each giving its types' keys,
//! descriptions, JSON Schemas (draft 2020-12) and examples.
//!
//! Examples are the seeds' examples, in the seeds' field order, as JSON text; the
//! schemas are `json!` values, whose key order `preserve_order` keeps for display.

use serde_json::{Value, json};

use crate::catalogue::EventTypeDef;
use crate::family::Family;

mod code_host;
mod code_monitor;
mod herald;
mod semgrep;
mod sonarqube;
mod sourcegraph;

pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every built-in type, in no particular order.
pub fn definitions() -> Vec<EventTypeDef> {
    let mut defs = Vec::new();
    defs.extend(sourcegraph::definitions());
    defs.extend(code_monitor::definitions());
    defs.extend(sonarqube::definitions());
    defs.extend(semgrep::definitions());
    defs.extend(code_host::definitions());
    defs.extend(herald::definitions());
    defs
}

fn builtin(
    key: &str,
    description: &str,
    family: Family,
    schema: Value,
    example: &str,
) -> EventTypeDef {
    EventTypeDef {
        key: key.to_owned(),
        description: description.to_owned(),
        family,
        schema,
        // Built-in examples are constants of this crate; a test parses every one.
        example: serde_json::from_str(example).expect("built-in examples are valid JSON"),
        builtin: true,
    }
}

/// A top-level object schema.
fn root_object(title: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": DRAFT_2020_12,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// A top-level object schema whose every listed property must be present.
fn all_required(title: &str, description: &str, properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|fields| fields.keys().cloned().collect())
        .unwrap_or_default();
    let mut schema = root_object(title, description, properties, &[]);
    schema["required"] = json!(required);
    schema
}

fn typed(json_type: &str, description: &str) -> Value {
    json!({"type": json_type, "description": description})
}

/// A field that is `null` when its value is not known (yet).
fn nullable(json_type: &str, description: &str) -> Value {
    json!({"type": [json_type, "null"], "description": description})
}

fn string_array(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

fn timestamp(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn nullable_timestamp(description: &str) -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": description})
}

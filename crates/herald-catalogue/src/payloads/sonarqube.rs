//! SonarQube's `sonar.analysis.*` properties merge: properties given with a published
//! `sonarqube:analysis` event land in its payload's `properties`, as SonarQube adds
//! the scanner's `-Dsonar.analysis.*` parameters.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::keys::SONARQUBE_ANALYSIS;

pub const ANALYSIS_PROPERTY_PREFIX: &str = "sonar.analysis.";

/// The body to deliver for a published event.
///
/// For `sonarqube:analysis` with at least one `sonar.analysis.*` property, the
/// properties are merged into `payload.properties` (created before `qualityGate`,
/// where the seed has it, if absent; a property given with the event replaces the
/// payload's own of the same key) and the payload is re-serialized compactly, field
/// order kept. Every other case returns `payload` byte for byte, including a payload
/// that is not a JSON object, which validation refuses before this is called.
pub fn prepare_payload(
    event_type: &str,
    payload: &[u8],
    properties: &BTreeMap<String, String>,
) -> Vec<u8> {
    let analysis: Vec<(&String, &String)> = properties
        .iter()
        .filter(|(key, _)| key.starts_with(ANALYSIS_PROPERTY_PREFIX))
        .collect();
    if event_type != SONARQUBE_ANALYSIS || analysis.is_empty() {
        return payload.to_vec();
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(payload) else {
        return payload.to_vec();
    };
    match merged(fields, &analysis) {
        Some(fields) => {
            serde_json::to_vec(&Value::Object(fields)).unwrap_or_else(|_| payload.to_vec())
        }
        None => payload.to_vec(),
    }
}

/// `fields` with the properties merged, or `None` if its `properties` is not an object.
fn merged(
    mut fields: Map<String, Value>,
    analysis: &[(&String, &String)],
) -> Option<Map<String, Value>> {
    if let Some(existing) = fields.get_mut("properties") {
        let existing = existing.as_object_mut()?;
        for (key, value) in analysis {
            existing.insert((*key).clone(), Value::String((*value).clone()));
        }
        return Some(fields);
    }
    let properties: Map<String, Value> = analysis
        .iter()
        .map(|(key, value)| ((*key).clone(), Value::String((*value).clone())))
        .collect();
    Some(insert_before(
        fields,
        "qualityGate",
        "properties",
        Value::Object(properties),
    ))
}

/// `fields` with `key` inserted just before `anchor`, or at the end if there is none.
fn insert_before(
    fields: Map<String, Value>,
    anchor: &str,
    key: &str,
    value: Value,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(fields.len() + 1);
    let mut pending = Some(value);
    for (name, field) in fields {
        if name == anchor
            && let Some(value) = pending.take()
        {
            out.insert(key.to_owned(), value);
        }
        out.insert(name, field);
    }
    if let Some(value) = pending {
        out.insert(key.to_owned(), value);
    }
    out
}

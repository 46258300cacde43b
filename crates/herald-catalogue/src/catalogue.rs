//! The catalogue: built-in and custom event types, each schema compiled once, when
//! the type enters the catalogue, so publishing only runs a compiled validator.

use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::sync::Arc;

use herald_core::event_type::{EventTypePattern, validate_type_name};
use herald_core::validation::FieldError;
use jsonschema::Validator;
use serde::Serialize;
use serde_json::Value;

use crate::builtin;
use crate::closest::closest;
use crate::family::Family;
use crate::keys::{CODE_MONITOR_NOTIFICATION, HERALD_PREFIX};
use crate::payloads::code_monitor::code_monitor_notification;
use crate::violation::{Violation, describe};

pub const MAX_DESCRIPTION_LEN: usize = 1000;

/// The query of the code monitor payload the Test button sends, as Sourcegraph's.
pub const TEST_QUERY: &str = "test query";

/// One event type, as `GET /api/v1/event-types` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTypeDef {
    pub key: String,
    pub description: String,
    pub family: Family,
    /// A JSON Schema, draft 2020-12 unless its `$schema` says otherwise.
    pub schema: Value,
    /// A payload that matches `schema`.
    pub example: Value,
    pub builtin: bool,
}

impl EventTypeDef {
    /// The example as compact JSON, fields in the order written.
    pub fn example_bytes(&self) -> Vec<u8> {
        // A `Value` with string keys always serializes.
        serde_json::to_vec(&self.example).expect("a JSON value serializes")
    }
}

/// A type a producer registers (or replaces). `family` decides its native headers:
/// `Custom` for none, or a product family so that its receivers get their headers.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomType {
    pub key: String,
    pub description: String,
    pub family: Family,
    pub schema: Value,
    pub example: Value,
}

/// What [`Catalogue::register_custom`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Created,
    Replaced,
}

/// Why a custom type was refused. [`CatalogueError::field`] names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("{0}")]
    InvalidKey(FieldError),
    #[error(
        "event type {key:?} is reserved: keys starting with {HERALD_PREFIX:?} are Herald's own"
    )]
    ReservedKey { key: String },
    #[error(
        "event type {key:?} is built in and cannot be replaced or deleted; choose another key for your type"
    )]
    BuiltIn { key: String },
    #[error(
        "family \"herald\" is Herald's own; use \"custom\", or the product family whose headers your receivers expect"
    )]
    ReservedFamily,
    #[error("description must be at most {MAX_DESCRIPTION_LEN} characters, got {len}")]
    DescriptionTooLong { len: usize },
    #[error("schema is not a valid JSON Schema (at {pointer:?}): {rule}")]
    InvalidSchema { pointer: String, rule: String },
    #[error("example does not match the schema at {pointer:?}: {rule}")]
    InvalidExample { pointer: String, rule: String },
    #[error("there is no custom event type {key:?}")]
    NotFound { key: String },
}

impl CatalogueError {
    /// The request field at fault, for the API's error body.
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidKey(_)
            | Self::ReservedKey { .. }
            | Self::BuiltIn { .. }
            | Self::NotFound { .. } => "key",
            Self::ReservedFamily => "family",
            Self::DescriptionTooLong { .. } => "description",
            Self::InvalidSchema { .. } => "schema",
            Self::InvalidExample { .. } => "example",
        }
    }
}

/// Why a payload cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown event type {key:?}{}", suggestion(closest))]
    UnknownType {
        key: String,
        /// The nearest known types, nearest first (at most three).
        closest: Vec<String>,
    },
    #[error("invalid payload{}: {rule}", location(pointer))]
    Invalid {
        /// JSON Pointer of the first offending field; `""` is the whole payload.
        pointer: String,
        rule: String,
    },
}

fn suggestion(closest: &[String]) -> String {
    let quoted: Vec<String> = closest.iter().map(|k| format!("{k:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => format!("; did you mean {last}?"),
        Some((last, rest)) => format!("; did you mean {} or {last}?", rest.join(", ")),
        None => String::new(),
    }
}

fn location(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" at {pointer:?}")
    }
}

struct Compiled {
    def: EventTypeDef,
    validator: Validator,
}

/// The known event types. Cheap to clone (entries are shared), so a server can
/// clone, change and swap it in whole while publishers keep reading the old one.
#[derive(Clone)]
pub struct Catalogue {
    types: BTreeMap<String, Arc<Compiled>>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl Catalogue {
    /// The built-in types, and no custom ones.
    pub fn builtin() -> Self {
        let types = builtin::definitions()
            .into_iter()
            .map(|def| {
                // Built-in schemas are constants of this crate; a test compiles them all.
                let validator = compile(&def.schema).expect("built-in schemas compile");
                (def.key.clone(), Arc::new(Compiled { def, validator }))
            })
            .collect();
        Self { types }
    }

    pub fn get(&self, key: &str) -> Option<&EventTypeDef> {
        self.types.get(key).map(|entry| &entry.def)
    }

    /// Every type, ordered by key.
    pub fn list(&self) -> impl Iterator<Item = &EventTypeDef> {
        self.types.values().map(|entry| &entry.def)
    }

    /// Adds a custom type, or replaces the custom type of the same key. Its schema
    /// must compile and its example must match it; built-in and `herald:` keys, and
    /// the `herald` family, are refused.
    pub fn register_custom(&mut self, custom: CustomType) -> Result<Registration, CatalogueError> {
        self.check_custom_key(&custom.key)?;
        if custom.family == Family::Herald {
            return Err(CatalogueError::ReservedFamily);
        }
        let len = custom.description.chars().count();
        if len > MAX_DESCRIPTION_LEN {
            return Err(CatalogueError::DescriptionTooLong { len });
        }
        let validator = compile(&custom.schema).map_err(|Violation { pointer, rule }| {
            CatalogueError::InvalidSchema { pointer, rule }
        })?;
        if let Err(error) = validator.validate(&custom.example) {
            let Violation { pointer, rule } = describe(&error);
            return Err(CatalogueError::InvalidExample { pointer, rule });
        }
        let def = EventTypeDef {
            key: custom.key,
            description: custom.description,
            family: custom.family,
            schema: custom.schema,
            example: custom.example,
            builtin: false,
        };
        let replaced = self
            .types
            .insert(def.key.clone(), Arc::new(Compiled { def, validator }));
        Ok(if replaced.is_some() {
            Registration::Replaced
        } else {
            Registration::Created
        })
    }

    /// Removes a custom type and returns it. Built-in types cannot be removed.
    pub fn remove_custom(&mut self, key: &str) -> Result<EventTypeDef, CatalogueError> {
        match self.types.entry(key.to_owned()) {
            btree_map::Entry::Vacant(_) => Err(CatalogueError::NotFound {
                key: key.to_owned(),
            }),
            btree_map::Entry::Occupied(slot) if slot.get().def.builtin => {
                Err(CatalogueError::BuiltIn {
                    key: key.to_owned(),
                })
            }
            btree_map::Entry::Occupied(slot) => Ok(slot.remove().def.clone()),
        }
    }

    /// Checks a payload against its type's compiled schema. This is the whole cost
    /// validation adds to publishing (after parsing the body).
    pub fn validate(&self, key: &str, payload: &Value) -> Result<(), PayloadError> {
        let Some(entry) = self.types.get(key) else {
            return Err(PayloadError::UnknownType {
                key: key.to_owned(),
                closest: closest(key, self.types.keys().map(String::as_str)),
            });
        };
        entry.validator.validate(payload).map_err(|error| {
            let Violation { pointer, rule } = describe(&error);
            PayloadError::Invalid { pointer, rule }
        })
    }

    /// Whether a subscription pattern matches at least one known type; a webhook
    /// whose pattern matches none would never receive anything from it.
    pub fn matches_any(&self, pattern: &EventTypePattern) -> bool {
        self.types.keys().any(|key| pattern.matches(key))
    }

    /// The body the Test button sends for `key`: its example, except for code monitors,
    /// whose test payload is the example monitor's with query "test query" and no results.
    pub fn test_payload(&self, key: &str) -> Option<Vec<u8>> {
        let def = self.get(key)?;
        if key == CODE_MONITOR_NOTIFICATION {
            let field = |name: &str| {
                def.example
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            return Some(code_monitor_notification(
                field("monitorDescription"),
                field("monitorURL"),
                TEST_QUERY,
                &[],
            ));
        }
        Some(def.example_bytes())
    }

    fn check_custom_key(&self, key: &str) -> Result<(), CatalogueError> {
        validate_type_name("key", key).map_err(CatalogueError::InvalidKey)?;
        if key.starts_with(HERALD_PREFIX) {
            return Err(CatalogueError::ReservedKey {
                key: key.to_owned(),
            });
        }
        if self.get(key).is_some_and(|def| def.builtin) {
            return Err(CatalogueError::BuiltIn {
                key: key.to_owned(),
            });
        }
        Ok(())
    }
}

/// Compiles a schema, draft 2020-12 by default. Remote `$ref`s cannot resolve: the
/// crate is built without the HTTP and file retrievers.
fn compile(schema: &Value) -> Result<Validator, Violation> {
    jsonschema::draft202012::options()
        .build(schema)
        .map_err(|error| describe(&error))
}

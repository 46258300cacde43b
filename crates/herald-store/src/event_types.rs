//! Custom event types: the types producers register with a schema, kept so that
//! every node (and every restart) builds the same catalogue. Built-in types are
//! code, not data, and are never stored.
//!
//! The store does not interpret a type: it keeps the family's name and the schema
//! and example as the JSON text it was given (field order included), and the
//! catalogue compiles and checks them. A type is replaced whole; its `created_at`
//! survives a replacement and its `updated_at` does not.

use async_trait::async_trait;
use herald_core::time::Timestamp;

use crate::StoreResult;

/// A custom event type as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeRecord {
    pub key: String,
    pub description: String,
    /// The catalogue family's name, e.g. `custom` or `sonarqube`.
    pub family: String,
    /// The JSON Schema, as JSON text.
    pub schema_json: String,
    /// The example payload, as JSON text.
    pub example_json: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A custom event type to create, or to replace the one of the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEventType {
    pub key: String,
    pub description: String,
    pub family: String,
    pub schema_json: String,
    pub example_json: String,
}

/// What [`EventTypeStore::put_event_type`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEventType {
    pub record: EventTypeRecord,
    /// True when no type of that key existed before.
    pub created: bool,
}

#[async_trait]
pub trait EventTypeStore: Send + Sync + 'static {
    /// Every custom type, ordered by key.
    async fn list_event_types(&self) -> StoreResult<Vec<EventTypeRecord>>;
    /// Creates the type, or replaces the one with the same key (keeping its `created_at`).
    async fn put_event_type(&self, new: NewEventType) -> StoreResult<PutEventType>;
    /// Deletes a type; false when there was none of that key.
    async fn delete_event_type(&self, key: &str) -> StoreResult<bool>;
}

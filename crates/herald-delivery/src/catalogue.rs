//! The live catalogue: the built-in event types plus the custom ones kept in the
//! store, shared by the API (which validates publishes against it and changes
//! custom types through it) and the engine (which needs each type's family for
//! its native headers).
//!
//! The catalogue itself is immutable; a change builds a new one and swaps it in,
//! so readers take a snapshot (`current`) and never wait on a writer. Changes on
//! this node are serialized and written to the store before they are swapped in.
//! Changes made on other nodes arrive by `reload`, which the API and the engine
//! call when they meet a type they do not know.

use std::sync::{Arc, PoisonError, RwLock};

use herald_catalogue::{Catalogue, CatalogueError, CustomType, EventTypeDef, Family, Registration};
use herald_store::{EventTypeRecord, EventTypeStore, NewEventType, StoreError};
use serde_json::Value;

/// Why a custom type could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The catalogue refused the type (its key, family, schema or example).
    #[error(transparent)]
    Refused(#[from] CatalogueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct LiveCatalogue {
    current: RwLock<Arc<Catalogue>>,
    store: Arc<dyn EventTypeStore>,
    /// Held by every change and reload on this node, so each starts from the
    /// catalogue the previous one left and none of them is swapped out by another.
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveCatalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveCatalogue")
            .field(&self.current())
            .finish()
    }
}

impl LiveCatalogue {
    /// The built-in types and every custom type in `store`.
    pub async fn load(store: Arc<dyn EventTypeStore>) -> Result<Self, StoreError> {
        let records = store.list_event_types().await?;
        let catalogue = with_records(Catalogue::builtin(), &records);
        Ok(Self {
            current: RwLock::new(Arc::new(catalogue)),
            store,
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// A snapshot of the catalogue as it is now.
    pub fn current(&self) -> Arc<Catalogue> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn swap(&self, catalogue: Catalogue) -> Arc<Catalogue> {
        let catalogue = Arc::new(catalogue);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&catalogue);
        catalogue
    }

    /// Reads the custom types from the store again, picking up what other nodes
    /// registered, replaced or deleted. Unchanged types keep their compiled schema.
    pub async fn reload(&self) -> Result<Arc<Catalogue>, StoreError> {
        let _change = self.changes.lock().await;
        let records = self.store.list_event_types().await?;
        let current = self.current();
        let stale: Vec<String> = current
            .list()
            .filter(|def| !def.builtin && !records.iter().any(|r| r.key == def.key))
            .map(|def| def.key.clone())
            .collect();
        let mut next = (*current).clone();
        for key in stale {
            // Listed as custom just above, so it is there and removable.
            let _ = next.remove_custom(&key);
        }
        let changed: Vec<EventTypeRecord> = records
            .into_iter()
            .filter(|record| !same_as_stored(current.get(&record.key), record))
            .collect();
        Ok(self.swap(with_records(next, &changed)))
    }

    /// The family of `key`, reloading once if this node does not know it (it may
    /// be a custom type registered on another node since). Unknown types, such as
    /// one deleted while its deliveries were pending, have no native headers.
    pub async fn family_of(&self, key: &str) -> Family {
        if let Some(def) = self.current().get(key) {
            return def.family;
        }
        match self.reload().await {
            Ok(catalogue) => catalogue.get(key).map_or(Family::Custom, |def| def.family),
            Err(error) => {
                tracing::warn!(%error, event_type = key, "cannot reload the event types; delivering without native headers");
                Family::Custom
            }
        }
    }

    /// Creates or replaces a custom type: checked by the catalogue, stored, then
    /// swapped in. Says whether the store created it or replaced one.
    pub async fn put(
        &self,
        custom: CustomType,
    ) -> Result<(EventTypeDef, Registration), ChangeError> {
        let _change = self.changes.lock().await;
        let mut next = (*self.current()).clone();
        let new = NewEventType {
            key: custom.key.clone(),
            description: custom.description.clone(),
            family: custom.family.as_str().to_owned(),
            schema_json: as_text(&custom.schema),
            example_json: as_text(&custom.example),
        };
        next.register_custom(custom)?;
        let put = self.store.put_event_type(new).await?;
        let def = next.get(&put.record.key).cloned();
        self.swap(next);
        let registration = if put.created {
            Registration::Created
        } else {
            Registration::Replaced
        };
        // Registered into `next` just above.
        Ok((def.expect("the type was just registered"), registration))
    }

    /// Deletes a custom type from the store and the catalogue. Built-in types are
    /// refused; a type this node does not know is looked for in the store too.
    pub async fn remove(&self, key: &str) -> Result<(), ChangeError> {
        let _change = self.changes.lock().await;
        let mut next = (*self.current()).clone();
        match next.remove_custom(key) {
            Ok(_) | Err(CatalogueError::NotFound { .. }) => {}
            Err(refused) => return Err(refused.into()),
        }
        if !self.store.delete_event_type(key).await? {
            return Err(CatalogueError::NotFound {
                key: key.to_owned(),
            }
            .into());
        }
        self.swap(next);
        Ok(())
    }
}

/// `catalogue` with the stored types registered. A stored type the catalogue
/// refuses (a key that a newer Herald made built in, a record from a newer Herald)
/// is left out with a warning rather than keeping the server from starting.
fn with_records(mut catalogue: Catalogue, records: &[EventTypeRecord]) -> Catalogue {
    for record in records {
        let registered = custom_type(record).and_then(|custom| {
            catalogue
                .register_custom(custom)
                .map_err(|refused| refused.to_string())
        });
        if let Err(reason) = registered {
            tracing::warn!(event_type = %record.key, %reason, "a stored custom event type is left out of the catalogue");
        }
    }
    catalogue
}

fn custom_type(record: &EventTypeRecord) -> Result<CustomType, String> {
    let json = |text: &str, what: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|e| format!("its stored {what} is not JSON: {e}"))
    };
    let family = serde_json::from_value::<Family>(Value::String(record.family.clone()))
        .map_err(|_| format!("unknown family {:?}", record.family))?;
    Ok(CustomType {
        key: record.key.clone(),
        description: record.description.clone(),
        family,
        schema: json(&record.schema_json, "schema")?,
        example: json(&record.example_json, "example")?,
    })
}

/// Whether the catalogue's type is the stored one already, so reloading can keep it.
fn same_as_stored(def: Option<&EventTypeDef>, record: &EventTypeRecord) -> bool {
    let Some(def) = def else {
        return false;
    };
    !def.builtin
        && def.description == record.description
        && def.family.as_str() == record.family
        // Compared as text: `Value` equality ignores field order, which the example keeps.
        && as_text(&def.schema) == record.schema_json
        && as_text(&def.example) == record.example_json
}

/// The JSON text `put` stores for a value.
fn as_text(value: &Value) -> String {
    value.to_string()
}

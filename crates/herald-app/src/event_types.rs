//! The event catalogue: every type with its schema and example; producers
//! register, replace and delete their own types. Built-in types cannot be
//! changed.

use std::sync::Arc;

use herald_catalogue::{
    Catalogue, CatalogueError, CustomType, EventTypeDef, Family, PayloadError, Registration,
};
use herald_core::validation::FieldError;
use herald_delivery::ChangeError;
use serde_json::Value;

use crate::{App, AppError};

/// A custom event type's definition as given; `family` `None` means `custom`.
#[derive(Debug)]
pub struct EventTypeInput {
    pub description: String,
    pub family: Option<String>,
    pub schema: Value,
    pub example: Value,
}

fn parse_family(family: Option<&str>) -> Result<Family, FieldError> {
    let Some(name) = family else {
        return Ok(Family::Custom);
    };
    serde_json::from_value(Value::String(name.to_owned())).map_err(|_| {
        FieldError::new(
            "family",
            format!(
                "unknown family {name:?}; use custom, sourcegraph, sonarqube, code_monitor, semgrep or code_host"
            ),
        )
    })
}

fn no_nul(field: &str, text: &str) -> Result<(), FieldError> {
    if text.contains('\0') {
        return Err(FieldError::new(field, "may not contain NUL characters"));
    }
    Ok(())
}

impl EventTypeInput {
    fn validate(self, key: String) -> Result<CustomType, FieldError> {
        no_nul("description", &self.description)?;
        Ok(CustomType {
            family: parse_family(self.family.as_deref())?,
            key,
            description: self.description,
            schema: self.schema,
            example: self.example,
        })
    }
}

/// The nearest known keys to `key`, for "did you mean".
pub(crate) fn suggestions(catalogue: &Catalogue, key: &str) -> Vec<String> {
    // `validate` is the catalogue's one door to its suggestions; for a key it
    // does not know it answers with them, whatever the payload.
    match catalogue.validate(key, &Value::Null) {
        Err(PayloadError::UnknownType { closest, .. }) => closest,
        _ => Vec::new(),
    }
}

fn change_error(error: ChangeError) -> AppError {
    match error {
        ChangeError::Store(error) => error.into(),
        ChangeError::Refused(error @ CatalogueError::BuiltIn { .. }) => {
            AppError::event_type_conflict("builtin_event_type", error.to_string())
        }
        ChangeError::Refused(CatalogueError::NotFound { key }) => {
            AppError::event_type_not_found(&key, Vec::new())
        }
        ChangeError::Refused(error) => {
            let field = error.field();
            AppError::invalid_field(FieldError::new(field, error.to_string()))
        }
    }
}

impl App {
    /// The catalogue as this node knows it now.
    pub fn event_types(&self) -> Arc<Catalogue> {
        self.catalogue().current()
    }

    /// The type of `key`, reloading once from the store if this node does not
    /// know it (another node may have registered it).
    pub async fn event_type(&self, key: &str) -> Result<EventTypeDef, AppError> {
        if let Some(def) = self.catalogue().current().get(key) {
            return Ok(def.clone());
        }
        let catalogue = self.catalogue().reload().await?;
        match catalogue.get(key) {
            Some(def) => Ok(def.clone()),
            None => Err(AppError::event_type_not_found(
                key,
                suggestions(&catalogue, key),
            )),
        }
    }

    /// Registers a new custom type; one that exists already is refused (use
    /// [`App::put_event_type`] to replace it).
    pub async fn create_event_type(
        &self,
        key: String,
        input: EventTypeInput,
    ) -> Result<EventTypeDef, AppError> {
        let custom = input.validate(key)?;
        // Registered on another node, or here, since this node last looked.
        let catalogue = self.catalogue().reload().await?;
        if let Some(existing) = catalogue.get(&custom.key) {
            return Err(if existing.builtin {
                change_error(ChangeError::Refused(CatalogueError::BuiltIn {
                    key: custom.key,
                }))
            } else {
                AppError::event_type_conflict(
                    "already_exists",
                    format!(
                        "key: event type {:?} exists already; PUT /api/v1/event-types/{{key}} replaces it",
                        custom.key
                    ),
                )
            });
        }
        let (def, _) = self.put_custom(custom).await?;
        Ok(def)
    }

    /// Creates or replaces the custom type `key`. `restated_key` is the key
    /// the caller repeated in the definition, if it did: it must be `key`, as
    /// a type cannot be renamed.
    pub async fn put_event_type(
        &self,
        key: String,
        restated_key: Option<&str>,
        input: EventTypeInput,
    ) -> Result<(EventTypeDef, Registration), AppError> {
        if let Some(given) = restated_key.filter(|given| *given != key) {
            return Err(AppError::invalid_field(FieldError::new(
                "key",
                format!(
                    "{given:?} differs from {key:?} in the path; a type cannot be renamed, create a new one"
                ),
            )));
        }
        let custom = input.validate(key)?;
        self.put_custom(custom).await
    }

    /// Deletes a custom type. Webhooks subscribed to it keep their patterns;
    /// publishing it is refused from now on.
    pub async fn delete_event_type(&self, key: &str) -> Result<(), AppError> {
        self.catalogue().remove(key).await.map_err(change_error)
    }

    async fn put_custom(
        &self,
        custom: CustomType,
    ) -> Result<(EventTypeDef, Registration), AppError> {
        self.catalogue().put(custom).await.map_err(change_error)
    }
}

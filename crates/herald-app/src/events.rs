//! Publishing an event to every matching webhook: validated against the
//! catalogue, committed with its deliveries, then the post-commit hooks.

use std::collections::BTreeMap;

use herald_catalogue::keys::{HERALD_PREFIX, REPO_PUSH};
use herald_catalogue::{Family, PayloadError, prepare_payload};
use herald_core::event_type::validate_type_name;
use herald_core::id::EventId;
use herald_core::ordering::validate_ordering_key;
use herald_core::validation::FieldError;
use herald_core::webhook::validate_project;
use herald_store::{NewEvent, Published};
use serde_json::Value;

use crate::{App, AppError, metrics};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An event to publish, as a producer gave it.
#[derive(Debug)]
pub struct EventInput {
    pub event_type: String,
    /// `None`: global webhooks only.
    pub project: Option<String>,
    /// The payload's JSON text, sent byte for byte (for `sonarqube:analysis`,
    /// after merging the `sonar.analysis.*` properties into it).
    pub payload: String,
    pub properties: BTreeMap<String, String>,
    /// Events with the same key go one at a time, in publish order, to each
    /// webhook ordered by key.
    pub ordering_key: Option<String>,
    /// The producer's `Idempotency-Key`, as sent.
    pub idempotency_key: Option<Vec<u8>>,
}

/// Checks an `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(raw: Option<Vec<u8>>) -> Result<Option<String>, AppError> {
    let Some(bytes) = raw else {
        return Ok(None);
    };
    let visible = bytes.iter().all(|b| b.is_ascii_graphic());
    if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN || !visible {
        return Err(AppError::invalid_header(
            "Idempotency-Key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters (no spaces)"
            ),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

impl EventInput {
    fn validate(self) -> Result<NewEvent, FieldError> {
        validate_type_name("type", &self.event_type)?;
        let project = validate_project(self.project.as_deref())?;
        if self.properties.keys().any(String::is_empty) {
            return Err(FieldError::new(
                "properties",
                "property names may not be empty",
            ));
        }
        if !(self.payload.starts_with('{') || self.payload.starts_with('[')) {
            return Err(FieldError::new("payload", "must be a JSON object or array"));
        }
        Ok(NewEvent {
            id: EventId::new(),
            event_type: self.event_type,
            project,
            payload: self.payload.into_bytes(),
            properties: self.properties,
            ordering_key: self
                .ordering_key
                .as_deref()
                .map(validate_ordering_key)
                .transpose()?,
        })
    }
}

impl App {
    /// Publishes an event: the answer comes after the event and its deliveries
    /// are committed. A repeated idempotency key answers as the first publish
    /// did (`replayed`) and changes nothing.
    pub async fn publish(&self, mut input: EventInput) -> Result<Published, AppError> {
        let key = idempotency_key(input.idempotency_key.take())?;
        let limit = self.limits().max_payload_bytes;
        let payload_len = input.payload.len();
        if payload_len > limit {
            metrics::record_publish_refused();
            return Err(AppError::payload_too_large(format!(
                "the payload is {payload_len} bytes; the limit is {limit} bytes"
            )));
        }
        let mut event = input
            .validate()
            .inspect_err(|_| metrics::record_publish_refused())?;
        self.check_against_catalogue(&event)
            .await
            .inspect_err(|_| metrics::record_publish_refused())?;
        let family = self
            .catalogue()
            .current()
            .get(&event.event_type)
            .map_or(Family::Custom, |def| def.family);
        event.payload = prepare_payload(&event.event_type, &event.payload, &event.properties);
        // Only a push needs its payload after the commit; other payloads are
        // not copied.
        let push = (event.event_type == REPO_PUSH).then(|| event.payload.clone());
        let published = self.store().publish(event, key).await?;
        if published.replayed {
            metrics::record_replay();
        } else {
            metrics::record_published(family);
            self.after_publish(published.deliveries, push.as_deref());
        }
        Ok(published)
    }

    /// The post-commit hooks of a new (not replayed) publish or ingest: wake
    /// the engine for its deliveries, and fetch at once the repository each
    /// `repo:push` payload in `pushes` names (an ingest can carry several).
    pub(crate) fn after_publish<'a>(
        &self,
        deliveries: u32,
        pushes: impl IntoIterator<Item = &'a [u8]>,
    ) {
        if deliveries > 0 {
            self.engine().wake();
        }
        for payload in pushes {
            self.monitor_service().notify_event(REPO_PUSH, payload);
        }
    }

    /// Refuses Herald's own types, types the catalogue does not have (after
    /// reloading it once: another node may have registered the type), and
    /// payloads their type's schema refuses, naming the JSON Pointer and the rule.
    async fn check_against_catalogue(&self, event: &NewEvent) -> Result<(), AppError> {
        if event.event_type.starts_with(HERALD_PREFIX) {
            return Err(AppError::invalid_field(FieldError::new(
                "type",
                format!(
                    "{:?} is one of Herald's own operational events; only Herald publishes {HERALD_PREFIX}* types",
                    event.event_type
                ),
            )));
        }
        let payload: Value = serde_json::from_slice(&event.payload).map_err(|e| {
            AppError::invalid_field(FieldError::new("payload", format!("is not JSON: {e}")))
        })?;
        let checked = match self
            .catalogue()
            .current()
            .validate(&event.event_type, &payload)
        {
            Err(PayloadError::UnknownType { .. }) => self
                .catalogue()
                .reload()
                .await?
                .validate(&event.event_type, &payload),
            checked => checked,
        };
        let Err(error) = checked else {
            return Ok(());
        };
        let message = error.to_string();
        Err(match error {
            PayloadError::UnknownType { closest, .. } => AppError::unknown_event_type(
                "type",
                format!(
                    "type: {message}; GET /api/v1/event-types lists the known types, and POST registers one"
                ),
                closest,
            ),
            PayloadError::Invalid { pointer, rule } => AppError::schema_violation(
                pointer,
                rule,
                format!(
                    "payload does not match the schema of {:?}: {message}",
                    event.event_type
                ),
            ),
        })
    }
}

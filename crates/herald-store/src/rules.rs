//! The rules every store applies to its records, written once so that SQLite
//! and PostgreSQL cannot drift apart: who receives an event (fan-out), and how
//! a patch changes a webhook or a repository. The stores only choose their
//! candidates (an index, a `WHERE` clause) and store what these functions say.

use herald_core::event_type::{EventTypePattern, any_matches};
use herald_core::ordering::DeliveryOrdering;

use crate::{
    HealthOverrides, RepositoryPatch, RepositoryRecord, SettingsChange, WebhookPatch, WebhookRecord,
};

/// Whether an enabled webhook in `scope` (its project; `None` is global) with
/// these `patterns` receives an event of `event_type` published in
/// `event_project`: its scope must be global or the event's project, and one
/// of its patterns must match the type.
pub fn receives(
    scope: Option<&str>,
    patterns: &[EventTypePattern],
    event_project: Option<&str>,
    event_type: &str,
) -> bool {
    (scope.is_none() || scope == event_project) && any_matches(patterns, event_type)
}

/// The key a new delivery is ordered under: the event's ordering key when
/// the webhook orders by key, else none (an event without a key is never held
/// back, nor holds anything back). A delivery with a key is attempted only
/// once every earlier pending delivery of the same (webhook, key) has
/// finished; the stores keep that by publishing it *waiting* (no due time)
/// when such a delivery exists, and making the oldest waiting one due when
/// the one before it succeeds or fails for good.
pub fn ordered_key(ordering: DeliveryOrdering, event_key: Option<&str>) -> Option<&str> {
    match ordering {
        DeliveryOrdering::Key => event_key,
        DeliveryOrdering::None => None,
    }
}

impl WebhookPatch {
    /// Applies the fields that are `Some` to `record`; the store sets
    /// `updated_at` by its own clock. A change of `enabled` clears
    /// `disabled_reason`, so a reason only outlives an update that leaves the
    /// webhook disabled. Enabling also makes the endpoint's health start
    /// afresh (a webhook the engine disabled keeps `enabled` and its backlog;
    /// this is how a person lets it try again). Returns `true` when the patch disables the webhook:
    /// the store must then fail its pending deliveries.
    pub fn apply_to(self, record: &mut WebhookRecord) -> bool {
        if let Some(name) = self.name {
            record.name = name;
        }
        if let Some((display, sealed)) = self.url {
            record.url_display = display;
            record.url_sealed = sealed;
        }
        if let Some(secret) = self.secret_sealed {
            record.secret_sealed = secret;
        }
        if let Some(types) = self.event_types {
            record.event_types = types;
        }
        if let Some(project) = self.project {
            record.project = project;
        }
        self.settings.apply_to(record);
        if let Some(ordering) = self.ordering {
            record.ordering = ordering;
        }
        if let Some(enabled) = self.enabled {
            if enabled != record.enabled {
                record.disabled_reason = None;
            }
            if enabled {
                record.health.reset();
            }
            record.enabled = enabled;
        }
        self.enabled == Some(false)
    }
}

impl SettingsChange {
    /// Merges the settings the change names into the webhook's own.
    fn apply_to(self, record: &mut WebhookRecord) {
        let health = &mut record.health_overrides;
        if let Some(failing_after) = self.failing_after {
            health.failing_after = failing_after;
        }
        if let Some(disable_after) = self.disable_after {
            health.disable_after = HealthOverrides::disable_after_given(disable_after);
        }
        let limits = &mut record.flow_limits;
        if let Some(max_in_flight) = self.max_in_flight {
            limits.max_in_flight = max_in_flight;
        }
        if let Some(max_per_second) = self.max_per_second {
            limits.max_per_second = max_per_second;
        }
    }
}

impl RepositoryPatch {
    /// Applies the fields that are `Some` to `record`; the store sets
    /// `updated_at`. Returns `true` when the name, the source or the branches
    /// changed: other commits or other branches mean what was searched no
    /// longer tells what is new, so the record's heads are cleared here and
    /// the store must drop every monitor's searched heads in the repository.
    pub fn apply_to(self, record: &mut RepositoryRecord) -> bool {
        let mut reset = false;
        if let Some(name) = self.name {
            reset |= name != record.name;
            record.name = name;
        }
        if let Some((display, sealed)) = self.source {
            reset |= sealed != record.source_sealed;
            record.source_display = display;
            record.source_sealed = sealed;
        }
        if let Some(branches) = self.branches {
            reset |= branches != record.branches;
            record.branches = branches;
        }
        if let Some(interval) = self.fetch_interval {
            record.fetch_interval = interval;
        }
        if reset {
            record.heads = None;
        }
        reset
    }
}

#[cfg(test)]
mod tests {
    use herald_core::id::{RepositoryId, WebhookId};
    use herald_core::time::Timestamp;

    use super::*;

    fn patterns(items: &[&str]) -> Vec<EventTypePattern> {
        items
            .iter()
            .map(|p| EventTypePattern::parse("event_types", p).expect("a valid pattern"))
            .collect()
    }

    #[test]
    fn a_webhook_receives_events_of_its_scope_and_types_only() {
        let changesets = patterns(&["changeset:*"]);
        assert!(receives(None, &changesets, None, "changeset:update"));
        assert!(receives(None, &changesets, Some("p"), "changeset:close"));
        assert!(receives(
            Some("p"),
            &changesets,
            Some("p"),
            "changeset:update"
        ));
        assert!(!receives(
            Some("p"),
            &changesets,
            Some("q"),
            "changeset:update"
        ));
        assert!(!receives(Some("p"), &changesets, None, "changeset:update"));
        assert!(!receives(None, &changesets, None, "repo:push"));
    }

    #[test]
    fn only_a_webhook_ordered_by_key_orders_and_only_events_with_a_key() {
        assert_eq!(ordered_key(DeliveryOrdering::Key, Some("k")), Some("k"));
        assert_eq!(ordered_key(DeliveryOrdering::Key, None), None);
        assert_eq!(ordered_key(DeliveryOrdering::None, Some("k")), None);
    }

    fn webhook(enabled: bool, reason: Option<&str>) -> WebhookRecord {
        WebhookRecord {
            id: WebhookId::new(),
            name: "hook".to_owned(),
            url_display: "https://example.com/".to_owned(),
            url_sealed: vec![1],
            secret_sealed: vec![2],
            event_types: patterns(&["repo:push"]),
            project: Some("p".to_owned()),
            enabled,
            disabled_reason: reason.map(str::to_owned),
            health: Default::default(),
            health_overrides: Default::default(),
            flow_limits: Default::default(),
            ordering: Default::default(),
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn a_webhook_patch_changes_only_the_fields_given() {
        let mut record = webhook(true, None);
        let before = record.clone();
        let disables = WebhookPatch {
            name: Some("renamed".to_owned()),
            project: Some(None),
            ..WebhookPatch::default()
        }
        .apply_to(&mut record);
        assert!(!disables);
        assert_eq!(record.name, "renamed");
        assert_eq!(record.project, None);
        assert_eq!(
            WebhookRecord {
                name: before.name.clone(),
                project: before.project.clone(),
                ..record
            },
            before
        );
    }

    #[test]
    fn enabling_clears_the_reason_and_disabling_again_keeps_it() {
        let enable = || WebhookPatch {
            enabled: Some(true),
            ..WebhookPatch::default()
        };
        let disable = || WebhookPatch {
            enabled: Some(false),
            ..WebhookPatch::default()
        };

        let mut gone = webhook(false, Some("410 Gone"));
        assert!(disable().apply_to(&mut gone));
        assert_eq!(gone.disabled_reason.as_deref(), Some("410 Gone"));

        assert!(!enable().apply_to(&mut gone));
        assert!(gone.enabled);
        assert_eq!(gone.disabled_reason, None);

        assert!(disable().apply_to(&mut gone));
        assert!(!gone.enabled);
        assert_eq!(gone.disabled_reason, None);
    }

    fn repository() -> RepositoryRecord {
        RepositoryRecord {
            id: RepositoryId::new(),
            name: "github.com/o/r".to_owned(),
            source_display: "https://github.com/o/r".to_owned(),
            source_sealed: vec![1],
            branches: None,
            fetch_interval: None,
            heads: Some([("refs/heads/main".to_owned(), "abc".to_owned())].into()),
            last_fetched_at: None,
            last_error: None,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn only_a_new_name_source_or_branch_list_resets_the_heads() {
        let mut record = repository();
        let interval = RepositoryPatch {
            fetch_interval: Some(Some(std::time::Duration::from_secs(60))),
            name: Some(record.name.clone()),
            ..RepositoryPatch::default()
        };
        assert!(!interval.apply_to(&mut record));
        assert!(record.heads.is_some());

        let branches = RepositoryPatch {
            branches: Some(Some(vec!["main".to_owned()])),
            ..RepositoryPatch::default()
        };
        assert!(branches.apply_to(&mut record));
        assert_eq!(record.heads, None);
        assert_eq!(record.branches, Some(vec!["main".to_owned()]));
    }
}

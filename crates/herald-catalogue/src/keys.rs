//! The keys of the built-in event types.

pub const BATCH_CHANGE_APPLY: &str = "batch_change:apply";
pub const BATCH_CHANGE_CLOSE: &str = "batch_change:close";
pub const BATCH_CHANGE_DELETE: &str = "batch_change:delete";
pub const CHANGESET_CLOSE: &str = "changeset:close";
pub const CHANGESET_PUBLISH: &str = "changeset:publish";
pub const CHANGESET_PUBLISH_ERROR: &str = "changeset:publish_error";
pub const CHANGESET_UPDATE: &str = "changeset:update";
pub const CHANGESET_UPDATE_ERROR: &str = "changeset:update_error";
pub const CODE_MONITOR_NOTIFICATION: &str = "code_monitor:notification";
/// The Block Kit message a code monitor's Slack action sends (Herald's own, not Sourcegraph's).
pub const CODE_MONITOR_SLACK: &str = "code_monitor:slack";
pub const SONARQUBE_ANALYSIS: &str = "sonarqube:analysis";
pub const SEMGREP_SCAN: &str = "semgrep:scan";
pub const SEMGREP_FINDINGS: &str = "semgrep:findings";
pub const REPO_PUSH: &str = "repo:push";
pub const HERALD_WEBHOOK_DISABLED: &str = "herald:webhook.disabled";
pub const HERALD_WEBHOOK_FAILING: &str = "herald:webhook.failing";
pub const HERALD_WEBHOOK_PAUSED: &str = "herald:webhook.paused";
pub const HERALD_WEBHOOK_RECOVERED: &str = "herald:webhook.recovered";
pub const HERALD_DELIVERY_EXHAUSTED: &str = "herald:delivery.exhausted";
pub const HERALD_DELIVERY_RECOVERED: &str = "herald:delivery.recovered";
pub const HERALD_PING: &str = "herald:ping";

/// Keys starting with this are Herald's own; producers cannot register them.
pub const HERALD_PREFIX: &str = herald_core::event_type::OPERATIONAL_PREFIX;

//! How the code monitor service runs.

use std::path::PathBuf;
use std::time::Duration;

use herald_monitor::SourcePolicy;

pub const DEFAULT_FETCH_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(2 * 60);
pub const DEFAULT_SEARCH_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Results one notification carries at most; a run with more matches sends
/// as many notifications as it needs.
pub const DEFAULT_NOTIFICATION_MAX_RESULTS: usize = 100;
/// Bytes of one notification's body at most: nginx's default
/// `client_max_body_size`, which many receivers sit behind, and Herald's own
/// default `limits.max_payload_bytes`.
pub const DEFAULT_NOTIFICATION_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct MonitorsConfig {
    /// How often a repository without an interval of its own is fetched.
    pub fetch_interval: Duration,
    /// The most one `git fetch` may take.
    pub fetch_timeout: Duration,
    /// The most one search of new commits may take.
    pub search_timeout: Duration,
    /// Where the bare mirrors live.
    pub mirror_dir: PathBuf,
    /// This server's external URL, which `monitorURL` links start with;
    /// `None` takes the server's (see [`crate::monitors::MonitorService::default_external_url`]).
    pub external_url: Option<String>,
    /// How big one notification may get; see [`NotificationLimits`].
    pub notification_limits: NotificationLimits,
    /// Repositories fetched and searched at once.
    pub max_concurrent: usize,
    /// Which clone URLs and paths may be mirrored; the API refuses the others.
    pub sources: SourcePolicy,
}

impl MonitorsConfig {
    /// The defaults, with mirrors under `mirror_dir`: https and http sources on public
    /// addresses only.
    pub fn new(mirror_dir: PathBuf, external_url: Option<String>) -> MonitorsConfig {
        MonitorsConfig {
            fetch_interval: DEFAULT_FETCH_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            search_timeout: DEFAULT_SEARCH_TIMEOUT,
            mirror_dir,
            external_url,
            notification_limits: NotificationLimits::default(),
            max_concurrent: 2,
            sources: SourcePolicy::default(),
        }
    }
}

/// The most one notification carries. A run's matches are split, in order,
/// over as many notifications as these need; none is ever dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationLimits {
    /// Results per notification (a Slack message takes fewer: its blocks are
    /// limited too).
    pub max_results: usize,
    /// Bytes of a notification's body. A single result larger than this is
    /// sent alone, whole: cutting it would change what matched.
    pub max_bytes: usize,
}

impl Default for NotificationLimits {
    fn default() -> NotificationLimits {
        NotificationLimits {
            max_results: DEFAULT_NOTIFICATION_MAX_RESULTS,
            max_bytes: DEFAULT_NOTIFICATION_MAX_BYTES,
        }
    }
}

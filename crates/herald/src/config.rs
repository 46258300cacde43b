//! Server configuration. Layers, later ones winning: built-in defaults, the TOML
//! file given by `--config`, `HERALD_*` environment variables, command-line flags.
//! Every key is documented in `herald.example.toml` at the repository root.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use herald_app::monitors::NotificationLimits;
use herald_core::retry::RetrySchedule;
use herald_delivery::{DeliveryConfig, HealthPolicy};
use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::args::ServeArgs;
use crate::datadir::KEY_FILE;

/// A request timeout longer than this is surely a typo, and would make leases
/// (which outlive it) absurdly long.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
/// Durations from humantime can reach `Duration::MAX`; adding to them in a
/// timer must not overflow.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Top-level keys that come from the environment as plain strings, read raw so
/// that e.g. a numeric admin token stays a string.
const STRING_ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "admin_token",
    "external_url",
    "database_url",
    "secret_key_file",
];
/// Table keys that come from the environment as `HERALD_<TABLE>__<KEY>`.
const NESTED_ENV_KEYS: &[&str] = &[
    "metrics.enabled",
    "metrics.listen",
    "metrics.per_webhook",
    "log.format",
    "delivery.request_timeout",
    "delivery.retry_schedule",
    "delivery.retry_jitter",
    "delivery.max_in_flight",
    "delivery.max_in_flight_per_webhook",
    "delivery.poll_interval",
    "delivery.response_body_cap",
    "delivery.adaptive_concurrency",
    "delivery.health.failing_after",
    "delivery.health.disable_after",
    "delivery.health.first_pause",
    "delivery.health.longest_pause",
    "limits.max_payload_bytes",
    "limits.max_webhooks_per_scope",
    "limits.unverified_budget_bytes",
    "limits.unverified_per_receiver",
    "limits.unverified_kept_per_receiver",
    "retention.max_age",
    "retention.purge_interval",
    "retention.idempotency_ttl",
    "postgres.max_connections",
    "postgres.acquire_timeout",
    "postgres.schema",
    "monitors.fetch_interval",
    "monitors.fetch_timeout",
    "monitors.mirror_dir",
    "monitors.allow_ssh",
    "http.max_connections",
    "http.header_read_timeout",
    "http.body_read_timeout",
    "http.http2",
    "monitors.notification_max_results",
    "monitors.notification_max_bytes",
];

/// A configuration that cannot be used. `herald serve` exits with code 2 on it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn key(key: &str, message: impl fmt::Display) -> Self {
        Self(format!("{key}: {message}"))
    }
}

/// The validated configuration of `herald serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<AdminToken>,
    /// The URL people and code hosts reach this server at; `None` means
    /// `http://` and the address actually bound.
    pub external_url: Option<url::Url>,
    pub database_url: Option<DatabaseUrl>,
    /// The key that seals webhook URLs and secrets at rest; every node sharing
    /// one database needs the same key.
    pub secret_key_file: PathBuf,
    pub postgres: PostgresSettings,
    pub delivery: DeliveryConfig,
    pub limits: Limits,
    pub retention: Retention,
    pub monitors: MonitorSettings,
    pub http: HttpLimits,
    /// Where to serve `/metrics` without a token (`[metrics] listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Whether metrics are recorded and served at all (`[metrics] enabled`).
    pub metrics_enabled: bool,
    pub log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, with the spans (and so the request id), for log shippers.
    Json,
}

/// How code monitors keep their repositories' mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    /// How often a repository without an interval of its own is fetched.
    pub fetch_interval: Duration,
    /// The most one `git fetch` may take.
    pub fetch_timeout: Duration,
    /// Where the bare mirrors live; `<data_dir>/mirrors` unless configured.
    pub mirror_dir: PathBuf,
    /// Directories under which local repositories (paths, `file://`) may be
    /// mirrored; empty refuses them all.
    pub local_roots: Vec<PathBuf>,
    /// Whether `ssh://` and scp-like sources may be mirrored.
    pub allow_ssh: bool,
    /// How big one notification may get; a run's matches are split over as
    /// many as they need.
    pub notification_limits: NotificationLimits,
}

#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// A `postgres://` connection string. It may carry a password, so `Debug`
/// shows only that one is there.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

/// How a node uses PostgreSQL, when `database_url` points there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// The schema Herald's tables live in; `None` uses the connection's default.
    pub schema: Option<String>,
}

use herald_app::receivers::IngestLimits;
pub use herald_app::{Limits, Retention};
use herald_server::HttpLimits;

/// Loads and validates the configuration from all layers.
pub fn load(args: &ServeArgs) -> Result<Settings, ConfigError> {
    let raw: RawConfig = figment(args)?.extract().map_err(describe_figment_error)?;
    raw.validate()
}

fn figment(args: &ServeArgs) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = &args.config {
        if !path.is_file() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed("HERALD_").split("__").only(NESTED_ENV_KEYS));
    for key in STRING_ENV_KEYS {
        if let Some(value) = env_string(key)? {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    if let Some(value) = env_string("allow_cidr")? {
        figment = figment.merge(Serialized::default("allow_cidr", split_list(&value)));
    }
    if let Some(value) = env_string("monitors__local_roots")? {
        figment = figment.merge(Serialized::default(
            "monitors.local_roots",
            split_list(&value),
        ));
    }
    Ok(figment.merge(flag_overrides(args)))
}

/// A non-empty `HERALD_<KEY>` variable.
fn env_string(key: &str) -> Result<Option<String>, ConfigError> {
    let name = format!("HERALD_{}", key.to_ascii_uppercase());
    match std::env::var(&name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ConfigError(format!("{name} is not valid UTF-8")))
        }
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn flag_overrides(args: &ServeArgs) -> Figment {
    let mut figment = Figment::new();
    if let Some(listen) = &args.listen {
        figment = figment.merge(Serialized::default("listen", listen));
    }
    if let Some(dir) = &args.data_dir {
        figment = figment.merge(Serialized::default("data_dir", dir));
    }
    if !args.allow_cidr.is_empty() {
        figment = figment.merge(Serialized::default("allow_cidr", &args.allow_cidr));
    }
    if let Some(url) = &args.database_url {
        figment = figment.merge(Serialized::default("database_url", url));
    }
    if let Some(format) = &args.log_format {
        figment = figment.merge(Serialized::default("log.format", format));
    }
    figment
}

/// Each problem as `key: what is wrong (where it was set)`.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let messages: Vec<String> = error.into_iter().map(|e| describe_one(&e)).collect();
    ConfigError(messages.join("; "))
}

fn describe_one(error: &figment::Error) -> String {
    let key = error.path.join(".").to_ascii_lowercase();
    let source = error.metadata.as_ref().and_then(|meta| match &meta.source {
        Some(figment::Source::File(path)) => Some(format!("in {}", path.display())),
        _ if meta.name.contains("environment") => Some(format!(
            "from HERALD_{}",
            key.to_ascii_uppercase().replace('.', "__")
        )),
        _ => None,
    });
    let key = if key.is_empty() {
        "config".to_owned()
    } else {
        key
    };
    match source {
        Some(source) => format!("{key}: {} ({source})", error.kind),
        None => format!("{key}: {}", error.kind),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    listen: String,
    data_dir: PathBuf,
    admin_token: Option<String>,
    allow_cidr: Vec<String>,
    external_url: Option<String>,
    database_url: Option<String>,
    secret_key_file: Option<PathBuf>,
    postgres: RawPostgres,
    delivery: RawDelivery,
    limits: RawLimits,
    retention: RawRetention,
    monitors: RawMonitors,
    http: RawHttp,
    metrics: RawMetrics,
    log: RawLog,
}

/// `[metrics]`: whether metrics are recorded at all, where else `/metrics`
/// is served, without a token, and whether the attempts counter carries each
/// webhook's id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    enabled: bool,
    listen: Option<String>,
    per_webhook: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            per_webhook: false,
        }
    }
}

/// `[log]`: how log lines look.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
        }
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./herald-data"),
            admin_token: None,
            allow_cidr: Vec::new(),
            external_url: None,
            database_url: None,
            secret_key_file: None,
            postgres: RawPostgres::default(),
            delivery: RawDelivery::default(),
            limits: RawLimits::default(),
            retention: RawRetention::default(),
            monitors: RawMonitors::default(),
            http: RawHttp::default(),
            metrics: RawMetrics::default(),
            log: RawLog::default(),
        }
    }
}

/// What clients may hold of the HTTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    max_connections: usize,
    header_read_timeout: HumanDuration,
    body_read_timeout: HumanDuration,
    http2: bool,
}

impl Default for RawHttp {
    fn default() -> Self {
        let limits = HttpLimits::default();
        Self {
            max_connections: limits.max_connections,
            header_read_timeout: HumanDuration(limits.header_read_timeout),
            body_read_timeout: HumanDuration(limits.body_read_timeout),
            http2: limits.http2,
        }
    }
}

impl RawHttp {
    fn validate(self) -> Result<HttpLimits, ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::key(
                "http.max_connections",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            ("http.header_read_timeout", self.header_read_timeout),
            ("http.body_read_timeout", self.body_read_timeout),
        ] {
            if value.0.is_zero() {
                return Err(ConfigError::key(key, "must be more than 0"));
            }
        }
        Ok(HttpLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout.0,
            body_read_timeout: self.body_read_timeout.0,
            http2: self.http2,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMonitors {
    fetch_interval: HumanDuration,
    fetch_timeout: HumanDuration,
    mirror_dir: Option<PathBuf>,
    local_roots: Vec<PathBuf>,
    allow_ssh: bool,
    notification_max_results: usize,
    notification_max_bytes: usize,
}

impl Default for RawMonitors {
    fn default() -> Self {
        let limits = NotificationLimits::default();
        Self {
            fetch_interval: HumanDuration(Duration::from_secs(5 * 60)),
            fetch_timeout: HumanDuration(Duration::from_secs(2 * 60)),
            mirror_dir: None,
            local_roots: Vec::new(),
            allow_ssh: false,
            notification_max_results: limits.max_results,
            notification_max_bytes: limits.max_bytes,
        }
    }
}

impl RawMonitors {
    fn validate(self, data_dir: &std::path::Path) -> Result<MonitorSettings, ConfigError> {
        for (key, value) in [
            ("monitors.fetch_interval", self.fetch_interval),
            ("monitors.fetch_timeout", self.fetch_timeout),
        ] {
            if value.0.is_zero() {
                return Err(ConfigError::key(key, "must be more than 0"));
            }
        }
        // A relative root would mean something else in every working directory.
        if let Some(root) = self.local_roots.iter().find(|root| !root.is_absolute()) {
            return Err(ConfigError::key(
                "monitors.local_roots",
                format!("{} is not an absolute path", root.display()),
            ));
        }
        positive(
            "monitors.notification_max_results",
            self.notification_max_results,
        )?;
        positive(
            "monitors.notification_max_bytes",
            self.notification_max_bytes,
        )?;
        Ok(MonitorSettings {
            fetch_interval: self.fetch_interval.0,
            fetch_timeout: self.fetch_timeout.0,
            mirror_dir: self
                .mirror_dir
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or_else(|| data_dir.join("mirrors")),
            local_roots: self.local_roots,
            allow_ssh: self.allow_ssh,
            notification_limits: NotificationLimits {
                max_results: self.notification_max_results,
                max_bytes: self.notification_max_bytes,
            },
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDelivery {
    request_timeout: HumanDuration,
    retry_schedule: Vec<HumanDuration>,
    retry_jitter: f64,
    max_in_flight: usize,
    max_in_flight_per_webhook: usize,
    poll_interval: HumanDuration,
    response_body_cap: usize,
    adaptive_concurrency: bool,
    health: RawHealth,
}

/// `[delivery.health]`: when a failing endpoint's webhook is paused and
/// disabled. `disable_after = 0` switches auto-disable off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHealth {
    failing_after: u32,
    disable_after: u32,
    first_pause: HumanDuration,
    longest_pause: HumanDuration,
}

impl Default for RawHealth {
    fn default() -> Self {
        let policy = HealthPolicy::default();
        Self {
            failing_after: policy.failing_after,
            disable_after: policy.disable_after.unwrap_or(0),
            first_pause: HumanDuration(policy.first_pause),
            longest_pause: HumanDuration(policy.longest_pause),
        }
    }
}

impl RawHealth {
    fn validate(self) -> Result<HealthPolicy, ConfigError> {
        positive("delivery.health.failing_after", self.failing_after as usize)?;
        if self.first_pause.0.is_zero() {
            return Err(ConfigError::key(
                "delivery.health.first_pause",
                "must be more than 0",
            ));
        }
        if self.longest_pause.0 < self.first_pause.0 {
            return Err(ConfigError::key(
                "delivery.health.longest_pause",
                "must be at least delivery.health.first_pause",
            ));
        }
        Ok(HealthPolicy {
            failing_after: self.failing_after,
            disable_after: (self.disable_after > 0).then_some(self.disable_after),
            first_pause: self.first_pause.0,
            longest_pause: self.longest_pause.0,
        })
    }
}

impl Default for RawDelivery {
    fn default() -> Self {
        let engine = DeliveryConfig::default();
        Self {
            request_timeout: HumanDuration(engine.request_timeout),
            retry_schedule: engine
                .retry
                .delays
                .iter()
                .copied()
                .map(HumanDuration)
                .collect(),
            retry_jitter: engine.retry.jitter,
            max_in_flight: engine.max_in_flight,
            max_in_flight_per_webhook: engine.max_in_flight_per_webhook,
            poll_interval: HumanDuration(engine.poll_interval),
            response_body_cap: engine.response_body_cap,
            adaptive_concurrency: engine.adaptive_concurrency,
            health: RawHealth::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPostgres {
    max_connections: u32,
    acquire_timeout: HumanDuration,
    schema: Option<String>,
}

impl Default for RawPostgres {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: HumanDuration(Duration::from_secs(10)),
            schema: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    max_payload_bytes: usize,
    max_webhooks_per_scope: u32,
    unverified_budget_bytes: usize,
    unverified_per_receiver: usize,
    unverified_kept_per_receiver: u32,
}

impl Default for RawLimits {
    fn default() -> Self {
        let ingest = IngestLimits::default();
        Self {
            max_payload_bytes: 1024 * 1024,
            max_webhooks_per_scope: 10,
            unverified_budget_bytes: ingest.unverified_budget_bytes,
            unverified_per_receiver: ingest.unverified_per_receiver,
            unverified_kept_per_receiver: ingest.unverified_kept_per_receiver,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    max_age: HumanDuration,
    purge_interval: HumanDuration,
    idempotency_ttl: HumanDuration,
}

impl Default for RawRetention {
    fn default() -> Self {
        let hours = |h: u64| HumanDuration(Duration::from_secs(h * 3600));
        Self {
            max_age: hours(30 * 24),
            purge_interval: hours(1),
            idempotency_ttl: hours(24),
        }
    }
}

impl RawConfig {
    fn validate(self) -> Result<Settings, ConfigError> {
        let listen = self.listen.parse().map_err(|_| {
            ConfigError::key(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key("data_dir", "must not be empty"));
        }
        let allow_cidrs = self
            .allow_cidr
            .iter()
            .map(|text| parse_cidr(text))
            .collect::<Result<Vec<_>, _>>()?;
        let secret_key_file = self
            .secret_key_file
            .filter(|path| !path.as_os_str().is_empty())
            .unwrap_or_else(|| self.data_dir.join(KEY_FILE));
        let monitors = self.monitors.validate(&self.data_dir)?;
        Ok(Settings {
            listen,
            secret_key_file,
            data_dir: self.data_dir,
            admin_token: self.admin_token.map(validate_admin_token).transpose()?,
            external_url: self
                .external_url
                .as_deref()
                .map(parse_external_url)
                .transpose()?,
            database_url: self
                .database_url
                .filter(|url| !url.trim().is_empty())
                .map(DatabaseUrl),
            postgres: self.postgres.validate()?,
            delivery: DeliveryConfig {
                metrics_per_webhook: self.metrics.per_webhook,
                ..self.delivery.validate(allow_cidrs)?
            },
            limits: self.limits.validate()?,
            retention: self.retention.validate()?,
            monitors,
            http: self.http.validate()?,
            metrics_listen: self
                .metrics
                .listen
                .filter(|listen| !listen.trim().is_empty())
                .map(|listen| {
                    listen.parse().map_err(|_| {
                        ConfigError::key(
                            "metrics.listen",
                            format!("{listen:?} is not an address like 127.0.0.1:9464"),
                        )
                    })
                })
                .transpose()?,
            metrics_enabled: self.metrics.enabled,
            log_format: self.log.format,
        })
    }
}

impl RawDelivery {
    fn validate(self, allow_cidrs: Vec<IpNet>) -> Result<DeliveryConfig, ConfigError> {
        let request_timeout = self.request_timeout.0;
        if request_timeout.is_zero() || request_timeout > MAX_REQUEST_TIMEOUT {
            return Err(ConfigError::key(
                "delivery.request_timeout",
                format!(
                    "must be more than 0 and at most {}",
                    humantime::format_duration(MAX_REQUEST_TIMEOUT)
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return Err(ConfigError::key(
                "delivery.retry_jitter",
                format!(
                    "must be at least 0 and below 1 (a fraction, 0.2 is ±20%), got {}",
                    self.retry_jitter
                ),
            ));
        }
        positive("delivery.max_in_flight", self.max_in_flight)?;
        positive(
            "delivery.max_in_flight_per_webhook",
            self.max_in_flight_per_webhook,
        )?;
        if self.poll_interval.0.is_zero() {
            return Err(ConfigError::key(
                "delivery.poll_interval",
                "must be more than 0",
            ));
        }
        let defaults = DeliveryConfig::default();
        Ok(DeliveryConfig {
            request_timeout,
            max_in_flight: self.max_in_flight,
            max_in_flight_per_webhook: self.max_in_flight_per_webhook,
            poll_interval: self.poll_interval.0,
            retry: RetrySchedule {
                delays: self.retry_schedule.into_iter().map(|d| d.0).collect(),
                jitter: self.retry_jitter,
                ..defaults.retry
            },
            response_body_cap: self.response_body_cap,
            allow_cidrs,
            health: self.health.validate()?,
            adaptive_concurrency: self.adaptive_concurrency,
            ..defaults
        })
    }
}

impl RawPostgres {
    fn validate(self) -> Result<PostgresSettings, ConfigError> {
        positive("postgres.max_connections", self.max_connections as usize)?;
        if self.acquire_timeout.0.is_zero() {
            return Err(ConfigError::key(
                "postgres.acquire_timeout",
                "must be more than 0",
            ));
        }
        let schema = self.schema.filter(|name| !name.is_empty());
        if let Some(name) = &schema {
            validate_schema_name(name)?;
        }
        Ok(PostgresSettings {
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout.0,
            schema,
        })
    }
}

/// The names PostgreSQL takes unquoted: a letter or `_`, then letters, digits
/// and `_`, at most 63 bytes.
fn validate_schema_name(name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 63 {
        return Ok(());
    }
    Err(ConfigError::key(
        "postgres.schema",
        format!("{name:?} must be letters, digits and _ (not starting with a digit), at most 63"),
    ))
}

impl RawLimits {
    fn validate(self) -> Result<Limits, ConfigError> {
        positive("limits.max_payload_bytes", self.max_payload_bytes)?;
        positive(
            "limits.max_webhooks_per_scope",
            self.max_webhooks_per_scope as usize,
        )?;
        positive(
            "limits.unverified_budget_bytes",
            self.unverified_budget_bytes,
        )?;
        positive(
            "limits.unverified_per_receiver",
            self.unverified_per_receiver,
        )?;
        positive(
            "limits.unverified_kept_per_receiver",
            self.unverified_kept_per_receiver as usize,
        )?;
        Ok(Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_webhooks_per_scope: self.max_webhooks_per_scope,
            ingest: IngestLimits {
                unverified_budget_bytes: self.unverified_budget_bytes,
                unverified_per_receiver: self.unverified_per_receiver,
                unverified_kept_per_receiver: self.unverified_kept_per_receiver,
            },
        })
    }
}

impl RawRetention {
    fn validate(self) -> Result<Retention, ConfigError> {
        for (key, value) in [
            ("retention.max_age", self.max_age),
            ("retention.purge_interval", self.purge_interval),
            ("retention.idempotency_ttl", self.idempotency_ttl),
        ] {
            if value.0.is_zero() {
                return Err(ConfigError::key(key, "must be more than 0"));
            }
        }
        Ok(Retention {
            max_age: self.max_age.0,
            purge_interval: self.purge_interval.0,
            idempotency_ttl: self.idempotency_ttl.0,
        })
    }
}

fn positive(key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::key(key, "must be at least 1"));
    }
    Ok(())
}

/// A network (`10.0.0.0/8`) or a single address (`10.1.2.3`).
fn parse_cidr(text: &str) -> Result<IpNet, ConfigError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::key(
                "allow_cidr",
                format!("{text:?} is not a network like 127.0.0.0/8 or an address"),
            )
        })
}

fn validate_admin_token(token: String) -> Result<AdminToken, ConfigError> {
    if token.trim().is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::key(
            "admin_token",
            "must be non-empty with no spaces or control characters",
        ));
    }
    if let Some(weakness) = admin_token_weakness(&token) {
        return Err(ConfigError::key(
            "admin_token",
            format!(
                "{weakness}. Set HERALD_ADMIN_TOKEN (or admin_token in the config file) to a \
                 random value such as the output of `openssl rand -base64 33`, or unset it to \
                 have one generated in the data directory"
            ),
        ));
    }
    Ok(AdminToken(token))
}

/// Whoever holds the admin token holds every webhook and secret, and the API
/// answers guesses as fast as they come: a short token falls to brute force.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// Why `token` is too weak to be the admin token, if it is; the reason never
/// quotes the token.
pub fn admin_token_weakness(token: &str) -> Option<String> {
    let len = token.chars().count();
    (len < MIN_ADMIN_TOKEN_LEN).then(|| {
        format!(
            "the admin token is {len} characters long; at least {MIN_ADMIN_TOKEN_LEN} are required"
        )
    })
}

fn parse_external_url(text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text)
        .map_err(|e| ConfigError::key("external_url", format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::key(
            "external_url",
            format!("{text:?} must be an http or https URL"),
        ));
    }
    Ok(url)
}

/// A duration written for people: `10s`, `5m`, `2h`, `30d`, `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(HumanDurationVisitor)
    }
}

struct HumanDurationVisitor;

impl Visitor<'_> for HumanDurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"10s\", \"5m\", \"2h\" or \"30d\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
        let duration = humantime::parse_duration(text).map_err(|e| {
            E::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. \"10s\", \"5m\", \"2h\" or \"30d\""
            ))
        })?;
        if duration > MAX_DURATION {
            return Err(E::custom(format!("{text:?} is longer than 10 years")));
        }
        Ok(HumanDuration(duration))
    }
}

#[cfg(test)]
// `Jail`'s closures must return figment's large error type.
#[allow(clippy::result_large_err)]
mod tests {
    use std::path::Path;

    use figment::Jail;

    use super::*;

    /// All digits, so the environment layer must keep it a string.
    const NUMERIC_TOKEN: &str = "12345678901234567890123456789012345";

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../herald.example.toml")
    }

    fn load_in(
        jail: &mut Jail,
        toml: Option<&str>,
        args: ServeArgs,
    ) -> Result<Settings, ConfigError> {
        let mut args = args;
        if let Some(text) = toml {
            jail.create_file("herald.toml", text).expect("write config");
            args.config = Some(jail.directory().join("herald.toml"));
        }
        load(&args)
    }

    #[test]
    fn defaults_apply_with_no_file_env_or_flags() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let s = load_in(jail, None, ServeArgs::default()).unwrap();
            assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(s.data_dir, PathBuf::from("./herald-data"));
            assert_eq!(s.delivery.request_timeout, Duration::from_secs(10));
            assert_eq!(s.delivery.retry.delays.len(), 7);
            assert_eq!(
                s.limits,
                Limits {
                    max_payload_bytes: 1 << 20,
                    max_webhooks_per_scope: 10,
                    ingest: IngestLimits {
                        unverified_budget_bytes: 64 << 20,
                        unverified_per_receiver: 64,
                        unverified_kept_per_receiver: 100,
                    },
                }
            );
            assert_eq!(s.retention.max_age, Duration::from_secs(30 * 86400));
            assert!(s.admin_token.is_none() && s.database_url.is_none());
            Ok(())
        });
    }

    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        Jail::expect_with(|_| {
            let args = ServeArgs {
                config: Some(example_path()),
                ..ServeArgs::default()
            };
            let example = load(&args).unwrap();
            let defaults = load(&ServeArgs::default()).unwrap();
            assert_eq!(example.listen, defaults.listen);
            assert_eq!(example.data_dir, defaults.data_dir);
            assert_eq!(example.limits, defaults.limits);
            assert_eq!(example.retention, defaults.retention);
            assert_eq!(example.database_url, defaults.database_url);
            assert_eq!(example.secret_key_file, defaults.secret_key_file);
            assert_eq!(example.postgres, defaults.postgres);
            assert_eq!(example.monitors, defaults.monitors);
            assert_eq!(example.http, defaults.http);
            assert_eq!(
                example.delivery.request_timeout,
                defaults.delivery.request_timeout
            );
            assert_eq!(example.delivery.retry, defaults.delivery.retry);
            assert_eq!(
                example.delivery.max_in_flight,
                defaults.delivery.max_in_flight
            );
            assert_eq!(
                example.delivery.max_in_flight_per_webhook,
                defaults.delivery.max_in_flight_per_webhook
            );
            assert_eq!(
                example.delivery.poll_interval,
                defaults.delivery.poll_interval
            );
            assert_eq!(
                example.delivery.adaptive_concurrency,
                defaults.delivery.adaptive_concurrency
            );
            assert_eq!(
                example.delivery.response_body_cap,
                defaults.delivery.response_body_cap
            );
            assert_eq!(example.delivery.health, defaults.delivery.health);
            Ok(())
        });
    }

    #[test]
    fn file_then_env_then_flags_each_override_the_one_before() {
        Jail::expect_with(|jail| {
            let toml = r#"
                listen = "127.0.0.1:1111"
                data_dir = "from-file"
                allow_cidr = ["10.0.0.0/8"]
                [delivery]
                request_timeout = "3s"
            "#;
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            assert_eq!(s.listen.port(), 1111);
            assert_eq!(s.data_dir, PathBuf::from("from-file"));
            assert_eq!(s.delivery.request_timeout, Duration::from_secs(3));

            jail.set_env("HERALD_LISTEN", "127.0.0.1:2222");
            jail.set_env("HERALD_DELIVERY__REQUEST_TIMEOUT", "4s");
            jail.set_env("HERALD_ALLOW_CIDR", "127.0.0.0/8, 192.168.1.7");
            jail.set_env("HERALD_ADMIN_TOKEN", NUMERIC_TOKEN);
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            assert_eq!(s.listen.port(), 2222);
            assert_eq!(s.data_dir, PathBuf::from("from-file"));
            assert_eq!(s.delivery.request_timeout, Duration::from_secs(4));
            let cidrs: Vec<String> = s
                .delivery
                .allow_cidrs
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(cidrs, ["127.0.0.0/8", "192.168.1.7/32"]);
            assert_eq!(s.admin_token, Some(AdminToken(NUMERIC_TOKEN.into())));

            let flags = ServeArgs {
                listen: Some("127.0.0.1:3333".into()),
                data_dir: Some("from-flag".into()),
                allow_cidr: vec!["172.16.0.0/12".into()],
                ..ServeArgs::default()
            };
            let s = load_in(jail, Some(toml), flags).unwrap();
            assert_eq!(s.listen.port(), 3333);
            assert_eq!(s.data_dir, PathBuf::from("from-flag"));
            assert_eq!(
                s.delivery.allow_cidrs,
                vec!["172.16.0.0/12".parse::<IpNet>().unwrap()]
            );
            Ok(())
        });
    }

    #[test]
    fn delivery_health_comes_from_its_table_and_the_environment() {
        Jail::expect_with(|jail| {
            let toml = r#"
                [delivery.health]
                failing_after = 2
                disable_after = 0
                first_pause = "250ms"
                longest_pause = "2s"
            "#;
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            let health = s.delivery.health;
            assert_eq!(health.failing_after, 2);
            assert_eq!(health.disable_after, None, "0 switches auto-disable off");
            assert_eq!(health.first_pause, Duration::from_millis(250));
            assert_eq!(health.longest_pause, Duration::from_secs(2));

            jail.set_env("HERALD_DELIVERY__HEALTH__DISABLE_AFTER", "9");
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            assert_eq!(s.delivery.health.disable_after, Some(9));

            let backwards = r#"
                [delivery.health]
                first_pause = "10m"
                longest_pause = "1m"
            "#;
            let err = load_in(jail, Some(backwards), ServeArgs::default()).unwrap_err();
            assert!(
                err.to_string().contains("delivery.health.longest_pause"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn client_variables_do_not_disturb_the_server() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_URL", "http://127.0.0.1:9");
            jail.set_env("HERALD_TOKEN", "t");
            assert!(load_in(jail, None, ServeArgs::default()).is_ok());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_named_at_any_depth() {
        Jail::expect_with(|jail| {
            let err =
                load_in(jail, Some("lisen = \"127.0.0.1:1\""), ServeArgs::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            let err = load_in(
                jail,
                Some("[delivery]\nrequest_timout = \"1s\""),
                ServeArgs::default(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("request_timout"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_key_and_the_rule() {
        Jail::expect_with(|jail| {
            let cases = [
                ("[delivery]\nrequest_timeout = \"ten\"", "request_timeout"),
                (
                    "[delivery]\nrequest_timeout = \"0s\"",
                    "delivery.request_timeout",
                ),
                (
                    "[delivery]\nrequest_timeout = \"2days\"",
                    "delivery.request_timeout",
                ),
                ("[delivery]\nretry_jitter = 1.5", "delivery.retry_jitter"),
                (
                    "[delivery]\nretry_schedule = [\"5s\", \"soon\"]",
                    "retry_schedule",
                ),
                ("[delivery]\nmax_in_flight = 0", "delivery.max_in_flight"),
                (
                    "[limits]\nmax_webhooks_per_scope = -1",
                    "max_webhooks_per_scope",
                ),
                ("[retention]\nmax_age = \"0d\"", "retention.max_age"),
                ("listen = \"localhost\"", "listen"),
                ("allow_cidr = [\"10.0.0.0/33\"]", "allow_cidr"),
                ("external_url = \"ftp://x\"", "external_url"),
                ("admin_token = \"has space\"", "admin_token"),
                ("admin_token = \"a\"", "at least 32"),
                (
                    "[postgres]\nmax_connections = 0",
                    "postgres.max_connections",
                ),
                ("[postgres]\nschema = \"my-schema\"", "postgres.schema"),
                (
                    "[postgres]\nacquire_timeout = \"0s\"",
                    "postgres.acquire_timeout",
                ),
            ];
            for (toml, key) in cases {
                let err = load_in(jail, Some(toml), ServeArgs::default())
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(key), "{toml:?} gave {err:?}");
            }
            Ok(())
        });
    }

    #[test]
    fn postgres_settings_come_from_the_file_the_environment_and_flags() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let toml = r#"
                database_url = "postgres://herald:pw@db.internal/herald"
                secret_key_file = "/run/secrets/herald.key"
                [postgres]
                max_connections = 8
                schema = "herald_a"
            "#;
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            assert_eq!(
                s.database_url,
                Some(DatabaseUrl(
                    "postgres://herald:pw@db.internal/herald".into()
                ))
            );
            assert_eq!(s.secret_key_file, PathBuf::from("/run/secrets/herald.key"));
            assert_eq!(s.postgres.max_connections, 8);
            assert_eq!(s.postgres.acquire_timeout, Duration::from_secs(10));
            assert_eq!(s.postgres.schema.as_deref(), Some("herald_a"));
            assert!(
                !format!("{s:?}").contains("pw@"),
                "the password leaked into Debug"
            );

            jail.set_env("HERALD_DATABASE_URL", "postgres://env/herald");
            jail.set_env("HERALD_POSTGRES__MAX_CONNECTIONS", "4");
            jail.set_env("HERALD_POSTGRES__ACQUIRE_TIMEOUT", "3s");
            jail.set_env("HERALD_POSTGRES__SCHEMA", "herald_b");
            let s = load_in(jail, Some(toml), ServeArgs::default()).unwrap();
            assert_eq!(
                s.database_url,
                Some(DatabaseUrl("postgres://env/herald".into()))
            );
            assert_eq!(s.postgres.max_connections, 4);
            assert_eq!(s.postgres.acquire_timeout, Duration::from_secs(3));
            assert_eq!(s.postgres.schema.as_deref(), Some("herald_b"));

            let flags = ServeArgs {
                database_url: Some("postgres://flag/herald".into()),
                ..ServeArgs::default()
            };
            let s = load_in(jail, Some(toml), flags).unwrap();
            assert_eq!(
                s.database_url,
                Some(DatabaseUrl("postgres://flag/herald".into()))
            );
            Ok(())
        });
    }

    #[test]
    fn the_secrets_key_lives_in_the_data_directory_unless_configured() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let s = load_in(jail, Some("data_dir = \"d\""), ServeArgs::default()).unwrap();
            assert_eq!(s.secret_key_file, PathBuf::from("d").join(KEY_FILE));
            jail.set_env("HERALD_SECRET_KEY_FILE", "/shared/secret.key");
            let s = load_in(jail, Some("data_dir = \"d\""), ServeArgs::default()).unwrap();
            assert_eq!(s.secret_key_file, PathBuf::from("/shared/secret.key"));
            Ok(())
        });
    }

    #[test]
    fn monitor_settings_default_under_the_data_directory_and_are_configurable() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let defaults = load_in(jail, None, ServeArgs::default()).unwrap().monitors;
            assert_eq!(
                defaults,
                MonitorSettings {
                    fetch_interval: Duration::from_secs(300),
                    fetch_timeout: Duration::from_secs(120),
                    mirror_dir: PathBuf::from("./herald-data/mirrors"),
                    local_roots: Vec::new(),
                    allow_ssh: false,
                    notification_limits: NotificationLimits {
                        max_results: 100,
                        max_bytes: 1024 * 1024,
                    },
                }
            );
            let toml = r#"
                data_dir = "/var/lib/herald"
                [monitors]
                fetch_interval = "1m"
            "#;
            jail.set_env("HERALD_MONITORS__FETCH_TIMEOUT", "30s");
            let s = load_in(jail, Some(toml), ServeArgs::default())
                .unwrap()
                .monitors;
            assert_eq!(s.fetch_interval, Duration::from_secs(60));
            assert_eq!(s.fetch_timeout, Duration::from_secs(30));
            assert_eq!(s.mirror_dir, PathBuf::from("/var/lib/herald/mirrors"));
            jail.set_env("HERALD_MONITORS__MIRROR_DIR", "/srv/mirrors");
            let s = load_in(jail, Some(toml), ServeArgs::default())
                .unwrap()
                .monitors;
            assert_eq!(s.mirror_dir, PathBuf::from("/srv/mirrors"));
            let sources = "[monitors]\nlocal_roots = [\"/srv/git\"]\nallow_ssh = true";
            let s = load_in(jail, Some(sources), ServeArgs::default())
                .unwrap()
                .monitors;
            assert_eq!(s.local_roots, [PathBuf::from("/srv/git")]);
            assert!(s.allow_ssh);
            jail.set_env("HERALD_MONITORS__LOCAL_ROOTS", "/a, /b");
            jail.set_env("HERALD_MONITORS__ALLOW_SSH", "false");
            let s = load_in(jail, Some(sources), ServeArgs::default())
                .unwrap()
                .monitors;
            assert_eq!(s.local_roots, [PathBuf::from("/a"), PathBuf::from("/b")]);
            assert!(!s.allow_ssh);
            jail.set_env("HERALD_MONITORS__LOCAL_ROOTS", "srv/git");
            let error = load_in(jail, None, ServeArgs::default()).unwrap_err();
            assert!(
                error.to_string().contains("monitors.local_roots"),
                "{error}"
            );
            jail.set_env("HERALD_MONITORS__LOCAL_ROOTS", "");
            jail.set_env("HERALD_MONITORS__NOTIFICATION_MAX_BYTES", "65536");
            let toml_limits = "[monitors]\nnotification_max_results = 25";
            let s = load_in(jail, Some(toml_limits), ServeArgs::default())
                .unwrap()
                .monitors;
            assert_eq!(
                s.notification_limits,
                NotificationLimits {
                    max_results: 25,
                    max_bytes: 65536
                }
            );
            let none = "[monitors]\nnotification_max_results = 0";
            let error = load_in(jail, Some(none), ServeArgs::default()).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("monitors.notification_max_results"),
                "{error}"
            );
            let zero = "[monitors]\nfetch_interval = \"0s\"";
            let error = load_in(jail, Some(zero), ServeArgs::default()).unwrap_err();
            assert!(
                error.to_string().contains("monitors.fetch_interval"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        Jail::expect_with(|_| {
            let args = ServeArgs {
                config: Some("no-such.toml".into()),
                ..ServeArgs::default()
            };
            let err = load(&args).unwrap_err().to_string();
            assert!(err.contains("no-such.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_short_admin_token_is_refused_with_what_to_do() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_ADMIN_TOKEN", "a");
            let err = load_in(jail, None, ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("1 characters long"), "{err}");
            assert!(
                err.contains("openssl rand") && err.contains("unset it"),
                "{err}"
            );
            jail.set_env("HERALD_ADMIN_TOKEN", "short-but-not-32-characters");
            let err = load_in(jail, None, ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(!err.contains("short-but-not"), "never quoted: {err}");
            jail.set_env("HERALD_ADMIN_TOKEN", "x".repeat(MIN_ADMIN_TOKEN_LEN));
            assert!(load_in(jail, None, ServeArgs::default()).is_ok());
            Ok(())
        });
    }
}

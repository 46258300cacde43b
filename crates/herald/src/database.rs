//! PostgreSQL for the binary, and the store commands.
//!
//! - [`PostgresTarget`]: where and how to connect, from the configuration; its
//!   `Display` hides the password, so it can go into logs and errors.
//! - [`open_postgres`]: connect and migrate. Migrations run under the store's
//!   advisory lock, so nodes starting together take turns.
//! - [`spawn_wake_listener`]: `LISTEN`s for work any node publishes and wakes
//!   this node's engine, so idle nodes start at once instead of at their next
//!   poll; it reconnects with backoff and the poll covers the gaps.
//! - [`check_key_opens_secrets`]: refuses a secrets key that cannot read what
//!   the store holds (a node started with another node's data directory missing).
//! - [`migrate`] and [`doctor`]: `herald migrate` and `herald doctor`, for either store.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use herald_core::cipher::SecretCipher;
use herald_core::time::Timestamp;
use herald_delivery::EngineHandle;
use herald_postgres::{PgConfig, PgError, PgStore};
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{DatabaseUrl, PostgresSettings, Settings};
use crate::serve::{StoreChoice, choose_store};

const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Connections `herald migrate` and `herald doctor` need: one at a time.
const COMMAND_CONNECTIONS: u32 = 2;
/// Leases use the database's clock, so skew cannot break them; beyond this much
/// the attempt log's times (taken by nodes) drift visibly from the database's.
const SKEW_WARNING_MS: i64 = 1000;

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub struct PostgresTarget {
    url: String,
    config: PgConfig,
}

impl PostgresTarget {
    pub fn new(url: &DatabaseUrl, settings: &PostgresSettings) -> Self {
        Self {
            url: url.0.clone(),
            config: PgConfig {
                max_connections: settings.max_connections,
                acquire_timeout: settings.acquire_timeout,
                schema: settings.schema.clone(),
                ..PgConfig::default()
            },
        }
    }

    async fn connect(&self, config: PgConfig) -> anyhow::Result<PgStore> {
        PgStore::connect(&self.url, config)
            .await
            .map_err(|error| in_context(self, error))
    }
}

/// A store error under the target it happened on. The store's messages already
/// include their causes, so the cause chain is not repeated after them.
fn in_context(target: &PostgresTarget, error: PgError) -> anyhow::Error {
    anyhow!("{target}: {error}")
}

/// The URL with any password replaced, and the schema.
impl fmt::Display for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted_url(&self.url))?;
        if let Some(schema) = &self.config.schema {
            write!(f, " (schema {schema})")?;
        }
        Ok(())
    }
}

/// A connection string fit to print: the password (in the user part or a
/// `password=` parameter) becomes `***`; a string that does not parse as a URL
/// is not shown at all, since it cannot be checked for one.
fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<the configured database_url>".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".into()
                } else {
                    value
                };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Connects with the configured pool and brings the schema up to date.
pub async fn open_postgres(target: &PostgresTarget) -> anyhow::Result<PgStore> {
    let store = target.connect(target.config.clone()).await?;
    store
        .migrate()
        .await
        .map_err(|error| in_context(target, error))?;
    let version = store
        .schema_version()
        .await
        .map_err(|error| in_context(target, error))?;
    eprintln!(
        "store: PostgreSQL {target}, schema version {}",
        version.applied
    );
    Ok(store)
}

/// Wakes `engine` whenever a node commits new deliveries, until `shutdown`.
pub fn spawn_wake_listener(
    store: Arc<PgStore>,
    engine: EngineHandle,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = wake_on_notifications(&store, &engine) => {}
        }
    })
}

async fn wake_on_notifications(store: &PgStore, engine: &EngineHandle) {
    let mut backoff = LISTEN_BACKOFF_MIN;
    loop {
        match store.listen_for_work().await {
            Ok(mut listener) => {
                // Whatever was published while nobody listened is due now.
                engine.wake();
                loop {
                    match listener.wait().await {
                        Ok(()) => {
                            backoff = LISTEN_BACKOFF_MIN;
                            engine.wake();
                        }
                        Err(error) => {
                            tracing::warn!(%error, "lost the PostgreSQL work notifications; the engine polls until they are back");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot listen for PostgreSQL work notifications; the engine polls meanwhile");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}

/// Fails when `cipher` cannot open a webhook secret the store already holds:
/// every node on one database must share one key, and a node with a fresh one
/// would otherwise fail every delivery it claims.
pub async fn check_key_opens_secrets(
    store: &dyn Store,
    cipher: &SecretCipher,
    key_file: &Path,
) -> anyhow::Result<()> {
    let webhooks = store
        .list_webhooks()
        .await
        .context("cannot read the webhooks to check the secrets key")?;
    let Some(webhook) = webhooks.first() else {
        return Ok(());
    };
    if cipher.open(&webhook.secret_sealed).is_err() {
        bail!(
            "the secrets key {} does not open the webhook secrets in this database. \
             Every node sharing a database needs the same key: copy secret.key from \
             the node that created the webhooks, or point secret_key_file at it",
            key_file.display()
        );
    }
    Ok(())
}

/// `herald migrate`: applies pending migrations and prints the schema version.
pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    match choose_store(&settings)? {
        StoreChoice::Sqlite(path) => {
            let before = sqlite_version_if_exists(&path)?;
            // Opening the store applies its migrations.
            drop(open_sqlite(&path)?);
            println!("store: SQLite {}", path.display());
            print_versions(before, herald_sqlite::SCHEMA_VERSION);
        }
        StoreChoice::Postgres(target) => {
            let store = target.connect(command_config(&target)).await?;
            let in_target = |error| in_context(&target, error);
            let before = store.schema_version().await.map_err(in_target)?.applied;
            store.migrate().await.map_err(in_target)?;
            let after = store.schema_version().await.map_err(in_target)?.applied;
            store.close().await;
            println!("store: PostgreSQL {target}");
            print_versions(Some(i64::from(before)), i64::from(after));
        }
    }
    Ok(())
}

fn print_versions(before: Option<i64>, after: i64) {
    match before {
        Some(before) if before == after => println!("schema version: {after} (already current)"),
        Some(before) => println!("schema version: {after} (was {before})"),
        None => println!("schema version: {after} (new database)"),
    }
}

/// `herald doctor`: checks the store and prints what it found. Fails when the
/// store cannot be reached or its schema does not match this build.
pub async fn doctor(settings: Settings) -> anyhow::Result<()> {
    match choose_store(&settings)? {
        StoreChoice::Sqlite(path) => doctor_sqlite(&path),
        StoreChoice::Postgres(target) => doctor_postgres(&target).await,
    }
}

fn doctor_sqlite(path: &Path) -> anyhow::Result<()> {
    println!("store: SQLite {}", path.display());
    let latest = herald_sqlite::SCHEMA_VERSION;
    let Some(applied) = sqlite_version_if_exists(path)? else {
        println!("database: not created yet; `herald serve` or `herald migrate` creates it");
        return Ok(());
    };
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!("database size: {bytes} bytes (without its -wal file)");
    println!("schema version: {applied} (this build: {latest})");
    println!("nodes: one; SQLite serves a single node (use PostgreSQL to run several)");
    check_schema(applied, latest)
}

async fn doctor_postgres(target: &PostgresTarget) -> anyhow::Result<()> {
    println!("store: PostgreSQL {target}");
    let store = target.connect(command_config(target)).await?;
    let report = store.doctor().await;
    store.close().await;
    let report = report.map_err(|error| in_context(target, error))?;
    println!(
        "connection: ok (round trip {:.1} ms)",
        report.round_trip.as_secs_f64() * 1000.0
    );
    println!("server version: {}", report.server_version);
    println!(
        "schema version: {} (this build: {})",
        report.schema.applied, report.schema.latest
    );
    println!(
        "clock skew: {:+} ms (the database's clock minus this node's, at {})",
        report.clock_skew_ms,
        Timestamp::now()
    );
    if report.clock_skew_ms.abs() > SKEW_WARNING_MS {
        println!(
            "warning: this node's clock is off by more than {SKEW_WARNING_MS} ms; leases use the \
             database's clock and stay correct, but check NTP on this node"
        );
    }
    check_schema(
        i64::from(report.schema.applied),
        i64::from(report.schema.latest),
    )
}

fn check_schema(applied: i64, latest: i64) -> anyhow::Result<()> {
    if applied < latest {
        bail!("the schema is behind this build ({applied} < {latest}); run `herald migrate`");
    }
    if applied > latest {
        bail!(
            "the schema is newer than this build knows ({applied} > {latest}); run a newer Herald"
        );
    }
    println!("ok");
    Ok(())
}

fn command_config(target: &PostgresTarget) -> PgConfig {
    PgConfig {
        max_connections: COMMAND_CONNECTIONS,
        publish_writers: 1,
        ..target.config.clone()
    }
}

fn open_sqlite(path: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(path, SqliteConfig::default())
        .with_context(|| format!("cannot open the SQLite database {}", path.display()))
}

fn sqlite_version_if_exists(path: &Path) -> anyhow::Result<Option<i64>> {
    if !path.exists() {
        return Ok(None);
    }
    let version = herald_sqlite::applied_version(path)
        .with_context(|| format!("cannot read the SQLite database {}", path.display()))?;
    Ok(Some(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_printed_url() {
        let cases = [
            (
                "postgres://herald:s3cret@db:5432/herald",
                "postgres://herald:***@db:5432/herald",
            ),
            (
                "postgresql://db/herald?user=h&password=s3cret&sslmode=disable",
                "postgresql://db/herald?user=h&password=***&sslmode=disable",
            ),
            (
                "postgres://herald@127.0.0.1/test",
                "postgres://herald@127.0.0.1/test",
            ),
            (
                "postgres://[not a url:s3cret",
                "<the configured database_url>",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown);
            assert!(!redacted_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn the_target_names_its_schema() {
        let settings = PostgresSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(1),
            schema: Some("herald_a".into()),
        };
        let target = PostgresTarget::new(&DatabaseUrl("postgres://u:pw@h/db".into()), &settings);
        assert_eq!(
            target.to_string(),
            "postgres://u:***@h/db (schema herald_a)"
        );
        assert_eq!(target.config.max_connections, 4);
    }
}

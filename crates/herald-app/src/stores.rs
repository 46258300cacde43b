//! Opening the store: SQLite in a file, or PostgreSQL for several nodes. One
//! open store implements every store trait; [`OpenedStore`] hands each out.
//!
//! - [`StoreChoice`]: which store, decided from the configuration before
//!   anything touches the disk.
//! - [`PostgresTarget`]: where and how to connect; its `Display` hides the
//!   password, so it can go into logs and errors.
//! - [`OpenedStore::spawn_wake_relay`]: on PostgreSQL, `LISTEN`s for work any
//!   node publishes and wakes this node's engine, so idle nodes start at once
//!   instead of at their next poll; it reconnects with backoff and the poll
//!   covers the gaps.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_delivery::EngineHandle;
use herald_postgres::{PgConfig, PgError, PgStore};
use herald_sqlite::{SqliteConfig, SqliteError, SqliteStore};
use herald_store::{EventTypeStore, MonitorStore, ReceiverStore, Store, TokenStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The stores this build can open.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// SQLite in this file (created with its directory's permissions).
    Sqlite(PathBuf),
    Postgres(PostgresTarget),
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the SQLite database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: SqliteError,
    },
    /// The store's messages already include their causes.
    #[error("{target}: {source}")]
    Postgres {
        target: PostgresTarget,
        #[source]
        source: PgError,
    },
}

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub struct PostgresTarget {
    url: String,
    config: PgConfig,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresTarget({self})")
    }
}

impl PostgresTarget {
    pub fn new(url: impl Into<String>, config: PgConfig) -> Self {
        Self {
            url: url.into(),
            config,
        }
    }

    /// The pool settings this target connects with.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Connects with `config` instead of the target's own pool settings (the
    /// store commands need only a connection or two).
    pub async fn connect_with(&self, config: PgConfig) -> Result<PgStore, OpenError> {
        PgStore::connect(&self.url, config)
            .await
            .map_err(|source| self.error(source))
    }

    /// A store error under the target it happened on.
    pub fn error(&self, source: PgError) -> OpenError {
        OpenError::Postgres {
            target: self.clone(),
            source,
        }
    }

    /// Connects with the configured pool and brings the schema up to date.
    /// Migrations run under the store's advisory lock, so nodes starting
    /// together take turns.
    async fn open(&self) -> Result<PgStore, OpenError> {
        let store = self.connect_with(self.config.clone()).await?;
        store.migrate().await.map_err(|source| self.error(source))?;
        let version = store
            .schema_version()
            .await
            .map_err(|source| self.error(source))?;
        tracing::info!(target = %self, schema_version = version.applied, "store: PostgreSQL");
        Ok(store)
    }
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

/// An open store, kept as its own type so that every store trait it
/// implements can be handed out.
#[derive(Clone)]
pub enum OpenedStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl OpenedStore {
    pub async fn open(choice: &StoreChoice) -> Result<Self, OpenError> {
        match choice {
            StoreChoice::Sqlite(path) => {
                let store = SqliteStore::open(path, SqliteConfig::default()).map_err(|source| {
                    OpenError::Sqlite {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(path = %path.display(), "store: SQLite");
                Ok(Self::Sqlite(Arc::new(store)))
            }
            StoreChoice::Postgres(target) => Ok(Self::Postgres(Arc::new(target.open().await?))),
        }
    }

    /// Sets the connection pool's gauges (PostgreSQL; SQLite has no pool).
    pub fn record_pool_metrics(&self) {
        if let Self::Postgres(store) = self {
            store.record_pool_metrics();
        }
    }

    /// Webhooks, events, deliveries and the delivery log.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// The custom event types, which the catalogue is built from.
    pub fn event_types(&self) -> Arc<dyn EventTypeStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Code monitors' repositories, monitors, searched heads and runs.
    pub fn monitors(&self) -> Arc<dyn MonitorStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Incoming webhook receivers, their request log and changeset records.
    pub fn receivers(&self) -> Arc<dyn ReceiverStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// API tokens, kept as digests.
    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// On PostgreSQL, wakes `engine` whenever any node commits new deliveries,
    /// until `shutdown`; SQLite has one node, whose operations wake its engine
    /// directly.
    pub fn spawn_wake_relay(
        &self,
        engine: &EngineHandle,
        shutdown: &CancellationToken,
    ) -> Option<JoinHandle<()>> {
        let Self::Postgres(store) = self else {
            return None;
        };
        let (store, engine, shutdown) = (store.clone(), engine.clone(), shutdown.clone());
        Some(tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = wake_on_notifications(&store, &engine) => {}
            }
        }))
    }

    /// Closes PostgreSQL's pool; SQLite closes when its last handle is dropped.
    pub async fn close(&self) {
        if let Self::Postgres(store) = self {
            store.close().await;
        }
    }
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
        let config = PgConfig {
            schema: Some("herald_a".into()),
            ..PgConfig::default()
        };
        let target = PostgresTarget::new("postgres://u:pw@h/db", config);
        assert_eq!(
            target.to_string(),
            "postgres://u:***@h/db (schema herald_a)"
        );
    }
}

//! Test databases: one fresh schema per store under test, dropped afterwards.
//!
//! The server comes from `HERALD_TEST_DATABASE_URL`. Without it, or when it does
//! not answer, every test prints why and returns early, unless
//! `HERALD_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use herald_postgres::{PgConfig, PgStore};
use herald_store::Store;
use sqlx::{Connection, PgConnection};

const URL_VAR: &str = "HERALD_TEST_DATABASE_URL";
const REQUIRE_VAR: &str = "HERALD_REQUIRE_POSTGRES";

/// A schema of its own on the test server, dropped when this is dropped —
/// also when the test panics, since unwinding drops it.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A fresh, empty schema name on a reachable server, or `None` (after saying
    /// why) when PostgreSQL tests are to be skipped.
    pub async fn new() -> Option<TestSchema> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => return skip(&format!("{URL_VAR} is not set")),
        };
        match PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
            }
            Err(err) => return skip(&format!("cannot reach the server in {URL_VAR}: {err}")),
        }
        let name = format!("herald_test_{}", uuid::Uuid::now_v7().simple());
        Some(TestSchema { url, name })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> PgConfig {
        PgConfig {
            schema: Some(self.name.clone()),
            max_connections: 12,
            ..PgConfig::default()
        }
    }

    /// A store on this schema, migrated.
    pub async fn store(&self) -> PgStore {
        let store = PgStore::connect(&self.url, self.config())
            .await
            .expect("connect to the test server");
        store.migrate().await.expect("migrate the test schema");
        store
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside the test's runtime (or while it
        // unwinds), so the schema is dropped from a thread with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_schema(&url, &name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("warning: could not drop test schema {}: {err}", self.name),
            Err(_) => eprintln!("warning: dropping test schema {} panicked", self.name),
        }
    }
}

async fn drop_schema(
    url: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = PgConnection::connect(url).await?;
    // A store's pool may still be closing; wait a while for its locks, not forever.
    sqlx::query("SET lock_timeout = '20s'")
        .execute(&mut conn)
        .await?;
    let statement = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
    tokio::time::timeout(
        Duration::from_secs(30),
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut conn),
    )
    .await??;
    conn.close().await?;
    Ok(())
}

fn skip<T>(reason: &str) -> Option<T> {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("PostgreSQL tests are required ({REQUIRE_VAR}=1) but cannot run: {reason}");
    }
    // Written to the process's stderr, past the test harness's capture, and once
    // per run rather than once per test.
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(std::io::stderr(), "SKIP: PostgreSQL tests: {reason}");
    });
    None
}

/// What the contract suite runs on: a migrated store in a fresh schema, with
/// the schema's guard to drop it after the case.
pub async fn contract_fixture() -> Option<(Arc<dyn Store>, TestSchema)> {
    let schema = TestSchema::new().await?;
    let store: Arc<dyn Store> = Arc::new(schema.store().await);
    Some((store, schema))
}

//! The store commands `herald migrate` and `herald doctor`, for either store.
//! Opening the store for `serve` is [`herald_app::stores`]'s job.

use std::path::Path;

use anyhow::{Context, bail};
use herald_app::stores::{PostgresTarget, StoreChoice};
use herald_core::time::Timestamp;
use herald_postgres::PgConfig;
use herald_sqlite::{SqliteConfig, SqliteStore};

use crate::config::Settings;
use crate::serve::choose_store;

/// Connections `herald migrate` and `herald doctor` need: one at a time.
const COMMAND_CONNECTIONS: u32 = 2;
/// Leases use the database's clock, so skew cannot break them; beyond this much
/// the attempt log's times (taken by nodes) drift visibly from the database's.
const SKEW_WARNING_MS: i64 = 1000;

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
            let store = target.connect_with(command_config(&target)).await?;
            let in_target = |error| target.error(error);
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
    let store = target.connect_with(command_config(target)).await?;
    let report = store.doctor().await;
    store.close().await;
    let report = report.map_err(|error| target.error(error))?;
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
        ..target.config().clone()
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

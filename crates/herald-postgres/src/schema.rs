//! Migrations, the schema version, and the health check behind `herald doctor`.
//!
//! Migrations are embedded SQL files applied in one transaction under a
//! transaction-scoped advisory lock, so nodes starting together queue up: the
//! first applies them, the others find nothing left to do. PostgreSQL DDL is
//! transactional, so a failed migration leaves the previous version intact.

use std::time::{Duration, Instant};

use herald_core::time::Timestamp;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{PgError, PgResult};
use crate::pool::Pool;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "event_types",
        sql: include_str!("../migrations/0002_event_types.sql"),
    },
    Migration {
        version: 3,
        name: "receivers",
        sql: include_str!("../migrations/0003_receivers.sql"),
    },
    Migration {
        version: 4,
        name: "monitors",
        sql: include_str!("../migrations/0004_monitors.sql"),
    },
    Migration {
        version: 5,
        name: "due_by_webhook",
        sql: include_str!("../migrations/0005_due_by_webhook.sql"),
    },
    Migration {
        version: 6,
        name: "lease_only_while_pending",
        sql: include_str!("../migrations/0006_lease_only_while_pending.sql"),
    },
    Migration {
        version: 7,
        name: "run_notifications",
        sql: include_str!("../migrations/0007_run_notifications.sql"),
    },
    Migration {
        version: 8,
        name: "batched_cleanups",
        sql: include_str!("../migrations/0008_batched_cleanups.sql"),
    },
    Migration {
        version: 9,
        name: "api_tokens",
        sql: include_str!("../migrations/0009_api_tokens.sql"),
    },
    Migration {
        version: 10,
        name: "key_check",
        sql: include_str!("../migrations/0010_key_check.sql"),
    },
    Migration {
        version: 11,
        name: "unverified_cap",
        sql: include_str!("../migrations/0011_unverified_cap.sql"),
    },
    Migration {
        version: 12,
        name: "endpoint_health",
        sql: include_str!("../migrations/0012_endpoint_health.sql"),
    },
    Migration {
        version: 13,
        name: "flow_control",
        sql: include_str!("../migrations/0013_flow_control.sql"),
    },
    Migration {
        version: 14,
        name: "failed_by_age",
        sql: include_str!("../migrations/0014_failed_by_age.sql"),
    },
    Migration {
        version: 15,
        name: "ordered_delivery",
        sql: include_str!("../migrations/0015_ordered_delivery.sql"),
    },
    Migration {
        version: 16,
        name: "no_event_check_per_delivery",
        sql: include_str!("../migrations/0016_no_event_check_per_delivery.sql"),
    },
];

/// The schema version this build writes: the last migration's version.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// First half of the migration lock's key ("HRLD"); the second half is the schema.
const MIGRATION_LOCK: i32 = 0x4852_4c44;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS herald_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Where the database's schema stands against this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The newest migration applied; 0 for an empty database.
    pub applied: i32,
    /// The newest migration this build knows.
    pub latest: i32,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.applied == self.latest
    }
}

/// What `herald doctor` prints about the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorReport {
    pub server_version: String,
    pub schema: SchemaStatus,
    /// The database's clock minus this node's, in milliseconds, measured at the
    /// middle of a round trip. Leases use the database's clock, so skew does not
    /// break them; a large one still deserves a look (NTP).
    pub clock_skew_ms: i64,
    pub round_trip: Duration,
}

/// Checks a schema name so it can be quoted into DDL safely.
pub(crate) fn validate_schema_name(name: &str) -> PgResult<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(PgError::InvalidSchema(name.to_owned()))
    }
}

pub(crate) async fn migrate(pool: &Pool, schema: Option<&str>) -> PgResult<()> {
    let mut tx = pool.begin().await?;
    lock_migrations(&mut tx, schema).await?;
    if let Some(schema) = schema {
        validate_schema_name(schema)?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::raw_sql(MIGRATIONS_TABLE).execute(&mut *tx).await?;
    let applied: i32 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM herald_schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
    if applied > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found: applied,
            known: SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        apply(&mut tx, migration).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes the migration lock until `tx` ends; the key adoption takes it too, so
/// nodes starting together take turns at both.
pub(crate) async fn lock_migrations(
    tx: &mut sqlx::PgTransaction<'_>,
    schema: Option<&str>,
) -> PgResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(MIGRATION_LOCK)
        .bind(schema.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn apply(tx: &mut sqlx::PgTransaction<'_>, migration: &Migration) -> PgResult<()> {
    let failed = |source| PgError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    sqlx::raw_sql(migration.sql)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
    sqlx::query("INSERT INTO herald_schema_migrations (version, name) VALUES ($1, $2)")
        .bind(migration.version)
        .bind(migration.name)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
    Ok(())
}

pub(crate) async fn status(pool: &Pool) -> PgResult<SchemaStatus> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('herald_schema_migrations') IS NOT NULL")
            .fetch_one(&mut *pool.acquire().await?)
            .await?;
    let applied = if exists {
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM herald_schema_migrations")
            .fetch_one(&mut *pool.acquire().await?)
            .await?
    } else {
        0
    };
    Ok(SchemaStatus {
        applied,
        latest: SCHEMA_VERSION,
    })
}

pub(crate) async fn doctor(pool: &Pool) -> PgResult<DoctorReport> {
    let started = Instant::now();
    let before = Timestamp::now().millis();
    let row = sqlx::query(
        "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms, version() AS version",
    )
    .fetch_one(&mut *pool.acquire().await?)
    .await?;
    let after = Timestamp::now().millis();
    let round_trip = started.elapsed();
    let database_ms: i64 = row.try_get("now_ms")?;
    let local_ms = before + (after - before) / 2;
    Ok(DoctorReport {
        server_version: row.try_get("version")?,
        schema: status(pool).await?,
        clock_skew_ms: database_ms - local_ms,
        round_trip,
    })
}

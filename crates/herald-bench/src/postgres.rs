//! Running herald on PostgreSQL: a fresh schema per run (dropped afterwards),
//! and the CPU time the database server spends, read from `/proc`.
//!
//! The database's CPU is that of its postmaster and every process under it:
//! live backends and workers count their own time, and the ones that exited
//! during the run count in the postmaster's reaped-children time. So the delta
//! over a run is the whole server's work, whichever connections came and went.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{Connection, PgConnection};

/// A schema of its own for one run.
pub struct BenchSchema {
    url: String,
    pub name: String,
}

impl BenchSchema {
    pub fn new(url: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            url: url.to_owned(),
            name: format!("herald_bench_{nanos:x}_{}", std::process::id()),
        }
    }

    /// The TOML that points herald at this schema: top-level keys, then the table
    /// (so it goes before any other table of the config).
    pub fn config_head(&self, key_file: &std::path::Path) -> String {
        format!(
            "database_url = {url:?}\nsecret_key_file = {key:?}\n",
            url = self.url,
            key = key_file.display().to_string(),
        )
    }

    pub fn config_table(&self) -> String {
        format!("\n[postgres]\nschema = {:?}\n", self.name)
    }

    /// Bytes of the schema's tables with their indexes and TOAST.
    pub async fn size_bytes(&self) -> Result<u64> {
        let mut conn = PgConnection::connect(&self.url)
            .await
            .context("connecting to measure the bench schema")?;
        let bytes: Option<i64> = sqlx::query_scalar(
            "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(bytes.map_or(0, i64::unsigned_abs))
    }

    pub async fn drop_schema(&self) -> Result<()> {
        let mut conn = PgConnection::connect(&self.url)
            .await
            .context("connecting to drop the bench schema")?;
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}

/// The database server's processes, when it runs on this machine.
pub struct DbCpu {
    postmaster: u32,
}

impl DbCpu {
    /// Finds the server behind `url` through the process of a connection to it;
    /// `None` when it is not on this machine (or `/proc` is not there).
    pub async fn locate(url: &str) -> Option<Self> {
        let mut conn = PgConnection::connect(url).await.ok()?;
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let postmaster = parent_of(u32::try_from(backend).ok()?)?;
        let _ = conn.close().await;
        (command_of(postmaster)?.starts_with("postgres")).then_some(Self { postmaster })
    }

    /// CPU time the server used so far.
    pub fn total(&self) -> Option<Duration> {
        let own = proc_stat(self.postmaster)?;
        let mut ticks = own.utime + own.stime + own.cutime + own.cstime;
        for child in children_of(self.postmaster) {
            if let Some(stat) = proc_stat(child) {
                ticks += stat.utime + stat.stime;
            }
        }
        Some(ticks_to_duration(ticks))
    }
}

/// CPU time (user + system) of one process so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = proc_stat(pid)?;
    Some(ticks_to_duration(stat.utime + stat.stime))
}

struct ProcStat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Fields of `/proc/<pid>/stat` after the command name, which may hold spaces
/// and parentheses, so the line is split after its last `)`.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(number(1)?).ok()?,
        utime: number(11)?,
        stime: number(12)?,
        cutime: number(13)?,
        cstime: number(14)?,
    })
}

fn parent_of(pid: u32) -> Option<u32> {
    proc_stat(pid).map(|s| s.ppid)
}

fn command_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// `/proc` counts in clock ticks of `sysconf(_SC_CLK_TCK)`, 100 on Linux
/// everywhere that matters.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_readable_stat() {
        let pid = std::process::id();
        let stat = proc_stat(pid).expect("/proc/self/stat");
        assert_eq!(Some(stat.ppid), parent_of(pid));
        assert!(process_cpu(pid).is_some());
    }
}

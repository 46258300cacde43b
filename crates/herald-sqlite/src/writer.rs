//! The one writer: a thread that owns the write connection and commits jobs in
//! groups.
//!
//! Callers send boxed jobs down a channel and await a oneshot reply. The thread
//! blocks for one job, drains whatever else is queued (up to `max_batch`), and
//! runs them all in one `BEGIN IMMEDIATE` transaction; a job that fails rolls
//! it back and the group runs again without that job. It commits once,
//! and only then replies to every job: an answer always means "on disk", while
//! a busy store pays for one fsync per group rather than per call.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use herald_core::id::WebhookId;
use herald_store::{StoreError, StoreResult, WebhookHealth};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{Failure, SqliteError, ensure_present};
use crate::webhooks::WebhookCache;

/// What a job sees: the write connection, inside the group's transaction, and
/// the webhook cache that only this thread touches.
pub(crate) struct Writer {
    conn: Connection,
    webhooks: Cell<Option<Arc<WebhookCache>>>,
    /// `PRAGMA data_version` when this thread last looked: it changes when
    /// another connection (another process) commits.
    data_version: i64,
    /// The database file: a group is not committed once it is gone.
    path: PathBuf,
}

impl Writer {
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The webhooks as this transaction sees them, loaded on first use after a
    /// change.
    pub(crate) fn webhooks(&self) -> Result<Arc<WebhookCache>, SqliteError> {
        let cache = match self.webhooks.take() {
            Some(cache) => cache,
            None => Arc::new(WebhookCache::load(&self.conn)?),
        };
        self.webhooks.set(Some(Arc::clone(&cache)));
        Ok(cache)
    }

    /// Every job that writes the webhooks table calls this.
    pub(crate) fn invalidate_webhooks(&self) {
        self.webhooks.set(None);
    }

    /// Puts a webhook's health, as `health::store` just wrote it, into the
    /// cache rather than dropping the cache: a failing endpoint's health
    /// changes with every attempt, and reloading every webhook after each
    /// would make the next claim pay for it. Should a job still hold the
    /// cache, it is dropped instead and loaded again on next use.
    pub(crate) fn cache_health(&self, id: WebhookId, health: &WebhookHealth) {
        let Some(mut cache) = self.webhooks.take() else {
            return;
        };
        if let Some(unshared) = Arc::get_mut(&mut cache) {
            unshared.set_health(id, health.clone());
            self.webhooks.set(Some(cache));
        }
    }

    /// Drops the cache if anyone else wrote to the database since we last looked.
    fn notice_outside_writes(&mut self) -> Result<(), SqliteError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |row| row.get(0))?;
        if version != self.data_version {
            self.data_version = version;
            self.invalidate_webhooks();
        }
        Ok(())
    }

    fn exec(&self, sql: &str) -> Result<(), SqliteError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Runs a group of jobs in one transaction and commits it. A job that
    /// fails rolls the whole transaction back, and the group runs again
    /// without it: per-job savepoints would make every job copy each page it
    /// touches into a sub-journal to undo a failure that almost never comes.
    fn commit_group(&mut self, group: &mut [Box<dyn WriteJob>]) -> Result<(), SqliteError> {
        ensure_present(&self.path)?;
        self.notice_outside_writes()?;
        // Each pass either commits or leaves out one more failed job, so this
        // ends after at most one pass per job.
        loop {
            self.exec("BEGIN IMMEDIATE")?;
            let outcome = self.run_jobs(group);
            let outcome = match outcome {
                Ok(Pass::Done) => self.exec("COMMIT").map(|()| Pass::Done),
                other => other,
            };
            match outcome {
                Ok(Pass::Done) => return Ok(()),
                Ok(Pass::JobFailed) => self.roll_back(),
                Err(error) => {
                    self.roll_back();
                    return Err(error);
                }
            }
        }
    }

    /// Runs every job that has not failed, stopping at the first that does.
    fn run_jobs(&mut self, group: &mut [Box<dyn WriteJob>]) -> Result<Pass, SqliteError> {
        for job in group.iter_mut().filter(|job| !job.failed()) {
            if !job.run(self) {
                return Ok(Pass::JobFailed);
            }
        }
        Ok(Pass::Done)
    }

    fn roll_back(&mut self) {
        // The transaction may already be gone (SQLite rolls back on some
        // errors), so a failing ROLLBACK tells us nothing new.
        let _ = self.exec("ROLLBACK");
        // The cache may hold what the rolled-back jobs wrote.
        self.invalidate_webhooks();
    }
}

/// How one pass over a group's jobs ended.
enum Pass {
    /// Every remaining job succeeded.
    Done,
    /// A job failed: its changes, and the others', must be rolled back.
    JobFailed,
}

trait WriteJob: Send {
    /// Runs the operation inside the group's transaction; `false` when it
    /// failed and the transaction must be rolled back. A job runs again when
    /// another job's failure rolled its pass back.
    fn run(&mut self, writer: &Writer) -> bool;
    /// Whether the job failed, and is left out of the group's later passes.
    fn failed(&self) -> bool;
    /// Answers the caller once the group's commit has succeeded or failed.
    fn reply(self: Box<Self>, commit: Result<(), &str>);
}

struct Job<T, F> {
    op: F,
    result: Option<Result<T, Failure>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: Fn(&Writer) -> Result<T, Failure> + Send,
{
    fn run(&mut self, writer: &Writer) -> bool {
        let op = &self.op;
        let result = catch_unwind(AssertUnwindSafe(|| op(writer)))
            .unwrap_or(Err(Failure::Db(SqliteError::Panicked)));
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn reply(self: Box<Self>, commit: Result<(), &str>) {
        let answer = match (commit, self.result) {
            (Err(message), _) => Err(StoreError::Backend(message.to_owned())),
            (Ok(()), Some(result)) => result.map_err(StoreError::from),
            (Ok(()), None) => Err(StoreError::Backend("the write was never run".to_owned())),
        };
        // The caller may have given up waiting; the write stands either way.
        let _ = self.reply.send(answer);
    }
}

/// Sends jobs to the writer thread. Dropping it lets the thread finish the
/// queued jobs and exit.
pub(crate) struct WriterHandle {
    jobs: Sender<Box<dyn WriteJob>>,
    /// Jobs sent and not yet taken by the writer, for the queue depth gauge
    /// (a channel does not tell its length).
    queued: Arc<AtomicUsize>,
}

impl WriterHandle {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(
        conn: Connection,
        path: PathBuf,
        max_batch: usize,
    ) -> Result<(Self, JoinHandle<()>), SqliteError> {
        let data_version = conn.pragma_query_value(None, "data_version", |row| row.get(0))?;
        let writer = Writer {
            conn,
            webhooks: Cell::new(None),
            data_version,
            path,
        };
        let (jobs, queue) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&queued);
        let thread = thread::Builder::new()
            .name("herald-sqlite-writer".to_owned())
            .spawn(move || run(writer, &queue, &taken, max_batch.max(1)))
            .map_err(|source| SqliteError::Thread {
                name: "writer",
                source,
            })?;
        Ok((Self { jobs, queued }, thread))
    }

    /// Runs `op` in the next group and returns its result once the group is committed.
    pub(crate) async fn run<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Writer) -> Result<T, Failure> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            op,
            result: None,
            reply,
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(
    mut writer: Writer,
    queue: &Receiver<Box<dyn WriteJob>>,
    queued: &AtomicUsize,
    max_batch: usize,
) {
    let mut group: Vec<Box<dyn WriteJob>> = Vec::with_capacity(max_batch);
    while let Ok(first) = queue.recv() {
        group.push(first);
        while group.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let waiting = queued.fetch_sub(group.len(), Ordering::Relaxed);
        herald_store::metrics::record_queue_depth(waiting.saturating_sub(group.len()));
        let started = Instant::now();
        let commit = writer.commit_group(&mut group).map_err(|e| e.to_string());
        herald_store::metrics::record_commit(group.len(), started.elapsed());
        for job in group.drain(..) {
            job.reply(commit.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<T: Send + 'static>(
        op: impl Fn(&Writer) -> Result<T, Failure> + Send + 'static,
    ) -> (Box<dyn WriteJob>, oneshot::Receiver<StoreResult<T>>) {
        let (reply, answer) = oneshot::channel();
        (
            Box::new(Job {
                op,
                result: None,
                reply,
            }),
            answer,
        )
    }

    fn insert(value: i64) -> impl Fn(&Writer) -> Result<(), Failure> + Send + 'static {
        move |w| {
            w.conn().execute("INSERT INTO t (v) VALUES (?1)", [value])?;
            Ok(())
        }
    }

    #[test]
    fn a_failing_job_is_rolled_back_alone_and_replies_wait_for_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .unwrap();
        let mut writer = Writer {
            conn,
            webhooks: Cell::new(None),
            data_version: 0,
            path,
        };

        let (first, first_answer) = job(insert(1));
        let (failing, failing_answer) = job(|w| {
            w.conn().execute("INSERT INTO t (v) VALUES (2)", [])?;
            // A duplicate key: this job fails after having written a row.
            w.conn().execute("INSERT INTO t (v) VALUES (1)", [])?;
            Ok(())
        });
        let (panicking, panicking_answer) = job(|w| -> Result<(), Failure> {
            w.conn()
                .execute("INSERT INTO t (v) VALUES (4)", [])
                .unwrap();
            panic!("a bug in a job");
        });
        let (last, mut last_answer) = job(insert(3));
        let mut group = vec![first, failing, panicking, last];

        writer.commit_group(&mut group).unwrap();
        assert!(
            last_answer.try_recv().is_err(),
            "no reply before the commit"
        );
        for job in group {
            job.reply(Ok(()));
        }

        let rows: Vec<i64> = writer
            .conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
        assert!(first_answer.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            failing_answer.blocking_recv().unwrap(),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            panicking_answer.blocking_recv().unwrap(),
            Err(StoreError::Backend(_))
        ));
        assert!(last_answer.blocking_recv().unwrap().is_ok());
    }

    #[test]
    fn a_failed_commit_fails_every_job_of_the_group() {
        let (first, first_answer) = job(|_| Ok(1));
        let (second, second_answer) = job(|_| Ok(2));
        for job in [first, second] {
            job.reply(Err("disk I/O error"));
        }
        for answer in [first_answer, second_answer] {
            match answer.blocking_recv().unwrap() {
                Err(StoreError::Backend(message)) => assert_eq!(message, "disk I/O error"),
                other => panic!("expected the commit's error, got {other:?}"),
            }
        }
    }
}

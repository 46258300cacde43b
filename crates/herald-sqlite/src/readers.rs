//! A small pool of threads, each with its own read-only connection, that serve
//! the reads (gets, lists, `next_due_at`). In WAL mode they read the last
//! committed state while the writer works, so reads never queue behind writes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use herald_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::SqliteConfig;
use crate::error::{Failure, SqliteError, ensure_present};
use crate::schema;

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Sends reads to the pool. Dropping it lets the threads exit.
pub(crate) struct ReaderPool {
    jobs: Sender<ReadJob>,
    /// The database file, checked before every read.
    path: Arc<PathBuf>,
}

impl ReaderPool {
    /// Opens `config.readers` connections (at least one), each on its own thread.
    pub(crate) fn spawn(
        path: &Path,
        config: &SqliteConfig,
    ) -> Result<(Self, Vec<JoinHandle<()>>), SqliteError> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::new();
        for i in 0..config.readers.max(1) {
            let conn = schema::open_reader(path, config)?;
            let queue = Arc::clone(&queue);
            let thread = thread::Builder::new()
                .name(format!("herald-sqlite-reader-{i}"))
                .spawn(move || serve(conn, &queue))
                .map_err(|source| SqliteError::Thread {
                    name: "reader",
                    source,
                })?;
            threads.push(thread);
        }
        let path = Arc::new(path.to_owned());
        Ok((Self { jobs, path }, threads))
    }

    /// Runs `op` on a free reader connection.
    pub(crate) async fn run<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let path = Arc::clone(&self.path);
        let job: ReadJob = Box::new(move |conn| {
            // Whether this connection has opened the log yet must not decide
            // how a removed database fails.
            let result = match ensure_present(&path) {
                Ok(()) => catch_unwind(AssertUnwindSafe(|| op(conn)))
                    .unwrap_or(Err(Failure::Db(SqliteError::Panicked))),
                Err(vanished) => Err(Failure::Db(vanished)),
            };
            // The caller may have given up waiting.
            let _ = reply.send(result.map_err(StoreError::from));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn serve(mut conn: Connection, queue: &Mutex<Receiver<ReadJob>>) {
    loop {
        // The lock is held only while waiting for the next job, never while running it.
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(&mut conn),
            Err(_) => return,
        }
    }
}

//! Running the system `git` with a deadline.
//!
//! Every invocation runs in its own process group, so a timeout kills git *and* the helpers it
//! spawned (`git-remote-https`, `ssh`, `index-pack`). Stdout is streamed to a caller-supplied
//! reader; stderr is drained on a thread (keeping its tail for error messages) so git never
//! blocks on a full pipe.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How much of git's stderr is kept for an error message.
const STDERR_TAIL_BYTES: usize = 4096;
/// The largest stdout [`Git::output`] collects; commands producing more are streamed instead.
const MAX_CAPTURED_STDOUT: usize = 64 << 20;
/// Environment variables that would redirect git away from the repository we name.
const REPOSITORY_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
];

/// A failure to run git or to understand what it said.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` executable could not be started.
    #[error("could not run git: {0}")]
    Spawn(#[source] io::Error),
    /// The command ran past its deadline and was killed.
    #[error("git {command} timed out after {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// The command exited unsuccessfully.
    #[error("git {command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    /// Reading git's output failed.
    #[error("reading the output of git {command}: {source}")]
    Io {
        command: String,
        #[source]
        source: io::Error,
    },
    /// Git printed something this crate does not understand.
    #[error("unexpected output from git {command}: {detail}")]
    Parse { command: String, detail: String },
}

/// One git invocation: `git -C <dir> <args>`, with a deadline.
pub(crate) struct Git {
    dir: OsString,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    isolated: bool,
    /// Variables to set (`Some`) or remove (`None`), after the defaults.
    env: Vec<(OsString, Option<OsString>)>,
    timeout: Duration,
}

impl Git {
    pub(crate) fn new(dir: &Path, timeout: Duration) -> Git {
        Git {
            dir: dir.as_os_str().to_owned(),
            args: Vec::new(),
            stdin: None,
            isolated: false,
            env: Vec::new(),
            timeout,
        }
    }

    /// Ignores the system and user configuration, so settings such as `diff.noprefix`,
    /// `log.showSignature` or an external diff driver cannot change output we parse, and
    /// `url.*.insteadOf`, proxies or credential helpers cannot redirect or feed a fetch.
    pub(crate) fn isolated(mut self) -> Git {
        self.isolated = true;
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Git
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl Into<OsString>) -> Git {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub(crate) fn env_remove(mut self, key: &str) -> Git {
        self.env.push((key.into(), None));
        self
    }

    pub(crate) fn stdin(mut self, input: Vec<u8>) -> Git {
        self.stdin = Some(input);
        self
    }

    /// The arguments after `git -C <dir>`, for tests of what a command would reveal.
    #[cfg(test)]
    pub(crate) fn arguments(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The variables set or removed, for tests.
    #[cfg(test)]
    pub(crate) fn environment(&self) -> Vec<(String, Option<String>)> {
        self.env
            .iter()
            .map(|(k, v)| {
                let text = |s: &OsString| s.to_string_lossy().into_owned();
                (text(k), v.as_ref().map(text))
            })
            .collect()
    }

    /// The subcommand, for error messages.
    fn name(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .map_or_else(|| "(no subcommand)".to_owned(), |a| a.into_owned())
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(&self.args);
        for var in REPOSITORY_ENV {
            cmd.env_remove(var);
        }
        cmd.env("LC_ALL", "C").env("GIT_TERMINAL_PROMPT", "0");
        if self.isolated {
            cmd.env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null");
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        cmd
    }

    /// Runs the command and collects its stdout.
    pub(crate) fn output(self) -> Result<Vec<u8>, GitError> {
        let command = self.name();
        self.stream(|out| {
            let mut buf = Vec::new();
            out.take(MAX_CAPTURED_STDOUT as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|source| GitError::Io {
                    command: command.clone(),
                    source,
                })?;
            if buf.len() > MAX_CAPTURED_STDOUT {
                return Err(GitError::Parse {
                    command,
                    detail: "output too large".into(),
                });
            }
            Ok(buf)
        })
    }

    /// Runs the command, handing its stdout to `read`. The deadline covers the whole run;
    /// when it passes, git is killed and the result is [`GitError::Timeout`] whatever `read`
    /// returned.
    pub(crate) fn stream<T>(
        self,
        read: impl FnOnce(&mut dyn BufRead) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let command = self.name();
        let deadline = Instant::now() + self.timeout;
        let mut child = self.command().spawn().map_err(GitError::Spawn)?;
        let pid = child.id();
        let stderr = child
            .stderr
            .take()
            .map(|err| thread::spawn(move || read_tail(err)));
        let writer = match (child.stdin.take(), self.stdin) {
            (Some(mut pipe), Some(input)) => Some(thread::spawn(move || {
                // git may stop reading early (an error, a kill): the broken pipe is not ours to report.
                let _ = pipe.write_all(&input);
            })),
            _ => None,
        };
        let (done, watched) = mpsc::channel::<()>();
        let watchdog = thread::spawn(move || {
            let timed_out = matches!(
                watched.recv_timeout(deadline.saturating_duration_since(Instant::now())),
                Err(RecvTimeoutError::Timeout)
            );
            if timed_out {
                kill_group(pid);
            }
            timed_out
        });

        let result = match child.stdout.take() {
            Some(out) => read(&mut BufReader::with_capacity(1 << 16, out)),
            None => Err(GitError::Parse {
                command: command.clone(),
                detail: "no stdout".into(),
            }),
        };
        if result.is_err() {
            // The reader gave up: git must not linger writing into a pipe nobody reads.
            kill_group(pid);
        }
        // The watchdog only kills while the child is unreaped (reaping happens below),
        // so a recycled pid can never be hit.
        let _ = done.send(());
        let mut timed_out = watchdog.join().unwrap_or(true);
        let status = reap(&mut child, deadline, &mut timed_out);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();

        if timed_out {
            return Err(GitError::Timeout {
                command,
                timeout: self.timeout,
            });
        }
        let value = result?;
        match status {
            Ok(status) if status.success() => Ok(value),
            Ok(status) => Err(GitError::Failed {
                command,
                status: describe(status),
                stderr,
            }),
            Err(source) => Err(GitError::Io { command, source }),
        }
    }
}

/// Waits for the child to exit, killing it if it outlives the deadline (a process can close
/// stdout and keep running).
fn reap(child: &mut Child, deadline: Instant, timed_out: &mut bool) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            *timed_out = true;
            kill_group(child.id());
            return child.wait();
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The workspace denies unsafe code; this is its one use: std cannot signal a
/// process group, and a timed-out git must not leave its children running.
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions. The group is the one this module
    // created (`process_group(0)` makes the child its leader) and its leader is not reaped yet.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn read_tail(mut err: impl Read) -> String {
    let mut tail = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = err.read(&mut chunk) {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&tail[start..]).trim().to_owned()
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// Whether `s` is a full hexadecimal object id (SHA-1 or SHA-256).
pub(crate) fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64)
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Time left before `deadline`, never zero (a zero timeout would kill a process at once).
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

//! Bare mirrors of watched repositories, kept under the data directory.
//!
//! A mirror is `git init --bare` (mode 0700) plus a remote `origin` whose refspec copies the
//! source's branches onto the mirror's own `refs/heads/*`; [`Mirror::fetch`] checks the source
//! against the [`SourcePolicy`] again, brings the mirror up to date with `git fetch --prune`
//! pinned to the approved addresses, and points `HEAD` at the source's default branch. The
//! stored remote URL never carries credentials.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::fetch::{check_local_repository, ensure_askpass, git_url, private_dir, remote_git};
use crate::git::{Git, GitError, is_object_id, remaining};
use crate::heads::Heads;
use crate::source::{Pinned, Source, SourcePolicy, SourceRefused};

/// Local commands (config, for-each-ref) get this long; only fetches take the caller's timeout.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_NAME_BYTES: usize = 512;
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/heads/*";

/// Why a mirror could not be created, fetched or read.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("invalid repository name: {0}")]
    InvalidName(&'static str),
    #[error("clone URL or path refused: {0}")]
    Refused(#[from] SourceRefused),
    #[error("this mirror was opened without a source, so it cannot be fetched")]
    NoSource,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not a git repository")]
    NotAMirror(PathBuf),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// A bare mirror of one repository.
#[derive(Clone, Debug)]
pub struct Mirror {
    name: String,
    path: PathBuf,
    /// Where fetches come from; `None` for a repository opened as it is.
    remote: Option<Remote>,
}

#[derive(Clone, Debug)]
struct Remote {
    source: Source,
    policy: SourcePolicy,
    askpass: PathBuf,
}

impl Mirror {
    /// Opens the mirror of `name` under `data_dir`, creating it (without any network access)
    /// when missing, once `policy` allows `source` — a clone URL or a local path. The source
    /// is set every time, so a changed URL takes effect at the next [`Mirror::fetch`].
    pub fn ensure(
        data_dir: &Path,
        name: &str,
        source: &str,
        policy: &SourcePolicy,
    ) -> Result<Mirror, MirrorError> {
        Mirror::ensure_in(&data_dir.join("mirrors"), name, source, policy)
    }

    /// Like [`Mirror::ensure`], with the mirrors kept directly in `mirrors_dir`.
    pub fn ensure_in(
        mirrors_dir: &Path,
        name: &str,
        source: &str,
        policy: &SourcePolicy,
    ) -> Result<Mirror, MirrorError> {
        validate_name(name)?;
        let checked = policy.check(source)?;
        let parent = mirrors_dir.to_owned();
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| MirrorError::Io { path, source }
        };
        private_dir(&parent).map_err(io_error(&parent))?;
        let askpass = ensure_askpass(&parent).map_err(io_error(&parent))?;
        let path = parent.join(directory_name(name));
        if !path.exists() {
            create_bare(&parent, &path)?;
        }
        // Mirrors made before they were private become private too.
        private_dir(&path).map_err(io_error(&path))?;
        let mut mirror = Mirror::open(name, &path)?;
        mirror.config(&["remote.origin.url", &stored_url(&checked)])?;
        mirror.config(&["remote.origin.fetch", FETCH_REFSPEC])?;
        mirror.remote = Some(Remote {
            source: checked,
            policy: policy.clone(),
            askpass,
        });
        Ok(mirror)
    }

    /// Opens an existing repository (bare or not) as `name`, without changing it. Searching a
    /// working repository is how tests and tools use the search without a mirror.
    pub fn open(name: &str, path: &Path) -> Result<Mirror, MirrorError> {
        validate_name(name)?;
        let not_a_repository = || MirrorError::NotAMirror(path.to_owned());
        let out = Git::new(path, LOCAL_TIMEOUT)
            .isolated()
            .args(["rev-parse", "--absolute-git-dir"])
            .output()
            .map_err(|_| not_a_repository())?;
        // rev-parse walks up to enclosing repositories; only `path` itself (or its `.git`) counts.
        let git_dir = fs::canonicalize(String::from_utf8_lossy(&out).trim())
            .map_err(|_| not_a_repository())?;
        let own = fs::canonicalize(path).map_err(|source| MirrorError::Io {
            path: path.to_owned(),
            source,
        })?;
        if git_dir != own && git_dir != own.join(".git") {
            return Err(not_a_repository());
        }
        Ok(Mirror {
            name: name.to_owned(),
            path: path.to_owned(),
            remote: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fetches the source's branches (pruning deleted ones), follows its default branch, and
    /// returns the heads of every branch. Failures — unreachable source, bad credentials, the
    /// timeout — come back as errors; the mirror keeps its previous state.
    ///
    /// One fetch at a time per mirror: concurrent fetches fail on git's ref locks.
    pub fn fetch(&self, timeout: Duration) -> Result<Heads, MirrorError> {
        let deadline = Instant::now() + timeout;
        let remote = self.remote.as_ref().ok_or(MirrorError::NoSource)?;
        // Checked again at every fetch: names resolve anew and links can be changed.
        let pinned = remote.policy.pin(&remote.source)?;
        if let Pinned::Local(real) = &pinned {
            check_local_repository(&remote.policy, real, LOCAL_TIMEOUT)?;
        }
        if let Some(default) = self.remote_default_branch(remote, &pinned, remaining(deadline))? {
            Git::new(&self.path, LOCAL_TIMEOUT)
                .isolated()
                .args(["symbolic-ref", "HEAD"])
                .args([default])
                .output()?;
        }
        remote_git(&self.path, &pinned, &remote.askpass, remaining(deadline))
            .args([
                "fetch",
                "--prune",
                "--no-tags",
                "--quiet",
                "--no-write-fetch-head",
                "--",
            ])
            .args([git_url(&pinned).as_str(), FETCH_REFSPEC])
            .output()?;
        self.all_heads()
    }

    /// The heads of `branches` (short names like `main` or full `refs/heads/main`), or of the
    /// default branch when `None`. Branches that do not exist (yet) are left out.
    pub fn heads(&self, branches: Option<&[String]>) -> Result<Heads, MirrorError> {
        let all = self.all_heads()?;
        let wanted: Vec<String> = match branches {
            Some(list) => list.iter().map(|b| full_branch_ref(b)).collect(),
            None => self.default_branch()?.into_iter().collect(),
        };
        Ok(wanted
            .into_iter()
            .filter_map(|r| all.get(&r).map(|oid| (r.clone(), oid.to_owned())))
            .collect())
    }

    /// The branch `HEAD` points at (`refs/heads/main`), if any.
    pub fn default_branch(&self) -> Result<Option<String>, MirrorError> {
        let out = Git::new(&self.path, LOCAL_TIMEOUT)
            .isolated()
            .args(["symbolic-ref", "-q", "HEAD"])
            .output();
        match out {
            Ok(out) => {
                Ok(Some(String::from_utf8_lossy(&out).trim().to_owned()).filter(|r| !r.is_empty()))
            }
            // Exit code 1 with -q: HEAD is detached.
            Err(GitError::Failed { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn all_heads(&self) -> Result<Heads, MirrorError> {
        let out = Git::new(&self.path, LOCAL_TIMEOUT)
            .isolated()
            .args([
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                "refs/heads/",
            ])
            .output()?;
        let mut heads = Heads::new();
        for line in String::from_utf8_lossy(&out).lines() {
            let Some((oid, reference)) = line.split_once(' ') else {
                continue;
            };
            if !is_object_id(oid) {
                return Err(GitError::Parse {
                    command: "for-each-ref".into(),
                    detail: line.to_owned(),
                }
                .into());
            }
            heads.insert(reference, oid);
        }
        Ok(heads)
    }

    /// Asks the source which branch its `HEAD` names.
    fn remote_default_branch(
        &self,
        remote: &Remote,
        pinned: &Pinned,
        timeout: Duration,
    ) -> Result<Option<String>, MirrorError> {
        let out = remote_git(&self.path, pinned, &remote.askpass, timeout)
            .args(["ls-remote", "--symref", "--"])
            .args([git_url(pinned).as_str(), "HEAD"])
            .output()?;
        Ok(String::from_utf8_lossy(&out).lines().find_map(|line| {
            let target = line.strip_prefix("ref: ")?.strip_suffix("\tHEAD")?;
            target.starts_with("refs/heads/").then(|| target.to_owned())
        }))
    }

    fn config(&self, args: &[&str]) -> Result<(), MirrorError> {
        Git::new(&self.path, LOCAL_TIMEOUT)
            .isolated()
            .args(["config"])
            .args(args)
            .output()?;
        Ok(())
    }
}

fn full_branch_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    }
}

fn validate_name(name: &str) -> Result<(), MirrorError> {
    if name.trim().is_empty() {
        return Err(MirrorError::InvalidName("it is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(MirrorError::InvalidName("it is longer than 512 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(MirrorError::InvalidName("it contains control characters"));
    }
    Ok(())
}

/// The source as the mirror's config keeps it: without credentials.
fn stored_url(source: &Source) -> String {
    match source {
        Source::Remote(remote) => remote.url.clone(),
        Source::Local(path) => path.display().to_string(),
    }
}

/// A directory name that is readable, safe on any filesystem, and unique per repository name:
/// a sanitized prefix plus a hash of the full name.
fn directory_name(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let slug = slug.trim_start_matches('.');
    let digest = Sha256::digest(name.as_bytes());
    format!("{slug}-{}.git", hex::encode(&digest[..6]))
}

/// Creates the bare repository beside its final place, then renames it in, so a crash never
/// leaves a half-initialised mirror under the final name.
fn create_bare(parent: &Path, path: &Path) -> Result<(), MirrorError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = parent.join(format!(".tmp-{}-{nanos}", std::process::id()));
    let init = Git::new(parent, LOCAL_TIMEOUT)
        .isolated()
        .args(["init", "--bare", "--quiet"])
        .args([tmp.as_os_str()])
        .output();
    if let Err(err) = init {
        let _ = fs::remove_dir_all(&tmp);
        return Err(err.into());
    }
    match fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        // Another caller created it first: theirs is as good as ours.
        Err(_) if path.exists() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(source) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(MirrorError::Io {
                path: path.to_owned(),
                source,
            })
        }
    }
}

//! Real git repositories in temporary directories, with fixed identities and dates so commit
//! ids (and so golden files) are the same on every machine.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use herald_monitor::source::AddressGuard;
use herald_monitor::{
    Heads, Mirror, NewRange, SearchOptions, SearchOutcome, SourcePolicy, parse_query,
    search_new_commits,
};
use tempfile::TempDir;

pub struct Repo {
    dir: TempDir,
    /// Seconds since the epoch of the next commit; each commit advances it by an hour.
    clock: Cell<i64>,
}

pub const START: i64 = 1_700_000_000;

impl Repo {
    pub fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            clock: Cell::new(START),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main", "."]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let date = format!("@{} +0000", self.clock.get());
        let out = Command::new("git")
            .current_dir(self.path())
            .args([
                "-c",
                "user.name=Ada Lovelace",
                "-c",
                "user.email=ada@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.path().join(path)).unwrap();
    }

    /// Commits everything in the work tree; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.commit_staged(message)
    }

    pub fn commit_staged(&self, message: &str) -> String {
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.clock.set(self.clock.get() + 3600);
        self.head()
    }

    /// Merges `branch` with a merge commit; returns its id.
    pub fn merge(&self, branch: &str, message: &str) -> String {
        self.git(&["merge", "--quiet", "--no-ff", "-m", message, branch]);
        self.clock.set(self.clock.get() + 3600);
        self.head()
    }

    /// Appends `count` commits to `main` with `git fast-import` (much faster than `git commit`):
    /// commit `i` writes the file and content that `change(i)` returns, with its message.
    pub fn fast_import_commits(
        &self,
        count: usize,
        change: impl Fn(usize) -> (String, String, String),
    ) {
        use std::io::Write;
        let mut stream = Vec::new();
        let parent = self.head();
        for i in 0..count {
            let (path, content, message) = change(i);
            let time = self.clock.get();
            self.clock.set(time + 60);
            write!(
                stream,
                "commit refs/heads/main\ncommitter Ada Lovelace <ada@example.com> {time} +0000\n"
            )
            .unwrap();
            write!(stream, "data {}\n{message}\n", message.len() + 1).unwrap();
            if i == 0 {
                writeln!(stream, "from {parent}").unwrap();
            }
            write!(
                stream,
                "M 100644 inline {path}\ndata {}\n{content}\n",
                content.len()
            )
            .unwrap();
        }
        let mut child = Command::new("git")
            .current_dir(self.path())
            .args(["fast-import", "--quiet", "--force"])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stream).unwrap();
        assert!(child.wait().unwrap().success());
        self.git(&["reset", "--quiet", "--hard", "main"]);
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    pub fn mirror(&self) -> Mirror {
        Mirror::open("example.com/acme/widgets", self.path()).unwrap()
    }

    pub fn heads(&self) -> Heads {
        self.mirror().heads(Some(&["main".to_owned()])).unwrap()
    }

    /// `git <args> <range>` listing commit ids, for the oracle.
    pub fn log_ids(&self, args: &[&str], range: &NewRange) -> Vec<String> {
        let mut full = vec!["log", "--format=%H"];
        full.extend_from_slice(args);
        full.extend(range.include().iter().map(String::as_str));
        full.push("--not");
        full.extend(range.exclude().iter().map(String::as_str));
        self.git(&full).lines().map(str::to_owned).collect()
    }
}

pub fn search(repo: &Repo, range: &NewRange, queries: &[&str]) -> SearchOutcome {
    search_in(&repo.mirror(), range, queries)
}

pub fn search_in(mirror: &Mirror, range: &NewRange, queries: &[&str]) -> SearchOutcome {
    let parsed: Vec<_> = queries.iter().map(|q| parse_query(q).unwrap()).collect();
    let refs: Vec<_> = parsed.iter().collect();
    let options = SearchOptions {
        now: Some(jiff::Timestamp::from_second(START + 1_000_000).unwrap()),
        ..SearchOptions::default()
    };
    search_new_commits(mirror, range, &refs, &options).unwrap()
}

/// The commit ids one query reports, in git log order.
pub fn reported(repo: &Repo, range: &NewRange, query: &str) -> Vec<String> {
    reported_in(&repo.mirror(), range, query)
}

pub fn reported_in(mirror: &Mirror, range: &NewRange, query: &str) -> Vec<String> {
    let outcome = search_in(mirror, range, &[query]);
    let mut ids: Vec<String> = outcome
        .monitors
        .into_iter()
        .flat_map(|m| m.results)
        .map(|r| r.commit)
        .collect();
    ids.dedup();
    ids
}

pub fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

/// Compares `actual` with the golden file, or rewrites it when `HERALD_BLESS=1`.
pub fn assert_golden(name: &str, actual: &serde_json::Value) {
    let path = golden_path(name);
    let rendered = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("HERALD_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; run with HERALD_BLESS=1",
            path.display()
        )
    });
    assert_eq!(
        rendered, expected,
        "golden {name} differs; if intended, rerun with HERALD_BLESS=1"
    );
}

/// Local repositories under the temporary directory (where [`Repo`]s live) may be mirrored.
pub fn local_policy() -> SourcePolicy {
    SourcePolicy {
        local_roots: vec![std::env::temp_dir()],
        ..SourcePolicy::default()
    }
}

/// As with `--allow-cidr 127.0.0.1/32`: sources on 127.0.0.1 may be fetched.
pub fn loopback_policy() -> SourcePolicy {
    SourcePolicy {
        guard: AddressGuard::new(vec!["127.0.0.1/32".parse().unwrap()]),
        ..SourcePolicy::default()
    }
}

//! Scenario 8, code monitors: `search_new_commits` against `git log -p -G<regex>` over
//! the same history, and ten monitors against one in the same single pass.
//!
//! The repository is generated with `git fast-import` by a fixed generator, so it is
//! the same on every machine and figures stay comparable across runs: 200 source files
//! of 60–260 lines; each commit rewrites 1–5 lines in 1–3 files, and a few of the new
//! lines carry the words the monitors look for. It is generated once per invocation
//! (or kept in `--monitor-repo` and reused), and every run times the same history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use herald_monitor::{
    Heads, Mirror, NewRange, Query, SearchOptions, SearchOutcome, parse_query, search_new_commits,
};

use crate::report::Figure;

const FILES: usize = 200;
const WORDS: &[&str] = &[
    "TODO",
    "FIXME",
    "unsafe",
    "panic!",
    "deprecated",
    "XXX",
    "HACK",
    "password",
];
/// The first is the one monitor compared with `git log -G`; all ten share one pass.
const MONITOR_PATTERNS: &[&str] = &[
    r"needle[0-9]+",
    "TODO",
    "FIXME",
    r"unsafe \{",
    "panic!",
    "deprecated",
    "XXX",
    "HACK",
    r"secret_[a-z]+",
    "password",
];

/// The generated history, ready to be searched.
pub struct BenchRepo {
    dir: PathBuf,
    mirror: Mirror,
    range: NewRange,
    commits: usize,
    /// Keeps a generated repository alive until the runs are over.
    _temp: Option<tempfile::TempDir>,
}

impl BenchRepo {
    /// Generates `commits` commits into `dir` (a temporary directory when `None`),
    /// or reuses the repository already there.
    pub async fn prepare(dir: Option<PathBuf>, commits: usize) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::prepare_blocking(dir, commits)).await?
    }

    fn prepare_blocking(dir: Option<PathBuf>, commits: usize) -> Result<Self> {
        let (dir, temp) = match dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("herald-bench-monitors-")
                    .tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        if dir.join("HEAD").exists() || dir.join(".git").exists() {
            eprintln!("monitors: reusing the repository in {}", dir.display());
        } else if has_entries(&dir)? {
            // Generating would `git init` and import a whole history into
            // someone's unrelated files.
            bail!(
                "{} is not empty and holds no repository: give --monitor-repo a new or empty directory",
                dir.display()
            );
        } else {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let started = Instant::now();
            generate(&dir, commits)?;
            eprintln!(
                "monitors: generated {commits} commits in {:.1?}",
                started.elapsed()
            );
        }
        let found = count_commits(&dir)?;
        // A reused repository of another size would time other work than the settings say.
        if found != commits {
            bail!(
                "{} has {found} commits, this run needs {commits}: give another --monitor-repo",
                dir.display()
            );
        }
        let mirror = Mirror::open("bench/repo", &dir)?;
        let range = NewRange::between(&Heads::new(), &mirror.heads(None)?);
        Ok(Self {
            dir,
            mirror,
            range,
            commits,
            _temp: temp,
        })
    }
}

/// Whether `dir` exists and holds anything.
fn has_entries(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// One timing of each side: `git log -G`, one monitor, ten monitors.
pub async fn run(repo: &BenchRepo, limit: Duration) -> Result<Vec<Figure>> {
    let regex = MONITOR_PATTERNS[0];
    let dir = repo.dir.clone();
    let git_log = timed(move || git_log_matching_commits(&dir, regex)).await?;
    let one = timed(search(repo, &MONITOR_PATTERNS[..1], limit)?).await?;
    let ten = timed(search(repo, MONITOR_PATTERNS, limit)?).await?;
    check(repo.commits, git_log.value, &one.value, &ten.value)?;
    eprintln!(
        "monitors: {} commits, {} matching -G{regex} on both sides, {} results for ten monitors",
        repo.commits,
        git_log.value,
        results(&ten.value)
    );
    let rate = |wall: Duration| repo.commits as f64 / wall.as_secs_f64();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    Ok(vec![
        Figure::new(
            "monitors.scan_vs_git_log",
            ratio(git_log.wall, one.wall),
            "x",
            Some(1.0),
        ),
        Figure::at_most(
            "monitors.ten_vs_one_cost",
            ratio(ten.wall, one.wall),
            "x",
            2.0,
        ),
        Figure::new("monitors.commits_per_s", rate(one.wall), "cmt/s", None),
        Figure::new(
            "monitors.git_log_commits_per_s",
            rate(git_log.wall),
            "cmt/s",
            None,
        ),
        // CPU includes git's, and herald's parsing threads: what the wall-clock
        // ratios cost on a machine with no idle core.
        Figure::new(
            "monitors.scan_vs_git_log_cpu",
            ratio(git_log.cpu, one.cpu),
            "x",
            None,
        ),
        Figure::new(
            "monitors.ten_vs_one_cpu_cost",
            ratio(ten.cpu, one.cpu),
            "x",
            None,
        ),
    ])
}

/// The search of `patterns` over the whole history, as work for `timed`; the
/// queries are parsed here so parsing is not timed.
fn search(
    repo: &BenchRepo,
    patterns: &[&str],
    limit: Duration,
) -> Result<impl FnOnce() -> Result<SearchOutcome> + Send + 'static> {
    let queries = patterns
        .iter()
        .map(|p| parse_query(&format!("type:diff case:yes patterntype:regexp {p}")))
        .collect::<Result<Vec<Query>, _>>()?;
    let (mirror, range) = (repo.mirror.clone(), repo.range.clone());
    let options = SearchOptions {
        timeout: limit,
        max_results_per_monitor: usize::MAX,
        ..SearchOptions::default()
    };
    Ok(move || {
        let refs: Vec<&Query> = queries.iter().collect();
        Ok(search_new_commits(&mirror, &range, &refs, &options)?)
    })
}

/// Both sides must have done the same work, or the ratios mean nothing.
fn check(
    commits: usize,
    git_matches: usize,
    one: &SearchOutcome,
    ten: &SearchOutcome,
) -> Result<()> {
    for (name, outcome) in [("one monitor", one), ("ten monitors", ten)] {
        if outcome.commits_scanned != commits {
            bail!(
                "{name} scanned {} of the {commits} commits",
                outcome.commits_scanned
            );
        }
    }
    let first = |outcome: &SearchOutcome| {
        outcome
            .monitors
            .iter()
            .find(|m| m.monitor == 0)
            .map_or(0, |m| m.results.len())
    };
    if first(one) != git_matches {
        bail!(
            "one monitor matched {} commits, git log -G {git_matches}",
            first(one)
        );
    }
    if first(ten) != git_matches {
        bail!(
            "among ten monitors the first matched {} commits, alone {git_matches}",
            first(ten)
        );
    }
    Ok(())
}

fn results(outcome: &SearchOutcome) -> usize {
    outcome.monitors.iter().map(|m| m.results.len()).sum()
}

fn git_log_matching_commits(dir: &Path, regex: &str) -> Result<usize> {
    let out = git(
        dir,
        &[
            "log",
            "-p",
            "--format=%x00%H",
            &format!("-G{regex}"),
            "main",
        ],
    )?;
    Ok(out.iter().filter(|&&b| b == 0).count())
}

fn count_commits(dir: &Path) -> Result<usize> {
    let out = git(dir, &["rev-list", "--count", "main"])?;
    let text = String::from_utf8_lossy(&out);
    text.trim()
        .parse()
        .with_context(|| format!("git rev-list --count printed {text:?}"))
}

/// Wall-clock and CPU time (this process's and its waited-for children's, so git's) of one piece of work.
struct Timed<T> {
    wall: Duration,
    cpu: Duration,
    value: T,
}

/// Runs blocking `work` on the blocking pool, timed there so that scheduling is not.
async fn timed<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<Timed<T>> {
    tokio::task::spawn_blocking(move || {
        let (start, cpu_start) = (Instant::now(), cpu_time()?);
        let value = work()?;
        let wall = start.elapsed();
        Ok(Timed {
            wall,
            cpu: cpu_time()?.saturating_sub(cpu_start),
            value,
        })
    })
    .await?
}

/// CPU time used so far by this process and its waited-for children (git).
fn cpu_time() -> Result<Duration> {
    Ok(rusage(libc::RUSAGE_SELF)? + rusage(libc::RUSAGE_CHILDREN)?)
}

/// The workspace denies unsafe code; getrusage has no safe wrapper in std,
/// and it is the one way to count the CPU of waited-for git children.
#[allow(unsafe_code)]
fn rusage(who: libc::c_int) -> Result<Duration> {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct it is given.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

/// `git` in `dir` with the user's and the system's configuration ignored, so
/// nothing there changes what is generated or timed.
fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    command
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = git_command(dir)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn generate(dir: &Path, commits: usize) -> Result<()> {
    git(dir, &["init", "--quiet", "--initial-branch=main", "."])?;
    let mut child = git_command(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .context("starting git fast-import")?;
    let stdin = child.stdin.take().context("git fast-import has no stdin")?;
    let written = write_history(std::io::BufWriter::new(stdin), commits);
    let status = child.wait().context("waiting for git fast-import")?;
    if !status.success() {
        bail!("git fast-import failed: {status}");
    }
    written.context("writing to git fast-import")
}

/// The fast-import stream of the whole history. Any change here changes every
/// figure: keep it byte for byte, or say so in BENCHMARKS.md.
fn write_history(mut stream: impl Write, commits: usize) -> std::io::Result<()> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut files: Vec<Vec<String>> = (0..FILES)
        .map(|f| {
            (0..60 + rng.below(200))
                .map(|n| line(&mut rng, f, n))
                .collect()
        })
        .collect();
    for c in 0..commits {
        let touched: Vec<usize> = if c == 0 {
            (0..FILES).collect()
        } else {
            (0..1 + rng.below(3)).map(|_| rng.below(FILES)).collect()
        };
        if c > 0 {
            for &f in &touched {
                for _ in 0..1 + rng.below(5) {
                    let at = rng.below(files[f].len());
                    files[f][at] = line(&mut rng, f, c);
                }
            }
        }
        let message = format!("Commit {c}: adjust {} files", touched.len());
        let time = 1_700_000_000 + c * 60;
        write!(
            stream,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\ndata {}\n{message}\n",
            message.len() + 1
        )?;
        for &f in &touched {
            let content = files[f].join("\n") + "\n";
            write!(
                stream,
                "M 100644 inline src/module_{f}.rs\ndata {}\n{content}\n",
                content.len()
            )?;
        }
    }
    stream.flush()
}

fn line(rng: &mut XorShift, file: usize, n: usize) -> String {
    let roll = rng.below(100);
    if roll < 3 {
        format!(
            "    let needle{} = {}; // {}",
            rng.below(1000),
            n,
            WORDS[rng.below(WORDS.len())]
        )
    } else if roll < 5 {
        format!(
            "    let secret_{} = lookup(\"{}\");",
            ["alpha", "beta", "gamma"][rng.below(3)],
            n
        )
    } else {
        format!(
            "    let value_{file}_{n} = compute({}, {});",
            rng.below(10_000),
            rng.below(10_000)
        )
    }
}

/// A small deterministic generator: the repository is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

//! Scan throughput of `search_new_commits` against `git log -p -G<regex>` on the same commits.
//!
//! Generates a repository of N commits (default 10,000; `--commits N`) with `git fast-import`:
//! 200 source files of 60–260 lines; each commit rewrites 1–5 lines in 1–3 files, and a few of
//! the new lines carry the words the monitors look for. Then, best of `--runs` (default 3):
//! - `git log -p -G<regex>` over the whole history (what the issue compares against);
//! - one monitor with that regex through `search_new_commits`;
//! - ten monitors with different regexes, in the same single pass.
//!
//! Prints commits/s for each, the ratio git time / our time (≥ 1.0: at least as fast as git),
//! and the cost of 10 monitors relative to 1.
//!
//! `--repo DIR` keeps the generated repository in DIR and reuses it on later runs.
//!
//! Run: `cargo run --release -p herald-monitor --example scan_bench`

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald_monitor::{Heads, Mirror, NewRange, SearchOptions, parse_query, search_new_commits};

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

fn generate(dir: &Path, commits: usize) {
    git(dir, &["init", "--quiet", "--initial-branch=main", "."]);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut files: Vec<Vec<String>> = (0..FILES)
        .map(|f| {
            (0..60 + rng.below(200))
                .map(|n| line(&mut rng, f, n))
                .collect()
        })
        .collect();
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut stream = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
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
        )
        .expect("write");
        for &f in &touched {
            let content = files[f].join("\n") + "\n";
            write!(
                stream,
                "M 100644 inline src/module_{f}.rs\ndata {}\n{content}\n",
                content.len()
            )
            .expect("write");
        }
    }
    drop(stream);
    assert!(child.wait().expect("fast-import").success());
}

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// CPU time used so far by this process and its waited-for children (git).
fn cpu_time() -> Duration {
    let usage = |who| {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

/// Wall-clock and CPU (ours plus git's) time of the best of `runs` runs.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Timing, T) {
    let mut best: Option<(Timing, T)> = None;
    for _ in 0..runs {
        let (start, cpu_start) = (Instant::now(), cpu_time());
        let value = f();
        let timing = Timing {
            wall: start.elapsed(),
            cpu: cpu_time() - cpu_start,
        };
        if best.as_ref().is_none_or(|(b, _)| timing.wall < b.wall) {
            best = Some((timing, value));
        }
    }
    best.expect("at least one run")
}

fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg(name: &str, default: usize) -> usize {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let commits = arg("--commits", 10_000);
    let runs = arg("--runs", 3);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = arg_text("--repo").map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);
    let dir = dir.as_path();
    if dir.join("HEAD").exists() || dir.join(".git").exists() {
        println!("reusing the repository in {}", dir.display());
    } else {
        std::fs::create_dir_all(dir).expect("repository directory");
        let started = Instant::now();
        generate(dir, commits);
        println!("generated {commits} commits in {:.1?}", started.elapsed());
    }
    let commits = String::from_utf8_lossy(&git(dir, &["rev-list", "--count", "main"]))
        .trim()
        .parse()
        .expect("count");

    let mirror = Mirror::open("bench/repo", dir).expect("open");
    let range = NewRange::between(&Heads::new(), &mirror.heads(None).expect("heads"));
    let options = SearchOptions {
        timeout: Duration::from_secs(3600),
        max_results_per_monitor: usize::MAX,
        ..SearchOptions::default()
    };
    let serial = SearchOptions {
        max_workers: 1,
        ..options.clone()
    };
    let regex = MONITOR_PATTERNS[0];

    let (git_time, git_matches) = best_of(runs, || {
        let out = git(
            dir,
            &[
                "log",
                "-p",
                "--format=%x00%H",
                &format!("-G{regex}"),
                "main",
            ],
        );
        out.iter().filter(|&&b| b == 0).count()
    });
    let one =
        parse_query(&format!("type:diff case:yes patterntype:regexp {regex}")).expect("query");
    let (one_time, one_outcome) = best_of(runs, || {
        search_new_commits(&mirror, &range, &[&one], &options).expect("search")
    });
    let one_matches = one_outcome.monitors.first().map_or(0, |m| m.results.len());
    assert_eq!(one_outcome.commits_scanned, commits);
    assert_eq!(one_matches, git_matches, "same commits as git log -G");
    let (serial_time, serial_outcome) = best_of(runs, || {
        search_new_commits(&mirror, &range, &[&one], &serial).expect("search")
    });
    assert_eq!(serial_outcome, one_outcome);

    let ten: Vec<_> = MONITOR_PATTERNS
        .iter()
        .map(|p| parse_query(&format!("type:diff case:yes patterntype:regexp {p}")).expect("query"))
        .collect();
    let ten_refs: Vec<_> = ten.iter().collect();
    let (ten_time, ten_outcome) = best_of(runs, || {
        search_new_commits(&mirror, &range, &ten_refs, &options).expect("search")
    });
    let ten_matches: usize = ten_outcome.monitors.iter().map(|m| m.results.len()).sum();

    let rate = |d: Duration| commits as f64 / d.as_secs_f64();
    let row = |name: &str, t: &Timing, note: String| {
        println!(
            "{name:<26} wall {:>9.2?} {:>7.0} commits/s | cpu {:>9.2?} {:>7.0} commits/s | {note}",
            t.wall,
            rate(t.wall),
            t.cpu,
            rate(t.cpu)
        );
    };
    row(
        &format!("git log -p -G{regex}"),
        &git_time,
        format!("{git_matches} matching commits"),
    );
    row(
        "herald, 1 monitor",
        &one_time,
        format!("{one_matches} matching commits"),
    );
    row(
        "herald, 10 monitors",
        &ten_time,
        format!("{ten_matches} results"),
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "speed vs git log -p -G (git time / herald time, target >= 1.0): wall {:.2}, cpu {:.2}",
        ratio(git_time.wall, one_time.wall),
        ratio(git_time.cpu, one_time.cpu)
    );
    println!(
        "serial (1 worker) vs git: wall {:.2}",
        ratio(git_time.wall, serial_time.wall)
    );
    println!(
        "10 monitors / 1 monitor (target <= 2.0): wall {:.2}, cpu {:.2}",
        ratio(ten_time.wall, one_time.wall),
        ratio(ten_time.cpu, one_time.cpu)
    );
}

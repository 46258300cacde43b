//! One pass over a repository's new commits, shared by every monitor on it.
//!
//! `git rev-list` lists the range; `git log -p` over those commits (split into chunks run in
//! parallel when the range is large) streams through the `diff` module's `LogReader`; each commit's header is
//! checked against every monitor's branches, then each file diff is matched against the
//! branches still in play and dropped unless some monitor keeps it. Memory is bounded by one
//! commit's matched files, whatever the size of the range.

use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::diff::{CommitHeader, FileDiff, LOG_FORMAT, LogReader};
use crate::format::{MAX_FILES, format_diff, format_message};
use crate::git::{Git, GitError, is_object_id, remaining};
use crate::heads::NewRange;
use crate::matcher::{self, Dates, FileHighlights};
use crate::mirror::Mirror;
use crate::query::{Branch, Query, ResultKind};
use crate::result::{MatchResult, Matched};

/// How a search runs.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Deadline for the whole search (every git process it runs).
    pub timeout: Duration,
    /// Results kept per monitor; past it the monitor's results are marked truncated.
    pub max_results_per_monitor: usize,
    /// The moment relative dates (`after:"1 week ago"`) count from; `None` is now.
    pub now: Option<Timestamp>,
    /// Most `git log` processes run at once on one range (large ranges are split into
    /// contiguous chunks, one process and one parsing thread each). Defaults to the number of
    /// cores, at most 4.
    pub max_workers: usize,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        SearchOptions {
            timeout: Duration::from_secs(300),
            max_results_per_monitor: 500,
            now: None,
            max_workers: cores.min(MAX_DEFAULT_WORKERS),
        }
    }
}

const MAX_DEFAULT_WORKERS: usize = 4;
/// Ranges are split only into chunks at least this long: a process per few commits costs
/// more than it saves.
const MIN_COMMITS_PER_CHUNK: usize = 128;

/// What one search found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchOutcome {
    /// Commits read from the range (each once, whatever the number of monitors).
    pub commits_scanned: usize,
    /// Monitors with at least one result, in the order they were given.
    pub monitors: Vec<MonitorMatches>,
}

/// The results of one monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorMatches {
    /// Index into the `monitors` slice given to [`search_new_commits`].
    pub monitor: usize,
    /// In `git log` order (newest first); a commit matching both a `type:diff` and a
    /// `type:commit` branch gives a diff result then a message result.
    pub results: Vec<MatchResult>,
    /// More commits matched than [`SearchOptions::max_results_per_monitor`].
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid commit id in the range: {0:?}")]
    InvalidRevision(String),
    /// Previously searched heads are gone from the mirror (history rewritten and collected):
    /// the range cannot exclude what was already searched. Record the current heads as the
    /// new baseline rather than risk reporting old history.
    #[error("the repository no longer has these commits: {}", .0.join(", "))]
    MissingRevisions(Vec<String>),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Searches the commits of `range` in `repo` for every monitor at once: the range's diffs are
/// produced and read once, however many monitors there are (large ranges are split across
/// [`SearchOptions::max_workers`] processes, each commit still read once). The caller records
/// the range's new heads as searched for each monitor afterwards; nothing is stored here.
///
/// All or nothing: on error no result is returned, so retrying the same range is safe.
pub fn search_new_commits(
    repo: &Mirror,
    range: &NewRange,
    monitors: &[&Query],
    options: &SearchOptions,
) -> Result<SearchOutcome, SearchError> {
    for oid in range.include().iter().chain(range.exclude()) {
        if !is_object_id(oid) {
            return Err(SearchError::InvalidRevision(oid.clone()));
        }
    }
    let deadline = Instant::now() + options.timeout;
    let now = options.now.unwrap_or_else(Timestamp::now);
    let plans: Vec<Plan<'_>> = monitors
        .iter()
        .enumerate()
        .filter_map(|(index, query)| Plan::new(index, query, repo.name(), now))
        .collect();
    if range.is_empty() || plans.is_empty() {
        return Ok(SearchOutcome::default());
    }
    let commits = list_commits(repo, range, deadline)?;
    let pass = Pass {
        repo,
        plans: &plans,
        need_patches: plans.iter().any(Plan::needs_files),
        max_results: options.max_results_per_monitor,
        deadline,
    };
    let chunk_count = options
        .max_workers
        .max(1)
        .min(commits.len().div_ceil(MIN_COMMITS_PER_CHUNK));
    let chunks: Vec<&[String]> = match chunk_count {
        0 => Vec::new(),
        n => commits.chunks(commits.len().div_ceil(n)).collect(),
    };
    let outcomes: Vec<Result<Chunk, GitError>> = match chunks.as_slice() {
        [] => Vec::new(),
        [only] => vec![pass.scan(only)],
        many => thread::scope(|scope| {
            let handles: Vec<_> = many
                .iter()
                .map(|chunk| scope.spawn(|| pass.scan(chunk)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        }),
    };

    let mut merged: Vec<Vec<MatchResult>> = vec![Vec::new(); plans.len()];
    let mut scanned = 0;
    for outcome in outcomes {
        let chunk = outcome?;
        scanned += chunk.scanned;
        for (all, part) in merged.iter_mut().zip(chunk.results) {
            all.extend(part);
        }
    }
    let monitors = plans
        .iter()
        .zip(merged)
        .filter(|(_, results)| !results.is_empty())
        .map(|(plan, mut results)| {
            let truncated = results.len() > options.max_results_per_monitor;
            results.truncate(options.max_results_per_monitor);
            MonitorMatches {
                monitor: plan.monitor,
                results,
                truncated,
            }
        })
        .collect();
    Ok(SearchOutcome {
        commits_scanned: scanned,
        monitors,
    })
}

/// The commits of the range, in `git log` order. When git refuses the range, finds out
/// whether previously searched commits vanished, which the caller must handle differently
/// from a broken repository.
fn list_commits(
    repo: &Mirror,
    range: &NewRange,
    deadline: Instant,
) -> Result<Vec<String>, SearchError> {
    let listed = Git::new(repo.path(), remaining(deadline))
        .isolated()
        .args(["rev-list", "--stdin"])
        .stdin(revisions(range))
        .output();
    match listed {
        Ok(out) => Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_owned)
            .collect()),
        Err(err @ GitError::Failed { .. }) => {
            let missing = missing_commits(repo, range, deadline)?;
            if missing.is_empty() {
                Err(err.into())
            } else {
                Err(SearchError::MissingRevisions(missing))
            }
        }
        Err(err) => Err(err.into()),
    }
}

fn revisions(range: &NewRange) -> Vec<u8> {
    let mut stdin = Vec::new();
    for oid in range.include() {
        stdin.extend_from_slice(format!("{oid}\n").as_bytes());
    }
    for oid in range.exclude() {
        stdin.extend_from_slice(format!("^{oid}\n").as_bytes());
    }
    stdin
}

fn missing_commits(
    repo: &Mirror,
    range: &NewRange,
    deadline: Instant,
) -> Result<Vec<String>, GitError> {
    let mut stdin = Vec::new();
    for oid in range.include().iter().chain(range.exclude()) {
        stdin.extend_from_slice(format!("{oid}\n").as_bytes());
    }
    let out = Git::new(repo.path(), remaining(deadline))
        .isolated()
        .args(["cat-file", "--batch-check"])
        .stdin(stdin)
        .output()?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|line| line.strip_suffix(" missing").map(str::to_owned))
        .collect())
}

/// What every chunk of one search shares.
struct Pass<'a> {
    repo: &'a Mirror,
    plans: &'a [Plan<'a>],
    need_patches: bool,
    max_results: usize,
    deadline: Instant,
}

/// The results of one chunk of commits: per plan, in order.
struct Chunk {
    scanned: usize,
    results: Vec<Vec<MatchResult>>,
}

impl Pass<'_> {
    /// One `git log` process over exactly these commits, read as it streams.
    fn scan(&self, commits: &[String]) -> Result<Chunk, GitError> {
        let mut stdin = Vec::with_capacity(commits.len() * 41);
        for oid in commits {
            stdin.extend_from_slice(oid.as_bytes());
            stdin.push(b'\n');
        }
        let format = format!("--format={LOG_FORMAT}");
        let mut args = vec![
            "-c",
            "core.quotePath=false",
            "log",
            "--no-walk=unsorted",
            "--stdin",
            &format,
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--diff-merges=off",
            "-M",
            "-U3",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "--encoding=UTF-8",
        ];
        if self.need_patches {
            args.push("-p");
        }
        let mut chunk = Chunk {
            scanned: 0,
            results: vec![Vec::new(); self.plans.len()],
        };
        Git::new(self.repo.path(), remaining(self.deadline))
            .isolated()
            .args(args)
            .stdin(stdin)
            .stream(|out| {
                let mut log = LogReader::new(out);
                while let Some(commit) = log.next_commit()? {
                    chunk.scanned += 1;
                    search_commit(
                        &mut log,
                        &commit,
                        self.plans,
                        &mut chunk.results,
                        self.repo.name(),
                        self.max_results,
                    )?;
                }
                Ok(())
            })?;
        Ok(chunk)
    }
}

/// One monitor's branches that can match in this repository.
struct Plan<'q> {
    monitor: usize,
    diff: Vec<(&'q Branch, Dates)>,
    commit: Vec<(&'q Branch, Dates)>,
}

impl<'q> Plan<'q> {
    fn new(monitor: usize, query: &'q Query, repo: &str, now: Timestamp) -> Option<Plan<'q>> {
        let mut plan = Plan {
            monitor,
            diff: Vec::new(),
            commit: Vec::new(),
        };
        for branch in query.branches().iter().filter(|b| b.matches_repo(repo)) {
            let entry = (branch, Dates::resolve(branch, now));
            match branch.kind {
                ResultKind::Diff => plan.diff.push(entry),
                ResultKind::Commit => plan.commit.push(entry),
            }
        }
        (!plan.diff.is_empty() || !plan.commit.is_empty()).then_some(plan)
    }

    fn needs_files(&self) -> bool {
        !self.diff.is_empty() || self.commit.iter().any(|(b, _)| !b.file.is_empty())
    }
}

/// One monitor's state within one commit.
struct Pending<'q> {
    plan: usize,
    diff: Vec<&'q Branch>,
    /// Files matched so far: index into the commit's kept files, and what matched.
    files: Vec<(usize, FileHighlights)>,
    /// Message ranges of `type:commit` branches that matched without needing a file.
    message: Option<Vec<std::ops::Range<usize>>>,
    /// `type:commit` branches that matched the header but still need a file passing their
    /// `file:` filters.
    commit_needing_file: Vec<(&'q Branch, Vec<std::ops::Range<usize>>)>,
}

/// Matches one commit for every plan, appending to `results` (one list per plan). A plan
/// past `max_results` is skipped: one result beyond the limit is enough to know it is truncated.
fn search_commit<'q, R: std::io::BufRead>(
    log: &mut LogReader<R>,
    commit: &CommitHeader,
    plans: &[Plan<'q>],
    results: &mut [Vec<MatchResult>],
    repo: &str,
    max_results: usize,
) -> Result<(), GitError> {
    let message = commit.message.trim_ascii();
    let mut pending: Vec<Pending<'q>> = Vec::new();
    for (index, plan) in plans
        .iter()
        .enumerate()
        .filter(|(i, _)| results[*i].len() <= max_results)
    {
        let mut state = Pending {
            plan: index,
            diff: Vec::new(),
            files: Vec::new(),
            message: None,
            commit_needing_file: Vec::new(),
        };
        for &(branch, dates) in &plan.diff {
            if matcher::commit_matches(branch, dates, commit, message) {
                state.diff.push(branch);
            }
        }
        for &(branch, dates) in &plan.commit {
            if !matcher::commit_matches(branch, dates, commit, message) {
                continue;
            }
            let Some(ranges) = matcher::message_highlights(branch, message) else {
                continue;
            };
            if branch.file.is_empty() {
                state.message.get_or_insert_with(Vec::new).extend(ranges);
            } else {
                state.commit_needing_file.push((branch, ranges));
            }
        }
        if !state.diff.is_empty()
            || state.message.is_some()
            || !state.commit_needing_file.is_empty()
        {
            pending.push(state);
        }
    }
    if pending.is_empty() {
        return Ok(());
    }

    let mut kept: Vec<FileDiff> = Vec::new();
    let wants_files = |p: &Pending<'_>| {
        (!p.diff.is_empty() && p.files.len() < MAX_FILES) || !p.commit_needing_file.is_empty()
    };
    while pending.iter().any(wants_files) {
        let Some(file) = log.next_file()? else { break };
        let mut keep = false;
        for state in pending.iter_mut() {
            if !state.diff.is_empty() && state.files.len() < MAX_FILES {
                let mut matched: Option<FileHighlights> = None;
                for branch in &state.diff {
                    if let Some(h) = matcher::file_highlights(branch, &file) {
                        matched.get_or_insert_with(FileHighlights::default).merge(h);
                    }
                }
                if let Some(h) = matched {
                    state.files.push((kept.len(), h));
                    keep = true;
                }
            }
            let (old, new) = (file.old_path.as_deref(), file.new_path.as_deref());
            for (branch, ranges) in std::mem::take(&mut state.commit_needing_file) {
                if branch.accepts_file(old, new) {
                    state.message.get_or_insert_with(Vec::new).extend(ranges);
                } else {
                    state.commit_needing_file.push((branch, ranges));
                }
            }
        }
        if keep {
            kept.push(file);
        }
    }

    let result = |matched| MatchResult {
        repository: repo.to_owned(),
        commit: commit.oid.clone(),
        matched,
    };
    for state in pending {
        let results = &mut results[state.plan];
        if !state.files.is_empty() {
            let files: Vec<(&FileDiff, &FileHighlights)> =
                state.files.iter().map(|(i, h)| (&kept[*i], h)).collect();
            let (diff, ranges) = format_diff(&files);
            results.push(result(Matched::Diff { diff, ranges }));
        }
        if let Some(mut ranges) = state.message {
            matcher::normalize(&mut ranges);
            let (message, ranges) = format_message(message, &ranges);
            results.push(result(Matched::Message { message, ranges }));
        }
    }
    Ok(())
}

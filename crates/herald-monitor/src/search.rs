//! One pass over a repository's new commits, shared by every monitor on it.
//!
//! A single `git log -p` over the range streams through [`LogReader`]; each commit's header is
//! checked against every monitor's branches, then each file diff is matched against the
//! branches still in play and dropped unless some monitor keeps it. Memory is bounded by one
//! commit's matched files, whatever the size of the range.

use std::time::Duration;

use jiff::Timestamp;

use crate::diff::{CommitHeader, FileDiff, LOG_FORMAT, LogReader};
use crate::format::{MAX_FILES, format_diff, format_message};
use crate::git::{Git, GitError, is_object_id};
use crate::heads::NewRange;
use crate::matcher::{self, Dates, FileHighlights};
use crate::mirror::Mirror;
use crate::query::{Branch, Query, ResultKind};
use crate::result::{MatchResult, Matched};

/// How a search runs.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Deadline for the whole `git log` pass.
    pub timeout: Duration,
    /// Results kept per monitor; past it the monitor's results are marked truncated.
    pub max_results_per_monitor: usize,
    /// The moment relative dates (`after:"1 week ago"`) count from; `None` is now.
    pub now: Option<Timestamp>,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            timeout: Duration::from_secs(300),
            max_results_per_monitor: 500,
            now: None,
        }
    }
}

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

/// Searches the commits of `range` in `repo` for every monitor at once: one `git log` pass
/// however many monitors there are. The caller records the range's new heads as searched for
/// each monitor afterwards; nothing is stored here.
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
    let now = options.now.unwrap_or_else(Timestamp::now);
    let mut plans: Vec<Plan<'_>> = monitors
        .iter()
        .enumerate()
        .filter_map(|(index, query)| Plan::new(index, query, repo.name(), now))
        .collect();
    if range.is_empty() || plans.is_empty() {
        return Ok(SearchOutcome::default());
    }
    check_present(repo, range, options.timeout)?;
    let need_patches = plans.iter().any(Plan::needs_files);

    let mut stdin = Vec::new();
    for oid in range.include() {
        stdin.extend_from_slice(format!("{oid}\n").as_bytes());
    }
    for oid in range.exclude() {
        stdin.extend_from_slice(format!("^{oid}\n").as_bytes());
    }
    let format = format!("--format={LOG_FORMAT}");
    let mut args = vec![
        "-c",
        "core.quotePath=false",
        "log",
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
    if need_patches {
        args.push("-p");
    }
    let scanned = Git::new(repo.path(), options.timeout)
        .isolated()
        .args(args)
        .stdin(stdin)
        .stream(|out| {
            let mut log = LogReader::new(out);
            let mut scanned = 0;
            while let Some(commit) = log.next_commit()? {
                scanned += 1;
                search_commit(
                    &mut log,
                    &commit,
                    &mut plans,
                    repo.name(),
                    options.max_results_per_monitor,
                )?;
            }
            Ok(scanned)
        })?;

    let monitors = plans
        .into_iter()
        .filter(|p| !p.results.is_empty())
        .map(|p| MonitorMatches {
            monitor: p.monitor,
            results: p.results,
            truncated: p.truncated,
        })
        .collect();
    Ok(SearchOutcome {
        commits_scanned: scanned,
        monitors,
    })
}

/// Refuses a range whose commits the repository lacks; `git log` would only say "bad revision".
fn check_present(repo: &Mirror, range: &NewRange, timeout: Duration) -> Result<(), SearchError> {
    let mut stdin = Vec::new();
    for oid in range.include().iter().chain(range.exclude()) {
        stdin.extend_from_slice(format!("{oid}\n").as_bytes());
    }
    let out = Git::new(repo.path(), timeout)
        .isolated()
        .args(["cat-file", "--batch-check"])
        .stdin(stdin)
        .output()?;
    let missing: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|line| line.strip_suffix(" missing").map(str::to_owned))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SearchError::MissingRevisions(missing))
    }
}

/// One monitor's branches that can match in this repository, and its results so far.
struct Plan<'q> {
    monitor: usize,
    diff: Vec<(&'q Branch, Dates)>,
    commit: Vec<(&'q Branch, Dates)>,
    results: Vec<MatchResult>,
    truncated: bool,
}

impl<'q> Plan<'q> {
    fn new(monitor: usize, query: &'q Query, repo: &str, now: Timestamp) -> Option<Plan<'q>> {
        let mut plan = Plan {
            monitor,
            diff: Vec::new(),
            commit: Vec::new(),
            results: Vec::new(),
            truncated: false,
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

fn search_commit<R: std::io::BufRead>(
    log: &mut LogReader<R>,
    commit: &CommitHeader,
    plans: &mut [Plan<'_>],
    repo: &str,
    max_results: usize,
) -> Result<(), GitError> {
    let message = commit.message.trim_ascii();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for (index, plan) in plans.iter().enumerate().filter(|(_, p)| !p.truncated) {
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

    for state in pending {
        let plan = &mut plans[state.plan];
        if !state.files.is_empty() {
            let files: Vec<(&FileDiff, &FileHighlights)> =
                state.files.iter().map(|(i, h)| (&kept[*i], h)).collect();
            let (diff, ranges) = format_diff(&files);
            push_result(
                plan,
                repo,
                commit,
                Matched::Diff { diff, ranges },
                max_results,
            );
        }
        if let Some(mut ranges) = state.message {
            matcher::normalize(&mut ranges);
            let (message, ranges) = format_message(message, &ranges);
            push_result(
                plan,
                repo,
                commit,
                Matched::Message { message, ranges },
                max_results,
            );
        }
    }
    Ok(())
}

fn push_result(
    plan: &mut Plan<'_>,
    repo: &str,
    commit: &CommitHeader,
    matched: Matched,
    max_results: usize,
) {
    if plan.results.len() >= max_results {
        plan.truncated = true;
        return;
    }
    plan.results.push(MatchResult {
        repository: repo.to_owned(),
        commit: commit.oid.clone(),
        matched,
    });
}

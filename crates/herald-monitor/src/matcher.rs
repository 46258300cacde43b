//! Evaluating one query branch against a commit's header, message and file diffs.
//!
//! As in Sourcegraph, a `type:diff` branch is evaluated per file diff: `type:diff file:a b`
//! matches a change of "b" *inside* a file matching "a", not any commit that happens to touch
//! "a" and change "b" somewhere.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::diff::{CommitHeader, FileDiff};
use crate::query::Branch;

/// The `before:`/`after:` bounds of a branch, resolved for one search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dates {
    /// Author time must be strictly before this (seconds since the epoch).
    pub before: Option<i64>,
    /// Author time must be strictly after this.
    pub after: Option<i64>,
}

impl Dates {
    pub(crate) fn resolve(branch: &Branch, now: jiff::Timestamp) -> Dates {
        Dates {
            before: branch.before.iter().map(|b| b.resolve(now)).min(),
            after: branch.after.iter().map(|b| b.resolve(now)).max(),
        }
    }
}

/// What matched in one file diff. Ranges are byte offsets into the raw path or line content.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileHighlights {
    pub old_path: Vec<Range<usize>>,
    pub new_path: Vec<Range<usize>>,
    /// Matched lines by index in [`FileDiff::lines`]; a line can match with no range to show
    /// (a pattern matching the empty string).
    pub lines: BTreeMap<usize, Vec<Range<usize>>>,
}

impl FileHighlights {
    pub(crate) fn merge(&mut self, other: FileHighlights) {
        self.old_path.extend(other.old_path);
        normalize(&mut self.old_path);
        self.new_path.extend(other.new_path);
        normalize(&mut self.new_path);
        for (line, ranges) in other.lines {
            let mine = self.lines.entry(line).or_default();
            mine.extend(ranges);
            normalize(mine);
        }
    }
}

/// The predicates that need only the commit header: author, committer, message filters, dates.
pub(crate) fn commit_matches(
    branch: &Branch,
    dates: Dates,
    commit: &CommitHeader,
    message: &[u8],
) -> bool {
    let author: [&[u8]; 2] = [&commit.author_name, &commit.author_email];
    let committer: [&[u8]; 2] = [&commit.committer_name, &commit.committer_email];
    branch.author.iter().all(|f| f.accepts(&author))
        && branch.committer.iter().all(|f| f.accepts(&committer))
        && branch.message.iter().all(|f| f.accepts(&[message]))
        && dates.before.is_none_or(|t| commit.author_time < t)
        && dates.after.is_none_or(|t| commit.author_time > t)
}

/// For a `type:commit` branch: the highlighted ranges of `message` if every pattern matches it.
/// Positive `message:` filters highlight too.
pub(crate) fn message_highlights(branch: &Branch, message: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut ranges = Vec::new();
    for pattern in &branch.patterns {
        let mut matched = false;
        for m in pattern.find_iter(message) {
            matched = true;
            ranges.push(m.range());
        }
        if !matched {
            return None;
        }
    }
    for filter in branch.message.iter().filter(|f| !f.negated) {
        ranges.extend(filter.regex.find_iter(message).map(|m| m.range()));
    }
    normalize(&mut ranges);
    Some(ranges)
}

/// For a `type:diff` branch: what matched in `file`, if the file passes the file filters and
/// every pattern matches at least one added or removed line.
pub(crate) fn file_highlights(branch: &Branch, file: &FileDiff) -> Option<FileHighlights> {
    let (old, new) = (file.old_path.as_deref(), file.new_path.as_deref());
    if !branch.accepts_file(old, new) {
        return None;
    }
    let mut highlights = FileHighlights::default();
    for filter in branch.file.iter().filter(|f| !f.negated) {
        if let Some(path) = old {
            highlights
                .old_path
                .extend(filter.regex.find_iter(path).map(|m| m.range()));
        }
        if let Some(path) = new {
            highlights
                .new_path
                .extend(filter.regex.find_iter(path).map(|m| m.range()));
        }
    }
    normalize(&mut highlights.old_path);
    normalize(&mut highlights.new_path);
    for pattern in &branch.patterns {
        let mut matched = false;
        for (index, line) in file
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.origin.changed())
        {
            let mut found = pattern.find_iter(file.line_text(line)).peekable();
            if found.peek().is_none() {
                continue;
            }
            matched = true;
            highlights
                .lines
                .entry(index)
                .or_default()
                .extend(found.map(|m| m.range()));
        }
        if !matched {
            return None;
        }
    }
    for ranges in highlights.lines.values_mut() {
        normalize(ranges);
    }
    Some(highlights)
}

/// Sorts ranges, drops empty ones and merges overlapping ones.
pub(crate) fn normalize(ranges: &mut Vec<Range<usize>>) {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    *ranges = merged;
}

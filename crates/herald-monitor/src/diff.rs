//! A streaming parser for the output of one `git log -p` pass.
//!
//! Each commit starts with [`COMMIT_MARKER`] at the start of a line, followed by NUL-terminated
//! header fields (the message, `%B`, last: it may span lines but never holds a NUL), then its
//! patch. A marker cannot be mistaken for patch text: every hunk line starts with ` `, `+`,
//! `-` or `\`, and paths holding control characters are quoted by git.
//!
//! Hunk bodies are read by their line counts, not by guessing what a line looks like, so a
//! removed line reading `-- a` or an added `+++ x` is never taken for a header.

use std::io::BufRead;
use std::ops::Range;

use crate::git::GitError;

/// Starts every commit record; see [`LOG_FORMAT`].
pub(crate) const COMMIT_MARKER: &[u8] = b"\x1e\x1fherald-commit\x1f";
/// `git log --format` producing the header [`LogReader`] expects.
pub(crate) const LOG_FORMAT: &str =
    "%x1e%x1fherald-commit%x1f%H%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%B%x00";
const HEADER_FIELDS: usize = 7;
/// A single file's patch larger than this is kept without its hunks (like a binary file):
/// it bounds the memory one commit can take.
const MAX_FILE_PATCH_BYTES: usize = 64 << 20;

/// One commit's metadata.
#[derive(Debug)]
pub(crate) struct CommitHeader {
    pub oid: String,
    pub author_name: Vec<u8>,
    pub author_email: Vec<u8>,
    pub author_time: i64,
    pub committer_name: Vec<u8>,
    pub committer_email: Vec<u8>,
    pub message: Vec<u8>,
}

/// The patch of one file in one commit.
#[derive(Debug, Default)]
pub(crate) struct FileDiff {
    /// `None` for `/dev/null` (an added file).
    pub old_path: Option<Vec<u8>>,
    /// `None` for `/dev/null` (a deleted file).
    pub new_path: Option<Vec<u8>>,
    pub hunks: Vec<Hunk>,
    pub lines: Vec<Line>,
    /// The content of every line, back to back; [`Line::text`] indexes into it.
    pub text: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Hunk {
    pub old_start: u64,
    pub new_start: u64,
    /// The function context git prints after the second `@@`, indexing into [`FileDiff::text`].
    pub section: Range<usize>,
    /// Indexes into [`FileDiff::lines`].
    pub lines: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Context,
    Added,
    Removed,
}

impl Origin {
    pub(crate) fn prefix(self) -> char {
        match self {
            Origin::Context => ' ',
            Origin::Added => '+',
            Origin::Removed => '-',
        }
    }

    pub(crate) fn changed(self) -> bool {
        self != Origin::Context
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub origin: Origin,
    /// The line without its prefix and newline, indexing into [`FileDiff::text`].
    pub text: Range<usize>,
}

impl FileDiff {
    pub(crate) fn line_text(&self, line: &Line) -> &[u8] {
        &self.text[line.text.clone()]
    }
}

/// Reads commits and their file diffs, one at a time, from `git log` output.
pub(crate) struct LogReader<R> {
    input: R,
    line: Vec<u8>,
    /// `line` holds a line that was read but not consumed yet.
    pending: bool,
    in_commit: bool,
}

fn parse_error(detail: impl Into<String>) -> GitError {
    GitError::Parse {
        command: "log".to_owned(),
        detail: detail.into(),
    }
}

impl<R: BufRead> LogReader<R> {
    pub(crate) fn new(input: R) -> LogReader<R> {
        LogReader {
            input,
            line: Vec::with_capacity(256),
            pending: false,
            in_commit: false,
        }
    }

    /// Reads the next line into `self.line` (keeping its newline); false at the end.
    fn advance(&mut self) -> Result<bool, GitError> {
        if self.pending {
            self.pending = false;
            return Ok(true);
        }
        self.line.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|source| GitError::Io {
                command: "log".to_owned(),
                source,
            })?;
        Ok(n > 0)
    }

    fn unread(&mut self) {
        self.pending = true;
    }

    fn trimmed(&self) -> &[u8] {
        self.line.strip_suffix(b"\n").unwrap_or(&self.line)
    }

    /// The next commit's header, skipping whatever is left of the previous commit's patch.
    pub(crate) fn next_commit(&mut self) -> Result<Option<CommitHeader>, GitError> {
        while self.in_commit {
            if self.next_file()?.is_none() {
                break;
            }
        }
        loop {
            if !self.advance()? {
                return Ok(None);
            }
            if self.trimmed().is_empty() {
                continue;
            }
            if !self.line.starts_with(COMMIT_MARKER) {
                return Err(parse_error("expected the start of a commit"));
            }
            break;
        }
        let mut raw = self.line[COMMIT_MARKER.len()..].to_vec();
        while raw.iter().filter(|&&b| b == 0).count() < HEADER_FIELDS {
            if !self.advance()? {
                return Err(parse_error("truncated commit header"));
            }
            raw.extend_from_slice(&self.line);
        }
        self.in_commit = true;
        header(&raw).map(Some)
    }

    /// The next file diff of the current commit; `None` once its patch is over.
    pub(crate) fn next_file(&mut self) -> Result<Option<FileDiff>, GitError> {
        if !self.in_commit {
            return Ok(None);
        }
        loop {
            if !self.advance()? {
                self.in_commit = false;
                return Ok(None);
            }
            if self.line.starts_with(COMMIT_MARKER) {
                self.unread();
                self.in_commit = false;
                return Ok(None);
            }
            if !self.trimmed().is_empty() {
                break;
            }
        }
        let Some(rest) = self.trimmed().strip_prefix(b"diff --git ") else {
            return Err(parse_error(format!(
                "expected a file diff, got {:?}",
                String::from_utf8_lossy(self.trimmed())
            )));
        };
        let rest = rest.to_vec();
        let mut file = FileDiff::default();
        let (old_guess, new_guess) = diff_git_paths(&rest);
        let mut old_path = old_guess;
        let mut new_path = new_guess;
        let (mut added, mut deleted, mut oversized) = (false, false, false);
        while self.advance()? {
            let line = self.trimmed();
            if line.starts_with(COMMIT_MARKER) || line.starts_with(b"diff --git ") {
                self.unread();
                break;
            }
            if line.starts_with(b"@@ ") {
                let hunk = self.hunk(&mut file)?;
                file.hunks.push(hunk);
                oversized |= file.text.len() > MAX_FILE_PATCH_BYTES;
                if oversized {
                    file.hunks.clear();
                    file.lines.clear();
                    file.text.clear();
                }
                continue;
            }
            if line.starts_with(b"new file mode ") {
                added = true;
            } else if line.starts_with(b"deleted file mode ") {
                deleted = true;
            } else if let Some(p) = line
                .strip_prefix(b"rename from ")
                .or_else(|| line.strip_prefix(b"copy from "))
            {
                old_path = Some(unquote(p));
            } else if let Some(p) = line
                .strip_prefix(b"rename to ")
                .or_else(|| line.strip_prefix(b"copy to "))
            {
                new_path = Some(unquote(p));
            } else if let Some(p) = line.strip_prefix(b"--- ") {
                old_path = side_path(p, b"a/").or(old_path);
            } else if let Some(p) = line.strip_prefix(b"+++ ") {
                new_path = side_path(p, b"b/").or(new_path);
            }
            // index, mode, similarity and "Binary files ... differ" lines need nothing.
        }
        file.old_path = if added { None } else { old_path };
        file.new_path = if deleted { None } else { new_path };
        if file.old_path.is_none() && file.new_path.is_none() {
            return Err(parse_error(format!(
                "no file name in {:?}",
                String::from_utf8_lossy(&rest)
            )));
        }
        Ok(Some(file))
    }

    /// Reads one hunk whose header is in `self.line`.
    fn hunk(&mut self, file: &mut FileDiff) -> Result<Hunk, GitError> {
        let header = self.trimmed().to_vec();
        let (old_start, old_lines, new_start, new_lines, section) = hunk_header(&header)
            .ok_or_else(|| {
                parse_error(format!(
                    "bad hunk header {:?}",
                    String::from_utf8_lossy(&header)
                ))
            })?;
        let section_start = file.text.len();
        file.text.extend_from_slice(section);
        let section = section_start..file.text.len();
        let first_line = file.lines.len();
        let (mut old_left, mut new_left) = (old_lines, new_lines);
        while old_left > 0 || new_left > 0 {
            if !self.advance()? {
                return Err(parse_error("truncated hunk"));
            }
            let line = self.trimmed();
            let (origin, content) = match line.split_first() {
                Some((b' ', rest)) => (Origin::Context, rest),
                Some((b'+', rest)) => (Origin::Added, rest),
                Some((b'-', rest)) => (Origin::Removed, rest),
                // "\ No newline at end of file" is a remark, not a line.
                Some((b'\\', _)) => continue,
                // Some tools strip the space of empty context lines.
                None => (Origin::Context, &[][..]),
                Some(_) => return Err(parse_error("bad hunk line")),
            };
            match origin {
                Origin::Context => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
                Origin::Added => new_left = new_left.saturating_sub(1),
                Origin::Removed => old_left = old_left.saturating_sub(1),
            }
            let start = file.text.len();
            file.text.extend_from_slice(content);
            file.lines.push(Line {
                origin,
                text: start..file.text.len(),
            });
        }
        // A trailing "\ No newline at end of file" belongs to this hunk.
        if self.advance()? && !self.line.starts_with(b"\\") {
            self.unread();
        }
        Ok(Hunk {
            old_start,
            new_start,
            section,
            lines: first_line..file.lines.len(),
        })
    }
}

fn header(raw: &[u8]) -> Result<CommitHeader, GitError> {
    let fields: Vec<&[u8]> = raw.splitn(HEADER_FIELDS + 1, |&b| b == 0).collect();
    let [oid, an, ae, at, cn, ce, message, ..] = fields[..] else {
        return Err(parse_error("short commit header"));
    };
    let oid = String::from_utf8_lossy(oid).into_owned();
    if !crate::git::is_object_id(&oid) {
        return Err(parse_error(format!("bad commit id {oid:?}")));
    }
    let author_time = std::str::from_utf8(at)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| parse_error("bad author date"))?;
    Ok(CommitHeader {
        oid,
        author_name: an.to_vec(),
        author_email: ae.to_vec(),
        author_time,
        committer_name: cn.to_vec(),
        committer_email: ce.to_vec(),
        message: message.to_vec(),
    })
}

/// `@@ -a[,b] +c[,d] @@[ section]`.
fn hunk_header(line: &[u8]) -> Option<(u64, u64, u64, u64, &[u8])> {
    let rest = line.strip_prefix(b"@@ -")?;
    let close = find(rest, b" @@")?;
    let ranges = std::str::from_utf8(&rest[..close]).ok()?;
    let (old, new) = ranges.split_once(" +")?;
    let (old_start, old_lines) = range(old)?;
    let (new_start, new_lines) = range(new)?;
    let after = &rest[close + 3..];
    let section = after.strip_prefix(b" ").unwrap_or(after);
    Some((old_start, old_lines, new_start, new_lines, section))
}

fn range(s: &str) -> Option<(u64, u64)> {
    match s.split_once(',') {
        Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A path from a `---`/`+++` line: `/dev/null`, or `prefix` + path, possibly quoted, with a
/// trailing tab git adds to names containing spaces.
fn side_path(raw: &[u8], prefix: &[u8]) -> Option<Vec<u8>> {
    if raw == b"/dev/null" {
        return None;
    }
    let raw = raw.strip_suffix(b"\t").unwrap_or(raw);
    let path = unquote(raw);
    Some(
        path.strip_prefix(prefix)
            .map_or_else(|| path.clone(), <[u8]>::to_vec),
    )
}

/// The paths of `diff --git a/X b/Y`. Unquoted names with spaces are ambiguous unless both
/// sides are equal, which holds for everything but renames and copies — and those carry
/// `rename from`/`rename to` lines that take precedence.
fn diff_git_paths(rest: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let strip = |p: Vec<u8>, prefix: &[u8]| {
        p.strip_prefix(prefix)
            .map_or_else(|| p.clone(), <[u8]>::to_vec)
    };
    if rest.first() == Some(&b'"')
        && let Some((old, tail)) = quoted_prefix(rest)
    {
        let new = tail.strip_prefix(b" ").map(unquote);
        return (Some(strip(old, b"a/")), new.map(|n| strip(n, b"b/")));
    }
    // "a/X b/X": the halves around the middle space are equal but for their prefixes.
    if rest.len() >= 5 && rest.len() % 2 == 1 {
        let half = rest.len() / 2;
        let (a, b) = (&rest[..half], &rest[half + 1..]);
        if rest[half] == b' ' && a.starts_with(b"a/") && b.starts_with(b"b/") && a[2..] == b[2..] {
            return (Some(a[2..].to_vec()), Some(b[2..].to_vec()));
        }
    }
    (None, None)
}

/// Splits a leading C-quoted string off `raw`, returning its unquoted bytes and the rest.
fn quoted_prefix(raw: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut i = 1;
    while i < raw.len() {
        match raw[i] {
            b'\\' => i += 2,
            b'"' => return Some((unquote(&raw[..=i]), &raw[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Undoes git's C-style quoting of a path (`"a\tb\303\251"`); unquoted input is returned as is.
pub(crate) fn unquote(raw: &[u8]) -> Vec<u8> {
    let Some(inner) = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != b'\\' || i + 1 == inner.len() {
            out.push(inner[i]);
            i += 1;
            continue;
        }
        let escaped = inner[i + 1];
        i += 2;
        let byte = match escaped {
            b'a' => 0x07,
            b'b' => 0x08,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'0'..=b'3' if i + 2 <= inner.len() => {
                let digits = [escaped, inner[i], inner[i + 1]];
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    i += 2;
                    digits
                        .iter()
                        .fold(0u8, |acc, d| acc.wrapping_mul(8).wrapping_add(d - b'0'))
                } else {
                    escaped
                }
            }
            other => other,
        };
        out.push(byte);
    }
    out
}

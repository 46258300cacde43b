//! Sourcegraph's formatting of code monitor matches.
//!
//! A diff result is, per matched file, a header `<old path> <new path>\n` (spaces escaped as
//! `\ `, `/dev/null` for a missing side) followed by its matched hunks. Each git hunk is
//! re-split around the matched lines: a matched line keeps one line of context on each side,
//! runs of kept lines become hunks with recomputed `@@ -a,b +c,d @@ <section>` headers, and a
//! hunk stops growing at 5 lines plus its context, counting further matched lines as
//! ` ... +N` in its section. At most 5 files and 3 hunks per file are shown; when any hunk of
//! a file has highlights, the hunks without are left out. A file whose matching involved no
//! line (a `file:`-only query) shows its hunks with every changed line treated as matched.
//!
//! Text is made valid UTF-8 as Go's `strings.ToValidUTF8` does (each run of invalid bytes
//! becomes one U+FFFD), and every range is mapped through that replacement and the escaping,
//! so ranges are exact byte offsets into the emitted string.

use std::fmt::Write as _;
use std::ops::Range;

use crate::diff::{FileDiff, Origin};
use crate::matcher::FileHighlights;
use crate::result::ByteRange;

/// Files shown per result.
pub(crate) const MAX_FILES: usize = 5;
const MAX_HUNKS_PER_FILE: usize = 3;
const CONTEXT_LINES: usize = 1;
/// Lines per re-split hunk, not counting the context on either side.
const MAX_LINES_PER_HUNK: usize = 5;
const HUNK_CAP: usize = MAX_LINES_PER_HUNK + 2 * CONTEXT_LINES;

/// Formats the matched files of one commit (at most [`MAX_FILES`] are used).
pub(crate) fn format_diff(files: &[(&FileDiff, &FileHighlights)]) -> (String, Vec<ByteRange>) {
    let mut out = Out::default();
    for &(file, highlights) in files.iter().take(MAX_FILES) {
        out.path(file.old_path.as_deref(), &highlights.old_path);
        out.text.push(' ');
        out.path(file.new_path.as_deref(), &highlights.new_path);
        out.text.push('\n');

        let hunks = split_hunks(file, highlights);
        let any_highlighted = hunks.iter().any(|h| h.highlighted);
        for hunk in hunks
            .iter()
            .filter(|h| h.highlighted || !any_highlighted)
            .take(MAX_HUNKS_PER_FILE)
        {
            out.hunk_header(file, hunk);
            for &index in &hunk.lines {
                let line = &file.lines[index];
                out.text.push(line.origin.prefix());
                let ranges = highlights.lines.get(&index).map_or(&[][..], Vec::as_slice);
                out.write(file.line_text(line), false, ranges);
                out.text.push('\n');
            }
        }
    }
    (out.text, out.ranges)
}

/// Formats a commit message (already trimmed) with its highlights.
pub(crate) fn format_message(
    message: &[u8],
    highlights: &[Range<usize>],
) -> (String, Vec<ByteRange>) {
    let mut out = Out::default();
    out.write(message, false, highlights);
    (out.text, out.ranges)
}

/// A hunk re-split around matches; `lines` index into [`FileDiff::lines`].
#[derive(Debug)]
struct SubHunk {
    old_start: u64,
    old_lines: u64,
    new_start: u64,
    new_lines: u64,
    section: Range<usize>,
    extra_matches: usize,
    lines: Vec<usize>,
    highlighted: bool,
}

fn split_hunks(file: &FileDiff, highlights: &FileHighlights) -> Vec<SubHunk> {
    let mut result = Vec::new();
    for hunk in &file.hunks {
        let indices = hunk.lines.clone();
        let hunk_matched = indices.clone().any(|i| highlights.lines.contains_key(&i));
        let matching: Vec<bool> = indices
            .clone()
            .map(|i| {
                file.lines[i].origin.changed()
                    && (!hunk_matched || highlights.lines.contains_key(&i))
            })
            .collect();
        let mut keep = matching.clone();
        for (j, _) in matching.iter().enumerate().filter(|(_, m)| **m) {
            let lo = j.saturating_sub(CONTEXT_LINES);
            let hi = (j + CONTEXT_LINES).min(matching.len() - 1);
            keep[lo..=hi].iter_mut().for_each(|k| *k = true);
        }

        let (mut old_offset, mut new_offset) = (0u64, 0u64);
        let mut current: Option<SubHunk> = None;
        for (j, index) in indices.enumerate() {
            let origin = file.lines[index].origin;
            if keep[j] {
                match current.as_mut() {
                    Some(sub) if sub.lines.len() == HUNK_CAP => {
                        sub.extra_matches += usize::from(matching[j])
                    }
                    _ => {
                        let sub = current.get_or_insert_with(|| SubHunk {
                            old_start: hunk.old_start + old_offset,
                            old_lines: 0,
                            new_start: hunk.new_start + new_offset,
                            new_lines: 0,
                            section: hunk.section.clone(),
                            extra_matches: 0,
                            lines: Vec::new(),
                            highlighted: false,
                        });
                        sub.old_lines += u64::from(origin != Origin::Added);
                        sub.new_lines += u64::from(origin != Origin::Removed);
                        sub.highlighted |=
                            highlights.lines.get(&index).is_some_and(|r| !r.is_empty());
                        sub.lines.push(index);
                    }
                }
            } else if let Some(sub) = current.take() {
                result.push(sub);
            }
            // Lines past the cap still move the start of the next hunk (Sourcegraph forgets
            // them, misnumbering later hunks of the same git hunk).
            old_offset += u64::from(origin != Origin::Added);
            new_offset += u64::from(origin != Origin::Removed);
        }
        result.extend(current);
    }
    result
}

#[derive(Default)]
struct Out {
    text: String,
    ranges: Vec<ByteRange>,
}

impl Out {
    fn path(&mut self, path: Option<&[u8]>, highlights: &[Range<usize>]) {
        match path {
            Some(path) => self.write(path, true, highlights),
            None => self.text.push_str("/dev/null"),
        }
    }

    fn hunk_header(&mut self, file: &FileDiff, hunk: &SubHunk) {
        let _ = write!(
            self.text,
            "@@ -{},{} +{},{} @@ ",
            hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines
        );
        let section = &file.text[hunk.section.clone()];
        self.write(section, false, &[]);
        if hunk.extra_matches > 0 {
            if !section.is_empty() {
                self.text.push(' ');
            }
            let _ = write!(self.text, "... +{}", hunk.extra_matches);
        }
        self.text.push('\n');
    }

    /// Appends `raw` as valid UTF-8 (optionally escaping spaces) and records `highlights`,
    /// given as offsets into `raw`, as ranges of the output.
    fn write(&mut self, raw: &[u8], escape_spaces: bool, highlights: &[Range<usize>]) {
        let base = self.text.len();
        if let Ok(valid) = std::str::from_utf8(raw)
            && !(escape_spaces && valid.contains(' '))
        {
            self.text.push_str(valid);
            self.ranges.extend(highlights.iter().map(|r| ByteRange {
                start: base + r.start,
                end: base + r.end,
            }));
            return;
        }
        let segments = self.write_mapped(raw, escape_spaces);
        for r in highlights {
            let start = map_offset(&segments, r.start, false);
            let end = map_offset(&segments, r.end, true);
            if start < end {
                self.ranges.push(ByteRange { start, end });
            }
        }
    }

    /// The slow path of [`Out::write`]: writes piece by piece, remembering where each piece
    /// of `raw` landed.
    fn write_mapped(&mut self, raw: &[u8], escape_spaces: bool) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut raw_pos = 0;
        let mut in_invalid_run = false;
        for chunk in raw.utf8_chunks() {
            let valid = chunk.valid();
            if !valid.is_empty() {
                in_invalid_run = false;
                let pieces: Vec<&str> = if escape_spaces {
                    valid.split_inclusive(' ').collect()
                } else {
                    vec![valid]
                };
                for piece in pieces {
                    let (text, space) = match piece.strip_suffix(' ') {
                        Some(text) if escape_spaces => (text, true),
                        _ => (piece, false),
                    };
                    segments.push(self.segment(raw_pos, text.len(), text, true));
                    raw_pos += text.len();
                    if space {
                        segments.push(self.segment(raw_pos, 1, "\\ ", false));
                        raw_pos += 1;
                    }
                }
            }
            let invalid = chunk.invalid().len();
            if invalid > 0 {
                match segments.last_mut() {
                    Some(last) if in_invalid_run => last.raw.end += invalid,
                    _ => segments.push(self.segment(raw_pos, invalid, "\u{FFFD}", false)),
                }
                raw_pos += invalid;
                in_invalid_run = true;
            }
        }
        segments
    }

    fn segment(&mut self, raw_start: usize, raw_len: usize, text: &str, linear: bool) -> Segment {
        let out_start = self.text.len();
        self.text.push_str(text);
        Segment {
            raw: raw_start..raw_start + raw_len,
            out: out_start..self.text.len(),
            linear,
        }
    }
}

/// Where a piece of input went in the output. `linear` pieces were copied byte for byte;
/// the others (a replacement character, an escaped space) map as a whole.
struct Segment {
    raw: Range<usize>,
    out: Range<usize>,
    linear: bool,
}

/// Maps an input offset to an output offset. An offset inside a replaced run maps to the
/// replacement's start, or its end for the end of a range, so the range covers it.
fn map_offset(segments: &[Segment], offset: usize, is_end: bool) -> usize {
    let Some(last) = segments.last() else {
        return 0;
    };
    if offset >= last.raw.end {
        return last.out.end;
    }
    let index = segments.partition_point(|s| s.raw.end <= offset);
    let segment = &segments[index];
    if segment.linear || offset == segment.raw.start {
        segment.out.start + (offset - segment.raw.start).min(segment.out.len())
    } else if is_end {
        segment.out.end
    } else {
        segment.out.start
    }
}

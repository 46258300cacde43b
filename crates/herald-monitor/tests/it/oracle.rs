//! The commits a monitor reports equal what `git log -G` / `git log --grep` report for the
//! same range, for a table of patterns.

use crate::history;
use crate::support::reported;

/// Patterns valid and equivalent as POSIX ERE (git) and Rust regex.
const DIFF_PATTERNS: &[&str] = &[
    "TODO",
    "FIXME",
    "TODO: (alpha|beta)",
    "fn [a-z]+",
    "日本|🎉",
    "こんにちは",
    "legacy",
    "line two",
    "second",
    "item [0-9]",
    "caf",
    "PNG",
    "Notes",
    "note number [0-9]+",
    "wire up",
    "absent-everywhere",
];

const MESSAGE_PATTERNS: &[&str] = &[
    "TODO",
    "Merge",
    "[Ff]eature",
    "bug #[0-9]+",
    "🎉",
    "^Add",
    "cleanup$",
    "^Longer",
    "import",
    "nothing-like-this",
];

#[test]
fn diff_monitors_report_what_git_log_g_reports() {
    let h = history::build();
    let range = h.range();
    let mut matching_patterns = 0;
    for pattern in DIFF_PATTERNS {
        let expected = h.repo.log_ids(&["-G", pattern], &range);
        matching_patterns += usize::from(!expected.is_empty());
        let actual = reported(
            &h.repo,
            &range,
            &format!("type:diff case:yes patterntype:regexp {pattern}"),
        );
        assert_eq!(actual, expected, "type:diff {pattern}");
    }
    assert!(
        matching_patterns >= 12,
        "the table must exercise real matches, got {matching_patterns}"
    );
}

#[test]
fn case_insensitive_by_default_like_git_log_i() {
    let h = history::build();
    let range = h.range();
    for pattern in ["todo", "fixme", "LEGACY", "Line Two"] {
        let expected = h.repo.log_ids(&["-i", "-G", pattern], &range);
        assert!(!expected.is_empty(), "{pattern} should match something");
        assert_eq!(
            reported(&h.repo, &range, &format!("type:diff {pattern}")),
            expected,
            "{pattern}"
        );
    }
}

#[test]
fn commit_monitors_report_what_git_log_grep_reports() {
    let h = history::build();
    let range = h.range();
    for pattern in MESSAGE_PATTERNS {
        let expected = h.repo.log_ids(&["-E", "--grep", pattern], &range);
        let actual = reported(
            &h.repo,
            &range,
            &format!("type:commit case:yes /{pattern}/"),
        );
        assert_eq!(actual, expected, "type:commit {pattern}");
    }
}

#[test]
fn literal_patterns_are_escaped() {
    let h = history::build();
    let range = h.range();
    // As a regex "bug #12." would need the dot to be any character; as a literal it is a dot.
    let expected = h.repo.log_ids(&["-F", "--grep", "#12"], &range);
    assert_eq!(expected.len(), 1);
    assert_eq!(reported(&h.repo, &range, "type:commit #12"), expected);
    assert!(reported(&h.repo, &range, "type:commit bug.#12").is_empty());
    assert_eq!(
        reported(&h.repo, &range, "type:commit patterntype:regexp bug.#12"),
        expected
    );
    assert!(
        reported(&h.repo, &range, r#"type:diff "TODO: (alpha|beta)""#).is_empty(),
        "quoted: literal parentheses"
    );
    assert!(
        reported(&h.repo, &range, "type:diff TODO: (alpha|beta)").is_empty(),
        "literal by default"
    );
    assert_eq!(
        reported(&h.repo, &range, "type:diff /TODO: (alpha|beta)/"),
        h.repo.log_ids(&["-G", "TODO: (alpha|beta)"], &range)
    );
}

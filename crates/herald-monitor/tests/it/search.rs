//! Searching ranges: the invariants, merges, the shared pass, byte offsets, bounds.

use herald_monitor::{
    Heads, MatchResult, Matched, NewRange, SearchError, SearchOptions, parse_query,
    search_new_commits,
};

use crate::history;
use crate::support::{Repo, START, reported, search};

fn only_result(repo: &Repo, range: &NewRange, query: &str) -> MatchResult {
    let mut outcome = search(repo, range, &[query]);
    assert_eq!(outcome.monitors.len(), 1, "{query}");
    let mut results = outcome.monitors.remove(0).results;
    assert_eq!(results.len(), 1, "{query}: {results:#?}");
    results.remove(0)
}

#[test]
fn a_searched_range_is_never_reported_again() {
    let repo = Repo::new();
    repo.write("a.txt", "old TODO\n");
    repo.commit("old TODO commit");
    let created = repo.heads();

    repo.write("a.txt", "old TODO\nnew TODO\n");
    let first = repo.commit("first");
    let after_first = repo.heads();
    assert_eq!(
        reported(
            &repo,
            &NewRange::between(&created, &after_first),
            "type:diff TODO"
        ),
        [first]
    );

    // The caller recorded `after_first`: nothing has moved, so there is nothing to search.
    let same = NewRange::between(&after_first, &repo.heads());
    assert!(same.is_empty());
    let outcome = search(&repo, &same, &["type:diff TODO"]);
    assert_eq!((outcome.commits_scanned, outcome.monitors.len()), (0, 0));

    repo.write("a.txt", "old TODO\nnew TODO\nnewer TODO\n");
    let second = repo.commit("second");
    assert_eq!(
        reported(
            &repo,
            &NewRange::between(&after_first, &repo.heads()),
            "type:diff TODO"
        ),
        [second]
    );
}

#[test]
fn history_before_creation_stays_unreported_across_force_pushes() {
    let repo = Repo::new();
    repo.write("a.txt", "base\n");
    let base = repo.commit("base");
    repo.write("a.txt", "base\nseen TODO\n");
    repo.commit("seen");
    let searched = repo.heads();

    // Force-push main back to `base`, then a new commit on top.
    repo.git(&["reset", "--quiet", "--hard", &base]);
    repo.write("b.txt", "fresh TODO\n");
    let fresh = repo.commit("fresh");
    let range = NewRange::between(&searched, &repo.heads());
    assert_eq!(reported(&repo, &range, "type:diff TODO"), [fresh]);

    // Rewinding to an already-searched commit brings nothing new.
    let mut rewound = Heads::new();
    rewound.insert("refs/heads/main", base);
    let outcome = search(
        &repo,
        &NewRange::between(&searched, &rewound),
        &["type:diff", "type:commit base"],
    );
    assert_eq!((outcome.commits_scanned, outcome.monitors.len()), (0, 0));
}

#[test]
fn the_initial_commit_and_pre_creation_history_are_excluded() {
    let h = history::build();
    let commits = reported(&h.repo, &h.range(), "type:commit TODO");
    assert!(
        !commits.contains(&h.id("initial").to_owned()),
        "the initial commit predates the monitor"
    );
    assert_eq!(commits, [h.id("empty"), h.id("todos")]);
}

#[test]
fn merges_are_matched_by_message_never_by_diff() {
    let h = history::build();
    let range = h.range();
    assert_eq!(
        reported(&h.repo, &range, "type:diff case:yes FIXME"),
        [h.id("feature"), h.id("unicode")]
    );
    assert_eq!(
        reported(&h.repo, &range, "type:commit Merge"),
        [h.id("merge")]
    );
    // A merge has no diff even for a query without patterns.
    let all = reported(&h.repo, &range, "type:diff");
    assert!(!all.contains(&h.id("merge").to_owned()));
    assert!(
        !all.contains(&h.id("empty").to_owned()),
        "an empty commit has no file to show"
    );
    assert!(
        all.contains(&h.id("mode").to_owned()),
        "a mode change is a file diff without hunks"
    );
}

#[test]
fn one_pass_serves_every_monitor_with_the_results_it_would_get_alone() {
    let h = history::build();
    let range = h.range();
    let queries = [
        "type:diff TODO",
        "type:diff FIXME",
        "type:commit Add",
        r"type:diff file:\.txt$ TODO",
        "type:diff -file:many TODO",
        "type:diff author:ada fixme OR type:commit fixme",
        "type:diff repo:elsewhere TODO",
        "type:commit nothing-matches-this",
        r"type:diff /日本|🎉/",
        "type:diff before:2023-11-15 TODO",
    ];
    let together = search(&h.repo, &range, &queries);
    let commit_count = h.repo.log_ids(&[], &range).len();
    assert_eq!(
        together.commits_scanned, commit_count,
        "each commit read once for all monitors"
    );
    for (index, query) in queries.iter().enumerate() {
        let alone = search(&h.repo, &range, &[query]);
        let shared: Vec<_> = together
            .monitors
            .iter()
            .filter(|m| m.monitor == index)
            .flat_map(|m| &m.results)
            .collect();
        let own: Vec<_> = alone.monitors.iter().flat_map(|m| &m.results).collect();
        assert_eq!(shared, own, "{query}");
    }
    let silent: Vec<usize> = (0..queries.len())
        .filter(|i| !together.monitors.iter().any(|m| m.monitor == *i))
        .collect();
    assert_eq!(
        silent,
        [6, 7],
        "the repo:elsewhere and no-match monitors report nothing"
    );
}

#[test]
fn ranges_are_byte_offsets_with_cjk_and_emoji() {
    let h = history::build();
    let result = only_result(
        &h.repo,
        &NewRange::between(&h.base, &h.end),
        r"type:diff file:i18n 🎉",
    );
    let Matched::Diff { diff, ranges } = &result.matched else {
        panic!("a diff result")
    };
    let line = "+挨拶: こんにちは TODO 🎉 翻訳\n";
    let line_start = diff.find(line).unwrap();
    let emoji = line_start + line.find('🎉').unwrap();
    assert!(
        ranges
            .iter()
            .any(|r| (r.start, r.end) == (emoji, emoji + 4)),
        "{ranges:?}"
    );
    let chars_before = diff[..emoji].chars().count();
    assert!(
        chars_before < emoji,
        "byte and character offsets differ here"
    );
    for r in ranges {
        assert!(diff.is_char_boundary(r.start) && diff.is_char_boundary(r.end));
    }
    assert_eq!(
        result.highlighted().collect::<Vec<_>>(),
        ["i18n", "🎉", "🎉", "🎉"]
    );
}

#[test]
fn invalid_utf8_is_replaced_like_go_does() {
    let h = history::build();
    let result = only_result(&h.repo, &h.range(), "type:diff file:latin1 TODO");
    assert!(
        result
            .text()
            .contains("\n+caf\u{FFFD} \u{FFFD} TODO ol\u{FFFD}\n"),
        "{}",
        result.text()
    );
    assert_eq!(result.highlighted().collect::<Vec<_>>(), ["latin1", "TODO"]);
}

#[test]
fn binary_files_have_no_lines_to_match() {
    let h = history::build();
    assert!(reported(&h.repo, &h.range(), "type:diff PNG").is_empty());
    let logo = only_result(&h.repo, &h.range(), r"type:diff file:logo\.png");
    assert_eq!(logo.text(), "assets/logo.png assets/logo.png\n");
}

#[test]
fn paths_git_quotes_are_unquoted_then_escaped() {
    let repo = Repo::new();
    repo.write("keep.txt", "x\n");
    repo.commit("base");
    let base = repo.heads();
    repo.write("odd\tname \"q\" back\\slash.txt", "TODO tab\n");
    repo.write("dir with space/ü.txt", "TODO umlaut\n");
    repo.commit("odd names");
    let result = only_result(
        &repo,
        &NewRange::between(&base, &repo.heads()),
        "type:diff TODO",
    );
    assert_eq!(
        result.text(),
        "/dev/null dir\\ with\\ space/ü.txt\n@@ -0,0 +1,1 @@ \n+TODO umlaut\n\
         /dev/null odd\tname\\ \"q\"\\ back\\slash.txt\n@@ -0,0 +1,1 @@ \n+TODO tab\n"
    );
    assert_eq!(result.highlighted().collect::<Vec<_>>(), ["TODO", "TODO"]);
}

#[test]
fn lines_that_look_like_headers_are_content() {
    let repo = Repo::new();
    repo.write("a.txt", "-- removed dashes\nkeep\n");
    repo.commit("base");
    let base = repo.heads();
    repo.write(
        "a.txt",
        "keep\n++ added pluses\n@@ not a hunk @@\ndiff --git a/x b/x\n",
    );
    let id = repo.commit("tricky lines");
    let range = NewRange::between(&base, &repo.heads());
    for (pattern, git) in [
        ("dashes", "dashes"),
        ("pluses", "pluses"),
        ("\"not a hunk\"", "not a hunk"),
        ("diff --git", "diff --git"),
    ] {
        assert_eq!(
            reported(&repo, &range, &format!("type:diff {pattern}")),
            std::slice::from_ref(&id),
            "{pattern}"
        );
        assert_eq!(
            repo.log_ids(&["-G", git], &range),
            std::slice::from_ref(&id)
        );
    }
}

#[test]
fn pathological_regexes_stay_bounded_on_adversarial_input() {
    let repo = Repo::new();
    repo.write("a.txt", "x\n");
    repo.commit("base");
    let base = repo.heads();
    repo.write(
        "a.txt",
        format!("x\n{}\n{}\n", "x".repeat(100_000), "a".repeat(100_000)),
    );
    repo.commit("long lines");
    let range = NewRange::between(&base, &repo.heads());
    // Catastrophic for a backtracking engine; linear here.
    assert!(reported(&repo, &range, r"type:diff /(x+x+)+y/").is_empty());
    assert!(reported(&repo, &range, r"type:diff /(a|aa)*c/").is_empty());
    assert_eq!(reported(&repo, &range, r"type:diff /(a|aa)*$/").len(), 1);
    assert_eq!(
        reported(&repo, &range, r"type:diff /\w{1,3}x{1000}/").len(),
        1
    );
}

#[test]
fn commit_level_filters() {
    let h = history::build();
    let range = h.range();
    let at = |name: &str| {
        h.repo
            .git(&["log", "-1", "--format=%at", h.id(name)])
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    let iso = |secs: i64| jiff::Timestamp::from_second(secs).unwrap().to_string();
    let all_todo = reported(&h.repo, &range, "type:diff TODO");
    assert_eq!(
        reported(&h.repo, &range, "type:diff author:lovelace TODO"),
        all_todo
    );
    assert_eq!(
        reported(&h.repo, &range, "type:diff author:ada@example TODO"),
        all_todo
    );
    assert!(reported(&h.repo, &range, "type:diff author:babbage TODO").is_empty());
    assert!(reported(&h.repo, &range, "type:diff -author:ada TODO").is_empty());
    assert_eq!(
        reported(
            &h.repo,
            &range,
            &format!(
                "type:diff after:{} before:{} TODO",
                iso(at("todos")),
                iso(at("latin1"))
            )
        ),
        [h.id("unicode"), h.id("delete"), h.id("rename")]
    );
    assert_eq!(
        reported(&h.repo, &range, "type:diff message:legacy TODO"),
        [h.id("delete")]
    );
    assert_eq!(
        reported(
            &h.repo,
            &range,
            "type:diff -message:legacy file:legacy TODO"
        ),
        Vec::<String>::new()
    );
    // The search's "now" is START + 1,000,000 s; the fixture's commits are an hour apart from START.
    assert_eq!(
        reported(&h.repo, &range, "type:diff after:\"12 days ago\" TODO"),
        all_todo
    );
    assert!(reported(&h.repo, &range, "type:diff after:\"1 day ago\" TODO").is_empty());
    assert!(at("todos") > START);
}

#[test]
fn file_filters_select_file_diffs_not_commits() {
    let h = history::build();
    let range = h.range();
    // The "todos" commit changes only src/lib.rs: TODO there, not in a .md file.
    assert!(
        !reported(&h.repo, &range, r"type:diff file:\.md$ TODO")
            .contains(&h.id("todos").to_owned())
    );
    assert_eq!(
        reported(&h.repo, &range, r"type:diff file:\.md$ TODO"),
        [h.id("rename")]
    );
    // -file: drops the file diff; type:commit needs some file passing its file filters.
    assert_eq!(
        reported(&h.repo, &range, "type:commit file:many Many"),
        [h.id("many")]
    );
    assert!(reported(&h.repo, &range, "type:commit -file:many Many").is_empty());
    assert!(
        reported(&h.repo, &range, "type:commit file:nowhere Fixes").is_empty(),
        "an empty commit has no files"
    );
}

#[test]
fn results_per_monitor_are_capped() {
    let h = history::build();
    let options = SearchOptions {
        max_results_per_monitor: 2,
        ..SearchOptions::default()
    };
    let query = parse_query("type:diff TODO").unwrap();
    let outcome = search_new_commits(&h.repo.mirror(), &h.range(), &[&query], &options).unwrap();
    assert_eq!(outcome.monitors[0].results.len(), 2);
    assert!(outcome.monitors[0].truncated);
}

#[test]
fn bad_ranges_are_errors_not_guesses() {
    let h = history::build();
    let query = parse_query("type:diff TODO").unwrap();
    let mirror = h.repo.mirror();
    let options = SearchOptions::default();

    let mut gone = Heads::new();
    gone.insert(
        "refs/heads/main",
        "0123456789abcdef0123456789abcdef01234567",
    );
    let range = NewRange::between(&gone, &h.end);
    match search_new_commits(&mirror, &range, &[&query], &options) {
        Err(SearchError::MissingRevisions(missing)) => {
            assert_eq!(missing, ["0123456789abcdef0123456789abcdef01234567"]);
        }
        other => panic!("expected MissingRevisions, got {other:?}"),
    }

    let mut forged = Heads::new();
    forged.insert("refs/heads/main", "--output=/tmp/owned");
    let range = NewRange::between(&h.base, &forged);
    assert!(matches!(
        search_new_commits(&mirror, &range, &[&query], &options),
        Err(SearchError::InvalidRevision(_))
    ));
}

#[test]
fn results_serialize_as_sourcegraph_webhook_results() {
    let h = history::build();
    let result = only_result(&h.repo, &h.range(), "type:diff file:noeol TODO");
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "repository": "example.com/acme/widgets",
            "commit": h.id("noeol"),
            "diff": "noeol.txt noeol.txt\n@@ -2,1 +2,1 @@ \n-second\n+second TODO\n",
            "matchedDiffRanges": [[0, 5], [10, 15], [53, 57]],
        })
    );
    let back: MatchResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, result);
}

#[test]
fn large_ranges_split_across_workers_give_the_same_results() {
    let repo = Repo::new();
    repo.write("seed.txt", "seed\n");
    repo.commit("seed");
    let base = repo.heads();
    repo.fast_import_commits(600, |i| {
        let word = if i % 7 == 0 { "TODO" } else { "done" };
        (
            format!("file{}.txt", i % 13),
            format!("line {i} {word}\n"),
            format!("Commit {i} {word}"),
        )
    });
    let range = NewRange::between(&base, &repo.heads());
    let queries: Vec<_> = [
        "type:diff TODO",
        "type:commit TODO",
        "type:diff file:file1 done",
    ]
    .iter()
    .map(|q| parse_query(q).unwrap())
    .collect();
    let refs: Vec<_> = queries.iter().collect();
    let run = |max_workers| {
        let options = SearchOptions {
            max_workers,
            max_results_per_monitor: 10_000,
            ..SearchOptions::default()
        };
        search_new_commits(&repo.mirror(), &range, &refs, &options).unwrap()
    };
    let serial = run(1);
    assert_eq!(serial.commits_scanned, 600);
    // Removed lines match too: a file's TODO line replaced by a "done" one counts, as in -G.
    let serial_ids: Vec<&str> = serial.monitors[0]
        .results
        .iter()
        .map(|r| r.commit.as_str())
        .collect();
    assert_eq!(serial_ids, repo.log_ids(&["-G", "TODO"], &range));
    let parallel = run(4);
    assert_eq!(parallel, serial, "same results, same order");
    let expected: Vec<String> = repo.log_ids(&["-G", "TODO"], &range);
    let got: Vec<&str> = parallel.monitors[0]
        .results
        .iter()
        .map(|r| r.commit.as_str())
        .collect();
    assert_eq!(got, expected);

    // The cap applies to the merged, ordered results.
    let options = SearchOptions {
        max_workers: 4,
        max_results_per_monitor: 50,
        ..SearchOptions::default()
    };
    let capped = search_new_commits(&repo.mirror(), &range, &refs, &options).unwrap();
    assert!(capped.monitors[0].truncated);
    assert_eq!(
        capped.monitors[0].results[..],
        serial.monitors[0].results[..50]
    );
}

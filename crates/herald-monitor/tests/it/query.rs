//! Parsing and validating queries: what is accepted, and where and why the rest is refused.

use herald_monitor::{QueryError, ResultKind, parse_query};

#[track_caller]
fn refused(query: &str) -> QueryError {
    match parse_query(query) {
        Ok(q) => panic!("{query:?} should be refused, parsed as {q:?}"),
        Err(err) => err,
    }
}

#[track_caller]
fn refused_at(query: &str, position: usize, reason_part: &str) {
    let err = refused(query);
    assert_eq!(err.position, position, "{query:?}: {err}");
    assert!(
        err.reason.contains(reason_part),
        "{query:?}: reason {:?} lacks {reason_part:?}",
        err.reason
    );
}

#[track_caller]
fn kinds(query: &str) -> Vec<ResultKind> {
    parse_query(query)
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
        .result_kinds()
}

#[test]
fn every_branch_needs_a_type() {
    refused_at("", 0, "empty");
    refused_at("TODO", 0, "type:diff or type:commit");
    refused_at("type:diff foo OR (bar baz)", 18, "type:diff or type:commit");
    refused_at(
        "type:diff foo OR (author:x bar)",
        18,
        "type:diff or type:commit",
    );
    refused_at("type:diff type:commit x", 10, "same branch");
    refused_at("type:dif x", 5, "type:diff or type:commit");
    refused_at("type:file x", 5, "type:diff or type:commit");
}

#[test]
fn filters_at_the_edges_scope_the_whole_or() {
    assert_eq!(kinds("type:diff foo OR bar"), [ResultKind::Diff]);
    assert_eq!(
        kinds("repo:x type:diff foo OR bar OR baz"),
        [ResultKind::Diff]
    );
    assert_eq!(kinds("foo OR bar type:commit"), [ResultKind::Commit]);
    assert_eq!(
        kinds("type:diff foo OR type:commit bar"),
        [ResultKind::Diff, ResultKind::Commit]
    );
    assert_eq!(
        kinds("(type:diff foo) OR (type:commit bar)"),
        [ResultKind::Diff, ResultKind::Commit]
    );
    assert_eq!(
        kinds("type:diff (foo OR bar) author:ada"),
        [ResultKind::Diff]
    );
    assert_eq!(kinds("type:diff"), [ResultKind::Diff]);
    assert_eq!(kinds("type:commit author:ada"), [ResultKind::Commit]);
}

#[test]
fn syntax_errors_point_at_the_term() {
    refused_at("type:diff (foo", 10, "unclosed parenthesis");
    refused_at("type:diff \"unterminated", 10, "unterminated");
    refused_at("type:diff foo OR", 14, "OR needs");
    refused_at("AND foo type:diff", 0, "AND needs");
    refused_at("type:diff foo AND", 14, "AND needs");
    refused_at("type:diff NOT foo", 10, "NOT is not supported");
    refused_at("type:diff file:", 15, "needs a value");
    refused_at("type:diff lang:go x", 10, "not supported");
    refused_at("type:diff -type:commit", 10, "cannot be negated");
    refused_at("type:diff case:maybe", 15, "yes or no");
    refused_at("type:diff case:yes case:no", 19, "conflicting");
    refused_at(
        "type:diff patterntype:structural x",
        22,
        "literal or regexp",
    );
    refused_at("type:diff \"\"", 10, "empty pattern");
}

#[test]
fn regex_errors_point_inside_the_pattern() {
    // "type:diff /" is 11 bytes; the unclosed group is at offset 3 of "foo(".
    refused_at("type:diff /foo(/", 14, "unclosed group");
    refused_at("type:diff patterntype:regexp foo(", 32, "unclosed group");
    refused_at("type:diff file:[a x", 15, "unclosed character class");
    refused_at("type:diff author:a) x", 18, "unopened group");
    refused_at("type:diff /(?<=a)b/", 11, "look-around");
    refused_at("type:diff /(a)\\1/", 14, "backreference");
    // Non-ASCII before the error: positions are byte offsets.
    refused_at("type:diff /日本(/", 17, "unclosed group");
    // Literal mode escapes everything: the same text is a valid search.
    assert!(parse_query("type:diff foo(").is_ok());
    assert!(parse_query("type:diff [a").is_ok());
}

#[test]
fn pathological_regexes_are_refused_before_they_can_hurt() {
    let err = refused("type:diff /(a{100}){100}{100}/");
    assert!(err.reason.contains("too large"), "{err}");
    assert_eq!(err.position, 10);
    let err = refused(r"type:diff /\w{1000}\w{1000}/");
    assert!(err.reason.contains("too large"), "{err}");
    let deep = format!("type:diff /{}a{}/", "(".repeat(300), ")".repeat(300));
    assert!(refused(&deep).reason.contains("nest"), "deep nesting");
    let long = format!("type:diff {}", "a".repeat(9000));
    refused_at(&long, 8192, "longer than");
}

#[test]
fn or_expansion_is_bounded() {
    let many = (0..7)
        .map(|i| format!("(a{i} OR b{i})"))
        .collect::<Vec<_>>()
        .join(" ");
    let err = refused(&format!("type:diff {many}"));
    assert!(err.reason.contains("OR branches"), "{err}");
    let some = (0..6)
        .map(|i| format!("(a{i} OR b{i})"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        parse_query(&format!("type:diff {some}")).is_ok(),
        "64 branches are fine"
    );
}

#[test]
fn dates() {
    for ok in [
        "type:diff after:2024-01-01 x",
        "type:diff before:2024-02-01T10:00:00Z x",
        "type:diff before:2024-02-01T10:00:00+02:00 x",
        "type:diff since:\"2 weeks ago\" x",
        "type:diff after:'1 month ago' x",
        "type:diff after:yesterday x",
    ] {
        assert!(parse_query(ok).is_ok(), "{ok}");
    }
    refused_at("type:diff before:soonish x", 17, "not a date");
    refused_at("type:diff after:\"2 fortnights ago\" x", 16, "not a date");
    refused_at("type:diff after:2024-13-01 x", 16, "not a date");
}

#[test]
fn repo_filters_decide_which_repositories_a_monitor_searches() {
    let q = parse_query(r"type:diff repo:^github\.com/acme/ TODO").unwrap();
    assert!(q.may_match_repo("github.com/acme/widgets"));
    assert!(
        q.may_match_repo("GITHUB.com/acme/widgets"),
        "case-insensitive by default"
    );
    assert!(!q.may_match_repo("gitlab.com/acme/widgets"));
    let q = parse_query(r"type:diff -repo:acme TODO").unwrap();
    assert!(!q.may_match_repo("github.com/acme/widgets"));
    assert!(q.may_match_repo("github.com/other/widgets"));
    let q = parse_query(r"type:diff repo:acme foo OR type:commit bar").unwrap();
    assert!(
        q.may_match_repo("github.com/other/widgets"),
        "the commit branch has no repo filter"
    );
    let q = parse_query(r"type:diff case:yes repo:Acme TODO").unwrap();
    assert!(!q.may_match_repo("github.com/acme/widgets"));
}

#[test]
fn words_parentheses_and_quotes() {
    assert!(parse_query("type:diff foo()").is_ok());
    assert!(
        parse_query("type:diff AND foo").is_ok(),
        "AND between a filter and a pattern"
    );
    assert_eq!(
        kinds("type:diff foo OR (bar)"),
        [ResultKind::Diff],
        "(bar) is text, so the OR is hoisted"
    );
    assert!(parse_query("type:diff fmt.Println(x)").is_ok());
    assert!(parse_query("type:diff (foo OR bar)").is_ok());
    assert!(parse_query("type:diff ((foo OR bar) baz)").is_ok());
    assert!(parse_query("type:diff file:\"with space.md\" x").is_ok());
    assert!(parse_query("type:diff 'single \\' quoted'").is_ok());
    assert!(
        parse_query("type:diff http://example.com").is_ok(),
        "unknown fields are text"
    );
    assert!(
        parse_query("type:diff /usr/bin").is_ok(),
        "a path is not a regex"
    );
    assert_eq!(parse_query("type:diff x").unwrap().source(), "type:diff x");
}

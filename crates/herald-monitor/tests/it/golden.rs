//! Exact `diff`/`message` strings and ranges, pinned in tests/golden/*.json.

use crate::history;
use crate::support::{assert_golden, search};

fn golden_for(name: &str, queries: &[&str]) {
    let h = history::build();
    let outcome = search(&h.repo, &h.range(), queries);
    let mut out = Vec::new();
    for monitor in &outcome.monitors {
        for result in &monitor.results {
            let mut value = serde_json::to_value(result).unwrap();
            value["fixtureCommit"] = h.name_of(&result.commit).into();
            value["highlighted"] = result.highlighted().collect::<Vec<_>>().into();
            out.push(value);
        }
    }
    let value = serde_json::json!({ "queries": queries, "results": out });
    println!("{}", serde_json::to_string_pretty(&value).unwrap());
    assert_golden(name, &value);
}

#[test]
fn todo_diff() {
    golden_for("todo_diff", &["type:diff TODO"]);
}

#[test]
fn file_filters_highlight_paths() {
    golden_for(
        "file_filters",
        &[r"type:diff file:notes|space|日本 -file:^many/ todo"],
    );
}

#[test]
fn commit_messages() {
    golden_for(
        "commit_messages",
        &[
            r"type:commit TODO OR type:commit /bug #\d+/",
            "type:commit message:🎉 translations",
        ],
    );
}

#[test]
fn file_only_queries_show_every_changed_line() {
    golden_for(
        "file_only",
        &[
            r"type:diff file:run\.sh",
            r"type:diff file:^src/lib\.rs$ before:2023-11-15",
        ],
    );
}

#[test]
fn diff_and_commit_branches_in_one_monitor() {
    golden_for("diff_or_commit", &["type:diff FIXME OR type:commit FIXME"]);
}

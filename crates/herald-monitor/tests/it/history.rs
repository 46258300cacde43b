//! The shared fixture: a repository whose history after the monitor's creation covers adds,
//! deletes, renames, binary files, paths with spaces, CJK and emoji, invalid UTF-8, a file
//! without a final newline, mode changes, many files in one commit, a merge and an empty
//! commit.

use std::collections::BTreeMap;

use herald_monitor::{Heads, NewRange};

use crate::support::Repo;

pub struct History {
    pub repo: Repo,
    /// Heads when the monitor was created: nothing before is ever reported.
    pub base: Heads,
    pub end: Heads,
    pub commits: BTreeMap<&'static str, String>,
}

impl History {
    pub fn range(&self) -> NewRange {
        NewRange::between(&self.base, &self.end)
    }

    pub fn id(&self, name: &str) -> &str {
        &self.commits[name]
    }

    /// The fixture name of a commit id.
    pub fn name_of(&self, id: &str) -> &'static str {
        self.commits
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| *k)
            .unwrap()
    }
}

const FUNCTIONS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
];

fn lib_rs(todos: &dyn Fn(&str) -> Vec<String>) -> String {
    let mut out = String::from("//! Widgets.\n\n");
    for (i, name) in FUNCTIONS.iter().enumerate() {
        out.push_str(&format!("pub fn {name}() -> u32 {{\n"));
        for line in todos(name) {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str(&format!("    {i}\n}}\n\n"));
    }
    out
}

fn notes(changed: &str) -> String {
    let mut out = String::from("Notes\n");
    for i in 0..12 {
        out.push_str(&format!("note number {i} stays the same\n"));
    }
    out.push_str(changed);
    out
}

pub fn build() -> History {
    let repo = Repo::new();
    let mut commits = BTreeMap::new();

    repo.write("src/lib.rs", lib_rs(&|_| Vec::new()));
    repo.write("README.md", "# Widgets\n\nA library.\n");
    repo.write("docs/with space.md", notes("line two\n"));
    repo.write(
        "assets/logo.png",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01",
    );
    repo.write("old/legacy.txt", "legacy TODO one\nkeep\nlegacy TODO two\n");
    repo.write("noeol.txt", "first\nsecond");
    repo.write("scripts/run.sh", "echo run\n");
    commits.insert(
        "initial",
        repo.commit("Initial import with a TODO in the message"),
    );
    let base = repo.heads();

    repo.write(
        "src/lib.rs",
        lib_rs(&|name| match name {
            "alpha" => (1..=7)
                .map(|i| format!("// TODO: alpha step {i}"))
                .collect(),
            "beta" | "gamma" | "delta" | "epsilon" => vec![format!("// TODO: {name}")],
            _ => Vec::new(),
        }),
    );
    commits.insert("todos", repo.commit("Add TODO markers across lib"));

    repo.git(&["mv", "docs/with space.md", "docs/renamed notes.md"]);
    repo.write("docs/renamed notes.md", notes("line two TODO later\n"));
    commits.insert("rename", repo.commit("Rename notes"));

    repo.remove("old/legacy.txt");
    commits.insert("delete", repo.commit("Remove legacy"));

    repo.write(
        "assets/logo.png",
        b"\x89PNG\r\n\x1a\n\x00TODO\x00FIXME\x00\x02",
    );
    commits.insert("binary", repo.commit("Update logo"));

    repo.write(
        "i18n/日本語.txt",
        "挨拶: こんにちは TODO 🎉 翻訳\n絵文字 🎉🎉 FIXME\n",
    );
    commits.insert("unicode", repo.commit("Add translations 🎉"));

    repo.write("latin1.txt", b"caf\xe9 \xff\xfe TODO ol\xe9\n".as_slice());
    commits.insert("latin1", repo.commit("Add latin-1 notes"));

    repo.write("noeol.txt", "first\nsecond TODO");
    commits.insert("noeol", repo.commit("Touch file without final newline"));

    for i in 1..=7 {
        repo.write(&format!("many/f{i}.txt"), format!("TODO item {i}\n"));
    }
    commits.insert("many", repo.commit("Many files"));

    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write(
        "README.md",
        "# Widgets\n\nA library.\n\nFIXME: feature docs\n",
    );
    commits.insert("feature", repo.commit("Feature FIXME docs"));
    repo.git(&["checkout", "--quiet", "main"]);
    repo.write("src/main.rs", "fn main() {\n    // TODO: wire up\n}\n");
    commits.insert("main-work", repo.commit("Main work"));
    commits.insert(
        "merge",
        repo.merge("feature", "Merge feature: FIXME cleanup"),
    );

    commits.insert(
        "empty",
        repo.commit_staged("Fixes bug #12\n\nLonger body mentioning TODO twice: TODO."),
    );

    repo.git(&["update-index", "--chmod=+x", "scripts/run.sh"]);
    commits.insert("mode", repo.commit_staged("Make run.sh executable"));

    let end = repo.heads();
    History {
        repo,
        base,
        end,
        commits,
    }
}

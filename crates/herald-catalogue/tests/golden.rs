//! Golden files: for every built-in type, the exact body Herald delivers for its
//! example and the family's native headers, signed with a fixed secret.
//! `HERALD_BLESS=1 cargo test -p herald-catalogue --test golden` rewrites them.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use herald_catalogue::{Catalogue, native_headers};
use herald_core::secret::Secret;

const SECRET: &str = "golden-secret";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn render(catalogue: &Catalogue, key: &str) -> String {
    let def = catalogue.get(key).unwrap();
    let body = common::delivered_example(catalogue, key);
    let secret = Secret::parse(SECRET).unwrap();
    let mut out = String::from("payload\n");
    out.push_str(std::str::from_utf8(&body).unwrap());
    out.push_str("\nheaders\n");
    for (name, value) in native_headers(def.family, key, None, &body, &secret) {
        writeln!(out, "{name}: {value}").unwrap();
    }
    out
}

#[test]
fn every_builtin_type_matches_its_golden_file() {
    let catalogue = Catalogue::builtin();
    let bless = std::env::var_os("HERALD_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for def in catalogue.list() {
        let path = golden_dir().join(format!("{}.txt", def.key));
        let rendered = render(&catalogue, &def.key);
        if bless {
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with HERALD_BLESS=1 to create it",
                path.display()
            )
        });
        if expected != rendered {
            stale.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{rendered}",
                def.key
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ (HERALD_BLESS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn no_golden_file_is_left_without_a_type() {
    let catalogue = Catalogue::builtin();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let key = name.strip_suffix(".txt").unwrap_or(&name);
        assert!(
            catalogue.get(key).is_some_and(|d| d.builtin),
            "{name} names no built-in type"
        );
    }
}

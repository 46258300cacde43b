//! The vendored code-host fixtures must stay byte-for-byte what their README
//! says they are: each file's git blob id equals the one recorded there.

use sha1::{Digest, Sha1};

use crate::{fixture, fixtures_dir};

fn git_blob_id(bytes: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// `(file, blob)` from the README's Files table: the first cell is the file,
/// the blob is the first cell that opens with a backquoted 40-hex id.
fn recorded_blobs() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(fixtures_dir().join("code-hosts/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            if !file.ends_with(".json") {
                return None;
            }
            let blob = cells.iter().skip(2).find_map(|c| {
                let id = c.strip_prefix('`')?.get(..40)?;
                id.bytes().all(|b| b.is_ascii_hexdigit()).then_some(id)
            })?;
            Some((file.to_owned(), blob.to_owned()))
        })
        .collect()
}

#[test]
fn vendored_code_host_fixtures_match_their_recorded_git_blobs() {
    let recorded = recorded_blobs();
    let on_disk = std::fs::read_dir(fixtures_dir().join("code-hosts"))
        .unwrap()
        .filter_map(|host| std::fs::read_dir(host.ok()?.path()).ok())
        .flatten()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "json"))
        })
        .count();
    assert_eq!(recorded.len(), on_disk, "one README row per fixture file");
    for (file, blob) in recorded {
        assert_eq!(
            git_blob_id(&fixture(&format!("code-hosts/{file}"))),
            blob,
            "{file}"
        );
    }
}

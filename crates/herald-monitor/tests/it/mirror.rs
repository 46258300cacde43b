//! Bare mirrors: creation, fetches, heads, failures as values, and the whole monitor loop.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use herald_monitor::{GitError, Mirror, MirrorError, NewRange, SourceRefused};

use crate::support::{Repo, local_policy, loopback_policy, reported_in, search_in};

const FETCH: Duration = Duration::from_secs(60);

fn source_with_branches() -> Repo {
    let source = Repo::new();
    source.write("a.txt", "one\n");
    source.commit("one");
    source.git(&["branch", "feature"]);
    source.git(&["branch", "-m", "main", "trunk"]);
    source
}

#[test]
fn ensure_creates_a_bare_mirror_and_fetch_copies_branches() {
    let data = tempfile::tempdir().unwrap();
    let source = source_with_branches();
    let source_path = source.path().to_str().unwrap();
    let mirror = Mirror::ensure(
        data.path(),
        "example.com/acme/widgets",
        source_path,
        &local_policy(),
    )
    .unwrap();
    assert!(mirror.path().starts_with(data.path().join("mirrors")));
    assert!(
        mirror.heads(None).unwrap().is_empty(),
        "nothing before the first fetch"
    );

    let heads = mirror.fetch(FETCH).unwrap();
    let tip = source.head();
    assert_eq!(heads.get("refs/heads/trunk"), Some(tip.as_str()));
    assert_eq!(heads.get("refs/heads/feature"), Some(tip.as_str()));
    assert_eq!(
        mirror.default_branch().unwrap().as_deref(),
        Some("refs/heads/trunk"),
        "follows the source's HEAD"
    );
    let default = mirror.heads(None).unwrap();
    assert_eq!(
        default.iter().collect::<Vec<_>>(),
        [("refs/heads/trunk", tip.as_str())]
    );
    let chosen = mirror
        .heads(Some(&[
            "feature".to_owned(),
            "refs/heads/missing".to_owned(),
        ]))
        .unwrap();
    assert_eq!(
        chosen.iter().collect::<Vec<_>>(),
        [("refs/heads/feature", tip.as_str())]
    );

    // Idempotent, and the same directory for the same name.
    let again = Mirror::ensure(
        data.path(),
        "example.com/acme/widgets",
        source_path,
        &local_policy(),
    )
    .unwrap();
    assert_eq!(again.path(), mirror.path());
    let other = Mirror::ensure(
        data.path(),
        "example.com/acme/widgets2",
        source_path,
        &local_policy(),
    )
    .unwrap();
    assert_ne!(other.path(), mirror.path());
}

#[test]
fn fetch_prunes_deleted_branches_and_follows_new_commits() {
    let data = tempfile::tempdir().unwrap();
    let source = source_with_branches();
    let mirror = Mirror::ensure(
        data.path(),
        "acme",
        source.path().to_str().unwrap(),
        &local_policy(),
    )
    .unwrap();
    mirror.fetch(FETCH).unwrap();
    source.git(&["branch", "-D", "feature"]);
    source.write("a.txt", "two\n");
    let two = source.commit("two");
    let heads = mirror.fetch(FETCH).unwrap();
    assert_eq!(
        heads.iter().collect::<Vec<_>>(),
        [("refs/heads/trunk", two.as_str())]
    );
}

#[test]
fn bad_names_and_sources_are_refused() {
    let data = tempfile::tempdir().unwrap();
    assert!(matches!(
        Mirror::ensure(data.path(), "", "/x", &local_policy()),
        Err(MirrorError::InvalidName(_))
    ));
    assert!(matches!(
        Mirror::ensure(data.path(), "a\nb", "/x", &local_policy()),
        Err(MirrorError::InvalidName(_))
    ));
    for bad in ["--upload-pack=evil", " ", "ext::sh -c evil"] {
        assert!(
            matches!(
                Mirror::ensure(data.path(), "ok", bad, &local_policy()),
                Err(MirrorError::Refused(SourceRefused::Malformed(_)))
            ),
            "{bad:?}"
        );
    }
    let plain = tempfile::tempdir().unwrap();
    assert!(matches!(
        Mirror::open("x", plain.path()),
        Err(MirrorError::NotAMirror(_))
    ));
    // A directory inside a repository is not that repository.
    let repo = Repo::new();
    repo.write("sub/file", "x");
    assert!(matches!(
        Mirror::open("x", &repo.path().join("sub")),
        Err(MirrorError::NotAMirror(_))
    ));
}

#[test]
fn fetch_failures_are_values_and_keep_the_mirror() {
    let data = tempfile::tempdir().unwrap();
    let source = source_with_branches();
    let mirror = Mirror::ensure(
        data.path(),
        "acme",
        source.path().to_str().unwrap(),
        &local_policy(),
    )
    .unwrap();
    let before = mirror.fetch(FETCH).unwrap();

    let gone = data.path().join("no-such-repository");
    let broken =
        Mirror::ensure(data.path(), "acme", gone.to_str().unwrap(), &local_policy()).unwrap();
    match broken.fetch(FETCH) {
        Err(MirrorError::Refused(SourceRefused::Local { reason, .. })) => {
            assert!(!reason.is_empty())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(broken.heads(None).unwrap(), mirror.heads(None).unwrap());
    assert_eq!(
        broken
            .heads(Some(&["trunk".to_owned(), "feature".to_owned()]))
            .unwrap(),
        before
    );
}

#[test]
fn a_source_that_never_answers_times_out() {
    let data = tempfile::tempdir().unwrap();
    // Connections are accepted by the kernel and then left unanswered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/acme.git", listener.local_addr().unwrap());
    let mirror = Mirror::ensure(data.path(), "silent", &url, &loopback_policy()).unwrap();
    let started = Instant::now();
    match mirror.fetch(Duration::from_secs(2)) {
        Err(MirrorError::Git(GitError::Timeout { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the fetch was killed, not waited for"
    );
    drop(listener);
}

#[test]
fn the_monitor_loop_reports_each_new_commit_once() {
    let data = tempfile::tempdir().unwrap();
    let source = Repo::new();
    source.write("app.rs", "fn main() {}\n");
    source.commit("start with a TODO in the message");
    let mirror = Mirror::ensure(
        data.path(),
        "example.com/acme/app",
        source.path().to_str().unwrap(),
        &local_policy(),
    )
    .unwrap();
    mirror.fetch(FETCH).unwrap();

    // Monitor created: snapshot the heads.
    let mut searched = mirror.heads(None).unwrap();
    let query = "type:diff TODO OR type:commit TODO";

    source.write("app.rs", "fn main() {\n    // TODO: parse args\n}\n");
    let pushed = source.commit("Parse args later (TODO)");
    mirror.fetch(FETCH).unwrap();
    let now = mirror.heads(None).unwrap();
    let outcome = search_in(&mirror, &NewRange::between(&searched, &now), &[query]);
    let results = &outcome.monitors[0].results;
    assert_eq!(results.len(), 2, "a diff result and a message result");
    assert!(
        results
            .iter()
            .all(|r| r.commit == pushed && r.repository == "example.com/acme/app")
    );
    // The removed line is two lines from the match: outside the one line of context.
    assert_eq!(
        results[0].text(),
        "app.rs app.rs\n@@ -2,0 +1,3 @@ \n+fn main() {\n+    // TODO: parse args\n+}\n"
    );
    assert_eq!(results[0].highlighted().collect::<Vec<_>>(), ["TODO"]);
    assert_eq!(results[1].highlighted().collect::<Vec<_>>(), ["TODO"]);
    searched = now;

    // A fetch with nothing new: nothing to search, nothing reported.
    mirror.fetch(FETCH).unwrap();
    let range = NewRange::between(&searched, &mirror.heads(None).unwrap());
    assert!(range.is_empty());
    assert!(reported_in(&mirror, &range, query).is_empty());
}

//! Where mirrors may be fetched from, against a real git server on 127.0.0.1 and real local
//! repositories: the address guard, local roots, redirects, injection, and credentials kept
//! out of arguments and the mirror's files.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::Duration;

use herald_monitor::{Mirror, MirrorError, SourcePolicy, SourceRefused};

use crate::http_server::{GitHttpServer, publish};
use crate::support::{Repo, loopback_policy};

const FETCH: Duration = Duration::from_secs(60);

fn served_repository() -> (Repo, tempfile::TempDir) {
    let source = Repo::new();
    source.write("a.txt", "one\n");
    source.commit("one");
    let root = tempfile::tempdir().unwrap();
    publish(source.path(), root.path(), "acme.git");
    (source, root)
}

fn refused_address(result: Result<impl std::fmt::Debug, MirrorError>) -> String {
    match result {
        Err(MirrorError::Refused(SourceRefused::Address(message))) => message,
        other => panic!("expected an address refusal, got {other:?}"),
    }
}

#[test]
fn a_loopback_git_server_is_refused_without_allow_cidr_and_fetched_with_it() {
    let (source, root) = served_repository();
    let server = GitHttpServer::start(root.path(), None);
    let data = tempfile::tempdir().unwrap();
    let port = server.addr.port();

    // An IP literal is refused before anything is created.
    let literal = format!("http://127.0.0.1:{port}/acme.git");
    let message = refused_address(Mirror::ensure(
        data.path(),
        "acme",
        &literal,
        &SourcePolicy::default(),
    ));
    assert!(message.contains("--allow-cidr"), "{message}");
    // A name is resolved at fetch time, through the guard.
    let named = format!("http://localhost:{port}/acme.git");
    let mirror = Mirror::ensure(data.path(), "acme", &named, &SourcePolicy::default()).unwrap();
    let message = refused_address(mirror.fetch(FETCH));
    assert!(
        message.contains("localhost resolves only to refused addresses"),
        "{message}"
    );
    assert!(server.requests().is_empty(), "git never connected");

    for url in [&literal, &named] {
        let mirror = Mirror::ensure(data.path(), url, url, &loopback_policy()).unwrap();
        let heads = mirror.fetch(FETCH).unwrap();
        assert_eq!(
            heads.get("refs/heads/main"),
            Some(source.head().as_str()),
            "{url}"
        );
    }
    assert!(!server.requests().is_empty());
}

#[test]
fn the_metadata_address_is_refused_even_when_loopback_is_allowed() {
    let data = tempfile::tempdir().unwrap();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/x.git",
    ] {
        let message = refused_address(Mirror::ensure(data.path(), "m", url, &loopback_policy()));
        assert!(message.contains("metadata"), "{message}");
    }
}

#[test]
fn redirects_are_not_followed() {
    let (_source, root) = served_repository();
    let server = GitHttpServer::start(root.path(), None);
    let data = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/redirect/acme.git", server.addr.port());
    let mirror = Mirror::ensure(data.path(), "acme", &url, &loopback_policy()).unwrap();
    assert!(mirror.fetch(FETCH).is_err());
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|path| path.starts_with("/redirect/")),
        "the redirect's target was never asked for: {requests:?}"
    );
}

#[test]
fn helpers_and_options_are_still_refused() {
    let data = tempfile::tempdir().unwrap();
    let marker = data.path().join("pwned");
    for source in [
        format!("ext::sh -c touch% {}", marker.display()),
        format!("--upload-pack=touch {}", marker.display()),
        "-uhelp".to_owned(),
    ] {
        assert!(
            matches!(
                Mirror::ensure(data.path(), "x", &source, &loopback_policy()),
                Err(MirrorError::Refused(SourceRefused::Malformed(_)))
            ),
            "{source}"
        );
    }
    assert!(!marker.exists());
}

#[test]
fn local_sources_need_a_root_and_stay_inside_it() {
    let roots = tempfile::tempdir().unwrap();
    let inside = roots.path().join("repos");
    std::fs::create_dir(&inside).unwrap();
    let (source, served) = served_repository();
    publish(source.path(), &inside, "acme.git");
    let repo = inside.join("acme.git");
    let data = tempfile::tempdir().unwrap();
    let rooted = SourcePolicy {
        local_roots: vec![inside.clone()],
        ..SourcePolicy::default()
    };

    for form in [
        repo.display().to_string(),
        format!("file://{}", repo.display()),
    ] {
        assert!(
            matches!(
                Mirror::ensure(data.path(), "acme", &form, &SourcePolicy::default()),
                Err(MirrorError::Refused(SourceRefused::OutsideRoots(_)))
            ),
            "{form}"
        );
        let mirror = Mirror::ensure(data.path(), "acme", &form, &rooted).unwrap();
        let heads = mirror.fetch(FETCH).unwrap();
        assert_eq!(
            heads.get("refs/heads/main"),
            Some(source.head().as_str()),
            "{form}"
        );
    }

    // Another repository on the host, reached with `..` or through a link inside the root.
    let outside = served.path().join("acme.git");
    let dotted = format!("{}/../../{}", inside.display(), outside.display());
    assert!(matches!(
        Mirror::ensure(data.path(), "dots", &dotted, &rooted),
        Err(MirrorError::Refused(SourceRefused::Malformed(_)))
    ));
    let link = inside.join("link.git");
    symlink(&outside, &link).unwrap();
    let linked = Mirror::ensure(data.path(), "link", link.to_str().unwrap(), &rooted).unwrap();
    match linked.fetch(FETCH) {
        Err(MirrorError::Refused(SourceRefused::Local { reason, .. })) => {
            assert!(reason.contains("outside"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        linked.heads(None).unwrap().is_empty(),
        "nothing was fetched"
    );

    // A repository whose objects live in one outside the root.
    let borrowing = inside.join("borrowing.git");
    publish(source.path(), &inside, "borrowing.git");
    std::fs::write(
        borrowing.join("objects/info/alternates"),
        format!("{}\n", outside.join("objects").display()),
    )
    .unwrap();
    let mirror =
        Mirror::ensure(data.path(), "borrow", borrowing.to_str().unwrap(), &rooted).unwrap();
    assert!(matches!(
        mirror.fetch(FETCH),
        Err(MirrorError::Refused(SourceRefused::Local { .. }))
    ));
}

#[test]
fn credentials_stay_out_of_arguments_and_the_mirror() {
    const PASSWORD: &str = "s3cret-9f1c2a7e";
    let (source, root) = served_repository();
    let server = GitHttpServer::start(root.path(), Some(&format!("bot:{PASSWORD}")));
    let data = tempfile::tempdir().unwrap();
    let url = format!(
        "http://bot:{PASSWORD}@localhost:{}/acme.git",
        server.addr.port()
    );
    let mirror = Mirror::ensure(data.path(), "acme", &url, &loopback_policy()).unwrap();
    let heads = mirror.fetch(FETCH).unwrap();
    assert_eq!(heads.get("refs/heads/main"), Some(source.head().as_str()));

    assert!(
        !server.secret_seen_in_cmdline(),
        "the password showed in a process's arguments"
    );
    let config = std::fs::read_to_string(mirror.path().join("config")).unwrap();
    assert!(
        !config.contains(PASSWORD) && !config.contains("bot@"),
        "{config}"
    );
    assert!(config.contains(&format!("http://localhost:{}/acme.git", server.addr.port())));
    for dir in [mirror.path(), &data.path().join("mirrors")] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let askpass = std::fs::read_to_string(data.path().join("mirrors/.herald-askpass")).unwrap();
    assert!(!askpass.contains(PASSWORD));

    // Without the credentials the server turns the fetch away.
    let anonymous = format!("http://localhost:{}/acme.git", server.addr.port());
    let mirror = Mirror::ensure(data.path(), "anonymous", &anonymous, &loopback_policy()).unwrap();
    assert!(mirror.fetch(FETCH).is_err());
}

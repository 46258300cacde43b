use super::*;

fn open() -> SourcePolicy {
    SourcePolicy::default()
}

fn with_roots(roots: &[&str]) -> SourcePolicy {
    SourcePolicy {
        local_roots: roots.iter().map(PathBuf::from).collect(),
        ..SourcePolicy::default()
    }
}

#[test]
fn https_and_http_urls_to_public_hosts_are_allowed() {
    for ok in [
        "https://github.com/acme/api.git",
        "http://git.example.com/acme/api.git",
        "https://8.8.8.8/acme.git",
        "HTTPS://github.com/acme/api.git",
    ] {
        assert!(matches!(open().check(ok), Ok(Source::Remote(_))), "{ok}");
    }
}

#[test]
fn refused_ip_literals_say_how_to_allow_them() {
    for bad in [
        "http://127.0.0.1:8080/x.git",
        "http://169.254.169.254/latest/meta-data",
        "https://[::1]/x.git",
        "https://[::ffff:0:7f00:1]/x.git",
        "http://10.0.0.1/x.git",
    ] {
        match open().check(bad) {
            Err(SourceRefused::Address(message)) => {
                assert!(message.contains("--allow-cidr"), "{message}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let allowing = SourcePolicy {
        guard: AddressGuard::new(vec!["127.0.0.1/32".parse().unwrap()]),
        ..SourcePolicy::default()
    };
    assert!(allowing.check("http://127.0.0.1:8080/x.git").is_ok());
    assert!(allowing.check("http://127.0.0.2:8080/x.git").is_err());
}

#[test]
fn helpers_options_and_other_schemes_are_refused() {
    for bad in [
        "",
        " ",
        "relative/path",
        "-uhelp",
        "--upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "ftp://host/x",
        "git://github.com/acme/api.git",
        "a\nb",
    ] {
        let refused = open().check(bad);
        assert!(
            matches!(
                refused,
                Err(SourceRefused::Malformed(_) | SourceRefused::Scheme(_))
            ),
            "{bad:?}: {refused:?}"
        );
    }
}

#[test]
fn ssh_is_refused_unless_allowed() {
    for ssh in [
        "ssh://git@github.com/acme/api.git",
        "git@github.com:acme/api.git",
        "github.com:acme/api.git",
    ] {
        assert_eq!(open().check(ssh), Err(SourceRefused::SshOff), "{ssh}");
        let allowing = SourcePolicy {
            allow_ssh: true,
            ..SourcePolicy::default()
        };
        match allowing.check(ssh) {
            Ok(Source::Remote(remote)) => {
                assert_eq!(remote.host, "github.com");
                assert_eq!(remote.transport, Transport::Ssh);
            }
            other => panic!("{ssh}: {other:?}"),
        }
    }
    let allowing = SourcePolicy {
        allow_ssh: true,
        ..SourcePolicy::default()
    };
    assert!(matches!(
        allowing.check("git@[::1]:acme/api.git"),
        Err(SourceRefused::Address(_))
    ));
    assert!(matches!(
        allowing.check("ssh://git@127.0.0.1/acme/api.git"),
        Err(SourceRefused::Address(_))
    ));
}

#[test]
fn local_paths_need_a_root_that_holds_them() {
    for local in ["/srv/git/api", "file:///srv/git/api"] {
        match open().check(local) {
            Err(refused @ SourceRefused::OutsideRoots(_)) => {
                assert!(refused.to_string().contains("local_roots"), "{refused}")
            }
            other => panic!("{local}: {other:?}"),
        }
        assert_eq!(
            with_roots(&["/srv/git"]).check(local),
            Ok(Source::Local(PathBuf::from("/srv/git/api")))
        );
        assert!(with_roots(&["/srv/other"]).check(local).is_err(), "{local}");
        // A root is a directory, not a prefix of names.
        assert!(with_roots(&["/srv/gi"]).check(local).is_err(), "{local}");
    }
    for escaping in ["/srv/git/../../etc/repo", "file:///srv/git/../secret"] {
        assert!(
            with_roots(&["/srv/git"]).check(escaping).is_err(),
            "{escaping}"
        );
    }
    assert!(
        with_roots(&["/srv/git"])
            .check("file://other-host/srv/git/api")
            .is_err()
    );
}

#[test]
fn credentials_are_kept_apart_from_the_url() {
    let Ok(Source::Remote(remote)) = open().check("https://bot:s3cr%40t@git.example.com/a.git")
    else {
        panic!("allowed")
    };
    assert_eq!(remote.url, "https://git.example.com/a.git");
    let credentials = remote.credentials.expect("credentials");
    assert_eq!(credentials.username, "bot");
    assert_eq!(credentials.password, "s3cr@t");
    assert!(!format!("{credentials:?}").contains("s3cr"));

    let Ok(Source::Remote(token)) = open().check("https://ghp_token@github.com/acme/api.git")
    else {
        panic!("allowed")
    };
    assert_eq!(token.url, "https://github.com/acme/api.git");
    assert_eq!(
        token.credentials.map(|c| (c.username, c.password)),
        Some(("ghp_token".to_owned(), String::new()))
    );
}

#[test]
fn pinning_resolves_names_through_the_guard() {
    let source = open()
        .check("http://localhost:9/x.git")
        .expect("a name passes the pure check");
    assert!(matches!(
        open().pin(&source),
        Err(SourceRefused::Address(_))
    ));
    let allowing = SourcePolicy {
        guard: AddressGuard::new(vec!["127.0.0.1/32".parse().unwrap()]),
        ..SourcePolicy::default()
    };
    match allowing.pin(&source) {
        Ok(Pinned::Remote { addresses, .. }) => {
            assert_eq!(addresses, [IpAddr::from([127, 0, 0, 1])])
        }
        other => panic!("{other:?}"),
    }
}

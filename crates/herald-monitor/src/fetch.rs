//! How a fetch talks to its source: the git command pinned to the addresses the guard
//! approved, redirects off, only the source's own protocol allowed, no configuration but
//! ours, and credentials answered through `GIT_ASKPASS` from the environment, so they are
//! never on a command line or in a file.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::git::Git;
use crate::source::{Pinned, SourcePolicy, SourceRefused, Transport};

/// The askpass script's name in the mirrors directory. It holds no secret: it prints
/// what the fetch's environment carries.
const ASKPASS_NAME: &str = ".herald-askpass";
const ASKPASS_SCRIPT: &str = "#!/bin/sh\n\
# Herald's answers to git's credential prompts, from the fetch's environment.\n\
case \"$1\" in\n\
Username*) printf '%s\\n' \"$HERALD_GIT_USERNAME\" ;;\n\
*) printf '%s\\n' \"$HERALD_GIT_PASSWORD\" ;;\n\
esac\n";
const USERNAME_VAR: &str = "HERALD_GIT_USERNAME";
const PASSWORD_VAR: &str = "HERALD_GIT_PASSWORD";

/// Variables that would send git elsewhere, through something else, or ask someone else.
const ROUTING_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "GIT_PROXY_COMMAND",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_ALLOW_PROTOCOL",
    USERNAME_VAR,
    PASSWORD_VAR,
];

/// Creates `dir` (and its parents) readable by this user only, or narrows an existing one:
/// mirrors are private copies of private repositories.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes the askpass script into the mirrors directory unless it is there already.
pub(crate) fn ensure_askpass(mirrors_dir: &Path) -> io::Result<PathBuf> {
    let path = mirrors_dir.join(ASKPASS_NAME);
    if fs::read_to_string(&path).is_ok_and(|text| text == ASKPASS_SCRIPT) {
        return Ok(path);
    }
    // Written beside under a name of its own and renamed in, so a concurrent fetch never
    // runs half a script and two writers never share a file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = mirrors_dir.join(format!(
        "{ASKPASS_NAME}.{}.{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o700)
        .open(&tmp)?;
    file.write_all(ASKPASS_SCRIPT.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A git command in `dir` that may reach the pinned source and nothing else.
pub(crate) fn remote_git(dir: &Path, pinned: &Pinned, askpass: &Path, timeout: Duration) -> Git {
    let mut git = Git::new(dir, timeout).isolated();
    for var in ROUTING_ENV {
        git = git.env_remove(var);
    }
    git = git.args([
        "-c",
        "http.followRedirects=false",
        "-c",
        "credential.helper=",
    ]);
    match pinned {
        Pinned::Local(_) => git.env("GIT_ALLOW_PROTOCOL", "file"),
        Pinned::Remote { source, addresses } => {
            git = git.env("GIT_ALLOW_PROTOCOL", source.transport.protocol());
            if source.transport == Transport::Ssh {
                git = git.env("GIT_SSH_COMMAND", ssh_command(&source.host, addresses));
            } else if !addresses.is_empty() {
                let resolve = curl_resolve(&source.host, source.port, addresses);
                git = git.args(["-c".to_owned(), format!("http.curloptResolve={resolve}")]);
            }
            match &source.credentials {
                Some(credentials) => git
                    .env("GIT_ASKPASS", askpass)
                    .env(USERNAME_VAR, &credentials.username)
                    .env(PASSWORD_VAR, &credentials.password),
                None => git,
            }
        }
    }
}

/// The URL or path git is given for the pinned source.
pub(crate) fn git_url(pinned: &Pinned) -> String {
    match pinned {
        Pinned::Local(path) => path.display().to_string(),
        Pinned::Remote { source, .. } => source.url.clone(),
    }
}

/// `host:port:addr,addr` for curl's resolve list (`CURLOPT_RESOLVE`), IPv6 in brackets.
fn curl_resolve(host: &str, port: u16, addresses: &[IpAddr]) -> String {
    let list: Vec<String> = addresses
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    format!("{host}:{port}:{}", list.join(","))
}

/// ssh connects to the first approved address while checking the host key under the name,
/// and through no proxy.
fn ssh_command(host: &str, addresses: &[IpAddr]) -> String {
    let target = addresses
        .first()
        .map_or_else(|| host.to_owned(), IpAddr::to_string);
    format!(
        "ssh -o HostName={target} -o HostKeyAlias={host} -o ProxyCommand=none -o ProxyJump=none -o BatchMode=yes"
    )
}

/// A local source's repository, and the repositories its objects borrow from
/// (`objects/info/alternates`), must lie under a root too: git would read them all.
pub(crate) fn check_local_repository(
    policy: &SourcePolicy,
    real: &Path,
    timeout: Duration,
) -> Result<(), SourceRefused> {
    let refused = |reason: String| SourceRefused::Local {
        path: real.to_owned(),
        reason,
    };
    let out = Git::new(real, timeout)
        .isolated()
        .args(["rev-parse", "--absolute-git-dir"])
        .output()
        .map_err(|error| refused(format!("it is not a git repository ({error})")))?;
    let git_dir = PathBuf::from(String::from_utf8_lossy(&out).trim());
    let mut borrowed = vec![git_dir.clone()];
    if let Ok(list) = fs::read_to_string(git_dir.join("objects/info/alternates")) {
        let objects = git_dir.join("objects");
        borrowed.extend(
            list.lines()
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(|line| objects.join(line)),
        );
    }
    for path in borrowed {
        let real_path = fs::canonicalize(&path)
            .map_err(|error| refused(format!("{}: {error}", path.display())))?;
        if !policy.under_real_root(&real_path) {
            return Err(refused(format!(
                "its repository data at {} lies outside every directory in local_roots of [monitors]",
                real_path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Credentials, RemoteSource};

    fn pinned_with_password() -> Pinned {
        Pinned::Remote {
            source: RemoteSource {
                transport: Transport::Https,
                url: "https://git.example.com/a.git".to_owned(),
                host: "git.example.com".to_owned(),
                port: 443,
                credentials: Some(Credentials {
                    username: "bot".to_owned(),
                    password: "s3cret-token".to_owned(),
                }),
            },
            addresses: vec![
                "93.184.216.34".parse().unwrap(),
                "2606:2800::1".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn the_fetch_is_pinned_and_its_arguments_hold_no_credentials() {
        let git = remote_git(
            Path::new("/m"),
            &pinned_with_password(),
            Path::new("/m/.herald-askpass"),
            Duration::from_secs(1),
        );
        let args = git.arguments().join(" ");
        assert!(
            args.contains(
                "-c http.curloptResolve=git.example.com:443:93.184.216.34,[2606:2800::1]"
            ),
            "{args}"
        );
        assert!(args.contains("-c http.followRedirects=false"), "{args}");
        assert!(!args.contains("s3cret") && !args.contains("bot"), "{args}");
        let env = git.environment();
        assert!(env.contains(&("GIT_ALLOW_PROTOCOL".to_owned(), Some("https".to_owned()))));
        assert!(env.contains(&(PASSWORD_VAR.to_owned(), Some("s3cret-token".to_owned()))));
        assert!(env.contains(&("http_proxy".to_owned(), None)));
    }

    #[test]
    fn ssh_is_pinned_to_the_first_address_with_the_host_key_of_the_name() {
        assert_eq!(
            ssh_command("git.example.com", &["93.184.216.34".parse().unwrap()]),
            "ssh -o HostName=93.184.216.34 -o HostKeyAlias=git.example.com -o ProxyCommand=none -o ProxyJump=none -o BatchMode=yes"
        );
    }

    #[test]
    fn the_askpass_script_answers_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let script = ensure_askpass(dir.path()).unwrap();
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let answer = |prompt: &str| {
            let out = std::process::Command::new(&script)
                .arg(prompt)
                .env(USERNAME_VAR, "bot")
                .env(PASSWORD_VAR, "s3cret")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(answer("Username for 'https://h': "), "bot\n");
        assert_eq!(answer("Password for 'https://bot@h': "), "s3cret\n");
        assert!(!fs::read_to_string(&script).unwrap().contains("s3cret"));
    }
}

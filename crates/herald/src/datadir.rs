//! The data directory: created private, holding the secrets-at-rest key and the
//! generated admin token. Both files are written once, atomically, readable only
//! by their owner, and read back on every later start.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_core::cipher::{KEY_LEN, SecretCipher};
use rand::RngCore;

use crate::config::AdminToken;

pub const DATABASE_FILE: &str = "herald.db";
pub const KEY_FILE: &str = "secret.key";
pub const TOKEN_FILE: &str = "admin-token";

/// Where the admin token came from, for the startup message.
pub enum TokenSource {
    Configured,
    Generated(PathBuf),
    Reused(PathBuf),
}

/// Creates the data directory (mode 0700) if it is missing.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    create_private_dir(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// The cipher under the key file `path` (`<data_dir>/secret.key` unless
/// configured), generating the key on first start. Nodes starting together on a
/// shared key file agree on one key: creation is atomic and never replaces one.
pub fn load_or_create_cipher(path: &Path) -> anyhow::Result<SecretCipher> {
    if !path.exists() {
        create_once(path, &SecretCipher::generate_key())
            .with_context(|| format!("cannot write the secrets key {}", path.display()))?;
    }
    let key = fs::read(path)
        .with_context(|| format!("cannot read the secrets key {}", path.display()))?;
    if key.len() != KEY_LEN {
        bail!(
            "the secrets key {} holds {} bytes, not {KEY_LEN}: it is damaged or not Herald's. \
             Restore it from a backup; without it the stored webhook secrets cannot be read",
            path.display(),
            key.len()
        );
    }
    warn_if_readable_by_others(path);
    Ok(SecretCipher::new(&key)?)
}

/// The admin token: the configured one, else `<dir>/admin-token`, generated on first start.
pub fn admin_token(
    dir: &Path,
    configured: Option<AdminToken>,
) -> anyhow::Result<(AdminToken, TokenSource)> {
    if let Some(token) = configured {
        return Ok((token, TokenSource::Configured));
    }
    let path = dir.join(TOKEN_FILE);
    let mut generated = false;
    if !path.exists() {
        let contents = format!("{}\n", generate_token());
        generated = create_once(&path, contents.as_bytes())
            .with_context(|| format!("cannot write the admin token {}", path.display()))?;
    }
    let token = read_token_file(&path)?;
    warn_if_readable_by_others(&path);
    let source = if generated {
        TokenSource::Generated(path)
    } else {
        TokenSource::Reused(path)
    };
    Ok((AdminToken(token), source))
}

/// Reads a token file written by [`admin_token`] (or by hand).
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "the admin token file {} is empty; delete it to have a new one generated",
            path.display()
        );
    }
    Ok(token.to_owned())
}

/// `hrld_` and 32 random bytes in URL-safe base64.
fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("hrld_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Writes `bytes` to `path` (mode 0600) unless it exists: through a temporary
/// file and a hard link, so a crash leaves either no file or a complete one, and
/// two starting servers agree on one. Returns whether this call created it.
fn create_once(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    // A bare file name (a configured `secret_key_file = "herald.key"`) has an
    // empty parent: the working directory.
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file = private_file_options().open(&temp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file_options() -> fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
}

/// Makes a new directory entry durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_generated_once_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/data");
        prepare(&dir).unwrap();
        let first = load_or_create_cipher(&dir.join(KEY_FILE)).unwrap();
        let key = fs::read(dir.join(KEY_FILE)).unwrap();
        assert_eq!(key.len(), KEY_LEN);
        let second = load_or_create_cipher(&dir.join(KEY_FILE)).unwrap();
        assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), key);
        assert_eq!(second.key_check(), first.key_check(), "the same key");
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        }
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(KEY_FILE), [0u8; 31]).unwrap();
        let err = load_or_create_cipher(&tmp.path().join(KEY_FILE))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("31 bytes"), "{err}");
    }

    #[test]
    fn the_admin_token_is_generated_once_and_a_configured_one_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, source) = admin_token(tmp.path(), None).unwrap();
        assert!(matches!(source, TokenSource::Generated(_)));
        assert!(
            first.0.starts_with("hrld_") && first.0.len() == 5 + 43,
            "{}",
            first.0
        );
        let (again, source) = admin_token(tmp.path(), None).unwrap();
        assert!(matches!(source, TokenSource::Reused(_)));
        assert_eq!(again, first);
        #[cfg(unix)]
        assert_eq!(mode(&tmp.path().join(TOKEN_FILE)), 0o600);
        let (configured, source) =
            admin_token(tmp.path(), Some(AdminToken("mine".into()))).unwrap();
        assert!(matches!(source, TokenSource::Configured));
        assert_eq!(configured.0, "mine");
    }
}

//! The data directory: created private, holding the secrets-at-rest key, the
//! generated admin token and the SQLite database. The key and token files are
//! written once, atomically, readable only by their owner, and read back on
//! every later start. A directory or file left open to other users by an older
//! version or by hand is made private at start, or warned about when it cannot
//! be (not its owner, a read-only mount).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_core::cipher::{KEY_LEN, SecretCipher};
use rand::RngCore;

use crate::config::{AdminToken, admin_token_weakness};

pub const DATABASE_FILE: &str = "herald.db";
pub const KEY_FILE: &str = "secret.key";
pub const TOKEN_FILE: &str = "admin-token";

/// Where the admin token came from, for the startup message.
pub enum TokenSource {
    Configured,
    Generated(PathBuf),
    Reused(PathBuf),
}

/// SQLite's files next to the database: the WAL, its shared-memory index,
/// and the rollback journal of a database not (yet) in WAL mode.
const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates the data directory (mode 0700) if it is missing, and takes group
/// and other permissions off one that exists.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    create_private_dir(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    make_private(dir);
    Ok(())
}

/// Makes the SQLite database at `path` private before it is opened: a new one
/// is created empty with mode 0600 (SQLite takes an empty file as a new
/// database), an existing one and its side files lose group and other
/// permissions.
///
/// This is a chmod rather than a umask: SQLite creates the WAL, shared-memory
/// and journal files with the database file's own mode, so a private database
/// file is enough, while a umask would be process-wide, would race with the
/// threads already running, and would change the mode of everything else the
/// process creates (the code monitors' git mirrors among them).
pub fn prepare_sqlite(path: &Path) -> anyhow::Result<()> {
    match private_file_options().open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the SQLite database {}", path.display()));
        }
    }
    make_private(path);
    for suffix in SQLITE_SIDE_FILES {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            make_private(&side);
        }
    }
    Ok(())
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
    make_private(path);
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
    if let Some(weakness) = admin_token_weakness(&token) {
        bail!(
            "{weakness} in {path}. Delete {path} to have a new one generated, or write a random \
             value such as the output of `openssl rand -base64 33` in it",
            path = path.display()
        );
    }
    make_private(&path);
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

/// Takes group and other permissions off `path` (0755 becomes 0700, 0644
/// 0600), keeping the owner's; warns when that is not allowed.
#[cfg(unix)]
fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    let private = mode & !0o077;
    match fs::set_permissions(path, fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            from = format!("{mode:o}"),
            to = format!("{private:o}"),
            "made private: other users could read it"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            %error,
            "other users can read this and it cannot be made private; chmod go-rwx it"
        ),
    }
}

#[cfg(not(unix))]
fn make_private(_path: &Path) {}

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

    #[test]
    fn a_short_token_file_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(TOKEN_FILE), "tiny\n").unwrap();
        let err = admin_token(tmp.path(), None).err().unwrap().to_string();
        assert!(
            err.contains("4 characters") && err.contains("Delete"),
            "{err}"
        );
        assert!(!err.contains("tiny"), "the token is never quoted: {err}");
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_open_data_directory_and_its_files_are_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        let (key, token) = (dir.join(KEY_FILE), dir.join(TOKEN_FILE));
        fs::write(&key, [1u8; KEY_LEN]).unwrap();
        fs::write(&token, format!("{}\n", generate_token())).unwrap();
        let db = dir.join(DATABASE_FILE);
        let wal = dir.join(format!("{DATABASE_FILE}-wal"));
        let shm = dir.join(format!("{DATABASE_FILE}-shm"));
        for file in [&key, &token, &db, &wal, &shm] {
            fs::write(file, b"").unwrap();
            set_mode(file, 0o644);
        }
        fs::write(&key, [1u8; KEY_LEN]).unwrap();
        fs::write(&token, format!("{}\n", generate_token())).unwrap();
        // A read-only key stays read-only: only group and other bits go.
        set_mode(&key, 0o444);

        prepare(&dir).unwrap();
        prepare_sqlite(&db).unwrap();
        load_or_create_cipher(&key).unwrap();
        admin_token(&dir, None).unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&key), 0o400);
        for file in [&token, &db, &wal, &shm] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }

    /// SQLite gives the files it creates next to the database (WAL,
    /// shared-memory index) the database file's mode, whatever the umask.
    #[cfg(unix)]
    #[test]
    fn a_new_database_and_the_files_sqlite_adds_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare(&dir).unwrap();
        let db = dir.join(DATABASE_FILE);
        prepare_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let store =
            herald_sqlite::SqliteStore::open(&db, herald_sqlite::SqliteConfig::default()).unwrap();
        for suffix in ["-wal", "-shm"] {
            let side = dir.join(format!("{DATABASE_FILE}{suffix}"));
            assert!(side.exists(), "{} exists while open", side.display());
            assert_eq!(mode(&side), 0o600, "{}", side.display());
        }
        drop(store);
        assert_eq!(mode(&db), 0o600);
    }
}

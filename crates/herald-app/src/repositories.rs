//! Repositories that code monitors watch: register, list, read, change and
//! delete them; fetch one now. A source is sealed at rest (clone URLs may carry
//! credentials) and shown with its credentials obscured.

use std::time::Duration;

use herald_core::cipher::SealedColumn;
use herald_core::shown_url;
use herald_core::validation::FieldError;
use herald_core::webhook::refuse_control_chars;
use herald_monitor::SourcePolicy;
use herald_store::{
    NewRepository, RepositoryId, RepositoryPatch, RepositoryRecord, RepositoryWrite,
};
use url::Url;

use crate::{App, AppError};

pub const MAX_REPOSITORY_NAME_LEN: usize = 512;
pub const MAX_SOURCE_LEN: usize = 2048;
pub const MAX_BRANCHES: usize = 50;
pub const MAX_BRANCH_LEN: usize = 255;
/// A week: longer than that, a monitor hardly watches.
pub const MAX_FETCH_INTERVAL_SECONDS: u64 = 7 * 24 * 3600;
/// Clone URL schemes git fetches with; anything else (`ext::`, helpers) is refused.
const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

/// A repository to register, as a person or a program gave it.
#[derive(Debug)]
pub struct RepositoryCreate {
    pub name: String,
    /// A clone URL or an absolute local path.
    pub url: String,
    /// `None` watches the default branch.
    pub branches: Option<Vec<String>>,
    /// `None` uses the server's fetch interval.
    pub fetch_interval_seconds: Option<u64>,
}

/// Changes to a repository: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct RepositoryUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    /// `Some(None)` watches the default branch.
    pub branches: Option<Option<Vec<String>>>,
    /// `Some(None)` uses the server's fetch interval.
    pub fetch_interval_seconds: Option<Option<u64>>,
}

/// A source git may fetch from, and how it is shown.
#[derive(Debug)]
struct Source {
    /// As given (trimmed): what git fetches from, credentials and all.
    fetch_from: String,
    /// With a URL's credentials obscured.
    display: String,
}

impl Source {
    fn seal(self, id: RepositoryId, app: &App) -> (String, Vec<u8>) {
        let at = SealedColumn::RepositorySource.of(id.as_uuid());
        let sealed = app.cipher().seal(self.fetch_from.as_bytes(), &at);
        (self.display, sealed)
    }
}

fn validate_repository_name(name: &str) -> Result<String, FieldError> {
    refuse_control_chars("name", name)?;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_REPOSITORY_NAME_LEN {
        return Err(FieldError::new(
            "name",
            format!("must be 1 to {MAX_REPOSITORY_NAME_LEN} bytes, such as github.com/owner/name"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Every rule a repository's source must follow, in one place: whatever git
/// is allowed to fetch from is decided here.
fn validate_source(text: &str, sources: &SourcePolicy) -> Result<Source, FieldError> {
    let invalid = |message: &str| FieldError::new("url", message.to_owned());
    refuse_control_chars("url", text)?;
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_SOURCE_LEN {
        return Err(invalid(&format!("must be 1 to {MAX_SOURCE_LEN} bytes")));
    }
    // Git would read a leading '-' as an option.
    if text.starts_with('-') {
        return Err(invalid("must not start with '-'"));
    }
    // The server's source policy has the last word: the address guard, ssh,
    // local roots. Each fetch checks again, as names can resolve differently.
    sources
        .check(text)
        .map_err(|refused| invalid(&refused.to_string()))?;
    if let Some((scheme, _)) = text.split_once("://") {
        if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(invalid(&format!(
                "scheme {scheme:?} is not one git fetches with here; use {}",
                SCHEMES.join(", ")
            )));
        }
        let url = Url::parse(text).map_err(|e| invalid(&format!("is not a valid URL: {e}")))?;
        return Ok(Source {
            fetch_from: text.to_owned(),
            display: shown_url::obscure(&url),
        });
    }
    if text.contains("::") {
        return Err(invalid(
            "remote helpers (`<transport>::<address>`) are not allowed",
        ));
    }
    let scp_like = text
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'));
    if scp_like || text.starts_with('/') {
        Ok(Source {
            fetch_from: text.to_owned(),
            display: text.to_owned(),
        })
    } else {
        Err(invalid(
            "must be a clone URL (https://, ssh://, git@host:path, ...) or an absolute path",
        ))
    }
}

fn validate_branches(branches: Option<&[String]>) -> Result<Option<Vec<String>>, FieldError> {
    let Some(branches) = branches else {
        return Ok(None);
    };
    if branches.is_empty() || branches.len() > MAX_BRANCHES {
        return Err(FieldError::new(
            "branches",
            format!("list 1 to {MAX_BRANCHES} branches, or use null for the default branch"),
        ));
    }
    branches
        .iter()
        .enumerate()
        .map(|(i, branch)| validate_branch(i, branch))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The rules of `git check-ref-format` that matter here, plus no leading '-'
/// (git would read an option).
fn validate_branch(index: usize, branch: &str) -> Result<String, FieldError> {
    let field = format!("branches[{index}]");
    refuse_control_chars(&field, branch)?;
    let forbidden = |c: char| c.is_whitespace() || "~^:?*[\\".contains(c);
    let well_formed = !branch.is_empty()
        && branch.len() <= MAX_BRANCH_LEN
        && !branch.starts_with('-')
        && !branch.contains("..")
        && !branch.chars().any(forbidden);
    if !well_formed {
        return Err(FieldError::new(
            field,
            format!(
                "{branch:?} is not a branch name (1 to {MAX_BRANCH_LEN} bytes, no spaces, `..` or ~^:?*[\\)"
            ),
        ));
    }
    Ok(branch.to_owned())
}

fn validate_interval(seconds: Option<u64>) -> Result<Option<Duration>, FieldError> {
    match seconds {
        None => Ok(None),
        Some(s) if (1..=MAX_FETCH_INTERVAL_SECONDS).contains(&s) => {
            Ok(Some(Duration::from_secs(s)))
        }
        Some(_) => Err(FieldError::new(
            "fetch_interval_seconds",
            format!("must be 1 to {MAX_FETCH_INTERVAL_SECONDS}, or null for the server's default"),
        )),
    }
}

impl RepositoryCreate {
    fn validate(self, app: &App) -> Result<NewRepository, FieldError> {
        let sources = &app.monitor_service().config().sources;
        let id = RepositoryId::new();
        let (source_display, source_sealed) = validate_source(&self.url, sources)?.seal(id, app);
        Ok(NewRepository {
            id,
            name: validate_repository_name(&self.name)?,
            source_display,
            source_sealed,
            branches: validate_branches(self.branches.as_deref())?,
            fetch_interval: validate_interval(self.fetch_interval_seconds)?,
        })
    }
}

impl RepositoryUpdate {
    /// Validates every present field and seals the source.
    fn into_patch(self, id: RepositoryId, app: &App) -> Result<RepositoryPatch, FieldError> {
        let sources = &app.monitor_service().config().sources;
        let source = self
            .url
            .as_deref()
            .map(|url| validate_source(url, sources))
            .transpose()?;
        Ok(RepositoryPatch {
            name: self
                .name
                .as_deref()
                .map(validate_repository_name)
                .transpose()?,
            source: source.map(|source| source.seal(id, app)),
            branches: self
                .branches
                .map(|b| validate_branches(b.as_deref()))
                .transpose()?,
            fetch_interval: self
                .fetch_interval_seconds
                .map(validate_interval)
                .transpose()?,
        })
    }
}

fn saved(write: RepositoryWrite, id: RepositoryId) -> Result<RepositoryRecord, AppError> {
    match write {
        RepositoryWrite::Saved(record) => Ok(record),
        RepositoryWrite::NameTaken => Err(AppError::conflict(
            "name_taken",
            "name",
            "another repository has this name; names are unique",
        )),
        RepositoryWrite::NotFound => Err(AppError::not_found("repository", id)),
    }
}

impl App {
    /// Registers a repository; its first fetch starts in the background.
    pub async fn create_repository(
        &self,
        input: RepositoryCreate,
    ) -> Result<RepositoryRecord, AppError> {
        let new = input.validate(self)?;
        let id = new.id;
        let service = &self.inner.monitors;
        let record = saved(service.store().create_repository(new).await?, id)?;
        service.sync_soon(record.id);
        service.repositories_changed();
        Ok(record)
    }

    /// Every watched repository, oldest first.
    pub async fn list_repositories(&self) -> Result<Vec<RepositoryRecord>, AppError> {
        Ok(self.inner.monitors.store().list_repositories().await?)
    }

    pub async fn repository(&self, id: RepositoryId) -> Result<RepositoryRecord, AppError> {
        self.inner
            .monitors
            .store()
            .get_repository(id)
            .await?
            .ok_or_else(|| AppError::not_found("repository", id))
    }

    /// A new name, source or branch list makes the next fetch every monitor's
    /// new starting point, so that fetch is started at once.
    pub async fn update_repository(
        &self,
        id: RepositoryId,
        input: RepositoryUpdate,
    ) -> Result<RepositoryRecord, AppError> {
        let patch = input.into_patch(id, self)?;
        let starts_afresh =
            patch.name.is_some() || patch.source.is_some() || patch.branches.is_some();
        let service = &self.inner.monitors;
        let record = saved(service.store().update_repository(id, patch).await?, id)?;
        if starts_afresh {
            service.sync_soon(id);
        }
        service.repositories_changed();
        Ok(record)
    }

    /// Deletes the repository with what each monitor had searched in it; the
    /// monitors' runs stay.
    pub async fn delete_repository(&self, id: RepositoryId) -> Result<(), AppError> {
        let service = &self.inner.monitors;
        if !service.store().delete_repository(id).await? {
            return Err(AppError::not_found("repository", id));
        }
        service.repositories_changed();
        Ok(())
    }

    /// Fetches and searches the repository now (after a fetch under way). A
    /// failed fetch is recorded in the repository's `last_error`, not returned.
    pub async fn fetch_repository(&self, id: RepositoryId) -> Result<RepositoryRecord, AppError> {
        self.inner
            .monitors
            .sync_repository(id)
            .await?
            .ok_or_else(|| AppError::not_found("repository", id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ssh on, and local repositories under /srv/git.
    fn permissive() -> SourcePolicy {
        SourcePolicy {
            local_roots: vec!["/srv/git".into()],
            allow_ssh: true,
            ..SourcePolicy::default()
        }
    }

    #[test]
    fn the_source_policy_refuses_with_the_remedy() {
        let defaults = SourcePolicy::default();
        for (bad, remedy) in [
            ("http://127.0.0.1:8080/x.git", "--allow-cidr"),
            ("http://169.254.169.254/latest", "--allow-cidr"),
            ("/srv/git/api", "local_roots"),
            ("file:///srv/git/api", "local_roots"),
            ("git@github.com:acme/api.git", "allow_ssh"),
            ("git://github.com/acme/api.git", "https://"),
        ] {
            let error = validate_source(bad, &defaults).unwrap_err();
            assert_eq!(error.field, "url");
            assert!(error.message.contains(remedy), "{bad}: {}", error.message);
        }
    }

    #[test]
    fn sources_are_urls_scp_paths_or_absolute_paths() {
        for ok in [
            "https://github.com/acme/api.git",
            "ssh://git@github.com/acme/api.git",
            "git@github.com:acme/api.git",
            "/srv/git/api",
            "file:///srv/git/api",
        ] {
            assert!(validate_source(ok, &permissive()).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "relative/path",
            "-uhelp",
            "ext::sh -c evil",
            "ftp://host/x",
            "fd::17",
        ] {
            assert!(validate_source(bad, &permissive()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_obscured_for_display() {
        let source =
            validate_source("https://bot:s3cret@git.example.com/a.git", &permissive()).unwrap();
        assert_eq!(
            source.fetch_from,
            "https://bot:s3cret@git.example.com/a.git"
        );
        assert_eq!(source.display, "https://***:***@git.example.com/a.git");
        let token =
            validate_source("https://ghp_token@github.com/acme/api.git", &permissive()).unwrap();
        assert_eq!(token.display, "https://***@github.com/acme/api.git");
        let ssh = validate_source("ssh://git@github.com/acme/api.git", &permissive()).unwrap();
        assert_eq!(ssh.display, "ssh://git@github.com/acme/api.git");
    }

    #[test]
    fn branch_names_follow_git_rules() {
        assert!(
            validate_branches(Some(&["main".to_owned(), "refs/heads/rel-1.2".to_owned()])).is_ok()
        );
        for bad in ["", "a b", "a..b", "-x", "a:b", "a~1"] {
            let error = validate_branches(Some(&[bad.to_owned()])).unwrap_err();
            assert_eq!(error.field, "branches[0]", "{bad:?}");
        }
        assert!(validate_branches(Some(&[])).is_err());
    }
}

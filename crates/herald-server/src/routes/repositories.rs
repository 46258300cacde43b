//! `/api/v1/repositories`: the repositories code monitors watch. Register,
//! list, read, change and delete them; fetch one now.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_core::cipher::SecretCipher;
use herald_core::shown_url;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::refuse_control_chars;
use herald_monitors_service::MonitorService;
use herald_store::{
    NewRepository, RepositoryId, RepositoryPatch, RepositoryRecord, RepositoryWrite,
};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};

pub const MAX_REPOSITORY_NAME_LEN: usize = 512;
pub const MAX_SOURCE_LEN: usize = 2048;
pub const MAX_BRANCHES: usize = 50;
pub const MAX_BRANCH_LEN: usize = 255;
/// A week: longer than that, a monitor hardly watches.
pub const MAX_FETCH_INTERVAL_SECONDS: u64 = 7 * 24 * 3600;
/// Clone URL schemes git fetches with; anything else (`ext::`, helpers) is refused.
const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

/// A watched repository as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Repository {
    #[schema(value_type = String, format = Uuid)]
    pub id: RepositoryId,
    /// What `repo:` filters match and results name.
    #[schema(example = "github.com/acme/api")]
    pub name: String,
    /// The clone URL or local path; credentials show as `***`.
    #[schema(example = "https://***:***@github.com/acme/api.git")]
    pub url: String,
    /// The watched branches; null watches the default branch.
    pub branches: Option<Vec<String>>,
    /// How often it is fetched; null uses the server's `monitors.fetch_interval`.
    pub fetch_interval_seconds: Option<u64>,
    /// The watched branches' heads (ref → commit) at the last successful
    /// fetch; null before one.
    pub heads: Option<BTreeMap<String, String>>,
    /// When the last fetch, successful or not, finished.
    pub last_fetched_at: Option<Timestamp>,
    /// Why the last fetch failed; null after a success.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<RepositoryRecord> for Repository {
    fn from(record: RepositoryRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            url: record.source_display,
            branches: record.branches,
            fetch_interval_seconds: record.fetch_interval.map(|d| d.as_secs()),
            heads: record.heads,
            last_fetched_at: record.last_fetched_at,
            last_error: record.last_error,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryList {
    /// Oldest first.
    pub items: Vec<Repository>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepository {
    /// Unique, 1 to 512 bytes, such as `github.com/owner/name`: pushes that
    /// receivers normalize name repositories this way.
    pub name: String,
    /// A clone URL (`https`, `http`, `ssh`, `git`, `file`, or scp-like
    /// `git@host:path`) or an absolute local path. Credentials in the URL are
    /// sealed at rest and never shown.
    pub url: String,
    /// Branches to watch, such as `main` or `refs/heads/release`; omitted or
    /// null watches the default branch.
    #[serde(default)]
    pub branches: Option<Vec<String>>,
    /// 1 to 604800; omitted or null uses the server's default (5 minutes).
    #[serde(default)]
    pub fetch_interval_seconds: Option<u64>,
}

/// Changes the fields present. A new name, URL or branch list starts every
/// monitor afresh on this repository: commits before the next fetch are not
/// reported.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepository {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub url: Option<String>,
    /// null watches the default branch.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub branches: Option<Option<Vec<String>>>,
    /// null uses the server's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub fetch_interval_seconds: Option<Option<u64>>,
}

/// Marks a field as present: absent is `None`, `null` is `Some(None)` for
/// optional fields and an error otherwise.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

pub(crate) fn validate_repository_name(name: &str) -> Result<String, FieldError> {
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

/// The source, and how it is shown: a URL with its credentials and tokens obscured.
fn validate_source(text: &str) -> Result<(String, String), FieldError> {
    let invalid = |message: &str| FieldError::new("url", message.to_owned());
    refuse_control_chars("url", text)?;
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_SOURCE_LEN {
        return Err(invalid(&format!("must be 1 to {MAX_SOURCE_LEN} bytes")));
    }
    if text.starts_with('-') {
        return Err(invalid("must not start with '-'"));
    }
    if let Some((scheme, _)) = text.split_once("://") {
        if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(invalid(&format!(
                "scheme {scheme:?} is not one git fetches with here; use {}",
                SCHEMES.join(", ")
            )));
        }
        let url = Url::parse(text).map_err(|e| invalid(&format!("is not a valid URL: {e}")))?;
        return Ok((text.to_owned(), shown_url::obscure(&url)));
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
        Ok((text.to_owned(), text.to_owned()))
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
    let mut valid = Vec::with_capacity(branches.len());
    for (i, branch) in branches.iter().enumerate() {
        let field = format!("branches[{i}]");
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
        valid.push(branch.clone());
    }
    Ok(Some(valid))
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

impl CreateRepository {
    fn validate(self, cipher: &SecretCipher) -> Result<NewRepository, FieldError> {
        let (source, display) = validate_source(&self.url)?;
        Ok(NewRepository {
            id: RepositoryId::new(),
            name: validate_repository_name(&self.name)?,
            source_display: display,
            source_sealed: cipher.seal(source.as_bytes()),
            branches: validate_branches(self.branches.as_deref())?,
            fetch_interval: validate_interval(self.fetch_interval_seconds)?,
        })
    }
}

impl UpdateRepository {
    fn into_patch(self, cipher: &SecretCipher) -> Result<RepositoryPatch, FieldError> {
        let source = self.url.as_deref().map(validate_source).transpose()?;
        Ok(RepositoryPatch {
            name: self
                .name
                .as_deref()
                .map(validate_repository_name)
                .transpose()?,
            source: source.map(|(source, display)| (display, cipher.seal(source.as_bytes()))),
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

/// The monitor service, or a 503 when this server runs without it.
pub(crate) fn monitors(app: &AppState) -> Result<&MonitorService, ApiError> {
    app.monitors
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("code monitors are not enabled on this server"))
}

fn saved(write: RepositoryWrite, id: Option<RepositoryId>) -> Result<RepositoryRecord, ApiError> {
    match write {
        RepositoryWrite::Saved(record) => Ok(record),
        RepositoryWrite::NameTaken => Err(ApiError::conflict(
            "name_taken",
            "name",
            "another repository has this name; names are unique",
        )),
        RepositoryWrite::NotFound => Err(ApiError::not_found(
            "repository",
            id.map_or_else(String::new, |id| id.to_string()),
        )),
    }
}

#[utoipa::path(
    post, path = "/api/v1/repositories", tag = "code monitors",
    request_body = CreateRepository,
    responses(
        (status = 201, description = "Registered; the first fetch starts in the background. Monitors report only commits fetched after it.", body = Repository),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "Another repository has this name: `name_taken`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn create_repository(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateRepository>,
) -> Result<(StatusCode, Json<Repository>), ApiError> {
    let service = monitors(&app)?;
    let new = request
        .validate(&app.cipher)
        .map_err(ApiError::invalid_field)?;
    let record = saved(service.store().create_repository(new).await?, None)?;
    service.sync_soon(record.id);
    service.repositories_changed();
    Ok((StatusCode::CREATED, Json(record.into())))
}

#[utoipa::path(
    get, path = "/api/v1/repositories", tag = "code monitors",
    responses(
        (status = 200, description = "Every watched repository, oldest first", body = RepositoryList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_repositories(
    State(app): State<AppState>,
) -> Result<Json<RepositoryList>, ApiError> {
    let records = monitors(&app)?.store().list_repositories().await?;
    Ok(Json(RepositoryList {
        items: records.into_iter().map(Repository::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/repositories/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    responses(
        (status = 200, description = "The repository, with its last fetch's heads or error", body = Repository),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn get_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<Json<Repository>, ApiError> {
    let record = monitors(&app)?
        .store()
        .get_repository(id)
        .await?
        .ok_or_else(|| ApiError::not_found("repository", id))?;
    Ok(Json(record.into()))
}

#[utoipa::path(
    patch, path = "/api/v1/repositories/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    request_body = UpdateRepository,
    responses(
        (status = 200, description = "The updated repository. A new name, URL or branch list makes the next fetch every monitor's new starting point.", body = Repository),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 409, description = "Another repository has this name: `name_taken`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn update_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
    ApiJson(request): ApiJson<UpdateRepository>,
) -> Result<Json<Repository>, ApiError> {
    let service = monitors(&app)?;
    let patch = request
        .into_patch(&app.cipher)
        .map_err(ApiError::invalid_field)?;
    let starts_afresh = patch.name.is_some() || patch.source.is_some() || patch.branches.is_some();
    let record = saved(
        service.store().update_repository(id, patch).await?,
        Some(id),
    )?;
    if starts_afresh {
        service.sync_soon(id);
    }
    service.repositories_changed();
    Ok(Json(record.into()))
}

#[utoipa::path(
    delete, path = "/api/v1/repositories/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    responses(
        (status = 204, description = "Deleted, with what each monitor had searched in it; monitors' runs stay"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn delete_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<StatusCode, ApiError> {
    let service = monitors(&app)?;
    if !service.store().delete_repository(id).await? {
        return Err(ApiError::not_found("repository", id));
    }
    service.repositories_changed();
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/repositories/{id}/fetch", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    responses(
        (status = 200, description = "Fetched and searched now (waiting for a fetch under way first). A failed fetch is in `last_error`, not an error status.", body = Repository),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn fetch_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<Json<Repository>, ApiError> {
    let record = monitors(&app)?
        .sync_repository(id)
        .await?
        .ok_or_else(|| ApiError::not_found("repository", id))?;
    Ok(Json(record.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_scp_paths_or_absolute_paths() {
        for ok in [
            "https://github.com/acme/api.git",
            "ssh://git@github.com/acme/api.git",
            "git@github.com:acme/api.git",
            "/srv/git/api",
            "file:///srv/git/api",
        ] {
            assert!(validate_source(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "relative/path",
            "-uhelp",
            "ext::sh -c evil",
            "ftp://host/x",
            "fd::17",
        ] {
            assert!(validate_source(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_obscured_for_display() {
        let (source, shown) = validate_source("https://bot:s3cret@git.example.com/a.git").unwrap();
        assert_eq!(source, "https://bot:s3cret@git.example.com/a.git");
        assert_eq!(shown, "https://***:***@git.example.com/a.git");
        let (_, token) = validate_source("https://ghp_token@github.com/acme/api.git").unwrap();
        assert_eq!(token, "https://***@github.com/acme/api.git");
        let (_, ssh) = validate_source("ssh://git@github.com/acme/api.git").unwrap();
        assert_eq!(ssh, "ssh://git@github.com/acme/api.git");
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

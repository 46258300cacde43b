//! `/api/v1/repositories`: the repositories code monitors watch. Register,
//! list, read, change and delete them; fetch one now.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_app::repositories::{RepositoryCreate, RepositoryUpdate};
use herald_core::time::Timestamp;
use herald_store::{RepositoryId, RepositoryRecord};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Admin, routes!(create_repository))
        .add(Access::Read, routes!(list_repositories))
        .add(Access::Read, routes!(get_repository))
        .add(Access::Admin, routes!(update_repository))
        .add(Access::Admin, routes!(delete_repository))
        .add(Access::Admin, routes!(fetch_repository))
}

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
    /// A clone URL (`https`, `http`; `ssh` or scp-like `git@host:path` where
    /// the server allows ssh) or, under the server's `monitors.local_roots`,
    /// an absolute local path or `file` URL. The host must pass the same
    /// address guard as webhooks (`--allow-cidr`). Credentials in the URL are
    /// sealed at rest, never shown, and reach git only when it asks for them.
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

impl From<CreateRepository> for RepositoryCreate {
    fn from(request: CreateRepository) -> Self {
        Self {
            name: request.name,
            url: request.url,
            branches: request.branches,
            fetch_interval_seconds: request.fetch_interval_seconds,
        }
    }
}

impl From<UpdateRepository> for RepositoryUpdate {
    fn from(request: UpdateRepository) -> Self {
        Self {
            name: request.name,
            url: request.url,
            branches: request.branches,
            fetch_interval_seconds: request.fetch_interval_seconds,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/repositories", tag = "code monitors",
    request_body = CreateRepository,
    responses(
        (status = 201, description = "Registered; the first fetch starts in the background. Monitors report only commits fetched after it.", body = Repository),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 409, description = "Another repository has this name: `name_taken`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn create_repository(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateRepository>,
) -> Result<(StatusCode, Json<Repository>), ApiError> {
    let record = app.app().create_repository(request.into()).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

#[utoipa::path(
    get, path = "/api/v1/repositories", tag = "code monitors",
    responses(
        (status = 200, description = "Every watched repository, oldest first", body = RepositoryList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn list_repositories(
    State(app): State<AppState>,
) -> Result<Json<RepositoryList>, ApiError> {
    let records = app.app().list_repositories().await?;
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
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn get_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<Json<Repository>, ApiError> {
    Ok(Json(app.app().repository(id).await?.into()))
}

#[utoipa::path(
    patch, path = "/api/v1/repositories/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    request_body = UpdateRepository,
    responses(
        (status = 200, description = "The updated repository. A new name, URL or branch list makes the next fetch every monitor's new starting point.", body = Repository),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 409, description = "Another repository has this name: `name_taken`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
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
    let record = app.app().update_repository(id, request.into()).await?;
    Ok(Json(record.into()))
}

#[utoipa::path(
    delete, path = "/api/v1/repositories/{id}", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    responses(
        (status = 204, description = "Deleted, with what each monitor had searched in it; monitors' runs stay"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn delete_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<StatusCode, ApiError> {
    app.app().delete_repository(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/repositories/{id}/fetch", tag = "code monitors",
    params(("id" = String, Path, format = Uuid, description = "The repository's id")),
    responses(
        (status = 200, description = "Fetched and searched now (waiting for a fetch under way first). A failed fetch is in `last_error`, not an error status.", body = Repository),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 503, description = "Code monitors are not enabled on this server", body = ErrorBody),
    )
)]
pub async fn fetch_repository(
    State(app): State<AppState>,
    IdPath(id): IdPath<RepositoryId>,
) -> Result<Json<Repository>, ApiError> {
    Ok(Json(app.app().fetch_repository(id).await?.into()))
}

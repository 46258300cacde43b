//! `/api/v1/tokens`: create, list and revoke API tokens (admin scope only). A
//! token is shown once, in the answer that creates it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_app::tokens::TokenCreate;
use herald_core::id::TokenId;
use herald_core::time::Timestamp;
use herald_store::TokenRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Admin, routes!(create_token))
        .add(Access::Admin, routes!(list_tokens))
        .add(Access::Admin, routes!(revoke_token))
}

/// An API token as the API shows it: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: TokenId,
    pub name: String,
    /// `admin`, `read`, `publish` or `project:<key>`.
    #[schema(example = "project:payments")]
    pub scope: String,
    pub created_at: Timestamp,
    /// The last request made with the token, to within a minute; null if never used.
    pub last_used_at: Option<Timestamp>,
    /// Null: the token never expires.
    pub expires_at: Option<Timestamp>,
}

impl From<&TokenRecord> for Token {
    fn from(record: &TokenRecord) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            scope: record.scope.clone(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            expires_at: record.expires_at,
        }
    }
}

/// A token just created, with the token: the only answer that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenWithSecret {
    #[serde(flatten)]
    pub token_info: Token,
    /// Send as `Authorization: Bearer <token>`. Herald keeps only its SHA-256
    /// digest and cannot show it again.
    #[schema(example = "hrld_V2hhdCBhIGZpbmUgdG9rZW4geW91IGhhdmUgdGhlcmUh")]
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Oldest first, expired tokens included.
    pub items: Vec<Token>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 100 characters, e.g. what uses the token.
    pub name: String,
    /// `admin` (everything), `read` (everything but secrets and tokens),
    /// `publish` (publishing events only) or `project:<key>` (that project's
    /// webhooks and their deliveries).
    #[schema(example = "publish")]
    pub scope: String,
    /// A positive whole number and a unit (`s`, `m`, `h`, `d`), at most
    /// `3650d`; omitted or null: the token never expires.
    #[serde(default)]
    #[schema(example = "30d")]
    pub expires_in: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created. The token is in this answer only.", body = TokenWithSecret),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token's scope does not allow this: `forbidden`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    Caller(by): Caller,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenWithSecret>), ApiError> {
    let input = TokenCreate {
        name: request.name,
        scope: request.scope,
        expires_in: request.expires_in,
    };
    let created = state.app().create_token(&by, input).await?;
    let answer = TokenWithSecret {
        token_info: Token::from(&created.record),
        token: created.token.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Every token, oldest first; never the tokens themselves", body = TokenList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token's scope does not allow this: `forbidden`", body = ErrorBody),
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(by): Caller,
) -> Result<Json<TokenList>, ApiError> {
    let records = state.app().list_tokens(&by).await?;
    Ok(Json(TokenList {
        items: records.iter().map(Token::from).collect(),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = TokenId, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked: from the next request on, the token is refused with 401 on every node"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token's scope does not allow this: `forbidden`", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<TokenId>,
) -> Result<StatusCode, ApiError> {
    state.app().revoke_token(&by, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

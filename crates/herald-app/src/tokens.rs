//! API tokens and scopes: who may do what.
//!
//! A caller is a [`Principal`]: the configured admin token, or an API token
//! with one [`Scope`]. Each operation states the [`Permission`] it needs, and
//! the webhook and delivery operations also confine a `project:<key>` token to
//! that project's webhooks (others answer 404, as if they did not exist), so
//! every front end applies the same rules.
//!
//! Tokens are `hrld_` and 32 random bytes, shown once at creation and stored
//! as their SHA-256 digest. Every presented token is looked up in the store
//! (no cache), so a revocation takes effect on every node at once. A use is
//! recorded at most once a minute per token and node, off the request's path.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use herald_core::api_token::{self, ApiToken};
use herald_core::signing::tokens_equal;
use herald_core::validation::FieldError;
use herald_core::webhook::{validate_name, validate_project};
use herald_store::{LAST_USED_GRANULARITY, NewToken, TokenId, TokenRecord, WebhookRecord};
use tokio::time::Instant;

use crate::{App, AppError};

/// The longest lifetime a token may be given: ten years.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything, secrets and tokens included.
    Admin,
    /// Reading everything except secrets and the token list.
    Read,
    /// Publishing events, and nothing else.
    Publish,
    /// Managing and reading this project's webhooks and their deliveries.
    Project(String),
}

impl Scope {
    /// `admin`, `read`, `publish` or `project:<key>`.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text {
            "admin" => Ok(Self::Admin),
            "read" => Ok(Self::Read),
            "publish" => Ok(Self::Publish),
            _ => match text.strip_prefix("project:") {
                Some(key) => match validate_project(Some(key)) {
                    Ok(Some(key)) => Ok(Self::Project(key)),
                    Ok(None) | Err(_) => Err(FieldError::new(
                        "scope",
                        format!("scope project:<key> needs a valid project key; got {text:?}"),
                    )),
                },
                None => Err(FieldError::new(
                    "scope",
                    format!("scope must be admin, read, publish or project:<key>; got {text:?}"),
                )),
            },
        }
    }

    fn permits(&self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Self::Admin => true,
            Self::Read => matches!(permission, P::Read | P::ReadWebhooks),
            Self::Publish => matches!(permission, P::Publish),
            Self::Project(_) => matches!(permission, P::ReadWebhooks | P::ManageWebhooks),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Read => f.write_str("read"),
            Self::Publish => f.write_str("publish"),
            Self::Project(key) => write!(f, "project:{key}"),
        }
    }
}

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reading anything but secrets and tokens.
    Read,
    Publish,
    /// Secrets, tokens, and everything not scoped to a project.
    Admin,
    /// Reading webhooks and deliveries (a project token: its project's).
    ReadWebhooks,
    /// Changing webhooks, reading their secrets, redelivering (a project
    /// token: its project's).
    ManageWebhooks,
}

impl Permission {
    /// The scopes that grant it, as a refusal names them.
    fn needed(self) -> &'static str {
        match self {
            Self::Read => "the read scope",
            Self::Publish => "the publish scope",
            Self::Admin => "the admin scope",
            Self::ReadWebhooks => "the read scope (or a project:<key> scope)",
            Self::ManageWebhooks => "the admin scope (or a project:<key> scope)",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `None` for the configured admin token.
    pub token: Option<TokenId>,
    pub scope: Scope,
}

impl Principal {
    /// The admin token from the environment, the config file or the token file.
    pub fn admin_token() -> Self {
        Self {
            token: None,
            scope: Scope::Admin,
        }
    }

    /// Refuses with 403 `forbidden`, naming the scope needed, unless the
    /// principal's scope grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        self.require_for(permission, "this")
    }

    /// [`Principal::require`], with the refusal saying what `action` (e.g.
    /// `POST /api/v1/events`) needs. The action is only written out for a
    /// refusal: a front end checks every request.
    pub fn require_for(
        &self,
        permission: Permission,
        action: impl std::fmt::Display,
    ) -> Result<(), AppError> {
        if self.scope.permits(permission) {
            return Ok(());
        }
        Err(AppError::forbidden(format!(
            "{action} needs {}; the token has the {} scope",
            permission.needed(),
            self.scope
        )))
    }

    /// The project a `project:<key>` token is confined to.
    pub fn project(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project(key) => Some(key),
            _ => None,
        }
    }

    /// Whether the webhook is within the principal's reach.
    pub(crate) fn sees(&self, webhook: &WebhookRecord) -> bool {
        self.project()
            .is_none_or(|key| webhook.project.as_deref() == Some(key))
    }

    /// Refuses to put a webhook in `project` (`None`: global) unless the
    /// principal may manage webhooks there.
    pub(crate) fn may_place_in(&self, project: Option<&str>) -> Result<(), AppError> {
        match self.project() {
            Some(key) if project != Some(key) => Err(AppError::forbidden(format!(
                "a project:{key} token manages only project {key:?}'s webhooks; set \"project\": {key:?}, or use a token with the admin scope"
            ))),
            _ => Ok(()),
        }
    }
}

/// A token to create, as a person or a program gave it.
#[derive(Debug)]
pub struct TokenCreate {
    /// 1 to 100 characters.
    pub name: String,
    /// `admin`, `read`, `publish` or `project:<key>`.
    pub scope: String,
    /// A whole number and a unit, `s`, `m`, `h` or `d` (`30d`); `None` never expires.
    pub expires_in: Option<String>,
}

/// A token just created: the only time it is shown.
#[derive(Debug)]
pub struct CreatedToken {
    pub record: TokenRecord,
    pub token: ApiToken,
}

/// When each token's last use was sent to the store from this node, so a
/// busy token costs one write a minute, not one per request.
#[derive(Debug, Default)]
pub(crate) struct UseRecorder {
    sent: Mutex<HashMap<TokenId, Instant>>,
}

impl UseRecorder {
    /// Whether a use of `id` should be written now; notes that it is.
    fn due(&self, id: TokenId) -> bool {
        let now = Instant::now();
        // A poisoned map only means another request panicked mid-update;
        // the times in it are still good.
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        match sent.get(&id) {
            Some(at) if now.duration_since(*at) < LAST_USED_GRANULARITY => false,
            _ => {
                sent.insert(id, now);
                true
            }
        }
    }

    fn forget(&self, id: TokenId) {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// `30d`, `12h`, `90m` or `3600s`: a positive whole number and a unit.
pub fn parse_expires_in(text: &str) -> Result<Duration, FieldError> {
    let invalid = || {
        FieldError::new(
            "expires_in",
            format!(
                "expires_in must be a positive whole number and a unit (s, m, h or d), at most 3650d, such as 30d; got {text:?}"
            ),
        )
    };
    let unit_len = text.chars().next_back().map_or(0, char::len_utf8);
    let (number, unit) = text.split_at(text.len() - unit_len);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let count: u64 = number.parse().map_err(|_| invalid())?;
    let duration = Duration::from_secs(count.checked_mul(seconds_per_unit).ok_or_else(invalid)?);
    if duration.is_zero() || duration > MAX_EXPIRES_IN {
        return Err(invalid());
    }
    Ok(duration)
}

struct ValidToken {
    name: String,
    scope: Scope,
    expires_in: Option<Duration>,
}

impl TokenCreate {
    fn validate(self) -> Result<ValidToken, FieldError> {
        Ok(ValidToken {
            name: validate_name(&self.name)?,
            scope: Scope::parse(&self.scope)?,
            expires_in: self
                .expires_in
                .as_deref()
                .map(parse_expires_in)
                .transpose()?,
        })
    }
}

impl App {
    pub async fn create_token(
        &self,
        by: &Principal,
        input: TokenCreate,
    ) -> Result<CreatedToken, AppError> {
        by.require(Permission::Admin)?;
        let valid = input.validate()?;
        let token = ApiToken::generate();
        let new = NewToken {
            id: TokenId::new(),
            name: valid.name,
            digest: token.digest(),
            scope: valid.scope.to_string(),
            expires_in: valid.expires_in,
        };
        let record = self.token_store().create_token(new).await?;
        tracing::info!(token = %record.id, name = %record.name, scope = %record.scope, "API token created");
        Ok(CreatedToken { record, token })
    }

    /// Every token, expired ones included, oldest first; never a token itself.
    pub async fn list_tokens(&self, by: &Principal) -> Result<Vec<TokenRecord>, AppError> {
        by.require(Permission::Admin)?;
        Ok(self.token_store().list_tokens().await?)
    }

    /// Deletes the token: from the next request on, on every node, it is
    /// unknown.
    pub async fn revoke_token(&self, by: &Principal, id: TokenId) -> Result<(), AppError> {
        by.require(Permission::Admin)?;
        if !self.token_store().revoke_token(id).await? {
            return Err(AppError::not_found("token", id));
        }
        self.inner.token_uses.forget(id);
        tracing::info!(token = %id, "API token revoked");
        Ok(())
    }

    /// The principal a presented API token stands for; `None` for anything
    /// that is not a live token (unknown, revoked, expired, or not one at all).
    pub async fn authenticate_token(&self, presented: &str) -> Result<Option<Principal>, AppError> {
        if !api_token::looks_like_token(presented) {
            return Ok(None);
        }
        let digest = api_token::digest(presented);
        let Some(record) = self.token_store().find_token(&digest).await? else {
            return Ok(None);
        };
        // The index matched the digest; comparing it again in constant time
        // keeps the decision itself free of data-dependent exits.
        if !tokens_equal(&record.digest, &digest) {
            return Ok(None);
        }
        let scope = Scope::parse(&record.scope)
            .map_err(|e| AppError::internal("a stored token scope does not parse", &e))?;
        self.record_use(record.id);
        Ok(Some(Principal {
            token: Some(record.id),
            scope,
        }))
    }

    /// Writes the use in the background, at most once a minute per token
    /// from this node; the request does not wait for it.
    fn record_use(&self, id: TokenId) {
        if !self.inner.token_uses.due(id) {
            return;
        }
        let store = self.inner.tokens.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(id).await {
                tracing::warn!(token = %id, %error, "could not record an API token's use");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        for text in ["admin", "read", "publish", "project:payments"] {
            assert_eq!(Scope::parse(text).unwrap().to_string(), text);
        }
        for text in ["", "Admin", "write", "project:", "project"] {
            assert!(Scope::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn each_scope_grants_only_its_permissions() {
        use Permission as P;
        let all = [
            P::Read,
            P::Publish,
            P::Admin,
            P::ReadWebhooks,
            P::ManageWebhooks,
        ];
        let granted = |scope: Scope| -> Vec<Permission> {
            all.into_iter().filter(|p| scope.permits(*p)).collect()
        };
        assert_eq!(granted(Scope::Admin), all);
        assert_eq!(granted(Scope::Read), [P::Read, P::ReadWebhooks]);
        assert_eq!(granted(Scope::Publish), [P::Publish]);
        assert_eq!(
            granted(Scope::Project("p".into())),
            [P::ReadWebhooks, P::ManageWebhooks]
        );
    }

    #[test]
    fn a_refusal_names_the_scope_needed() {
        let reader = Principal {
            token: Some(TokenId::new()),
            scope: Scope::Read,
        };
        let refused = reader.require(Permission::Publish).unwrap_err();
        assert_eq!(refused.code, "forbidden");
        assert!(
            refused.message.contains("needs the publish scope"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn expiry_takes_a_number_and_a_unit() {
        assert_eq!(
            parse_expires_in("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_expires_in("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_expires_in("1s").unwrap(), Duration::from_secs(1));
        for text in ["", "d", "0d", "30", "-1d", "1.5h", "3651d", "1w", "٣d"] {
            assert!(parse_expires_in(text).is_err(), "{text:?}");
        }
    }
}

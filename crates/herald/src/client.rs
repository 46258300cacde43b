//! The HTTP side of the client subcommands: where the server is, which token to
//! send, and how a refusal becomes an error carrying the server's message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::datadir;

const DEFAULT_URL: &str = "http://127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./herald-data";
/// Long enough for `webhooks test`, which waits for the receiver's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A request's body: JSON text, sent as is.
pub struct JsonBody(pub String);

/// A successful answer's raw body.
pub struct Answer {
    pub body: String,
}

impl Answer {
    /// The body parsed, or `null` for an empty one (204).
    pub fn json(&self) -> anyhow::Result<Value> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).context("the server's answer is not JSON")
    }
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// Where `token` came from, to say so when the server refuses it.
    token_source: TokenOrigin,
}

/// Where the CLI found the token it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `HERALD_TOKEN`.
    Environment,
    /// The admin token file a local server generated.
    File(PathBuf),
    /// Nowhere: no token is sent.
    Missing,
}

impl TokenOrigin {
    /// What to tell a person whose request was refused for its token.
    fn remedy(&self) -> String {
        match self {
            Self::Environment => "the server refused the token in HERALD_TOKEN: check that it is \
                 this server's admin token (HERALD_URL says which server)"
                .to_owned(),
            Self::File(path) => format!(
                "the server refused the token read from {}: set HERALD_TOKEN to this server's \
                 admin token (HERALD_URL says which server)",
                path.display()
            ),
            Self::Missing => {
                "no token was sent: set HERALD_TOKEN to the server's admin token".to_owned()
            }
        }
    }
}

impl Client {
    /// From `HERALD_URL` and `HERALD_TOKEN`; without a token, the one a local
    /// server generated in its default data directory.
    pub fn from_env() -> anyhow::Result<Self> {
        let base = std::env::var("HERALD_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let base =
            Url::parse(&base).with_context(|| format!("HERALD_URL {base:?} is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") {
            anyhow::bail!("HERALD_URL must be an http or https URL, got {base}");
        }
        let (token, token_source) = match std::env::var("HERALD_TOKEN") {
            Ok(token) if !token.is_empty() => (Some(token), TokenOrigin::Environment),
            _ => local_token(),
        };
        Self::new(base, token, token_source)
    }

    pub fn new(
        base: Url,
        token: Option<String>,
        token_source: TokenOrigin,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider; ignore the error
        // that says one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("herald-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            token,
            token_source,
        })
    }

    /// A URL under the server's base (which may itself have a path prefix).
    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        let joined = format!("{}{}", self.base.as_str().trim_end_matches('/'), path);
        Url::parse(&joined).with_context(|| format!("cannot build a URL from {joined:?}"))
    }

    pub async fn get(&self, url: Url) -> anyhow::Result<Answer> {
        self.send(Method::GET, url, None, &[]).await
    }

    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<JsonBody>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(JsonBody(text)) = body {
            request = request
                .header("content-type", "application/json")
                .body(text);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable_error(&self.base, e))?;
        let status = response.status();
        let body = response.text().await.with_context(|| {
            format!("{method} {} broke off while reading the answer", url.path())
        })?;
        if !status.is_success() {
            return Err(refusal(status, &body, &self.token_source));
        }
        Ok(Answer { body })
    }
}

fn local_token() -> (Option<String>, TokenOrigin) {
    let dir = std::env::var_os("HERALD_DATA_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from);
    let path = dir.join(datadir::TOKEN_FILE);
    match datadir::read_token_file(&path) {
        Ok(token) => (Some(token), TokenOrigin::File(path)),
        Err(_) => (None, TokenOrigin::Missing),
    }
}

fn unreachable_error(base: &Url, error: reqwest::Error) -> anyhow::Error {
    if error.is_connect() {
        anyhow!("cannot reach Herald at {base}: is `herald serve` running there? (set HERALD_URL)")
    } else if error.is_timeout() {
        anyhow!(
            "Herald at {base} did not answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        )
    } else {
        anyhow!("request to Herald at {base} failed: {error}")
    }
}

/// The server's `{"code","message"}` as an error: `message (code, HTTP status)`;
/// for a refused token, where the token came from instead of the message.
fn refusal(status: StatusCode, body: &str, token: &TokenOrigin) -> anyhow::Error {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str())
            .map(str::to_owned)
    };
    let code = field("code");
    let message = match code.as_deref() {
        Some("unauthorized") if status == StatusCode::UNAUTHORIZED => Some(token.remedy()),
        _ => field("message"),
    };
    let text = match (message, code) {
        (Some(message), Some(code)) => format!("{message} ({code}, HTTP {})", status.as_u16()),
        (Some(message), None) => format!("{message} (HTTP {})", status.as_u16()),
        _ => format!("the server answered HTTP {}: {}", status, body.trim()),
    };
    anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_servers_message_and_code() {
        let err = refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"code":"invalid_field","message":"url: scheme must be http or https"}"#,
            &TokenOrigin::Environment,
        );
        assert_eq!(
            err.to_string(),
            "url: scheme must be http or https (invalid_field, HTTP 422)"
        );
        let err = refusal(
            StatusCode::BAD_GATEWAY,
            "<html>proxy</html>",
            &TokenOrigin::Environment,
        );
        assert!(
            err.to_string().contains("502") && err.to_string().contains("proxy"),
            "{err}"
        );
        let unauthorized = r#"{"code":"unauthorized","message":"send the admin token"}"#;
        let err = refusal(
            StatusCode::UNAUTHORIZED,
            unauthorized,
            &TokenOrigin::Missing,
        );
        assert!(err.to_string().contains("no token was sent"), "{err}");
    }

    #[test]
    fn a_refused_token_names_where_it_came_from() {
        let unauthorized = r#"{"code":"unauthorized","message":"send the admin token"}"#;
        let err = refusal(
            StatusCode::UNAUTHORIZED,
            unauthorized,
            &TokenOrigin::Environment,
        );
        assert_eq!(
            err.to_string(),
            "the server refused the token in HERALD_TOKEN: check that it is this server's admin \
             token (HERALD_URL says which server) (unauthorized, HTTP 401)"
        );
        let file = TokenOrigin::File(PathBuf::from("herald-data/admin-token"));
        let err = refusal(StatusCode::UNAUTHORIZED, unauthorized, &file);
        assert!(
            err.to_string()
                .contains("refused the token read from herald-data/admin-token"),
            "{err}"
        );
    }
}

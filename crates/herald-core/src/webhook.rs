//! A webhook's user-given fields and their rules, and the target URL with any
//! basic-auth credentials split off; neither they nor the URL's tokens reach a
//! response or a log.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use url::Url;

use crate::shown_url;
use crate::validation::FieldError;

pub const MAX_NAME_LEN: usize = 100;
pub const MAX_URL_LEN: usize = 512;
pub const MAX_PROJECT_LEN: usize = 400;

pub fn validate_name(name: &str) -> Result<String, FieldError> {
    refuse_control_chars("name", name)?;
    let trimmed = name.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > MAX_NAME_LEN {
        return Err(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} characters long, got {len}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Control characters (NUL above all) cannot be stored as text by every
/// store, and never belong in a name people read.
pub fn refuse_control_chars(field: &str, text: &str) -> Result<(), FieldError> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(FieldError::new(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// A project key, the scope of a project-level webhook. `None` is global.
pub fn validate_project(project: Option<&str>) -> Result<Option<String>, FieldError> {
    match project {
        None => Ok(None),
        Some(key) => {
            refuse_control_chars("project", key)?;
            let len = key.chars().count();
            if len == 0 || len > MAX_PROJECT_LEN || key.trim() != key {
                return Err(FieldError::new(
                    "project",
                    format!(
                        "a project key must be 1 to {MAX_PROJECT_LEN} characters with no surrounding spaces; use null for a global webhook"
                    ),
                ));
            }
            Ok(Some(key.to_owned()))
        }
    }
}

/// A webhook's target. `Debug` and `Display` show the URL with its credentials
/// and tokens obscured.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
    has_credentials: bool,
}

impl TargetUrl {
    /// An `http` or `https` URL with a host, at most 512 characters.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        if text.len() > MAX_URL_LEN {
            return Err(FieldError::new(
                "url",
                format!(
                    "must be at most {MAX_URL_LEN} characters, got {}",
                    text.len()
                ),
            ));
        }
        let url = Url::parse(text)
            .map_err(|e| FieldError::new("url", format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FieldError::new(
                "url",
                format!("scheme must be http or https, got {:?}", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FieldError::new("url", "must name a host"));
        }
        let has_credentials = !url.username().is_empty() || url.password().is_some();
        Ok(Self {
            url,
            has_credentials,
        })
    }

    /// The full URL, credentials included: only for sealing at rest.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The URL to send to: without credentials.
    pub fn request_url(&self) -> Url {
        let mut url = self.url.clone();
        // Both setters only fail on URLs that cannot carry credentials, which
        // `parse` has already refused.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url
    }

    /// `Authorization: Basic ...` for a URL with `user:password@`.
    pub fn basic_auth_header(&self) -> Option<String> {
        if !self.has_credentials {
            return None;
        }
        let user = percent_decode(self.url.username());
        let pass = percent_decode(self.url.password().unwrap_or(""));
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{pass}"))
        ))
    }

    /// The URL as shown to people and logs: credentials, query values and
    /// known token paths as `***` (`https://***:***@host/path?token=***`); see
    /// [`crate::shown_url`].
    pub fn display(&self) -> String {
        shown_url::obscure(&self.url)
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetUrl({})", self.display())
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_are_obscured() {
        let t = TargetUrl::parse("https://my%40login:p%2Bss@hooks.example.com/foo").unwrap();
        assert_eq!(t.request_url().as_str(), "https://hooks.example.com/foo");
        assert_eq!(
            t.basic_auth_header().unwrap(),
            format!("Basic {}", STANDARD.encode("my@login:p+ss"))
        );
        assert_eq!(t.display(), "https://***:***@hooks.example.com/foo");
        assert!(!format!("{t:?}").contains("p%2Bss"));
    }

    #[test]
    fn query_tokens_and_token_paths_are_sent_but_never_shown() {
        let t = TargetUrl::parse("https://hooks.example.com/in?token=t0ps3cret").unwrap();
        assert_eq!(
            t.request_url().as_str(),
            "https://hooks.example.com/in?token=t0ps3cret"
        );
        assert_eq!(t.display(), "https://hooks.example.com/in?token=***");
        let slack = TargetUrl::parse("https://hooks.slack.com/services/T0/B0/s3cret").unwrap();
        assert_eq!(
            slack.to_string(),
            "https://hooks.slack.com/services/T0/B0/***"
        );
        assert!(!format!("{slack:?}").contains("s3cret"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(
            TargetUrl::parse("ftp://x/")
                .unwrap_err()
                .message
                .contains("http or https")
        );
        assert!(
            TargetUrl::parse("not a url")
                .unwrap_err()
                .message
                .contains("not a valid URL")
        );
        let long = format!("https://x.example/{}", "a".repeat(600));
        assert!(TargetUrl::parse(&long).unwrap_err().message.contains("512"));
    }

    #[test]
    fn name_and_project_limits() {
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"n".repeat(101)).is_err());
        assert_eq!(validate_name(" ok ").unwrap(), "ok");
        assert!(validate_project(Some("")).is_err());
        assert!(validate_project(Some(&"p".repeat(401))).is_err());
        assert_eq!(validate_project(None).unwrap(), None);
        assert!(
            validate_project(Some("a\0b"))
                .unwrap_err()
                .message
                .contains("U+0000")
        );
        assert!(validate_name("tab\there").is_err());
    }
}

//! Repository names: the receiver's code host URN without its scheme, then the
//! repository's path on that host, e.g. `github.com/owner/name`.
//!
//! Taking the host from the URN rather than from payload URLs keeps names
//! stable across event kinds: some payloads carry no web URL for the
//! repository (Bitbucket Server), and vendor samples carry API hosts
//! (Bitbucket Cloud).

use url::Url;

use crate::error::IngestError;

/// `host[:port][/path]` of a code host URN: `https://gitlab.example.com/` gives
/// `gitlab.example.com`, `https://example.com/gitlab` gives `example.com/gitlab`.
pub fn urn_host_path(urn: &str) -> Result<String, IngestError> {
    let url = Url::parse(urn.trim()).map_err(|_| IngestError::BadUrn(urn.to_owned()))?;
    let host = url
        .host_str()
        .ok_or_else(|| IngestError::BadUrn(urn.to_owned()))?;
    let mut out = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = url.path().trim_matches('/');
    if !path.is_empty() {
        out.push('/');
        out.push_str(path);
    }
    Ok(out)
}

pub(crate) fn repository_name(host_path: &str, repo_path: &str) -> String {
    format!("{host_path}/{}", repo_path.trim_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_lose_scheme_credentials_and_slashes() {
        assert_eq!(urn_host_path("https://github.com").unwrap(), "github.com");
        assert_eq!(
            urn_host_path("https://GitLab.Example.com/").unwrap(),
            "gitlab.example.com"
        );
        assert_eq!(
            urn_host_path("https://u:p@example.com:8443/bitbucket/").unwrap(),
            "example.com:8443/bitbucket"
        );
        assert_eq!(
            urn_host_path("http://example.com:80").unwrap(),
            "example.com"
        );
        assert!(matches!(
            urn_host_path("github.com"),
            Err(IngestError::BadUrn(_))
        ));
    }
}

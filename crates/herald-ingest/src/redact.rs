//! Headers as the request log shows them: anything that could authenticate a
//! request is replaced by [`REDACTED`].

use http::HeaderMap;

use crate::kind::CodeHostKind;

pub const REDACTED: &str = "<redacted>";

/// Name fragments of headers that carry credentials on any host.
const SENSITIVE_FRAGMENTS: &[&str] = &[
    "authorization",
    "cookie",
    "token",
    "secret",
    "signature",
    "password",
    "api-key",
    "apikey",
    "session",
];

/// Azure DevOps lets users add arbitrary headers to a subscription, and people
/// put keys in them under any name, so for Azure only these known-harmless
/// headers are shown.
const AZURE_SHOWN: &[&str] = &[
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "request-context",
    "request-id",
    "traceparent",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-vss-activityid",
    "x-vss-subscriptionid",
];

/// The headers in request order, names lower-case, values lossily decoded,
/// credentials redacted.
pub fn redact_headers(kind: CodeHostKind, headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let shown = if must_redact(kind, name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.to_owned(), shown)
        })
        .collect()
}

/// The most of one header value an unverified request's log row keeps.
pub const UNVERIFIED_HEADER_VALUE_KEPT: usize = 256;
/// The most header bytes (names and values) an unverified request's log row
/// keeps: enough to see which host sent what, too little to fill a disk.
pub const UNVERIFIED_HEADERS_KEPT: usize = 8 * 1024;
/// What ends a value that was cut.
const CUT: &str = "…";

/// Cuts headers to what an unverified request's log row keeps: each value to
/// [`UNVERIFIED_HEADER_VALUE_KEPT`] bytes, and the headers after the first
/// [`UNVERIFIED_HEADERS_KEPT`] bytes dropped. Says whether anything was cut.
pub fn truncate_headers(headers: &mut Vec<(String, String)>) -> bool {
    let mut cut = false;
    let mut total = 0;
    let mut kept = 0;
    for (name, value) in headers.iter_mut() {
        if value.len() > UNVERIFIED_HEADER_VALUE_KEPT {
            let end = floor_char_boundary(value, UNVERIFIED_HEADER_VALUE_KEPT);
            value.truncate(end);
            value.push_str(CUT);
            cut = true;
        }
        total += name.len() + value.len();
        if total > UNVERIFIED_HEADERS_KEPT {
            break;
        }
        kept += 1;
    }
    if kept < headers.len() {
        headers.truncate(kept);
        cut = true;
    }
    cut
}

/// The largest index at most `at` that starts a character of `text`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

fn must_redact(kind: CodeHostKind, name: &str) -> bool {
    // `HeaderName`s are lower-case already.
    SENSITIVE_FRAGMENTS.iter().any(|f| name.contains(f))
        || (kind == CodeHostKind::AzureDevOps && !AZURE_SHOWN.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn shown(kind: CodeHostKind, pairs: &[(&'static str, &str)]) -> Vec<(String, String)> {
        redact_headers(kind, &map(pairs))
    }

    #[test]
    fn signatures_tokens_and_authorization_are_redacted_everywhere() {
        for kind in CodeHostKind::ALL {
            let out = shown(
                kind,
                &[
                    ("X-Hub-Signature-256", "sha256=abc"),
                    ("X-Hub-Signature", "sha256=abc"),
                    ("X-Gitlab-Token", "tok"),
                    ("webhook-signature", "v1,abc"),
                    ("Authorization", "Basic eDp5"),
                ],
            );
            assert!(out.iter().all(|(_, v)| v == REDACTED), "{kind}: {out:?}");
        }
    }

    #[test]
    fn ordinary_headers_stay_readable() {
        let out = shown(
            CodeHostKind::GitHub,
            &[
                ("X-GitHub-Event", "push"),
                ("Content-Type", "application/json"),
            ],
        );
        assert_eq!(
            out,
            vec![
                ("x-github-event".to_owned(), "push".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
    }

    #[test]
    fn unverified_headers_are_cut_per_value_and_in_total() {
        let long = "é".repeat(UNVERIFIED_HEADER_VALUE_KEPT);
        let mut headers: Vec<(String, String)> = (0..100)
            .map(|i| (format!("x-filler-{i}"), long.clone()))
            .collect();
        assert!(truncate_headers(&mut headers));
        assert!(
            headers
                .iter()
                .all(|(_, v)| v.len() <= UNVERIFIED_HEADER_VALUE_KEPT + CUT.len())
        );
        let total: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(total <= UNVERIFIED_HEADERS_KEPT, "{total}");
        assert!(headers.len() < 100 && !headers.is_empty());

        let mut short = vec![("x-github-event".to_owned(), "push".to_owned())];
        assert!(!truncate_headers(&mut short));
        assert_eq!(short[0].1, "push");
    }

    #[test]
    fn azure_custom_headers_are_redacted_whatever_their_name() {
        let out = shown(
            CodeHostKind::AzureDevOps,
            &[("X-Team-Key", "k"), ("Content-Type", "application/json")],
        );
        assert_eq!(out[0].1, REDACTED);
        assert_eq!(out[1].1, "application/json");
    }
}

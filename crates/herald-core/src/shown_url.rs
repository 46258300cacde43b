//! How a URL is shown to people and logs: everything that may be a credential
//! becomes `***`. That is the `user:password@` part, every query value (a
//! `?token=` or `?sig=` is as secret as a password, and Herald cannot tell which
//! parameters are), the fragment, and the path segments that known services
//! use as their secret (Slack, Discord, Microsoft Teams, ...).
//!
//! The rules are idempotent, so text that was shown once can be shown again
//! through [`obscure_text`] without losing anything.

use url::Url;

const MASK: &str = "***";

/// How a known service's webhook path carries its token.
#[derive(Clone, Copy)]
enum TokenPath {
    /// The last segment (Slack: `/services/T../B../<secret>`, `/triggers/...`).
    Last,
    /// Every segment from this index on (Teams: `/webhookb2/<ids>/IncomingWebhook/<secret>/...`).
    From(usize),
    /// The segments after the id that follows this one (Discord: `/api/webhooks/<id>/<token>`).
    AfterIdOf(&'static str),
    /// The segments after this one (Feishu and Lark: `/open-apis/bot/v2/hook/<token>`).
    After(&'static str),
    /// A `bot<token>` segment (Telegram: `/bot<token>/sendMessage`).
    BotPrefixed,
}

/// Hosts (and their subdomains) whose webhook URLs carry a token in the path.
const TOKEN_PATHS: &[(&str, TokenPath)] = &[
    ("hooks.slack.com", TokenPath::Last),
    ("discord.com", TokenPath::AfterIdOf("webhooks")),
    ("discordapp.com", TokenPath::AfterIdOf("webhooks")),
    ("webhook.office.com", TokenPath::From(1)),
    ("outlook.office.com", TokenPath::From(1)),
    ("outlook.office365.com", TokenPath::From(1)),
    // `/hooks/catch/<account>/<hook>/`: the two ids are the whole credential.
    ("hooks.zapier.com", TokenPath::From(2)),
    // `/trigger/<event>/with/key/<key>` and `/use/<key>`.
    ("maker.ifttt.com", TokenPath::From(1)),
    ("api.telegram.org", TokenPath::BotPrefixed),
    ("open.feishu.cn", TokenPath::After("hook")),
    ("open.larksuite.com", TokenPath::After("hook")),
];

/// The URL as shown to people and logs, every possible credential as `***`.
pub fn obscure(url: &Url) -> String {
    mask(url).0.to_string()
}

/// [`obscure`] for a URL kept as text (a stored display form, a clone URL).
/// Text that is not an absolute URL (`git@host:path`, a local path) cannot
/// carry a query or a password and is returned as it is.
pub fn obscure_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => obscure(&url),
        Err(_) => text.to_owned(),
    }
}

/// The parts of the URL `text` that [`obscure`] hides, as they appear in the
/// URL and percent-decoded, longest first, for scrubbing them out of messages
/// that quote the URL piecemeal (git's errors do). None for text that is not
/// an absolute URL.
pub fn hidden_parts(text: &str) -> Vec<String> {
    let Ok(url) = Url::parse(text) else {
        return Vec::new();
    };
    let mut parts = mask(&url).1;
    let decoded: Vec<String> = parts.iter().map(|part| percent_decode(part)).collect();
    parts.extend(decoded);
    parts.retain(|part| !part.is_empty() && part != MASK);
    parts.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    parts.dedup();
    parts
}

/// The masked URL, and the original text of every part it masked.
fn mask(url: &Url) -> (Url, Vec<String>) {
    let mut shown = url.clone();
    let mut hidden = Vec::new();
    mask_userinfo(&mut shown, &mut hidden);
    mask_token_path(&mut shown, &mut hidden);
    mask_query(&mut shown, &mut hidden);
    if let Some(fragment) = url.fragment().filter(|f| !f.is_empty()) {
        hidden.push(fragment.to_owned());
        shown.set_fragment(Some(MASK));
    }
    (shown, hidden)
}

/// A password hides its user too; a user alone is a credential on http(s)
/// (`https://<token>@host`), but a login name elsewhere (`ssh://git@host`).
fn mask_userinfo(url: &mut Url, hidden: &mut Vec<String>) {
    let user = url.username().to_owned();
    let password = url.password().map(str::to_owned);
    let user_is_secret = password.is_some() || matches!(url.scheme(), "http" | "https");
    if let Some(password) = password {
        hidden.push(password);
        // Fails only for URLs that cannot have credentials, which have none.
        let _ = url.set_password(Some(MASK));
    }
    if user_is_secret && !user.is_empty() {
        hidden.push(user);
        let _ = url.set_username(MASK);
    }
}

fn mask_query(url: &mut Url, hidden: &mut Vec<String>) {
    let Some(query) = url.query().filter(|q| !q.is_empty()) else {
        return;
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, "")) => format!("{key}="),
            Some((key, value)) => {
                hidden.push(value.to_owned());
                format!("{key}={MASK}")
            }
            // A bare `?<token>` has no name to keep.
            None if pair.is_empty() => String::new(),
            None => {
                hidden.push(pair.to_owned());
                MASK.to_owned()
            }
        })
        .collect();
    url.set_query(Some(&masked.join("&")));
}

fn mask_token_path(url: &mut Url, hidden: &mut Vec<String>) {
    let Some(rule) = token_path_rule(url) else {
        return;
    };
    let Some(segments) = url.path_segments() else {
        return;
    };
    let mut segments: Vec<String> = segments.map(str::to_owned).collect();
    for index in secret_segments(rule, &segments) {
        let segment = &mut segments[index];
        if segment.is_empty() || segment == MASK {
            continue;
        }
        match rule {
            TokenPath::BotPrefixed => {
                hidden.push(segment["bot".len()..].to_owned());
                *segment = format!("bot{MASK}");
            }
            _ => hidden.push(std::mem::replace(segment, MASK.to_owned())),
        }
    }
    url.set_path(&format!("/{}", segments.join("/")));
}

fn token_path_rule(url: &Url) -> Option<TokenPath> {
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    TOKEN_PATHS
        .iter()
        .find(|(domain, _)| {
            host == *domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.'))
        })
        .map(|(_, rule)| *rule)
}

/// The indexes of the segments `rule` says are secret.
fn secret_segments(rule: TokenPath, segments: &[String]) -> Vec<usize> {
    let position = |name: &str| segments.iter().position(|s| s.eq_ignore_ascii_case(name));
    let from = match rule {
        TokenPath::Last => {
            let last = segments.iter().rposition(|s| !s.is_empty());
            return last.into_iter().collect();
        }
        TokenPath::BotPrefixed => {
            return (0..segments.len())
                .filter(|&i| segments[i].len() > "bot".len() && segments[i].starts_with("bot"))
                .collect();
        }
        TokenPath::From(index) => Some(index),
        TokenPath::AfterIdOf(name) => position(name).map(|i| i + 2),
        TokenPath::After(name) => position(name).map(|i| i + 1),
    };
    from.map(|from| (from..segments.len()).collect())
        .unwrap_or_default()
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        obscure(&Url::parse(text).unwrap())
    }

    #[test]
    fn credentials_are_masked_and_a_login_name_is_not() {
        assert_eq!(
            shown("https://bot:s3cret@git.example.com/a.git"),
            "https://***:***@git.example.com/a.git"
        );
        assert_eq!(
            shown("https://ghp_token@github.com/acme/api.git"),
            "https://***@github.com/acme/api.git"
        );
        assert_eq!(
            shown("ssh://git@github.com/acme/api.git"),
            "ssh://git@github.com/acme/api.git"
        );
        assert_eq!(
            shown("ssh://git:pw@github.com/a.git"),
            "ssh://***:***@github.com/a.git"
        );
    }

    #[test]
    fn every_query_value_and_the_fragment_are_masked() {
        assert_eq!(
            shown("https://hooks.example.com/in?token=abc123&debug=&x=1"),
            "https://hooks.example.com/in?token=***&debug=&x=***"
        );
        assert_eq!(
            shown("https://hooks.example.com/in?abc123"),
            "https://hooks.example.com/in?***"
        );
        assert_eq!(
            shown(
                "https://prod-1.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sig=Zm9vYmFy"
            ),
            "https://prod-1.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=***&sp=***&sig=***"
        );
        assert_eq!(
            shown("https://h.example/in#access_token=x"),
            "https://h.example/in#***"
        );
        assert_eq!(shown("https://h.example/in?"), "https://h.example/in?");
    }

    #[test]
    fn known_token_paths_are_masked() {
        let cases = [
            (
                "https://hooks.slack.com/services/T0001/B0001/XXXXsecretXXXX",
                "https://hooks.slack.com/services/T0001/B0001/***",
            ),
            (
                "https://hooks.slack.com/triggers/T0001/123/abcdef/",
                "https://hooks.slack.com/triggers/T0001/123/***/",
            ),
            (
                "https://discord.com/api/webhooks/1234567890/tok-EN_secret",
                "https://discord.com/api/webhooks/1234567890/***",
            ),
            (
                "https://canary.discordapp.com/api/v10/webhooks/12/tok/slack",
                "https://canary.discordapp.com/api/v10/webhooks/12/***/***",
            ),
            (
                "https://contoso.webhook.office.com/webhookb2/a-b@c-d/IncomingWebhook/0123abcd/e-f",
                "https://contoso.webhook.office.com/webhookb2/***/***/***/***",
            ),
            (
                "https://outlook.office.com/webhook/a@b/IncomingWebhook/c/d",
                "https://outlook.office.com/webhook/***/***/***/***",
            ),
            (
                "https://hooks.zapier.com/hooks/catch/123/abc/",
                "https://hooks.zapier.com/hooks/catch/***/***/",
            ),
            (
                "https://maker.ifttt.com/trigger/deploy/with/key/k3y",
                "https://maker.ifttt.com/trigger/***/***/***/***",
            ),
            (
                "https://api.telegram.org/bot123:AAH-secret/sendMessage",
                "https://api.telegram.org/bot***/sendMessage",
            ),
            (
                "https://open.feishu.cn/open-apis/bot/v2/hook/0f-token",
                "https://open.feishu.cn/open-apis/bot/v2/hook/***",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(shown(url), expected, "{url}");
        }
    }

    #[test]
    fn lookalike_hosts_and_ordinary_paths_are_left_alone() {
        for url in [
            "https://evilhooks.slack.com.example/services/T/B/keep",
            "https://notdiscord.com/api/webhooks/1/keep",
            "https://ci.example.com/webhooks/github/keep",
            "https://discord.com/api/webhooks",
        ] {
            assert_eq!(shown(url), url);
        }
    }

    #[test]
    fn masking_is_idempotent() {
        for url in [
            "https://u:p@hooks.slack.com/services/T/B/s?x=1#f",
            "https://api.telegram.org/bot1:x/sendMessage",
            "https://discord.com/api/webhooks/1/t",
        ] {
            let once = shown(url);
            assert_eq!(obscure_text(&once), once, "{url}");
        }
        assert_eq!(
            obscure_text("git@github.com:acme/api.git"),
            "git@github.com:acme/api.git"
        );
    }

    #[test]
    fn hidden_parts_list_what_was_masked_raw_and_decoded() {
        let parts =
            hidden_parts("https://bot:p%40ss@hooks.slack.com/services/T/B/s3cret?sig=a%2Bb");
        for part in ["bot", "p%40ss", "p@ss", "s3cret", "a%2Bb", "a+b"] {
            assert!(parts.iter().any(|p| p == part), "{part} in {parts:?}");
        }
        assert!(!parts.iter().any(|p| p == "T" || p == "B"), "{parts:?}");
        assert!(hidden_parts("git@github.com:a/b.git").is_empty());
    }
}

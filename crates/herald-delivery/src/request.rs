//! What a webhook request carries: the exact payload, the signature headers and
//! any basic-auth credentials, plus the redacted copy of its headers that goes
//! to the delivery log.

use std::collections::BTreeMap;

use herald_catalogue::{Family, envelope_headers, native_headers};
use herald_core::USER_AGENT;
use herald_core::cipher::{SealedColumn, SecretCipher};
use herald_core::secret::Secret;
use herald_core::signing::standard_signature;
use herald_core::webhook::TargetUrl;
use herald_store::WebhookRecord;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::Unsealable;

/// The header naming the event type, for receivers that route on it.
pub const EVENT_TYPE_HEADER: &str = "x-herald-event-type";
const JSON_UTF8: &str = "application/json; charset=utf-8";
const REDACTED: &str = "<redacted>";

/// One message as signed: the same event keeps its `id` across retries and
/// across the webhooks it fans out to, so receivers can deduplicate on it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The Standard Webhooks `webhook-id`: the event id.
    pub id: &'a str,
    pub event_type: &'a str,
    /// Unix seconds of this attempt.
    pub timestamp_secs: i64,
    pub payload: &'a [u8],
    /// The event's properties, where the family's envelope headers come from
    /// (a code monitor notification's part).
    pub properties: &'a BTreeMap<String, String>,
}

/// The headers every webhook request carries: content type, user agent, the
/// Standard Webhooks trio and the event type. Event families that also speak a
/// product's native format add their own headers next to these.
pub fn webhook_headers(message: &Message<'_>, secret: &Secret) -> Result<HeaderMap, String> {
    let signature = standard_signature(
        &secret.standard_key(),
        message.id,
        message.timestamp_secs,
        message.payload,
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert("webhook-id", header_value("webhook-id", message.id)?);
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from(message.timestamp_secs),
    );
    headers.insert(
        "webhook-signature",
        header_value("webhook-signature", &signature)?,
    );
    headers.insert(
        HeaderName::from_static(EVENT_TYPE_HEADER),
        header_value(EVENT_TYPE_HEADER, message.event_type)?,
    );
    Ok(headers)
}

/// The family's own headers (Sourcegraph's, SonarQube's), computed over the
/// exact payload sent, and those from the event's envelope (a code monitor
/// notification's part). A value that cannot be a header, such as a SonarQube
/// project key with a line break, is left out rather than failing the delivery:
/// the signature headers, which receivers check, are always hex.
pub fn add_native_headers(
    headers: &mut HeaderMap,
    message: &Message<'_>,
    family: Family,
    secret: &Secret,
) {
    let native = native_headers(family, message.event_type, None, message.payload, secret);
    let envelope = envelope_headers(family, message.properties);
    for (name, value) in native.into_iter().chain(envelope) {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.insert(name, value);
            }
            _ => {
                tracing::warn!(header = %name, event_type = message.event_type, "a native header value cannot be sent; left out")
            }
        }
    }
}

fn header_value(name: &str, text: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(text).map_err(|_| format!("{text:?} cannot be sent in the {name} header"))
}

/// A webhook's URL and secret, unsealed for one attempt.
pub(crate) struct Target {
    pub url: TargetUrl,
    pub secret: Secret,
}

/// Why a webhook's URL and secret cannot be used.
#[derive(Debug)]
pub(crate) enum TargetError {
    /// This node cannot open them: the node's fault.
    Unsealable(Unsealable),
    /// They opened but are unusable: the webhook's fault.
    Invalid(String),
}

impl Target {
    pub fn open(cipher: &SecretCipher, webhook: &WebhookRecord) -> Result<Self, TargetError> {
        let url_text = open_text(
            cipher,
            webhook,
            &webhook.url_sealed,
            SealedColumn::WebhookUrl,
            "URL",
        )?;
        let url = TargetUrl::parse(&url_text).map_err(|e| {
            TargetError::Invalid(format!(
                "the webhook's stored URL is no longer valid: {}",
                e.message
            ))
        })?;
        let secret = open_text(
            cipher,
            webhook,
            &webhook.secret_sealed,
            SealedColumn::WebhookSecret,
            "secret",
        )?;
        let secret = Secret::from_stored(secret);
        Ok(Self { url, secret })
    }
}

fn open_text(
    cipher: &SecretCipher,
    webhook: &WebhookRecord,
    sealed: &[u8],
    column: SealedColumn,
    what: &'static str,
) -> Result<String, TargetError> {
    let bytes = cipher
        .open(sealed, &column.of(webhook.id.as_uuid()))
        .map_err(|_| {
            TargetError::Unsealable(Unsealable {
                webhook: webhook.id,
                what,
            })
        })?;
    String::from_utf8(bytes)
        .map_err(|_| TargetError::Invalid(format!("the webhook's sealed {what} is not UTF-8")))
}

/// A request ready to send, and how the log shows it.
pub(crate) struct Prepared {
    pub url: Url,
    pub display_url: String,
    pub headers: HeaderMap,
}

pub(crate) fn prepare(
    target: &Target,
    message: &Message<'_>,
    family: Family,
) -> Result<Prepared, String> {
    let mut headers = webhook_headers(message, &target.secret)?;
    add_native_headers(&mut headers, message, family, &target.secret);
    if let Some(basic) = target.url.basic_auth_header() {
        let mut value = header_value("authorization", &basic)?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(Prepared {
        url: target.url.request_url(),
        display_url: target.url.display(),
        headers,
    })
}

/// The request headers as the delivery log keeps them: credentials redacted.
pub(crate) fn redacted(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if value.is_sensitive() || name == header::AUTHORIZATION {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use herald_core::signing::verify_standard;

    use super::*;

    static NO_PROPERTIES: BTreeMap<String, String> = BTreeMap::new();

    fn message(payload: &[u8]) -> Message<'_> {
        Message {
            id: "evt_1",
            event_type: "changeset:update",
            timestamp_secs: 1_700_000_000,
            payload,
            properties: &NO_PROPERTIES,
        }
    }

    /// A webhook whose URL and secret `cipher` sealed for it.
    pub(crate) fn sealed_record(cipher: &SecretCipher, url: &[u8], secret: &[u8]) -> WebhookRecord {
        let id = herald_core::id::WebhookId::new();
        record(
            id,
            cipher.seal(url, &SealedColumn::WebhookUrl.of(id.as_uuid())),
            cipher.seal(secret, &SealedColumn::WebhookSecret.of(id.as_uuid())),
        )
    }

    fn record(
        id: herald_core::id::WebhookId,
        url_sealed: Vec<u8>,
        secret_sealed: Vec<u8>,
    ) -> WebhookRecord {
        WebhookRecord {
            health: Default::default(),
            health_overrides: Default::default(),
            flow_limits: Default::default(),
            ordering: Default::default(),
            id,
            name: "w".into(),
            url_display: "shown".into(),
            url_sealed,
            secret_sealed,
            event_types: vec![],
            project: None,
            enabled: true,
            disabled_reason: None,
            created_at: herald_core::time::Timestamp(0),
            updated_at: herald_core::time::Timestamp(0),
        }
    }

    #[test]
    fn headers_carry_a_signature_over_id_timestamp_and_body() {
        let secret = Secret::generate();
        let headers = webhook_headers(&message(b"{\"a\":1}"), &secret).unwrap();
        assert_eq!(headers["content-type"], JSON_UTF8);
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert_eq!(headers["webhook-id"], "evt_1");
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        assert_eq!(headers[EVENT_TYPE_HEADER], "changeset:update");
        let signature = headers["webhook-signature"].to_str().unwrap();
        assert!(verify_standard(
            &secret.standard_key(),
            "evt_1",
            1_700_000_000,
            b"{\"a\":1}",
            signature
        ));
    }

    #[test]
    fn an_event_type_that_cannot_be_a_header_is_an_error() {
        let mut m = message(b"{}");
        m.event_type = "bad\nline";
        let err = webhook_headers(&m, &Secret::generate()).unwrap_err();
        assert!(err.contains(EVENT_TYPE_HEADER), "{err}");
    }

    #[test]
    fn basic_auth_is_sent_but_redacted_in_the_log() {
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let url = TargetUrl::parse("https://user:hunter2@hooks.example.com/in").unwrap();
        let webhook = sealed_record(&cipher, url.expose().as_bytes(), b"s3cret");
        let Ok(target) = Target::open(&cipher, &webhook) else {
            panic!("the target opens")
        };
        let prepared = prepare(&target, &message(b"{}"), Family::Custom).unwrap();
        assert_eq!(prepared.url.as_str(), "https://hooks.example.com/in");
        assert_eq!(prepared.display_url, "https://***:***@hooks.example.com/in");
        assert!(
            prepared.headers["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        let logged = redacted(&prepared.headers);
        assert!(logged.contains(&("authorization".to_owned(), REDACTED.to_owned())));
        assert!(!format!("{logged:?}").contains("hunter2"));
    }

    #[test]
    fn a_code_monitor_part_is_sent_and_logged_as_headers() {
        use herald_catalogue::family::{NOTIFICATION_PART_PROPERTY, NOTIFICATION_PARTS_PROPERTY};
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let webhook = sealed_record(&cipher, b"https://hooks.example.com/in", b"s");
        let target = Target::open(&cipher, &webhook).unwrap();
        let properties = BTreeMap::from([
            (NOTIFICATION_PART_PROPERTY.to_owned(), "2".to_owned()),
            (NOTIFICATION_PARTS_PROPERTY.to_owned(), "3".to_owned()),
        ]);
        let message = Message {
            event_type: "code_monitor:notification",
            properties: &properties,
            ..message(b"{}")
        };
        let prepared = prepare(&target, &message, Family::CodeMonitor).unwrap();
        assert_eq!(prepared.headers["herald-notification-part"], "2");
        assert_eq!(prepared.headers["herald-notification-parts"], "3");
        let logged = redacted(&prepared.headers);
        assert!(logged.contains(&("herald-notification-part".to_owned(), "2".to_owned())));
    }

    #[test]
    fn a_query_token_or_token_path_is_sent_but_masked_in_the_log() {
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        for (text, shown) in [
            (
                "https://hooks.example.com/in?token=t0ps3cret",
                "https://hooks.example.com/in?token=***",
            ),
            (
                "https://discord.com/api/webhooks/42/t0ps3cret",
                "https://discord.com/api/webhooks/42/***",
            ),
        ] {
            let url = TargetUrl::parse(text).unwrap();
            let webhook = sealed_record(&cipher, url.expose().as_bytes(), b"s");
            let target = Target::open(&cipher, &webhook).unwrap();
            let prepared = prepare(&target, &message(b"{}"), Family::Custom).unwrap();
            assert_eq!(prepared.url.as_str(), text);
            assert_eq!(prepared.display_url, shown);
        }
    }

    #[test]
    fn a_value_this_key_cannot_open_is_the_nodes_fault() {
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let other = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let webhook = sealed_record(&other, b"https://x.example/", b"s");
        let Err(TargetError::Unsealable(err)) = Target::open(&cipher, &webhook) else {
            panic!("another key's values must not open")
        };
        assert_eq!(err.what, "URL");
        assert!(err.to_string().contains("secrets key"), "{err}");
    }

    #[test]
    fn values_swapped_between_webhooks_do_not_open() {
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let mut first = sealed_record(&cipher, b"https://one.example/", b"s1");
        let second = sealed_record(&cipher, b"https://two.example/", b"s2");
        first.secret_sealed = second.secret_sealed.clone();
        let Err(TargetError::Unsealable(err)) = Target::open(&cipher, &first) else {
            panic!("a secret sealed for another webhook must not open")
        };
        assert_eq!(err.what, "secret");
    }
}

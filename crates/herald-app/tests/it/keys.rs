//! The secrets key at start: values sealed before they were bound to their
//! rows keep working once a node with the database's key adopts it, and a node
//! with another key is refused without changing anything.

use std::path::Path;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use herald_app::monitors::MonitorsConfig;
use herald_app::receivers::credentials;
use herald_app::stores::StoreChoice;
use herald_app::tokens::Principal;
use herald_app::{App, AppConfig, Limits, Retention, StartError};
use herald_core::cipher::{KEY_LEN, SealedColumn, SecretCipher};
use herald_core::event_type::EventTypePattern;
use herald_core::id::{ReceiverId, WebhookId};
use herald_core::time::Timestamp;
use herald_delivery::DeliveryConfig;
use herald_ingest::Credential;
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::{
    MonitorStore, NewReceiver, NewRepository, NewWebhook, ReceiverStore, RepositoryId,
    RepositoryWrite, Store,
};
use tokio_util::sync::CancellationToken;

const URL: &str = "https://hooks.example.com/in";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SOURCE: &str = "https://git.example.com/acme/widgets.git";
const RECEIVER_SECRET: &str = "receiver-s3cret";

/// How values were sealed before they were bound to their place: no
/// associated data.
fn seal_unbound(key: &[u8; KEY_LEN], plaintext: &[u8]) -> Vec<u8> {
    let nonce = SecretCipher::generate_key();
    let nonce = &nonce[..24];
    let aead = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut sealed = nonce.to_vec();
    sealed.extend(aead.encrypt(XNonce::from_slice(nonce), plaintext).unwrap());
    sealed
}

struct Stored {
    webhook: WebhookId,
    receiver: ReceiverId,
    repository: RepositoryId,
}

/// A database as an earlier Herald left it: every sealed value unbound.
async fn stored_before_binding(path: &Path, key: &[u8; KEY_LEN]) -> Stored {
    let store = SqliteStore::open(path, SqliteConfig::default()).unwrap();
    let webhook = store
        .create_webhook(
            NewWebhook {
                health_overrides: Default::default(),
                flow_limits: Default::default(),
                ordering: Default::default(),
                id: WebhookId::new(),
                name: "old".into(),
                url_display: URL.into(),
                url_sealed: seal_unbound(key, URL.as_bytes()),
                secret_sealed: seal_unbound(key, SECRET.as_bytes()),
                event_types: vec![EventTypePattern::parse("event_types", "*").unwrap()],
                project: None,
                enabled: true,
            },
            10,
        )
        .await
        .unwrap();
    let credential = format!(r#"{{"type":"secret","secret":"{RECEIVER_SECRET}"}}"#);
    let receiver = store
        .create_receiver(NewReceiver {
            id: ReceiverId::new(),
            name: None,
            kind: "github".into(),
            urn: "https://github.com".into(),
            credentials_sealed: seal_unbound(key, credential.as_bytes()),
            github_legacy_sha1: false,
            gitlab_standard_webhooks: false,
        })
        .await
        .unwrap();
    let repository = store
        .create_repository(NewRepository {
            id: RepositoryId::new(),
            name: "acme/widgets".into(),
            source_display: SOURCE.into(),
            source_sealed: seal_unbound(key, SOURCE.as_bytes()),
            branches: None,
            fetch_interval: None,
        })
        .await
        .unwrap();
    let RepositoryWrite::Saved(repository) = repository else {
        panic!("{repository:?}")
    };
    Stored {
        webhook: webhook.id,
        receiver: receiver.id,
        repository: repository.id,
    }
}

fn config(dir: &Path, key: &[u8; KEY_LEN]) -> AppConfig {
    AppConfig {
        store: StoreChoice::Sqlite(dir.join("herald.db")),
        cipher: SecretCipher::new(key).unwrap(),
        secret_key_file: dir.join("secret.key"),
        delivery: DeliveryConfig::default(),
        limits: Limits::default(),
        retention: Retention {
            max_age: Duration::from_secs(3600),
            purge_interval: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(3600),
        },
        monitors: MonitorsConfig::new(dir.join("mirrors"), None),
        external_url: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_sealed_before_binding_keep_working_and_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretCipher::generate_key();
    let stored = stored_before_binding(&dir.path().join("herald.db"), &key).await;

    // Another key first: refused, and nothing is rebound or adopted.
    let other = SecretCipher::generate_key();
    let refused = App::start(config(dir.path(), &other), CancellationToken::new()).await;
    let Err(error @ StartError::KeyMismatch { .. }) = refused else {
        panic!("a node with another key started")
    };
    assert!(error.to_string().contains("copy secret.key"), "{error}");

    // The database's key: adopted, every value bound to its row and still opening.
    let shutdown = CancellationToken::new();
    let running = App::start(config(dir.path(), &key), shutdown.clone())
        .await
        .unwrap();
    let app = running.app();
    assert_eq!(
        app.webhook_secret(&Principal::admin_token(), stored.webhook)
            .await
            .unwrap()
            .expose(),
        SECRET
    );
    let webhook = running
        .opened_store()
        .store()
        .get_webhook(stored.webhook)
        .await
        .unwrap()
        .unwrap();
    let cipher = &SecretCipher::new(&key).unwrap();
    let url = cipher
        .open(
            &webhook.url_sealed,
            &SealedColumn::WebhookUrl.of(webhook.id.as_uuid()),
        )
        .unwrap();
    assert_eq!(url, URL.as_bytes());
    let receiver = running
        .opened_store()
        .receivers()
        .get_receiver(stored.receiver)
        .await
        .unwrap()
        .unwrap();
    let verifying = credentials::for_verification(cipher, &receiver, Timestamp::now()).unwrap();
    let Credential::Secret(secret) = verifying.current else {
        panic!("a secret credential")
    };
    assert_eq!(secret.expose(), RECEIVER_SECRET);
    let repository = running
        .opened_store()
        .monitors()
        .get_repository(stored.repository)
        .await
        .unwrap()
        .unwrap();
    let source = cipher
        .open(
            &repository.source_sealed,
            &SealedColumn::RepositorySource.of(repository.id.as_uuid()),
        )
        .unwrap();
    assert_eq!(source, SOURCE.as_bytes());
    assert!(
        cipher.open_unbound(&webhook.secret_sealed).is_err(),
        "no unbound value is left"
    );
    shutdown.cancel();
    running.stop().await;

    // Once adopted, another key is refused by the key check alone.
    let refused = App::start(config(dir.path(), &other), CancellationToken::new()).await;
    assert!(matches!(refused, Err(StartError::KeyMismatch { .. })));
}

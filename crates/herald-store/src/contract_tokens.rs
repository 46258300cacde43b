//! The behaviours every [`TokenStore`] must show, run by each store crate's
//! tests with [`token_store_contract_tests!`](crate::token_store_contract_tests).
//! The factory yields an `Arc<dyn TokenStore>`, or a pair of one and a guard
//! that lives until the case has finished. Times are only compared with times
//! the store reported.

use std::sync::Arc;
use std::time::Duration;

use herald_core::api_token::digest;

use crate::{NewToken, TokenId, TokenRecord, TokenStore};

/// What a test factory yields: the store under test, and whatever must stay
/// alive while it is used.
pub trait TokenFixture: Send {
    fn tokens(&self) -> Arc<dyn TokenStore>;
}

impl TokenFixture for Arc<dyn TokenStore> {
    fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::clone(self)
    }
}

impl<G: Send> TokenFixture for (Arc<dyn TokenStore>, G) {
    fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.0)
    }
}

/// Expands to one `#[tokio::test]` per case. `$factory` is an async expression
/// yielding a fresh [`TokenFixture`](crate::contract_tokens::TokenFixture).
#[macro_export]
macro_rules! token_store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::token_store_contract_tests!(@cases $factory;
            a_fresh_store_has_no_tokens,
            a_created_token_is_found_by_its_digest,
            tokens_are_listed_oldest_first,
            an_expired_token_is_listed_but_not_found,
            a_use_is_recorded_at_most_once_a_minute,
            revoking_deletes_only_that_token,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let store = $crate::contract_tokens::TokenFixture::tokens(&fixture);
                $crate::contract_tokens::$case(store).await;
                drop(fixture);
            }
        )*
    };
}

/// Long enough for the store's clock to tick past a millisecond boundary.
const TICK: Duration = Duration::from_millis(20);

fn new_token(name: &str, scope: &str) -> NewToken {
    NewToken {
        id: TokenId::new(),
        name: name.to_owned(),
        digest: digest(&format!("hrld_{name}")),
        scope: scope.to_owned(),
        expires_in: None,
    }
}

async fn create(store: &Arc<dyn TokenStore>, new: NewToken) -> TokenRecord {
    store.create_token(new).await.expect("create_token")
}

pub async fn a_fresh_store_has_no_tokens(store: Arc<dyn TokenStore>) {
    assert!(store.list_tokens().await.unwrap().is_empty());
    assert_eq!(store.find_token(&digest("hrld_x")).await.unwrap(), None);
    assert!(!store.revoke_token(TokenId::new()).await.unwrap());
    store.touch_token(TokenId::new()).await.unwrap();
}

pub async fn a_created_token_is_found_by_its_digest(store: Arc<dyn TokenStore>) {
    let new = new_token("ci", "project:payments");
    let created = create(&store, new.clone()).await;
    assert_eq!(created.id, new.id);
    assert_eq!(created.name, "ci");
    assert_eq!(created.digest, new.digest);
    assert_eq!(created.scope, "project:payments");
    assert_eq!(created.last_used_at, None);
    assert_eq!(created.expires_at, None);
    let found = store.find_token(&new.digest).await.unwrap();
    assert_eq!(found, Some(created));
    assert_eq!(store.find_token(&digest("hrld_other")).await.unwrap(), None);
}

pub async fn tokens_are_listed_oldest_first(store: Arc<dyn TokenStore>) {
    let first = create(&store, new_token("first", "read")).await;
    tokio::time::sleep(TICK).await;
    let second = create(&store, new_token("second", "publish")).await;
    assert!(second.created_at > first.created_at);
    assert_eq!(store.list_tokens().await.unwrap(), vec![first, second]);
}

pub async fn an_expired_token_is_listed_but_not_found(store: Arc<dyn TokenStore>) {
    let expired = NewToken {
        expires_in: Some(Duration::ZERO),
        ..new_token("expired", "read")
    };
    let lasting = NewToken {
        expires_in: Some(Duration::from_secs(3600)),
        ..new_token("lasting", "read")
    };
    let expired = create(&store, expired).await;
    let lasting = create(&store, lasting).await;
    let expires_at = lasting.expires_at.expect("an expiry");
    assert_eq!(expires_at.millis() - lasting.created_at.millis(), 3_600_000);
    tokio::time::sleep(TICK).await;
    assert_eq!(store.find_token(&expired.digest).await.unwrap(), None);
    assert_eq!(
        store.find_token(&lasting.digest).await.unwrap(),
        Some(lasting.clone())
    );
    assert_eq!(store.list_tokens().await.unwrap(), vec![expired, lasting]);
}

pub async fn a_use_is_recorded_at_most_once_a_minute(store: Arc<dyn TokenStore>) {
    let token = create(&store, new_token("used", "admin")).await;
    store.touch_token(token.id).await.unwrap();
    let used = store.find_token(&token.digest).await.unwrap().unwrap();
    let first_use = used.last_used_at.expect("a recorded use");
    assert!(first_use >= token.created_at);
    tokio::time::sleep(TICK).await;
    store.touch_token(token.id).await.unwrap();
    let again = store.find_token(&token.digest).await.unwrap().unwrap();
    assert_eq!(again.last_used_at, Some(first_use), "within the minute");
}

pub async fn revoking_deletes_only_that_token(store: Arc<dyn TokenStore>) {
    let gone = create(&store, new_token("gone", "read")).await;
    let kept = create(&store, new_token("kept", "read")).await;
    assert!(store.revoke_token(gone.id).await.unwrap());
    assert!(!store.revoke_token(gone.id).await.unwrap());
    assert_eq!(store.find_token(&gone.digest).await.unwrap(), None);
    assert_eq!(store.list_tokens().await.unwrap(), vec![kept]);
}

//! The API token store contract against `PgStore`, and what only several nodes
//! on one database show: a token revoked on one node is gone on another.

use std::sync::Arc;

use herald_core::api_token::digest;
use herald_store::{NewToken, TokenId, TokenStore};

use crate::support::TestSchema;

herald_store::token_store_contract_tests!(std::future::ready(match TestSchema::new().await {
    Some(schema) => {
        let store: Arc<dyn TokenStore> = Arc::new(schema.store().await);
        (store, schema)
    }
    None => return,
}));

#[tokio::test]
async fn a_token_revoked_on_one_node_is_not_found_on_another() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (one, two) = (schema.store().await, schema.store().await);
    let created = one
        .create_token(NewToken {
            id: TokenId::new(),
            name: "ci".to_owned(),
            digest: digest("hrld_ci"),
            scope: "publish".to_owned(),
            expires_in: None,
        })
        .await
        .unwrap();
    assert_eq!(
        two.find_token(&created.digest).await.unwrap(),
        Some(created.clone())
    );
    assert!(one.revoke_token(created.id).await.unwrap());
    assert_eq!(two.find_token(&created.digest).await.unwrap(), None);
    one.close().await;
    two.close().await;
}

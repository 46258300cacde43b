//! `herald tokens`: create, list and revoke API tokens (needs an admin token
//! in HERALD_TOKEN). A new token is printed once; Herald cannot show it again.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::args::ClientArgs;
use crate::client::{Client, JsonBody};
use crate::commands::{Mode, items, resource_url};
use crate::output::{cell, fields, table};

const TOKEN_FIELDS: &[&str] = &[
    "id",
    "name",
    "scope",
    "created_at",
    "last_used_at",
    "expires_at",
    "token",
];

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and cannot be shown again.
    Create(CreateToken),
    /// List the tokens with their scope, last use and expiry (never the tokens).
    List,
    /// Revoke a token: from the next request on, it is refused.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct CreateToken {
    /// What the token is for, e.g. "ci payments".
    #[arg(long)]
    pub name: String,
    /// admin, read (everything but secrets and tokens), publish (events only)
    /// or project:<key> (that project's webhooks and deliveries).
    #[arg(long)]
    pub scope: String,
    /// Lifetime: a number and s, m, h or d, e.g. 30d. Without it, the token
    /// never expires.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
}

pub async fn tokens(args: ClientArgs<TokenCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        TokenCommand::Create(create) => {
            let body = JsonBody(create_body(&create).to_string());
            let url = client.url("/api/v1/tokens")?;
            let answer = client.send(Method::POST, url, Some(body), &[]).await?;
            mode.print(&answer, |token| fields(token, TOKEN_FIELDS))
        }
        TokenCommand::List => {
            let answer = client.get(client.url("/api/v1/tokens")?).await?;
            mode.print(&answer, token_table)
        }
        TokenCommand::Revoke { id } => {
            let url = resource_url(&client, "/api/v1/tokens", &id, "")?;
            let answer = client.send(Method::DELETE, url, None, &[]).await?;
            mode.print(&answer, |_| format!("revoked token {id}"))
        }
    }
}

fn create_body(create: &CreateToken) -> Value {
    json!({
        "name": create.name,
        "scope": create.scope,
        "expires_in": create.expires_in,
    })
}

fn token_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["name"]),
                cell(&t["scope"]),
                cell(&t["last_used_at"]),
                cell(&t["expires_at"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no tokens".to_owned();
    }
    table(&["ID", "NAME", "SCOPE", "LAST USED", "EXPIRES"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_without_expiry_sends_null() {
        let create = CreateToken {
            name: "ci".to_owned(),
            scope: "publish".to_owned(),
            expires_in: None,
        };
        assert_eq!(
            create_body(&create),
            json!({"name": "ci", "scope": "publish", "expires_in": null})
        );
    }

    #[test]
    fn the_list_never_has_a_token_column() {
        let list = json!({"items": [{"id": "1", "name": "ci", "scope": "read", "last_used_at": null, "expires_at": null}]});
        let printed = token_table(&list);
        assert!(
            printed.contains("ci") && printed.contains("read"),
            "{printed}"
        );
        assert!(!printed.contains("TOKEN"));
    }
}

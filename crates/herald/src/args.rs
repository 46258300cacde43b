//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Shown under `herald --help`.
const CLIENT_ENV_HELP: &str = "\
The client commands (webhooks, events, deliveries, event-types, receivers,
repositories, monitors) talk to the server at HERALD_URL
(default http://127.0.0.1:8080) with the bearer token HERALD_TOKEN; without it they use
the token file a local server generated: $HERALD_DATA_DIR/admin-token, or
./herald-data/admin-token.";

#[derive(Debug, Parser)]
#[command(
    after_help = CLIENT_ENV_HELP,
    name = "herald",
    version,
    about = "Self-hosted webhook server and its command-line client"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Bring the store's schema up to date and print its version.
    Migrate(StoreArgs),
    /// Check the store: connectivity, schema version, server version and clock skew.
    Doctor(StoreArgs),
    /// Register and manage outgoing webhooks (needs HERALD_URL and HERALD_TOKEN).
    Webhooks(ClientArgs<WebhookCommand>),
    /// Publish events.
    Events(ClientArgs<EventCommand>),
    /// Inspect and requeue deliveries.
    Deliveries(ClientArgs<DeliveryCommand>),
    /// Receivers for code hosts' webhooks (GitHub, GitLab, Bitbucket, Azure
    /// DevOps): create them, rotate their secrets, read their request logs.
    Receivers(ClientArgs<ReceiverCommand>),
    /// The event catalogue: list and show types with their schemas; register
    /// and delete custom types.
    EventTypes(ClientArgs<EventTypeCommand>),
    /// Repositories code monitors watch: register them, fetch now, see fetch errors.
    Repositories(ClientArgs<crate::monitor_commands::RepositoryCommand>),
    /// Code monitors: saved searches over new commits that notify webhooks and Slack.
    Monitors(ClientArgs<crate::monitor_commands::MonitorCommand>),
    /// API tokens: create scoped tokens (admin, read, publish, project:<key>),
    /// list them with their last use, revoke them.
    Tokens(ClientArgs<crate::token_commands::TokenCommand>),
}

/// Flags of `herald serve`. Each one overrides the config file and `HERALD_*`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the database, the secrets key and the generated admin token.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (see herald.example.toml).
    #[arg(long, value_name = "FILE", env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Allow outgoing requests into this network, e.g. 10.0.0.0/8 (repeatable).
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    pub allow_cidr: Vec<String>,
    /// Store to use; empty means SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// How log lines look on stderr: `text` (default) or `json` (one object a
    /// line, for log shippers).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Flags of `herald migrate` and `herald doctor`: the store settings of `herald serve`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// PostgreSQL URL; empty means SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The data directory holding the SQLite database.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (see herald.example.toml).
    #[arg(long, value_name = "FILE", env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// The same settings `herald serve` would load with these flags.
    pub fn as_serve_args(&self) -> ServeArgs {
        ServeArgs {
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            config: self.config.clone(),
            ..ServeArgs::default()
        }
    }
}

/// A client command group with the flags every client command shares.
#[derive(Debug, Args)]
pub struct ClientArgs<C: Subcommand> {
    #[command(subcommand)]
    pub command: C,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register a webhook; prints it with its secret.
    Create(CreateWebhook),
    /// List all webhooks.
    List,
    /// Show one webhook.
    Show { id: String },
    /// Change a webhook's fields; only the given ones change.
    Update(UpdateWebhook),
    /// Delete a webhook with its delivery log.
    Delete { id: String },
    /// Send a test event now and show the receiver's answer.
    Test { id: String },
    /// Print a webhook's signing secret.
    Secret { id: String },
}

#[derive(Debug, Args)]
pub struct CreateWebhook {
    #[arg(long)]
    pub name: String,
    /// http(s) URL; `https://user:password@host/...` sends basic auth.
    #[arg(long)]
    pub url: String,
    /// Signing secret; generated (whsec_...) when omitted.
    #[arg(long)]
    pub secret: Option<String>,
    /// Event type to subscribe to; a trailing `*` matches a family (repeatable).
    #[arg(long = "event-type", value_name = "TYPE", required = true)]
    pub event_types: Vec<String>,
    /// Project key; global when omitted.
    #[arg(long)]
    pub project: Option<String>,
    /// Register it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// `key`: deliver events with the same ordering key one at a time, in
    /// publish order; `none` (the default): no order.
    #[arg(long, value_name = "none|key")]
    pub ordering: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").args(["project", "global"])))]
#[command(group(ArgGroup::new("state").args(["enable", "disable"])))]
pub struct UpdateWebhook {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub secret: Option<String>,
    /// Replaces the subscribed event types (repeatable).
    #[arg(long = "event-type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Move the webhook to this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Make the webhook global.
    #[arg(long)]
    pub global: bool,
    #[arg(long)]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    /// `key` or `none`; applies to events published from then on.
    #[arg(long, value_name = "none|key")]
    pub ordering: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Publish an event; the payload JSON comes from --file or standard input.
    Send(SendEvent),
}

#[derive(Debug, Args)]
pub struct SendEvent {
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    #[arg(long)]
    pub project: Option<String>,
    /// A string property, `key=value` (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
    /// Makes a retried send return the first answer and create nothing new.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Events with the same key go one at a time, in publish order, to
    /// webhooks ordered by key.
    #[arg(long)]
    pub ordering_key: Option<String>,
    /// File holding the payload JSON; standard input when omitted.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[derive(Debug, Subcommand)]
pub enum EventTypeCommand {
    /// List every event type, built-in and custom.
    List,
    /// Show one type with its JSON Schema and example payload.
    Show { key: String },
    /// Register a custom type from a JSON file:
    /// {"key", "description", "family" (optional), "schema", "example"}.
    Create {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a custom type (built-in types cannot be deleted).
    Delete { key: String },
}

#[derive(Debug, Subcommand)]
pub enum ReceiverCommand {
    /// Create a receiver; prints the URL and the secret to configure on the
    /// code host (the secret is shown only now and after a rotation).
    Create(CreateReceiver),
    /// List all receivers.
    List,
    /// Show one receiver.
    Show { id: String },
    /// Change a receiver's fields; only the given ones change.
    Update(UpdateReceiver),
    /// Delete a receiver with its request log.
    Delete { id: String },
    /// Make a new secret current; the old one keeps verifying for the grace period.
    RotateSecret(RotateReceiverSecret),
    /// List the requests a receiver got, newest first; with a request id, show
    /// that one with its headers and body.
    Requests(ReceiverRequests),
}

#[derive(Debug, Args)]
pub struct CreateReceiver {
    /// github, gitlab, bitbucket_server, bitbucket_cloud or azure_devops.
    #[arg(long)]
    pub kind: String,
    /// The code host's base URL, e.g. https://github.com.
    #[arg(long)]
    pub urn: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The shared secret (Azure DevOps: the basic-auth password); generated when omitted.
    #[arg(long)]
    pub secret: Option<String>,
    /// Azure DevOps only: the basic-auth username (default herald).
    #[arg(long)]
    pub username: Option<String>,
    /// GitHub only: also accept the legacy SHA-1 X-Hub-Signature.
    #[arg(long)]
    pub github_legacy_sha1: bool,
    /// GitLab only: also accept Standard Webhooks signatures.
    #[arg(long)]
    pub gitlab_standard_webhooks: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("naming").args(["name", "no_name"])))]
pub struct UpdateReceiver {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the name.
    #[arg(long)]
    pub no_name: bool,
    #[arg(long)]
    pub urn: Option<String>,
    /// A new secret, in force at once (rotate-secret keeps the old one for a while).
    #[arg(long)]
    pub secret: Option<String>,
    /// Azure DevOps only.
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long, value_name = "true|false")]
    pub github_legacy_sha1: Option<bool>,
    #[arg(long, value_name = "true|false")]
    pub gitlab_standard_webhooks: Option<bool>,
}

#[derive(Debug, Args)]
pub struct RotateReceiverSecret {
    pub id: String,
    /// The new secret; generated when omitted.
    #[arg(long)]
    pub secret: Option<String>,
    /// How long the old secret keeps verifying, e.g. 24h (the default) or 0s.
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReceiverRequests {
    /// The receiver.
    pub id: String,
    /// One request to show in full.
    pub request_id: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// List a webhook's deliveries, newest first.
    List(ListDeliveries),
    /// Show a delivery with every attempt.
    Show { id: String },
    /// Queue one more attempt now.
    Redeliver { id: String },
    /// Requeue every failed delivery of a webhook since a time.
    Recover {
        #[arg(long)]
        webhook: String,
        /// RFC 3339 time, or a duration ago such as `2h`.
        #[arg(long)]
        since: String,
    },
}

#[derive(Debug, Args)]
pub struct ListDeliveries {
    #[arg(long)]
    pub webhook: String,
    /// pending, succeeded or failed.
    #[arg(long)]
    pub status: Option<String>,
    /// RFC 3339 time, or a duration ago such as `2h`.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn properties_need_a_key_and_an_equals_sign() {
        assert_eq!(parse_property("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_property("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_property("=b").is_err());
        assert!(parse_property("ab").is_err());
    }

    #[test]
    fn project_and_global_exclude_each_other() {
        let parsed = Cli::try_parse_from([
            "herald",
            "webhooks",
            "update",
            "x",
            "--project",
            "p",
            "--global",
        ]);
        assert!(parsed.is_err());
        let parsed =
            Cli::try_parse_from(["herald", "webhooks", "update", "x", "--enable", "--disable"]);
        assert!(parsed.is_err());
    }
}

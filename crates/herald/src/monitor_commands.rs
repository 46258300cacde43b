//! `herald repositories` and `herald monitors`: the code monitor client
//! subcommands, their arguments and how their answers print.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};
use url::Url;

use crate::args::ClientArgs;
use crate::client::{Client, JsonBody};
use crate::commands::Mode;
use crate::output::{cell, fields, table};

const REPOSITORY_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "branches",
    "fetch_interval_seconds",
    "last_fetched_at",
    "last_error",
    "heads",
    "created_at",
    "updated_at",
];
const RUN_FIELDS: &[&str] = &[
    "id",
    "repository",
    "repository_id",
    "started_at",
    "finished_at",
    "commits_scanned",
    "matches",
    "truncated",
    "error",
];
/// Runs the server keeps per monitor, and the most one page lists.
const RUNS_KEPT: u32 = 100;
const MONITOR_FIELDS: &[&str] = &[
    "id",
    "description",
    "query",
    "enabled",
    "url",
    "created_at",
    "updated_at",
];

#[derive(Debug, Subcommand)]
pub enum RepositoryCommand {
    /// Register a repository to watch; its first fetch starts at once.
    Create(CreateRepository),
    /// List the watched repositories with their last fetch.
    List,
    /// Show one repository with its heads and last fetch error.
    Show { id: String },
    /// Change a repository; a new name, URL or branch list starts monitors afresh.
    Update(UpdateRepository),
    /// Stop watching a repository.
    Delete { id: String },
    /// Fetch and search a repository now.
    Fetch { id: String },
}

#[derive(Debug, Args)]
pub struct CreateRepository {
    /// Unique name, e.g. github.com/owner/name (what receivers' pushes name).
    #[arg(long)]
    pub name: String,
    /// Clone URL (https, ssh, git@host:path, file) or absolute local path.
    #[arg(long)]
    pub url: String,
    /// A branch to watch (repeatable); the default branch when omitted.
    #[arg(long = "branch", value_name = "BRANCH")]
    pub branches: Vec<String>,
    /// Seconds between fetches; the server's default when omitted.
    #[arg(long, value_name = "SECONDS")]
    pub fetch_interval: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("watch").args(["branches", "default_branch"])))]
#[command(group(ArgGroup::new("interval").args(["fetch_interval", "default_interval"])))]
pub struct UpdateRepository {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub url: Option<String>,
    /// Replaces the watched branches (repeatable).
    #[arg(long = "branch", value_name = "BRANCH")]
    pub branches: Vec<String>,
    /// Watch the default branch.
    #[arg(long)]
    pub default_branch: bool,
    #[arg(long, value_name = "SECONDS")]
    pub fetch_interval: Option<u64>,
    /// Use the server's default fetch interval.
    #[arg(long)]
    pub default_interval: bool,
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Create a monitor; prints it with its webhook actions' secrets (shown only now).
    Create(CreateMonitor),
    /// List all monitors.
    List,
    /// Show one monitor with its actions.
    Show { id: String },
    /// Change a monitor; only the given fields change.
    Update(UpdateMonitor),
    /// Delete a monitor with its actions, their delivery logs and its runs.
    Delete { id: String },
    /// Send each action its test notification now and show the answers.
    Test { id: String },
    /// Fetch the repositories the query may match and search them now.
    Run { id: String },
    /// The monitor's last runs, newest first: the number of matched commits
    /// and how the notifications were split (the hashes: --json or --run).
    Runs {
        id: String,
        /// 1 to 100.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Show this run in full: every matched commit and every notification.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "limit")]
        run: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CreateMonitor {
    #[arg(long)]
    pub description: String,
    /// e.g. 'type:diff repo:^github\.com/acme/ BEGIN RSA PRIVATE KEY'.
    #[arg(long)]
    pub query: String,
    /// Call this webhook with each notification (repeatable).
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    /// The webhook actions' signing secret; generated (whsec_...) when omitted.
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Post each notification to this Slack incoming webhook (repeatable).
    #[arg(long = "slack", value_name = "URL")]
    pub slack: Vec<String>,
    /// Leave the matched results out of what the actions are sent.
    #[arg(long)]
    pub no_results: bool,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("state").args(["enable", "disable"])))]
pub struct UpdateMonitor {
    pub id: String,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub query: Option<String>,
    #[arg(long)]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    /// Replace the actions with this JSON array, as the API takes it:
    /// [{"id"?, "type": "webhook"|"slack", "url"?, "secret"?, "include_results"?}].
    #[arg(long, value_name = "FILE")]
    pub actions_file: Option<PathBuf>,
}

pub async fn repositories(args: ClientArgs<RepositoryCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    let show = |repo: &Value| fields(repo, REPOSITORY_FIELDS);
    match args.command {
        RepositoryCommand::Create(create) => {
            let mut body = json!({"name": create.name, "url": create.url});
            if !create.branches.is_empty() {
                body["branches"] = json!(create.branches);
            }
            if let Some(seconds) = create.fetch_interval {
                body["fetch_interval_seconds"] = json!(seconds);
            }
            let url = client.url("/api/v1/repositories")?;
            let answer = client
                .send(Method::POST, url, Some(JsonBody(body.to_string())), &[])
                .await?;
            mode.print(&answer, show)
        }
        RepositoryCommand::List => {
            let answer = client.get(client.url("/api/v1/repositories")?).await?;
            mode.print(&answer, repository_table)
        }
        RepositoryCommand::Show { id } => {
            let answer = client
                .get(resource_url(&client, "repositories", &id, "")?)
                .await?;
            mode.print(&answer, show)
        }
        RepositoryCommand::Update(update) => {
            let body = update_repository_body(&update)?;
            let url = resource_url(&client, "repositories", &update.id, "")?;
            let answer = client.send(Method::PATCH, url, Some(body), &[]).await?;
            mode.print(&answer, show)
        }
        RepositoryCommand::Delete { id } => {
            let url = resource_url(&client, "repositories", &id, "")?;
            let answer = client.send(Method::DELETE, url, None, &[]).await?;
            mode.print(&answer, |_| format!("deleted repository {id}"))
        }
        RepositoryCommand::Fetch { id } => {
            let url = resource_url(&client, "repositories", &id, "/fetch")?;
            let answer = client.send(Method::POST, url, None, &[]).await?;
            mode.print(&answer, show)
        }
    }
}

pub async fn monitors(args: ClientArgs<MonitorCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        MonitorCommand::Create(create) => {
            let url = client.url("/api/v1/monitors")?;
            let body = create_monitor_body(&create);
            let answer = client.send(Method::POST, url, Some(body), &[]).await?;
            mode.print(&answer, monitor_detail)
        }
        MonitorCommand::List => {
            let answer = client.get(client.url("/api/v1/monitors")?).await?;
            mode.print(&answer, monitor_table)
        }
        MonitorCommand::Show { id } => {
            let answer = client
                .get(resource_url(&client, "monitors", &id, "")?)
                .await?;
            mode.print(&answer, monitor_detail)
        }
        MonitorCommand::Update(update) => {
            let body = update_monitor_body(&update)?;
            let url = resource_url(&client, "monitors", &update.id, "")?;
            let answer = client.send(Method::PATCH, url, Some(body), &[]).await?;
            mode.print(&answer, monitor_detail)
        }
        MonitorCommand::Delete { id } => {
            let url = resource_url(&client, "monitors", &id, "")?;
            let answer = client.send(Method::DELETE, url, None, &[]).await?;
            mode.print(&answer, |_| format!("deleted monitor {id}"))
        }
        MonitorCommand::Test { id } => {
            let url = resource_url(&client, "monitors", &id, "/test")?;
            let answer = client.send(Method::POST, url, None, &[]).await?;
            mode.print(&answer, test_table)
        }
        MonitorCommand::Run { id } => {
            let url = resource_url(&client, "monitors", &id, "/run")?;
            let answer = client.send(Method::POST, url, None, &[]).await?;
            mode.print(&answer, run_table)
        }
        MonitorCommand::Runs { id, limit, run } => {
            let mut url = resource_url(&client, "monitors", &id, "/runs")?;
            // A run is found among the kept ones, all of which one page holds.
            let limit = if run.is_some() { RUNS_KEPT } else { limit };
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
            let answer = client.get(url).await?;
            match run {
                None => mode.print(&answer, run_table),
                Some(run_id) => {
                    let list = answer.json()?;
                    let Some(found) = items(&list).iter().find(|r| r["id"] == run_id.as_str())
                    else {
                        bail!("no run {run_id} among the monitor's last {RUNS_KEPT} runs");
                    };
                    mode.print_value(found, run_detail)
                }
            }
        }
    }
}

/// `/api/v1/<collection>/<id><suffix>`, with the id escaped as a path segment.
fn resource_url(client: &Client, collection: &str, id: &str, suffix: &str) -> anyhow::Result<Url> {
    let mut url = client.url(&format!("/api/v1/{collection}"))?;
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| anyhow::anyhow!("HERALD_URL cannot have a path"))?;
        segments.push(id);
        segments.extend(suffix.split('/').filter(|s| !s.is_empty()));
    }
    Ok(url)
}

fn update_repository_body(update: &UpdateRepository) -> anyhow::Result<JsonBody> {
    let mut body = Map::new();
    for (key, value) in [("name", &update.name), ("url", &update.url)] {
        if let Some(value) = value {
            body.insert(key.to_owned(), json!(value));
        }
    }
    if !update.branches.is_empty() {
        body.insert("branches".to_owned(), json!(update.branches));
    } else if update.default_branch {
        body.insert("branches".to_owned(), Value::Null);
    }
    if let Some(seconds) = update.fetch_interval {
        body.insert("fetch_interval_seconds".to_owned(), json!(seconds));
    } else if update.default_interval {
        body.insert("fetch_interval_seconds".to_owned(), Value::Null);
    }
    if body.is_empty() {
        bail!(
            "nothing to change: give --name, --url, --branch, --default-branch, --fetch-interval or --default-interval"
        );
    }
    Ok(JsonBody(Value::Object(body).to_string()))
}

fn create_monitor_body(create: &CreateMonitor) -> JsonBody {
    let include_results = !create.no_results;
    let webhooks = create.webhooks.iter().map(|url| {
        let mut action = json!({"type": "webhook", "url": url, "include_results": include_results});
        if let Some(secret) = &create.webhook_secret {
            action["secret"] = json!(secret);
        }
        action
    });
    let slack = create
        .slack
        .iter()
        .map(|url| json!({"type": "slack", "url": url, "include_results": include_results}));
    let body = json!({
        "description": create.description,
        "query": create.query,
        "enabled": !create.disabled,
        "actions": webhooks.chain(slack).collect::<Vec<_>>(),
    });
    JsonBody(body.to_string())
}

fn update_monitor_body(update: &UpdateMonitor) -> anyhow::Result<JsonBody> {
    let mut body = Map::new();
    for (key, value) in [
        ("description", &update.description),
        ("query", &update.query),
    ] {
        if let Some(value) = value {
            body.insert(key.to_owned(), json!(value));
        }
    }
    if update.enable || update.disable {
        body.insert("enabled".to_owned(), json!(update.enable));
    }
    if let Some(path) = &update.actions_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let actions: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if !actions.is_array() {
            bail!("{} must hold a JSON array of actions", path.display());
        }
        body.insert("actions".to_owned(), actions);
    }
    if body.is_empty() {
        bail!(
            "nothing to change: give --description, --query, --enable, --disable or --actions-file"
        );
    }
    Ok(JsonBody(Value::Object(body).to_string()))
}

fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map_or(&[], Vec::as_slice)
}

fn repository_table(list: &Value) -> String {
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|r| {
            ["id", "name", "url", "last_fetched_at", "last_error"]
                .iter()
                .map(|k| cell(&r[*k]))
                .collect()
        })
        .collect();
    table(&["ID", "NAME", "URL", "LAST FETCHED", "LAST ERROR"], &rows)
}

fn monitor_table(list: &Value) -> String {
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|m| {
            let actions = m["actions"].as_array().map_or(0, Vec::len);
            vec![
                cell(&m["id"]),
                cell(&m["enabled"]),
                actions.to_string(),
                cell(&m["description"]),
                cell(&m["query"]),
            ]
        })
        .collect();
    table(&["ID", "ENABLED", "ACTIONS", "DESCRIPTION", "QUERY"], &rows)
}

/// The monitor's fields, then one line per action (with its secret when shown).
fn monitor_detail(monitor: &Value) -> String {
    let mut text = fields(monitor, MONITOR_FIELDS)
        .lines()
        .filter(|line| !line.starts_with("actions:"))
        .collect::<Vec<_>>()
        .join("\n");
    let rows: Vec<Vec<String>> = monitor["actions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|a| {
            ["id", "type", "url", "include_results", "enabled", "secret"]
                .iter()
                .map(|k| cell(&a[*k]))
                .collect()
        })
        .collect();
    if !rows.is_empty() {
        text.push_str("\nactions:\n");
        text.push_str(&table(
            &["ID", "TYPE", "URL", "RESULTS", "ENABLED", "SECRET"],
            &rows,
        ));
    }
    text
}

fn test_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["results"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| {
            ["id", "type", "success", "status", "duration_ms", "error"]
                .iter()
                .map(|k| cell(&r[*k]))
                .collect()
        })
        .collect();
    table(
        &["ACTION", "TYPE", "SUCCESS", "STATUS", "MS", "ERROR"],
        &rows,
    )
}

/// One line per run. Matched commits are counted, not listed: a run can match
/// thousands (`--run` or `--json` lists them).
fn run_table(list: &Value) -> String {
    if items(list).is_empty() {
        return "no runs: nothing new was searched".to_owned();
    }
    let rows: Vec<Vec<String>> = items(list)
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["started_at"]),
                cell(&r["repository"]),
                cell(&r["commits_scanned"]),
                cell(&r["matches"]),
                count(&r["commits"]),
                notified(r),
                cell(&r["error"]),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STARTED",
            "REPOSITORY",
            "COMMITS",
            "MATCHES",
            "MATCHED COMMITS",
            "NOTIFICATIONS",
            "ERROR",
        ],
        &rows,
    )
}

fn count(list: &Value) -> String {
    list.as_array().map_or(0, Vec::len).to_string()
}

/// How many notifications of each type a run sent, e.g. `3 code_monitor:notification, 13 code_monitor:slack`.
fn notified(run: &Value) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for notification in run["notifications"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        let event_type = notification["event_type"].as_str().unwrap_or("?");
        match counts.iter_mut().find(|(t, _)| *t == event_type) {
            Some((_, n)) => *n += 1,
            None => counts.push((event_type, 1)),
        }
    }
    if counts.is_empty() {
        // Runs logged before the split was kept name only their events.
        return count(&run["event_ids"]);
    }
    counts
        .iter()
        .map(|(event_type, n)| format!("{n} {event_type}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One run in full: its fields, every matched commit on a line of its own, and
/// each notification with its part and the results it carried.
fn run_detail(run: &Value) -> String {
    let mut summary = run.clone();
    if let Some(map) = summary.as_object_mut() {
        for listed in ["commits", "notifications", "event_ids"] {
            map.remove(listed);
        }
    }
    let mut text = fields(&summary, RUN_FIELDS);
    let commits = run["commits"].as_array().map_or(&[][..], Vec::as_slice);
    text.push_str(&format!("\ncommits ({}):", commits.len()));
    for commit in commits {
        text.push_str("\n  ");
        text.push_str(&cell(commit));
    }
    let rows: Vec<Vec<String>> = run["notifications"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|n| {
            vec![
                format!("{}/{}", cell(&n["part"]), cell(&n["parts"])),
                cell(&n["event_type"]),
                cell(&n["results"]),
                cell(&n["event_id"]),
            ]
        })
        .collect();
    if !rows.is_empty() {
        text.push_str("\nnotifications:\n");
        text.push_str(&table(&["PART", "TYPE", "RESULTS", "EVENT"], &rows));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(commits: usize) -> Value {
        let hashes: Vec<String> = (0..commits).map(|i| format!("{i:040x}")).collect();
        let part = |part: u32, results: u32| {
            json!({"event_id": format!("event-{part}"), "event_type": "code_monitor:notification",
                   "part": part, "parts": 3, "results": results})
        };
        json!({
            "id": "run-1", "repository": "github.com/acme/api", "started_at": "2026-12-06T21:00:00Z",
            "commits_scanned": 300, "matches": commits, "commits": hashes, "truncated": false,
            "error": null, "event_ids": ["event-1", "event-2", "event-3", "event-4"],
            "notifications": [part(1, 100), part(2, 100), part(3, 100),
                {"event_id": "event-4", "event_type": "code_monitor:slack", "part": 1, "parts": 1, "results": 0}],
        })
    }

    #[test]
    fn the_runs_table_counts_matched_commits_instead_of_listing_them() {
        let text = run_table(&json!({"items": [run_with(300)]}));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("MATCHED COMMITS") && lines[0].contains("NOTIFICATIONS"));
        assert!(
            lines[1].contains("  300  ")
                && lines[1].contains("3 code_monitor:notification, 1 code_monitor:slack"),
            "{text}"
        );
        assert!(!text.contains(&format!("{:040x}", 7)), "no hashes: {text}");
        assert!(lines[1].len() < 250, "{} characters", lines[1].len());
    }

    #[test]
    fn a_run_in_full_lists_each_commit_and_each_part() {
        let text = run_detail(&run_with(3));
        assert!(text.starts_with("id:"), "{text}");
        assert!(text.contains("commits (3):\n  "), "{text}");
        for i in 0..3 {
            assert!(text.contains(&format!("\n  {i:040x}")), "{text}");
        }
        assert!(text.contains("PART"), "{text}");
        let part = text.lines().find(|l| l.starts_with("2/3")).unwrap();
        assert_eq!(
            part.split_whitespace().collect::<Vec<_>>(),
            vec!["2/3", "code_monitor:notification", "100", "event-2"]
        );
    }

    #[test]
    fn runs_without_a_recorded_split_count_their_events() {
        let mut old = run_with(1);
        old["notifications"] = json!([]);
        assert_eq!(notified(&old), "4");
    }
}

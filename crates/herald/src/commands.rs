//! The client subcommands: each builds one request, sends it, and prints the
//! answer as a table or as the server's JSON (`--json`).

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use herald_core::time::Timestamp;
use reqwest::Method;
use serde_json::{Map, Value, json};
use url::Url;

use crate::args::{
    ClientArgs, CreateReceiver, CreateWebhook, DeliveryCommand, EventCommand, EventTypeCommand,
    ListDeliveries, ReceiverCommand, RotateReceiverSecret, SendEvent, UpdateReceiver,
    UpdateWebhook, WebhookCommand,
};
use crate::client::{Answer, Client, JsonBody};
use crate::output::{cell, fields, indent, scope, table};

const WEBHOOK_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "event_types",
    "project",
    "enabled",
    "disabled_reason",
    "ordering",
    "created_at",
    "updated_at",
    "secret",
];
const DELIVERY_FIELDS: &[&str] = &[
    "id",
    "webhook_id",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "created_at",
    "updated_at",
];
const EVENT_FIELDS: &[&str] = &[
    "id",
    "type",
    "project",
    "properties",
    "created_at",
    "payload",
];
const ATTEMPT_FIELDS: &[&str] = &[
    "number",
    "started_at",
    "duration_ms",
    "request_url",
    "response_status",
    "error",
];

/// How an answer is printed.
#[derive(Clone, Copy)]
pub(crate) struct Mode {
    pub(crate) json: bool,
}

impl Mode {
    /// Prints the server's JSON as it came, or `human` of the parsed answer.
    pub(crate) fn print(
        self,
        answer: &Answer,
        human: impl FnOnce(&Value) -> String,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            answer.body.trim_end().to_owned()
        } else {
            human(&answer.json()?)
        };
        write_out(&text)
    }

    /// Prints one value picked out of an answer: as JSON, or `human` of it.
    pub(crate) fn print_value(
        self,
        value: &Value,
        human: impl FnOnce(&Value) -> String,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            value.to_string()
        } else {
            human(value)
        };
        write_out(&text)
    }
}

fn write_out(text: &str) -> anyhow::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    match writeln!(std::io::stdout().lock(), "{text}") {
        // The reader (`| head`) has seen enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write to standard output"),
    }
}

pub async fn webhooks(args: ClientArgs<WebhookCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        WebhookCommand::Create(create) => {
            let answer = client
                .send(
                    Method::POST,
                    client.url("/api/v1/webhooks")?,
                    Some(create_body(&create)),
                    &[],
                )
                .await?;
            warn_about(&answer)?;
            mode.print(&answer, |hook| fields(hook, WEBHOOK_FIELDS))
        }
        WebhookCommand::List => {
            let answer = client.get(client.url("/api/v1/webhooks")?).await?;
            mode.print(&answer, webhook_table)
        }
        WebhookCommand::Show { id } => {
            let answer = client.get(webhook_url(&client, &id, "")?).await?;
            mode.print(&answer, |hook| fields(hook, WEBHOOK_FIELDS))
        }
        WebhookCommand::Update(update) => {
            let body = update_body(&update)?;
            let answer = client
                .send(
                    Method::PATCH,
                    webhook_url(&client, &update.id, "")?,
                    Some(body),
                    &[],
                )
                .await?;
            mode.print(&answer, |hook| fields(hook, WEBHOOK_FIELDS))
        }
        WebhookCommand::Delete { id } => {
            let answer = client
                .send(Method::DELETE, webhook_url(&client, &id, "")?, None, &[])
                .await?;
            mode.print(&answer, |_| format!("deleted webhook {id}"))
        }
        WebhookCommand::Test { id } => {
            let answer = client
                .send(Method::POST, webhook_url(&client, &id, "/test")?, None, &[])
                .await?;
            mode.print(&answer, |result| {
                fields(
                    result,
                    &["success", "status", "duration_ms", "error", "body_excerpt"],
                )
            })
        }
        WebhookCommand::Secret { id } => {
            let answer = client.get(webhook_url(&client, &id, "/secret")?).await?;
            mode.print(&answer, |secret| cell(&secret["secret"]))
        }
    }
}

pub async fn events(args: ClientArgs<EventCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        EventCommand::Send(send) => {
            let payload = read_payload(&send)?;
            let body = event_body(&send, &payload)?;
            let headers: Vec<(&str, &str)> = send
                .idempotency_key
                .as_deref()
                .map(|key| ("Idempotency-Key", key))
                .into_iter()
                .collect();
            let answer = client
                .send(
                    Method::POST,
                    client.url("/api/v1/events")?,
                    Some(body),
                    &headers,
                )
                .await?;
            mode.print(&answer, |published| {
                format!(
                    "published event {} to {} webhook(s)",
                    cell(&published["id"]),
                    cell(&published["deliveries"])
                )
            })
        }
    }
}

pub async fn deliveries(args: ClientArgs<DeliveryCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        DeliveryCommand::List(list) => {
            let url = deliveries_url(&client, &list)?;
            let answer = client.get(url).await?;
            mode.print(&answer, delivery_table)
        }
        DeliveryCommand::Show { id } => {
            let answer = client.get(delivery_url(&client, &id, "")?).await?;
            mode.print(&answer, delivery_detail)
        }
        DeliveryCommand::Redeliver { id } => {
            let answer = client
                .send(
                    Method::POST,
                    delivery_url(&client, &id, "/redeliver")?,
                    None,
                    &[],
                )
                .await?;
            mode.print(&answer, |delivery| fields(delivery, DELIVERY_FIELDS))
        }
        DeliveryCommand::Recover { webhook, since } => {
            let body = JsonBody(json!({ "since": time_arg(&since)? }).to_string());
            let answer = client
                .send(
                    Method::POST,
                    webhook_url(&client, &webhook, "/recover")?,
                    Some(body),
                    &[],
                )
                .await?;
            mode.print(&answer, |result| {
                format!("requeued {} failed deliveries", cell(&result["requeued"]))
            })
        }
    }
}

pub async fn event_types(args: ClientArgs<EventTypeCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    match args.command {
        EventTypeCommand::List => {
            let answer = client.get(client.url("/api/v1/event-types")?).await?;
            mode.print(&answer, event_type_table)
        }
        EventTypeCommand::Show { key } => {
            let answer = client.get(event_type_url(&client, &key)?).await?;
            mode.print(&answer, event_type_detail)
        }
        EventTypeCommand::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let definition: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", file.display()))?;
            if !definition.is_object() {
                bail!(
                    "{} must hold a JSON object: {{\"key\", \"description\", \"family\", \"schema\", \"example\"}}",
                    file.display()
                );
            }
            let answer = client
                .send(
                    Method::POST,
                    client.url("/api/v1/event-types")?,
                    Some(JsonBody(text)),
                    &[],
                )
                .await?;
            mode.print(&answer, event_type_detail)
        }
        EventTypeCommand::Delete { key } => {
            let answer = client
                .send(Method::DELETE, event_type_url(&client, &key)?, None, &[])
                .await?;
            mode.print(&answer, |_| format!("deleted event type {key}"))
        }
    }
}

fn event_type_url(client: &Client, key: &str) -> anyhow::Result<Url> {
    resource_url(client, "/api/v1/event-types", key, "")
}

fn event_type_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|def| {
            let origin = if def["builtin"] == true {
                "built-in"
            } else {
                "custom"
            };
            vec![
                cell(&def["key"]),
                cell(&def["family"]),
                origin.to_owned(),
                cell(&def["description"]),
            ]
        })
        .collect();
    table(&["KEY", "FAMILY", "ORIGIN", "DESCRIPTION"], &rows)
}

/// The type's fields, then its schema and example once each, as indented JSON.
fn event_type_detail(def: &Value) -> String {
    let pretty =
        |value: &Value| serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut rest = def.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("schema");
        map.remove("example");
    }
    format!(
        "{}\nschema:\n{}\nexample:\n{}",
        fields(&rest, &["key", "family", "builtin", "description"]),
        indent(&pretty(&def["schema"])),
        indent(&pretty(&def["example"]))
    )
}

/// The server's warnings about what it saved, on stderr, so that they show
/// even with `--json` piped elsewhere.
fn warn_about(answer: &Answer) -> anyhow::Result<()> {
    let body = answer.json()?;
    for warning in body["warnings"].as_array().into_iter().flatten() {
        if let Some(text) = warning.as_str() {
            eprintln!("warning: {text}");
        }
    }
    Ok(())
}

fn create_body(create: &CreateWebhook) -> JsonBody {
    let mut body = json!({
        "name": create.name,
        "url": create.url,
        "event_types": create.event_types,
        "project": create.project,
        "enabled": !create.disabled,
    });
    if let Some(secret) = &create.secret {
        body["secret"] = json!(secret);
    }
    if let Some(ordering) = &create.ordering {
        body["ordering"] = json!(ordering);
    }
    JsonBody(body.to_string())
}

/// Only the fields given on the command line, so the rest stay as they are.
fn update_body(update: &UpdateWebhook) -> anyhow::Result<JsonBody> {
    let mut body = Map::new();
    let mut set = |key: &str, value: Value| {
        body.insert(key.to_owned(), value);
    };
    if let Some(name) = &update.name {
        set("name", json!(name));
    }
    if let Some(url) = &update.url {
        set("url", json!(url));
    }
    if let Some(secret) = &update.secret {
        set("secret", json!(secret));
    }
    if !update.event_types.is_empty() {
        set("event_types", json!(update.event_types));
    }
    if let Some(project) = &update.project {
        set("project", json!(project));
    } else if update.global {
        set("project", Value::Null);
    }
    if update.enable || update.disable {
        set("enabled", json!(update.enable));
    }
    if let Some(ordering) = &update.ordering {
        set("ordering", json!(ordering));
    }
    if body.is_empty() {
        bail!(
            "nothing to change: give at least one of --name, --url, --secret, --event-type, --project, --global, --enable, --disable, --ordering"
        );
    }
    Ok(JsonBody(Value::Object(body).to_string()))
}

/// The payload's JSON text, exactly as written in the file or on stdin.
fn read_payload(send: &SendEvent) -> anyhow::Result<String> {
    let (text, source) = match &send.file {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("give the payload JSON with --file FILE or on standard input");
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            (text, "standard input".to_owned())
        }
    };
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&text)
        .with_context(|| format!("the payload in {source} is not valid JSON"))?;
    Ok(raw.get().to_owned())
}

/// The publish request, with the payload spliced in as raw text: re-serializing
/// it would change its bytes (spacing, key order, number spelling), and the
/// bytes are what receivers get and what is signed.
fn event_body(send: &SendEvent, payload: &str) -> anyhow::Result<JsonBody> {
    let mut envelope = Map::new();
    envelope.insert("type".to_owned(), json!(send.event_type));
    if let Some(project) = &send.project {
        envelope.insert("project".to_owned(), json!(project));
    }
    if let Some(key) = &send.ordering_key {
        envelope.insert("ordering_key".to_owned(), json!(key));
    }
    if !send.properties.is_empty() {
        let properties: Map<String, Value> = send
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        envelope.insert("properties".to_owned(), Value::Object(properties));
    }
    let head = serde_json::to_string(&envelope)?;
    let Some(head) = head.strip_suffix('}') else {
        bail!("internal error: a JSON object did not end with }}");
    };
    let separator = if envelope.is_empty() { "" } else { "," };
    Ok(JsonBody(format!(
        "{head}{separator}\"payload\":{payload}}}"
    )))
}

fn webhook_url(client: &Client, id: &str, suffix: &str) -> anyhow::Result<Url> {
    resource_url(client, "/api/v1/webhooks", id, suffix)
}

fn delivery_url(client: &Client, id: &str, suffix: &str) -> anyhow::Result<Url> {
    resource_url(client, "/api/v1/deliveries", id, suffix)
}

/// `<collection>/<id><suffix>`, the id escaped as one path segment so that
/// whatever was typed cannot reach another route.
pub(crate) fn resource_url(
    client: &Client,
    collection: &str,
    id: &str,
    suffix: &str,
) -> anyhow::Result<Url> {
    let mut url = client.url(collection)?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("HERALD_URL cannot have a path"))?
        .push(id)
        .extend(suffix.split('/').filter(|s| !s.is_empty()));
    Ok(url)
}

fn deliveries_url(client: &Client, list: &ListDeliveries) -> anyhow::Result<Url> {
    let mut url = webhook_url(client, &list.webhook, "/deliveries")?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(status) = &list.status {
            query.append_pair("status", status);
        }
        if let Some(since) = &list.since {
            query.append_pair("since", &time_arg(since)?);
        }
        if let Some(limit) = list.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(cursor) = &list.cursor {
            query.append_pair("cursor", cursor);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// RFC 3339 as given, or a duration ago (`2h`) as RFC 3339.
fn time_arg(text: &str) -> anyhow::Result<String> {
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(Timestamp::now()
            .saturating_sub(ago.min(Duration::from_secs(100 * 365 * 86400)))
            .to_rfc3339()),
        Err(_) => Ok(text.to_owned()),
    }
}

/// Lists come as `{"items": [...]}`.
pub(crate) fn items(answer: &Value) -> &[Value] {
    answer["items"]
        .as_array()
        .or_else(|| answer.as_array())
        .map_or(&[], Vec::as_slice)
}

fn webhook_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|hook| {
            let state = match (&hook["enabled"], &hook["disabled_reason"]) {
                (Value::Bool(true), _) => "enabled".to_owned(),
                (_, Value::String(reason)) => format!("disabled ({reason})"),
                _ => "disabled".to_owned(),
            };
            vec![
                cell(&hook["id"]),
                cell(&hook["name"]),
                scope(hook),
                state,
                cell(&hook["event_types"]),
                cell(&hook["url"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no webhooks".to_owned();
    }
    table(
        &["ID", "NAME", "SCOPE", "STATE", "EVENT TYPES", "URL"],
        &rows,
    )
}

fn delivery_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|d| {
            vec![
                cell(&d["id"]),
                cell(&d["status"]),
                cell(&d["event_type"]),
                cell(&d["attempts"]),
                cell(&d["last_status_code"]),
                cell(&d["created_at"]),
                cell(&d["next_attempt_at"]),
                cell(&d["last_error"]),
            ]
        })
        .collect();
    let mut text = if rows.is_empty() {
        "no deliveries".to_owned()
    } else {
        table(
            &[
                "ID",
                "STATUS",
                "EVENT TYPE",
                "ATTEMPTS",
                "LAST STATUS",
                "CREATED",
                "NEXT ATTEMPT",
                "LAST ERROR",
            ],
            &rows,
        )
    };
    if let Value::String(cursor) = &answer["next_cursor"] {
        text.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    text
}

/// A delivery, its event, then each attempt with its request and response.
fn delivery_detail(detail: &Value) -> String {
    let mut event = detail["event"].clone();
    // The payload is shown as the JSON it is, not as nested fields.
    if let Some(payload) = event.get_mut("payload").filter(|p| !p.is_string()) {
        *payload = Value::String(payload.to_string());
    }
    let mut parts = vec![
        fields(&detail["delivery"], DELIVERY_FIELDS),
        format!("event:\n{}", indent(&fields(&event, EVENT_FIELDS))),
    ];
    let attempts = detail["attempts"].as_array().map_or(&[][..], Vec::as_slice);
    if attempts.is_empty() {
        parts.push("attempts: none yet".to_owned());
    }
    for attempt in attempts {
        parts.push(attempt_block(attempt));
    }
    parts.join("\n\n")
}

fn attempt_block(attempt: &Value) -> String {
    let mut summary = attempt.clone();
    let mut sections = Vec::new();
    if let Some(map) = summary.as_object_mut() {
        for key in ["request_headers", "response_headers", "response_body"] {
            if let Some(value) = map.remove(key) {
                sections.push((key, value));
            }
        }
    }
    let mut text = format!(
        "attempt {}:\n{}",
        cell(&attempt["number"]),
        indent(&fields(&summary, ATTEMPT_FIELDS))
    );
    for (key, value) in sections {
        let body = match &value {
            Value::Array(headers) => headers
                .iter()
                .map(|h| format!("{}: {}", cell(&h["name"]), cell(&h["value"])))
                .collect::<Vec<_>>()
                .join("\n"),
            other => cell(other),
        };
        text.push_str(&format!("\n  {key}:\n{}", indent(&indent(&body))));
    }
    text
}

const RECEIVER_FIELDS: &[&str] = &[
    "id",
    "name",
    "kind",
    "urn",
    "url",
    "username",
    "secret",
    "github_legacy_sha1",
    "gitlab_standard_webhooks",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
];
const REQUEST_FIELDS: &[&str] = &[
    "id",
    "received_at",
    "outcome",
    "status_code",
    "verified",
    "verification",
    "event_name",
    "delivery_id",
    "message",
    "event_ids",
    "body_truncated",
];

pub async fn receivers(args: ClientArgs<ReceiverCommand>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mode = Mode { json: args.json };
    let show = |receiver: &Value| fields(receiver, RECEIVER_FIELDS);
    match args.command {
        ReceiverCommand::Create(create) => {
            let url = client.url("/api/v1/receivers")?;
            let answer = client
                .send(Method::POST, url, Some(create_receiver_body(&create)), &[])
                .await?;
            mode.print(&answer, show)
        }
        ReceiverCommand::List => {
            let answer = client.get(client.url("/api/v1/receivers")?).await?;
            mode.print(&answer, receiver_table)
        }
        ReceiverCommand::Show { id } => {
            let answer = client.get(receiver_url(&client, &id, "")?).await?;
            mode.print(&answer, show)
        }
        ReceiverCommand::Update(update) => {
            let body = update_receiver_body(&update)?;
            let url = receiver_url(&client, &update.id, "")?;
            let answer = client.send(Method::PATCH, url, Some(body), &[]).await?;
            mode.print(&answer, show)
        }
        ReceiverCommand::Delete { id } => {
            let url = receiver_url(&client, &id, "")?;
            let answer = client.send(Method::DELETE, url, None, &[]).await?;
            mode.print(&answer, |_| format!("deleted receiver {id}"))
        }
        ReceiverCommand::RotateSecret(rotate) => {
            let body = rotate_body(&rotate)?;
            let url = receiver_url(&client, &rotate.id, "/rotate-secret")?;
            let answer = client.send(Method::POST, url, Some(body), &[]).await?;
            mode.print(&answer, show)
        }
        ReceiverCommand::Requests(requests) => match &requests.request_id {
            Some(request_id) => {
                let mut url = receiver_url(&client, &requests.id, "/requests")?;
                url.path_segments_mut()
                    .map_err(|()| anyhow::anyhow!("HERALD_URL cannot have a path"))?
                    .push(request_id);
                let answer = client.get(url).await?;
                mode.print(&answer, request_detail)
            }
            None => {
                let mut url = receiver_url(&client, &requests.id, "/requests")?;
                page_query(&mut url, requests.limit, requests.cursor.as_deref());
                let answer = client.get(url).await?;
                mode.print(&answer, request_table)
            }
        },
    }
}

fn create_receiver_body(create: &CreateReceiver) -> JsonBody {
    let mut body = json!({"kind": create.kind, "urn": create.urn});
    let optional = [
        ("name", &create.name),
        ("secret", &create.secret),
        ("username", &create.username),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    if create.github_legacy_sha1 {
        body["github_legacy_sha1"] = json!(true);
    }
    if create.gitlab_standard_webhooks {
        body["gitlab_standard_webhooks"] = json!(true);
    }
    JsonBody(body.to_string())
}

/// Only the fields given on the command line, so the rest stay as they are.
fn update_receiver_body(update: &UpdateReceiver) -> anyhow::Result<JsonBody> {
    let mut body = Map::new();
    if let Some(name) = &update.name {
        body.insert("name".to_owned(), json!(name));
    } else if update.no_name {
        body.insert("name".to_owned(), Value::Null);
    }
    for (key, value) in [
        ("urn", &update.urn),
        ("secret", &update.secret),
        ("username", &update.username),
    ] {
        if let Some(value) = value {
            body.insert(key.to_owned(), json!(value));
        }
    }
    for (key, value) in [
        ("github_legacy_sha1", update.github_legacy_sha1),
        ("gitlab_standard_webhooks", update.gitlab_standard_webhooks),
    ] {
        if let Some(value) = value {
            body.insert(key.to_owned(), json!(value));
        }
    }
    if body.is_empty() {
        bail!(
            "nothing to change: give at least one of --name, --no-name, --urn, --secret, --username, --github-legacy-sha1, --gitlab-standard-webhooks"
        );
    }
    Ok(JsonBody(Value::Object(body).to_string()))
}

fn rotate_body(rotate: &RotateReceiverSecret) -> anyhow::Result<JsonBody> {
    let mut body = Map::new();
    if let Some(secret) = &rotate.secret {
        body.insert("secret".to_owned(), json!(secret));
    }
    if let Some(grace) = &rotate.grace {
        let grace = humantime::parse_duration(grace)
            .with_context(|| format!("--grace {grace:?} is not a duration such as 24h or 0s"))?;
        body.insert("grace_period_seconds".to_owned(), json!(grace.as_secs()));
    }
    Ok(JsonBody(Value::Object(body).to_string()))
}

fn receiver_url(client: &Client, id: &str, suffix: &str) -> anyhow::Result<Url> {
    resource_url(client, "/api/v1/receivers", id, suffix)
}

fn page_query(url: &mut Url, limit: Option<u32>, cursor: Option<&str>) {
    {
        let mut query = url.query_pairs_mut();
        if let Some(limit) = limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
}

fn receiver_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["name"]),
                cell(&r["kind"]),
                cell(&r["urn"]),
                cell(&r["url"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no receivers".to_owned();
    }
    table(&["ID", "NAME", "KIND", "URN", "URL"], &rows)
}

fn request_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["received_at"]),
                cell(&r["status_code"]),
                cell(&r["outcome"]),
                cell(&r["event_name"]),
                cell(&Value::from(r["event_ids"].as_array().map_or(0, Vec::len))),
                cell(&r["message"]),
            ]
        })
        .collect();
    let mut text = if rows.is_empty() {
        "no requests".to_owned()
    } else {
        table(
            &[
                "ID", "RECEIVED", "STATUS", "OUTCOME", "EVENT", "EVENTS", "MESSAGE",
            ],
            &rows,
        )
    };
    if let Value::String(cursor) = &answer["next_cursor"] {
        text.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    text
}

/// A logged request: its fields, then its headers and body.
fn request_detail(detail: &Value) -> String {
    let mut summary = detail.clone();
    if let Some(map) = summary.as_object_mut() {
        map.remove("headers");
        map.remove("body");
    }
    let headers = detail["headers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|h| format!("{}: {}", cell(&h["name"]), cell(&h["value"])))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "{}\nheaders:\n{}\nbody:\n{}",
        fields(&summary, REQUEST_FIELDS),
        indent(&headers),
        indent(&cell(&detail["body"]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(project: Option<&str>, properties: &[(&str, &str)]) -> SendEvent {
        SendEvent {
            event_type: "build:done".into(),
            project: project.map(Into::into),
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            idempotency_key: None,
            ordering_key: None,
            file: None,
        }
    }

    #[test]
    fn the_payload_is_spliced_byte_exact() {
        let payload = r#"{"z": 1,   "a": [1.50, "é"]}"#;
        let body = event_body(&send(Some("p\"q"), &[("k", "v")]), payload)
            .unwrap()
            .0;
        assert!(
            body.ends_with(&format!(",\"payload\":{payload}}}")),
            "{body}"
        );
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["project"], "p\"q");
        assert_eq!(parsed["properties"]["k"], "v");
        assert_eq!(parsed["type"], "build:done");
        let bare = event_body(&send(None, &[]), "[1]").unwrap().0;
        assert_eq!(bare, r#"{"type":"build:done","payload":[1]}"#);
    }

    #[test]
    fn an_update_sends_only_what_was_given() {
        let update = UpdateWebhook {
            id: "x".into(),
            name: None,
            url: None,
            secret: None,
            event_types: vec![],
            project: None,
            global: true,
            enable: false,
            disable: true,
            ordering: None,
        };
        let body: Value = serde_json::from_str(&update_body(&update).unwrap().0).unwrap();
        assert_eq!(body, json!({"enabled": false, "project": null}));
        let nothing = UpdateWebhook {
            global: false,
            disable: false,
            ..update
        };
        assert!(update_body(&nothing).is_err());
    }

    #[test]
    fn an_event_type_shows_its_schema_and_example_once() {
        let def = json!({
            "key": "build:finished", "description": "A build", "family": "custom",
            "builtin": false, "schema": {"type": "object"}, "example": {"id": 4711},
        });
        let shown = event_type_detail(&def);
        assert_eq!(shown.matches("schema").count(), 1, "{shown}");
        assert_eq!(shown.matches("4711").count(), 1, "{shown}");
        assert!(shown.starts_with("key:"), "{shown}");
    }

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        assert_eq!(
            time_arg("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05Z"
        );
        let ago = Timestamp::parse_rfc3339(&time_arg("2h").unwrap()).unwrap();
        let expected = Timestamp::now().saturating_sub(Duration::from_secs(7200));
        assert!((ago.millis() - expected.millis()).abs() < 60_000);
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        let client = Client::new(
            "http://127.0.0.1:9/prefix/".parse().unwrap(),
            None,
            crate::client::TokenOrigin::Missing,
        )
        .unwrap();
        let url = webhook_url(&client, "../healthz?x", "/test").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/api/v1/webhooks/..%2Fhealthz%3Fx/test"
        );
    }
}

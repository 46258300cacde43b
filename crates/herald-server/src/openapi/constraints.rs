//! The rules the server enforces on what it is sent, stated in the document:
//! lengths, ranges, patterns, enums, and one request schema per code host kind.
//!
//! They are applied to the generated document here rather than with
//! `#[schema(...)]` on each field because utoipa takes only literal patterns
//! (the URL and name patterns are shared by several DTOs) and cannot derive a
//! `oneOf` per receiver kind from the flat `CreateReceiver`. Each rule repeats
//! one the application checks (`herald-core`, `herald-app`, the catalogue);
//! `scripts/schemathesis` checks the two agree by sending the server requests
//! generated from this document. A rule naming a schema, field or parameter
//! that no longer exists panics, which the `openapi` test reports.
//!
//! Some rules depend on state or on another field and cannot be written in
//! JSON Schema; the schemas' descriptions say so: an event type or pattern
//! must be in the live catalogue, a payload or example must match its type's
//! JSON Schema, a monitor query must parse, a repository source must pass the
//! server's source policy and address guard, and which receiver options a
//! PATCH may set depends on the stored receiver's kind.

use herald_app::webhooks::{
    MOST_DISABLE_AFTER, MOST_FAILING_AFTER, MOST_IN_FLIGHT, MOST_PER_SECOND,
};
use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

/// Unicode control characters (`char::is_control`, category Cc), which
/// names, descriptions, project keys and queries refuse.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// An `http`/`https` URL with a host, as `TargetUrl` parses it. Narrower than
/// the server in two ways, so that every string it matches is accepted:
/// hosts are names whose last label starts with a letter, or dotted IPv4
/// (no IPv6 literals), and ports have at most 4 digits.
fn http_url() -> String {
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let host = format!(r"(([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?|({octet}\.){{3}}{octet})");
    let pct = "%[0-9A-Fa-f]{2}";
    format!(
        r"^[Hh][Tt][Tt][Pp][Ss]?://(([A-Za-z0-9._~!$&'()*+,;=:-]|{pct})+@)?{host}(:[0-9]{{1,4}})?([/?#]([A-Za-z0-9._~!$&'()*+,;=:@/?-]|{pct})*)?$"
    )
}

/// A receiver's base URL: an `http`/`https` URL with a host and no
/// credentials, query or fragment (hosts and ports as in [`http_url`]).
fn base_url() -> String {
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let host = format!(r"(([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?|({octet}\.){{3}}{octet})");
    let pct = "%[0-9A-Fa-f]{2}";
    format!(
        r"^[Hh][Tt][Tt][Pp][Ss]?://{host}(:[0-9]{{1,4}})?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|{pct})*)?$"
    )
}

/// A repository source in one of the forms Herald fetches from: a URL of a
/// scheme git fetches with here, scp-like `host:path`, or an absolute path.
/// Which forms a server takes is its configuration's (ssh, local roots).
const SOURCE: &str = r"^(([Hh][Tt][Tt][Pp][Ss]?|[Ss][Ss][Hh]|[Gg][Ii][Tt]|[Ff][Ii][Ll][Ee])://[\x21-\x7E]+|[A-Za-z0-9._@][A-Za-z0-9._@-]*:[\x21-\x39\x3B-\x7E][\x21-\x7E]*|/[\x21-\x7E]*)$";

/// An event type key a producer may publish or register: 1 to 100 of
/// `A-Z a-z 0-9 _ - . :`, not one of Herald's own `herald:` types.
const NOT_HERALD_KEY: &str = r"^(?!herald:)[A-Za-z0-9_.:-]{1,100}$";
/// A subscription pattern: a key, a key prefix ending in `*`, or `*`.
const TYPE_PATTERN: &str = r"^(\*|[A-Za-z0-9_.:-]{1,100}\*?)$";

const FAMILIES: [&str; 6] = [
    "custom",
    "sourcegraph",
    "sonarqube",
    "code_monitor",
    "semgrep",
    "code_host",
];

/// Text with no control characters and something besides white space (the
/// server trims it).
fn non_blank() -> String {
    format!("^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$")
}

fn name() -> Value {
    json!({"minLength": 1, "maxLength": 100, "pattern": non_blank()})
}

fn secret() -> Value {
    json!({"minLength": 1, "maxLength": 200})
}

fn target_url() -> Value {
    json!({"maxLength": 512, "pattern": http_url()})
}

fn project() -> Value {
    json!({
        "minLength": 1,
        "maxLength": 400,
        "pattern": format!("^[^\\s{CONTROL}]([^{CONTROL}]*[^\\s{CONTROL}])?$"),
    })
}

/// The document as JSON with the rules below added. Edited as JSON, which is
/// simpler than utoipa's builders, and left as JSON: utoipa cannot read
/// every schema it can write back into its own types.
pub fn apply(document: &OpenApi) -> Value {
    let mut doc = serde_json::to_value(document).expect("an OpenAPI document serializes");
    webhooks(&mut doc);
    events(&mut doc);
    event_types(&mut doc);
    receivers(&mut doc);
    repositories(&mut doc);
    monitors(&mut doc);
    doc
}

fn webhooks(doc: &mut Value) {
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        merge(property(doc, schema, "name"), name());
        merge(property(doc, schema, "secret"), secret());
        merge(property(doc, schema, "url"), target_url());
        merge(property(doc, schema, "project"), project());
        merge(
            property(doc, schema, "event_types"),
            json!({
                "minItems": 1,
                "maxItems": 100,
                "items": {"type": "string", "pattern": TYPE_PATTERN},
            }),
        );
        let settings = [
            ("failing_after", 1, MOST_FAILING_AFTER),
            ("disable_after", 0, MOST_DISABLE_AFTER),
            ("max_in_flight", 1, MOST_IN_FLIGHT),
            ("max_per_second", 1, MOST_PER_SECOND),
        ];
        for (field, least, most) in settings {
            merge(
                property(doc, schema, field),
                json!({"minimum": least, "maximum": most}),
            );
        }
    }
}

fn events(doc: &mut Value) {
    merge(
        property(doc, "PublishEvent", "type"),
        json!({"minLength": 1, "maxLength": 100, "pattern": NOT_HERALD_KEY}),
    );
    merge(property(doc, "PublishEvent", "project"), project());
    merge(
        property(doc, "PublishEvent", "payload"),
        json!({"type": ["object", "array"]}),
    );
    merge(
        property(doc, "PublishEvent", "properties"),
        json!({"propertyNames": {"type": "string", "minLength": 1}}),
    );
    *parameter(doc, "/api/v1/events", "post", "Idempotency-Key")
        .get_mut("schema")
        .expect("a parameter has a schema") = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": r"^[\x21-\x7E]+$",
    });
}

fn event_types(doc: &mut Value) {
    // Built-in examples are objects or arrays (semgrep's is an array), and a
    // custom type's is whatever its schema accepts; schemas are JSON Schemas,
    // which may be booleans.
    for schema in ["EventType", "CreateEventType", "ReplaceEventType"] {
        property(doc, schema, "example").remove("type");
        merge(
            property(doc, schema, "schema"),
            json!({"type": ["object", "boolean"]}),
        );
    }
    for schema in ["CreateEventType", "ReplaceEventType"] {
        merge(
            property(doc, schema, "description"),
            json!({"maxLength": 1000, "pattern": r"^[^\u0000]*$"}),
        );
        let mut families: Vec<Value> = FAMILIES.iter().map(|f| json!(f)).collect();
        families.push(Value::Null);
        merge(property(doc, schema, "family"), json!({"enum": families}));
        merge(
            property(doc, schema, "key"),
            json!({"minLength": 1, "maxLength": 100, "pattern": NOT_HERALD_KEY}),
        );
    }
    *parameter(doc, "/api/v1/event-types/{key}", "put", "key")
        .get_mut("schema")
        .expect("a parameter has a schema") =
        json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_HERALD_KEY});
}

fn receivers(doc: &mut Value) {
    let urn = json!({"maxLength": 512, "pattern": base_url()});
    let username = json!({
        "minLength": 1,
        "maxLength": 100,
        "pattern": format!("^[^:{CONTROL}]*$"),
    });
    for schema in ["CreateReceiver", "UpdateReceiver"] {
        merge(property(doc, schema, "name"), name());
        merge(property(doc, schema, "urn"), urn.clone());
        merge(property(doc, schema, "secret"), secret());
        merge(property(doc, schema, "username"), username.clone());
    }
    merge(property(doc, "RotateSecret", "secret"), secret());

    // Each kind takes only its own options: one schema per kind, as the
    // flat struct cannot say so. A flag of another kind may be sent as false.
    let create = schema(doc, "CreateReceiver").clone();
    let properties = create["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let only_false = json!({"type": "boolean", "enum": [false], "description": "Only `false` (the default) for this kind."});
    let per_kind = |kind: &str, own: &[&str]| {
        let mut props: Map<String, Value> = properties
            .iter()
            .filter(|(field, _)| {
                !matches!(
                    field.as_str(),
                    "kind" | "username" | "github_legacy_sha1" | "gitlab_standard_webhooks"
                )
            })
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        props.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
        for option in ["github_legacy_sha1", "gitlab_standard_webhooks"] {
            props.insert(option.into(), only_false.clone());
        }
        for option in own {
            if let Some(value) = properties.get(*option) {
                props.insert((*option).into(), value.clone());
            }
        }
        json!({
            "type": "object",
            "title": kind,
            "required": ["kind", "urn"],
            "properties": props,
            "additionalProperties": false,
        })
    };
    *schema(doc, "CreateReceiver") = json!({
        "description": "A receiver to create. One schema per code host kind: `username` is for Azure DevOps only, `github_legacy_sha1` for GitHub only and `gitlab_standard_webhooks` for GitLab only.",
        "oneOf": [
            per_kind("github", &["github_legacy_sha1"]),
            per_kind("gitlab", &["gitlab_standard_webhooks"]),
            per_kind("bitbucket_server", &[]),
            per_kind("bitbucket_cloud", &[]),
            per_kind("azure_devops", &["username"]),
        ],
    });
}

fn repositories(doc: &mut Value) {
    for schema in ["CreateRepository", "UpdateRepository"] {
        merge(
            property(doc, schema, "name"),
            json!({"minLength": 1, "maxLength": 512, "pattern": non_blank()}),
        );
        merge(
            property(doc, schema, "url"),
            json!({"minLength": 1, "maxLength": 2048, "pattern": SOURCE}),
        );
        merge(
            property(doc, schema, "fetch_interval_seconds"),
            json!({"minimum": 1, "maximum": 604_800}),
        );
        merge(
            property(doc, schema, "branches"),
            json!({"maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 255}}),
        );
    }
}

fn monitors(doc: &mut Value) {
    for schema in ["CreateMonitor", "UpdateMonitor"] {
        merge(
            property(doc, schema, "description"),
            json!({"minLength": 1, "maxLength": 1000, "pattern": non_blank()}),
        );
        merge(
            property(doc, schema, "query"),
            json!({"minLength": 1, "pattern": format!("^[^{CONTROL}]*$")}),
        );
        merge(property(doc, schema, "actions"), json!({"maxItems": 10}));
    }
    merge(property(doc, "ActionRequest", "url"), target_url());
    merge(property(doc, "ActionRequest", "secret"), secret());
    merge(
        parameter(doc, "/api/v1/monitors/{id}/runs", "get", "limit")
            .get_mut("schema")
            .and_then(Value::as_object_mut)
            .expect("a parameter has a schema"),
        json!({"minimum": 1, "maximum": 100}),
    );
}

fn schema<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    doc.pointer_mut(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("no schema {name}"))
}

fn property<'a>(doc: &'a mut Value, schema: &str, field: &str) -> &'a mut Map<String, Value> {
    doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no property {schema}.{field}"))
}

fn parameter<'a>(
    doc: &'a mut Value,
    path: &str,
    method: &str,
    name: &str,
) -> &'a mut Map<String, Value> {
    doc["paths"][path][method]["parameters"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
        .find(|parameter| parameter.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no parameter {name} of {method} {path}"))
}

fn merge(target: &mut Map<String, Value>, rules: Value) {
    if let Value::Object(rules) = rules {
        target.extend(rules);
    }
}

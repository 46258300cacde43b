//! Schema rejections for every family: a missing required field, a wrong type, and
//! the family's own traps; unknown types with suggestions; what must be accepted.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

use herald_catalogue::keys::*;
use herald_catalogue::{Catalogue, PayloadError};
use serde_json::{Value, json};

fn example(catalogue: &Catalogue, key: &str) -> Value {
    catalogue.get(key).unwrap().example.clone()
}

/// The example of `key` with the field at `pointer` removed.
fn without(catalogue: &Catalogue, key: &str, pointer: &str) -> Value {
    let mut value = example(catalogue, key);
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .shift_remove(name)
        .unwrap();
    value
}

/// The example of `key` with the field at `pointer` set (replaced, or added to its object).
fn with(catalogue: &Catalogue, key: &str, pointer: &str, replacement: Value) -> Value {
    let mut value = example(catalogue, key);
    if let Some(field) = value.pointer_mut(pointer) {
        *field = replacement;
        return value;
    }
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(name.to_owned(), replacement);
    value
}

fn rejection(catalogue: &Catalogue, key: &str, payload: &Value) -> (String, String) {
    match catalogue.validate(key, payload) {
        Err(PayloadError::Invalid { pointer, rule }) => (pointer, rule),
        other => panic!("{key}: expected a rejection, got {other:?}"),
    }
}

fn assert_rejected(catalogue: &Catalogue, key: &str, payload: Value, pointer: &str, rule: &str) {
    let (got_pointer, got_rule) = rejection(catalogue, key, &payload);
    assert_eq!(
        (got_pointer.as_str(), got_rule.as_str()),
        (pointer, rule),
        "{key}"
    );
}

#[test]
fn every_example_matches_its_schema() {
    let catalogue = Catalogue::builtin();
    for def in catalogue.list() {
        assert_eq!(
            catalogue.validate(&def.key, &def.example),
            Ok(()),
            "{}",
            def.key
        );
    }
}

#[test]
fn sourcegraph_batch_changes_need_every_field_with_its_type() {
    let c = Catalogue::builtin();
    for key in [BATCH_CHANGE_APPLY, BATCH_CHANGE_CLOSE, BATCH_CHANGE_DELETE] {
        assert_rejected(
            &c,
            key,
            without(&c, key, "/name"),
            "/name",
            r#"required field "name" is missing"#,
        );
        assert_rejected(
            &c,
            key,
            with(&c, key, "/closed_at", json!(5)),
            "/closed_at",
            "must be a string or null, got an integer",
        );
    }
}

#[test]
fn sourcegraph_changesets_need_every_field_but_allow_null_before_publication() {
    let c = Catalogue::builtin();
    let key = CHANGESET_PUBLISH_ERROR;
    assert_rejected(
        &c,
        key,
        without(&c, key, "/updated_at"),
        "/updated_at",
        r#"required field "updated_at" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/labels", json!("bug")),
        "/labels",
        "must be an array, got a string",
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/labels/0", json!(1)),
        "/labels/0",
        "must be a string, got an integer",
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/title", json!(3)),
        "/title",
        "must be a string or null, got an integer",
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/id", Value::Null),
        "/id",
        "must be a string, got null",
    );

    let mut unpublished = example(&c, key);
    for field in [
        "title",
        "body",
        "state",
        "external_id",
        "author_name",
        "author_email",
        "external_url",
        "fork_namespace",
        "fork_name",
        "review_state",
        "check_state",
    ] {
        unpublished[field] = Value::Null;
    }
    unpublished["error"] = json!("the code host refused the branch");
    assert_eq!(c.validate(key, &unpublished), Ok(()));
}

#[test]
fn code_monitor_results_need_repository_commit_and_one_match_kind() {
    let c = Catalogue::builtin();
    let key = CODE_MONITOR_NOTIFICATION;
    assert_rejected(
        &c,
        key,
        without(&c, key, "/query"),
        "/query",
        r#"required field "query" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        without(&c, key, "/results/0/commit"),
        "/results/0/commit",
        r#"required field "commit" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/monitorURL", json!(["x"])),
        "/monitorURL",
        "must be a string, got an array",
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/results/0/matchedDiffRanges/1", json!([91])),
        "/results/0/matchedDiffRanges/1",
        "the value has less than 2 items",
    );
    // Ranges without the text they index.
    assert_rejected(
        &c,
        key,
        without(&c, key, "/results/1/message"),
        "/results/1/message",
        r#"required field "message" is missing"#,
    );
    // Both kinds at once.
    let both = with(&c, key, "/results/1/diff", json!("d"));
    let (pointer, _) = rejection(&c, key, &both);
    assert_eq!(pointer, "/results/1");
}

#[test]
fn sonarqube_needs_a_project_with_a_key() {
    let c = Catalogue::builtin();
    let key = SONARQUBE_ANALYSIS;
    assert_rejected(
        &c,
        key,
        without(&c, key, "/project"),
        "/project",
        r#"required field "project" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        without(&c, key, "/project/key"),
        "/project/key",
        r#"required field "key" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        with(
            &c,
            key,
            "/qualityGate/conditions/1/onLeakPeriod",
            json!("yes"),
        ),
        "/qualityGate/conditions/1/onLeakPeriod",
        "must be a boolean, got a string",
    );
    assert_rejected(
        &c,
        key,
        with(
            &c,
            key,
            "/properties",
            json!({"sonar.analysis.buildNumber": 12345}),
        ),
        "/properties/sonar.analysis.buildNumber",
        "must be a string, got an integer",
    );
}

#[test]
fn semgrep_findings_are_an_array_of_wrapped_findings() {
    let c = Catalogue::builtin();
    let key = SEMGREP_FINDINGS;
    let finding_object = example(&c, key)[0].clone();
    assert_rejected(
        &c,
        key,
        finding_object,
        "",
        "must be an array, got an object",
    );
    for field in ["check_id", "path", "line", "severity", "id"] {
        let pointer = format!("/0/semgrep_finding/{field}");
        assert_rejected(
            &c,
            key,
            without(&c, key, &pointer),
            &pointer,
            &format!("required field {field:?} is missing"),
        );
    }
    assert_rejected(
        &c,
        key,
        with(&c, key, "/0/semgrep_finding/line", json!("185")),
        "/0/semgrep_finding/line",
        "must be an integer, got a string",
    );
    assert_rejected(
        &c,
        key,
        json!([{"finding": {}}]),
        "/0/semgrep_finding",
        r#"required field "semgrep_finding" is missing"#,
    );
    // Optional fields may be missing or null.
    let mut sparse = without(&c, key, "/0/semgrep_finding/metadata");
    sparse[0]["semgrep_finding"]["cwe"] = json!(["CWE-319", "CWE-311"]);
    sparse[0]["semgrep_finding"]["end_line"] = Value::Null;
    assert_eq!(c.validate(key, &sparse), Ok(()));
}

#[test]
fn semgrep_scans_are_a_wrapped_object() {
    let c = Catalogue::builtin();
    let key = SEMGREP_SCAN;
    for field in ["repository", "commit", "id"] {
        let pointer = format!("/semgrep_scan/{field}");
        assert_rejected(
            &c,
            key,
            without(&c, key, &pointer),
            &pointer,
            &format!("required field {field:?} is missing"),
        );
    }
    assert_rejected(
        &c,
        key,
        with(&c, key, "/semgrep_scan/deployment_id", json!("1")),
        "/semgrep_scan/deployment_id",
        "must be an integer or null, got a string",
    );
    assert_rejected(
        &c,
        key,
        json!([example(&c, key)]),
        "",
        "must be an object, got an array",
    );
}

#[test]
fn repo_push_is_closed_and_names_a_known_code_host() {
    let c = Catalogue::builtin();
    let key = REPO_PUSH;
    assert_rejected(
        &c,
        key,
        without(&c, key, "/after"),
        "/after",
        r#"required field "after" is missing"#,
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/commits", json!({})),
        "/commits",
        "must be an array, got an object",
    );
    let (pointer, rule) = rejection(
        &c,
        key,
        &with(&c, key, "/code_host/kind", json!("sourceforge")),
    );
    assert_eq!(pointer, "/code_host/kind");
    assert!(
        rule.starts_with("must be one of") && rule.contains("bitbucket_server"),
        "{rule}"
    );
    assert_rejected(
        &c,
        key,
        with(&c, key, "/extra", json!(1)),
        "/extra",
        r#"field "extra" is not allowed here"#,
    );
}

#[test]
fn operational_events_are_closed_and_complete() {
    let c = Catalogue::builtin();
    for key in [
        HERALD_WEBHOOK_DISABLED,
        HERALD_WEBHOOK_FAILING,
        HERALD_WEBHOOK_PAUSED,
        HERALD_WEBHOOK_RECOVERED,
        HERALD_DELIVERY_EXHAUSTED,
        HERALD_DELIVERY_RECOVERED,
        HERALD_PING,
    ] {
        assert_rejected(
            &c,
            key,
            without(&c, key, "/webhook_id"),
            "/webhook_id",
            r#"required field "webhook_id" is missing"#,
        );
        assert_rejected(
            &c,
            key,
            with(&c, key, "/webhook_id", json!(7)),
            "/webhook_id",
            "must be a string, got an integer",
        );
        assert_rejected(
            &c,
            key,
            with(&c, key, "/surprise", json!(true)),
            "/surprise",
            r#"field "surprise" is not allowed here"#,
        );
    }
    let (pointer, rule) = rejection(
        &c,
        HERALD_WEBHOOK_DISABLED,
        &with(&c, HERALD_WEBHOOK_DISABLED, "/reason", json!("bored")),
    );
    assert_eq!(pointer, "/reason");
    assert_eq!(rule, r#"must be one of ["gone","failure_policy"]"#);
}

#[test]
fn unknown_types_name_the_closest_known_ones() {
    let c = Catalogue::builtin();
    let err = c.validate("changeset:updated", &json!({})).unwrap_err();
    let PayloadError::UnknownType { key, closest } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(key, "changeset:updated");
    assert_eq!(closest[0], "changeset:update");
    assert_eq!(closest.len(), 3);
    assert_eq!(
        err.to_string(),
        r#"unknown event type "changeset:updated"; did you mean "changeset:update", "changeset:close" or "changeset:update_error"?"#
    );

    let err = c.validate("semgrep:finding", &json!([])).unwrap_err();
    let PayloadError::UnknownType { closest, .. } = err else {
        panic!()
    };
    assert_eq!(closest[0], "semgrep:findings");
}

#[test]
fn rejection_messages_say_where_and_what() {
    let c = Catalogue::builtin();
    let err = c.validate(SEMGREP_FINDINGS, &json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid payload: must be an array, got an object"
    );
    let err = c
        .validate(
            SONARQUBE_ANALYSIS,
            &without(&c, SONARQUBE_ANALYSIS, "/taskId"),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid payload at "/taskId": required field "taskId" is missing"#
    );
}

#[test]
fn the_catalogue_has_every_type_of_the_issue() {
    let c = Catalogue::builtin();
    let keys: Vec<&str> = c.list().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "batch_change:apply",
            "batch_change:close",
            "batch_change:delete",
            "changeset:close",
            "changeset:publish",
            "changeset:publish_error",
            "changeset:update",
            "changeset:update_error",
            "code_monitor:notification",
            "code_monitor:slack",
            "herald:delivery.exhausted",
            "herald:delivery.recovered",
            "herald:ping",
            "herald:webhook.disabled",
            "herald:webhook.failing",
            "herald:webhook.paused",
            "herald:webhook.recovered",
            "repo:push",
            "semgrep:findings",
            "semgrep:scan",
            "sonarqube:analysis",
        ]
    );
    for def in c.list() {
        assert!(def.builtin);
        assert_eq!(
            def.schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{}",
            def.key
        );
        assert!(!def.description.is_empty());
    }
}

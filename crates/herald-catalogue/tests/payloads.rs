//! Payloads Herald builds, the SonarQube merge, and the native headers' signatures
//! checked against an HMAC computed here, independently of herald-core.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod common;

use std::collections::BTreeMap;

use herald_catalogue::family::{
    SONARQUBE_PROJECT_HEADER, SONARQUBE_SIGNATURE_HEADER, SOURCEGRAPH_EVENT_TYPE_HEADER,
    SOURCEGRAPH_SIGNATURE_HEADER,
};
use herald_catalogue::keys::*;
use herald_catalogue::{
    Catalogue, Family, MonitorResult, code_monitor_notification, native_headers, prepare_payload,
};
use herald_core::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn independent_hex_hmac(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn builders_reproduce_the_catalogue_examples_byte_for_byte() {
    let catalogue = Catalogue::builtin();
    let cases: [(&str, Vec<u8>); 8] = [
        (
            CODE_MONITOR_NOTIFICATION,
            common::seed_monitor_notification(),
        ),
        (HERALD_WEBHOOK_DISABLED, common::example_webhook_disabled()),
        (HERALD_WEBHOOK_FAILING, common::example_webhook_failing()),
        (HERALD_WEBHOOK_PAUSED, common::example_webhook_paused()),
        (
            HERALD_WEBHOOK_RECOVERED,
            common::example_webhook_recovered(),
        ),
        (
            HERALD_DELIVERY_EXHAUSTED,
            common::example_delivery_exhausted(),
        ),
        (
            HERALD_DELIVERY_RECOVERED,
            common::example_delivery_recovered(),
        ),
        (HERALD_PING, common::example_ping()),
    ];
    for (key, built) in cases {
        let example = catalogue.get(key).unwrap().example_bytes();
        assert_eq!(
            String::from_utf8(built).unwrap(),
            String::from_utf8(example).unwrap(),
            "{key}"
        );
    }
}

#[test]
fn the_code_monitor_test_payload_has_the_test_query_and_no_results() {
    let body = Catalogue::builtin()
        .test_payload(CODE_MONITOR_NOTIFICATION)
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"monitorDescription":"My test monitor","monitorURL":"https://sourcegraph.com/code-monitoring/Q29kZU1vbml0b3I6NDI=?utm_source=","query":"test query"}"#
    );
}

#[test]
fn test_payloads_are_the_examples_for_other_types_and_none_for_unknown_ones() {
    let catalogue = Catalogue::builtin();
    let ping = catalogue.test_payload(HERALD_PING).unwrap();
    assert_eq!(ping, catalogue.get(HERALD_PING).unwrap().example_bytes());
    assert!(catalogue.test_payload("no:such").is_none());
}

#[test]
fn empty_code_monitor_result_fields_are_left_out() {
    let body = code_monitor_notification(
        "d",
        "u",
        "q",
        &[MonitorResult::Commit {
            repository: "r".into(),
            commit: "c".into(),
            message: "m".into(),
            matched_ranges: vec![],
        }],
    );
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"monitorDescription":"d","monitorURL":"u","query":"q","results":[{"repository":"r","commit":"c","message":"m"}]}"#
    );
    let value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        Catalogue::builtin().validate(CODE_MONITOR_NOTIFICATION, &value),
        Ok(())
    );
}

#[test]
fn built_payloads_match_their_schemas() {
    let catalogue = Catalogue::builtin();
    for def in catalogue.list() {
        let body = common::delivered_example(&catalogue, &def.key);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(catalogue.validate(&def.key, &value), Ok(()), "{}", def.key);
    }
    let test_body = catalogue.test_payload(CODE_MONITOR_NOTIFICATION).unwrap();
    let value = serde_json::from_slice(&test_body).unwrap();
    assert_eq!(
        catalogue.validate(CODE_MONITOR_NOTIFICATION, &value),
        Ok(())
    );
}

#[test]
fn sonarqube_merges_only_analysis_properties_into_existing_properties() {
    let payload = br#"{"serverUrl":"s","project":{"key":"p","name":"n"},"properties":{"a":"1","sonar.analysis.x":"old"},"qualityGate":{"name":"g","status":"OK"}}"#;
    let props = BTreeMap::from([
        ("sonar.analysis.x".to_owned(), "new".to_owned()),
        ("sonar.analysis.y".to_owned(), "2".to_owned()),
        ("sonar.login".to_owned(), "not merged".to_owned()),
    ]);
    let out = prepare_payload(SONARQUBE_ANALYSIS, payload, &props);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"serverUrl":"s","project":{"key":"p","name":"n"},"properties":{"a":"1","sonar.analysis.x":"new","sonar.analysis.y":"2"},"qualityGate":{"name":"g","status":"OK"}}"#
    );
}

#[test]
fn sonarqube_properties_are_created_before_the_quality_gate_or_at_the_end() {
    let props = BTreeMap::from([("sonar.analysis.buildNumber".to_owned(), "12345".to_owned())]);
    let with_gate = prepare_payload(
        SONARQUBE_ANALYSIS,
        br#"{"taskId":"t","qualityGate":{},"z":1}"#,
        &props,
    );
    assert_eq!(
        std::str::from_utf8(&with_gate).unwrap(),
        r#"{"taskId":"t","properties":{"sonar.analysis.buildNumber":"12345"},"qualityGate":{},"z":1}"#
    );
    let without_gate = prepare_payload(SONARQUBE_ANALYSIS, br#"{"taskId":"t"}"#, &props);
    assert_eq!(
        std::str::from_utf8(&without_gate).unwrap(),
        r#"{"taskId":"t","properties":{"sonar.analysis.buildNumber":"12345"}}"#
    );
}

#[test]
fn bodies_are_kept_byte_for_byte_when_nothing_merges() {
    let spaced = b"{ \"taskId\" : \"t\",\n  \"properties\": {} }";
    let analysis = BTreeMap::from([("sonar.analysis.n".to_owned(), "1".to_owned())]);
    let other = BTreeMap::from([("sonar.login".to_owned(), "x".to_owned())]);
    assert_eq!(prepare_payload(SONARQUBE_ANALYSIS, spaced, &other), spaced);
    assert_eq!(
        prepare_payload(SONARQUBE_ANALYSIS, spaced, &BTreeMap::new()),
        spaced
    );
    assert_eq!(prepare_payload(CHANGESET_UPDATE, spaced, &analysis), spaced);
    assert_eq!(
        prepare_payload(SONARQUBE_ANALYSIS, b"[1, 2]", &analysis),
        b"[1, 2]"
    );
}

#[test]
fn sourcegraph_headers_name_the_type_and_sign_the_body_with_the_secrets_utf8_bytes() {
    let secret_text = "s3cr\u{e9}t whsec_not-base64";
    let secret = Secret::parse(secret_text).unwrap();
    let body = br#"{"id":"x"}"#;
    let headers = native_headers(Family::Sourcegraph, CHANGESET_UPDATE, None, body, &secret);
    assert_eq!(headers.len(), 2);
    assert_eq!(
        header(&headers, SOURCEGRAPH_EVENT_TYPE_HEADER),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(
        header(&headers, SOURCEGRAPH_SIGNATURE_HEADER),
        Some(independent_hex_hmac(secret_text, body).as_str())
    );
}

#[test]
fn a_whsec_secret_signs_hex_headers_with_its_text_not_its_decoded_key() {
    let secret = Secret::generate();
    let body = b"{}";
    let headers = native_headers(
        Family::SonarQube,
        SONARQUBE_ANALYSIS,
        Some("p"),
        body,
        &secret,
    );
    let expected = independent_hex_hmac(secret.expose(), body);
    assert_eq!(
        header(&headers, SONARQUBE_SIGNATURE_HEADER),
        Some(expected.as_str())
    );
}

#[test]
fn sonarqube_headers_carry_the_project_and_the_signature_of_the_delivered_body() {
    let catalogue = Catalogue::builtin();
    let body = common::delivered_example(&catalogue, SONARQUBE_ANALYSIS);
    let headers = native_headers(
        Family::SonarQube,
        SONARQUBE_ANALYSIS,
        None,
        &body,
        &Secret::parse("your_secret").unwrap(),
    );
    assert_eq!(
        header(&headers, SONARQUBE_PROJECT_HEADER),
        Some("myproject")
    );
    assert_eq!(
        header(&headers, SONARQUBE_SIGNATURE_HEADER),
        Some(independent_hex_hmac("your_secret", &body).as_str())
    );
}

#[test]
fn golden_signatures_verify_independently() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut signed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines[0], lines[2]), ("payload", "headers"));
        let expected = independent_hex_hmac("golden-secret", lines[1].as_bytes());
        for line in &lines[3..] {
            let (name, value) = line.split_once(": ").unwrap();
            if name == SOURCEGRAPH_SIGNATURE_HEADER || name == SONARQUBE_SIGNATURE_HEADER {
                assert_eq!(value, expected);
                signed += 1;
            }
        }
    }
    // Eight Sourcegraph types and one SonarQube type.
    assert_eq!(signed, 9);
}

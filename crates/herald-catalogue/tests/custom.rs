//! Producers' own event types: register, use, replace, remove; and what is refused.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

use herald_catalogue::family::SOURCEGRAPH_EVENT_TYPE_HEADER;
use herald_catalogue::keys::{CHANGESET_UPDATE, HERALD_PING};
use herald_catalogue::{
    Catalogue, CatalogueError, CustomType, Family, PayloadError, Registration, native_headers,
};
use herald_core::event_type::EventTypePattern;
use herald_core::secret::Secret;
use serde_json::{Value, json};

fn deploy_type() -> CustomType {
    CustomType {
        key: "acme:deploy".into(),
        description: "A deployment finished.".into(),
        family: Family::Custom,
        schema: json!({
            "type": "object",
            "properties": {
                "service": {"type": "string"},
                "version": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1}
            },
            "required": ["service", "version"]
        }),
        example: json!({"service": "api", "version": "1.2.3", "replicas": 3}),
    }
}

fn pattern(text: &str) -> EventTypePattern {
    EventTypePattern::parse("event_types", text).unwrap()
}

#[test]
fn a_custom_type_is_registered_used_replaced_and_removed() {
    let mut catalogue = Catalogue::builtin();
    assert!(!catalogue.matches_any(&pattern("acme:*")));
    assert_eq!(
        catalogue.register_custom(deploy_type()),
        Ok(Registration::Created)
    );

    let def = catalogue.get("acme:deploy").unwrap();
    assert!(!def.builtin);
    assert_eq!(def.family, Family::Custom);
    assert!(catalogue.matches_any(&pattern("acme:*")));
    assert_eq!(
        catalogue.validate("acme:deploy", &json!({"service": "api", "version": "2"})),
        Ok(())
    );
    assert_eq!(
        catalogue.validate(
            "acme:deploy",
            &json!({"service": "api", "version": "2", "replicas": 0})
        ),
        Err(PayloadError::Invalid {
            pointer: "/replicas".into(),
            rule: "the value is less than the minimum of 1".into()
        })
    );
    assert_eq!(
        catalogue.test_payload("acme:deploy").unwrap(),
        br#"{"service":"api","version":"1.2.3","replicas":3}"#
    );

    let mut stricter = deploy_type();
    stricter.schema["required"] = json!(["service", "version", "replicas"]);
    assert_eq!(
        catalogue.register_custom(stricter),
        Ok(Registration::Replaced)
    );
    assert_eq!(
        catalogue.validate("acme:deploy", &json!({"service": "api", "version": "2"})),
        Err(PayloadError::Invalid {
            pointer: "/replicas".into(),
            rule: r#"required field "replicas" is missing"#.into()
        })
    );

    let removed = catalogue.remove_custom("acme:deploy").unwrap();
    assert_eq!(removed.key, "acme:deploy");
    assert!(catalogue.get("acme:deploy").is_none());
    assert!(!catalogue.matches_any(&pattern("acme:*")));
    assert!(matches!(
        catalogue.validate("acme:deploy", &json!({})),
        Err(PayloadError::UnknownType { .. })
    ));
    assert_eq!(
        catalogue.remove_custom("acme:deploy"),
        Err(CatalogueError::NotFound {
            key: "acme:deploy".into()
        })
    );
}

#[test]
fn built_in_types_cannot_be_removed_or_overwritten() {
    let mut catalogue = Catalogue::builtin();
    let before = catalogue.get(CHANGESET_UPDATE).unwrap().clone();
    assert_eq!(
        catalogue.remove_custom(CHANGESET_UPDATE),
        Err(CatalogueError::BuiltIn {
            key: CHANGESET_UPDATE.into()
        })
    );
    let shadow = CustomType {
        key: CHANGESET_UPDATE.into(),
        ..deploy_type()
    };
    let err = catalogue.register_custom(shadow).unwrap_err();
    assert_eq!(
        err,
        CatalogueError::BuiltIn {
            key: CHANGESET_UPDATE.into()
        }
    );
    assert_eq!(err.field(), "key");
    assert_eq!(catalogue.get(CHANGESET_UPDATE), Some(&before));
}

#[test]
fn herald_keys_and_the_herald_family_are_reserved() {
    let mut catalogue = Catalogue::builtin();
    let err = catalogue
        .register_custom(CustomType {
            key: "herald:custom".into(),
            ..deploy_type()
        })
        .unwrap_err();
    assert_eq!(
        err,
        CatalogueError::ReservedKey {
            key: "herald:custom".into()
        }
    );
    let err = catalogue
        .register_custom(CustomType {
            key: HERALD_PING.into(),
            ..deploy_type()
        })
        .unwrap_err();
    assert_eq!(err.field(), "key");
    let err = catalogue
        .register_custom(CustomType {
            family: Family::Herald,
            ..deploy_type()
        })
        .unwrap_err();
    assert_eq!(err, CatalogueError::ReservedFamily);
    assert_eq!(err.field(), "family");
}

#[test]
fn malformed_keys_are_refused_with_the_core_rule() {
    let mut catalogue = Catalogue::builtin();
    for key in ["", "has space", "star*", &"x".repeat(101)] {
        let err = catalogue
            .register_custom(CustomType {
                key: key.to_owned(),
                ..deploy_type()
            })
            .unwrap_err();
        assert!(
            matches!(err, CatalogueError::InvalidKey(_)),
            "{key:?}: {err:?}"
        );
        assert_eq!(err.field(), "key");
    }
}

#[test]
fn a_schema_that_does_not_compile_is_refused_with_where() {
    let mut catalogue = Catalogue::builtin();
    let bad = CustomType {
        schema: json!({"type": "object", "properties": {"a": {"type": "strin"}}}),
        ..deploy_type()
    };
    let err = catalogue.register_custom(bad).unwrap_err();
    let CatalogueError::InvalidSchema { pointer, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(pointer, "/properties/a/type");
    assert_eq!(err.field(), "schema");
    assert!(catalogue.get("acme:deploy").is_none());

    let not_a_schema = CustomType {
        schema: json!("object"),
        ..deploy_type()
    };
    assert!(matches!(
        catalogue.register_custom(not_a_schema),
        Err(CatalogueError::InvalidSchema { .. })
    ));
}

#[test]
fn remote_references_are_never_fetched() {
    let mut catalogue = Catalogue::builtin();
    let remote = CustomType {
        schema: json!({"$ref": "https://example.com/schema.json"}),
        ..deploy_type()
    };
    let err = catalogue.register_custom(remote).unwrap_err();
    let CatalogueError::InvalidSchema { rule, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(rule.contains("never fetches"), "{rule}");
    let file = CustomType {
        schema: json!({"$ref": "file:///etc/hostname"}),
        ..deploy_type()
    };
    assert!(matches!(
        catalogue.register_custom(file),
        Err(CatalogueError::InvalidSchema { .. })
    ));
}

#[test]
fn the_example_must_match_the_schema() {
    let mut catalogue = Catalogue::builtin();
    let wrong = CustomType {
        example: json!({"service": "api"}),
        ..deploy_type()
    };
    assert_eq!(
        catalogue.register_custom(wrong),
        Err(CatalogueError::InvalidExample {
            pointer: "/version".into(),
            rule: r#"required field "version" is missing"#.into()
        })
    );
}

#[test]
fn overlong_descriptions_are_refused() {
    let mut catalogue = Catalogue::builtin();
    let long = CustomType {
        description: "d".repeat(1001),
        ..deploy_type()
    };
    assert_eq!(
        catalogue.register_custom(long),
        Err(CatalogueError::DescriptionTooLong { len: 1001 })
    );
}

#[test]
fn a_custom_type_may_join_a_product_family_for_its_headers() {
    let mut catalogue = Catalogue::builtin();
    let reopen = CustomType {
        key: "batch_change:reopen".into(),
        family: Family::Sourcegraph,
        schema: json!({"type": "object"}),
        example: json!({"id": "QmF0Y2hDaGFuZ2U6MTcz"}),
        ..deploy_type()
    };
    catalogue.register_custom(reopen).unwrap();
    let def = catalogue.get("batch_change:reopen").unwrap();
    let headers = native_headers(
        def.family,
        &def.key,
        None,
        b"{}",
        &Secret::parse("s").unwrap(),
    );
    assert!(headers.contains(&(
        SOURCEGRAPH_EVENT_TYPE_HEADER.to_owned(),
        "batch_change:reopen".to_owned()
    )));
}

#[test]
fn patterns_are_checked_against_known_types() {
    let catalogue = Catalogue::builtin();
    for matching in [
        "*",
        "changeset:*",
        "herald:*",
        "semgrep:findings",
        "code_monitor:notification",
    ] {
        assert!(catalogue.matches_any(&pattern(matching)), "{matching}");
    }
    for nothing in ["changeset:updated", "nope:*", "semgrep:finding"] {
        assert!(!catalogue.matches_any(&pattern(nothing)), "{nothing}");
    }
}

#[test]
fn clones_are_independent() {
    let original = Catalogue::builtin();
    let mut changed = original.clone();
    changed.register_custom(deploy_type()).unwrap();
    assert!(original.get("acme:deploy").is_none());
    assert!(changed.get("acme:deploy").is_some());
}

#[test]
fn definitions_serialize_for_the_api() {
    let catalogue = Catalogue::builtin();
    let value: Value = serde_json::to_value(catalogue.get(CHANGESET_UPDATE).unwrap()).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "key",
            "description",
            "family",
            "schema",
            "example",
            "builtin"
        ]
    );
    assert_eq!(value["family"], "sourcegraph");
    assert_eq!(value["builtin"], true);
}

//! Turns a JSON Schema validation error into what a producer needs to fix it:
//! the JSON Pointer of the offending field and the rule it broke, in words.
//!
//! Rules never quote the offending value: it may be large, and it may be secret.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};

/// Where a payload broke its schema, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer (RFC 6901) of the offending field; `""` is the whole payload.
    pub pointer: String,
    pub rule: String,
}

pub fn describe(error: &ValidationError<'_>) -> Violation {
    if let Some(inner) = most_promising_alternative(error.kind()) {
        return describe(inner);
    }
    let at = error.instance_path().as_str();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            Violation {
                pointer: child_pointer(at, name),
                rule: format!("required field {name:?} is missing"),
            }
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => match unexpected.first() {
            Some(name) => Violation {
                pointer: child_pointer(at, name),
                rule: format!("field {name:?} is not allowed here"),
            },
            None => Violation {
                pointer: at.to_owned(),
                rule: "unknown fields are not allowed here".to_owned(),
            },
        },
        kind => Violation {
            pointer: at.to_owned(),
            rule: rule_text(error, kind),
        },
    }
}

/// A payload that fits none of `oneOf`/`anyOf`'s alternatives most likely meant the
/// one it broke least; its first error names a field, where "matches no alternative"
/// would not.
fn most_promising_alternative(kind: &ValidationErrorKind) -> Option<&ValidationError<'static>> {
    let (ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }) =
        kind
    else {
        return None;
    };
    context
        .iter()
        .filter(|errors| !errors.is_empty())
        // Fewest errors wins; among equals, the one that got deepest into the payload.
        .min_by_key(|errors| {
            (
                errors.len(),
                std::cmp::Reverse(errors[0].instance_path().as_str().len()),
            )
        })
        .map(|errors| &errors[0])
}

fn rule_text(error: &ValidationError<'_>, kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => {
            format!(
                "must be {}, got {}",
                expected_types(kind),
                json_type_name(error.instance())
            )
        }
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "must match exactly one of the `oneOf` alternatives, but matches several".to_owned()
        }
        // Only a schema being compiled can fail to resolve a reference.
        ValidationErrorKind::Referencing(_) => {
            "a `$ref` must point inside the schema, e.g. `#/$defs/name`; \
             Herald never fetches other documents"
                .to_owned()
        }
        _ => error.masked_with("the value").to_string(),
    }
}

/// "an integer or null": the allowed types in words, `null` last.
fn expected_types(kind: &TypeKind) -> String {
    let mut names: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(types) => types.iter().map(|t| t.to_string()).collect(),
    };
    names.sort_by_key(|name| name == "null");
    let phrases: Vec<&str> = names.iter().map(|name| type_phrase(name)).collect();
    phrases.join(" or ")
}

fn type_phrase(json_type: &str) -> &'static str {
    match json_type {
        "null" => "null",
        "boolean" => "a boolean",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "an array",
        "object" => "an object",
        _ => "another type",
    }
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a number",
        serde_json::Value::Number(_) => "an integer",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `parent` extended by one member name, escaped as RFC 6901 requires.
fn child_pointer(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_violation(schema: serde_json::Value, instance: serde_json::Value) -> Violation {
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let error = validator.validate(&instance).unwrap_err();
        describe(&error)
    }

    #[test]
    fn a_missing_field_is_pointed_at_by_name() {
        let v = first_violation(
            json!({"properties": {"a/b": {"required": ["x~y"]}}}),
            json!({"a/b": {}}),
        );
        assert_eq!(v.pointer, "/a~1b/x~0y");
        assert_eq!(v.rule, r#"required field "x~y" is missing"#);
    }

    #[test]
    fn a_wrong_type_names_both_types_but_not_the_value() {
        let v = first_violation(
            json!({"properties": {"n": {"type": ["integer", "null"]}}}),
            json!({"n": "secret-ish"}),
        );
        assert_eq!(v.pointer, "/n");
        assert_eq!(v.rule, "must be an integer or null, got a string");
    }

    #[test]
    fn an_unexpected_field_is_pointed_at() {
        let v = first_violation(
            json!({"properties": {"a": {}}, "additionalProperties": false}),
            json!({"a": 1, "zz": 2}),
        );
        assert_eq!(v.pointer, "/zz");
        assert_eq!(v.rule, r#"field "zz" is not allowed here"#);
    }

    #[test]
    fn one_of_reports_the_alternative_broken_least() {
        let schema = json!({"oneOf": [
            {"required": ["diff", "ranges"], "properties": {"diff": {"type": "string"}}},
            {"required": ["message", "message_ranges"]}
        ]});
        let v = first_violation(schema, json!({"diff": "d"}));
        assert_eq!(v.pointer, "/ranges");
    }

    #[test]
    fn other_rules_are_worded_without_the_value() {
        let v = first_violation(json!({"minimum": 3}), json!(1));
        assert_eq!(v.pointer, "");
        assert!(v.rule.contains("minimum of 3"), "{}", v.rule);
        assert!(v.rule.starts_with("the value"), "{}", v.rule);
    }
}

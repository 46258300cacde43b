//! Event type names (`changeset:update`) and the patterns webhooks subscribe with
//! (`changeset:update`, `changeset:*`, `*`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::FieldError;

pub const MAX_TYPE_LEN: usize = 100;
/// The family of Herald's operational events.
pub const OPERATIONAL_PREFIX: &str = "herald:";
pub const MAX_PATTERNS: usize = 100;

fn is_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// Checks an event type name: 1 to 100 of `A-Z a-z 0-9 _ - . :`.
pub fn validate_type_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() || name.len() > MAX_TYPE_LEN {
        return Err(FieldError::new(
            field,
            format!("an event type must be 1 to {MAX_TYPE_LEN} characters long"),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_type_char(*c)) {
        return Err(FieldError::new(
            field,
            format!("event type {name:?} contains {bad:?}; use only letters, digits and _ - . :"),
        ));
    }
    Ok(())
}

/// One subscription pattern: an exact type, or a prefix ending in `*`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventTypePattern(String);

impl EventTypePattern {
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        let stem = text.strip_suffix('*').unwrap_or(text);
        if stem.contains('*') {
            return Err(FieldError::new(
                field,
                format!("{text:?}: `*` may only stand at the end, as in `changeset:*`"),
            ));
        }
        if !stem.is_empty() {
            validate_type_name(field, stem)?;
        } else if text.is_empty() {
            return Err(FieldError::new(field, "an event type may not be empty"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Herald's own operational events (`herald:...`) are opt-in: only a pattern
    /// that names them (`herald:*`, `herald:ping`) matches them, never a bare
    /// `*`, so a catch-all webhook does not start receiving reports about itself.
    pub fn matches(&self, event_type: &str) -> bool {
        if event_type.starts_with(OPERATIONAL_PREFIX) && !self.0.starts_with(OPERATIONAL_PREFIX) {
            return false;
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => self.0 == event_type,
        }
    }
}

impl fmt::Debug for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EventTypePattern {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("event_types", &s)
    }
}

impl From<EventTypePattern> for String {
    fn from(p: EventTypePattern) -> Self {
        p.0
    }
}

/// Parses a subscription list: non-empty, at most 100 patterns, duplicates dropped.
pub fn parse_patterns(items: &[String]) -> Result<Vec<EventTypePattern>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(
            "event_types",
            "must list at least one event type, e.g. [\"changeset:*\"]",
        ));
    }
    if items.len() > MAX_PATTERNS {
        return Err(FieldError::new(
            "event_types",
            format!("at most {MAX_PATTERNS} event types, got {}", items.len()),
        ));
    }
    let mut patterns: Vec<EventTypePattern> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pattern = EventTypePattern::parse(&format!("event_types[{i}]"), item)?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

pub fn any_matches(patterns: &[EventTypePattern], event_type: &str) -> bool {
    patterns.iter().any(|p| p.matches(event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> EventTypePattern {
        EventTypePattern::parse("event_types", s).unwrap()
    }

    #[test]
    fn exact_and_family_patterns_match() {
        assert!(p("changeset:update").matches("changeset:update"));
        assert!(!p("changeset:update").matches("changeset:update_error"));
        assert!(p("changeset:*").matches("changeset:close"));
        assert!(!p("changeset:*").matches("batch_change:close"));
        assert!(p("*").matches("anything:at-all"));
    }

    #[test]
    fn operational_events_match_only_patterns_that_name_them() {
        assert!(!p("*").matches("herald:delivery.exhausted"));
        assert!(!p("h*").matches("herald:ping"));
        assert!(p("herald:*").matches("herald:delivery.exhausted"));
        assert!(p("herald:ping").matches("herald:ping"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(EventTypePattern::parse("f", "").is_err());
        assert!(EventTypePattern::parse("f", "a*b").is_err());
        assert!(EventTypePattern::parse("f", "has space").is_err());
        assert!(parse_patterns(&[]).is_err());
    }

    #[test]
    fn duplicates_are_dropped() {
        let list = parse_patterns(&["a:b".into(), "a:b".into()]).unwrap();
        assert_eq!(list.len(), 1);
    }
}

//! Ordered delivery: a webhook's ordering mode and the ordering key an event
//! carries. The rule itself (one delivery of a (webhook, key) at a time, in
//! publish order) is the stores'; this module only says what is valid.

use crate::validation::FieldError;
use crate::webhook::refuse_control_chars;

/// The most characters an ordering key may have: room for a repository path
/// with a changeset id, small enough to index.
pub const MAX_ORDERING_KEY_LEN: usize = 255;

/// How a webhook orders its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum DeliveryOrdering {
    /// Every delivery on its own schedule, as many at once as the limits allow.
    #[default]
    None,
    /// Deliveries of events with the same `ordering_key` one at a time, in
    /// publish order; events without a key are not ordered.
    Key,
}

impl DeliveryOrdering {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Key => "key",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "key" => Some(Self::Key),
            _ => None,
        }
    }

    /// `ordering` as a person gave it.
    pub fn validate(text: &str) -> Result<Self, FieldError> {
        Self::parse(text).ok_or_else(|| {
            FieldError::new(
                "ordering",
                format!("must be \"none\" or \"key\", got {text:?}"),
            )
        })
    }
}

/// An event's ordering key: 1 to [`MAX_ORDERING_KEY_LEN`] characters, no
/// control characters, no surrounding spaces (two keys that look the same
/// must be the same key).
pub fn validate_ordering_key(key: &str) -> Result<String, FieldError> {
    refuse_control_chars("ordering_key", key)?;
    let len = key.chars().count();
    if len == 0 || len > MAX_ORDERING_KEY_LEN || key.trim() != key {
        return Err(FieldError::new(
            "ordering_key",
            format!(
                "must be 1 to {MAX_ORDERING_KEY_LEN} characters with no surrounding spaces, got {len}; omit it for an event that needs no order"
            ),
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_modes_round_trip_and_others_are_refused() {
        for mode in [DeliveryOrdering::None, DeliveryOrdering::Key] {
            assert_eq!(DeliveryOrdering::parse(mode.as_str()), Some(mode));
        }
        let refused = DeliveryOrdering::validate("fifo").unwrap_err();
        assert_eq!(refused.field, "ordering");
        assert!(refused.message.contains("\"key\""), "{refused}");
    }

    #[test]
    fn an_ordering_key_is_bounded_and_plain() {
        assert_eq!(validate_ordering_key("org/repo#42").unwrap(), "org/repo#42");
        let longest = "k".repeat(MAX_ORDERING_KEY_LEN);
        assert!(validate_ordering_key(&longest).is_ok());
        for bad in [
            String::new(),
            "k".repeat(MAX_ORDERING_KEY_LEN + 1),
            " padded".to_owned(),
            "nul\0".to_owned(),
        ] {
            let refused = validate_ordering_key(&bad).unwrap_err();
            assert_eq!(refused.field, "ordering_key", "{bad:?}");
        }
    }
}

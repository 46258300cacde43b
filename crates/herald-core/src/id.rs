//! Identifiers. Every entity id is a UUID v7, so ids sort by creation time and
//! make good B-tree keys in both SQLite and PostgreSQL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A registered outgoing webhook.
    WebhookId
);
id_type!(
    /// A published event.
    EventId
);
id_type!(
    /// One (event, webhook) pair: the unit that is retried.
    DeliveryId
);
id_type!(
    /// One HTTP attempt of a delivery.
    AttemptId
);

id_type!(
    /// A receiver of code-host webhooks; also the last segment of its URL, `/.api/webhooks/<id>`.
    ReceiverId
);
id_type!(
    /// One request a code host sent to a receiver, as logged.
    ReceiverRequestId
);
id_type!(
    /// A repository watched by code monitors.
    RepositoryId
);
id_type!(
    /// A code monitor.
    MonitorId
);
id_type!(
    /// One search of one repository for one monitor, as logged.
    MonitorRunId
);
id_type!(
    /// An API token (its id, never its secret).
    TokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation() {
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b, "v7 ids must be monotonic within a process");
    }

    #[test]
    fn ids_round_trip_through_text_and_bytes() {
        let id = WebhookId::new();
        assert_eq!(id.to_string().parse::<WebhookId>().unwrap(), id);
        assert_eq!(WebhookId::from_bytes(*id.as_bytes()), id);
    }
}

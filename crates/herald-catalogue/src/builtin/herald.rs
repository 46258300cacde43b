//! Operational events about Herald itself, built with [`crate::payloads::operational`].
//! Herald writes these payloads, so their schemas are closed: every field required,
//! no others allowed.

use serde_json::{Value, json};

use super::{all_required, builtin, nullable, timestamp, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::{
    HERALD_DELIVERY_EXHAUSTED, HERALD_DELIVERY_RECOVERED, HERALD_PING, HERALD_WEBHOOK_DISABLED,
};

// Examples, field order as the builders write them.
const WEBHOOK_DISABLED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "reason": "gone",
  "status": 410,
  "detail": "the target answered 410 Gone",
  "disabled_at": "2026-01-15T10:00:00Z"
}"#;

const DELIVERY_EXHAUSTED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "delivery_id": "0194b6a3-1111-7222-8333-444455556666",
  "event_id": "0194b6a3-0000-7000-8000-000000000001",
  "event_type": "changeset:update",
  "attempts": 8,
  "last_status": 503,
  "last_error": null,
  "exhausted_at": "2026-01-16T10:00:00Z"
}"#;

const DELIVERY_RECOVERED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "delivery_id": "0194b6a3-1111-7222-8333-444455556666",
  "event_id": "0194b6a3-0000-7000-8000-000000000001",
  "event_type": "changeset:update",
  "status": 200,
  "failed_attempts": 3,
  "failing_since": "2026-01-15T09:30:00Z",
  "recovered_at": "2026-01-15T10:00:00Z"
}"#;

const PING_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "message": "Test event from Herald",
  "sent_at": "2026-01-15T10:00:00Z"
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    vec![
        builtin(
            HERALD_WEBHOOK_DISABLED,
            "Herald stopped delivering to a webhook: its target answered 410 Gone, or the failure policy gave up on it.",
            Family::Herald,
            webhook_disabled_schema(),
            WEBHOOK_DISABLED_EXAMPLE,
        ),
        builtin(
            HERALD_DELIVERY_EXHAUSTED,
            "A delivery's retry schedule ran out without a success.",
            Family::Herald,
            delivery_exhausted_schema(),
            DELIVERY_EXHAUSTED_EXAMPLE,
        ),
        builtin(
            HERALD_DELIVERY_RECOVERED,
            "A webhook succeeded for the first time after failed attempts.",
            Family::Herald,
            delivery_recovered_schema(),
            DELIVERY_RECOVERED_EXAMPLE,
        ),
        builtin(
            HERALD_PING,
            "The test event, sent by a webhook's Test button.",
            Family::Herald,
            ping_schema(),
            PING_EXAMPLE,
        ),
    ]
}

fn closed(key: &str, description: &str, properties: Value) -> Value {
    let mut schema = all_required(key, description, properties);
    schema["additionalProperties"] = json!(false);
    schema
}

fn uuid(description: &str) -> Value {
    json!({"type": "string", "format": "uuid", "description": description})
}

fn count(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": description})
}

fn webhook_disabled_schema() -> Value {
    closed(
        HERALD_WEBHOOK_DISABLED,
        "A webhook was disabled.",
        json!({
            "webhook_id": uuid("The webhook disabled."),
            "reason": {"enum": ["gone", "failure_policy"], "description": "gone: the target answered 410; failure_policy: it failed for too long."},
            "status": nullable("integer", "The HTTP status that decided it (410 for gone); null without a response."),
            "detail": typed("string", "What happened, in words."),
            "disabled_at": timestamp("When it was disabled."),
        }),
    )
}

fn delivery_exhausted_schema() -> Value {
    closed(
        HERALD_DELIVERY_EXHAUSTED,
        "A delivery gave up.",
        json!({
            "webhook_id": uuid("The webhook it was for."),
            "delivery_id": uuid("The delivery that gave up."),
            "event_id": uuid("The event it carried."),
            "event_type": typed("string", "The type of that event."),
            "attempts": count("How many attempts were made."),
            "last_status": nullable("integer", "The last attempt's HTTP status; null without a response."),
            "last_error": nullable("string", "Why the last attempt got no response (timeout, connection refused…); null with one."),
            "exhausted_at": timestamp("When it gave up."),
        }),
    )
}

fn delivery_recovered_schema() -> Value {
    closed(
        HERALD_DELIVERY_RECOVERED,
        "A webhook recovered.",
        json!({
            "webhook_id": uuid("The webhook that recovered."),
            "delivery_id": uuid("The delivery that succeeded."),
            "event_id": uuid("The event it carried."),
            "event_type": typed("string", "The type of that event."),
            "status": typed("integer", "The HTTP status of the successful attempt."),
            "failed_attempts": count("Consecutive failed attempts before this success."),
            "failing_since": timestamp("When the first of those failed attempts was made."),
            "recovered_at": timestamp("When the successful attempt was made."),
        }),
    )
}

fn ping_schema() -> Value {
    closed(
        HERALD_PING,
        "A test event.",
        json!({
            "webhook_id": uuid("The webhook tested."),
            "message": typed("string", "A fixed greeting."),
            "sent_at": timestamp("When the test was sent."),
        }),
    )
}

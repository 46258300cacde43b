//! Operational events about Herald itself, built with [`crate::payloads::operational`].
//! Herald writes these payloads, so their schemas are closed: every field required,
//! no others allowed.

use serde_json::{Value, json};

use super::{all_required, builtin, nullable, nullable_timestamp, timestamp, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::{
    HERALD_DELIVERY_EXHAUSTED, HERALD_DELIVERY_RECOVERED, HERALD_PING, HERALD_WEBHOOK_DISABLED,
    HERALD_WEBHOOK_FAILING, HERALD_WEBHOOK_PAUSED, HERALD_WEBHOOK_RECOVERED,
};

// Examples, field order as the builders write them.
const WEBHOOK_DISABLED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "reason": "gone",
  "status": 410,
  "detail": "the target answered 410 Gone",
  "disabled_at": "2026-01-15T10:00:00Z"
}"#;

const WEBHOOK_FAILING_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "consecutive_failures": 4,
  "failing_since": "2026-01-15T09:58:00Z",
  "last_error": "HTTP 502",
  "failing_at": "2026-01-15T10:00:00Z"
}"#;

const WEBHOOK_PAUSED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "consecutive_failures": 4,
  "paused_until": "2026-01-15T10:01:00Z",
  "paused_at": "2026-01-15T10:00:00Z"
}"#;

const WEBHOOK_RECOVERED_EXAMPLE: &str = r#"{
  "webhook_id": "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b",
  "failed_attempts": 5,
  "failing_since": "2026-01-15T09:58:00Z",
  "recovered_at": "2026-01-15T10:01:00Z"
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
            HERALD_WEBHOOK_FAILING,
            "A webhook's endpoint failed failing_after attempts in a row; the webhook is paused.",
            Family::Herald,
            webhook_failing_schema(),
            WEBHOOK_FAILING_EXAMPLE,
        ),
        builtin(
            HERALD_WEBHOOK_PAUSED,
            "Herald makes no attempts at a webhook until a time, then one probe: its endpoint kept failing. Sent for the first pause of a run of failures.",
            Family::Herald,
            webhook_paused_schema(),
            WEBHOOK_PAUSED_EXAMPLE,
        ),
        builtin(
            HERALD_WEBHOOK_RECOVERED,
            "A paused webhook's endpoint succeeded again; its backlog is being delivered.",
            Family::Herald,
            webhook_recovered_schema(),
            WEBHOOK_RECOVERED_EXAMPLE,
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

fn webhook_failing_schema() -> Value {
    closed(
        HERALD_WEBHOOK_FAILING,
        "A webhook is failing.",
        json!({
            "webhook_id": uuid("The webhook failing."),
            "consecutive_failures": count("Failed attempts in a row."),
            "failing_since": timestamp("When the first of them failed."),
            "last_error": nullable("string", "Why the last one failed."),
            "failing_at": timestamp("When the threshold was reached."),
        }),
    )
}

fn webhook_paused_schema() -> Value {
    closed(
        HERALD_WEBHOOK_PAUSED,
        "A webhook is paused.",
        json!({
            "webhook_id": uuid("The webhook paused."),
            "consecutive_failures": count("Failed attempts in a row so far."),
            "paused_until": timestamp("When one probe delivery is attempted."),
            "paused_at": timestamp("When it was paused."),
        }),
    )
}

fn webhook_recovered_schema() -> Value {
    closed(
        HERALD_WEBHOOK_RECOVERED,
        "A webhook recovered.",
        json!({
            "webhook_id": uuid("The webhook that recovered."),
            "failed_attempts": count("Failed attempts in a row before the success."),
            "failing_since": nullable_timestamp("When the first of them failed."),
            "recovered_at": timestamp("When the success was noted."),
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

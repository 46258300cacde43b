//! Reading code-host payloads: JSON pointers into a `serde_json::Value`, with
//! errors that name the missing field, and the timestamp formats hosts use.

use herald_core::time::Timestamp;
use serde_json::Value;

use crate::error::IngestError;

pub(crate) fn parse(body: &[u8]) -> Result<Value, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::Json(e.to_string()))
}

/// A non-empty string at `ptr`.
pub(crate) fn str_at<'v>(v: &'v Value, ptr: &str) -> Option<&'v str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn string_at(v: &Value, ptr: &str) -> Option<String> {
    str_at(v, ptr).map(str::to_owned)
}

pub(crate) fn req_str<'v>(v: &'v Value, ptr: &str) -> Result<&'v str, IngestError> {
    str_at(v, ptr).ok_or_else(|| missing(ptr))
}

/// An identifier that hosts send as a number or a string.
pub(crate) fn id_at(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn req_id(v: &Value, ptr: &str) -> Result<String, IngestError> {
    id_at(v, ptr).ok_or_else(|| missing(ptr))
}

pub(crate) fn bool_at(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(Value::as_bool)
}

pub(crate) fn array_at<'v>(v: &'v Value, ptr: &str) -> &'v [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A timestamp at `ptr`: text in any of the formats of [`parse_time`], or
/// integer milliseconds (Bitbucket Server). Absent or null gives `Ok(None)`;
/// present but unreadable is an error, because ordering depends on it.
pub(crate) fn time_at(v: &Value, ptr: &str) -> Result<Option<Timestamp>, IngestError> {
    match v.pointer(ptr) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|ms| Some(Timestamp::from_millis(ms)))
            .ok_or_else(|| bad(ptr, "expected integer milliseconds")),
        Some(Value::String(s)) => parse_time(s)
            .map(Some)
            .ok_or_else(|| bad(ptr, &format!("{s:?} is not a timestamp"))),
        Some(_) => Err(bad(ptr, "expected a timestamp")),
    }
}

pub(crate) fn req_time(v: &Value, ptr: &str) -> Result<Timestamp, IngestError> {
    time_at(v, ptr)?.ok_or_else(|| missing(ptr))
}

/// RFC 3339 (`2019-05-15T15:20:33Z`), an offset without a colon
/// (`2019-03-01T10:31:15+0100`, Bitbucket Server), and GitLab's
/// `2017-12-18 00:39:44 UTC` / `2017-12-18 00:39:44 +0100`.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(Timestamp::from_millis(ts.as_millisecond()));
    }
    if let Some(civil) = text.strip_suffix(" UTC") {
        let dt: jiff::civil::DateTime = civil.parse().ok()?;
        let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        return Some(Timestamp::from_millis(ts.as_millisecond()));
    }
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"]
        .iter()
        .find_map(|format| jiff::Timestamp::strptime(format, text).ok())
        .map(|ts| Timestamp::from_millis(ts.as_millisecond()))
}

pub(crate) fn missing(ptr: &str) -> IngestError {
    IngestError::MissingField(ptr.to_owned())
}

pub(crate) fn bad(ptr: &str, reason: &str) -> IngestError {
    IngestError::BadField {
        field: ptr.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse_time(text)
            .unwrap_or_else(|| panic!("{text}"))
            .millis()
    }

    #[test]
    fn every_host_format_parses_to_the_same_instant() {
        let utc = ms("2019-03-01T09:31:15Z");
        assert_eq!(ms("2019-03-01T10:31:15+01:00"), utc);
        assert_eq!(ms("2019-03-01T10:31:15+0100"), utc);
        assert_eq!(ms("2019-03-01 09:31:15 UTC"), utc);
        assert_eq!(ms("2019-03-01 10:31:15 +0100"), utc);
        assert_eq!(ms("2019-03-01T09:31:15.000000Z"), utc);
        assert_eq!(ms("2014-06-30T18:59:12.3660573Z") % 1000, 366);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn ids_come_as_numbers_or_strings() {
        let v: Value = serde_json::json!({"a": 5, "b": "x", "c": ""});
        assert_eq!(id_at(&v, "/a").as_deref(), Some("5"));
        assert_eq!(id_at(&v, "/b").as_deref(), Some("x"));
        assert_eq!(id_at(&v, "/c"), None);
        assert_eq!(
            req_id(&v, "/d"),
            Err(IngestError::MissingField("/d".into()))
        );
    }
}

//! The code monitor notification body, as Sourcegraph sends it: camelCase, and
//! empty fields left out.

use std::ops::Range;

use serde::{Serialize, Serializer};

use super::to_bytes;

/// One matching commit, by its diff or by its message. Ranges are `[start, end)`
/// UTF-8 byte offsets into the diff or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorResult {
    Diff {
        repository: String,
        commit: String,
        diff: String,
        matched_ranges: Vec<Range<usize>>,
    },
    Commit {
        repository: String,
        commit: String,
        message: String,
        matched_ranges: Vec<Range<usize>>,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    monitor_description: &'a str,
    #[serde(rename = "monitorURL")]
    monitor_url: &'a str,
    query: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    results: Vec<ResultBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultBody<'a> {
    repository: &'a str,
    commit: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    diff: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "pairs")]
    matched_diff_ranges: &'a [Range<usize>],
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "pairs")]
    matched_message_ranges: &'a [Range<usize>],
}

/// The body of a `code_monitor:notification`. With no results, `results` is left out
/// (the Test button's payload).
pub fn code_monitor_notification(
    monitor_description: &str,
    monitor_url: &str,
    query: &str,
    results: &[MonitorResult],
) -> Vec<u8> {
    to_bytes(&Notification {
        monitor_description,
        monitor_url,
        query,
        results: results.iter().map(result_body).collect(),
    })
}

fn result_body(result: &MonitorResult) -> ResultBody<'_> {
    match result {
        MonitorResult::Diff {
            repository,
            commit,
            diff,
            matched_ranges,
        } => ResultBody {
            repository,
            commit,
            diff,
            matched_diff_ranges: matched_ranges,
            message: "",
            matched_message_ranges: &[],
        },
        MonitorResult::Commit {
            repository,
            commit,
            message,
            matched_ranges,
        } => ResultBody {
            repository,
            commit,
            diff: "",
            matched_diff_ranges: &[],
            message,
            matched_message_ranges: matched_ranges,
        },
    }
}

/// `[[start, end], ...]`, the seed's wire form of ranges.
fn pairs<S: Serializer>(ranges: &&[Range<usize>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ranges.iter().map(|r| [r.start, r.end]))
}

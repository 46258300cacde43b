//! GitHub's payload normalization: any bytes as the body of a verified request,
//! under every event name the normalizer tells apart.
#![no_main]

use herald_fuzz::normalize_under_every_event;
use herald_ingest::CodeHostKind;
use libfuzzer_sys::fuzz_target;

const EVENTS: &[&str] = &[
    "ping",
    "push",
    "pull_request",
    "pull_request_review_comment",
    "pull_request_review",
    "issue_comment",
    "check_suite",
    "check_run",
    "status",
];

fuzz_target!(|body: &[u8]| {
    normalize_under_every_event(CodeHostKind::GitHub, EVENTS, body);
});

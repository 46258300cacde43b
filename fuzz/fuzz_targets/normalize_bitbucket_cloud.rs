//! Bitbucket Cloud's payload normalization: any bytes as the body of a verified request,
//! under every event name the normalizer tells apart.
#![no_main]

use herald_fuzz::normalize_under_every_event;
use herald_ingest::CodeHostKind;
use libfuzzer_sys::fuzz_target;

const EVENTS: &[&str] = &[
    "repo:push",
    "repo:commit_status_created",
    "pullrequest:created",
    "pullrequest:approved",
    "pullrequest:changes_request_created",
];

fuzz_target!(|body: &[u8]| {
    normalize_under_every_event(CodeHostKind::BitbucketCloud, EVENTS, body);
});

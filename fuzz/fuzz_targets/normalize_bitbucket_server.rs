//! Bitbucket Server's payload normalization: any bytes as the body of a verified request,
//! under every event name the normalizer tells apart.
#![no_main]

use herald_fuzz::normalize_under_every_event;
use herald_ingest::CodeHostKind;
use libfuzzer_sys::fuzz_target;

const EVENTS: &[&str] = &[
    "diagnostics:ping",
    "repo:refs_changed",
    "repo:build_status",
    "pr:opened",
];

fuzz_target!(|body: &[u8]| {
    normalize_under_every_event(CodeHostKind::BitbucketServer, EVENTS, body);
});

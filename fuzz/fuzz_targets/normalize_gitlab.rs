//! GitLab's payload normalization: any bytes as the body of a verified request,
//! under every event name the normalizer tells apart.
#![no_main]

use herald_fuzz::normalize_under_every_event;
use herald_ingest::CodeHostKind;
use libfuzzer_sys::fuzz_target;

const EVENTS: &[&str] = &[
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "Pipeline Hook",
    "Note Hook",
];

fuzz_target!(|body: &[u8]| {
    normalize_under_every_event(CodeHostKind::GitLab, EVENTS, body);
});

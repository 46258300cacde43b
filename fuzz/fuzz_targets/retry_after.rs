//! `Retry-After` as the delivery engine reads it from a receiver's answer
//! (`herald_core::retry::parse_retry_after`: seconds or an HTTP date), then
//! bounded by the retry schedule as the engine does.
#![no_main]

use herald_core::retry::{RetrySchedule, parse_retry_after};
use herald_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;

/// 2026-01-01T00:00:00Z: a fixed clock keeps runs reproducible.
const NOW_MS: i64 = 1_767_225_600_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let retry_after = parse_retry_after(text, Timestamp::from_millis(NOW_MS));
    let _ = RetrySchedule::default().next_delay(1, retry_after);
});

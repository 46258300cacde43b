//! herald-monitor's query parser (the Sourcegraph subset code monitors take),
//! which reads every query a user saves; a parsed query is asked the
//! questions the scheduler asks.
#![no_main]

use herald_monitor::parse_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_query(text) {
        Ok(query) => {
            let _ = query.may_match_repo("github.com/acme/api");
            let _ = query.result_kinds();
        }
        Err(error) => assert!(
            error.position <= text.len(),
            "error position {} past the end of a {}-byte query",
            error.position,
            text.len()
        ),
    }
});

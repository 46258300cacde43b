//! `TargetUrl::parse`, which reads every webhook URL a user gives, and what is
//! derived from it: the URL sent to, the basic-auth header, and the shown form,
//! which must be stable when shown again (stored display text is re-masked as
//! it is read).
#![no_main]

use herald_core::shown_url::{hidden_parts, obscure_text};
use herald_core::webhook::TargetUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hidden_parts(text);
    let Ok(url) = TargetUrl::parse(text) else {
        return;
    };
    let _ = url.request_url();
    let _ = url.basic_auth_header();
    let shown = url.display();
    assert_eq!(
        obscure_text(&shown),
        shown,
        "masking {text:?} is not stable"
    );
});

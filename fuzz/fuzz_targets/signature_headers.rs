//! herald-core's signature checks over any header text: Standard Webhooks'
//! `webhook-signature` (space-separated `v1,<base64>` entries), GitHub's and
//! Bitbucket's `sha256=<hex>`, GitHub's legacy `sha1=<hex>`, and the keys a
//! secret yields. The first line is the header, the rest the body.
#![no_main]

use herald_core::secret::Secret;
use herald_core::signing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &data[data.len()..]),
    };
    let Ok(header) = std::str::from_utf8(first) else {
        return;
    };
    let timestamp = i64::try_from(body.len()).unwrap_or(i64::MAX);
    let _ = signing::verify_standard(b"key", "msg_1", timestamp, body, header);
    let _ = signing::verify_prefixed_sha256(b"key", body, header);
    let _ = signing::verify_prefixed_sha1(b"key", body, header);
    let _ = signing::tokens_equal(header.as_bytes(), body);
    if let Ok(secret) = Secret::parse(header) {
        let _ = secret.standard_key();
        let _ = secret.weakness();
    }
});

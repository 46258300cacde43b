//! What the fuzz targets share: feeding one input to herald-ingest the way the
//! server does after verification, under every event name a host's normalizer
//! tells apart, and taking whatever comes out as far as a published payload.

use herald_ingest::{
    ChangesetObservation, CodeHostKind, Normalized, apply, changeset_payload, identify, normalize,
};
use http::HeaderMap;

/// The receivers' code host URNs the targets use, one per host.
pub fn urn(kind: CodeHostKind) -> &'static str {
    match kind {
        CodeHostKind::GitHub => "https://github.com",
        CodeHostKind::GitLab => "https://gitlab.example.com",
        CodeHostKind::BitbucketServer => "https://bitbucket.example.com",
        CodeHostKind::BitbucketCloud => "https://bitbucket.org",
        CodeHostKind::AzureDevOps => "https://dev.azure.com/fabrikam",
    }
}

/// Identifies `body` as if it came without headers (GitLab and Azure DevOps
/// then read the event from the body), then normalizes it under each of
/// `events` and under the event it names, and renders what comes out.
pub fn normalize_under_every_event(kind: CodeHostKind, events: &[&str], body: &[u8]) {
    let named = identify(kind, &HeaderMap::new(), body)
        .ok()
        .map(|incoming| incoming.event_name);
    for event in events.iter().copied().chain(named.as_deref()) {
        if let Ok(normalized) = normalize(kind, urn(kind), event, body) {
            render(&normalized);
        }
    }
}

/// What the server does with a normalized request: a push is serialized as
/// the `repo:push` payload; an observation is merged into no record, then into
/// the record it made, and the result rendered as the changeset payload.
fn render(normalized: &Normalized) {
    match normalized {
        Normalized::Push(pushes) => {
            for push in pushes {
                let _ = serde_json::to_vec(push);
            }
        }
        Normalized::Changeset(observation) => merge_twice(observation),
        Normalized::Ping | Normalized::Ignored { .. } => {}
    }
}

fn merge_twice(observation: &ChangesetObservation) {
    let first = apply(None, observation);
    if let Some(state) = &first.new_state {
        let _ = changeset_payload(state);
        let again = apply(Some(state), observation);
        if let Some(state) = &again.new_state {
            let _ = changeset_payload(state);
        }
    }
}

/// An HTTP request written as text: `Name: value` lines, an empty line, the
/// body. Lines that are not a valid header are skipped, so any bytes make a
/// request.
pub fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = http::HeaderName::from_bytes(&line[..colon]);
        let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    (headers, body)
}

//! Payloads Herald builds itself, with the exact field names and order of the
//! seeds and schemas, plus the SonarQube properties merge applied at publish time.
//! (`repo:push` and the changesets normalized from code hosts are built by
//! herald-ingest; this crate's tests check them against the schemas.)

pub mod code_monitor;
pub mod operational;
pub mod sonarqube;

use serde::Serialize;

/// Compact JSON of a payload struct of this module.
fn to_bytes(payload: &impl Serialize) -> Vec<u8> {
    // These structs hold only strings, numbers, ids and timestamps, which always serialize.
    serde_json::to_vec(payload).expect("payload structs always serialize")
}

//! Prints what validation costs per publish, for the record (nothing is asserted):
//! `CARGO_TARGET_DIR=/work/target-catalogue cargo run --release -p herald-catalogue --example validation_cost`
//!
//! For each built-in type it times `Catalogue::validate` on the type's example, and,
//! for comparison, parsing the same body into a `serde_json::Value`, which publishing
//! does anyway.

#![allow(clippy::unwrap_used)] // a measuring tool run by hand: a failed step ends it with the cause

use std::hint::black_box;
use std::time::Instant;

use herald_catalogue::Catalogue;
use herald_catalogue::keys::SEMGREP_FINDINGS;
use serde_json::Value;

const ROUNDS: u32 = 20_000;

fn nanos_per_round(mut f: impl FnMut()) -> f64 {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

fn measure(catalogue: &Catalogue, key: &str, payload: &Value) {
    let body = serde_json::to_vec(payload).expect("a JSON value serializes");
    let validate = nanos_per_round(|| {
        black_box(catalogue.validate(black_box(key), black_box(payload))).ok();
    });
    let parse = nanos_per_round(|| {
        black_box(serde_json::from_slice::<Value>(black_box(&body))).ok();
    });
    println!(
        "{key:<28} {:>6} B  validate {validate:>8.0} ns   parse {parse:>8.0} ns",
        body.len()
    );
}

fn main() {
    let catalogue = Catalogue::builtin();
    for def in catalogue.list() {
        measure(&catalogue, &def.key, &def.example);
    }
    let finding = catalogue.get(SEMGREP_FINDINGS).expect("built in").example[0].clone();
    let hundred_findings = Value::Array(vec![finding; 100]);
    measure(&catalogue, SEMGREP_FINDINGS, &hundred_findings);
}

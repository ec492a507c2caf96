//! `credence audit` work on a 100,000-notice bundle (decode the file,
//! replay and check everything), beside raw batch verification of its
//! signatures, measured in the same run. Goal: at least 70% of the raw rate.
//!
//! Run: `cargo bench -p credence-node --bench audit` (NOTICES overrides the
//! count).

mod common;

use common::*;
use credence_protocol::bundle::{Bundle, audit};
use credence_protocol::replica::Replica;
use credence_protocol::store::MemStore;
use std::time::Instant;

/// Rounds of the two measurements.
const ROUNDS: usize = 5;

fn main() {
    let notices = notices_from_env(100_000);
    let (test, workload) = fixture(20, notices, notices as u64 / 3);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    for chunk in workload.envelopes.chunks(1024) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        replica.ingest_batch(&slices).expect("ingest");
    }
    let bytes = Bundle::export(&replica)
        .expect("export")
        .to_bytes()
        .expect("encode");
    let count = workload.envelopes.len();
    // Rounds interleave the two measurements, so that a change in the load
    // of this shared machine affects the figure and its reference alike;
    // each figure is the median of its rounds.
    let mut verify_times = Vec::new();
    let mut audit_times = Vec::new();
    for _ in 0..ROUNDS {
        verify_times.push(raw_batch_verify(&test, &workload.envelopes));
        let started = Instant::now();
        let bundle = Bundle::from_bytes(&bytes).expect("bundle");
        let report = audit(&bundle, workload.end, &mut |_, _| {}).expect("audit");
        audit_times.push(started.elapsed());
        assert!(report.passed(), "{:?}", report.violations.first());
    }
    let verify = median_of(verify_times);
    let audited = median_of(audit_times);
    let verify_rate = rate(count, verify);
    let audit_rate = rate(count, audited);
    println!(
        "bundle:                        {count} notices, {} bytes",
        bytes.len()
    );
    println!(
        "raw ed25519 batch verify:      {verify_rate:>10.0} signatures/s ({:.2} s)",
        verify.as_secs_f64()
    );
    println!(
        "audit (decode, replay, check): {audit_rate:>10.0} notices/s ({:.2} s)",
        audited.as_secs_f64()
    );
    println!(
        "audit / raw verify:            {:>9.1}%   (goal: at least 70%) {}",
        100.0 * audit_rate / verify_rate,
        if audit_rate >= 0.7 * verify_rate {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

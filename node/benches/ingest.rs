//! Ingest of 100,000 valid notices through the replica into sled, beside
//! the raw ed25519 batch verification rate of the same signatures, measured
//! in the same run. Goal: ingest at least 60% of the raw rate.
//!
//! Run: `cargo bench -p credence-node --bench ingest` (NOTICES overrides the
//! count).

mod common;

use common::*;
use credence_node::store::SledStore;
use credence_protocol::replica::{Outcome, Replica};
use credence_protocol::store::Store;
use std::time::Instant;

fn main() {
    let notices = notices_from_env(100_000);
    let (test, workload) = fixture(20, notices, notices as u64 / 3);
    let count = workload.envelopes.len();
    let verify = median(3, || raw_batch_verify(&test, &workload.envelopes));
    let ingest = median(3, || {
        let dir = match std::env::var_os("BENCH_DIR") {
            Some(base) => tempfile::tempdir_in(base).expect("temporary directory"),
            None => tempfile::tempdir().expect("temporary directory"),
        };
        let store = SledStore::open(dir.path(), test.federation.id()).expect("store");
        let mut replica = Replica::new(test.federation.clone(), store);
        let started = Instant::now();
        for chunk in workload.envelopes.chunks(16 * 1024) {
            let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let outcomes = replica.ingest_all(&slices).expect("ingest");
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, Outcome::Accepted { .. }))
            );
        }
        let before_flush = started.elapsed();
        replica.store_mut().flush().expect("flush");
        let elapsed = started.elapsed();
        eprintln!(
            "sled run: {:.2} s ingest, {:.2} s flush",
            before_flush.as_secs_f64(),
            (elapsed - before_flush).as_secs_f64()
        );
        assert_eq!(
            replica.store().notice_count().expect("count") as usize,
            count
        );
        elapsed
    });
    let memory = median(3, || {
        let mut replica = Replica::new(
            test.federation.clone(),
            credence_protocol::store::MemStore::new(),
        );
        let started = Instant::now();
        for chunk in workload.envelopes.chunks(16 * 1024) {
            let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            replica.ingest_all(&slices).expect("ingest");
        }
        started.elapsed()
    });
    let verify_rate = rate(count, verify);
    let ingest_rate = rate(count, ingest);
    println!("notices:                       {count}");
    println!(
        "raw ed25519 batch verify:      {verify_rate:>10.0} signatures/s ({:.2} s)",
        verify.as_secs_f64()
    );
    println!(
        "replica ingest into memory:    {:>10.0} notices/s ({:.2} s, for comparison)",
        rate(count, memory),
        memory.as_secs_f64()
    );
    println!(
        "replica ingest into sled:      {ingest_rate:>10.0} notices/s ({:.2} s, flushed)",
        ingest.as_secs_f64()
    );
    println!(
        "ingest / raw verify:           {:>9.1}%   (goal: at least 60%) {}",
        100.0 * ingest_rate / verify_rate,
        if ingest_rate >= 0.6 * verify_rate {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

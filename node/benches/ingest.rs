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
use credence_protocol::store::{MemStore, Store};
use credence_protocol::testkit::TestFederation;
use std::time::{Duration, Instant};

/// Rounds of the three measurements.
const ROUNDS: usize = 5;

fn ingest_into_sled(test: &TestFederation, envelopes: &[Vec<u8>]) -> Duration {
    let dir = match std::env::var_os("BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).expect("temporary directory"),
        None => tempfile::tempdir().expect("temporary directory"),
    };
    let store = SledStore::open(dir.path(), test.federation.id()).expect("store");
    let mut replica = Replica::new(test.federation.clone(), store);
    let started = Instant::now();
    for chunk in envelopes.chunks(16 * 1024) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let outcomes = replica.ingest_all(&slices).expect("ingest");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Accepted { .. }))
        );
    }
    replica.store_mut().flush().expect("flush");
    let elapsed = started.elapsed();
    assert_eq!(
        replica.store().notice_count().expect("count") as usize,
        envelopes.len()
    );
    elapsed
}

fn ingest_into_memory(test: &TestFederation, envelopes: &[Vec<u8>]) -> Duration {
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let started = Instant::now();
    for chunk in envelopes.chunks(16 * 1024) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        replica.ingest_all(&slices).expect("ingest");
    }
    started.elapsed()
}

fn main() {
    let notices = notices_from_env(100_000);
    let (test, workload) = fixture(20, notices, notices as u64 / 3);
    let count = workload.envelopes.len();
    // Rounds interleave the three measurements, so that a change in the
    // load of this shared machine affects the figure and its reference
    // alike; each figure is the median of its rounds.
    let mut verify_times = Vec::new();
    let mut sled_times = Vec::new();
    let mut memory_times = Vec::new();
    for _ in 0..ROUNDS {
        verify_times.push(raw_batch_verify(&test, &workload.envelopes));
        sled_times.push(ingest_into_sled(&test, &workload.envelopes));
        memory_times.push(ingest_into_memory(&test, &workload.envelopes));
    }
    let verify = median_of(verify_times);
    let ingest = median_of(sled_times);
    let memory = median_of(memory_times);
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

//! A subject lookup (every listing of a company, folded with its history)
//! with 1,000,000 notices stored in sled: p50 and p99 over 10,000 lookups
//! of random subjects. Goal: p99 under 1 ms.
//!
//! Run: `cargo bench -p credence-node --bench lookup` (NOTICES overrides the
//! count).

mod common;

use common::*;
use credence_node::store::SledStore;
use credence_protocol::model::{SubjectKey, SubjectKind};
use credence_protocol::replica::Replica;
use credence_protocol::store::Store;
use credence_protocol::testkit::{self, SplitMix64};
use std::time::{Duration, Instant};

const LOOKUPS: usize = 10_000;

fn main() {
    let notices = notices_from_env(1_000_000);
    let subjects = notices as u64 / 4;
    let (test, workload) = fixture(100, notices, subjects);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SledStore::open(dir.path(), test.federation.id()).expect("store");
    let mut replica = Replica::new(test.federation.clone(), store);
    let started = Instant::now();
    for chunk in workload.envelopes.chunks(64 * 1024) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        replica.ingest_all(&slices).expect("ingest");
    }
    replica.store_mut().flush().expect("flush");
    let stored = replica.store().notice_count().expect("count");
    eprintln!(
        "stored {stored} notices in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(workload);

    let mut rng = SplitMix64(7);
    let mut times: Vec<Duration> = Vec::with_capacity(LOOKUPS);
    let mut found = 0usize;
    for _ in 0..LOOKUPS {
        let id = testkit::uscc(rng.below(subjects));
        let key = SubjectKey::new(SubjectKind::LegalPerson, &id).expect("key");
        let started = Instant::now();
        let states = replica.subject_listings(&key, START).expect("lookup");
        times.push(started.elapsed());
        found += states.len();
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    println!("notices stored:                {stored}");
    println!(
        "lookups:                       {LOOKUPS} ({:.2} listings each on average)",
        found as f64 / LOOKUPS as f64
    );
    println!(
        "subject lookup p50:            {:>8.3} ms",
        p50.as_secs_f64() * 1000.0
    );
    println!(
        "subject lookup p99:            {:>8.3} ms   (goal: under 1 ms) {}",
        p99.as_secs_f64() * 1000.0,
        if p99 < Duration::from_millis(1) {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

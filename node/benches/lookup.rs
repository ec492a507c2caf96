//! A subject lookup (every listing of a company, folded with its history)
//! with 1,000,000 notices stored in sled: p50 and p99 over 10,000 lookups
//! of random subjects, each made twice in the same run: as before the
//! register of reads (the fold alone), and registered as the node does
//! it (the fold, the digest of what it returned, the record encoded and
//! appended to the register with its subject index). Goals: unregistered
//! p99 under 1 ms; registered p99 under 2 ms and under twice the
//! unregistered. Then the register's append rate, alone and with a flush
//! every 500 ms as the node makes reads durable. (The store's bytes per
//! notice are the `store` bench's.)
//!
//! Run: `cargo bench -p credence-node --bench lookup` (NOTICES overrides the
//! count).

mod common;

use common::*;
use credence_node::daemon::Stated;
use credence_node::daemon::register::{listings_digest, local_read};
use credence_protocol::model::{SubjectKey, SubjectKind};
use credence_protocol::register::ReadKind;
use credence_protocol::store::Store;
use credence_protocol::testkit::{self, SplitMix64};
use std::time::{Duration, Instant};

const LOOKUPS: usize = 10_000;

fn main() {
    let notices = notices_from_env(1_000_000);
    let subjects = notices as u64 / 4;
    let (test, workload) = fixture(100, notices, subjects);
    let (_dir, replica) = stored_in_sled(&test, &workload);
    let stored = replica.store().notice_count().expect("count");
    drop(workload);

    let stated = Stated {
        purpose: "supplier check before a contract".into(),
        legal_basis: "Government Procurement Law art. 22".into(),
    };
    let mut rng = SplitMix64(7);
    let mut plain: Vec<Duration> = Vec::with_capacity(LOOKUPS);
    let mut registered: Vec<Duration> = Vec::with_capacity(LOOKUPS);
    let mut found = 0usize;
    for n in 0..LOOKUPS {
        let id = testkit::uscc(rng.below(subjects));
        let key = SubjectKey::new(SubjectKind::LegalPerson, &id).expect("key");
        // Alternate which goes first, so that neither gets the warmer
        // cache.
        for registering in [n % 2 == 0, n % 2 == 1] {
            let started = Instant::now();
            let states = replica.subject_listings(&key, START).expect("lookup");
            if registering {
                let record = local_read(
                    ReadKind::Lookup,
                    "procurement-desk",
                    Some((SubjectKind::LegalPerson, id.clone())),
                    &stated,
                    listings_digest(&states),
                    START,
                );
                let bytes = record.encode().expect("record");
                replica
                    .store()
                    .register_append(&bytes, Some(&key))
                    .expect("append");
                registered.push(started.elapsed());
            } else {
                plain.push(started.elapsed());
                found += states.len();
            }
        }
    }
    let percentile = |times: &mut Vec<Duration>, p: usize| {
        times.sort();
        times[times.len() * p / 100]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99) = (percentile(&mut plain, 50), percentile(&mut plain, 99));
    let (r50, r99) = (
        percentile(&mut registered, 50),
        percentile(&mut registered, 99),
    );
    println!("notices stored:                {stored}");
    println!(
        "lookups:                       {LOOKUPS} each way ({:.2} listings each on average)",
        found as f64 / LOOKUPS as f64
    );
    println!("subject lookup p50:            {:>8.3} ms", ms(p50));
    println!(
        "subject lookup p99:            {:>8.3} ms   (goal: under 1 ms) {}",
        ms(p99),
        if p99 < Duration::from_millis(1) {
            "MET"
        } else {
            "NOT MET"
        }
    );
    println!("registered lookup p50:         {:>8.3} ms", ms(r50));
    let met = r99 < Duration::from_millis(2) && r99 < p99 * 2;
    println!(
        "registered lookup p99:         {:>8.3} ms   ({:.2}x unregistered; goal: under 2 ms and under 2x) {}",
        ms(r99),
        r99.as_secs_f64() / p99.as_secs_f64(),
        if met { "MET" } else { "NOT MET" }
    );

    // The register alone: appends, then appends with a flush every
    // 500 ms (the node's durability of reads).
    const APPENDS: usize = 200_000;
    let record = local_read(
        ReadKind::Lookup,
        "procurement-desk",
        Some((SubjectKind::LegalPerson, testkit::uscc(1))),
        &stated,
        [7; 32],
        START,
    )
    .encode()
    .expect("record");
    let key = SubjectKey::new(SubjectKind::LegalPerson, &testkit::uscc(1)).expect("key");
    let store = replica.store();
    let started = Instant::now();
    for _ in 0..APPENDS {
        store.register_append(&record, Some(&key)).expect("append");
    }
    let alone = APPENDS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut flushed = Instant::now();
    for _ in 0..APPENDS {
        store.register_append(&record, Some(&key)).expect("append");
        if flushed.elapsed() >= Duration::from_millis(500) {
            store.register_flush().expect("flush");
            flushed = Instant::now();
        }
    }
    store.register_flush().expect("flush");
    let durable = APPENDS as f64 / started.elapsed().as_secs_f64();
    println!(
        "register appends:              {alone:>8.0} records/s ({} bytes each, subject indexed)",
        record.len()
    );
    println!(
        "register appends, flushed:     {durable:>8.0} records/s (flush every 500 ms and at the end)"
    );
}

//! Anti-entropy sync between replicas of 1,000,000 and 999,000 notices from
//! 100 authorities (the smaller one lacks each author's newest 10), beside
//! the `negentropy` crate reconciling the same id sets in the same run.
//!
//! Printed: round trips and bytes needed to find the difference, and the
//! total time to converge (the missing notices pulled, verified and
//! stored). Goal: at most one round trip and under 10 KB to find the
//! difference (negentropy needs about 3 round trips and over 1 MB).
//!
//! Run: `cargo bench -p credence-node --bench sync` (NOTICES overrides the
//! size of the larger replica).

mod common;

use common::*;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::replica::Replica;
use credence_protocol::store::{MemStore, Store};
use credence_protocol::sync::{self, drive::exchange};
use credence_protocol::testkit::{self, TestFederation};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use std::time::Instant;

const AUTHORITIES: usize = 100;
const MISSING_PER_AUTHOR: usize = 10;

/// Every author's log of listings, signed on two threads: (author, seq,
/// issued_at, id, envelope) in log order per author.
fn logs(test: &TestFederation, per_author: usize) -> Vec<Vec<(u64, NoticeId, Vec<u8>)>> {
    let sign_author = |a: usize| {
        let key = &test.keys[a];
        let mut prev = NoticeId::default();
        let mut log = Vec::with_capacity(per_author);
        for seq in 1..=per_author as u64 {
            let issued_at = START.plus_ms(seq * 1000 + a as u64);
            let subject = (a as u64) * 1_000_000 + seq;
            let notice = Notice {
                version: NOTICE_VERSION,
                roster: 0,
                federation: test.federation.id(),
                author: test.author(a),
                seq,
                prev,
                issued_at,
                kind: NoticeKind::List(testkit::listing(subject, "food-drug", START)),
            };
            let (id, bytes) = testkit::sign(key, &notice);
            prev = id;
            log.push((issued_at.0, id, bytes));
        }
        log
    };
    std::thread::scope(|scope| {
        let halves: Vec<_> = (0..2)
            .map(|half| {
                let sign_author = &sign_author;
                scope.spawn(move || {
                    (0..AUTHORITIES)
                        .filter(|a| a % 2 == half)
                        .map(|a| (a, sign_author(a)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<_>)> = halves
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect();
        all.sort_by_key(|(a, _)| *a);
        all.into_iter().map(|(_, log)| log).collect()
    })
}

fn negentropy_storage(items: &[(u64, NoticeId)]) -> NegentropyStorageVector {
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (t, id) in items {
        storage
            .insert(*t, Id::from_byte_array(id.0))
            .expect("insert");
    }
    storage.seal().expect("seal");
    storage
}

fn main() {
    let total = notices_from_env(1_000_000);
    let per_author = total / AUTHORITIES;
    let test = testkit::federation(3, AUTHORITIES);
    let started = Instant::now();
    let logs = logs(&test, per_author);
    eprintln!(
        "signed {} notices in {:.1} s",
        per_author * AUTHORITIES,
        started.elapsed().as_secs_f64()
    );

    // The smaller replica, then the larger one as a copy plus the newest
    // notices of every author.
    let started = Instant::now();
    let mut small = Replica::new(test.federation.clone(), MemStore::new());
    let older: Vec<&[u8]> = logs
        .iter()
        .flat_map(|log| {
            log[..per_author - MISSING_PER_AUTHOR]
                .iter()
                .map(|(_, _, b)| b.as_slice())
        })
        .collect();
    for chunk in older.chunks(64 * 1024) {
        small.ingest_all(chunk).expect("ingest");
    }
    let mut large = Replica::new(test.federation.clone(), small.store().clone());
    let newest: Vec<&[u8]> = logs
        .iter()
        .flat_map(|log| {
            log[per_author - MISSING_PER_AUTHOR..]
                .iter()
                .map(|(_, _, b)| b.as_slice())
        })
        .collect();
    large.ingest_all(&newest).expect("ingest");
    let (small_count, large_count) = (
        small.store().notice_count().expect("count"),
        large.store().notice_count().expect("count"),
    );
    eprintln!(
        "replicas of {small_count} and {large_count} notices built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // credence: the smaller replica starts a session against the larger.
    let started = Instant::now();
    let cost = exchange(&mut small, &mut large).expect("sync");
    let converge = started.elapsed();
    assert_eq!(
        sync::local_heads(&small).expect("heads"),
        sync::local_heads(&large).expect("heads")
    );
    assert_eq!(cost.accepted as usize, AUTHORITIES * MISSING_PER_AUTHOR);

    // negentropy over the same (timestamp, id) sets.
    let items = |count: usize| -> Vec<(u64, NoticeId)> {
        logs.iter()
            .flat_map(|log| log[..count].iter().map(|(t, id, _)| (*t, *id)))
            .collect()
    };
    let started = Instant::now();
    let client_storage = negentropy_storage(&items(per_author - MISSING_PER_AUTHOR));
    let server_storage = negentropy_storage(&items(per_author));
    let build = started.elapsed();
    let started = Instant::now();
    let mut client = Negentropy::borrowed(&client_storage, 0).expect("client");
    let mut server = Negentropy::borrowed(&server_storage, 0).expect("server");
    let mut message = client.initiate().expect("initiate");
    let (mut rounds, mut bytes) = (0u64, 0u64);
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        rounds += 1;
        bytes += message.len() as u64;
        let answer = server.reconcile(&message).expect("reconcile");
        bytes += answer.len() as u64;
        match client
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .expect("reconcile")
        {
            Some(next) => message = next,
            None => break,
        }
    }
    let negentropy_time = started.elapsed();
    assert_eq!(need.len(), AUTHORITIES * MISSING_PER_AUTHOR);

    println!(
        "replicas:                        {large_count} and {small_count} notices, {AUTHORITIES} authorities"
    );
    println!("credence sync (heads digest, then heads, then ranges):");
    println!(
        "  to find the difference:        {} round trip(s), {} bytes      goal: <= 1 round trip, < 10,000 bytes",
        cost.round_trips_to_difference, cost.bytes_to_difference
    );
    println!(
        "  to converge:                   {} round trips, {} bytes, {:.1} ms ({} notices pulled, verified, stored)",
        cost.round_trips,
        cost.bytes,
        converge.as_secs_f64() * 1000.0,
        cost.accepted
    );
    println!("negentropy 0.5 (same id sets, ids only, no transfer):");
    println!(
        "  to find the difference:        {rounds} round trip(s), {bytes} bytes, {:.1} ms (+ {:.1} ms to build both sorted sets)",
        negentropy_time.as_secs_f64() * 1000.0,
        build.as_secs_f64() * 1000.0
    );
    let met = cost.round_trips_to_difference <= 1 && cost.bytes_to_difference < 10_000;
    println!(
        "goal (<= 1 round trip and < 10 KB to find the difference): {}",
        if met { "met" } else { "NOT met" }
    );
}

//! Proofs over a large log, from the tree a node keeps of it
//! (`merkle::PagedTree`: the hashes of complete 64-id pages and above in
//! memory, the ids within a page read back from sled), beside the same
//! proofs from a tree built from the whole log for each answer (what the
//! HTTP proof routes did before), measured in the same run on the same
//! sled store. Also the memory each kept tree takes beside the tree of
//! every leaf (`merkle::Tree`, what query answers kept before).
//!
//! Run: `cargo bench -p credence-node --bench proofs` (NOTICES, 1,000,000
//! by default, from two authorities: the longer log is proven).

mod common;

use common::*;
use credence_crypto::merkle;
use credence_protocol::checkpoint::proofs::{self, Source};
use credence_protocol::store::Store;
use std::time::{Duration, Instant};

/// Proofs timed from the kept tree, and from a built one.
const KEPT_PROOFS: usize = 2_000;
const BUILT_PROOFS: usize = 5;

fn main() {
    let notices = notices_from_env(1_000_000);
    let (test, workload) = fixture(2, notices, notices as u64 / 4);
    let (_dir, replica) = stored_in_sled(&test, &workload);
    drop(workload);
    let store = replica.store();
    let head = store
        .heads()
        .expect("heads")
        .into_iter()
        .max_by_key(|h| h.seq)
        .expect("a log");
    let (author, size) = (head.author, head.seq);
    println!("the longer log: {size} notices");

    let started = Instant::now();
    let mut kept = merkle::PagedTree::new();
    credence_protocol::proven::extend(store, &author, &mut kept, size).expect("extend");
    let grown = started.elapsed();
    let mut every = merkle::Tree::new();
    while every.len() < size {
        let ids = store
            .log_range(&author, every.len() + 1, 65_536)
            .expect("log range");
        for id in ids {
            every.push(id.digest());
        }
    }
    println!(
        "kept tree grown from sled in {:.2} s: {} KiB in memory ({} digests); the tree of every leaf: {} KiB ({:.0}x)",
        grown.as_secs_f64(),
        kept.digests() * 32 / 1024,
        kept.digests(),
        every.digests() * 32 / 1024,
        every.digests() as f64 / kept.digests() as f64
    );
    drop(every);

    // Seqs and sizes spread over the log, the same for both ways.
    let mut rng = 0x5eed_u64;
    let mut next = move |below: u64| {
        rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below
    };
    let asks: Vec<(u64, u64)> = (0..KEPT_PROOFS)
        .map(|_| {
            let at = size / 2 + 1 + next(size / 2);
            (1 + next(at), at)
        })
        .collect();

    let mut inclusion_kept = Vec::with_capacity(KEPT_PROOFS);
    let mut consistency_kept = Vec::with_capacity(KEPT_PROOFS);
    for (seq, at) in &asks {
        let started = Instant::now();
        let proof = proofs::inclusion(store, &author, *seq, Some(*at), Source::Kept(&kept))
            .expect("inclusion");
        inclusion_kept.push(started.elapsed());
        assert!(merkle::verify_inclusion(
            &proof.id.digest(),
            seq - 1,
            *at,
            &proof.path,
            &proof.root
        ));
        let started = Instant::now();
        let proof = proofs::consistency(store, &author, *seq, *at, Source::Kept(&kept))
            .expect("consistency");
        consistency_kept.push(started.elapsed());
        assert!(merkle::verify_consistency(
            *seq,
            *at,
            &proof.from_root,
            &proof.to_root,
            &proof.path
        ));
    }
    // A built tree is refused above PROOF_LEAVES_MAX (as the former
    // route was): past it, built proofs are timed at that size, the
    // largest they could serve.
    let built_size = size.min(proofs::PROOF_LEAVES_MAX);
    let mut inclusion_built = Vec::with_capacity(BUILT_PROOFS);
    for _ in 0..BUILT_PROOFS {
        let seq = 1 + next(built_size);
        let started = Instant::now();
        let built = proofs::inclusion(store, &author, seq, Some(built_size), Source::Built)
            .expect("inclusion");
        inclusion_built.push(started.elapsed());
        let kept_proof =
            proofs::inclusion(store, &author, seq, Some(built_size), Source::Kept(&kept))
                .expect("inclusion");
        assert_eq!(built, kept_proof, "both ways give the same proof");
    }
    if size > built_size {
        let refused = proofs::inclusion(store, &author, 1, Some(size), Source::Built);
        assert!(refused.is_err(), "a built tree is bounded");
        println!(
            "a tree built from the log is refused at {size} notices (bound {}): built proofs timed at {built_size}",
            proofs::PROOF_LEAVES_MAX
        );
    }
    let show = |what: &str, times: Vec<Duration>| -> Duration {
        let (p50, _, p99) = percentiles(times);
        println!("{what:<44} p50 {:>10}  p99 {:>10}", ms(p50), ms(p99));
        p99
    };
    let inclusion_p99 = show("inclusion proof, kept tree", inclusion_kept);
    show("consistency proof, kept tree", consistency_kept);
    let built_p50 = median_of(inclusion_built);
    println!(
        "{:<44} p50 {:>10}  ({BUILT_PROOFS} runs, at {built_size} notices)",
        "inclusion proof, tree built from the log",
        ms(built_p50)
    );
    println!(
        "kept tree p99 at {size} notices is {:.0}x faster than a built tree's p50 at {built_size} (goal: under 10 ms whatever the log's size) {}",
        built_p50.as_secs_f64() / inclusion_p99.as_secs_f64(),
        if inclusion_p99 < Duration::from_millis(10) {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

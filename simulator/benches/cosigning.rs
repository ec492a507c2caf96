//! Checkpoint cosigning load on one node of a 100-member federation.
//!
//! One round: every other member's log has grown, so each signs a
//! checkpoint of it and publishes it, and each of the other witnesses
//! publishes its cosignature of it alone (one line per message). The node
//! under test holds every log; it receives each message once (gossip drops
//! copies before they reach the engine), verifies it, gathers it, and
//! cosigns each checkpoint itself. The round is timed through the engine
//! (`Input::WitnessGossip`), then the cost is set against the checkpoint
//! interval: at most one checkpoint per log every `CHECKPOINT_INTERVAL_MS`.
//!
//! Run: `cargo bench -p credence-sim --bench cosigning` (MEMBERS overrides
//! the size).

use credence_crypto::AuthorityKey;
use credence_protocol::checkpoint::{self, Checkpoint, wire};
use credence_protocol::engine::witnessing::CHECKPOINT_INTERVAL_MS;
use credence_protocol::engine::{Engine, EngineConfig, Input, Mark, Output};
use credence_protocol::replica::Replica;
use credence_protocol::store::{MemStore, Store};
use credence_protocol::testkit;
use credence_protocol::time::Timestamp;
use std::time::Instant;

/// Share of one core the cosigning of a round may take at the interval.
const GOAL_CORE_SHARE: f64 = 0.10;

fn main() {
    let members: usize = std::env::var("MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let test = testkit::federation(3, members);
    let start = Timestamp(1_767_225_600_000);
    let workload = testkit::workload(&test, 4, members * 20, 200, start);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let slices: Vec<&[u8]> = workload.envelopes.iter().map(Vec::as_slice).collect();
    replica.ingest_all(&slices).expect("ingest");
    let heads = replica.store().heads().expect("heads");
    let quorum = checkpoint::quorum(&test.federation);
    let key = |i: usize| AuthorityKey::from_secret_bytes(test.keys[i].secret_bytes());
    let index_of = |author| {
        (0..members)
            .find(|i| test.author(*i) == author)
            .expect("a member")
    };
    // The round's messages, in the order they would arrive: each log's
    // checkpoint, then every other witness's cosignature of it.
    let now = workload.end.plus_ms(60_000);
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for head in heads.iter().filter(|h| h.author != test.author(0)) {
        let author = index_of(head.author);
        let c = Checkpoint::of_log(&test.federation.id(), &head.author, head.seq, head.root());
        let note = checkpoint::sign(&key(author), &c).expect("signed");
        messages.push(wire::encode(&wire::note_message(&note)).expect("encoded"));
        for w in (1..members).filter(|w| *w != author) {
            let mut one = note.clone();
            one.signatures.push(
                checkpoint::cosign(&key(w), &test.federation.id(), &note.text, now.0 / 1000)
                    .expect("cosigned"),
            );
            messages.push(wire::encode(&wire::note_message(&one)).expect("encoded"));
        }
    }
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let mut engine = Engine::new(
        EngineConfig::default(),
        replica,
        key(0),
        Some(Mark::zero()),
        1,
        now,
    );
    let started = Instant::now();
    let mut cosigned = 0usize;
    let mut accepted = 0usize;
    for (i, message) in messages.iter().enumerate() {
        let from = test.author(1 + i % (members - 1));
        for output in engine.handle(
            Input::WitnessGossip {
                from,
                message: i as u64,
                bytes: message,
            },
            now,
        ) {
            match output {
                Output::PublishCheckpoint { .. } => cosigned += 1,
                Output::Verdict {
                    verdict: credence_protocol::engine::Verdict::Accept,
                    ..
                } => accepted += 1,
                _ => {}
            }
        }
    }
    let round = started.elapsed();
    // Every log is now witnessed here.
    let witnessed = engine
        .checkpoints()
        .iter()
        .filter(|log| log.witnessed.is_some())
        .count();
    let logs = heads.len() - usize::from(heads.iter().any(|h| h.author == test.author(0)));
    assert_eq!(witnessed, logs, "every other log's checkpoint is witnessed");
    assert_eq!(cosigned, logs, "the node cosigns each checkpoint once");
    let share = round.as_secs_f64() / (CHECKPOINT_INTERVAL_MS as f64 / 1000.0);
    println!("members:                            {members} (quorum {quorum})");
    println!(
        "one round at the node:              {} checkpoints, {} cosignatures received ({} messages, {:.1} MiB)",
        logs,
        messages.len() - logs,
        messages.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "                                    {accepted} accepted, {cosigned} cosigned by the node itself"
    );
    println!(
        "time to take the round:             {:.1} ms ({:.1} us a message)",
        round.as_secs_f64() * 1000.0,
        round.as_secs_f64() * 1e6 / messages.len() as f64
    );
    println!(
        "cosigning load at one checkpoint per log every {} s: {:.1} % of one core   goal: under {:.0} % ({})",
        CHECKPOINT_INTERVAL_MS / 1000,
        100.0 * share,
        100.0 * GOAL_CORE_SHARE,
        if share < GOAL_CORE_SHARE {
            "met"
        } else {
            "NOT met"
        }
    );
}

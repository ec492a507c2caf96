//! The store's bytes on disk per notice beside the envelopes' (goal,
//! issue 15: under twice), on a node as it runs: the fixture's notices
//! (100 members) ingested into sled and member 1's views derived. Prints
//! the records by kind (their key and value bytes before sled's framing)
//! so that the difference between what is kept and what sled writes
//! shows.
//!
//! Run: `cargo bench -p credence-node --bench store` (NOTICES overrides
//! the count, 200,000 by default).

mod common;

use common::*;
use credence_protocol::store::Store;

fn main() {
    let notices = notices_from_env(200_000);
    let (test, workload) = fixture(100, notices, notices as u64 / 4);
    let (dir, mut replica) = stored_in_sled(&test, &workload);
    let stored = replica.store().notice_count().expect("count");
    let envelope_bytes: u64 = workload.envelopes.iter().map(|e| e.len() as u64).sum();
    let t = workload.end;
    drop(workload);
    let took = views_derived(&test, &replica, 1, t);
    eprintln!("views derived in {:.1} s", took.as_secs_f64());
    let usage = replica.store_mut().usage().expect("usage");
    let per = |bytes: u64| bytes as f64 / stored as f64;
    println!("records in sled by kind, per notice stored ({stored} notices):");
    let mut logical = 0;
    for (kind, use_) in &usage {
        logical += use_.key_bytes + use_.value_bytes;
        println!(
            "  {kind}  {:>10} records  keys {:>7.1} B  values {:>7.1} B",
            use_.records,
            per(use_.key_bytes),
            per(use_.value_bytes)
        );
    }
    drop(replica);
    let disk = directory_bytes(dir.path());
    let envelope = per(envelope_bytes);
    println!(
        "keys and values:               {:>8.0} B per notice ({:.2}x the envelope)",
        per(logical),
        per(logical) / envelope
    );
    println!(
        "store bytes per notice:        {:>8.0} (envelopes {envelope:.0} bytes on average: {:.2}x; goal: under 2x) {}",
        per(disk),
        per(disk) / envelope,
        if per(disk) < 2.0 * envelope {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

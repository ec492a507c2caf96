//! A replica ingesting arbitrary envelope sequences: valid envelopes of a
//! fixed workload, picked, mutated, cut and repeated by the fuzzer, in
//! batches. It never panics, never stores what breaks a rule, and a
//! replica fed the same set in another order holds the same heads.
#![no_main]

use credence_protocol::NoticeId;
use credence_protocol::replica::{CheckedNotice, NoticeMemo, Outcome, Replica};
use credence_protocol::store::{MemStore, Store};
use credence_protocol::{Timestamp, testkit};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Envelopes checked once per process: a valid envelope's signature is
/// verified the first time it is met, not at every run.
#[derive(Default)]
struct Memo(Mutex<BTreeMap<NoticeId, CheckedNotice>>);

impl NoticeMemo for Memo {
    fn checked(&self, id: &NoticeId) -> Option<CheckedNotice> {
        self.0.lock().ok()?.get(id).cloned()
    }
    fn set_checked(&self, id: NoticeId, checked: CheckedNotice) {
        if let Ok(mut memo) = self.0.lock()
            && memo.len() < 4096
        {
            memo.insert(id, checked);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static MEMO: OnceLock<Arc<Memo>> = OnceLock::new();
    let memo: Arc<dyn NoticeMemo> = MEMO.get_or_init(|| Arc::new(Memo::default())).clone();
    static WORK: OnceLock<(testkit::TestFederation, Vec<Vec<u8>>)> = OnceLock::new();
    let (test, envelopes) = WORK.get_or_init(|| {
        let test = testkit::federation(8, 3);
        let work = testkit::workload(&test, 8, 64, 8, Timestamp(1_780_000_000_000));
        (test, work.envelopes)
    });
    // Each 3-byte step: which envelope, which byte to flip (or none), and
    // whether to cut the batch there.
    let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    for step in data.chunks(3) {
        let [pick, flip, cut] = [
            step[0],
            *step.get(1).unwrap_or(&0),
            *step.get(2).unwrap_or(&0),
        ];
        let mut envelope = envelopes[pick as usize % envelopes.len()].clone();
        if flip & 1 == 1 {
            let at = (flip as usize * 31 + cut as usize) % envelope.len();
            envelope[at] ^= flip | 1;
        }
        batches.last_mut().expect("one batch").push(envelope);
        if cut & 0x80 != 0 {
            batches.push(Vec::new());
        }
    }
    let mut replica =
        Replica::new(test.federation.clone(), MemStore::new()).with_notice_memo(memo.clone());
    let mut accepted = Vec::new();
    for batch in &batches {
        let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        for outcome in replica.ingest_batch(&slices).expect("memory store") {
            if let Outcome::Accepted { id, .. } = outcome {
                accepted.push(id);
            }
        }
    }
    // Everything accepted is stored, and is one of the valid envelopes.
    for id in &accepted {
        let bytes = replica
            .store()
            .notice(id)
            .expect("memory store")
            .expect("stored");
        assert!(envelopes.contains(&bytes), "a mutated envelope was stored");
    }
    // The same envelopes in reverse order give the same heads once every
    // predecessor is there (pending ones resolve).
    let mut other = Replica::new(test.federation.clone(), MemStore::new()).with_notice_memo(memo);
    let all: Vec<&[u8]> = batches.iter().rev().flatten().map(Vec::as_slice).collect();
    other.ingest_batch(&all).expect("memory store");
    let heads = |r: &Replica<MemStore>| r.store().heads().expect("memory store");
    if replica.pending_count() == 0 && other.pending_count() == 0 {
        assert_eq!(heads(&replica), heads(&other));
    }
});

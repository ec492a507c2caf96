//! The store every simulated replica runs on: the `protocol` [`Store`]
//! interface over envelopes held once for the whole simulation.
//!
//! A thousand replicas holding ten thousand notices each would keep ten
//! million copies of the same envelopes. Here each envelope is interned
//! once, by id, into a table the replicas share, and a replica's store
//! holds 32-bit indexes into it: its per-author logs and the indexes
//! `Store` asks for. Which stores hold an envelope is a row of bits kept
//! beside the envelope in the shared table, one bit per store: the
//! simulator asks "does node N hold envelope E" at every gossip delivery,
//! and a notice's deliveries come in a wave, so its row stays in cache
//! while the wave passes. It passes the same store test suite as the
//! in-memory and sled stores.

use credence_protocol::model::{AuthorityId, NoticeId, SubjectKey};
use credence_protocol::store::{Append, ForkEvidence, Head, Orphan, Store};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Hashes a 32-byte id by its first 8 bytes: ids are BLAKE3 hashes and
/// public keys, uniform already, and the simulator looks one up at almost
/// every delivery. Keys are still compared in full.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<8>() {
            Some(word) => self.0 ^= u64::from_le_bytes(*word),
            None => {
                for byte in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
                }
            }
        }
    }

    fn write_usize(&mut self, _: usize) {
        // The length prefix of a 32-byte array says nothing.
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A log slot whose notice this store has not been given.
const NONE: u32 = u32::MAX;

/// An envelope with its id, shared by every store and message holding it.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The notice id (the hash of the bytes).
    pub id: NoticeId,
    /// Where the interner holds it; `None` for an envelope no replica
    /// stored (garbage, a forgery, a fork's second notice).
    pub index: Option<u32>,
    /// The bytes exactly as signed.
    pub bytes: Box<[u8]>,
}

impl Envelope {
    /// An envelope no store holds.
    pub fn loose(bytes: Vec<u8>) -> Envelope {
        Envelope {
            id: NoticeId::from(credence_crypto::merkle::leaf_hash(&bytes)),
            index: None,
            bytes: bytes.into_boxed_slice(),
        }
    }
}

/// The envelopes of one simulation, each held once.
#[derive(Debug, Default)]
pub struct Interner {
    index: IdMap<NoticeId, u32>,
    envelopes: Vec<Rc<Envelope>>,
    /// Authors numbered in the order their first notice was stored, so
    /// that each store keeps its logs in a vector.
    authors: IdMap<AuthorityId, usize>,
    /// Per envelope, `stride` words: bit `s` is set when store `s` holds it.
    holders: Vec<u64>,
    stride: usize,
    /// Store numbers handed out, and those of dropped stores to reuse.
    stores: usize,
    free: Vec<usize>,
}

impl Interner {
    /// The index of `id`, adding `bytes` under it if it is new.
    fn intern(&mut self, id: NoticeId, bytes: &[u8]) -> u32 {
        if let Some(index) = self.index.get(&id) {
            return *index;
        }
        let index = u32::try_from(self.envelopes.len())
            .ok()
            .filter(|i| *i != NONE)
            .unwrap_or_else(|| panic!("more than {NONE} envelopes in one simulation"));
        self.index.insert(id, index);
        self.holders.resize(self.holders.len() + self.stride, 0);
        self.envelopes.push(Rc::new(Envelope {
            id,
            index: Some(index),
            bytes: bytes.into(),
        }));
        index
    }

    /// The index of `id`, if any replica stored it.
    pub fn find(&self, id: &NoticeId) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The envelope at `index`.
    pub fn get(&self, index: u32) -> Rc<Envelope> {
        self.envelopes[index as usize].clone()
    }

    fn id(&self, index: u32) -> NoticeId {
        self.envelopes[index as usize].id
    }

    /// The number of `author`, if a store holds any of its notices.
    fn author(&self, author: &AuthorityId) -> Option<usize> {
        self.authors.get(author).copied()
    }

    /// The number of `author`, numbering it if it is new.
    fn number_author(&mut self, author: AuthorityId) -> usize {
        let next = self.authors.len();
        *self.authors.entry(author).or_insert(next)
    }

    /// A number for a new store, widening the rows if it needs a bit more.
    fn open_store(&mut self) -> usize {
        let number = self.free.pop().unwrap_or_else(|| {
            self.stores += 1;
            self.stores - 1
        });
        if number >= self.stride * 64 {
            let stride = (self.stride * 2).max(1).max(number / 64 + 1);
            let mut holders = vec![0; self.envelopes.len() * stride];
            if self.stride > 0 {
                for (old, new) in self
                    .holders
                    .chunks_exact(self.stride)
                    .zip(holders.chunks_exact_mut(stride))
                {
                    new[..self.stride].copy_from_slice(old);
                }
            }
            self.holders = holders;
            self.stride = stride;
        }
        number
    }

    /// Forgets everything store `number` held, so that the number can be
    /// handed out again.
    fn close_store(&mut self, number: usize) {
        let (word, bit) = (number / 64, number % 64);
        for row in self.holders.chunks_exact_mut(self.stride.max(1)) {
            if let Some(w) = row.get_mut(word) {
                *w &= !(1 << bit);
            }
        }
        self.free.push(number);
    }

    /// Store `store` holds the envelope at `index`.
    fn held_by(&self, index: u32, store: usize) -> bool {
        let at = index as usize * self.stride + store / 64;
        self.holders
            .get(at)
            .is_some_and(|w| w & (1 << (store % 64)) != 0)
    }

    /// Records that store `store` holds the envelope at `index`.
    fn hold(&mut self, index: u32, store: usize) {
        let at = index as usize * self.stride + store / 64;
        self.holders[at] |= 1 << (store % 64);
    }
}

/// The interner the replicas of one simulation share.
pub type SharedInterner = Rc<RefCell<Interner>>;

#[derive(Clone, Debug)]
struct AuthorLog {
    /// Notice indexes by seq - 1.
    slots: Vec<u32>,
    head: Head,
}

/// One replica's store (see the module documentation).
#[derive(Debug)]
pub struct SimStore {
    interner: SharedInterner,
    /// This store's bit in the interner's rows.
    number: usize,
    count: u64,
    /// By the interner's author number.
    logs: Vec<Option<AuthorLog>>,
    referring: FxHashMap<NoticeId, Vec<u32>>,
    subjects: FxHashMap<SubjectKey, Vec<u32>>,
    listings: Vec<u32>,
    arrivals: Vec<u32>,
    forks: BTreeMap<(AuthorityId, u64, NoticeId), ForkEvidence>,
    rosters: BTreeMap<credence_protocol::model::RosterHash, Vec<u8>>,
    /// The witness's checkpoint notes per log (`Store::put_checkpoint_notes`).
    checkpoints: BTreeMap<AuthorityId, Vec<Vec<u8>>>,
    /// The roster proposals held (`Store::put_proposals`).
    proposals: Vec<Vec<u8>>,
}

impl SimStore {
    /// An empty store over `interner`.
    pub fn new(interner: SharedInterner) -> SimStore {
        let number = interner.borrow_mut().open_store();
        SimStore {
            interner,
            number,
            count: 0,
            logs: Vec::new(),
            referring: FxHashMap::default(),
            subjects: FxHashMap::default(),
            listings: Vec::new(),
            arrivals: Vec::new(),
            forks: BTreeMap::new(),
            rosters: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            proposals: Vec::new(),
        }
    }

    /// The log of `author`, if this store holds any of its notices.
    fn log(&self, author: &AuthorityId) -> Option<&AuthorLog> {
        let number = self.interner.borrow().author(author)?;
        self.logs.get(number)?.as_ref()
    }

    /// Holds the interned envelope at `index`.
    pub fn holds(&self, index: u32) -> bool {
        self.interner.borrow().held_by(index, self.number)
    }

    /// The index of `id` if this store holds it.
    fn held_index(&self, id: &NoticeId) -> Option<u32> {
        let interner = self.interner.borrow();
        interner
            .find(id)
            .filter(|index| interner.held_by(*index, self.number))
    }

    /// The ids at `indexes`, in id order (as the other stores give them).
    /// Indexes `listing` (the notice at `index`, or one it holds) under
    /// the keys of linked persons.
    fn index_linked(&mut self, keys: &[SubjectKey], listing: NoticeId, index: u32) {
        let listing = if listing == self.interner.borrow().id(index) {
            Some(index)
        } else {
            self.interner.borrow().find(&listing)
        };
        let Some(listing) = listing else {
            return;
        };
        for key in keys {
            let entries = self.subjects.entry(*key).or_default();
            if !entries.contains(&listing) {
                entries.push(listing);
            }
        }
    }

    fn sorted_ids(&self, indexes: &[u32]) -> Vec<NoticeId> {
        let interner = self.interner.borrow();
        let mut ids: Vec<NoticeId> = indexes.iter().map(|i| interner.id(*i)).collect();
        ids.sort_unstable();
        ids
    }

    /// Holds this envelope (looked up by its index if it has one).
    pub fn holds_envelope(&self, envelope: &Envelope) -> bool {
        match envelope.index {
            Some(index) => self.holds(index),
            None => self.held_index(&envelope.id).is_some(),
        }
    }

    /// The envelope with this id, shared, if this store holds it.
    pub fn envelope(&self, id: &NoticeId) -> Option<Rc<Envelope>> {
        self.held_index(id)
            .map(|index| self.interner.borrow().get(index))
    }
}

impl Drop for SimStore {
    fn drop(&mut self) {
        if let Ok(mut interner) = self.interner.try_borrow_mut() {
            interner.close_store(self.number);
        }
    }
}

impl Store for SimStore {
    type Error = std::convert::Infallible;

    fn notice(&self, id: &NoticeId) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.envelope(id).map(|e| e.bytes.to_vec()))
    }

    fn contains(&self, id: &NoticeId) -> Result<bool, Self::Error> {
        Ok(self.held_index(id).is_some())
    }

    fn log_id(&self, author: &AuthorityId, seq: u64) -> Result<Option<NoticeId>, Self::Error> {
        let Some(log) = self.log(author) else {
            return Ok(None);
        };
        let slot = usize::try_from(seq.wrapping_sub(1)).ok();
        Ok(slot
            .and_then(|s| log.slots.get(s))
            .filter(|i| **i != NONE)
            .map(|i| self.interner.borrow().id(*i)))
    }

    fn log_range(
        &self,
        author: &AuthorityId,
        seq_from: u64,
        limit: usize,
    ) -> Result<Vec<NoticeId>, Self::Error> {
        let Some(log) = self.log(author) else {
            return Ok(Vec::new());
        };
        let from = usize::try_from(seq_from.max(1) - 1).unwrap_or(usize::MAX);
        let interner = self.interner.borrow();
        Ok(log
            .slots
            .iter()
            .skip(from)
            .filter(|i| **i != NONE)
            .take(limit)
            .map(|i| interner.id(*i))
            .collect())
    }

    fn head(&self, author: &AuthorityId) -> Result<Option<Head>, Self::Error> {
        Ok(self.log(author).map(|log| log.head.clone()))
    }

    fn heads(&self) -> Result<Vec<Head>, Self::Error> {
        // In author order, as the other stores give them.
        // Sorted by reference, then cloned: a head is a few hundred bytes.
        let mut logs: Vec<&AuthorLog> = self.logs.iter().flatten().collect();
        logs.sort_unstable_by_key(|log| log.head.author);
        Ok(logs.into_iter().map(|log| log.head.clone()).collect())
    }

    fn referring(&self, listing: &NoticeId) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self
            .referring
            .get(listing)
            .map(|r| self.sorted_ids(r))
            .unwrap_or_default())
    }

    fn listings_of(&self, subject: &SubjectKey) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self
            .subjects
            .get(subject)
            .map(|r| self.sorted_ids(r))
            .unwrap_or_default())
    }

    fn listings(&self) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self.sorted_ids(&self.listings))
    }

    fn append(&mut self, append: Append<'_>) -> Result<(), Self::Error> {
        let listing = append.indexed_listing();
        let (index, number) = {
            let mut interner = self.interner.borrow_mut();
            let index = interner.intern(append.id, append.envelope);
            (index, interner.number_author(append.head.author))
        };
        let seq = append.head.seq;
        if self.logs.len() <= number {
            self.logs.resize_with(number + 1, || None);
        }
        let log = self.logs[number].get_or_insert_with(|| AuthorLog {
            slots: Vec::new(),
            head: append.head.clone(),
        });
        if let Some(slot) = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1)) {
            if log.slots.len() <= slot {
                log.slots.resize(slot + 1, NONE);
            }
            log.slots[slot] = index;
        }
        log.head = append.head;
        {
            let mut interner = self.interner.borrow_mut();
            if interner.held_by(index, self.number) {
                return Ok(());
            }
            interner.hold(index, self.number);
        }
        self.count += 1;
        if let Some(listing) = append.listing {
            self.referring.entry(listing).or_default().push(index);
        }
        if let Some(subject) = append.subject {
            self.subjects.entry(subject).or_default().push(index);
            self.listings.push(index);
        }
        self.index_linked(&append.linked, listing, index);
        self.arrivals.push(index);
        Ok(())
    }

    fn truncate_log(
        &mut self,
        author: &AuthorityId,
        head: Option<Head>,
    ) -> Result<(), Self::Error> {
        let Some(number) = self.interner.borrow().author(author) else {
            return Ok(());
        };
        let Some(slot) = self.logs.get_mut(number) else {
            return Ok(());
        };
        match head {
            Some(head) => {
                if let Some(log) = slot {
                    log.slots
                        .truncate(usize::try_from(head.seq).unwrap_or(usize::MAX));
                    log.head = head;
                }
            }
            None => *slot = None,
        }
        Ok(())
    }

    fn put_orphan(&mut self, orphan: Orphan<'_>) -> Result<(), Self::Error> {
        let index = {
            let mut interner = self.interner.borrow_mut();
            let index = interner.intern(orphan.id, orphan.envelope);
            if interner.held_by(index, self.number) {
                return Ok(());
            }
            interner.hold(index, self.number);
            index
        };
        self.count += 1;
        if let Some(listing) = orphan.listing {
            self.referring.entry(listing).or_default().push(index);
        }
        if let Some(subject) = orphan.subject {
            self.subjects.entry(subject).or_default().push(index);
            self.listings.push(index);
        }
        self.index_linked(&orphan.linked, orphan.indexed_listing(), index);
        self.arrivals.push(index);
        Ok(())
    }

    fn arrival_order(&self) -> Result<Vec<NoticeId>, Self::Error> {
        let interner = self.interner.borrow();
        Ok(self.arrivals.iter().map(|i| interner.id(*i)).collect())
    }

    fn notice_count(&self) -> Result<u64, Self::Error> {
        Ok(self.count)
    }

    fn put_fork(&mut self, evidence: &ForkEvidence) -> Result<bool, Self::Error> {
        if credence_protocol::store::holds_fork_of(&self.forks, &evidence.author) {
            return Ok(false);
        }
        let key = (
            evidence.author,
            evidence.seq,
            credence_crypto::merkle::leaf_hash(&evidence.second).into(),
        );
        Ok(self.forks.insert(key, evidence.clone()).is_none())
    }

    fn forks(&self) -> Result<Vec<ForkEvidence>, Self::Error> {
        Ok(self.forks.values().cloned().collect())
    }

    fn put_roster_version(
        &mut self,
        hash: &credence_protocol::model::RosterHash,
        bytes: &[u8],
    ) -> Result<(), Self::Error> {
        self.rosters.insert(*hash, bytes.to_vec());
        Ok(())
    }

    fn has_roster_version(
        &self,
        hash: &credence_protocol::model::RosterHash,
    ) -> Result<bool, Self::Error> {
        Ok(self.rosters.contains_key(hash))
    }

    fn roster_versions(&self) -> Result<Vec<Vec<u8>>, Self::Error> {
        Ok(self.rosters.values().cloned().collect())
    }

    fn put_checkpoint_notes(
        &mut self,
        author: &AuthorityId,
        notes: &[Vec<u8>],
    ) -> Result<(), Self::Error> {
        self.checkpoints.insert(*author, notes.to_vec());
        Ok(())
    }

    fn checkpoint_notes(
        &self,
    ) -> Result<Vec<credence_protocol::store::CheckpointNotes>, Self::Error> {
        Ok(self
            .checkpoints
            .iter()
            .map(|(a, n)| (*a, n.clone()))
            .collect())
    }

    fn put_proposals(&mut self, proposals: &[Vec<u8>]) -> Result<(), Self::Error> {
        self.proposals = proposals.to_vec();
        Ok(())
    }

    fn proposals(&self) -> Result<Vec<Vec<u8>>, Self::Error> {
        Ok(self.proposals.clone())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_store_suite() {
        credence_protocol::store::suite::run(|| SimStore::new(SharedInterner::default()));
    }

    #[test]
    fn replicas_share_one_copy_of_each_envelope() {
        let interner = SharedInterner::default();
        let (mut a, mut b) = (
            SimStore::new(interner.clone()),
            SimStore::new(interner.clone()),
        );
        let author = AuthorityId([1; 32]);
        let bytes = credence_protocol::store::suite::envelope(author, 1);
        let id = NoticeId::from(credence_crypto::merkle::leaf_hash(&bytes));
        let mut frontier = credence_crypto::merkle::Frontier::new();
        frontier.push(id.digest());
        let head = Head {
            author,
            seq: 1,
            id,
            issued_at: credence_protocol::time::Timestamp(1),
            frontier,
            budget: credence_protocol::replica::BUDGET_FULL - 1000,
            roster: 0,
        };
        let append = |store: &mut SimStore| {
            store
                .append(Append {
                    id,
                    envelope: &bytes,
                    head: head.clone(),
                    listing: None,
                    subject: None,
                    linked: Vec::new(),
                    names: Vec::new(),
                })
                .expect("append");
        };
        append(&mut a);
        assert!(!b.contains(&id).expect("contains"));
        append(&mut b);
        let (x, y) = (a.envelope(&id).expect("a"), b.envelope(&id).expect("b"));
        assert!(Rc::ptr_eq(&x, &y));
        assert_eq!(x.index, Some(0));
        assert!(b.holds_envelope(&x));
        assert!(b.holds_envelope(&Envelope::loose(bytes.clone())));
        assert_eq!(interner.borrow().envelopes.len(), 1);
        assert_eq!(b.notice_count().expect("count"), 1);
        // A lost store's bit is cleared before its number is handed out
        // again: the new store starts empty while the other still holds.
        drop(b);
        let c = SimStore::new(interner.clone());
        assert!(!c.holds_envelope(&x));
        assert!(!c.contains(&id).expect("contains"));
        assert!(a.holds_envelope(&x));
        // Stores beyond one word of bits each keep their own.
        let many: Vec<SimStore> = (0..130).map(|_| SimStore::new(interner.clone())).collect();
        assert!(a.holds_envelope(&x));
        assert!(many.iter().all(|s| !s.holds_envelope(&x)));
    }
}

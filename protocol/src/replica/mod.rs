//! The replica: ingests envelopes into a [`Store`], enforcing every
//! validation rule, holding what cannot be decided yet and keeping fork
//! evidence. Sans-IO: time comes in as an argument, the store is a trait.

use crate::catalog;
use crate::codec::{self, CodecError};
use crate::fold::{self, FoldInput, ListingState, Task};
use crate::governance::chain::{Added, Chain};
use crate::governance::{GovernanceError, SignedVersion};
use crate::model::{
    AuthorityId, DecodedNotice, Envelope, ListKind, Listing, ListingChange, NOTICE_VERSION, Notice,
    NoticeId, NoticeKind, Remedy, RulingOutcome, SignatureBytes, SubjectKey,
};
use crate::roster::Federation;
use crate::store::{Append, ForkEvidence, Head, Store};

mod cut;
use crate::time::Timestamp;
use crate::validate::{self, ValidationError};
use credence_crypto::merkle::{Frontier, leaf_hash};
use credence_crypto::{AuthorityKey, BatchItem, NOTICE_DOMAIN, PublicKey, verify_batch};
pub use cut::Cut;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How far back [`Replica::own_notice_like`] looks in its own log.
pub const OWN_LOOKBACK_MAX: u64 = 1024;
/// Default bound of the pending buffer (notices waiting for a gap in their
/// author's log or for a notice they refer to).
pub const PENDING_NOTICES_MAX: usize = 10_000;

/// What a notice waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiting {
    /// The author's notice at this seq.
    Predecessor {
        /// The author.
        author: AuthorityId,
        /// The missing seq.
        seq: u64,
    },
    /// A referenced listing or objection.
    Reference(NoticeId),
}

/// What happened to one envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid and stored.
    Accepted {
        /// The notice.
        id: NoticeId,
        /// Its author.
        author: AuthorityId,
        /// Its seq.
        seq: u64,
    },
    /// Already stored or already pending.
    Duplicate {
        /// The notice.
        id: NoticeId,
    },
    /// Held until what it waits for arrives.
    Pending {
        /// The notice.
        id: NoticeId,
        /// What it waits for.
        waiting: Waiting,
    },
    /// Refused: it broke a rule.
    Rejected {
        /// The notice (the hash of the bytes received).
        id: NoticeId,
        /// Its author and seq, when it decoded far enough to tell.
        author: Option<(AuthorityId, u64)>,
        /// The rule broken.
        error: ValidationError,
    },
    /// Validly signed but conflicting with the notice this replica has at
    /// the same place of the author's log: evidence kept.
    Forked {
        /// The conflicting notice.
        id: NoticeId,
        /// The equivocating author.
        author: AuthorityId,
        /// The seq signed twice.
        seq: u64,
        /// The notice this replica has at that seq.
        existing: NoticeId,
    },
    /// Would have been held, but the pending buffer is full; anti-entropy
    /// sync will bring it again.
    Dropped {
        /// The notice.
        id: NoticeId,
    },
    /// Kept outside its author's log: a key the roster retired signed it
    /// past its cutoff, and a notice of another log that was waiting for
    /// it refers to it. It is void; what waited for it is released.
    Orphaned {
        /// The notice.
        id: NoticeId,
        /// Its author and seq.
        author: AuthorityId,
        /// Its seq.
        seq: u64,
    },
}

/// A failure of the replica itself (not of a notice).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError<E: std::error::Error + 'static> {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[source] E),
    /// Stored bytes no longer decode: the store is damaged.
    #[error("stored notice {id} is damaged: {reason}")]
    Corrupt {
        /// The notice.
        id: NoticeId,
        /// Why it does not decode.
        reason: String,
    },
}

/// Why a notice could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError<E: std::error::Error + 'static> {
    /// The notice would break a rule; nothing was signed.
    #[error("{0}")]
    Invalid(ValidationError),
    /// It refers to a notice this replica does not have.
    #[error("unknown {what} {id}: it is not in this node's records")]
    UnknownReference {
        /// Listing or objection.
        what: &'static str,
        /// The id.
        id: NoticeId,
    },
    /// This authority's own log is being restored from peers: it already
    /// signed notices past what this replica holds.
    #[error(
        "this node is still restoring its own log from peers (it holds a later notice, seq {seq}, waiting for earlier ones); issue again once it has caught up"
    )]
    CatchingUp {
        /// The seq of an own notice waiting.
        seq: u64,
    },
    /// This authority has used up its notice budget
    /// ([`AUTHOR_NOTICE_BURST`] at once, [`AUTHOR_NOTICES_PER_HOUR`] an
    /// hour); nothing was signed.
    #[error(
        "this authority has used up its notice budget ({AUTHOR_NOTICE_BURST} notices at once, {AUTHOR_NOTICES_PER_HOUR} an hour, past any allowance a roster version granted); issue again in {retry_after_ms} ms, or have the federation grant an allowance (`allow` in a roster change)"
    )]
    OverBudget {
        /// When one more notice fits.
        retry_after_ms: u64,
    },
    /// The roster chain assigns another key to this seq of the author's
    /// log (it was rotated or revoked): nothing was signed.
    #[error(
        "key {key} does not sign seq {seq} of this log under the current roster: it was rotated or revoked"
    )]
    NotOurKey {
        /// The seq.
        seq: u64,
        /// The key that would have signed.
        key: AuthorityId,
    },
    /// The store failed or holds damaged records; nothing was issued.
    #[error("the replica failed: {0}")]
    Replica(#[from] ReplicaError<E>),
}

/// Why a roster version was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RosterVersionError<E: std::error::Error + 'static> {
    /// The version breaks a rule of the roster chain.
    #[error("{0}")]
    Invalid(#[from] GovernanceError),
    /// The store failed.
    #[error("the replica failed: {0}")]
    Replica(ReplicaError<E>),
}

/// Notices an author's log may grow by at once (the bucket's size).
pub const AUTHOR_NOTICE_BURST: u64 = 20_000;

/// Notices an hour an author's log may grow by once its burst is spent.
pub const AUTHOR_NOTICES_PER_HOUR: u64 = 72_000;

/// How far ahead of a replica's clock a notice's `issued_at` may be; past
/// it the notice is refused until the clock catches up, so that no author
/// fills its budget by dating notices ahead.
pub const ISSUED_AT_AHEAD_MAX_MS: u64 = 10 * 60 * 1000;

/// Thousandths of a notice an author's budget regains per millisecond of
/// `issued_at`.
const BUDGET_REFILL_MILLI_PER_MS: u64 = AUTHOR_NOTICES_PER_HOUR * 1000 / 3_600_000;

/// A full budget, in thousandths of a notice.
pub const BUDGET_FULL: u64 = AUTHOR_NOTICE_BURST * 1000;

/// The author's notice budget after one more notice issued at `issued_at`
/// following `head` (`None`: the budget is spent and the notice is
/// refused). A token bucket over the log itself, by the notices' own
/// `issued_at`, so every replica computes the same: a new log starts full,
/// each notice costs 1,000, and time between two notices refills
/// [`AUTHOR_NOTICES_PER_HOUR`] an hour up to [`AUTHOR_NOTICE_BURST`].
/// `granted` is the allowance, in notices, that roster versions give the
/// author when this notice is the first to name them
/// ([`crate::governance::chain::Chain::allowance`]): it is added at once,
/// and a budget above the burst is spent before it refills again.
pub fn budget_after(head: Option<&Head>, issued_at: Timestamp, granted: u64) -> Option<u64> {
    let before = match head {
        None => BUDGET_FULL,
        Some(head) => {
            let elapsed = issued_at.0.saturating_sub(head.issued_at.0);
            head.budget
                .saturating_add(elapsed.saturating_mul(BUDGET_REFILL_MILLI_PER_MS))
                .min(BUDGET_FULL)
                .max(head.budget)
        }
    };
    before
        .saturating_add(granted.saturating_mul(1000))
        .checked_sub(1000)
}

/// Milliseconds after `head` until one more notice fits its budget.
fn budget_wait_ms(head: &Head) -> u64 {
    1000u64
        .saturating_sub(head.budget)
        .div_ceil(BUDGET_REFILL_MILLI_PER_MS)
}

/// A notice this replica signed and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// Its id.
    pub id: NoticeId,
    /// Its seq.
    pub seq: u64,
    /// Its envelope bytes, to publish once flushed.
    pub envelope: Vec<u8>,
}

/// A signature-checked notice waiting to be admitted.
#[derive(Clone, Debug)]
struct Entry {
    id: NoticeId,
    bytes: Arc<[u8]>,
    notice: Arc<Notice>,
}

/// Notices one author may hold pending at least, whatever the number of
/// members.
pub const PENDING_SHARE_MIN: usize = 256;
/// How long a notice may wait pending before it is dropped (sync brings it
/// again once what it waits for has come).
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;

/// Where a pending notice waits.
#[derive(Clone, Copy, Debug)]
struct Held {
    author: AuthorityId,
    place: Waiting,
    seq: u64,
    since: Timestamp,
}

/// The bounded buffer of notices that cannot be decided yet: at most
/// `count_max` in all, and at most an equal share of it per author, so
/// that one member filling it with notices that never resolve cannot make
/// other authors' notices drop.
#[derive(Debug, Default)]
struct PendingBuffer {
    by_slot: BTreeMap<(AuthorityId, u64), Entry>,
    by_reference: BTreeMap<NoticeId, Vec<Entry>>,
    ids: BTreeMap<NoticeId, Held>,
    per_author: BTreeMap<AuthorityId, usize>,
    count_max: usize,
    share_max: usize,
    /// The time the caller last gave ([`Replica::advance_clock`]).
    clock: Timestamp,
}

impl PendingBuffer {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Forgets a notice that left the buffer by `by_slot` or
    /// `by_reference` (released, or about to be dropped).
    fn forget(&mut self, id: &NoticeId) {
        if let Some(held) = self.ids.remove(id)
            && let Some(count) = self.per_author.get_mut(&held.author)
        {
            *count -= 1;
            if *count == 0 {
                self.per_author.remove(&held.author);
            }
        }
    }

    /// Drops the notices pending since before `cutoff`; returns how many.
    fn expire(&mut self, cutoff: Timestamp) -> usize {
        let old: Vec<(NoticeId, Held)> = self
            .ids
            .iter()
            .filter(|(_, held)| held.since < cutoff)
            .map(|(id, held)| (*id, *held))
            .collect();
        for (id, held) in &old {
            match held.place {
                Waiting::Predecessor { .. } => {
                    self.by_slot.remove(&(held.author, held.seq));
                }
                Waiting::Reference(reference) => {
                    if let Some(entries) = self.by_reference.get_mut(&reference) {
                        entries.retain(|e| e.id != *id);
                        if entries.is_empty() {
                            self.by_reference.remove(&reference);
                        }
                    }
                }
            }
            self.forget(id);
        }
        old.len()
    }

    fn waiting(&self) -> Vec<(NoticeId, Waiting)> {
        let slots = self.by_slot.iter().map(|((author, seq), entry)| {
            (
                entry.id,
                Waiting::Predecessor {
                    author: *author,
                    seq: seq - 1,
                },
            )
        });
        let references = self.by_reference.iter().flat_map(|(reference, entries)| {
            entries
                .iter()
                .map(|e| (e.id, Waiting::Reference(*reference)))
        });
        slots.chain(references).collect()
    }
}

/// A replica of the federation's records over a store.
pub struct Replica<S: Store> {
    /// The roster chain every notice is validated against.
    chain: Chain,
    /// The current roster version's federation.
    federation: Federation,
    store: S,
    pending: PendingBuffer,
    listings: ListingCache,
    memo: Option<Arc<dyn NoticeMemo>>,
    /// Logs cut back by roster versions, not yet taken by the engine.
    cuts: Vec<Cut>,
}

/// Remembers envelopes that passed every check needing no store (canonical
/// decoding, the self-contained rules, the signature), with their decoded
/// notice, so that replicas sharing it (the simulator's thousand replicas in
/// one process) decode and verify each envelope once. Safe because a notice
/// id hashes the whole envelope, signature included: the same id is the
/// same signed bytes. The roster chain those checks depend on may differ
/// between replicas while roster versions travel: a remembered notice is
/// checked against the replica's own chain again (cheap: no decoding and,
/// when the chain assigns the key that verified it, no signature check). A replica with a memo reads the listings
/// and objections it stored from the memo instead of keeping its own cache
/// of them decoded.
pub trait NoticeMemo: Send + Sync {
    /// The envelope with this id and its notice, if it passed before.
    fn checked(&self, id: &NoticeId) -> Option<CheckedNotice>;
    /// The envelope with this id passed.
    fn set_checked(&self, id: NoticeId, checked: CheckedNotice);
}

/// An envelope that passed the checks a [`NoticeMemo`] remembers, shared.
#[derive(Clone, Debug)]
pub struct CheckedNotice {
    /// Its decoded notice.
    pub notice: Arc<Notice>,
    /// The envelope bytes.
    pub envelope: Arc<[u8]>,
    /// The key its signature verified under.
    pub signer: AuthorityId,
}

/// Listings and objections kept decoded, oldest out first: nearly every
/// follow-up notice names a listing (a ruling, an objection), and stored
/// notices never change.
#[derive(Debug, Default)]
struct ListingCache {
    decoded: FxHashMap<NoticeId, FoldInput>,
    order: VecDeque<NoticeId>,
}

/// Decoded listings and objections kept by [`Replica`].
pub const LISTING_CACHE_MAX: usize = 16 * 1024;

impl ListingCache {
    fn insert(&mut self, input: FoldInput) {
        if self.order.len() >= LISTING_CACHE_MAX
            && let Some(oldest) = self.order.pop_front()
        {
            self.decoded.remove(&oldest);
        }
        self.order.push_back(input.id);
        self.decoded.insert(input.id, input);
    }
}

type Result<T, S> = std::result::Result<T, ReplicaError<<S as Store>::Error>>;

#[expect(
    clippy::large_enum_variant,
    reason = "Accept, the common case, carries the new head with its inline Merkle frontier; boxing it would allocate once per admitted notice"
)]
enum Admission {
    Accept(Append<'static>),
    Wait(Waiting),
    Reject(ValidationError),
    Fork(NoticeId),
    Duplicate,
}

impl<S: Store> Replica<S> {
    /// A replica of `federation` over `store`.
    pub fn new(federation: Federation, store: S) -> Replica<S> {
        let members = federation.roster().members.len();
        Replica {
            chain: Chain::new(federation.clone()),
            federation,
            store,
            pending: PendingBuffer {
                count_max: PENDING_NOTICES_MAX,
                share_max: share_of(PENDING_NOTICES_MAX, members),
                ..PendingBuffer::default()
            },
            listings: ListingCache::default(),
            memo: None,
            cuts: Vec::new(),
        }
    }

    /// A replica over `store` (a snapshot of this one's store, read on
    /// another thread) that judges notices by this one's federation and
    /// roster chain, so that its folds void what this replica voids. It
    /// holds nothing pending.
    pub fn reader<T: Store>(&self, store: T) -> Replica<T> {
        let mut reader = Replica::new(self.federation.clone(), store);
        reader.chain = self.chain.clone();
        reader.memo = self.memo.clone();
        reader
    }

    /// Shares a memo of checked notices (see [`NoticeMemo`]).
    pub fn with_notice_memo(mut self, memo: Arc<dyn NoticeMemo>) -> Replica<S> {
        self.memo = Some(memo);
        self
    }

    /// The shared memo of checked notices, if any.
    pub fn notice_memo(&self) -> Option<Arc<dyn NoticeMemo>> {
        self.memo.clone()
    }

    /// Sets the pending buffer's bound (the offline audit raises it to the
    /// bundle's size); each author's share follows.
    pub fn with_pending_max(mut self, count_max: usize) -> Replica<S> {
        self.pending.count_max = count_max;
        self.pending.share_max = share_of(count_max, self.federation.roster().members.len());
        self
    }

    /// The error for a notice dated further ahead of the clock than
    /// [`ISSUED_AT_AHEAD_MAX_MS`] (no clock given yet, as in an offline
    /// audit: none).
    fn ahead_of_clock(&self, issued_at: Timestamp) -> Option<ValidationError> {
        let clock = self.pending.clock;
        (clock.0 != 0 && issued_at.0 > clock.0.saturating_add(ISSUED_AT_AHEAD_MAX_MS)).then_some(
            ValidationError::IssuedAhead {
                found: issued_at,
                clock,
                ahead_max_ms: ISSUED_AT_AHEAD_MAX_MS,
            },
        )
    }

    /// Tells the replica the time, which notices held pending from now on
    /// are stamped with (see [`Replica::expire_pending`]).
    pub fn advance_clock(&mut self, now: Timestamp) {
        self.pending.clock = self.pending.clock.max(now);
    }

    /// Drops the notices pending since before `cutoff` (sync brings them
    /// again once what they wait for has come); returns how many.
    pub fn expire_pending(&mut self, cutoff: Timestamp) -> usize {
        self.pending.expire(cutoff)
    }

    /// The current roster version's federation.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// The roster chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The member whose log `key` signs (or signed): its stable id. A key
    /// the chain does not know is taken as a member id itself (genesis).
    pub fn member_of_key(&self, key: &AuthorityId) -> AuthorityId {
        self.chain
            .current()
            .key_owners
            .get(key)
            .copied()
            .unwrap_or(*key)
    }

    /// Adds a roster version received from anywhere (or read back from
    /// the store). A valid one is kept in the store; the current roster
    /// follows the chain.
    pub fn add_roster_version(
        &mut self,
        signed: SignedVersion,
    ) -> std::result::Result<Added, RosterVersionError<S::Error>> {
        let bytes = signed.to_bytes().map_err(GovernanceError::from)?;
        let hash = signed.hash();
        let before = self.chain.current().clone();
        let added = self.chain.add(signed)?;
        if let Added::Valid { .. } = added {
            // Cut first, store the version after: a crash between the two
            // leaves the version to come again, and the cut with it.
            if self.chain.current().hash != before.hash {
                let cuts = self
                    .cut_retired_keys(&before)
                    .map_err(RosterVersionError::Replica)?;
                self.cuts.extend(cuts);
            }
            self.store
                .put_roster_version(&hash, &bytes)
                .map_err(|e| RosterVersionError::Replica(ReplicaError::Store(e)))?;
            // Held versions released by this one are stored too.
            for signed in self.chain.signed_versions() {
                let hash = signed.hash();
                if !self
                    .store
                    .has_roster_version(&hash)
                    .map_err(|e| RosterVersionError::Replica(ReplicaError::Store(e)))?
                {
                    let bytes = signed.to_bytes().map_err(GovernanceError::from)?;
                    self.store
                        .put_roster_version(&hash, &bytes)
                        .map_err(|e| RosterVersionError::Replica(ReplicaError::Store(e)))?;
                }
            }
        }
        self.federation = self.chain.current().federation.clone();
        self.pending.share_max = share_of(
            self.pending.count_max,
            self.federation.roster().members.len(),
        );
        Ok(added)
    }

    /// Logs cut back by the roster versions added since the last call
    /// (see [`cut`]): whoever keeps state about them starts it again.
    pub fn take_cuts(&mut self) -> Vec<Cut> {
        std::mem::take(&mut self.cuts)
    }

    /// Why a stored notice counts for nothing under the current roster
    /// version, if it does: a cutoff took away what it needs
    /// ([`validate::cutoff_void`]), or the key that signed it was retired
    /// for its seq and it is an orphan ([`validate::retired_key`]).
    pub fn void(&self, notice: &Notice) -> Option<ValidationError> {
        validate::cutoff_void(notice, &self.chain)
            .or_else(|| validate::retired_key(notice, &self.chain))
    }

    /// The notices pending notices wait for as a reference (a listing or
    /// an objection), at most `limit`: what anti-entropy asks peers for by
    /// id, since no log of theirs may hold it (an orphan).
    pub fn wanted_references(&self, limit: usize) -> Vec<NoticeId> {
        self.pending
            .by_reference
            .keys()
            .take(limit)
            .copied()
            .collect()
    }

    /// Reads the roster versions the store keeps into the chain (at
    /// start). A stored version that no longer verifies is reported.
    pub fn load_roster_versions(
        &mut self,
    ) -> std::result::Result<usize, RosterVersionError<S::Error>> {
        let stored = self
            .store
            .roster_versions()
            .map_err(|e| RosterVersionError::Replica(ReplicaError::Store(e)))?;
        // In number order, so that each finds the one it replaces.
        let mut versions = stored
            .iter()
            .map(|bytes| SignedVersion::from_bytes(bytes))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(GovernanceError::from)?;
        versions.sort_by_key(|signed| signed.version().map(|v| v.number).unwrap_or(u64::MAX));
        let count = versions.len();
        for signed in versions {
            self.chain.add(signed)?;
        }
        self.federation = self.chain.current().federation.clone();
        Ok(count)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, for flushing and maintenance.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Number of notices held pending.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Every pending notice and what it waits for.
    pub fn pending(&self) -> Vec<(NoticeId, Waiting)> {
        self.pending.waiting()
    }

    /// Ingests one envelope.
    pub fn ingest(&mut self, bytes: &[u8]) -> Result<Vec<Outcome>, S> {
        self.ingest_batch(&[bytes])
    }

    /// Ingests envelopes, verifying their signatures as one batch. The
    /// outcomes come in input order, followed by the outcomes of pending
    /// notices that the batch released.
    pub fn ingest_batch(&mut self, envelopes: &[&[u8]]) -> Result<Vec<Outcome>, S> {
        self.ingest_identified(&identify(envelopes))
    }

    /// [`Replica::ingest_batch`] for a caller that already holds each
    /// envelope's id, computed by [`NoticeId`]'s leaf hash from these very
    /// bytes (the simulator's replicas share one hashed copy of each
    /// envelope). An id that is not that hash would be stored under the
    /// wrong name: only in-process callers that hashed the bytes themselves
    /// may use this.
    pub fn ingest_identified(
        &mut self,
        envelopes: &[(NoticeId, &[u8])],
    ) -> Result<Vec<Outcome>, S> {
        debug_assert!(
            envelopes
                .iter()
                .all(|(id, bytes)| *id == NoticeId::from(leaf_hash(bytes))),
            "an id given with an envelope is not its hash"
        );
        let mut outcomes = Vec::with_capacity(envelopes.len());
        let fresh = self.unknown(envelopes, &mut BTreeSet::new(), true, &mut outcomes)?;
        let checked = check_and_verify(&self.chain, &fresh, self.memo.as_deref());
        self.admit_checked(checked, &mut outcomes)?;
        // An orphan something waits for may itself be pending (a thief's
        // notice waiting for the predecessor no one will send).
        if !self.pending.by_reference.is_empty() {
            self.adopt_wanted(envelopes, &mut outcomes)?;
        }
        Ok(outcomes)
    }

    /// Ingests many envelopes (an import, a sync, an audit), overlapping
    /// the decoding and signature checks of one chunk, shared with a second
    /// thread, with the admission of the previous one. The result is that of
    /// [`Replica::ingest_batch`] over the same input; only the order of the
    /// outcomes differs. Bulk input is mostly new, so it is not looked up
    /// in the store before it is checked: a notice already stored is found
    /// when its place in its author's log is, after its signature check.
    pub fn ingest_all(&mut self, envelopes: &[&[u8]]) -> Result<Vec<Outcome>, S> {
        let chain = self.chain.clone();
        let mut outcomes = Vec::with_capacity(envelopes.len());
        let mut ready: Vec<Checked> = Vec::new();
        let mut seen = BTreeSet::new();
        for chunk in envelopes.chunks(INGEST_CHUNK_NOTICES) {
            let fresh = self.unknown(&identify(chunk), &mut seen, false, &mut outcomes)?;
            // The second thread checks the chunk block by block; this one
            // admits the previous chunk (and writes it to the store), then
            // takes the blocks left. Whichever store, the two threads finish
            // together.
            let previous = std::mem::take(&mut ready);
            let next = AtomicUsize::new(0);
            ready = std::thread::scope(|scope| {
                let (chain, memo, fresh, next) = (&chain, self.memo.clone(), &fresh, &next);
                let verifier =
                    scope.spawn(move || check_blocks(chain, fresh, memo.as_deref(), next));
                let admitted = self.admit_checked(previous, &mut outcomes);
                let mut blocks = check_blocks(chain, fresh, self.memo.as_deref(), next);
                blocks.extend(
                    verifier
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
                blocks.sort_unstable_by_key(|(block, _)| *block);
                admitted.map(|()| {
                    blocks
                        .into_iter()
                        .flat_map(|(_, checked)| checked)
                        .collect()
                })
            })?;
        }
        self.admit_checked(ready, &mut outcomes)?;
        if !self.pending.by_reference.is_empty() {
            self.adopt_wanted(&identify(envelopes), &mut outcomes)?;
        }
        Ok(outcomes)
    }

    /// The envelopes not pending, not `seen` earlier in the same call and,
    /// with `check_store`, not stored; duplicates are reported without
    /// being decoded.
    fn unknown<'a>(
        &self,
        envelopes: &[(NoticeId, &'a [u8])],
        seen: &mut BTreeSet<NoticeId>,
        check_store: bool,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<Vec<(NoticeId, &'a [u8])>, S> {
        let mut fresh = Vec::with_capacity(envelopes.len());
        let several = envelopes.len() > 1 || !seen.is_empty();
        for &(id, bytes) in envelopes {
            let known = (several && !seen.insert(id))
                || self.pending.ids.contains_key(&id)
                || (check_store && self.store.contains(&id).map_err(ReplicaError::Store)?);
            if known {
                outcomes.push(Outcome::Duplicate { id });
            } else {
                fresh.push((id, bytes));
            }
        }
        Ok(fresh)
    }

    fn admit_checked(
        &mut self,
        checked: Vec<Checked>,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), S> {
        for item in checked {
            match item {
                Checked::Valid(entry) => self.admit_and_release(entry, outcomes)?,
                Checked::Refused(outcome) => outcomes.push(outcome),
            }
        }
        Ok(())
    }

    fn admit_and_release(&mut self, first: Entry, outcomes: &mut Vec<Outcome>) -> Result<(), S> {
        // Released notices queue behind the first (allocated only then).
        let mut work = VecDeque::new();
        let mut next = Some(first);
        while let Some((entry, released)) = next
            .take()
            .map(|first| (first, false))
            .or_else(|| work.pop_front().map(|e| (e, true)))
        {
            let id = entry.id;
            let (author, seq) = (entry.notice.author, entry.notice.seq);
            // A notice that waited was checked against the chain of then: a
            // roster version since may have retired the key that signed it.
            let recheck = released && self.chain.chosen().len() > 1;
            let admission =
                match recheck.then(|| validate::check_signer(&entry.notice, &self.chain)) {
                    Some(Err(error)) => Admission::Reject(error),
                    _ => self.admit(&entry)?,
                };
            match admission {
                Admission::Accept(append) => {
                    self.store_accepted(&entry, append)?;
                    outcomes.push(Outcome::Accepted { id, author, seq });
                    if let Some(next) = self.pending.by_slot.remove(&(author, seq + 1)) {
                        self.pending.forget(&next.id);
                        work.push_back(next);
                    }
                    for waiting in self.pending.by_reference.remove(&id).unwrap_or_default() {
                        self.pending.forget(&waiting.id);
                        work.push_back(waiting);
                    }
                }
                Admission::Wait(waiting) => outcomes.push(self.hold(entry, waiting)?),
                Admission::Reject(error) => outcomes.push(Outcome::Rejected {
                    id,
                    author: Some((author, seq)),
                    error,
                }),
                Admission::Fork(existing) => outcomes.push(Outcome::Forked {
                    id,
                    author,
                    seq,
                    existing,
                }),
                Admission::Duplicate => outcomes.push(Outcome::Duplicate { id }),
            }
        }
        Ok(())
    }

    /// Stores an admitted notice with its envelope exactly as received.
    fn store_accepted(&mut self, entry: &Entry, append: Append<'static>) -> Result<(), S> {
        self.store
            .append(Append {
                envelope: &entry.bytes,
                ..append
            })
            .map_err(ReplicaError::Store)?;
        // With a shared memo, the memo holds every decoded notice already.
        if self.memo.is_none()
            && matches!(
                entry.notice.kind,
                NoticeKind::List(_) | NoticeKind::Object { .. }
            )
        {
            self.listings.insert(FoldInput {
                id: entry.id,
                notice: entry.notice.clone(),
            });
        }
        Ok(())
    }

    fn hold(&mut self, entry: Entry, waiting: Waiting) -> Result<Outcome, S> {
        let id = entry.id;
        let author = entry.notice.author;
        let share = self.pending.per_author.get(&author).copied().unwrap_or(0);
        if self.pending.len() >= self.pending.count_max || share >= self.pending.share_max {
            return Ok(Outcome::Dropped { id });
        }
        let seq = entry.notice.seq;
        match waiting {
            Waiting::Predecessor { author, .. } => {
                let slot = (author, entry.notice.seq);
                if let Some(held) = self.pending.by_slot.get(&slot) {
                    if held.id == id {
                        return Ok(Outcome::Duplicate { id });
                    }
                    // Two validly signed notices for one place: a fork, even
                    // before the log reaches it.
                    let existing = held.id;
                    let evidence = ForkEvidence {
                        author,
                        seq: entry.notice.seq,
                        first: held.bytes.to_vec(),
                        second: entry.bytes.to_vec(),
                    };
                    let new_evidence = self
                        .store
                        .put_fork(&evidence)
                        .map_err(ReplicaError::Store)?;
                    // Evidence already held: this notice was seen before.
                    if !new_evidence {
                        return Ok(Outcome::Duplicate { id });
                    }
                    return Ok(Outcome::Forked {
                        id,
                        author,
                        seq: slot.1,
                        existing,
                    });
                }
                self.pending.by_slot.insert(slot, entry);
            }
            Waiting::Reference(reference) => {
                self.pending
                    .by_reference
                    .entry(reference)
                    .or_default()
                    .push(entry);
            }
        }
        self.pending.ids.insert(
            id,
            Held {
                author,
                place: waiting,
                seq,
                since: self.pending.clock,
            },
        );
        *self.pending.per_author.entry(author).or_default() += 1;
        Ok(Outcome::Pending { id, waiting })
    }

    /// Rules 3, 4, 6 and the part of 5 that needs the referenced notices.
    fn admit(&mut self, entry: &Entry) -> Result<Admission, S> {
        // Entries reach here once per call and never while pending
        // (`unknown`), and a pending entry cannot be stored by another path
        // while it waits. A notice already stored meets its own id in its
        // author's log below.
        let notice = &entry.notice;
        let head = self
            .store
            .head(&notice.author)
            .map_err(ReplicaError::Store)?;
        let head_seq = head.as_ref().map_or(0, |h| h.seq);
        if notice.seq <= head_seq {
            return self.fork_or_duplicate(entry);
        }
        if notice.seq > head_seq + 1 {
            return Ok(Admission::Wait(Waiting::Predecessor {
                author: notice.author,
                seq: notice.seq - 1,
            }));
        }
        let expected_prev = head.as_ref().map_or(NoticeId::default(), |h| h.id);
        if notice.prev != expected_prev {
            return Ok(Admission::Reject(ValidationError::PrevMismatch {
                seq: notice.seq,
                expected: expected_prev,
                found: notice.prev,
            }));
        }
        if let Some(head) = &head
            && notice.roster < head.roster
        {
            return Ok(Admission::Reject(ValidationError::RosterVersionRegressed {
                previous: head.roster,
                found: notice.roster,
            }));
        }
        if let Some(head) = &head
            && notice.issued_at < head.issued_at
        {
            return Ok(Admission::Reject(ValidationError::IssuedAtRegressed {
                previous: head.issued_at,
                found: notice.issued_at,
            }));
        }
        if let Some(error) = self.ahead_of_clock(notice.issued_at) {
            return Ok(Admission::Reject(error));
        }
        let granted = self.granted(&notice.author, head.as_ref(), notice.roster);
        let Some(budget) = budget_after(head.as_ref(), notice.issued_at, granted) else {
            return Ok(Admission::Reject(ValidationError::OverBudget {
                seq: notice.seq,
                burst: AUTHOR_NOTICE_BURST,
                per_hour: AUTHOR_NOTICES_PER_HOUR,
            }));
        };
        let listing = match self.check_references(notice)? {
            Ok(listing) => listing,
            Err(admission) => return Ok(admission),
        };
        let mut frontier = head.map_or_else(Frontier::new, |h| h.frontier);
        frontier.push(entry.id.digest());
        let subject = match &notice.kind {
            NoticeKind::List(listing) => SubjectKey::new(listing.subject.kind, &listing.subject.id),
            _ => None,
        };
        let append = Append {
            id: entry.id,
            envelope: &[],
            head: Head {
                author: notice.author,
                seq: notice.seq,
                id: entry.id,
                issued_at: notice.issued_at,
                frontier,
                budget,
                roster: notice.roster,
            },
            listing,
            subject,
            linked: notice.kind.linked_keys(),
            names: notice.kind.names().into_iter().map(String::from).collect(),
        };
        Ok(Admission::Accept(append))
    }

    fn fork_or_duplicate(&mut self, entry: &Entry) -> Result<Admission, S> {
        let (author, seq) = (entry.notice.author, entry.notice.seq);
        let existing = self
            .store
            .log_id(&author, seq)
            .map_err(ReplicaError::Store)?
            .ok_or_else(|| ReplicaError::Corrupt {
                id: entry.id,
                reason: format!(
                    "the log of {author} has a head past seq {seq} but no notice at it"
                ),
            })?;
        if existing == entry.id {
            return Ok(Admission::Duplicate);
        }
        let first = self
            .store
            .notice(&existing)
            .map_err(ReplicaError::Store)?
            .unwrap_or_default();
        let evidence = ForkEvidence {
            author,
            seq,
            first,
            second: entry.bytes.to_vec(),
        };
        let new_evidence = self
            .store
            .put_fork(&evidence)
            .map_err(ReplicaError::Store)?;
        // Evidence already held: the conflicting notice was seen before.
        if !new_evidence {
            return Ok(Admission::Duplicate);
        }
        Ok(Admission::Fork(existing))
    }

    /// Resolves what the notice refers to and applies the authority rules
    /// that need it. `Ok(Ok(listing))` gives the listing to index it
    /// under.
    fn check_references(
        &self,
        notice: &Notice,
    ) -> Result<std::result::Result<Option<NoticeId>, Admission>, S> {
        let reject = |error| Ok(Err(Admission::Reject(error)));
        let (listing_id, objection) = match &notice.kind {
            NoticeKind::List(_) => return Ok(Ok(None)),
            NoticeKind::Rule { objection, .. } => {
                let Some(found) = self.referenced(objection)? else {
                    return Ok(Err(Admission::Wait(Waiting::Reference(*objection))));
                };
                let NoticeKind::Object { listing, .. } = found.notice.kind else {
                    return reject(ValidationError::NotAnObjection {
                        id: *objection,
                        found: found.notice.kind.name(),
                    });
                };
                (listing, Some(*objection))
            }
            kind => match kind.listing_reference() {
                Some(listing) => (listing, None),
                None => return Ok(Ok(None)),
            },
        };
        let Some(listing_notice) = self.referenced(&listing_id)? else {
            return Ok(Err(Admission::Wait(Waiting::Reference(listing_id))));
        };
        let NoticeKind::List(original) = &listing_notice.notice.kind else {
            return reject(ValidationError::NotAListing {
                id: listing_id,
                found: listing_notice.notice.kind.name(),
            });
        };
        let issuer = listing_notice.notice.author;
        let not_issuer = |action| ValidationError::NotIssuer {
            listing: listing_id,
            issuer,
            author: notice.author,
            action,
        };
        match &notice.kind {
            NoticeKind::Amend { changes, .. } => {
                if notice.author != issuer {
                    return reject(not_issuer("amend"));
                }
                let effective = self.effective_listing(&listing_notice)?;
                if let Err(error) =
                    Self::check_corrected(self.named_federation(notice), &effective, changes)
                {
                    return reject(error);
                }
            }
            NoticeKind::Repair { .. } => {
                if notice.author != issuer {
                    return reject(not_issuer("repair"));
                }
                let effective = self.effective_listing(&listing_notice)?;
                if notice.issued_at < effective.repair_from {
                    return reject(ValidationError::RepairTooEarly {
                        listing: listing_id,
                        repair_from: effective.repair_from,
                    });
                }
            }
            NoticeKind::Withdraw { .. } if notice.author != issuer => {
                return reject(not_issuer("withdraw"));
            }
            NoticeKind::Rule { outcome, .. } => {
                if notice.author != issuer {
                    return reject(not_issuer("rule on objections to"));
                }
                if let Some(ruling) = self.ruling_of(&listing_id, objection)? {
                    return reject(ValidationError::AlreadyRuled {
                        objection: objection.unwrap_or_default(),
                        ruling,
                    });
                }
                if let RulingOutcome::Upheld(Remedy::Correct(changes)) = outcome {
                    let effective = self.effective_listing(&listing_notice)?;
                    if let Err(error) =
                        Self::check_corrected(self.named_federation(notice), &effective, changes)
                    {
                        return reject(error);
                    }
                }
            }
            NoticeKind::Feedback { measure, .. } => {
                let catalog = self.named_federation(notice);
                let fits = catalog
                    .measure(measure)
                    .is_some_and(|m| m.list == original.list);
                if !fits {
                    return reject(ValidationError::UnknownMeasure {
                        measure: measure.clone(),
                        list: original.list,
                        allowed: catalog.measure_codes(original.list),
                    });
                }
            }
            _ => {}
        }
        Ok(Ok(Some(listing_id)))
    }

    fn check_corrected(
        federation: &Federation,
        effective: &Listing,
        changes: &[ListingChange],
    ) -> std::result::Result<(), ValidationError> {
        let mut corrected = effective.clone();
        for change in changes {
            change.apply(&mut corrected);
        }
        validate::check_measures(federation, corrected.list, &corrected.measures)?;
        validate::check_dates(&corrected)?;
        validate::check_readers(federation, &corrected)?;
        validate::check_linked(&corrected)?;
        validate::check_rules(federation, &corrected)
    }

    /// The roster the notice names (checked to exist before it gets
    /// here): the catalog its rules are those of, whichever version is
    /// current, so that every replica decides the same.
    fn named_federation(&self, notice: &Notice) -> &Federation {
        self.chain
            .version(notice.roster)
            .map_or(&self.federation, |version| &version.federation)
    }

    /// The listing's fields with its issuer's amendments and corrections so
    /// far (all of them are earlier in the issuer's log, hence stored).
    fn effective_listing(&self, listing: &FoldInput) -> Result<Listing, S> {
        let referring = self.referring_inputs(&listing.id)?;
        Ok(fold::fold(listing, &referring, Timestamp(0)).listing)
    }

    fn ruling_of(
        &self,
        listing: &NoticeId,
        objection: Option<NoticeId>,
    ) -> Result<Option<NoticeId>, S> {
        for input in self.referring_inputs(listing)? {
            if let NoticeKind::Rule {
                objection: ruled, ..
            } = &input.notice.kind
                && Some(*ruled) == objection
            {
                return Ok(Some(input.id));
            }
        }
        Ok(None)
    }

    fn referring_inputs(&self, listing: &NoticeId) -> Result<Vec<FoldInput>, S> {
        let ids = self.store.referring(listing).map_err(ReplicaError::Store)?;
        let mut inputs = Vec::with_capacity(ids.len());
        for id in ids {
            let input = self.load(&id)?.ok_or_else(|| ReplicaError::Corrupt {
                id,
                reason: "indexed under a listing but not stored".into(),
            })?;
            inputs.push(input);
        }
        Ok(inputs)
    }

    /// A notice another one refers to: from the cache, or the store.
    fn referenced(&self, id: &NoticeId) -> Result<Option<std::borrow::Cow<'_, FoldInput>>, S> {
        if let Some(cached) = self.listings.decoded.get(id) {
            return Ok(Some(std::borrow::Cow::Borrowed(cached)));
        }
        Ok(self.load(id)?.map(std::borrow::Cow::Owned))
    }

    /// A stored notice, decoded.
    pub fn load(&self, id: &NoticeId) -> Result<Option<FoldInput>, S> {
        if let Some(known) = self.memo.as_ref().and_then(|m| m.checked(id)) {
            let stored = self.store.contains(id).map_err(ReplicaError::Store)?;
            let notice = known.notice;
            return Ok(stored.then_some(FoldInput { id: *id, notice }));
        }
        Ok(self.load_decoded(id)?.map(|decoded| FoldInput {
            id: decoded.id,
            notice: Arc::new(decoded.notice),
        }))
    }

    /// A stored notice with its envelope bytes and signature.
    pub fn load_decoded(&self, id: &NoticeId) -> Result<Option<DecodedNotice>, S> {
        let Some(bytes) = self.store.notice(id).map_err(ReplicaError::Store)? else {
            return Ok(None);
        };
        let corrupt = |error: CodecError| ReplicaError::Corrupt {
            id: *id,
            reason: error.to_string(),
        };
        let (body, signature) = codec::envelope_parts(&bytes).map_err(corrupt)?;
        let notice = codec::decode_stored_notice(body).map_err(corrupt)?;
        Ok(Some(DecodedNotice {
            id: *id,
            notice,
            signature: SignatureBytes(signature),
            bytes,
        }))
    }

    /// The listing a stored notice concerns: itself for a listing, the
    /// listing its objection concerns for a ruling, the listing it names
    /// otherwise; `None` when it is not stored (or its objection is not).
    pub fn listing_of(&self, id: &NoticeId) -> Result<Option<NoticeId>, S> {
        let Some(stored) = self.load(id)? else {
            return Ok(None);
        };
        Ok(match &stored.notice.kind {
            NoticeKind::List(_) => Some(*id),
            NoticeKind::Rule { objection, .. } => self
                .load(objection)?
                .and_then(|o| o.notice.kind.listing_reference()),
            kind => kind.listing_reference(),
        })
    }

    /// A listing folded at `t`, or `None` if `id` is not a listing here.
    ///
    /// Void notices ([`Replica::void`]) count for nothing: a void listing
    /// is not a listing here, and void notices about a listing are left
    /// out of its fold.
    pub fn listing_state(&self, id: &NoticeId, t: Timestamp) -> Result<Option<ListingState>, S> {
        let Some(listing) = self.load(id)? else {
            return Ok(None);
        };
        if !matches!(listing.notice.kind, NoticeKind::List(_))
            || self.void(&listing.notice).is_some()
        {
            return Ok(None);
        }
        let mut referring = self.referring_inputs(id)?;
        referring.retain(|input| self.void(&input.notice).is_none());
        Ok(Some(fold::fold(&listing, &referring, t)))
    }

    /// The newest notice of `author`'s log issued at or after `since` that
    /// decides exactly `kind`, looking back at most
    /// [`OWN_LOOKBACK_MAX`] notices: how a retried request (an idempotency
    /// key whose first answer was lost in a crash) finds the notice its
    /// first attempt signed, if that one became durable.
    pub fn own_notice_like(
        &self,
        author: &AuthorityId,
        since: Timestamp,
        kind: &NoticeKind,
    ) -> Result<Option<(NoticeId, u64)>, S> {
        let Some(head) = self.store.head(author).map_err(ReplicaError::Store)? else {
            return Ok(None);
        };
        let low = head.seq.saturating_sub(OWN_LOOKBACK_MAX);
        for seq in (low + 1..=head.seq).rev() {
            let Some(id) = self
                .store
                .log_id(author, seq)
                .map_err(ReplicaError::Store)?
            else {
                continue;
            };
            let Some(input) = self.load(&id)? else {
                continue;
            };
            if input.notice.issued_at < since {
                break;
            }
            if input.notice.kind == *kind {
                return Ok(Some((id, seq)));
            }
        }
        Ok(None)
    }

    /// Every listing that names `subject`, as its subject or as a linked
    /// person of the listed organisation ([`crate::model::Listing::naming`]
    /// says which), folded at `t`, each once, in id order.
    pub fn subject_listings(
        &self,
        subject: &SubjectKey,
        t: Timestamp,
    ) -> Result<Vec<ListingState>, S> {
        let mut ids = self
            .store
            .listings_of(subject)
            .map_err(ReplicaError::Store)?;
        ids.sort_unstable();
        ids.dedup();
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            // An index entry a later amendment made stale names no one.
            if let Some(state) = self.listing_state(&id, t)?
                && state.listing.naming(subject).is_some()
            {
                states.push(state);
            }
        }
        Ok(states)
    }

    /// The apply and lift tasks of `authority` at `t`, with the listing
    /// each belongs to: of the listings whose distribution level reaches
    /// it ([`crate::access::level_reaches`]).
    pub fn tasks(
        &self,
        authority: &AuthorityId,
        t: Timestamp,
    ) -> Result<Vec<(Task, ListingState)>, S> {
        let Some(member) = self.federation.member(authority) else {
            return Ok(Vec::new());
        };
        if member.implements.is_empty() {
            return Ok(Vec::new());
        }
        let listings = self.store.listings().map_err(ReplicaError::Store)?;
        self.tasks_in(authority, listings, t)
    }

    /// [`Replica::tasks`], of the listings `listings` only.
    fn tasks_in(
        &self,
        authority: &AuthorityId,
        listings: impl IntoIterator<Item = NoticeId>,
        t: Timestamp,
    ) -> Result<Vec<(Task, ListingState)>, S> {
        let Some(member) = self.federation.member(authority) else {
            return Ok(Vec::new());
        };
        let implements = member.implements.clone();
        let mut out = Vec::new();
        if implements.is_empty() {
            return Ok(out);
        }
        for id in listings {
            let Some(state) = self.listing_state(&id, t)? else {
                continue;
            };
            if !crate::access::level_reaches(&state, authority) {
                continue;
            }
            for task in fold::tasks(&state, authority, &implements) {
                out.push((task, state.clone()));
            }
        }
        Ok(out)
    }

    /// Signs and stores a new notice of `key`'s authority at the next place
    /// of its log. The caller flushes the store before publishing it.
    pub fn issue(
        &mut self,
        key: &AuthorityKey,
        kind: NoticeKind,
        now: Timestamp,
    ) -> std::result::Result<Issued, IssueError<S::Error>> {
        // The log is the member's, under the id it joined with, whatever
        // key signs it now.
        let key_id = AuthorityId(key.public_bytes());
        let author = self.member_of_key(&key_id);
        // Later notices of our own log are waiting for a gap to fill (the
        // store was lost and peers are sending it back): a new notice now
        // would take a seq already signed and fork our own log.
        let own_pending = self
            .pending
            .by_slot
            .range((author, 0)..=(author, u64::MAX))
            .next()
            .map(|((_, seq), _)| *seq);
        if let Some(seq) = own_pending {
            return Err(IssueError::CatchingUp { seq });
        }
        let head = self.store.head(&author).map_err(ReplicaError::Store)?;
        let (seq, prev, issued_at) = match &head {
            Some(head) => (head.seq + 1, head.id, now.max(head.issued_at)),
            None => (1, NoticeId::default(), now),
        };
        // Refused before signing: a notice every replica would refuse.
        let granted = self.granted(&author, head.as_ref(), self.chain.current().number);
        if budget_after(head.as_ref(), issued_at, granted).is_none() {
            return Err(IssueError::OverBudget {
                retry_after_ms: head.as_ref().map_or(0, budget_wait_ms),
            });
        }
        if let Some(reference) = self.missing_reference(&kind)? {
            return Err(reference);
        }
        if let NoticeKind::List(listing) = &kind
            && listing.list == ListKind::Red
            && let Some(subject) = SubjectKey::new(listing.subject.kind, &listing.subject.id)
        {
            let states = self.subject_listings(&subject, now)?;
            let lookback_ms = self.federation.red_lookback_ms();
            if let Some(blacklisting) = catalog::red_list_conflict(listing, &states, lookback_ms) {
                return Err(IssueError::Invalid(ValidationError::RedListIneligible {
                    blacklisting,
                    lookback_ms,
                }));
            }
        }
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: self.chain.current().number,
            federation: self.federation.id(),
            author,
            seq,
            prev,
            issued_at,
            kind,
        };
        let signer = validate::check_in_chain(&notice, &self.chain).map_err(IssueError::Invalid)?;
        if signer.to_bytes() != key.public_bytes() {
            return Err(IssueError::NotOurKey { seq, key: key_id });
        }
        let body = codec::encode_notice(&notice).map_err(|e| IssueError::Invalid(e.into()))?;
        let signature = SignatureBytes(key.sign(NOTICE_DOMAIN, &body));
        let envelope = codec::encode_envelope(&Envelope { body, signature })
            .map_err(|e| IssueError::Invalid(e.into()))?;
        let id = NoticeId::from(leaf_hash(&envelope));
        let entry = Entry {
            id,
            bytes: Arc::from(envelope),
            notice: Arc::new(notice),
        };
        match self.admit(&entry)? {
            Admission::Accept(append) => {
                self.store_accepted(&entry, append)?;
                Ok(Issued {
                    id,
                    seq,
                    envelope: entry.bytes.to_vec(),
                })
            }
            Admission::Reject(error) => Err(IssueError::Invalid(error)),
            Admission::Wait(_) | Admission::Fork(_) | Admission::Duplicate => {
                unreachable!("references were resolved and the seq follows the head")
            }
        }
    }

    /// How many notices `author`'s log can take at `t` by the flood budget
    /// every replica enforces: what is left of its budget, refilled up to
    /// `t`, with the allowance its next notice would take
    /// ([`budget_after`]).
    pub fn notices_available(&self, author: &AuthorityId, t: Timestamp) -> Result<u64, S> {
        let head = self.store.head(author).map_err(ReplicaError::Store)?;
        let at = head.as_ref().map_or(t, |head| t.max(head.issued_at));
        let granted = self.granted(author, head.as_ref(), self.chain.current().number);
        Ok(budget_after(head.as_ref(), at, granted).map_or(0, |after| after / 1000 + 1))
    }

    /// The allowance, in notices, that `author`'s next notice takes when
    /// it names roster version `roster` after `head`.
    fn granted(&self, author: &AuthorityId, head: Option<&Head>, roster: u64) -> u64 {
        self.chain
            .allowance(author, head.map(|head| head.roster), roster)
    }

    fn missing_reference(
        &self,
        kind: &NoticeKind,
    ) -> std::result::Result<Option<IssueError<S::Error>>, IssueError<S::Error>> {
        let (what, id) = match kind {
            NoticeKind::Rule { objection, .. } => ("objection", *objection),
            other => match other.listing_reference() {
                Some(listing) => ("listing", listing),
                None => return Ok(None),
            },
        };
        let present = self.store.contains(&id).map_err(ReplicaError::Store)?;
        Ok((!present).then_some(IssueError::UnknownReference { what, id }))
    }
}

/// Each author's share of a pending buffer of `count_max` among `members`.
fn share_of(count_max: usize, members: usize) -> usize {
    (count_max / members.max(1))
        .max(PENDING_SHARE_MIN)
        .min(count_max)
}

/// Envelopes per chunk of [`Replica::ingest_all`].
const INGEST_CHUNK_NOTICES: usize = 1024;

/// A notice after the checks that need no store.
// The large variant is the common one; boxing it would cost an allocation
// per notice to save space on the rare refusal.
#[allow(clippy::large_enum_variant)]
enum Checked {
    /// Decoded, within the rules that need no store, signature verified.
    Valid(Entry),
    /// Refused; the outcome says why.
    Refused(Outcome),
}

/// Each envelope with its id.
fn identify<'a>(envelopes: &[&'a [u8]]) -> Vec<(NoticeId, &'a [u8])> {
    envelopes
        .iter()
        .map(|bytes| (NoticeId::from(leaf_hash(bytes)), *bytes))
        .collect()
}

/// Envelopes [`Replica::ingest_all`]'s threads take at a time.
const CHECK_BLOCK_NOTICES: usize = 128;

/// Checks blocks of `envelopes` taken in turn from `next`, shared with
/// another thread doing the same; each block comes with its number.
fn check_blocks(
    chain: &Chain,
    envelopes: &[(NoticeId, &[u8])],
    memo: Option<&dyn NoticeMemo>,
    next: &AtomicUsize,
) -> Vec<(usize, Vec<Checked>)> {
    let mut checked = Vec::new();
    loop {
        let block = next.fetch_add(1, Ordering::Relaxed);
        let Some(start) = block
            .checked_mul(CHECK_BLOCK_NOTICES)
            .filter(|start| *start < envelopes.len())
        else {
            return checked;
        };
        let end = (start + CHECK_BLOCK_NOTICES).min(envelopes.len());
        checked.push((block, check_and_verify(chain, &envelopes[start..end], memo)));
    }
}

/// Decoding, every rule that needs no store (rules 1, 2 and the
/// self-contained part of 5), and one batch verification of the
/// signatures. Needs only the roster chain, so it can run on another
/// thread.
fn check_and_verify(
    chain: &Chain,
    envelopes: &[(NoticeId, &[u8])],
    memo: Option<&dyn NoticeMemo>,
) -> Vec<Checked> {
    let mut checked = Vec::with_capacity(envelopes.len());
    let mut signed: Vec<(usize, &[u8], [u8; 64], PublicKey)> = Vec::with_capacity(envelopes.len());
    for &(id, bytes) in envelopes {
        if let Some(known) = memo.and_then(|m| m.checked(&id)) {
            // A chain of genesis alone is every replica's in the process
            // (they share the memo, so the federation): a notice that
            // passed under version 0 passes again, with no second check.
            if chain.chosen().len() == 1 && known.notice.roster == 0 {
                checked.push(Checked::Valid(Entry {
                    id,
                    bytes: known.envelope,
                    notice: known.notice,
                }));
                continue;
            }
            match validate::check_signer(&known.notice, chain) {
                Ok(key) if key.to_bytes() == known.signer.0 => {
                    checked.push(Checked::Valid(Entry {
                        id,
                        bytes: known.envelope,
                        notice: known.notice,
                    }));
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    let author = Some((known.notice.author, known.notice.seq));
                    checked.push(Checked::Refused(Outcome::Rejected { id, author, error }));
                    continue;
                }
            }
        }
        let refuse = |author, error| Checked::Refused(Outcome::Rejected { id, author, error });
        let (body, signature) = match codec::envelope_parts(bytes) {
            Ok(parts) => parts,
            Err(error) => {
                checked.push(refuse(None, error.into()));
                continue;
            }
        };
        let notice = match codec::decode_notice(body) {
            Ok(notice) => notice,
            Err(error) => {
                checked.push(refuse(None, error.into()));
                continue;
            }
        };
        let key = match validate::check_signer(&notice, chain) {
            Ok(key) => key,
            Err(error) => {
                checked.push(refuse(Some((notice.author, notice.seq)), error));
                continue;
            }
        };
        signed.push((checked.len(), body, signature, key));
        checked.push(Checked::Valid(Entry {
            id,
            bytes: Arc::from(bytes),
            notice: Arc::new(notice),
        }));
    }
    let items: Vec<BatchItem<'_>> = signed
        .iter()
        .map(|(_, body, signature, key)| BatchItem {
            key,
            message: body,
            signature,
        })
        .collect();
    let results = verify_batch(NOTICE_DOMAIN, &items);
    for ((index, _, _, key), result) in signed.iter().zip(results) {
        if result.is_ok() {
            if let (Some(memo), Checked::Valid(entry)) = (memo, &checked[*index]) {
                let known = CheckedNotice {
                    notice: entry.notice.clone(),
                    envelope: entry.bytes.clone(),
                    signer: AuthorityId(key.to_bytes()),
                };
                memo.set_checked(entry.id, known);
            }
        } else {
            let Checked::Valid(entry) = &checked[*index] else {
                continue;
            };
            let (id, author, seq) = (entry.id, entry.notice.author, entry.notice.seq);
            checked[*index] = Checked::Refused(Outcome::Rejected {
                id,
                author: Some((author, seq)),
                error: ValidationError::BadSignature { id, author },
            });
        }
    }
    checked
}

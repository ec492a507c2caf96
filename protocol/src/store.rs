//! The storage interface the replica runs on, an in-memory implementation
//! and the one test suite every implementation must pass.
//!
//! A store holds envelope bytes exactly as signed, with the indexes the
//! replica and the interfaces need. [`Store::append`] is atomic: a notice,
//! its index entries and its author's new head land together or not at
//! all. Durability is the caller's: [`Store::flush`] before acknowledging.

use crate::model::{AuthorityId, NoticeId, RosterHash, SubjectKey};
use crate::time::Timestamp;
use credence_crypto::Digest;
use credence_crypto::merkle::Frontier;
use std::collections::{BTreeMap, BTreeSet};

/// The newest notice of one author's log, with the log's Merkle frontier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The author.
    pub author: AuthorityId,
    /// Seq of the newest notice (= number of notices in the log).
    pub seq: u64,
    /// Id of the newest notice.
    pub id: NoticeId,
    /// When the newest notice was issued.
    pub issued_at: Timestamp,
    /// The right edge of the author's Merkle log.
    pub frontier: Frontier,
    /// What is left of the author's notice budget after this notice, in
    /// thousandths of a notice ([`crate::replica::budget_after`]).
    pub budget: u64,
    /// The roster version the newest notice names: the log's next notices
    /// may not name an older one.
    pub roster: u64,
}

impl Head {
    /// The Merkle root of the author's log.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }
}

/// Proof that an author signed two different notices at one seq. A store
/// keeps at most one per author: one pair is proof enough, and a bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The equivocating author.
    pub author: AuthorityId,
    /// The seq signed twice.
    pub seq: u64,
    /// The envelope this replica had first.
    pub first: Vec<u8>,
    /// The conflicting envelope.
    pub second: Vec<u8>,
}

/// Whether a map of fork evidence keyed by (author, seq, second id) holds
/// evidence of `author` (stores keep one pair per author).
pub fn holds_fork_of<V>(
    forks: &BTreeMap<(AuthorityId, u64, NoticeId), V>,
    author: &AuthorityId,
) -> bool {
    forks
        .range((*author, 0, NoticeId::default())..)
        .next()
        .is_some_and(|((a, _, _), _)| a == author)
}

/// One accepted notice, with everything to write for it.
#[derive(Clone, Debug)]
pub struct Append<'a> {
    /// Its id.
    pub id: NoticeId,
    /// Its envelope bytes.
    pub envelope: &'a [u8],
    /// Its author's head after it.
    pub head: Head,
    /// The listing it is about (for a ruling, the listing of its
    /// objection), if any.
    pub listing: Option<NoticeId>,
    /// For a listing: its subject's key.
    pub subject: Option<SubjectKey>,
    /// The keys of persons the notice links to its listing (to itself, for
    /// a listing): [`crate::model::NoticeKind::linked_keys`]. The listing
    /// is indexed under them too; a lookup checks that the listing still
    /// names them.
    pub linked: Vec<SubjectKey>,
    /// The names the notice gives its listing (subject and linked
    /// persons): [`crate::model::NoticeKind::names`], for a store that
    /// keeps a name-search index ([`crate::names`]).
    pub names: Vec<String>,
}

impl Append<'_> {
    /// The listing the subject keys index: this notice, or the listing it
    /// is about.
    pub fn indexed_listing(&self) -> NoticeId {
        self.listing.unwrap_or(self.id)
    }
}

/// A notice stored outside its author's log ([`Store::put_orphan`]).
#[derive(Clone, Debug)]
pub struct Orphan<'a> {
    /// Its id.
    pub id: NoticeId,
    /// Its envelope bytes.
    pub envelope: &'a [u8],
    /// The listing it is about, if any ([`Append::listing`]).
    pub listing: Option<NoticeId>,
    /// For a listing: its subject's key ([`Append::subject`]).
    pub subject: Option<SubjectKey>,
    /// Keys of linked persons ([`Append::linked`]).
    pub linked: Vec<SubjectKey>,
}

impl Orphan<'_> {
    /// The listing the subject keys index ([`Append::indexed_listing`]).
    pub fn indexed_listing(&self) -> NoticeId {
        self.listing.unwrap_or(self.id)
    }
}

/// A log's author and the checkpoint notes a witness keeps of it, each in
/// the note's text form ([`Store::put_checkpoint_notes`]).
pub type CheckpointNotes = (AuthorityId, Vec<Vec<u8>>);

/// Storage of a replica. Reads take `&self`; writes `&mut self`.
pub trait Store {
    /// The store's failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Envelope bytes of a notice.
    fn notice(&self, id: &NoticeId) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Whether a notice is stored.
    fn contains(&self, id: &NoticeId) -> Result<bool, Self::Error>;
    /// The id at `seq` of `author`'s log.
    fn log_id(&self, author: &AuthorityId, seq: u64) -> Result<Option<NoticeId>, Self::Error>;
    /// Ids of `author`'s log from `seq_from` on, at most `limit`.
    fn log_range(
        &self,
        author: &AuthorityId,
        seq_from: u64,
        limit: usize,
    ) -> Result<Vec<NoticeId>, Self::Error>;
    /// An author's head.
    fn head(&self, author: &AuthorityId) -> Result<Option<Head>, Self::Error>;
    /// All heads, by author.
    fn heads(&self) -> Result<Vec<Head>, Self::Error>;
    /// Notices about a listing (not the listing itself), in id order.
    fn referring(&self, listing: &NoticeId) -> Result<Vec<NoticeId>, Self::Error>;
    /// Listings of a subject, in id order.
    fn listings_of(&self, subject: &SubjectKey) -> Result<Vec<NoticeId>, Self::Error>;
    /// All listings, in id order.
    fn listings(&self) -> Result<Vec<NoticeId>, Self::Error>;
    /// Stores an accepted notice and its indexes, atomically.
    fn append(&mut self, append: Append<'_>) -> Result<(), Self::Error>;
    /// Every notice id in the order the notices were accepted (an order
    /// in which every reference precedes what refers to it).
    fn arrival_order(&self) -> Result<Vec<NoticeId>, Self::Error>;
    /// Number of notices stored.
    fn notice_count(&self) -> Result<u64, Self::Error>;
    /// Cuts `author`'s log back to `head` (`None`: empty): the seqs past
    /// it leave the log and `head` becomes the author's head. The notices
    /// that were there stay stored, with their index entries, as orphans
    /// ([`Store::put_orphan`]). Only a roster version that changed the
    /// author's key does this, to the notices its old key signed past the
    /// cutoff. Durable at the next [`Store::flush`], like an append.
    fn truncate_log(&mut self, author: &AuthorityId, head: Option<Head>)
    -> Result<(), Self::Error>;
    /// Stores a notice outside its author's log: its record and index
    /// entries, no place in the log, no head. Orphans are notices a key
    /// retired by a roster version signed past its cutoff: void, kept so
    /// that notices of other logs referring to them still resolve.
    fn put_orphan(&mut self, orphan: Orphan<'_>) -> Result<(), Self::Error>;
    /// Keeps fork evidence; `false` if this fork was already kept.
    fn put_fork(&mut self, evidence: &ForkEvidence) -> Result<bool, Self::Error>;
    /// All fork evidence, by author and seq.
    fn forks(&self) -> Result<Vec<ForkEvidence>, Self::Error>;
    /// Keeps a valid signed roster version (its canonical bytes) under its
    /// hash.
    fn put_roster_version(&mut self, hash: &RosterHash, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Whether a roster version is kept.
    fn has_roster_version(&self, hash: &RosterHash) -> Result<bool, Self::Error>;
    /// Every roster version kept, in hash order.
    fn roster_versions(&self) -> Result<Vec<Vec<u8>>, Self::Error>;
    /// Keeps the checkpoint notes a witness holds of `author`'s log (its
    /// book's notes: the sizes seen, the newest with its cosignatures, the
    /// newest a quorum cosigned, a split-view pair), each in the note's
    /// text form, in place of those kept before: a restart keeps them, so
    /// that a split view shown only to this node is not lost with its
    /// memory.
    fn put_checkpoint_notes(
        &mut self,
        author: &AuthorityId,
        notes: &[Vec<u8>],
    ) -> Result<(), Self::Error>;
    /// Every log's checkpoint notes kept, in author order.
    fn checkpoint_notes(&self) -> Result<Vec<CheckpointNotes>, Self::Error>;
    /// Keeps the proposals for the next roster version the engine holds
    /// (each a signed version's bytes, with the signatures gathered), in
    /// place of those kept before (at most
    /// [`crate::engine::PROPOSALS_MAX`]): a restart keeps a proposal and
    /// its signatures while it circulates.
    fn put_proposals(&mut self, proposals: &[Vec<u8>]) -> Result<(), Self::Error>;
    /// The proposals kept.
    fn proposals(&self) -> Result<Vec<Vec<u8>>, Self::Error>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// A store in memory: for the simulator, the audit and tests.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    notices: BTreeMap<NoticeId, Vec<u8>>,
    logs: BTreeMap<(AuthorityId, u64), NoticeId>,
    heads: BTreeMap<AuthorityId, Head>,
    referring: BTreeSet<(NoticeId, NoticeId)>,
    subjects: BTreeSet<(SubjectKey, NoticeId)>,
    listings: BTreeSet<NoticeId>,
    arrivals: BTreeMap<u64, NoticeId>,
    /// Appends so far (arrival positions are never reused).
    appended: u64,
    forks: BTreeMap<(AuthorityId, u64, NoticeId), ForkEvidence>,
    rosters: BTreeMap<RosterHash, Vec<u8>>,
    checkpoints: BTreeMap<AuthorityId, Vec<Vec<u8>>>,
    proposals: Vec<Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Store for MemStore {
    type Error = std::convert::Infallible;

    fn notice(&self, id: &NoticeId) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.notices.get(id).cloned())
    }

    fn contains(&self, id: &NoticeId) -> Result<bool, Self::Error> {
        Ok(self.notices.contains_key(id))
    }

    fn log_id(&self, author: &AuthorityId, seq: u64) -> Result<Option<NoticeId>, Self::Error> {
        Ok(self.logs.get(&(*author, seq)).copied())
    }

    fn log_range(
        &self,
        author: &AuthorityId,
        seq_from: u64,
        limit: usize,
    ) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self
            .logs
            .range((*author, seq_from)..=(*author, u64::MAX))
            .take(limit)
            .map(|(_, id)| *id)
            .collect())
    }

    fn head(&self, author: &AuthorityId) -> Result<Option<Head>, Self::Error> {
        Ok(self.heads.get(author).cloned())
    }

    fn heads(&self) -> Result<Vec<Head>, Self::Error> {
        Ok(self.heads.values().cloned().collect())
    }

    fn referring(&self, listing: &NoticeId) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self
            .referring
            .range((*listing, NoticeId::default())..=(*listing, NoticeId([0xff; 32])))
            .map(|(_, id)| *id)
            .collect())
    }

    fn listings_of(&self, subject: &SubjectKey) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self
            .subjects
            .range((*subject, NoticeId::default())..=(*subject, NoticeId([0xff; 32])))
            .map(|(_, id)| *id)
            .collect())
    }

    fn listings(&self) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self.listings.iter().copied().collect())
    }

    fn append(&mut self, append: Append<'_>) -> Result<(), Self::Error> {
        self.appended += 1;
        let position = self.appended;
        self.notices.insert(append.id, append.envelope.to_vec());
        self.logs
            .insert((append.head.author, append.head.seq), append.id);
        if let Some(listing) = append.listing {
            self.referring.insert((listing, append.id));
        }
        if let Some(subject) = append.subject {
            self.subjects.insert((subject, append.id));
            self.listings.insert(append.id);
        }
        for key in &append.linked {
            self.subjects.insert((*key, append.indexed_listing()));
        }
        self.arrivals.insert(position, append.id);
        self.heads.insert(append.head.author, append.head);
        Ok(())
    }

    fn arrival_order(&self) -> Result<Vec<NoticeId>, Self::Error> {
        Ok(self.arrivals.values().copied().collect())
    }

    fn notice_count(&self) -> Result<u64, Self::Error> {
        Ok(self.notices.len() as u64)
    }

    fn truncate_log(
        &mut self,
        author: &AuthorityId,
        head: Option<Head>,
    ) -> Result<(), Self::Error> {
        let keep = head.as_ref().map_or(0, |h| h.seq);
        self.logs.retain(|(a, seq), _| a != author || *seq <= keep);
        match head {
            Some(head) => self.heads.insert(*author, head),
            None => self.heads.remove(author),
        };
        Ok(())
    }

    fn put_orphan(&mut self, orphan: Orphan<'_>) -> Result<(), Self::Error> {
        if self.notices.contains_key(&orphan.id) {
            return Ok(());
        }
        self.appended += 1;
        self.notices.insert(orphan.id, orphan.envelope.to_vec());
        if let Some(listing) = orphan.listing {
            self.referring.insert((listing, orphan.id));
        }
        if let Some(subject) = orphan.subject {
            self.subjects.insert((subject, orphan.id));
            self.listings.insert(orphan.id);
        }
        for key in &orphan.linked {
            self.subjects.insert((*key, orphan.indexed_listing()));
        }
        self.arrivals.insert(self.appended, orphan.id);
        Ok(())
    }

    fn put_fork(&mut self, evidence: &ForkEvidence) -> Result<bool, Self::Error> {
        if holds_fork_of(&self.forks, &evidence.author) {
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

    fn put_roster_version(&mut self, hash: &RosterHash, bytes: &[u8]) -> Result<(), Self::Error> {
        self.rosters.insert(*hash, bytes.to_vec());
        Ok(())
    }

    fn has_roster_version(&self, hash: &RosterHash) -> Result<bool, Self::Error> {
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

    fn checkpoint_notes(&self) -> Result<Vec<CheckpointNotes>, Self::Error> {
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

/// The store test suite: every [`Store`] implementation runs it.
///
/// It writes synthetic appends (the store does not validate, so ids and
/// bytes need not be real notices) and checks every read path, on both
/// sides of the write.
pub mod suite {
    use super::*;
    use crate::model::SubjectKind;

    fn id(n: u8) -> NoticeId {
        NoticeId([n; 32])
    }

    fn author(n: u8) -> AuthorityId {
        AuthorityId([n; 32])
    }

    /// Envelope bytes shaped like a real notice of `who` at `seq` (a store
    /// may read the author and seq at their fixed offsets).
    pub fn envelope(who: AuthorityId, seq: u64) -> Vec<u8> {
        use crate::model::{Envelope, NOTICE_VERSION, Notice, NoticeKind, SignatureBytes};
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: Default::default(),
            author: who,
            seq,
            prev: NoticeId::default(),
            issued_at: Timestamp(seq),
            kind: NoticeKind::Withdraw {
                listing: NoticeId::default(),
                reason: "suite".into(),
                restore_reputation: false,
            },
        };
        let body = crate::codec::encode_notice(&notice).expect("suite notice encodes");
        crate::codec::encode_envelope(&Envelope {
            body,
            signature: SignatureBytes([0; 64]),
        })
        .expect("suite envelope encodes")
    }

    fn append_log<S: Store>(
        store: &mut S,
        who: AuthorityId,
        seqs: std::ops::RangeInclusive<u64>,
        base: u8,
    ) {
        let mut frontier = store
            .head(&who)
            .expect("store readable")
            .map(|h| h.frontier)
            .unwrap_or_default();
        for seq in seqs {
            let notice = id(base + seq as u8);
            frontier.push(notice.digest());
            let subject = SubjectKey::new(SubjectKind::LegalPerson, "91350100M000100Y43");
            let head = Head {
                author: who,
                seq,
                id: notice,
                issued_at: Timestamp(seq * 10),
                frontier: frontier.clone(),
                budget: seq * 7,
                roster: seq / 2,
            };
            let bytes = envelope(who, seq);
            let append = Append {
                id: notice,
                envelope: &bytes,
                head,
                listing: (seq > 1).then(|| id(base + 1)),
                subject: (seq == 1).then_some(subject).flatten(),
                // A listing links one person, its third notice another.
                linked: match seq {
                    1 => vec![person(1)],
                    3 => vec![person(2)],
                    _ => Vec::new(),
                },
                names: Vec::new(),
            };
            store.append(append).expect("append");
        }
    }

    fn person(n: u8) -> SubjectKey {
        let id = format!("11010519491231{n:03}X");
        SubjectKey::new(SubjectKind::NaturalPerson, &id).expect("key")
    }

    /// Runs every check against fresh stores from `make`.
    pub fn run<S: Store>(mut make: impl FnMut() -> S) {
        reads_back_what_it_wrote(&mut make());
        heads_and_logs(&mut make());
        indexes(&mut make());
        arrivals_in_order(&mut make());
        forks_kept_once(&mut make());
        truncation(&mut make());
        orphans(&mut make());
    }

    fn truncation<S: Store>(store: &mut S) {
        append_log(store, author(1), 1..=5, 10);
        append_log(store, author(2), 1..=2, 40);
        store.flush().expect("flush");
        let mut frontier = Frontier::new();
        frontier.push(id(11).digest());
        frontier.push(id(12).digest());
        let head = Head {
            author: author(1),
            seq: 2,
            id: id(12),
            issued_at: Timestamp(20),
            frontier,
            budget: 14,
            roster: 1,
        };
        store
            .truncate_log(&author(1), Some(head.clone()))
            .expect("truncate");
        assert_eq!(store.head(&author(1)).expect("head"), Some(head));
        assert_eq!(store.log_id(&author(1), 3).expect("log"), None);
        assert_eq!(
            store.log_range(&author(1), 1, 10).expect("range"),
            vec![id(11), id(12)]
        );
        // What was cut stays stored, out of the log: an orphan.
        assert!(store.contains(&id(13)).expect("contains"));
        assert_eq!(
            store.referring(&id(11)).expect("refs"),
            vec![id(12), id(13), id(14), id(15)]
        );
        assert_eq!(store.notice_count().expect("count"), 7);
        // The log goes on from the cut, and survives a flush.
        append_log(store, author(1), 3..=4, 50);
        store.flush().expect("flush");
        assert_eq!(
            store.log_range(&author(1), 1, 10).expect("range"),
            vec![id(11), id(12), id(53), id(54)]
        );
        let leaves: Vec<Digest> = [11, 12, 53, 54].iter().map(|n| id(*n).digest()).collect();
        let head = store.head(&author(1)).expect("head").expect("present");
        assert_eq!(head.root(), credence_crypto::merkle::root(&leaves));
        assert_eq!(store.notice_count().expect("count"), 9);
        // A cut to nothing leaves no head and no log.
        store.truncate_log(&author(2), None).expect("truncate");
        store.flush().expect("flush");
        assert_eq!(store.head(&author(2)).expect("head"), None);
        assert_eq!(store.log_range(&author(2), 1, 10).expect("range"), vec![]);
        assert!(store.contains(&id(41)).expect("contains"));
    }

    fn orphans<S: Store>(store: &mut S) {
        append_log(store, author(1), 1..=2, 10);
        let bytes = envelope(author(3), 7);
        let subject = SubjectKey::new(SubjectKind::LegalPerson, "91350100M000100Y43");
        store
            .put_orphan(Orphan {
                id: id(77),
                envelope: &bytes,
                listing: None,
                subject,
                linked: Vec::new(),
            })
            .expect("orphan");
        let answer = envelope(author(3), 8);
        store
            .put_orphan(Orphan {
                id: id(78),
                envelope: &answer,
                listing: Some(id(77)),
                subject: None,
                linked: Vec::new(),
            })
            .expect("orphan");
        store.flush().expect("flush");
        assert_eq!(store.notice(&id(77)).expect("read"), Some(bytes));
        assert_eq!(store.head(&author(3)).expect("head"), None);
        assert_eq!(store.log_id(&author(3), 7).expect("log"), None);
        assert_eq!(store.referring(&id(77)).expect("refs"), vec![id(78)]);
        assert_eq!(store.listings().expect("listings"), vec![id(11), id(77)]);
        assert_eq!(
            store.arrival_order().expect("arrivals"),
            vec![id(11), id(12), id(77), id(78)]
        );
        assert_eq!(store.notice_count().expect("count"), 4);
    }

    fn reads_back_what_it_wrote<S: Store>(store: &mut S) {
        assert_eq!(store.notice_count().expect("count"), 0);
        assert!(!store.contains(&id(11)).expect("contains"));
        append_log(store, author(1), 1..=3, 10);
        store.flush().expect("flush");
        assert_eq!(store.notice_count().expect("count"), 3);
        assert!(store.contains(&id(11)).expect("contains"));
        assert_eq!(
            store.notice(&id(12)).expect("read"),
            Some(envelope(author(1), 2))
        );
        assert_eq!(store.notice(&id(99)).expect("read"), None);
        // The proposals held: none at first, then the last set kept.
        assert!(store.proposals().expect("proposals").is_empty());
        store
            .put_proposals(&[vec![1, 2], vec![3]])
            .expect("proposals kept");
        store.put_proposals(&[vec![4]]).expect("proposals kept");
        store.flush().expect("flush");
        assert_eq!(store.proposals().expect("proposals"), vec![vec![4]]);
    }

    fn heads_and_logs<S: Store>(store: &mut S) {
        append_log(store, author(2), 1..=2, 20);
        append_log(store, author(1), 1..=5, 10);
        let head = store.head(&author(1)).expect("head").expect("present");
        assert_eq!(
            (head.seq, head.id, head.issued_at),
            (5, id(15), Timestamp(50))
        );
        let leaves: Vec<Digest> = (11..=15).map(|n| id(n).digest()).collect();
        assert_eq!(head.root(), credence_crypto::merkle::root(&leaves));
        let authors: Vec<AuthorityId> = store
            .heads()
            .expect("heads")
            .iter()
            .map(|h| h.author)
            .collect();
        assert_eq!(authors, vec![author(1), author(2)]);
        assert_eq!(store.log_id(&author(1), 3).expect("log"), Some(id(13)));
        assert_eq!(store.log_id(&author(1), 6).expect("log"), None);
        assert_eq!(
            store.log_range(&author(1), 4, 10).expect("range"),
            vec![id(14), id(15)]
        );
        assert_eq!(
            store.log_range(&author(1), 1, 2).expect("range"),
            vec![id(11), id(12)]
        );
        assert_eq!(store.log_range(&author(3), 1, 2).expect("range"), vec![]);
        assert_eq!(store.head(&author(3)).expect("head"), None);
    }

    fn indexes<S: Store>(store: &mut S) {
        append_log(store, author(1), 1..=3, 10);
        append_log(store, author(2), 1..=2, 40);
        assert_eq!(
            store.referring(&id(11)).expect("refs"),
            vec![id(12), id(13)]
        );
        assert_eq!(store.referring(&id(41)).expect("refs"), vec![id(42)]);
        assert_eq!(store.referring(&id(12)).expect("refs"), vec![]);
        let subject =
            SubjectKey::new(SubjectKind::OtherOrganisation, "91350100M000100Y43").expect("key");
        assert_eq!(
            store.listings_of(&subject).expect("subject"),
            vec![id(11), id(41)]
        );
        let person =
            SubjectKey::new(SubjectKind::NaturalPerson, "91350100M000100Y43").expect("key");
        assert_eq!(store.listings_of(&person).expect("subject"), vec![]);
        assert_eq!(store.listings().expect("listings"), vec![id(11), id(41)]);
        // Linked persons index the listing, whichever notice linked them.
        assert_eq!(
            store.listings_of(&self::person(1)).expect("linked"),
            vec![id(11), id(41)]
        );
        assert_eq!(
            store.listings_of(&self::person(2)).expect("linked"),
            vec![id(11)]
        );
    }

    fn arrivals_in_order<S: Store>(store: &mut S) {
        append_log(store, author(2), 1..=2, 20);
        append_log(store, author(1), 1..=2, 10);
        let ids = store.arrival_order().expect("arrivals");
        assert_eq!(ids, vec![id(21), id(22), id(11), id(12)]);
        store.flush().expect("flush");
        append_log(store, author(3), 1..=1, 30);
        let ids = store.arrival_order().expect("arrivals");
        assert_eq!(ids, vec![id(21), id(22), id(11), id(12), id(31)]);
    }

    fn forks_kept_once<S: Store>(store: &mut S) {
        let evidence = ForkEvidence {
            author: author(1),
            seq: 4,
            first: vec![1, 2, 3],
            second: vec![4, 5, 6],
        };
        assert!(store.put_fork(&evidence).expect("fork"));
        assert!(!store.put_fork(&evidence).expect("fork"));
        // One pair per author is kept, whatever the seq or the notices.
        let another = ForkEvidence {
            seq: 9,
            second: vec![7, 8, 9],
            ..evidence.clone()
        };
        assert!(!store.put_fork(&another).expect("fork"));
        let other_author = ForkEvidence {
            author: author(2),
            ..another
        };
        assert!(store.put_fork(&other_author).expect("fork"));
        let mut forks = store.forks().expect("forks");
        forks.sort_by_key(|f| f.author);
        assert_eq!(forks, vec![evidence, other_author]);
    }
}

#[cfg(test)]
mod tests {
    // The in-memory store passes the suite every store must pass.
    #[test]
    fn memory_store_passes_the_suite() {
        super::suite::run(super::MemStore::new);
    }
}

//! The sled-backed [`Store`]: one tree, prefixed keys, one atomic batch
//! per accepted notice.
//!
//! Key layout (every integer big-endian so that keys sort numerically):
//!
//! | prefix | key                          | value                       |
//! |--------|------------------------------|-----------------------------|
//! | `n`    | notice id                    | arrival position, envelope  |
//! | `l`    | author, page (seq-1)/64      | ids of up to 64 seqs        |
//! | `h`    | author                       | head (see `encode_head`)    |
//! | `r`    | listing id, notice id        | (empty)                     |
//! | `s`    | subject key, listing id      | (empty): the listing's subject and each linked person |
//! | `f`    | author, seq, second id       | fork evidence (one per author) |
//! | `m`    | meta name                    | meta value                  |
//! | `v`    | roster version hash          | the signed version          |
//! | `g`    | register index               | register record (canonical) |
//! | `G`    | subject key, register index  | (empty)                     |
//! | `i`    | BLAKE3 of account and key    | an idempotency record (`Idempotency`) |
//! | `j`    | BLAKE3 of account and key    | a governance act's idempotency record (`Governed`) |
//! | `q`    | author                       | the witness's checkpoint notes of its log (`Store::put_checkpoint_notes`) |
//! | `c`    | change seq                   | a change of the change feed (`changes`) |
//! | `w`    | listing id                   | what the views keep of it (`changes::Kept`: summary, next transition, feed entry) |
//! | `t`    | time, listing id             | (empty): the listings by next transition |
//! | `k`    | listing id                   | (empty): the listings with tasks for this member |
//! | `p`    | MAX - issue time, listing id | (empty): the listings the public feed shows, newest first |
//! | `a`    | author                       | the seq up to which the views reflect its log |
//! | `x`    | name gram, 0, block number   | ids of the block's listings with the gram: the name-search index (`names`) |
//! | `y`    | (none)                       | per log, author and the seq up to which the name index's blocks index it (`names`) |
//!
//! **Heads are the commit record.** The writer thread writes a layer's
//! records in key order and its heads last, and sled recovers a prefix of
//! what was written. A crash between two flushes can therefore leave the
//! records of a torn layer past the heads: [`SledStore::open`] removes
//! them before anything reads the store, so a notice is stored exactly
//! when its seq is at most its author's head. The notices of a torn layer
//! were never acknowledged; peers send them again.
//!
//! The module is in rooms: [`layout`] (keys and record encodings),
//! `writer` (the thread that writes frozen layers, and recovery of a torn
//! one), `view` (reads over the layers and sled, and the read-only
//! snapshot), and this file (the store itself).

use credence_crypto::merkle::Frontier;
use credence_crypto::merkle::leaf_hash;
use credence_protocol::model::{
    AuthorityId, FederationId, NoticeId, RosterHash, SUBJECT_KEY_BYTES, SubjectKey,
};
use credence_protocol::register::RegisterLog;
use credence_protocol::store::{Append, ForkEvidence, Head, Orphan, Store};
use credence_protocol::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store.
    #[error(
        "the store at {path} is in use by another credence process (stop it first, or use another --data directory)"
    )]
    InUse {
        /// The store directory.
        path: String,
    },
    /// sled failed.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record does not decode: disk damage or a foreign tree.
    #[error("store record damaged: {0}")]
    Corrupt(String),
    /// A snapshot was asked to write.
    #[error("a store snapshot is read-only")]
    ReadOnly,
    /// The writer thread failed to write to sled.
    #[error("store writer: {0}")]
    Writer(String),
    /// The store belongs to another federation.
    #[error(
        "this store holds federation {found}, but the roster is federation {expected}; use a fresh --data directory for a new federation"
    )]
    OtherFederation {
        /// The federation in the store.
        found: FederationId,
        /// The roster's.
        expected: FederationId,
    },
}

/// Key-value pairs, in key order.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Keys buffered before they are handed to the writer thread even without
/// a flush.
const OVERLAY_KEYS_MAX: usize = 16 * 1024;

/// sled log segment size.
const SEGMENT_BYTES: usize = 8 << 20;

/// Frozen layers waiting for the writer before appends wait for it.
const FROZEN_LAYERS_MAX: usize = 2;

/// Overlay keys a snapshot copies; past it the overlay is frozen and
/// shared instead ([`SledStore::snapshot_cheaply`]).
pub const SNAPSHOT_COPY_KEYS_MAX: usize = 1024;

/// Records of one kind in sled ([`SledStore::usage`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordUsage {
    /// How many.
    pub records: u64,
    /// Their keys' bytes.
    pub key_bytes: u64,
    /// Their values' bytes.
    pub value_bytes: u64,
}

/// A frozen overlay on its way to sled.
type Layer = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

/// A sled store.
///
/// Appends are buffered in an in-memory overlay that every read consults.
/// Full overlays are frozen and written to sled, each as one atomic batch,
/// by a writer thread, so that sled's work overlaps the replica's; frozen
/// layers stay readable until written. [`Store::flush`] waits for every
/// layer and makes sled durable. One sled batch per notice costs several
/// times more than one per layer, and nothing is acknowledged before a
/// flush anyway: a crash loses only what was never acknowledged, and
/// never half a notice.
pub struct SledStore {
    tree: sled::Db,
    overlay: BTreeMap<Vec<u8>, Vec<u8>>,
    frozen: VecDeque<(u64, Layer)>,
    writer: Writer,
    count: u64,
    /// Every author's head (at most one per roster member), kept in memory
    /// because every ingest reads one.
    heads: BTreeMap<AuthorityId, Head>,
    /// The register of reads: its frontier, kept beside its records.
    register: std::sync::Mutex<RegisterLog>,
    /// The views' records in sled, shared with the thread that keeps
    /// them.
    views: ViewsDb,
    /// The name index's listings by gram not yet in sled, shared with the
    /// snapshots: gathered across layers and written as one block
    /// ([`names`]).
    names: names::Names,
    /// The seq of each log up to which the blocks written index its
    /// notices.
    names_through: BTreeMap<AuthorityId, u64>,
    /// The thread writing the name index's latest block.
    names_writing: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
}

mod changes;
mod layout;
mod names;
mod redo;
/// The reads of [`Store`] through `self.view()` and `self.heads`, the same
/// for the store and its snapshots.
macro_rules! store_reads {
    () => {
        fn notice(&self, id: &NoticeId) -> Result<Option<Vec<u8>>, StoreError> {
            self.view().notice(id)
        }

        fn contains(&self, id: &NoticeId) -> Result<bool, StoreError> {
            self.view().contains(id)
        }

        fn log_id(&self, author: &AuthorityId, seq: u64) -> Result<Option<NoticeId>, StoreError> {
            self.view().log_id(author, seq)
        }

        fn log_range(
            &self,
            author: &AuthorityId,
            seq_from: u64,
            limit: usize,
        ) -> Result<Vec<NoticeId>, StoreError> {
            self.view().log_range(author, seq_from, limit)
        }

        fn head(&self, author: &AuthorityId) -> Result<Option<Head>, StoreError> {
            Ok(self.heads.get(author).cloned())
        }

        fn heads(&self) -> Result<Vec<Head>, StoreError> {
            Ok(self.heads.values().cloned().collect())
        }

        fn referring(&self, listing: &NoticeId) -> Result<Vec<NoticeId>, StoreError> {
            self.view().referring(listing)
        }

        fn listings_of(&self, subject: &SubjectKey) -> Result<Vec<NoticeId>, StoreError> {
            self.view().listings_of(subject)
        }

        fn listings(&self) -> Result<Vec<NoticeId>, StoreError> {
            self.view().listings()
        }

        fn arrival_order(&self) -> Result<Vec<NoticeId>, StoreError> {
            self.view().arrival_order()
        }

        fn forks(&self) -> Result<Vec<ForkEvidence>, StoreError> {
            self.view().forks()
        }

        fn has_roster_version(&self, hash: &RosterHash) -> Result<bool, StoreError> {
            Ok(self.view().get(&key(ROSTER, &[&hash.0]))?.is_some())
        }

        fn roster_versions(&self) -> Result<Vec<Vec<u8>>, StoreError> {
            Ok(self
                .view()
                .prefix(&[ROSTER])?
                .into_iter()
                .map(|(_, v)| v)
                .collect())
        }

        fn checkpoint_notes(
            &self,
        ) -> Result<Vec<credence_protocol::store::CheckpointNotes>, StoreError> {
            let mut out = Vec::new();
            for (k, v) in self.view().prefix(&[CHECKPOINT_NOTES])? {
                let author = AuthorityId(id_from(&k[1..])?.0);
                let notes = credence_protocol::codec::decode_bounded::<
                    Vec<Vec<u8>>,
                    CHECKPOINT_NOTES_BYTES_MAX,
                >("checkpoint notes", &v)
                .map_err(|e| StoreError::Corrupt(format!("checkpoint notes of {author}: {e}")))?;
                out.push((author, notes));
            }
            Ok(out)
        }

        fn proposals(&self) -> Result<Vec<Vec<u8>>, StoreError> {
            let Some(bytes) = self.view().get(&key(META, &[META_PROPOSALS]))? else {
                return Ok(Vec::new());
            };
            credence_protocol::codec::decode_bounded::<Vec<Vec<u8>>, PROPOSALS_BYTES_MAX>(
                "roster proposals",
                &bytes,
            )
            .map_err(|e| StoreError::Corrupt(format!("the roster proposals kept: {e}")))
        }
    };
}

impl Store for SledStore {
    type Error = StoreError;

    store_reads!();

    fn append(&mut self, append: Append<'_>) -> Result<(), StoreError> {
        let position = self.count + 1;
        // Log ids are kept in pages of 64: a page is rewritten in the
        // overlay as its log grows and reaches sled once per layer.
        let index = append.head.seq - 1;
        let page_key = log_page_key(&append.head.author, index / LOG_PAGE_IDS);
        let mut page = self.get(&page_key)?.unwrap_or_default();
        if page.len() as u64 != (index % LOG_PAGE_IDS) * 32 {
            return Err(StoreError::Corrupt(format!(
                "log page of {} does not end before seq {}",
                append.head.author, append.head.seq
            )));
        }
        page.extend_from_slice(&append.id.0);
        let overlay = &mut self.overlay;
        overlay.insert(page_key, page);
        let mut value = Vec::with_capacity(8 + append.envelope.len());
        value.extend_from_slice(&position.to_be_bytes());
        value.extend_from_slice(append.envelope);
        overlay.insert(key(NOTICE, &[&append.id.0]), value);
        overlay.insert(
            key(HEAD, &[&append.head.author.0]),
            encode_head(&append.head),
        );
        self.heads.insert(append.head.author, append.head.clone());
        if let Some(listing) = append.listing {
            overlay.insert(key(REFERRING, &[&listing.0, &append.id.0]), Vec::new());
        }
        if let Some(subject) = append.subject {
            overlay.insert(key(SUBJECT, &[&subject.0, &append.id.0]), Vec::new());
        }
        for linked in &append.linked {
            let listing = append.indexed_listing();
            overlay.insert(key(SUBJECT, &[&linked.0, &listing.0]), Vec::new());
        }
        overlay.insert(key(META, &[META_COUNT]), position.to_be_bytes().to_vec());
        if !append.names.is_empty() {
            let listing = append.indexed_listing();
            let mut names = names::lock(&self.names);
            for name in &append.names {
                names.add(name, &listing);
            }
        }
        self.count = position;
        if self.overlay.len() >= OVERLAY_KEYS_MAX {
            self.freeze()?;
        }
        Ok(())
    }

    fn notice_count(&self) -> Result<u64, StoreError> {
        Ok(self.count)
    }

    fn truncate_log(&mut self, author: &AuthorityId, head: Option<Head>) -> Result<(), StoreError> {
        // Rare (a roster version changed the author's key): everything
        // buffered goes to sled first, and the cut is written to sled
        // directly, head first. The notices cut off stay as orphans; a
        // crash midway leaves log entries past the head, which opening
        // removes with their notices (see the module doc): peers that
        // still hold those orphans send them again when asked. The name
        // index's gathered postings go with them, as a block.
        self.write_names_now()?;
        self.flush()?;
        let keep = head.as_ref().map_or(0, |h| h.seq);
        // The name index's mark stands at the cut: seqs past it will be
        // other notices.
        if let Some(seq) = self.names_through.get_mut(author) {
            *seq = (*seq).min(keep);
            let (k, v) = names::through_record(&self.names_through);
            self.tree.insert(k, v)?;
        }
        match &head {
            Some(head) => self
                .tree
                .insert(key(HEAD, &[&author.0]), encode_head(head))?,
            None => self.tree.remove(key(HEAD, &[&author.0]))?,
        };
        let first_page = keep / LOG_PAGE_IDS;
        let pages: Vec<sled::IVec> = self
            .tree
            .range(log_page_key(author, first_page)..log_page_key(author, u64::MAX))
            .keys()
            .collect::<Result<_, _>>()?;
        for page_key in pages {
            let (_, number) = author_and_number(&page_key, "log page")?;
            let held = usize::try_from(keep.saturating_sub(number * LOG_PAGE_IDS))
                .unwrap_or(usize::MAX)
                .min(LOG_PAGE_IDS as usize);
            match self.tree.get(&page_key)? {
                Some(page) if held > 0 && page.len() > held * 32 => {
                    self.tree.insert(&page_key, &page[..held * 32])?;
                }
                Some(_) if held > 0 => {}
                _ => {
                    self.tree.remove(&page_key)?;
                }
            }
        }
        match head {
            Some(head) => self.heads.insert(*author, head),
            None => self.heads.remove(author),
        };
        self.tree.flush()?;
        Ok(())
    }

    fn put_orphan(&mut self, orphan: Orphan<'_>) -> Result<(), StoreError> {
        if self.view().contains(&orphan.id)? {
            return Ok(());
        }
        let position = self.count + 1;
        let mut value = Vec::with_capacity(8 + orphan.envelope.len());
        value.extend_from_slice(&position.to_be_bytes());
        value.extend_from_slice(orphan.envelope);
        let overlay = &mut self.overlay;
        overlay.insert(key(NOTICE, &[&orphan.id.0]), value);
        if let Some(listing) = orphan.listing {
            overlay.insert(key(REFERRING, &[&listing.0, &orphan.id.0]), Vec::new());
        }
        if let Some(subject) = orphan.subject {
            overlay.insert(key(SUBJECT, &[&subject.0, &orphan.id.0]), Vec::new());
        }
        for linked in &orphan.linked {
            let listing = orphan.indexed_listing();
            overlay.insert(key(SUBJECT, &[&linked.0, &listing.0]), Vec::new());
        }
        overlay.insert(key(META, &[META_COUNT]), position.to_be_bytes().to_vec());
        self.count = position;
        if self.overlay.len() >= OVERLAY_KEYS_MAX {
            self.freeze()?;
        }
        Ok(())
    }

    fn put_roster_version(&mut self, hash: &RosterHash, bytes: &[u8]) -> Result<(), StoreError> {
        self.overlay.insert(key(ROSTER, &[&hash.0]), bytes.to_vec());
        Ok(())
    }

    fn put_checkpoint_notes(
        &mut self,
        author: &AuthorityId,
        notes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let bytes = credence_protocol::codec::encode_bounded::<_, CHECKPOINT_NOTES_BYTES_MAX>(
            "checkpoint notes",
            &notes,
        )
        .map_err(|e| StoreError::Corrupt(format!("checkpoint notes of {author}: {e}")))?;
        self.overlay
            .insert(key(CHECKPOINT_NOTES, &[&author.0]), bytes);
        Ok(())
    }

    fn put_proposals(&mut self, proposals: &[Vec<u8>]) -> Result<(), StoreError> {
        let bytes = credence_protocol::codec::encode_bounded::<_, PROPOSALS_BYTES_MAX>(
            "roster proposals",
            &proposals,
        )
        .map_err(|e| StoreError::Corrupt(format!("the roster proposals held: {e}")))?;
        self.overlay.insert(key(META, &[META_PROPOSALS]), bytes);
        Ok(())
    }

    fn put_fork(&mut self, evidence: &ForkEvidence) -> Result<bool, StoreError> {
        // One pair per author proves it equivocated; more would only let
        // an equivocator grow every replica's store.
        if !self
            .view()
            .prefix(&key(FORK, &[&evidence.author.0]))?
            .is_empty()
        {
            return Ok(false);
        }
        let second = leaf_hash(&evidence.second);
        let k = key(
            FORK,
            &[&evidence.author.0, &evidence.seq.to_be_bytes(), &second.0],
        );
        self.overlay.insert(k, encode_fork(evidence));
        Ok(true)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.freeze()?;
        self.writer.wait_all()?;
        self.tree.flush()?;
        self.freeze()
    }
}

mod view;
mod writer;

pub use changes::{Keeping, SweepCursor, VIEWS_VERSION, ViewIndex, ViewsDb, ViewsStore};
use layout::*;
pub use view::SledSnapshot;
use view::View;
use writer::{Writer, open_tree, recover};

/// Up to `limit` register records of `tree` from index `from` on, with
/// their indexes (records are written to sled directly, so a snapshot
/// reads them the same way).
pub(super) fn register_records_in(
    tree: &sled::Db,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut records = Vec::new();
    for item in tree
        .range(key(REGISTER, &[&from.to_be_bytes()])..key(REGISTER, &[&u64::MAX.to_be_bytes()]))
        .take(limit)
    {
        let (k, value) = item?;
        let index: [u8; 8] = k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("register record key".into()))?;
        records.push((u64::from_be_bytes(index), value.to_vec()));
    }
    Ok(records)
}

/// What an idempotency key of an account stands for: the request it came
/// with (a hash of its route and body), when it was first seen, and the
/// notice it signed once known. Kept [`IDEMPOTENCY_KEEP_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// BLAKE3 of the request's route and body.
    pub request: [u8; 32],
    /// When the key was first seen.
    pub at: Timestamp,
    /// The notice signed for it, and its seq.
    pub issued: Option<(NoticeId, u64)>,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_KEEP_MS: u64 = 24 * 3_600_000;

impl Idempotency {
    const BYTES: usize = 32 + 8 + 32 + 8;

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.request);
        out.extend_from_slice(&self.at.0.to_be_bytes());
        let (id, seq) = self.issued.unwrap_or((NoticeId::default(), 0));
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&seq.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Idempotency, StoreError> {
        let corrupt = || StoreError::Corrupt("idempotency record".into());
        if bytes.len() != Self::BYTES {
            return Err(corrupt());
        }
        let (request, rest) = bytes.split_at(32);
        let (at, rest) = rest.split_at(8);
        let (id, seq) = rest.split_at(32);
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| corrupt())?);
        Ok(Idempotency {
            request: request.try_into().map_err(|_| corrupt())?,
            at: Timestamp(u64::from_be_bytes(at.try_into().map_err(|_| corrupt())?)),
            issued: (seq > 0)
                .then(|| NoticeId(id.try_into().unwrap_or_default()))
                .map(|id| (id, seq)),
        })
    }
}

fn idempotency_key(account: &str, idempotency: &str) -> Vec<u8> {
    keyed(IDEMPOTENCY, account, idempotency)
}

fn keyed(prefix: u8, account: &str, idempotency: &str) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(account.as_bytes());
    hasher.update(&[0]);
    hasher.update(idempotency.as_bytes());
    key(prefix, &[hasher.finalize().as_bytes()])
}

/// What a governance act under an idempotency key answered: the request
/// it was bound to (a hash of its route and body), when, and the answer.
/// Kept [`IDEMPOTENCY_KEEP_MS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Governed {
    /// BLAKE3 of the request's route and body.
    pub request: [u8; 32],
    /// When it was answered.
    pub at: Timestamp,
    /// The answer.
    pub answer: credence_protocol::engine::GovernanceAnswer,
}

impl Governed {
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let signed = self
            .answer
            .signed
            .to_bytes()
            .map_err(|e| StoreError::Corrupt(format!("governance answer: {e}")))?;
        let mut out = Vec::with_capacity(32 + 8 + 32 + 24 + signed.len());
        out.extend_from_slice(&self.request);
        out.extend_from_slice(&self.at.0.to_be_bytes());
        out.extend_from_slice(&self.answer.hash.0);
        for n in [
            self.answer.number,
            self.answer.signatures as u64,
            self.answer.current,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&signed);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Governed, StoreError> {
        let corrupt = || StoreError::Corrupt("a governance idempotency record".into());
        let (request, rest) = bytes.split_first_chunk::<32>().ok_or_else(corrupt)?;
        let (at, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (hash, rest) = rest.split_first_chunk::<32>().ok_or_else(corrupt)?;
        let (number, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (signatures, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (current, signed) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let signed = credence_protocol::governance::SignedVersion::from_bytes(signed)
            .map_err(|_| corrupt())?;
        Ok(Governed {
            request: *request,
            at: Timestamp(u64::from_be_bytes(*at)),
            answer: credence_protocol::engine::GovernanceAnswer {
                hash: RosterHash(*hash),
                number: u64::from_be_bytes(*number),
                signatures: usize::try_from(u64::from_be_bytes(*signatures))
                    .map_err(|_| corrupt())?,
                current: u64::from_be_bytes(*current),
                signed,
            },
        })
    }
}

/// The last `limit` register records of `tree` about `subject`, with
/// their indexes, in index order.
pub(super) fn register_of_subject_in(
    tree: &sled::Db,
    subject: &SubjectKey,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    // The newest `limit` entries only, read from the end.
    let mut indexes = Vec::new();
    for item in tree
        .scan_prefix(key(REGISTER_SUBJECT, &[&subject.0]))
        .rev()
        .take(limit)
    {
        let (k, _) = item?;
        let index: [u8; 8] = k
            .get(1 + SUBJECT_KEY_BYTES..)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("register subject key".into()))?;
        indexes.push(u64::from_be_bytes(index));
    }
    indexes.reverse();
    let mut records = Vec::with_capacity(indexes.len());
    for index in &indexes {
        let record = tree
            .get(key(REGISTER, &[&index.to_be_bytes()]))?
            .ok_or_else(|| StoreError::Corrupt(format!("register record {index} is missing")))?;
        records.push((*index, record.to_vec()));
    }
    Ok(records)
}

/// Indexes by subject the register records of a store written before the
/// register had that index (once; a marker says it was done).
fn index_register_subjects(tree: &sled::Db) -> Result<(), StoreError> {
    if tree.contains_key(key(META, &[META_REGISTER_SUBJECTS]))? {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for item in tree.scan_prefix([REGISTER]) {
        let (k, record) = item?;
        let Some(index) = k.get(1..9) else {
            return Err(StoreError::Corrupt("register record key".into()));
        };
        let record = match credence_protocol::register::Entry::decode(&record) {
            Ok(credence_protocol::register::Entry::Record(record)) => record,
            Ok(credence_protocol::register::Entry::Pruned(_)) => continue,
            Err(e) => return Err(StoreError::Corrupt(format!("register record: {e}"))),
        };
        if let Some(subject) = record.subject_key() {
            batch.insert(key(REGISTER_SUBJECT, &[&subject.0, index]), &[]);
        }
    }
    batch.insert(key(META, &[META_REGISTER_SUBJECTS]), &[]);
    tree.apply_batch(batch)?;
    Ok(())
}

/// A flush asked and not yet waited for: everything appended before it
/// was asked is durable once [`PendingFlush::wait`] returns. Waited for
/// off the loop (group commit).
pub struct PendingFlush {
    tree: sled::Db,
    written: PendingWrite,
}

impl PendingFlush {
    /// Waits until the writer wrote everything the flush covers, then
    /// flushes sled.
    pub fn wait(self) -> Result<(), StoreError> {
        self.written.wait()?;
        self.tree.flush()?;
        Ok(())
    }
}

/// Layers handed to the writer and not yet waited for: once
/// [`PendingWrite::wait`] returns they are in sled (not yet durable).
pub struct PendingWrite {
    progress: Arc<(std::sync::Mutex<writer::Progress>, std::sync::Condvar)>,
    layers: u64,
}

impl PendingWrite {
    /// Waits until the writer wrote every layer this covers.
    pub fn wait(self) -> Result<(), StoreError> {
        writer::wait_progress(&self.progress, self.layers)?;
        Ok(())
    }
}

impl SledStore {
    /// Hands everything appended so far to the writer and returns the
    /// flush that makes it durable, to wait for elsewhere: the loop goes
    /// on appending while the disk works.
    pub fn flush_later(&mut self) -> Result<PendingFlush, StoreError> {
        Ok(PendingFlush {
            tree: self.tree.clone(),
            written: self.write_later()?,
        })
    }

    /// Hands everything appended so far to the writer without waiting for
    /// it: what waits on the answer, on another thread, until it is in
    /// sled.
    fn write_later(&mut self) -> Result<PendingWrite, StoreError> {
        self.freeze()?;
        Ok(PendingWrite {
            progress: Arc::clone(&self.writer.progress),
            layers: self.writer.sent,
        })
    }

    /// A snapshot of the store as it is now for the thread that keeps the
    /// views, and the wait for everything it holds to be in sled: the
    /// thread folds over the snapshot and writes what it keeps only once
    /// the wait is over, so that a crash never keeps a view of a notice it
    /// took back (as [`SledStore::write_through`], without holding up the
    /// caller while the writer works).
    pub fn snapshot_for_views(&mut self) -> Result<(SledSnapshot, PendingWrite), StoreError> {
        let written = self.write_later()?;
        Ok((self.snapshot(), written))
    }

    /// Waits until everything appended so far is in sled (not yet
    /// durable): what is inserted into sled after this comes after those
    /// notices in sled's log, so a crash that keeps it keeps them. The
    /// views are written after this (a view of a notice a crash took back
    /// would describe a listing no longer held).
    pub fn write_through(&mut self) -> Result<(), StoreError> {
        self.freeze()?;
        let applied = self.writer.wait_until(self.writer.sent)?;
        self.forget_written(applied);
        Ok(())
    }

    /// Starts making everything appended so far (and the query register)
    /// durable without waiting for it: the overlay goes to the writer
    /// thread, which flushes sled after writing it. For background
    /// durability; acknowledgements still need [`Store::flush`].
    pub fn flush_soon(&mut self) -> Result<(), StoreError> {
        self.freeze()?;
        self.writer.request_flush()
    }

    /// Appends a record (its canonical bytes) to the register of reads,
    /// a Merkle log beside the notices but outside the replicated state:
    /// the record and the log's new frontier are written together. It is
    /// made durable by the next [`Store::flush`]. A record about a
    /// subject is indexed under the subject's key too. Returns its index.
    pub fn register_append(
        &self,
        record: &[u8],
        subject: Option<&SubjectKey>,
    ) -> Result<u64, StoreError> {
        let mut log = self
            .register
            .lock()
            .map_err(|_| StoreError::Writer("the register lock was poisoned".into()))?;
        let index = log.size();
        let mut next = log.clone();
        next.append(record);
        let mut batch = sled::Batch::default();
        batch.insert(key(REGISTER, &[&index.to_be_bytes()]), record);
        if let Some(subject) = subject {
            batch.insert(
                key(REGISTER_SUBJECT, &[&subject.0, &index.to_be_bytes()]),
                &[],
            );
        }
        batch.insert(key(META, &[META_REGISTER]), next.frontier().to_bytes());
        self.tree.apply_batch(batch)?;
        *log = next;
        Ok(index)
    }

    /// Makes the register of reads durable now (a command that read on a
    /// data directory directly, with no node running).
    pub fn register_flush(&self) -> Result<(), StoreError> {
        self.tree.flush()?;
        Ok(())
    }

    /// The flush that makes the register of reads durable (and all else
    /// sled holds), to run off the loop: answers to reads wait for it.
    pub fn register_flush_later(
        &self,
    ) -> impl FnOnce() -> Result<(), StoreError> + Send + 'static + use<> {
        let tree = self.tree.clone();
        move || {
            tree.flush()?;
            Ok(())
        }
    }

    /// The register of reads as it is: its size and root.
    pub fn register_log(&self) -> Result<RegisterLog, StoreError> {
        Ok(self
            .register
            .lock()
            .map_err(|_| StoreError::Writer("the register lock was poisoned".into()))?
            .clone())
    }

    /// Up to `limit` register records from index `from` on, with their
    /// indexes.
    pub fn register_records(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        register_records_in(&self.tree, from, limit)
    }

    /// Prunes up to `limit` register records made before `before`, in
    /// index order, to their leaf hash
    /// ([`credence_protocol::register::Entry::pruned`]) and drops their
    /// subject index entries: the log, its root and its checkpoints do
    /// not change, and the records' contents are gone. Stops at the first
    /// record made at or after `before`; a meta key keeps where it
    /// stopped. Returns how many it pruned (`limit`: call again).
    pub fn register_prune(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        use credence_protocol::register::Entry;
        // Appends wait: the batch below sees a register that does not
        // grow under it.
        let _log = self
            .register
            .lock()
            .map_err(|_| StoreError::Writer("the register lock was poisoned".into()))?;
        let from = match self.tree.get(key(META, &[META_REGISTER_PRUNED]))? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("register pruning mark".into()))?,
            ),
            None => 0,
        };
        let mut batch = sled::Batch::default();
        let mut next = from;
        let mut pruned = 0;
        for item in self
            .tree
            .range(key(REGISTER, &[&from.to_be_bytes()])..key(REGISTER, &[&u64::MAX.to_be_bytes()]))
        {
            if pruned == limit {
                break;
            }
            let (k, value) = item?;
            let index = k
                .get(1..9)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("register record key".into()))?;
            let record = match Entry::decode(&value) {
                Ok(Entry::Record(record)) => record,
                Ok(Entry::Pruned(_)) => {
                    next = index + 1;
                    continue;
                }
                Err(e) => {
                    return Err(StoreError::Corrupt(format!("register record {index}: {e}")));
                }
            };
            if record.at >= before {
                break;
            }
            batch.insert(k, Entry::pruned(&value));
            if let Some(subject) = record.subject_key() {
                batch.remove(key(REGISTER_SUBJECT, &[&subject.0, &index.to_be_bytes()]));
            }
            next = index + 1;
            pruned += 1;
        }
        batch.insert(key(META, &[META_REGISTER_PRUNED]), &next.to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(pruned)
    }

    /// The record of `account`'s idempotency key, unless none was kept or
    /// it is older than [`IDEMPOTENCY_KEEP_MS`] at `now`.
    pub fn idempotency(
        &self,
        account: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Idempotency>, StoreError> {
        let Some(bytes) = self.tree.get(idempotency_key(account, key))? else {
            return Ok(None);
        };
        let record = Idempotency::decode(&bytes)?;
        Ok((now.0.saturating_sub(record.at.0) < IDEMPOTENCY_KEEP_MS).then_some(record))
    }

    /// Keeps `record` for `account`'s idempotency key; durable with the
    /// next flush, which an own notice's acknowledgement waits for.
    pub fn put_idempotency(
        &self,
        account: &str,
        key: &str,
        record: &Idempotency,
    ) -> Result<(), StoreError> {
        self.tree
            .insert(idempotency_key(account, key), record.encode())?;
        Ok(())
    }

    /// What `account`'s idempotency key answered on a governance act,
    /// unless none was kept or it is older than [`IDEMPOTENCY_KEEP_MS`] at
    /// `now`.
    pub fn governed(
        &self,
        account: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Governed>, StoreError> {
        let Some(bytes) = self.tree.get(keyed(GOVERNED, account, key))? else {
            return Ok(None);
        };
        let record = Governed::decode(&bytes)?;
        Ok((now.0.saturating_sub(record.at.0) < IDEMPOTENCY_KEEP_MS).then_some(record))
    }

    /// Keeps what a governance act under `account`'s idempotency key
    /// answered; durable with the next flush.
    pub fn put_governed(
        &self,
        account: &str,
        key: &str,
        record: &Governed,
    ) -> Result<(), StoreError> {
        self.tree
            .insert(keyed(GOVERNED, account, key), record.encode()?)?;
        Ok(())
    }

    /// Forgets idempotency keys older than [`IDEMPOTENCY_KEEP_MS`] at
    /// `now`; returns how many.
    pub fn prune_idempotency(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut gone = 0;
        for prefix in [IDEMPOTENCY, GOVERNED] {
            for item in self.tree.scan_prefix([prefix]) {
                let (k, value) = item?;
                // Both records begin with the request hash and the time.
                let at = value
                    .get(32..40)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("an idempotency record".into()))?;
                if now.0.saturating_sub(at) >= IDEMPOTENCY_KEEP_MS {
                    batch.remove(k);
                    gone += 1;
                }
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(gone)
    }

    /// The last `limit` register records about `subject`, with their
    /// indexes, in index order.
    pub fn register_of_subject(
        &self,
        subject: &SubjectKey,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        register_of_subject_in(&self.tree, subject, limit)
    }

    /// Opens (or creates) the store in `path` for `federation`.
    pub fn open(path: &Path, federation: FederationId) -> Result<SledStore, StoreError> {
        let tree = open_tree(path)?;
        if redo::replay(&tree)? {
            tracing::warn!("applied the views' writes a crash had left half done");
        }
        let meta_federation = key(META, &[META_FEDERATION]);
        match tree.get(&meta_federation)? {
            Some(found) => {
                let found = FederationId(id_from(&found)?.0);
                if found != federation {
                    return Err(StoreError::OtherFederation {
                        found,
                        expected: federation,
                    });
                }
            }
            None => {
                tree.insert(meta_federation, &federation.0)?;
                tree.flush()?;
            }
        }
        let mut heads = BTreeMap::new();
        for item in tree.scan_prefix([HEAD]) {
            let (k, v) = item?;
            let author = AuthorityId(id_from(&k[1..])?.0);
            heads.insert(author, decode_head(author, &v)?);
        }
        // Recovery removes only what lies past the heads; the heads stay.
        let removed = recover(&tree, &heads)?;
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed notices of a write torn by a crash; peers will send them again"
            );
        }
        let count = match tree.get(key(META, &[META_COUNT]))? {
            Some(bytes) => {
                let array: [u8; 8] = bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("notice count".into()))?;
                u64::from_be_bytes(array)
            }
            None => 0,
        };
        index_register_subjects(&tree)?;
        names::backfill(&tree)?;
        let (names, names_through) = names::recover(&tree, &heads)?;
        let register = match tree.get(key(META, &[META_REGISTER]))? {
            Some(bytes) => RegisterLog::from_frontier(
                Frontier::from_bytes(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("register frontier: {e}")))?,
            ),
            None => RegisterLog::new(),
        };
        let writer = Writer::start(tree.clone());
        Ok(SledStore {
            views: ViewsDb::new(tree.clone()),
            tree,
            overlay: BTreeMap::new(),
            frozen: VecDeque::new(),
            writer,
            count,
            heads,
            register: std::sync::Mutex::new(register),
            names: Arc::new(std::sync::Mutex::new(names)),
            names_through,
            names_writing: None,
        })
    }

    /// What a read sees now.
    fn view(&self) -> View<'_> {
        View {
            tree: &self.tree,
            layers: self.buffered().collect(),
            count: self.count,
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.view().get(key)
    }

    /// Buffered layers, oldest first, then the overlay: later wins.
    fn buffered(&self) -> impl Iterator<Item = &BTreeMap<Vec<u8>, Vec<u8>>> {
        self.frozen
            .iter()
            .map(|(_, layer)| layer.as_ref())
            .chain(std::iter::once(&self.overlay))
    }

    /// The records in sled by kind (the key's prefix byte): how many, and
    /// their key and value bytes, before sled's own framing. Flushes
    /// first; a whole scan, for benchmarks and diagnosis.
    pub fn usage(&mut self) -> Result<BTreeMap<char, RecordUsage>, StoreError> {
        self.write_names_now()?;
        self.flush()?;
        let mut usage: BTreeMap<char, RecordUsage> = BTreeMap::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let kind = usage
                .entry(k.first().map_or('?', |&b| b as char))
                .or_default();
            kind.records += 1;
            kind.key_bytes += k.len() as u64;
            kind.value_bytes += v.len() as u64;
        }
        Ok(usage)
    }

    /// A read-only view of the store as it is now, for reads that take
    /// long (every listing folded) off the thread that ingests: see
    /// [`SledSnapshot`].
    pub fn snapshot(&self) -> SledSnapshot {
        let mut layers: Vec<Layer> = self.frozen.iter().map(|(_, l)| Arc::clone(l)).collect();
        layers.push(Arc::new(self.overlay.clone()));
        SledSnapshot {
            tree: self.tree.clone(),
            views: self.views.clone(),
            layers,
            heads: self.heads.clone(),
            count: self.count,
            names: Arc::clone(&self.names),
        }
    }

    /// A snapshot for a read off the event loop that must not cost the loop
    /// a copy of a large overlay: an overlay of more than
    /// [`SNAPSHOT_COPY_KEYS_MAX`] keys is first frozen (handed to the writer
    /// as a layer the snapshot shares, as a full overlay would be).
    pub fn snapshot_cheaply(&mut self) -> Result<SledSnapshot, StoreError> {
        if self.overlay.len() > SNAPSHOT_COPY_KEYS_MAX {
            self.freeze()?;
        }
        Ok(self.snapshot())
    }

    /// Forgets the frozen layers the writer has written (`applied` of
    /// them in all): reads find them in sled.
    fn forget_written(&mut self, applied: u64) {
        while self
            .frozen
            .front()
            .is_some_and(|(number, _)| *number <= applied)
        {
            self.frozen.pop_front();
        }
    }

    /// Hands the overlay to the writer thread as one frozen layer, forgets
    /// the layers it has written, then writes the name index's block if
    /// [`names::BLOCK_POSTINGS`] are gathered ([`SledStore::write_names`]).
    fn freeze(&mut self) -> Result<(), StoreError> {
        if !self.overlay.is_empty() {
            let layer: Layer = Arc::new(std::mem::take(&mut self.overlay));
            let number = self.writer.send(Arc::clone(&layer))?;
            self.frozen.push_back((number, layer));
        }
        // Backpressure: when the writer falls behind, wait for it, so that
        // buffered memory and the layers every read consults stay bounded.
        let applied = if self.frozen.len() > FROZEN_LAYERS_MAX {
            let oldest_allowed = self.writer.sent - FROZEN_LAYERS_MAX as u64;
            self.writer.wait_until(oldest_allowed)?
        } else {
            self.writer.applied()?
        };
        self.forget_written(applied);
        self.write_names(names::BLOCK_POSTINGS)
    }

    /// Writes the name index's gathered postings as a block once at least
    /// `least` are gathered: numbered by the position of the newest
    /// notice, then the index's mark, the heads now (every notice appended
    /// so far is in this block or an earlier one). A thread of its own
    /// writes them, one block at a time, off the path of the flushes that
    /// acknowledge notices: the index is derived from the logs, and
    /// opening gathers again what a crash took ([`names::recover`]).
    ///
    /// Once [`names::MARK_NOTICES_MAX`] notices are past the mark (with
    /// `least` of 1, any), the block is written however few postings it
    /// holds, none included: the mark then bounds what opening reads again.
    fn write_names(&mut self, least: usize) -> Result<(), StoreError> {
        if names::lock(&self.names).postings() < least.max(1) {
            let past_mark: u64 = self
                .heads
                .iter()
                .map(|(author, head)| {
                    head.seq
                        .saturating_sub(self.names_through.get(author).copied().unwrap_or(0))
                })
                .sum();
            let due = if least <= 1 {
                1
            } else {
                names::MARK_NOTICES_MAX
            };
            if past_mark < due {
                return Ok(());
            }
        }
        self.names_settled()?;
        let block = self.count;
        let records = names::lock(&self.names).hand(block);
        self.names_through = self.heads.iter().map(|(a, h)| (*a, h.seq)).collect();
        let mark = names::through_record(&self.names_through);
        let (tree, shared) = (self.tree.clone(), Arc::clone(&self.names));
        let thread = std::thread::Builder::new()
            .name("credence-names".into())
            .spawn(move || names::write_block(&tree, &shared, block, records, mark))
            .map_err(|e| {
                StoreError::Writer(format!("the name index's thread did not start: {e}"))
            })?;
        self.names_writing = Some(thread);
        Ok(())
    }

    /// Waits for the name index's block being written, if any.
    fn names_settled(&mut self) -> Result<(), StoreError> {
        match self.names_writing.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(StoreError::Writer(
                "the name index's thread panicked".into(),
            )),
        }
    }

    /// Writes every gathered posting of the name index as a block, and
    /// waits until it is in sled (the store closes or cuts a log).
    fn write_names_now(&mut self) -> Result<(), StoreError> {
        self.write_names(1)?;
        self.names_settled()
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Best effort: what was appended but never flushed was never
        // acknowledged, so losing it is allowed; keeping it is kinder.
        let _ = self.freeze();
        let _ = self.write_names_now();
        self.writer.stop();
        let _ = self.tree.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_crypto::merkle::Frontier;
    use credence_protocol::time::Timestamp;

    // The register of reads is a Merkle log: records come back in order
    // with their indexes, and its root survives a reopen.
    #[test]
    fn the_register_is_a_merkle_log_that_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let root = {
            let store = SledStore::open(dir.path(), FederationId([3; 32])).unwrap();
            for n in 0..25u64 {
                assert_eq!(store.register_append(&n.to_le_bytes(), None).unwrap(), n);
            }
            let records = store.register_records(20, 100).unwrap();
            assert_eq!(
                records.iter().map(|(i, _)| *i).collect::<Vec<u64>>(),
                (20..25).collect::<Vec<u64>>()
            );
            assert_eq!(records[0].1, 20u64.to_le_bytes().to_vec());
            let log = store.register_log().unwrap();
            assert_eq!(log.size(), 25);
            let leaves: Vec<credence_crypto::Digest> = (0..25u64)
                .map(|n| credence_crypto::merkle::leaf_hash(&n.to_le_bytes()))
                .collect();
            assert_eq!(log.root(), credence_crypto::merkle::root(&leaves));
            log.root()
        };
        let store = SledStore::open(dir.path(), FederationId([3; 32])).unwrap();
        assert_eq!(store.register_log().unwrap().root(), root);
        assert_eq!(store.register_append(b"next", None).unwrap(), 25);
    }

    // Pruning past retention keeps the register's root and size, empties
    // the old records to their leaf and their subject index, a batch at a
    // time, from where it stopped, across a reopen.
    #[test]
    fn pruned_records_keep_the_root_and_lose_their_contents() {
        use credence_protocol::register::{Entry, READ_RECORD_FORMAT, ReadKind, ReadRecord};
        let dir = tempfile::tempdir().unwrap();
        let subject = SubjectKey::new(
            credence_protocol::model::SubjectKind::LegalPerson,
            "91350100M000100Y43",
        )
        .unwrap();
        let record = |n: u64| ReadRecord {
            format: READ_RECORD_FORMAT,
            at: Timestamp(1_000 + n),
            kind: ReadKind::Lookup,
            account: Some("desk".into()),
            requester: None,
            subject: Some((
                credence_protocol::model::SubjectKind::LegalPerson,
                "91350100M000100Y43".into(),
            )),
            purpose: "supplier check".into(),
            legal_basis: "Procurement Law art. 22".into(),
            digest: [n as u8; 32],
            request: None,
        };
        let root = {
            let store = SledStore::open(dir.path(), FederationId([3; 32])).unwrap();
            for n in 0..10 {
                let bytes = record(n).encode().unwrap();
                store.register_append(&bytes, Some(&subject)).unwrap();
            }
            let root = store.register_log().unwrap().root();
            assert_eq!(store.register_prune(Timestamp(1_005), 3).unwrap(), 3);
            assert_eq!(store.register_prune(Timestamp(1_005), 3).unwrap(), 2);
            assert_eq!(store.register_prune(Timestamp(1_005), 3).unwrap(), 0);
            store.register_flush().unwrap();
            root
        };
        let store = SledStore::open(dir.path(), FederationId([3; 32])).unwrap();
        assert_eq!(store.register_log().unwrap().root(), root);
        let entries = store.register_records(0, 100).unwrap();
        let mut frontier = Frontier::new();
        for (index, bytes) in &entries {
            let pruned = matches!(Entry::decode(bytes).unwrap(), Entry::Pruned(_));
            assert_eq!(pruned, *index < 5, "entry {index}");
            frontier.push(Entry::leaf(bytes).unwrap());
        }
        assert_eq!(frontier.root(), root);
        let about: Vec<u64> = store
            .register_of_subject(&subject, 100)
            .unwrap()
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(about, (5..10).collect::<Vec<u64>>());
        // Later: the rest goes too, and appends go on at the next index.
        assert_eq!(store.register_prune(Timestamp(2_000), 100).unwrap(), 5);
        assert_eq!(
            store
                .register_append(&record(10).encode().unwrap(), None)
                .unwrap(),
            10
        );
    }

    // An idempotency key is kept a day, per account, and then forgotten.
    #[test]
    fn idempotency_keys_last_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), FederationId([3; 32])).unwrap();
        let record = Idempotency {
            request: [1; 32],
            at: Timestamp(1_000),
            issued: Some((NoticeId([2; 32]), 9)),
        };
        store.put_idempotency("desk", "k", &record).unwrap();
        let later = Timestamp(1_000 + IDEMPOTENCY_KEEP_MS - 1);
        assert_eq!(store.idempotency("desk", "k", later).unwrap(), Some(record));
        assert_eq!(store.idempotency("other", "k", later).unwrap(), None);
        let expired = Timestamp(1_000 + IDEMPOTENCY_KEEP_MS);
        assert_eq!(store.idempotency("desk", "k", expired).unwrap(), None);
        assert_eq!(store.prune_idempotency(later).unwrap(), 0);
        assert_eq!(store.prune_idempotency(expired).unwrap(), 1);
        assert_eq!(store.idempotency("desk", "k", later).unwrap(), None);
        let pending = Idempotency {
            issued: None,
            ..record
        };
        store.put_idempotency("desk", "k", &pending).unwrap();
        assert_eq!(
            store.idempotency("desk", "k", later).unwrap(),
            Some(pending)
        );
    }

    // The sled store passes the suite every store passes, and keeps what
    // it flushed across a reopen.
    #[test]
    fn sled_store_passes_the_suite() {
        let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
        credence_protocol::store::suite::run(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = SledStore::open(dir.path(), FederationId([1; 32])).unwrap();
            dirs.borrow_mut().push(dir);
            store
        });
    }

    fn append_one(
        store: &mut SledStore,
        author: AuthorityId,
        seq: u64,
        id: NoticeId,
        listing: Option<NoticeId>,
    ) {
        let mut frontier = store
            .head(&author)
            .unwrap()
            .map(|h| h.frontier)
            .unwrap_or_default();
        frontier.push(id.digest());
        let head = Head {
            author,
            seq,
            id,
            issued_at: Timestamp(seq),
            frontier,
            budget: 1000 * seq,
            roster: 0,
        };
        let envelope = credence_protocol::store::suite::envelope(author, seq);
        store
            .append(Append {
                id,
                envelope: &envelope,
                head,
                listing,
                subject: None,
                linked: Vec::new(),
                names: Vec::new(),
            })
            .unwrap();
    }

    // The usage counts sled's records by kind, the buffered ones too (it
    // flushes first).
    #[test]
    fn usage_counts_the_records_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path(), FederationId([1; 32])).unwrap();
        let author = AuthorityId([2; 32]);
        let listing = NoticeId::default();
        append_one(&mut store, author, 1, NoticeId([11; 32]), Some(listing));
        append_one(&mut store, author, 2, NoticeId([12; 32]), Some(listing));
        let usage = store.usage().unwrap();
        // A notice: its id, then its arrival position and its envelope.
        let envelopes: u64 = (1..=2)
            .map(|seq| 8 + credence_protocol::store::suite::envelope(author, seq).len() as u64)
            .sum();
        assert_eq!(
            usage[&'n'],
            RecordUsage {
                records: 2,
                key_bytes: 2 * 33,
                value_bytes: envelopes
            }
        );
        assert_eq!(
            usage[&'r'],
            RecordUsage {
                records: 2,
                key_bytes: 2 * 65,
                value_bytes: 0
            }
        );
        // One log page of two ids.
        assert_eq!(
            usage[&'l'],
            RecordUsage {
                records: 1,
                key_bytes: 41,
                value_bytes: 64
            }
        );
        assert_eq!(usage[&'h'].records, 1);
    }

    // A layer torn by a crash (its records written, its head not) is
    // removed when the store opens, and the log continues over it.
    #[test]
    fn torn_layer_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let federation = FederationId([1; 32]);
        let author = AuthorityId([2; 32]);
        // The suite's envelopes withdraw the all-zero listing.
        let listing = NoticeId::default();
        let (first, second, torn) = (NoticeId([11; 32]), NoticeId([12; 32]), NoticeId([13; 32]));
        {
            let mut store = SledStore::open(dir.path(), federation).unwrap();
            append_one(&mut store, author, 1, first, Some(listing));
            append_one(&mut store, author, 2, second, Some(listing));
            store.flush().unwrap();
            // What the writer thread had written of the next layer when the
            // process died: every record of seq 3 but its head.
            let mut record = 3u64.to_be_bytes().to_vec();
            record.extend_from_slice(&credence_protocol::store::suite::envelope(author, 3));
            let mut page = store.get(&log_page_key(&author, 0)).unwrap().unwrap();
            page.extend_from_slice(&torn.0);
            store.tree.insert(log_page_key(&author, 0), page).unwrap();
            store.tree.insert(key(NOTICE, &[&torn.0]), record).unwrap();
            store
                .tree
                .insert(key(REFERRING, &[&listing.0, &torn.0]), &[])
                .unwrap();
            store.tree.flush().unwrap();
        }
        let mut store = SledStore::open(dir.path(), federation).unwrap();
        assert!(!store.contains(&torn).unwrap());
        assert_eq!(store.log_id(&author, 3).unwrap(), None);
        assert_eq!(
            store.log_range(&author, 1, 10).unwrap(),
            vec![first, second]
        );
        assert_eq!(store.referring(&listing).unwrap(), vec![first, second]);
        assert_eq!(store.arrival_order().unwrap(), vec![first, second]);
        let next = NoticeId([23; 32]);
        append_one(&mut store, author, 3, next, Some(listing));
        store.flush().unwrap();
        assert_eq!(store.log_range(&author, 2, 10).unwrap(), vec![second, next]);
        assert_eq!(
            store.referring(&listing).unwrap(),
            vec![first, second, next]
        );
    }

    // A log cut back (a roster version changed its author's key) stays cut
    // when the store opens again, across log pages, and goes on from there.
    #[test]
    fn a_truncated_log_stays_truncated_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let federation = FederationId([1; 32]);
        let author = AuthorityId([2; 32]);
        let listing = NoticeId::default();
        let id = |seq: u64| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seq.to_be_bytes());
            bytes[31] = 1;
            NoticeId(bytes)
        };
        let kept = {
            let mut store = SledStore::open(dir.path(), federation).unwrap();
            for seq in 1..=70 {
                append_one(&mut store, author, seq, id(seq), Some(listing));
                if seq == 60 {
                    store.flush().unwrap();
                }
            }
            let kept = store.view().log_range(&author, 1, 100).unwrap()[..60].to_vec();
            let mut frontier = Frontier::new();
            for notice in &kept {
                frontier.push(notice.digest());
            }
            let head = Head {
                author,
                seq: 60,
                id: id(60),
                issued_at: Timestamp(60),
                frontier,
                budget: 60_000,
                roster: 0,
            };
            store.truncate_log(&author, Some(head)).unwrap();
            kept
        };
        let mut store = SledStore::open(dir.path(), federation).unwrap();
        assert_eq!(store.log_range(&author, 1, 100).unwrap(), kept);
        assert_eq!(store.head(&author).unwrap().unwrap().seq, 60);
        // The notices cut off stay, out of the log.
        assert_eq!(store.notice_count().unwrap(), 70);
        assert!(store.contains(&id(65)).unwrap());
        assert_eq!(store.referring(&listing).unwrap().len(), 70);
        let next = NoticeId([0xee; 32]);
        append_one(&mut store, author, 61, next, Some(listing));
        store.flush().unwrap();
        assert_eq!(store.log_id(&author, 61).unwrap(), Some(next));
        assert_eq!(
            store.log_range(&author, 60, 100).unwrap(),
            vec![id(60), next]
        );
        assert_eq!(store.notice_count().unwrap(), 71);
    }

    // A layer handed to the writer but not yet written is read like the
    // overlay: log ranges see the newest version of a page whichever layer
    // holds it.
    #[test]
    fn reads_see_a_layer_on_its_way_to_sled() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path(), FederationId([1; 32])).unwrap();
        let (author, other) = (AuthorityId([2; 32]), AuthorityId([3; 32]));
        let ids: Vec<NoticeId> = (1..=3u8).map(|i| NoticeId([i; 32])).collect();
        append_one(&mut store, author, 1, ids[0], None);
        store.flush().unwrap();
        append_one(&mut store, author, 2, ids[1], None);
        append_one(&mut store, author, 3, ids[2], None);
        // In flight: frozen, never handed to this writer, so it stays
        // frozen for the rest of the test; sled holds the page of seq 1
        // only.
        let layer: Layer = Arc::new(std::mem::take(&mut store.overlay));
        store.frozen.push_back((u64::MAX, layer));
        let later = NoticeId([9; 32]);
        append_one(&mut store, other, 1, later, None);
        assert_eq!(store.log_range(&author, 1, 10).unwrap(), ids);
        assert_eq!(store.log_range(&author, 2, 1).unwrap(), ids[1..2]);
        assert_eq!(store.log_id(&author, 3).unwrap(), Some(ids[2]));
        assert_eq!(store.log_range(&other, 1, 10).unwrap(), vec![later]);
    }

    // A snapshot reads what the store held when it was taken, through
    // every layer, from another thread; its heads and count stay those of
    // that moment while the store goes on; it refuses writes.
    #[test]
    fn a_snapshot_reads_like_the_store_from_another_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path(), FederationId([1; 32])).unwrap();
        let author = AuthorityId([2; 32]);
        let listing = NoticeId::default();
        let ids: Vec<NoticeId> = (1..=3u8).map(|i| NoticeId([i; 32])).collect();
        append_one(&mut store, author, 1, ids[0], Some(listing));
        store.flush().unwrap();
        append_one(&mut store, author, 2, ids[1], Some(listing));
        let layer: Layer = Arc::new(std::mem::take(&mut store.overlay));
        store.frozen.push_back((u64::MAX, layer));
        append_one(&mut store, author, 3, ids[2], Some(listing));
        let third = ids[2];
        let mut snapshot = store.snapshot();
        let expected = (
            store.heads().unwrap(),
            store.log_range(&author, 1, 10).unwrap(),
            store.referring(&listing).unwrap(),
            store.arrival_order().unwrap(),
            store.notice(&third).unwrap(),
        );
        // Written to sled, where the snapshot can see it through.
        append_one(&mut store, author, 4, NoticeId([4; 32]), Some(listing));
        store.flush().unwrap();
        let (heads, count, seen) = std::thread::spawn(move || {
            let seen = (
                snapshot.heads().unwrap(),
                snapshot.log_range(&author, 1, 3).unwrap(),
                snapshot.referring(&listing).unwrap()[..3].to_vec(),
                snapshot.arrival_order().unwrap(),
                snapshot.notice(&third).unwrap(),
            );
            assert!(matches!(
                snapshot.put_fork(&ForkEvidence {
                    author,
                    seq: 1,
                    first: vec![1],
                    second: vec![2],
                }),
                Err(StoreError::ReadOnly)
            ));
            (
                snapshot.heads().unwrap(),
                snapshot.notice_count().unwrap(),
                seen,
            )
        })
        .join()
        .unwrap();
        assert_eq!(seen, expected);
        assert_eq!(heads[0].seq, 3);
        assert_eq!(count, 3);
        assert_eq!(store.heads().unwrap()[0].seq, 4);
    }

    // The first layer of an author that has no head yet is torn: all of
    // it goes, and the author's log starts again at seq 1.
    #[test]
    fn torn_first_layer_of_a_new_author_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let federation = FederationId([1; 32]);
        let author = AuthorityId([4; 32]);
        let torn = NoticeId([31; 32]);
        {
            let store = SledStore::open(dir.path(), federation).unwrap();
            let mut record = 1u64.to_be_bytes().to_vec();
            record.extend_from_slice(&credence_protocol::store::suite::envelope(author, 1));
            store
                .tree
                .insert(log_page_key(&author, 0), &torn.0)
                .unwrap();
            store.tree.insert(key(NOTICE, &[&torn.0]), record).unwrap();
            store.tree.flush().unwrap();
        }
        let mut store = SledStore::open(dir.path(), federation).unwrap();
        assert!(!store.contains(&torn).unwrap());
        assert_eq!(store.log_range(&author, 1, 10).unwrap(), vec![]);
        assert!(store.tree.get(log_page_key(&author, 0)).unwrap().is_none());
        append_one(&mut store, author, 1, NoticeId([32; 32]), None);
        assert_eq!(store.log_id(&author, 1).unwrap(), Some(NoticeId([32; 32])));
    }

    // Reopening finds the same heads and count; another federation's
    // roster is refused.
    #[test]
    fn reopen_keeps_records_and_federation() {
        let dir = tempfile::tempdir().unwrap();
        let federation = FederationId([1; 32]);
        let heads = {
            let mut store = SledStore::open(dir.path(), federation).unwrap();
            let mut frontier = Frontier::new();
            frontier.push(NoticeId([9; 32]).digest());
            let head = Head {
                author: AuthorityId([2; 32]),
                seq: 1,
                id: NoticeId([9; 32]),
                issued_at: Timestamp(5),
                frontier,
                budget: 12_345,
                roster: 3,
            };
            store
                .append(Append {
                    id: NoticeId([9; 32]),
                    envelope: b"x",
                    head,
                    listing: None,
                    subject: None,
                    linked: Vec::new(),
                    names: Vec::new(),
                })
                .unwrap();
            store.flush().unwrap();
            store.heads().unwrap()
        };
        let store = SledStore::open(dir.path(), federation).unwrap();
        assert_eq!(store.heads().unwrap(), heads);
        assert_eq!(store.notice_count().unwrap(), 1);
        drop(store);
        let error = SledStore::open(dir.path(), FederationId([7; 32]))
            .err()
            .unwrap();
        assert!(
            matches!(error, StoreError::OtherFederation { .. }),
            "{error}"
        );
    }
}

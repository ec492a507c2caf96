//! Verifiable query answers: a responder sends, for each listing it
//! answers, the signed envelopes of the listing and of every notice the
//! fold uses, each with an inclusion proof to a checkpoint of its author's
//! log; the requester verifies all of it and folds itself
//! ([`check_answer`]), then merges the answers of every responder and
//! names the ones that disagree ([`merge`]). It never takes a responder's
//! word for another authority's listing.
//!
//! A proof is as strong as its checkpoint:
//!
//! - **witnessed**: the checkpoint is cosigned by a quorum of the other
//!   members. Each cosigner holds the log and only ever holds notices that
//!   passed every rule, so a notice proven this way is in the one history
//!   the witnesses saw.
//! - **unwitnessed**: only the author signed the checkpoint (it is newer
//!   than the last one a quorum cosigned).
//! - **unproven**: no checkpoint the responder holds covers the notice yet;
//!   only its author's signature vouches for it.
//!
//! Every level still checks the author's signature, the stateless rules
//! and the authority rules the fold relies on (only the issuer amends,
//! repairs, withdraws and rules); a listing is as strong as the weakest
//! notice folded into it.

use crate::checkpoint::book::Book;
use crate::checkpoint::{self, Checkpoint, Verified};
use crate::codec;
use crate::fold::{self, FoldInput, ListingState, Status};
use crate::governance::chain::Chain;
use crate::model::{AuthorityId, Notice, NoticeId, NoticeKind, SubjectKey};
use crate::query::CheckpointRef;
use crate::roster::Federation;
use crate::store::Store;
use crate::time::Timestamp;
use crate::validate;
use credence_crypto::note::Note;
use credence_crypto::{Digest, NOTICE_DOMAIN, merkle};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The `checkpoint` of a notice no checkpoint covers.
pub const UNPROVEN: u32 = u32::MAX;
/// Most checkpoints in one answer (two per member at most).
pub const ANSWER_CHECKPOINTS_MAX: usize = 2 * crate::roster::MEMBERS_MAX;
/// Most notices in one answer.
pub const ANSWER_NOTICES_MAX: usize = 16_384;
/// Most bytes of envelopes, proofs and checkpoints in one answer: past
/// it, the answer is cut at a listing and says there is more.
pub const ANSWER_PROOF_BYTES_MAX: usize = 6 * 1024 * 1024;

/// One notice of an answer with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenNotice {
    /// The signed envelope.
    pub envelope: serde_bytes::ByteBuf,
    /// Index of the checkpoint of its author's log it is proven against in
    /// the answer's `checkpoints`, or [`UNPROVEN`].
    pub checkpoint: u32,
    /// The inclusion proof of its leaf (index seq − 1) in that checkpoint
    /// (packed: one byte string of 32 bytes a hash).
    #[serde(with = "packed_hashes")]
    pub path: Vec<[u8; 32]>,
}

/// Most hashes in one inclusion path (a log of at most 2^64 leaves).
pub const PATH_HASHES_MAX: usize = 64;

/// Hashes travel packed, as one byte string of 32 bytes each (encoded and
/// decoded as a whole, not byte by byte).
mod packed_hashes {
    use super::PATH_HASHES_MAX;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hashes: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(hashes.as_flattened())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        if bytes.len() % 32 != 0 || bytes.len() > 32 * PATH_HASHES_MAX {
            return Err(serde::de::Error::custom(format!(
                "an inclusion path is at most {PATH_HASHES_MAX} hashes of 32 bytes, not {} bytes",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(32)
            .map(|c| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(c);
                hash
            })
            .collect())
    }
}

/// How strongly a notice or a listing is proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// Only its author's signature vouches for it.
    Unproven,
    /// In a checkpoint its author signed, not yet cosigned by a quorum.
    Unwitnessed,
    /// In a checkpoint a quorum of witnesses cosigned.
    Witnessed,
    /// Held by the requester itself, which checked every rule on arrival
    /// (merged in by [`merge`], never part of an answer).
    Held,
}

impl Proof {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Proof::Unproven => "unproven",
            Proof::Unwitnessed => "unwitnessed",
            Proof::Witnessed => "witnessed",
            Proof::Held => "held",
        }
    }
}

// ----- the responder -----

/// Candidate checkpoints for proofs, per log: the newest quorum-cosigned
/// and the newest held (either may be missing), each with whether a quorum
/// cosigned it.
pub type Candidates = BTreeMap<AuthorityId, Vec<(Note, bool)>>;

/// What a responder proves with: the candidate checkpoints, and per log
/// the tree of its leaves kept between answers ([`merkle::PagedTree`]:
/// two digests per 64 leaves in memory, proofs in O(log² n) hashes and a
/// few of the store's log pages; a tree is extended from the store as the
/// log grows, reading only the new leaves).
#[derive(Clone, Debug, Default)]
pub struct Proofs {
    /// The checkpoints proofs may lead to.
    pub candidates: Candidates,
    /// Per log, its tree so far.
    pub trees: BTreeMap<AuthorityId, merkle::PagedTree>,
    /// Checkpoints (author, size, root) whose root the tree was found to
    /// have: not recomputed for every answer.
    pub matched: BTreeSet<(AuthorityId, u64, [u8; 32])>,
}

impl Proofs {
    /// Proofs against `candidates`, with no tree kept yet.
    pub fn new(candidates: Candidates) -> Proofs {
        Proofs {
            candidates,
            trees: BTreeMap::new(),
            matched: BTreeSet::new(),
        }
    }
}

/// Checkpoint roots remembered as matched before the memory starts over.
const MATCHED_MAX: usize = 65_536;

/// Extends `tree` with the leaves of `author`'s log up to `size`.
pub fn extend<S: Store>(
    store: &S,
    author: &AuthorityId,
    tree: &mut merkle::PagedTree,
    size: u64,
) -> Result<(), S::Error> {
    const CHUNK: u64 = 65_536;
    while tree.len() < size {
        let count = (size - tree.len()).min(CHUNK);
        let ids = store.log_range(author, tree.len() + 1, count as usize)?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            tree.push(id.digest());
        }
    }
    Ok(())
}

/// What the responder adds to an answer: checkpoints and proven notices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proven {
    /// Encoded checkpoint notes.
    pub checkpoints: Vec<serde_bytes::ByteBuf>,
    /// The request's checkpoints proofs lead to, named only.
    pub named: Vec<CheckpointRef>,
    /// The notices with their proofs.
    pub notices: Vec<ProvenNotice>,
    /// How many of the listings given it covers (the rest did not fit).
    pub listings: usize,
}

/// A notice held: its id, envelope, author and seq.
type Held = (NoticeId, Vec<u8>, AuthorityId, u64);

/// A checkpoint a notice of a log may be proven against: carried (its
/// note) or named (one the request offered).
struct Usable<'a> {
    size: u64,
    root: [u8; 32],
    witnessed: bool,
    note: Option<&'a Note>,
}

/// Proves the notices behind `states` (in order, as many listings as fit
/// [`ANSWER_PROOF_BYTES_MAX`] and [`ANSWER_NOTICES_MAX`]) against the
/// best checkpoint that covers each and whose root this store's copy of
/// the log has: among `proofs`' candidates, whose notes the answer
/// carries, and the quorum-cosigned checkpoints the request `offered`
/// (the requester holds them: the answer only names them).
pub fn prove<S: Store>(
    store: &S,
    states: &[ListingState],
    proofs: &mut Proofs,
    offered: &[CheckpointRef],
) -> Result<Proven, S::Error> {
    let candidates = &proofs.candidates;
    // The notices, per listing.
    let mut per_listing: Vec<Vec<Held>> = Vec::new();
    let mut bytes = 0usize;
    let mut count = 0usize;
    for state in states {
        let mut ids = vec![state.id];
        ids.extend(
            state
                .history
                .iter()
                .map(|h| h.id)
                .filter(|id| *id != state.id),
        );
        let mut notices = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(envelope) = store.notice(&id)? else {
                continue;
            };
            let Some((author, seq)) = codec::envelope_author_seq(&envelope) else {
                continue;
            };
            notices.push((id, envelope, author, seq));
        }
        let size: usize = notices.iter().map(|n| n.1.len() + 40 * 32).sum();
        if bytes + size > ANSWER_PROOF_BYTES_MAX / 2 || count + notices.len() > ANSWER_NOTICES_MAX {
            break;
        }
        bytes += size;
        count += notices.len();
        per_listing.push(notices);
    }
    // Per author, the checkpoints this copy of the log can prove to: the
    // request's own (named, not carried) and the candidates.
    let mut needed: BTreeMap<AuthorityId, BTreeSet<u64>> = BTreeMap::new();
    for (_, _, author, seq) in per_listing.iter().flatten() {
        needed.entry(*author).or_default().insert(*seq);
    }
    let mut options: BTreeMap<AuthorityId, Vec<Usable>> = BTreeMap::new();
    for author in needed.keys() {
        let held = store.head(author)?.map_or(0, |h| h.seq);
        // A kept tree catches up with its log a tick at a time; an answer
        // extends it itself by at most PROOF_LEAVES_MAX leaves.
        let kept = proofs.trees.get(author).map_or(0, merkle::PagedTree::len);
        let fits = |size: u64| {
            size <= held && size.saturating_sub(kept) <= checkpoint::proofs::PROOF_LEAVES_MAX
        };
        let mut usable: Vec<Usable> = candidates
            .get(author)
            .into_iter()
            .flatten()
            .filter_map(|(n, w)| {
                let c = Checkpoint::parse_text(&n.text).ok()?;
                Some(Usable {
                    size: c.size,
                    root: c.root.0,
                    witnessed: *w,
                    note: Some(n),
                })
            })
            .filter(|u| fits(u.size))
            .collect();
        if let Some(named) = offered
            .binary_search_by(|c| c.author.cmp(author))
            .ok()
            .map(|i| &offered[i])
            .filter(|c| fits(c.size))
        {
            usable.push(Usable {
                size: named.size,
                root: named.root,
                witnessed: true,
                note: None,
            });
        }
        let Some(largest) = usable.iter().map(|u| u.size).max() else {
            continue;
        };
        let tree = proofs.trees.entry(*author).or_default();
        extend(store, author, tree, largest)?;
        let mut read = checkpoint::proofs::page_reader(store, author);
        let mut matching = Vec::with_capacity(usable.len());
        let mut damaged = false;
        for u in usable {
            let key = (*author, u.size, u.root);
            if proofs.matched.contains(&key) {
                matching.push(u);
                continue;
            }
            match tree.root(u.size, &mut read) {
                Ok(Some(root)) if root == Digest(u.root) => {
                    if proofs.matched.len() >= MATCHED_MAX {
                        proofs.matched.clear();
                    }
                    proofs.matched.insert(key);
                    matching.push(u);
                }
                // This copy is not that log: proofs from it would fail.
                Ok(_) => {}
                Err(merkle::PagedError::Read { source, .. }) => return Err(source),
                Err(merkle::PagedError::Mismatch { .. }) => {
                    damaged = true;
                    break;
                }
            }
        }
        if damaged {
            // The store's pages are not what the tree was built from: the
            // tree is built again from them, and this answer proves none
            // of the log's notices.
            proofs.trees.remove(author);
            continue;
        }
        let mut usable = matching;
        // One per size: witnessed first, then the one not carried.
        usable.sort_by_key(|u| (u.size, !u.witnessed, u.note.is_some()));
        usable.dedup_by_key(|u| u.size);
        options.insert(*author, usable);
    }
    // Per notice: the smallest witnessed checkpoint covering it, else the
    // smallest covering one.
    let choice = |author: &AuthorityId, seq: u64| -> Option<usize> {
        let list = options.get(author)?;
        let covering = |witnessed: bool| {
            list.iter()
                .position(|u| u.size >= seq && (!witnessed || u.witnessed))
        };
        covering(true).or_else(|| covering(false))
    };
    let chosen: Vec<Option<usize>> = per_listing
        .iter()
        .flatten()
        .map(|(_, _, author, seq)| choice(author, *seq))
        .collect();
    // Only the checkpoints some notice uses go in: the carried ones first
    // (in author and size order), then the named ones (in author order).
    let mut used: BTreeSet<(AuthorityId, usize)> = BTreeSet::new();
    for ((_, _, author, _), pick) in per_listing.iter().flatten().zip(&chosen) {
        if let Some(i) = pick {
            used.insert((*author, *i));
        }
    }
    let mut proven = Proven {
        listings: per_listing.len(),
        ..Proven::default()
    };
    let mut index_of: BTreeMap<(AuthorityId, usize), u32> = BTreeMap::new();
    for (author, i) in &used {
        if let Some(note) = options[author][*i].note {
            index_of.insert((*author, *i), proven.checkpoints.len() as u32);
            proven
                .checkpoints
                .push(serde_bytes::ByteBuf::from(note.encode().into_bytes()));
        }
    }
    for (author, i) in &used {
        let u = &options[author][*i];
        if u.note.is_none() {
            let index = (proven.checkpoints.len() + proven.named.len()) as u32;
            index_of.insert((*author, *i), index);
            proven.named.push(CheckpointRef {
                author: *author,
                size: u.size,
                root: u.root,
            });
        }
    }
    for ((_, envelope, author, seq), pick) in per_listing.into_iter().flatten().zip(chosen) {
        let proof = match (pick, proofs.trees.get(&author)) {
            (Some(i), Some(tree)) => {
                let size = options[&author][i].size;
                let read = checkpoint::proofs::page_reader(store, &author);
                match tree.inclusion(seq - 1, size, read) {
                    Ok(path) => path.map(|path| (index_of[&(author, i)], path)),
                    Err(merkle::PagedError::Read { source, .. }) => return Err(source),
                    // Left unproven: the requester sees it as such.
                    Err(merkle::PagedError::Mismatch { .. }) => None,
                }
            }
            _ => None,
        };
        let (checkpoint, path) = match proof {
            Some((index, path)) => (index, path.iter().map(|d| d.0).collect()),
            None => (UNPROVEN, Vec::new()),
        };
        proven.notices.push(ProvenNotice {
            envelope: serde_bytes::ByteBuf::from(envelope),
            checkpoint,
            path,
        });
    }
    Ok(proven)
}

// ----- the requester -----

/// Why an answer is rejected: the first check it failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A checkpoint does not verify.
    #[error("checkpoint {index} is invalid: {reason}")]
    BadCheckpoint {
        /// Its index in the answer.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A notice is not a valid signed notice of this federation.
    #[error("notice {index} is invalid: {reason}")]
    BadNotice {
        /// Its index in the answer.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A notice's inclusion proof does not lead to its checkpoint's root.
    #[error("the inclusion proof of notice {id} does not match the checkpoint it names")]
    BadProof {
        /// The notice.
        id: NoticeId,
    },
    /// A listing is answered without its signed listing notice, or that
    /// notice is not a listing of the subject asked.
    #[error("listing {id} is answered without a signed listing that names this subject: invented")]
    Invented {
        /// The listing.
        id: NoticeId,
    },
    /// A notice the answer carries breaks an authority rule.
    #[error("notice {id} breaks a rule: {reason}")]
    Invalid {
        /// The notice.
        id: NoticeId,
        /// Which rule.
        reason: String,
    },
    /// The status the responder states is not the one its own notices give.
    #[error("listing {id} is answered as {stated} but its notices make it {computed}")]
    Misstated {
        /// The listing.
        id: NoticeId,
        /// As stated.
        stated: String,
        /// As folded from the notices.
        computed: String,
    },
    /// More than the limits.
    #[error("the answer holds {0} checkpoints or notices, over the limit")]
    TooLarge(usize),
}

/// A notice of a checked answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedNotice {
    /// The notice as the fold takes it.
    pub input: FoldInput,
    /// How it is proven.
    pub proof: Proof,
    /// Its envelope.
    pub envelope: Vec<u8>,
}

/// One responder's answer, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedAnswer {
    /// The responder.
    pub responder: AuthorityId,
    /// The checkpoints it gave, verified.
    pub checkpoints: Vec<Verified>,
    /// Every notice it gave, by id.
    pub notices: BTreeMap<NoticeId, CheckedNotice>,
    /// The listings it answered.
    pub listings: Vec<NoticeId>,
    /// It said more listings exist than it answered.
    pub truncated: bool,
}

/// The checkpoints a request offered, as the requester verified them, by
/// log: what an answer's named checkpoints resolve to.
pub type Offered = BTreeMap<AuthorityId, Verified>;

/// Checks one verified-signature answer to a query about `subject`:
/// every checkpoint, envelope and proof, the rules the fold relies on, and
/// that the status it states for each listing is the one its notices give.
/// The checkpoints it names resolve in `offered`.
pub fn check_answer(
    federation: &Federation,
    subject: &SubjectKey,
    answer: &crate::query::QueryAnswer,
    offered: &Offered,
) -> Result<CheckedAnswer, Fault> {
    check_answer_with(
        federation,
        None,
        subject,
        answer,
        &|author| offered.get(author),
        &Book::default(),
        &|_| false,
    )
}

/// [`check_answer`], not verifying again what the requester verified
/// before: the checkpoint signature lines `book` holds for the same
/// checkpoint (a node's own book: the checkpoints it gathered are those
/// answers lead to), and the canonical encoding, signature and stateless
/// rules of an envelope whose id `held` says the requester stores (the id
/// is the hash of the very bytes, which the requester checked when it
/// took them). Proofs, authority rules and statuses are checked all the
/// same. `offered` gives the checkpoint of a log the requester offered.
pub fn check_answer_with<'o>(
    federation: &Federation,
    chain: Option<&Chain>,
    subject: &SubjectKey,
    answer: &crate::query::QueryAnswer,
    offered: &dyn Fn(&AuthorityId) -> Option<&'o Verified>,
    book: &Book,
    held: &dyn Fn(&NoticeId) -> bool,
) -> Result<CheckedAnswer, Fault> {
    if answer.checkpoints.len() > ANSWER_CHECKPOINTS_MAX {
        return Err(Fault::TooLarge(answer.checkpoints.len()));
    }
    if answer.named.len() > crate::query::QUERY_CHECKPOINTS_MAX {
        return Err(Fault::TooLarge(answer.named.len()));
    }
    if answer.notices.len() > ANSWER_NOTICES_MAX {
        return Err(Fault::TooLarge(answer.notices.len()));
    }
    let mut checkpoints = Vec::with_capacity(answer.checkpoints.len() + answer.named.len());
    for (index, bytes) in answer.checkpoints.iter().enumerate() {
        let bad = |e: checkpoint::CheckpointError| Fault::BadCheckpoint {
            index,
            reason: e.to_string(),
        };
        let note = Note::parse(bytes).map_err(|e| bad(e.into()))?;
        let verified = book.verify(&note, federation).map_err(bad)?;
        checkpoints.push(verified);
    }
    for (i, named) in answer.named.iter().enumerate() {
        let index = answer.checkpoints.len() + i;
        if i > 0 && answer.named[i - 1].author >= named.author {
            return Err(Fault::BadCheckpoint {
                index,
                reason: "named checkpoints must be one per log, in author order".into(),
            });
        }
        let resolved = offered(&named.author)
            .filter(|v| v.checkpoint.size == named.size && v.checkpoint.root.0 == named.root);
        let Some(verified) = resolved else {
            return Err(Fault::BadCheckpoint {
                index,
                reason: format!(
                    "it names a checkpoint of {} at size {} the request did not offer",
                    federation.name_of(&named.author),
                    named.size
                ),
            });
        };
        checkpoints.push(verified.clone());
    }
    let mut notices = BTreeMap::new();
    let mut voided = false;
    for (index, proven) in answer.notices.iter().enumerate() {
        let bad = |reason: String| Fault::BadNotice { index, reason };
        let (body, signature) =
            codec::envelope_parts(&proven.envelope).map_err(|e| bad(e.to_string()))?;
        let id = NoticeId::from(merkle::leaf_hash(&proven.envelope));
        // The very bytes the requester stores passed the canonical
        // encoding, signature and stateless checks when it took them.
        let known = held(&id);
        let notice: Notice = if known {
            codec::decode_stored_notice(body)
        } else {
            codec::decode_notice(body)
        }
        .map_err(|e| bad(e.to_string()))?;
        let key = match chain {
            // The rules of the roster version the notice names, and the
            // key the chain gives its seq now.
            Some(chain) => {
                validate::check_signer(&notice, chain).map_err(|e| bad(e.to_string()))?
            }
            None => *federation
                .key_for(&notice.author, notice.seq)
                .ok_or_else(|| bad(format!("{} is not a member", notice.author)))?,
        };
        if !known {
            key.verify(NOTICE_DOMAIN, body, &signature)
                .map_err(|_| bad("its signature does not verify".into()))?;
            // Without the chain: the stateless rules of the current
            // roster; a member removed since is checked by its signature
            // alone.
            if chain.is_none() && federation.member(&notice.author).is_some() {
                validate::check_notice(&notice, federation).map_err(|e| bad(e.to_string()))?;
            }
        }
        // A notice a later roster version made void counts for nothing
        // here, whether the responder knew that version or not.
        if let Some(chain) = chain
            && validate::cutoff_void(&notice, chain).is_some()
        {
            voided = true;
            continue;
        }
        let proof = if proven.checkpoint == UNPROVEN {
            Proof::Unproven
        } else {
            let c = checkpoints
                .get(proven.checkpoint as usize)
                .ok_or(Fault::BadProof { id })?;
            let path: Vec<Digest> = proven.path.iter().map(|d| Digest(*d)).collect();
            let fits = c.author == notice.author
                && notice.seq <= c.checkpoint.size
                && merkle::verify_inclusion(
                    &id.digest(),
                    notice.seq - 1,
                    c.checkpoint.size,
                    &path,
                    &c.checkpoint.root,
                );
            if !fits {
                return Err(Fault::BadProof { id });
            }
            if c.witnessed(federation) {
                Proof::Witnessed
            } else {
                Proof::Unwitnessed
            }
        };
        notices.insert(
            id,
            CheckedNotice {
                input: FoldInput {
                    id,
                    notice: Arc::new(notice),
                },
                proof,
                envelope: proven.envelope.to_vec(),
            },
        );
    }
    let checked = CheckedAnswer {
        responder: answer.responder,
        checkpoints,
        listings: answer
            .listings
            .iter()
            .map(|l| l.id)
            .filter(|id| notices.contains_key(id))
            .collect(),
        truncated: answer.truncated,
        notices,
    };
    // With a notice the requester holds void in the answer, the responder
    // may have answered before it knew the roster version that voided it:
    // its statements are not compared (the requester folds for itself all
    // the same).
    let stated = if voided {
        &[][..]
    } else {
        &answer.listings[..]
    };
    for listed in stated {
        let (state, _) = fold_listing(&checked.notices, &listed.id, subject, answer.answered_at)?;
        if state.status != listed.status || state.enforceable != listed.enforceable {
            return Err(Fault::Misstated {
                id: listed.id,
                stated: describe(listed.status, listed.enforceable),
                computed: describe(state.status, state.enforceable),
            });
        }
    }
    Ok(checked)
}

fn describe(status: Status, enforceable: bool) -> String {
    format!(
        "{}{}",
        status.name(),
        if enforceable { ", enforceable" } else { "" }
    )
}

/// Folds listing `id` from `notices` at `t`, checking the authority rules
/// the fold relies on; returns its state and the weakest proof used.
pub fn fold_listing(
    notices: &BTreeMap<NoticeId, CheckedNotice>,
    id: &NoticeId,
    subject: &SubjectKey,
    t: Timestamp,
) -> Result<(ListingState, Proof), Fault> {
    let listing = notices.get(id).ok_or(Fault::Invented { id: *id })?;
    if !matches!(&listing.input.notice.kind, NoticeKind::List(_)) {
        return Err(Fault::Invented { id: *id });
    }
    let issuer = listing.input.notice.author;
    let mut proof = listing.proof;
    let mut referring = Vec::new();
    for (nid, n) in notices {
        let refers = match &n.input.notice.kind {
            NoticeKind::Rule { objection, .. } => notices.get(objection).is_some_and(|o| {
                matches!(&o.input.notice.kind, NoticeKind::Object { listing, .. } if listing == id)
            }),
            kind => kind.listing_reference() == Some(*id),
        };
        if !refers {
            continue;
        }
        let issuer_only = matches!(
            n.input.notice.kind,
            NoticeKind::Amend { .. }
                | NoticeKind::Repair { .. }
                | NoticeKind::Withdraw { .. }
                | NoticeKind::Rule { .. }
        );
        if issuer_only && n.input.notice.author != issuer {
            return Err(Fault::Invalid {
                id: *nid,
                reason: format!(
                    "only the issuer {issuer} may {} listing {id}",
                    n.input.notice.kind.name()
                ),
            });
        }
        proof = proof.min(n.proof);
        referring.push(n.input.clone());
    }
    let state = fold::fold(&listing.input, &referring, t);
    // Of this subject, or of an organisation that records them as a
    // linked person (as the listing stands, amendments applied).
    if state.listing.naming(subject).is_none() {
        return Err(Fault::Invented { id: *id });
    }
    Ok((state, proof))
}

/// A listing as the requester computed it from every accepted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedListing {
    /// Its state at the requester's time.
    pub state: ListingState,
    /// The weakest proof among the notices folded.
    pub proof: Proof,
    /// The responders whose answers held it.
    pub answered_by: Vec<AuthorityId>,
}

/// One responder left out a notice that another answer holds and that a
/// checkpoint it gave covers (it holds that notice, or its checkpoint
/// lies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    /// The responder that left it out.
    pub responder: AuthorityId,
    /// The notice left out.
    pub notice: NoticeId,
    /// The listing it is about.
    pub listing: NoticeId,
    /// The size of the responder's checkpoint of the notice's log.
    pub covered_by: u64,
}

/// The notices the requester's own replica holds about `listings` (each
/// listing and every notice about it), as [`Proof::Held`]: a requester
/// knows what it holds, so a responder cannot hide it.
pub fn held_notices<S: Store>(
    replica: &crate::replica::Replica<S>,
    listings: &BTreeSet<NoticeId>,
    t: Timestamp,
) -> Result<BTreeMap<NoticeId, CheckedNotice>, crate::replica::ReplicaError<S::Error>> {
    let mut held = BTreeMap::new();
    for id in listings {
        let Some(state) = replica.listing_state(id, t)? else {
            continue;
        };
        for entry in &state.history {
            let Some(decoded) = replica.load_decoded(&entry.id)? else {
                continue;
            };
            held.insert(
                entry.id,
                CheckedNotice {
                    input: FoldInput {
                        id: entry.id,
                        notice: Arc::new(decoded.notice),
                    },
                    proof: Proof::Held,
                    envelope: decoded.bytes,
                },
            );
        }
    }
    Ok(held)
}

/// Merges checked answers: every listing any answer holds is folded at `t`
/// from the union of their notices and of `held` (what the requester holds
/// itself, [`held_notices`]); omissions a responder's own checkpoints
/// prove are reported.
pub fn merge(
    answers: &[CheckedAnswer],
    held: &BTreeMap<NoticeId, CheckedNotice>,
    subject: &SubjectKey,
    t: Timestamp,
) -> (Vec<MergedListing>, Vec<Disagreement>) {
    // Per notice, the strongest proof an answer gave; what only the
    // requester holds counts as held.
    let mut union: BTreeMap<NoticeId, CheckedNotice> = BTreeMap::new();
    for answer in answers {
        for (id, n) in &answer.notices {
            match union.get(id) {
                Some(known) if known.proof >= n.proof => {}
                _ => {
                    union.insert(*id, n.clone());
                }
            }
        }
    }
    for (id, n) in held {
        union.entry(*id).or_insert_with(|| n.clone());
    }
    let listings: BTreeSet<NoticeId> = answers.iter().flat_map(|a| a.listings.clone()).collect();
    let mut merged = Vec::new();
    for id in &listings {
        let Ok((state, proof)) = fold_listing(&union, id, subject, t) else {
            continue;
        };
        merged.push(MergedListing {
            answered_by: answers
                .iter()
                .filter(|a| a.listings.contains(id))
                .map(|a| a.responder)
                .collect(),
            state,
            proof,
        });
    }
    merged.sort_by(|a, b| {
        b.state
            .issued_at
            .cmp(&a.state.issued_at)
            .then(a.state.id.cmp(&b.state.id))
    });
    let mut disagreements = Vec::new();
    for answer in answers.iter().filter(|a| !a.truncated) {
        let covered = |author: &AuthorityId| {
            answer
                .checkpoints
                .iter()
                .filter(|c| c.author == *author)
                .map(|c| c.checkpoint.size)
                .max()
        };
        for m in &merged {
            for entry in &m.state.history {
                if answer.notices.contains_key(&entry.id) {
                    continue;
                }
                let Some(n) = union.get(&entry.id) else {
                    continue;
                };
                let author = n.input.notice.author;
                if let Some(size) = covered(&author)
                    && n.input.notice.seq <= size
                {
                    disagreements.push(Disagreement {
                        responder: answer.responder,
                        notice: entry.id,
                        listing: m.state.id,
                        covered_by: size,
                    });
                }
            }
        }
    }
    (merged, disagreements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NOTICE_VERSION, SubjectKind};
    use crate::query::{self, QUERY_VERSION, QueryAnswer, QueryRequest};
    use crate::replica::Replica;
    use crate::store::MemStore;
    use crate::testkit::{self, TestFederation};
    use crate::time::DAY_MS;

    const T0: Timestamp = Timestamp(1_780_000_000_000);

    /// Member 0 lists company 5; a day later member 1 files the company's
    /// objection (open: the listing is suspended). Member 2 holds both,
    /// and checkpoints of both logs cosigned by a quorum (two of the other
    /// three members). Returns the federation, member 2's replica, the
    /// listing id and the candidates.
    fn world() -> (TestFederation, Replica<MemStore>, NoticeId, Candidates) {
        let test = testkit::federation(5, 4);
        let notice = |author: usize, kind| Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: test.federation.id(),
            author: test.author(author),
            seq: 1,
            prev: NoticeId::default(),
            issued_at: T0.plus_ms(author as u64 * DAY_MS),
            kind,
        };
        let (list_id, list) = testkit::sign(
            &test.keys[0],
            &notice(0, NoticeKind::List(testkit::listing(5, "food-drug", T0))),
        );
        let (_, object) = testkit::sign(
            &test.keys[1],
            &notice(
                1,
                NoticeKind::Object {
                    listing: list_id,
                    grounds: "the goods were not ours".into(),
                    respond_by: T0.plus_ms(40 * DAY_MS),
                },
            ),
        );
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        replica.ingest_batch(&[&list, &object]).expect("ingest");
        let mut candidates = Candidates::new();
        for (author, witnesses) in [(0, [1, 2]), (1, [0, 2])] {
            let note =
                testkit::checkpoint_note(&test, replica.store(), author, &witnesses, 1_790_000_000);
            candidates.insert(test.author(author), vec![(note, true)]);
        }
        (test, replica, list_id, candidates)
    }

    fn subject() -> SubjectKey {
        SubjectKey::new(SubjectKind::LegalPerson, &testkit::uscc(5)).expect("subject")
    }

    /// Member 2's honest answer to member 1's query about company 5.
    fn honest(test: &TestFederation, replica: &Replica<MemStore>, c: &Candidates) -> QueryAnswer {
        honest_offered(test, replica, c, Vec::new())
    }

    /// The same, the request offering `offered`.
    fn honest_offered(
        test: &TestFederation,
        replica: &Replica<MemStore>,
        c: &Candidates,
        offered: Vec<query::CheckpointRef>,
    ) -> QueryAnswer {
        let now = T0.plus_ms(2 * DAY_MS);
        let request = QueryRequest {
            version: QUERY_VERSION,
            federation: test.federation.id(),
            requester: test.author(1),
            subject_kind: SubjectKind::LegalPerson,
            subject_id: testkit::uscc(5),
            purpose: "procurement".into(),
            legal_basis: "Government Procurement Law art. 22".into(),
            issued_at: now,
            nonce: 1,
            page: 0,
        }
        .sign(&test.keys[1])
        .expect("request");
        query::answer(
            replica,
            &request,
            &offered,
            &test.keys[2],
            now,
            &mut Proofs::new(c.clone()),
        )
        .expect("store")
        .expect("answer")
        .answer
    }

    #[test]
    fn a_kept_tree_that_no_longer_matches_the_store_is_dropped_and_proves_nothing() {
        let test = testkit::federation(5, 4);
        let author = test.author(0);
        let issue = |replica: &mut Replica<MemStore>, names: std::ops::Range<u64>| {
            for n in names {
                replica
                    .issue(
                        &test.keys[0],
                        NoticeKind::List(testkit::listing(n, "food-drug", T0)),
                        T0,
                    )
                    .expect("issued");
            }
        };
        // Member 0's log of 130 listings (two pages and two), checkpointed
        // at 100 (inside the second page), and another copy of 130 made of
        // other listings.
        let mut held = Replica::new(test.federation.clone(), MemStore::new());
        issue(&mut held, 0..100);
        let note = testkit::checkpoint_note(&test, held.store(), 0, &[1, 2], 1_790_000_000);
        issue(&mut held, 100..130);
        let mut other = Replica::new(test.federation.clone(), MemStore::new());
        issue(&mut other, 1_000..1_130);
        let mut proofs = Proofs::new([(author, vec![(note, true)])].into_iter().collect());
        // The tree kept is the other copy's: the store changed under it.
        let mut kept = merkle::PagedTree::new();
        extend(other.store(), &author, &mut kept, 130).expect("extended");
        proofs.trees.insert(author, kept);
        let listing = held
            .store()
            .log_id(&author, 3)
            .expect("store")
            .expect("seq 3");
        let state = held
            .listing_state(&listing, T0)
            .expect("store")
            .expect("held");
        let proven =
            prove(held.store(), std::slice::from_ref(&state), &mut proofs, &[]).expect("store");
        assert_eq!(proven.notices.len(), 1);
        assert_eq!(proven.notices[0].checkpoint, UNPROVEN);
        assert!(proven.checkpoints.is_empty());
        assert!(
            !proofs.trees.contains_key(&author),
            "dropped, to be built again"
        );
        // The next answer builds the tree from the store and proves.
        let proven = prove(held.store(), &[state], &mut proofs, &[]).expect("store");
        assert_eq!(proven.notices[0].checkpoint, 0);
        assert_eq!(
            proofs.trees.get(&author).map(merkle::PagedTree::len),
            Some(100)
        );
    }

    #[test]
    fn an_honest_answer_checks_and_its_listing_is_folded_here() {
        let (test, replica, listing, candidates) = world();
        let answer = honest(&test, &replica, &candidates);
        assert_eq!(answer.notices.len(), 2);
        let checked =
            check_answer(&test.federation, &subject(), &answer, &Offered::new()).expect("honest");
        assert!(
            checked
                .notices
                .values()
                .all(|n| n.proof == Proof::Witnessed)
        );
        let (merged, disagreements) =
            merge(&[checked], &BTreeMap::new(), &subject(), answer.answered_at);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].state.id, listing);
        assert_eq!(merged[0].state.status, Status::Suspended);
        assert!(!merged[0].state.enforceable);
        assert_eq!(merged[0].proof, Proof::Witnessed);
        assert!(disagreements.is_empty());
        // Without any checkpoint the notices are unproven, never dropped.
        let bare = honest(&test, &replica, &Candidates::new());
        let checked =
            check_answer(&test.federation, &subject(), &bare, &Offered::new()).expect("honest");
        assert!(checked.notices.values().all(|n| n.proof == Proof::Unproven));
    }

    /// The candidates as a request offers them, verified.
    fn offer_of(test: &TestFederation, c: &Candidates) -> (Vec<query::CheckpointRef>, Offered) {
        let mut refs = Vec::new();
        let mut offered = Offered::new();
        for (author, notes) in c {
            let verified = checkpoint::verify_note(&notes[0].0, &test.federation).expect("valid");
            refs.push(testkit::checkpoint_ref(test, &notes[0].0));
            offered.insert(*author, verified);
        }
        (refs, offered)
    }

    #[test]
    fn offered_checkpoints_are_named_not_carried() {
        let (test, replica, _, candidates) = world();
        let (refs, offered) = offer_of(&test, &candidates);
        let answer = honest_offered(&test, &replica, &candidates, refs.clone());
        assert!(answer.checkpoints.is_empty(), "the notes stay home");
        assert_eq!(answer.named, refs);
        let checked =
            check_answer(&test.federation, &subject(), &answer, &offered).expect("honest");
        assert!(
            checked
                .notices
                .values()
                .all(|n| n.proof == Proof::Witnessed)
        );
        assert_eq!(checked.checkpoints.len(), 2);
        // Without the offered checkpoints at hand, or with another root
        // for the same size, the names do not resolve.
        let fault = check_answer(&test.federation, &subject(), &answer, &Offered::new());
        assert!(
            matches!(&fault, Err(Fault::BadCheckpoint { reason, .. }) if reason.contains("did not offer")),
            "{fault:?}"
        );
        let mut other = answer.clone();
        other.named[0].root[0] ^= 1;
        assert!(matches!(
            check_answer(&test.federation, &subject(), &other, &offered),
            Err(Fault::BadCheckpoint { .. })
        ));
        // Two names for one log.
        let mut twice = answer.clone();
        twice.named[1] = twice.named[0];
        assert!(matches!(
            check_answer(&test.federation, &subject(), &twice, &offered),
            Err(Fault::BadCheckpoint { .. })
        ));
        // An offer this copy of the log does not match (another root) is
        // not named: the responder carries its own checkpoint instead.
        let mut wrong = refs.clone();
        wrong[0].root = [7; 32];
        let answer = honest_offered(&test, &replica, &candidates, wrong);
        assert_eq!(answer.named, vec![refs[1]]);
        assert_eq!(answer.checkpoints.len(), 1);
        check_answer(&test.federation, &subject(), &answer, &offered).expect("honest");
        // An offer larger than this copy of the log is not named either.
        let mut ahead = refs.clone();
        ahead[1].size = 9;
        let answer = honest_offered(&test, &replica, &candidates, ahead);
        assert_eq!(answer.named, vec![refs[0]]);
    }

    #[test]
    fn an_invented_listing_is_rejected() {
        let (test, replica, _, candidates) = world();
        let mut answer = honest(&test, &replica, &candidates);
        let mut invented = answer.listings[0].clone();
        invented.id = NoticeId([9; 32]);
        invented.status = Status::Active;
        invented.enforceable = true;
        answer.listings.push(invented);
        assert_eq!(
            check_answer(&test.federation, &subject(), &answer, &Offered::new()),
            Err(Fault::Invented {
                id: NoticeId([9; 32])
            })
        );
        // A listing of another subject passed off as this one's, too.
        let (other, _) = testkit::sign(
            &test.keys[0],
            &Notice {
                version: NOTICE_VERSION,
                roster: 0,
                federation: test.federation.id(),
                author: test.author(0),
                seq: 3,
                prev: NoticeId::default(),
                issued_at: T0,
                kind: NoticeKind::List(testkit::listing(6, "food-drug", T0)),
            },
        );
        let mut answer = honest(&test, &replica, &candidates);
        answer.listings[0].id = other;
        assert!(check_answer(&test.federation, &subject(), &answer, &Offered::new()).is_err());
    }

    #[test]
    fn a_misstated_status_is_rejected() {
        let (test, replica, listing, candidates) = world();
        let mut answer = honest(&test, &replica, &candidates);
        answer.listings[0].status = Status::Active;
        answer.listings[0].enforceable = true;
        let fault =
            check_answer(&test.federation, &subject(), &answer, &Offered::new()).unwrap_err();
        assert_eq!(
            fault,
            Fault::Misstated {
                id: listing,
                stated: "active, enforceable".into(),
                computed: "suspended".into(),
            }
        );
    }

    #[test]
    fn a_missing_follow_up_is_outvoted_and_reported() {
        let (test, replica, listing, candidates) = world();
        let truth = honest(&test, &replica, &candidates);
        // The liar drops the objection and states what the rest gives.
        let mut lie = truth.clone();
        lie.responder = test.author(3);
        lie.notices.retain(|n| {
            codec::envelope_author_seq(&n.envelope)
                .is_some_and(|(author, _)| author == test.author(0))
        });
        lie.listings[0].status = Status::Active;
        lie.listings[0].enforceable = true;
        let checked_lie =
            check_answer(&test.federation, &subject(), &lie, &Offered::new()).expect("consistent");
        let checked_truth =
            check_answer(&test.federation, &subject(), &truth, &Offered::new()).expect("honest");
        let (merged, disagreements) = merge(
            &[checked_lie, checked_truth],
            &BTreeMap::new(),
            &subject(),
            truth.answered_at,
        );
        // The requester computes the true status from the union.
        assert_eq!(merged[0].state.status, Status::Suspended);
        assert!(!merged[0].state.enforceable);
        // The liar's own checkpoint of member 1's log (size 1) covers the
        // objection it left out.
        assert_eq!(disagreements.len(), 1);
        assert_eq!(disagreements[0].responder, test.author(3));
        assert_eq!(disagreements[0].listing, listing);
        assert_eq!(disagreements[0].covered_by, 1);
        // Alone, the liar is still caught by what the requester holds.
        let held = held_notices(
            &replica,
            &[listing].into_iter().collect(),
            truth.answered_at,
        )
        .expect("held");
        assert_eq!(held.len(), 2);
        let checked_lie =
            check_answer(&test.federation, &subject(), &lie, &Offered::new()).expect("consistent");
        let (merged, disagreements) = merge(&[checked_lie], &held, &subject(), truth.answered_at);
        assert_eq!(merged[0].state.status, Status::Suspended);
        assert_eq!(
            merged[0].proof,
            Proof::Witnessed,
            "the liar's own notices are proven"
        );
        assert_eq!(disagreements.len(), 1);
    }

    #[test]
    fn proofs_that_do_not_lead_to_the_checkpoint_are_rejected() {
        let (test, replica, _, candidates) = world();
        let answer = honest(&test, &replica, &candidates);
        // A path that leads elsewhere (a one-notice log's path is empty).
        let mut bad = answer.clone();
        bad.notices[0].path.push([1; 32]);
        assert!(matches!(
            check_answer(&test.federation, &subject(), &bad, &Offered::new()),
            Err(Fault::BadProof { .. })
        ));
        // A checkpoint index that names nothing.
        let mut bad = answer.clone();
        bad.notices[0].checkpoint = 7;
        assert!(matches!(
            check_answer(&test.federation, &subject(), &bad, &Offered::new()),
            Err(Fault::BadProof { .. })
        ));
        // A cosignature line that does not verify.
        let mut bad = answer.clone();
        let mut note = Note::parse(&bad.checkpoints[0]).expect("note");
        let last = note.signatures.len() - 1;
        note.signatures[last].bytes[9] ^= 1;
        bad.checkpoints[0] = serde_bytes::ByteBuf::from(note.encode().into_bytes());
        assert!(matches!(
            check_answer(&test.federation, &subject(), &bad, &Offered::new()),
            Err(Fault::BadCheckpoint { .. })
        ));
        // An envelope whose signature does not verify.
        let mut bad = answer;
        let end = bad.notices[0].envelope.len() - 1;
        bad.notices[0].envelope[end] ^= 1;
        assert!(matches!(
            check_answer(&test.federation, &subject(), &bad, &Offered::new()),
            Err(Fault::BadNotice { .. })
        ));
    }

    #[test]
    fn a_withdrawal_by_another_member_is_rejected() {
        let (test, replica, listing, candidates) = world();
        let mut answer = honest(&test, &replica, &candidates);
        let (_, forged) = testkit::sign(
            &test.keys[2],
            &Notice {
                version: NOTICE_VERSION,
                roster: 0,
                federation: test.federation.id(),
                author: test.author(2),
                seq: 1,
                prev: NoticeId::default(),
                issued_at: T0.plus_ms(DAY_MS),
                kind: NoticeKind::Withdraw {
                    listing,
                    reason: "paid".into(),
                    restore_reputation: true,
                },
            },
        );
        answer.notices.push(ProvenNotice {
            envelope: serde_bytes::ByteBuf::from(forged),
            checkpoint: UNPROVEN,
            path: Vec::new(),
        });
        assert!(matches!(
            check_answer(&test.federation, &subject(), &answer, &Offered::new()),
            Err(Fault::Invalid { .. })
        ));
    }
}

//! Proofs over a replica's copy of a member's log, for auditors and
//! department systems: the root at a size, inclusion of a notice, the
//! consistency of two sizes, and a range of entries. They are computed
//! from the leaves (the notice ids in seq order) the store holds, through
//! a paged tree (`merkle::PagedTree`): the one the node keeps of each log,
//! or one built for the answer. They are checked with
//! `credence_crypto::merkle::verify_inclusion` and `verify_consistency`
//! against the roots of signed checkpoints.

use crate::model::{AuthorityId, NoticeId};
use crate::store::Store;
use credence_crypto::{Digest, merkle};

/// The largest log a proof is built over when the node's kept tree cannot
/// serve it (its leaves are then read in full).
pub const PROOF_LEAVES_MAX: u64 = 4_000_000;

/// Entries one range answer gives at most.
pub const ENTRIES_MAX: u64 = 512;

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E: std::error::Error + 'static> {
    /// The replica holds fewer notices of that log.
    #[error("this node holds {held} notices of that log; {asked} were asked for")]
    NotHeld {
        /// Notices held.
        held: u64,
        /// The size asked.
        asked: u64,
    },
    /// The request does not make sense (what is wrong is said).
    #[error("{0}")]
    Bad(String),
    /// The node's kept tree of the log does not reach the size asked yet
    /// (it grows from the store after a start): a tree built for the
    /// answer serves it instead.
    #[error("the kept tree of this log holds {kept} leaves; {asked} were asked for")]
    NotKept {
        /// Leaves the kept tree holds.
        kept: u64,
        /// The size asked.
        asked: u64,
    },
    /// The store's copy of the log no longer matches the tree kept of it.
    #[error("this node's copy of the log is damaged: {0}")]
    Damaged(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(E),
}

/// That a notice is leaf `seq - 1` of the log of `size` whose root is
/// `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The log.
    pub author: AuthorityId,
    /// The notice's seq (its leaf index plus one).
    pub seq: u64,
    /// The notice id (its leaf hash).
    pub id: NoticeId,
    /// The tree size the proof is for.
    pub size: u64,
    /// The root at that size.
    pub root: Digest,
    /// The audit path, leaf to root (RFC 9162 section 2.1.3).
    pub path: Vec<Digest>,
}

/// That the log at `from` is a prefix of the log at `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consistency {
    /// The log.
    pub author: AuthorityId,
    /// The smaller size.
    pub from: u64,
    /// Its root.
    pub from_root: Digest,
    /// The larger size.
    pub to: u64,
    /// Its root.
    pub to_root: Digest,
    /// The consistency path (RFC 9162 section 2.1.4).
    pub path: Vec<Digest>,
}

/// Where the tree a proof is computed from comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// The tree the node keeps of the log (grown as the log grows): a
    /// proof reads a few of the store's log pages, whatever the log's
    /// size. A size the tree does not reach yet is [`ProofError::NotKept`].
    Kept(&'a merkle::PagedTree),
    /// A tree built from the store's leaves for this one answer: reads the
    /// log up to the size asked, at most [`PROOF_LEAVES_MAX`] leaves.
    Built,
}

/// `author`'s tree up to `size`, from `source`.
fn tree_for<'a, S: Store>(
    store: &S,
    author: &AuthorityId,
    size: u64,
    source: Source<'a>,
) -> Result<std::borrow::Cow<'a, merkle::PagedTree>, ProofError<S::Error>> {
    let held = store
        .head(author)
        .map_err(ProofError::Store)?
        .map_or(0, |h| h.seq);
    if size > held {
        return Err(ProofError::NotHeld { held, asked: size });
    }
    match source {
        Source::Kept(tree) if tree.len() >= size => Ok(std::borrow::Cow::Borrowed(tree)),
        Source::Kept(tree) => Err(ProofError::NotKept {
            kept: tree.len(),
            asked: size,
        }),
        Source::Built => {
            if size > PROOF_LEAVES_MAX {
                return Err(ProofError::Bad(format!(
                    "proofs are built over logs of at most {PROOF_LEAVES_MAX} notices \
                     while the node's kept tree is not ready"
                )));
            }
            let mut tree = merkle::PagedTree::new();
            crate::proven::extend(store, author, &mut tree, size).map_err(ProofError::Store)?;
            if tree.len() != size {
                return Err(ProofError::NotHeld {
                    held: tree.len(),
                    asked: size,
                });
            }
            Ok(std::borrow::Cow::Owned(tree))
        }
    }
}

/// Reads page `page` of `author`'s log (its [`merkle::PAGE_LEAVES`]
/// leaves) from the store, for a paged tree.
pub fn page_reader<'s, S: Store>(
    store: &'s S,
    author: &'s AuthorityId,
) -> impl FnMut(u64) -> Result<Vec<Digest>, S::Error> + 's {
    move |page| {
        let from = page.saturating_mul(merkle::PAGE_LEAVES).saturating_add(1);
        let ids = store.log_range(author, from, merkle::PAGE_LEAVES as usize)?;
        Ok(ids.iter().map(NoticeId::digest).collect())
    }
}

fn paged<E: std::error::Error + 'static>(error: merkle::PagedError<E>) -> ProofError<E> {
    match error {
        merkle::PagedError::Read { source, .. } => ProofError::Store(source),
        mismatch @ merkle::PagedError::Mismatch { .. } => ProofError::Damaged(mismatch.to_string()),
    }
}

/// The root of `author`'s log at `size` (at most the size held).
pub fn root_at<S: Store>(
    store: &S,
    author: &AuthorityId,
    size: u64,
) -> Result<Digest, ProofError<S::Error>> {
    let tree = tree_for(store, author, size, Source::Built)?;
    tree.root(size, page_reader(store, author))
        .map_err(paged)?
        .ok_or(ProofError::NotHeld {
            held: tree.len(),
            asked: size,
        })
}

/// The roots of `author`'s log at each of `sizes` that it holds, in one
/// pass over its leaves (sizes past what is held are left out): an audit
/// checks many checkpoints of one log at the cost of reading it once.
pub fn roots_at<S: Store>(
    store: &S,
    author: &AuthorityId,
    sizes: &std::collections::BTreeSet<u64>,
) -> Result<std::collections::BTreeMap<u64, Digest>, ProofError<S::Error>> {
    let held = store
        .head(author)
        .map_err(ProofError::Store)?
        .map_or(0, |h| h.seq);
    let mut roots = std::collections::BTreeMap::new();
    let Some(largest) = sizes.range(..=held).next_back().copied() else {
        return Ok(roots);
    };
    let mut frontier = merkle::Frontier::new();
    if sizes.contains(&0) {
        roots.insert(0, frontier.root());
    }
    // Read a chunk at a time: memory stays bounded whatever the log.
    const CHUNK: u64 = 65_536;
    while frontier.size() < largest {
        let count = (largest - frontier.size()).min(CHUNK);
        let ids = store
            .log_range(author, frontier.size() + 1, count as usize)
            .map_err(ProofError::Store)?;
        if ids.is_empty() {
            return Err(ProofError::NotHeld {
                held: frontier.size(),
                asked: largest,
            });
        }
        for id in ids.iter().take(count as usize) {
            frontier.push(id.digest());
            if sizes.contains(&frontier.size()) {
                roots.insert(frontier.size(), frontier.root());
            }
        }
    }
    Ok(roots)
}

/// The inclusion proof of the notice at `seq` in `author`'s log at `size`
/// (`None`: the size held), from the tree `source` gives.
pub fn inclusion<S: Store>(
    store: &S,
    author: &AuthorityId,
    seq: u64,
    size: Option<u64>,
    source: Source<'_>,
) -> Result<Inclusion, ProofError<S::Error>> {
    let size = match size {
        Some(size) => size,
        None => {
            let held = store
                .head(author)
                .map_err(ProofError::Store)?
                .map_or(0, |h| h.seq);
            if seq > held {
                return Err(ProofError::NotHeld { held, asked: seq });
            }
            held
        }
    };
    if seq == 0 || seq > size {
        return Err(ProofError::Bad(format!(
            "seq {seq} is not in a log of {size} notices"
        )));
    }
    let tree = tree_for(store, author, size, source)?;
    let mut read = page_reader(store, author);
    let missing = || ProofError::Bad(format!("seq {seq} is not in the log"));
    let path = tree
        .inclusion(seq - 1, size, &mut read)
        .map_err(paged)?
        .ok_or_else(missing)?;
    let root = tree
        .root(size, &mut read)
        .map_err(paged)?
        .ok_or_else(missing)?;
    let id = store
        .log_id(author, seq)
        .map_err(ProofError::Store)?
        .ok_or_else(missing)?;
    if !merkle::verify_inclusion(&id.digest(), seq - 1, size, &path, &root) {
        return Err(ProofError::Damaged(format!(
            "the id held at seq {seq} is not the leaf its kept tree proves"
        )));
    }
    Ok(Inclusion {
        author: *author,
        seq,
        id,
        size,
        root,
        path,
    })
}

/// The consistency proof of `author`'s log from `from` to `to` notices,
/// from the tree `source` gives.
pub fn consistency<S: Store>(
    store: &S,
    author: &AuthorityId,
    from: u64,
    to: u64,
    source: Source<'_>,
) -> Result<Consistency, ProofError<S::Error>> {
    if from > to {
        return Err(ProofError::Bad(format!("from ({from}) is past to ({to})")));
    }
    let tree = tree_for(store, author, to, source)?;
    let mut read = page_reader(store, author);
    let none = || ProofError::Bad(format!("no consistency proof from {from} to {to}"));
    let path = tree
        .consistency(from, to, &mut read)
        .map_err(paged)?
        .ok_or_else(none)?;
    let from_root = tree
        .root(from, &mut read)
        .map_err(paged)?
        .ok_or_else(none)?;
    let to_root = tree.root(to, &mut read).map_err(paged)?.ok_or_else(none)?;
    Ok(Consistency {
        author: *author,
        from,
        from_root,
        to,
        to_root,
        path,
    })
}

/// The envelopes of `author`'s log from `from` (at least 1), at most
/// [`ENTRIES_MAX`], stopping at the end of what is held.
pub fn entries<S: Store>(
    store: &S,
    author: &AuthorityId,
    from: u64,
    count: u64,
) -> Result<Vec<Vec<u8>>, ProofError<S::Error>> {
    if from == 0 || count == 0 || count > ENTRIES_MAX {
        return Err(ProofError::Bad(format!(
            "a range starts at seq 1 or later and holds 1 to {ENTRIES_MAX} entries"
        )));
    }
    let ids = store
        .log_range(author, from, usize::try_from(count).unwrap_or(usize::MAX))
        .map_err(ProofError::Store)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match store.notice(&id).map_err(ProofError::Store)? {
            Some(bytes) => out.push(bytes),
            None => break,
        }
    }
    Ok(out)
}

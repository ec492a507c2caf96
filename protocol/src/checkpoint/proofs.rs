//! Proofs over a replica's copy of a member's log, for auditors and
//! department systems: the root at a size, inclusion of a notice, the
//! consistency of two sizes, and a range of entries. They are computed
//! from the leaves (the notice ids in seq order) the store holds, and are
//! checked with `credence_crypto::merkle::verify_inclusion` and
//! `verify_consistency` against the roots of signed checkpoints.

use crate::model::{AuthorityId, NoticeId};
use crate::store::Store;
use credence_crypto::{Digest, merkle};

/// The largest log a proof is computed over (its leaves are read in full).
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

fn leaves<S: Store>(
    store: &S,
    author: &AuthorityId,
    size: u64,
) -> Result<Vec<Digest>, ProofError<S::Error>> {
    let held = store
        .head(author)
        .map_err(ProofError::Store)?
        .map_or(0, |h| h.seq);
    if size > held {
        return Err(ProofError::NotHeld { held, asked: size });
    }
    if size > PROOF_LEAVES_MAX {
        return Err(ProofError::Bad(format!(
            "proofs are given over logs of at most {PROOF_LEAVES_MAX} notices"
        )));
    }
    let count = usize::try_from(size).map_err(|_| ProofError::Bad("size too large".into()))?;
    let ids = store
        .log_range(author, 1, count)
        .map_err(ProofError::Store)?;
    if ids.len() != count {
        return Err(ProofError::NotHeld {
            held: ids.len() as u64,
            asked: size,
        });
    }
    Ok(ids.iter().map(NoticeId::digest).collect())
}

/// The root of `author`'s log at `size` (at most the size held).
pub fn root_at<S: Store>(
    store: &S,
    author: &AuthorityId,
    size: u64,
) -> Result<Digest, ProofError<S::Error>> {
    Ok(merkle::root(&leaves(store, author, size)?))
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
    for id in leaves(store, author, largest)? {
        frontier.push(id);
        if sizes.contains(&frontier.size()) {
            roots.insert(frontier.size(), frontier.root());
        }
    }
    Ok(roots)
}

/// The inclusion proof of the notice at `seq` in `author`'s log at `size`
/// (`None`: the size held).
pub fn inclusion<S: Store>(
    store: &S,
    author: &AuthorityId,
    seq: u64,
    size: Option<u64>,
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
    let leaves = leaves(store, author, size)?;
    let index = usize::try_from(seq - 1).map_err(|_| ProofError::Bad("seq too large".into()))?;
    let path = merkle::inclusion_proof(&leaves, index)
        .ok_or_else(|| ProofError::Bad(format!("seq {seq} is not in the log")))?;
    Ok(Inclusion {
        author: *author,
        seq,
        id: NoticeId(leaves[index].0),
        size,
        root: merkle::root(&leaves),
        path,
    })
}

/// The consistency proof of `author`'s log from `from` to `to` notices.
pub fn consistency<S: Store>(
    store: &S,
    author: &AuthorityId,
    from: u64,
    to: u64,
) -> Result<Consistency, ProofError<S::Error>> {
    if from > to {
        return Err(ProofError::Bad(format!("from ({from}) is past to ({to})")));
    }
    let leaves = leaves(store, author, to)?;
    let old = usize::try_from(from).map_err(|_| ProofError::Bad("from too large".into()))?;
    let path = merkle::consistency_proof(&leaves, old)
        .ok_or_else(|| ProofError::Bad(format!("no consistency proof from {from} to {to}")))?;
    Ok(Consistency {
        author: *author,
        from,
        from_root: merkle::root(&leaves[..old]),
        to,
        to_root: merkle::root(&leaves),
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

//! The witness rule: what a member checks before it cosigns another
//! member's checkpoint, and what it remembers so that it never cosigns two
//! different roots for one size.
//!
//! A witness holds its own copy of every member's log (the replica's
//! store). It cosigns a checkpoint only when the checkpoint's root is the
//! root of its own copy at that size, and the size is at least that of
//! the newest checkpoint it cosigned for that log. Its copy only ever
//! grows (a different notice at a seq it holds is a fork, never stored),
//! so every root it cosigns for one log is consistent with every other it
//! cosigned: the consistency proof between them is one it could compute
//! from its own leaves.
//!
//! A checkpoint whose root differs from the witness's copy at that size is
//! a conflict: the author signed a checkpoint of a log other than the one
//! it published. Two checkpoints its author signed with one size and two
//! roots are a split view, proof on their own.

use super::{Checkpoint, Verified};
use crate::model::AuthorityId;
use crate::roster::Federation;
use crate::store::Store;
use credence_crypto::note::{Note, NoteSignature};
use credence_crypto::{AuthorityKey, Digest, merkle};
use std::collections::BTreeMap;

/// The most leaves a witness hashes to find its own root at a size below
/// its head; a checkpoint further behind is refused as stale.
pub const WITNESS_REHASH_LEAVES_MAX: u64 = 65_536;

/// What the witness did with a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It agrees with the witness's copy: here is the cosignature.
    Cosign(NoteSignature),
    /// The witness's own checkpoint or its own log: nothing to cosign.
    Own,
    /// Older than the newest checkpoint this witness cosigned for the log
    /// (or too far below its head to rehash): not cosigned.
    Stale {
        /// The size the witness last cosigned (or holds).
        newest: u64,
    },
    /// Past the witness's copy of the log: it cosigns once sync has
    /// brought the notices.
    Ahead {
        /// Notices the witness holds of that log.
        held: u64,
    },
    /// The root is not that of the witness's copy at that size.
    Conflict {
        /// The root of the witness's copy at that size.
        own_root: Digest,
    },
    /// The author signed another checkpoint of the same size with another
    /// root, which this witness cosigned: both notes are the evidence.
    SplitView {
        /// The checkpoint this witness cosigned.
        cosigned: Box<Note>,
    },
}

/// The newest checkpoint a witness cosigned for one log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cosigned {
    size: u64,
    root: Digest,
    /// The author-signed note (text and the author's line).
    note: Note,
}

/// A witness's memory, per log.
#[derive(Clone, Debug, Default)]
pub struct WitnessState {
    cosigned: BTreeMap<AuthorityId, Cosigned>,
}

impl WitnessState {
    /// Forgets what this witness cosigned of `author`'s log (a roster
    /// version cut the log back below it).
    pub fn forget(&mut self, author: &AuthorityId) {
        self.cosigned.remove(author);
    }

    /// The newest size and root this witness cosigned for `author`'s log.
    pub fn newest(&self, author: &AuthorityId) -> Option<(u64, Digest)> {
        self.cosigned.get(author).map(|c| (c.size, c.root))
    }

    /// Decides on a checkpoint whose author's signature verified
    /// (`checkpoint::verify_note`), against the witness's own copy of the
    /// log in `store`; cosigns it at `now_secs` when it holds.
    pub fn consider<S: Store>(
        &mut self,
        key: &AuthorityKey,
        federation: &Federation,
        verified: &Verified,
        note: &Note,
        store: &S,
        now_secs: u64,
    ) -> Result<Verdict, S::Error> {
        let me = federation
            .member_of_key(&AuthorityId(key.public_bytes()))
            .unwrap_or(AuthorityId(key.public_bytes()));
        if verified.author == me {
            return Ok(Verdict::Own);
        }
        let Checkpoint { size, root, .. } = verified.checkpoint;
        if let Some(last) = self.cosigned.get(&verified.author) {
            if last.size == size && last.root != root {
                return Ok(Verdict::SplitView {
                    cosigned: Box::new(last.note.clone()),
                });
            }
            if size < last.size {
                return Ok(Verdict::Stale { newest: last.size });
            }
        }
        let held = store
            .head(&verified.author)?
            .map_or((0, merkle::empty_root()), |h| (h.seq, h.root()));
        if size > held.0 {
            return Ok(Verdict::Ahead { held: held.0 });
        }
        let own_root = if size == held.0 {
            held.1
        } else if held.0 - size > WITNESS_REHASH_LEAVES_MAX {
            return Ok(Verdict::Stale { newest: held.0 });
        } else {
            let count = usize::try_from(size).unwrap_or(usize::MAX);
            let ids = store.log_range(&verified.author, 1, count)?;
            let leaves: Vec<Digest> = ids.iter().map(|id| id.digest()).collect();
            merkle::root(&leaves)
        };
        if own_root != root {
            return Ok(Verdict::Conflict { own_root });
        }
        let Ok(line) = super::cosign_as(key, &me, &federation.id(), &note.text, now_secs) else {
            // Only a time past 2^63 - 1 seconds fails here.
            return Ok(Verdict::Stale { newest: size });
        };
        let author_line =
            super::author_line(note, &verified.checkpoint, federation, &verified.author)
                .map(|(_, line)| line.clone());
        self.cosigned.insert(
            verified.author,
            Cosigned {
                size,
                root,
                note: Note {
                    text: note.text.clone(),
                    signatures: author_line.into_iter().collect(),
                },
            },
        );
        Ok(Verdict::Cosign(line))
    }
}

/// Whether two checkpoints verified for one federation are a split view:
/// one author, one size, two roots.
pub fn split_view(a: &Verified, b: &Verified) -> bool {
    a.author == b.author
        && a.checkpoint.size == b.checkpoint.size
        && a.checkpoint.root != b.checkpoint.root
}

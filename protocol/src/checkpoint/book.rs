//! What a node keeps of other members' checkpoints: per log, the newest
//! checkpoint with every valid cosignature gathered so far, and the newest
//! one a quorum of witnesses cosigned. Two checkpoints of one log with one
//! size and two roots, both signed by its author, are a split view: the
//! pair is the evidence.

use super::{Verified, quorum, witness_name};
use crate::model::AuthorityId;
use crate::roster::Federation;
use credence_crypto::note::{self, Note, NoteSignature};
use std::collections::BTreeMap;

/// A checkpoint with the lines that verified: its author's, then one per
/// cosigner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gathered {
    /// The checkpoint and its verified cosigners.
    pub verified: Verified,
    /// The author's signature line.
    author_line: NoteSignature,
    /// Cosignature lines by cosigner.
    cosignatures: BTreeMap<AuthorityId, NoteSignature>,
}

impl Gathered {
    fn new(note: &Note, verified: &Verified, federation: &Federation) -> Option<Gathered> {
        // Lines are found by the key that signs them, which is a member's
        // id only until it rotates its key.
        let (_, author_line) =
            super::author_line(note, &verified.checkpoint, federation, &verified.author)?;
        let author_line = author_line.clone();
        let mut cosignatures = BTreeMap::new();
        for (witness, _) in &verified.cosigners {
            let name = witness_name(&federation.id(), witness);
            let Some(key) = federation.public_key(witness) else {
                continue;
            };
            if let Some(line) = note
                .lines_of(&name, note::TYPE_COSIGNATURE_V1, &key.to_bytes())
                .next()
            {
                cosignatures.insert(*witness, line.clone());
            }
        }
        Some(Gathered {
            verified: verified.clone(),
            author_line,
            cosignatures,
        })
    }

    /// The note: text, the author's line, then the cosignatures in key
    /// order (one encoding for one set of signatures).
    pub fn note(&self) -> Note {
        let mut signatures = vec![self.author_line.clone()];
        signatures.extend(self.cosignatures.values().cloned());
        Note {
            text: self.verified.checkpoint.text(),
            signatures,
        }
    }

    /// Members whose cosignature it holds.
    pub fn cosigners(&self) -> usize {
        self.cosignatures.len()
    }

    /// Cosigned by a quorum of the other members.
    pub fn witnessed(&self, federation: &Federation) -> bool {
        self.cosignatures.len() >= quorum(federation)
    }
}

/// What taking a checkpoint changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Newer than anything held for that log.
    Newer,
    /// The checkpoint held, with cosignatures it lacked.
    MoreCosignatures,
    /// Nothing new (older, or no new cosignature).
    Nothing,
    /// Same log and size as one held, another root: both notes, signed by
    /// the log's author, are the evidence.
    SplitView(Box<(Note, Note)>),
}

#[derive(Clone, Debug, Default)]
struct Log {
    newest: Option<Gathered>,
    witnessed: Option<Gathered>,
    /// The roots of the most recent sizes seen, each with its author's
    /// signed note (at most [`SIZES_REMEMBERED`]): a second root for one
    /// of them is a split view, even once newer checkpoints came.
    seen: BTreeMap<u64, (credence_crypto::Digest, Note)>,
}

/// Sizes per log whose root the book remembers.
pub const SIZES_REMEMBERED: usize = 64;

/// The checkpoints a node keeps, per log.
#[derive(Clone, Debug, Default)]
pub struct Book {
    logs: BTreeMap<AuthorityId, Log>,
}

impl Book {
    /// Forgets every checkpoint of `author`'s log (a roster version cut
    /// the log back: they may cover notices it no longer holds).
    pub fn forget(&mut self, author: &AuthorityId) {
        self.logs.remove(author);
    }

    /// Takes a checkpoint whose signatures verified (`verify_note`).
    pub fn take(&mut self, note: &Note, verified: &Verified, federation: &Federation) -> Taken {
        let Some(incoming) = Gathered::new(note, verified, federation) else {
            return Taken::Nothing;
        };
        let log = self.logs.entry(verified.author).or_default();
        for held in [&log.newest, &log.witnessed].into_iter().flatten() {
            let same_size = held.verified.checkpoint.size == verified.checkpoint.size;
            if same_size && held.verified.checkpoint.root != verified.checkpoint.root {
                return Taken::SplitView(Box::new((held.note(), incoming.note())));
            }
        }
        let (size, root) = (verified.checkpoint.size, verified.checkpoint.root);
        match log.seen.get(&size) {
            Some((held, note)) if *held != root => {
                return Taken::SplitView(Box::new((note.clone(), incoming.note())));
            }
            Some(_) => {}
            None => {
                let remembered = log.seen.len() < SIZES_REMEMBERED
                    || log
                        .seen
                        .keys()
                        .next()
                        .is_some_and(|smallest| *smallest < size);
                if remembered {
                    let author_only = Note {
                        text: note.text.clone(),
                        signatures: vec![incoming.author_line.clone()],
                    };
                    log.seen.insert(size, (root, author_only));
                    if log.seen.len() > SIZES_REMEMBERED {
                        log.seen.pop_first();
                    }
                }
            }
        }
        let taken = match &mut log.newest {
            Some(held) if held.verified.checkpoint.size > verified.checkpoint.size => {
                Taken::Nothing
            }
            Some(held) if held.verified.checkpoint.size == verified.checkpoint.size => {
                let before = held.cosignatures.len();
                for (witness, line) in incoming.cosignatures {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        held.cosignatures.entry(witness)
                    {
                        let time = verified
                            .cosigners
                            .iter()
                            .find(|(w, _)| *w == witness)
                            .map_or(0, |(_, t)| *t);
                        slot.insert(line);
                        held.verified.cosigners.push((witness, time));
                    }
                }
                held.verified.cosigners.sort_by_key(|(w, _)| *w);
                if held.cosignatures.len() > before {
                    Taken::MoreCosignatures
                } else {
                    Taken::Nothing
                }
            }
            _ => {
                log.newest = Some(incoming);
                Taken::Newer
            }
        };
        if let Some(newest) = &log.newest
            && newest.witnessed(federation)
            && log.witnessed.as_ref().is_none_or(|w| {
                w.verified.checkpoint.size < newest.verified.checkpoint.size
                    || w.cosigners() < newest.cosigners()
            })
        {
            log.witnessed = Some(newest.clone());
        }
        taken
    }

    /// Parses and verifies a note as [`super::verify_note`] does, without
    /// checking again the lines this book already holds verified for the
    /// same checkpoint text.
    pub fn verify(
        &self,
        note: &Note,
        federation: &Federation,
    ) -> Result<Verified, super::CheckpointError> {
        // Only this log's entries can hold lines over the same text.
        let parsed = super::Checkpoint::parse_text(&note.text)?;
        let author = parsed.author(federation)?;
        let held: Vec<&Gathered> = self
            .logs
            .get(&author)
            .into_iter()
            .flat_map(|log| [&log.newest, &log.witnessed])
            .flatten()
            .filter(|g| {
                g.verified.checkpoint.size == parsed.size
                    && g.verified.checkpoint.root == parsed.root
            })
            .collect();
        super::verify_note_known(note, federation, |signer, line| {
            held.iter().any(|g| {
                (g.verified.author == *signer && g.author_line == *line)
                    || g.cosignatures.get(signer) == Some(line)
            })
        })
    }

    /// Whether a checkpoint of `author`'s log at `size` can add nothing to
    /// this book: it is older than the newest held, and no checkpoint of
    /// that size is held to compare it with (so it needs no verifying).
    pub fn outdated(&self, author: &AuthorityId, size: u64) -> bool {
        let Some(log) = self.logs.get(author) else {
            return false;
        };
        let held = |g: &Option<Gathered>| g.as_ref().map(|g| g.verified.checkpoint.size);
        held(&log.newest).is_some_and(|s| s > size) && held(&log.witnessed) != Some(size)
    }

    /// Whether the book remembers another root for this size of
    /// `author`'s log (a note of it would be split-view evidence).
    pub fn contradicts(
        &self,
        author: &AuthorityId,
        size: u64,
        root: &credence_crypto::Digest,
    ) -> bool {
        self.logs.get(author).is_some_and(|log| {
            log.seen.get(&size).is_some_and(|(held, _)| held != root)
                || [&log.newest, &log.witnessed]
                    .into_iter()
                    .flatten()
                    .any(|g| {
                        g.verified.checkpoint.size == size && g.verified.checkpoint.root != *root
                    })
        })
    }

    /// Whether the book already holds this checkpoint of `author`'s log
    /// cosigned by a quorum: more cosignatures of it prove nothing more.
    pub fn complete(
        &self,
        author: &AuthorityId,
        size: u64,
        root: &credence_crypto::Digest,
    ) -> bool {
        self.logs
            .get(author)
            .and_then(|log| log.witnessed.as_ref())
            .is_some_and(|w| {
                w.verified.checkpoint.size == size && w.verified.checkpoint.root == *root
            })
    }

    /// Every log held: its author, newest checkpoint and newest witnessed
    /// one, in author order.
    pub fn logs(
        &self,
    ) -> impl Iterator<Item = (&AuthorityId, Option<&Gathered>, Option<&Gathered>)> {
        self.logs
            .iter()
            .map(|(author, log)| (author, log.newest.as_ref(), log.witnessed.as_ref()))
    }

    /// The notes held of `author`'s log to keep across a restart: the
    /// newest with its cosignatures and the newest a quorum cosigned.
    pub fn notes_of(&self, author: &AuthorityId) -> Vec<Note> {
        self.logs.get(author).map_or_else(Vec::new, |log| {
            [&log.newest, &log.witnessed]
                .into_iter()
                .flatten()
                .map(Gathered::note)
                .collect()
        })
    }

    /// The newest checkpoint held for `author`'s log, with what it gathered.
    pub fn newest(&self, author: &AuthorityId) -> Option<&Gathered> {
        self.logs.get(author)?.newest.as_ref()
    }

    /// The newest checkpoint of `author`'s log a quorum cosigned.
    pub fn witnessed(&self, author: &AuthorityId) -> Option<&Gathered> {
        self.logs.get(author)?.witnessed.as_ref()
    }
}

//! Checkpoints of each member's own log, in the C2SP formats: the text is a
//! `tlog-checkpoint` (origin, size, root), the member signs it as a
//! `signed-note`, and the other members cosign it as witnesses
//! (`tlog-cosignature`, `cosignature/v1`). SPEC.md gives the bytes.
//!
//! - The origin names the federation and the member:
//!   `credence/<federation id hex>/<member key hex>`; the member's key name
//!   is the origin.
//! - A witness's key name is `credence/<federation id hex>/witness/<member
//!   key hex>`; it cosigns with the same key it signs notices with (the
//!   messages cannot collide: see `credence_crypto::note`).
//! - The root is the log's BLAKE3 Merkle root (the tree of `crypto::merkle`)
//!   in standard base64; a checkpoint has no extension lines.
//! - Verification follows the signed-note rules: lines of unknown keys are
//!   ignored; the first line of a known key decides, and a known key's
//!   failing line makes the whole checkpoint invalid.

use crate::model::{AuthorityId, FederationId};
use crate::roster::Federation;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use credence_crypto::note::{self, Note, NoteError, NoteSignature};
use credence_crypto::{AuthorityKey, Digest};

/// The first component of every origin and witness name.
pub const ORIGIN_PREFIX: &str = "credence";

/// What is wrong with a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note around it is malformed.
    #[error("{0}")]
    Note(#[from] NoteError),
    /// The checkpoint text is malformed (what is wrong is said).
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The origin is not a log of this federation's members.
    #[error("checkpoint origin {0:?} is not a member's log in this federation")]
    ForeignOrigin(String),
    /// No signature of the log's author.
    #[error("the checkpoint carries no signature of its log's author")]
    Unsigned,
    /// The author's signature does not verify.
    #[error("the signature of the log's author does not verify")]
    BadSignature,
    /// A member's cosignature line does not verify.
    #[error("the cosignature of {0} does not verify")]
    BadCosignature(AuthorityId),
}

/// A checkpoint of one member's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line ([`origin`]).
    pub origin: String,
    /// Notices in the log.
    pub size: u64,
    /// The Merkle root of those notices.
    pub root: Digest,
}

/// The origin of `author`'s log in `federation`.
pub fn origin(federation: &FederationId, author: &AuthorityId) -> String {
    format!(
        "{ORIGIN_PREFIX}/{}/{}",
        hex::encode(federation.0),
        hex::encode(author.0)
    )
}

/// The key name `witness` cosigns with in `federation`.
pub fn witness_name(federation: &FederationId, witness: &AuthorityId) -> String {
    format!(
        "{ORIGIN_PREFIX}/{}/witness/{}",
        hex::encode(federation.0),
        hex::encode(witness.0)
    )
}

/// Cosignatures a checkpoint needs to count as witnessed: a majority of
/// the members other than the log's author.
pub fn quorum(federation: &Federation) -> usize {
    federation.roster().members.len().saturating_sub(1) / 2 + 1
}

impl Checkpoint {
    /// The checkpoint of `author`'s log at `size` with `root`.
    pub fn of_log(
        federation: &FederationId,
        author: &AuthorityId,
        size: u64,
        root: Digest,
    ) -> Checkpoint {
        Checkpoint {
            origin: origin(federation, author),
            size,
            root,
        }
    }

    /// The checkpoint's text: origin, size in decimal and root in base64,
    /// one per line.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.0)
        )
    }

    /// Parses a checkpoint's text: exactly three lines, a size in decimal
    /// without leading zeros, a 32-byte root in canonical base64.
    pub fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        note::check_text(text)?;
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        let [origin, size, root_line] = lines.as_slice() else {
            return Err(CheckpointError::Malformed(
                "a checkpoint has exactly three lines (no extension lines)",
            ));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed(
                "the size is not a decimal number without leading zeros",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("the size does not fit 64 bits"))?;
        let raw = STANDARD
            .decode(root_line)
            .map_err(|_| CheckpointError::Malformed("the root is not base64"))?;
        let root: [u8; 32] = raw
            .try_into()
            .map_err(|_| CheckpointError::Malformed("the root is not 32 bytes"))?;
        if STANDARD.encode(root) != *root_line {
            return Err(CheckpointError::Malformed(
                "the root's base64 is not canonical",
            ));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: Digest(root),
        })
    }

    /// The author this checkpoint's origin names in `federation`.
    pub fn author(&self, federation: &Federation) -> Result<AuthorityId, CheckpointError> {
        let foreign = || CheckpointError::ForeignOrigin(self.origin.clone());
        let rest = self
            .origin
            .strip_prefix(&format!(
                "{ORIGIN_PREFIX}/{}/",
                hex::encode(federation.id().0)
            ))
            .ok_or_else(foreign)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(rest, &mut key).map_err(|_| foreign())?;
        let author = AuthorityId(key);
        federation.public_key(&author).ok_or_else(foreign)?;
        if origin(&federation.id(), &author) != self.origin {
            return Err(foreign());
        }
        Ok(author)
    }
}

/// The author's line of a checkpoint note and the key it is under: the
/// author signs with its current key, and a checkpoint it signed before a
/// rotation is under the key of the seq at its size.
pub fn author_line<'a>(
    note: &'a Note,
    checkpoint: &'a Checkpoint,
    federation: &'a Federation,
    author: &AuthorityId,
) -> Option<(&'a credence_crypto::PublicKey, &'a NoteSignature)> {
    let current = federation.public_key(author)?;
    let at_size = federation
        .key_for(author, checkpoint.size.max(1))
        .filter(|key| *key != current);
    [Some(current), at_size]
        .into_iter()
        .flatten()
        .find_map(|key| {
            note.lines_of(&checkpoint.origin, note::TYPE_ED25519, &key.to_bytes())
                .next()
                .map(|line| (key, line))
        })
}

/// Signs the checkpoint of `key`'s own log: a note with one signature.
pub fn sign(key: &AuthorityKey, checkpoint: &Checkpoint) -> Result<Note, CheckpointError> {
    let text = checkpoint.text();
    let signature = note::sign(key, &checkpoint.origin, &text)?;
    Ok(Note {
        text,
        signatures: vec![signature],
    })
}

/// `key`'s cosignature (as a witness of `federation`) of a checkpoint text
/// at `timestamp` (POSIX seconds).
pub fn cosign(
    key: &AuthorityKey,
    federation: &FederationId,
    text: &str,
    timestamp: u64,
) -> Result<NoteSignature, CheckpointError> {
    cosign_as(
        key,
        &AuthorityId(key.public_bytes()),
        federation,
        text,
        timestamp,
    )
}

/// [`cosign`] by member `member` with its current key `key` (a member that
/// rotated its key keeps its witness name).
pub fn cosign_as(
    key: &AuthorityKey,
    member: &AuthorityId,
    federation: &FederationId,
    text: &str,
    timestamp: u64,
) -> Result<NoteSignature, CheckpointError> {
    let name = witness_name(federation, member);
    Ok(note::cosign(key, &name, text, timestamp)?)
}

/// A checkpoint whose signatures verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Whose log it is (its signature verified).
    pub author: AuthorityId,
    /// Members whose cosignature verified, with its time, in roster order.
    pub cosigners: Vec<(AuthorityId, u64)>,
}

impl Verified {
    /// Whether a quorum of the other members cosigned it ([`quorum`]).
    pub fn witnessed(&self, federation: &Federation) -> bool {
        self.cosigners.len() >= quorum(federation)
    }
}

/// Parses and verifies a signed checkpoint of `federation`: its origin
/// names a member, that member's signature verifies, and every member's
/// cosignature line present verifies (lines of other keys are ignored).
pub fn verify(bytes: &[u8], federation: &Federation) -> Result<Verified, CheckpointError> {
    let note = Note::parse(bytes)?;
    verify_note(&note, federation)
}

/// [`verify`] of a parsed note.
pub fn verify_note(note: &Note, federation: &Federation) -> Result<Verified, CheckpointError> {
    verify_note_known(note, federation, |_, _| false)
}

/// [`verify_note`], trusting the lines `known` says were verified before
/// for this very text (a line's bytes are deterministic: the same line of
/// the same signer over the same text is the same signature). A known
/// cosignature's time is read from its bytes.
pub fn verify_note_known(
    note: &Note,
    federation: &Federation,
    known: impl Fn(&AuthorityId, &NoteSignature) -> bool,
) -> Result<Verified, CheckpointError> {
    let checkpoint = Checkpoint::parse_text(&note.text)?;
    let author = checkpoint.author(federation)?;
    let Some((author_key, line)) = author_line(note, &checkpoint, federation, &author) else {
        return Err(CheckpointError::Unsigned);
    };
    if !known(&author, line) && !note::verify(author_key, &note.text, line) {
        return Err(CheckpointError::BadSignature);
    }
    // Each line is looked at once: a witness name names its member, and
    // the first line of each member with the cosignature key id counts.
    let prefix = format!(
        "{ORIGIN_PREFIX}/{}/witness/",
        hex::encode(federation.id().0)
    );
    let mut cosigners: Vec<(AuthorityId, u64)> = Vec::new();
    for line in &note.signatures {
        let Some(rest) = line.name.strip_prefix(&prefix) else {
            continue;
        };
        let mut raw = [0u8; 32];
        if rest.len() != 64 || hex::decode_to_slice(rest, &mut raw).is_err() {
            continue;
        }
        let witness = AuthorityId(raw);
        if witness == author || cosigners.iter().any(|(w, _)| *w == witness) {
            continue;
        }
        let Some(key) = federation.public_key(&witness) else {
            continue;
        };
        if hex::encode(raw) != rest {
            continue;
        }
        // A line identical to one verified before for this text (same
        // name, key id and bytes) needs no key id or signature check.
        let held = known(&witness, line)
            .then(|| line.bytes.get(..8))
            .flatten()
            .and_then(|t| t.try_into().ok())
            .map(u64::from_be_bytes);
        let timestamp = match held {
            Some(timestamp) => timestamp,
            None => {
                if line.key_id
                    != note::key_id(&line.name, note::TYPE_COSIGNATURE_V1, &key.to_bytes())
                {
                    continue;
                }
                note::verify_cosignature(key, &note.text, line)
                    .ok_or(CheckpointError::BadCosignature(witness))?
            }
        };
        cosigners.push((witness, timestamp));
    }
    // In roster order, as before.
    let order = |w: &AuthorityId| {
        federation
            .roster()
            .members
            .iter()
            .position(|m| m.key == *w)
            .unwrap_or(usize::MAX)
    };
    cosigners.sort_by_key(|(w, _)| order(w));
    Ok(Verified {
        checkpoint,
        author,
        cosigners,
    })
}

pub mod book;
pub mod proofs;
pub mod wire;
pub mod witness;

#[cfg(test)]
mod tests;

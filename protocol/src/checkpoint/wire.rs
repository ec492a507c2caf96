//! How checkpoints and cosignatures travel: the witness gossip message
//! (topic `credence/<federation>/checkpoints/1`) and the checkpoint
//! exchange of anti-entropy sync ([`crate::sync::SyncRequest::Checkpoints`]).
//! SPEC.md gives the bytes.
//!
//! On gossip a note carries its author's signature and at most
//! [`GOSSIP_COSIGNATURES_MAX`] cosignature: a witness publishes its own
//! cosignature alone, so that a receiver verifies one line per message
//! rather than every cosignature gathered so far. Sync carries whole
//! notes, each line verified once: lines already held are not checked
//! again ([`super::book::Book::verify`]).

use super::{CheckpointError, Verified, verify_note, witness::split_view};
use crate::codec::{self, CodecError};
use crate::model::AuthorityId;
use crate::roster::Federation;
use credence_crypto::note::{NOTE_BYTES_MAX, Note};
use serde::{Deserialize, Serialize};

/// Cosignatures a gossiped note may carry.
pub const GOSSIP_COSIGNATURES_MAX: usize = 1;
/// Largest encoded witness gossip message: two notes and framing.
pub const WITNESS_MESSAGE_BYTES_MAX: usize = 2 * NOTE_BYTES_MAX + 64;
/// Most bytes of notes and evidence in one checkpoint sync answer.
pub const CHECKPOINTS_ANSWER_BYTES_MAX: usize = 2 * 1024 * 1024;

/// A witness gossip message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WitnessMessage {
    /// A checkpoint note: its author's signature and at most one
    /// cosignature.
    Note(serde_bytes::ByteBuf),
    /// Split-view evidence: two checkpoints its author signed with one size
    /// and two roots.
    SplitView(SplitViewPair),
    /// A signed roster version (the governance chain travels on this
    /// topic too). One larger than this message's limit travels by sync
    /// only.
    Roster(serde_bytes::ByteBuf),
    /// A roster version still gathering signatures: a proposal members
    /// sign and pass on.
    Proposal(serde_bytes::ByteBuf),
}

/// Two notes of one log, one size, two roots, both signed by its author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitViewPair {
    /// One note (encoded).
    pub first: serde_bytes::ByteBuf,
    /// The other note (encoded).
    pub second: serde_bytes::ByteBuf,
}

/// What an asker holds of one log's checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHave {
    /// The log's author.
    pub author: AuthorityId,
    /// Size of the newest checkpoint held (0: none).
    pub size: u64,
    /// Root of that checkpoint (zeros: none). A peer holding a checkpoint
    /// of the same size with another root answers with it, so the two
    /// meet and make split-view evidence.
    pub root: [u8; 32],
    /// Cosignatures gathered on it.
    pub cosigners: u32,
    /// Size of the newest checkpoint held that a quorum cosigned (0: none).
    pub witnessed: u64,
    /// Split-view evidence of this log is held.
    pub split_view: bool,
}

/// Encodes a witness gossip message.
pub fn encode(message: &WitnessMessage) -> Result<Vec<u8>, CodecError> {
    codec::encode_bounded::<_, WITNESS_MESSAGE_BYTES_MAX>("witness message", message)
}

/// Decodes a witness gossip message (bounded, canonical, no trailing
/// bytes).
pub fn decode(bytes: &[u8]) -> Result<WitnessMessage, CodecError> {
    codec::decode_bounded::<_, WITNESS_MESSAGE_BYTES_MAX>("witness message", bytes)
}

/// Checks split-view evidence on its own: both notes verify as checkpoints
/// of one member's log, with one size and two roots. Returns the author.
pub fn check_split_view(
    pair: &SplitViewPair,
    federation: &Federation,
) -> Result<(AuthorityId, Note, Note), CheckpointError> {
    let first = Note::parse(&pair.first)?;
    let second = Note::parse(&pair.second)?;
    let a: Verified = verify_note(&first, federation)?;
    let b: Verified = verify_note(&second, federation)?;
    if !split_view(&a, &b) {
        return Err(CheckpointError::Malformed(
            "split-view evidence must be two checkpoints of one log with one size and two roots",
        ));
    }
    Ok((a.author, first, second))
}

/// The gossip message of a note.
pub fn note_message(note: &Note) -> WitnessMessage {
    WitnessMessage::Note(serde_bytes::ByteBuf::from(note.encode().into_bytes()))
}

/// The evidence pair of two notes.
pub fn pair(first: &Note, second: &Note) -> SplitViewPair {
    SplitViewPair {
        first: serde_bytes::ByteBuf::from(first.encode().into_bytes()),
        second: serde_bytes::ByteBuf::from(second.encode().into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The witness message vectors of SPEC.md, "Witness gossip".
    #[test]
    fn witness_messages_match_the_spec_vectors() {
        let note = WitnessMessage::Note(serde_bytes::ByteBuf::from(vec![0x61, 0x0a]));
        let pair = WitnessMessage::SplitView(SplitViewPair {
            first: serde_bytes::ByteBuf::from(vec![0x01]),
            second: serde_bytes::ByteBuf::from(vec![0x02]),
        });
        for (message, hex_bytes) in [
            (&note, "000000000200000000000000610a"),
            (&pair, "01000000010000000000000001010000000000000002"),
        ] {
            let bytes = encode(message).expect("encodes");
            assert_eq!(hex::encode(&bytes), hex_bytes);
            assert_eq!(decode(&bytes).expect("decodes"), *message);
        }
        assert!(decode(&[2, 0, 0, 0]).is_err());
        assert!(decode(&[0; WITNESS_MESSAGE_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn split_view_evidence_stands_on_its_own() {
        let test = crate::testkit::federation(3, 3);
        let federation = &test.federation;
        let key = credence_crypto::AuthorityKey::from_secret_bytes(test.keys[0].secret_bytes());
        let author = test.author(0);
        let at = |root: &[u8], size| {
            let checkpoint = super::super::Checkpoint::of_log(
                &federation.id(),
                &author,
                size,
                credence_crypto::merkle::leaf_hash(root),
            );
            super::super::sign(&key, &checkpoint).expect("signed")
        };
        let (a, b) = (at(b"a", 4), at(b"b", 4));
        let (found, _, _) = check_split_view(&pair(&a, &b), federation).expect("evidence");
        assert_eq!(found, author);
        // One root twice, two sizes, or a signature that fails: no evidence.
        assert!(check_split_view(&pair(&a, &a), federation).is_err());
        assert!(check_split_view(&pair(&a, &at(b"b", 5)), federation).is_err());
        let mut forged = b.clone();
        forged.signatures[0].bytes[0] ^= 1;
        assert!(check_split_view(&pair(&a, &forged), federation).is_err());
    }
}

//! The register of reads (DESIGN.md, "Accounts, roles and the register of
//! reads"): every consultation of a subject's records at a node — a
//! lookup, one listing shown, a query sent or answered, an export — is a
//! record naming who read, which subject, the purpose and legal basis
//! stated, when, and a digest of what was returned. The records form an
//! append-only Merkle log of the node's own (leaves as notice logs have
//! them), whose checkpoints the node signs with its authority key under
//! the origin `credence/<federation>/register/<member>`, so that an
//! auditor verifies offline that no record was changed or removed.
//!
//! Byte layouts and vectors: SPEC.md, "The register of reads".

use crate::checkpoint::{Checkpoint, CheckpointError, ORIGIN_PREFIX};
use crate::codec::{self, CodecError};
use crate::model::TEXT_BYTES_MAX;
use crate::model::{AuthorityId, FederationId, SubjectKind};
use crate::time::Timestamp;
use credence_crypto::merkle::{Frontier, leaf_hash};
use credence_crypto::note::{self, Note};
use credence_crypto::{AuthorityKey, Digest, PublicKey};
use serde::{Deserialize, Serialize};

/// [`ReadRecord::format`] of this version.
pub const READ_RECORD_FORMAT: u16 = 1;
/// Largest encoded record.
pub const READ_RECORD_BYTES_MAX: usize = 3 * TEXT_BYTES_MAX + 512;
/// Longest account name a record carries.
pub const ACCOUNT_BYTES_MAX: usize = 64;
/// Longest subject identifier a record carries.
pub const SUBJECT_ID_BYTES_MAX: usize = 64;

/// What kind of read a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReadKind {
    /// A subject's listings looked up on this node.
    Lookup,
    /// One listing shown, with its history.
    Listing,
    /// A query this node sent to the federation.
    QuerySent,
    /// A query of another member this node answered.
    QueryAnswered,
    /// An export of the records this node holds.
    Export,
    /// A subject's report ([`crate::report`]).
    Report,
}

impl ReadKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            ReadKind::Lookup => "lookup",
            ReadKind::Listing => "listing",
            ReadKind::QuerySent => "query-sent",
            ReadKind::QueryAnswered => "query-answered",
            ReadKind::Export => "export",
            ReadKind::Report => "report",
        }
    }
}

/// One read, as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRecord {
    /// [`READ_RECORD_FORMAT`].
    pub format: u16,
    /// When (ms since the epoch).
    pub at: Timestamp,
    /// What kind of read.
    pub kind: ReadKind,
    /// The local account that read (none for a query answered to another
    /// member, which `requester` names).
    pub account: Option<String>,
    /// The member whose query this node answered.
    pub requester: Option<AuthorityId>,
    /// The subject read (none for an export of every subject).
    pub subject: Option<(SubjectKind, String)>,
    /// The purpose stated.
    pub purpose: String,
    /// The legal basis stated.
    pub legal_basis: String,
    /// BLAKE3 of what was returned (for a query, of the signed answers).
    pub digest: [u8; 32],
    /// The id of the signed query request, for a query.
    pub request: Option<[u8; 32]>,
}

/// Why a record is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field is out of bounds.
    #[error("register record: {0}")]
    Field(String),
    /// It does not decode canonically.
    #[error("register record: {0}")]
    Codec(#[from] CodecError),
    /// A checkpoint is not the register's or does not verify.
    #[error("register checkpoint: {0}")]
    Checkpoint(String),
}

impl From<CheckpointError> for RegisterError {
    fn from(error: CheckpointError) -> RegisterError {
        RegisterError::Checkpoint(error.to_string())
    }
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), RegisterError> {
    if (required && value.trim().is_empty()) || value.len() > max {
        return Err(RegisterError::Field(format!(
            "{field} must have {} to {max} bytes",
            u8::from(required)
        )));
    }
    Ok(())
}

impl ReadRecord {
    /// Checks every field's bounds. A read without a purpose or a legal
    /// basis is not a record: the node refuses the read.
    pub fn check(&self) -> Result<(), RegisterError> {
        if self.format != READ_RECORD_FORMAT {
            return Err(RegisterError::Field(format!(
                "format {} (this version reads {READ_RECORD_FORMAT})",
                self.format
            )));
        }
        text("purpose", &self.purpose, TEXT_BYTES_MAX, true)?;
        text("legal_basis", &self.legal_basis, TEXT_BYTES_MAX, true)?;
        if let Some(account) = &self.account {
            text("account", account, ACCOUNT_BYTES_MAX, true)?;
        }
        if let Some((_, id)) = &self.subject {
            text("subject", id, SUBJECT_ID_BYTES_MAX, true)?;
        }
        let who = self.account.is_some() as u8 + self.requester.is_some() as u8;
        if who != 1 {
            return Err(RegisterError::Field(
                "a record names either a local account or a requesting member".into(),
            ));
        }
        Ok(())
    }

    /// Its canonical bytes (checked first).
    pub fn encode(&self) -> Result<Vec<u8>, RegisterError> {
        self.check()?;
        Ok(codec::encode_bounded::<_, READ_RECORD_BYTES_MAX>(
            "register record",
            self,
        )?)
    }

    /// Decodes canonical bytes, checking the fields.
    pub fn decode(bytes: &[u8]) -> Result<ReadRecord, RegisterError> {
        let record: ReadRecord =
            codec::decode_bounded::<_, READ_RECORD_BYTES_MAX>("register record", bytes)?;
        record.check()?;
        Ok(record)
    }

    /// The index key of the subject it is about, if any.
    pub fn subject_key(&self) -> Option<crate::model::SubjectKey> {
        let (kind, id) = self.subject.as_ref()?;
        crate::model::SubjectKey::new(*kind, id)
    }

    /// Its Merkle leaf: the leaf hash of its canonical bytes.
    pub fn leaf(bytes: &[u8]) -> Digest {
        leaf_hash(bytes)
    }
}

/// The first byte of a pruned entry. A record's canonical bytes start
/// with its format (`u16` 1, little-endian: `01 00`), so no record starts
/// with it.
pub const PRUNED_TAG: u8 = 0xff;
/// Bytes of a pruned entry: the tag and the record's leaf hash.
pub const PRUNED_ENTRY_BYTES: usize = 33;

/// An entry of the register as kept and exported: a record's canonical
/// bytes, or, once the node's retention period is past, the record pruned
/// to its leaf hash. The log, its root and its checkpoints do not change
/// when a record is pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The record.
    Record(ReadRecord),
    /// A record past retention: only its leaf remains.
    Pruned(Digest),
}

impl Entry {
    /// Reads entry bytes: a pruned entry (`PRUNED_TAG` and 32 bytes) or a
    /// record's canonical bytes, checked.
    pub fn decode(bytes: &[u8]) -> Result<Entry, RegisterError> {
        if bytes.first() == Some(&PRUNED_TAG) {
            let leaf: [u8; 32] = bytes
                .get(1..)
                .and_then(|leaf| leaf.try_into().ok())
                .ok_or_else(|| {
                    RegisterError::Field(format!(
                        "a pruned entry has {PRUNED_ENTRY_BYTES} bytes, not {}",
                        bytes.len()
                    ))
                })?;
            return Ok(Entry::Pruned(Digest(leaf)));
        }
        ReadRecord::decode(bytes).map(Entry::Record)
    }

    /// The pruned entry of a record's canonical bytes.
    pub fn pruned(record: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(PRUNED_ENTRY_BYTES);
        entry.push(PRUNED_TAG);
        entry.extend_from_slice(&ReadRecord::leaf(record).0);
        entry
    }

    /// The Merkle leaf of entry bytes (checked as [`Entry::decode`]).
    pub fn leaf(bytes: &[u8]) -> Result<Digest, RegisterError> {
        Ok(match Entry::decode(bytes)? {
            Entry::Pruned(leaf) => leaf,
            Entry::Record(_) => ReadRecord::leaf(bytes),
        })
    }
}

/// The register's origin line for `member` in `federation`.
pub fn origin(federation: &FederationId, member: &AuthorityId) -> String {
    format!(
        "{ORIGIN_PREFIX}/{}/register/{}",
        hex::encode(federation.0),
        hex::encode(member.0)
    )
}

/// The register's state: its size and Merkle frontier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterLog {
    frontier: Frontier,
}

impl RegisterLog {
    /// An empty register.
    pub fn new() -> RegisterLog {
        RegisterLog::default()
    }

    /// A register whose frontier was kept.
    pub fn from_frontier(frontier: Frontier) -> RegisterLog {
        RegisterLog { frontier }
    }

    /// Its frontier, to keep.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Records in it.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Its Merkle root.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }

    /// Appends a record's canonical bytes; returns its index.
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        let index = self.frontier.size();
        self.frontier.push(ReadRecord::leaf(bytes));
        index
    }

    /// The checkpoint of the register as it is, signed by `key` for
    /// `member` of `federation` (a C2SP signed note).
    pub fn sign(
        &self,
        federation: &FederationId,
        member: &AuthorityId,
        key: &AuthorityKey,
    ) -> Result<Note, RegisterError> {
        let checkpoint = Checkpoint {
            origin: origin(federation, member),
            size: self.size(),
            root: self.root(),
        };
        let text = checkpoint.text();
        let line = note::sign(key, &checkpoint.origin, &text)
            .map_err(|e| RegisterError::Checkpoint(e.to_string()))?;
        Ok(Note {
            text,
            signatures: vec![line],
        })
    }
}

/// Verifies a signed register checkpoint of `member` in `federation`
/// against the keys the member has had (`keys`, any of which may have
/// signed it); returns the checkpoint.
pub fn verify_checkpoint(
    note: &Note,
    federation: &FederationId,
    member: &AuthorityId,
    keys: &[PublicKey],
) -> Result<Checkpoint, RegisterError> {
    let checkpoint = Checkpoint::parse_text(&note.text)?;
    let expected = origin(federation, member);
    if checkpoint.origin != expected {
        return Err(RegisterError::Checkpoint(format!(
            "its origin is {:?}, not this member's register {expected:?}",
            checkpoint.origin
        )));
    }
    let signed = keys.iter().any(|key| {
        note.lines_of(&checkpoint.origin, note::TYPE_ED25519, &key.to_bytes())
            .any(|line| note::verify(key, &note.text, line))
    });
    if !signed {
        return Err(RegisterError::Checkpoint(
            "no signature of the member verifies".into(),
        ));
    }
    Ok(checkpoint)
}

/// Checks entries (records, or records pruned to their leaf) against a
/// verified checkpoint: their Merkle root over the first
/// `checkpoint.size` of them must be the checkpoint's root, and every
/// record must decode with its purpose and legal basis.
pub fn check_records(records: &[Vec<u8>], checkpoint: &Checkpoint) -> Result<(), RegisterError> {
    let size = usize::try_from(checkpoint.size).unwrap_or(usize::MAX);
    if records.len() < size {
        return Err(RegisterError::Checkpoint(format!(
            "it covers {} records, {} are given",
            checkpoint.size,
            records.len()
        )));
    }
    let mut frontier = Frontier::new();
    for (index, bytes) in records.iter().take(size).enumerate() {
        let leaf =
            Entry::leaf(bytes).map_err(|e| RegisterError::Field(format!("record {index}: {e}")))?;
        frontier.push(leaf);
    }
    if frontier.root() != checkpoint.root {
        return Err(RegisterError::Checkpoint(format!(
            "the root of the {} records is not the root it signs: a record was changed, removed or reordered",
            checkpoint.size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    pub(crate) fn record(n: u8) -> ReadRecord {
        ReadRecord {
            format: READ_RECORD_FORMAT,
            at: Timestamp(1_780_000_000_000 + u64::from(n)),
            kind: ReadKind::Lookup,
            account: Some("procurement-desk".into()),
            requester: None,
            subject: Some((SubjectKind::LegalPerson, testkit::uscc(u64::from(n)))),
            purpose: "procurement award".into(),
            legal_basis: "Government Procurement Law art. 22".into(),
            digest: [n; 32],
            request: None,
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let bytes = record(1).encode().unwrap();
        assert_eq!(ReadRecord::decode(&bytes).unwrap(), record(1));
        let mut no_basis = record(1);
        no_basis.legal_basis = " ".into();
        assert!(
            no_basis
                .encode()
                .unwrap_err()
                .to_string()
                .contains("legal_basis")
        );
        let mut both = record(1);
        both.requester = Some(AuthorityId([1; 32]));
        assert!(both.encode().is_err());
        let mut long = record(1);
        long.account = Some("a".repeat(65));
        assert!(long.encode().is_err());
        assert!(ReadRecord::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_signed_checkpoint_proves_the_records_and_any_change_shows() {
        let test = testkit::federation(3, 2);
        let member = test.author(0);
        let federation = test.federation.id();
        let records: Vec<Vec<u8>> = (1..=5).map(|n| record(n).encode().unwrap()).collect();
        let mut log = RegisterLog::new();
        for bytes in &records {
            log.append(bytes);
        }
        let note = log.sign(&federation, &member, &test.keys[0]).unwrap();
        let keys = [test.keys[0].public_key()];
        let checkpoint = verify_checkpoint(&note, &federation, &member, &keys).unwrap();
        assert_eq!(checkpoint.size, 5);
        check_records(&records, &checkpoint).unwrap();
        // Another member's key, another member's register: refused.
        let other = [test.keys[1].public_key()];
        assert!(verify_checkpoint(&note, &federation, &member, &other).is_err());
        assert!(verify_checkpoint(&note, &federation, &test.author(1), &keys).is_err());
        // A record changed, removed or reordered: the root differs.
        let mut changed = records.clone();
        changed[2] = record(9).encode().unwrap();
        assert!(check_records(&changed, &checkpoint).is_err());
        let mut swapped = records.clone();
        swapped.swap(0, 1);
        assert!(check_records(&swapped, &checkpoint).is_err());
        assert!(check_records(&records[..4], &checkpoint).is_err());
        // Records past the checkpoint are not its business.
        let mut more = records.clone();
        more.push(record(6).encode().unwrap());
        check_records(&more, &checkpoint).unwrap();
        // Records pruned to their leaf keep the root; a pruned entry that
        // is not the record's leaf does not.
        let mut pruned = records.clone();
        pruned[0] = Entry::pruned(&records[0]);
        pruned[3] = Entry::pruned(&records[3]);
        check_records(&pruned, &checkpoint).unwrap();
        assert_eq!(
            Entry::decode(&pruned[0]).unwrap(),
            Entry::Pruned(ReadRecord::leaf(&records[0]))
        );
        pruned[3] = Entry::pruned(&records[4]);
        assert!(check_records(&pruned, &checkpoint).is_err());
        pruned[3] = pruned[3][..20].to_vec();
        assert!(check_records(&pruned, &checkpoint).is_err());
    }
}

//! The store's key layout and record encodings (table in the module doc
//! of `store`).

use super::StoreError;
use credence_crypto::merkle::Frontier;
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::store::{ForkEvidence, Head};
use credence_protocol::time::Timestamp;

pub(super) const NOTICE: u8 = b'n';
pub(super) const LOG: u8 = b'l';
pub(super) const HEAD: u8 = b'h';
pub(super) const REFERRING: u8 = b'r';
pub(super) const SUBJECT: u8 = b's';
pub(super) const FORK: u8 = b'f';
pub(super) const META: u8 = b'm';
pub(super) const REGISTER: u8 = b'g';
pub(super) const REGISTER_SUBJECT: u8 = b'G';
pub(super) const IDEMPOTENCY: u8 = b'i';
pub(super) const GOVERNED: u8 = b'j';
pub(super) const CHECKPOINT_NOTES: u8 = b'q';
/// Largest record of one log's checkpoint notes.
pub(super) const CHECKPOINT_NOTES_BYTES_MAX: usize = 1 << 20;
pub(super) const ROSTER: u8 = b'v';
pub(super) const META_COUNT: &[u8] = b"count";
pub(super) const META_REGISTER: &[u8] = b"register";
pub(super) const META_REGISTER_SUBJECTS: &[u8] = b"register-subjects";
pub(super) const META_REGISTER_PRUNED: &[u8] = b"register-pruned";
pub(super) const META_FEDERATION: &[u8] = b"federation";
/// The roster proposals the engine holds (`m` + this: one record).
pub(super) const META_PROPOSALS: &[u8] = b"proposals";
/// Largest record of the proposals held: as many signed versions as the
/// engine holds at most, with their lengths.
pub(super) const PROPOSALS_BYTES_MAX: usize = credence_protocol::engine::PROPOSALS_MAX
    * (credence_protocol::governance::SIGNED_VERSION_BYTES_MAX + 8)
    + 8;

pub(super) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    key.push(prefix);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// The author and the big-endian number after the prefix byte of a key
/// (`l` and `f` keys).
pub(super) fn author_and_number(key: &[u8], what: &str) -> Result<(AuthorityId, u64), StoreError> {
    let corrupt = || StoreError::Corrupt(format!("{what} key of {} bytes", key.len()));
    let author: [u8; 32] = key
        .get(1..33)
        .and_then(|a| a.try_into().ok())
        .ok_or_else(corrupt)?;
    let number: [u8; 8] = key
        .get(33..41)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(corrupt)?;
    Ok((AuthorityId(author), u64::from_be_bytes(number)))
}

/// Log ids per sled record.
pub(super) const LOG_PAGE_IDS: u64 = 64;

pub(super) fn log_page_key(author: &AuthorityId, page: u64) -> Vec<u8> {
    key(LOG, &[&author.0, &page.to_be_bytes()])
}

pub(super) fn id_from(bytes: &[u8]) -> Result<NoticeId, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("an id of {} bytes", bytes.len())))?;
    Ok(NoticeId(array))
}

/// Head layout: seq (8), id (32), issued_at (8), the frontier (8 + 32 per
/// bit set in seq), then the author's notice budget (8) and the roster
/// version its newest notice names (8). A head written before budgets
/// were kept ends at the frontier and reads as a full budget; one written
/// before roster versions ends at the budget and reads as version 0.
pub(super) fn encode_head(head: &Head) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(48 + 8 + 32 * 8 + 8);
    bytes.extend_from_slice(&head.seq.to_be_bytes());
    bytes.extend_from_slice(&head.id.0);
    bytes.extend_from_slice(&head.issued_at.0.to_be_bytes());
    bytes.extend_from_slice(&head.frontier.to_bytes());
    bytes.extend_from_slice(&head.budget.to_be_bytes());
    bytes.extend_from_slice(&head.roster.to_be_bytes());
    bytes
}

pub(super) fn decode_head(author: AuthorityId, bytes: &[u8]) -> Result<Head, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("head of {author}"));
    let (seq, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (id, rest) = rest.split_first_chunk::<32>().ok_or_else(corrupt)?;
    let (issued_at, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let seq = u64::from_be_bytes(*seq);
    let frontier_len = 8 + 32 * seq.count_ones() as usize;
    if rest.len() < frontier_len {
        return Err(corrupt());
    }
    let (frontier, budget) = rest.split_at(frontier_len);
    let frontier =
        Frontier::from_bytes(frontier).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (budget, roster) = match budget {
        [] => (credence_protocol::replica::BUDGET_FULL, 0),
        bytes => {
            let (budget, roster) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let roster = match roster {
                [] => 0,
                bytes => u64::from_be_bytes(bytes.try_into().map_err(|_| corrupt())?),
            };
            (u64::from_be_bytes(*budget), roster)
        }
    };
    let head = Head {
        author,
        seq,
        id: NoticeId(*id),
        issued_at: Timestamp(u64::from_be_bytes(*issued_at)),
        frontier,
        budget,
        roster,
    };
    if head.frontier.size() != head.seq {
        return Err(StoreError::Corrupt(format!(
            "head of {author}: frontier size differs from seq"
        )));
    }
    Ok(head)
}

pub(super) fn encode_fork(evidence: &ForkEvidence) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + evidence.first.len() + evidence.second.len());
    bytes.extend_from_slice(&(evidence.first.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&evidence.first);
    bytes.extend_from_slice(&evidence.second);
    bytes
}

pub(super) fn decode_fork(
    author: AuthorityId,
    seq: u64,
    bytes: &[u8],
) -> Result<ForkEvidence, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("fork evidence of {author} at seq {seq}"));
    let (length, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let length = usize::try_from(u64::from_be_bytes(*length)).map_err(|_| corrupt())?;
    if length > rest.len() {
        return Err(corrupt());
    }
    let (first, second) = rest.split_at(length);
    Ok(ForkEvidence {
        author,
        seq,
        first: first.to_vec(),
        second: second.to_vec(),
    })
}

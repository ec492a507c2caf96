//! The register of reads as the node keeps and shows it
//! ([`credence_protocol::register`]): records built for each read, the
//! digest of what a read returned, and the records as JSON.

use credence_protocol::engine::{Direction, RegisterEntry};
use credence_protocol::fold::ListingState;
use credence_protocol::model::{SubjectKind, TEXT_BYTES_MAX};
use credence_protocol::query;
use credence_protocol::register::{Entry, READ_RECORD_FORMAT, ReadKind, ReadRecord};
use credence_protocol::report::{REPORT_READS_MAX, ReportBody};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Register records in one answer.
pub const REGISTER_RECORDS_MAX: usize = 1000;
/// Key derivation context of a read's digest.
const DIGEST_CONTEXT: &str = "credence/v1/read-digest";

/// Longest stated purpose or legal basis, in characters (so at most
/// [`TEXT_BYTES_MAX`] bytes in UTF-8).
pub const STATED_CHARS_MAX: usize = TEXT_BYTES_MAX / 4;

/// A character that says nothing: a control character, or a space of any
/// kind (every Unicode white space, which the register record's own check
/// trims, and the zero-width no-break space). [`STATED_PATTERN`] states the
/// same set.
fn blank(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{20}'
            | '\u{7f}'..='\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

/// A stated purpose or legal basis says something: one character at least
/// that is not [`blank`].
fn says_something(text: &str) -> bool {
    text.chars().any(|c| !blank(c))
}

/// The pattern the OpenAPI document gives every `purpose` and
/// `legal_basis`: one character that is not [`blank`]. utoipa takes only a
/// literal there, so each place repeats it; a test of the document checks
/// that each is this one, and a test here that it is [`blank`]'s set.
pub const STATED_PATTERN: &str = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\uFEFF]";

/// Why a read is made: both are required, and registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stated {
    /// The purpose of the read.
    pub purpose: String,
    /// The law that allows it.
    pub legal_basis: String,
}

impl Stated {
    /// Checks both are given and within bounds; says which is wrong.
    pub fn new(purpose: Option<String>, legal_basis: Option<String>) -> Result<Stated, String> {
        let check = |field: &str, value: Option<String>| -> Result<String, String> {
            match value {
                Some(text) if says_something(&text) && text.chars().count() <= STATED_CHARS_MAX => {
                    Ok(text)
                }
                Some(_) => Err(format!(
                    "{field}: 1 to {STATED_CHARS_MAX} characters, not only spaces"
                )),
                None => Err(format!(
                    "{field}: required; every read of a subject's records states its purpose and legal basis, and is registered"
                )),
            }
        };
        Ok(Stated {
            purpose: check("purpose", purpose)?,
            legal_basis: check("legal_basis", legal_basis)?,
        })
    }
}

/// The digest of listings returned: BLAKE3 (keyed for reads) over each
/// listing's id and the id of every notice folded into it, in order. It
/// fixes what the reader was shown without keeping it.
pub fn listings_digest(states: &[ListingState]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    for state in states {
        hasher.update(&state.id.0);
        for entry in &state.history {
            hasher.update(&entry.id.0);
        }
    }
    *hasher.finalize().as_bytes()
}

/// The digest of bytes returned (an export, the signed answers of a
/// query).
pub fn bytes_digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// The record of a local read.
pub fn local_read(
    kind: ReadKind,
    account: &str,
    subject: Option<(SubjectKind, String)>,
    stated: &Stated,
    digest: [u8; 32],
    at: Timestamp,
) -> ReadRecord {
    ReadRecord {
        format: READ_RECORD_FORMAT,
        at,
        kind,
        account: Some(account.to_string()),
        requester: None,
        subject,
        purpose: stated.purpose.clone(),
        legal_basis: stated.legal_basis.clone(),
        digest,
        request: None,
    }
}

/// The records of a name search: one lookup per person or organisation
/// whose records it returned (each listing's subject, and each linked
/// person whose name matched `text`), with the digest of the listings
/// returned about them. Nothing is returned that was not registered.
pub fn search_reads(
    states: &[ListingState],
    text: &str,
    account: &str,
    stated: &Stated,
    at: Timestamp,
) -> Vec<ReadRecord> {
    let mut about: std::collections::BTreeMap<(SubjectKind, String), Vec<ListingState>> =
        std::collections::BTreeMap::new();
    for state in states {
        let subject = &state.listing.subject;
        about
            .entry((subject.kind, subject.id.clone()))
            .or_default()
            .push(state.clone());
        for person in &state.listing.linked {
            if credence_protocol::names::matches(&person.name, text) {
                about
                    .entry((SubjectKind::NaturalPerson, person.id.clone()))
                    .or_default()
                    .push(state.clone());
            }
        }
    }
    about
        .into_iter()
        .map(|(subject, listings)| {
            local_read(
                ReadKind::Lookup,
                account,
                Some(subject),
                stated,
                listings_digest(&listings),
                at,
            )
        })
        .collect()
}

/// The record of a query sent or answered, from the engine's entry. A
/// query sent in the process itself (the devnet) is registered under the
/// node's own account.
pub fn query_read(entry: &RegisterEntry) -> Result<ReadRecord, String> {
    let id = entry.query.id().map_err(|e| e.to_string())?;
    let request = &entry.query.request;
    let mut answers = Vec::with_capacity(entry.answers.len());
    for a in &entry.answers {
        answers.push(
            a.answer
                .signed
                .encode::<{ query::ANSWER_BYTES_MAX }>()
                .map_err(|e| e.to_string())?,
        );
    }
    let parts: Vec<&[u8]> = answers.iter().map(Vec::as_slice).collect();
    let (kind, account, requester) = match entry.direction {
        Direction::Sent => (
            ReadKind::QuerySent,
            Some(
                entry
                    .account
                    .clone()
                    .unwrap_or_else(|| crate::accounts::NODE_ACCOUNT.to_string()),
            ),
            None,
        ),
        Direction::Received => (ReadKind::QueryAnswered, None, Some(request.requester)),
    };
    Ok(ReadRecord {
        format: READ_RECORD_FORMAT,
        at: entry.at,
        kind,
        account,
        requester,
        subject: Some((request.subject_kind, request.subject_id.clone())),
        purpose: request.purpose.clone(),
        legal_basis: request.legal_basis.clone(),
        digest: bytes_digest(&parts),
        request: Some(id.0),
    })
}

/// A register record as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterRecord {
    /// Its index in the register.
    pub index: u64,
    /// When it was recorded (ms).
    pub at: u64,
    /// `lookup`, `listing`, `query-sent`, `query-answered`, `export`,
    /// `report`, or `pruned` (past the node's retention: only its leaf
    /// hash, in `digest`, remains).
    pub kind: String,
    /// The local account that read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The member whose query was answered, and its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// The subject identifier (none for an export of everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Purpose stated.
    pub purpose: String,
    /// Legal basis stated.
    pub legal_basis: String,
    /// Digest of what was returned (hex).
    pub digest: String,
    /// The query request id (hex), for a query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The record's canonical bytes (hex), which the register's Merkle
    /// root covers: what `credence register verify` checks.
    pub bytes: String,
}

impl RegisterRecord {
    /// A record pruned past the node's retention: only its leaf hash
    /// remains (`kind` `pruned`, `digest` the leaf, `bytes` the entry).
    pub fn pruned(index: u64, leaf: credence_crypto::Digest, entry: &[u8]) -> RegisterRecord {
        RegisterRecord {
            index,
            at: 0,
            kind: "pruned".into(),
            account: None,
            requester: None,
            subject: None,
            purpose: String::new(),
            legal_basis: String::new(),
            digest: leaf.to_hex(),
            request_id: None,
            bytes: hex::encode(entry),
        }
    }

    /// The record at `index`, of canonical bytes `bytes`, as shown.
    pub fn of(
        federation: &Federation,
        index: u64,
        record: &ReadRecord,
        bytes: &[u8],
    ) -> RegisterRecord {
        RegisterRecord {
            index,
            at: record.at.0,
            kind: record.kind.name().into(),
            account: record.account.clone(),
            requester: record
                .requester
                .map(|r| format!("{} ({})", federation.name_of(&r), r)),
            subject: record.subject.as_ref().map(|(_, id)| id.clone()),
            purpose: record.purpose.clone(),
            legal_basis: record.legal_basis.clone(),
            digest: hex::encode(record.digest),
            request_id: record.request.map(hex::encode),
            bytes: hex::encode(bytes),
        }
    }
}

/// Records of a node's register from `from` on (at most `limit`, capped
/// at [`REGISTER_RECORDS_MAX`]), with its checkpoint signed now by `key`
/// for `member`.
pub fn page(
    store: &crate::store::SledStore,
    federation: &Federation,
    member: &credence_protocol::model::AuthorityId,
    key: &credence_crypto::AuthorityKey,
    from: u64,
    limit: usize,
) -> Result<crate::views::RegisterView, String> {
    let log = store.register_log().map_err(|e| e.to_string())?;
    let records = store
        .register_records(from, limit.min(REGISTER_RECORDS_MAX))
        .map_err(|e| e.to_string())?;
    let mut shown = Vec::with_capacity(records.len());
    for (index, bytes) in records {
        match Entry::decode(&bytes).map_err(|e| format!("register record {index}: {e}"))? {
            Entry::Record(record) => {
                shown.push(RegisterRecord::of(federation, index, &record, &bytes));
            }
            Entry::Pruned(leaf) => shown.push(RegisterRecord::pruned(index, leaf, &bytes)),
        }
    }
    let note = log
        .sign(&federation.id(), member, key)
        .map_err(|e| e.to_string())?;
    Ok(crate::views::RegisterView {
        size: log.size(),
        checkpoint: note.encode(),
        records: shown,
    })
}

/// A subject's report ([`credence_protocol::report`]), made by `member`
/// at `at` after its own request was registered: `states` are the
/// listings that name the subject; the register's records about it are
/// read from `store`. Signed with `key`.
pub fn report(
    store: &crate::store::SledStore,
    federation: &Federation,
    member: &credence_protocol::model::AuthorityId,
    key: &credence_crypto::AuthorityKey,
    (kind, id): (SubjectKind, &str),
    at: Timestamp,
    states: &[ListingState],
) -> Result<crate::views::ReportView, String> {
    let subject = credence_protocol::model::SubjectKey::new(kind, id)
        .ok_or_else(|| format!("{id:?} is not an 18-character identifier"))?;
    let log = store.register_log().map_err(|e| e.to_string())?;
    // One more than a report shows, so that it knows it left some out.
    let reads = store
        .register_of_subject(&subject, REPORT_READS_MAX + 1)
        .map_err(|e| e.to_string())?;
    let body = ReportBody::new(
        federation.id(),
        *member,
        (kind, id),
        at,
        states,
        &reads,
        (log.size(), log.root().0),
    );
    let signed = body.sign(key).map_err(|e| e.to_string())?;
    let checkpoint = log
        .sign(&federation.id(), member, key)
        .map_err(|e| e.to_string())?;
    let shown_reads = &reads[reads.len().saturating_sub(REPORT_READS_MAX)..];
    let mut records = Vec::with_capacity(shown_reads.len());
    for (index, bytes) in shown_reads {
        let record =
            ReadRecord::decode(bytes).map_err(|e| format!("register record {index}: {e}"))?;
        records.push(RegisterRecord::of(federation, *index, &record, bytes));
    }
    let listings = body
        .listings
        .iter()
        .filter_map(|reported| states.iter().find(|s| s.id == reported.id))
        .map(|state| crate::views::ListingView {
            linked_as: state.listing.linked_role(&subject),
            ..crate::views::ListingView::new(federation, state, true)
        })
        .collect();
    Ok(crate::views::ReportView {
        subject_kind: kind.name().into(),
        subject: id.into(),
        member: *member,
        made_by: federation.name_of(member),
        made_at: at.0,
        listings,
        reads: records,
        register_size: log.size(),
        register_checkpoint: checkpoint.encode(),
        truncated: body.truncated,
        body: hex::encode(&signed.body),
        signature: hex::encode(signed.signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the node takes as a stated purpose, the register record takes
    // too: a text of spaces of any kind is refused before any read is
    // made, with the field named (schemathesis found a no-break space
    // passing here and failing the record with a 500).
    #[test]
    fn a_statement_of_spaces_of_any_kind_is_refused() {
        let stated = |purpose: &str| Stated::new(Some(purpose.into()), Some("law".into()));
        for blank in [
            "",
            " ",
            "\t\n",
            "\u{a0}",
            "\u{85}",
            "\u{3000}",
            "\u{2009}\u{202f}",
            "\u{feff}",
        ] {
            let error = stated(blank).unwrap_err();
            assert!(error.starts_with("purpose: 1 to"), "{blank:?}: {error}");
            // Everything refused here is blank to the record's check too.
            assert!(blank.trim().is_empty() || blank == "\u{feff}", "{blank:?}");
        }
        for said in ["a", "\u{a0}审查\u{a0}", "x\u{feff}"] {
            let stated = stated(said).unwrap();
            assert!(!stated.purpose.trim().is_empty(), "{said:?}");
        }
        let long = "字".repeat(STATED_CHARS_MAX + 1);
        assert!(stated(&long).is_err());
        assert!(
            stated(&"字".repeat(STATED_CHARS_MAX))
                .unwrap()
                .purpose
                .len()
                <= TEXT_BYTES_MAX
        );
    }

    // The OpenAPI pattern names exactly the characters `blank` refuses: a
    // generated request the document calls valid is never refused here
    // for saying nothing, and the other way round.
    #[test]
    fn the_documented_pattern_is_the_blank_set() {
        let class = STATED_PATTERN
            .strip_prefix("[^")
            .and_then(|p| p.strip_suffix(']'))
            .expect("a negated class");
        // `\uXXXX` escapes, a `-` after one making a range with the next.
        let code = |hex: &str| -> u32 {
            assert_eq!(hex.len(), 4, "{hex}");
            u32::from_str_radix(hex, 16).expect("hex")
        };
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut open_range = false;
        for item in class.split("\\u").filter(|s| !s.is_empty()) {
            let (hex, opens) = match item.strip_suffix('-') {
                Some(hex) => (hex, true),
                None => (item, false),
            };
            let at = code(hex);
            match ranges.last_mut() {
                Some(last) if open_range => last.1 = at,
                _ => ranges.push((at, at)),
            }
            open_range = opens;
        }
        assert!(ranges.len() >= 10, "{ranges:?}");
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let listed = ranges
                .iter()
                .any(|(low, high)| (*low..=*high).contains(&(c as u32)));
            assert_eq!(listed, blank(c), "{:#x}", c as u32);
        }
    }
}

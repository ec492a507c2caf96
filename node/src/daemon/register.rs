//! The query register as stored: one JSON record per query sent or
//! answered, under the store's register prefix.

use credence_protocol::engine::RegisterEntry;
use credence_protocol::query::{self, Signed};
use credence_protocol::roster::Federation;
use serde::{Deserialize, Serialize};

/// Register records in one answer.
pub const REGISTER_RECORDS_MAX: usize = 1000;

/// A record of the query register, as stored (JSON) and shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterRecord {
    /// `sent` or `received`.
    pub direction: String,
    /// When it was recorded (ms).
    pub at: u64,
    /// The request id (hex).
    pub request_id: String,
    /// The requester.
    pub requester: String,
    /// The requester's name.
    pub requester_name: String,
    /// The subject identifier.
    pub subject: String,
    /// Purpose stated.
    pub purpose: String,
    /// Legal basis stated.
    pub legal_basis: String,
    /// The signed request (hex of its encoding).
    pub request: String,
    /// Responders and the BLAKE3 digest of each one's signed answer (the
    /// answers themselves, up to 8 MiB each, are the requester's to keep).
    pub answer_digests: Vec<(String, String)>,
    /// Members that did not answer.
    pub missing: Vec<String>,
    /// The local account that asked (a query sent through the API); none
    /// for a query received from a member, or one recorded before
    /// accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

fn hex_of(signed: &Signed) -> Result<String, String> {
    signed
        .encode::<{ query::QUERY_BYTES_MAX + 64 }>()
        .map(hex::encode)
        .map_err(|e| e.to_string())
}

impl RegisterRecord {
    /// The record of an engine's register entry, with its store key.
    pub fn of(
        federation: &Federation,
        entry: &RegisterEntry,
    ) -> Result<([u8; 32], RegisterRecord), String> {
        let id = entry.query.id().map_err(|e| e.to_string())?;
        let request = &entry.query.request;
        let mut answer_digests = Vec::with_capacity(entry.answers.len());
        for a in &entry.answers {
            let signed = a
                .answer
                .signed
                .encode::<{ query::ANSWER_BYTES_MAX }>()
                .map_err(|e| e.to_string())?;
            answer_digests.push((
                a.responder.to_string(),
                blake3::hash(&signed).to_hex().to_string(),
            ));
        }
        let record = RegisterRecord {
            direction: entry.direction.name().into(),
            at: entry.at.0,
            request_id: id.to_hex(),
            requester: request.requester.to_string(),
            requester_name: federation.name_of(&request.requester),
            subject: request.subject_id.clone(),
            purpose: request.purpose.clone(),
            legal_basis: request.legal_basis.clone(),
            request: hex_of(&entry.query.signed)?,
            answer_digests,
            missing: entry
                .missing
                .iter()
                .map(|(a, why)| format!("{}: {why}", federation.name_of(a)))
                .collect(),
            account: entry.account.clone(),
        };
        // A query sent and the same query answered here are two records.
        let mut key = id.0;
        key[0] ^= u8::from(entry.direction == credence_protocol::engine::Direction::Sent);
        Ok((key, record))
    }
}

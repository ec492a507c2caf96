//! Cross-region query (`/credence/query/3`): a request signed by the
//! requesting authority stating subject, purpose and legal basis, sent
//! with the quorum-cosigned checkpoints the requester holds (an unsigned
//! hint, [`QueryMessage`]), and an answer signed by the
//! responder listing the subject's listings with their status, the
//! envelopes behind them with their proofs ([`crate::proven`]), and the
//! responder's heads. Both are kept, as signed bytes, in each side's query
//! register: the answers, with the checkpoints they name, are a receipt
//! the requester can show later.

use crate::codec::{self, CodecError};
use crate::fold::{ListingState, Status};
use crate::model::{
    AuthorityId, FederationId, Listing, NoticeId, SignatureBytes, SubjectKey, SubjectKind,
    TEXT_BYTES_MAX,
};
use crate::replica::{Replica, ReplicaError};
use crate::roster::Federation;
use crate::store::Store;
use crate::sync::{HEADS_MAX, HeadEntry, local_heads};
use crate::time::Timestamp;
use credence_crypto::merkle::leaf_hash;
use credence_crypto::{AuthorityKey, Digest, QUERY_DOMAIN};
use serde::{Deserialize, Serialize};

/// The request-response protocol name.
pub const QUERY_PROTOCOL: &str = "/credence/query/3";
/// Signing domain of answers.
pub const ANSWER_DOMAIN: &[u8] = b"credence/v1/answer\0";
/// Version of the query and answer formats.
pub const QUERY_VERSION: u16 = 3;
/// Most listings of one subject in an answer: a page (newest first).
pub const ANSWER_LISTINGS_MAX: usize = 64;
/// Most pages a request may ask for.
pub const QUERY_PAGES_MAX: u32 = 1024;
/// Most checkpoints a request names (one per member at most).
pub const QUERY_CHECKPOINTS_MAX: usize = crate::roster::MEMBERS_MAX;
/// Largest encoded signed request.
pub const QUERY_BYTES_MAX: usize = 3 * TEXT_BYTES_MAX + 1024;
/// Largest encoded query message: the signed request and the offer.
pub const QUERY_MESSAGE_BYTES_MAX: usize =
    QUERY_BYTES_MAX + 64 + 16 + QUERY_CHECKPOINTS_MAX * CHECKPOINT_REF_BYTES;
/// Largest encoded signed answer.
pub const ANSWER_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How far a request's time may be from the responder's clock.
pub const QUERY_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// What a requester asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// Format version.
    pub version: u16,
    /// The federation.
    pub federation: FederationId,
    /// The requesting authority.
    pub requester: AuthorityId,
    /// Identifier scheme of the subject.
    pub subject_kind: SubjectKind,
    /// The subject's identifier.
    pub subject_id: String,
    /// Why the requester asks (approval, licensing, contract...).
    pub purpose: String,
    /// The legal basis of the query.
    pub legal_basis: String,
    /// When it was asked (requester's clock).
    pub issued_at: Timestamp,
    /// Distinguishes queries asked in the same millisecond.
    pub nonce: u64,
    /// Which page of the subject's listings (newest first,
    /// [`ANSWER_LISTINGS_MAX`] a page, from 0).
    pub page: u32,
}

/// What a requester sends a responder: the signed request, and the
/// quorum-cosigned checkpoints the requester holds, at most one per log,
/// in author order. An answer proves against one of them by naming it
/// ([`QueryAnswer::named`]) instead of carrying its note. The offer is a
/// hint, not signed: the requester checks every name against the notes it
/// holds, and a receipt carries the notes themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryMessage {
    /// The signed request.
    pub request: Signed,
    /// The checkpoints offered.
    #[serde(with = "packed_refs")]
    pub offer: Vec<CheckpointRef>,
}

impl QueryMessage {
    /// Encodes (bounded).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_bounded::<_, QUERY_MESSAGE_BYTES_MAX>("query message", self)
    }

    /// Decodes (bounded, canonical) and checks the offer's order and
    /// limits ([`check_offer`]).
    pub fn decode(bytes: &[u8]) -> Result<QueryMessage, QueryError> {
        let message: QueryMessage =
            codec::decode_bounded::<_, QUERY_MESSAGE_BYTES_MAX>("query message", bytes)?;
        check_offer(&message.offer)?;
        Ok(message)
    }
}

/// An offer holds at most [`QUERY_CHECKPOINTS_MAX`] checkpoints, one per
/// log in strictly increasing author order, none of size 0.
pub fn check_offer(offer: &[CheckpointRef]) -> Result<(), QueryError> {
    let ordered = offer.windows(2).all(|w| w[0].author < w[1].author);
    if offer.len() > QUERY_CHECKPOINTS_MAX || !ordered || offer.iter().any(|c| c.size == 0) {
        return Err(QueryError::Checkpoints);
    }
    Ok(())
}

/// A checkpoint named rather than carried: its log's author, size and
/// root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The log's author.
    pub author: AuthorityId,
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: [u8; 32],
}

/// Bytes of one packed [`CheckpointRef`]: author, size (u64 little
/// endian), root.
pub const CHECKPOINT_REF_BYTES: usize = 72;

/// Checkpoint references travel packed, as one byte string of
/// [`CHECKPOINT_REF_BYTES`] each (encoded and decoded as a whole, not
/// field by field).
mod packed_refs {
    use super::{CHECKPOINT_REF_BYTES, CheckpointRef};
    use crate::model::AuthorityId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(refs: &[CheckpointRef], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(refs.len() * CHECKPOINT_REF_BYTES);
        for r in refs {
            bytes.extend_from_slice(&r.author.0);
            bytes.extend_from_slice(&r.size.to_le_bytes());
            bytes.extend_from_slice(&r.root);
        }
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CheckpointRef>, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        if bytes.len() % CHECKPOINT_REF_BYTES != 0 {
            return Err(serde::de::Error::custom(format!(
                "checkpoint references are {CHECKPOINT_REF_BYTES} bytes each, not {} in all",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(CHECKPOINT_REF_BYTES)
            .map(|c| {
                let mut author = [0u8; 32];
                let mut size = [0u8; 8];
                let mut root = [0u8; 32];
                author.copy_from_slice(&c[..32]);
                size.copy_from_slice(&c[32..40]);
                root.copy_from_slice(&c[40..]);
                CheckpointRef {
                    author: AuthorityId(author),
                    size: u64::from_le_bytes(size),
                    root,
                }
            })
            .collect())
    }
}

/// A listing as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredListing {
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer.
    pub issuer: AuthorityId,
    /// Its effective fields.
    pub listing: Listing,
    /// Its status when answered.
    pub status: Status,
    /// Joint measures may be enforced.
    pub enforceable: bool,
}

/// What a responder answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// Format version.
    pub version: u16,
    /// The federation.
    pub federation: FederationId,
    /// The id of the signed request answered ([`SignedQuery::id`]).
    pub request: [u8; 32],
    /// The answering authority.
    pub responder: AuthorityId,
    /// When it answered (responder's clock).
    pub answered_at: Timestamp,
    /// The subject's listings the requester may see.
    pub listings: Vec<AnsweredListing>,
    /// More listings exist past this page (ask for the next one).
    pub truncated: bool,
    /// The responder's heads when it answered.
    pub heads: Vec<HeadEntry>,
    /// Signed checkpoint notes the proofs lead to.
    pub checkpoints: Vec<serde_bytes::ByteBuf>,
    /// Checkpoints of the request the proofs lead to, named only (a
    /// notice's `checkpoint` index past `checkpoints` counts into these).
    #[serde(with = "packed_refs")]
    pub named: Vec<CheckpointRef>,
    /// The listings' notices and every notice their folds use, each with
    /// its inclusion proof ([`crate::proven`]).
    pub notices: Vec<crate::proven::ProvenNotice>,
}

/// Signed bytes of a request or an answer, exactly as signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// Canonical encoding of the request or answer.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// The signature over domain and body.
    pub signature: SignatureBytes,
}

/// A signed request and its decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedQuery {
    /// The signed bytes.
    pub signed: Signed,
    /// The request.
    pub request: QueryRequest,
}

/// A signed answer and its decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAnswer {
    /// The signed bytes.
    pub signed: Signed,
    /// The answer.
    pub answer: QueryAnswer,
}

/// Why a request or answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Unknown format version.
    #[error("version {0} is not supported (this node speaks {QUERY_VERSION})")]
    Version(u16),
    /// Another federation.
    #[error("it belongs to another federation")]
    OtherFederation,
    /// The signer is not a member.
    #[error("{0} is not a member of the federation")]
    NotMember(AuthorityId),
    /// The signature does not verify.
    #[error("the signature of {0} does not verify")]
    BadSignature(AuthorityId),
    /// A field is empty or too long.
    #[error("{field} must have 1 to {bytes_max} bytes")]
    Field {
        /// The field.
        field: &'static str,
        /// Its limit.
        bytes_max: usize,
    },
    /// The subject identifier is malformed.
    #[error("subject_id must be 18 ASCII characters")]
    Subject,
    /// The request's time is too far from the responder's clock.
    #[error("issued_at {issued_at} is more than {QUERY_CLOCK_SKEW_MS} ms from now ({now})")]
    Skew {
        /// The request's time.
        issued_at: Timestamp,
        /// The responder's time.
        now: Timestamp,
    },
    /// The answer is not for this request.
    #[error("the answer is for request {found}, not {expected}")]
    WrongRequest {
        /// The request sent.
        expected: Digest,
        /// What the answer names.
        found: Digest,
    },
    /// The answer's limits are broken.
    #[error("the answer holds {0} listings, heads or named checkpoints, over the limit")]
    TooLarge(usize),
    /// A page past the last one a request may ask for.
    #[error("page {0} is past the last page a query may ask for ({QUERY_PAGES_MAX})")]
    Page(u32),
    /// The checkpoints a query message offers are not one per log in
    /// author order, or too many.
    #[error(
        "the checkpoints offered must be at most {QUERY_CHECKPOINTS_MAX}, one per log in author order, each of size 1 or more"
    )]
    Checkpoints,
}

impl Signed {
    /// The id: BLAKE3 leaf hash of the encoded signed bytes.
    pub fn id(&self) -> Result<Digest, CodecError> {
        Ok(leaf_hash(&self.encode::<ANSWER_BYTES_MAX>()?))
    }

    /// Encodes (bounded).
    pub fn encode<const LIMIT: usize>(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_bounded::<_, LIMIT>("signed query or answer", self)
    }

    /// Decodes (bounded, canonical).
    pub fn decode<const LIMIT: usize>(bytes: &[u8]) -> Result<Signed, CodecError> {
        codec::decode_bounded::<_, LIMIT>("signed query or answer", bytes)
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), QueryError> {
    if text.trim().is_empty() || text.len() > TEXT_BYTES_MAX {
        return Err(QueryError::Field {
            field,
            bytes_max: TEXT_BYTES_MAX,
        });
    }
    Ok(())
}

impl QueryRequest {
    /// The subject index key.
    pub fn subject_key(&self) -> Result<SubjectKey, QueryError> {
        SubjectKey::new(self.subject_kind, &self.subject_id).ok_or(QueryError::Subject)
    }

    /// Checks the fields' limits.
    pub fn check_fields(&self) -> Result<(), QueryError> {
        self.subject_key()?;
        if self.page >= QUERY_PAGES_MAX {
            return Err(QueryError::Page(self.page));
        }
        check_text("purpose", &self.purpose)?;
        check_text("legal_basis", &self.legal_basis)
    }

    /// Signs the request with the requester's key.
    pub fn sign(self, key: &AuthorityKey) -> Result<SignedQuery, QueryError> {
        self.check_fields()?;
        let body = codec::encode_bounded::<_, QUERY_BYTES_MAX>("query request", &self)?;
        let signature = SignatureBytes(key.sign(QUERY_DOMAIN, &body));
        Ok(SignedQuery {
            signed: Signed { body, signature },
            request: self,
        })
    }
}

fn verify_signer(
    federation: &Federation,
    signer: &AuthorityId,
    domain: &[u8],
    signed: &Signed,
) -> Result<(), QueryError> {
    let key = federation
        .public_key(signer)
        .ok_or(QueryError::NotMember(*signer))?;
    key.verify(domain, &signed.body, &signed.signature.0)
        .map_err(|_| QueryError::BadSignature(*signer))
}

impl SignedQuery {
    /// Decodes and verifies a signed request received at `now`.
    pub fn verify(
        federation: &Federation,
        signed: Signed,
        now: Timestamp,
    ) -> Result<SignedQuery, QueryError> {
        let request: QueryRequest =
            codec::decode_bounded::<_, QUERY_BYTES_MAX>("query request", &signed.body)?;
        if request.version != QUERY_VERSION {
            return Err(QueryError::Version(request.version));
        }
        if request.federation != federation.id() {
            return Err(QueryError::OtherFederation);
        }
        verify_signer(federation, &request.requester, QUERY_DOMAIN, &signed)?;
        request.check_fields()?;
        if request.issued_at.0.abs_diff(now.0) > QUERY_CLOCK_SKEW_MS {
            return Err(QueryError::Skew {
                issued_at: request.issued_at,
                now,
            });
        }
        Ok(SignedQuery { signed, request })
    }

    /// The request's id (what an answer names).
    pub fn id(&self) -> Result<Digest, QueryError> {
        Ok(self.signed.id()?)
    }
}

/// Answers a verified request from a replica's records at `now`, signed by
/// `key`, with the notices behind each listing proven against the best of
/// `proofs`' candidate checkpoints and those the requester `offered`
/// ([`crate::proven::prove`]). What the requesting member is served
/// follows [`crate::access::serves`]: an auditing member sees every
/// listing, any other what its level and sharing period let it see.
pub fn answer<S: Store>(
    replica: &Replica<S>,
    query: &SignedQuery,
    offered: &[CheckpointRef],
    key: &AuthorityKey,
    now: Timestamp,
    proofs: &mut crate::proven::Proofs,
) -> Result<Result<SignedAnswer, QueryError>, ReplicaError<S::Error>> {
    let subject = match query.request.subject_key() {
        Ok(subject) => subject,
        Err(error) => return Ok(Err(error)),
    };
    let auditor = replica
        .federation()
        .member(&query.request.requester)
        .is_some_and(|m| m.auditor);
    let viewer = crate::access::Viewer {
        member: query.request.requester,
        clearance: if auditor {
            crate::access::Clearance::Auditor
        } else {
            crate::access::Clearance::Reader
        },
    };
    let mut states: Vec<ListingState> = replica
        .subject_listings(&subject, now)?
        .into_iter()
        .filter(|state| crate::access::serves(state, &viewer))
        .collect();
    states.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.id.cmp(&b.id)));
    let skip = query.request.page as usize * ANSWER_LISTINGS_MAX;
    let mut states: Vec<ListingState> = states.into_iter().skip(skip).collect();
    let mut truncated = states.len() > ANSWER_LISTINGS_MAX;
    states.truncate(ANSWER_LISTINGS_MAX);
    let proven = crate::proven::prove(replica.store(), &states, proofs, offered)
        .map_err(ReplicaError::Store)?;
    if proven.listings < states.len() {
        // The proofs of the rest do not fit one answer.
        states.truncate(proven.listings);
        truncated = true;
    }
    let request = match query.id() {
        Ok(id) => id,
        Err(error) => return Ok(Err(error)),
    };
    let answer = QueryAnswer {
        version: QUERY_VERSION,
        federation: replica.federation().id(),
        request: request.0,
        // The member's stable id, whatever key signs now.
        responder: replica.member_of_key(&AuthorityId(key.public_bytes())),
        answered_at: now,
        listings: states
            .into_iter()
            .map(|state| AnsweredListing {
                id: state.id,
                issuer: state.issuer,
                listing: state.listing,
                status: state.status,
                enforceable: state.enforceable,
            })
            .collect(),
        truncated,
        heads: local_heads(replica)?,
        checkpoints: proven.checkpoints,
        named: proven.named,
        notices: proven.notices,
    };
    Ok(sign_answer(answer, key))
}

/// Signs an answer with the responder's key.
pub fn sign_answer(answer: QueryAnswer, key: &AuthorityKey) -> Result<SignedAnswer, QueryError> {
    let body = codec::encode_bounded::<_, ANSWER_BYTES_MAX>("query answer", &answer)?;
    let signature = SignatureBytes(key.sign(ANSWER_DOMAIN, &body));
    Ok(SignedAnswer {
        signed: Signed { body, signature },
        answer,
    })
}

impl SignedAnswer {
    /// Decodes and verifies a signed answer to `request`.
    pub fn verify(
        federation: &Federation,
        request: &Digest,
        signed: Signed,
    ) -> Result<SignedAnswer, QueryError> {
        let answer: QueryAnswer =
            codec::decode_bounded::<_, ANSWER_BYTES_MAX>("query answer", &signed.body)?;
        if answer.version != QUERY_VERSION {
            return Err(QueryError::Version(answer.version));
        }
        if answer.federation != federation.id() {
            return Err(QueryError::OtherFederation);
        }
        verify_signer(federation, &answer.responder, ANSWER_DOMAIN, &signed)?;
        if answer.request != request.0 {
            return Err(QueryError::WrongRequest {
                expected: *request,
                found: Digest(answer.request),
            });
        }
        if answer.listings.len() > ANSWER_LISTINGS_MAX {
            return Err(QueryError::TooLarge(answer.listings.len()));
        }
        if answer.heads.len() > HEADS_MAX {
            return Err(QueryError::TooLarge(answer.heads.len()));
        }
        if answer.named.len() > QUERY_CHECKPOINTS_MAX {
            return Err(QueryError::TooLarge(answer.named.len()));
        }
        Ok(SignedAnswer { signed, answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use crate::testkit;

    const START: Timestamp = Timestamp(1_780_000_000_000);

    fn setup() -> (
        testkit::TestFederation,
        Replica<MemStore>,
        testkit::Workload,
    ) {
        let test = testkit::federation(3, 3);
        let work = testkit::workload(&test, 5, 300, 10, START);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let slices: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
        replica.ingest_all(&slices).unwrap();
        (test, replica, work)
    }

    fn request(test: &testkit::TestFederation, now: Timestamp) -> QueryRequest {
        QueryRequest {
            version: QUERY_VERSION,
            federation: test.federation.id(),
            requester: test.author(1),
            subject_kind: SubjectKind::LegalPerson,
            subject_id: testkit::uscc(3),
            purpose: "procurement approval".into(),
            legal_basis: "Government Procurement Law art. 22".into(),
            issued_at: now,
            nonce: 7,
            page: 0,
        }
    }

    #[test]
    fn a_signed_answer_verifies_and_names_its_request() {
        let (test, replica, work) = setup();
        let now = work.end;
        let query = request(&test, now).sign(&test.keys[1]).unwrap();
        let received = SignedQuery::verify(&test.federation, query.signed.clone(), now).unwrap();
        let answer = answer(
            &replica,
            &received,
            &[],
            &test.keys[2],
            now,
            &mut Default::default(),
        )
        .unwrap()
        .unwrap();
        let checked = SignedAnswer::verify(
            &test.federation,
            &query.id().unwrap(),
            answer.signed.clone(),
        )
        .unwrap();
        assert!(!checked.answer.listings.is_empty());
        assert!(
            checked
                .answer
                .listings
                .iter()
                .all(|l| l.listing.subject.id == testkit::uscc(3))
        );
        assert_eq!(checked.answer.heads.len(), 3);
        // Another request id, a flipped byte or a non-member: refused.
        let other = Digest([1; 32]);
        assert!(matches!(
            SignedAnswer::verify(&test.federation, &other, answer.signed.clone()),
            Err(QueryError::WrongRequest { .. })
        ));
        let mut flipped = answer.signed.clone();
        let last = flipped.body.len() - 1;
        flipped.body[last] ^= 1;
        assert!(SignedAnswer::verify(&test.federation, &query.id().unwrap(), flipped).is_err());
    }

    #[test]
    fn requests_are_checked() {
        let (test, _, work) = setup();
        let now = work.end;
        let stranger = testkit::key(99, 0);
        let mut forged = request(&test, now);
        forged.requester = AuthorityId(stranger.public_bytes());
        let forged = forged.sign(&stranger).unwrap();
        assert!(matches!(
            SignedQuery::verify(&test.federation, forged.signed, now),
            Err(QueryError::NotMember(_))
        ));
        let old = request(&test, Timestamp(now.0 - QUERY_CLOCK_SKEW_MS - 1))
            .sign(&test.keys[1])
            .unwrap();
        assert!(matches!(
            SignedQuery::verify(&test.federation, old.signed, now),
            Err(QueryError::Skew { .. })
        ));
        let mut empty = request(&test, now);
        empty.purpose = " ".into();
        assert_eq!(
            empty.sign(&test.keys[1]).unwrap_err().to_string(),
            format!("purpose must have 1 to {TEXT_BYTES_MAX} bytes")
        );
        // The checkpoints offered beside it: one per log, in author order,
        // none empty; the message round-trips.
        let offer = |author: usize, size: u64| CheckpointRef {
            author: test.author(author),
            size,
            root: [author as u8; 32],
        };
        let mut authors: Vec<usize> = (0..3).collect();
        authors.sort_by_key(|a| test.author(*a));
        let signed = request(&test, now).sign(&test.keys[1]).unwrap();
        let message = QueryMessage {
            request: signed.signed.clone(),
            offer: authors.iter().map(|a| offer(*a, 4)).collect(),
        };
        let bytes = message.encode().unwrap();
        assert_eq!(QueryMessage::decode(&bytes).unwrap(), message);
        for bad in [
            vec![offer(authors[1], 4), offer(authors[0], 4)],
            vec![offer(authors[0], 4), offer(authors[0], 5)],
            vec![offer(authors[0], 0)],
        ] {
            let unordered = QueryMessage {
                request: signed.signed.clone(),
                offer: bad,
            };
            let bytes = unordered.encode().unwrap();
            assert_eq!(
                QueryMessage::decode(&bytes).unwrap_err(),
                QueryError::Checkpoints
            );
        }
        // A packed offer whose length is not a multiple of 72: malformed.
        let mut cut = message.encode().unwrap();
        let at = cut.len() - 72 * 3 - 8;
        cut[at] -= 1;
        cut.pop();
        assert!(matches!(
            QueryMessage::decode(&cut),
            Err(QueryError::Codec(_))
        ));
        let wrong_key = request(&test, now).sign(&test.keys[2]).unwrap();
        assert!(matches!(
            SignedQuery::verify(&test.federation, wrong_key.signed, now),
            Err(QueryError::BadSignature(_))
        ));
    }
}

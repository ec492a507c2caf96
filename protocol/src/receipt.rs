//! Query receipts: a cross-region query's signed request and the signed
//! answers it got, saved so that anyone holding the roster can check
//! offline who asked what, when, under which legal basis, and what each
//! member answered.
//!
//! A receipt file is the 16 bytes `credence-receipt`, then the encoding of
//! [`Receipt`] (SPEC.md). Verification checks the federation against the
//! roster, the request's signature by a member, and each answer's
//! signature by a member, that it names this request, and that it was
//! given within the clock skew of the request. Every byte of a receipt is
//! either framing (a change makes it unreadable) or signed (a change makes
//! a signature fail).

use crate::codec::{self, CodecError};
use crate::model::{AuthorityId, FederationId};
use crate::query::{
    ANSWER_BYTES_MAX, QUERY_BYTES_MAX, QUERY_CLOCK_SKEW_MS, QueryError, QueryRequest, Signed,
    SignedAnswer, SignedQuery,
};
use crate::roster::Federation;
use serde::{Deserialize, Serialize};

/// First bytes of every receipt file.
pub const RECEIPT_MAGIC: &[u8; 16] = b"credence-receipt";
/// Receipt format version.
pub const RECEIPT_VERSION: u16 = 2;
/// Largest receipt file read.
pub const RECEIPT_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Most answers a receipt holds (one per member at most).
pub const RECEIPT_ANSWERS_MAX: usize = crate::roster::MEMBERS_MAX;

/// A saved query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_VERSION`].
    pub version: u16,
    /// The federation.
    pub federation: FederationId,
    /// The signed request.
    pub request: Signed,
    /// The signed answers, in the order they came.
    pub answers: Vec<Signed>,
}

/// Why a receipt does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The file is not a receipt this build reads.
    #[error("unreadable receipt: {0}")]
    Unreadable(String),
    /// It reads, but a check fails (which one is said).
    #[error("invalid receipt: {0}")]
    Invalid(String),
}

/// What a valid receipt shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptReport {
    /// The request.
    pub request: QueryRequest,
    /// Per answer: the responder, listings answered and how many of them
    /// were enforceable.
    pub answers: Vec<(AuthorityId, usize, usize)>,
    /// The listings folded from every answer's proven notices at the
    /// request's time, newest first.
    pub listings: Vec<crate::proven::MergedListing>,
    /// Notices an answer left out that its own checkpoints cover.
    pub disagreements: Vec<crate::proven::Disagreement>,
}

impl Receipt {
    /// The receipt of a query and the answers it got.
    pub fn new(
        federation: FederationId,
        request: &SignedQuery,
        answers: &[&SignedAnswer],
    ) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            federation,
            request: request.signed.clone(),
            answers: answers.iter().map(|a| a.signed.clone()).collect(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let body = codec::encode_bounded::<_, RECEIPT_BYTES_MAX>("receipt", self)?;
        let mut bytes = Vec::with_capacity(RECEIPT_MAGIC.len() + body.len());
        bytes.extend_from_slice(RECEIPT_MAGIC);
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Reads a receipt file's bytes (framing only; see [`Receipt::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        let body = bytes
            .strip_prefix(RECEIPT_MAGIC.as_slice())
            .ok_or_else(|| {
                ReceiptError::Unreadable("not a credence receipt (no receipt header)".into())
            })?;
        let receipt: Receipt = codec::decode_bounded::<_, RECEIPT_BYTES_MAX>("receipt", body)
            .map_err(|e| ReceiptError::Unreadable(e.to_string()))?;
        if receipt.version != RECEIPT_VERSION {
            return Err(ReceiptError::Unreadable(format!(
                "receipt version {} (this build reads version {RECEIPT_VERSION})",
                receipt.version
            )));
        }
        if receipt.answers.len() > RECEIPT_ANSWERS_MAX {
            return Err(ReceiptError::Unreadable(format!(
                "{} answers; a receipt holds at most {RECEIPT_ANSWERS_MAX}",
                receipt.answers.len()
            )));
        }
        Ok(receipt)
    }

    /// Verifies the receipt against `federation` (from the roster).
    pub fn verify(&self, federation: &Federation) -> Result<ReceiptReport, ReceiptError> {
        let invalid = |what: String| ReceiptError::Invalid(what);
        if self.federation != federation.id() {
            return Err(invalid(format!(
                "it is of federation {}, the roster is federation {}",
                self.federation,
                federation.id()
            )));
        }
        let request: QueryRequest =
            codec::decode_bounded::<_, QUERY_BYTES_MAX>("query request", &self.request.body)
                .map_err(|e| invalid(format!("the request: {e}")))?;
        // Offline, the request is checked at its own time.
        let query = SignedQuery::verify(federation, self.request.clone(), request.issued_at)
            .map_err(|e| invalid(format!("the request: {e}")))?;
        let id = query
            .id()
            .map_err(|e| invalid(format!("the request: {e}")))?;
        let subject = request
            .subject_key()
            .map_err(|e| invalid(format!("the request: {e}")))?;
        let mut answers = Vec::with_capacity(self.answers.len());
        let mut checked = Vec::with_capacity(self.answers.len());
        for (index, signed) in self.answers.iter().enumerate() {
            let at = |e: QueryError| invalid(format!("answer {}: {e}", index + 1));
            if signed.body.len() > ANSWER_BYTES_MAX {
                return Err(invalid(format!("answer {} is too large", index + 1)));
            }
            let answer = SignedAnswer::verify(federation, &id, signed.clone()).map_err(at)?;
            let skew = answer.answer.answered_at.0.abs_diff(request.issued_at.0);
            if skew > QUERY_CLOCK_SKEW_MS {
                return Err(invalid(format!(
                    "answer {} was given {skew} ms from the request's time (at most {QUERY_CLOCK_SKEW_MS})",
                    index + 1
                )));
            }
            if answers
                .iter()
                .any(|(r, _, _): &(AuthorityId, usize, usize)| *r == answer.answer.responder)
            {
                return Err(invalid(format!(
                    "two answers by {}",
                    federation.name_of(&answer.answer.responder)
                )));
            }
            // Every checkpoint, envelope and proof, and the statuses it
            // states, as the requester checked them.
            checked.push(
                crate::proven::check_answer(federation, &subject, &answer.answer)
                    .map_err(|e| invalid(format!("answer {}: {e}", index + 1)))?,
            );
            let enforceable = answer
                .answer
                .listings
                .iter()
                .filter(|l| l.enforceable)
                .count();
            answers.push((
                answer.answer.responder,
                answer.answer.listings.len(),
                enforceable,
            ));
        }
        let (listings, disagreements) = crate::proven::merge(
            &checked,
            &std::collections::BTreeMap::new(),
            &subject,
            request.issued_at,
        );
        Ok(ReceiptReport {
            request: query.request,
            answers,
            listings,
            disagreements,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NoticeKind, SubjectKind};
    use crate::query::{self, QUERY_VERSION};
    use crate::replica::Replica;
    use crate::store::{MemStore, Store};
    use crate::testkit;
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    /// Member 1 asks (with `purpose`, `nonce` and `page`); members 0 and 2
    /// answer from a replica holding one listing of member 0, proven
    /// against member 0's checkpoint that members 1 and 2 cosigned.
    fn receipt_of(purpose: &str, nonce: u64, page: u32) -> (testkit::TestFederation, Vec<u8>) {
        let test = testkit::federation(7, 3);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        replica
            .issue(
                &test.keys[0],
                NoticeKind::List(testkit::listing(1, "tax", T0)),
                T0,
            )
            .unwrap();
        let head = replica.store().head(&test.author(0)).unwrap().unwrap();
        let checkpoint = crate::checkpoint::Checkpoint::of_log(
            &test.federation.id(),
            &test.author(0),
            head.seq,
            head.root(),
        );
        let mut note = crate::checkpoint::sign(&test.keys[0], &checkpoint).unwrap();
        for w in [1, 2] {
            note.signatures.push(
                crate::checkpoint::cosign(&test.keys[w], &test.federation.id(), &note.text, 1)
                    .unwrap(),
            );
        }
        let candidates: crate::proven::Candidates =
            [(test.author(0), vec![(note, true)])].into_iter().collect();
        let now = T0.plus_ms(60_000);
        let request = QueryRequest {
            version: QUERY_VERSION,
            federation: test.federation.id(),
            requester: test.author(1),
            subject_kind: SubjectKind::LegalPerson,
            subject_id: testkit::uscc(1),
            purpose: purpose.into(),
            legal_basis: "Government Procurement Law art. 22".into(),
            issued_at: now,
            nonce,
            page,
        }
        .sign(&test.keys[1])
        .unwrap();
        let a = query::answer(
            &replica,
            &request,
            &test.keys[0],
            now,
            &mut crate::proven::Proofs::new(candidates.clone()),
        )
        .unwrap()
        .unwrap();
        let b = query::answer(
            &replica,
            &request,
            &test.keys[2],
            now.plus_ms(5),
            &mut crate::proven::Proofs::new(candidates.clone()),
        )
        .unwrap()
        .unwrap();
        let bytes = Receipt::new(test.federation.id(), &request, &[&a, &b])
            .to_bytes()
            .unwrap();
        (test, bytes)
    }

    fn receipt() -> (testkit::TestFederation, Vec<u8>) {
        receipt_of("procurement", 1, 0)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        // Any request round-trips through a receipt and verifies, with its
        // listings re-folded from the proofs.
        #[test]
        fn receipts_round_trip(
            purpose in "[a-z][a-z ]{0,40}",
            nonce in proptest::prelude::any::<u64>(),
            page in 0u32..3,
        ) {
            let (test, bytes) = receipt_of(&purpose, nonce, page);
            let receipt = Receipt::from_bytes(&bytes).unwrap();
            proptest::prop_assert_eq!(receipt.to_bytes().unwrap(), bytes);
            let report = receipt.verify(&test.federation).unwrap();
            proptest::prop_assert_eq!(report.request.nonce, nonce);
            let expected = usize::from(page == 0);
            proptest::prop_assert_eq!(report.listings.len(), expected);
            if page == 0 {
                proptest::prop_assert_eq!(
                    report.listings[0].proof,
                    crate::proven::Proof::Witnessed
                );
            }
        }
    }

    #[test]
    fn a_receipt_round_trips_and_verifies() {
        let (test, bytes) = receipt();
        let receipt = Receipt::from_bytes(&bytes).unwrap();
        assert_eq!(receipt.to_bytes().unwrap(), bytes);
        let report = receipt.verify(&test.federation).unwrap();
        assert_eq!(report.request.requester, test.author(1));
        assert_eq!(
            report.answers,
            vec![(test.author(0), 1, 1), (test.author(2), 1, 1)]
        );
        // Another federation's roster: invalid, saying why.
        let other = testkit::federation(8, 3);
        let error = receipt.verify(&other.federation).unwrap_err();
        assert!(
            error.to_string().contains("the roster is federation"),
            "{error}"
        );
    }

    // Every single-byte change makes the receipt unreadable or invalid.
    #[test]
    fn every_single_byte_change_fails() {
        let (test, bytes) = receipt();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let result = Receipt::from_bytes(&changed).and_then(|r| r.verify(&test.federation));
            assert!(
                result.is_err(),
                "byte {i} changed and the receipt still verifies"
            );
        }
    }

    #[test]
    fn unreadable_and_invalid_receipts_say_why() {
        let (test, bytes) = receipt();
        assert!(matches!(
            Receipt::from_bytes(b"hello"),
            Err(ReceiptError::Unreadable(_))
        ));
        assert!(matches!(
            Receipt::from_bytes(&bytes[..bytes.len() - 1]),
            Err(ReceiptError::Unreadable(_))
        ));
        // The same answer twice.
        let mut receipt = Receipt::from_bytes(&bytes).unwrap();
        receipt.answers.push(receipt.answers[0].clone());
        let error = receipt.verify(&test.federation).unwrap_err().to_string();
        assert!(error.contains("two answers"), "{error}");
    }
}

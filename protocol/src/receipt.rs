//! Query receipts: a cross-region query's signed request and the signed
//! answers it got, saved so that anyone holding the roster can check
//! offline who asked what, when, under which legal basis, and what each
//! member answered.
//!
//! A receipt file is the 16 bytes `credence-receipt`, then the encoding of
//! [`Receipt`] (SPEC.md). Verification checks the federation against the
//! roster, the request's signature by a member, each checkpoint the
//! receipt carries (signed by its log's author, cosigned by a quorum,
//! written one way, named by an answer), and each answer's signature by a member, that it names
//! this request, that it was given within the clock skew of the request,
//! and its checkpoints, envelopes, proofs and stated statuses. Every byte of a receipt is
//! either framing (a change makes it unreadable) or signed (a change makes
//! a signature fail).

use crate::checkpoint;
use crate::codec::{self, CodecError};
use crate::model::{AuthorityId, FederationId};
use crate::query::QUERY_CHECKPOINTS_MAX;
use crate::query::{
    ANSWER_BYTES_MAX, QUERY_BYTES_MAX, QUERY_CLOCK_SKEW_MS, QueryError, QueryRequest, Signed,
    SignedAnswer, SignedQuery,
};
use crate::roster::Federation;
use credence_crypto::note::Note;
use serde::{Deserialize, Serialize};

/// First bytes of every receipt file.
pub const RECEIPT_MAGIC: &[u8; 16] = b"credence-receipt";
/// Receipt format version.
pub const RECEIPT_VERSION: u16 = 3;
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
    /// The checkpoint notes (encoded) the request offered and the answers
    /// name without carrying, one per log, in author order.
    pub checkpoints: Vec<serde_bytes::ByteBuf>,
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
    /// The receipt of a query, the answers it got and the checkpoints
    /// they name (one per log, in author order:
    /// [`crate::engine::QueryResult::checkpoints`]).
    pub fn new(
        federation: FederationId,
        request: &SignedQuery,
        answers: &[&SignedAnswer],
        checkpoints: &[Note],
    ) -> Receipt {
        Receipt::of_signed(
            federation,
            request.signed.clone(),
            answers.iter().map(|a| a.signed.clone()).collect(),
            checkpoints,
        )
    }

    /// The receipt of a signed request, its signed answers and the
    /// checkpoints they name, as they are (see [`Receipt::verify`]).
    pub fn of_signed(
        federation: FederationId,
        request: Signed,
        answers: Vec<Signed>,
        checkpoints: &[Note],
    ) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            federation,
            request,
            answers,
            checkpoints: checkpoints
                .iter()
                .map(|n| serde_bytes::ByteBuf::from(n.encode().into_bytes()))
                .collect(),
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
        if receipt.checkpoints.len() > QUERY_CHECKPOINTS_MAX {
            return Err(ReceiptError::Unreadable(format!(
                "{} checkpoints; a receipt holds at most {QUERY_CHECKPOINTS_MAX}",
                receipt.checkpoints.len()
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
        // The checkpoints the answers name: each verified, quorum-cosigned
        // and canonical, one per log in author order.
        let mut offered = crate::proven::Offered::new();
        for (index, bytes) in self.checkpoints.iter().enumerate() {
            let at = |e: String| invalid(format!("checkpoint {}: {e}", index + 1));
            let note = Note::parse(bytes).map_err(|e| at(e.to_string()))?;
            let verified =
                checkpoint::verify_note(&note, federation).map_err(|e| at(e.to_string()))?;
            canonical(&note, &verified, federation).map_err(at)?;
            if offered
                .keys()
                .next_back()
                .is_some_and(|a| *a >= verified.author)
            {
                return Err(at("checkpoints must be one per log, in author order".into()));
            }
            offered.insert(verified.author, verified);
        }
        let mut answers = Vec::with_capacity(self.answers.len());
        let mut checked = Vec::with_capacity(self.answers.len());
        let mut used = std::collections::BTreeSet::new();
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
                crate::proven::check_answer(federation, &subject, &answer.answer, &offered)
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
            for named in &answer.answer.named {
                used.insert(named.author);
            }
        }
        // Nothing more than the answers name: one encoding for one receipt.
        if let Some((index, _)) = offered
            .keys()
            .enumerate()
            .find(|(_, author)| !used.contains(*author))
        {
            return Err(invalid(format!(
                "checkpoint {} is named by no answer",
                index + 1
            )));
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

/// A checkpoint a receipt carries is one the request offered, so cosigned
/// by a quorum, and written one way only: its author's line, then one
/// line per cosigner in key order, every line verified.
fn canonical(
    note: &Note,
    verified: &checkpoint::Verified,
    federation: &Federation,
) -> Result<(), String> {
    if !verified.witnessed(federation) {
        return Err(format!(
            "it is cosigned by {} members, fewer than the quorum of {}",
            verified.cosigners.len(),
            checkpoint::quorum(federation)
        ));
    }
    let author_first =
        checkpoint::author_line(note, &verified.checkpoint, federation, &verified.author)
            .is_some_and(|(_, line)| Some(line) == note.signatures.first());
    let ordered = note.signatures[1..]
        .windows(2)
        .all(|w| w[0].name < w[1].name);
    if !author_first || !ordered || note.signatures.len() != 1 + verified.cosigners.len() {
        return Err("its lines must be its author's signature, then each cosignature in key order, all verifying".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NoticeKind, SubjectKind};
    use crate::query::{self, QUERY_VERSION};
    use crate::replica::Replica;
    use crate::store::MemStore;
    use crate::testkit;
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    /// Member 1 asks (with `purpose`, `nonce` and `page`); members 0 and 2
    /// answer from a replica holding one listing of member 0, proven
    /// against member 0's checkpoint that members 1 and 2 cosigned: offered
    /// by the request and named by the answers (the receipt carries it) if
    /// `offer`, else carried by each answer.
    fn receipt_of(
        purpose: &str,
        nonce: u64,
        page: u32,
        offer: bool,
    ) -> (testkit::TestFederation, Vec<u8>) {
        let test = testkit::federation(7, 3);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        replica
            .issue(
                &test.keys[0],
                NoticeKind::List(testkit::listing(1, "tax", T0)),
                T0,
            )
            .unwrap();
        let note = testkit::checkpoint_note(&test, replica.store(), 0, &[1, 2], 1);
        let candidates: crate::proven::Candidates = [(test.author(0), vec![(note.clone(), true)])]
            .into_iter()
            .collect();
        let offered = testkit::checkpoint_ref(&test, &note);
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
        let offer = if offer { vec![offered] } else { Vec::new() };
        let a = query::answer(
            &replica,
            &request,
            &offer,
            &test.keys[0],
            now,
            &mut crate::proven::Proofs::new(candidates.clone()),
        )
        .unwrap()
        .unwrap();
        let b = query::answer(
            &replica,
            &request,
            &offer,
            &test.keys[2],
            now.plus_ms(5),
            &mut crate::proven::Proofs::new(candidates.clone()),
        )
        .unwrap()
        .unwrap();
        let named = !offer.is_empty() && page == 0;
        assert_eq!(a.answer.named.len(), usize::from(named));
        assert_eq!(
            a.answer.checkpoints.len(),
            usize::from(offer.is_empty() && page == 0)
        );
        let notes = if named { vec![note] } else { Vec::new() };
        let bytes = Receipt::new(test.federation.id(), &request, &[&a, &b], &notes)
            .to_bytes()
            .unwrap();
        (test, bytes)
    }

    fn receipt() -> (testkit::TestFederation, Vec<u8>) {
        receipt_of("procurement", 1, 0, true)
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
            offer in proptest::prelude::any::<bool>(),
        ) {
            let (test, bytes) = receipt_of(&purpose, nonce, page, offer);
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

    // Every single-byte change makes the receipt unreadable or invalid,
    // with the checkpoint named (carried by the receipt) or carried by
    // each answer.
    #[test]
    fn every_single_byte_change_fails() {
        for offer in [true, false] {
            let (test, bytes) = receipt_of("procurement", 1, 0, offer);
            every_byte_matters(&test, &bytes);
        }
    }

    fn every_byte_matters(test: &testkit::TestFederation, bytes: &[u8]) {
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
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
        // Without the checkpoint the answers name; with it twice; with one
        // no answer names.
        let whole = Receipt::from_bytes(&bytes).unwrap();
        let mut receipt = whole.clone();
        receipt.checkpoints.clear();
        let error = receipt.verify(&test.federation).unwrap_err().to_string();
        assert!(error.contains("did not offer"), "{error}");
        let mut receipt = whole.clone();
        receipt.checkpoints.push(receipt.checkpoints[0].clone());
        let error = receipt.verify(&test.federation).unwrap_err().to_string();
        assert!(error.contains("one per log"), "{error}");
        let (_, carried) = receipt_of("procurement", 1, 0, false);
        let mut receipt = Receipt::from_bytes(&carried).unwrap();
        assert!(receipt.checkpoints.is_empty());
        receipt.checkpoints = whole.checkpoints.clone();
        let error = receipt.verify(&test.federation).unwrap_err().to_string();
        assert!(error.contains("named by no answer"), "{error}");
    }
}

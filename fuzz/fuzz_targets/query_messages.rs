//! Signed queries and answers: decoding, verification and the requester's
//! check of an answer's checkpoints, envelopes and proofs never panic.
#![no_main]

use credence_crypto::Digest;
use credence_protocol::query::{self, Signed, SignedAnswer, SignedQuery};
use credence_protocol::{Timestamp, testkit};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static TEST: OnceLock<testkit::TestFederation> = OnceLock::new();
    let test = TEST.get_or_init(|| testkit::federation(6, 3));
    if let Ok(signed) = Signed::decode::<{ query::QUERY_BYTES_MAX + 64 }>(data) {
        let _ = SignedQuery::verify(&test.federation, signed, Timestamp(1_780_000_000_000));
    }
    if let Ok(signed) = Signed::decode::<{ query::ANSWER_BYTES_MAX + 128 }>(data) {
        let _ = SignedAnswer::verify(&test.federation, &Digest([7; 32]), signed);
    }
    // The proofs are checked after the signature; fuzz them without one.
    if let Ok(answer) = credence_protocol::codec::decode_bounded::<
        query::QueryAnswer,
        { query::ANSWER_BYTES_MAX },
    >("answer", data)
        && let Some(subject) = credence_protocol::model::SubjectKey::new(
            credence_protocol::model::SubjectKind::LegalPerson,
            &testkit::uscc(1),
        )
    {
        let _ = credence_protocol::proven::check_answer(&test.federation, &subject, &answer);
    }
});

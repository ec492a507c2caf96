//! Query messages (a signed request and its offer) and signed answers:
//! decoding, verification and the requester's
//! check of an answer's checkpoints, envelopes and proofs never panic.
#![no_main]

use credence_crypto::Digest;
use credence_protocol::proven::Offered;
use credence_protocol::query::{self, Signed, SignedAnswer, SignedQuery};
use credence_protocol::{Timestamp, testkit};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The checkpoint a request offers, as the requester verified it: member
/// 0's one-listing log cosigned by members 1 and 2 (the seeds' answers name
/// it).
fn offered(test: &testkit::TestFederation) -> Offered {
    use credence_protocol::model::NoticeKind;
    use credence_protocol::replica::Replica;
    use credence_protocol::store::MemStore;
    let at = Timestamp(1_780_000_000_000);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let listing = NoticeKind::List(testkit::listing(1, "tax", at));
    if replica.issue(&test.keys[0], listing, at).is_err() {
        return Offered::new();
    }
    let note = testkit::checkpoint_note(test, replica.store(), 0, &[1, 2], 1_780_000_000);
    credence_protocol::checkpoint::verify_note(&note, &test.federation)
        .map(|v| [(v.author, v)].into_iter().collect())
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    static TEST: OnceLock<(testkit::TestFederation, Offered)> = OnceLock::new();
    let (test, offered) = TEST.get_or_init(|| {
        let test = testkit::federation(6, 3);
        let offered = offered(&test);
        (test, offered)
    });
    if let Ok(message) = query::QueryMessage::decode(data) {
        let _ = SignedQuery::verify(
            &test.federation,
            message.request,
            Timestamp(1_780_000_000_000),
        );
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
        let _ =
            credence_protocol::proven::check_answer(&test.federation, &subject, &answer, offered);
    }
});

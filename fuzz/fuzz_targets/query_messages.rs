//! Signed queries and answers: decoding and verification never panic.
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
});

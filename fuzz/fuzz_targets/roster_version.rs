//! Roster versions and proposal files: reading arbitrary bytes never
//! panics; a signed version that reads encodes back to the same bytes;
//! taking it into a chain never panics and, when it is taken, the chain's
//! current version is consistent (its federation keeps the genesis id).
#![no_main]

use credence_protocol::governance::SignedVersion;
use credence_protocol::governance::chain::Chain;
use credence_protocol::governance::proposal::decode_proposal;
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn federation() -> &'static credence_protocol::roster::Federation {
    static FEDERATION: OnceLock<credence_protocol::roster::Federation> = OnceLock::new();
    FEDERATION.get_or_init(|| testkit::federation(7, 4).federation)
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_proposal(data);
    let Ok(signed) = SignedVersion::from_bytes(data) else {
        return;
    };
    assert_eq!(signed.to_bytes().expect("re-encodes"), data, "a signed version has one encoding");
    let mut chain = Chain::new(federation().clone());
    if chain.add(signed).is_ok() {
        assert_eq!(chain.current().federation.id(), federation().id());
        assert!(chain.current().number <= 1);
    }
});

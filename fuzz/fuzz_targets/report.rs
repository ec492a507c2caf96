//! Subject report bodies: reading arbitrary bytes as a body never panics,
//! a body that reads encodes back to the same bytes (one encoding, so one
//! signed message), and checking a signature over arbitrary bytes never
//! panics and never passes for a body the key did not sign.
#![no_main]

use credence_protocol::report::{ReportBody, SignedReport};
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = ReportBody::decode(data) {
        assert_eq!(
            body.encode().expect("re-encodes"),
            data,
            "a body has one encoding"
        );
    }
    let test = testkit::federation(7, 4);
    let signed = SignedReport {
        body: data.to_vec(),
        signature: [0x5a; 64],
    };
    assert!(
        signed.verify(&test.federation).is_err(),
        "a forged signature verified"
    );
});

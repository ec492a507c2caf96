//! Query receipts: reading and verifying arbitrary bytes never panics; a
//! receipt that reads encodes back to the same bytes (one encoding).
#![no_main]

use credence_protocol::receipt::Receipt;
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn federation() -> &'static credence_protocol::roster::Federation {
    static FEDERATION: OnceLock<credence_protocol::roster::Federation> = OnceLock::new();
    FEDERATION.get_or_init(|| testkit::federation(7, 4).federation)
}

fuzz_target!(|data: &[u8]| {
    let Ok(receipt) = Receipt::from_bytes(data) else {
        return;
    };
    assert_eq!(receipt.to_bytes().expect("re-encodes"), data, "a receipt has one encoding");
    let _ = receipt.verify(federation());
});

//! Bundles: reading never panics, and the audit of anything that reads
//! runs to a report.
#![no_main]

use credence_protocol::Timestamp;
use credence_protocol::bundle::{self, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(read) = Bundle::from_bytes(data) {
        let _ = bundle::audit(&read, Timestamp(1_780_000_000_000), &mut |_, _| {});
    }
});

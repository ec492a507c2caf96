//! Envelope and notice decoding: never panics; what decodes re-encodes to
//! the same bytes (one encoding per value).
#![no_main]

use credence_protocol::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = codec::decode_envelope(data) {
        let again = codec::encode_envelope(&envelope).expect("re-encodes");
        assert_eq!(again, data, "an envelope has one encoding");
        if let Ok(notice) = codec::decode_notice(&envelope.body) {
            let body = codec::encode_notice(&notice).expect("re-encodes");
            assert_eq!(body, envelope.body, "a notice has one encoding");
        }
    }
    if let Ok(notice) = codec::decode_notice(data) {
        assert_eq!(codec::encode_notice(&notice).expect("re-encodes"), data);
    }
});

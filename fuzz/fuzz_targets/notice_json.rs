//! Notice bodies as the HTTP API takes them (JSON): parsing never panics,
//! and a parsed notice kind survives its own JSON and the canonical codec.
#![no_main]

use credence_protocol::codec;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::{AuthorityId, FederationId, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(kind) = serde_json::from_slice::<NoticeKind>(data) else {
        return;
    };
    let json = serde_json::to_vec(&kind).expect("serialises");
    let back: NoticeKind = serde_json::from_slice(&json).expect("reads its own JSON");
    assert_eq!(back, kind);
    let notice = Notice {
        version: NOTICE_VERSION,
        federation: FederationId([1; 32]),
        roster: 3,
        author: AuthorityId([2; 32]),
        seq: 1,
        prev: NoticeId::default(),
        issued_at: Timestamp(1_780_000_000_000),
        kind,
    };
    if let Ok(bytes) = codec::encode_notice(&notice) {
        assert_eq!(
            codec::decode_notice(&bytes).expect("decodes its own encoding"),
            notice
        );
    }
});

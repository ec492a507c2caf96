//! SPEC.md's envelope and notice vectors: a listing and a withdrawal signed
//! by the first key of the test federation (seed 7, four members), byte for
//! byte. The expected bytes are in `tests/spec/`; SPEC.md shows the same.

use credence_protocol::codec;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::testkit;
use credence_protocol::time::Timestamp;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

fn vectors() -> Vec<(&'static str, Vec<u8>, NoticeId)> {
    let test = testkit::federation(7, 4);
    let list = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        author: test.author(0),
        seq: 1,
        prev: NoticeId::default(),
        issued_at: T0,
        kind: NoticeKind::List(testkit::listing(1, "tax", T0)),
    };
    let (list_id, list_bytes) = testkit::sign(&test.keys[0], &list);
    let withdraw = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        author: test.author(0),
        seq: 2,
        prev: list_id,
        issued_at: T0.plus_ms(1_000),
        kind: NoticeKind::Withdraw {
            listing: list_id,
            reason: "issued in error".into(),
            restore_reputation: true,
        },
    };
    let (withdraw_id, withdraw_bytes) = testkit::sign(&test.keys[0], &withdraw);
    vec![
        ("list", list_bytes, list_id),
        ("withdraw", withdraw_bytes, withdraw_id),
    ]
}

#[test]
fn envelope_and_notice_vectors() {
    let expected = include_str!("spec/envelopes.txt");
    let got: String = vectors()
        .into_iter()
        .map(|(name, bytes, id)| {
            // What decodes re-encodes to the very bytes.
            let envelope = codec::decode_envelope(&bytes).unwrap();
            assert_eq!(codec::encode_envelope(&envelope).unwrap(), bytes);
            format!("{name} {} {}\n", hex::encode(id.0), hex::encode(&bytes))
        })
        .collect();
    assert_eq!(got, expected, "SPEC.md's envelope vectors changed:\n{got}");
}

//! SPEC.md's envelope and notice vectors: a listing and a withdrawal signed
//! by the first key of the test federation (seed 7, four members), byte for
//! byte. The expected bytes are in `tests/spec/`; SPEC.md shows the same.

use credence_protocol::codec;
use credence_protocol::model::{
    Classification, LinkRole, LinkedPerson, NOTICE_VERSION, Notice, NoticeId, NoticeKind,
};
use credence_protocol::testkit;
use credence_protocol::time::Timestamp;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

fn vectors() -> Vec<(&'static str, Vec<u8>, NoticeId)> {
    let test = testkit::federation(7, 4);
    // Format 3: shared with two named members, and the listed company's
    // legal representative recorded beside it.
    let mut named = testkit::listing(1, "tax", T0);
    named.classification = Classification::Named;
    named.readers = vec![test.author(1), test.author(2)];
    named.readers.sort();
    named.linked = vec![LinkedPerson {
        role: LinkRole::LegalRepresentative,
        id: "11010519491231002X".into(),
        name: "Zhang San".into(),
    }];
    let list = Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: test.federation.id(),
        author: test.author(0),
        seq: 1,
        prev: NoticeId::default(),
        issued_at: T0,
        kind: NoticeKind::List(named),
    };
    let (list_id, list_bytes) = testkit::sign(&test.keys[0], &list);
    let withdraw = Notice {
        version: NOTICE_VERSION,
        roster: 0,
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
    // A public listing in notice format 2, as signed before readers and
    // linked persons, and in format 1, before roster versions: no roster
    // field, read as roster version 0. Both read as format 3 listings
    // with no readers and no linked persons.
    let format_2 = Notice {
        version: 2,
        kind: NoticeKind::List(testkit::listing(1, "tax", T0)),
        ..list.clone()
    };
    let (format_2_id, format_2_bytes) = testkit::sign(&test.keys[0], &format_2);
    let format_1 = Notice {
        version: credence_protocol::model::NOTICE_VERSION_MIN,
        ..format_2.clone()
    };
    let (format_1_id, format_1_bytes) = testkit::sign(&test.keys[0], &format_1);
    let decoded = codec::decode_notice(codec::envelope_parts(&format_1_bytes).unwrap().0).unwrap();
    assert_eq!((decoded.version, decoded.roster), (1, 0));
    vec![
        ("list", list_bytes, list_id),
        ("withdraw", withdraw_bytes, withdraw_id),
        ("list-format-2", format_2_bytes, format_2_id),
        ("list-format-1", format_1_bytes, format_1_id),
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

/// SPEC.md's roster vector: a small roster with its members given out of
/// order, normalised to its canonical bytes, and its federation id.
#[test]
fn roster_vector() {
    use credence_protocol::catalog::{Period, Rule};
    use credence_protocol::model::Severity;
    use credence_protocol::model::{AuthorityId, ListKind};
    use credence_protocol::roster::{Category, Federation, Measure, Member, Roster};
    let member = |key: &str, name: &str, black: &[&str], implements: &[&str]| {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(key, &mut bytes).unwrap();
        Member {
            key: AuthorityId(bytes),
            name: name.into(),
            region: "350100".into(),
            department: "market regulation".into(),
            issues_black: black.iter().map(|s| s.to_string()).collect(),
            issues_red: Vec::new(),
            implements: implements.iter().map(|s| s.to_string()).collect(),
            auditor: false,
            listen: Vec::new(),
        }
    };
    let roster = Roster {
        name: "spec federation".into(),
        objection_window_ms: 15 * 86_400_000,
        red_lookback_ms: 3 * 365 * 86_400_000,
        threshold: 2,
        categories: vec![
            Category {
                code: "tax".into(),
                name: "Taxation".into(),
                rules: Vec::new(),
            },
            Category {
                code: "food-drug".into(),
                name: "Food and drug safety".into(),
                rules: vec![Rule {
                    severity: Severity::Serious,
                    publish: Period {
                        default_ms: 365 * 86_400_000,
                        max_ms: 3 * 365 * 86_400_000,
                    },
                    share: Period {
                        default_ms: 3 * 365 * 86_400_000,
                        max_ms: 5 * 365 * 86_400_000,
                    },
                    repair: Period {
                        default_ms: 365 * 86_400_000,
                        max_ms: 3 * 365 * 86_400_000,
                    },
                    mandatory: vec!["procurement-ban".into()],
                }],
            },
        ],
        measures: vec![Measure {
            code: "procurement-ban".into(),
            name: "Procurement ban".into(),
            list: ListKind::Black,
            mandatory: true,
        }],
        members: vec![
            member(
                "761d33e9bee0fac04f578facc6056e0366d29a99ad86c0441aca0ad1bf0e0218",
                "Witness Bureau",
                &[],
                &["procurement-ban", "procurement-ban"],
            ),
            member(
                "6c93724e59986bad1de5f25b0c272f0ddfdbb0c662487e4d3107952aadf4e553",
                "Author Bureau",
                &["tax", "food-drug"],
                &[],
            ),
        ],
    };
    let federation = Federation::new(roster).unwrap();
    let got = format!(
        "{} {}\n",
        hex::encode(federation.id().0),
        hex::encode(federation.canonical_bytes())
    );
    assert_eq!(
        got,
        include_str!("spec/roster.txt"),
        "SPEC.md's roster vector changed:\n{got}"
    );
    // The canonical bytes read back to the same federation; any other
    // order of the same roster is refused.
    assert_eq!(
        Federation::from_canonical_bytes(federation.canonical_bytes())
            .unwrap()
            .id(),
        federation.id()
    );
}

/// SPEC.md's bundle vector: the two envelope vectors exported by a replica
/// of the test federation, with the author's signed checkpoint of its log.
#[test]
fn bundle_vector() {
    use credence_protocol::bundle::Bundle;
    use credence_protocol::replica::Replica;
    use credence_protocol::store::MemStore;
    let test = testkit::federation(7, 4);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    for (_, bytes, _) in vectors().into_iter().take(2) {
        replica.ingest(&bytes).unwrap();
    }
    let note = testkit::checkpoint_note(&test, replica.store(), 0, &[], 0);
    let bundle = Bundle::export(&replica).unwrap().with_checkpoints(&[note]);
    let bytes = bundle.to_bytes().unwrap();
    let got = format!("{}\n", hex::encode(&bytes));
    assert_eq!(
        got,
        include_str!("spec/bundle.txt"),
        "SPEC.md's bundle vector changed:\n{got}"
    );
    let report =
        credence_protocol::bundle::audit(&Bundle::from_bytes(&bytes).unwrap(), T0, &mut |_, _| {})
            .unwrap();
    assert!(report.passed());
    assert_eq!(report.checkpoints.len(), 1);
}

/// SPEC.md's query vectors: member 1 asks about the listed company, member
/// 0 (holding the listing vector alone) answers, both signed, one minute
/// after the listing.
#[test]
fn query_vectors() {
    use credence_protocol::model::SubjectKind;
    use credence_protocol::query::{self, QUERY_BYTES_MAX, QUERY_VERSION, QueryRequest};
    use credence_protocol::replica::Replica;
    use credence_protocol::store::MemStore;
    let test = testkit::federation(7, 4);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let (_, list, _) = vectors().remove(0);
    replica.ingest(&list).unwrap();
    let now = T0.plus_ms(60_000);
    // Member 0's signed checkpoint of its one-notice log, cosigned by
    // members 2 and 3 (a quorum of four): the requester holds it and offers
    // it; the proof of the listing leads to it, named, not carried.
    let note = testkit::checkpoint_note(&test, replica.store(), 0, &[2, 3], 1_767_225_630);
    let request = QueryRequest {
        version: QUERY_VERSION,
        federation: test.federation.id(),
        requester: test.author(1),
        subject_kind: SubjectKind::LegalPerson,
        subject_id: testkit::uscc(1),
        purpose: "procurement".into(),
        legal_basis: "Government Procurement Law art. 22".into(),
        issued_at: now,
        nonce: 7,
        page: 0,
    }
    .sign(&test.keys[1])
    .unwrap();
    let message = query::QueryMessage {
        request: request.signed.clone(),
        offer: vec![testkit::checkpoint_ref(&test, &note)],
    };
    let answer = query::answer(
        &replica,
        &request,
        &message.offer,
        &test.keys[0],
        now,
        &mut credence_protocol::proven::Proofs::default(),
    )
    .unwrap()
    .unwrap();
    assert!(answer.answer.checkpoints.is_empty());
    assert_eq!(answer.answer.named, message.offer);
    assert_eq!(answer.answer.notices.len(), 1);
    assert_eq!(answer.answer.notices[0].checkpoint, 0);
    let request_bytes = request.signed.encode::<{ QUERY_BYTES_MAX + 64 }>().unwrap();
    let answer_bytes = answer
        .signed
        .encode::<{ query::ANSWER_BYTES_MAX + 128 }>()
        .unwrap();
    let got = format!(
        "request {} {}\nmessage {}\nanswer {} {}\n",
        hex::encode(request.id().unwrap().0),
        hex::encode(&request_bytes),
        hex::encode(message.encode().unwrap()),
        hex::encode(answer.signed.id().unwrap().0),
        hex::encode(&answer_bytes)
    );
    assert_eq!(
        got,
        include_str!("spec/query.txt"),
        "SPEC.md's query vectors changed:\n{got}"
    );
    assert_eq!(answer.answer.request, request.id().unwrap().0);
    assert_eq!(answer.answer.listings.len(), 1);
    // The receipt of that query.
    let receipt = credence_protocol::receipt::Receipt::new(
        test.federation.id(),
        &request,
        &[&answer],
        &[note],
    );
    let bytes = receipt.to_bytes().unwrap();
    let got = format!("{}\n", hex::encode(&bytes));
    assert_eq!(
        got,
        include_str!("spec/receipt.txt"),
        "SPEC.md's receipt vector changed:\n{got}"
    );
    let report = credence_protocol::receipt::Receipt::from_bytes(&bytes)
        .unwrap()
        .verify(&test.federation)
        .unwrap();
    assert_eq!(report.answers, vec![(test.author(0), 1, 1)]);
    assert_eq!(report.listings.len(), 1);
    assert_eq!(
        report.listings[0].proof,
        credence_protocol::proven::Proof::Witnessed
    );
}

/// SPEC.md's roster version vector: version 1 of the test federation
/// (seed 7, four members, threshold three) adds a fifth member (the
/// testkit key 4 of seed 7, region 350600, blacklisting `tax`,
/// implementing `procurement-ban`) and sets the threshold to four; signed
/// by members 0, 1 and 2 and by the new member's key.
#[test]
fn roster_version_vector() {
    use credence_protocol::governance::SignedVersion;
    use credence_protocol::governance::chain::{Added, Chain};
    use credence_protocol::governance::proposal::{AllowDocument, ChangeDocument, propose};
    use credence_protocol::roster::MemberDocument;
    let test = testkit::federation(7, 4);
    let joining = testkit::key(7, 4);
    let mut chain = Chain::new(test.federation.clone());
    let version = propose(
        chain.current(),
        &ChangeDocument {
            threshold: Some(4),
            add: vec![MemberDocument {
                handle: String::new(),
                key: hex::encode(joining.public_bytes()),
                name: "Zhangzhou Market Regulation Bureau".into(),
                region: "350600".into(),
                department: "market regulation".into(),
                issues_black: vec!["tax".into()],
                issues_red: Vec::new(),
                implements: vec!["procurement-ban".into()],
                auditor: false,
                listen: Vec::new(),
            }],
            ..ChangeDocument::default()
        },
    )
    .unwrap();
    let mut signed = SignedVersion::new(&version).unwrap();
    for key in [&test.keys[0], &test.keys[1], &test.keys[2], &joining] {
        signed.sign(key);
    }
    let bytes = signed.to_bytes().unwrap();
    let got = format!("{} {}\n", hex::encode(signed.hash().0), hex::encode(&bytes));
    assert_eq!(
        got,
        include_str!("spec/roster_version.txt"),
        "SPEC.md's roster version vector changed:\n{got}"
    );
    assert_eq!(
        chain.add(SignedVersion::from_bytes(&bytes).unwrap()),
        Ok(Added::Valid {
            number: 1,
            chosen: true
        })
    );

    // Version 2 (format 2): grants member 1 an allowance of 1,000,000
    // notices; signed by members 0 to 3 (the threshold is four).
    let granting = propose(
        chain.current(),
        &ChangeDocument {
            allow: vec![AllowDocument {
                member: test.author(1).to_string(),
                notices: 1_000_000,
            }],
            ..ChangeDocument::default()
        },
    )
    .unwrap();
    assert_eq!(granting.format, 2);
    let mut signed = SignedVersion::new(&granting).unwrap();
    for key in &test.keys[..4] {
        signed.sign(key);
    }
    let bytes = signed.to_bytes().unwrap();
    let got = format!("{} {}\n", hex::encode(signed.hash().0), hex::encode(&bytes));
    assert_eq!(
        got,
        include_str!("spec/roster_version_2.txt"),
        "SPEC.md's roster version 2 vector changed:\n{got}"
    );
    assert_eq!(
        chain.add(SignedVersion::from_bytes(&bytes).unwrap()),
        Ok(Added::Valid {
            number: 2,
            chosen: true
        })
    );
    assert_eq!(chain.allowance(&test.author(1), Some(0), 2), 1_000_000);
}

/// The register of reads' vector: one record (a lookup under an account)
/// and the checkpoint of a register holding it and one query answered,
/// signed by the first key of the test federation (seed 7, four members).
fn register_vector() -> String {
    use credence_protocol::model::SubjectKind;
    use credence_protocol::register::{READ_RECORD_FORMAT, ReadKind, ReadRecord, RegisterLog};
    let test = testkit::federation(7, 4);
    let lookup = ReadRecord {
        format: READ_RECORD_FORMAT,
        at: T0,
        kind: ReadKind::Lookup,
        account: Some("procurement-desk".into()),
        requester: None,
        subject: Some((SubjectKind::LegalPerson, "91350100M000100Y43".into())),
        purpose: "procurement award".into(),
        legal_basis: "Government Procurement Law art. 22".into(),
        digest: [0x11; 32],
        request: None,
    };
    let answered = ReadRecord {
        kind: ReadKind::QueryAnswered,
        account: None,
        requester: Some(test.author(1)),
        request: Some([0x22; 32]),
        ..lookup.clone()
    };
    let mut log = RegisterLog::new();
    let mut out = String::new();
    for (name, record) in [("lookup", &lookup), ("query-answered", &answered)] {
        let bytes = record.encode().unwrap();
        log.append(&bytes);
        out.push_str(&format!("{name} {}\n", hex::encode(&bytes)));
    }
    let note = log
        .sign(&test.federation.id(), &test.author(0), &test.keys[0])
        .unwrap();
    out.push_str(&format!("root {}\n", hex::encode(log.root().0)));
    out.push_str(&note.encode());
    out
}

#[test]
fn register_vectors() {
    assert_eq!(
        register_vector(),
        include_str!("spec/register.txt"),
        "SPEC.md, \"The register of reads\", and tests/spec/register.txt move with the encoding"
    );
}

/// The subject report's vector: a report by member 0 of the test
/// federation (seed 7, four members) on a natural person whom one listing
/// records as its legal representative (status active, two notices), with
/// one consultation (register record 1 of 2, of bytes `0x33` × 40),
/// signed by member 0's key.
fn report_vector() -> String {
    use credence_protocol::fold::Status;
    use credence_protocol::model::{LinkRole, SubjectKind};
    use credence_protocol::report::{REPORT_VERSION, ReportBody, ReportedListing, ReportedRead};
    let test = testkit::federation(7, 4);
    let body = ReportBody {
        version: REPORT_VERSION,
        federation: test.federation.id(),
        member: test.author(0),
        subject_kind: SubjectKind::NaturalPerson,
        subject_id: "11010519491231002X".into(),
        at: T0,
        listings: vec![ReportedListing {
            id: NoticeId([0x44; 32]),
            issuer: test.author(1),
            status: Status::Active,
            linked: Some(LinkRole::LegalRepresentative),
            notices: vec![NoticeId([0x44; 32]), NoticeId([0x55; 32])],
        }],
        reads: vec![ReportedRead {
            index: 1,
            leaf: credence_protocol::register::ReadRecord::leaf(&[0x33; 40]).0,
        }],
        register_size: 2,
        register_root: [0x66; 32],
        truncated: false,
    };
    let signed = body.sign(&test.keys[0]).unwrap();
    assert_eq!(signed.verify(&test.federation).unwrap(), body);
    format!(
        "body {}\nsignature {}\n",
        hex::encode(&signed.body),
        hex::encode(signed.signature)
    )
}

#[test]
fn report_vectors() {
    assert_eq!(
        report_vector(),
        include_str!("spec/report.txt"),
        "SPEC.md, \"Subject reports\", and tests/spec/report.txt move with the encoding"
    );
}

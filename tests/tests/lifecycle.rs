//! The lifecycle of a listing across two authorities, driven through the
//! real `credence` binary, ending in an offline audit that passes, then
//! fails on a flipped byte and on a forged repair.

use credence_crypto::AuthorityKey;
use credence_protocol::bundle::Bundle;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::time::Timestamp;
use credence_tests::*;
use serde_bytes::ByteBuf;

// Two authorities, a genesis roster, a blacklist listing with measures, an
// objection (suspended, not enforceable, the implementer's task gone), a
// rejected ruling (active again), a repair (repaired, no longer shared),
// export, audit passes.
#[test]
fn listing_lifecycle_then_audit() {
    let fed = two_authorities();
    let bundle = fed.path("transfer.bundle");
    let listing = credence_owned(&listing_args(&fed.issuer)).ok().issued_id();
    transfer(&fed.issuer, &fed.implementer, &bundle);

    let tasks = credence(&["tasks", "--data", arg(&fed.implementer)])
        .ok()
        .stdout;
    assert!(
        tasks.contains("APPLY high-consumption-ban") && tasks.contains("APPLY more-inspections"),
        "{tasks}"
    );

    let objection = credence(&[
        "objection",
        "file",
        "--data",
        arg(&fed.implementer),
        "--listing",
        &listing,
        "--grounds",
        "the batch was recalled",
    ])
    .ok()
    .issued_id();
    let shown = show_listing(&fed.implementer, &listing);
    assert!(
        shown.contains("status suspended (enforceable: no"),
        "{shown}"
    );
    assert_eq!(
        credence(&["tasks", "--data", arg(&fed.implementer)])
            .ok()
            .stdout,
        "no tasks\n"
    );

    transfer(&fed.implementer, &fed.issuer, &bundle);
    credence(&[
        "objection",
        "rule",
        "--data",
        arg(&fed.issuer),
        "--objection",
        &objection,
        "--outcome",
        "reject",
        "--reason",
        "sale predates recall",
    ])
    .ok();
    transfer(&fed.issuer, &fed.implementer, &bundle);
    let shown = credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        arg(&fed.implementer),
        "--subject",
        "91350100M000100Y43",
    ])
    .ok()
    .stdout;
    assert!(shown.contains("status active (enforceable: yes"), "{shown}");
    assert!(shown.contains("joint punishment applies"), "{shown}");

    credence(&[
        "feedback",
        "--data",
        arg(&fed.implementer),
        "--listing",
        &listing,
        "--measure",
        "high-consumption-ban",
        "--action",
        "applied",
    ])
    .ok();
    credence(&[
        "list",
        "repair",
        "--data",
        arg(&fed.issuer),
        "--listing",
        &listing,
        "--reason",
        "rectified and fined",
    ])
    .ok();
    transfer(&fed.issuer, &fed.implementer, &bundle);
    let shown = show_listing(&fed.implementer, &listing);
    assert!(
        shown.contains("status repaired (enforceable: no, published: no, shared: no)"),
        "{shown}"
    );
    assert!(
        shown.contains("history:") && shown.contains("credit repaired"),
        "{shown}"
    );
    let tasks = credence(&["tasks", "--data", arg(&fed.implementer)])
        .ok()
        .stdout;
    assert_eq!(tasks.lines().count(), 1, "{tasks}");
    assert!(tasks.starts_with("LIFT  high-consumption-ban"), "{tasks}");

    let exported = fed.path("implementer.bundle");
    credence_tests::export(&fed.implementer, &exported);
    let audit = credence(&["audit", arg(&exported), "--roster", arg(&fed.roster)])
        .ok()
        .stdout;
    assert!(audit.contains("AUDIT PASSED"), "{audit}");
    let other = two_authorities();
    let foreign = credence(&["audit", arg(&exported), "--roster", arg(&other.roster)])
        .code(1)
        .stdout;
    assert!(
        foreign.contains("not to") && foreign.contains("AUDIT FAILED"),
        "{foreign}"
    );
    assert!(audit.contains("envelopes: 5"), "{audit}");

    flipped_byte_fails_the_audit(&fed, &exported);
    forged_repair_is_refused_and_reported(&fed, &exported, &listing);
}

fn show_listing(data: &std::path::Path, listing: &str) -> String {
    credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        arg(data),
        "--listing",
        listing,
    ])
    .ok()
    .stdout
}

// One flipped byte inside an envelope: the audit exits 1 and names the
// notice whose bytes were altered.
fn flipped_byte_fails_the_audit(fed: &TwoAuthorities, exported: &std::path::Path) {
    let mut file = std::fs::read(exported).unwrap();
    let bundle = Bundle::from_bytes(&file).unwrap();
    let envelope = bundle.envelopes[2].to_vec();
    let offset = file
        .windows(envelope.len())
        .position(|w| w == envelope.as_slice())
        .unwrap();
    let flipped_at = offset + envelope.len() / 2;
    file[flipped_at] ^= 0x04;
    let tampered = file[offset..offset + envelope.len()].to_vec();
    let tampered_id = NoticeId::from(credence_crypto::merkle::leaf_hash(&tampered));
    let path = fed.path("tampered.bundle");
    std::fs::write(&path, &file).unwrap();
    let audit = credence(&["audit", arg(&path)]).code(1).stdout;
    assert!(audit.contains("AUDIT FAILED"), "{audit}");
    assert!(
        audit.contains(&tampered_id.to_string()),
        "the tampered notice {tampered_id} is named:\n{audit}"
    );
}

// A repair by the authority that did not issue the listing is refused when
// issued (nothing stored); forced into a bundle, import refuses it and the
// audit reports it by id.
fn forged_repair_is_refused_and_reported(
    fed: &TwoAuthorities,
    exported: &std::path::Path,
    listing: &str,
) {
    let refused = credence(&[
        "list",
        "repair",
        "--data",
        arg(&fed.implementer),
        "--listing",
        listing,
        "--reason",
        "paid",
    ])
    .code(2);
    assert!(
        refused.stderr.contains("only the issuer"),
        "{}",
        refused.stderr
    );

    let mut bundle = Bundle::from_bytes(&std::fs::read(exported).unwrap()).unwrap();
    let key_text = std::fs::read_to_string(fed.implementer.join("authority.key")).unwrap();
    let key = AuthorityKey::from_key_file(&key_text).unwrap();
    let author = credence_protocol::AuthorityId(key.public_bytes());
    let head = bundle
        .heads
        .iter()
        .find(|h| h.author == author)
        .unwrap()
        .clone();
    let notice = Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: bundle.federation().unwrap().id(),
        author,
        seq: head.seq + 1,
        prev: head.id,
        issued_at: Timestamp::parse("2036-01-01").unwrap(),
        kind: NoticeKind::Repair {
            listing: listing.parse().unwrap(),
            reason: "paid".into(),
            evidence: vec![],
        },
    };
    let (forged_id, forged) = credence_protocol::testkit::sign(&key, &notice);
    bundle.envelopes.push(ByteBuf::from(forged));
    let path = fed.path("forged.bundle");
    std::fs::write(&path, bundle.to_bytes().unwrap()).unwrap();

    let imported = credence(&["import", "--data", arg(&fed.issuer), arg(&path)])
        .ok()
        .stdout;
    assert!(
        imported.contains("1 refused") && imported.contains("only the issuer"),
        "{imported}"
    );
    let audit = credence(&["audit", arg(&path)]).code(1).stdout;
    assert!(
        audit.contains(&format!("[not_issuer] notice {forged_id}")),
        "{audit}"
    );
}

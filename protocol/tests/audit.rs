//! The offline audit: a faithful export passes; tampering, forged notices,
//! missing notices and forks are each reported with the notice involved.

use credence_protocol::bundle::{AuditReport, Bundle, audit};
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeKind};
use credence_protocol::replica::Replica;
use credence_protocol::store::MemStore;
use credence_protocol::testkit::{self, TestFederation};
use credence_protocol::time::{DAY_MS, Timestamp};
use serde_bytes::ByteBuf;

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn exported(count: usize) -> (TestFederation, Replica<MemStore>, Bundle) {
    let test = testkit::federation(3, 3);
    let workload = testkit::workload(&test, 42, count, 10, T0);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    for envelope in &workload.envelopes {
        replica.ingest(envelope).unwrap();
    }
    let bundle = Bundle::export(&replica).unwrap();
    (test, replica, bundle)
}

fn run(bundle: &Bundle) -> AuditReport {
    let bytes = bundle.to_bytes().unwrap();
    let decoded = Bundle::from_bytes(&bytes).unwrap();
    audit(&decoded, T0.plus_ms(30 * DAY_MS), &mut |_, _| {}).unwrap()
}

// An export of a valid replica passes, with per-author counts that add up
// and Merkle roots equal to the replica's.
#[test]
fn faithful_export_passes() {
    let (_, replica, bundle) = exported(200);
    let report = run(&bundle);
    assert!(report.passed(), "{:?}", report.violations);
    let total: u64 = report.authors.iter().map(|a| a.notices).sum();
    assert_eq!(total as usize, bundle.envelopes.len());
    for head in credence_protocol::store::Store::heads(replica.store()).unwrap() {
        let author = report
            .authors
            .iter()
            .find(|a| a.author == head.author)
            .unwrap();
        assert_eq!(author.root, head.root());
    }
    assert!(report.statuses.values().sum::<usize>() > 0);
}

// One flipped byte inside an envelope fails the audit naming that notice
// (the id of the bytes found), and what depends on it is reported too.
#[test]
fn flipped_byte_is_named() {
    let (_, _, mut bundle) = exported(60);
    let target = 17;
    let mut bytes = bundle.envelopes[target].to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let tampered_id = credence_protocol::NoticeId::from(credence_crypto::merkle::leaf_hash(&bytes));
    bundle.envelopes[target] = ByteBuf::from(bytes);
    let report = run(&bundle);
    assert!(!report.passed());
    assert!(
        report.violations.iter().any(|v| v.notice == tampered_id),
        "{:?}",
        report.violations
    );
    assert!(report.violations.iter().any(|v| v.rule == "head"));
}

// A repair signed by a member that did not issue the listing, forced into
// the bundle, is reported as such.
#[test]
fn forged_repair_is_reported() {
    let (test, replica, mut bundle) = exported(30);
    let listing = credence_protocol::store::Store::listings(replica.store()).unwrap()[0];
    let issuer = replica.load(&listing).unwrap().unwrap().notice.author;
    let forger = (0..3).find(|&i| test.author(i) != issuer).unwrap();
    let head =
        credence_protocol::store::Store::head(replica.store(), &test.author(forger)).unwrap();
    let (seq, prev, at) = head.map_or((1, Default::default(), T0), |h| {
        (h.seq + 1, h.id, h.issued_at)
    });
    let notice = Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: test.federation.id(),
        author: test.author(forger),
        seq,
        prev,
        issued_at: at.plus_ms(400 * DAY_MS),
        kind: NoticeKind::Repair {
            listing,
            reason: "paid off".into(),
            evidence: vec![],
        },
    };
    let (id, bytes) = testkit::sign(&test.keys[forger], &notice);
    bundle.envelopes.push(ByteBuf::from(bytes));
    let report = run(&bundle);
    let violation = report
        .violations
        .iter()
        .find(|v| v.notice == id)
        .expect("the forged repair is reported");
    assert_eq!(violation.rule, "not_issuer");
    assert!(
        violation.message.contains("only the issuer"),
        "{}",
        violation.message
    );
}

// A notice missing from the middle of a log leaves its successors
// unresolved and the claimed head unreachable: both are reported.
#[test]
fn missing_notice_is_reported() {
    let (_, _, mut bundle) = exported(60);
    bundle.envelopes.remove(5);
    let report = run(&bundle);
    assert!(
        report.violations.iter().any(|v| v.rule == "unresolved"),
        "{:?}",
        report.violations
    );
    assert!(report.violations.iter().any(|v| v.rule == "head"));
}

// Fork evidence carried in a bundle is verified and reported as a fork;
// fabricated evidence (two envelopes that are not a fork) is a violation.
#[test]
fn forks_are_reported_and_fake_evidence_refused() {
    let (test, replica, mut bundle) = exported(20);
    let first = bundle.envelopes[0].clone();
    let original = replica
        .load(&credence_protocol::NoticeId::from(
            credence_crypto::merkle::leaf_hash(&first),
        ))
        .unwrap()
        .unwrap();
    let mut twin = (*original.notice).clone();
    twin.issued_at = twin.issued_at.plus_ms(1);
    let signer = (0..3).find(|&i| test.author(i) == twin.author).unwrap();
    let (_, twin_bytes) = testkit::sign(&test.keys[signer], &twin);
    bundle.forks.push(credence_protocol::bundle::BundleFork {
        first: first.clone(),
        second: ByteBuf::from(twin_bytes),
    });
    let report = run(&bundle);
    assert_eq!(report.forks.len(), 1);
    assert_eq!(report.forks[0].seq, original.notice.seq);
    assert!(!report.passed());
    bundle.forks = vec![credence_protocol::bundle::BundleFork {
        first: first.clone(),
        second: bundle.envelopes[1].clone(),
    }];
    let report = run(&bundle);
    assert!(
        report.violations.iter().any(|v| v.rule == "fork_evidence"),
        "{:?}",
        report.violations
    );
}

// Bytes that are not a bundle are refused with a clear reason.
#[test]
fn not_a_bundle() {
    let error = Bundle::from_bytes(b"PK\x03\x04 a zip file").unwrap_err();
    assert!(error.to_string().contains("not a credence bundle"));
    let (_, _, bundle) = exported(5);
    let mut bytes = bundle.to_bytes().unwrap();
    bytes.truncate(bytes.len() - 3);
    assert!(Bundle::from_bytes(&bytes).is_err());
}

// A bundle's roster bytes must be the canonical encoding, exactly as
// import requires: the same roster with its members in another order is
// refused (before, the audit re-normalised it and passed, while import
// refused it).
#[test]
fn roster_bytes_out_of_canonical_order_are_refused() {
    let (test, _, mut bundle) = exported(20);
    let mut roster = test.federation.roster().clone();
    roster.members.reverse();
    let reordered = credence_protocol::codec::encode_bounded::<
        _,
        { credence_protocol::roster::ROSTER_BYTES_MAX },
    >("roster", &roster)
    .unwrap();
    assert_ne!(reordered.as_slice(), test.federation.canonical_bytes());
    bundle.roster = ByteBuf::from(reordered);
    let bytes = bundle.to_bytes().unwrap();
    let decoded = Bundle::from_bytes(&bytes).unwrap();
    let error = audit(&decoded, T0, &mut |_, _| {}).unwrap_err().to_string();
    assert!(error.contains("not in canonical form"), "{error}");
    // The canonical bytes themselves pass.
    bundle.roster = ByteBuf::from(test.federation.canonical_bytes().to_vec());
    assert!(run(&bundle).passed());
}

// Checkpoints carried in a bundle are verified and compared with the
// replayed logs: a true one is reported (with its cosigners), one with
// another root, one past the log and one that does not verify are each a
// violation.
#[test]
fn checkpoints_are_checked_against_the_logs() {
    use credence_protocol::checkpoint::{self, Checkpoint};
    let (test, replica, bundle) = exported(40);
    let head = credence_protocol::store::Store::head(replica.store(), &test.author(0))
        .unwrap()
        .unwrap();
    let true_one = Checkpoint::of_log(
        &test.federation.id(),
        &test.author(0),
        head.seq,
        head.root(),
    );
    let mut cosigned = checkpoint::sign(&test.keys[0], &true_one).unwrap();
    cosigned
        .signatures
        .push(checkpoint::cosign(&test.keys[1], &test.federation.id(), &cosigned.text, 1).unwrap());
    let once = cosigned.clone();
    cosigned
        .signatures
        .push(checkpoint::cosign(&test.keys[2], &test.federation.id(), &cosigned.text, 2).unwrap());
    let report = run(&bundle.clone().with_checkpoints(&[once, cosigned]));
    assert!(report.passed(), "{:?}", report.violations);
    assert_eq!(report.checkpoints.len(), 2);
    assert_eq!(report.checkpoints[0].size, head.seq);
    // A quorum of three members is both others.
    assert_eq!(report.checkpoints[0].cosigners, 1);
    assert!(!report.checkpoints[0].witnessed);
    assert_eq!(report.checkpoints[1].cosigners, 2);
    assert!(report.checkpoints[1].witnessed);

    let lying = Checkpoint {
        root: credence_crypto::Digest([9; 32]),
        ..true_one.clone()
    };
    let ahead = Checkpoint {
        size: head.seq + 1,
        ..true_one.clone()
    };
    let mut forged = checkpoint::sign(&test.keys[0], &true_one).unwrap();
    forged.signatures[0].bytes[0] ^= 1;
    let report = run(&bundle.with_checkpoints(&[
        checkpoint::sign(&test.keys[0], &lying).unwrap(),
        checkpoint::sign(&test.keys[0], &ahead).unwrap(),
        forged,
    ]));
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["checkpoint_root", "checkpoint_size", "checkpoint"]);
    assert!(report.checkpoints.is_empty());
    assert!(!report.passed());
}

// A member a roster version removed keeps its log up to its cutoff, and the
// checkpoints it and its witnesses signed while it was a member are still
// checked: under the last version that had it, not refused as a stranger's.
#[test]
fn checkpoints_of_a_removed_member_are_checked_under_the_version_that_had_it() {
    use credence_protocol::checkpoint::{self, Checkpoint};
    use credence_protocol::governance::SignedVersion;
    use credence_protocol::governance::proposal::{ChangeDocument, RemoveDocument, propose};
    let (test, mut replica, _) = exported(40);
    let removed = test.author(2);
    let head = credence_protocol::store::Store::head(replica.store(), &removed)
        .unwrap()
        .expect("the workload gives member 2 a log");
    let of_log = Checkpoint::of_log(&test.federation.id(), &removed, head.seq, head.root());
    let mut note = checkpoint::sign(&test.keys[2], &of_log).unwrap();
    for (n, key) in [&test.keys[0], &test.keys[1]].into_iter().enumerate() {
        let cosigned = checkpoint::cosign(key, &test.federation.id(), &note.text, n as u64 + 1);
        note.signatures.push(cosigned.unwrap());
    }
    let lying = Checkpoint {
        root: credence_crypto::Digest([7; 32]),
        ..of_log.clone()
    };
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            remove: vec![RemoveDocument {
                member: removed.to_string(),
                after_seq: head.seq,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a removal");
    let mut signed = SignedVersion::new(&version).unwrap();
    signed.sign(&test.keys[0]);
    signed.sign(&test.keys[1]);
    replica.add_roster_version(signed).unwrap();
    assert!(replica.federation().member(&removed).is_none());
    let bundle = Bundle::export(&replica).unwrap();

    let report = run(&bundle.clone().with_checkpoints(std::slice::from_ref(&note)));
    assert!(report.passed(), "{:?}", report.violations);
    assert_eq!(report.checkpoints.len(), 1);
    assert_eq!(report.checkpoints[0].author, removed);
    assert_eq!(report.checkpoints[0].size, head.seq);
    assert!(report.checkpoints[0].witnessed);

    // Checked all the same: a root the log does not give is a violation.
    let report = run(&bundle
        .clone()
        .with_checkpoints(&[checkpoint::sign(&test.keys[2], &lying).unwrap()]));
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["checkpoint_root"]);
    assert!(
        report.violations[0].message.contains("Authority"),
        "{:?}",
        report.violations
    );

    // A log no version ever had is still a stranger's.
    let stranger = testkit::federation(99, 1);
    let foreign = Checkpoint::of_log(&test.federation.id(), &stranger.author(0), 1, head.root());
    let report =
        run(&bundle.with_checkpoints(&[checkpoint::sign(&stranger.keys[0], &foreign).unwrap()]));
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["checkpoint"]);
    assert!(
        report.violations[0].message.contains("not a member's log"),
        "{:?}",
        report.violations
    );
}

// A bundle carries the roster chain: the audit verifies it from version 0
// and checks every notice against the version it names. A version whose
// signature was altered is a violation, and the notices that name it are
// never accepted.
#[test]
fn the_roster_chain_is_audited_from_version_0() {
    use credence_protocol::governance::SignedVersion;
    use credence_protocol::governance::proposal::{ChangeDocument, propose};
    let test = testkit::federation(3, 3);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            threshold: Some(3),
            ..ChangeDocument::default()
        },
    )
    .unwrap();
    let mut signed = SignedVersion::new(&version).unwrap();
    signed.sign(&test.keys[0]);
    signed.sign(&test.keys[2]);
    replica.add_roster_version(signed).unwrap();
    let issued = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let bundle = Bundle::export(&replica).unwrap();
    assert_eq!(bundle.roster_versions.len(), 1);
    let report = run(&bundle);
    assert!(report.passed(), "{:?}", report.violations);
    assert_eq!((report.roster.versions, report.roster.current), (1, 1));

    let mut tampered = bundle.clone();
    let mut bytes = tampered.roster_versions[0].to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    tampered.roster_versions[0] = ByteBuf::from(bytes);
    let report = run(&tampered);
    assert!(!report.passed());
    assert_eq!(report.roster.current, 0);
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule).collect();
    assert!(rules.contains(&"roster_version"), "{rules:?}");
    let refused = report
        .violations
        .iter()
        .find(|v| v.notice == issued.id)
        .expect("the notice naming version 1 is reported");
    assert!(
        refused.message.contains("roster version 1"),
        "{}",
        refused.message
    );
}

// The exporter's register of reads travels in the bundle: the audit
// checks its signed checkpoint and every record's place under its root;
// a record changed or without a legal basis, or a checkpoint another
// member signed, is a violation.
#[test]
fn the_register_of_reads_is_audited() {
    use credence_protocol::bundle::BundleRegister;
    use credence_protocol::model::SubjectKind;
    use credence_protocol::register::{READ_RECORD_FORMAT, ReadKind, ReadRecord, RegisterLog};
    let (test, _, bundle) = exported(20);
    let record = |n: u8, basis: &str| ReadRecord {
        format: READ_RECORD_FORMAT,
        at: T0.plus_ms(u64::from(n)),
        kind: if n.is_multiple_of(2) {
            ReadKind::Lookup
        } else {
            ReadKind::Export
        },
        account: Some("audit-office".into()),
        requester: None,
        subject: n
            .is_multiple_of(2)
            .then(|| (SubjectKind::LegalPerson, testkit::uscc(u64::from(n)))),
        purpose: "annual audit".into(),
        legal_basis: basis.into(),
        digest: [n; 32],
        request: None,
    };
    let records: Vec<Vec<u8>> = (0..4)
        .map(|n| record(n, "Audit Law art. 20").encode().unwrap())
        .collect();
    let signed_by = |key: &credence_crypto::AuthorityKey, records: &[Vec<u8>]| {
        let mut log = RegisterLog::new();
        for bytes in records {
            log.append(bytes);
        }
        let note = log
            .sign(&test.federation.id(), &test.author(0), key)
            .unwrap();
        BundleRegister {
            member: test.author(0),
            records: records.iter().map(|r| ByteBuf::from(r.clone())).collect(),
            checkpoint: ByteBuf::from(note.encode().into_bytes()),
        }
    };
    let report = run(&bundle
        .clone()
        .with_register(signed_by(&test.keys[0], &records)));
    assert!(report.passed(), "{:?}", report.violations);
    let found = report.register.expect("a register finding");
    assert_eq!(found.records, 4);
    assert_eq!(found.kinds.get("lookup"), Some(&2));
    // Records pruned past the exporter's retention keep the signed root
    // and are counted as pruned, not as reads without a basis.
    let mut register = signed_by(&test.keys[0], &records);
    register.records[0] = ByteBuf::from(credence_protocol::register::Entry::pruned(&records[0]));
    let report = run(&bundle.clone().with_register(register));
    assert!(report.passed(), "{:?}", report.violations);
    let found = report.register.expect("a register finding");
    assert_eq!(found.kinds.get("pruned"), Some(&1));
    // A record changed after signing.
    let mut register = signed_by(&test.keys[0], &records);
    register.records[1] = ByteBuf::from(record(9, "Audit Law art. 20").encode().unwrap());
    let report = run(&bundle.clone().with_register(register));
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "register_tampered"),
        "{:?}",
        report.violations
    );
    // A record with no legal basis, signed as it is.
    let mut bad = records.clone();
    bad[2] = credence_protocol::codec::encode_bounded::<_, 8192>("record", &record(2, "")).unwrap();
    let report = run(&bundle.clone().with_register(signed_by(&test.keys[0], &bad)));
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "read_without_basis"),
        "{:?}",
        report.violations
    );
    // Signed by another member's key.
    let report = run(&bundle
        .clone()
        .with_register(signed_by(&test.keys[1], &records)));
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "register_checkpoint"),
        "{:?}",
        report.violations
    );
    // A bundle without one says so.
    assert!(run(&bundle).register.is_none());
}

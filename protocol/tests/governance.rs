//! Notices under the roster chain: a removed member's notices past its
//! cutoff are void everywhere, whenever each replica got them, and those
//! before it stay valid; after a
//! revocation the compromised key's notices past the cutoff are refused
//! and the member continues with its new key; a log never names an older
//! roster version; a notice naming a version not yet received waits for
//! it; a new member's notices are taken once its version is; the chain is
//! kept in the store and read back.

use credence_crypto::AuthorityKey;
use credence_protocol::AuthorityId;
use credence_protocol::governance::SignedVersion;
use credence_protocol::governance::chain::Added;
use credence_protocol::governance::proposal::{
    ChangeDocument, RemoveDocument, RotateDocument, propose,
};
use credence_protocol::model::{NOTICE_VERSION, NOTICE_VERSION_MIN, Notice, NoticeId, NoticeKind};
use credence_protocol::replica::{IssueError, Outcome, Replica};
use credence_protocol::roster::MemberDocument;
use credence_protocol::store::{MemStore, Store};
use credence_protocol::testkit::{self, TestFederation};
use credence_protocol::time::Timestamp;
use credence_protocol::validate::ValidationError;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01

fn setup() -> (TestFederation, Replica<MemStore>) {
    let test = testkit::federation(31, 3);
    let replica = Replica::new(test.federation.clone(), MemStore::new());
    (test, replica)
}

fn signed(
    version: &credence_protocol::governance::RosterVersion,
    keys: &[&AuthorityKey],
) -> SignedVersion {
    let mut signed = SignedVersion::new(version).expect("encodes");
    for key in keys {
        signed.sign(key);
    }
    signed
}

/// A notice of member `author` at `seq` naming roster version `roster`,
/// signed by `key`.
fn notice(
    test: &TestFederation,
    key: &AuthorityKey,
    author: usize,
    seq: u64,
    prev: NoticeId,
    roster: u64,
    subject: u64,
) -> (NoticeId, Vec<u8>) {
    let notice = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        roster,
        author: test.author(author),
        seq,
        prev,
        issued_at: T0.plus_ms(seq),
        kind: NoticeKind::List(testkit::listing(subject, "tax", T0)),
    };
    testkit::sign(key, &notice)
}

fn rejected(outcomes: &[Outcome]) -> Option<&ValidationError> {
    outcomes.iter().find_map(|outcome| match outcome {
        Outcome::Rejected { error, .. } => Some(error),
        _ => None,
    })
}

fn accepted(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Accepted { .. }))
}

#[test]
fn a_removed_member_s_notices_past_its_cutoff_are_void_everywhere_and_earlier_ones_stay() {
    let (test, mut replica) = setup();
    // Member 2 signs seq 1 to 3; seq 3 is past the cutoff the removal will
    // state. One replica gets seq 1 before the removal, another gets all
    // three before it, a third gets everything after it.
    let (one, one_bytes) = notice(&test, &test.keys[2], 2, 1, NoticeId::default(), 0, 1);
    let (two, two_bytes) = notice(&test, &test.keys[2], 2, 2, one, 0, 2);
    let (three, three_bytes) = notice(&test, &test.keys[2], 2, 3, two, 0, 3);
    assert!(accepted(&replica.ingest(&one_bytes).unwrap()));
    let mut early = Replica::new(test.federation.clone(), MemStore::new());
    for bytes in [&one_bytes, &two_bytes, &three_bytes] {
        assert!(accepted(&early.ingest(bytes).unwrap()));
    }
    assert!(
        early
            .listing_state(&three, T0.plus_ms(10))
            .unwrap()
            .is_some()
    );
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            remove: vec![RemoveDocument {
                member: test.author(2).to_string(),
                after_seq: 2,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a removal");
    let version = signed(&version, &[&test.keys[0], &test.keys[1]]);
    assert_eq!(
        replica.add_roster_version(version.clone()).unwrap(),
        Added::Valid {
            number: 1,
            chosen: true
        }
    );
    early.add_roster_version(version.clone()).unwrap();
    let mut late = Replica::new(test.federation.clone(), MemStore::new());
    late.add_roster_version(version).unwrap();
    for replica in [&mut replica, &mut early, &mut late] {
        let _ = replica.ingest(&one_bytes).unwrap();
        let _ = replica.ingest(&two_bytes).unwrap();
        // Seq 3 keeps its place in the log (whatever follows it chains on
        // it), and counts for nothing.
        let _ = replica.ingest(&three_bytes).unwrap();
        assert_eq!(
            replica.store().head(&test.author(2)).unwrap().unwrap().seq,
            3
        );
        let at = T0.plus_ms(10);
        assert!(
            replica.listing_state(&two, at).unwrap().is_some(),
            "seq 2 is at the cutoff: valid"
        );
        assert!(replica.listing_state(&three, at).unwrap().is_none());
        let decoded = replica.load_decoded(&three).unwrap().expect("stored");
        let error = replica
            .void(&decoded.notice)
            .expect("seq 3 is past the cutoff");
        assert!(
            matches!(
                error,
                ValidationError::PastCutoff {
                    version: 1,
                    after_seq: 2,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("removed"), "{error}");
        assert_eq!(error.code(), "past_cutoff");
        // Naming the version that removed it does not help: refused.
        let (_, named_bytes) = notice(&test, &test.keys[2], 2, 4, three, 1, 4);
        let outcomes = replica.ingest(&named_bytes).unwrap();
        assert!(
            matches!(
                rejected(&outcomes),
                Some(ValidationError::UnknownAuthor { .. })
            ),
            "{outcomes:?}"
        );
    }
    // Its own replica refuses to issue for it.
    let error = replica
        .issue(
            &test.keys[2],
            NoticeKind::List(testkit::listing(9, "tax", T0)),
            T0.plus_ms(10),
        )
        .unwrap_err();
    assert!(matches!(error, IssueError::Invalid(_)), "{error:?}");
}

#[test]
fn after_a_revocation_the_member_continues_with_its_new_key() {
    let (test, mut replica) = setup();
    let (one, one_bytes) = notice(&test, &test.keys[1], 1, 1, NoticeId::default(), 0, 1);
    assert!(accepted(&replica.ingest(&one_bytes).unwrap()));
    let fresh = testkit::key(77, 0);
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            rotate: vec![RotateDocument {
                member: test.author(1).to_string(),
                key: hex::encode(fresh.public_bytes()),
                after_seq: 1,
                compromised: true,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a revocation");
    let version = signed(&version, &[&test.keys[0], &test.keys[2], &fresh]);
    replica.add_roster_version(version).unwrap();

    // The thief signs seq 2 with the compromised key, naming version 0.
    let (_, stolen) = notice(&test, &test.keys[1], 1, 2, one, 0, 2);
    let outcomes = replica.ingest(&stolen).unwrap();
    let error = rejected(&outcomes).expect("the compromised key is retired past seq 1");
    assert!(
        error.to_string().contains("revoked as compromised"),
        "{error}"
    );
    // Naming version 1 with the old key: the signature does not verify.
    let (_, stolen) = notice(&test, &test.keys[1], 1, 2, one, 1, 2);
    let outcomes = replica.ingest(&stolen).unwrap();
    assert!(
        matches!(
            rejected(&outcomes),
            Some(ValidationError::BadSignature { .. })
        ),
        "{outcomes:?}"
    );
    // The old key cannot issue any more; the new one continues the log
    // under the member's stable id.
    let error = replica
        .issue(
            &test.keys[1],
            NoticeKind::List(testkit::listing(3, "tax", T0)),
            T0.plus_ms(5),
        )
        .unwrap_err();
    assert!(
        matches!(error, IssueError::Invalid(_) | IssueError::NotOurKey { .. }),
        "{error:?}"
    );
    let issued = replica
        .issue(
            &fresh,
            NoticeKind::List(testkit::listing(3, "tax", T0)),
            T0.plus_ms(5),
        )
        .expect("the new key signs seq 2");
    assert_eq!(issued.seq, 2);
    let head = replica.store().head(&test.author(1)).unwrap().unwrap();
    assert_eq!((head.seq, head.roster), (2, 1));

    // Another replica with the chain takes the member's log as it is.
    let mut other = Replica::new(test.federation.clone(), MemStore::new());
    for signed in replica.chain().signed_versions() {
        other.add_roster_version((*signed).clone()).unwrap();
    }
    assert!(accepted(&other.ingest(&one_bytes).unwrap()));
    assert!(accepted(&other.ingest(&issued.envelope).unwrap()));
}

#[test]
fn a_log_never_names_an_older_version_and_unknown_versions_wait() {
    let (test, mut replica) = setup();
    let joining = testkit::key(78, 0);
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            threshold: Some(3),
            add: vec![MemberDocument {
                handle: String::new(),
                key: hex::encode(joining.public_bytes()),
                name: "Nanping Bureau".into(),
                region: "350700".into(),
                department: "taxation".into(),
                issues_black: vec!["tax".into()],
                issues_red: Vec::new(),
                implements: Vec::new(),
                auditor: false,
                listen: Vec::new(),
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("an addition");
    let version = signed(&version, &[&test.keys[0], &test.keys[1], &joining]);

    // Before the version arrives: a notice naming it is refused as not yet
    // known, and so is the new member's.
    let (one, one_bytes) = notice(&test, &test.keys[0], 0, 1, NoticeId::default(), 1, 1);
    let outcomes = replica.ingest(&one_bytes).unwrap();
    assert!(
        matches!(
            rejected(&outcomes),
            Some(ValidationError::RosterVersionUnknown {
                named: 1,
                current: 0
            })
        ),
        "{outcomes:?}"
    );
    let joined = AuthorityId(joining.public_bytes());
    let newcomer = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        roster: 1,
        author: joined,
        seq: 1,
        prev: NoticeId::default(),
        issued_at: T0,
        kind: NoticeKind::List(testkit::listing(5, "tax", T0)),
    };
    let (_, newcomer_bytes) = testkit::sign(&joining, &newcomer);
    assert!(!accepted(&replica.ingest(&newcomer_bytes).unwrap()));

    replica.add_roster_version(version).unwrap();
    assert!(accepted(&replica.ingest(&one_bytes).unwrap()));
    assert!(accepted(&replica.ingest(&newcomer_bytes).unwrap()));
    // The next notice of member 0 names version 0 again: refused.
    let (_, back) = notice(&test, &test.keys[0], 0, 2, one, 0, 2);
    let outcomes = replica.ingest(&back).unwrap();
    assert_eq!(
        rejected(&outcomes),
        Some(&ValidationError::RosterVersionRegressed {
            previous: 1,
            found: 0
        })
    );
    assert_eq!(
        rejected(&outcomes).map(|e| e.code()),
        Some("roster_version_regressed")
    );
}

#[test]
fn format_1_notices_read_as_roster_version_0() {
    let (test, mut replica) = setup();
    let old = Notice {
        version: NOTICE_VERSION_MIN,
        federation: test.federation.id(),
        roster: 0,
        author: test.author(0),
        seq: 1,
        prev: NoticeId::default(),
        issued_at: T0,
        kind: NoticeKind::List(testkit::listing(1, "tax", T0)),
    };
    let (id, bytes) = testkit::sign(&test.keys[0], &old);
    assert!(accepted(&replica.ingest(&bytes).unwrap()));
    let stored = replica.load(&id).unwrap().expect("stored");
    assert_eq!((stored.notice.version, stored.notice.roster), (1, 0));
    // The log continues in format 2.
    let issued = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(2, "tax", T0)),
            T0,
        )
        .unwrap();
    assert_eq!(issued.seq, 2);
}

#[test]
fn the_chain_is_kept_in_the_store_and_read_back() {
    let (test, mut replica) = setup();
    let joining = testkit::key(79, 0);
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            threshold: Some(3),
            add: vec![MemberDocument {
                handle: String::new(),
                key: hex::encode(joining.public_bytes()),
                name: "Putian Bureau".into(),
                region: "350300".into(),
                department: "taxation".into(),
                issues_black: Vec::new(),
                issues_red: Vec::new(),
                implements: Vec::new(),
                auditor: true,
                listen: Vec::new(),
            }],
            ..ChangeDocument::default()
        },
    )
    .unwrap();
    replica
        .add_roster_version(signed(&version, &[&test.keys[0], &test.keys[2], &joining]))
        .unwrap();
    let hash = replica.chain().current().hash;
    let store = replica.store().clone();
    let mut reopened = Replica::new(test.federation.clone(), store);
    assert_eq!(reopened.chain().current().number, 0);
    assert_eq!(reopened.load_roster_versions().unwrap(), 1);
    assert_eq!(reopened.chain().current().hash, hash);
    assert_eq!(reopened.federation().roster().members.len(), 4);
}

#[test]
fn a_version_changes_the_catalog_and_grants_and_notices_follow_the_version_they_name() {
    use credence_protocol::governance::proposal::UpdateDocument;
    use credence_protocol::roster::{CatalogDocument, CategoryDocument};
    let (test, mut replica) = setup();
    let roster = test.federation.roster();
    let mut categories: Vec<CategoryDocument> =
        roster.categories.iter().map(|c| c.to_document()).collect();
    categories.push(CategoryDocument {
        code: "wage-arrears".into(),
        name: "Malicious non-payment of wages".into(),
        rules: Vec::new(),
    });
    let catalog = CatalogDocument {
        objection_response_window: "15d".into(),
        red_list_lookback: Some("3y".into()),
        categories,
        measures: roster.measures.clone(),
    };
    let mut granted = roster.members[0].issues_black.clone();
    granted.push("wage-arrears".into());
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            catalog: Some(catalog),
            update: vec![UpdateDocument {
                member: test.author(0).to_string(),
                issues_black: Some(granted),
                ..UpdateDocument::default()
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a catalog change");
    assert!(version.cutoffs.is_empty(), "nothing was taken away");
    replica
        .add_roster_version(signed(&version, &[&test.keys[0], &test.keys[1]]))
        .expect("valid");
    let wages = |roster_version: u64| Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        roster: roster_version,
        author: test.author(0),
        seq: 1,
        prev: NoticeId::default(),
        issued_at: T0,
        kind: NoticeKind::List(testkit::listing(8, "wage-arrears", T0)),
    };
    // Under version 0 the category does not exist.
    let (_, old) = testkit::sign(&test.keys[0], &wages(0));
    let outcomes = replica.ingest(&old).unwrap();
    assert!(
        matches!(
            rejected(&outcomes),
            Some(ValidationError::UnknownCategory { .. })
        ),
        "{outcomes:?}"
    );
    let (_, new) = testkit::sign(&test.keys[0], &wages(1));
    assert!(accepted(&replica.ingest(&new).unwrap()));
    // Issuing takes the current version, so the new category.
    replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(9, "wage-arrears", T0)),
            T0.plus_ms(5),
        )
        .expect("issued under version 1");
}

/// A notice of member `author` at `seq` of any kind, naming roster
/// version `roster`, signed by `key`.
fn notice_of(
    test: &TestFederation,
    key: &AuthorityKey,
    author: usize,
    seq: u64,
    prev: NoticeId,
    kind: NoticeKind,
) -> (NoticeId, Vec<u8>) {
    let notice = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        roster: 0,
        author: test.author(author),
        seq,
        prev,
        issued_at: T0.plus_ms(seq),
        kind,
    };
    testkit::sign(key, &notice)
}

#[test]
fn a_grant_withdrawn_voids_the_notices_past_its_cutoff_that_need_it_and_keeps_the_log() {
    let (test, mut before) = setup();
    // Member 1 lists in "tax" at seq 2 while the federation withdraws its
    // "tax" grant after seq 1; its seq 3 lists in "environment"; member 0
    // objects to the seq 2 listing.
    let (one, one_bytes) = notice(&test, &test.keys[1], 1, 1, NoticeId::default(), 0, 1);
    let (two, two_bytes) = notice(&test, &test.keys[1], 1, 2, one, 0, 2);
    let (three, three_bytes) = notice_of(
        &test,
        &test.keys[1],
        1,
        3,
        two,
        NoticeKind::List(testkit::listing(3, "environment", T0)),
    );
    let (objection, objection_bytes) = notice_of(
        &test,
        &test.keys[0],
        0,
        1,
        NoticeId::default(),
        NoticeKind::Object {
            listing: two,
            grounds: "the subject disputes the facts".into(),
            respond_by: T0.plus_ms(20 * 86_400_000),
        },
    );
    let all = [&one_bytes, &two_bytes, &three_bytes, &objection_bytes];
    for bytes in all {
        assert!(accepted(&before.ingest(bytes).unwrap()));
    }
    let remaining: Vec<String> = testkit::CATEGORIES
        .iter()
        .map(|(code, _)| code.to_string())
        .filter(|code| code != "tax")
        .collect();
    let version = propose(
        before.chain().current(),
        &ChangeDocument {
            update: vec![credence_protocol::governance::proposal::UpdateDocument {
                member: test.author(1).to_string(),
                issues_black: Some(remaining),
                after_seq: Some(1),
                ..Default::default()
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a grant withdrawn");
    let version = signed(&version, &[&test.keys[0], &test.keys[2]]);
    before.add_roster_version(version.clone()).unwrap();
    // A replica that learns the version first takes the same log.
    let mut after = Replica::new(test.federation.clone(), MemStore::new());
    after.add_roster_version(version).unwrap();
    for bytes in all {
        assert!(accepted(&after.ingest(bytes).unwrap()));
    }
    let at = T0.plus_ms(10);
    for replica in [&before, &after] {
        assert_eq!(
            replica.store().head(&test.author(1)).unwrap().unwrap(),
            before.store().head(&test.author(1)).unwrap().unwrap()
        );
        assert!(replica.listing_state(&one, at).unwrap().is_some());
        assert!(replica.listing_state(&two, at).unwrap().is_none());
        assert!(replica.listing_state(&three, at).unwrap().is_some());
        let subject = credence_protocol::model::SubjectKey::new(
            credence_protocol::model::SubjectKind::LegalPerson,
            &testkit::uscc(2),
        )
        .unwrap();
        assert!(replica.subject_listings(&subject, at).unwrap().is_empty());
        let void = replica
            .void(&replica.load_decoded(&two).unwrap().unwrap().notice)
            .expect("void");
        assert!(void.to_string().contains("tax"), "{void}");
        // The objection stays in member 0's log; it counts for nothing.
        assert!(replica.store().contains(&objection).unwrap());
        assert!(
            replica
                .void(&replica.load_decoded(&objection).unwrap().unwrap().notice)
                .is_none()
        );
    }
    // What the member signs now must hold under the new version.
    let error = before
        .issue(
            &test.keys[1],
            NoticeKind::List(testkit::listing(4, "tax", T0)),
            T0.plus_ms(10),
        )
        .unwrap_err();
    assert!(matches!(error, IssueError::Invalid(_)), "{error:?}");
}

#[test]
fn a_revocation_cuts_back_what_the_compromised_key_signed_past_the_cutoff() {
    let (test, mut replica) = setup();
    let thief = &test.keys[1];
    let (one, one_bytes) = notice(&test, thief, 1, 1, NoticeId::default(), 0, 1);
    let (two, two_bytes) = notice(&test, thief, 1, 2, one, 0, 2);
    let (_, three_bytes) = notice(&test, thief, 1, 3, two, 0, 3);
    // The thief signs two seq 2s: a fork, with evidence kept.
    let (_, other_two) = notice(&test, thief, 1, 2, one, 0, 9);
    for bytes in [&one_bytes, &two_bytes, &three_bytes] {
        assert!(accepted(&replica.ingest(bytes).unwrap()));
    }
    let outcomes = replica.ingest(&other_two).unwrap();
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Forked { .. })),
        "{outcomes:?}"
    );
    assert_eq!(replica.standing_forks().unwrap().len(), 1);
    let fresh = testkit::key(79, 0);
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            rotate: vec![RotateDocument {
                member: test.author(1).to_string(),
                key: hex::encode(fresh.public_bytes()),
                after_seq: 1,
                compromised: true,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a revocation");
    let version = signed(&version, &[&test.keys[0], &test.keys[2], &fresh]);
    replica.add_roster_version(version).unwrap();
    let cuts = replica.take_cuts();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(
        (
            cuts[0].author,
            cuts[0].kept,
            cuts[0].removed,
            cuts[0].version
        ),
        (test.author(1), 1, 2, 1)
    );
    assert!(replica.take_cuts().is_empty());
    let head = replica.store().head(&test.author(1)).unwrap().unwrap();
    assert_eq!((head.seq, head.id), (1, one));
    // What the thief signed stays stored out of the log, void.
    assert_eq!(replica.store().log_id(&test.author(1), 2).unwrap(), None);
    assert!(replica.store().contains(&two).unwrap());
    assert_eq!(replica.store().notice_count().unwrap(), 3);
    assert!(
        replica
            .listing_state(&two, T0.plus_ms(10))
            .unwrap()
            .is_none()
    );
    let void = replica
        .void(&replica.load_decoded(&two).unwrap().unwrap().notice)
        .expect("void");
    assert!(
        void.to_string().contains("revoked as compromised"),
        "{void}"
    );
    // The evidence proves the old key was misused, which the revocation
    // answered: it no longer stands against the member.
    assert_eq!(replica.store().forks().unwrap().len(), 1);
    assert!(replica.standing_forks().unwrap().is_empty());
    // The member's new key continues at seq 2: no fork.
    let issued = replica
        .issue(
            &fresh,
            NoticeKind::List(testkit::listing(5, "tax", T0)),
            T0.plus_ms(5),
        )
        .expect("the new key signs seq 2");
    assert_eq!(issued.seq, 2);
    // A replica that got the thief's notices too converges on the same log.
    let mut other = Replica::new(test.federation.clone(), MemStore::new());
    for bytes in [&one_bytes, &two_bytes, &three_bytes] {
        assert!(accepted(&other.ingest(bytes).unwrap()));
    }
    for signed in replica.chain().signed_versions() {
        other.add_roster_version((*signed).clone()).unwrap();
    }
    assert!(accepted(&other.ingest(&issued.envelope).unwrap()));
    assert_eq!(
        other.store().head(&test.author(1)).unwrap(),
        replica.store().head(&test.author(1)).unwrap()
    );
    // The thief's notices come back by sync from a replica without the
    // version: kept as orphans already, they take no place in the log.
    let outcomes = other.ingest(&three_bytes).unwrap();
    assert!(
        matches!(outcomes[..], [Outcome::Duplicate { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(other.store().head(&test.author(1)).unwrap().unwrap().seq, 2);

    // Member 0 objected to the thief's listing before the revocation. A
    // replica that never got the listing takes the objection once it has
    // the orphan it refers to, by id from a replica that keeps it.
    let (objection, objection_bytes) = notice_of(
        &test,
        &test.keys[0],
        0,
        1,
        NoticeId::default(),
        NoticeKind::Object {
            listing: two,
            grounds: "the subject disputes the facts".into(),
            respond_by: T0.plus_ms(20 * 86_400_000),
        },
    );
    assert!(accepted(&replica.ingest(&objection_bytes).unwrap()));
    let mut fresh_replica = Replica::new(test.federation.clone(), MemStore::new());
    for signed in replica.chain().signed_versions() {
        fresh_replica.add_roster_version((*signed).clone()).unwrap();
    }
    let outcomes = fresh_replica.ingest(&objection_bytes).unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Pending { .. })),
        "{outcomes:?}"
    );
    assert_eq!(fresh_replica.wanted_references(8), vec![two]);
    // Offered unasked, the thief's notice is refused; wanted, it is kept.
    let orphan = replica.store().notice(&two).unwrap().unwrap();
    let outcomes = fresh_replica.ingest(&orphan).unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Orphaned { id, .. } if *id == two)),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Accepted { id, .. } if *id == objection)),
        "{outcomes:?}"
    );
    assert!(fresh_replica.wanted_references(8).is_empty());
    assert_eq!(fresh_replica.store().head(&test.author(1)).unwrap(), None);
    let mut unasked = Replica::new(test.federation.clone(), MemStore::new());
    for signed in replica.chain().signed_versions() {
        unasked.add_roster_version((*signed).clone()).unwrap();
    }
    assert!(rejected(&unasked.ingest(&orphan).unwrap()).is_some());
    assert!(!unasked.store().contains(&two).unwrap());
}

// A replica holding a thief's notice pending (its predecessor never
// came) when the revocation arrives, and then a notice of another log
// that refers to it, takes it as an orphan when it comes again (by id):
// it leaves the pending buffer and what waited for it is released.
#[test]
fn a_pending_notice_of_a_retired_key_becomes_the_orphan_something_waits_for() {
    let (test, mut replica) = setup();
    let thief = &test.keys[1];
    let (one, one_bytes) = notice(&test, thief, 1, 1, NoticeId::default(), 0, 1);
    let (two, two_bytes) = notice(&test, thief, 1, 2, one, 0, 2);
    let (three, three_bytes) = notice(&test, thief, 1, 3, two, 0, 3);
    assert!(accepted(&replica.ingest(&one_bytes).unwrap()));
    // Seq 3 comes before seq 2, which the revocation will refuse.
    let outcomes = replica.ingest(&three_bytes).unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Pending { .. })),
        "{outcomes:?}"
    );
    let fresh = testkit::key(81, 0);
    let version = propose(
        replica.chain().current(),
        &ChangeDocument {
            rotate: vec![RotateDocument {
                member: test.author(1).to_string(),
                key: hex::encode(fresh.public_bytes()),
                after_seq: 1,
                compromised: true,
            }],
            ..ChangeDocument::default()
        },
    )
    .expect("a revocation");
    replica
        .add_roster_version(signed(&version, &[&test.keys[0], &test.keys[2], &fresh]))
        .unwrap();
    assert!(rejected(&replica.ingest(&two_bytes).unwrap()).is_some());
    // Member 0 objected to the thief's seq 3 listing before the version.
    let (objection, objection_bytes) = notice_of(
        &test,
        &test.keys[0],
        0,
        1,
        NoticeId::default(),
        NoticeKind::Object {
            listing: three,
            grounds: "the subject disputes the facts".into(),
            respond_by: T0.plus_ms(20 * 86_400_000),
        },
    );
    let _ = replica.ingest(&objection_bytes).unwrap();
    assert_eq!(replica.wanted_references(8), vec![three]);
    let outcomes = replica.ingest(&three_bytes).unwrap();
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Orphaned { id, .. } if *id == three)),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Accepted { id, .. } if *id == objection)),
        "{outcomes:?}"
    );
    assert!(replica.pending().is_empty(), "{:?}", replica.pending());
}

/// Member 0's notices of listings `from..to` issued at `at` by `issuer`.
fn issue_all(
    issuer: &mut Replica<MemStore>,
    test: &TestFederation,
    from: u64,
    to: u64,
    at: Timestamp,
) -> Vec<Vec<u8>> {
    (from..to)
        .map(|n| {
            issuer
                .issue(
                    &test.keys[0],
                    NoticeKind::List(testkit::listing(n, "tax", T0)),
                    at,
                )
                .unwrap_or_else(|e| panic!("listing {n}: {e}"))
                .envelope
        })
        .collect()
}

#[test]
fn an_allowance_lets_a_log_grow_past_its_budget_once_and_every_replica_agrees() {
    use credence_protocol::governance::proposal::AllowDocument;
    use credence_protocol::replica::AUTHOR_NOTICE_BURST;
    const ALLOWED: u64 = 300;
    let (test, mut issuer) = setup();
    issuer.advance_clock(T0);
    let available = |issuer: &Replica<MemStore>, t: Timestamp| {
        issuer.notices_available(&test.author(0), t).unwrap()
    };
    assert_eq!(available(&issuer, T0), AUTHOR_NOTICE_BURST);
    let mut envelopes = issue_all(&mut issuer, &test, 0, AUTHOR_NOTICE_BURST, T0);
    assert_eq!(available(&issuer, T0), 0);
    // The budget refills: 72,000 an hour, one every 50 ms.
    assert_eq!(available(&issuer, T0.plus_ms(50 * 7 + 49)), 7);
    let over = |issuer: &mut Replica<MemStore>, n: u64| {
        matches!(
            issuer.issue(
                &test.keys[0],
                NoticeKind::List(testkit::listing(n, "tax", T0)),
                T0,
            ),
            Err(IssueError::OverBudget { .. })
        )
    };
    assert!(over(&mut issuer, 999_999), "the burst is spent");
    // The federation grants member 0 an allowance (and member 1 one it
    // never uses).
    let grant = |notices: u64, member: usize| AllowDocument {
        member: test.author(member).to_string(),
        notices,
    };
    let version = propose(
        issuer.chain().current(),
        &ChangeDocument {
            allow: vec![grant(ALLOWED, 0), grant(7, 1)],
            ..ChangeDocument::default()
        },
    )
    .expect("a valid change");
    let version = signed(&version, &[&test.keys[0], &test.keys[1], &test.keys[2]]);
    issuer.add_roster_version(version.clone()).unwrap();
    assert_eq!(available(&issuer, T0), ALLOWED);
    // At the same instant, exactly the allowance more.
    envelopes.extend(issue_all(
        &mut issuer,
        &test,
        AUTHOR_NOTICE_BURST,
        AUTHOR_NOTICE_BURST + ALLOWED,
        T0,
    ));
    assert!(over(&mut issuer, 999_998), "the allowance is spent");
    // A later version grants nothing again: the allowance was taken once.
    let next = propose(
        issuer.chain().current(),
        &ChangeDocument {
            threshold: Some(2),
            ..ChangeDocument::default()
        },
    )
    .expect("a valid change");
    assert_eq!(next.format, 1);
    let next = signed(&next, &[&test.keys[0], &test.keys[1], &test.keys[2]]);
    issuer.add_roster_version(next.clone()).unwrap();
    assert!(over(&mut issuer, 999_997), "a later version grants nothing");
    assert_eq!(available(&issuer, T0), 0);
    let head = issuer.store().head(&test.author(0)).unwrap().unwrap();
    assert_eq!(head.seq, AUTHOR_NOTICE_BURST + ALLOWED);
    assert_eq!(head.roster, 1);

    // A replica with the version before the notices, and one that gets
    // the notices first (those naming version 1 wait for it), take the
    // same log, with the same budget; both refuse one more notice signed
    // by hand.
    let mut before = Replica::new(test.federation.clone(), MemStore::new());
    before.advance_clock(T0);
    before.add_roster_version(version.clone()).unwrap();
    let mut after = Replica::new(test.federation.clone(), MemStore::new());
    after.advance_clock(T0);
    for bytes in &envelopes {
        before.ingest(bytes).unwrap();
        after.ingest(bytes).unwrap();
    }
    after.add_roster_version(version).unwrap();
    // A replica holds only so many notices pending per author: sync
    // brings again those it dropped.
    for bytes in &envelopes[AUTHOR_NOTICE_BURST as usize..] {
        after.ingest(bytes).unwrap();
    }
    let extra = Notice {
        version: NOTICE_VERSION,
        federation: test.federation.id(),
        roster: 1,
        author: test.author(0),
        seq: head.seq + 1,
        prev: head.id,
        issued_at: T0,
        kind: NoticeKind::List(testkit::listing(999_996, "tax", T0)),
    };
    let (_, extra) = testkit::sign(&test.keys[0], &extra);
    for replica in [&mut before, &mut after] {
        assert_eq!(
            replica.store().head(&test.author(0)).unwrap(),
            Some(head.clone())
        );
        assert!(matches!(
            rejected(&replica.ingest(&extra).unwrap()),
            Some(ValidationError::OverBudget { .. })
        ));
    }
    // Without the version, the same log stops at the burst.
    let mut without = Replica::new(test.federation.clone(), MemStore::new());
    without.advance_clock(T0);
    for bytes in &envelopes[..AUTHOR_NOTICE_BURST as usize] {
        without.ingest(bytes).unwrap();
    }
    let stored = without.store().head(&test.author(0)).unwrap().unwrap();
    assert_eq!(stored.seq, AUTHOR_NOTICE_BURST);
}

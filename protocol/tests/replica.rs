//! The replica's rules, one test per way a notice is accepted, held or
//! refused, driven through the public API on an in-memory store.

use credence_protocol::AuthorityId;
use credence_protocol::fold::Status;
use credence_protocol::model::{
    FeedbackAction, ListingChange, NOTICE_VERSION, Notice, NoticeId, NoticeKind, Remedy,
    RulingOutcome,
};
use credence_protocol::replica::{CheckedNotice, IssueError, Outcome, Replica, Waiting};
use credence_protocol::store::{MemStore, Store};
use credence_protocol::testkit::{self, TestFederation};
use credence_protocol::time::{DAY_MS, Timestamp};
use credence_protocol::validate::ValidationError;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01

fn setup() -> (TestFederation, Replica<MemStore>) {
    let test = testkit::federation(7, 3);
    let replica = Replica::new(test.federation.clone(), MemStore::new());
    (test, replica)
}

fn notice(
    test: &TestFederation,
    author: usize,
    seq: u64,
    prev: NoticeId,
    at: Timestamp,
    kind: NoticeKind,
) -> Notice {
    Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: test.federation.id(),
        author: test.author(author),
        seq,
        prev,
        issued_at: at,
        kind,
    }
}

fn rejected(outcomes: &[Outcome]) -> &ValidationError {
    match outcomes {
        [Outcome::Rejected { error, .. }] => error,
        other => panic!("expected one rejection, got {other:?}"),
    }
}

// A listing issued by one replica is accepted by another, and a second
// delivery is a duplicate.
#[test]
fn issue_then_ingest_elsewhere() {
    let (test, mut a) = setup();
    let (_, mut b) = setup();
    let issued = a
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "food-drug", T0)),
            T0,
        )
        .unwrap();
    assert_eq!(issued.seq, 1);
    let outcomes = b.ingest(&issued.envelope).unwrap();
    assert!(matches!(outcomes[..], [Outcome::Accepted { seq: 1, .. }]));
    assert!(matches!(
        b.ingest(&issued.envelope).unwrap()[..],
        [Outcome::Duplicate { .. }]
    ));
    assert_eq!(a.store().heads().unwrap(), b.store().heads().unwrap());
}

// A notice after a gap waits, and is accepted when the gap fills; a notice
// about a listing not yet seen waits for it.
#[test]
fn gaps_and_references_wait() {
    let (test, mut source) = setup();
    let first = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let second = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(2, "tax", T0)),
            T0,
        )
        .unwrap();
    let objection = source
        .issue(
            &test.keys[1],
            NoticeKind::Object {
                listing: first.id,
                grounds: "paid in full".into(),
                respond_by: T0.plus_ms(20 * DAY_MS),
            },
            T0,
        )
        .unwrap();
    let (_, mut replica) = setup();
    let out = replica.ingest(&objection.envelope).unwrap();
    assert_eq!(
        out,
        vec![Outcome::Pending {
            id: objection.id,
            waiting: Waiting::Reference(first.id)
        }]
    );
    let out = replica.ingest(&second.envelope).unwrap();
    assert!(matches!(
        out[0],
        Outcome::Pending {
            waiting: Waiting::Predecessor { seq: 1, .. },
            ..
        }
    ));
    assert_eq!(replica.pending_count(), 2);
    let out = replica.ingest(&first.envelope).unwrap();
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out.iter().all(|o| matches!(o, Outcome::Accepted { .. })));
    assert_eq!(replica.pending_count(), 0);
    assert_eq!(replica.store().notice_count().unwrap(), 3);
}

// A second validly signed notice at a seq already taken is a fork: it is
// refused and both envelopes are kept as evidence.
#[test]
fn fork_detected_and_kept() {
    let (test, mut replica) = setup();
    let listing = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let other = notice(
        &test,
        0,
        1,
        NoticeId::default(),
        T0,
        NoticeKind::List(testkit::listing(2, "tax", T0)),
    );
    let (other_id, other_bytes) = testkit::sign(&test.keys[0], &other);
    let out = replica.ingest(&other_bytes).unwrap();
    assert_eq!(
        out,
        vec![Outcome::Forked {
            id: other_id,
            author: test.author(0),
            seq: 1,
            existing: listing.id
        }]
    );
    let forks = replica.store().forks().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].first, listing.envelope);
    assert_eq!(forks[0].second, other_bytes);
}

// Two conflicting notices both waiting for the same gap are a fork too.
#[test]
fn fork_among_pending_notices() {
    let (test, mut replica) = setup();
    let one = notice(
        &test,
        0,
        3,
        NoticeId([1; 32]),
        T0,
        NoticeKind::List(testkit::listing(1, "tax", T0)),
    );
    let two = notice(
        &test,
        0,
        3,
        NoticeId([2; 32]),
        T0,
        NoticeKind::List(testkit::listing(2, "tax", T0)),
    );
    replica
        .ingest(&testkit::sign(&test.keys[0], &one).1)
        .unwrap();
    let second = testkit::sign(&test.keys[0], &two).1;
    let out = replica.ingest(&second).unwrap();
    assert!(
        matches!(out[..], [Outcome::Forked { seq: 3, .. }]),
        "{out:?}"
    );
    // Seen again, the conflicting notice is a duplicate: evidence that is
    // forwarded on cannot come back as a new fork and loop.
    let again = replica.ingest(&second).unwrap();
    assert!(
        matches!(again[..], [Outcome::Duplicate { .. }]),
        "{again:?}"
    );
    assert_eq!(replica.store().forks().unwrap().len(), 1);
}

// prev must name the previous notice; time must not run backwards in a log.
#[test]
fn chain_rules() {
    let (test, mut replica) = setup();
    let first = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let bad_prev = notice(
        &test,
        0,
        2,
        NoticeId([9; 32]),
        T0,
        NoticeKind::List(testkit::listing(2, "tax", T0)),
    );
    let out = replica
        .ingest(&testkit::sign(&test.keys[0], &bad_prev).1)
        .unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::PrevMismatch { seq: 2, .. }
    ));
    let earlier = notice(
        &test,
        0,
        2,
        first.id,
        Timestamp(T0.0 - 1),
        NoticeKind::List(testkit::listing(2, "tax", T0)),
    );
    let out = replica
        .ingest(&testkit::sign(&test.keys[0], &earlier).1)
        .unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::IssuedAtRegressed { .. }
    ));
    let zero = notice(
        &test,
        0,
        0,
        NoticeId::default(),
        T0,
        NoticeKind::List(testkit::listing(2, "tax", T0)),
    );
    let out = replica
        .ingest(&testkit::sign(&test.keys[0], &zero).1)
        .unwrap();
    assert_eq!(rejected(&out), &ValidationError::SeqZero);
}

// Signatures: a notice signed by another key than its author's, and a
// notice by a key outside the roster, are refused.
#[test]
fn signature_and_membership() {
    let (test, mut replica) = setup();
    let n = notice(
        &test,
        0,
        1,
        NoticeId::default(),
        T0,
        NoticeKind::List(testkit::listing(1, "tax", T0)),
    );
    let out = replica.ingest(&testkit::sign(&test.keys[1], &n).1).unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::BadSignature { .. }
    ));
    let outsider = testkit::key(99, 0);
    let mut foreign = n.clone();
    foreign.author = AuthorityId(outsider.public_bytes());
    let out = replica
        .ingest(&testkit::sign(&outsider, &foreign).1)
        .unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::UnknownAuthor { .. }
    ));
    let mut other_federation = n;
    other_federation.federation = testkit::federation(8, 3).federation.id();
    let out = replica
        .ingest(&testkit::sign(&test.keys[0], &other_federation).1)
        .unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::WrongFederation { .. }
    ));
}

// Only the issuer may amend, repair, withdraw or rule; feedback only from
// an implementer, and never "declined" for a mandatory measure.
#[test]
fn authority_rules() {
    let (test, mut replica) = setup();
    let listing = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let later = T0.plus_ms(100 * DAY_MS);
    let repair = NoticeKind::Repair {
        listing: listing.id,
        reason: "fine paid".into(),
        evidence: vec![],
    };
    let error = replica
        .issue(&test.keys[1], repair.clone(), later)
        .unwrap_err();
    assert!(
        matches!(
            error,
            IssueError::Invalid(ValidationError::NotIssuer {
                action: "repair",
                ..
            })
        ),
        "{error}"
    );
    let error = replica
        .issue(&test.keys[0], repair, T0.plus_ms(DAY_MS))
        .unwrap_err();
    assert!(
        matches!(
            error,
            IssueError::Invalid(ValidationError::RepairTooEarly { .. })
        ),
        "{error}"
    );
    let withdraw = NoticeKind::Withdraw {
        listing: listing.id,
        reason: "error".into(),
        restore_reputation: true,
    };
    assert!(matches!(
        replica.issue(&test.keys[2], withdraw, later).unwrap_err(),
        IssueError::Invalid(ValidationError::NotIssuer {
            action: "withdraw",
            ..
        })
    ));
    let declined = NoticeKind::Feedback {
        listing: listing.id,
        measure: "procurement-ban".into(),
        action: FeedbackAction::Declined("no tenders open".into()),
    };
    assert!(matches!(
        replica.issue(&test.keys[1], declined, later).unwrap_err(),
        IssueError::Invalid(ValidationError::MandatoryMeasureDeclined { .. })
    ));
    let by_issuer = NoticeKind::Feedback {
        listing: listing.id,
        measure: "procurement-ban".into(),
        action: FeedbackAction::Applied,
    };
    assert!(matches!(
        replica.issue(&test.keys[0], by_issuer, later).unwrap_err(),
        IssueError::Invalid(ValidationError::NotImplementer { .. })
    ));
    let red_measure = NoticeKind::Feedback {
        listing: listing.id,
        measure: "green-channel".into(),
        action: FeedbackAction::Applied,
    };
    assert!(matches!(
        replica
            .issue(&test.keys[1], red_measure, later)
            .unwrap_err(),
        IssueError::Invalid(ValidationError::UnknownMeasure { .. })
    ));
    let amend = NoticeKind::Amend {
        listing: listing.id,
        changes: vec![ListingChange::Measures(vec!["green-channel".into()])],
    };
    assert!(matches!(
        replica.issue(&test.keys[0], amend, later).unwrap_err(),
        IssueError::Invalid(ValidationError::UnknownMeasure { .. })
    ));
    let unknown = NoticeKind::Withdraw {
        listing: NoticeId([5; 32]),
        reason: "x".into(),
        restore_reputation: false,
    };
    assert!(matches!(
        replica.issue(&test.keys[0], unknown, later).unwrap_err(),
        IssueError::UnknownReference { .. }
    ));
    assert_eq!(
        replica.store().notice_count().unwrap(),
        1,
        "nothing refused was stored"
    );
}

// Objections: the issuer gets at least the minimum window; one ruling per
// objection; a ruling names an objection, not a listing.
#[test]
fn objection_rules() {
    let (test, mut replica) = setup();
    let listing = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let too_soon = NoticeKind::Object {
        listing: listing.id,
        grounds: "wrong company".into(),
        respond_by: T0.plus_ms(DAY_MS),
    };
    assert!(matches!(
        replica.issue(&test.keys[1], too_soon, T0).unwrap_err(),
        IssueError::Invalid(ValidationError::RespondByTooSoon { .. })
    ));
    let objection = replica
        .issue(
            &test.keys[1],
            NoticeKind::Object {
                listing: listing.id,
                grounds: "wrong company".into(),
                respond_by: T0.plus_ms(20 * DAY_MS),
            },
            T0,
        )
        .unwrap();
    let rule = |objection| NoticeKind::Rule {
        objection,
        outcome: RulingOutcome::Rejected,
        reason: "records match".into(),
    };
    assert!(matches!(
        replica
            .issue(&test.keys[0], rule(listing.id), T0)
            .unwrap_err(),
        IssueError::Invalid(ValidationError::NotAnObjection { .. })
    ));
    assert!(matches!(
        replica
            .issue(&test.keys[1], rule(objection.id), T0)
            .unwrap_err(),
        IssueError::Invalid(ValidationError::NotIssuer { .. })
    ));
    replica
        .issue(&test.keys[0], rule(objection.id), T0)
        .unwrap();
    assert!(matches!(
        replica
            .issue(&test.keys[0], rule(objection.id), T0)
            .unwrap_err(),
        IssueError::Invalid(ValidationError::AlreadyRuled { .. })
    ));
}

// The lifecycle of the design: suspended while an objection is open,
// active again after a rejected ruling, corrected by an upheld one,
// repaired at the end; the implementer's task follows.
#[test]
fn lifecycle_and_tasks() {
    let (test, mut replica) = setup();
    let implementer = test.author(1);
    let listing = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let state = |r: &Replica<MemStore>, t| r.listing_state(&listing.id, t).unwrap().unwrap();
    assert_eq!(state(&replica, Timestamp(T0.0 - 1)).status, Status::Pending);
    assert_eq!(state(&replica, T0).status, Status::Active);
    assert!(state(&replica, T0).published);
    let tasks = replica.tasks(&implementer, T0).unwrap();
    assert_eq!(tasks.len(), 2, "apply both measures it implements");
    let objection = replica
        .issue(
            &test.keys[2],
            NoticeKind::Object {
                listing: listing.id,
                grounds: "paid".into(),
                respond_by: T0.plus_ms(15 * DAY_MS),
            },
            T0,
        )
        .unwrap();
    let suspended = state(&replica, T0);
    assert_eq!(
        (suspended.status, suspended.enforceable, suspended.published),
        (Status::Suspended, false, false)
    );
    assert!(
        replica.tasks(&implementer, T0).unwrap().is_empty(),
        "no enforcement while an objection is open"
    );
    assert_eq!(
        state(&replica, T0.plus_ms(16 * DAY_MS))
            .overdue_objections()
            .count(),
        1
    );
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Rule {
                objection: objection.id,
                outcome: RulingOutcome::Rejected,
                reason: "unpaid".into(),
            },
            T0,
        )
        .unwrap();
    assert_eq!(state(&replica, T0).status, Status::Active);
    replica
        .issue(
            &test.keys[1],
            NoticeKind::Feedback {
                listing: listing.id,
                measure: "procurement-ban".into(),
                action: FeedbackAction::Applied,
            },
            T0,
        )
        .unwrap();
    let tasks = replica.tasks(&implementer, T0).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].0.measure, "more-inspections");
    let second = replica
        .issue(
            &test.keys[1],
            NoticeKind::Object {
                listing: listing.id,
                grounds: "wrong name".into(),
                respond_by: T0.plus_ms(15 * DAY_MS),
            },
            T0,
        )
        .unwrap();
    let remedy = Remedy::Correct(vec![ListingChange::SubjectName("Company One Ltd.".into())]);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Rule {
                objection: second.id,
                outcome: RulingOutcome::Upheld(remedy),
                reason: "typo".into(),
            },
            T0,
        )
        .unwrap();
    let corrected = state(&replica, T0);
    assert_eq!(
        (corrected.status, corrected.listing.subject.name.as_str()),
        (Status::Active, "Company One Ltd.")
    );
    let repaired_at = T0.plus_ms(91 * DAY_MS);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Repair {
                listing: listing.id,
                reason: "fine paid".into(),
                evidence: vec![[3; 32]],
            },
            repaired_at,
        )
        .unwrap();
    let repaired = state(&replica, repaired_at);
    assert_eq!(
        (repaired.status, repaired.shared, repaired.enforceable),
        (Status::Repaired, false, false)
    );
    let tasks = replica.tasks(&implementer, repaired_at).unwrap();
    assert_eq!(tasks.len(), 1, "lift what was applied: {tasks:?}");
    assert_eq!(tasks[0].0.action, credence_protocol::fold::TaskAction::Lift);
    assert_eq!(state(&replica, repaired_at).history.len(), 7);
}

// Expiry and the end of publication happen by time alone.
#[test]
fn expiry_by_time() {
    let (test, mut replica) = setup();
    let listing = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let after_publication = replica
        .listing_state(&listing.id, T0.plus_ms(400 * DAY_MS))
        .unwrap()
        .unwrap();
    assert_eq!(
        (after_publication.status, after_publication.published),
        (Status::Active, false)
    );
    let expired = replica
        .listing_state(&listing.id, T0.plus_ms(730 * DAY_MS))
        .unwrap()
        .unwrap();
    assert_eq!((expired.status, expired.shared), (Status::Expired, false));
}

// The pending buffer is bounded: past its limit, notices are dropped (sync
// brings them again), never stored unvalidated.
#[test]
fn pending_buffer_is_bounded() {
    let test = testkit::federation(7, 3);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new()).with_pending_max(2);
    let mut outcomes = Vec::new();
    for seq in 2..=4 {
        let n = notice(
            &test,
            0,
            seq,
            NoticeId([seq as u8; 32]),
            T0,
            NoticeKind::List(testkit::listing(seq, "tax", T0)),
        );
        outcomes.extend(replica.ingest(&testkit::sign(&test.keys[0], &n).1).unwrap());
    }
    assert!(
        matches!(outcomes[2], Outcome::Dropped { .. }),
        "{outcomes:?}"
    );
    assert_eq!(replica.pending_count(), 2);
    assert_eq!(replica.store().notice_count().unwrap(), 0);
}

/// A signed listing of `author` at `seq` whose predecessor is missing.
fn future_listing(test: &TestFederation, author: usize, seq: u64) -> Vec<u8> {
    let n = notice(
        test,
        author,
        seq,
        NoticeId([seq as u8; 32]),
        T0,
        NoticeKind::List(testkit::listing(seq, "tax", T0)),
    );
    testkit::sign(&test.keys[author], &n).1
}

// One member filling the pending buffer with future seqs fills only its
// own share: another author's out-of-order notice is still held.
#[test]
fn one_author_cannot_take_the_whole_pending_buffer() {
    let test = testkit::federation(7, 4);
    // 1,024 in all, four members: a share of 256 each.
    let mut replica = Replica::new(test.federation.clone(), MemStore::new()).with_pending_max(1024);
    let mut dropped = 0;
    for seq in 2..=1_000u64 {
        for outcome in replica.ingest(&future_listing(&test, 0, seq)).unwrap() {
            dropped += usize::from(matches!(outcome, Outcome::Dropped { .. }));
        }
    }
    assert_eq!(replica.pending_count(), 256);
    assert_eq!(dropped, 999 - 256);
    let honest = replica.ingest(&future_listing(&test, 1, 2)).unwrap();
    assert!(
        matches!(honest[..], [Outcome::Pending { .. }]),
        "{honest:?}"
    );
    assert_eq!(replica.pending_count(), 257);
}

// A notice that waits longer than the time-to-live is dropped (sync
// brings it again); what came later waits on.
#[test]
fn pending_notices_expire() {
    let (test, mut replica) = setup();
    replica.advance_clock(T0);
    replica.ingest(&future_listing(&test, 0, 3)).unwrap();
    replica.advance_clock(T0.plus_ms(60_000));
    replica.ingest(&future_listing(&test, 1, 5)).unwrap();
    assert_eq!(replica.pending_count(), 2);
    assert_eq!(replica.expire_pending(T0.plus_ms(1)), 1);
    assert_eq!(replica.pending_count(), 1);
    assert!(matches!(
        replica.pending()[..],
        [(_, Waiting::Predecessor { seq: 4, .. })]
    ));
    // The expired one is no longer known: it is taken again when it comes.
    let again = replica.ingest(&future_listing(&test, 0, 3)).unwrap();
    assert!(matches!(again[..], [Outcome::Pending { .. }]), "{again:?}");
}

// A malformed identifier is refused; a checksum mismatch only with the
// explicit override, which is recorded in the signed listing.
#[test]
fn identifiers_and_override() {
    let (test, mut replica) = setup();
    let mut listing = testkit::listing(1, "tax", T0);
    listing.subject.id = "91350100M000100Y4Z".into();
    let error = replica
        .issue(&test.keys[0], NoticeKind::List(listing.clone()), T0)
        .unwrap_err();
    assert!(error.to_string().contains("expected '3'"), "{error}");
    listing.subject.id = "91350100M000100Y44".into();
    let error = replica
        .issue(&test.keys[0], NoticeKind::List(listing.clone()), T0)
        .unwrap_err();
    assert!(error.to_string().contains("expected '3'"), "{error}");
    listing.checksum_override = true;
    replica
        .issue(&test.keys[0], NoticeKind::List(listing.clone()), T0)
        .unwrap();
    listing.subject.id = "91350100M00010".into();
    assert!(
        replica
            .issue(&test.keys[0], NoticeKind::List(listing), T0)
            .is_err()
    );
}

// A replica that holds a later notice of its own author, waiting for a
// gap, refuses to issue: the new notice would fork the author's log.
#[test]
fn no_issue_while_restoring_own_log() {
    let (test, mut source) = setup();
    let _first = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", T0)),
            T0,
        )
        .unwrap();
    let second = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(2, "tax", T0)),
            T0,
        )
        .unwrap();
    let (_, mut restored) = setup();
    restored.ingest(&second.envelope).unwrap();
    let error = restored
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(3, "tax", T0)),
            T0,
        )
        .unwrap_err();
    assert!(
        matches!(error, IssueError::CatchingUp { seq: 2 }),
        "{error}"
    );
    assert_eq!(restored.store().notice_count().unwrap(), 0);
}

/// A memo shared by replicas, as the simulator's is.
#[derive(Default)]
struct SharedMemo(
    std::sync::Mutex<std::collections::BTreeMap<NoticeId, CheckedNotice>>,
    std::sync::atomic::AtomicUsize,
);

impl credence_protocol::replica::NoticeMemo for SharedMemo {
    fn checked(&self, id: &NoticeId) -> Option<CheckedNotice> {
        let hit = self.0.lock().unwrap().get(id).cloned();
        if hit.is_some() {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        hit
    }
    fn set_checked(&self, id: NoticeId, checked: CheckedNotice) {
        self.0.lock().unwrap().insert(id, checked);
    }
}

// Replicas sharing a memo check each envelope once: the second one takes
// the decoded notice from the memo and still applies every rule that needs
// its own records. A tampered envelope has another id and is checked in
// full.
#[test]
fn a_shared_memo_checks_each_envelope_once() {
    let test = testkit::federation(7, 3);
    let memo = std::sync::Arc::new(SharedMemo::default());
    let replica =
        || Replica::new(test.federation.clone(), MemStore::new()).with_notice_memo(memo.clone());
    let (mut source, mut a, mut b) = (setup().1, replica(), replica());
    let listing = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "food-drug", T0)),
            T0,
        )
        .unwrap();
    assert!(matches!(
        a.ingest(&listing.envelope).unwrap()[..],
        [Outcome::Accepted { .. }]
    ));
    assert_eq!(memo.0.lock().unwrap().len(), 1);
    let hits = memo.1.load(std::sync::atomic::Ordering::Relaxed);
    assert!(matches!(
        b.ingest(&listing.envelope).unwrap()[..],
        [Outcome::Accepted { .. }]
    ));
    assert!(memo.1.load(std::sync::atomic::Ordering::Relaxed) > hits);
    assert_eq!(
        b.load(&listing.id).unwrap().map(|input| input.notice.seq),
        Some(1)
    );

    // A repair by another authority passes the memo's checks on one
    // replica and is still refused by the other, whose records say who
    // issued the listing.
    let repair = notice(
        &test,
        1,
        1,
        NoticeId::default(),
        T0.plus_ms(2 * DAY_MS),
        NoticeKind::Repair {
            listing: listing.id,
            reason: "rectified".into(),
            evidence: Vec::new(),
        },
    );
    let (_, bytes) = testkit::sign(&test.keys[1], &repair);
    for replica in [&mut a, &mut b] {
        assert!(matches!(
            rejected(&replica.ingest(&bytes).unwrap()),
            ValidationError::NotIssuer { .. }
        ));
    }

    let mut tampered = listing.envelope.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut c = replica();
    assert!(matches!(
        rejected(&c.ingest(&tampered).unwrap()),
        ValidationError::BadSignature { .. }
    ));
    // Not stored here, so not loaded, though the memo knows the notice.
    assert!(c.load(&listing.id).unwrap().is_none());
}

// An author's log grows by at most AUTHOR_NOTICE_BURST notices at once and
// AUTHOR_NOTICES_PER_HOUR an hour after that, by the notices' own time:
// the issuing replica refuses before signing, and every other replica
// refuses a notice past the budget, whoever signed it. Dating notices
// ahead of the clock to refill the budget is refused too.
#[test]
fn an_author_cannot_add_notices_without_bound() {
    use credence_protocol::replica::{
        AUTHOR_NOTICE_BURST, AUTHOR_NOTICES_PER_HOUR, ISSUED_AT_AHEAD_MAX_MS, budget_after,
    };
    let (test, mut issuer) = setup();
    let (_, mut other) = setup();
    issuer.advance_clock(T0);
    other.advance_clock(T0);
    let mut last = None;
    let mut envelopes = Vec::new();
    for n in 0..AUTHOR_NOTICE_BURST {
        let issued = issuer
            .issue(
                &test.keys[0],
                NoticeKind::List(testkit::listing(n, "tax", T0)),
                T0,
            )
            .expect("within the burst");
        envelopes.push(issued.envelope);
        last = Some(issued.id);
    }
    let head = issuer.store().head(&test.author(0)).unwrap().unwrap();
    assert_eq!(head.seq, AUTHOR_NOTICE_BURST);
    assert_eq!(head.budget, 0);
    // One more at the same time: refused, nothing signed.
    match issuer.issue(
        &test.keys[0],
        NoticeKind::List(testkit::listing(999_999, "tax", T0)),
        T0,
    ) {
        Err(IssueError::OverBudget { retry_after_ms }) => {
            assert_eq!(retry_after_ms, 3_600_000 / AUTHOR_NOTICES_PER_HOUR)
        }
        other => panic!("expected the budget refusal, got {other:?}"),
    }
    assert_eq!(
        issuer.store().head(&test.author(0)).unwrap().unwrap().seq,
        AUTHOR_NOTICE_BURST
    );
    // Another replica takes the burst, and refuses the same notice signed
    // by hand (as a flooding member would).
    for envelope in &envelopes {
        other.ingest(envelope).unwrap();
    }
    let over = notice(
        &test,
        0,
        AUTHOR_NOTICE_BURST + 1,
        last.unwrap(),
        T0,
        NoticeKind::List(testkit::listing(999_999, "tax", T0)),
    );
    let out = other
        .ingest(&testkit::sign(&test.keys[0], &over).1)
        .unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::OverBudget { seq, .. } if *seq == AUTHOR_NOTICE_BURST + 1
    ));
    // Dated far ahead to refill the budget: refused while the clock is
    // behind it.
    let ahead = Timestamp(T0.0 + ISSUED_AT_AHEAD_MAX_MS + 3_600_000);
    let early = notice(
        &test,
        0,
        AUTHOR_NOTICE_BURST + 1,
        last.unwrap(),
        ahead,
        NoticeKind::List(testkit::listing(999_998, "tax", T0)),
    );
    let early = testkit::sign(&test.keys[0], &early).1;
    let out = other.ingest(&early).unwrap();
    assert!(matches!(
        rejected(&out),
        ValidationError::IssuedAhead { .. }
    ));
    // Once the clock has come, the same notice is taken: time refilled it.
    other.advance_clock(Timestamp(ahead.0 - 1));
    let out = other.ingest(&early).unwrap();
    assert!(
        matches!(out.as_slice(), [Outcome::Accepted { .. }]),
        "{out:?}"
    );
    // The issuer, an interval later, may issue exactly one more.
    let step = 3_600_000 / AUTHOR_NOTICES_PER_HOUR;
    let later = Timestamp(T0.0 + step);
    issuer.advance_clock(later);
    issuer
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(999_997, "tax", T0)),
            later,
        )
        .expect("refilled by one");
    assert!(matches!(
        issuer.issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(999_996, "tax", T0)),
            later,
        ),
        Err(IssueError::OverBudget { .. })
    ));
    // The arithmetic: full at first; refilled to the burst and no more.
    assert_eq!(
        budget_after(None, T0, 0),
        Some(AUTHOR_NOTICE_BURST * 1000 - 1000)
    );
    let spent = issuer.store().head(&test.author(0)).unwrap().unwrap();
    assert_eq!(budget_after(Some(&spent), spent.issued_at, 0), None);
    assert_eq!(
        budget_after(Some(&spent), Timestamp(spent.issued_at.0 + 365 * DAY_MS), 0),
        Some(AUTHOR_NOTICE_BURST * 1000 - 1000)
    );
}

fn issue_err(
    replica: &mut Replica<MemStore>,
    test: &TestFederation,
    kind: NoticeKind,
) -> ValidationError {
    match replica.issue(&test.keys[0], kind, T0) {
        Err(IssueError::Invalid(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// A named listing names members in order; no other level names any; the
// levels and fields format 3 added are refused in an older format.
#[test]
fn distribution_levels_and_readers() {
    use credence_protocol::model::Classification;
    let (test, mut replica) = setup();
    let mut sorted = vec![test.author(1), test.author(2)];
    sorted.sort();
    let with = |level, readers: Vec<AuthorityId>| {
        let mut listing = testkit::listing(1, "tax", T0);
        listing.classification = level;
        listing.readers = readers;
        NoticeKind::List(listing)
    };
    let refused = issue_err(&mut replica, &test, with(Classification::Named, vec![]));
    assert_eq!(refused.code(), "readers", "{refused}");
    let reversed: Vec<AuthorityId> = sorted.iter().rev().copied().collect();
    let refused = issue_err(&mut replica, &test, with(Classification::Named, reversed));
    assert!(refused.to_string().contains("ascending order"), "{refused}");
    let stranger = AuthorityId([0xee; 32]);
    let refused = issue_err(
        &mut replica,
        &test,
        with(Classification::Named, vec![stranger]),
    );
    assert!(refused.to_string().contains("not a member"), "{refused}");
    let refused = issue_err(
        &mut replica,
        &test,
        with(Classification::Restricted, sorted.clone()),
    );
    assert!(
        refused.to_string().contains("only a named listing"),
        "{refused}"
    );
    let named = replica
        .issue(
            &test.keys[0],
            with(Classification::Named, sorted.clone()),
            T0,
        )
        .unwrap();
    // Turning it restricted without clearing its readers is refused;
    // with them cleared it is accepted.
    let amend = |changes| NoticeKind::Amend {
        listing: named.id,
        changes,
    };
    let refused = issue_err(
        &mut replica,
        &test,
        amend(vec![ListingChange::Classification(
            Classification::Restricted,
        )]),
    );
    assert_eq!(refused.code(), "readers", "{refused}");
    replica
        .issue(
            &test.keys[0],
            amend(vec![
                ListingChange::Classification(Classification::Restricted),
                ListingChange::Readers(Vec::new()),
            ]),
            T0,
        )
        .unwrap();
    // A format 2 notice cannot state a level format 3 added.
    let mut old = notice(
        &test,
        1,
        1,
        NoticeId::default(),
        T0,
        with(Classification::Auditors, vec![]),
    );
    old.version = 2;
    let (_, bytes) = testkit::sign(&test.keys[1], &old);
    let outcomes = replica.ingest(&bytes).unwrap();
    let error = rejected(&outcomes);
    assert_eq!(error.code(), "needs_format", "{error}");
    assert!(error.to_string().contains("auditors"), "{error}");
}

// The legal representative and responsible persons of a listed company
// find its listing under their own numbers, marked as linked, whichever
// notice linked them; a person an amendment unlinks no longer does, and
// a natural person's listing links no one.
#[test]
fn linked_persons_find_the_listing() {
    use credence_protocol::model::{LinkRole, LinkedPerson, Naming, SubjectKey, SubjectKind};
    let (test, mut a) = setup();
    let (_, mut b) = setup();
    let person = |role, id: &str| LinkedPerson {
        role,
        id: id.into(),
        name: "Li Si".into(),
    };
    let representative = person(LinkRole::LegalRepresentative, "11010519491231002X");
    let responsible = person(LinkRole::ResponsiblePerson, "440524188001010014");
    let key = |id: &str| SubjectKey::new(SubjectKind::NaturalPerson, id).unwrap();
    let mut listing = testkit::listing(1, "tax", T0);
    listing.linked = vec![representative.clone()];
    let listed = a
        .issue(&test.keys[0], NoticeKind::List(listing.clone()), T0)
        .unwrap();
    let added = a
        .issue(
            &test.keys[0],
            NoticeKind::Amend {
                listing: listed.id,
                changes: vec![ListingChange::Linked(vec![
                    representative.clone(),
                    responsible.clone(),
                ])],
            },
            T0,
        )
        .unwrap();
    for envelope in [&listed.envelope, &added.envelope] {
        b.ingest(envelope).unwrap();
    }
    let t = T0.plus_ms(DAY_MS);
    for replica in [&a, &b] {
        for (who, role) in [
            (&representative, LinkRole::LegalRepresentative),
            (&responsible, LinkRole::ResponsiblePerson),
        ] {
            let states = replica.subject_listings(&key(&who.id), t).unwrap();
            assert_eq!(states.len(), 1);
            assert_eq!(
                states[0].listing.naming(&key(&who.id)),
                Some(Naming::Linked(role))
            );
        }
        let company = SubjectKey::new(SubjectKind::LegalPerson, &listing.subject.id).unwrap();
        let states = replica.subject_listings(&company, t).unwrap();
        assert_eq!(states[0].listing.naming(&company), Some(Naming::Subject));
    }
    a.issue(
        &test.keys[0],
        NoticeKind::Amend {
            listing: listed.id,
            changes: vec![ListingChange::Linked(vec![responsible.clone()])],
        },
        T0,
    )
    .unwrap();
    assert!(
        a.subject_listings(&key(&representative.id), t)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.subject_listings(&key(&responsible.id), t).unwrap().len(),
        1
    );
    // Refused: a bad number, a person twice, a natural person's listing.
    let mut bad = listing.clone();
    bad.linked = vec![person(LinkRole::ResponsiblePerson, "110105194912310021")];
    assert_eq!(
        issue_err(&mut a, &test, NoticeKind::List(bad)).code(),
        "linked_person"
    );
    let mut twice = listing.clone();
    twice.linked = vec![representative.clone(), representative.clone()];
    assert_eq!(
        issue_err(&mut a, &test, NoticeKind::List(twice)).code(),
        "duplicate_entry"
    );
    let mut natural = listing;
    natural.subject.kind = SubjectKind::NaturalPerson;
    natural.subject.id = "110105198001010016".into();
    natural.linked = vec![responsible];
    let error = issue_err(&mut a, &test, NoticeKind::List(natural));
    assert!(error.to_string().contains("natural person"), "{error}");
}

// An implementer's tasks come from the listings whose level reaches it: a
// named listing gives tasks to its named readers only, an auditors-only
// listing to no implementer; after a repair the named reader's lift task
// still comes, though the listing is no longer shared.
#[test]
fn tasks_follow_the_distribution_level() {
    use credence_protocol::model::Classification;
    let (test, mut replica) = setup();
    let (named, other) = (test.author(1), test.author(2));
    let mut listing = testkit::listing(3, "tax", T0);
    listing.classification = Classification::Named;
    listing.readers = vec![named];
    let listed = replica
        .issue(&test.keys[0], NoticeKind::List(listing), T0)
        .unwrap();
    let mut hidden = testkit::listing(4, "tax", T0);
    hidden.classification = Classification::Auditors;
    replica
        .issue(&test.keys[0], NoticeKind::List(hidden), T0)
        .unwrap();
    let t = T0.plus_ms(DAY_MS);
    let tasks = replica.tasks(&named, t).unwrap();
    assert!(!tasks.is_empty());
    assert!(tasks.iter().all(|(_, state)| state.id == listed.id));
    assert!(replica.tasks(&other, t).unwrap().is_empty());
    let applied = replica
        .issue(
            &test.keys[1],
            NoticeKind::Feedback {
                listing: listed.id,
                measure: "procurement-ban".into(),
                action: FeedbackAction::Applied,
            },
            t,
        )
        .unwrap();
    assert_eq!(applied.seq, 1);
    let repaired_at = T0.plus_ms(100 * DAY_MS);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Repair {
                listing: listed.id,
                reason: "rectified".into(),
                evidence: Vec::new(),
            },
            repaired_at,
        )
        .unwrap();
    let after = replica.tasks(&named, repaired_at.plus_ms(1)).unwrap();
    assert!(
        after
            .iter()
            .any(|(task, _)| task.measure == "procurement-ban"
                && task.action == credence_protocol::fold::TaskAction::Lift),
        "{after:?}"
    );
}

//! Property tests of the codec, the signature envelope and the fold.

use credence_protocol::codec;
use credence_protocol::fold::Status;
use credence_protocol::model::*;
use credence_protocol::replica::{CheckedNotice, NoticeMemo, Outcome, Replica};
use credence_protocol::store::{MemStore, Store};
use credence_protocol::testkit::{self, SplitMix64};
use credence_protocol::time::{DAY_MS, Timestamp};
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn text() -> impl Strategy<Value = String> {
    ".{0,24}"
}

fn digest() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp)
}

fn listing() -> impl Strategy<Value = Listing> {
    (
        (
            prop_oneof![
                Just(SubjectKind::LegalPerson),
                Just(SubjectKind::OtherOrganisation),
                Just(SubjectKind::NaturalPerson)
            ],
            text(),
            text(),
        ),
        (
            prop_oneof![Just(ListKind::Red), Just(ListKind::Black)],
            text(),
            prop_oneof![
                Just(Severity::Minor),
                Just(Severity::General),
                Just(Severity::Serious)
            ],
        ),
        (
            text(),
            text(),
            text(),
            proptest::collection::vec(text(), 0..4),
        ),
        (timestamp(), timestamp(), timestamp(), timestamp()),
        (
            prop_oneof![
                Just(Classification::Public),
                Just(Classification::Restricted),
                Just(Classification::Named),
                Just(Classification::Auditors)
            ],
            proptest::collection::vec(digest(), 0..3),
            any::<bool>(),
        ),
        (
            proptest::collection::vec(digest().prop_map(AuthorityId), 0..3),
            proptest::collection::vec(linked_person(), 0..3),
        ),
    )
        .prop_map(
            |(
                (kind, id, name),
                (list, category, severity),
                (reason, legal_basis, document_number, measures),
                (a, b, c, d),
                (classification, evidence, checksum_override),
                (readers, linked),
            )| Listing {
                subject: Subject { kind, id, name },
                list,
                category,
                severity,
                reason,
                legal_basis,
                document_number,
                measures,
                effective_at: a,
                publish_until: b,
                share_until: c,
                repair_from: d,
                classification,
                evidence,
                checksum_override,
                readers,
                linked,
            },
        )
}

fn linked_person() -> impl Strategy<Value = LinkedPerson> {
    (
        prop_oneof![
            Just(LinkRole::LegalRepresentative),
            Just(LinkRole::ResponsiblePerson)
        ],
        text(),
        text(),
    )
        .prop_map(|(role, id, name)| LinkedPerson { role, id, name })
}

fn change() -> impl Strategy<Value = ListingChange> {
    prop_oneof![
        text().prop_map(ListingChange::SubjectName),
        text().prop_map(ListingChange::Reason),
        proptest::collection::vec(text(), 0..3).prop_map(ListingChange::Measures),
        timestamp().prop_map(ListingChange::ShareUntil),
        Just(ListingChange::Classification(Classification::Restricted)),
        proptest::collection::vec(digest().prop_map(AuthorityId), 0..3)
            .prop_map(ListingChange::Readers),
        proptest::collection::vec(linked_person(), 0..3).prop_map(ListingChange::Linked),
        proptest::collection::vec(digest(), 0..3).prop_map(ListingChange::Evidence),
    ]
}

fn id() -> impl Strategy<Value = NoticeId> {
    digest().prop_map(NoticeId)
}

fn kind() -> impl Strategy<Value = NoticeKind> {
    prop_oneof![
        listing().prop_map(NoticeKind::List),
        (id(), proptest::collection::vec(change(), 0..4))
            .prop_map(|(listing, changes)| NoticeKind::Amend { listing, changes }),
        (id(), text(), proptest::collection::vec(digest(), 0..3)).prop_map(
            |(listing, reason, evidence)| NoticeKind::Repair {
                listing,
                reason,
                evidence
            }
        ),
        (id(), text(), any::<bool>()).prop_map(|(listing, reason, restore_reputation)| {
            NoticeKind::Withdraw {
                listing,
                reason,
                restore_reputation,
            }
        }),
        (id(), text(), timestamp()).prop_map(|(listing, grounds, respond_by)| NoticeKind::Object {
            listing,
            grounds,
            respond_by
        }),
        (
            id(),
            prop_oneof![
                Just(RulingOutcome::Rejected),
                Just(RulingOutcome::Upheld(Remedy::Withdraw)),
                proptest::collection::vec(change(), 0..3)
                    .prop_map(|c| RulingOutcome::Upheld(Remedy::Correct(c))),
            ],
            text()
        )
            .prop_map(|(objection, outcome, reason)| NoticeKind::Rule {
                objection,
                outcome,
                reason
            }),
        (
            id(),
            text(),
            prop_oneof![
                Just(FeedbackAction::Applied),
                Just(FeedbackAction::Lifted),
                text().prop_map(FeedbackAction::Declined)
            ]
        )
            .prop_map(|(listing, measure, action)| NoticeKind::Feedback {
                listing,
                measure,
                action
            }),
    ]
}

fn notice() -> impl Strategy<Value = Notice> {
    (
        any::<u16>(),
        digest(),
        any::<u64>(),
        digest(),
        any::<u64>(),
        digest(),
        timestamp(),
        kind(),
    )
        .prop_map(
            |(version, federation, roster, author, seq, prev, issued_at, mut kind)| {
                // A listing of format 1 or 2 has no readers or linked
                // persons to encode.
                if let (true, NoticeKind::List(listing)) = (version < 3, &mut kind) {
                    listing.readers.clear();
                    listing.linked.clear();
                }
                Notice {
                    version,
                    federation: FederationId(federation),
                    // Format 1 has no roster field: it reads as version 0.
                    roster: if version >= 2 { roster } else { 0 },
                    author: AuthorityId(author),
                    seq,
                    prev: NoticeId(prev),
                    issued_at,
                    kind,
                }
            },
        )
}

proptest! {
    // Encoding then decoding gives the same notice and envelope back, and
    // re-encoding gives the same bytes (one value, one encoding).
    #[test]
    fn codec_round_trip(notice in notice(), signature in any::<[u8; 32]>()) {
        let body = codec::encode_notice(&notice).unwrap();
        prop_assert_eq!(codec::decode_notice(&body).unwrap(), notice);
        let mut signature_bytes = [0u8; 64];
        signature_bytes[..32].copy_from_slice(&signature);
        let envelope = Envelope { body, signature: SignatureBytes(signature_bytes) };
        let bytes = codec::encode_envelope(&envelope).unwrap();
        prop_assert_eq!(&codec::decode_envelope(&bytes).unwrap(), &envelope);
        let mut longer = bytes.clone();
        longer.push(0);
        let trailing = matches!(codec::decode_envelope(&longer), Err(codec::CodecError::TrailingBytes { .. }));
        prop_assert!(trailing);
        prop_assert!(codec::decode_envelope(&bytes[..bytes.len() - 1]).is_err());
    }

    // Arbitrary bytes never panic the decoder.
    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode_envelope(&bytes);
        let _ = codec::decode_notice(&bytes);
    }
}

/// A replica holding one listing by member 0, and valid envelopes of every
/// other kind that it would accept next.
fn mutation_fixture() -> (Replica<MemStore>, Vec<Vec<u8>>) {
    let test = testkit::federation(11, 3);
    let mut source = Replica::new(test.federation.clone(), MemStore::new());
    let listing = source
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(4, "tax", T0)),
            T0,
        )
        .unwrap();
    let mut target = Replica::new(test.federation.clone(), MemStore::new());
    target.ingest(&listing.envelope).unwrap();
    let mut candidates = vec![];
    let second_listing = NoticeKind::List(testkit::listing(5, "food-drug", T0));
    candidates.push(
        source
            .issue(&test.keys[0], second_listing, T0)
            .unwrap()
            .envelope,
    );
    let object = NoticeKind::Object {
        listing: listing.id,
        grounds: "not us".into(),
        respond_by: T0.plus_ms(30 * DAY_MS),
    };
    candidates.push(source.issue(&test.keys[1], object, T0).unwrap().envelope);
    let feedback = NoticeKind::Feedback {
        listing: listing.id,
        measure: "more-inspections".into(),
        action: FeedbackAction::Declined("no site".into()),
    };
    candidates.push(source.issue(&test.keys[2], feedback, T0).unwrap().envelope);
    (target, candidates)
}

fn accepted(outcomes: &[Outcome]) -> bool {
    outcomes.iter().any(|o| {
        matches!(
            o,
            Outcome::Accepted { .. } | Outcome::Pending { .. } | Outcome::Forked { .. }
        )
    })
}

// Every single-byte change of a valid envelope, at every position, to
// several values, is refused: by the decoder, the canonical check or the
// signature. Dropping the last byte or adding one is refused too. The
// unmodified envelopes are then accepted, so the fixture is sound.
#[test]
fn every_single_byte_mutation_is_rejected() {
    let (mut replica, candidates) = mutation_fixture();
    for envelope in &candidates {
        for position in 0..envelope.len() {
            for flip in [0x01u8, 0x80, 0xff, 0x5a] {
                let mut mutated = envelope.clone();
                mutated[position] ^= flip;
                let outcomes = replica.ingest(&mutated).unwrap();
                assert!(
                    !accepted(&outcomes),
                    "mutation at byte {position} (xor {flip:#x}) accepted: {outcomes:?}"
                );
            }
        }
        assert!(!accepted(
            &replica.ingest(&envelope[..envelope.len() - 1]).unwrap()
        ));
        let mut longer = envelope.clone();
        longer.push(0);
        assert!(!accepted(&replica.ingest(&longer).unwrap()));
    }
    assert_eq!(replica.store().notice_count().unwrap(), 1);
    for envelope in &candidates {
        assert!(accepted(&replica.ingest(envelope).unwrap()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    // Random byte values at random positions, as a second net.
    #[test]
    fn random_single_byte_mutation_is_rejected(which in 0usize..3, position in any::<usize>(), value in any::<u8>()) {
        let (mut replica, candidates) = mutation_fixture();
        let envelope = &candidates[which];
        let position = position % envelope.len();
        prop_assume!(envelope[position] != value);
        let mut mutated = envelope.clone();
        mutated[position] = value;
        prop_assert!(!accepted(&replica.ingest(&mutated).unwrap()));
    }
}

/// A random history of every notice kind from a small federation, and the
/// replica that took it in creation order.
fn history(
    seed: u64,
    count: usize,
) -> (
    testkit::TestFederation,
    testkit::Workload,
    Replica<MemStore>,
) {
    let test = testkit::federation(seed % 5, 4);
    let workload = testkit::workload(&test, seed, count, 6, T0);
    let mut reference = Replica::new(test.federation.clone(), MemStore::new());
    for envelope in &workload.envelopes {
        reference.ingest(envelope).unwrap();
    }
    (test, workload, reference)
}

/// Everything a replica can be compared on: heads, every listing's state
/// at several times, and every member's tasks.
fn observe(replica: &Replica<MemStore>, listings: &[NoticeId], end: Timestamp) -> String {
    let mut out = format!(
        "{:?}\n{:?}\n",
        replica.store().heads().unwrap(),
        replica.store().forks().unwrap()
    );
    for t in [T0, end, end.plus_ms(16 * DAY_MS), end.plus_ms(800 * DAY_MS)] {
        for id in listings {
            let state = replica.listing_state(id, t).unwrap().unwrap();
            out.push_str(&format!("{t} {id} {state:?}\n"));
        }
        for member in &replica.federation().roster().members {
            out.push_str(&format!("{:?}\n", replica.tasks(&member.key, t).unwrap()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    // Random histories of every notice kind, delivered to fresh replicas in
    // random orders, with duplicates and in random batch sizes: every
    // replica ends with the same heads, listing states and task lists as
    // the replica that issued them.
    #[test]
    fn fold_is_order_independent(seed in any::<u64>(), count in 10usize..120) {
        let (test, workload, reference) = history(seed, count);
        let expected = observe(&reference, &workload.listings, workload.end);
        let statuses: Vec<Status> = workload.listings.iter().map(|id| reference.listing_state(id, workload.end).unwrap().unwrap().status).collect();
        prop_assert!(!statuses.is_empty());
        let mut rng = SplitMix64(seed ^ 0x5eed);
        for _ in 0..3 {
            let mut delivery: Vec<&Vec<u8>> = workload.envelopes.iter().collect();
            for _ in 0..rng.below(count as u64 / 2 + 1) {
                delivery.push(&workload.envelopes[rng.index(workload.envelopes.len())]);
            }
            rng.shuffle(&mut delivery);
            let mut replica = Replica::new(test.federation.clone(), MemStore::new());
            let mut rest = delivery.as_slice();
            while !rest.is_empty() {
                let take = (1 + rng.index(8)).min(rest.len());
                let batch: Vec<&[u8]> = rest[..take].iter().map(|e| e.as_slice()).collect();
                replica.ingest_batch(&batch).unwrap();
                rest = &rest[take..];
            }
            prop_assert_eq!(replica.pending_count(), 0);
            let observed = observe(&replica, &workload.listings, workload.end);
            let first_difference = observed.lines().zip(expected.lines()).find(|(a, b)| a != b);
            prop_assert_eq!(first_difference, None);
            prop_assert_eq!(observed.len(), expected.len());
        }
    }
}

/// Outcomes in a comparable order (bulk ingest reports them per chunk).
fn sorted_outcomes(outcomes: Vec<Outcome>) -> Vec<String> {
    let mut out: Vec<String> = outcomes.iter().map(|o| format!("{o:?}")).collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]
    // Bulk ingest shares its checks between two threads block by block;
    // over more than one chunk, with duplicates, tampered envelopes and a
    // random order, it reports the same outcomes as batch ingest and leaves
    // the same records.
    #[test]
    fn bulk_ingest_matches_batch_ingest(seed in any::<u64>(), count in 1100usize..1500) {
        let test = testkit::federation(seed % 5, 4);
        let workload = testkit::workload(&test, seed, count, 40, T0);
        let mut rng = SplitMix64(seed ^ 0xb01c);
        let mut delivery: Vec<Vec<u8>> = workload.envelopes.clone();
        for _ in 0..count / 20 {
            delivery.push(workload.envelopes[rng.index(workload.envelopes.len())].clone());
            let mut tampered = workload.envelopes[rng.index(workload.envelopes.len())].clone();
            let at = rng.index(tampered.len());
            tampered[at] ^= 1 + rng.index(255) as u8;
            delivery.push(tampered);
        }
        rng.shuffle(&mut delivery);
        let slices: Vec<&[u8]> = delivery.iter().map(Vec::as_slice).collect();
        let mut batch = Replica::new(test.federation.clone(), MemStore::new());
        let batch_outcomes = batch.ingest_batch(&slices).unwrap();
        let mut bulk = Replica::new(test.federation.clone(), MemStore::new());
        let bulk_outcomes = bulk.ingest_all(&slices).unwrap();
        prop_assert_eq!(sorted_outcomes(bulk_outcomes), sorted_outcomes(batch_outcomes));
        prop_assert_eq!(
            observe(&bulk, &workload.listings, workload.end),
            observe(&batch, &workload.listings, workload.end)
        );
    }
}

/// A memo of checked notices, as the simulator's replicas share one.
#[derive(Default)]
struct Memo(std::sync::Mutex<std::collections::HashMap<NoticeId, CheckedNotice>>);

impl NoticeMemo for Memo {
    fn checked(&self, id: &NoticeId) -> Option<CheckedNotice> {
        self.0.lock().unwrap().get(id).cloned()
    }
    fn set_checked(&self, id: NoticeId, checked: CheckedNotice) {
        self.0.lock().unwrap().insert(id, checked);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    // Replicas sharing a memo (which then read listings from it and keep
    // no decoded cache of their own) end exactly where a replica without
    // one does, whatever order each receives the notices in.
    #[test]
    fn replicas_sharing_a_memo_fold_alike(seed in any::<u64>(), count in 10usize..150) {
        let (test, workload, reference) = history(seed, count);
        let expected = observe(&reference, &workload.listings, workload.end);
        let memo = std::sync::Arc::new(Memo::default());
        let mut rng = SplitMix64(seed ^ 0x3e30);
        for _ in 0..2 {
            let mut delivery: Vec<&[u8]> = workload.envelopes.iter().map(Vec::as_slice).collect();
            rng.shuffle(&mut delivery);
            let mut replica = Replica::new(test.federation.clone(), MemStore::new())
                .with_notice_memo(memo.clone());
            for envelope in delivery {
                replica.ingest(envelope).unwrap();
            }
            prop_assert_eq!(replica.pending_count(), 0);
            prop_assert_eq!(observe(&replica, &workload.listings, workload.end), expected.clone());
        }
        prop_assert!(!memo.0.lock().unwrap().is_empty());
    }
}

//! What each serving path gives each viewer, over random listings,
//! distribution levels, named readers, follow-ups and times: an oracle
//! written from the rules (DESIGN.md, "Accounts, roles and the register of
//! reads"; SPEC.md, "Distribution levels") against the lookup rule
//! (`access::serves`), the answer a member's query gets (`query::answer`)
//! and the public feed (`public::shown`). No listing past its sharing
//! period, withdrawn or repaired reaches anyone but an auditor; no level
//! reaches a member it leaves out; the public sees only public listings
//! in their publication period (or their correction).

use credence_protocol::access::{Clearance, Viewer, serves};
use credence_protocol::model::{Classification, NoticeKind, SubjectKey, SubjectKind};
use credence_protocol::proven::{Candidates, Proofs};
use credence_protocol::query::{self, QUERY_VERSION, QueryRequest};
use credence_protocol::replica::Replica;
use credence_protocol::store::MemStore;
use credence_protocol::testkit;
use credence_protocol::time::{DAY_MS, Timestamp};
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_767_225_600_000);
const MEMBERS: usize = 4;

#[derive(Clone, Copy, Debug)]
enum FollowUp {
    None,
    Withdraw { restore: bool },
    Repair,
}

fn level() -> impl Strategy<Value = Classification> {
    prop_oneof![
        Just(Classification::Public),
        Just(Classification::Restricted),
        Just(Classification::Named),
        Just(Classification::Auditors),
    ]
}

fn follow_up() -> impl Strategy<Value = FollowUp> {
    prop_oneof![
        Just(FollowUp::None),
        any::<bool>().prop_map(|restore| FollowUp::Withdraw { restore }),
        Just(FollowUp::Repair),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_path_serves_what_the_rules_withhold(
        level in level(),
        reader_mask in 1u8..(1 << (MEMBERS - 1)),
        publish_days in 1u64..400,
        extra_share_days in 0u64..800,
        follow in follow_up(),
        at_days in 0u64..1300,
    ) {
        let test = testkit::federation(21, MEMBERS);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let mut listing = testkit::listing(9, "tax", T0);
        listing.classification = level;
        listing.publish_until = T0.plus_ms(publish_days * DAY_MS);
        listing.share_until = listing.publish_until.plus_ms(extra_share_days * DAY_MS);
        listing.repair_from = T0.plus_ms(DAY_MS);
        if level == Classification::Named {
            listing.readers = (1..MEMBERS)
                .filter(|i| reader_mask & (1 << (i - 1)) != 0)
                .map(|i| test.author(i))
                .collect();
            listing.readers.sort();
        }
        let readers = listing.readers.clone();
        let share_until = listing.share_until;
        let publish_until = listing.publish_until;
        let listed = replica.issue(&test.keys[0], NoticeKind::List(listing), T0).unwrap();
        let ended_at = T0.plus_ms(2 * DAY_MS);
        let ended = match follow {
            FollowUp::None => false,
            FollowUp::Withdraw { restore } => {
                let kind = NoticeKind::Withdraw {
                    listing: listed.id,
                    reason: "annulled".into(),
                    restore_reputation: restore,
                };
                replica.issue(&test.keys[0], kind, ended_at).unwrap();
                true
            }
            FollowUp::Repair => {
                let kind = NoticeKind::Repair {
                    listing: listed.id,
                    reason: "rectified".into(),
                    evidence: Vec::new(),
                };
                replica.issue(&test.keys[0], kind, ended_at).unwrap();
                true
            }
        };
        // A fold counts every notice the replica holds, whatever the time
        // it is evaluated at: a time before a follow-up it holds is not a
        // state any node serves, and is not asked here.
        let t = T0.plus_ms(at_days * DAY_MS + 1);
        let t = if ended { t.max(ended_at) } else { t };
        let subject = SubjectKey::new(SubjectKind::LegalPerson, &testkit::uscc(9)).unwrap();
        let states = replica.subject_listings(&subject, t).unwrap();
        prop_assert_eq!(states.len(), 1);
        let state = &states[0];
        // The rules, from the listing's own fields and what followed.
        let shared = !(ended && t >= ended_at) && t < share_until;
        for member in 0..MEMBERS {
            let id = test.author(member);
            let issuer = member == 0;
            for clearance in [Clearance::Reader, Clearance::Operator, Clearance::Auditor] {
                let expected = clearance == Clearance::Auditor
                    || (shared
                        && match level {
                            Classification::Public | Classification::Restricted => true,
                            Classification::Named => issuer || readers.contains(&id),
                            Classification::Auditors => clearance == Clearance::Operator && issuer,
                        });
                let viewer = Viewer { member: id, clearance };
                prop_assert_eq!(serves(state, &viewer), expected, "{:?} {:?} at {}", level, viewer, t);
            }
            // A member's query is answered at reader clearance.
            let request = QueryRequest {
                version: QUERY_VERSION,
                federation: test.federation.id(),
                requester: id,
                subject_kind: SubjectKind::LegalPerson,
                subject_id: testkit::uscc(9),
                purpose: "procurement".into(),
                legal_basis: "Government Procurement Law art. 22".into(),
                issued_at: t,
                nonce: member as u64,
                page: 0,
            }
            .sign(&test.keys[member])
            .unwrap();
            let answer = query::answer(
                &replica,
                &request,
                &[],
                &test.keys[(member + 1) % MEMBERS],
                t,
                &mut Proofs::new(Candidates::new()),
            )
            .unwrap()
            .unwrap()
            .answer;
            let reader_sees = shared
                && match level {
                    Classification::Public | Classification::Restricted => true,
                    Classification::Named => issuer || readers.contains(&id),
                    Classification::Auditors => false,
                };
            prop_assert_eq!(answer.listings.len(), usize::from(reader_sees), "query by member {}", member);
        }
        // The public: a public listing while published, or its correction
        // while its publication period lasts; nothing else.
        let public = level == Classification::Public && t < publish_until;
        let expected = match follow {
            FollowUp::None => public && t < share_until,
            FollowUp::Withdraw { restore } => public && (t < ended_at || restore),
            FollowUp::Repair => public && t < ended_at,
        };
        prop_assert_eq!(credence_protocol::public::shown(state, t).is_some(), expected);
    }
}

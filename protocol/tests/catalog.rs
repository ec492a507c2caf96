//! The catalog as a rulebook: periods within the maxima of a category and
//! severity, mandatory measures triggered, the red list's eligibility
//! rule at issue, and catalogs that contradict themselves refused with the
//! field named.

use credence_protocol::catalog::{Period, Rule};
use credence_protocol::model::{ListKind, ListingChange, NoticeKind, Severity};
use credence_protocol::replica::{IssueError, Replica};
use credence_protocol::roster::{Federation, RosterDocument, RosterError};
use credence_protocol::store::MemStore;
use credence_protocol::testkit::{self, TestFederation};
use credence_protocol::time::{DAY_MS, Timestamp};
use credence_protocol::validate::ValidationError;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01
const YEAR_MS: u64 = 365 * DAY_MS;

fn serious_rule() -> Rule {
    Rule {
        severity: Severity::Serious,
        publish: Period {
            default_ms: YEAR_MS,
            max_ms: 3 * YEAR_MS,
        },
        share: Period {
            default_ms: 3 * YEAR_MS,
            max_ms: 5 * YEAR_MS,
        },
        repair: Period {
            default_ms: 180 * DAY_MS,
            max_ms: YEAR_MS,
        },
        mandatory: vec!["high-consumption-ban".into(), "procurement-ban".into()],
    }
}

/// The test federation with a rule for serious `food-drug` listings.
fn ruled() -> TestFederation {
    let test = testkit::federation(7, 3);
    let mut roster = test.federation.roster().clone();
    let food = roster
        .categories
        .iter_mut()
        .find(|c| c.code == "food-drug")
        .expect("the test catalog has food-drug");
    food.rules = vec![serious_rule()];
    TestFederation {
        federation: Federation::new(roster).expect("a valid ruled roster"),
        keys: test.keys,
    }
}

fn compliant(subject: u64) -> credence_protocol::model::Listing {
    let mut listing = testkit::listing(subject, "food-drug", T0);
    listing.measures = vec![
        "procurement-ban".into(),
        "high-consumption-ban".into(),
        "more-inspections".into(),
    ];
    listing
}

fn invalid<E: std::error::Error>(
    result: Result<impl std::fmt::Debug, IssueError<E>>,
) -> ValidationError {
    match result {
        Err(IssueError::Invalid(error)) => error,
        other => panic!("expected a validation refusal, got {other:?}"),
    }
}

#[test]
fn periods_beyond_the_maximum_are_refused_naming_the_limit() {
    let test = ruled();
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let mut long = compliant(1);
    long.share_until = T0.plus_ms(6 * YEAR_MS);
    let error = invalid(replica.issue(&test.keys[0], NoticeKind::List(long), T0));
    assert!(
        matches!(
            &error,
            ValidationError::PeriodTooLong { field: "share_until", max_ms, .. } if *max_ms == 5 * YEAR_MS
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("at most 5y"), "{message}");
    assert!(message.contains("\"food-drug\""), "{message}");
    assert_eq!(error.code(), "period_too_long");

    // A listing at the maxima is taken; an amendment past one is refused,
    // and so is an upheld objection's correction.
    let mut at_max = compliant(2);
    at_max.publish_until = T0.plus_ms(3 * YEAR_MS);
    at_max.share_until = T0.plus_ms(5 * YEAR_MS);
    at_max.repair_from = T0.plus_ms(YEAR_MS);
    let listing = replica
        .issue(&test.keys[0], NoticeKind::List(at_max), T0)
        .expect("a listing at the maxima")
        .id;
    let error = invalid(replica.issue(
        &test.keys[0],
        NoticeKind::Amend {
            listing,
            changes: vec![ListingChange::RepairFrom(T0.plus_ms(2 * YEAR_MS))],
        },
        T0,
    ));
    assert!(
        matches!(
            error,
            ValidationError::PeriodTooLong {
                field: "repair_from",
                ..
            }
        ),
        "{error:?}"
    );
    // The periods run from the effective date: an earlier one lengthens
    // them all past the maxima.
    let error = invalid(replica.issue(
        &test.keys[0],
        NoticeKind::Amend {
            listing,
            changes: vec![ListingChange::EffectiveAt(Timestamp(T0.0 - DAY_MS))],
        },
        T0,
    ));
    assert!(
        matches!(
            error,
            ValidationError::PeriodTooLong {
                field: "publish_until",
                ..
            }
        ),
        "{error:?}"
    );
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Amend {
                listing,
                changes: vec![ListingChange::ShareUntil(T0.plus_ms(4 * YEAR_MS))],
            },
            T0,
        )
        .expect("shortening sharing is within the rule");

    // Severities and categories without a rule set no maximum.
    let mut general = compliant(3);
    general.severity = Severity::General;
    general.share_until = T0.plus_ms(20 * YEAR_MS);
    general.publish_until = T0.plus_ms(20 * YEAR_MS);
    replica
        .issue(&test.keys[0], NoticeKind::List(general), T0)
        .expect("no rule for general food-drug listings");
}

#[test]
fn the_rule_holds_for_notices_of_other_members_too() {
    // Ingest applies the same rule: a notice signed elsewhere without the
    // issuer's own check is refused.
    let test = ruled();
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let mut short = compliant(4);
    short.measures = vec!["procurement-ban".into()];
    let notice = credence_protocol::Notice {
        version: credence_protocol::model::NOTICE_VERSION,
        roster: 0,
        federation: test.federation.id(),
        author: test.author(0),
        seq: 1,
        prev: Default::default(),
        issued_at: T0,
        kind: NoticeKind::List(short),
    };
    let (_, bytes) = testkit::sign(&test.keys[0], &notice);
    let outcomes = replica.ingest(&bytes).expect("the store works");
    let rejected = format!("{outcomes:?}");
    assert!(rejected.contains("MandatoryMeasureMissing"), "{rejected}");
    assert!(rejected.contains("high-consumption-ban"), "{rejected}");
}

#[test]
fn mandatory_measures_of_the_listing_s_list_must_be_triggered() {
    let test = ruled();
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let mut listing = compliant(5);
    listing.measures.retain(|m| m != "procurement-ban");
    let error = invalid(replica.issue(&test.keys[0], NoticeKind::List(listing), T0));
    assert_eq!(
        error,
        ValidationError::MandatoryMeasureMissing {
            category: "food-drug".into(),
            severity: Severity::Serious,
            measure: "procurement-ban".into(),
        }
    );
    assert!(error.to_string().contains("procurement-ban"));
    // A red listing in the same category and severity triggers red list
    // measures: the blacklist's mandatory ones do not apply to it.
    let mut red = testkit::listing(6, "food-drug", T0);
    red.list = ListKind::Red;
    red.measures = vec!["green-channel".into()];
    replica
        .issue(&test.keys[0], NoticeKind::List(red), T0)
        .expect("blacklist measures are not mandatory on the red list");
}

fn red_listing(subject: u64, effective_at: Timestamp) -> credence_protocol::model::Listing {
    let mut red = testkit::listing(subject, "food-drug", effective_at);
    red.list = ListKind::Red;
    red.measures = vec!["green-channel".into()];
    red
}

#[test]
fn a_red_listing_for_a_blacklisted_subject_is_refused_naming_the_blacklisting() {
    let test = testkit::federation(7, 3);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let black = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(9, "tax", T0)),
            T0,
        )
        .expect("a blacklisting")
        .id;
    let now = T0.plus_ms(30 * DAY_MS);
    let error = invalid(replica.issue(&test.keys[0], NoticeKind::List(red_listing(9, now)), now));
    assert_eq!(
        error,
        ValidationError::RedListIneligible {
            blacklisting: black,
            lookback_ms: test.federation.red_lookback_ms(),
        }
    );
    assert!(error.to_string().contains(&black.to_string()), "{error}");
    assert_eq!(error.code(), "red_list_ineligible");

    // Another subject is eligible.
    replica
        .issue(&test.keys[0], NoticeKind::List(red_listing(10, now)), now)
        .expect("a subject with no blacklisting");

    // Repaired: the record still counts within the look-back...
    let repaired_at = T0.plus_ms(100 * DAY_MS);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Repair {
                listing: black,
                reason: "corrected and paid".into(),
                evidence: Vec::new(),
            },
            repaired_at,
        )
        .expect("a repair after the earliest repair date");
    let soon = repaired_at.plus_ms(DAY_MS);
    let error = invalid(replica.issue(&test.keys[0], NoticeKind::List(red_listing(9, soon)), soon));
    assert!(
        matches!(error, ValidationError::RedListIneligible { .. }),
        "{error:?}"
    );
    // ...and no longer once the look-back has passed since the repair.
    let later = repaired_at.plus_ms(test.federation.red_lookback_ms() + DAY_MS);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::List(red_listing(9, later)),
            later,
        )
        .expect("three years after the repair");
}

#[test]
fn a_withdrawn_blacklisting_is_no_record() {
    let test = testkit::federation(7, 3);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let black = replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(11, "tax", T0)),
            T0,
        )
        .expect("a blacklisting")
        .id;
    replica
        .issue(
            &test.keys[0],
            NoticeKind::Withdraw {
                listing: black,
                reason: "issued in error".into(),
                restore_reputation: true,
            },
            T0,
        )
        .expect("a withdrawal");
    replica
        .issue(&test.keys[0], NoticeKind::List(red_listing(11, T0)), T0)
        .expect("a withdrawn blacklisting does not bar the red list");
    // A blacklisting that takes effect only after the red listing does not
    // bar it either.
    let future = T0.plus_ms(400 * DAY_MS);
    replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(12, "tax", future)),
            T0,
        )
        .expect("a future blacklisting");
    replica
        .issue(&test.keys[0], NoticeKind::List(red_listing(12, T0)), T0)
        .expect("effective before the blacklisting");
}

fn example_document() -> RosterDocument {
    let catalog = include_str!("../../configs/catalog.toml");
    let members = include_str!("../../configs/members.toml");
    let mut document = RosterDocument::from_parts(
        toml::from_str(catalog).expect("the example catalog parses"),
        toml::from_str(members).expect("the example members parse"),
    );
    for (i, member) in document.members.iter_mut().enumerate() {
        member.key = hex::encode(testkit::key(3, i).public_bytes());
    }
    document
}

fn refusal(document: &RosterDocument) -> (String, String) {
    match document.to_roster() {
        Err(RosterError::Invalid { field, problem }) => (field, problem),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_example_catalog_is_a_valid_rulebook() {
    let roster = example_document().to_roster().expect("the example roster");
    let federation = Federation::new(roster).expect("a federation");
    assert_eq!(federation.threshold(), 2);
    assert_eq!(federation.red_lookback_ms(), 3 * YEAR_MS);
    // Every category has a rule for every severity, and the defaults the
    // command line uses come from them.
    for category in &federation.roster().categories {
        assert_eq!(category.rules.len(), 3, "{}", category.code);
    }
    let rule = federation
        .rule("food-drug", Severity::Serious)
        .expect("a serious food-drug rule");
    assert_eq!(
        federation.default_periods("food-drug", Severity::Serious),
        (
            rule.publish.default_ms,
            rule.share.default_ms,
            rule.repair.default_ms
        )
    );
    assert!(rule.mandatory.contains(&"procurement-ban".to_string()));
    // The roster written back and read again is the same federation.
    let again = Federation::from_toml(&federation.roster().to_document().to_toml())
        .expect("the written roster reads back");
    assert_eq!(again.id(), federation.id());
}

#[test]
fn contradictory_catalogs_and_thresholds_are_refused_naming_the_field() {
    let mut document = example_document();
    document.categories[0].rules[0].publish = "5y".into();
    let (field, problem) = refusal(&document);
    assert_eq!(field, "category \"food-drug\".rules[minor].publish");
    assert!(problem.contains("longer than the maximum"), "{problem}");

    let mut document = example_document();
    document.categories[0].rules[2]
        .mandatory
        .push("no-such-measure".into());
    let (field, problem) = refusal(&document);
    assert_eq!(field, "category \"food-drug\".rules[serious].mandatory");
    assert!(problem.contains("no-such-measure"), "{problem}");

    let mut document = example_document();
    let twice = document.categories[0].rules[1].clone();
    document.categories[0].rules.push(twice);
    let (field, problem) = refusal(&document);
    assert_eq!(field, "category \"food-drug\".rules");
    assert!(
        problem.contains("two rules for severity general"),
        "{problem}"
    );

    let mut document = example_document();
    document.categories[0].rules[0].share_max = "forever".into();
    let (field, _) = refusal(&document);
    assert_eq!(field, "category \"food-drug\".rules[minor].share_max");

    let mut document = example_document();
    document.red_list_lookback = Some("3 years".into());
    assert_eq!(refusal(&document).0, "red_list_lookback");

    // A threshold below a majority (one of three) or above the members.
    for threshold in [1, 4] {
        let mut document = example_document();
        document.threshold = Some(threshold);
        let (field, problem) = refusal(&document);
        assert_eq!(field, "threshold");
        assert!(problem.contains("majority"), "{problem}");
    }
}

#[test]
fn thresholds_default_to_two_thirds_and_never_below_a_majority() {
    use credence_protocol::roster::{threshold_default, threshold_min};
    let cases = [
        (1, 1, 1),
        (2, 2, 2),
        (3, 2, 2),
        (4, 3, 3),
        (5, 3, 4),
        (6, 4, 4),
        (9, 5, 6),
    ];
    for (members, min, default) in cases {
        assert_eq!(threshold_min(members), min, "{members}");
        assert_eq!(threshold_default(members), default, "{members}");
    }
}

//! The catalog's rules through the command line: defaults taken from the
//! catalog for the category and severity, mandatory measures added,
//! periods past the maxima refused naming the limit, and a red listing for
//! a blacklisted subject refused naming the blacklisting. Nothing refused
//! is stored.

use credence_protocol::time::{DAY_MS, Timestamp};
use credence_tests::{arg, credence, credence_owned, two_authorities};

const SUBJECT: &str = "91350100M000100Y43";

fn add(data: &std::path::Path, list: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "list",
        "add",
        "--data",
        arg(data),
        "--list",
        list,
        "--subject",
        SUBJECT,
        "--name",
        "Fuzhou Minjiang Food Co., Ltd.",
        "--category",
        "food-drug",
        "--severity",
        "serious",
        "--reason",
        "sold a recalled batch",
        "--legal-basis",
        "Food Safety Law art. 123",
        "--document",
        "RSJ-2026-118",
        "--effective",
        "2026-01-01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn notice_count(fed: &credence_tests::TwoAuthorities) -> usize {
    credence_tests::stored_notices(&fed.issuer, &fed.path("count.bundle"))
}

#[test]
fn the_catalog_sets_defaults_and_limits_of_listings() {
    let fed = two_authorities();
    let before = notice_count(&fed);

    // Past the catalog's longest sharing period (five years for serious
    // food and drug listings): refused, naming the limit; nothing stored.
    let refused = credence_owned(&add(
        &fed.issuer,
        "black",
        &[
            "--measure",
            "more-inspections",
            "--share-until",
            "2032-01-01",
        ],
    ))
    .code(2);
    assert!(
        refused.stderr.contains("share_until") && refused.stderr.contains("at most 5y"),
        "{}",
        refused.stderr
    );
    assert_eq!(notice_count(&fed), before);

    // No dates named: the catalog's defaults; the mandatory measures added.
    let added = credence_owned(&add(
        &fed.issuer,
        "black",
        &["--measure", "more-inspections"],
    ))
    .ok();
    assert!(
        added.stdout.contains(
            "mandatory for food-drug at severity serious: license-review, procurement-ban, subsidy-ban added"
        ),
        "{}",
        added.stdout
    );
    let listing = added.issued_id();
    let shown = credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        arg(&fed.issuer),
        "--listing",
        &listing,
    ])
    .ok()
    .stdout;
    let effective = Timestamp::parse("2026-01-01").unwrap();
    let year = 365 * DAY_MS;
    let expected = format!(
        "effective {effective}, published until {}, shared until {}, repairable from {}",
        effective.plus_ms(3 * year),
        effective.plus_ms(5 * year),
        effective.plus_ms(year)
    );
    assert!(shown.contains(&expected), "{expected}\n{shown}");
    for measure in [
        "license-review",
        "procurement-ban",
        "subsidy-ban",
        "more-inspections",
    ] {
        assert!(shown.contains(measure), "{measure}: {shown}");
    }

    // The subject is blacklisted: a red listing is refused, naming it.
    let red = credence_owned(&add(&fed.issuer, "red", &["--measure", "green-channel"])).code(2);
    assert!(
        red.stderr.contains(&listing) && red.stderr.contains("red list"),
        "{}",
        red.stderr
    );
}

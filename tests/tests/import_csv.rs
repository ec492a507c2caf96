//! `credence import-csv`: every bad row named with its line and reason and
//! nothing stored; the good rows imported once, through the store or the
//! running node; an import cut short goes on where it stopped and never
//! signs a row twice.

use credence_protocol::testkit::uscc;
use credence_tests::cluster::cluster;
use credence_tests::{arg, credence, stored_notices, two_authorities};
use std::path::Path;

const HEADER: &str = "subject_kind,subject_id,subject_name,list,category,severity,reason,legal_basis,document_number,measures,effective_at,repair_from,linked";

/// A good row of company `n` (a blacklisting by the market bureau).
fn good(n: u64) -> String {
    format!(
        "legal_person,{},\"Company {n}, Ltd.\",black,food-drug,serious,sold a recalled batch,Food Safety Law art. 123,RSJ-2026-{n:05},high-consumption-ban;more-inspections,2026-01-01,2026-02-01,",
        uscc(n)
    )
}

fn write(path: &Path, rows: &[String]) {
    let mut text = String::from(HEADER);
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.push('\n');
    std::fs::write(path, text).expect("CSV written");
}

#[test]
fn bad_rows_are_named_and_nothing_is_stored_good_rows_go_in_once() {
    let fed = two_authorities();
    let file = fed.path("list.csv");
    let mut bad_id = uscc(7);
    bad_id.replace_range(17.., if bad_id.ends_with('0') { "1" } else { "0" });
    let rows = vec![
        good(1),
        good(2),
        // Line 4: the check character does not match.
        good(7).replace(&uscc(7), &bad_id),
        // Line 5: a category the market bureau may not list.
        good(3).replace("food-drug", "court-enforcement"),
        // Line 6: not a list.
        good(4).replace(",black,", ",purple,"),
        // Line 7: one field short.
        "legal_person,91350100M000100Y43".to_string(),
        good(5),
    ];
    write(&file, &rows);
    let data = arg(&fed.issuer);
    let dry = credence(&["import-csv", "--data", data, arg(&file), "--dry-run"]).code(1);
    for (line, what) in [
        (4, "check character"),
        (5, "court-enforcement"),
        (6, "purple"),
        (7, "fields"),
    ] {
        assert!(
            dry.stdout
                .lines()
                .any(|l| l.starts_with(&format!("line {line}: ")) && l.contains(what)),
            "line {line} ({what}) not named:\n{}",
            dry.stdout
        );
    }
    assert!(
        dry.stdout.contains("7 rows: 3 good, 4 bad"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("the notice budget covers the 3 rows to sign (20000 notices available now)"),
        "{}",
        dry.stdout
    );
    // Not a dry run, but bad rows: nothing is stored either.
    let refused = credence(&["import-csv", "--data", data, arg(&file)]).code(1);
    assert!(
        refused.stdout.contains("nothing was stored"),
        "{}",
        refused.stdout
    );
    assert_eq!(stored_notices(&fed.issuer, &fed.path("a.bundle")), 0);
    // With --skip-bad the three good rows go in (the status still says
    // not every row did).
    let skipped = credence(&["import-csv", "--data", data, arg(&file), "--skip-bad"]).code(1);
    assert!(
        skipped
            .stdout
            .contains("3 listings signed now, 0 signed by an earlier run"),
        "{}",
        skipped.stdout
    );
    assert_eq!(stored_notices(&fed.issuer, &fed.path("b.bundle")), 3);
    // Again: nothing more is signed.
    let again = credence(&["import-csv", "--data", data, arg(&file), "--skip-bad"]).code(1);
    assert!(
        again
            .stdout
            .contains("0 listings signed now, 3 signed by an earlier run"),
        "{}",
        again.stdout
    );
    assert_eq!(stored_notices(&fed.issuer, &fed.path("c.bundle")), 3);
    // An import stopped after signing but before its journal was written
    // (the journal is gone): each row is found by its idempotency key.
    let journals = fed.issuer.join("imports");
    std::fs::remove_dir_all(&journals).expect("journals removed");
    let resumed = credence(&[
        "import-csv",
        "--data",
        data,
        arg(&file),
        "--skip-bad",
        "--json",
    ])
    .code(1);
    let report: serde_json::Value = serde_json::from_str(&resumed.stdout).expect("JSON report");
    assert_eq!(report["signed"], 0, "{report}");
    assert_eq!(report["already"], 3, "{report}");
    assert_eq!(report["bad_rows"], 4, "{report}");
    assert_eq!(stored_notices(&fed.issuer, &fed.path("d.bundle")), 3);
    // The data directory's extract shows the three imported listings: it
    // brings the views up first (no node has run since the import).
    let extract = credence(&["extract", "--data", data, "--format", "csv"]).ok();
    assert_eq!(extract.stdout.lines().count(), 4, "{}", extract.stdout);
    for n in [1, 2, 5] {
        assert!(extract.stdout.contains(&uscc(n)), "{}", extract.stdout);
    }
}

// A file larger than the member's notice budget: the dry run says by how
// much, and how to get an allowance, and fails; the budget is what the
// node's status shows.
#[test]
fn a_dry_run_says_when_the_notice_budget_does_not_cover_the_file() {
    let fed = two_authorities();
    let file = fed.path("large.csv");
    let rows: Vec<String> = (1..=20_003).map(good).collect();
    write(&file, &rows);
    let data = arg(&fed.issuer);
    let dry = credence(&["import-csv", "--data", data, arg(&file), "--dry-run"]).code(1);
    assert!(
        dry.stdout.contains(
            "the notice budget covers 20000 of the 20003 rows to sign, 3 short: have the federation grant an allowance of at least 3 notices (`[[allow]]`"
        ),
        "{}",
        dry.stdout
    );
    let json = credence(&[
        "import-csv",
        "--data",
        data,
        arg(&file),
        "--dry-run",
        "--json",
    ])
    .code(1);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON report");
    assert_eq!(report["budget"], 20_000, "{report}");
    assert_eq!(report["to_sign"], 20_003, "{report}");
    assert_eq!(report["bad_rows"], 0, "{report}");
    assert_eq!(stored_notices(&fed.issuer, &fed.path("a.bundle")), 0);
}

#[test]
fn rows_without_an_effective_date_resume_as_first_built() {
    // Rows that take their effective date from the import's time: a run
    // that lost its journal's entries (not its start) builds them as the
    // first run did, so each is found by its key, not refused as another
    // request under the same key.
    let fed = two_authorities();
    let file = fed.path("undated.csv");
    let rows: Vec<String> = (1..=3)
        .map(|n| {
            format!(
                "legal_person,{},Company {n},black,food-drug,serious,sold a recalled batch,Food Safety Law art. 123,RSJ-{n},,,,",
                uscc(n)
            )
        })
        .collect();
    write(&file, &rows);
    let data = arg(&fed.issuer);
    credence(&["import-csv", "--data", data, arg(&file)]).ok();
    assert_eq!(stored_notices(&fed.issuer, &fed.path("a.bundle")), 3);
    let journal = std::fs::read_dir(fed.issuer.join("imports"))
        .expect("journals")
        .next()
        .expect("a journal")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(&journal).expect("journal");
    let first = text.lines().next().expect("its start");
    assert!(first.starts_with("started "), "{text}");
    std::fs::write(&journal, format!("{first}\n")).expect("entries lost");
    // Needed: the second run must start at another millisecond, so that a
    // row built at its own time (not the journal's) would differ and be
    // refused; this is what the test guards against, not a timing wait.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = credence(&["import-csv", "--data", data, arg(&file)]).ok();
    assert!(
        again
            .stdout
            .contains("0 listings signed now, 3 signed by an earlier run"),
        "{}",
        again.stdout
    );
    assert_eq!(stored_notices(&fed.issuer, &fed.path("b.bundle")), 3);
}

#[test]
fn a_header_with_an_unknown_or_missing_column_is_refused_whole() {
    let fed = two_authorities();
    let file = fed.path("list.csv");
    std::fs::write(
        &file,
        "subject_kind,subject_id,colour\nlegal_person,x,red\n",
    )
    .expect("written");
    let run = credence(&["import-csv", "--data", arg(&fed.issuer), arg(&file)]).code(2);
    assert!(
        run.stderr.contains("unknown column \"colour\""),
        "{}",
        run.stderr
    );
    std::fs::write(&file, "subject_kind,subject_id\nlegal_person,x\n").expect("written");
    let run = credence(&["import-csv", "--data", arg(&fed.issuer), arg(&file)]).code(2);
    assert!(
        run.stderr.contains("required columns missing"),
        "{}",
        run.stderr
    );
    // A file with no line end is not read whole into one record.
    std::fs::write(&file, vec![b'x'; 200_000]).expect("written");
    let run = credence(&["import-csv", "--data", arg(&fed.issuer), arg(&file)]).code(2);
    assert!(
        run.stderr.contains("longer than 65536 bytes"),
        "{}",
        run.stderr
    );
    assert_eq!(stored_notices(&fed.issuer, &fed.path("a.bundle")), 0);
}

#[test]
fn through_the_running_node_rows_are_signed_once_across_restarts() {
    let mut c = cluster(&["market"]);
    c.start_all();
    let file = c.root.path().join("list.csv");
    let rows: Vec<String> = (1..=40).map(good).collect();
    write(&file, &rows);
    let data = c.at("market").dir.clone();
    credence_tests::cluster::wait_for("the node ready", || {
        c.at("market").get("/v1/status")["ready"] == true
    });
    let first = credence(&["import-csv", "--data", arg(&data), arg(&file)]).ok();
    assert!(
        first.stdout.contains("40 listings signed now"),
        "{}",
        first.stdout
    );
    assert_eq!(c.at("market").notices(), 40);
    // The journal lost: the node's idempotency keys answer every row with
    // its first notice.
    std::fs::remove_dir_all(data.join("imports")).expect("journals removed");
    let second = credence(&["import-csv", "--data", arg(&data), arg(&file)]).ok();
    assert!(
        second
            .stdout
            .contains("0 listings signed now, 40 signed by an earlier run"),
        "{}",
        second.stdout
    );
    assert_eq!(c.at("market").notices(), 40);
    // Stopped, the node's store takes the same import: nothing again.
    c.peer("market").stop();
    let third = credence(&["import-csv", "--data", arg(&data), arg(&file)]).ok();
    assert!(
        third
            .stdout
            .contains("0 listings signed now, 40 signed by an earlier run"),
        "{}",
        third.stdout
    );
}

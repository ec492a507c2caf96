//! Distribution levels, linked persons and the subject's report with real
//! processes. Every level reaches whom it says on the lookup and listing
//! routes, for each role, on the issuer's node and on another member's; a
//! lookup of a company's legal representative finds the company's
//! listing, marked as linked; an auditor's report on the person is
//! signed, shows that lookup and its own request, is a printable page on
//! demand, and verifies offline, while a report with one consultation
//! changed does not; a reader may not ask for one; and the command line
//! makes one with the node stopped, registered too.

use credence_protocol::model::{Classification, LinkRole, LinkedPerson, NoticeKind};
use credence_tests::cluster::{Peer, cluster, listing};
use credence_tests::{arg, credence};

const PERSON: &str = "11010519491231002X";
const STATED: &str = "purpose=supplier%20check&legal_basis=Procurement%20Law%20art.%2022";

fn add(peer: &Peer, name: &str, role: &str) -> String {
    credence_tests::add_account(&peer.dir, name, role)
}

fn with_level(
    n: u64,
    level: Classification,
    readers: Vec<credence_protocol::AuthorityId>,
) -> NoticeKind {
    let NoticeKind::List(mut listed) = listing(n) else {
        unreachable!("a listing")
    };
    listed.classification = level;
    listed.readers = readers;
    NoticeKind::List(listed)
}

/// The listing ids a lookup of `subject` shows `token`.
fn seen(peer: &Peer, token: &str, subject: &str, kind: &str) -> Vec<String> {
    let (status, answer) = peer.request(
        "GET",
        &format!("/v1/subjects/{subject}?kind={kind}&{STATED}"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    answer["listings"]
        .as_array()
        .map(|listings| {
            listings
                .iter()
                .filter_map(|l| l["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn levels_linked_persons_and_the_subjects_report() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let author = |handle: &str| -> credence_protocol::AuthorityId {
        let status = c.at(handle).get("/v1/status");
        status["authority"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("an authority")
    };
    let tax = author("tax");
    // Four listings of one company, one per level; the named one is
    // shared with tax only.
    let market = c.at("market");
    let ids: Vec<(Classification, String)> = [
        (Classification::Public, vec![]),
        (Classification::Restricted, vec![]),
        (Classification::Named, vec![tax]),
        (Classification::Auditors, vec![]),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (level, readers))| {
        (
            level,
            market.issue(&with_level(61 + i as u64, level, readers)),
        )
    })
    .collect();
    c.wait_converged(&["market", "tax", "court"]);
    let roles = ["reader", "operator", "auditor"];
    for handle in ["market", "tax", "court"] {
        let peer = c.at(handle);
        for role in roles {
            let token = add(peer, &format!("{handle}-{role}"), role);
            for (i, (level, id)) in ids.iter().enumerate() {
                let subject = credence_protocol::testkit::uscc(61 + i as u64);
                let expected = match (role, level) {
                    ("auditor", _) => true,
                    (_, Classification::Public | Classification::Restricted) => true,
                    (_, Classification::Named) => handle != "court",
                    ("operator", Classification::Auditors) => handle == "market",
                    _ => false,
                };
                let shown = seen(peer, &token, &subject, "legal_person").contains(id);
                assert_eq!(shown, expected, "{level:?} to a {role} on {handle}");
                let (status, answer) = peer.request(
                    "GET",
                    &format!("/v1/listings/{id}?{STATED}"),
                    Some(&token),
                    None,
                );
                if expected {
                    assert_eq!(status, 200, "{level:?} to a {role} on {handle}: {answer}");
                } else {
                    assert_eq!(status, 403, "{level:?} to a {role} on {handle}: {answer}");
                    assert_eq!(answer["error"]["code"], "withheld", "{answer}");
                }
            }
        }
    }

    // A company listed with its legal representative: a lookup of the
    // person finds it, marked as linked; the company's own count is not
    // the person's.
    let NoticeKind::List(mut company) = listing(71) else {
        unreachable!("a listing")
    };
    company.linked = vec![LinkedPerson {
        role: LinkRole::LegalRepresentative,
        id: PERSON.into(),
        name: "Zhang <San> & Co".into(),
    }];
    let linked = market.issue(&NoticeKind::List(company));
    let reader = add(market, "desk", "reader");
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/subjects/{PERSON}?kind=natural_person&{STATED}"),
        Some(&reader),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["listings"][0]["id"], linked.as_str(), "{answer}");
    assert_eq!(answer["listings"][0]["linked_as"], "legal_representative");
    assert_eq!(answer["enforceable"], 0, "{answer}");
    // A federation query for the person: every member's answer holds it,
    // marked as linked (a query is a read too, registered on both sides).
    let ask = serde_json::json!({
        "subject_kind": "natural_person",
        "subject_id": PERSON,
        "purpose": "licence check",
        "legal_basis": "Administrative Licensing Law art. 31",
    })
    .to_string();
    let (status, answer) = market.request("POST", "/v1/query", Some(&reader), Some(&ask));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["listings"][0]["id"], linked.as_str(), "{answer}");
    assert_eq!(answer["listings"][0]["linked_as"], "legal_representative");

    // The person's report: a reader may not ask; an auditor gets it,
    // signed, with the lookup above and its own request.
    let report = format!(
        "/v1/subjects/{PERSON}/report?kind=natural_person&purpose=subject%20access%20request&legal_basis=Personal%20Information%20Protection%20Law%20art.%2045"
    );
    let (status, answer) = market.request("GET", &report, Some(&reader), None);
    assert_eq!(status, 403, "{answer}");
    let auditor = add(market, "records-office", "auditor");
    let (status, view) = market.request("GET", &report, Some(&auditor), None);
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["listings"][0]["id"], linked.as_str(), "{view}");
    assert_eq!(view["listings"][0]["linked_as"], "legal_representative");
    assert!(view["listings"][0]["history"].is_array(), "{view}");
    let reads = view["reads"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = reads.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["lookup", "query-sent", "report"], "{view}");
    assert_eq!(reads[0]["account"], "desk");
    assert_eq!(reads[2]["purpose"], "subject access request");
    // As a page: printable, with the names escaped.
    let page = market.get_text(&format!("{report}&format=html"));
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("Zhang &lt;San&gt; &amp; Co"), "{page}");
    assert!(!page.contains("<San>"), "{page}");
    // It verifies offline against the roster chain; one consultation
    // changed, it does not.
    let file = c.root.path().join("report.json");
    std::fs::write(&file, view.to_string()).expect("write");
    let verified = credence(&["report", "verify", "--data", arg(&market.dir), arg(&file)]).ok();
    assert!(
        verified.stdout.contains("REPORT VALID"),
        "{}",
        verified.stdout
    );
    let mut forged = view.clone();
    forged["reads"][0]["purpose"] = "nothing to see".into();
    std::fs::write(&file, forged.to_string()).expect("write");
    let run = credence(&["report", "verify", "--data", arg(&market.dir), arg(&file)]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("REPORT INVALID"), "{}", run.stdout);
    let mut forged = view;
    forged["listings"][0]["status"] = "withdrawn".into();
    std::fs::write(&file, forged.to_string()).expect("write");
    let run = credence(&["report", "verify", "--data", arg(&market.dir), arg(&file)]);
    assert_eq!(run.code, 1, "{}", run.stdout);

    // The command line, with the node stopped: the report is made on the
    // data directory, shows the earlier ones (the lookup, the query, the
    // report, its page) and its own request.
    c.peer("market").stop();
    let dir = c.at("market").dir.clone();
    let html = c.root.path().join("report.html");
    let out = c.root.path().join("report-offline.json");
    let made = credence(&[
        "report",
        "--data",
        arg(&dir),
        "--subject",
        PERSON,
        "--subject-kind",
        "natural_person",
        "--purpose",
        "subject access request at the counter",
        "--legal-basis",
        "Personal Information Protection Law art. 45",
        "--html",
        arg(&html),
        "--out",
        arg(&out),
    ])
    .ok();
    assert!(made.stdout.contains("1 listing(s)"), "{}", made.stdout);
    assert!(made.stdout.contains("5 consultation(s)"), "{}", made.stdout);
    assert!(
        made.stdout
            .contains("subject access request at the counter"),
        "{}",
        made.stdout
    );
    assert!(
        std::fs::read_to_string(&html)
            .expect("page")
            .contains("Consultations")
    );
    let verified = credence(&["report", "verify", "--data", arg(&dir), arg(&out)]).ok();
    assert!(
        verified.stdout.contains("REPORT VALID"),
        "{}",
        verified.stdout
    );
    // Bad command-line input is refused, naming it.
    let run = credence(&[
        "report",
        "--data",
        arg(&dir),
        "--subject",
        "short",
        "--purpose",
        "x",
        "--legal-basis",
        "y",
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("\"short\" is not an identifier of 18 letters and digits"),
        "{}",
        run.stderr
    );
    for handle in ["tax", "court"] {
        c.peer(handle).stop();
    }
}

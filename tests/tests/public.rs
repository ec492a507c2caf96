//! The public feed with real processes: only what the public may see
//! (published listings, and a withdrawal that restored the subject's
//! reputation as a public correction; no restricted listing), natural
//! persons masked, paged with a cursor in a stable order that every page
//! follows without gaps or repeats; bad paging parameters are refused
//! naming the field; the public extract gives every entry as CSV and JSON
//! Lines, through the API and on the data directory.

use credence_protocol::model::{Classification, NoticeKind, SubjectKind};
use credence_tests::cluster::{cluster, listing};
use serde_json::Value;

#[test]
fn the_feed_shows_what_the_public_may_see_masked_and_paged() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let market = c.at("market");
    let mut companies = Vec::new();
    for n in 41..=45 {
        companies.push(market.issue(&listing(n)));
    }
    let mut person = listing(46);
    if let NoticeKind::List(l) = &mut person {
        l.subject.kind = SubjectKind::NaturalPerson;
        l.subject.id = "11010519491231002X".into();
        l.subject.name = "王小明".into();
    }
    let person = market.issue(&person);
    // A company with its legal representative recorded beside it.
    let mut represented = listing(48);
    if let NoticeKind::List(l) = &mut represented {
        l.linked = vec![credence_protocol::model::LinkedPerson {
            role: credence_protocol::model::LinkRole::LegalRepresentative,
            id: "440524188001010014".into(),
            name: "Li Si".into(),
        }];
    }
    let represented = market.issue(&represented);
    let mut restricted = listing(47);
    if let NoticeKind::List(l) = &mut restricted {
        l.classification = Classification::Restricted;
    }
    let restricted = market.issue(&restricted);
    // The first company's listing is withdrawn restoring its reputation;
    // the second's withdrawn without.
    for (listing, restore) in [(&companies[0], true), (&companies[1], false)] {
        let (status, answer) = market.post(
            "/v1/notices",
            &serde_json::json!({"withdraw": {
                "listing": listing,
                "reason": "the decision was annulled on review",
                "restore_reputation": restore,
            }}),
        );
        assert_eq!(status, 201, "{answer}");
    }

    // Every page, two at a time, with no credential.
    let mut seen: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let path = match &after {
            Some(cursor) => format!("/v1/feed?limit=2&after={cursor}"),
            None => "/v1/feed?limit=2".to_string(),
        };
        let (status, page) = market.request("GET", &path, None, None);
        assert_eq!(status, 200, "{page}");
        let items = page["listings"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        seen.extend(items);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<&str> = seen.iter().filter_map(|i| i["id"].as_str()).collect();
    // Five companies still listed or corrected, the person; not the
    // listing withdrawn without restoring, not the restricted one.
    assert_eq!(ids.len(), 6, "{seen:?}");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no entry twice: {ids:?}");
    assert!(!ids.contains(&companies[1].as_str()));
    assert!(!ids.contains(&restricted.as_str()));
    // One page of everything gives the same order.
    let (_, whole) = market.request("GET", "/v1/feed?limit=1000", None, None);
    let whole: Vec<&str> = whole["listings"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(whole, ids);
    let entry = |id: &str| {
        seen.iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let corrected = entry(&companies[0]);
    assert_eq!(corrected["kind"], "correction", "{corrected}");
    assert!(corrected["corrected_at"].as_u64().is_some(), "{corrected}");
    assert_eq!(entry(&companies[2])["kind"], "listing");
    let shown = entry(&person);
    assert_eq!(shown["subject"]["id"], "110105********002X", "{shown}");
    assert_eq!(shown["subject"]["name"], "王**", "{shown}");
    let linked = &entry(&represented)["linked"][0];
    assert_eq!(linked["id"], "440524********0014", "{linked}");
    assert_eq!(linked["name"], "L* S*", "{linked}");
    assert_eq!(linked["role"], "legal_representative", "{linked}");
    // No public body carries an unmasked identity number: every run of
    // 17 digits and a check character is one of the masked forms' ends.
    let (_, whole_page) = market.request("GET", "/v1/feed?limit=1000", None, None);
    let bodies = seen
        .iter()
        .map(Value::to_string)
        .chain([whole_page.to_string()]);
    for body in bodies {
        assert!(unmasked_identity(&body).is_none(), "{body}");
    }

    for (path, field) in [
        ("/v1/feed?limit=0", "limit"),
        ("/v1/feed?limit=1001", "limit"),
        ("/v1/feed?after=zz", "after"),
        ("/v1/feed?after=00ff", "after"),
        ("/v1/feed?page=2", "page"),
    ] {
        let (status, answer) = market.request("GET", path, None, None);
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer.to_string().contains(field), "{path}: {answer}");
    }
    // The public extract: the same entries, every one, as CSV and as
    // JSON Lines, masked the same; with the node stopped, the command
    // line writes the same from its data directory.
    let text = |path: &str| {
        let mut response = ureq::get(&format!(
            "http://{}:{}{path}",
            market.host, market.http_port
        ))
        .call()
        .expect("the API answers");
        response.body_mut().read_to_string().expect("text")
    };
    let csv = text("/v1/extract?format=csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], credence_node::views::EXTRACT_CSV_COLUMNS.join(","));
    assert_eq!(rows.len(), 1 + ids.len(), "{csv}");
    assert!(csv.contains("110105********002X"), "{csv}");
    assert!(
        csv.contains("legal_representative 440524********0014 L* S*"),
        "{csv}"
    );
    assert!(unmasked_identity(&csv).is_none(), "{csv}");
    let jsonl = text("/v1/extract?format=jsonl");
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let extracted: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(extracted, ids);
    let (status, answer) = market.request("GET", "/v1/extract?format=xml", None, None);
    assert_eq!(status, 400, "{answer}");
    // The command line streams the running node's extract into a file.
    let written = c.root.path().join("extract.jsonl");
    let online = credence_tests::credence(&[
        "extract",
        "--data",
        credence_tests::arg(&market.dir),
        "--format",
        "jsonl",
        "--out",
        credence_tests::arg(&written),
    ])
    .ok();
    assert!(
        online.stderr.contains("extract written to"),
        "{}",
        online.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&written).expect("the extract file"),
        jsonl
    );
    c.peer("market").stop();
    let market = c.at("market");
    let offline = credence_tests::credence(&[
        "extract",
        "--data",
        credence_tests::arg(&market.dir),
        "--format",
        "csv",
    ])
    .ok();
    assert_eq!(
        offline.stdout.lines().count(),
        rows.len(),
        "{}",
        offline.stdout
    );
    assert_eq!(
        offline.stdout, csv,
        "the data directory's extract is the node's"
    );
    for handle in ["market", "tax"] {
        c.peer(handle).stop();
    }
}

/// The first resident identity number in `text` that is not masked: 17
/// digits and a digit or X in a row.
fn unmasked_identity(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    // A whole word: not a run of digits inside a hex notice id.
    let apart = |i: Option<&u8>| !i.is_some_and(u8::is_ascii_alphanumeric);
    (0..bytes.len().saturating_sub(17)).find_map(|start| {
        let window = &bytes[start..start + 18];
        let digits = window[..17].iter().all(u8::is_ascii_digit);
        let check = window[17].is_ascii_digit() || window[17] == b'X';
        let word =
            apart(start.checked_sub(1).and_then(|i| bytes.get(i))) && apart(bytes.get(start + 18));
        (digits && check && word).then(|| &text[start..start + 18])
    })
}

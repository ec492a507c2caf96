//! The register of reads with real processes: a lookup without a purpose
//! or a legal basis is refused naming the one missing and registers
//! nothing; every read that returns records (a lookup, a listing, a
//! query sent and answered, an export, the command line's `show` whether
//! or not the node runs) is registered with its account, subject,
//! purpose and basis; the register verifies against the checkpoint the
//! node signs, through the running node and on the data directory.

use credence_tests::cluster::{cluster, listing};
use credence_tests::{arg, credence};

#[test]
fn every_read_is_registered_and_the_register_verifies() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let market = c.at("market");
    let id = market.issue(&listing(51));
    let subject = credence_protocol::testkit::uscc(51);
    let token = market.token();
    let size = |peer: &credence_tests::cluster::Peer| {
        peer.get("/v1/register")["size"].as_u64().unwrap_or(0)
    };
    let before = size(market);
    for (path, missing) in [
        (format!("/v1/subjects/{subject}?purpose=x"), "legal_basis"),
        (format!("/v1/subjects/{subject}?legal_basis=y"), "purpose"),
        (
            format!("/v1/listings/{id}?purpose=%20&legal_basis=y"),
            "purpose",
        ),
        ("/v1/export?purpose=x".to_string(), "legal_basis"),
    ] {
        let (status, answer) = market.request("GET", &path, Some(&token), None);
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(missing),
            "{path}: {answer}"
        );
    }
    assert_eq!(size(market), before, "a refused read registers nothing");

    let (status, answer) = market.request(
        "GET",
        &format!("/v1/subjects/{subject}?purpose=credit%20check&legal_basis=Market%20Regulation%20Law%20art.%205"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("identifier_problem").is_none(), "{answer}");
    let found = answer["listings"].clone();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{answer}");
    // The identifier in small letters finds the same listing, and the
    // register records it as written in capitals.
    let stated = "purpose=credit%20check&legal_basis=Market%20Regulation%20Law%20art.%205";
    let lower = subject.to_ascii_lowercase();
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/subjects/{lower}?{stated}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["subject"], subject.as_str(), "{answer}");
    assert_eq!(answer["listings"], found, "{answer}");
    // A mistyped check character finds nothing, and the answer says why
    // an empty answer says nothing of the subject meant.
    let last = subject.chars().last().unwrap_or('0');
    let mistyped = format!("{}{}", &subject[..17], if last == '1' { '2' } else { '1' });
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/subjects/{mistyped}?{stated}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["listings"], serde_json::json!([]), "{answer}");
    let problem = answer["identifier_problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("check character") && problem.contains("mistyped"),
        "{answer}"
    );
    let looked = credence(&[
        "show",
        "--data",
        arg(&market.dir),
        "--subject",
        &mistyped,
        "--purpose",
        "credit check",
        "--legal-basis",
        "Market Regulation Law art. 5",
    ])
    .ok();
    assert!(
        looked.stdout.starts_with("warning: ") && looked.stdout.contains("mistyped"),
        "{}",
        looked.stdout
    );
    // An identifier far too long is refused, and not echoed whole.
    let long = "9".repeat(5_000);
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/subjects/{long}?{stated}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.len() < 1_000 && message.ends_with("characters in all)"),
        "{message}"
    );
    let shown = credence(&[
        "show",
        "--data",
        arg(&market.dir),
        "--listing",
        &id,
        "--purpose",
        "case review",
        "--legal-basis",
        "Administrative Penalty Law art. 3",
    ])
    .ok();
    assert!(shown.stdout.contains("status active"), "{}", shown.stdout);
    let page = market.get("/v1/register");
    let records = page["records"].as_array().cloned().unwrap_or_default();
    let lookup = records
        .iter()
        .find(|r| r["kind"] == "lookup" && r["purpose"] == "credit check")
        .unwrap_or_else(|| panic!("the lookup is registered: {page}"));
    assert_eq!(lookup["account"], "operator");
    assert_eq!(lookup["subject"], subject.as_str());
    assert_eq!(lookup["legal_basis"], "Market Regulation Law art. 5");
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "listing" && r["purpose"] == "case review")
    );
    assert!(
        page["checkpoint"]
            .as_str()
            .unwrap_or_default()
            .contains("/register/"),
        "{page}"
    );

    let verified = credence(&["register", "verify", "--data", arg(&market.dir)]).ok();
    assert!(
        verified.stdout.contains("REGISTER VALID"),
        "{}",
        verified.stdout
    );
    let listed = credence(&["register", "show", "--data", arg(&market.dir)]).ok();
    assert!(listed.stdout.contains("credit check"), "{}", listed.stdout);

    // With the node stopped: a read on the data directory is registered
    // too, and the register verifies there.
    c.peer("market").stop();
    let dir = c.at("market").dir.clone();
    credence(&[
        "show",
        "--data",
        arg(&dir),
        "--subject",
        &subject,
        "--purpose",
        "offline check",
        "--legal-basis",
        "Administrative Penalty Law art. 3",
    ])
    .ok();
    let listed = credence(&[
        "--json",
        "register",
        "show",
        "--data",
        arg(&dir),
        "--limit",
        "1000",
    ])
    .ok();
    assert!(listed.stdout.contains("offline check"), "{}", listed.stdout);
    let verified = credence(&["register", "verify", "--data", arg(&dir)]).ok();
    assert!(
        verified.stdout.contains("REGISTER VALID"),
        "{}",
        verified.stdout
    );
    // An export carries the register (its own record included), and the
    // offline audit checks it.
    let bundle = c.root.path().join("register.bundle");
    credence(&[
        "export",
        "--data",
        arg(&dir),
        "--out",
        arg(&bundle),
        "--purpose",
        "annual audit",
        "--legal-basis",
        "Audit Law art. 20",
    ])
    .ok();
    let audited = credence(&["audit", arg(&bundle), "--roster", arg(&c.roster)]).ok();
    assert!(
        audited.stdout.contains("register of reads of") && audited.stdout.contains("export 1"),
        "{}",
        audited.stdout
    );
    // Bad input to the command line: refused, naming it.
    let run = credence(&[
        "show",
        "--data",
        arg(&dir),
        "--subject",
        &subject,
        "--purpose",
        " ",
        "--legal-basis",
        "x",
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("purpose"), "{}", run.stderr);
    let run = credence(&["register", "show", "--data", arg(&dir), "--limit", "0"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--limit"), "{}", run.stderr);
    c.peer("tax").stop();
}

// Each route that returns a subject's records appends exactly one record
// (a federation query one on each side); the routes that return none
// (the register itself, the feed, status) append nothing.
#[test]
fn each_read_route_appends_exactly_one_record() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let market = c.at("market");
    let tax = c.at("tax");
    let id = market.issue(&listing(52));
    c.wait_converged(&["market", "tax"]);
    let subject = credence_protocol::testkit::uscc(52);
    let stated = "purpose=route%20walk&legal_basis=Audit%20Law%20art.%2020";
    let size = |peer: &credence_tests::cluster::Peer| {
        peer.get("/v1/register")["size"].as_u64().unwrap_or(0)
    };
    let token = market.token();
    let ask = |scope: &str| {
        serde_json::json!({
            "subject_id": subject,
            "purpose": "route walk",
            "legal_basis": "Audit Law art. 20",
            "scope": scope,
        })
        .to_string()
    };
    let routes: Vec<(&str, String, Option<String>, u64, u64)> = vec![
        (
            "GET",
            format!("/v1/subjects/{subject}?{stated}"),
            None,
            1,
            0,
        ),
        ("GET", format!("/v1/listings/{id}?{stated}"), None, 1, 0),
        (
            "GET",
            format!("/v1/subjects/{subject}/report?{stated}"),
            None,
            1,
            0,
        ),
        ("GET", format!("/v1/export?{stated}"), None, 1, 0),
        ("POST", "/v1/query".into(), Some(ask("local")), 1, 0),
        ("POST", "/v1/query".into(), Some(ask("federation")), 1, 1),
        ("GET", "/v1/register".into(), None, 0, 0),
        ("GET", "/v1/feed".into(), None, 0, 0),
        ("GET", "/v1/status".into(), None, 0, 0),
    ];
    for (method, path, body, here, there) in routes {
        let (before_here, before_there) = (size(market), size(tax));
        let (status, answer) = market.request(method, &path, Some(&token), body.as_deref());
        assert!(
            status == 200 || path.starts_with("/v1/export"),
            "{path}: {status} {answer}"
        );
        assert_eq!(
            size(market) - before_here,
            here,
            "{method} {path} on the node asked"
        );
        assert_eq!(
            size(tax) - before_there,
            there,
            "{method} {path} on the node answering"
        );
    }
    for handle in ["market", "tax"] {
        c.peer(handle).stop();
    }
}

// A read is answered only once its record is durable: a node killed with
// `kill -9` the moment its answer arrived still holds the record when it
// starts again, on the node asked and, for a federation query, on the
// node that answered it.
#[test]
fn a_read_answered_is_registered_even_if_the_node_dies_at_once() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let id = c.at("market").issue(&listing(53));
    c.wait_converged(&["market", "tax"]);
    let subject = credence_protocol::testkit::uscc(53);
    let stated = "purpose=crash%20check&legal_basis=Audit%20Law%20art.%2020";
    let size = |peer: &credence_tests::cluster::Peer| {
        peer.get("/v1/register")["size"].as_u64().unwrap_or(0)
    };
    let federation = serde_json::json!({
        "subject_id": subject,
        "purpose": "crash check",
        "legal_basis": "Audit Law art. 20",
        "scope": "federation",
    })
    .to_string();
    let reads: Vec<(&str, String, Option<String>, u64, u64)> = vec![
        (
            "GET",
            format!("/v1/subjects/{subject}?{stated}"),
            None,
            1,
            0,
        ),
        ("GET", format!("/v1/listings/{id}?{stated}"), None, 1, 0),
        (
            "GET",
            format!("/v1/subjects/{subject}/report?{stated}"),
            None,
            1,
            0,
        ),
        ("POST", "/v1/query".into(), Some(federation), 1, 1),
    ];
    for (method, path, body, here, there) in reads {
        let (before_here, before_there) = (size(c.at("market")), size(c.at("tax")));
        let token = c.at("market").token();
        let (status, answer) = c
            .at("market")
            .request(method, &path, Some(&token), body.as_deref());
        assert_eq!(status, 200, "{method} {path}: {answer}");
        c.peer("market").kill9();
        c.peer("tax").kill9();
        c.peer("market").start();
        c.peer("tax").start();
        assert_eq!(
            size(c.at("market")) - before_here,
            here,
            "{method} {path}: the record on the node asked, after kill -9"
        );
        assert_eq!(
            size(c.at("tax")) - before_there,
            there,
            "{method} {path}: the record on the node answering, after kill -9"
        );
    }
    let verified = credence(&["register", "verify", "--data", arg(&c.at("market").dir)]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    for handle in ["market", "tax"] {
        c.peer(handle).stop();
    }
}

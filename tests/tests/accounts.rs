//! Named API accounts with real processes: an account added from the
//! command line works at once with its own credential and only for what
//! its role grants (a reader reads and queries but may not issue or read
//! the register, which names it; an auditor reads the register but may
//! not issue); a revoked
//! one is refused at once; a missing, malformed or wrong credential gets
//! 401, a role that does not grant the route 403 naming the roles that
//! do; the file keeps no credential; bad command-line input is refused
//! naming what is wrong.

use credence_tests::cluster::{cluster, listing};
use credence_tests::{arg, credence};

fn add(data: &std::path::Path, name: &str, role: &str) -> String {
    credence_tests::add_account(data, name, role)
}

#[test]
fn each_account_gets_what_its_role_grants_and_no_more() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let first = c.at("market").issue(&listing(31));
    let data = c.at("market").dir.clone();
    let reader = add(&data, "tax-desk-1", "reader");
    let auditor = add(&data, "audit-office", "auditor");
    let node = c.at("market");
    let subject = format!(
        "/v1/subjects/{}?purpose=supplier%20check&legal_basis=Procurement%20Law%20art.%2022",
        credence_protocol::testkit::uscc(31)
    );
    let notice = serde_json::to_string(&listing(32)).expect("JSON");

    // A reader looks up; it may not issue nor read the register.
    let (status, answer) = node.request("GET", &subject, Some(&reader), None);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.to_string().contains(&first), "{answer}");
    let (status, answer) = node.request("POST", "/v1/notices", Some(&reader), Some(&notice));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "forbidden");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tax-desk-1") && message.contains("operator or admin"),
        "{message}"
    );
    let (status, _) = node.request("GET", "/v1/register", Some(&reader), None);
    assert_eq!(status, 403);
    // A reader queries the federation; the register names its account,
    // and an auditor reads it. The auditor may not issue.
    let ask = serde_json::json!({
        "subject_id": credence_protocol::testkit::uscc(31),
        "purpose": "procurement award",
        "legal_basis": "Government Procurement Law art. 22",
    })
    .to_string();
    let (status, answer) = node.request("POST", "/v1/query", Some(&reader), Some(&ask));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = node.request("GET", "/v1/register", Some(&auditor), None);
    assert_eq!(status, 200, "{answer}");
    let accounts: Vec<&str> = answer["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["account"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(accounts.contains(&"tax-desk-1"), "{answer}");
    let (status, _) = node.request("POST", "/v1/notices", Some(&auditor), Some(&notice));
    assert_eq!(status, 403);
    // The node's own account issues.
    let (status, answer) = node.request("POST", "/v1/notices", Some(&node.token()), Some(&notice));
    assert_eq!(status, 201, "{answer}");

    // A listing past its sharing period is served to auditors only.
    let mut old = listing(33);
    if let credence_protocol::model::NoticeKind::List(l) = &mut old {
        let day = credence_protocol::time::DAY_MS;
        l.effective_at = credence_protocol::time::Timestamp(l.effective_at.0 - 900 * day);
        l.publish_until = l.effective_at.plus_ms(365 * day);
        l.share_until = l.effective_at.plus_ms(730 * day);
        l.repair_from = l.effective_at.plus_ms(day);
    }
    let expired = node.issue(&old);
    let lookup = format!(
        "/v1/subjects/{}?purpose=supplier%20check&legal_basis=Procurement%20Law%20art.%2022",
        credence_protocol::testkit::uscc(33)
    );
    let one = format!(
        "/v1/listings/{expired}?purpose=supplier%20check&legal_basis=Procurement%20Law%20art.%2022"
    );
    let (status, answer) = node.request("GET", &lookup, Some(&reader), None);
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.to_string().contains(&expired), "{answer}");
    let (status, answer) = node.request("GET", &one, Some(&reader), None);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "not_shared");
    let (status, answer) = node.request("GET", &lookup, Some(&auditor), None);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.to_string().contains(&expired), "{answer}");

    // No credential, a malformed one, another account's secret: 401.
    let (_, secret) = reader.split_once('.').expect("name.secret");
    for bad in [
        None,
        Some("just-a-token".to_string()),
        Some(format!("audit-office.{secret}")),
    ] {
        let (status, answer) = node.request("GET", &subject, bad.as_deref(), None);
        assert_eq!(status, 401, "{bad:?}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorised");
    }

    // The file keeps hashes only.
    let file = std::fs::read_to_string(data.join("accounts.toml")).expect("accounts.toml");
    assert!(!file.contains(secret), "{file}");
    let listed = credence(&["account", "list", "--data", arg(&data)])
        .ok()
        .stdout;
    assert!(
        listed.contains("tax-desk-1") && listed.contains("reader") && listed.contains("active"),
        "{listed}"
    );

    // Revoked from the command line while the node runs: refused at once.
    credence(&[
        "account",
        "revoke",
        "--data",
        arg(&data),
        "--name",
        "tax-desk-1",
    ])
    .ok();
    let (status, answer) = node.request("GET", &subject, Some(&reader), None);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "revoked");
    let (status, _) = node.request("GET", &subject, Some(&auditor), None);
    assert_eq!(status, 200);

    // Bad command-line input is refused naming what is wrong; nothing
    // changes.
    let before = std::fs::read_to_string(data.join("accounts.toml")).expect("accounts.toml");
    for (args, expected) in [
        (vec!["--name", "Bad Name", "--role", "reader"], "lower-case"),
        (vec!["--name", "desk-2", "--role", "root"], "unknown role"),
        (
            vec!["--name", "audit-office", "--role", "reader"],
            "exists already",
        ),
    ] {
        let mut all = vec!["account", "add", "--data", arg(&data)];
        all.extend(args);
        let run = credence(&all);
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
    let run = credence(&[
        "account",
        "revoke",
        "--data",
        arg(&data),
        "--name",
        "operator",
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("the node's own"), "{}", run.stderr);
    let after = std::fs::read_to_string(data.join("accounts.toml")).expect("accounts.toml");
    assert_eq!(before, after);
    for handle in ["market", "tax"] {
        c.peer(handle).stop();
    }
}

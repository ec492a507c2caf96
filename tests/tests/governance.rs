//! Governance with real processes: a fourth region joins a running
//! federation through a roster version proposed, signed and submitted with
//! the command line, and catches up; a member removed by the next version
//! is disconnected and its connections are refused afterwards; a third
//! version grants a member a notice allowance, which every member shows
//! and takes; a planned key rotation, done with the command line alone,
//! stops the member's node with its own exit status and it comes back
//! under the new key; a new catalog applies to the notices signed under
//! it and not to earlier ones. Bad
//! proposals and change files are refused naming what is wrong, and
//! nothing is stored.

use credence_tests::cluster::{cluster, listing, wait_for};
use credence_tests::{arg, credence, credence_owned};
use std::path::Path;

fn roster_at(c: &credence_tests::cluster::Cluster, handle: &str) -> u64 {
    c.at(handle).get("/v1/federation")["current"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// The proposals `handle`'s node holds, as `/v1/federation` shows them.
fn proposals(c: &credence_tests::cluster::Cluster, handle: &str) -> Vec<serde_json::Value> {
    c.at(handle).get("/v1/federation")["proposals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn public_key(dir: &Path) -> String {
    let key = credence_node::keyfile::read(&dir.join(credence_node::node::KEY_FILE))
        .expect("the new member's key file");
    hex::encode(key.public_bytes())
}

fn propose(data: &Path, change: &Path, out: &Path) -> String {
    let run = credence(&[
        "federation",
        "propose",
        "--data",
        arg(data),
        "--change",
        arg(change),
        "--out",
        arg(out),
    ])
    .ok();
    assert!(run.stdout.contains("proposal written to"), "{}", run.stdout);
    run.stdout
}

fn sign(data: &Path, proposal: &Path) {
    credence(&[
        "federation",
        "sign",
        "--data",
        arg(data),
        "--proposal",
        arg(proposal),
    ])
    .ok();
}

fn submit(data: &Path, proposal: &Path) -> String {
    credence(&[
        "federation",
        "submit",
        "--data",
        arg(data),
        "--proposal",
        arg(proposal),
    ])
    .ok()
    .stdout
}

#[test]
fn a_fourth_region_joins_and_a_removed_one_is_refused() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let first = c.at("market").issue(&listing(1));
    c.wait_converged(&["market", "tax", "court"]);

    // Version 1: a fourth region, the threshold raised to three of four.
    let listen = c.new_member("zhangzhou");
    let zhangzhou = c.at("zhangzhou").dir.clone();
    let change = c.root.path().join("add.toml");
    std::fs::write(
        &change,
        format!(
            r#"threshold = 3

[[add]]
key = "{}"
name = "Zhangzhou Municipal Market Regulation Bureau"
region = "350600"
department = "market regulation"
issues_black = ["food-drug"]
implements = ["more-inspections"]
listen = ["{listen}"]
"#,
            public_key(&zhangzhou)
        ),
    )
    .expect("change file");
    let proposal = c.root.path().join("add.proposal");
    propose(&c.at("market").dir, &change, &proposal);
    // Below the threshold, submitting says why and takes nothing.
    let early = credence(&[
        "federation",
        "submit",
        "--data",
        arg(&c.at("market").dir),
        "--proposal",
        arg(&proposal),
    ]);
    assert_ne!(early.code, 0);
    assert!(early.stderr.contains("threshold is 2"), "{}", early.stderr);
    sign(&c.at("tax").dir, &proposal);
    // The new member proves it holds its key.
    sign(&zhangzhou, &proposal);
    let shown = credence(&["federation", "show", "--data", arg(&c.at("court").dir)])
        .ok()
        .stdout;
    assert!(shown.contains("proposal"), "{shown}");
    let submitted = submit(&c.at("market").dir, &proposal);
    assert!(submitted.contains("roster version 1 taken"), "{submitted}");
    for handle in ["market", "tax", "court"] {
        wait_for(&format!("{handle} at roster version 1"), || {
            roster_at(&c, handle) == 1
        });
    }

    // The new region joins with the version that added it, and catches up.
    credence(&[
        "federation",
        "join",
        "--data",
        arg(&zhangzhou),
        "--roster",
        arg(&c.roster),
        "--version",
        arg(&proposal),
    ])
    .ok();
    c.peer("zhangzhou").start();
    wait_for("the new region holds the earlier listing", || {
        c.at("zhangzhou").has_listing(&first)
    });
    assert_eq!(roster_at(&c, "zhangzhou"), 1);
    let theirs = c.at("zhangzhou").issue(&listing(2));
    wait_for("the new region's listing reaches the others", || {
        ["market", "tax", "court"]
            .iter()
            .all(|h| c.at(h).has_listing(&theirs))
    });

    // A query's receipt over the new region's listing: written with the
    // node's chain, verified offline with the genesis roster and the
    // version that added the region (without it, the region is unknown).
    let receipt = c.root.path().join("query.receipt");
    let subject = credence_protocol::testkit::uscc(2);
    credence(&[
        "query",
        "--data",
        arg(&c.at("market").dir),
        "--subject",
        &subject,
        "--purpose",
        "procurement award",
        "--legal-basis",
        "Government Procurement Law art. 22",
        "--receipt",
        arg(&receipt),
    ])
    .ok();
    let verified = credence(&[
        "receipt",
        "verify",
        arg(&receipt),
        "--roster",
        arg(&c.roster),
        "--version",
        arg(&proposal),
    ])
    .ok();
    assert!(
        verified.stdout.contains("RECEIPT VALID"),
        "{}",
        verified.stdout
    );
    let without = credence(&[
        "receipt",
        "verify",
        arg(&receipt),
        "--roster",
        arg(&c.roster),
    ]);
    assert_eq!(without.code, 1, "{}{}", without.stdout, without.stderr);

    // An export of a running node past a roster version carries the
    // genesis roster (its hash is the federation id) and the version, so
    // that the audit replays the chain and passes.
    let exported = c.root.path().join("market.bundle");
    credence_tests::export(&c.at("market").dir, &exported);
    let audit = credence(&["audit", arg(&exported), "--roster", arg(&c.roster)]);
    assert!(
        audit.stdout.contains("AUDIT PASSED"),
        "{}{}",
        audit.stdout,
        audit.stderr
    );
    // Version 2: the court is removed; three of four sign.
    let change = c.root.path().join("remove.toml");
    std::fs::write(
        &change,
        "[[remove]]\nmember = \"Quanzhou Intermediate People's Court\"\nafter_seq = 0\n",
    )
    .expect("change file");
    let proposal = c.root.path().join("remove.proposal");
    propose(&c.at("market").dir, &change, &proposal);
    sign(&c.at("tax").dir, &proposal);
    sign(&zhangzhou, &proposal);
    let submitted = submit(&c.at("market").dir, &proposal);
    assert!(submitted.contains("roster version 2 taken"), "{submitted}");
    for handle in ["market", "tax", "zhangzhou"] {
        wait_for(&format!("{handle} at roster version 2"), || {
            roster_at(&c, handle) == 2
        });
    }
    wait_for("nobody keeps the court connected", || {
        c.at("court").get("/v1/peers")["peers"]
            .as_array()
            .is_some_and(|peers| peers.is_empty())
    });
    assert!(
        c.at("market").log().contains("may no longer connect"),
        "{}",
        c.at("market").log()
    );
    // It keeps trying: every attempt is refused at the gate.
    wait_for("the court's reconnections are refused", || {
        c.at("market").metric("credence_connections_refused_total") > 0
            || c.at("market").log().contains("not a roster member")
    });
    let later = c.at("market").issue(&listing(3));
    wait_for("the remaining members converge", || {
        ["tax", "zhangzhou"]
            .iter()
            .all(|h| c.at(h).has_listing(&later))
    });
    assert!(!c.at("court").has_listing(&later));

    // Version 3 (format 2): the market is allowed 50,000 notices past its
    // budget, to bring in an existing list; every member shows it, and the
    // market's next listing, under version 3, reaches the others.
    let change = c.root.path().join("allow.toml");
    std::fs::write(
        &change,
        "[[allow]]\nmember = \"Fuzhou Municipal Market Regulation Bureau\"\nnotices = 50000\n",
    )
    .expect("change file");
    let proposal = c.root.path().join("allow.proposal");
    propose(&c.at("market").dir, &change, &proposal);
    sign(&c.at("tax").dir, &proposal);
    let shown = credence(&["federation", "show", "--data", arg(&c.at("tax").dir)])
        .ok()
        .stdout;
    assert!(
        shown.contains(
            "would grant the allowance: Fuzhou Municipal Market Regulation Bureau: 50000 notices past its budget, once"
        ),
        "{shown}"
    );
    sign(&zhangzhou, &proposal);
    let submitted = submit(&c.at("market").dir, &proposal);
    assert!(submitted.contains("roster version 3 taken"), "{submitted}");
    for handle in ["market", "tax", "zhangzhou"] {
        wait_for(&format!("{handle} at roster version 3"), || {
            roster_at(&c, handle) == 3
        });
        let roster = c.at(handle).get("/v1/federation");
        assert_eq!(
            roster["versions"][3]["allowances"][0],
            "Fuzhou Municipal Market Regulation Bureau: 50000 notices past its budget, once",
            "{roster}"
        );
    }
    let shown = credence(&["federation", "show", "--data", arg(&zhangzhou)])
        .ok()
        .stdout;
    assert!(
        shown.contains("allowance: Fuzhou Municipal Market Regulation Bureau: 50000 notices"),
        "{shown}"
    );
    let granted = c.at("market").issue(&listing(4));
    wait_for("the listing under version 3 reaches the others", || {
        ["tax", "zhangzhou"]
            .iter()
            .all(|h| c.at(h).has_listing(&granted))
    });
    // An export past the removal still audits: the court's log stays part
    // of the record, and its checkpoints are checked under the last
    // version that had it.
    let exported = c.root.path().join("tax.bundle");
    credence_tests::export(&c.at("tax").dir, &exported);
    let audit = credence(&["audit", arg(&exported), "--roster", arg(&c.roster)]);
    assert!(
        audit.stdout.contains("AUDIT PASSED"),
        "{}{}",
        audit.stdout,
        audit.stderr
    );
    for handle in ["market", "tax", "court", "zhangzhou"] {
        c.peer(handle).stop();
    }
}

#[test]
fn malformed_proposals_and_changes_are_refused_naming_the_field() {
    let mut c = cluster(&["market", "tax"]);
    let market = c.peer("market").dir.clone();
    let root = c.root.path().to_path_buf();

    let bad_change = root.join("bad.toml");
    std::fs::write(
        &bad_change,
        "[[add]]\nname = \"No Key Bureau\"\nregion = \"3506\"\ndepartment = \"x\"\n",
    )
    .expect("change file");
    let run = credence_owned(&[
        "federation".to_string(),
        "propose".into(),
        "--data".into(),
        arg(&market).into(),
        "--change".into(),
        arg(&bad_change).into(),
        "--out".into(),
        arg(&root.join("never.proposal")).into(),
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("key"), "{}", run.stderr);
    assert!(!root.join("never.proposal").exists());

    let unknown_field = root.join("unknown.toml");
    std::fs::write(&unknown_field, "[[remove]]\nmembr = \"x\"\nafter_seq = 1\n").expect("file");
    let run = credence_owned(&[
        "federation".to_string(),
        "propose".into(),
        "--data".into(),
        arg(&market).into(),
        "--change".into(),
        arg(&unknown_field).into(),
        "--out".into(),
        arg(&root.join("never.proposal")).into(),
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("membr"), "{}", run.stderr);

    let garbage = root.join("garbage.proposal");
    std::fs::write(&garbage, b"credence-roster\0not a version").expect("file");
    for command in ["submit", "sign"] {
        let run = credence(&[
            "federation",
            command,
            "--data",
            arg(&market),
            "--proposal",
            arg(&garbage),
        ]);
        assert_ne!(run.code, 0, "{command}");
        assert!(
            run.stderr.contains("signed roster version"),
            "{command}: {}",
            run.stderr
        );
    }
    let not_a_proposal = root.join("roster.toml");
    let run = credence(&[
        "federation",
        "submit",
        "--data",
        arg(&market),
        "--proposal",
        arg(&not_a_proposal),
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("not a roster proposal"),
        "{}",
        run.stderr
    );
    let shown = credence(&["federation", "show", "--data", arg(&market)])
        .ok()
        .stdout;
    // Nothing was stored: no version, no proposal.
    assert!(shown.contains("roster at version 0"), "{shown}");
    assert!(shown.contains("no proposals held"), "{shown}");
}

// A member's machine is lost with its key: the operator makes a new data
// directory (a new key), the others revoke the old key as compromised
// after the member's last notice and name the new one, and the new
// machine joins with that version. It holds no mark of the member's log
// (the one `init` wrote is its new key's), so it waits until a majority
// of the other members have shown it the log, then continues it under
// the new key; every member takes what it signs.
#[test]
fn a_member_whose_machine_and_key_were_lost_continues_its_log_under_a_new_key() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let first = c.at("market").issue(&listing(21));
    let second = c.at("market").issue(&listing(22));
    c.wait_converged(&["market", "tax", "court"]);
    let market = public_key(&c.at("market").dir);
    c.peer("market").stop();

    let listen = c.new_member("market2");
    let replacement = c.at("market2").dir.clone();
    let change = c.root.path().join("revoke.toml");
    std::fs::write(
        &change,
        format!(
            r#"[[rotate]]
member = "{market}"
key = "{}"
after_seq = 2
compromised = true

[[update]]
member = "{market}"
listen = ["{listen}"]
"#,
            public_key(&replacement)
        ),
    )
    .expect("change file");
    let proposal = c.root.path().join("revoke.proposal");
    propose(&c.at("tax").dir, &change, &proposal);
    sign(&c.at("court").dir, &proposal);
    sign(&replacement, &proposal);
    let submitted = submit(&c.at("tax").dir, &proposal);
    assert!(submitted.contains("roster version 1 taken"), "{submitted}");
    for handle in ["tax", "court"] {
        wait_for(&format!("{handle} at roster version 1"), || {
            roster_at(&c, handle) == 1
        });
    }

    credence(&[
        "federation",
        "join",
        "--data",
        arg(&replacement),
        "--roster",
        arg(&c.roster),
        "--version",
        arg(&proposal),
    ])
    .ok();
    c.peer("market2").start();
    wait_for("the new machine holds the member's log", || {
        c.at("market2").has_listing(&first) && c.at("market2").has_listing(&second)
    });
    wait_for(
        "the new machine issues once a majority showed it the log",
        || c.at("market2").get("/v1/status")["issuing"] == "ready",
    );
    let third = c.at("market2").issue(&listing(23));
    wait_for("the new key's notice reaches the others", || {
        ["tax", "court"].iter().all(|h| c.at(h).has_listing(&third))
    });
    for handle in ["tax", "court"] {
        let forks = c.at(handle).metric("credence_forks_total");
        assert_eq!(forks, 0, "{handle} found no fork");
    }
    for handle in ["tax", "court", "market2"] {
        c.peer(handle).stop();
    }
}

// A proposal gathers signatures over days: the nodes holding it restart,
// and a member whose node was down while it circulated signs it later.
// The proposal and its signatures are kept in each node's store and
// reach the member that was away by sync (nobody gossips them again).
#[test]
fn a_proposal_survives_restarts_and_reaches_a_member_that_was_down() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    c.at("market").issue(&listing(61));
    c.wait_converged(&["market", "tax", "court"]);
    c.peer("court").stop();
    let change = c.root.path().join("allow.toml");
    std::fs::write(
        &change,
        "[[allow]]\nmember = \"Fuzhou Municipal Market Regulation Bureau\"\nnotices = 1000\n",
    )
    .expect("change file");
    let file = c.root.path().join("allow.proposal");
    propose(&c.at("market").dir, &change, &file);
    let held = proposals(&c, "market");
    assert_eq!(held.len(), 1, "{held:?}");
    let hash = held[0]["hash"].as_str().unwrap_or_default().to_string();
    // The market signs it by its hash, on the running node.
    credence(&[
        "federation",
        "sign",
        "--data",
        arg(&c.at("market").dir),
        "--hash",
        &hash,
    ])
    .ok();
    wait_for("the tax bureau holds the market's signature", || {
        proposals(&c, "tax")
            .first()
            .is_some_and(|p| p["members_signed"] == 1)
    });
    // Both nodes that hold it restart: it is still there, signature and all.
    for handle in ["market", "tax"] {
        c.peer(handle).stop();
        c.peer(handle).start();
        let held = proposals(&c, handle);
        assert_eq!(held.len(), 1, "{handle} after a restart: {held:?}");
        assert_eq!(held[0]["hash"], hash.as_str(), "{handle}");
        assert_eq!(held[0]["members_signed"], 1, "{handle}");
    }
    // The court comes back and gets it by sync, then signs it.
    c.peer("court").start();
    wait_for("the court holds the proposal", || {
        proposals(&c, "court")
            .first()
            .is_some_and(|p| p["hash"] == hash.as_str() && p["members_signed"] == 1)
    });
    credence(&[
        "federation",
        "sign",
        "--data",
        arg(&c.at("court").dir),
        "--hash",
        &hash,
    ])
    .ok();
    wait_for("the market holds the court's signature", || {
        proposals(&c, "market")
            .first()
            .is_some_and(|p| p["members_signed"] == 2 && p["ready"] == true)
    });
    let submitted = credence(&[
        "federation",
        "submit",
        "--data",
        arg(&c.at("market").dir),
        "--hash",
        &hash,
    ])
    .ok()
    .stdout;
    assert!(submitted.contains("roster version 1 taken"), "{submitted}");
    for handle in ["market", "tax", "court"] {
        wait_for(&format!("{handle} at roster version 1"), || {
            roster_at(&c, handle) == 1
        });
        assert!(proposals(&c, handle).is_empty(), "{handle}");
    }
    for handle in ["market", "tax", "court"] {
        c.peer(handle).stop();
    }
}

// A planned key rotation with the command line alone: the market prepares
// its next key, the tax bureau proposes the `[[rotate]]` after the
// market's head, the market signs by hash (its node signs with the current
// key, the command adds the next key's proof of possession; from then on
// it issues nothing under the old key), the court signs the file, and the
// version is submitted. The market's node stops by itself to be started again: exit
// status 3, said as a planned stop, not as an error. Started again, it
// runs under the new key and its next listing continues its log on every
// member.
#[test]
fn a_planned_key_rotation_stops_the_node_to_be_started_again_under_the_new_key() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let first = c.at("market").issue(&listing(71));
    c.wait_converged(&["market", "tax", "court"]);
    let market_dir = c.at("market").dir.clone();
    let market = public_key(&market_dir);
    let prepared = credence(&["rotate-key", "--data", arg(&market_dir)]).ok();
    let next = hex::encode(
        credence_node::keyfile::read(&market_dir.join(credence_node::node::NEXT_KEY_FILE))
            .expect("the next key file")
            .public_bytes(),
    );
    assert!(prepared.stdout.contains(&next), "{}", prepared.stdout);

    let change = c.root.path().join("rotate.toml");
    std::fs::write(
        &change,
        format!("[[rotate]]\nmember = \"{market}\"\nkey = \"{next}\"\nafter_seq = 1\n"),
    )
    .expect("change file");
    let file = c.root.path().join("rotate.proposal");
    propose(&c.at("tax").dir, &change, &file);
    let hash = proposals(&c, "tax")[0]["hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The court's signature travels from its node; the market's node gets
    // the proposal with it.
    sign(&c.at("court").dir, &file);
    wait_for("the market holds the proposal", || {
        proposals(&c, "market")
            .first()
            .is_some_and(|p| p["hash"] == hash.as_str())
    });
    let signed = credence(&[
        "federation",
        "sign",
        "--data",
        arg(&market_dir),
        "--hash",
        &hash,
    ])
    .ok()
    .stdout;
    assert!(signed.contains("proving possession"), "{signed}");
    // Signed, the market issues nothing until the version is taken: a
    // notice past seq 1 under the old key would be void.
    let body = serde_json::to_value(listing(73)).expect("notice JSON");
    let (status, answer) = c.at("market").post("/v1/notices", &body);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "key_rotating", "{answer}");
    let status = c.at("market").get("/v1/status");
    assert_eq!(status["issuing"], "key_rotating", "{status}");
    assert_eq!(status["ready"], false, "{status}");
    wait_for("the tax bureau holds a proposal ready to submit", || {
        proposals(&c, "tax")
            .first()
            .is_some_and(|p| p["ready"] == true)
    });
    let submitted = credence(&[
        "federation",
        "submit",
        "--data",
        arg(&c.at("tax").dir),
        "--hash",
        &hash,
    ])
    .ok()
    .stdout;
    assert!(submitted.contains("roster version 1 taken"), "{submitted}");

    // The market's node stops by itself, as planned.
    let code = c.peer("market").wait_exit();
    let log = c.at("market").log();
    assert_eq!(code, Some(credence_node::node::EXIT_RESTART), "{log}");
    assert!(
        log.contains("stopped to be started again: roster version 1 rotated this node's key"),
        "{log}"
    );
    assert!(
        !log.contains(" ERROR "),
        "a planned stop is not an error:\n{log}"
    );
    assert!(
        !log.contains("error:"),
        "a planned stop is not an error:\n{log}"
    );

    // Started again, it runs under the new key: the old one is kept aside.
    c.peer("market").start();
    assert_eq!(public_key(&market_dir), next);
    let retired = std::fs::read_dir(&market_dir)
        .expect("data directory")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("authority.key.retired-")
        });
    assert!(retired, "the retired key is kept beside the new one");
    assert!(!market_dir.join(credence_node::node::NEXT_KEY_FILE).exists());
    wait_for("the market issues under its new key", || {
        c.at("market").get("/v1/status")["issuing"] == "ready"
    });
    let second = c.at("market").issue(&listing(72));
    wait_for("the new key's listing reaches every member", || {
        ["tax", "court"]
            .iter()
            .all(|h| c.at(h).has_listing(&first) && c.at(h).has_listing(&second))
    });
    for handle in ["market", "tax", "court"] {
        assert_eq!(roster_at(&c, handle), 1, "{handle}");
        assert_eq!(c.at(handle).metric("credence_forks_total"), 0, "{handle}");
        c.peer(handle).stop();
    }
}

// A whole new catalog through a roster version: it shortens how long a
// serious food and drug listing may be published. A listing signed under
// the genesis catalog stays valid on every member (a notice is checked
// against the catalog of the version it names), a new one past the new
// limit is refused naming it, and one within it reaches every member.
#[test]
fn a_new_catalog_applies_to_notices_signed_under_it_and_not_to_earlier_ones() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let before = c.at("market").issue(&listing(81));
    c.wait_converged(&["market", "tax", "court"]);

    // The example catalog as a change's [catalog], with the serious food
    // and drug rule published for at most 180 days (3 years before).
    let catalog = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/catalog.toml"),
    )
    .expect("the example catalog");
    let serious = "severity = \"serious\"\npublish = \"3y\"\npublish_max = \"3y\"\n";
    // The first serious rule is food and drug's, the first category.
    let food = catalog.find("code = \"food-drug\"").expect("food-drug");
    let next = food
        + catalog[food..]
            .find("[[categories]]")
            .expect("a next category");
    let rule = catalog.find(serious).expect("a serious rule");
    assert!(food < rule && rule < next, "the food and drug rule");
    let catalog = catalog.replacen(
        serious,
        "severity = \"serious\"\npublish = \"180d\"\npublish_max = \"180d\"\n",
        1,
    );
    let change_text = format!(
        "[catalog]\n{}",
        catalog
            .replace("[[categories", "[[catalog.categories")
            .replace("[[measures", "[[catalog.measures")
    );
    let change = c.root.path().join("catalog.toml");
    std::fs::write(&change, change_text).expect("change file");
    let proposal = c.root.path().join("catalog.proposal");
    propose(&c.at("market").dir, &change, &proposal);
    sign(&c.at("tax").dir, &proposal);
    let submitted = submit(&c.at("market").dir, &proposal);
    assert!(submitted.contains("roster version 1 taken"), "{submitted}");
    for handle in ["market", "tax", "court"] {
        wait_for(&format!("{handle} at roster version 1"), || {
            roster_at(&c, handle) == 1
        });
    }

    // Published for a year: past the new limit, refused before signing.
    let body = serde_json::to_value(listing(82)).expect("notice JSON");
    let (status, answer) = c.at("market").post("/v1/notices", &body);
    assert_eq!(status, 422, "{answer}");
    let message = answer.to_string();
    assert_eq!(answer["error"]["code"], "period_too_long", "{answer}");
    assert!(
        message.contains("at most 180d"),
        "the refusal names the new limit: {message}"
    );
    // Within it: signed under version 1 and taken by every member.
    let mut within = listing(83);
    if let credence_protocol::model::NoticeKind::List(l) = &mut within {
        l.publish_until = l
            .effective_at
            .plus_ms(150 * credence_protocol::time::DAY_MS);
    }
    let after = c.at("market").issue(&within);
    wait_for(
        "the listing under the new catalog reaches every member",
        || ["tax", "court"].iter().all(|h| c.at(h).has_listing(&after)),
    );
    // The listing signed under the genesis catalog stands everywhere, and
    // a member restarted (checking its store again) still holds both.
    c.peer("court").stop();
    c.peer("court").start();
    for handle in ["market", "tax", "court"] {
        let shown = c.at(handle).get(&format!("/v1/listings/{before}"));
        assert_eq!(shown["status"], "active", "{handle}: {shown}");
        assert!(c.at(handle).has_listing(&after), "{handle}");
        assert_eq!(c.at(handle).metric("credence_forks_total"), 0, "{handle}");
    }
    for handle in ["market", "tax", "court"] {
        c.peer(handle).stop();
    }
}

// Two members each propose a change for version 1. The court signs the
// market's; its signature on the tax bureau's is refused (by hash and by
// file alike) saying why: two versions 1 would be an equivocation naming
// it. Said so with --competing, it signs. The market, whose own proposal
// it signed, is refused a second proposal of its own the same way.
#[test]
fn a_member_is_refused_a_second_proposal_for_one_version_unless_it_says_so() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let write = |name: &str, text: &str| {
        let path = c.root.path().join(name);
        std::fs::write(&path, text).expect("change file");
        path
    };
    let allow = |member: &str, notices: u64| {
        format!("[[allow]]\nmember = \"{member}\"\nnotices = {notices}\n")
    };
    let market_change = write(
        "market.toml",
        &allow("Fuzhou Municipal Market Regulation Bureau", 1000),
    );
    let tax_change = write("tax.toml", &allow("Xiamen Municipal Tax Service", 500));
    let market_file = c.root.path().join("market.proposal");
    let tax_file = c.root.path().join("tax.proposal");
    propose(&c.at("market").dir, &market_change, &market_file);
    propose(&c.at("tax").dir, &tax_change, &tax_file);
    let hash_of = |file: &Path| {
        let bytes = std::fs::read(file).expect("proposal file");
        credence_protocol::governance::proposal::decode_proposal(&bytes)
            .expect("a proposal")
            .hash()
            .to_string()
    };
    let (market_hash, tax_hash) = (hash_of(&market_file), hash_of(&tax_file));
    wait_for("the court holds both proposals", || {
        proposals(&c, "court").len() == 2
    });
    let court = c.at("court").dir.clone();
    let sign_hash = |hash: &str, extra: &[&str]| {
        let mut args = vec!["federation", "sign", "--data", arg(&court), "--hash", hash];
        args.extend_from_slice(extra);
        credence(&args)
    };
    sign_hash(&market_hash, &[]).ok();
    for refused in [
        sign_hash(&tax_hash, &[]),
        credence(&[
            "federation",
            "sign",
            "--data",
            arg(&court),
            "--proposal",
            arg(&tax_file),
        ]),
    ] {
        assert_ne!(refused.code, 0, "{}", refused.stdout);
        assert!(
            refused
                .stderr
                .contains(&format!("already signed proposal {market_hash}")),
            "{}",
            refused.stderr
        );
        assert!(refused.stderr.contains("--competing"), "{}", refused.stderr);
    }
    let court_signed = |hash: &str| {
        proposals(&c, "court")
            .iter()
            .find(|p| p["hash"] == hash)
            .map_or(0, |p| p["members_signed"].as_u64().unwrap_or(0))
    };
    assert_eq!(
        court_signed(&tax_hash),
        1,
        "only the tax bureau's signature"
    );
    sign_hash(&tax_hash, &["--competing"]).ok();
    assert_eq!(court_signed(&tax_hash), 2);

    // The market signed its own proposal: another of its own is refused,
    // then taken with --competing.
    let again = write(
        "again.toml",
        &allow("Quanzhou Intermediate People's Court", 10),
    );
    let again_file = c.root.path().join("again.proposal");
    let market = c.at("market").dir.clone();
    let propose_again = |extra: &[&str]| {
        let mut args = vec![
            "federation",
            "propose",
            "--data",
            arg(&market),
            "--change",
            arg(&again),
            "--out",
            arg(&again_file),
        ];
        args.extend_from_slice(extra);
        credence(&args)
    };
    let held = proposals(&c, "market").len();
    let refused = propose_again(&[]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("already signed proposal"),
        "{}",
        refused.stderr
    );
    assert!(!again_file.exists(), "no proposal file written");
    assert_eq!(proposals(&c, "market").len(), held, "nothing kept");
    propose_again(&["--competing"]).ok();
    assert!(again_file.exists());
    assert_eq!(proposals(&c, "market").len(), held + 1);
    for handle in ["market", "tax", "court"] {
        c.peer(handle).stop();
    }
}

//! The federation over real `credence run` processes on 127.0.0.1.

use credence_protocol::model::{NoticeId, NoticeKind};
use credence_protocol::query::{Signed, SignedAnswer};
use credence_protocol::roster::Federation;
use credence_tests::cluster::{cluster, listing, wait_for};
use serde_json::json;

fn federation(roster: &std::path::Path) -> Federation {
    Federation::from_toml(&std::fs::read_to_string(roster).expect("roster")).expect("federation")
}

#[test]
fn a_notice_issued_on_one_node_is_accepted_by_all() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let id = c.at("market").issue(&listing(1));
    for handle in ["market", "tax", "court"] {
        let peer = c.peer(handle);
        wait_for(&format!("the listing on {handle}"), || {
            peer.has_listing(&id)
        });
    }
    // The objection filed on the tax service suspends it everywhere and
    // removes the court's task.
    let court = c.at("court");
    wait_for("the court's apply task", || {
        court.get("/v1/tasks")["tasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    });
    let listing_id: NoticeId = id.parse().expect("id");
    let objection = NoticeKind::Object {
        listing: listing_id,
        grounds: "recalled before sale".into(),
        respond_by: credence_protocol::time::Timestamp(
            credence_tests::cluster::now_ms() + 20 * 86_400_000,
        ),
    };
    c.at("tax").issue(&objection);
    let court = c.at("court");
    wait_for("suspension on the court's node", || {
        court.get(&format!("/v1/listings/{id}"))["status"] == "suspended"
    });
    assert_eq!(court.get("/v1/tasks")["tasks"], json!([]));
    c.wait_converged(&["market", "tax", "court"]);
    for peer in &c.peers {
        assert_eq!(
            peer.metric("credence_notices_rejected_total"),
            0,
            "{}",
            peer.log()
        );
    }
}

#[test]
fn a_late_or_stopped_node_catches_up_by_sync() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.peer("market").start();
    c.peer("tax").start();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(c.at("market").issue(&listing(10 + n)));
    }
    // Started late: sync brings what gossip carried before it existed.
    c.peer("court").start();
    c.wait_converged(&["market", "tax", "court"]);
    let court = c.at("court");
    assert!(ids.iter().all(|id| court.has_listing(id)));
    // Stopped while others issue, then restarted.
    c.peer("tax").stop();
    for n in 0..5 {
        ids.push(c.at("market").issue(&listing(20 + n)));
    }
    c.peer("tax").start();
    c.wait_converged(&["market", "tax", "court"]);
    let tax = c.at("tax");
    assert!(ids.iter().all(|id| tax.has_listing(id)));
    assert_eq!(tax.notices(), 10);
}

#[test]
fn kill_9_while_issuing_loses_nothing_acknowledged_and_forks_nothing() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    // Issue from a second thread; kill the node under it.
    let market = c.at("market");
    let url_port = market.http_port;
    let token = market.token();
    let issuer = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut acknowledged = Vec::new();
        for n in 0..10_000u64 {
            let body = serde_json::to_string(&listing(1000 + n)).expect("json");
            let result = agent
                .post(format!("http://127.0.0.1:{url_port}/v1/notices"))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(body.as_bytes());
            match result {
                Ok(mut response) if response.status() == 201 => {
                    let answer: serde_json::Value = response.body_mut().read_json().expect("json");
                    acknowledged.push(answer["id"].as_str().expect("id").to_string());
                }
                Ok(response) if response.status() == 503 => {
                    // Catching up: poll again shortly.
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                _ => break,
            }
        }
        acknowledged
    });
    // Let the issuer get some notices acknowledged, then kill the node
    // under it (the assertions below hold whenever the kill lands).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    c.peer("market").kill9();
    let acknowledged = issuer.join().expect("issuer thread");
    assert!(
        acknowledged.len() > 5,
        "only {} notices acknowledged",
        acknowledged.len()
    );
    c.peer("market").start();
    let market = c.at("market");
    for id in &acknowledged {
        assert!(market.has_listing(id), "acknowledged listing {id} lost");
    }
    // It goes on issuing where it left off, and nobody sees a fork.
    c.at("market").issue(&listing(99));
    c.wait_converged(&["market", "tax", "court"]);
    for peer in &c.peers {
        assert_eq!(peer.get("/v1/status")["forks"], 0, "{}", peer.log());
        assert_eq!(peer.metric("credence_forks_total"), 0);
    }
    let market = c.at("market");
    assert!(market.notices() > acknowledged.len() as u64);
}

#[test]
fn a_node_whose_store_is_deleted_rebuilds_from_its_peers() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(c.at("market").issue(&listing(40 + n)));
    }
    let objection = NoticeKind::Object {
        listing: ids[0].parse().expect("id"),
        grounds: "wrong company".into(),
        respond_by: credence_protocol::time::Timestamp(
            credence_tests::cluster::now_ms() + 20 * 86_400_000,
        ),
    };
    c.at("tax").issue(&objection);
    c.wait_converged(&["market", "tax", "court"]);
    let before = c.at("market").heads();
    c.peer("market").stop();
    std::fs::remove_dir_all(c.at("market").dir.join("store")).expect("delete the store");
    c.peer("market").start();
    c.wait_converged(&["market", "tax", "court"]);
    let market = c.at("market");
    assert_eq!(market.heads(), before);
    assert!(ids.iter().all(|id| market.has_listing(id)));
    // Its own log came back too: the next notice continues it, no fork.
    let next = market.issue(&listing(50));
    c.wait_converged(&["market", "tax", "court"]);
    for peer in &c.peers {
        assert!(peer.has_listing(&next));
        assert_eq!(peer.get("/v1/status")["forks"], 0);
    }
}

#[test]
fn a_non_member_cannot_connect_and_nothing_it_sends_is_accepted() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    // An outsider with its own roster that lists the members' addresses.
    let outsider = c.root.path().join("outsider");
    credence_tests::credence(&[
        "init",
        "--data",
        credence_tests::arg(&outsider),
        "--name",
        "outsider",
    ])
    .ok();
    // A federation of its own that also names the members (their public
    // keys are no secret): it dials them as bootstrap peers and they
    // refuse it, since their roster does not have it.
    let members = c.root.path().join("outsider-members.toml");
    let mut text = String::from("name = \"outsiders\"\n");
    for handle in ["outsider", "market", "tax"] {
        text.push_str(&format!(
            "[[members]]\nhandle = \"{handle}\"\nname = \"{handle}\"\nregion = \"110000\"\ndepartment = \"none\"\nissues_black = [\"food-drug\"]\n"
        ));
    }
    std::fs::write(&members, text).expect("members");
    let market_port = c.at("market").p2p_port;
    let roster = c.root.path().join("outsider-roster.toml");
    credence_tests::credence(&[
        "federation",
        "genesis",
        "--catalog",
        credence_tests::arg(&credence_tests::configs_dir().join("catalog.toml")),
        "--members",
        credence_tests::arg(&members),
        "--key",
        &format!("outsider=@{}", credence_tests::arg(&outsider)),
        "--key",
        &format!("market=@{}", credence_tests::arg(&c.at("market").dir)),
        "--key",
        &format!("tax=@{}", credence_tests::arg(&c.at("tax").dir)),
        "--out",
        credence_tests::arg(&roster),
    ])
    .ok();
    credence_tests::credence(&[
        "federation",
        "join",
        "--data",
        credence_tests::arg(&outsider),
        "--roster",
        credence_tests::arg(&roster),
    ])
    .ok();
    let http = credence_tests::cluster::free_port();
    let config = c.root.path().join("outsider.run.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"outsider\"\nhttp = \"127.0.0.1:{http}\"\nbootstrap = [\"/ip4/127.0.0.1/tcp/{}\", \"/ip4/127.0.0.1/tcp/{}\"]\n",
            market_port,
            c.at("tax").p2p_port
        ),
    )
    .expect("config");
    let log = std::fs::File::create(c.root.path().join("outsider.log")).expect("log");
    let mut child = std::process::Command::new(credence_tests::credence_bin())
        .args(["run", "--config", credence_tests::arg(&config)])
        .env(
            "CREDENCE_LOG",
            "debug,libp2p_gossipsub=info,yamux=info,multistream_select=info",
        )
        .stdout(std::process::Stdio::from(log.try_clone().expect("log")))
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .expect("outsider starts");
    let started = std::time::Instant::now();
    while c
        .peers
        .iter()
        .any(|p| p.metric("credence_connections_refused_total") == 0)
    {
        assert!(
            started.elapsed() < credence_tests::cluster::CONVERGE_TIMEOUT,
            "the outsider was not refused by every member\noutsider:\n{}\nmarket:\n{}",
            std::fs::read_to_string(c.root.path().join("outsider.log")).unwrap_or_default(),
            c.at("market").log()
        );
        // Polling the members' metrics: no timing is asserted.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let market = c.at("market");
    assert_eq!(
        market.get("/v1/status")["peers"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(market.notices(), 0);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_cross_region_query_returns_signed_answers_and_both_registers_hold_it() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    let id = c.at("market").issue(&listing(7));
    c.wait_converged(&["market", "tax", "court"]);
    let tax = c.at("tax");
    wait_for("every peer connected", || {
        tax.get("/v1/status")["peers"].as_array().map(Vec::len) == Some(2)
    });
    // Asked in small letters: the query is of the identifier in capitals.
    let (status, answer) = tax.post(
        "/v1/query",
        &json!({
            "subject_id": credence_protocol::testkit::uscc(7).to_ascii_lowercase(),
            "purpose": "procurement award",
            "legal_basis": "Government Procurement Law art. 22",
        }),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["answered_by"].as_array().map(Vec::len),
        Some(3),
        "{answer}"
    );
    assert_eq!(answer["listings"][0]["id"], id.as_str());
    let federation = federation(&c.roster);
    let request_id: credence_crypto::Digest =
        answer["request_id"].as_str().unwrap().parse().unwrap();
    for signed in answer["answers"].as_array().unwrap() {
        let bytes = hex_decode(signed["signed_answer"].as_str().unwrap());
        let signed =
            Signed::decode::<{ credence_protocol::query::ANSWER_BYTES_MAX }>(&bytes).unwrap();
        let verified = SignedAnswer::verify(&federation, &request_id, signed.clone())
            .expect("a signed answer verifies");
        assert_eq!(verified.answer.listings.len(), 1);
        let mut forged = signed;
        forged.body[10] ^= 1;
        assert!(SignedAnswer::verify(&federation, &request_id, forged).is_err());
    }
    let request_hex = answer["request_id"].as_str().unwrap().to_string();
    let sent = tax.get("/v1/register");
    assert!(
        sent["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "query-sent"
                && r["request_id"] == request_hex.as_str()
                && r["account"] == "operator"
                && r["purpose"] == "procurement award"),
        "{sent}"
    );
    for handle in ["market", "court"] {
        let peer = c.peer(handle);
        wait_for(
            &format!("{handle} registered the query it answered"),
            || {
                peer.get("/v1/register")["records"]
                    .as_array()
                    .is_some_and(|records| {
                        records.iter().any(|r| {
                            r["kind"] == "query-answered"
                                && r["request_id"] == request_hex.as_str()
                                && r["legal_basis"] == "Government Procurement Law art. 22"
                        })
                    })
            },
        );
    }
}

#[test]
fn bad_http_input_gets_a_400_naming_the_field_and_no_token_a_401() {
    let mut c = cluster(&["market", "tax"]);
    c.peer("market").start();
    let market = c.at("market");
    wait_for("the node to be ready", || {
        market.get("/v1/status")["ready"] == true
    });
    let token = market.token();
    let (status, answer) = market.request("GET", "/v1/status", None, None);
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "unauthorised");
    let (status, _) = market.request("GET", "/v1/status", Some("wrong-token-wrong-token"), None);
    assert_eq!(status, 401);
    let (status, answer) = market.request(
        "POST",
        "/v1/notices",
        Some(&token),
        Some("{\"list\": {\"subject\": 5}}"),
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("list.subject"),
        "{answer}"
    );
    let (status, answer) = market.request("POST", "/v1/notices", Some(&token), Some("not json"));
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = market.request("GET", "/v1/listings/xyz", Some(&token), None);
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("id:"),
        "{answer}"
    );
    let (status, answer) = market.request(
        "GET",
        "/v1/subjects/91350100M000100Y43?kind=robot",
        Some(&token),
        None,
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("kind:"),
        "{answer}"
    );
    let (status, answer) = market.request(
        "POST",
        "/v1/query",
        Some(&token),
        Some("{\"subject_id\": \"91350100M000100Y43\", \"purpose\": \"x\", \"legal_basis\": \"y\", \"scope\": \"everywhere\"}"),
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("scope:"),
        "{answer}"
    );
    // A rule broken: 422 with the rule's code; nothing stored.
    let mut bad = listing(3);
    if let NoticeKind::List(l) = &mut bad {
        l.category = "astrology".into();
    }
    let (status, answer) = market.post("/v1/notices", &serde_json::to_value(&bad).unwrap());
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("astrology"),
        "{answer}"
    );
    assert_eq!(market.notices(), 0);
    // The public feed needs no token.
    let (status, _) = market.request("GET", "/v1/feed", None, None);
    assert_eq!(status, 200);
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn operator_commands_go_through_the_running_node() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let market = c.at("market");
    wait_for("the node to be ready", || {
        market.get("/v1/status")["ready"] == true
    });
    let dir = market.dir.clone();
    let run = credence_tests::credence_owned(&credence_tests::listing_args(&dir)).ok();
    assert!(
        run.stdout.contains("published by the running node"),
        "{}",
        run.stdout
    );
    let id = run.issued_id();
    let tax = c.at("tax");
    wait_for("the listing on the tax service", || tax.has_listing(&id));
    let status = credence_tests::credence(&["status", "--data", credence_tests::arg(&dir)]).ok();
    assert!(status.stdout.contains("peers (1)"), "{}", status.stdout);
    let shown = credence_tests::credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        credence_tests::arg(&dir),
        "--listing",
        &id,
    ])
    .ok();
    assert!(
        shown.stdout.contains("status active (enforceable: yes"),
        "{}",
        shown.stdout
    );
    let shown_json = credence_tests::credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        credence_tests::arg(&dir),
        "--listing",
        &id,
        "--json",
    ])
    .ok();
    let view: serde_json::Value = serde_json::from_str(&shown_json.stdout).expect("JSON");
    assert_eq!(view["status"], "active", "{}", shown_json.stdout);
    let query = credence_tests::credence(&[
        "query",
        "--data",
        credence_tests::arg(&dir),
        "--subject",
        "91350100M000100Y43",
        "--purpose",
        "licence renewal",
        "--legal-basis",
        "Administrative Licensing Law art. 31",
    ])
    .ok();
    assert!(
        query.stdout.contains("answered (signed)"),
        "{}",
        query.stdout
    );
    assert!(query.stdout.contains(&id), "{}", query.stdout);
    // One path whether or not the node runs: the same answer, the same text.
    c.peer("market").stop();
    let offline = credence_tests::credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        credence_tests::arg(&dir),
        "--listing",
        &id,
    ])
    .ok();
    assert_eq!(offline.stdout, shown.stdout);
}

// The harness itself: a node whose HTTP port was taken after the cluster
// chose it exits saying so, and is started again on another port.
#[test]
fn a_taken_http_port_is_chosen_again() {
    let mut c = cluster(&["market"]);
    let taken = c.at("market").http_port;
    let _holder = std::net::TcpListener::bind(("127.0.0.1", taken)).expect("the port is free");
    c.peer("market").start();
    assert_ne!(c.at("market").http_port, taken);
    assert!(c.at("market").log().contains("Address already in use"));
    assert!(c.at("market").get("/v1/status")["ready"].is_boolean());
    c.peer("market").stop();
}

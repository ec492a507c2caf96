//! An honest authority never signs one seq twice, whatever happens to its
//! disk: real `credence run` processes on 127.0.0.1.
//!
//! - its store deleted while every peer is down: it refuses to issue for
//!   as long as they stay down (status and HTTP code say why), restores
//!   its log when they return and continues at the right seq;
//! - the same with a peer that is behind answering first;
//! - a copy of its key signing elsewhere: it stops issuing and says so.

use credence_tests::cluster::{Cluster, Peer, cluster, listing, wait_for};
use credence_tests::{arg, credence, credence_owned, listing_args};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The status entry of `peer`'s own log.
fn own_seq(peer: &Peer) -> u64 {
    let status = peer.get("/v1/status");
    let me = status["authority"].as_str().expect("authority").to_string();
    status["authors"]
        .as_array()
        .expect("authors")
        .iter()
        .find(|a| a["author"] == me.as_str())
        .and_then(|a| a["seq"].as_u64())
        .expect("own log")
}

/// Tries to issue once; returns the status and the answer.
fn try_issue(peer: &Peer, n: u64) -> (u16, Value) {
    let body = serde_json::to_value(listing(n)).expect("notice JSON");
    peer.post("/v1/notices", &body)
}

/// For a few sync rounds (the sync interval is 1 s), every attempt to issue
/// is refused with `code`, and the status says why.
fn refuses_for_a_while(peer: &Peer, code: &str, state: &str) {
    let started = Instant::now();
    let mut attempts = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let (status, answer) = try_issue(peer, 900 + attempts);
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let status = peer.get("/v1/status");
        assert_eq!(status["ready"], false);
        assert_eq!(status["issuing"], state);
        attempts += 1;
        // Trying again a little later, as an operator would.
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        peer.get_text("/metrics")
            .contains(&format!("credence_issuing_state{{state=\"{state}\"}} 1")),
        "the metric shows the state"
    );
    assert!(peer.metric("credence_issue_refused_total") >= attempts);
}

fn no_forks(c: &Cluster) {
    for peer in &c.peers {
        assert_eq!(
            peer.get("/v1/status")["forks"],
            0,
            "{} recorded a fork",
            peer.handle
        );
    }
}

#[test]
fn a_store_lost_while_every_peer_is_down_is_restored_before_the_node_signs_again() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    for n in 0..4 {
        c.at("market").issue(&listing(60 + n));
    }
    c.wait_converged(&["market", "tax", "court"]);
    c.peer("tax").stop();
    c.peer("court").stop();
    c.peer("market").stop();
    std::fs::remove_dir_all(c.at("market").dir.join("store")).expect("delete the store");
    c.peer("market").start();
    // The mark says it signed up to seq 4; the store holds nothing and no
    // peer is there to give its log back.
    refuses_for_a_while(c.at("market"), "restoring", "restoring");
    let detail = c.at("market").get("/v1/status")["issuing_detail"]
        .as_str()
        .expect("detail")
        .to_string();
    assert!(
        detail.contains("restores the rest from its peers"),
        "{detail}"
    );
    c.peer("tax").start();
    c.peer("court").start();
    let market = c.at("market");
    wait_for("the market bureau to restore its log", || {
        market.get("/v1/status")["ready"] == true
    });
    assert_eq!(own_seq(market), 4);
    let (status, answer) = try_issue(market, 70);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["seq"], 5);
    c.wait_converged(&["market", "tax", "court"]);
    no_forks(&c);
}

#[test]
fn a_lagging_peer_answering_first_does_not_let_the_node_sign_again() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    c.at("market").issue(&listing(80));
    c.wait_converged(&["market", "tax", "court"]);
    // The court falls behind while the market bureau signs two more.
    c.peer("court").stop();
    c.at("market").issue(&listing(81));
    c.at("market").issue(&listing(82));
    c.wait_converged(&["market", "tax"]);
    c.peer("tax").stop();
    c.peer("market").stop();
    std::fs::remove_dir_all(c.at("market").dir.join("store")).expect("delete the store");
    // Only the lagging court is there, and answers first.
    c.peer("court").start();
    c.peer("market").start();
    let market = c.at("market");
    wait_for("the court to give back what it has", || {
        own_seq(market) >= 1
    });
    refuses_for_a_while(market, "restoring", "restoring");
    c.peer("tax").start();
    let market = c.at("market");
    wait_for("the market bureau to restore its log", || {
        market.get("/v1/status")["ready"] == true
    });
    let (status, answer) = try_issue(market, 83);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["seq"], 4);
    c.wait_converged(&["market", "tax", "court"]);
    no_forks(&c);
}

#[test]
fn a_copy_of_the_key_signing_elsewhere_stops_the_node_issuing() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    c.at("market").issue(&listing(90));
    c.wait_converged(&["market", "tax"]);
    // A copy of the market bureau's data directory, key and all, on
    // another machine.
    c.peer("market").stop();
    let copy = c.root.path().join("market-copy");
    let status = std::process::Command::new("cp")
        .args(["-r", arg(&c.at("market").dir), arg(&copy)])
        .status()
        .expect("cp");
    assert!(status.success());
    std::fs::remove_file(copy.join("api.addr")).ok();
    c.peer("market").start();
    // Both sign seq 2.
    c.at("market").issue(&listing(91));
    c.wait_converged(&["market", "tax"]);
    credence_owned(&listing_args(&copy)).ok();
    let bundle = c.root.path().join("copy.bundle");
    credence_tests::export(&copy, &bundle);
    // The copy's notice reaches the tax service.
    c.peer("tax").stop();
    credence(&["import", "--data", arg(&c.at("tax").dir), arg(&bundle)]).ok();
    c.peer("tax").start();
    let market = c.at("market");
    wait_for("the market bureau to find its own log forked", || {
        market.get("/v1/status")["issuing"] == "forked"
    });
    let (status, answer) = try_issue(market, 92);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "own_log_forked");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("rotate the key"), "{message}");
    assert_eq!(market.metric("credence_own_log_forked"), 1);
    assert!(
        market.log().contains("own log of this authority is forked"),
        "the error log says so:\n{}",
        market.log()
    );
}

#[test]
fn a_new_machine_waits_for_a_majority_or_for_the_head_an_operator_names() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.start_all();
    c.at("market").issue(&listing(100));
    c.at("market").issue(&listing(101));
    c.wait_converged(&["market", "tax", "court"]);
    // A new machine: store and mark gone. One of the two others is up:
    // not a majority.
    let lose_everything = |c: &mut Cluster| {
        c.peer("market").stop();
        let dir = c.at("market").dir.clone();
        std::fs::remove_dir_all(dir.join("store")).expect("delete the store");
        std::fs::remove_file(dir.join("own-log.mark")).expect("delete the mark");
    };
    lose_everything(&mut c);
    c.peer("court").stop();
    c.peer("market").start();
    refuses_for_a_while(c.at("market"), "recovering", "recovering");
    c.peer("court").start();
    let market = c.at("market");
    wait_for("a majority to show the market bureau its log", || {
        market.get("/v1/status")["ready"] == true
    });
    let (status, answer) = try_issue(market, 102);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["seq"], 3);
    let third = answer["id"].as_str().expect("id").to_string();
    c.wait_converged(&["market", "tax", "court"]);
    // Again, and this time the operator names the head.
    lose_everything(&mut c);
    let dir = c.at("market").dir.clone();
    let refused = credence(&["recover", "--data", arg(&dir), "--seq", "3"]).code(2);
    assert!(
        refused.stderr.contains("--id is required"),
        "{}",
        refused.stderr
    );
    let named = credence(&["recover", "--data", arg(&dir), "--seq", "3", "--id", &third]).ok();
    assert!(
        named.stdout.contains("continues at seq 4"),
        "{}",
        named.stdout
    );
    // One peer is enough now: the node restores up to the named head.
    c.peer("court").stop();
    c.peer("market").start();
    let market = c.at("market");
    wait_for("the market bureau to restore up to the named head", || {
        market.get("/v1/status")["ready"] == true
    });
    let (status, answer) = try_issue(market, 103);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["seq"], 4);
    c.peer("court").start();
    c.wait_converged(&["market", "tax", "court"]);
    no_forks(&c);
}

// Fail-stop: when the own-log mark cannot be made durable, nothing is
// acknowledged, the caller is told the node stopped issuing, and the
// process exits with the error for its service manager to restart it.
#[test]
fn a_mark_that_cannot_be_written_stops_the_node() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    c.at("market").issue(&listing(110));
    c.wait_converged(&["market", "tax"]);
    // The next mark can be written neither in place nor whole: a
    // directory stands where the file was (permissions would not stop
    // root).
    let mark = c.at("market").dir.join("own-log.mark");
    std::fs::remove_file(&mark).expect("the mark removed");
    std::fs::create_dir(&mark).expect("block the mark");
    let (status, answer) = try_issue(c.at("market"), 111);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "halted", "{answer}");
    let code = c.peer("market").wait_exit();
    assert_ne!(code, Some(0));
    let log = c.at("market").log();
    assert!(log.contains("could not be made durable"), "{log}");
    // The notice signed but never made durable was never published (the
    // node took no other event after the failure): the tax service holds
    // only the first one.
    assert_eq!(c.at("tax").notices(), 1);
}

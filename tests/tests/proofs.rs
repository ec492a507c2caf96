//! Proofs over HTTP for auditors and department systems, on real
//! `credence run` processes: a member's signed checkpoint of its own log,
//! inclusion and consistency proofs that verify against the roots of its
//! checkpoints, and ranges of entries whose leaf hashes are the notice ids.

use credence_crypto::{Digest, merkle};
use credence_protocol::checkpoint;
use credence_protocol::roster::Federation;
use credence_tests::cluster::{Peer, cluster, listing};

fn digest(hex_text: &serde_json::Value) -> Digest {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text.as_str().expect("hex"), &mut bytes).expect("32 bytes of hex");
    Digest(bytes)
}

fn path(answer: &serde_json::Value) -> Vec<Digest> {
    answer["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(digest)
        .collect()
}

fn checkpoint_of(peer: &Peer, author: &str, federation: &Federation) -> checkpoint::Verified {
    let text = peer.get_text(&format!("/v1/logs/{author}/checkpoint"));
    checkpoint::verify(text.as_bytes(), federation)
        .expect("a checkpoint signed by its log's author")
}

#[test]
fn checkpoints_and_proofs_verify() {
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    let federation = Federation::from_toml(&std::fs::read_to_string(&c.roster).expect("roster"))
        .expect("roster");
    let market = c.at("market");
    let me = market.get("/v1/status")["authority"]
        .as_str()
        .expect("authority")
        .to_string();
    let (status, answer) = market.request(
        "GET",
        &format!("/v1/logs/{me}/checkpoint"),
        Some(&market.token()),
        None,
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (404, &"not_held".into())
    );
    let ids: Vec<String> = (0..5).map(|n| market.issue(&listing(n))).collect();

    let first = checkpoint_of(market, &me, &federation);
    assert_eq!(first.author.to_string(), me);
    assert_eq!(first.checkpoint.size, 5);
    // Inclusion of the third notice in the checkpointed log.
    let proof = market.get(&format!("/v1/logs/{me}/inclusion?seq=3&size=5"));
    assert_eq!(proof["id"], ids[2].as_str());
    assert!(merkle::verify_inclusion(
        &digest(&proof["id"]),
        2,
        5,
        &path(&proof),
        &first.checkpoint.root
    ));
    // The log grows; the new checkpoint is consistent with the first.
    for n in 5..7 {
        market.issue(&listing(n));
    }
    let second = checkpoint_of(market, &me, &federation);
    assert_eq!(second.checkpoint.size, 7);
    let consistency = market.get(&format!("/v1/logs/{me}/consistency?from=5&to=7"));
    assert!(merkle::verify_consistency(
        5,
        7,
        &first.checkpoint.root,
        &second.checkpoint.root,
        &path(&consistency)
    ));
    // Entries: the envelopes, whose leaf hashes are the notice ids.
    let entries = market.get(&format!("/v1/logs/{me}/entries?from=1&count=3"));
    let envelopes = entries["envelopes"].as_array().expect("envelopes");
    assert_eq!(envelopes.len(), 3);
    for (envelope, id) in envelopes.iter().zip(&ids) {
        let bytes = hex::decode(envelope.as_str().expect("hex")).expect("hex");
        assert_eq!(hex::encode(merkle::leaf_hash(&bytes).0), *id);
    }
    // Another member proves the same from its copy of the log.
    c.wait_converged(&["market", "tax"]);
    let tax = c.at("tax");
    let elsewhere = tax.get(&format!("/v1/logs/{me}/inclusion?seq=3&size=5"));
    assert_eq!(elsewhere["path"], proof["path"]);
    // Tax witnesses market's log: it cosigns market's checkpoint of all
    // seven notices (signed within the checkpoint interval), the
    // cosignature travels back, and both serve the witnessed checkpoint
    // and show it in their status.
    let tax_me = tax.get("/v1/status")["authority"]
        .as_str()
        .expect("authority")
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let there = checkpoint_of(tax, &me, &federation);
        let here = checkpoint_of(market, &me, &federation);
        let cosigned = |v: &checkpoint::Verified| {
            v.checkpoint.size == 7
                && v.witnessed(&federation)
                && v.cosigners.iter().any(|(w, _)| w.to_string() == tax_me)
        };
        if cosigned(&there) && cosigned(&here) {
            assert_eq!(there.checkpoint.root, second.checkpoint.root);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "market's log was not witnessed by tax: {there:?} / {here:?}"
        );
        // Polling real processes until witnessing has happened (it waits
        // for the checkpoint interval); no timing is asserted.
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let status = tax.get("/v1/status");
    let log = status["checkpoints"]
        .as_array()
        .expect("checkpoints")
        .iter()
        .find(|l| l["author"] == me.as_str())
        .expect("market's log in tax's status")
        .clone();
    assert_eq!(log["witnessed_size"], 7, "{log}");
    assert_eq!(log["split_view"], false);
    let metrics = tax.get_text("/metrics");
    assert!(
        metrics.contains(&format!(
            "credence_checkpoint_witnessed_size{{author=\"{me}\"}} 7"
        )),
        "{metrics}"
    );
    // What cannot be answered says why.
    let token = market.token();
    let tax_author = tax.get("/v1/status")["authority"]
        .as_str()
        .expect("authority")
        .to_string();
    for (path, status, code) in [
        (
            format!("/v1/logs/{tax_author}/checkpoint"),
            404,
            "no_checkpoint",
        ),
        (
            format!("/v1/logs/{me}/inclusion?seq=3&size=99"),
            404,
            "not_held",
        ),
        (format!("/v1/logs/{me}/inclusion?seq=0"), 400, "bad_field"),
        (
            format!("/v1/logs/{me}/consistency?from=0&to=0"),
            400,
            "bad_field",
        ),
        (format!("/v1/logs/{me}/entries?from=0"), 400, "bad_field"),
        (
            format!("/v1/logs/{me}/inclusion?seq=three"),
            400,
            "bad_field",
        ),
        (format!("/v1/logs/{me}/inclusion"), 400, "bad_field"),
        (
            format!("/v1/logs/{me}/consistency?from=7&to=5"),
            400,
            "bad_request",
        ),
        (
            format!("/v1/logs/{me}/entries?from=1&count=100000"),
            400,
            "bad_request",
        ),
        ("/v1/logs/nothex/checkpoint".to_string(), 400, "bad_field"),
    ] {
        let (got, answer) = market.request("GET", &path, Some(&token), None);
        assert_eq!(got, status, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{path}: {answer}");
    }
    c.peer("market").stop();
    c.peer("tax").stop();
}

// A federation-wide query saved as a receipt verifies offline with only
// the roster (exit 0); a changed byte makes it invalid (1) and a file that
// is no receipt is unreadable (2).
#[test]
fn a_query_receipt_verifies_offline_with_only_the_roster() {
    use credence_tests::{arg, credence};
    let mut c = cluster(&["market", "tax"]);
    c.start_all();
    c.at("market").issue(&listing(42));
    c.wait_converged(&["market", "tax"]);
    let receipt = c.root.path().join("query.receipt");
    let subject = credence_protocol::testkit::uscc(42);
    let asked = credence(&[
        "query",
        "--data",
        arg(&c.at("tax").dir),
        "--subject",
        &subject,
        "--purpose",
        "contract award",
        "--legal-basis",
        "Government Procurement Law art. 22",
        "--receipt",
        arg(&receipt),
    ])
    .ok();
    assert!(asked.stderr.contains("receipt written"), "{}", asked.stderr);
    let valid = credence(&[
        "receipt",
        "verify",
        arg(&receipt),
        "--roster",
        arg(&c.roster),
    ])
    .code(0);
    assert!(valid.stdout.contains("RECEIPT VALID"), "{}", valid.stdout);
    assert!(valid.stdout.contains("answers: 2"), "{}", valid.stdout);
    assert!(
        valid.stdout.contains("1 listings, 1 enforceable"),
        "{}",
        valid.stdout
    );
    // One bit of the last answer's signature changed (the receipt read,
    // changed and written again: what follows the answers, the checkpoint
    // notes, may be empty or not, depending on what was cosigned yet).
    let bytes = std::fs::read(&receipt).expect("receipt");
    let mut read = credence_protocol::receipt::Receipt::from_bytes(&bytes).expect("a receipt");
    read.answers.last_mut().expect("answers").signature.0[63] ^= 0x01;
    let changed = c.root.path().join("changed.receipt");
    std::fs::write(&changed, read.to_bytes().expect("encoded")).expect("write");
    let invalid = credence(&[
        "receipt",
        "verify",
        arg(&changed),
        "--roster",
        arg(&c.roster),
    ])
    .code(1);
    assert!(
        invalid.stdout.contains("RECEIPT INVALID"),
        "{}",
        invalid.stdout
    );
    let garbage = c.root.path().join("garbage.receipt");
    std::fs::write(&garbage, b"not a receipt").expect("write");
    let unreadable = credence(&[
        "receipt",
        "verify",
        arg(&garbage),
        "--roster",
        arg(&c.roster),
    ])
    .code(2);
    assert!(
        unreadable.stderr.contains("unreadable receipt"),
        "{}",
        unreadable.stderr
    );
    c.peer("market").stop();
    c.peer("tax").stop();
}

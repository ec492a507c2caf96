//! Webhooks with a bad receiver: a delivery is retried (the same delivery
//! id, signed with the webhook's secret) until the receiver takes it;
//! one that fails every attempt becomes a dead letter, the feed goes on,
//! and a redelivery sends it again. A receiver that never answers holds
//! up no other webhook.

use credence_tests::cluster::{cluster, listing, wait_for};
use credence_tests::{add_account, arg, credence};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    delivery: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A receiver on 127.0.0.1: it fails the next `fail_next` requests, or
/// all while `fail_all`, with 500, and takes the others with 204.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicU32>,
    fail_all: Arc<AtomicBool>,
}

fn receiver() -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let fail_next = Arc::new(AtomicU32::new(0));
    let fail_all = Arc::new(AtomicBool::new(false));
    let (g, n, a) = (got.clone(), fail_next.clone(), fail_all.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let (mut delivery, mut signature, mut length) = (String::new(), String::new(), 0);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                let value = line.split_once(':').map(|(_, v)| v.trim().to_string());
                if lower.starts_with("credence-delivery:") {
                    delivery = value.unwrap_or_default();
                } else if lower.starts_with("credence-signature:") {
                    signature = value.unwrap_or_default();
                } else if lower.starts_with("content-length:") {
                    length = value.and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let fail = a.load(Ordering::SeqCst)
                || n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                    .is_ok();
            let answered = if fail { 500 } else { 204 };
            g.lock().expect("lock").push(Received {
                delivery,
                signature,
                body: String::from_utf8_lossy(&body).into_owned(),
                answered,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver {
        port,
        got,
        fail_next,
        fail_all,
    }
}

impl Receiver {
    fn taken(&self) -> Vec<Received> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.answered == 204)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

/// A receiver on 127.0.0.1 that reads each request and never answers:
/// how many requests came, and whether the sender gave up on one (closed
/// its connection).
struct Silent {
    port: u16,
    requests: Arc<AtomicU32>,
    given_up: Arc<AtomicBool>,
}

fn silent() -> Silent {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let requests = Arc::new(AtomicU32::new(0));
    let given_up = Arc::new(AtomicBool::new(false));
    let (r, g) = (requests.clone(), given_up.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            r.fetch_add(1, Ordering::SeqCst);
            let g = g.clone();
            std::thread::spawn(move || {
                // Reads the request, then whatever else comes, until the
                // sender closes the connection.
                let mut buffer = [0u8; 4096];
                while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
                g.store(true, Ordering::SeqCst);
            });
        }
    });
    Silent {
        port,
        requests,
        given_up,
    }
}

/// The seqs of the changes a delivery's body holds.
fn seqs(body: &str) -> Vec<u64> {
    let page: serde_json::Value = serde_json::from_str(body).expect("a JSON page");
    page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn a_bad_receiver_gets_retries_then_a_dead_letter_then_a_redelivery() {
    let mut c = cluster(&["market"]);
    let dir = c.at("market").dir.clone();
    add_account(&dir, "desk", "reader");
    let hook = receiver();
    // Two failures, then it takes them.
    hook.fail_next.store(2, Ordering::SeqCst);
    let added = credence(&[
        "webhook",
        "add",
        "--data",
        arg(&dir),
        "--name",
        "desk-hook",
        "--account",
        "desk",
        "--url",
        &format!("http://127.0.0.1:{}/credence", hook.port),
        "--attempts",
        "3",
        "--retry-first",
        "50ms",
        "--json",
    ])
    .ok();
    let secret = serde_json::from_str::<serde_json::Value>(&added.stdout).expect("JSON")["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    c.start_all();
    let market = c.at("market");
    wait_for("the node ready", || {
        market.get("/v1/status")["ready"] == true
    });
    market.issue(&listing(1));
    wait_for("the first delivery taken", || !hook.taken().is_empty());
    let all = hook.all();
    assert_eq!(all.len(), 3, "two refused, then taken: {all:?}");
    assert!(all.iter().all(|r| r.delivery == all[0].delivery), "{all:?}");
    assert_eq!(all[0].delivery, "desk-hook-1-1");
    for r in &all {
        let t: u64 = r
            .signature
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|t| t.parse().ok())
            .expect("t=");
        assert_eq!(
            r.signature,
            credence_node::webhooks::signature(&secret, t, r.body.as_bytes())
        );
    }
    assert_eq!(seqs(&all[2].body), [1]);

    // Now it refuses everything: after three attempts the delivery is a
    // dead letter, and the webhook goes on.
    hook.fail_all.store(true, Ordering::SeqCst);
    market.issue(&listing(2));
    let dead = || {
        let run = credence(&[
            "webhook",
            "dead",
            "--data",
            arg(&dir),
            "--name",
            "desk-hook",
            "--json",
        ])
        .ok();
        serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).expect("JSON")
    };
    wait_for("a dead letter", || !dead().is_empty());
    let letters = dead();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["id"], "2-2");
    assert_eq!(letters[0]["attempts"], 3);
    assert!(
        letters[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("500"),
        "{letters:?}"
    );
    // It takes deliveries again: the next change goes, then the dead
    // letter when asked for.
    hook.fail_all.store(false, Ordering::SeqCst);
    market.issue(&listing(3));
    wait_for("change 3 taken", || {
        hook.taken().iter().any(|r| seqs(&r.body) == [3])
    });
    assert!(!hook.taken().iter().any(|r| seqs(&r.body) == [2]));
    credence(&[
        "webhook",
        "redeliver",
        "--data",
        arg(&dir),
        "--name",
        "desk-hook",
        "--id",
        "2-2",
    ])
    .ok();
    wait_for("the dead letter delivered", || {
        hook.taken().iter().any(|r| r.delivery == "desk-hook-2-2")
    });
    assert!(dead().is_empty());
}

#[test]
fn a_receiver_that_does_not_answer_holds_up_no_other_webhook() {
    let mut c = cluster(&["market"]);
    let dir = c.at("market").dir.clone();
    add_account(&dir, "desk", "reader");
    let quiet = silent();
    let hook = receiver();
    // The silent one first: delivered one after another, the second
    // would wait for the first's attempt to time out.
    for (name, port) in [("a-silent", quiet.port), ("b-desk", hook.port)] {
        credence(&[
            "webhook",
            "add",
            "--data",
            arg(&dir),
            "--name",
            name,
            "--account",
            "desk",
            "--url",
            &format!("http://127.0.0.1:{port}/credence"),
        ])
        .ok();
    }
    c.start_all();
    let market = c.at("market");
    wait_for("the node ready", || {
        market.get("/v1/status")["ready"] == true
    });
    market.issue(&listing(1));
    wait_for("the silent receiver asked", || {
        quiet.requests.load(Ordering::SeqCst) >= 1
    });
    wait_for("the other webhook's delivery taken", || {
        !hook.taken().is_empty()
    });
    // Taken while the silent receiver's first attempt still waited for
    // its answer (the node gives an attempt 10 s): not behind it.
    assert!(
        !quiet.given_up.load(Ordering::SeqCst),
        "the other webhook was delivered to only after the silent one gave up"
    );
    assert_eq!(quiet.requests.load(Ordering::SeqCst), 1);
    assert_eq!(seqs(&hook.taken()[0].body), [1]);
}

//! The change feed: a long poll and a server-sent-events stream of each
//! listing's state changes, resumed from a cursor across a restart of the
//! node with nothing missed or repeated, and the changes time alone makes
//! (here the end of a publication) appearing without anyone reading.

use credence_protocol::model::NoticeKind;
use credence_protocol::time::{DAY_MS, Timestamp};
use credence_tests::cluster::{cluster, listing, now_ms, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};

/// Waits for changes after `after` (long polls of 5 s) until `count` came.
fn changes_after(peer: &credence_tests::cluster::Peer, after: u64, count: usize) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::new();
    let mut cursor = after;
    let started = std::time::Instant::now();
    while got.len() < count {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "only {} of {count} changes came: {got:?}",
            got.len()
        );
        let page = peer.get(&format!("/v1/changes?after={cursor}&wait=5"));
        let next = page["next"].as_u64().expect("next");
        assert!(next >= cursor, "{page}");
        cursor = next;
        got.extend(page["changes"].as_array().expect("changes").iter().cloned());
    }
    got
}

#[test]
fn the_feed_resumes_from_its_cursor_across_a_restart_and_time_changes_come_unasked() {
    let mut c = cluster(&["market"]);
    c.start_all();
    let market = c.peer("market");
    wait_for("the node ready", || {
        market.get("/v1/status")["ready"] == true
    });
    let first: Vec<String> = (1..=3).map(|n| market.issue(&listing(n))).collect();
    let seen = changes_after(market, 0, 3);
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (n, change) in seen.iter().enumerate() {
        assert_eq!(change["seq"], n as u64 + 1, "{change}");
        assert_eq!(change["cause"], "notice");
        assert!(change.get("before").is_none(), "new here: {change}");
        assert_eq!(change["after"]["status"], "active");
        assert!(first.contains(&change["listing"].as_str().expect("id").to_string()));
    }
    let cursor = 3;
    // Nothing more: a short poll answers at once with the same cursor.
    let page = market.get(&format!("/v1/changes?after={cursor}"));
    assert_eq!(page["changes"], Value::Array(Vec::new()));
    assert_eq!(page["next"], cursor);

    // Restarted, the node goes on from its stored feed: the old listings
    // are not announced again, the new ones are, after the cursor.
    market.stop();
    market.start();
    wait_for("the node ready again", || {
        market.get("/v1/status")["ready"] == true
    });
    let withdrawn = market.issue(&NoticeKind::Withdraw {
        listing: first[0].parse().expect("id"),
        reason: "issued in error".into(),
        restore_reputation: true,
    });
    let fourth = market.issue(&listing(4));
    let seen = changes_after(market, cursor, 2);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["seq"], 4);
    assert_eq!(
        seen[0]["listing"],
        first[0].as_str(),
        "{seen:?} ({withdrawn})"
    );
    assert_eq!(seen[0]["before"]["status"], "active");
    assert_eq!(seen[0]["after"]["status"], "withdrawn");
    assert_eq!(seen[1]["seq"], 5);
    assert_eq!(seen[1]["listing"], fourth.as_str());

    // A listing whose publication ends in three seconds: the change comes
    // by itself, without a read of the listing.
    let ends = now_ms() + 3_000;
    let mut soon = listing(5);
    if let NoticeKind::List(l) = &mut soon {
        l.publish_until = Timestamp(ends);
        l.share_until = Timestamp(ends + 30 * DAY_MS);
    }
    let soon = market.issue(&soon);
    let seen = changes_after(market, 5, 2);
    assert_eq!(seen[0]["listing"], soon.as_str());
    assert_eq!(seen[0]["after"]["published"], true);
    assert_eq!(seen[1]["listing"], soon.as_str());
    assert_eq!(seen[1]["cause"], "time", "{seen:?}");
    assert_eq!(seen[1]["before"]["published"], true);
    assert_eq!(seen[1]["after"]["published"], false);
    assert_eq!(seen[1]["after"]["shared"], true);
    assert!(seen[1]["at"].as_u64().expect("at") >= ends);

    // The stream: from a Last-Event-ID on, the same changes as events.
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", market.http_port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "GET /v1/changes/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nLast-Event-ID: 4\r\n\r\n",
        market.token()
    )
    .expect("request");
    let mut ids = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line = line.expect("a line of the stream");
        if let Some(id) = line.strip_prefix("id: ") {
            ids.push(id.to_string());
            if ids.len() == 3 {
                break;
            }
        }
    }
    assert_eq!(ids, ["5", "6", "7"]);
}

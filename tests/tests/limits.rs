//! Connection limits: a flood of half-open connections to a node's libp2p
//! port is refused past the bound and counted, and members still connect
//! and exchange notices.

use credence_tests::cluster::{cluster, listing, wait_for};
use std::net::TcpStream;

#[test]
fn half_open_connections_past_the_bound_are_refused_and_members_still_get_through() {
    let mut c = cluster(&["market", "tax"]);
    c.peer("market").start();
    let port = c.at("market").p2p_port;
    // Connections that never finish their handshake stay pending.
    let held: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(held.len() >= 90, "only {} connections opened", held.len());
    let market = c.at("market");
    wait_for("connections past the pending bound to be refused", || {
        market.metric("credence_connections_over_limit_total") >= 20
    });
    c.peer("tax").start();
    let id = c.at("market").issue(&listing(120));
    let tax = c.at("tax");
    wait_for("the listing to reach the tax service", || {
        tax.has_listing(&id)
    });
    drop(held);
}

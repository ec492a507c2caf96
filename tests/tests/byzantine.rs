//! A member that misbehaves on the wire: a libp2p swarm in this test,
//! holding a real member's key, connects to two real `credence run`
//! processes and sends them a forged notice, an unauthorised repair,
//! garbage gossip and a garbage sync request. Everything is rejected on
//! every node and counted, and the nodes go on working.

use credence_node::net;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use credence_tests::cluster::{cluster, listing, now_ms, wait_for};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, gossipsub};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn forged_unauthorised_and_malformed_messages_from_a_member_are_rejected_everywhere() {
    let mut c = cluster(&["market", "tax", "court"]);
    c.peer("market").start();
    c.peer("court").start();
    let listing_id = c.at("market").issue(&listing(5));
    c.wait_converged(&["market", "court"]);

    let federation = Federation::from_toml(&std::fs::read_to_string(&c.roster).expect("roster"))
        .expect("roster");
    let key =
        credence_node::keyfile::read(&c.at("tax").dir.join("authority.key")).expect("tax key");
    let tax = credence_protocol::model::AuthorityId(key.public_bytes());
    let notice = |kind: NoticeKind| Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: federation.id(),
        author: tax,
        seq: 1,
        prev: NoticeId::default(),
        issued_at: Timestamp(now_ms()),
        kind,
    };
    // A repair of the market bureau's listing, validly signed by the tax
    // service: only the issuer may repair.
    let (_, repair) = credence_protocol::testkit::sign(
        &key,
        &notice(NoticeKind::Repair {
            listing: listing_id.parse().expect("id"),
            reason: "paid off".into(),
            evidence: Vec::new(),
        }),
    );
    // A tax listing with one bit of its signature flipped.
    let mut tax_listing = match listing(6) {
        NoticeKind::List(l) => l,
        _ => unreachable!(),
    };
    tax_listing.category = "tax".into();
    let (_, mut forged) =
        credence_protocol::testkit::sign(&key, &notice(NoticeKind::List(tax_listing)));
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let garbage = vec![0xA5u8; 300];

    let addresses: Vec<Multiaddr> = ["market", "court"]
        .iter()
        .map(|h| {
            format!("/ip4/127.0.0.1/tcp/{}", c.at(h).p2p_port)
                .parse()
                .expect("address")
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_rogue = stop.clone();
    let rogue = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let mut swarm = net::swarm(&key, &federation, &net::members(&federation), false)
                .expect("swarm");
            swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("address")).expect("listen");
            for address in addresses {
                swarm.dial(address).expect("dial");
            }
            let topic = net::topic(&federation);
            let mut subscribed = BTreeSet::new();
            let mut sent = false;
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
            while !stop_rogue.load(Ordering::Relaxed) {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(net::BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) = event {
                            subscribed.insert(peer_id);
                        }
                    }
                    _ = tick.tick() => {
                        if !sent && subscribed.len() == 2 {
                            sent = true;
                            for message in [&repair, &forged, &garbage] {
                                swarm.behaviour_mut().gossipsub.publish(topic.clone(), message.clone()).expect("publish");
                            }
                            for peer in subscribed.clone() {
                                swarm.behaviour_mut().sync.send_request(&peer, vec![0xFF; 64]);
                            }
                        }
                    }
                }
            }
        });
    });

    for handle in ["market", "court"] {
        let peer = c.at(handle);
        wait_for(
            &format!("{handle} to reject the repair, the forgery and the garbage"),
            || peer.metric("credence_notices_rejected_total") >= 3,
        );
        wait_for(
            &format!("{handle} to count the garbage sync request"),
            || peer.metric("credence_peer_messages_malformed_total") >= 1,
        );
        let metrics = peer.get_text("/metrics");
        for reason in ["not_issuer", "signature", "codec"] {
            assert!(
                metrics.contains(&format!("via=\"gossip\",reason=\"{reason}\"")),
                "{handle} did not count {reason}:\n{metrics}"
            );
        }
        assert_eq!(
            peer.notices(),
            1,
            "{handle} stored something it should not have"
        );
        assert_eq!(
            peer.get(&format!("/v1/listings/{listing_id}"))["status"],
            "active"
        );
    }
    stop.store(true, Ordering::Relaxed);
    rogue.join().expect("rogue thread");

    // The honest nodes go on working.
    let next = c.at("market").issue(&listing(7));
    let court = c.at("court");
    wait_for("a new listing to reach the court", || {
        court.has_listing(&next)
    });
}

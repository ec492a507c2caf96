//! Propagation on loopback: 5 nodes in one process, each with its own sled
//! store and real libp2p connections; 1,000 notices issued on one node,
//! each timed from publication (stored and flushed on the issuer) to
//! accepted by all, p50 and p99. Goal: p99 under 50 ms.
//!
//! Run: `cargo bench -p credence-node --bench propagation` (NOTICES
//! overrides the count).

mod common;

use common::*;
use credence_node::daemon::Command;
use credence_node::demo::example_listing;
use credence_node::devnet::{call, prepare, reach_all, wait_connected, watch};
use credence_node::service;
use credence_protocol::model::NoticeKind;
use std::time::{Duration, Instant};

const NODES: usize = 5;
const GOAL: Duration = Duration::from_millis(50);

fn main() {
    let count = notices_from_env(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let root = tempfile::tempdir().expect("temporary directory");
        let configs = prepare(root.path(), NODES, Duration::from_secs(30)).expect("data directories");
        let mut nodes = Vec::new();
        for (_, config) in configs {
            nodes.push(service::launch(config).await.expect("node starts"));
        }
        wait_connected(&nodes).await.expect("connected");
        let mut watched: Vec<_> = nodes.iter().map(|n| watch(&n.handle)).collect();
        let now = credence_node::node::now();
        let mut publish_to_all = Vec::with_capacity(count);
        let mut issue_to_all = Vec::with_capacity(count);
        for n in 0..count {
            let mut listing = example_listing(now);
            listing.subject.id = credence_protocol::testkit::uscc(n as u64 + 1);
            let since = Instant::now();
            let id = call(&nodes[0].handle, |tx| {
                Command::Issue(Box::new(NoticeKind::List(listing)), None, tx)
            })
            .await
            .expect("issue")
            .id;
            let times = reach_all(&mut watched, id, since).await.expect("propagation");
            let published = times[0];
            let all = times.iter().max().copied().unwrap_or_default();
            publish_to_all.push(all.saturating_sub(published));
            issue_to_all.push(all);
        }
        let (p50, p99, max) = percentiles(publish_to_all);
        let (i50, i99, imax) = percentiles(issue_to_all);
        println!("nodes:                              {NODES} on 127.0.0.1, one process, own sled stores");
        println!("notices:                            {count}, issued one after another on one node");
        println!(
            "publish -> accepted by all:         p50 {}  p99 {}  max {}   goal: p99 < {}",
            ms(p50),
            ms(p99),
            ms(max),
            ms(GOAL)
        );
        println!(
            "issue call -> accepted by all:      p50 {}  p99 {}  max {}   (adds signing and the flush before publishing)",
            ms(i50),
            ms(i99),
            ms(imax)
        );
        println!("goal (p99 < 50 ms): {}", if p99 < GOAL { "met" } else { "NOT met" });
        for node in nodes {
            node.stop().await.expect("stop");
        }
    });
}

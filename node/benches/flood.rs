//! Flood: one Byzantine member sends as fast as it can while two honest
//! members issue. Three members on loopback in one process: `market` and
//! `tax` run real nodes (own sled stores, real libp2p); `court`'s key drives
//! a bare libp2p swarm that floods both with
//!
//! - valid notices of its own log, as fast as gossip takes them (past its
//!   notice budget they are refused);
//! - notices far past its head (future seqs, for the pending buffer);
//! - a second notice at a seq it already used (fork evidence);
//! - sync requests (digests and 512-notice range reads of the honest logs);
//! - signed queries.
//!
//! Meanwhile the honest members issue in turn; each notice is timed from
//! publication on its issuer to acceptance by the other. Prints the p99
//! beside its goal (under 1 s), the process's peak memory beside its bound,
//! and what the honest nodes did with the flood.
//!
//! Run: `cargo bench -p credence-node --bench flood` (NOTICES sets the
//! honest notices, default 300).

mod common;

use common::*;
use credence_crypto::AuthorityKey;
use credence_node::daemon::Command;
use credence_node::demo::example_listing;
use credence_node::devnet::{call, prepare, reach_all, watch};
use credence_node::{keyfile, net, node, service};
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind, SubjectKind};
use credence_protocol::query::QueryRequest;
use credence_protocol::roster::Federation;
use credence_protocol::sync::{self, RangeAsk, SyncRequest};
use credence_protocol::testkit;
use credence_protocol::time::Timestamp;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, request_response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const GOAL: Duration = Duration::from_secs(1);
/// Peak resident memory of the whole process (both honest nodes and the
/// flooder) stated as the bound.
const MEMORY_BOUND_MIB: u64 = 1024;
/// Requests the flooder keeps outstanding per protocol and peer.
const OUTSTANDING_MAX: u64 = 64;

#[derive(Default)]
struct Sent {
    valid: AtomicU64,
    future: AtomicU64,
    forks: AtomicU64,
    gossip_refused_locally: AtomicU64,
    sync: AtomicU64,
    queries: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn court_listing(n: u64, now: Timestamp) -> NoticeKind {
    let mut listing = example_listing(now);
    listing.category = "court-enforcement".into();
    listing.measures = vec!["high-consumption-ban".into()];
    listing.subject.id = testkit::uscc(1_000_000 + n);
    NoticeKind::List(listing)
}

fn tax_listing(n: u64, now: Timestamp) -> NoticeKind {
    let mut listing = example_listing(now);
    listing.category = "tax".into();
    listing.measures = vec!["procurement-ban".into()];
    listing.subject.id = testkit::uscc(2_000_000 + n);
    NoticeKind::List(listing)
}

fn sign(
    key: &AuthorityKey,
    federation: &Federation,
    seq: u64,
    prev: NoticeId,
    kind: NoticeKind,
) -> (NoticeId, Vec<u8>) {
    let notice = Notice {
        version: NOTICE_VERSION,
        roster: 0,
        federation: federation.id(),
        author: credence_protocol::AuthorityId(key.public_bytes()),
        seq,
        prev,
        issued_at: node::now(),
        kind,
    };
    testkit::sign(key, &notice)
}

/// The flooder: court's key on a bare swarm, connected to `targets`.
async fn flood(
    key: AuthorityKey,
    federation: Federation,
    targets: Vec<(PeerId, libp2p::Multiaddr, credence_protocol::AuthorityId)>,
    stop: Arc<AtomicBool>,
    sent: Arc<Sent>,
) {
    let mut swarm =
        net::swarm(&key, &federation, &net::members(&federation), false).expect("flooder swarm");
    let topic = net::topic(&federation);
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .expect("subscribe");
    for (_, address, _) in &targets {
        swarm.dial(address.clone()).expect("dial");
    }
    let mut connected = 0;
    while connected < targets.len() {
        if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await {
            connected += 1;
        }
    }
    let me = credence_protocol::AuthorityId(key.public_bytes());
    let mut seq = 0u64;
    let mut prev = NoticeId::default();
    let mut first: Option<NoticeId> = None;
    let mut outstanding = 0u64;
    let mut round = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let digest = sync::encode_request(&SyncRequest::Digest {
        federation: federation.id(),
        digest: [7; 32],
    })
    .expect("digest request");
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            event = swarm.select_next_some() => {
                match event {
                    SwarmEvent::Behaviour(net::BehaviourEvent::Sync(request_response::Event::Message { .. }))
                    | SwarmEvent::Behaviour(net::BehaviourEvent::Query(request_response::Event::Message { .. })) => {
                        outstanding = outstanding.saturating_sub(1);
                        sent.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    SwarmEvent::Behaviour(net::BehaviourEvent::Sync(request_response::Event::OutboundFailure { .. }))
                    | SwarmEvent::Behaviour(net::BehaviourEvent::Query(request_response::Event::OutboundFailure { .. })) => {
                        outstanding = outstanding.saturating_sub(1);
                        sent.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        // Disconnected for being over budget: come back.
                        if let Some((_, address, _)) = targets.iter().find(|t| t.0 == peer_id) {
                            let _ = swarm.dial(address.clone());
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                round += 1;
                let gossip = &mut swarm.behaviour_mut().gossipsub;
                for _ in 0..20 {
                    // Valid notices of its own log.
                    let (id, bytes) = sign(&key, &federation, seq + 1, prev, court_listing(seq, node::now()));
                    match gossip.publish(topic.clone(), bytes) {
                        Ok(_) => {
                            seq += 1;
                            prev = id;
                            first.get_or_insert(id);
                            sent.valid.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            sent.gossip_refused_locally.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Far past its head.
                    let (_, bytes) = sign(&key, &federation, seq + 1_000 + round % 5_000, NoticeId([round as u8; 32]), court_listing(round, node::now()));
                    if gossip.publish(topic.clone(), bytes).is_ok() {
                        sent.future.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A second notice at seq 1.
                if seq > 1 && round.is_multiple_of(10) {
                    let (_, bytes) = sign(&key, &federation, 1, NoticeId::default(), court_listing(10_000_000 + round, node::now()));
                    if gossip.publish(topic.clone(), bytes).is_ok() {
                        sent.forks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Sync and queries, with a bounded number outstanding.
                for (peer, _, author) in &targets {
                    if outstanding >= OUTSTANDING_MAX * 2 * targets.len() as u64 {
                        break;
                    }
                    let ranges = sync::encode_request(&SyncRequest::Ranges(vec![RangeAsk {
                        author: *author,
                        from: 1,
                        count: 512,
                    }]))
                    .expect("ranges request");
                    let behaviour = swarm.behaviour_mut();
                    behaviour.sync.send_request(peer, ranges);
                    behaviour.sync.send_request(peer, digest.clone());
                    sent.sync.fetch_add(2, Ordering::Relaxed);
                    let query = QueryRequest {
                        version: credence_protocol::query::QUERY_VERSION,
                        federation: federation.id(),
                        requester: me,
                        subject_kind: SubjectKind::LegalPerson,
                        subject_id: testkit::uscc(round % 1000 + 1),
                        purpose: "flood".into(),
                        legal_basis: "flood".into(),
                        issued_at: node::now(),
                        nonce: round,
                        page: 0,
                    }
                    .sign(&key)
                    .expect("query");
                    let bytes = credence_protocol::query::QueryMessage {
                        request: query.signed,
                        offer: Vec::new(),
                    }
                    .encode()
                    .expect("query bytes");
                    behaviour.query.send_request(peer, bytes);
                    sent.queries.fetch_add(1, Ordering::Relaxed);
                    outstanding += 3;
                }
            }
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn main() {
    let count = notices_from_env(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let root = tempfile::tempdir().expect("temporary directory");
        let configs = prepare(root.path(), 3, Duration::from_secs(2)).expect("data directories");
        let federation = node::read_roster(&root.path().join("roster.toml")).expect("roster");
        let mut honest = Vec::new();
        for (_, config) in configs.iter().take(2) {
            honest.push(service::launch(config.clone()).await.expect("node starts"));
        }
        let court_key = keyfile::read(&configs[2].1.data.join("authority.key")).expect("court key");
        let members = net::members(&federation);
        let targets: Vec<_> = honest
            .iter()
            .map(|n| (n.peer_id, n.listen[0].clone(), members[&n.peer_id]))
            .collect();
        // The honest members see each other before anything starts.
        let started = Instant::now();
        loop {
            let mut ready = true;
            for n in &honest {
                let status: credence_node::daemon::Status = call(&n.handle, Command::Status).await.expect("status");
                ready &= status.ready && !status.peers.is_empty();
            }
            if ready {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the honest nodes never connected");
            // Polling the nodes' status until they are connected; nothing is timed here.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rss_before = status_kib("VmRSS:");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Sent::default());
        let flooder = tokio::spawn(flood(court_key, federation.clone(), targets, stop.clone(), sent.clone()));
        // The workload's shape, not a wait for an event: the flood runs two
        // seconds before the first honest notice, so that every honest
        // notice is timed under a flood already at full rate.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut watched: Vec<_> = honest.iter().map(|n| watch(&n.handle)).collect();
        let mut latencies = Vec::with_capacity(count);
        let flood_started = Instant::now();
        for n in 0..count {
            let issuer = n % 2;
            let now = node::now();
            let kind = if issuer == 0 {
                let mut listing = example_listing(now);
                listing.subject.id = testkit::uscc(n as u64 + 1);
                NoticeKind::List(listing)
            } else {
                tax_listing(n as u64, now)
            };
            let since = Instant::now();
            let id = call(&honest[issuer].handle, |tx| Command::Issue(Box::new(kind), None, tx))
                .await
                .expect("issue")
                .id;
            let times = reach_all(&mut watched, id, since).await.expect("propagation");
            latencies.push(times[1 - issuer].saturating_sub(times[issuer]));
            // The honest issuing rate (a notice every 10 ms, as the module
            // doc says): pacing the workload, not waiting for an event.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let flood_secs = flood_started.elapsed().as_secs_f64() + 2.0;
        stop.store(true, Ordering::Relaxed);
        let _ = flooder.await;
        let peak = status_kib("VmHWM:");
        let (p50, p99, max) = percentiles(latencies);
        println!("members:                          market and tax honest (own sled stores), court flooding; one process on 127.0.0.1");
        println!("honest notices:                   {count}, issued in turn, 10 ms apart, during {flood_secs:.1} s of flood");
        println!(
            "flood sent:                       {} own notices, {} past its head, {} forks, {} refused by its own gossip queue, {} sync requests, {} queries ({} answered, {} failed or refused)",
            sent.valid.load(Ordering::Relaxed),
            sent.future.load(Ordering::Relaxed),
            sent.forks.load(Ordering::Relaxed),
            sent.gossip_refused_locally.load(Ordering::Relaxed),
            sent.sync.load(Ordering::Relaxed),
            sent.queries.load(Ordering::Relaxed),
            sent.answered.load(Ordering::Relaxed),
            sent.failed.load(Ordering::Relaxed),
        );
        for (name, n) in ["market", "tax"].iter().zip(&honest) {
            let text: String = call(&n.handle, Command::Metrics).await.expect("metrics");
            println!(
                "{name:<6} saw:                       accepted {} (gossip {}), rejected {}, pending now {}, dropped {}, expired {}, forks {}, requests over budget {}",
                metric(&text, "credence_notices_accepted_total"),
                text.lines().find(|l| l.starts_with("credence_notices_accepted_total{via=\"gossip\"}")).and_then(|l| l.rsplit(' ').next()).unwrap_or("0"),
                metric(&text, "credence_notices_rejected_total"),
                metric(&text, "credence_pending_notices"),
                metric(&text, "credence_notices_dropped_total"),
                metric(&text, "credence_pending_expired_total"),
                metric(&text, "credence_forks_total"),
                metric(&text, "credence_requests_over_budget_total"),
            );
        }
        println!(
            "honest publish -> accepted by the other:  p50 {}  p99 {}  max {}   goal: p99 < {}  {}",
            ms(p50),
            ms(p99),
            ms(max),
            ms(GOAL),
            if p99 < GOAL { "met" } else { "NOT met" }
        );
        println!(
            "memory (whole process):          RSS {} MiB before the flood, peak {} MiB   bound: {MEMORY_BOUND_MIB} MiB  {}",
            rss_before / 1024,
            peak / 1024,
            if peak / 1024 < MEMORY_BOUND_MIB { "met" } else { "NOT met" }
        );
        for n in honest {
            n.stop().await.expect("stop");
        }
    });
}

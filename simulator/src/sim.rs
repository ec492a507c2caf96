//! The discrete-event loop: a virtual clock, an event queue ordered by
//! `(time, sequence)`, one seeded RNG from which everything random is
//! derived, and N nodes each driving the real `protocol` state machines
//! (`Replica` for ingest and issue, `SyncSession` for anti-entropy).

use crate::queue::EventQueue;
use crate::report::{Report, percentile};
use crate::scenario::{Misbehaviour, Scenario, ScenarioError, ms};
use crate::store::{Envelope, SharedInterner, SimStore};
use credence_crypto::AuthorityKey;
use credence_protocol::fold::{self, ListingState, Task};
use credence_protocol::model::{
    AuthorityId, Classification, FeedbackAction, ListKind, Listing, NOTICE_VERSION, Notice,
    NoticeId, NoticeKind, Remedy, RulingOutcome, Severity, Subject, SubjectKind,
};
use credence_protocol::replica::{CheckedNotice, NoticeMemo, Outcome, Replica};
use credence_protocol::store::{ForkEvidence, Store};
use credence_protocol::sync::{
    self, SyncRequest, SyncResponse, SyncSession, encode_request, encode_response,
};
use credence_protocol::testkit::{self, SplitMix64};
use credence_protocol::time::{DAY_MS, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Virtual time 0 is this wall-clock instant (2026-01-01), for notices.
pub const EPOCH: Timestamp = Timestamp(1_767_225_600_000);
/// How often convergence is checked once the faults have stopped.
const CHECK_EVERY_MS: u64 = 1000;
/// Most nodes whose listing states and tasks are compared at the end.
const STATE_CHECK_NODES_MAX: usize = 32;
/// Implementing authorities whose task lists are compared at the end.
const TASK_CHECK_MEMBERS_MAX: usize = 8;
/// Of those, how many each sampled node derives (in turn, so that each is
/// derived on several nodes): each derivation folds every listing.
const TASK_CHECK_MEMBERS_PER_NODE: usize = 2;
/// Most ids in one lazy announcement.
const IHAVE_IDS_MAX: usize = 512;

/// How one run is set up.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// A node whose replica is deliberately broken: it treats a repair
    /// from a non-issuer as accepted (to prove the invariants can fail).
    pub broken_node: Option<usize>,
    /// Where the scenario came from (for the replay command).
    pub scenario_path: String,
}

/// A violated invariant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// Virtual time it was seen.
    pub at_ms: u64,
    /// The number of the event that broke it.
    pub event: u64,
    /// What was wrong.
    pub detail: String,
}

/// A small deterministic RNG with the helpers the model needs.
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
}

/// The kinds of message, in the order of [`Msg::index`].
const MSG_KINDS: [&str; 5] = ["gossip", "ihave", "iwant", "sync_request", "sync_response"];

#[derive(Clone, Debug)]
enum Msg {
    /// An envelope with its message id, which gossipsub derives from the
    /// bytes (the notice id): computed once where the message is created.
    Gossip(Rc<Envelope>),
    IHave(Vec<NoticeId>),
    IWant(Vec<NoticeId>),
    SyncRequest(u64, Box<SyncRequest>),
    SyncResponse(u64, Box<SyncResponse>),
}

impl Msg {
    fn index(&self) -> usize {
        match self {
            Msg::Gossip(..) => 0,
            Msg::IHave(_) => 1,
            Msg::IWant(_) => 2,
            Msg::SyncRequest(..) => 3,
            Msg::SyncResponse(..) => 4,
        }
    }
    fn bytes(&self) -> u64 {
        match self {
            Msg::Gossip(e) => e.bytes.len() as u64 + 16,
            Msg::IHave(ids) | Msg::IWant(ids) => 32 * ids.len() as u64 + 16,
            Msg::SyncRequest(_, r) => encode_request(r).map_or(0, |b| b.len() as u64) + 16,
            Msg::SyncResponse(_, r) => encode_response(r).map_or(0, |b| b.len() as u64) + 16,
        }
    }
}

enum Event {
    Deliver { from: usize, to: usize, msg: Msg },
    Issue(usize),
    Heartbeat(usize),
    SyncTick(usize),
    Flush(usize),
    Crash(usize, u64),
    Restart(usize),
    Misbehave(usize, Misbehaviour),
    Sample,
    Check,
}

/// Envelopes decoded and verified once are not checked again by other
/// replicas: the id hashes the whole envelope, signature included.
#[derive(Default)]
struct Memo(Mutex<FxHashMap<NoticeId, CheckedNotice>>);

impl NoticeMemo for Memo {
    fn checked(&self, id: &NoticeId) -> Option<CheckedNotice> {
        self.0.lock().ok().and_then(|m| m.get(id).cloned())
    }
    fn set_checked(&self, id: NoticeId, checked: CheckedNotice) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id, checked);
        }
    }
}

struct Node {
    replica: Replica<SimStore>,
    key: AuthorityKey,
    up: bool,
    byzantine: Vec<Misbehaviour>,
    broken: bool,
    mesh: Vec<usize>,
    others: Vec<usize>,
    /// Ids to announce at the next heartbeat.
    recent: Vec<NoticeId>,
    /// Fork evidence this node forwarded (the second notice of a fork is
    /// kept as evidence, not in the log), to answer requests for it.
    evidence: FxHashMap<NoticeId, Rc<Envelope>>,
    /// Accepted envelopes in arrival order (as interned), and how many
    /// are flushed.
    log: Vec<u32>,
    flushed: usize,
    /// The fork evidence in the store at the last flush.
    flushed_forks: Vec<ForkEvidence>,
    session: Option<(u64, usize, SyncSession)>,
    /// When the current session sent its last request.
    session_at: u64,
    /// Stopped issuing (an equivocator keeps quiet after its fork).
    silenced: bool,
    /// Issues notices (an authority, or a Byzantine member): keeps the
    /// listings and objections it knows to choose from.
    issues: bool,
    known_listings: Vec<NoticeId>,
    own_listings: Vec<NoticeId>,
    objections_to_mine: Vec<NoticeId>,
    /// Notices a broken replica wrongly treated as accepted.
    wrongly_accepted: BTreeSet<NoticeId>,
}

/// Counters of one run.
#[derive(Default, Debug, Clone)]
pub struct Counters {
    /// Messages sent, by kind (see `MSG_KINDS`).
    pub messages: [u64; 5],
    /// Bytes sent.
    pub bytes: u64,
    /// Deliveries processed.
    pub deliveries: u64,
    /// Notices received again.
    pub duplicates: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Notices issued by honest authorities.
    pub issued: u64,
    /// Invariant checks made.
    pub checks: u64,
}

/// A simulation in progress.
pub struct Sim {
    cfg: RunConfig,
    rng: Rng,
    queue: EventQueue<Event>,
    now: u64,
    nodes: Vec<Node>,
    oracle: Replica<SimStore>,
    interner: SharedInterner,
    memo: Arc<Memo>,
    valid: BTreeSet<NoticeId>,
    refused: BTreeMap<NoticeId, String>,
    equivocators: BTreeSet<AuthorityId>,
    issued_at: FxHashMap<NoticeId, u64>,
    latencies: Vec<u64>,
    delivered_pairs: u64,
    progress: Vec<(u64, f64)>,
    counters: Counters,
    violations: Vec<Violation>,
    trace: u64,
    events: u64,
    latency: (u64, u64),
    bandwidth: u64,
    heartbeat: u64,
    sync_interval: u64,
    flush_interval: u64,
    workload_end: u64,
    faults_end: u64,
    converge_within: u64,
    converged_at: Option<u64>,
    partitions: Vec<(u64, u64, Vec<bool>, bool)>,
    spikes: Vec<(u64, u64, u64)>,
    reorder_delay: u64,
    next_session: u64,
}

fn mix(state: u64, value: u64) -> u64 {
    // FNV-1a over the value's bytes: a cheap running trace hash.
    let mut h = state;
    for b in value.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn digest_u64(id: &NoticeId) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(bytes)
}

impl Sim {
    /// Sets a run up: keys, roster, overlay, schedule.
    pub fn new(cfg: RunConfig) -> Result<Sim, ScenarioError> {
        let s = &cfg.scenario;
        let mut rng = Rng(SplitMix64(cfg.seed));
        let test = testkit::federation(cfg.seed, s.nodes);
        let memo: Arc<Memo> = Arc::new(Memo::default());
        let interner = SharedInterner::default();
        let mut nodes: Vec<Node> = test
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| Node {
                replica: Replica::new(test.federation.clone(), SimStore::new(interner.clone()))
                    .with_notice_memo(memo.clone()),
                key: AuthorityKey::from_secret_bytes(key.secret_bytes()),
                up: true,
                byzantine: Vec::new(),
                broken: cfg.broken_node == Some(i),
                mesh: Vec::new(),
                others: Vec::new(),
                recent: Vec::new(),
                evidence: FxHashMap::default(),
                log: Vec::new(),
                flushed: 0,
                flushed_forks: Vec::new(),
                session: None,
                session_at: 0,
                silenced: false,
                issues: i < s.authorities,
                known_listings: Vec::new(),
                own_listings: Vec::new(),
                objections_to_mine: Vec::new(),
                wrongly_accepted: BTreeSet::new(),
            })
            .collect();
        // A random mesh in which every node has `degree` peers, as
        // gossipsub's mesh maintenance keeps it: each node grafts random
        // peers until it has `degree`, preferring peers that still have
        // fewer; a peer takes grafts up to twice the degree (gossipsub's
        // D_hi).
        let n = s.nodes;
        let mut adjacency: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for a in 0..n {
            let mut tries = 0;
            while adjacency[a].len() < s.degree && tries < 100 * s.degree {
                tries += 1;
                let b = rng.below(n as u64) as usize;
                let room = if tries < 20 * s.degree {
                    s.degree
                } else {
                    2 * s.degree
                };
                if b != a && adjacency[b].len() < room {
                    adjacency[a].insert(b);
                    adjacency[b].insert(a);
                }
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            node.mesh = adjacency[i].iter().copied().collect();
            node.others = (0..n)
                .filter(|j| *j != i && !adjacency[i].contains(j))
                .collect();
        }
        for b in &s.faults.byzantine {
            nodes[b.node].byzantine = b.behaviours.clone();
            nodes[b.node].issues = true;
        }
        let oracle = Replica::new(test.federation.clone(), SimStore::new(interner.clone()))
            .with_notice_memo(memo.clone());
        let mut partitions = Vec::new();
        for p in &s.faults.partitions {
            let mut order: Vec<usize> = (0..n).collect();
            rng.0.shuffle(&mut order);
            let cut = (p.fraction * n as f64) as usize;
            let mut side_a = vec![false; n];
            for i in &order[..cut] {
                side_a[*i] = true;
            }
            partitions.push((
                ms("from", &p.from)?,
                ms("until", &p.until)?,
                side_a,
                p.one_way,
            ));
        }
        let mut spikes = Vec::new();
        for spike in &s.faults.delay_spikes {
            spikes.push((
                ms("from", &spike.from)?,
                ms("until", &spike.until)?,
                ms("extra", &spike.extra)?,
            ));
        }
        let workload_end = ms("workload.duration", &s.workload.duration)?;
        let mut faults_end = workload_end;
        for (_, until, _, _) in &partitions {
            faults_end = faults_end.max(*until);
        }
        for (_, until, _) in &spikes {
            faults_end = faults_end.max(*until);
        }
        let mut crashes = Vec::new();
        for crash in &s.faults.crashes {
            let at = ms("at", &crash.at)?;
            let down = ms("down_for", &crash.down_for)?;
            faults_end = faults_end.max(at + down);
            crashes.push((at, crash.node, down));
        }
        let mut sim = Sim {
            latency: (
                ms("latency_min", &s.links.latency_min)?,
                ms("latency_max", &s.links.latency_max)?,
            ),
            bandwidth: s.links.bandwidth_bytes_per_s.max(1),
            heartbeat: ms("heartbeat", &s.protocol.heartbeat)?.max(1),
            sync_interval: ms("sync_interval", &s.protocol.sync_interval)?.max(1),
            flush_interval: ms("flush_interval", &s.protocol.flush_interval)?.max(1),
            converge_within: ms("converge_within", &s.converge_within)?,
            reorder_delay: s
                .faults
                .reorder_delay
                .as_deref()
                .map(|d| ms("reorder_delay", d))
                .transpose()?
                .unwrap_or(0),
            workload_end,
            faults_end,
            cfg,
            rng,
            queue: EventQueue::default(),
            now: 0,
            nodes,
            oracle,
            interner,
            memo,
            valid: BTreeSet::new(),
            refused: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            issued_at: FxHashMap::default(),
            latencies: Vec::new(),
            delivered_pairs: 0,
            progress: Vec::new(),
            counters: Counters::default(),
            violations: Vec::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            converged_at: None,
            partitions,
            spikes,
            next_session: 0,
        };
        let authorities = sim.cfg.scenario.authorities;
        for i in 0..n {
            let phase = sim.rng.below(sim.heartbeat);
            sim.schedule(phase, Event::Heartbeat(i));
            let phase = sim.rng.below(sim.sync_interval);
            sim.schedule(phase, Event::SyncTick(i));
            let phase = sim.rng.below(sim.flush_interval);
            sim.schedule(phase, Event::Flush(i));
        }
        for i in 0..authorities {
            let first = sim.issue_gap();
            sim.schedule(first, Event::Issue(i));
        }
        for (at, node, down) in crashes {
            sim.schedule(at, Event::Crash(node, down));
        }
        let byzantine = sim.cfg.scenario.faults.byzantine.clone();
        for b in byzantine {
            for behaviour in &b.behaviours {
                for _ in 0..b.count {
                    let at = sim.rng.below(sim.workload_end.max(1));
                    sim.schedule(at, Event::Misbehave(b.node, *behaviour));
                }
            }
        }
        sim.schedule(0, Event::Sample);
        sim.schedule(sim.faults_end, Event::Check);
        Ok(sim)
    }

    /// The mesh peers of a node.
    pub fn mesh(&self, node: usize) -> &[usize] {
        &self.nodes[node].mesh
    }

    fn issue_gap(&mut self) -> u64 {
        let s = &self.cfg.scenario;
        let mean = (self.workload_end * s.authorities as u64) / (s.workload.notices.max(1) as u64);
        self.rng.between(mean / 2, mean + mean / 2).max(1)
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.queue.push(self.now + delay, event);
    }

    fn violate(&mut self, invariant: &'static str, detail: String) {
        if self.violations.len() < 100 {
            self.violations.push(Violation {
                invariant,
                at_ms: self.now,
                event: self.events,
                detail,
            });
        }
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.partitions.iter().any(|(start, end, side_a, one_way)| {
            self.now >= *start
                && self.now < *end
                && if *one_way {
                    side_a[from] && !side_a[to]
                } else {
                    side_a[from] != side_a[to]
                }
        })
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        let bytes = msg.bytes();
        self.counters.messages[msg.index()] += 1;
        self.counters.bytes += bytes;
        if self.cut(from, to) {
            *self.counters.faults.entry("partition_drop").or_default() += 1;
            return;
        }
        if self.rng.chance(self.cfg.scenario.faults.loss) {
            *self.counters.faults.entry("loss").or_default() += 1;
            return;
        }
        let mut delay =
            self.rng.between(self.latency.0, self.latency.1) + bytes * 1000 / self.bandwidth;
        for (start, end, extra) in &self.spikes {
            if self.now >= *start && self.now < *end {
                delay += extra;
            }
        }
        if self.rng.chance(self.cfg.scenario.faults.reorder) {
            *self.counters.faults.entry("reorder").or_default() += 1;
            delay += self.rng.below(self.reorder_delay.max(1));
        }
        if self.rng.chance(self.cfg.scenario.faults.duplicate) {
            *self.counters.faults.entry("duplicate").or_default() += 1;
            let again = delay + self.rng.between(self.latency.0, self.latency.1);
            self.schedule(
                again,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        self.schedule(delay, Event::Deliver { from, to, msg });
    }

    /// Runs to the end; returns the report.
    pub fn run(mut self) -> Report {
        let wall = std::time::Instant::now();
        let deadline = self.faults_end + self.converge_within;
        while let Some((time, seq, event)) = self.queue.pop() {
            if time > deadline {
                break;
            }
            self.now = time;
            self.events += 1;
            self.trace = mix(mix(self.trace, time), seq);
            self.handle(event);
            if self.converged_at.is_some() {
                break;
            }
        }
        self.sample_progress();
        if self.converged_at.is_none() {
            let honest = self.honest_up();
            let reference = honest
                .first()
                .map(|n| self.comparable_heads(*n))
                .unwrap_or_default();
            let behind: Vec<String> = honest
                .iter()
                .filter(|n| {
                    self.comparable_heads(**n) != reference
                        || self.nodes[**n].replica.pending().iter().any(|(id, w)| self.valid.contains(id) && !matches!(w, credence_protocol::replica::Waiting::Predecessor { author, .. } if self.equivocators.contains(author)))
                })
                .map(|n| {
                    let waiting: Vec<String> = self.nodes[*n]
                        .replica
                        .pending()
                        .iter()
                        .filter(|(id, _)| self.valid.contains(id))
                        .map(|(id, w)| format!("{} waits for {w:?}", id.short()))
                        .collect();
                    format!("node {n} [{}]", waiting.join("; "))
                })
                .collect();
            let detail = format!(
                "honest replicas did not converge within {} ms after the faults stopped; differing from node {:?}: {}",
                self.converge_within,
                honest.first(),
                behind.join(", ")
            );
            self.violate("convergence", detail);
        }
        let looped = wall.elapsed();
        self.final_checks();
        self.report(looped, wall.elapsed())
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => {
                self.counters.deliveries += 1;
                if !self.nodes[to].up {
                    *self
                        .counters
                        .faults
                        .entry("delivered_to_down_node")
                        .or_default() += 1;
                    return;
                }
                self.deliver(from, to, msg);
            }
            Event::Issue(node) => {
                if self.now < self.workload_end
                    && self.counters.issued < self.cfg.scenario.workload.notices as u64
                {
                    if self.nodes[node].up && !self.nodes[node].silenced {
                        self.issue(node);
                    }
                    let gap = self.issue_gap();
                    self.schedule(gap, Event::Issue(node));
                }
            }
            Event::Heartbeat(node) => {
                if self.nodes[node].up {
                    self.heartbeat(node);
                }
                let next = self.heartbeat;
                self.schedule(next, Event::Heartbeat(node));
            }
            Event::SyncTick(node) => {
                // A request or answer lost on the way ends the session after
                // a timeout, as a request-response timeout does on a node.
                let timeout = 2 * self.sync_interval;
                let n = &mut self.nodes[node];
                if n.session.is_some() && self.now.saturating_sub(n.session_at) > timeout {
                    n.session = None;
                    *self.counters.faults.entry("sync_timeout").or_default() += 1;
                }
                if self.nodes[node].up && self.nodes[node].session.is_none() {
                    self.start_sync(node);
                }
                let quarter = self.sync_interval / 4;
                let next = self
                    .rng
                    .between(self.sync_interval - quarter, self.sync_interval + quarter);
                self.schedule(next, Event::SyncTick(node));
            }
            Event::Flush(node) => {
                let n = &mut self.nodes[node];
                n.flushed = n.log.len();
                let Ok(forks) = n.replica.store().forks();
                n.flushed_forks = forks;
                let next = self.flush_interval;
                self.schedule(next, Event::Flush(node));
            }
            Event::Crash(node, down) => {
                *self.counters.faults.entry("crash").or_default() += 1;
                let n = &mut self.nodes[node];
                n.up = false;
                n.session = None;
                n.recent.clear();
                n.evidence.clear();
                self.schedule(down, Event::Restart(node));
            }
            Event::Restart(node) => self.restart(node),
            Event::Misbehave(node, behaviour) => self.misbehave(node, behaviour),
            Event::Sample => {
                self.sample_progress();
                self.schedule(CHECK_EVERY_MS, Event::Sample);
            }
            Event::Check => {
                self.counters.checks += 1;
                if self.converged() {
                    self.converged_at = Some(self.now);
                } else {
                    self.schedule(CHECK_EVERY_MS, Event::Check);
                }
            }
        }
    }

    fn sample_progress(&mut self) {
        let honest = self.nodes.iter().filter(|n| n.byzantine.is_empty()).count() as u64;
        let wanted = honest * self.issued_at.len() as u64;
        let fraction = if wanted == 0 {
            1.0
        } else {
            self.delivered_pairs as f64 / wanted as f64
        };
        self.progress.push((self.now, fraction.min(1.0)));
    }

    fn restart(&mut self, node: usize) {
        let federation = self.oracle.federation().clone();
        let n = &mut self.nodes[node];
        let flushed: Vec<u32> = n.log[..n.flushed].to_vec();
        // Volatile state is gone; the flushed store comes back.
        n.replica = Replica::new(federation, SimStore::new(self.interner.clone()))
            .with_notice_memo(self.memo.clone());
        n.log.clear();
        n.flushed = 0;
        n.up = true;
        let envelopes: Vec<Rc<Envelope>> = {
            let interner = self.interner.borrow();
            flushed.iter().map(|i| interner.get(*i)).collect()
        };
        let slices: Vec<&[u8]> = envelopes.iter().map(|e| &*e.bytes).collect();
        let result = n.replica.ingest_batch(&slices);
        for fork in &n.flushed_forks {
            let _ = n.replica.store_mut().put_fork(fork);
        }
        let mut lost = Vec::new();
        if result.is_ok() {
            for envelope in &envelopes {
                if !n.replica.store().holds_envelope(envelope) {
                    lost.push(envelope.id);
                }
            }
        } else {
            lost.push(NoticeId::default());
        }
        n.log = flushed;
        n.flushed = n.log.len();
        for id in lost {
            self.violate(
                "no_flushed_notice_lost",
                format!("node {node} lost flushed notice {id} across a crash"),
            );
        }
    }

    fn heartbeat(&mut self, node: usize) {
        let recent = std::mem::take(&mut self.nodes[node].recent);
        if recent.is_empty() {
            return;
        }
        let fanout = self.cfg.scenario.protocol.lazy_fanout;
        for chunk in recent.chunks(IHAVE_IDS_MAX) {
            for _ in 0..fanout {
                let others = &self.nodes[node].others;
                if others.is_empty() {
                    break;
                }
                let peer = others[self.rng.below(others.len() as u64) as usize];
                self.send(node, peer, Msg::IHave(chunk.to_vec()));
            }
        }
    }

    fn start_sync(&mut self, node: usize) {
        let n = self.nodes.len();
        let mut peer = self.rng.below(n as u64) as usize;
        if peer == node {
            peer = (peer + 1) % n;
        }
        if let Ok((session, request)) = SyncSession::start(&self.nodes[node].replica) {
            self.next_session += 1;
            let id = self.next_session;
            self.nodes[node].session = Some((id, peer, session));
            self.nodes[node].session_at = self.now;
            self.send(node, peer, Msg::SyncRequest(id, Box::new(request)));
        }
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        self.trace = mix(self.trace, (from as u64) << 32 | to as u64);
        match msg {
            Msg::Gossip(envelope) => {
                self.trace = mix(self.trace, envelope.bytes.len() as u64);
                // gossipsub drops a message it has seen before it is
                // validated; the replica would report the same duplicate.
                if self.nodes[to].replica.store().holds_envelope(&envelope) {
                    self.counters.duplicates += 1;
                    return;
                }
                self.ingest(to, Some(from), &[envelope]);
            }
            Msg::IHave(ids) => {
                let node = &self.nodes[to];
                let store = node.replica.store();
                let want: Vec<NoticeId> = ids
                    .into_iter()
                    .filter(|id| {
                        !store.contains(id).unwrap_or(true) && !node.evidence.contains_key(id)
                    })
                    .collect();
                if !want.is_empty() {
                    self.send(to, from, Msg::IWant(want));
                }
            }
            Msg::IWant(ids) => {
                for id in ids.into_iter().take(IHAVE_IDS_MAX) {
                    let node = &self.nodes[to];
                    let stored = node.replica.store().envelope(&id);
                    if let Some(envelope) = stored.or_else(|| node.evidence.get(&id).cloned()) {
                        self.send(to, from, Msg::Gossip(envelope));
                    }
                }
            }
            Msg::SyncRequest(session, request) => {
                let response = match sync::respond(&self.nodes[to].replica, &request) {
                    Ok(response) => response,
                    Err(_) => return,
                };
                if let (SyncRequest::Offer { heads, .. }, SyncResponse::Taken) =
                    (&*request, &response)
                    && self.nodes[to].session.is_none()
                    && let Ok((pull, Some(next))) =
                        SyncSession::pull(&self.nodes[to].replica, heads)
                {
                    self.next_session += 1;
                    let id = self.next_session;
                    self.nodes[to].session = Some((id, from, pull));
                    self.nodes[to].session_at = self.now;
                    self.send(to, from, Msg::SyncRequest(id, Box::new(next)));
                }
                self.send(to, from, Msg::SyncResponse(session, Box::new(response)));
            }
            Msg::SyncResponse(session, response) => {
                let Some((id, peer, mut active)) = self.nodes[to].session.take() else {
                    return;
                };
                if id != session || peer != from {
                    self.nodes[to].session = Some((id, peer, active));
                    return;
                }
                let Ok(step) = active.on_response(&self.nodes[to].replica, *response) else {
                    return;
                };
                let envelopes: Vec<Rc<Envelope>> = step
                    .ingest
                    .into_iter()
                    .map(|bytes| Rc::new(Envelope::loose(bytes)))
                    .collect();
                if !envelopes.is_empty() {
                    self.ingest(to, None, &envelopes);
                }
                if step.peer_lacks
                    && let Ok(heads) = sync::local_heads(&self.nodes[to].replica)
                {
                    let offer = SyncRequest::Offer {
                        federation: self.oracle.federation().id(),
                        heads,
                    };
                    self.send(to, from, Msg::SyncRequest(0, Box::new(offer)));
                }
                if let Some(next) = step.next {
                    self.nodes[to].session = Some((id, peer, active));
                    self.nodes[to].session_at = self.now;
                    self.send(to, from, Msg::SyncRequest(id, Box::new(next)));
                }
            }
        }
    }

    /// Ingests envelopes at `node`; forwards what it accepts to its mesh
    /// (gossip only), and checks every acceptance against the oracle.
    fn ingest(&mut self, node: usize, source: Option<usize>, envelopes: &[Rc<Envelope>]) {
        let identified: Vec<(NoticeId, &[u8])> =
            envelopes.iter().map(|e| (e.id, &*e.bytes)).collect();
        let Ok(outcomes) = self.nodes[node].replica.ingest_identified(&identified) else {
            return;
        };
        let honest = self.nodes[node].byzantine.is_empty();
        if self.nodes[node].broken {
            self.broken_accepts(node, envelopes);
        }
        for outcome in outcomes {
            let (id, is_accepted) = match outcome {
                Outcome::Accepted { id, .. } => (id, true),
                // A fork's second notice is evidence: kept, and forwarded
                // like the node's gossip validation does, never applied.
                Outcome::Forked { id, .. } => (id, false),
                Outcome::Duplicate { .. } => {
                    self.counters.duplicates += 1;
                    continue;
                }
                Outcome::Rejected { .. } => continue,
                Outcome::Pending { .. } | Outcome::Dropped { .. } => continue,
            };
            // The envelope given, or one that waited in the pending buffer.
            let given = envelopes.iter().find(|e| e.id == id).cloned();
            let Some(envelope) = given.or_else(|| self.nodes[node].replica.store().envelope(&id))
            else {
                continue;
            };
            if is_accepted {
                self.accepted(node, id, envelope.index);
            } else {
                // Forwarded evidence is announced like any message.
                let n = &mut self.nodes[node];
                n.evidence.insert(id, envelope.clone());
                n.recent.push(id);
            }
            if honest && is_accepted && !self.valid.contains(&id) {
                let what = credence_protocol::codec::decode_envelope(&envelope.bytes)
                    .ok()
                    .and_then(|e| credence_protocol::codec::decode_notice(&e.body).ok())
                    .map(|n| format!("{} seq {} by {}", n.kind.name(), n.seq, n.author.short()))
                    .unwrap_or_default();
                let pending = self.oracle.pending().iter().any(|(p, _)| *p == id);
                self.violate(
                    "nothing_invalid_accepted",
                    format!("node {node} accepted {id} ({what}; the reference replica {}), which no valid history holds", if pending { "still holds it pending".to_string() } else { format!("refused it: {}", self.refused.get(&id).map_or("never saw it", String::as_str)) }),
                );
            }
            if let Some(source) = source {
                for i in 0..self.nodes[node].mesh.len() {
                    let peer = self.nodes[node].mesh[i];
                    if peer != source {
                        self.send(node, peer, Msg::Gossip(envelope.clone()));
                    }
                }
            }
        }
    }

    /// The deliberately broken replica: it takes every repair it receives,
    /// whoever signed it, as if it were valid.
    fn broken_accepts(&mut self, node: usize, envelopes: &[Rc<Envelope>]) {
        for envelope in envelopes {
            let id = &envelope.id;
            let Some(notice) = credence_protocol::codec::decode_envelope(&envelope.bytes)
                .ok()
                .and_then(|e| credence_protocol::codec::decode_notice(&e.body).ok())
            else {
                continue;
            };
            if matches!(notice.kind, NoticeKind::Repair { .. })
                && self.nodes[node].wrongly_accepted.insert(*id)
                && !self.valid.contains(id)
            {
                self.violate(
                    "nothing_invalid_accepted",
                    format!("node {node} accepted invalid notice {id} (a repair by {}, who did not issue the listing)", notice.author.short()),
                );
            }
        }
    }

    /// Bookkeeping of one accepted notice at a node.
    fn accepted(&mut self, node: usize, id: NoticeId, index: Option<u32>) {
        let n = &mut self.nodes[node];
        n.recent.push(id);
        if let Some(index) = index.or_else(|| self.interner.borrow().find(&id)) {
            n.log.push(index);
        }
        // Only a node that issues chooses among what it knows.
        let notice = if n.issues {
            self.memo.checked(&id).map(|known| known.notice)
        } else {
            None
        };
        if let Some(notice) = notice {
            match &notice.kind {
                NoticeKind::List(_) => n.known_listings.push(id),
                NoticeKind::Object { listing, .. } if n.own_listings.contains(listing) => {
                    n.objections_to_mine.push(id)
                }
                _ => {}
            }
        }
        if n.byzantine.is_empty()
            && let Some(at) = self.issued_at.get(&id)
        {
            self.latencies.push(self.now - at);
            self.delivered_pairs += 1;
        }
        self.trace = mix(self.trace, digest_u64(&id));
    }

    /// Records a notice created at this instant with the oracle, which
    /// sees every notice in creation order and so defines what is valid.
    fn witness(&mut self, bytes: &[u8]) {
        if let Ok(outcomes) = self.oracle.ingest_batch(&[bytes]) {
            for outcome in outcomes {
                match outcome {
                    Outcome::Accepted { id, .. } => {
                        self.valid.insert(id);
                    }
                    Outcome::Forked { id, author, .. } => {
                        self.valid.insert(id);
                        self.equivocators.insert(author);
                    }
                    Outcome::Rejected { id, error, .. } => {
                        self.refused.insert(id, error.to_string());
                    }
                    _ => {}
                }
            }
        }
    }

    fn now_ts(&self) -> Timestamp {
        EPOCH.plus_ms(self.now)
    }

    fn listing(&mut self, subject: u64) -> Listing {
        let effective_at = Timestamp(self.now_ts().0 - 100 * DAY_MS);
        Listing {
            subject: Subject {
                kind: SubjectKind::LegalPerson,
                id: testkit::uscc(subject),
                name: format!("Company {subject} Ltd."),
            },
            list: ListKind::Black,
            category: "food-drug".into(),
            severity: Severity::Serious,
            reason: "sold a recalled batch after an order to stop".into(),
            legal_basis: "Food Safety Law art. 123".into(),
            document_number: format!("SIM-{subject:06}"),
            measures: vec!["procurement-ban".into(), "more-inspections".into()],
            effective_at,
            publish_until: effective_at.plus_ms(365 * DAY_MS),
            share_until: effective_at.plus_ms(730 * DAY_MS),
            repair_from: effective_at.plus_ms(DAY_MS),
            classification: Classification::Public,
            evidence: Vec::new(),
            checksum_override: false,
        }
    }

    fn pick(&mut self, items: &[NoticeId]) -> Option<NoticeId> {
        (!items.is_empty()).then(|| items[self.rng.below(items.len() as u64) as usize])
    }

    /// A random id of one of a node's lists, without copying the list.
    fn pick_of(&mut self, node: usize, list: fn(&Node) -> &[NoticeId]) -> Option<NoticeId> {
        let len = list(&self.nodes[node]).len();
        (len > 0).then(|| {
            let i = self.rng.below(len as u64) as usize;
            list(&self.nodes[node])[i]
        })
    }

    /// What an authority decides to issue now, from what its own replica
    /// knows.
    fn choose(&mut self, node: usize) -> NoticeKind {
        let m = self.cfg.scenario.workload.mix.clone();
        let weights = [
            m.list, m.amend, m.object, m.rule, m.repair, m.withdraw, m.feedback,
        ];
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum::<u64>().max(1);
        let mut roll = self.rng.below(total);
        let mut choice = 0;
        for (i, w) in weights.iter().enumerate() {
            if roll < u64::from(*w) {
                choice = i;
                break;
            }
            roll -= u64::from(*w);
        }
        let now = self.now_ts();
        let own: fn(&Node) -> &[NoticeId] = |n| &n.own_listings;
        let known: fn(&Node) -> &[NoticeId] = |n| &n.known_listings;
        let objections: fn(&Node) -> &[NoticeId] = |n| &n.objections_to_mine;
        let kind = match choice {
            1 => self.pick_of(node, own).map(|listing| NoticeKind::Amend {
                listing,
                changes: vec![credence_protocol::model::ListingChange::Reason(
                    "corrected after review".into(),
                )],
            }),
            2 => self.pick_of(node, known).map(|listing| NoticeKind::Object {
                listing,
                grounds: "the company disputes the facts".into(),
                respond_by: now.plus_ms(testkit::OBJECTION_WINDOW_MS),
            }),
            3 => self
                .pick_of(node, objections)
                .map(|objection| NoticeKind::Rule {
                    objection,
                    outcome: if self.rng.chance(0.5) {
                        RulingOutcome::Rejected
                    } else {
                        RulingOutcome::Upheld(Remedy::Withdraw)
                    },
                    reason: "reviewed".into(),
                }),
            4 => self.pick_of(node, own).map(|listing| NoticeKind::Repair {
                listing,
                reason: "rectified".into(),
                evidence: Vec::new(),
            }),
            5 => self.pick_of(node, own).map(|listing| NoticeKind::Withdraw {
                listing,
                reason: "issued in error".into(),
                restore_reputation: true,
            }),
            6 if node != 0 => self
                .pick_of(node, known)
                .map(|listing| NoticeKind::Feedback {
                    listing,
                    measure: "procurement-ban".into(),
                    action: FeedbackAction::Applied,
                }),
            _ => None,
        };
        kind.unwrap_or_else(|| {
            let subject = self.rng.below(self.cfg.scenario.workload.subjects);
            NoticeKind::List(self.listing(subject))
        })
    }

    fn issue(&mut self, node: usize) {
        let mut kind = self.choose(node);
        let now = self.now_ts();
        let key = AuthorityKey::from_secret_bytes(self.nodes[node].key.secret_bytes());
        let mut issued = self.nodes[node].replica.issue(&key, kind.clone(), now);
        if issued.is_err() {
            // The choice was refused (already ruled, withdrawn, ...): list.
            let subject = self.rng.below(self.cfg.scenario.workload.subjects);
            kind = NoticeKind::List(self.listing(subject));
            issued = self.nodes[node].replica.issue(&key, kind.clone(), now);
        }
        let Ok(issued) = issued else {
            return;
        };
        let Some(envelope) = self.nodes[node].replica.store().envelope(&issued.id) else {
            return;
        };
        if matches!(kind, NoticeKind::List(_)) {
            self.nodes[node].own_listings.push(issued.id);
        }
        self.counters.issued += 1;
        self.issued_at.insert(issued.id, self.now);
        self.witness(&envelope.bytes);
        self.accepted(node, issued.id, None);
        // Flushed before it is published.
        let n = &mut self.nodes[node];
        n.flushed = n.log.len();
        let withhold = n.byzantine.contains(&Misbehaviour::Withhold);
        let mesh = n.mesh.clone();
        for (i, peer) in mesh.into_iter().enumerate() {
            if withhold && i % 2 == 1 {
                *self.counters.faults.entry("withheld").or_default() += 1;
                continue;
            }
            self.send(node, peer, Msg::Gossip(envelope.clone()));
        }
    }

    fn next_notice(&self, node: usize, kind: NoticeKind) -> (Notice, u64) {
        let author = AuthorityId(self.nodes[node].key.public_bytes());
        let head = self.nodes[node]
            .replica
            .store()
            .head(&author)
            .ok()
            .flatten();
        let (seq, prev, at) = head.map_or((1, NoticeId::default(), self.now_ts()), |h| {
            (h.seq + 1, h.id, h.issued_at.max(self.now_ts()))
        });
        let notice = Notice {
            version: NOTICE_VERSION,
            federation: self.oracle.federation().id(),
            author,
            seq,
            prev,
            issued_at: at,
            kind,
        };
        (notice, seq)
    }

    fn misbehave(&mut self, node: usize, behaviour: Misbehaviour) {
        if !self.nodes[node].up {
            return;
        }
        *self
            .counters
            .faults
            .entry(match behaviour {
                Misbehaviour::Forge => "byzantine_forge",
                Misbehaviour::Fork => "byzantine_fork",
                Misbehaviour::Replay => "byzantine_replay",
                Misbehaviour::UnauthorisedRepair => "byzantine_unauthorised_repair",
                Misbehaviour::Garbage => "byzantine_garbage",
                Misbehaviour::Withhold => "byzantine_withhold",
            })
            .or_default() += 1;
        let key = AuthorityKey::from_secret_bytes(self.nodes[node].key.secret_bytes());
        let mesh = self.nodes[node].mesh.clone();
        let mut messages: Vec<(Vec<usize>, Vec<u8>)> = Vec::new();
        match behaviour {
            Misbehaviour::Forge => {
                let subject = self.rng.below(self.cfg.scenario.workload.subjects);
                let listing = self.listing(subject);
                let (notice, _) = self.next_notice(node, NoticeKind::List(listing));
                let (_, mut bytes) = testkit::sign(&key, &notice);
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
                messages.push((mesh.clone(), bytes));
            }
            Misbehaviour::UnauthorisedRepair => {
                let own = self.nodes[node].own_listings.clone();
                let others: Vec<NoticeId> = self.nodes[node]
                    .known_listings
                    .iter()
                    .copied()
                    .filter(|l| !own.contains(l))
                    .collect();
                let Some(listing) = self.pick(&others) else {
                    return;
                };
                let (notice, _) = self.next_notice(
                    node,
                    NoticeKind::Repair {
                        listing,
                        reason: "paid".into(),
                        evidence: Vec::new(),
                    },
                );
                let (_, bytes) = testkit::sign(&key, &notice);
                messages.push((mesh.clone(), bytes));
            }
            Misbehaviour::Garbage => {
                let len = 16 + self.rng.below(600) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| self.rng.below(256) as u8).collect();
                messages.push((mesh.clone(), bytes));
            }
            Misbehaviour::Replay => {
                let log = &self.nodes[node].log;
                if log.is_empty() {
                    return;
                }
                let index = log[self.rng.below(log.len() as u64) as usize];
                let bytes = self.interner.borrow().get(index).bytes.to_vec();
                messages.push((mesh.clone(), bytes));
            }
            Misbehaviour::Fork => {
                let own = self.nodes[node].own_listings.clone();
                let Some(listing) = self.pick(&own) else {
                    return;
                };
                let change = |text: &str| NoticeKind::Amend {
                    listing,
                    changes: vec![credence_protocol::model::ListingChange::Reason(text.into())],
                };
                let (x, _) = self.next_notice(node, change("version one"));
                let (y, _) = self.next_notice(node, change("version two"));
                let (_, x) = testkit::sign(&key, &x);
                let (_, y) = testkit::sign(&key, &y);
                // It keeps one branch itself and shows each half of its
                // peers a different one.
                let _ = self.nodes[node].replica.ingest_batch(&[&x]);
                self.nodes[node].silenced = true;
                let half_a: Vec<usize> = mesh.iter().copied().step_by(2).collect();
                let mut half_b: Vec<usize> = mesh.iter().copied().skip(1).step_by(2).collect();
                if half_b.is_empty() {
                    let n = self.nodes.len() as u64;
                    let other = (self.rng.below(n - 1) as usize + node + 1) % n as usize;
                    half_b.push(other);
                }
                messages.push((half_a, x));
                messages.push((half_b, y));
            }
            Misbehaviour::Withhold => return,
        }
        for (peers, bytes) in messages {
            self.witness(&bytes);
            let envelope = Rc::new(Envelope::loose(bytes));
            for peer in peers {
                self.send(node, peer, Msg::Gossip(envelope.clone()));
            }
        }
    }

    fn honest_up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].byzantine.is_empty() && self.nodes[*i].up)
            .collect()
    }

    fn comparable_heads(&self, node: usize) -> Vec<(AuthorityId, u64, NoticeId)> {
        self.nodes[node]
            .replica
            .store()
            .heads()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| !self.equivocators.contains(&h.author))
            .map(|h| (h.author, h.seq, h.id))
            .collect()
    }

    /// Authors with a fork both of whose notices are valid, as seen by any
    /// honest replica.
    fn valid_forks(&self, honest: &[usize]) -> BTreeSet<AuthorityId> {
        let id = |b: &[u8]| NoticeId::from(credence_crypto::merkle::leaf_hash(b));
        let mut detected = BTreeSet::new();
        for &n in honest {
            for fork in self.nodes[n].replica.store().forks().unwrap_or_default() {
                if self.valid.contains(&id(&fork.first)) && self.valid.contains(&id(&fork.second)) {
                    detected.insert(fork.author);
                }
            }
        }
        detected
    }

    fn converged(&self) -> bool {
        let honest = self.honest_up();
        let Some(first) = honest.first() else {
            return true;
        };
        let heads = self.comparable_heads(*first);
        let forks = self.valid_forks(&honest);
        // Pending notices of an equivocator or of no valid history (a
        // Byzantine notice waiting for a predecessor that never comes) may
        // wait forever; other valid ones may not. Every valid fork must be
        // known everywhere.
        honest.iter().all(|i| {
            let replica = &self.nodes[*i].replica;
            let known: BTreeSet<AuthorityId> = replica.store().forks().unwrap_or_default().iter().map(|f| f.author).collect();
            self.comparable_heads(*i) == heads
                && forks.is_subset(&known)
                && replica.pending().iter().all(|(id, waiting)| {
                    !self.valid.contains(id)
                        || matches!(waiting, credence_protocol::replica::Waiting::Predecessor { author, .. } if self.equivocators.contains(author))
                })
        })
    }

    fn states(&self, node: usize) -> BTreeMap<NoticeId, ListingState> {
        let t = self.now_ts();
        let replica = &self.nodes[node].replica;
        let mut out = BTreeMap::new();
        for id in replica.store().listings().unwrap_or_default() {
            if let Ok(Some(state)) = replica.listing_state(&id, t)
                && !state
                    .history
                    .iter()
                    .any(|h| self.equivocators.contains(&h.author))
            {
                out.insert(id, state);
            }
        }
        out
    }

    fn final_checks(&mut self) {
        let honest = self.honest_up();
        let Some(&first) = honest.first() else { return };
        self.counters.checks += 1;
        // Equal listing states and task lists. Heads are compared on every
        // node; states, which cost a fold of every listing, on at most
        // STATE_CHECK_NODES_MAX nodes spread over the honest ones; task
        // lists, as each replica derives them, for TASK_CHECK_MEMBERS_MAX
        // implementing authorities, TASK_CHECK_MEMBERS_PER_NODE of them in
        // turn on each of those nodes, against the tasks the first node's
        // states give.
        let federation = self.oracle.federation().clone();
        let implementers: Vec<_> = federation
            .roster()
            .members
            .iter()
            .filter(|m| !m.implements.is_empty())
            .collect();
        let member_step = implementers.len().div_ceil(TASK_CHECK_MEMBERS_MAX).max(1);
        let checked_members: Vec<_> = implementers.into_iter().step_by(member_step).collect();
        let reference = self.states(first);
        let reference_tasks: Vec<Vec<Task>> = checked_members
            .iter()
            .map(|member| {
                let mut tasks: Vec<Task> = reference
                    .values()
                    .flat_map(|state| fold::tasks(state, &member.key, &member.implements))
                    .collect();
                tasks.sort();
                tasks
            })
            .collect();
        let step = honest.len().div_ceil(STATE_CHECK_NODES_MAX).max(1);
        let sampled: Vec<usize> = honest.iter().copied().step_by(step).collect();
        for (turn, node) in sampled.into_iter().enumerate() {
            self.counters.checks += 1;
            let states = self.states(node);
            if states != reference {
                let differing = reference
                    .keys()
                    .chain(states.keys())
                    .find(|id| reference.get(id) != states.get(id))
                    .copied();
                self.violate(
                    "equal_listing_states",
                    format!("node {node} and node {first} disagree on listing {differing:?}"),
                );
            }
            let t = self.now_ts();
            let members = checked_members.iter().zip(&reference_tasks);
            let first_member = turn * TASK_CHECK_MEMBERS_PER_NODE;
            for (member, expected) in members
                .cycle()
                .skip(first_member % checked_members.len().max(1))
                .take(TASK_CHECK_MEMBERS_PER_NODE.min(checked_members.len()))
            {
                let mut tasks: Vec<Task> = self.nodes[node]
                    .replica
                    .tasks(&member.key, t)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(task, _)| states.contains_key(&task.listing))
                    .map(|(task, _)| task)
                    .collect();
                tasks.sort();
                if tasks != *expected {
                    self.violate(
                        "equal_tasks",
                        format!(
                            "node {node} derives {} tasks for {}, node {first}'s states give {}",
                            tasks.len(),
                            member.name,
                            expected.len()
                        ),
                    );
                }
            }
        }
        let reference_heads = self.comparable_heads(first);
        for &node in &honest {
            self.counters.checks += 1;
            if self.comparable_heads(node) != reference_heads {
                self.violate(
                    "equal_heads",
                    format!("node {node} and node {first} hold different heads"),
                );
            }
        }
        // A fork that reached any honest replica is known to every honest
        // replica.
        let known_by: BTreeMap<usize, BTreeSet<AuthorityId>> = honest
            .iter()
            .map(|&n| {
                (
                    n,
                    self.nodes[n]
                        .replica
                        .store()
                        .forks()
                        .unwrap_or_default()
                        .iter()
                        .map(|f| f.author)
                        .collect(),
                )
            })
            .collect();
        // Forks whose two notices are both valid: evidence of a notice that
        // breaks a rule depends on which of the two a replica saw first.
        let detected = self.valid_forks(&honest);
        for &node in &honest {
            self.counters.checks += 1;
            let known = known_by.get(&node).cloned().unwrap_or_default();
            let equivocators: Vec<AuthorityId> = detected.iter().copied().collect();
            for author in &equivocators {
                if !known.contains(author) {
                    self.violate(
                        "every_fork_detected",
                        format!("node {node} has no evidence of the fork by {author}"),
                    );
                }
            }
            if let Some(bad) = self.nodes[node]
                .wrongly_accepted
                .iter()
                .find(|id| !self.valid.contains(id))
            {
                let detail = format!("node {node} holds invalid notice {bad}");
                self.violate("nothing_invalid_accepted", detail);
            }
        }
    }

    fn report(&self, looped: std::time::Duration, wall: std::time::Duration) -> Report {
        let mut latencies = self.latencies.clone();
        latencies.sort_unstable();
        let cfg = &self.cfg;
        let diameter = overlay_diameter(&self.nodes);
        Report {
            scenario: cfg.scenario.name.clone(),
            seed: cfg.seed,
            replay: format!(
                "cargo run --release -p credence-sim -- run --scenario {} --seed {}",
                cfg.scenario_path, cfg.seed
            ),
            trace_hash: format!("{:016x}", self.trace),
            passed: self.violations.is_empty(),
            violations: self.violations.clone(),
            nodes: cfg.scenario.nodes,
            notices_issued: self.counters.issued,
            virtual_ms: self.now,
            wall_ms: wall.as_secs_f64() * 1000.0,
            loop_ms: looped.as_secs_f64() * 1000.0,
            final_checks_ms: (wall - looped).as_secs_f64() * 1000.0,
            deliveries: self.counters.deliveries,
            deliveries_per_wall_s: self.counters.deliveries as f64 / looped.as_secs_f64().max(1e-9),
            messages: MSG_KINDS
                .iter()
                .zip(self.counters.messages)
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            bytes: self.counters.bytes,
            messages_per_notice: self.counters.messages.iter().sum::<u64>() as f64
                / self.counters.issued.max(1) as f64,
            bytes_per_notice: self.counters.bytes as f64 / self.counters.issued.max(1) as f64,
            duplicates: self.counters.duplicates,
            latency_p50_ms: percentile(&latencies, 50),
            latency_p99_ms: percentile(&latencies, 99),
            latency_max_ms: latencies.last().copied().unwrap_or(0),
            latencies_ms: latencies,
            convergence_after_faults_ms: self
                .converged_at
                .map(|t| t.saturating_sub(self.faults_end)),
            converge_bound_ms: self.converge_within,
            faults: self
                .counters
                .faults
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            invariant_checks: self.counters.checks,
            overlay_diameter: diameter,
            latency_bound_ms: diameter as u64 * self.latency.1,
            progress: self.progress.clone(),
            equivocators: self.equivocators.len(),
        }
    }
}

/// The longest shortest path of the mesh (BFS from every node).
fn overlay_diameter(nodes: &[Node]) -> usize {
    let mut diameter = 0;
    for start in 0..nodes.len() {
        let mut distance = vec![usize::MAX; nodes.len()];
        distance[start] = 0;
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(a) = queue.pop_front() {
            for &b in &nodes[a].mesh {
                if distance[b] == usize::MAX {
                    distance[b] = distance[a] + 1;
                    queue.push_back(b);
                }
            }
        }
        diameter = diameter.max(
            distance
                .iter()
                .copied()
                .filter(|d| *d != usize::MAX)
                .max()
                .unwrap_or(0),
        );
    }
    diameter
}

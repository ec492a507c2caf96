//! The discrete-event loop: a virtual clock, an event queue ordered by
//! `(time, sequence)`, one seeded RNG from which everything random is
//! derived, and N nodes each running the real node engine
//! (`credence_protocol::engine::Engine`), exactly as the daemon does: the
//! issuing gate, the sync schedule, the publication queue and the query
//! fan-out are the engine's, not the simulator's.
//!
//! The simulator itself is only the shell around the engines:
//! [`network`] models links and the gossip overlay, [`workload`] decides
//! what authorities issue and ask, [`byzantine`] what Byzantine members
//! send, and [`checks`] holds the reference replica and the invariants.

mod byzantine;
mod checks;
mod governance;
mod network;
mod workload;

use crate::queue::EventQueue;
use crate::report::Report;
use crate::scenario::{Misbehaviour, Scenario, ScenarioError, ms};
use crate::store::{Envelope, SharedInterner, SimStore};
use credence_protocol::engine::{
    Engine, EngineConfig, Input, Mark, Output, Publication, Reachable, Readiness, Verdict,
};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::replica::{CheckedNotice, NoticeMemo, Replica};
use credence_protocol::store::{ForkEvidence, Store};
use credence_protocol::testkit::{self, SplitMix64};
use credence_protocol::time::Timestamp;
use network::Msg;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Virtual time 0 is this wall-clock instant (2026-01-01), for notices.
pub const EPOCH: Timestamp = Timestamp(1_767_225_600_000);
/// A node's timer is not armed.
const NOT_ARMED: u64 = u64::MAX;
/// How often convergence is checked once the faults have stopped.
const CHECK_EVERY_MS: u64 = 1000;

/// A deliberately broken node, to prove the invariants can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// This node's replica treats a repair from a non-issuer as accepted.
    Replica(usize),
    /// This node's shell loses its own-log mark with its store, and tells
    /// the engine it signed nothing: after a store loss it signs the seqs
    /// it had signed again.
    Gate(usize),
}

/// How one run is set up.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// A deliberately broken node.
    pub broken: Option<Broken>,
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

enum Event {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
    },
    Issue(usize),
    Query(usize),
    Heartbeat(usize),
    /// The engine's timer, armed for this virtual time.
    Tick(usize, u64),
    Flush(usize),
    Crash(usize, u64),
    /// The store loss planned at this index.
    StoreLoss(usize),
    Restart(usize),
    Misbehave(usize, Misbehaviour),
    /// Roster change number this of the scenario.
    Govern(usize),
    /// A node's current roster version changed.
    RosterChanged(usize),
    Sample,
    Check,
}

/// A store loss as planned from the scenario.
struct LossPlan {
    node: usize,
    down: u64,
    alone: u64,
    mark_lost: bool,
    reachable: Vec<usize>,
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
    engine: Engine<SimStore>,
    author: AuthorityId,
    byzantine: Vec<Misbehaviour>,
    broken: Option<Broken>,
    mesh: Vec<usize>,
    others: Vec<usize>,
    /// Ids to announce at the next heartbeat.
    recent: Vec<NoticeId>,
    /// Fork evidence this node forwarded (the second notice of a fork is
    /// kept as evidence, not in the log), to answer requests for it.
    evidence: FxHashMap<NoticeId, Rc<Envelope>>,
    /// Hashes of the witness messages seen (gossipsub drops a message it
    /// has seen before validating it).
    witness_seen: rustc_hash::FxHashSet<u64>,
    /// Accepted envelopes in arrival order (as interned), and how many
    /// are flushed.
    log: Vec<u32>,
    flushed: usize,
    /// The fork evidence in the store at the last flush.
    flushed_forks: Vec<ForkEvidence>,
    /// The own-log mark as durably written (it survives a crash and, unless
    /// the scenario says otherwise, a store loss).
    mark: Option<Mark>,
    /// The virtual time the engine's timer is armed for.
    next_tick: u64,
    /// Cut from every peer until then (store loss with every peer away),
    /// but for these.
    isolated_until: u64,
    reachable: Vec<usize>,
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
    /// Own notices the engine acknowledged.
    acknowledged: Vec<NoticeId>,
    /// Queries asked and not answered yet (ticket → virtual deadline and
    /// the members of the roster the query went out under).
    queries: BTreeMap<u64, (u64, usize)>,
    /// The key a roster version rotates this node to: it restarts under it
    /// once its replica has that version.
    next_key: Option<credence_crypto::AuthorityKey>,
    /// Whether it issues again once restarted under its next key.
    resume_issuing: bool,
    /// The roster versions in the store at the last flush.
    flushed_rosters: Vec<credence_protocol::governance::SignedVersion>,
    /// The witness's checkpoint notes in the store at the last flush.
    flushed_checkpoints: Vec<credence_protocol::store::CheckpointNotes>,
}

impl Node {
    /// Makes what the node holds durable: its log, fork evidence, roster
    /// versions and checkpoint notes survive the next crash.
    fn flush(&mut self) {
        self.flushed = self.log.len();
        let Ok(forks) = self.engine.replica().store().forks();
        self.flushed_forks = forks;
        let Ok(checkpoints) = self.engine.replica().store().checkpoint_notes();
        self.flushed_checkpoints = checkpoints;
        self.flushed_rosters = self
            .engine
            .replica()
            .chain()
            .signed_versions()
            .iter()
            .map(|v| (**v).clone())
            .collect();
    }
}

/// Counters of one run.
#[derive(Default, Debug, Clone)]
pub struct Counters {
    /// Messages sent, by kind (see `network::MSG_KINDS`).
    pub messages: [u64; network::MSG_KINDS.len()],
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
    /// Issue requests the engine refused because it does not issue now.
    pub issue_refused: u64,
    /// Queries asked, answered (with how many answers in all).
    pub queries: u64,
    /// Queries completed.
    pub queries_done: u64,
    /// Answers merged into completed queries.
    pub query_answers: u64,
    /// Answers rejected by their requester's checks.
    pub query_rejections: u64,
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
    /// Which nodes are up, apart from the nodes: checked at every
    /// delivery, it stays in cache.
    up: Vec<bool>,
    /// Authority → node.
    index: BTreeMap<AuthorityId, usize>,
    oracle: Replica<SimStore>,
    interner: SharedInterner,
    memo: Arc<Memo>,
    engine_config: EngineConfig,
    valid: BTreeSet<NoticeId>,
    refused: BTreeMap<NoticeId, String>,
    equivocators: BTreeSet<AuthorityId>,
    /// Notices valid when signed that a key revocation cut back since: a
    /// replica may hold them pending for a while, and none keeps them.
    cut_back: BTreeSet<NoticeId>,
    /// Per revocation with a thief: the last own seq its operator stated
    /// and the notices the thief signed (ids and seqs), until the
    /// revocation is made.
    thefts: BTreeMap<usize, (u64, Vec<(NoticeId, u64)>)>,
    /// The split views Byzantine authors showed (author and size), and
    /// whether each of the two notes reached an honest node (only then can
    /// the pair be found).
    split_views_sent: BTreeMap<(AuthorityId, u64), [bool; 2]>,
    /// The split-view messages sent: hash to author, size and which note.
    split_messages: FxHashMap<u64, (AuthorityId, u64, usize)>,
    /// Ids of the forged answers lying responders sent.
    lies: BTreeSet<[u8; 32]>,
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
    flush_interval: u64,
    workload_end: u64,
    faults_end: u64,
    converge_within: u64,
    converged_at: Option<u64>,
    partitions: Vec<(u64, u64, Vec<bool>, bool)>,
    spikes: Vec<(u64, u64, u64)>,
    reorder_delay: u64,
    next_ticket: u64,
    losses: Vec<LossPlan>,
    /// The gossip envelope being delivered (its verdict forwards it).
    current: Option<Rc<Envelope>>,
    /// The witness message being delivered (forwarded when accepted).
    current_witness: Option<Rc<[u8]>>,
    /// The peer and token of the request being answered.
    answering: Option<(usize, u64)>,
    /// Every node's member in the full test roster (those a roster change
    /// adds included).
    full: credence_protocol::roster::Federation,
    /// Each node's member id (the key it joined with).
    member_ids: Vec<AuthorityId>,
    /// Each member's current key, to sign roster versions with.
    keys: BTreeMap<AuthorityId, credence_crypto::AuthorityKey>,
    /// Nodes a roster version removed.
    removed: BTreeSet<usize>,
    /// While an issue request runs: whether it is a new listing.
    issuing: Option<bool>,
    /// The engine's refusal of the last issue request.
    refusal: Option<Result<(), credence_protocol::engine::Refusal>>,
}

fn mix(state: u64, value: u64) -> u64 {
    // FNV-1a over the value's bytes: a cheap running trace hash.
    let mut h = state;
    for b in value.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
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
        let added: Vec<AuthorityId> = s
            .governance
            .iter()
            .filter(|c| c.change == crate::scenario::ChangeKind::Add)
            .map(|c| test.author(c.node))
            .collect();
        let genesis = governance::genesis(&test.federation, &added);
        let memo: Arc<Memo> = Arc::new(Memo::default());
        let interner = SharedInterner::default();
        let sync_interval = ms("sync_interval", &s.protocol.sync_interval)?.max(4);
        let engine_config = EngineConfig {
            sync_interval_ms: sync_interval,
            // A request or answer lost on the way ends the session after a
            // timeout, as a request-response timeout does on a node.
            sync_timeout_ms: 2 * sync_interval,
            sync_peers_per_round: 1,
            sync_on_connect: false,
            reachable: Reachable::Roster,
            bulk_ingest: false,
            checkpoints: s.protocol.checkpoints,
            ..EngineConfig::default()
        };
        let mut nodes = Vec::with_capacity(s.nodes);
        for (i, key) in test.keys.iter().enumerate() {
            let broken = cfg
                .broken
                .filter(|b| matches!(b, Broken::Replica(n) | Broken::Gate(n) if *n == i));
            let replica = Replica::new(genesis.clone(), SimStore::new(interner.clone()))
                .with_notice_memo(memo.clone());
            let author = AuthorityId(key.public_bytes());
            let engine = Engine::new(
                engine_config.clone(),
                replica,
                credence_crypto::AuthorityKey::from_secret_bytes(key.secret_bytes()),
                Some(Mark::zero()),
                rng.0.next_u64(),
                EPOCH,
            );
            nodes.push(Node {
                engine,
                author,
                byzantine: Vec::new(),
                broken,
                mesh: Vec::new(),
                others: Vec::new(),
                recent: Vec::new(),
                evidence: FxHashMap::default(),
                witness_seen: Default::default(),
                log: Vec::new(),
                flushed: 0,
                flushed_forks: Vec::new(),
                mark: Some(Mark::zero()),
                next_tick: NOT_ARMED,
                isolated_until: 0,
                reachable: Vec::new(),
                silenced: false,
                issues: i < s.authorities && !added.contains(&author),
                known_listings: Vec::new(),
                own_listings: Vec::new(),
                objections_to_mine: Vec::new(),
                wrongly_accepted: BTreeSet::new(),
                acknowledged: Vec::new(),
                queries: BTreeMap::new(),
                next_key: None,
                resume_issuing: false,
                flushed_rosters: Vec::new(),
                flushed_checkpoints: Vec::new(),
            });
        }
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.author, i))
            .collect();
        network::build_mesh(&mut nodes, s.degree, &mut rng);
        for b in &s.faults.byzantine {
            nodes[b.node].byzantine = b.behaviours.clone();
            nodes[b.node].issues = true;
        }
        let oracle = Replica::new(genesis.clone(), SimStore::new(interner.clone()))
            .with_notice_memo(memo.clone());
        let member_ids: Vec<AuthorityId> = (0..s.nodes).map(|i| test.author(i)).collect();
        let keys = test
            .keys
            .iter()
            .map(|k| {
                (
                    AuthorityId(k.public_bytes()),
                    credence_crypto::AuthorityKey::from_secret_bytes(k.secret_bytes()),
                )
            })
            .collect();
        let up: Vec<bool> = member_ids.iter().map(|id| !added.contains(id)).collect();
        let n = s.nodes;
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
        let mut losses = Vec::new();
        for loss in &s.faults.store_losses {
            let at = ms("at", &loss.at)?;
            let down = ms("down_for", &loss.down_for)?;
            let alone = loss
                .isolated_for
                .as_deref()
                .map(|d| ms("isolated_for", d))
                .transpose()?
                .unwrap_or(0);
            faults_end = faults_end.max(at + down + alone);
            losses.push((
                at,
                LossPlan {
                    node: loss.node,
                    down,
                    alone,
                    mark_lost: loss.mark_lost,
                    reachable: loss.reachable.clone(),
                },
            ));
        }
        let mut sim = Sim {
            latency: (
                ms("latency_min", &s.links.latency_min)?,
                ms("latency_max", &s.links.latency_max)?,
            ),
            bandwidth: s.links.bandwidth_bytes_per_s.max(1),
            heartbeat: ms("heartbeat", &s.protocol.heartbeat)?.max(1),
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
            up,
            nodes,
            index,
            oracle,
            interner,
            memo,
            engine_config,
            valid: BTreeSet::new(),
            refused: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            cut_back: BTreeSet::new(),
            thefts: BTreeMap::new(),
            split_views_sent: BTreeMap::new(),
            split_messages: FxHashMap::default(),
            lies: BTreeSet::new(),
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
            next_ticket: 0,
            losses: Vec::new(),
            current: None,
            current_witness: None,
            answering: None,
            full: test.federation.clone(),
            member_ids,
            keys,
            removed: BTreeSet::new(),
            issuing: None,
            refusal: None,
        };
        let authorities = sim.cfg.scenario.authorities;
        for i in 0..n {
            let phase = sim.rng.below(sim.heartbeat);
            sim.schedule(phase, Event::Heartbeat(i));
            sim.arm(i);
            let phase = sim.rng.below(sim.flush_interval);
            sim.schedule(phase, Event::Flush(i));
        }
        for i in 0..authorities {
            let first = sim.issue_gap();
            sim.schedule(first, Event::Issue(i));
        }
        let queries = sim.cfg.scenario.workload.queries;
        // Asked early enough that each is answered or timed out before the
        // faults stop and convergence is checked.
        let ask_until = sim
            .workload_end
            .saturating_sub(workload::QUERY_DEADLINE_MS)
            .max(1);
        for _ in 0..queries {
            let at = sim.rng.below(ask_until);
            let node = sim.rng.below(authorities as u64) as usize;
            sim.schedule(at, Event::Query(node));
        }
        for (at, node, down) in crashes {
            sim.schedule(at, Event::Crash(node, down));
        }
        for (i, (at, plan)) in losses.into_iter().enumerate() {
            sim.schedule(at, Event::StoreLoss(i));
            sim.losses.push(plan);
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
        sim.schedule_governance()?;
        sim.schedule(0, Event::Sample);
        sim.schedule(sim.faults_end, Event::Check);
        Ok(sim)
    }

    /// The mesh peers of a node.
    pub fn mesh(&self, node: usize) -> &[usize] {
        &self.nodes[node].mesh
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

    fn now_ts(&self) -> Timestamp {
        EPOCH.plus_ms(self.now)
    }

    /// Arms node `i`'s timer for the engine's next wakeup, unless an
    /// earlier one is already armed.
    fn arm(&mut self, i: usize) {
        // A wakeup already due fires at this instant, after what is queued
        // for it: a deadline is never passed by a tick that comes late.
        let wake = self.nodes[i]
            .engine
            .next_wakeup()
            .0
            .saturating_sub(EPOCH.0)
            .max(self.now);
        let armed = self.nodes[i].next_tick;
        if armed == NOT_ARMED || wake < armed {
            self.nodes[i].next_tick = wake;
            self.schedule(wake - self.now, Event::Tick(i, wake));
        }
    }

    /// Feeds one input to node `i`'s engine and carries out what it says.
    fn feed(&mut self, i: usize, input: Input<'_>, source: Option<usize>) {
        // Gossip never moves the engine's timers (sync rounds, sessions,
        // query deadlines): its deliveries, most of all, skip re-arming.
        let rearm = !matches!(input, Input::Gossip { .. });
        let now = self.now_ts();
        let outputs = self.nodes[i].engine.handle(input, now);
        self.carry_out(i, outputs, source, rearm);
    }

    /// Carries out an engine's outputs at node `i`; `source` is the peer a
    /// request or gossip message came from.
    fn carry_out(&mut self, i: usize, outputs: Vec<Output>, source: Option<usize>, rearm: bool) {
        // Outputs in order; what a follow-up input gives comes after the
        // whole batch, as from a queue (most deliveries have none).
        let mut later: Vec<Vec<Output>> = Vec::new();
        let mut next = 0;
        let mut batch = outputs;
        loop {
            for output in batch {
                self.carry_out_one(i, output, source, &mut later);
            }
            if next == later.len() {
                break;
            }
            batch = std::mem::take(&mut later[next]);
            next += 1;
        }
        if self.nodes[i].engine.has_deferred() {
            // Work deferred until this turn's requests have left.
            let now = self.now_ts();
            let more = self.nodes[i].engine.handle(Input::RunDeferred, now);
            self.carry_out(i, more, source, rearm);
            return;
        }
        if rearm {
            self.arm(i);
        }
    }

    /// Carries out one output; a follow-up input's outputs go to `later`.
    fn carry_out_one(
        &mut self,
        i: usize,
        output: Output,
        source: Option<usize>,
        later: &mut Vec<Vec<Output>>,
    ) {
        {
            let follow = match output {
                Output::Verdict { verdict, .. } => {
                    if verdict == Verdict::Accept {
                        match self.current_witness.clone() {
                            Some(bytes) => self.forward_witness(i, &bytes, source),
                            None => self.forward(i, source),
                        }
                    }
                    None
                }
                Output::PublishCheckpoint { bytes } => {
                    self.forward_witness(i, &Rc::from(bytes), None);
                    None
                }
                Output::RosterChanged { .. } => {
                    self.schedule(0, Event::RosterChanged(i));
                    None
                }
                // The simulated overlay admits every member of the
                // scenario's roster; governance answers go nowhere.
                Output::Governed { .. } => None,
                Output::Accepted { id, author, .. } => {
                    self.accepted(i, id, author);
                    None
                }
                Output::Forked { id, .. } => {
                    // Forwarded evidence is announced like any message.
                    if let Some(envelope) = self.current.clone().filter(|e| e.id == id) {
                        let n = &mut self.nodes[i];
                        n.evidence.insert(id, envelope);
                        n.recent.push(id);
                    }
                    None
                }
                Output::Publish { id, envelope } => {
                    self.publish(i, id, &envelope);
                    Some(Input::Published {
                        id,
                        result: Publication::Sent,
                    })
                }
                Output::SendSync { peer, token, bytes } => {
                    let to = self.index[&peer];
                    self.send(i, to, Msg::SyncRequest(token, bytes));
                    None
                }
                Output::ReadRanges { reply, ranges } => {
                    let store = self.nodes[i].engine.replica().store();
                    Some(Input::RangesRead {
                        reply,
                        result: credence_protocol::sync::read_ranges(store, &ranges),
                    })
                }
                Output::AnswerSync { bytes, .. } => {
                    if let (Some(bytes), Some((to, token))) = (bytes, self.answering) {
                        self.send(i, to, Msg::SyncResponse(token, bytes));
                    }
                    None
                }
                Output::SendQuery { peer, token, bytes } => {
                    let to = self.index[&peer];
                    self.send(i, to, Msg::QueryRequest(token, bytes));
                    None
                }
                Output::AnswerQuery { bytes, .. } => {
                    if let (Some(mut bytes), Some((to, token))) = (bytes, self.answering) {
                        if self.nodes[i]
                            .byzantine
                            .contains(&crate::scenario::Misbehaviour::Lie)
                            && let Some(forged) = self.lie(i, &bytes)
                        {
                            bytes = forged;
                        }
                        self.send(i, to, Msg::QueryResponse(token, bytes));
                    }
                    None
                }
                Output::Persist { mark } => {
                    let seq = mark.seq;
                    let n = &mut self.nodes[i];
                    // The mark, then the store: everything accepted so far
                    // is durable.
                    n.mark = Some(*mark);
                    n.flushed = n.log.len();
                    Some(Input::Persisted { seq })
                }
                Output::Issued { result, .. } => {
                    self.issued(i, result.map_err(|refusal| *refusal));
                    None
                }
                Output::QueryDone { ticket, result } => {
                    self.query_done(i, ticket, *result);
                    None
                }
                Output::Readiness(readiness) => {
                    if readiness != Readiness::Ready {
                        *self
                            .counters
                            .faults
                            .entry(match readiness {
                                Readiness::Restoring { .. } => "gate_restoring",
                                Readiness::Recovering { .. } => "gate_recovering",
                                Readiness::Forked { .. } => "gate_forked",
                                _ => "gate_halted",
                            })
                            .or_default() += 1;
                    }
                    None
                }
                Output::Record(_)
                | Output::Dial { .. }
                | Output::DialPeer { .. }
                | Output::Disconnect { .. }
                | Output::Log { .. } => None,
            };
            if let Some(input) = follow {
                let now = self.now_ts();
                later.push(self.nodes[i].engine.handle(input, now));
            }
        }
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
            let detail = self.divergence();
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
                if !self.up[to] {
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
                    if self.up[node] && !self.nodes[node].silenced {
                        self.issue(node);
                    }
                    let gap = self.issue_gap();
                    self.schedule(gap, Event::Issue(node));
                }
            }
            Event::Query(node) => {
                // A member removed asks nothing more: nobody would answer.
                if self.up[node]
                    && self.nodes[node].byzantine.is_empty()
                    && !self.removed.contains(&node)
                {
                    self.ask(node);
                }
            }
            Event::Heartbeat(node) => {
                if self.up[node] {
                    self.heartbeat(node);
                }
                let next = self.heartbeat;
                self.schedule(next, Event::Heartbeat(node));
            }
            Event::Tick(node, at) => {
                if self.up[node] && self.nodes[node].next_tick == at {
                    self.nodes[node].next_tick = NOT_ARMED;
                    self.feed(node, Input::Tick, None);
                }
            }
            Event::Flush(node) => {
                self.nodes[node].flush();
                let next = self.flush_interval;
                self.schedule(next, Event::Flush(node));
            }
            Event::Crash(node, down) => {
                *self.counters.faults.entry("crash").or_default() += 1;
                self.go_down(node);
                self.schedule(down, Event::Restart(node));
            }
            Event::StoreLoss(plan) => {
                *self.counters.faults.entry("store_loss").or_default() += 1;
                let LossPlan {
                    node,
                    down,
                    alone,
                    mark_lost,
                    ref reachable,
                } = self.losses[plan];
                let reachable = reachable.clone();
                self.go_down(node);
                let n = &mut self.nodes[node];
                n.log.clear();
                n.flushed = 0;
                n.flushed_forks.clear();
                n.flushed_checkpoints.clear();
                n.isolated_until = self.now + down + alone;
                n.reachable = reachable;
                // A broken shell forgets its mark with the store.
                if mark_lost || matches!(n.broken, Some(Broken::Gate(_))) {
                    n.mark = None;
                }
                self.schedule(down, Event::Restart(node));
            }
            Event::Restart(node) => self.restart(node),
            Event::Misbehave(node, behaviour) => self.misbehave(node, behaviour),
            Event::Govern(index) => self.govern(index),
            Event::RosterChanged(node) => self.roster_changed(node),
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

    fn go_down(&mut self, node: usize) {
        self.up[node] = false;
        let n = &mut self.nodes[node];
        n.recent.clear();
        n.evidence.clear();
        // Queries in flight die with the process that asked them.
        n.queries.clear();
    }

    /// A node comes back: volatile state is gone; the flushed store and
    /// the mark come back, and a fresh engine starts over them.
    fn restart(&mut self, node: usize) {
        let federation = self.oracle.chain().genesis().federation.clone();
        let flushed: Vec<u32> = {
            let n = &self.nodes[node];
            n.log[..n.flushed].to_vec()
        };
        let mut replica = Replica::new(federation, SimStore::new(self.interner.clone()))
            .with_notice_memo(self.memo.clone());
        for signed in self.nodes[node].flushed_rosters.clone() {
            let _ = replica.add_roster_version(signed);
        }
        let envelopes: Vec<Rc<Envelope>> = {
            let interner = self.interner.borrow();
            flushed.iter().map(|i| interner.get(*i)).collect()
        };
        let slices: Vec<&[u8]> = envelopes.iter().map(|e| &*e.bytes).collect();
        // Orphans came before what refers to them: offered again.
        let result = replica
            .ingest_batch(&slices)
            .and_then(|_| replica.offer_wanted(&slices));
        for fork in &self.nodes[node].flushed_forks {
            let _ = replica.store_mut().put_fork(fork);
        }
        for (author, notes) in &self.nodes[node].flushed_checkpoints {
            let _ = replica.store_mut().put_checkpoint_notes(author, notes);
        }
        let mut lost = Vec::new();
        if result.is_ok() {
            for envelope in &envelopes {
                if !replica.store().holds_envelope(envelope) {
                    lost.push(envelope.id);
                }
            }
        } else {
            lost.push(NoticeId::default());
        }
        let seed = self.rng.0.next_u64();
        let now = self.now_ts();
        let n = &mut self.nodes[node];
        // Restarted under its next key once a roster version made it
        // current.
        let key = match n.next_key.take() {
            Some(next)
                if replica
                    .chain()
                    .current()
                    .member_of_key(&AuthorityId(next.public_bytes()))
                    .is_some() =>
            {
                n.silenced = !n.resume_issuing;
                next
            }
            other => {
                n.next_key = other;
                credence_crypto::AuthorityKey::from_secret_bytes(n.engine.key().secret_bytes())
            }
        };
        // The broken shell tells the engine it signed nothing.
        let mark = match n.broken {
            Some(Broken::Gate(_)) => n.mark.clone().or(Some(Mark::zero())),
            _ => n.mark.clone(),
        };
        n.engine = Engine::new(self.engine_config.clone(), replica, key, mark, seed, now);
        n.log = flushed;
        n.flushed = n.log.len();
        self.up[node] = true;
        n.next_tick = NOT_ARMED;
        // A notice a key revocation cut back is rightly gone.
        lost.retain(|id| !self.cut_back.contains(id));
        for id in lost {
            self.violate(
                "no_flushed_notice_lost",
                format!("node {node} lost flushed notice {id} across a crash"),
            );
        }
        self.arm(node);
    }
}

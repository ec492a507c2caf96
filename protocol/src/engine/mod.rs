//! The node engine: every decision a node makes, as one sans-IO state
//! machine that the daemon and the simulator both drive.
//!
//! [`Engine::handle`] takes what happened ([`Input`]: a peer connected,
//! gossip or a sync or query message arrived, the operator asked to issue,
//! the store made a notice durable, a timer fired) at a time the caller
//! gives, and returns what to do ([`Output`]: report a gossip verdict,
//! publish, send a request or an answer, make the own-log mark durable,
//! answer the operator, dial, log). The engine owns the replica and the
//! per-peer state: the gossip verdict, the per-peer sync schedule with its
//! offer and pull back, the issuing gate ([`gate`]), the publication queue,
//! the query fan-out with its deadline and merge, and dial backoff.
//!
//! The engine never reads a clock and never draws from an OS random
//! source: `now` comes with every input and its randomness (sync jitter,
//! query nonces) from the seed it was built with, so the simulator replays
//! it exactly.
//!
//! ```
//! use credence_protocol::engine::{Engine, EngineConfig, Input, Mark, Output, Readiness};
//! use credence_protocol::replica::Replica;
//! use credence_protocol::store::MemStore;
//! use credence_protocol::{testkit, Timestamp};
//!
//! let test = testkit::federation(1, 3);
//! let key = credence_crypto::AuthorityKey::from_secret_bytes(test.keys[0].secret_bytes());
//! let replica = Replica::new(test.federation.clone(), MemStore::new());
//! let now = Timestamp(1_780_000_000_000);
//! // A node whose mark says it signed nothing issues at once.
//! let mut engine = Engine::new(EngineConfig::default(), replica, key, Some(Mark::zero()), 7, now);
//! assert_eq!(engine.readiness(), &Readiness::Ready);
//! let listing = testkit::listing(1, "food-drug", now);
//! let out = engine.handle(
//!     Input::Issue { ticket: 1, kind: Box::new(credence_protocol::NoticeKind::List(listing)) },
//!     now,
//! );
//! // The notice is signed and stored; the mark must be made durable
//! // before it is acknowledged or published.
//! let Some(Output::Persist { mark }) = out.first() else { panic!("{out:?}") };
//! assert_eq!(mark.seq, 1);
//! let out = engine.handle(Input::Persisted { seq: 1 }, now);
//! assert!(out.iter().any(|o| matches!(o, Output::Issued { ticket: 1, result: Ok(_) })));
//! assert!(out.iter().any(|o| matches!(o, Output::Publish { .. })));
//! ```

pub mod gate;
mod governance;
mod query;
pub mod witnessing;

pub use gate::{Mark, Readiness};
pub use governance::{
    GovernanceAnswer, GovernanceCommand, PROPOSALS_MAX, PROPOSALS_PER_SIGNER_MAX,
};
pub use query::{Answered, Direction, QueryAsk, QueryResult, QueryScope, RegisterEntry};
pub use witnessing::{Conflict, HeldCheckpoint, LogCheckpoints};

use crate::codec;
use crate::model::{AuthorityId, NoticeId, NoticeKind};
use crate::replica::{IssueError, Outcome, PENDING_TTL_MS, Replica};
use crate::store::Store;
use crate::sync::{self, HeadEntry, SyncRequest, SyncResponse, SyncSession};
use crate::testkit::SplitMix64;
use crate::time::Timestamp;
use crate::validate::{self, ValidationError};
use credence_crypto::AuthorityKey;
use gate::Gate;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Own notices waiting for a subscribed peer before they are published
/// (sync carries whatever falls off).
pub const PUBLISH_QUEUE_MAX: usize = 10_000;
/// Concurrent federation-wide queries.
pub const FANOUTS_MAX: usize = 256;
/// Longest a federation-wide query waits for answers.
pub const QUERY_DEADLINE_MAX_MS: u64 = 30_000;
/// Default wait of a federation-wide query.
pub const QUERY_DEADLINE_DEFAULT_MS: u64 = 5_000;
/// Own notices signed and waiting to be made durable.
pub const UNDURABLE_MAX: usize = 1024;
/// Dial targets (roster addresses and bootstrap peers).
pub const DIAL_TARGETS_MAX: usize = 4096;
/// Sync and query requests a peer may send per second, on average (a
/// catch-up of a million notices takes about 2,000 range requests).
pub const PEER_REQUESTS_PER_S: u64 = 500;
/// Requests a peer may send at once, past its average.
pub const PEER_REQUEST_BURST: u64 = 1_000;

/// Which peers the engine may talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachable {
    /// Only peers the shell reported connected (the daemon).
    Connected,
    /// Every other roster member (the simulator's network opens a stream
    /// to any member on demand).
    Roster,
}

/// Tuning of an engine; [`EngineConfig::default`] is the daemon's.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Period of anti-entropy rounds (jittered by a quarter).
    pub sync_interval_ms: u64,
    /// A session whose peer has not answered for this long ends.
    pub sync_timeout_ms: u64,
    /// Peers synced with per round (`usize::MAX`: every reachable one).
    pub sync_peers_per_round: usize,
    /// Start a session with a peer as soon as it connects.
    pub sync_on_connect: bool,
    /// Which peers exist for sync and queries.
    pub reachable: Reachable,
    /// Ingest sync batches with [`Replica::ingest_all`] (a second thread
    /// checks signatures) rather than [`Replica::ingest_batch`].
    pub bulk_ingest: bool,
    /// First dial backoff.
    pub dial_backoff_min_ms: u64,
    /// Longest dial backoff.
    pub dial_backoff_max_ms: u64,
    /// Sign own checkpoints, witness the other members' and exchange them
    /// ([`witnessing`]).
    pub checkpoints: bool,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            sync_interval_ms: 30_000,
            sync_timeout_ms: 60_000,
            sync_peers_per_round: usize::MAX,
            sync_on_connect: true,
            reachable: Reachable::Connected,
            bulk_ingest: true,
            dial_backoff_min_ms: 1_000,
            dial_backoff_max_ms: 30_000,
            checkpoints: true,
        }
    }
}

/// Where an accepted notice came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// Signed here.
    Local,
    /// Gossip.
    Gossip,
    /// Anti-entropy sync.
    Sync,
}

impl Via {
    /// Every path, in the order of [`Via::index`].
    pub const ALL: [Via; 3] = [Via::Local, Via::Gossip, Via::Sync];

    /// Its place in [`Counters::accepted`].
    pub fn index(self) -> usize {
        match self {
            Via::Local => 0,
            Via::Gossip => 1,
            Via::Sync => 2,
        }
    }

    /// Its name, for counters.
    pub fn name(self) -> &'static str {
        match self {
            Via::Local => "local",
            Via::Gossip => "gossip",
            Via::Sync => "sync",
        }
    }
}

/// What to tell gossip of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid (or fork evidence, which must travel): forward it.
    Accept,
    /// Invalid: drop it and count it against the sender.
    Reject,
    /// Duplicate or undecided: drop it, no penalty.
    Ignore,
}

/// How a publication went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publication {
    /// Handed to the gossip layer (or already there).
    Sent,
    /// No peer has subscribed yet: try again later.
    NoPeers,
    /// Failed for good; sync will carry the notice.
    Failed,
}

/// A log line the shell writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Routine.
    Info,
    /// Worth a look.
    Warn,
    /// An operator must act.
    Error,
}

/// What happened.
#[derive(Debug)]
pub enum Input<'a> {
    /// A timer fired (at least at [`Engine::next_wakeup`]; extra ticks are
    /// harmless).
    Tick,
    /// A member connected; `target` is the dial target that reached it.
    Connected {
        /// The member.
        peer: AuthorityId,
        /// The dial target, when this side dialled.
        target: Option<usize>,
    },
    /// A member's last connection closed.
    Disconnected {
        /// The member.
        peer: AuthorityId,
    },
    /// A connection was refused: from outside the roster, or past the
    /// connection limits.
    Refused {
        /// Past a connection limit (else: not a member).
        over_limit: bool,
    },
    /// A member was discovered on the local network.
    Discovered {
        /// The member.
        peer: AuthorityId,
    },
    /// A gossip message.
    Gossip {
        /// The peer that forwarded it.
        from: AuthorityId,
        /// The shell's handle for the verdict.
        message: u64,
        /// The notice id of the bytes ([`NoticeId`]'s leaf hash), computed
        /// by the shell from these very bytes.
        id: NoticeId,
        /// The envelope.
        bytes: &'a [u8],
    },
    /// A witness gossip message (checkpoint topic).
    WitnessGossip {
        /// The peer that forwarded it.
        from: AuthorityId,
        /// The shell's handle for the verdict.
        message: u64,
        /// The encoded [`crate::checkpoint::wire::WitnessMessage`].
        bytes: &'a [u8],
    },
    /// A peer subscribed to the topic: publication may go on.
    Subscribed,
    /// What became of an [`Output::Publish`].
    Published {
        /// The notice.
        id: NoticeId,
        /// How it went.
        result: Publication,
    },
    /// A sync request from a peer.
    SyncRequest {
        /// The peer.
        peer: AuthorityId,
        /// The shell's handle for the answer.
        reply: u64,
        /// The encoded request.
        bytes: &'a [u8],
    },
    /// A peer's answer to an [`Output::SendSync`].
    SyncResponse {
        /// The peer.
        peer: AuthorityId,
        /// The request's token.
        token: u64,
        /// The encoded response.
        bytes: &'a [u8],
    },
    /// The notices an [`Output::ReadRanges`] asked for, encoded as a sync
    /// response by [`sync::read_ranges`] (or what stopped it).
    RangesRead {
        /// The shell's handle of the request.
        reply: u64,
        /// The encoded response.
        result: Result<Vec<u8>, String>,
    },
    /// An [`Output::SendSync`] got no answer.
    SyncFailed {
        /// The peer.
        peer: AuthorityId,
        /// The request's token.
        token: u64,
        /// Why (`timeout`, `closed`, `dial`, ...).
        reason: &'static str,
    },
    /// A query from a peer.
    QueryRequest {
        /// The peer.
        peer: AuthorityId,
        /// The shell's handle for the answer.
        reply: u64,
        /// The encoded signed request.
        bytes: &'a [u8],
    },
    /// A peer's answer to an [`Output::SendQuery`].
    QueryResponse {
        /// The peer.
        peer: AuthorityId,
        /// The request's token.
        token: u64,
        /// The encoded signed answer.
        bytes: &'a [u8],
    },
    /// An [`Output::SendQuery`] got no answer.
    QueryFailed {
        /// The peer.
        peer: AuthorityId,
        /// The request's token.
        token: u64,
        /// Why.
        reason: &'static str,
    },
    /// The operator acts on the roster chain.
    Govern {
        /// The shell's handle for the answer.
        ticket: u64,
        /// What to do (boxed: inputs stay small).
        command: Box<GovernanceCommand>,
    },
    /// The operator asks to sign a notice.
    Issue {
        /// The shell's handle for the answer.
        ticket: u64,
        /// What to sign (boxed: inputs stay small).
        kind: Box<NoticeKind>,
    },
    /// The mark and the store are durable up to this own seq.
    Persisted {
        /// The seq of the [`Output::Persist`] done.
        seq: u64,
    },
    /// An [`Output::Persist`] failed: nothing past the last durable mark
    /// may be acknowledged.
    PersistFailed {
        /// The seq of the [`Output::Persist`] that failed.
        seq: u64,
        /// What failed.
        reason: String,
    },
    /// The operator or a department system asks a query.
    Query {
        /// The shell's handle for the answer.
        ticket: u64,
        /// The query (boxed: inputs stay small).
        ask: Box<QueryAsk>,
    },
    /// Run the work deferred so that requests leave first
    /// ([`Engine::has_deferred`]).
    RunDeferred,
}

/// What to do.
#[derive(Debug)]
pub enum Output {
    /// Report this verdict on a gossip message.
    Verdict {
        /// The shell's handle.
        message: u64,
        /// The verdict.
        verdict: Verdict,
    },
    /// A notice was accepted (signed here, or from a peer).
    Accepted {
        /// The notice.
        id: NoticeId,
        /// Its author.
        author: AuthorityId,
        /// Its seq.
        seq: u64,
        /// Where it came from.
        via: Via,
    },
    /// Fork evidence was found and kept.
    Forked {
        /// The equivocating author.
        author: AuthorityId,
        /// The seq signed twice.
        seq: u64,
        /// The conflicting notice.
        id: NoticeId,
    },
    /// Publish an own notice by gossip, then report
    /// [`Input::Published`].
    Publish {
        /// The notice.
        id: NoticeId,
        /// Its envelope.
        envelope: Arc<[u8]>,
    },
    /// Publish a witness message on the checkpoint topic (nothing is
    /// reported back: sync carries what gossip loses).
    PublishCheckpoint {
        /// The encoded [`crate::checkpoint::wire::WitnessMessage`].
        bytes: Vec<u8>,
    },
    /// Send a sync request; its answer comes back as
    /// [`Input::SyncResponse`] with the same token (token 0: an offer,
    /// whose answer needs no reporting).
    SendSync {
        /// The peer.
        peer: AuthorityId,
        /// The token.
        token: u64,
        /// The encoded request.
        bytes: Vec<u8>,
    },
    /// Read the notices of these valid ranges (a peer's sync request) with
    /// [`sync::read_ranges`] and give them back as [`Input::RangesRead`].
    /// It is the one sync answer that reads many notices, so a shell may
    /// read them off its event loop, over a snapshot of its store.
    ReadRanges {
        /// The shell's handle of the request.
        reply: u64,
        /// What the peer asked for.
        ranges: Box<[sync::RangeAsk]>,
    },
    /// Answer a sync request (`None`: close it unanswered).
    AnswerSync {
        /// The shell's handle.
        reply: u64,
        /// The encoded response.
        bytes: Option<Vec<u8>>,
    },
    /// Send a query; its answer comes back as [`Input::QueryResponse`].
    SendQuery {
        /// The peer.
        peer: AuthorityId,
        /// The token.
        token: u64,
        /// The encoded signed request.
        bytes: Vec<u8>,
    },
    /// Answer a query (`None`: close it unanswered). An answer follows
    /// its [`Output::Record`]: the shell sends it once the record is
    /// durable.
    AnswerQuery {
        /// The shell's handle.
        reply: u64,
        /// The encoded signed answer.
        bytes: Option<Vec<u8>>,
    },
    /// Make this mark durable (atomically, synced), then the store, then
    /// report [`Input::Persisted`] (or [`Input::PersistFailed`]).
    Persist {
        /// The own log's new high-water mark (boxed: outputs stay small).
        mark: Box<Mark>,
    },
    /// The answer to an [`Input::Govern`].
    Governed {
        /// The shell's handle.
        ticket: u64,
        /// What it did, or why not (boxed: outputs stay small).
        result: Box<Result<GovernanceAnswer, String>>,
    },
    /// The roster chain's current version changed: the shells follow it
    /// (the connection gate, the dials, the node's own identity).
    RosterChanged {
        /// The new current version's number.
        number: u64,
    },
    /// The answer to an [`Input::Issue`].
    Issued {
        /// The shell's handle.
        ticket: u64,
        /// The notice, or why not (boxed: outputs stay small).
        result: Result<IssuedNotice, Box<Refusal>>,
    },
    /// The answer to an [`Input::Query`], after its [`Output::Record`]:
    /// the shell answers once the record is durable.
    QueryDone {
        /// The shell's handle.
        ticket: u64,
        /// The answers, or why none (boxed: outputs stay small).
        result: Box<Result<QueryResult, Refusal>>,
    },
    /// Append this to the query register (before the answer it records
    /// is given).
    Record(Box<RegisterEntry>),
    /// Dial this target.
    Dial {
        /// The target ([`Engine::add_dial_target`]).
        target: usize,
    },
    /// Dial this member at the address it was discovered at.
    DialPeer {
        /// The member.
        peer: AuthorityId,
    },
    /// Close the connections of this member (it sent past its budget).
    Disconnect {
        /// The member.
        peer: AuthorityId,
    },
    /// Whether the node issues changed.
    Readiness(Readiness),
    /// Write a log line.
    Log {
        /// How loud.
        level: Level,
        /// What.
        message: String,
    },
}

/// An own notice signed, durable and acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedNotice {
    /// Its id.
    pub id: NoticeId,
    /// Its seq.
    pub seq: u64,
}

/// Why an operator's request was not done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The node does not issue now.
    #[error("{}", .0.explain())]
    NotReady(Readiness),
    /// The notice would break a rule; nothing was signed.
    #[error("{0}")]
    Invalid(ValidationError),
    /// It refers to a notice this node does not have.
    #[error("unknown {what} {id}: it is not in this node's records")]
    UnknownReference {
        /// Listing or objection.
        what: &'static str,
        /// The id.
        id: NoticeId,
    },
    /// The query is not well formed.
    #[error("{0}")]
    BadQuery(String),
    /// Too much is already in progress.
    #[error("{0}")]
    Busy(String),
    /// This authority has used up its notice budget; nothing was signed.
    #[error(
        "this authority has used up its notice budget ({} notices at once, {} an hour, past any allowance a roster version granted); issue again in {retry_after_ms} ms, or have the federation grant an allowance (`allow` in a roster change)",
        crate::replica::AUTHOR_NOTICE_BURST,
        crate::replica::AUTHOR_NOTICES_PER_HOUR
    )]
    OverBudget {
        /// When one more notice fits.
        retry_after_ms: u64,
    },
    /// This node's key no longer signs its log: a roster version rotated
    /// or revoked it (the node runs with the key the roster names now).
    #[error("{0}")]
    KeyRetired(String),
    /// This member signed a rotation of its own key at the seq its log
    /// stands at: it issues again once a version is taken.
    #[error("{0}")]
    KeyRotating(String),
    /// The asking account's clearance is below what the answers would
    /// show it.
    #[error("{0}")]
    Clearance(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(String),
}

impl Refusal {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotReady(Readiness::Forked { .. }) => "own_log_forked",
            Refusal::NotReady(Readiness::Halted { .. }) => "halted",
            Refusal::NotReady(Readiness::Recovering { .. }) => "recovering",
            Refusal::NotReady(_) => "restoring",
            Refusal::Invalid(v) => v.code(),
            Refusal::UnknownReference { .. } => "unknown_reference",
            Refusal::BadQuery(_) => "bad_query",
            Refusal::Busy(_) => "busy",
            Refusal::OverBudget { .. } => "over_budget",
            Refusal::KeyRetired(_) => "key_retired",
            Refusal::KeyRotating(_) => "key_rotating",
            Refusal::Clearance(_) => "forbidden",
            Refusal::Store(_) => "internal",
        }
    }
}

/// Counters of what the engine saw, for metrics.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Notices accepted, by path ([`Via::index`]): an array, because every
    /// accepted notice counts and a map per node costs a cache miss each.
    pub accepted: [u64; 3],
    /// Notices rejected, by path and rule.
    pub rejected: BTreeMap<(&'static str, &'static str), u64>,
    /// Notices received again.
    pub duplicates: u64,
    /// Notices dropped because the pending buffer was full.
    pub dropped: u64,
    /// Notices kept as orphans (signed by a retired key past its cutoff,
    /// referred to by a notice of another log).
    pub orphans: u64,
    /// Logs a roster version cut back (it retired the key that signed
    /// notices held past its cutoff).
    pub cuts: u64,
    /// Forks found.
    pub forks: u64,
    /// Gossip payload bytes received.
    pub gossip_bytes_in: u64,
    /// Gossip payload bytes published.
    pub gossip_bytes_out: u64,
    /// Sync message bytes received.
    pub sync_bytes_in: u64,
    /// Sync message bytes sent.
    pub sync_bytes_out: u64,
    /// Sync range requests handed to the shell to read.
    pub sync_range_reads: u64,
    /// Sync sessions started.
    pub sync_sessions: u64,
    /// Sync sessions that failed, by reason.
    pub sync_failures: BTreeMap<&'static str, u64>,
    /// Malformed peer messages, by protocol.
    pub malformed: BTreeMap<&'static str, u64>,
    /// Connections refused (not a member).
    pub refused_connections: u64,
    /// Connections refused past the connection limits.
    pub connections_over_limit: u64,
    /// Queries, by event.
    pub queries: BTreeMap<&'static str, u64>,
    /// Issue requests refused because the node does not issue, by reason.
    pub issue_refused: BTreeMap<&'static str, u64>,
    /// Pending notices dropped after waiting [`PENDING_TTL_MS`].
    pub pending_expired: u64,
    /// Requests refused because their peer was over its budget, by
    /// protocol.
    pub over_budget: BTreeMap<&'static str, u64>,
    /// Checkpoint events: `signed`, `cosigned`, `taken`, `ahead`,
    /// `rejected`, `conflict`, `split_view`.
    pub checkpoints: BTreeMap<&'static str, u64>,
    /// Roster versions: `accepted`, `held`, `rejected`.
    pub roster: BTreeMap<&'static str, u64>,
}

/// A peer's request budget: a token bucket of [`PEER_REQUEST_BURST`]
/// tokens refilled at [`PEER_REQUESTS_PER_S`].
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Thousandths of a token.
    milli: u64,
    at: Timestamp,
}

impl Budget {
    fn full(now: Timestamp) -> Budget {
        Budget {
            milli: PEER_REQUEST_BURST * 1000,
            at: now,
        }
    }

    /// Takes one token if there is one.
    fn take(&mut self, now: Timestamp) -> bool {
        let elapsed = now.0.saturating_sub(self.at.0);
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(PEER_REQUESTS_PER_S))
            .min(PEER_REQUEST_BURST * 1000);
        self.at = self.at.max(now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// One own notice signed and not yet durable.
#[derive(Debug)]
struct Undurable {
    ticket: u64,
    mark: Mark,
    envelope: Arc<[u8]>,
}

/// One outbound sync session.
#[derive(Debug)]
struct Session {
    token: u64,
    session: SyncSession,
    last: Timestamp,
}

/// One dial target.
#[derive(Clone, Debug)]
struct DialTarget {
    peer: Option<AuthorityId>,
    failures: u32,
    next: Timestamp,
}

/// The node engine (see the module documentation).
pub struct Engine<S: Store> {
    config: EngineConfig,
    replica: Replica<S>,
    key: AuthorityKey,
    me: AuthorityId,
    gate: Gate,
    rng: SplitMix64,
    connected: BTreeSet<AuthorityId>,
    sessions: BTreeMap<AuthorityId, Session>,
    next_token: u64,
    next_sync: Timestamp,
    /// Newest seq of each author a peer has shown.
    seen: BTreeMap<AuthorityId, u64>,
    undurable: VecDeque<Undurable>,
    publish: VecDeque<(NoticeId, Arc<[u8]>)>,
    publishing: bool,
    publish_blocked: bool,
    dials: Vec<DialTarget>,
    queries: query::Queries,
    counters: Counters,
    /// Request budgets of the peers that sent requests (one per member at
    /// most).
    budgets: BTreeMap<AuthorityId, Budget>,
    witnessing: witnessing::Witnessing,
    governance: governance::Governance,
}

impl<S: Store> Engine<S> {
    /// An engine over `replica`, signing with `key`, whose own-log mark
    /// read from durable storage is `mark` (`None`: lost or never
    /// written), seeded with `seed`, started at `now`.
    pub fn new(
        config: EngineConfig,
        replica: Replica<S>,
        key: AuthorityKey,
        mark: Option<Mark>,
        seed: u64,
        now: Timestamp,
    ) -> Engine<S> {
        let me = replica.member_of_key(&AuthorityId(key.public_bytes()));
        let others = replica
            .federation()
            .roster()
            .members
            .iter()
            .filter(|m| m.key != me)
            .count();
        let mut rng = SplitMix64(seed);
        let first_sync = now.plus_ms(rng.below(config.sync_interval_ms.max(1)));
        let mut engine = Engine {
            config,
            replica,
            key,
            me,
            gate: Gate::new(mark, others),
            rng,
            connected: BTreeSet::new(),
            sessions: BTreeMap::new(),
            next_token: 0,
            next_sync: first_sync,
            seen: BTreeMap::new(),
            undurable: VecDeque::new(),
            publish: VecDeque::new(),
            publishing: false,
            publish_blocked: false,
            dials: Vec::new(),
            queries: query::Queries::default(),
            counters: Counters::default(),
            budgets: BTreeMap::new(),
            witnessing: witnessing::Witnessing::default(),
            governance: governance::Governance::default(),
        };
        let mut out = Vec::new();
        engine.mark_past_cutoff();
        engine.restore_checkpoints();
        engine.restore_proposals();
        engine.restore_from_mark(&mut out);
        engine.reassess(&mut out);
        engine
    }

    /// The replica.
    pub fn replica(&self) -> &Replica<S> {
        &self.replica
    }

    /// The replica back, the engine gone (a restart under another key).
    pub fn into_replica(self) -> Replica<S> {
        self.replica
    }

    /// The replica, to change (the simulator's faults; imports).
    pub fn replica_mut(&mut self) -> &mut Replica<S> {
        &mut self.replica
    }

    /// This node's authority.
    pub fn author(&self) -> AuthorityId {
        self.me
    }

    /// The authority key the engine signs with (the daemon derives its
    /// libp2p identity from it).
    pub fn key(&self) -> &AuthorityKey {
        &self.key
    }

    /// Whether it issues.
    pub fn readiness(&self) -> &Readiness {
        &self.gate.readiness
    }

    /// The checkpoint of this node's own log as it holds it, signed by its
    /// key (C2SP signed note; `None` before its first notice). Refused
    /// unless the node issues (`Ready`): a node restoring its log holds
    /// less than it signed, and one whose log forked must not sign more.
    pub fn own_checkpoint(&self) -> Result<Option<credence_crypto::note::Note>, Refusal> {
        if self.gate.readiness != Readiness::Ready {
            return Err(Refusal::NotReady(self.gate.readiness.clone()));
        }
        let head = self
            .replica
            .store()
            .head(&self.me)
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let Some(head) = head else {
            return Ok(None);
        };
        let checkpoint = crate::checkpoint::Checkpoint::of_log(
            &self.replica.federation().id(),
            &self.me,
            head.seq,
            head.root(),
        );
        crate::checkpoint::sign(&self.key, &checkpoint)
            .map(Some)
            .map_err(|e| Refusal::Store(e.to_string()))
    }

    /// The durable own-log mark, once there is one.
    pub fn mark(&self) -> Option<&Mark> {
        self.gate.mark.as_ref()
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connected members (with [`Reachable::Roster`]: every other member).
    pub fn peers(&self) -> Vec<AuthorityId> {
        match self.config.reachable {
            Reachable::Connected => self.connected.iter().copied().collect(),
            Reachable::Roster => self
                .replica
                .federation()
                .roster()
                .members
                .iter()
                .map(|m| m.key)
                .filter(|k| *k != self.me)
                .collect(),
        }
    }

    /// The newest seq of each author that a peer has shown.
    pub fn seen(&self) -> &BTreeMap<AuthorityId, u64> {
        &self.seen
    }

    /// Own notices waiting to be published.
    pub fn unpublished(&self) -> usize {
        self.publish.len()
    }

    /// Federation-wide queries waiting for answers.
    pub fn queries_waiting(&self) -> usize {
        self.queries.len()
    }

    /// Work is deferred until the requests of this turn have left: feed
    /// [`Input::RunDeferred`].
    pub fn has_deferred(&self) -> bool {
        self.queries.has_deferred()
    }

    /// The latest time by which the shell must feed [`Input::Tick`].
    pub fn next_wakeup(&self) -> Timestamp {
        let mut at = self.next_sync;
        for session in self.sessions.values() {
            at = at.min(session.last.plus_ms(self.config.sync_timeout_ms));
        }
        if let Some(deadline) = self.queries.next_deadline() {
            at = at.min(deadline);
        }
        if let Some(due) = self.checkpoint_wakeup() {
            at = at.min(due);
        }
        for dial in &self.dials {
            if dial.peer.is_none_or(|p| !self.connected.contains(&p)) {
                at = at.min(dial.next);
            }
        }
        at
    }

    /// Adds an address to dial with backoff until connected: a roster
    /// member's (`Some`) or a bootstrap peer's (`None` until it connects).
    /// Returns its index, which [`Output::Dial`] names; `None` past
    /// [`DIAL_TARGETS_MAX`].
    pub fn add_dial_target(&mut self, peer: Option<AuthorityId>, now: Timestamp) -> Option<usize> {
        if self.dials.len() >= DIAL_TARGETS_MAX {
            return None;
        }
        self.dials.push(DialTarget {
            peer,
            failures: 0,
            next: now,
        });
        Some(self.dials.len() - 1)
    }

    /// Handles one input at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input<'_>, now: Timestamp) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle_into(input, now, &mut out);
        out
    }

    /// [`Engine::handle`], appending to `out`.
    pub fn handle_into(&mut self, input: Input<'_>, now: Timestamp, out: &mut Vec<Output>) {
        self.replica.advance_clock(now);
        match input {
            Input::Tick => self.on_tick(now, out),
            Input::Connected { peer, target } => self.on_connected(peer, target, now, out),
            Input::Disconnected { peer } => {
                self.connected.remove(&peer);
                self.sessions.remove(&peer);
                self.forget_checkpoint_asks(&peer);
                self.forget_roster_asks(&peer);
            }
            Input::Refused { over_limit: false } => self.counters.refused_connections += 1,
            Input::Refused { over_limit: true } => self.counters.connections_over_limit += 1,
            Input::Discovered { peer } => {
                if self.replica.federation().member(&peer).is_some()
                    && peer != self.me
                    && !self.connected.contains(&peer)
                {
                    out.push(Output::DialPeer { peer });
                }
            }
            Input::Gossip {
                from: _,
                message,
                id,
                bytes,
            } => self.on_gossip(message, id, bytes, out),
            Input::WitnessGossip {
                from: _,
                message,
                bytes,
            } => self.on_witness_gossip(message, bytes, now, out),
            Input::Subscribed => {
                self.publish_blocked = false;
                self.try_publish(out);
            }
            Input::Published { id, result } => self.on_published(id, result, out),
            Input::SyncRequest { peer, reply, bytes } => {
                if self.within_budget(peer, "sync", now, out) {
                    self.on_sync_request(peer, reply, bytes, now, out)
                } else {
                    out.push(Output::AnswerSync { reply, bytes: None });
                }
            }
            Input::SyncResponse { peer, token, bytes } => {
                self.on_sync_response(peer, token, bytes, now, out)
            }
            Input::RangesRead { reply, result } => self.on_ranges_read(reply, result, out),
            Input::SyncFailed {
                peer,
                token,
                reason,
            } => {
                if self.checkpoint_ask_failed(token)
                    || self.roster_ask_failed(token)
                    || self.proposal_ask_failed(token)
                {
                    *self.counters.sync_failures.entry(reason).or_default() += 1;
                } else if self.sessions.get(&peer).is_some_and(|s| s.token == token) {
                    self.end_session(peer, Some(reason), out);
                }
            }
            Input::QueryRequest { peer, reply, bytes } => {
                if self.within_budget(peer, "query", now, out) {
                    self.on_query_request(peer, reply, bytes, now, out)
                } else {
                    out.push(Output::AnswerQuery { reply, bytes: None });
                }
            }
            Input::QueryResponse { peer, token, bytes } => {
                self.on_query_response(peer, token, bytes, now, out)
            }
            Input::QueryFailed {
                peer,
                token,
                reason,
            } => self.on_query_failed(peer, token, reason, now, out),
            Input::Issue { ticket, kind } => self.on_issue(ticket, *kind, now, out),
            Input::Govern { ticket, command } => {
                let result = self.govern(*command, out).map_err(|e| e.to_string());
                out.push(Output::Governed {
                    ticket,
                    result: Box::new(result),
                });
            }
            Input::Persisted { seq } => {
                self.on_persisted(seq, out);
                self.checkpoint_own(now, out);
            }
            Input::PersistFailed { seq, reason } => self.on_persist_failed(seq, reason, out),
            Input::Query { ticket, ask } => self.on_query(ticket, *ask, now, out),
            Input::RunDeferred => self.run_deferred(now),
        }
        self.save_checkpoints(now, out);
        self.save_proposals(out);
    }

    /// Takes one request from `peer`'s budget; a peer past it is counted,
    /// told nothing and disconnected, once per burst.
    fn within_budget(
        &mut self,
        peer: AuthorityId,
        protocol: &'static str,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) -> bool {
        if self.replica.federation().member(&peer).is_none() {
            return false;
        }
        let budget = self
            .budgets
            .entry(peer)
            .or_insert_with(|| Budget::full(now));
        if budget.take(now) {
            return true;
        }
        let count = self.counters.over_budget.entry(protocol).or_default();
        *count += 1;
        if *count % PEER_REQUEST_BURST == 1 {
            Self::log(
                out,
                Level::Warn,
                format!(
                    "{} sent {protocol} requests past its budget ({PEER_REQUESTS_PER_S}/s, bursts of {PEER_REQUEST_BURST}); disconnected",
                    self.name_of(&peer)
                ),
            );
        }
        out.push(Output::Disconnect { peer });
        false
    }

    fn log(out: &mut Vec<Output>, level: Level, message: String) {
        out.push(Output::Log { level, message });
    }

    fn name_of(&self, peer: &AuthorityId) -> String {
        self.replica.federation().name_of(peer)
    }

    // ----- the issuing gate -----

    /// A mark whose notice the roster chain now refuses (a version gave
    /// its seq to a new key while the node was down, or before the lowered
    /// mark was written) marks nothing of the own log: the head the store
    /// kept stands in for it, until the next own notice writes a mark.
    fn mark_past_cutoff(&mut self) {
        let Some(envelope) = self.gate.mark.as_ref().and_then(|m| m.envelope.as_ref()) else {
            return;
        };
        let refused = codec::envelope_parts(envelope)
            .ok()
            .and_then(|(body, _)| codec::decode_stored_notice(body).ok())
            .is_some_and(|notice| {
                notice.author == self.me
                    && validate::check_signer(&notice, self.replica.chain()).is_err()
            });
        if refused {
            let mark = self.head_mark();
            self.gate.cut(mark);
        }
    }

    /// Whether the roster's current version still gives this node's key to
    /// its member (a key retired since signs nothing that would verify).
    fn key_current(&self) -> bool {
        self.replica
            .chain()
            .current()
            .member_of_key(&AuthorityId(self.key.public_bytes()))
            == Some(self.me)
    }

    /// A mark of the own log's head as the store holds it.
    fn head_mark(&self) -> Mark {
        let store = self.replica.store();
        match store.head(&self.me).ok().flatten() {
            Some(head) => Mark {
                seq: head.seq,
                id: head.id,
                root: Some(head.root()),
                envelope: store.notice(&head.id).ok().flatten(),
            },
            None => Mark::zero(),
        }
    }

    /// A store that lost only the mark's own notice gets it back from the
    /// envelope the mark carries.
    fn restore_from_mark(&mut self, out: &mut Vec<Output>) {
        let Some(envelope) = self.gate.mark.as_ref().and_then(|m| m.envelope.clone()) else {
            return;
        };
        let held = self.own_head();
        let Some(mark_seq) = self.gate.mark.as_ref().map(|m| m.seq) else {
            return;
        };
        if held + 1 == mark_seq {
            self.ingest(&[&envelope], Via::Local, out);
        }
    }

    fn own_head(&self) -> u64 {
        self.replica
            .store()
            .head(&self.me)
            .ok()
            .flatten()
            .map_or(0, |h| h.seq)
    }

    /// Re-decides the gate after the store or the reports changed.
    fn reassess(&mut self, out: &mut Vec<Output>) {
        let before = self.gate.readiness.clone();
        let head = self.replica.store().head(&self.me).ok().flatten();
        let held = head.as_ref().map_or(0, |h| h.seq);
        let store = self.replica.store();
        let me = self.me;
        let forked_at = self
            .replica
            .standing_forks()
            .ok()
            .and_then(|forks| forks.iter().find(|f| f.author == me).map(|f| f.seq));
        let recovered =
            self.gate
                .assess(held, |seq| store.log_id(&me, seq).ok().flatten(), forked_at);
        if let Some(seq) = recovered {
            // A new machine recovered its own log from a majority: the
            // mark it writes now is what it builds on.
            let mark = match head {
                Some(_) => Mark {
                    seq,
                    ..self.head_mark()
                },
                None => Mark::zero(),
            };
            self.gate.advance(mark.clone());
            out.push(Output::Persist {
                mark: Box::new(mark),
            });
        }
        if self.gate.readiness != before {
            let level = match self.gate.readiness {
                Readiness::Ready => Level::Info,
                Readiness::Forked { .. } | Readiness::Halted { .. } => Level::Error,
                _ => Level::Warn,
            };
            // Progress while restoring is not news; a change of state is.
            if std::mem::discriminant(&self.gate.readiness) != std::mem::discriminant(&before)
                || level == Level::Error
            {
                Self::log(out, level, self.gate.readiness.explain());
                out.push(Output::Readiness(self.gate.readiness.clone()));
            }
        }
    }

    fn gate_open(&self) -> bool {
        self.gate.readiness == Readiness::Ready
    }

    // ----- ingest -----

    /// Ingests envelopes and reports each outcome. Returns the outcomes.
    fn ingest(&mut self, envelopes: &[&[u8]], via: Via, out: &mut Vec<Output>) -> Vec<Outcome> {
        let result = if via == Via::Sync && self.config.bulk_ingest {
            self.replica.ingest_all(envelopes)
        } else {
            self.replica.ingest_batch(envelopes)
        };
        match result {
            Ok(outcomes) => {
                self.count(&outcomes, via, out);
                outcomes
            }
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("store failure on {} ingest: {e}", via.name()),
                );
                Vec::new()
            }
        }
    }

    fn count(&mut self, outcomes: &[Outcome], via: Via, out: &mut Vec<Output>) {
        let mut own_news = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Accepted { id, author, seq } => {
                    self.counters.accepted[via.index()] += 1;
                    own_news |= *author == self.me;
                    out.push(Output::Accepted {
                        id: *id,
                        author: *author,
                        seq: *seq,
                        via,
                    });
                }
                Outcome::Duplicate { .. } => self.counters.duplicates += 1,
                Outcome::Pending { .. } => {}
                Outcome::Dropped { .. } => self.counters.dropped += 1,
                Outcome::Orphaned { id, author, seq } => {
                    self.counters.orphans += 1;
                    Self::log(
                        out,
                        Level::Info,
                        format!(
                            "kept {id} (seq {seq} of {}, signed by a key the roster retired) as a void orphan: a notice of another log refers to it",
                            self.name_of(author)
                        ),
                    );
                }
                Outcome::Forked {
                    id, author, seq, ..
                } => {
                    self.counters.forks += 1;
                    out.push(Output::Forked {
                        author: *author,
                        seq: *seq,
                        id: *id,
                    });
                    if *author == self.me {
                        let before = self.gate.readiness.clone();
                        self.gate.forked(*seq);
                        if self.gate.readiness != before {
                            Self::log(out, Level::Error, self.gate.readiness.explain());
                            out.push(Output::Readiness(self.gate.readiness.clone()));
                        }
                    } else {
                        Self::log(
                            out,
                            Level::Warn,
                            format!(
                                "fork: {} signed two notices at seq {seq}; evidence kept",
                                self.name_of(author)
                            ),
                        );
                    }
                }
                Outcome::Rejected { id, error, .. } => {
                    *self
                        .counters
                        .rejected
                        .entry((via.name(), error.code()))
                        .or_default() += 1;
                    Self::log(
                        out,
                        Level::Warn,
                        format!("rejected {id} from {}: {error}", via.name()),
                    );
                }
            }
        }
        if own_news || !self.gate_open() {
            self.reassess(out);
        }
    }

    fn on_gossip(&mut self, message: u64, id: NoticeId, bytes: &[u8], out: &mut Vec<Output>) {
        self.counters.gossip_bytes_in += bytes.len() as u64;
        let outcomes = match self.replica.ingest_identified(&[(id, bytes)]) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("store failure on gossip ingest: {e}"),
                );
                out.push(Output::Verdict {
                    message,
                    verdict: Verdict::Ignore,
                });
                return;
            }
        };
        let verdict = outcomes
            .iter()
            .find_map(|outcome| match outcome {
                Outcome::Accepted { id: o, .. } if *o == id => Some(Verdict::Accept),
                // Evidence travels: every honest replica should see a fork.
                Outcome::Forked { id: o, .. } if *o == id => Some(Verdict::Accept),
                // Dated ahead of this node's clock: maybe this clock is
                // behind; not the forwarder's fault.
                Outcome::Rejected {
                    id: o,
                    error: ValidationError::IssuedAhead { .. },
                    ..
                } if *o == id => Some(Verdict::Ignore),
                Outcome::Rejected { id: o, .. } if *o == id => Some(Verdict::Reject),
                _ => None,
            })
            .unwrap_or(Verdict::Ignore);
        out.push(Output::Verdict { message, verdict });
        self.count(&outcomes, Via::Gossip, out);
    }

    // ----- issuing and publication -----

    fn on_issue(&mut self, ticket: u64, kind: NoticeKind, now: Timestamp, out: &mut Vec<Output>) {
        if !self.gate_open() {
            let refusal = Refusal::NotReady(self.gate.readiness.clone());
            *self
                .counters
                .issue_refused
                .entry(self.gate.readiness.name())
                .or_default() += 1;
            out.push(Output::Issued {
                ticket,
                result: Err(Box::new(refusal)),
            });
            return;
        }
        if let Some(why) = self.rotation_pending_now() {
            out.push(Output::Issued {
                ticket,
                result: Err(Box::new(Refusal::KeyRotating(why))),
            });
            return;
        }
        if self.undurable.len() >= UNDURABLE_MAX {
            out.push(Output::Issued {
                ticket,
                result: Err(Box::new(Refusal::Busy(format!(
                    "{UNDURABLE_MAX} own notices are waiting for the store; try again in a moment"
                )))),
            });
            return;
        }
        let issued = match self.replica.issue(&self.key, kind, now) {
            Ok(issued) => issued,
            Err(e) => {
                let refusal = match e {
                    IssueError::Invalid(v) => Refusal::Invalid(v),
                    IssueError::UnknownReference { what, id } => {
                        Refusal::UnknownReference { what, id }
                    }
                    IssueError::CatchingUp { seq } => Refusal::NotReady(Readiness::Restoring {
                        held: seq - 1,
                        mark: seq,
                    }),
                    IssueError::OverBudget { retry_after_ms } => {
                        Refusal::OverBudget { retry_after_ms }
                    }
                    IssueError::NotOurKey { .. } => Refusal::KeyRetired(e.to_string()),
                    IssueError::Replica(e) => Refusal::Store(e.to_string()),
                };
                out.push(Output::Issued {
                    ticket,
                    result: Err(Box::new(refusal)),
                });
                return;
            }
        };
        let envelope: Arc<[u8]> = Arc::from(issued.envelope);
        let root = self
            .replica
            .store()
            .head(&self.me)
            .ok()
            .flatten()
            .filter(|h| h.id == issued.id)
            .map(|h| h.root());
        let mark = Mark {
            seq: issued.seq,
            id: issued.id,
            root,
            envelope: Some(envelope.to_vec()),
        };
        out.push(Output::Persist {
            mark: Box::new(mark.clone()),
        });
        self.undurable.push_back(Undurable {
            ticket,
            mark,
            envelope,
        });
    }

    fn on_persisted(&mut self, seq: u64, out: &mut Vec<Output>) {
        while self.undurable.front().is_some_and(|u| u.mark.seq <= seq) {
            let Some(done) = self.undurable.pop_front() else {
                break;
            };
            let (id, seq) = (done.mark.id, done.mark.seq);
            self.gate.advance(done.mark);
            self.counters.accepted[Via::Local.index()] += 1;
            out.push(Output::Accepted {
                id,
                author: self.me,
                seq,
                via: Via::Local,
            });
            out.push(Output::Issued {
                ticket: done.ticket,
                result: Ok(IssuedNotice { id, seq }),
            });
            if self.publish.len() >= PUBLISH_QUEUE_MAX {
                self.publish.pop_front();
            }
            self.publish.push_back((id, done.envelope));
        }
        self.try_publish(out);
    }

    fn on_persist_failed(&mut self, seq: u64, reason: String, out: &mut Vec<Output>) {
        self.gate.halt(format!("own notice seq {seq}: {reason}"));
        Self::log(out, Level::Error, self.gate.readiness.explain());
        out.push(Output::Readiness(self.gate.readiness.clone()));
        for undone in self.undurable.drain(..) {
            out.push(Output::Issued {
                ticket: undone.ticket,
                result: Err(Box::new(Refusal::NotReady(self.gate.readiness.clone()))),
            });
        }
    }

    fn try_publish(&mut self, out: &mut Vec<Output>) {
        if self.publishing || self.publish_blocked {
            return;
        }
        if let Some((id, envelope)) = self.publish.front() {
            self.publishing = true;
            out.push(Output::Publish {
                id: *id,
                envelope: envelope.clone(),
            });
        }
    }

    fn on_published(&mut self, id: NoticeId, result: Publication, out: &mut Vec<Output>) {
        if self.publish.front().is_none_or(|(front, _)| *front != id) {
            return;
        }
        self.publishing = false;
        match result {
            Publication::Sent => {
                if let Some((_, envelope)) = self.publish.pop_front() {
                    self.counters.gossip_bytes_out += envelope.len() as u64;
                }
            }
            Publication::NoPeers => {
                self.publish_blocked = true;
                return;
            }
            Publication::Failed => {
                Self::log(
                    out,
                    Level::Warn,
                    format!("publishing {id} failed; sync will carry it"),
                );
                self.publish.pop_front();
            }
        }
        self.try_publish(out);
    }

    // ----- peers, dials and the sync schedule -----

    fn on_connected(
        &mut self,
        peer: AuthorityId,
        target: Option<usize>,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        if let Some(dial) = target.and_then(|t| self.dials.get_mut(t)) {
            dial.peer.get_or_insert(peer);
        }
        for dial in &mut self.dials {
            if dial.peer == Some(peer) {
                dial.failures = 0;
            }
        }
        if self.connected.insert(peer) {
            Self::log(
                out,
                Level::Info,
                format!("connected to {}", self.name_of(&peer)),
            );
            if self.config.sync_on_connect {
                self.start_sync(peer, now, out);
            }
        }
    }

    fn on_tick(&mut self, now: Timestamp, out: &mut Vec<Output>) {
        let cutoff = Timestamp(now.0.saturating_sub(PENDING_TTL_MS));
        self.counters.pending_expired += self.replica.expire_pending(cutoff) as u64;
        for (i, dial) in self.dials.iter_mut().enumerate() {
            if dial.peer.is_some_and(|p| self.connected.contains(&p)) || dial.next > now {
                continue;
            }
            let backoff = self
                .config
                .dial_backoff_min_ms
                .saturating_mul(1 << dial.failures.min(5))
                .min(self.config.dial_backoff_max_ms);
            dial.next = now.plus_ms(backoff);
            dial.failures = dial.failures.saturating_add(1);
            out.push(Output::Dial { target: i });
        }
        let timeout = self.config.sync_timeout_ms;
        let stale: Vec<AuthorityId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last.plus_ms(timeout) <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in stale {
            self.end_session(peer, Some("timeout"), out);
        }
        if self.publish_blocked {
            self.publish_blocked = false;
            self.try_publish(out);
        }
        if now >= self.next_sync {
            let interval = self.config.sync_interval_ms.max(4);
            let quarter = interval / 4;
            self.next_sync = now.plus_ms(interval - quarter + self.rng.below(2 * quarter + 1));
            let mut peers = self.peers();
            if peers.len() > self.config.sync_peers_per_round {
                self.rng.shuffle(&mut peers);
                peers.truncate(self.config.sync_peers_per_round);
            }
            for peer in peers {
                self.start_sync(peer, now, out);
            }
        }
        self.expire_queries(now, out);
        self.checkpoint_own(now, out);
        self.retry_ahead(now, out);
        self.grow_trees(out);
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn send_sync(
        &mut self,
        peer: AuthorityId,
        token: u64,
        request: &SyncRequest,
        out: &mut Vec<Output>,
    ) -> bool {
        match sync::encode_request(request) {
            Ok(bytes) => {
                self.counters.sync_bytes_out += bytes.len() as u64;
                out.push(Output::SendSync { peer, token, bytes });
                true
            }
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("cannot encode a sync request: {e}"),
                );
                false
            }
        }
    }

    fn start_sync(&mut self, peer: AuthorityId, now: Timestamp, out: &mut Vec<Output>) {
        if self.sessions.contains_key(&peer) || peer == self.me {
            return;
        }
        // Roster versions first: a notice naming a version this node lacks
        // would be refused.
        self.ask_roster(peer, now, out);
        match SyncSession::start(&self.replica) {
            Ok((session, request)) => {
                let token = self.token();
                if self.send_sync(peer, token, &request, out) {
                    self.counters.sync_sessions += 1;
                    self.sessions.insert(
                        peer,
                        Session {
                            token,
                            session,
                            last: now,
                        },
                    );
                    self.ask_checkpoints(peer, out);
                }
            }
            Err(e) => Self::log(out, Level::Error, format!("cannot start sync: {e}")),
        }
    }

    fn end_session(
        &mut self,
        peer: AuthorityId,
        failure: Option<&'static str>,
        out: &mut Vec<Output>,
    ) {
        self.sessions.remove(&peer);
        if let Some(reason) = failure {
            *self.counters.sync_failures.entry(reason).or_default() += 1;
            Self::log(
                out,
                Level::Info,
                format!("sync with {} ended: {reason}", self.name_of(&peer)),
            );
        }
    }

    /// A peer showed its heads: what it has seen, and (while recovering)
    /// its head of the own log.
    fn heads_shown(&mut self, peer: AuthorityId, heads: &[HeadEntry], out: &mut Vec<Output>) {
        if self.replica.federation().member(&peer).is_none() {
            return;
        }
        let mut own = 0;
        for head in heads {
            if !self.replica.federation().has_log(&head.author) {
                continue;
            }
            let entry = self.seen.entry(head.author).or_default();
            *entry = (*entry).max(head.seq);
            if head.author == self.me {
                own = head.seq;
            }
        }
        if self.gate.mark.is_none() {
            self.gate.report(peer, own);
            self.reassess(out);
        }
    }

    fn on_ranges_read(
        &mut self,
        reply: u64,
        result: Result<Vec<u8>, String>,
        out: &mut Vec<Output>,
    ) {
        match result {
            Ok(bytes) => self.send_sync_answer(reply, bytes, out),
            Err(e) => {
                Self::log(out, Level::Warn, format!("sync ranges not answered: {e}"));
                out.push(Output::AnswerSync { reply, bytes: None });
            }
        }
    }

    /// Sends an encoded sync answer, counting its bytes.
    fn send_sync_answer(&mut self, reply: u64, bytes: Vec<u8>, out: &mut Vec<Output>) {
        self.counters.sync_bytes_out += bytes.len() as u64;
        out.push(Output::AnswerSync {
            reply,
            bytes: Some(bytes),
        });
    }

    /// Answers a sync request the engine answers itself (not the
    /// replica's sync step): encoded, or closed unanswered if it cannot be.
    fn answer_encoded(
        &mut self,
        reply: u64,
        response: &SyncResponse,
        what: &str,
        out: &mut Vec<Output>,
    ) {
        match sync::encode_response(response) {
            Ok(bytes) => self.send_sync_answer(reply, bytes, out),
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("cannot encode a {what} answer: {e}"),
                );
                out.push(Output::AnswerSync { reply, bytes: None });
            }
        }
    }

    fn on_sync_request(
        &mut self,
        peer: AuthorityId,
        reply: u64,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        self.counters.sync_bytes_in += bytes.len() as u64;
        let request = match sync::decode_request(bytes) {
            Ok(request) => request,
            Err(e) => {
                *self.counters.malformed.entry("sync").or_default() += 1;
                Self::log(
                    out,
                    Level::Warn,
                    format!("malformed sync request from {}: {e}", self.name_of(&peer)),
                );
                out.push(Output::AnswerSync { reply, bytes: None });
                return;
            }
        };
        if let SyncRequest::Roster(held) = &request {
            let response = sync::answer_roster(&self.replica, held);
            self.answer_encoded(reply, &response, "roster", out);
            return;
        }
        if let SyncRequest::Proposals(held) = &request {
            let response = self.answer_proposals(held);
            self.answer_encoded(reply, &response, "proposals", out);
            return;
        }
        if let SyncRequest::Checkpoints(have) = &request
            && have.len() <= sync::HEADS_MAX
        {
            let response = self.answer_checkpoints(have);
            self.answer_encoded(reply, &response, "checkpoint", out);
            return;
        }
        if let SyncRequest::Ranges(ranges) = &request
            && sync::ranges_valid(ranges)
        {
            self.counters.sync_range_reads += 1;
            out.push(Output::ReadRanges {
                reply,
                ranges: ranges.as_slice().into(),
            });
            return;
        }
        let pulling = self.sessions.contains_key(&peer);
        let answer = match sync::answer(&self.replica, &request, pulling) {
            Ok(answer) => answer,
            Err(e) => {
                Self::log(
                    out,
                    Level::Warn,
                    format!(
                        "sync request from {} not answered: {e}",
                        self.name_of(&peer)
                    ),
                );
                out.push(Output::AnswerSync { reply, bytes: None });
                return;
            }
        };
        match sync::encode_response(&answer.response) {
            Ok(bytes) => self.send_sync_answer(reply, bytes, out),
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("cannot encode a sync response: {e}"),
                );
                out.push(Output::AnswerSync { reply, bytes: None });
            }
        }
        if let (SyncRequest::Offer { heads, .. }, SyncResponse::Taken) =
            (&request, &answer.response)
        {
            self.heads_shown(peer, heads, out);
        }
        if let Some((session, next)) = answer.pull_back {
            let token = self.token();
            if self.send_sync(peer, token, &next, out) {
                self.counters.sync_sessions += 1;
                self.sessions.insert(
                    peer,
                    Session {
                        token,
                        session,
                        last: now,
                    },
                );
            }
        }
    }

    fn on_sync_response(
        &mut self,
        peer: AuthorityId,
        token: u64,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        self.counters.sync_bytes_in += bytes.len() as u64;
        if self.roster_asked(token) {
            let response = sync::decode_response(bytes).ok();
            if response.is_none() {
                *self.counters.malformed.entry("sync").or_default() += 1;
            }
            self.on_roster_answer(peer, token, response, now, out);
            return;
        }
        if self.proposals_asked(token) {
            let response = sync::decode_response(bytes).ok();
            if response.is_none() {
                *self.counters.malformed.entry("sync").or_default() += 1;
            }
            self.on_proposals_answer(peer, token, response, out);
            return;
        }
        if self.witnessing_asked(token) {
            let response = sync::decode_response(bytes).ok();
            if response.is_none() {
                *self.counters.malformed.entry("sync").or_default() += 1;
            }
            self.on_checkpoints_answer(peer, token, response, now, out);
            return;
        }
        if self.sessions.get(&peer).is_none_or(|s| s.token != token) {
            // An offer's answer, or one that came after its session ended.
            return;
        }
        let response = match sync::decode_response(bytes) {
            Ok(response) => response,
            Err(e) => {
                *self.counters.malformed.entry("sync").or_default() += 1;
                Self::log(
                    out,
                    Level::Warn,
                    format!("malformed sync response from {}: {e}", self.name_of(&peer)),
                );
                self.end_session(peer, Some("malformed"), out);
                return;
            }
        };
        match &response {
            SyncResponse::Heads { heads, .. } => {
                let heads = heads.clone();
                self.heads_shown(peer, &heads, out);
            }
            SyncResponse::InSync => {
                // Its heads are ours.
                if let Ok(heads) = sync::local_heads(&self.replica) {
                    self.heads_shown(peer, &heads, out);
                }
            }
            _ => {}
        }
        let Some(mut active) = self.sessions.remove(&peer) else {
            return;
        };
        let step = match active.session.on_response(&self.replica, response) {
            Ok(step) => step,
            Err(e) => {
                Self::log(
                    out,
                    Level::Warn,
                    format!("sync with {} failed: {e}", self.name_of(&peer)),
                );
                self.end_session(peer, Some(e.code()), out);
                return;
            }
        };
        if !step.ingest.is_empty() {
            let slices: Vec<&[u8]> = step.ingest.iter().map(Vec::as_slice).collect();
            self.ingest(&slices, Via::Sync, out);
        }
        if let Some(offer) = &step.offer {
            self.send_sync(peer, 0, offer, out);
        }
        match step.next {
            Some(next) => {
                if self.send_sync(peer, active.token, &next, out) {
                    active.last = now;
                    self.sessions.insert(peer, active);
                }
            }
            None => self.end_session(peer, None, out),
        }
    }
}

#[cfg(test)]
mod tests;

//! The running node: a translator between libp2p, the HTTP API's
//! commands, sled and the engine (`credence_protocol::engine`), which
//! makes every decision. One task owns the engine, the store and the
//! swarm, so there are no locks.
//!
//! What the daemon does itself is only input and output: it turns swarm
//! events and commands into engine inputs, carries the engine's outputs to
//! the swarm, the mark file and the store, and answers the API. Reads that
//! fold every listing run on a snapshot off the loop ([`reads`]).

mod changes;
mod metrics;
mod reads;
pub mod register;
mod registered;

pub use metrics::Gauges;
pub use reads::{
    BACKGROUND_READS_MAX, BACKGROUND_READS_WAITING_MAX, Background, Chunks, EXTRACT_CHUNK_BYTES,
    EXTRACTS_MAX, FEED_CACHE_MS, FEED_LISTINGS_DEFAULT, FEED_LISTINGS_MAX, FEED_SCAN_MAX, FeedAsk,
    FeedCache, FeedFilter, FeedPage, PUBLIC_READS_MAX, PUBLIC_READS_WAITING_MAX, PublicAsk,
    TASK_LISTINGS_DEFAULT, TASK_LISTINGS_MAX, TaskAsk, TaskPage, extract, feed, feed_page, overdue,
    page_of, tasks_page,
};
pub use register::{REGISTER_RECORDS_MAX, RegisterRecord, STATED_CHARS_MAX, Stated};

use crate::config::RunConfig;
use crate::net::{self, Behaviour, BehaviourEvent};
pub use crate::node::GovernRequest;
use crate::node::{Node, NodeError, now};
use crate::store::ViewsStore;
use crate::views::RegisterView;
use crate::views::{RosterView, VersionsView};
use credence_protocol::access::{self, Clearance};
use credence_protocol::bundle::Bundle;
pub use credence_protocol::engine::{
    Answered, QUERY_DEADLINE_DEFAULT_MS, QUERY_DEADLINE_MAX_MS, QueryAsk, QueryResult, QueryScope,
};
use credence_protocol::engine::{
    EngineConfig, GovernanceAnswer, Input, Level, Output, Publication, Readiness, Refusal, Verdict,
};
use credence_protocol::fold::ListingState;
use credence_protocol::model::{AuthorityId, NoticeId, NoticeKind, SubjectKey, SubjectKind};
use credence_protocol::register::ReadKind;
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{DialError, ListenError, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, connection_limits, mdns};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Commands queued from the API before the loop applies back-pressure.
pub const COMMAND_QUEUE_MAX: usize = 1024;
/// Register entries waiting to be written after their turn's requests.
pub const RECORDS_DEFERRED_MAX: usize = 1024;
/// Members discovered on the local network remembered for dialling.
pub const DISCOVERED_MAX: usize = 1024;
const TICK: Duration = Duration::from_millis(100);
const FLUSH_EVERY_MS: u64 = 500;
/// A persist done off the loop: the mark's seq, and how it went.
type PersistDone = (u64, Result<(), String>);

/// Commands already queued that one turn takes together: the own notices
/// they sign share one flush (group commit), each still acknowledged only
/// once durable. Below the engine's `UNDURABLE_MAX`.
const GROUP_COMMANDS_MAX: usize = 256;
/// How often the register is pruned to its retention.
const PRUNE_EVERY_MS: u64 = 3_600_000;
/// Register records pruned in one tick at most (more wait for the next,
/// which comes soon while there are more).
const PRUNE_PER_TICK_MAX: usize = 10_000;

/// Why a command was not done. The API turns these into HTTP statuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DaemonError {
    /// The engine refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The listing is not in this node's records.
    #[error("listing {0} is not in this node's records")]
    UnknownListing(NoticeId),
    /// The listing is past its sharing period: only auditors read it.
    #[error("listing {0} is past its sharing period: only an auditor may read it now")]
    NotShared(NoticeId),
    /// An idempotency key came back with another request.
    #[error(
        "idempotency key {0:?} was used with another request: a key stands for one request (use a new key for a new request)"
    )]
    IdempotencyConflict(String),
    /// The listing's distribution level does not reach the caller.
    #[error(
        "listing {0} is distributed at level {1}, which does not reach this account on this node"
    )]
    Withheld(NoticeId, &'static str),
    /// Too much is already in progress.
    #[error("{0}")]
    Busy(String),
    /// This node holds no signed checkpoint of that log.
    #[error("this node holds no signed checkpoint of the log of {0}: only its own log's, for now")]
    NoCheckpoint(AuthorityId),
    /// This node holds less of that log than was asked about.
    #[error("{0}")]
    NotHeld(String),
    /// The request does not make sense (what is wrong is said).
    #[error("{0}")]
    BadRequest(String),
    /// Something failed inside the node.
    #[error("{0}")]
    Internal(String),
}

impl DaemonError {
    fn internal(e: impl std::fmt::Display) -> DaemonError {
        DaemonError::Internal(e.to_string())
    }
}

pub use crate::views::{AuthorStatus, CheckpointStatus, PeerStatus, Status};
pub use changes::CHANGES_PER_PAGE_MAX;

type Reply<T> = oneshot::Sender<Result<T, DaemonError>>;

/// What the API asks of the loop.
#[derive(Debug)]
pub enum Command {
    /// Sign, store, make durable and publish a notice; with an
    /// idempotency key, at most once for the key.
    Issue(Box<NoticeKind>, Option<IssueKey>, Reply<IssueOutcome>),
    /// Act on the roster chain (propose, sign, submit, take a version).
    Govern(
        GovernRequest,
        Option<IssueKey>,
        Reply<(GovernanceAnswer, bool)>,
    ),
    /// The roster chain and the proposals held.
    Roster(Reply<RosterView>),
    /// Every valid signed roster version held.
    RosterVersions(Reply<VersionsView>),
    /// The signed roster version `number` of the chosen chain.
    RosterVersion(u64, Reply<credence_protocol::governance::SignedVersion>),
    /// A subject's report, signed; registered as a read first.
    Report(SubjectKind, String, Read, Reply<crate::views::ReportView>),
    /// The listings whose subject or linked person has a name matching a
    /// search (normalised), at most a number, and whether there were
    /// more; registered as a read of each person or organisation found.
    Search(String, usize, Read, Reply<(Vec<ListingState>, bool)>),
    /// A subject's listings now (or at a time), registered as a read.
    Subject(
        SubjectKind,
        String,
        Option<Timestamp>,
        Read,
        Reply<Vec<ListingState>>,
    ),
    /// One listing with its history, registered as a read.
    Listing(NoticeId, Option<Timestamp>, Read, Reply<ListingState>),
    /// A page of this authority's tasks.
    Tasks(Option<Timestamp>, reads::TaskAsk, Reply<reads::TaskPage>),
    /// Durable changes of the change feed after a seq, at most a number.
    Changes(u64, usize, Reply<Vec<credence_protocol::changes::Change>>),
    /// A page of what the public feed shows.
    Feed(reads::FeedAsk, Reply<reads::FeedPage>),
    /// The public extract, CSV (`true`) or JSON Lines, streamed in pieces
    /// ([`reads::extract`]).
    Extract(bool, Reply<reads::Chunks>),
    /// A page of the listings with an open objection (the console's
    /// dashboard), and whether more follow.
    Objections(reads::TaskAsk, Reply<(Vec<ListingState>, bool)>),
    /// The public portal's look-ups: listings the feed shows now, and
    /// whether a name search had more.
    Public(reads::PublicAsk, Reply<(Vec<ListingState>, bool)>),
    /// Status.
    Status(Reply<Status>),
    /// Records of the register of reads from an index on, with its
    /// checkpoint signed now.
    Register(u64, usize, Reply<RegisterView>),
    /// A query.
    Query(QueryAsk, Reply<QueryResult>),
    /// Metrics in Prometheus text format.
    Metrics(Reply<String>),
    /// An audit bundle, registered as a read.
    Export(Read, Reply<Bundle>),
    /// The signed checkpoint of a member's log.
    Checkpoint(AuthorityId, Reply<credence_crypto::note::Note>),
    /// Take checkpoint notes (from an audit bundle, or a fixture) as if
    /// they came by gossip; answers how many added something.
    TakeCheckpoints(Vec<credence_crypto::note::Note>, Reply<usize>),
    /// A proof over a member's log.
    Proof(ProofAsk, Reply<ProofAnswer>),
}

pub use crate::node::{IssueKey, IssueOutcome};

/// Who reads a subject's records, and why: registered with the read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The local account.
    pub account: String,
    /// How far it may see ([`credence_protocol::access::serves`]).
    pub clearance: Clearance,
    /// Purpose and legal basis.
    pub stated: Stated,
}

/// A proof asked over a member's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofAsk {
    /// That the notice at `seq` is in the log at `size` (default: held).
    Inclusion {
        /// The log.
        author: AuthorityId,
        /// The notice's seq.
        seq: u64,
        /// The tree size.
        size: Option<u64>,
    },
    /// That the log at `from` is a prefix of the log at `to`.
    Consistency {
        /// The log.
        author: AuthorityId,
        /// The smaller size.
        from: u64,
        /// The larger size.
        to: u64,
    },
    /// The envelopes from `from`, at most `count`.
    Entries {
        /// The log.
        author: AuthorityId,
        /// First seq.
        from: u64,
        /// How many at most.
        count: u64,
    },
}

/// A proof given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofAnswer {
    /// See [`ProofAsk::Inclusion`].
    Inclusion(credence_protocol::checkpoint::proofs::Inclusion),
    /// See [`ProofAsk::Consistency`].
    Consistency(credence_protocol::checkpoint::proofs::Consistency),
    /// See [`ProofAsk::Entries`].
    Entries(Vec<Vec<u8>>),
}

fn proof_error<E: std::error::Error>(
    error: credence_protocol::checkpoint::proofs::ProofError<E>,
) -> DaemonError {
    use credence_protocol::checkpoint::proofs::ProofError;
    match error {
        ProofError::NotHeld { .. } => DaemonError::NotHeld(error.to_string()),
        ProofError::Bad(message) => DaemonError::BadRequest(message),
        ProofError::Store(e) => DaemonError::internal(e),
        // Served by a tree built off the loop instead; never answered.
        ProofError::NotKept { .. } => DaemonError::Internal(error.to_string()),
        ProofError::Damaged(_) => DaemonError::Internal(error.to_string()),
    }
}

/// A running node's handle: its command channel, its stream of accepted
/// notices, and its stop switch.
#[derive(Clone, Debug)]
pub struct Handle {
    /// Commands to the loop.
    pub commands: mpsc::Sender<Command>,
    /// Every notice accepted (issued here, or from gossip or sync).
    pub accepted: broadcast::Sender<NoticeId>,
    /// Stops the node (it flushes first).
    pub stop: mpsc::Sender<()>,
    /// The newest change of the change feed made durable.
    pub changes: tokio::sync::watch::Receiver<u64>,
    /// The federation at the roster's current version (members added,
    /// keys rotated), for the API's names and checks.
    pub federation: tokio::sync::watch::Receiver<credence_protocol::roster::Federation>,
}

/// Handles the daemon keeps for the engine's tokens and tickets.
#[derive(Default)]
struct Pending {
    next: u64,
    /// Outbound sync and query requests → (peer, engine token).
    sync_requests: HashMap<OutboundRequestId, (AuthorityId, u64)>,
    query_requests: HashMap<OutboundRequestId, (AuthorityId, u64)>,
    /// Inbound requests waiting for the engine's answer.
    sync_replies: HashMap<u64, ResponseChannel<Vec<u8>>>,
    /// Inbound sync requests whose ranges are being read off the loop.
    range_replies: HashMap<u64, ResponseChannel<Vec<u8>>>,
    query_replies: HashMap<u64, ResponseChannel<Vec<u8>>>,
    /// Gossip messages waiting for a verdict.
    messages: HashMap<u64, (gossipsub::MessageId, PeerId)>,
    /// Operator requests waiting for the engine.
    issues: HashMap<u64, (Reply<IssueOutcome>, Option<IssueKey>)>,
    governs: HashMap<u64, Reply<GovernanceAnswer>>,
    queries: HashMap<u64, Reply<QueryResult>>,
}

/// The two request-response protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exchange {
    Sync,
    Query,
}

impl Pending {
    fn handle(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn requests(
        &mut self,
        protocol: Exchange,
    ) -> &mut HashMap<OutboundRequestId, (AuthorityId, u64)> {
        match protocol {
            Exchange::Sync => &mut self.sync_requests,
            Exchange::Query => &mut self.query_requests,
        }
    }

    fn replies(&mut self, protocol: Exchange) -> &mut HashMap<u64, ResponseChannel<Vec<u8>>> {
        match protocol {
            Exchange::Sync => &mut self.sync_replies,
            Exchange::Query => &mut self.query_replies,
        }
    }
}

fn outbound_name(error: &request_response::OutboundFailure) -> &'static str {
    match error {
        request_response::OutboundFailure::DialFailure => "dial",
        request_response::OutboundFailure::Timeout => "timeout",
        request_response::OutboundFailure::ConnectionClosed => "closed",
        request_response::OutboundFailure::UnsupportedProtocols => "protocol",
        request_response::OutboundFailure::Io(_) => "io",
    }
}

/// The node's event loop.
pub struct Daemon {
    node: Node,
    /// The current federation, told to the API when the roster moves.
    federation_tx: tokio::sync::watch::Sender<credence_protocol::roster::Federation>,
    swarm: Swarm<Behaviour>,
    topic: gossipsub::IdentTopic,
    checkpoint_topic: gossipsub::IdentTopic,
    members: BTreeMap<PeerId, AuthorityId>,
    peers: BTreeMap<AuthorityId, PeerId>,
    listen: Vec<Multiaddr>,
    /// Dial targets by the engine's index.
    targets: Vec<Multiaddr>,
    discovered: BTreeMap<AuthorityId, Multiaddr>,
    pending: Pending,
    /// Register entries, written once the swarm has sent what this turn
    /// queued.
    records: VecDeque<Box<credence_protocol::engine::RegisterEntry>>,
    last_flush: Timestamp,
    dirty: bool,
    /// While a group of commands is taken: the newest own mark they
    /// signed, persisted once after the last ([`Daemon::on_commands`]).
    group: Option<Option<Box<credence_protocol::engine::Mark>>>,
    /// Persists run off the loop, one at a time ([`Daemon::run`] sets it;
    /// a daemon driven command by command persists in place).
    pipelined: bool,
    /// A persist is running off the loop.
    persisting: bool,
    /// The newest mark signed while a persist ran: persisted next.
    next_mark: Option<Box<credence_protocol::engine::Mark>>,
    /// Persists done off the loop: the mark's seq and how it went.
    persisted: (
        mpsc::UnboundedSender<PersistDone>,
        mpsc::UnboundedReceiver<PersistDone>,
    ),
    /// How long register records stay whole ([`RunConfig`]).
    retention: Option<Duration>,
    /// The register is pruned and old idempotency keys forgotten again
    /// from then.
    prune_at: Timestamp,
    /// A failure that stops the node (storage that cannot be made durable).
    fatal: Option<String>,
    /// A planned stop, to be started again (its key rotated): the store is
    /// flushed as for any stop, then the node exits with
    /// [`crate::node::EXIT_RESTART`].
    restart: Option<String>,
    accepted: broadcast::Sender<NoticeId>,
    /// Operator reads that fold every listing.
    background: Background,
    /// Account name searches, apart.
    searches: Background,
    /// The anonymous feed's reads, apart.
    public: Background,
    /// Public extracts being streamed, apart again.
    extracts: Background,
    feed_cache: FeedCache,
    /// Sync range reads running off the loop, and where they report.
    range_reads: usize,
    ranges_read: (mpsc::Sender<RangesRead>, mpsc::Receiver<RangesRead>),
    /// Name searches read off the loop, back to be registered.
    searched: (mpsc::Sender<Searched>, mpsc::Receiver<Searched>),
    /// The change feed.
    watcher: changes::Watcher,
    /// Answers held until the register records of their reads are
    /// durable, and where the flushes that release them report.
    registered: registered::Registered,
    register_flushed: (
        mpsc::UnboundedSender<RegisterFlushed>,
        mpsc::UnboundedReceiver<RegisterFlushed>,
    ),
}

/// How a flush of the register of reads went.
type RegisterFlushed = Result<(), String>;

/// A sync request's handle and its ranges read (or why not).
type RangesRead = (u64, Result<Vec<u8>, String>);

/// A name search read off the loop, to be registered and answered on it.
struct Searched {
    text: String,
    read: Read,
    at: Timestamp,
    result: Result<(Vec<ListingState>, bool), DaemonError>,
    reply: Reply<(Vec<ListingState>, bool)>,
}

/// Name searches read off the loop and not yet registered: at most those
/// the searches' pool admits.
const SEARCHES_BACK_MAX: usize = reads::SEARCHES_MAX + reads::SEARCHES_WAITING_MAX;

/// Sync range reads (a peer's "send me these notices") read at once off
/// the event loop; past it a request is closed unanswered and the peer
/// asks again in its next round.
pub const SYNC_RANGE_READS_IN_FLIGHT_MAX: usize = 4;

impl Daemon {
    /// Opens the node of `config`, binds its listeners and returns the
    /// loop and its handle. Nothing runs until [`Daemon::run`].
    pub fn start(
        config: RunConfig,
    ) -> Result<(Daemon, Handle, mpsc::Receiver<Command>, mpsc::Receiver<()>), NodeError> {
        let engine = EngineConfig {
            sync_interval_ms: u64::try_from(config.sync_interval.as_millis()).unwrap_or(u64::MAX),
            ..EngineConfig::default()
        };
        let mut node = Node::open_with(&config.data, engine)?;
        let federation = node.federation().clone();
        let current = node.replica().chain().current().clone();
        let current_members = net::members_of(&current);
        let peers = current_members.iter().map(|(p, a)| (*a, *p)).collect();
        // A member whose key was retired in a planned rotation may still
        // connect under it, to learn the version and restart.
        let mut members = current_members;
        members.extend(net::retired_of(&current));
        let mut swarm =
            net::swarm(node.engine.key(), &federation, &members, config.mdns).map_err(|e| {
                NodeError::Config {
                    path: config.data.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| NodeError::Config {
                    path: "listen".into(),
                    reason: format!("cannot listen on {address}: {e}"),
                })?;
        }
        let local = swarm.local_peer_id().to_owned();
        let t = now();
        let mut targets = Vec::new();
        for member in &federation.roster().members {
            if member.key == node.author() {
                continue;
            }
            for text in &member.listen {
                if let Ok(address) = text.parse::<Multiaddr>()
                    && node.engine.add_dial_target(Some(member.key), t).is_some()
                {
                    targets.push(address);
                }
            }
        }
        for address in &config.bootstrap {
            let peer = address.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
                _ => None,
            });
            if peer == Some(local) {
                continue;
            }
            let author = peer.and_then(|p| members.get(&p).copied());
            if node.engine.add_dial_target(author, t).is_some() {
                targets.push(address.clone());
            }
        }
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
        let (stop, stop_rx) = mpsc::channel(1);
        let (accepted, _) = broadcast::channel(4096);
        let (watcher, changes_rx) = changes::Watcher::new(node.keeper()?);
        let (federation_tx, federation_rx) = tokio::sync::watch::channel(node.federation().clone());
        let topic = net::topic(&federation);
        let checkpoint_topic = net::checkpoint_topic(&federation);
        let daemon = Daemon {
            node,
            federation_tx,
            swarm,
            topic,
            checkpoint_topic,
            members,
            peers,
            listen: Vec::new(),
            targets,
            discovered: BTreeMap::new(),
            pending: Pending::default(),
            records: VecDeque::new(),
            last_flush: t,
            dirty: false,
            group: None,
            pipelined: false,
            persisting: false,
            next_mark: None,
            persisted: mpsc::unbounded_channel(),
            registered: registered::Registered::default(),
            register_flushed: mpsc::unbounded_channel(),
            retention: config.register_retention,
            prune_at: t,
            fatal: None,
            restart: None,
            accepted: accepted.clone(),
            background: Background::operators(),
            searches: Background::searches(),
            public: Background::public(),
            extracts: Background::extracts(),
            feed_cache: FeedCache::default(),
            range_reads: 0,
            ranges_read: {
                let (tx, rx) = mpsc::channel(SYNC_RANGE_READS_IN_FLIGHT_MAX);
                (tx, rx)
            },
            searched: mpsc::channel(SEARCHES_BACK_MAX),
            watcher,
        };
        let handle = Handle {
            commands,
            accepted,
            stop,
            changes: changes_rx,
            federation: federation_rx,
        };
        Ok((daemon, handle, command_rx, stop_rx))
    }

    /// The federation.
    pub fn federation(&self) -> &credence_protocol::roster::Federation {
        self.node.federation()
    }

    /// The node's libp2p peer id.
    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until `stop` fires (or its senders are gone), then flushes.
    /// A store or mark that cannot be made durable stops the node with an
    /// error (fail-stop: the service manager restarts it).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: mpsc::Receiver<()>,
        listening: Option<oneshot::Sender<Vec<Multiaddr>>>,
    ) -> Result<(), NodeError> {
        let mut listening = listening;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut views_step = tokio::time::interval(changes::VIEWS_STEP);
        views_step.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let views_done = Arc::clone(&self.watcher.done);
        let readiness = self.node.engine.readiness().clone();
        if readiness != Readiness::Ready {
            tracing::warn!("{}", readiness.explain());
        }
        self.pipelined = true;
        while self.fatal.is_none() && self.restart.is_none() {
            let deferred = self.node.engine.has_deferred() || !self.records.is_empty();
            tokio::select! {
                biased;
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::NewListenAddr { address, .. } = &event {
                        self.listen.push(address.clone());
                        if let Some(tx) = listening.take() {
                            let _ = tx.send(self.listen.clone());
                        }
                    }
                    self.on_swarm(event);
                }
                command = commands.recv() => match command {
                    Some(command) => self.on_commands(command, &mut commands),
                    None => break,
                },
                _ = stop.recv() => break,
                _ = tick.tick() => self.on_tick(),
                _ = views_step.tick(), if self.watcher.waiting() && !self.watcher.running() => self.watch_step(now()),
                _ = views_done.notified(), if self.watcher.running() => self.watch_done(),
                Some((reply, result)) = self.ranges_read.1.recv() => {
                    self.range_reads = self.range_reads.saturating_sub(1);
                    self.feed(Input::RangesRead { reply, result });
                }
                Some((seq, result)) = self.persisted.1.recv() => self.on_persisted(seq, result),
                Some(result) = self.register_flushed.1.recv() => self.on_register_flushed(result),
                Some(searched) = self.searched.1.recv() => self.on_searched(searched),
                _ = std::future::ready(()), if deferred => self.run_deferred(),
            }
        }
        // What was signed is made durable (and answered) before stopping.
        while self.persisting {
            match self.persisted.1.recv().await {
                Some((seq, result)) => self.on_persisted(seq, result),
                None => break,
            }
        }
        while !self.records.is_empty() || self.node.engine.has_deferred() {
            self.run_deferred();
        }
        // What the views' step keeps is written before the last flush.
        self.watch_settle();
        if let Some(reason) = self.fatal.take() {
            tracing::error!("stopping: {reason}");
            return Err(NodeError::Config {
                path: self.node.dir.display().to_string(),
                reason,
            });
        }
        match &self.restart {
            Some(reason) => tracing::warn!("stopping to be started again: {reason}"),
            None => tracing::info!("stopping: flushing the store"),
        }
        let flushed = self.node.engine.replica_mut().store_mut().flush();
        // The reads held for the register are answered once this flush
        // made their records durable (a flush still running is covered).
        let held = self.registered.all();
        self.release(
            held,
            flushed.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        );
        flushed?;
        match self.restart.take() {
            Some(reason) => Err(NodeError::Restart { reason }),
            None => Ok(()),
        }
    }

    /// Takes `first` and the commands already queued behind it (at most
    /// [`GROUP_COMMANDS_MAX`]) in one turn: what they sign is made durable
    /// by one flush at the end, then acknowledged (group commit).
    fn on_commands(&mut self, first: Command, commands: &mut mpsc::Receiver<Command>) {
        self.group = Some(None);
        self.on_command(first);
        for _ in 1..GROUP_COMMANDS_MAX {
            match commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => break,
            }
        }
        // The requests are answered once the persist is done.
        if let Some(Some(mark)) = self.group.take() {
            self.persist_soon(mark);
        }
    }

    /// Makes own notices durable up to `mark` off the loop, one persist
    /// at a time: a mark signed meanwhile waits, and only the newest.
    fn persist_soon(&mut self, mark: Box<credence_protocol::engine::Mark>) {
        if self.persisting {
            self.next_mark = Some(mark);
        } else {
            self.start_persist(*mark);
        }
    }

    fn start_persist(&mut self, mark: credence_protocol::engine::Mark) {
        let seq = mark.seq;
        match self.node.persist_later(mark) {
            Ok(work) => {
                self.persisting = true;
                let done = self.persisted.0.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = done.send((seq, work().map_err(|e| e.to_string())));
                });
            }
            Err(e) => self.on_persisted(seq, Err(e.to_string())),
        }
    }

    /// A persist is done: the engine hears it, and the next one starts.
    fn on_persisted(&mut self, seq: u64, result: Result<(), String>) {
        self.persisting = false;
        let input = match result {
            Ok(()) => Input::Persisted { seq },
            Err(reason) => {
                self.fatal = Some(format!(
                    "own notice seq {seq} could not be made durable: {reason}"
                ));
                Input::PersistFailed { seq, reason }
            }
        };
        self.feed(input);
        if let Some(next) = self.next_mark.take()
            && self.fatal.is_none()
        {
            self.start_persist(*next);
        }
    }

    /// Makes own notices durable up to `mark`; what the engine hears back.
    fn persist(&mut self, mark: &credence_protocol::engine::Mark) -> Input<'static> {
        let seq = mark.seq;
        match self.node.persist(mark) {
            Ok(()) => Input::Persisted { seq },
            Err(e) => {
                let reason = e.to_string();
                self.fatal = Some(format!(
                    "own notice seq {seq} could not be made durable: {reason}"
                ));
                Input::PersistFailed { seq, reason }
            }
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        let outputs = self.node.engine.handle(input, now());
        self.apply(outputs);
    }

    /// Carries out the engine's outputs, in order; outputs that report
    /// back (persist, publish) feed their result to the engine at once.
    fn apply(&mut self, outputs: Vec<Output>) {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            let follow = self.carry_out(output);
            if let Some(input) = follow {
                let more = self.node.engine.handle(input, now());
                queue.extend(more);
            }
        }
    }

    /// Reads a peer's sync ranges on a blocking thread over a snapshot, so
    /// that reading up to a batch of notices from disk never holds up the
    /// loop; the answer comes back through `ranges_read`.
    fn read_ranges(
        &mut self,
        reply: u64,
        ranges: Box<[credence_protocol::sync::RangeAsk]>,
    ) -> Option<Input<'static>> {
        if self.range_reads >= SYNC_RANGE_READS_IN_FLIGHT_MAX {
            return Some(Input::RangesRead {
                reply,
                result: Err(format!(
                    "{SYNC_RANGE_READS_IN_FLIGHT_MAX} range reads already in progress"
                )),
            });
        }
        let snapshot = match self
            .node
            .engine
            .replica_mut()
            .store_mut()
            .snapshot_cheaply()
        {
            Ok(snapshot) => snapshot,
            Err(e) => {
                self.fatal = Some(format!("the store cannot freeze its buffered writes: {e}"));
                return Some(Input::RangesRead {
                    reply,
                    result: Err(e.to_string()),
                });
            }
        };
        // The request stays open until the read comes back.
        if let Some(channel) = self.pending.sync_replies.remove(&reply) {
            self.pending.range_replies.insert(reply, channel);
        }
        self.range_reads += 1;
        let done = self.ranges_read.0.clone();
        tokio::task::spawn_blocking(move || {
            let result = credence_protocol::sync::read_ranges(&snapshot, &ranges);
            // Capacity is the number in flight: this never waits.
            let _ = done.blocking_send((reply, result));
        });
        None
    }

    fn carry_out(&mut self, output: Output) -> Option<Input<'static>> {
        match output {
            Output::Verdict { message, verdict } => {
                if let Some((id, source)) = self.pending.messages.remove(&message) {
                    let acceptance = match verdict {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Reject => MessageAcceptance::Reject,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                    };
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, acceptance);
                }
            }
            Output::Accepted {
                id, author, seq, ..
            } => {
                self.dirty = true;
                self.watcher.touch(id, author, seq);
                let _ = self.accepted.send(id);
            }
            Output::Forked { .. } => self.dirty = true,
            Output::Publish { id, envelope } => {
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), envelope.to_vec())
                {
                    Ok(_) | Err(PublishError::Duplicate) => Publication::Sent,
                    Err(PublishError::NoPeersSubscribedToTopic)
                    | Err(PublishError::AllQueuesFull(_)) => Publication::NoPeers,
                    Err(e) => {
                        tracing::warn!("publish failed: {e}");
                        Publication::Failed
                    }
                };
                return Some(Input::Published { id, result });
            }
            Output::PublishCheckpoint { bytes } => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.checkpoint_topic.clone(), bytes)
                    && !matches!(
                        e,
                        PublishError::Duplicate
                            | PublishError::NoPeersSubscribedToTopic
                            | PublishError::AllQueuesFull(_)
                    )
                {
                    tracing::warn!("publishing a checkpoint failed: {e}");
                }
            }
            Output::SendSync { peer, token, bytes } => {
                if let Some(peer_id) = self.peers.get(&peer).copied() {
                    let request = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_request(&peer_id, bytes);
                    if token != 0 {
                        self.pending.sync_requests.insert(request, (peer, token));
                    }
                }
            }
            Output::ReadRanges { reply, ranges } => return self.read_ranges(reply, ranges),
            Output::AnswerSync { reply, bytes } => {
                let channel = self
                    .pending
                    .sync_replies
                    .remove(&reply)
                    .or_else(|| self.pending.range_replies.remove(&reply));
                if let (Some(channel), Some(bytes)) = (channel, bytes) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, bytes);
                }
            }
            Output::SendQuery { peer, token, bytes } => {
                if let Some(peer_id) = self.peers.get(&peer).copied() {
                    let request = self
                        .swarm
                        .behaviour_mut()
                        .query
                        .send_request(&peer_id, bytes);
                    self.pending.query_requests.insert(request, (peer, token));
                }
            }
            Output::AnswerQuery { reply, bytes } => {
                if let (Some(channel), Some(bytes)) =
                    (self.pending.query_replies.remove(&reply), bytes)
                {
                    // The record of this peer's read (output just before)
                    // is durable before the answer leaves.
                    while let Some(entry) = self.records.pop_front() {
                        self.write_record(&entry);
                    }
                    self.when_registered(registered::Waiting::Peer(channel, bytes));
                }
            }
            Output::Persist { mark } => {
                // In a group of commands, the newest mark is persisted
                // once, after the last of them.
                if let Some(group) = &mut self.group {
                    *group = Some(mark);
                    return None;
                }
                if self.pipelined {
                    self.persist_soon(mark);
                    return None;
                }
                return Some(self.persist(&mark));
            }
            Output::Governed { ticket, result } => {
                if let Some(reply) = self.pending.governs.remove(&ticket) {
                    let _ = reply.send((*result).map_err(DaemonError::BadRequest));
                }
            }
            Output::RosterChanged { number } => {
                self.dirty = true;
                self.follow_roster(number);
                let implements = self.node.implements();
                if let Some(keeper) = self.watcher.keeper()
                    && let Err(e) = keeper.follow_roster(self.node.engine.replica(), implements)
                {
                    tracing::error!("change feed: {e}");
                }
                self.watcher.current = false;
            }
            Output::Issued { ticket, result } => {
                if let Some((reply, key)) = self.pending.issues.remove(&ticket) {
                    if let (Ok(issued), Some(key)) = (&result, &key) {
                        self.remember_issued(key, issued.id, issued.seq);
                    }
                    let _ = reply.send(
                        result
                            .map(|issued| IssueOutcome {
                                id: issued.id,
                                seq: issued.seq,
                                replayed: false,
                            })
                            .map_err(|refusal| DaemonError::Refused(*refusal)),
                    );
                }
            }
            Output::QueryDone { ticket, result } => {
                // The query's own record (output just before) is in the
                // register, durable, before its answer reaches the caller.
                while let Some(entry) = self.records.pop_front() {
                    self.write_record(&entry);
                }
                if let Some(reply) = self.pending.queries.remove(&ticket) {
                    self.after_register(reply, (*result).map_err(DaemonError::Refused));
                }
            }
            Output::Record(entry) => {
                // Written after this turn's requests have left, unless too
                // many already wait: then at once.
                if self.records.len() >= RECORDS_DEFERRED_MAX {
                    self.write_record(&entry);
                } else {
                    self.records.push_back(entry);
                }
            }
            Output::Dial { target } => {
                if let Some(address) = self.targets.get(target).cloned() {
                    let peer = address.iter().find_map(|p| match p {
                        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
                        _ => None,
                    });
                    let opts = match peer {
                        Some(peer) => DialOpts::peer_id(peer)
                            .addresses(vec![address.clone()])
                            .build(),
                        None => DialOpts::unknown_peer_id().address(address.clone()).build(),
                    };
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!("dial {address}: {e}");
                    }
                }
            }
            Output::DialPeer { peer } => {
                if let (Some(peer_id), Some(address)) = (
                    self.peers.get(&peer).copied(),
                    self.discovered.get(&peer).cloned(),
                ) {
                    let _ = self
                        .swarm
                        .dial(DialOpts::peer_id(peer_id).addresses(vec![address]).build());
                }
            }
            Output::Disconnect { peer } => {
                if let Some(peer_id) = self.peers.get(&peer).copied() {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
            }
            Output::Readiness(readiness) => match readiness {
                Readiness::Forked { .. } | Readiness::Halted { .. } => {
                    tracing::error!("issuing stopped: {}", readiness.explain())
                }
                other => tracing::info!("issuing: {}", other.name()),
            },
            Output::Log { level, message } => match level {
                Level::Info => tracing::info!("{message}"),
                Level::Warn => tracing::warn!("{message}"),
                Level::Error => tracing::error!("{message}"),
            },
        }
        None
    }

    /// Carries out an operator's act on the roster chain through the
    /// engine.
    /// A governance act, at most once per idempotency key: a retry gets
    /// the first answer (and `true`).
    fn govern_once(
        &mut self,
        request: GovernRequest,
        key: Option<&IssueKey>,
        t: Timestamp,
    ) -> Result<(GovernanceAnswer, bool), DaemonError> {
        if let Some(key) = key
            && let Some(answer) = self.node.governed_before(key, t).map_err(keyed_error)?
        {
            return Ok((answer, true));
        }
        let answer = self.govern(request)?;
        if let Some(key) = key {
            self.node
                .remember_governed(key, &answer, t)
                .map_err(keyed_error)?;
        }
        Ok((answer, false))
    }

    fn govern(&mut self, request: GovernRequest) -> Result<GovernanceAnswer, DaemonError> {
        let commands = crate::node::governance_commands(self.node.replica(), request)
            .map_err(DaemonError::BadRequest)?;
        let mut answer = Err(DaemonError::Internal("the engine gave no answer".into()));
        for command in commands {
            let ticket = self.pending.handle();
            let (tx, mut rx) = oneshot::channel();
            self.pending.governs.insert(ticket, tx);
            self.feed(Input::Govern {
                ticket,
                command: Box::new(command),
            });
            self.pending.governs.remove(&ticket);
            answer = rx
                .try_recv()
                .unwrap_or_else(|_| Err(DaemonError::Internal("the engine gave no answer".into())));
            if let Err(e) = &answer {
                return Err(DaemonError::BadRequest(e.to_string()));
            }
        }
        self.dirty = true;
        answer
    }

    /// The roster's current version changed: the connection gate follows
    /// it. Members removed (or whose key was rotated) are disconnected and
    /// refused; members added are admitted and dialled.
    fn follow_roster(&mut self, number: u64) {
        self.federation_tx
            .send_replace(self.node.federation().clone());
        let current = self.node.replica().chain().current().clone();
        // This node's own key retired: with its next key prepared, it stops
        // to be restarted under it (a libp2p identity cannot change while
        // it runs); without one, it stops issuing and says so.
        let own = AuthorityId(self.node.engine.key().public_bytes());
        if current.member_of_key(&own).is_none() {
            let next = crate::keyfile::read(&self.node.dir.join(crate::node::NEXT_KEY_FILE)).ok();
            let owner = current.key_owners.get(&own).copied();
            match next {
                Some(next)
                    if owner.is_some()
                        && current.member_of_key(&AuthorityId(next.public_bytes())) == owner =>
                {
                    self.restart = Some(format!(
                        "roster version {number} rotated this node's key; start it again to run under its next key"
                    ));
                }
                _ => tracing::error!(
                    "roster version {number}: this node's key {} no longer signs for its member; it issues nothing more",
                    own.short()
                ),
            }
        }
        let mut members = net::members_of(&current);
        let retired = net::retired_of(&current);
        let t = now();
        for (peer, member) in &self.members {
            if !members.contains_key(peer) && !retired.contains_key(peer) {
                tracing::warn!(
                    "roster version {number}: {} ({peer}) may no longer connect",
                    current.federation.name_of(member)
                );
                self.swarm.behaviour_mut().gate.disallow_peer(*peer);
                let _ = self.swarm.disconnect_peer_id(*peer);
            }
        }
        let me = self.node.author();
        for (peer, member) in &members {
            self.swarm.behaviour_mut().gate.allow_peer(*peer);
            if self.members.contains_key(peer) || *member == me {
                continue;
            }
            tracing::info!(
                "roster version {number}: {} ({peer}) admitted",
                current.federation.name_of(member)
            );
            let addresses = current
                .federation
                .member(member)
                .map(|m| m.listen.clone())
                .unwrap_or_default();
            for text in addresses {
                if let Ok(address) = text.parse::<Multiaddr>()
                    && self.node.engine.add_dial_target(Some(*member), t).is_some()
                {
                    let address = address.with_p2p(*peer).unwrap_or_else(|a| a);
                    self.targets.push(address.clone());
                    let _ = self
                        .swarm
                        .dial(DialOpts::peer_id(*peer).addresses(vec![address]).build());
                }
            }
        }
        self.peers = members.iter().map(|(p, a)| (*a, *p)).collect();
        for (peer, member) in retired {
            self.swarm.behaviour_mut().gate.allow_peer(peer);
            members.insert(peer, member);
        }
        self.members = members;
    }

    fn on_tick(&mut self) {
        self.feed(Input::Tick);
        let t = now();
        self.watch_tick(t);
        if self.dirty && t.0.saturating_sub(self.last_flush.0) >= FLUSH_EVERY_MS {
            // Own notices are durable before they are acknowledged; what
            // came from peers and the register are made durable here, off
            // this loop's thread.
            if let Err(e) = self.node.engine.replica_mut().store_mut().flush_soon() {
                self.fatal = Some(format!("the store could not be flushed: {e}"));
            }
            self.dirty = false;
            self.last_flush = t;
        }
        if t >= self.prune_at {
            self.prune_at = t.plus_ms(PRUNE_EVERY_MS);
            match self.node.replica().store().prune_idempotency(t) {
                Ok(0) => {}
                Ok(gone) => tracing::debug!("{gone} idempotency keys older than a day forgotten"),
                Err(e) => tracing::error!("cannot forget old idempotency keys: {e}"),
            }
            if let Some(retention) = self.retention {
                self.prune_register(retention, t);
            }
        }
    }

    /// Prunes register records older than `retention` to their leaf hash,
    /// a batch at a time; the next batch at the next tick while there are
    /// more (else in an hour, as [`Daemon::on_tick`] set).
    fn prune_register(&mut self, retention: Duration, t: Timestamp) {
        let keep_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        let before = Timestamp(t.0.saturating_sub(keep_ms));
        let store = self.node.replica().store();
        match store.register_prune(before, PRUNE_PER_TICK_MAX) {
            Ok(pruned) => {
                if pruned > 0 {
                    tracing::info!(
                        "register of reads: {pruned} records made before {before} pruned to their leaf hash (retention {})",
                        humantime::format_duration(retention)
                    );
                    self.dirty = true;
                }
                if pruned == PRUNE_PER_TICK_MAX {
                    self.prune_at = t;
                }
            }
            Err(e) => tracing::error!("cannot prune the register of reads: {e}"),
        }
    }

    fn run_deferred(&mut self) {
        if let Some(entry) = self.records.pop_front() {
            self.write_record(&entry);
        } else if self.node.engine.has_deferred() {
            self.feed(Input::RunDeferred);
        }
    }

    fn write_record(&mut self, entry: &credence_protocol::engine::RegisterEntry) {
        let result = register::query_read(entry).and_then(|record| {
            self.register(&record)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::error!("cannot write the register of reads: {e}");
        }
    }

    /// Answers `reply` once the register records written so far are
    /// durable (a read is never answered before its record could survive
    /// a crash); a refusal goes at once, as it registered nothing.
    fn after_register<T: Send + 'static>(
        &mut self,
        reply: Reply<T>,
        result: Result<T, DaemonError>,
    ) {
        match result {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(answer) => {
                self.when_registered(registered::Waiting::Caller(Box::new(move |durable| {
                    let _ = reply.send(durable.map(|()| answer));
                })))
            }
        }
    }

    /// Holds an answer until the register is durable: a flush starts off
    /// the loop unless one runs (then the next takes it); a daemon driven
    /// command by command flushes in place.
    fn when_registered(&mut self, waiting: registered::Waiting) {
        self.registered.hold(waiting);
        if !self.pipelined {
            let flushed = self.node.replica().store().register_flush();
            let held = self.registered.all();
            self.release(held, flushed.map_err(|e| e.to_string()));
            return;
        }
        self.flush_register();
    }

    fn flush_register(&mut self) {
        if !self.registered.due() {
            return;
        }
        self.registered.start();
        let flush = self.node.replica().store().register_flush_later();
        let done = self.register_flushed.0.clone();
        tokio::task::spawn_blocking(move || {
            let _ = done.send(flush().map_err(|e| e.to_string()));
        });
    }

    /// A flush for held answers is done: they go (or are refused), and
    /// the next flush starts for those that came meanwhile.
    fn on_register_flushed(&mut self, result: Result<(), String>) {
        let held = self.registered.done();
        self.release(held, result);
        self.flush_register();
    }

    /// Answers the reads held (or refuses them). A register that cannot
    /// be made durable stops the node, as a store that cannot does: it
    /// could answer no read.
    fn release(&mut self, held: Vec<registered::Waiting>, result: Result<(), String>) {
        if let Err(reason) = &result {
            tracing::error!(
                "the register of reads could not be made durable: {reason}; {} reads not answered",
                held.len()
            );
            if self.fatal.is_none() {
                self.fatal = Some(format!(
                    "the register of reads could not be made durable: {reason}"
                ));
            }
        }
        for waiting in held {
            match waiting {
                registered::Waiting::Caller(answer) => answer(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| registered::not_durable(e)),
                ),
                registered::Waiting::Peer(channel, bytes) => {
                    if result.is_ok() {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .query
                            .send_response(channel, bytes);
                    }
                }
            }
        }
    }

    /// Records of the register from `from` on, with its checkpoint signed
    /// now by this node's key.
    fn register_page(&self, from: u64, limit: usize) -> Result<RegisterView, DaemonError> {
        register::page(
            self.node.replica().store(),
            self.node.federation(),
            &self.node.author(),
            self.node.engine.key(),
            from,
            limit,
        )
        .map_err(DaemonError::Internal)
    }

    /// A subject's report at `t`: every listing that names it, whatever
    /// its level or period (the route serves accounts with the audit
    /// permission only), and the register's records about it, this
    /// request's own included.
    fn report(
        &mut self,
        kind: SubjectKind,
        id: &str,
        read: &Read,
        t: Timestamp,
    ) -> Result<crate::views::ReportView, DaemonError> {
        let key = SubjectKey::new(kind, id).ok_or_else(|| {
            DaemonError::BadRequest(format!("{id:?} is not an 18-character identifier"))
        })?;
        let states = self
            .node
            .replica()
            .subject_listings(&key, t)
            .map_err(DaemonError::internal)?;
        let record = register::local_read(
            ReadKind::Report,
            &read.account,
            Some((kind, id.to_string())),
            &read.stated,
            register::listings_digest(&states),
            t,
        );
        self.register(&record)?;
        register::report(
            self.node.replica().store(),
            self.node.federation(),
            &self.node.author(),
            self.node.engine.key(),
            (kind, id),
            t,
            &states,
        )
        .map_err(DaemonError::Internal)
    }

    /// What an idempotency key already stands for ([`Node::replay`]).
    fn replay(
        &self,
        kind: &NoticeKind,
        key: &IssueKey,
        t: Timestamp,
    ) -> Result<Option<IssueOutcome>, DaemonError> {
        self.node.replay(kind, key, t).map_err(keyed_error)
    }

    /// Records the notice an idempotency key signed
    /// ([`Node::remember_issued`]); a failure is logged: the notice is
    /// durable, and a retry finds it in the own log.
    fn remember_issued(&self, key: &IssueKey, id: NoticeId, seq: u64) {
        if let Err(e) = self.node.remember_issued(key, id, seq, now()) {
            tracing::error!("cannot record idempotency key {:?}: {e}", key.key);
        }
    }

    /// An account of this node at `clearance`, as the access rules see it.
    fn viewer(&self, clearance: Clearance) -> access::Viewer {
        access::Viewer {
            member: self.node.author(),
            clearance,
        }
    }

    /// Appends a read to the register of reads (durable with the next
    /// flush); returns its index.
    fn register(
        &mut self,
        record: &credence_protocol::register::ReadRecord,
    ) -> Result<u64, DaemonError> {
        let bytes = record.encode().map_err(DaemonError::internal)?;
        let index = self
            .node
            .replica()
            .store()
            .register_append(&bytes, record.subject_key().as_ref())
            .map_err(DaemonError::internal)?;
        self.dirty = true;
        Ok(index)
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let Some(author) = self.members.get(&peer_id).copied() else {
                    // The gate refuses non-members; this is a second line.
                    self.feed(Input::Refused { over_limit: false });
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                let target = endpoint.is_dialer().then(|| {
                    self.targets
                        .iter()
                        .position(|a| a == endpoint.get_remote_address())
                });
                if num_established.get() == 1 {
                    self.feed(Input::Connected {
                        peer: author,
                        target: target.flatten(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                if let Some(author) = self.members.get(&peer_id).copied() {
                    tracing::info!("disconnected from {}", self.federation().name_of(&author));
                    self.feed(Input::Disconnected { peer: author });
                }
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                let over_limit = cause
                    .downcast_ref::<connection_limits::Exceeded>()
                    .is_some();
                if over_limit {
                    tracing::warn!("refused a connection from {send_back_addr}: {cause}");
                } else {
                    tracing::warn!(
                        "refused a connection from {send_back_addr}: not a roster member"
                    );
                }
                self.feed(Input::Refused { over_limit });
            }
            SwarmEvent::OutgoingConnectionError {
                error: DialError::Denied { cause },
                ..
            } => {
                let over_limit = cause
                    .downcast_ref::<connection_limits::Exceeded>()
                    .is_some();
                self.feed(Input::Refused { over_limit });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let Some(from) = self.members.get(&propagation_source).copied() else {
                    return;
                };
                let handle = self.pending.handle();
                self.pending
                    .messages
                    .insert(handle, (message_id, propagation_source));
                if message.topic == self.checkpoint_topic.hash() {
                    self.feed(Input::WitnessGossip {
                        from,
                        message: handle,
                        bytes: &message.data,
                    });
                } else {
                    let id = NoticeId::from(credence_crypto::merkle::leaf_hash(&message.data));
                    self.feed(Input::Gossip {
                        from,
                        message: handle,
                        id,
                        bytes: &message.data,
                    });
                }
                // A verdict the engine did not give is "ignore".
                if let Some((id, source)) = self.pending.messages.remove(&handle) {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                ..
            })) => self.feed(Input::Subscribed),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => {
                self.on_exchange(Exchange::Sync, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Query(event)) => {
                self.on_exchange(Exchange::Query, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer_id, address) in found {
                    if let Some(author) = self.members.get(&peer_id).copied() {
                        if self.discovered.len() < DISCOVERED_MAX
                            || self.discovered.contains_key(&author)
                        {
                            self.discovered.insert(author, address);
                        }
                        self.feed(Input::Discovered { peer: author });
                    }
                }
            }
            _ => {}
        }
    }

    /// A request-response event of the sync or the query protocol, as an
    /// engine input.
    fn on_exchange(
        &mut self,
        protocol: Exchange,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                let Some(author) = self.members.get(&peer).copied() else {
                    return;
                };
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        let reply = self.pending.handle();
                        self.pending.replies(protocol).insert(reply, channel);
                        let bytes = request.as_slice();
                        self.feed(match protocol {
                            Exchange::Sync => Input::SyncRequest {
                                peer: author,
                                reply,
                                bytes,
                            },
                            Exchange::Query => Input::QueryRequest {
                                peer: author,
                                reply,
                                bytes,
                            },
                        });
                        // Unanswered: dropping the channel closes the stream.
                        self.pending.replies(protocol).remove(&reply);
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some((peer, token)) =
                            self.pending.requests(protocol).remove(&request_id)
                        {
                            let bytes = response.as_slice();
                            self.feed(match protocol {
                                Exchange::Sync => Input::SyncResponse { peer, token, bytes },
                                Exchange::Query => Input::QueryResponse { peer, token, bytes },
                            });
                        }
                    }
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((peer, token)) = self.pending.requests(protocol).remove(&request_id) {
                    let reason = outbound_name(&error);
                    self.feed(match protocol {
                        Exchange::Sync => Input::SyncFailed {
                            peer,
                            token,
                            reason,
                        },
                        Exchange::Query => Input::QueryFailed {
                            peer,
                            token,
                            reason,
                        },
                    });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!("inbound {protocol:?} request from {peer} failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        let t = now();
        match command {
            Command::Govern(request, key, reply) => {
                let _ = reply.send(self.govern_once(request, key.as_ref(), t));
            }
            Command::Roster(reply) => {
                let _ = reply.send(Ok(RosterView::of(&self.node.engine)));
            }
            Command::RosterVersions(reply) => {
                let versions = self
                    .node
                    .replica()
                    .chain()
                    .signed_versions()
                    .iter()
                    .filter_map(|v| v.to_bytes().ok())
                    .map(hex::encode)
                    .collect();
                let _ = reply.send(Ok(VersionsView { versions }));
            }
            Command::RosterVersion(number, reply) => {
                let signed = self
                    .node
                    .replica()
                    .chain()
                    .version(number)
                    .and_then(|v| v.signed.as_deref().cloned())
                    .ok_or_else(|| {
                        DaemonError::BadRequest(format!(
                            "roster version {number} is not on this node's chain (version 0 is the genesis roster)"
                        ))
                    });
                let _ = reply.send(signed);
            }
            Command::Issue(kind, key, reply) => {
                if let Some(key) = &key {
                    match self.replay(&kind, key, t) {
                        Ok(None) => {}
                        Ok(Some(outcome)) => {
                            let _ = reply.send(Ok(outcome));
                            return;
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return;
                        }
                    }
                }
                let ticket = self.pending.handle();
                self.pending.issues.insert(ticket, (reply, key));
                // Answered once durable: at the end of this turn's group.
                self.feed(Input::Issue { ticket, kind });
            }
            Command::Report(kind, id, read, reply) => {
                let report = self.report(kind, &id, &read, t);
                self.after_register(reply, report);
            }
            Command::Search(text, limit, read, reply) => {
                // The candidates are read and folded off the loop (a broad
                // search folds thousands); what it found is registered on
                // the loop, before the answer is sent.
                let viewer = self.viewer(read.clearance);
                let (found, searched) = oneshot::channel();
                let asked = text.clone();
                self.searches.run(
                    self.node.federation().clone(),
                    self.node.replica().store().snapshot(),
                    found,
                    move |replica| {
                        let candidates = replica
                            .store()
                            .name_candidates(&credence_protocol::names::grams(&asked))
                            .map_err(DaemonError::internal)?;
                        crate::node::search_among(
                            replica,
                            candidates,
                            &asked,
                            limit,
                            &|_| true,
                            &|s| access::serves(s, &viewer),
                            t,
                        )
                        .map_err(DaemonError::internal)
                    },
                );
                let back = self.searched.0.clone();
                tokio::spawn(async move {
                    let result = searched.await.unwrap_or_else(|_| {
                        Err(DaemonError::internal(
                            "the search stopped before it answered",
                        ))
                    });
                    let _ = back
                        .send(Searched {
                            text,
                            read,
                            at: t,
                            result,
                            reply,
                        })
                        .await;
                });
            }
            Command::Public(ask, reply) => {
                let indexed = self.views_current(t);
                let shown = |s: &ListingState| credence_protocol::public::shown(s, t).is_some();
                let replica = self.node.replica();
                let result = match ask {
                    PublicAsk::Subject(key) => replica
                        .subject_listings(&key, t)
                        .map(|mut states| {
                            states.retain(shown);
                            (states, false)
                        })
                        .map_err(DaemonError::internal),
                    // Off the event loop, on the public places: through the
                    // views, a listing the feed does not show is passed over
                    // without folding it.
                    PublicAsk::Name(text, limit) => {
                        self.public.run(
                            self.node.federation().clone(),
                            replica.store().snapshot(),
                            reply,
                            move |replica| reads::public_search(replica, &text, limit, t, indexed),
                        );
                        return;
                    }
                    PublicAsk::Listing(id) => replica
                        .listing_state(&id, t)
                        .map(|state| (state.into_iter().filter(shown).collect(), false))
                        .map_err(DaemonError::internal),
                };
                let _ = reply.send(result);
            }
            Command::Subject(kind, id, at, read, reply) => {
                let Some(key) = SubjectKey::new(kind, &id) else {
                    let _ = reply.send(Err(DaemonError::BadRequest(format!(
                        "{id:?} is not an 18-character identifier"
                    ))));
                    return;
                };
                // Nothing is returned that was not registered first.
                let result = self
                    .node
                    .replica()
                    .subject_listings(&key, at.unwrap_or(t))
                    .map_err(DaemonError::internal)
                    .and_then(|mut states| {
                        // What the listing's level and sharing period let
                        // this account see, as the subject or as a linked
                        // person.
                        let viewer = self.viewer(read.clearance);
                        states.retain(|state| access::serves(state, &viewer));
                        let record = register::local_read(
                            ReadKind::Lookup,
                            &read.account,
                            Some((kind, id)),
                            &read.stated,
                            register::listings_digest(&states),
                            t,
                        );
                        self.register(&record).map(|_| states)
                    });
                self.after_register(reply, result);
            }
            Command::Listing(id, at, read, reply) => {
                let result = match self.node.replica().listing_state(&id, at.unwrap_or(t)) {
                    Ok(Some(state)) if !access::serves(&state, &self.viewer(read.clearance)) => {
                        Err(if state.shared {
                            DaemonError::Withheld(id, state.listing.classification.name())
                        } else {
                            DaemonError::NotShared(id)
                        })
                    }
                    Ok(Some(state)) => {
                        let subject = &state.listing.subject;
                        let record = register::local_read(
                            ReadKind::Listing,
                            &read.account,
                            Some((subject.kind, subject.id.clone())),
                            &read.stated,
                            register::listings_digest(std::slice::from_ref(&state)),
                            t,
                        );
                        self.register(&record).map(|_| state)
                    }
                    Ok(None) => Err(DaemonError::UnknownListing(id)),
                    Err(e) => Err(DaemonError::internal(e)),
                };
                self.after_register(reply, result);
            }
            Command::TakeCheckpoints(notes, reply) => {
                let mut taken = 0;
                let mut result = Ok(());
                for note in &notes {
                    let mut out = Vec::new();
                    match self.node.engine.take_checkpoint(note, now(), &mut out) {
                        Ok(added) => taken += usize::from(added),
                        Err(e) => {
                            result = Err(DaemonError::BadRequest(format!(
                                "checkpoint {} of {}: {e}",
                                taken + 1,
                                notes.len()
                            )));
                        }
                    }
                    self.apply(out);
                    if result.is_err() {
                        break;
                    }
                }
                let _ = reply.send(result.map(|()| taken));
            }
            Command::Checkpoint(author, reply) => {
                let engine = &self.node.engine;
                let result = match engine.checkpoint_of(&author) {
                    Some(note) => Ok(note),
                    None if author == self.node.author() => match engine.own_checkpoint() {
                        Ok(Some(note)) => Ok(note),
                        Ok(None) => Err(DaemonError::NotHeld(
                            "this node has not issued a notice yet: its log is empty".into(),
                        )),
                        Err(refusal) => Err(DaemonError::Refused(refusal)),
                    },
                    None => Err(DaemonError::NoCheckpoint(author)),
                };
                let _ = reply.send(result);
            }
            Command::Proof(ask, reply) => {
                use credence_protocol::checkpoint::proofs::{self, ProofError, Source};
                // Inclusion and consistency come from the engine's kept
                // tree of the log, on the loop: a few log pages read. A
                // size the tree does not reach yet (it grows after a
                // start) is served by a tree built off the loop.
                let engine = &self.node.engine;
                let store = engine.replica().store();
                let kept = match &ask {
                    ProofAsk::Inclusion { author, seq, size } => {
                        engine.kept_tree(author).map(|tree| {
                            proofs::inclusion(store, author, *seq, *size, Source::Kept(tree))
                                .map(ProofAnswer::Inclusion)
                        })
                    }
                    ProofAsk::Consistency { author, from, to } => {
                        engine.kept_tree(author).map(|tree| {
                            proofs::consistency(store, author, *from, *to, Source::Kept(tree))
                                .map(ProofAnswer::Consistency)
                        })
                    }
                    ProofAsk::Entries { .. } => None,
                };
                match kept {
                    Some(Err(ProofError::NotKept { kept, asked }))
                        if asked > proofs::PROOF_LEAVES_MAX =>
                    {
                        let _ = reply.send(Err(DaemonError::Busy(format!(
                            "this node is still reading its tree of that log from the store \
                             ({kept} of the {asked} notices asked about); ask again in a few seconds"
                        ))));
                    }
                    Some(Err(ProofError::NotKept { .. })) | None => {
                        self.in_background(reply, move |replica| {
                            let store = replica.store();
                            match ask {
                                ProofAsk::Inclusion { author, seq, size } => {
                                    proofs::inclusion(store, &author, seq, size, Source::Built)
                                        .map(ProofAnswer::Inclusion)
                                }
                                ProofAsk::Consistency { author, from, to } => {
                                    proofs::consistency(store, &author, from, to, Source::Built)
                                        .map(ProofAnswer::Consistency)
                                }
                                ProofAsk::Entries {
                                    author,
                                    from,
                                    count,
                                } => proofs::entries(store, &author, from, count)
                                    .map(ProofAnswer::Entries),
                            }
                            .map_err(proof_error)
                        });
                    }
                    Some(answered) => {
                        let _ = reply.send(answered.map_err(proof_error));
                    }
                }
            }
            Command::Changes(after, limit, reply) => {
                let _ = reply.send(self.changes(after, limit));
            }
            Command::Tasks(at, ask, reply) => {
                let me = self.node.author();
                let indexed = at.is_none() && self.views_current(t);
                self.in_background(reply, move |replica| {
                    if !indexed {
                        let all = replica
                            .tasks(&me, at.unwrap_or(t))
                            .map_err(DaemonError::internal)?;
                        return Ok(reads::tasks_page(all, &ask));
                    }
                    replica
                        .store()
                        .task_page(ask.after.as_ref(), ask.limit)
                        .map_err(DaemonError::internal)
                });
            }
            Command::Objections(ask, reply) => {
                let indexed = self.views_current(t);
                self.in_background(reply, move |replica| {
                    reads::objected_page(replica, &ask, t, indexed)
                });
            }
            Command::Extract(csv, reply) => {
                let indexed = self.views_current(t);
                self.extracts.stream(
                    self.node.federation().clone(),
                    self.node.replica().store().snapshot(),
                    reply,
                    move |replica, sink| reads::extract(replica, t, csv, indexed, sink),
                );
            }
            Command::Feed(ask, reply) => {
                if self.views_current(t) {
                    self.public.run(
                        self.node.federation().clone(),
                        self.node.replica().store().snapshot(),
                        reply,
                        move |replica| reads::feed_page(replica, &ask, t),
                    );
                    return;
                }
                // While the views are derived again: everyone asking within
                // a second gets the same feed; the anonymous feed never
                // takes the operators' places.
                if let Some(cached) = self.feed_cache.fresh(t) {
                    let _ = reply.send(Ok(reads::page_of(self.node.federation(), &cached, &ask)));
                    return;
                }
                let cache = self.feed_cache.clone();
                self.public.run(
                    self.node.federation().clone(),
                    self.node.replica().store().snapshot(),
                    reply,
                    move |replica| {
                        let listings = Arc::new(feed(replica, t)?);
                        cache.keep(t, Arc::clone(&listings));
                        Ok(reads::page_of(replica.federation(), &listings, &ask))
                    },
                );
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Register(from, limit, reply) => {
                let result = self.register_page(from, limit);
                let _ = reply.send(result);
            }
            Command::Query(ask, reply) => {
                let ticket = self.pending.handle();
                self.pending.queries.insert(ticket, reply);
                self.feed(Input::Query {
                    ticket,
                    ask: Box::new(ask),
                });
            }
            Command::Metrics(reply) => {
                let engine = &self.node.engine;
                let counters = engine.counters().clone();
                let mut gauges = Gauges {
                    peers: engine.peers().len(),
                    pending: engine.replica().pending_count(),
                    overdue: 0,
                    notices: 0,
                    listings: None,
                    unpublished: engine.unpublished(),
                    reads_held: self.registered.held(),
                    readiness: engine.readiness().clone(),
                    checkpoints: engine
                        .checkpoints()
                        .iter()
                        .map(|log| {
                            let newest = log.newest.as_ref();
                            let witnessed = log.witnessed.as_ref();
                            (
                                hex::encode(log.author.0),
                                metrics::CheckpointGauges {
                                    size: newest.map_or(0, |c| c.size),
                                    cosigners: newest.map_or(0, |c| c.cosigners.len() as u64),
                                    witnessed: witnessed.map_or(0, |c| c.size),
                                    witnessed_at: witnessed.map_or(0, |c| {
                                        c.cosigners.iter().map(|(_, t)| *t).max().unwrap_or(0)
                                    }),
                                    split_view: log.split_view.is_some(),
                                },
                            )
                        })
                        .collect(),
                };
                if self.views_current(t) {
                    match self.node.replica().store().views().counts() {
                        Ok(counts) => gauges.listings = Some(counts),
                        Err(e) => tracing::error!("views: {e}"),
                    }
                }
                self.in_background(reply, move |replica| {
                    gauges.notices = replica
                        .store()
                        .notice_count()
                        .map_err(DaemonError::internal)?;
                    gauges.overdue = match &gauges.listings {
                        Some(counts) => {
                            usize::try_from(counts.objections_overdue).unwrap_or(usize::MAX)
                        }
                        None => reads::overdue(replica, t)?,
                    };
                    Ok(metrics::render(&counters, &gauges))
                });
            }
            Command::Export(read, reply) => {
                // Registered first: what it returns is every log held,
                // which their heads fix.
                let heads: Vec<u8> = self
                    .node
                    .replica()
                    .store()
                    .heads()
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|h| h.id.0)
                    .collect();
                let record = register::local_read(
                    ReadKind::Export,
                    &read.account,
                    None,
                    &read.stated,
                    register::bytes_digest(&[&heads]),
                    t,
                );
                if let Err(e) = self.register(&record) {
                    let _ = reply.send(Err(e));
                    return;
                }
                // The checkpoints held, with their cosignatures, go with it,
                // and the register of reads (this export's record in it)
                // signed now; its records are read off the loop.
                let own = crate::node::bundle_checkpoints(&self.node.engine);
                let log = match self.node.replica().store().register_log() {
                    Ok(log) => log,
                    Err(e) => {
                        let _ = reply.send(Err(DaemonError::internal(e)));
                        return;
                    }
                };
                let empty = match crate::node::bundle_register(&self.node, &log, Vec::new()) {
                    Ok(register) => register,
                    Err(e) => {
                        let _ = reply.send(Err(DaemonError::internal(e)));
                        return;
                    }
                };
                let size = usize::try_from(log.size()).unwrap_or(usize::MAX);
                let snapshot = self.node.replica().store().snapshot();
                // The export's record is durable before anything of the
                // bundle is read (on the background thread).
                let durable = self.node.replica().store().register_flush_later();
                // The snapshot's replica knows the current roster only: the
                // genesis roster (whose hash is the federation id) and the
                // signed versions come from the node's own chain.
                let chain = self.node.replica().chain();
                let genesis = serde_bytes::ByteBuf::from(
                    chain.genesis().federation.canonical_bytes().to_vec(),
                );
                let versions: Vec<serde_bytes::ByteBuf> = chain
                    .signed_versions()
                    .iter()
                    .filter_map(|signed| signed.to_bytes().ok())
                    .map(serde_bytes::ByteBuf::from)
                    .collect();
                self.in_background(reply, move |replica| {
                    durable().map_err(|e| registered::not_durable(&e.to_string()))?;
                    let records = snapshot
                        .register_records(0, size)
                        .map_err(DaemonError::internal)?;
                    let register = credence_protocol::bundle::BundleRegister {
                        records: records.into_iter().map(|(_, bytes)| bytes.into()).collect(),
                        ..empty
                    };
                    Bundle::export(replica)
                        .map(|bundle| Bundle {
                            roster: genesis,
                            roster_versions: versions,
                            ..bundle.with_checkpoints(&own).with_register(register)
                        })
                        .map_err(DaemonError::internal)
                });
            }
        }
    }

    /// A name search read off the loop: each person or organisation it
    /// found registered as read, then the answer sent (nothing is
    /// answered that was not registered).
    fn on_searched(&mut self, searched: Searched) {
        let Searched {
            text,
            read,
            at,
            result,
            reply,
        } = searched;
        let result = result.and_then(|(states, more)| {
            for record in register::search_reads(&states, &text, &read.account, &read.stated, at) {
                self.register(&record)?;
            }
            Ok((states, more))
        });
        self.after_register(reply, result);
    }

    fn in_background<T: Send + 'static>(
        &self,
        reply: Reply<T>,
        read: impl FnOnce(
            &credence_protocol::replica::Replica<crate::store::SledSnapshot>,
        ) -> Result<T, DaemonError>
        + Send
        + 'static,
    ) {
        self.background.run(
            self.node.federation().clone(),
            self.node.replica().store().snapshot(),
            reply,
            read,
        );
    }

    fn status(&self) -> Result<Status, DaemonError> {
        let engine = &self.node.engine;
        let now_secs = now().0 / 1000;
        let federation = self.node.federation();
        let heads = engine
            .replica()
            .store()
            .heads()
            .map_err(DaemonError::internal)?;
        let mut authors: Vec<AuthorStatus> = Vec::new();
        for member in &federation.roster().members {
            let head = heads.iter().find(|h| h.author == member.key);
            let seq = head.map_or(0, |h| h.seq);
            let peak = engine
                .seen()
                .get(&member.key)
                .copied()
                .unwrap_or(0)
                .max(seq);
            authors.push(AuthorStatus {
                author: member.key,
                name: member.name.clone(),
                seq,
                seen: peak,
                lag: peak - seq,
                root: head.map(|h| h.root().to_hex()).unwrap_or_default(),
                budget: engine
                    .replica()
                    .notices_available(&member.key, now())
                    .map_err(DaemonError::internal)?,
            });
        }
        let readiness = engine.readiness();
        let rotating = engine.rotation_pending();
        Ok(Status {
            authority: self.node.author(),
            name: federation.name_of(&self.node.author()),
            federation: federation.id().to_string(),
            listen: self.listen.iter().map(|a| a.to_string()).collect(),
            peers: engine
                .peers()
                .iter()
                .filter_map(|a| {
                    self.peers.get(a).map(|p| PeerStatus {
                        authority: *a,
                        name: federation.name_of(a),
                        peer_id: p.to_string(),
                    })
                })
                .collect(),
            authors,
            notices: engine
                .replica()
                .store()
                .notice_count()
                .map_err(DaemonError::internal)?,
            pending: engine.replica().pending_count(),
            forks: engine
                .replica()
                .store()
                .forks()
                .map_err(DaemonError::internal)?
                .len(),
            unpublished: engine.unpublished(),
            ready: *readiness == Readiness::Ready && rotating.is_none(),
            issuing: match &rotating {
                Some(_) if *readiness == Readiness::Ready => "key_rotating".into(),
                _ => readiness.name().into(),
            },
            issuing_detail: match rotating {
                Some(why) if *readiness == Readiness::Ready => why,
                _ => readiness.explain(),
            },
            mark: engine.mark().map(|m| m.seq),
            checkpoints: engine
                .checkpoints()
                .iter()
                .map(|log| CheckpointStatus::of(log, federation, now_secs))
                .collect(),
            quorum: credence_protocol::checkpoint::quorum(federation),
        })
    }
}

#[cfg(test)]
mod tests;

/// An error of a request under an idempotency key: the key reused for
/// another request is the caller's conflict; anything else is the node's.
fn keyed_error(e: NodeError) -> DaemonError {
    match e {
        NodeError::IdempotencyConflict(key) => DaemonError::IdempotencyConflict(key),
        other => DaemonError::internal(other),
    }
}

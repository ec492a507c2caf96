//! The running node: one task owns the replica, the store and the swarm,
//! and serves commands from the HTTP API over a channel. Everything that
//! touches the replica happens here, in order, so there are no locks.
//!
//! Inputs: gossip messages (validated in full before they are accepted
//! and forwarded), sync and query requests and responses, timers (sync
//! rounds, publish retries, dials with backoff, flushes) and commands.

use crate::api::ApiError;
use crate::config::RunConfig;
use crate::net::{self, Behaviour, BehaviourEvent};
use crate::node::{Node, NodeError, now};
use crate::store::{SledSnapshot, StoreError};
use credence_protocol::bundle::Bundle;
use credence_protocol::fold::{ListingState, Task};
use credence_protocol::model::{AuthorityId, NoticeId, NoticeKind, SubjectKey, SubjectKind};
use credence_protocol::query::{
    self, QUERY_VERSION, QueryRequest, Signed, SignedAnswer, SignedQuery,
};
use credence_protocol::replica::{IssueError, Outcome, Replica};
use credence_protocol::store::Store;
use credence_protocol::sync::{
    self, HeadEntry, SyncRequest, SyncResponse, SyncSession, decode_request, decode_response,
    encode_request, encode_response,
};
use credence_protocol::time::Timestamp;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{DialError, ListenError, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, mdns};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Commands queued from the API before the loop applies back-pressure.
pub const COMMAND_QUEUE_MAX: usize = 1024;
/// Own notices waiting for a subscribed peer before they are published.
pub const PUBLISH_QUEUE_MAX: usize = 10_000;
/// Listings in one publicity feed answer.
pub const FEED_LISTINGS_MAX: usize = 1000;
/// Requests that fold every listing (feed, tasks, metrics, export) answered
/// at once, each on a snapshot of the store off the event loop.
pub const BACKGROUND_READS_MAX: usize = 2;
/// Such requests waiting for one of those places; past that, `busy`.
pub const BACKGROUND_READS_WAITING_MAX: usize = 8;
/// Register records in one answer.
pub const REGISTER_RECORDS_MAX: usize = 1000;
/// Longest a federation-wide query waits for answers.
pub const QUERY_DEADLINE_MAX: Duration = Duration::from_secs(30);
/// Default wait of a federation-wide query.
pub const QUERY_DEADLINE_DEFAULT: Duration = Duration::from_secs(5);
/// Concurrent federation-wide queries.
pub const FANOUTS_MAX: usize = 256;
const TICK: Duration = Duration::from_millis(100);
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const DIAL_BACKOFF_MIN: Duration = Duration::from_secs(1);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where a federation-wide query goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryScope {
    /// This node's records only.
    Local,
    /// Every connected member, merged.
    Federation,
}

/// A query as asked through the API.
#[derive(Clone, Debug)]
pub struct QueryAsk {
    /// Identifier scheme.
    pub subject_kind: SubjectKind,
    /// Identifier.
    pub subject_id: String,
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Local or federation-wide.
    pub scope: QueryScope,
    /// How long to wait for peers.
    pub deadline: Duration,
}

/// One responder's verified answer.
#[derive(Clone, Debug)]
pub struct Answered {
    /// The responder.
    pub responder: AuthorityId,
    /// The verified answer.
    pub answer: SignedAnswer,
}

/// The result of a query.
#[derive(Clone, Debug)]
pub struct QueryResult {
    /// The signed request.
    pub request: SignedQuery,
    /// This node's own answer and every peer's.
    pub answers: Vec<Answered>,
    /// Members asked that did not answer in time (or failed), with why.
    pub missing: Vec<(AuthorityId, String)>,
}

/// Where one author stands.
#[derive(Clone, Debug, Serialize)]
pub struct AuthorStatus {
    /// The author.
    pub author: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Seq held here.
    pub seq: u64,
    /// Newest seq a peer reported.
    pub seen: u64,
    /// `seen - seq` when positive.
    pub lag: u64,
    /// The Merkle root of its log here.
    pub root: String,
}

/// A connected peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    /// Its authority.
    pub authority: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// What `/v1/status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// This node's authority.
    pub authority: AuthorityId,
    /// Its name.
    pub name: String,
    /// The federation id.
    pub federation: String,
    /// libp2p addresses this node listens on.
    pub listen: Vec<String>,
    /// Connected members.
    pub peers: Vec<PeerStatus>,
    /// Every author's log.
    pub authors: Vec<AuthorStatus>,
    /// Notices stored.
    pub notices: u64,
    /// Notices waiting for a predecessor or a reference.
    pub pending: usize,
    /// Fork evidence held.
    pub forks: usize,
    /// Own notices waiting to be published.
    pub unpublished: usize,
    /// The node has caught up with a peer (or waited its grace) and issues.
    pub ready: bool,
}

/// A record of the query register, as stored (JSON) and shown.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RegisterRecord {
    /// `sent` or `received`.
    pub direction: String,
    /// When it was recorded (ms).
    pub at: u64,
    /// The request id (hex).
    pub request_id: String,
    /// The requester.
    pub requester: String,
    /// The requester's name.
    pub requester_name: String,
    /// The subject identifier.
    pub subject: String,
    /// Purpose stated.
    pub purpose: String,
    /// Legal basis stated.
    pub legal_basis: String,
    /// The signed request (hex of its encoding).
    pub request: String,
    /// Responders and their signed answers (hex).
    pub answers: Vec<(String, String)>,
    /// Members that did not answer.
    pub missing: Vec<String>,
}

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// What the API asks of the loop.
#[derive(Debug)]
pub enum Command {
    /// Sign, store, flush and publish a notice.
    Issue(NoticeKind, Reply<(NoticeId, u64)>),
    /// A subject's listings now (or at a time).
    Subject(SubjectKey, Option<Timestamp>, Reply<Vec<ListingState>>),
    /// One listing with its history.
    Listing(NoticeId, Option<Timestamp>, Reply<ListingState>),
    /// This authority's tasks.
    Tasks(Option<Timestamp>, Reply<Vec<(Task, ListingState)>>),
    /// Published listings.
    Feed(Reply<Vec<ListingState>>),
    /// Status.
    Status(Reply<Status>),
    /// The query register, newest first.
    Register(usize, Reply<Vec<RegisterRecord>>),
    /// A query.
    Query(QueryAsk, Reply<QueryResult>),
    /// Metrics in Prometheus text format.
    Metrics(Reply<String>),
    /// An audit bundle.
    Export(Reply<Bundle>),
}

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    accepted: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<(&'static str, &'static str), u64>,
    duplicates: u64,
    dropped: u64,
    forks: u64,
    gossip_bytes_in: u64,
    gossip_bytes_out: u64,
    sync_bytes_in: u64,
    sync_bytes_out: u64,
    sync_sessions: u64,
    sync_failures: BTreeMap<&'static str, u64>,
    malformed: BTreeMap<&'static str, u64>,
    refused_connections: u64,
    queries: BTreeMap<&'static str, u64>,
}

impl Metrics {
    fn render(&self, peers: usize, pending: usize, overdue: usize, notices: u64) -> String {
        use std::fmt::Write;
        fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        }
        let plain = |value: u64| vec![(String::new(), value)];
        let mut out = String::new();
        let accepted: Vec<(String, u64)> = self
            .accepted
            .iter()
            .map(|(via, n)| (format!("{{via=\"{via}\"}}"), *n))
            .collect();
        family(
            &mut out,
            "credence_notices_accepted_total",
            "counter",
            "Notices accepted, by path.",
            &accepted,
        );
        let rejected: Vec<(String, u64)> = self
            .rejected
            .iter()
            .map(|((via, reason), n)| (format!("{{via=\"{via}\",reason=\"{reason}\"}}"), *n))
            .collect();
        family(
            &mut out,
            "credence_notices_rejected_total",
            "counter",
            "Notices rejected, by path and rule broken.",
            &rejected,
        );
        for (name, help, value) in [
            (
                "credence_notices_duplicate_total",
                "Notices received again.",
                self.duplicates,
            ),
            (
                "credence_notices_dropped_total",
                "Notices dropped because the pending buffer was full.",
                self.dropped,
            ),
            ("credence_forks_total", "Forks found.", self.forks),
            (
                "credence_gossip_bytes_received_total",
                "Gossip payload bytes received.",
                self.gossip_bytes_in,
            ),
            (
                "credence_gossip_bytes_sent_total",
                "Gossip payload bytes published.",
                self.gossip_bytes_out,
            ),
            (
                "credence_sync_bytes_received_total",
                "Sync message bytes received.",
                self.sync_bytes_in,
            ),
            (
                "credence_sync_bytes_sent_total",
                "Sync message bytes sent.",
                self.sync_bytes_out,
            ),
            (
                "credence_sync_sessions_total",
                "Sync sessions started.",
                self.sync_sessions,
            ),
            (
                "credence_connections_refused_total",
                "Connections refused (not a roster member).",
                self.refused_connections,
            ),
        ] {
            family(&mut out, name, "counter", help, &plain(value));
        }
        let labelled = |label: &str, map: &BTreeMap<&'static str, u64>| -> Vec<(String, u64)> {
            map.iter()
                .map(|(k, n)| (format!("{{{label}=\"{k}\"}}"), *n))
                .collect()
        };
        family(
            &mut out,
            "credence_sync_failures_total",
            "counter",
            "Sync sessions that failed, by reason.",
            &labelled("reason", &self.sync_failures),
        );
        family(
            &mut out,
            "credence_peer_messages_malformed_total",
            "counter",
            "Malformed or oversized peer messages dropped, by protocol.",
            &labelled("protocol", &self.malformed),
        );
        family(
            &mut out,
            "credence_queries_total",
            "counter",
            "Queries, by event.",
            &labelled("event", &self.queries),
        );
        for (name, help, value) in [
            ("credence_peers", "Connected members.", peers as u64),
            (
                "credence_pending_notices",
                "Notices waiting for a predecessor or reference.",
                pending as u64,
            ),
            (
                "credence_objections_overdue",
                "Open objections past their deadline.",
                overdue as u64,
            ),
            ("credence_notices_stored", "Notices stored.", notices),
        ] {
            family(&mut out, name, "gauge", help, &plain(value));
        }
        out
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
}

struct Dial {
    address: Multiaddr,
    peer: Option<PeerId>,
    failures: u32,
    next: Instant,
}

/// Work done after the swarm has been given what the current turn of the
/// loop queued, so that answers and requests leave first.
enum Deferred {
    /// Write a query register record.
    Record {
        direction: &'static str,
        query: Box<SignedQuery>,
        answers: Vec<Answered>,
        missing: Vec<(AuthorityId, String)>,
    },
    /// Compute this node's own answer to a federation-wide query.
    LocalAnswer(u64),
}

struct Fanout {
    /// This node's own answer is in `answers`.
    local_done: bool,
    request: SignedQuery,
    asked: BTreeSet<PeerId>,
    answers: Vec<Answered>,
    missing: Vec<(AuthorityId, String)>,
    deadline: Instant,
    reply: Reply<QueryResult>,
}

/// The node's event loop.
pub struct Daemon {
    node: Node,
    config: RunConfig,
    swarm: Swarm<Behaviour>,
    topic: gossipsub::IdentTopic,
    members: BTreeMap<PeerId, AuthorityId>,
    connected: BTreeSet<PeerId>,
    listen: Vec<Multiaddr>,
    metrics: Metrics,
    sessions: BTreeMap<PeerId, SyncSession>,
    sync_requests: HashMap<OutboundRequestId, (PeerId, usize)>,
    peer_heads: BTreeMap<PeerId, Vec<HeadEntry>>,
    fanouts: BTreeMap<u64, Fanout>,
    fanout_next: u64,
    deferred: VecDeque<Deferred>,
    query_requests: HashMap<OutboundRequestId, (u64, PeerId)>,
    publish: VecDeque<Vec<u8>>,
    dials: Vec<Dial>,
    ready: bool,
    started: Instant,
    next_sync: Instant,
    last_flush: Instant,
    dirty: bool,
    rng: u64,
    accepted: broadcast::Sender<NoticeId>,
    /// Reads running off the event loop or waiting to (at most
    /// [`BACKGROUND_READS_MAX`] + [`BACKGROUND_READS_WAITING_MAX`]).
    background: Arc<AtomicUsize>,
    /// Places to run them ([`BACKGROUND_READS_MAX`]).
    background_places: Arc<tokio::sync::Semaphore>,
}

/// Counts one read off the event loop while it lives.
struct BackgroundRead(Arc<AtomicUsize>);

impl Drop for BackgroundRead {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    error(500, "internal", e.to_string())
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

impl Daemon {
    /// Opens the node of `config`, binds its listeners and returns the
    /// loop and its handle. Nothing runs until [`Daemon::run`].
    pub fn start(
        config: RunConfig,
    ) -> Result<(Daemon, Handle, mpsc::Receiver<Command>, mpsc::Receiver<()>), NodeError> {
        let node = Node::open(&config.data)?;
        let federation = node.federation().clone();
        let mut swarm =
            net::swarm(&node.key, &federation, config.mdns).map_err(|e| NodeError::Config {
                path: config.data.display().to_string(),
                reason: e.to_string(),
            })?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| NodeError::Config {
                    path: "listen".into(),
                    reason: format!("cannot listen on {address}: {e}"),
                })?;
        }
        let members = net::members(&federation);
        let local = swarm.local_peer_id().to_owned();
        let started = Instant::now();
        let mut dials = Vec::new();
        for member in &federation.roster().members {
            let Some(peer) = net::peer_id(&member.key) else {
                continue;
            };
            if peer == local {
                continue;
            }
            for text in &member.listen {
                if let Ok(address) = text.parse::<Multiaddr>() {
                    dials.push(Dial {
                        address,
                        peer: Some(peer),
                        failures: 0,
                        next: started,
                    });
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
            dials.push(Dial {
                address: address.clone(),
                peer,
                failures: 0,
                next: started,
            });
        }
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
        let (stop, stop_rx) = mpsc::channel(1);
        let (accepted, _) = broadcast::channel(4096);
        let topic = net::topic(&federation);
        let daemon = Daemon {
            node,
            next_sync: started + config.sync_interval,
            config,
            swarm,
            topic,
            members,
            connected: BTreeSet::new(),
            listen: Vec::new(),
            metrics: Metrics::default(),
            sessions: BTreeMap::new(),
            sync_requests: HashMap::new(),
            peer_heads: BTreeMap::new(),
            fanouts: BTreeMap::new(),
            fanout_next: 0,
            deferred: VecDeque::new(),
            query_requests: HashMap::new(),
            publish: VecDeque::new(),
            dials,
            ready: false,
            started,
            last_flush: started,
            dirty: false,
            rng: u64::from_le_bytes(seed) | 1,
            accepted: accepted.clone(),
            background: Arc::default(),
            background_places: Arc::new(tokio::sync::Semaphore::new(BACKGROUND_READS_MAX)),
        };
        let handle = Handle {
            commands,
            accepted,
            stop,
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
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: mpsc::Receiver<()>,
        listening: Option<oneshot::Sender<Vec<Multiaddr>>>,
    ) -> Result<(), NodeError> {
        let mut listening = listening;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
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
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = stop.recv() => break,
                _ = tick.tick() => self.on_tick(),
                _ = std::future::ready(()), if !self.deferred.is_empty() => self.run_deferred(),
            }
        }
        while !self.deferred.is_empty() {
            self.run_deferred();
        }
        tracing::info!("stopping: flushing the store");
        self.node.replica.store_mut().flush()?;
        Ok(())
    }

    fn jitter(&mut self, base: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let quarter = (base.as_millis() as u64 / 4).max(1);
        base - Duration::from_millis(quarter) + Duration::from_millis(self.rng % (2 * quarter))
    }

    fn on_tick(&mut self) {
        let now_i = Instant::now();
        // Dials with backoff.
        let connected = self.connected.clone();
        for dial in &mut self.dials {
            if dial.peer.is_some_and(|p| connected.contains(&p)) || dial.next > now_i {
                continue;
            }
            let backoff = DIAL_BACKOFF_MIN
                .saturating_mul(1 << dial.failures.min(5))
                .min(DIAL_BACKOFF_MAX);
            dial.next = now_i + backoff;
            dial.failures = dial.failures.saturating_add(1);
            let opts = match dial.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![dial.address.clone()])
                    .build(),
                None => DialOpts::unknown_peer_id()
                    .address(dial.address.clone())
                    .build(),
            };
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!("dial {}: {e}", dial.address);
            }
        }
        if !self.ready && now_i.duration_since(self.started) >= self.config.catch_up_grace {
            tracing::info!(
                "no peer to catch up with after the grace period; issuing on own records"
            );
            self.ready = true;
        }
        self.try_publish();
        if now_i >= self.next_sync {
            self.next_sync = now_i + self.jitter(self.config.sync_interval);
            let peers: Vec<PeerId> = self.connected.iter().copied().collect();
            for peer in peers {
                self.start_sync(peer);
            }
        }
        self.expire_fanouts(now_i);
        if self.dirty && now_i.duration_since(self.last_flush) >= FLUSH_EVERY {
            // Own notices are flushed before they are acknowledged; what
            // came from peers and the register are made durable here, off
            // this loop's thread.
            if let Err(e) = self.node.replica.store_mut().flush_soon() {
                tracing::error!("flush failed: {e}");
            }
            self.dirty = false;
            self.last_flush = now_i;
        }
    }

    fn try_publish(&mut self) {
        while let Some(bytes) = self.publish.front() {
            let len = bytes.len() as u64;
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(self.topic.clone(), bytes.clone())
            {
                Ok(_) | Err(PublishError::Duplicate) => {
                    self.metrics.gossip_bytes_out += len;
                    self.publish.pop_front();
                }
                Err(PublishError::NoPeersSubscribedToTopic)
                | Err(PublishError::AllQueuesFull(_)) => break,
                Err(e) => {
                    tracing::warn!("publish failed, sync will carry it: {e}");
                    self.publish.pop_front();
                }
            }
        }
    }

    fn count_outcome(&mut self, via: &'static str, outcome: &Outcome) {
        match outcome {
            Outcome::Accepted { id, .. } => {
                *self.metrics.accepted.entry(via).or_default() += 1;
                self.dirty = true;
                let _ = self.accepted.send(*id);
            }
            Outcome::Duplicate { .. } => self.metrics.duplicates += 1,
            Outcome::Pending { .. } => {}
            Outcome::Dropped { .. } => self.metrics.dropped += 1,
            Outcome::Forked { author, seq, .. } => {
                self.metrics.forks += 1;
                self.dirty = true;
                tracing::warn!("fork: {author} signed two notices at seq {seq}; evidence kept");
            }
            Outcome::Rejected { id, error, .. } => {
                *self
                    .metrics
                    .rejected
                    .entry((via, error.code()))
                    .or_default() += 1;
                tracing::warn!("rejected {id} from {via}: {error}");
            }
        }
    }

    fn on_gossip(&mut self, source: PeerId, message_id: gossipsub::MessageId, data: Vec<u8>) {
        self.metrics.gossip_bytes_in += data.len() as u64;
        let id = credence_crypto::merkle::leaf_hash(&data);
        let acceptance = match self.node.replica.ingest(&data) {
            Ok(outcomes) => {
                let mut acceptance = MessageAcceptance::Ignore;
                for outcome in &outcomes {
                    self.count_outcome("gossip", outcome);
                    let (mine, verdict) = match outcome {
                        Outcome::Accepted { id: o, .. } => (o.0 == id.0, MessageAcceptance::Accept),
                        // Evidence travels: every honest replica should see a fork.
                        Outcome::Forked { id: o, .. } => (o.0 == id.0, MessageAcceptance::Accept),
                        Outcome::Rejected { id: o, .. } => (o.0 == id.0, MessageAcceptance::Reject),
                        Outcome::Duplicate { id: o } | Outcome::Dropped { id: o } => {
                            (o.0 == id.0, MessageAcceptance::Ignore)
                        }
                        Outcome::Pending { id: o, .. } => (o.0 == id.0, MessageAcceptance::Ignore),
                    };
                    if mine {
                        acceptance = verdict;
                    }
                }
                acceptance
            }
            Err(e) => {
                tracing::error!("store failure on gossip ingest: {e}");
                MessageAcceptance::Ignore
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&message_id, &source, acceptance);
    }

    fn start_sync(&mut self, peer: PeerId) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        match SyncSession::start(&self.node.replica) {
            Ok((session, request)) => {
                self.metrics.sync_sessions += 1;
                self.sessions.insert(peer, session);
                self.send_sync(peer, &request, true);
            }
            Err(e) => tracing::error!("cannot start sync: {e}"),
        }
    }

    /// Sends a sync request; `session` marks requests of an outbound
    /// session (an offer is not).
    fn send_sync(&mut self, peer: PeerId, request: &SyncRequest, session: bool) {
        match encode_request(request) {
            Ok(bytes) => {
                self.metrics.sync_bytes_out += bytes.len() as u64;
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                self.sync_requests.insert(id, (peer, usize::from(session)));
            }
            Err(e) => {
                tracing::error!("cannot encode a sync request: {e}");
                self.sessions.remove(&peer);
            }
        }
    }

    fn end_session(&mut self, peer: PeerId, failure: Option<&'static str>) {
        self.sessions.remove(&peer);
        match failure {
            Some(reason) => *self.metrics.sync_failures.entry(reason).or_default() += 1,
            None => {
                if !self.ready && self.node.replica.pending_count() == 0 {
                    tracing::info!("caught up with {}", self.name_of_peer(&peer));
                    self.ready = true;
                }
            }
        }
    }

    fn name_of_peer(&self, peer: &PeerId) -> String {
        self.members
            .get(peer)
            .map_or_else(|| peer.to_string(), |a| self.node.federation().name_of(a))
    }

    fn on_sync_response(&mut self, peer: PeerId, bytes: Vec<u8>) {
        self.metrics.sync_bytes_in += bytes.len() as u64;
        let response = match decode_response(&bytes) {
            Ok(response) => response,
            Err(e) => {
                *self.metrics.malformed.entry("sync").or_default() += 1;
                tracing::warn!(
                    "malformed sync response from {}: {e}",
                    self.name_of_peer(&peer)
                );
                self.end_session(peer, Some("malformed"));
                return;
            }
        };
        if let SyncResponse::Heads(heads) = &response {
            self.peer_heads.insert(peer, heads.clone());
        }
        let Some(mut session) = self.sessions.remove(&peer) else {
            return;
        };
        match session.on_response(&self.node.replica, response) {
            Ok(step) => {
                if !step.ingest.is_empty() {
                    let slices: Vec<&[u8]> = step.ingest.iter().map(Vec::as_slice).collect();
                    match self.node.replica.ingest_all(&slices) {
                        Ok(outcomes) => {
                            for outcome in &outcomes {
                                self.count_outcome("sync", outcome);
                            }
                        }
                        Err(e) => {
                            tracing::error!("store failure on sync ingest: {e}");
                            self.end_session(peer, Some("store"));
                            return;
                        }
                    }
                }
                if step.peer_lacks {
                    match sync::local_heads(&self.node.replica) {
                        Ok(heads) => {
                            let offer = SyncRequest::Offer {
                                federation: self.node.federation().id(),
                                heads,
                            };
                            self.send_sync(peer, &offer, false);
                        }
                        Err(e) => tracing::error!("cannot read heads: {e}"),
                    }
                }
                match step.next {
                    Some(request) => {
                        self.sessions.insert(peer, session);
                        self.send_sync(peer, &request, true);
                    }
                    None => self.end_session(peer, None),
                }
            }
            Err(e) => {
                tracing::warn!("sync with {} failed: {e}", self.name_of_peer(&peer));
                self.end_session(peer, Some("protocol"));
            }
        }
    }

    fn on_sync_request(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        self.metrics.sync_bytes_in += bytes.len() as u64;
        let request = match decode_request(&bytes) {
            Ok(request) => request,
            Err(e) => {
                *self.metrics.malformed.entry("sync").or_default() += 1;
                tracing::warn!(
                    "malformed sync request from {}: {e}",
                    self.name_of_peer(&peer)
                );
                return; // dropping the channel closes the stream
            }
        };
        let response = match sync::respond(&self.node.replica, &request) {
            Ok(response) => response,
            Err(e) => {
                tracing::error!("cannot answer sync: {e}");
                return;
            }
        };
        if let (SyncRequest::Offer { heads, .. }, SyncResponse::Taken) = (&request, &response) {
            self.peer_heads.insert(peer, heads.clone());
            if !self.sessions.contains_key(&peer) {
                match SyncSession::pull(&self.node.replica, heads) {
                    Ok((session, Some(next))) => {
                        self.metrics.sync_sessions += 1;
                        self.sessions.insert(peer, session);
                        self.send_sync(peer, &next, true);
                    }
                    Ok((_, None)) => {}
                    Err(e) => {
                        tracing::warn!("offer from {} refused: {e}", self.name_of_peer(&peer))
                    }
                }
            }
        }
        match encode_response(&response) {
            Ok(bytes) => {
                self.metrics.sync_bytes_out += bytes.len() as u64;
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, bytes);
            }
            Err(e) => tracing::error!("cannot encode a sync response: {e}"),
        }
    }

    fn on_query_request(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        *self.metrics.queries.entry("received").or_default() += 1;
        let checked = Signed::decode::<{ query::QUERY_BYTES_MAX + 64 }>(&bytes)
            .map_err(query::QueryError::from)
            .and_then(|signed| SignedQuery::verify(self.node.federation(), signed, now()));
        let query = match checked {
            Ok(query) if self.members.get(&peer) == Some(&query.request.requester) => query,
            Ok(_) => {
                *self.metrics.queries.entry("refused").or_default() += 1;
                tracing::warn!(
                    "query from {} signed by another authority: refused",
                    self.name_of_peer(&peer)
                );
                return;
            }
            Err(e) => {
                *self.metrics.malformed.entry("query").or_default() += 1;
                tracing::warn!("query from {} refused: {e}", self.name_of_peer(&peer));
                return;
            }
        };
        let answer = match query::answer(&self.node.replica, &query, &self.node.key, now()) {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::warn!("cannot answer query: {e}");
                return;
            }
            Err(e) => {
                tracing::error!("cannot answer query: {e}");
                return;
            }
        };
        let me = self.node.author();
        self.record(
            "received",
            &query,
            &[Answered {
                responder: me,
                answer: answer.clone(),
            }],
            &[],
        );
        match answer.signed.encode::<{ query::ANSWER_BYTES_MAX + 128 }>() {
            Ok(bytes) => {
                *self.metrics.queries.entry("answered").or_default() += 1;
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .query
                    .send_response(channel, bytes);
            }
            Err(e) => tracing::error!("cannot encode an answer: {e}"),
        }
    }

    fn on_query_response(&mut self, request_id: OutboundRequestId, bytes: Vec<u8>) {
        let Some((fanout_id, peer)) = self.query_requests.remove(&request_id) else {
            return;
        };
        let federation = self.node.federation().clone();
        let Some(fanout) = self.fanouts.get_mut(&fanout_id) else {
            return;
        };
        fanout.asked.remove(&peer);
        let author = self.members.get(&peer).copied().unwrap_or_default();
        let verified = fanout.request.id().and_then(|id| {
            let signed = Signed::decode::<{ query::ANSWER_BYTES_MAX + 128 }>(&bytes)?;
            SignedAnswer::verify(&federation, &id, signed)
        });
        match verified {
            Ok(answer) if answer.answer.responder == author => {
                *self.metrics.queries.entry("answers_verified").or_default() += 1;
                self.peer_heads.insert(peer, answer.answer.heads.clone());
                fanout.answers.push(Answered {
                    responder: author,
                    answer,
                });
            }
            Ok(_) => fanout
                .missing
                .push((author, "answer signed by another authority".into())),
            Err(e) => {
                *self.metrics.malformed.entry("query").or_default() += 1;
                fanout
                    .missing
                    .push((author, format!("answer refused: {e}")));
            }
        }
        if self
            .fanouts
            .get(&fanout_id)
            .is_some_and(|f| f.asked.is_empty())
        {
            self.finish_fanout(fanout_id);
        }
    }

    fn on_query_failure(&mut self, request_id: OutboundRequestId, reason: &'static str) {
        let Some((fanout_id, peer)) = self.query_requests.remove(&request_id) else {
            return;
        };
        let author = self.members.get(&peer).copied().unwrap_or_default();
        if let Some(fanout) = self.fanouts.get_mut(&fanout_id) {
            fanout.asked.remove(&peer);
            fanout
                .missing
                .push((author, format!("no answer ({reason})")));
            if fanout.asked.is_empty() {
                self.finish_fanout(fanout_id);
            }
        }
    }

    fn expire_fanouts(&mut self, now_i: Instant) {
        let expired: Vec<u64> = self
            .fanouts
            .iter()
            .filter(|(_, f)| f.deadline <= now_i)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(fanout) = self.fanouts.get_mut(&id) {
                for peer in std::mem::take(&mut fanout.asked) {
                    let author = self.members.get(&peer).copied().unwrap_or_default();
                    fanout
                        .missing
                        .push((author, "no answer before the deadline".into()));
                }
            }
            self.finish_fanout(id);
        }
    }

    fn finish_fanout(&mut self, id: u64) {
        self.answer_locally(id);
        let Some(fanout) = self.fanouts.remove(&id) else {
            return;
        };
        self.query_requests.retain(|_, (f, _)| *f != id);
        self.record("sent", &fanout.request, &fanout.answers, &fanout.missing);
        let _ = fanout.reply.send(Ok(QueryResult {
            request: fanout.request,
            answers: fanout.answers,
            missing: fanout.missing,
        }));
    }

    /// Queues a register record; it is written once the swarm has sent
    /// what this turn of the loop queued (answers go out first).
    fn record(
        &mut self,
        direction: &'static str,
        query: &SignedQuery,
        answers: &[Answered],
        missing: &[(AuthorityId, String)],
    ) {
        self.deferred.push_back(Deferred::Record {
            direction,
            query: Box::new(query.clone()),
            answers: answers.to_vec(),
            missing: missing.to_vec(),
        });
    }

    fn run_deferred(&mut self) {
        let Some(job) = self.deferred.pop_front() else {
            return;
        };
        match job {
            Deferred::Record {
                direction,
                query,
                answers,
                missing,
            } => self.write_record(direction, &query, &answers, &missing),
            Deferred::LocalAnswer(id) => self.answer_locally(id),
        }
    }

    /// This node's own answer to its federation-wide query `id`.
    fn answer_locally(&mut self, id: u64) {
        let Some(fanout) = self.fanouts.get(&id) else {
            return;
        };
        if fanout.local_done {
            return;
        }
        let result = query::answer(&self.node.replica, &fanout.request, &self.node.key, now());
        let me = self.node.author();
        if let Some(fanout) = self.fanouts.get_mut(&id) {
            fanout.local_done = true;
            match result {
                Ok(Ok(answer)) => fanout.answers.insert(
                    0,
                    Answered {
                        responder: me,
                        answer,
                    },
                ),
                Ok(Err(e)) => fanout.missing.push((me, format!("no local answer: {e}"))),
                Err(e) => fanout.missing.push((me, format!("no local answer: {e}"))),
            }
        }
    }

    fn write_record(
        &mut self,
        direction: &str,
        query: &SignedQuery,
        answers: &[Answered],
        missing: &[(AuthorityId, String)],
    ) {
        let federation = self.node.federation();
        let hex_of = |signed: &Signed| {
            signed
                .encode::<{ query::ANSWER_BYTES_MAX }>()
                .map(hex::encode)
                .unwrap_or_default()
        };
        let Ok(id) = query.id() else { return };
        let record = RegisterRecord {
            direction: direction.into(),
            at: now().0,
            request_id: id.to_hex(),
            requester: query.request.requester.to_string(),
            requester_name: federation.name_of(&query.request.requester),
            subject: query.request.subject_id.clone(),
            purpose: query.request.purpose.clone(),
            legal_basis: query.request.legal_basis.clone(),
            request: hex_of(&query.signed),
            answers: answers
                .iter()
                .map(|a| (a.responder.to_string(), hex_of(&a.answer.signed)))
                .collect(),
            missing: missing
                .iter()
                .map(|(a, why)| format!("{}: {why}", federation.name_of(a)))
                .collect(),
        };
        let result = serde_json::to_vec(&record)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
            .and_then(|bytes| {
                let mut key = id.0;
                key[0] ^= u8::from(direction == "sent");
                self.node.replica.store().register_put(now(), &key, &bytes)
            });
        match result {
            Ok(()) => self.dirty = true,
            Err(e) => tracing::error!("cannot write the query register: {e}"),
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if !self.members.contains_key(&peer_id) {
                    // The gate refuses non-members; this is a second line.
                    self.metrics.refused_connections += 1;
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                for dial in &mut self.dials {
                    if dial.peer.is_none()
                        && endpoint.is_dialer()
                        && endpoint.get_remote_address() == &dial.address
                    {
                        dial.peer = Some(peer_id);
                    }
                    if dial.peer == Some(peer_id) {
                        dial.failures = 0;
                    }
                }
                self.connected.insert(peer_id);
                if num_established.get() == 1 {
                    tracing::info!("connected to {}", self.name_of_peer(&peer_id));
                    self.start_sync(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                self.sessions.remove(&peer_id);
                tracing::info!("disconnected from {}", self.name_of_peer(&peer_id));
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                if matches!(error, ListenError::Denied { .. }) {
                    self.metrics.refused_connections += 1;
                    tracing::warn!(
                        "refused a connection from {send_back_addr}: not a roster member"
                    );
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                if matches!(error, DialError::Denied { .. }) {
                    self.metrics.refused_connections += 1;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                ..
            })) => self.try_publish(),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => match event {
                request_response::Event::Message { peer, message, .. } => match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => self.on_sync_request(peer, request, channel),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some((peer, session)) = self.sync_requests.remove(&request_id)
                            && session == 1
                        {
                            self.on_sync_response(peer, response);
                        }
                    }
                },
                request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    peer,
                    ..
                } => {
                    if let Some((_, session)) = self.sync_requests.remove(&request_id)
                        && session == 1
                    {
                        tracing::debug!("sync request to {peer} failed: {error}");
                        self.end_session(peer, Some(outbound_name(&error)));
                    }
                }
                request_response::Event::InboundFailure { peer, error, .. } => {
                    if matches!(error, request_response::InboundFailure::Io(_)) {
                        *self.metrics.malformed.entry("sync").or_default() += 1;
                    }
                    tracing::debug!("inbound sync from {peer} failed: {error}");
                }
                request_response::Event::ResponseSent { .. } => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Query(event)) => match event {
                request_response::Event::Message { peer, message, .. } => match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => self.on_query_request(peer, request, channel),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => self.on_query_response(request_id, response),
                },
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                } => self.on_query_failure(request_id, outbound_name(&error)),
                request_response::Event::InboundFailure { error, .. } => {
                    if matches!(error, request_response::InboundFailure::Io(_)) {
                        *self.metrics.malformed.entry("query").or_default() += 1;
                    }
                }
                request_response::Event::ResponseSent { .. } => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if self.members.contains_key(&peer) && !self.connected.contains(&peer) {
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![address]).build());
                    }
                }
            }
            _ => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        let t = now();
        match command {
            Command::Issue(kind, reply) => {
                let _ = reply.send(self.issue(kind, t));
            }
            Command::Subject(key, at, reply) => {
                let _ = reply.send(
                    self.node
                        .replica
                        .subject_listings(&key, at.unwrap_or(t))
                        .map_err(internal),
                );
            }
            Command::Listing(id, at, reply) => {
                let result = match self.node.replica.listing_state(&id, at.unwrap_or(t)) {
                    Ok(Some(state)) => Ok(state),
                    Ok(None) => Err(error(
                        404,
                        "unknown_listing",
                        format!("listing {id} is not in this node's records"),
                    )),
                    Err(e) => Err(internal(e)),
                };
                let _ = reply.send(result);
            }
            Command::Tasks(at, reply) => {
                let me = self.node.author();
                self.in_background(reply, move |replica| {
                    replica.tasks(&me, at.unwrap_or(t)).map_err(internal)
                });
            }
            Command::Feed(reply) => self.in_background(reply, move |replica| feed(replica, t)),
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Register(limit, reply) => {
                let result = self
                    .node
                    .replica
                    .store()
                    .register_recent(limit.min(REGISTER_RECORDS_MAX))
                    .map_err(internal)
                    .map(|records| {
                        records
                            .iter()
                            .filter_map(|bytes| serde_json::from_slice(bytes).ok())
                            .collect()
                    });
                let _ = reply.send(result);
            }
            Command::Query(ask, reply) => self.query(ask, reply, t),
            Command::Metrics(reply) => {
                let notices = self.node.replica.store().notice_count().unwrap_or_default();
                let (metrics, peers) = (self.metrics.clone(), self.connected.len());
                let pending = self.node.replica.pending_count();
                self.in_background(reply, move |replica| {
                    let overdue = overdue(replica, t);
                    Ok(metrics.render(peers, pending, overdue, notices))
                });
            }
            Command::Export(reply) => {
                self.in_background(reply, |replica| Bundle::export(replica).map_err(internal));
            }
        }
    }

    fn issue(&mut self, kind: NoticeKind, t: Timestamp) -> Result<(NoticeId, u64), ApiError> {
        if !self.ready {
            return Err(error(
                503,
                "catching_up",
                "this node is still catching up with its peers; issue again in a moment",
            ));
        }
        let issued = self.node.issue(kind, t).map_err(|e| match e {
            NodeError::Issue(IssueError::Invalid(v)) => error(422, v.code(), v.to_string()),
            NodeError::Issue(e @ IssueError::UnknownReference { .. }) => {
                error(404, "unknown_reference", e.to_string())
            }
            NodeError::Issue(e @ IssueError::CatchingUp { .. }) => {
                error(503, "catching_up", e.to_string())
            }
            other => internal(other),
        })?;
        let _ = self.accepted.send(issued.id);
        *self.metrics.accepted.entry("local").or_default() += 1;
        match self.node.replica.store().notice(&issued.id) {
            Ok(Some(bytes)) => {
                if self.publish.len() >= PUBLISH_QUEUE_MAX {
                    self.publish.pop_front();
                }
                self.publish.push_back(bytes);
                self.try_publish();
            }
            Ok(None) | Err(_) => tracing::error!("issued notice {} not readable back", issued.id),
        }
        Ok((issued.id, issued.seq))
    }

    /// Answers `reply` with `read` over a snapshot of the store, on a
    /// blocking thread: folding every listing of a large store takes
    /// seconds, which the event loop must not spend. At most
    /// [`BACKGROUND_READS_MAX`] run at once and
    /// [`BACKGROUND_READS_WAITING_MAX`] wait; another is refused as `busy`.
    /// A snapshot shows the records as they were when the command arrived
    /// (or newer).
    fn in_background<T: Send + 'static>(
        &self,
        reply: Reply<T>,
        read: impl FnOnce(&Replica<SledSnapshot>) -> Result<T, ApiError> + Send + 'static,
    ) {
        let admitted = Arc::clone(&self.background);
        let most = BACKGROUND_READS_MAX + BACKGROUND_READS_WAITING_MAX;
        if admitted.fetch_add(1, Ordering::SeqCst) >= most {
            admitted.fetch_sub(1, Ordering::SeqCst);
            let _ = reply.send(Err(error(
                503,
                "busy",
                format!(
                    "this node is already answering or holding {most} requests that read every listing; try again in a moment"
                ),
            )));
            return;
        }
        let counted = BackgroundRead(admitted);
        let places = Arc::clone(&self.background_places);
        let replica = Replica::new(
            self.node.federation().clone(),
            self.node.replica.store().snapshot(),
        );
        tokio::spawn(async move {
            // The semaphore is never closed.
            let Ok(place) = places.acquire_owned().await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let answer = read(&replica);
                // Its place is free before the caller hears back.
                drop((place, counted));
                let _ = reply.send(answer);
            })
            .await;
        });
    }

    fn status(&self) -> Result<Status, ApiError> {
        let federation = self.node.federation();
        let heads = self.node.replica.store().heads().map_err(internal)?;
        let mut seen: BTreeMap<AuthorityId, u64> = BTreeMap::new();
        for heads in self.peer_heads.values() {
            for head in heads {
                let entry = seen.entry(head.author).or_default();
                *entry = (*entry).max(head.seq);
            }
        }
        let mut authors: Vec<AuthorStatus> = Vec::new();
        for member in &federation.roster().members {
            let head = heads.iter().find(|h| h.author == member.key);
            let seq = head.map_or(0, |h| h.seq);
            let peak = seen.get(&member.key).copied().unwrap_or(0).max(seq);
            authors.push(AuthorStatus {
                author: member.key,
                name: member.name.clone(),
                seq,
                seen: peak,
                lag: peak - seq,
                root: head.map(|h| h.root().to_hex()).unwrap_or_default(),
            });
        }
        Ok(Status {
            authority: self.node.author(),
            name: federation.name_of(&self.node.author()),
            federation: federation.id().to_string(),
            listen: self.listen.iter().map(|a| a.to_string()).collect(),
            peers: self
                .connected
                .iter()
                .map(|p| PeerStatus {
                    authority: self.members.get(p).copied().unwrap_or_default(),
                    name: self.name_of_peer(p),
                    peer_id: p.to_string(),
                })
                .collect(),
            authors,
            notices: self.node.replica.store().notice_count().map_err(internal)?,
            pending: self.node.replica.pending_count(),
            forks: self.node.replica.store().forks().map_err(internal)?.len(),
            unpublished: self.publish.len(),
            ready: self.ready,
        })
    }

    fn query(&mut self, ask: QueryAsk, reply: Reply<QueryResult>, t: Timestamp) {
        self.fanout_next += 1;
        let request = QueryRequest {
            version: QUERY_VERSION,
            federation: self.node.federation().id(),
            requester: self.node.author(),
            subject_kind: ask.subject_kind,
            subject_id: ask.subject_id,
            purpose: ask.purpose,
            legal_basis: ask.legal_basis,
            issued_at: t,
            nonce: self.fanout_next ^ self.rng,
        };
        let signed = match request.sign(&self.node.key) {
            Ok(signed) => signed,
            Err(e) => {
                let _ = reply.send(Err(error(400, "bad_query", e.to_string())));
                return;
            }
        };
        *self.metrics.queries.entry("sent").or_default() += 1;
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        if ask.scope == QueryScope::Federation && self.fanouts.len() >= FANOUTS_MAX {
            let _ = reply.send(Err(error(
                503,
                "busy",
                format!("{FANOUTS_MAX} federation-wide queries are already waiting"),
            )));
            return;
        }
        if ask.scope == QueryScope::Local || peers.is_empty() {
            let own = match query::answer(&self.node.replica, &signed, &self.node.key, t) {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    let _ = reply.send(Err(error(400, "bad_query", e.to_string())));
                    return;
                }
                Err(e) => {
                    let _ = reply.send(Err(internal(e)));
                    return;
                }
            };
            let answers = vec![Answered {
                responder: self.node.author(),
                answer: own,
            }];
            self.record("sent", &signed, &answers, &[]);
            let _ = reply.send(Ok(QueryResult {
                request: signed,
                answers,
                missing: Vec::new(),
            }));
            return;
        }
        let bytes = match signed.signed.encode::<{ query::QUERY_BYTES_MAX + 64 }>() {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = reply.send(Err(internal(e)));
                return;
            }
        };
        let id = self.fanout_next;
        let mut asked = BTreeSet::new();
        for peer in peers {
            let request_id = self
                .swarm
                .behaviour_mut()
                .query
                .send_request(&peer, bytes.clone());
            self.query_requests.insert(request_id, (id, peer));
            asked.insert(peer);
        }
        self.fanouts.insert(
            id,
            Fanout {
                local_done: false,
                request: signed,
                asked,
                answers: Vec::new(),
                missing: Vec::new(),
                deadline: Instant::now() + ask.deadline.min(QUERY_DEADLINE_MAX),
                reply,
            },
        );
        // Its own answer is computed while the requests travel.
        self.deferred.push_back(Deferred::LocalAnswer(id));
    }
}

/// The newest published listings (the publicity feed).
fn feed<S: Store>(replica: &Replica<S>, t: Timestamp) -> Result<Vec<ListingState>, ApiError> {
    let mut out = Vec::new();
    for id in replica.store().listings().map_err(internal)? {
        if let Some(state) = replica.listing_state(&id, t).map_err(internal)?
            && state.published
        {
            out.push(state);
        }
    }
    out.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.id.cmp(&b.id)));
    out.truncate(FEED_LISTINGS_MAX);
    Ok(out)
}

/// Objections past their ruling deadline, over every listing.
fn overdue<S: Store>(replica: &Replica<S>, t: Timestamp) -> usize {
    let Ok(ids) = replica.store().listings() else {
        return 0;
    };
    ids.iter()
        .filter_map(|id| replica.listing_state(id, t).ok().flatten())
        .map(|s| s.overdue_objections().count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;
    use crate::node::{CONFIG_FILE, KEY_FILE, ROSTER_FILE};
    use credence_protocol::testkit;

    /// A daemon of member 0 of a test federation, not running: commands
    /// are handed to it directly.
    fn daemon(dir: &std::path::Path) -> Daemon {
        let test = testkit::federation(3, 2);
        std::fs::write(dir.join(CONFIG_FILE), "name = \"market\"\n").unwrap();
        crate::keyfile::write_new(&dir.join(KEY_FILE), &test.keys[0]).unwrap();
        let roster = test.federation.roster().to_document().to_toml();
        std::fs::write(dir.join(ROSTER_FILE), roster).unwrap();
        let config = RunConfig {
            data: dir.to_path_buf(),
            listen: Vec::new(),
            bootstrap: Vec::new(),
            http: "127.0.0.1:0".parse().unwrap(),
            sync_interval: Duration::from_secs(30),
            catch_up_grace: Duration::from_secs(1),
            mdns: false,
            log: LogFormat::Human,
        };
        Daemon::start(config).unwrap().0
    }

    // Reads that fold every listing are answered from a snapshot off the
    // event loop, the same as the live replica would answer; they wait for
    // one of BACKGROUND_READS_MAX places, and past the waiting bound the
    // caller is told to come back.
    #[tokio::test]
    async fn whole_store_reads_run_off_the_loop_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let t = now();
        let listing = testkit::listing(1, "food-drug", Timestamp(t.0 - 60_000));
        daemon.node.issue(NoticeKind::List(listing), t).unwrap();
        let live = daemon.node.export().unwrap();
        let live_feed = feed(&daemon.node.replica, t).unwrap();

        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Export(reply));
        let exported = answer.await.unwrap().unwrap();
        assert_eq!(exported.envelopes, live.envelopes);
        assert_eq!(exported.heads, live.heads);
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Feed(reply));
        let fed = answer.await.unwrap().unwrap();
        assert_eq!(fed.len(), 1);
        assert_eq!(fed, live_feed);

        let most = BACKGROUND_READS_MAX + BACKGROUND_READS_WAITING_MAX;
        daemon.background.store(most, Ordering::SeqCst);
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Metrics(reply));
        let refused = answer.await.unwrap().unwrap_err();
        assert_eq!((refused.status, refused.code), (503, "busy"));
        assert_eq!(daemon.background.load(Ordering::SeqCst), most);
        daemon.background.store(0, Ordering::SeqCst);
        // With every place taken, reads wait for one instead of failing.
        let taken = Arc::clone(&daemon.background_places)
            .acquire_many_owned(BACKGROUND_READS_MAX as u32)
            .await
            .unwrap();
        let (reply, mut waiting) = oneshot::channel();
        daemon.on_command(Command::Tasks(None, reply));
        tokio::task::yield_now().await;
        assert!(waiting.try_recv().is_err(), "no place was free");
        assert_eq!(daemon.background.load(Ordering::SeqCst), 1);
        drop(taken);
        let me = daemon.node.author();
        let live_tasks = daemon.node.replica.tasks(&me, t).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap().len(), live_tasks.len());
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Metrics(reply));
        let text = answer.await.unwrap().unwrap();
        assert!(text.contains("credence_notices_accepted_total"), "{text}");
        // Every background read gave its place back.
        assert_eq!(daemon.background.load(Ordering::SeqCst), 0);
    }
}

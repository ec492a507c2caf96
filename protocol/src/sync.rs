//! Anti-entropy sync (`/credence/sync/2`) as a sans-IO state machine.
//!
//! Every notice sits in its author's dense log, so a replica's content is
//! summarised by its heads, `(author, seq, id)` per author. A session:
//!
//! 1. the initiator sends the 32-byte digest of its heads
//!    ([`SyncRequest::Digest`]); equal digests end the session
//!    ([`SyncResponse::InSync`]): one round trip;
//! 2. otherwise the responder answers with its heads
//!    ([`SyncResponse::Heads`]): still one round trip, and the difference is
//!    known, at a cost of O(authorities) bytes whatever the number of
//!    notices;
//! 3. the initiator pulls the `seq` ranges it lacks in bounded batches
//!    ([`SyncRequest::Range`]), starting each range at its own head so that
//!    a different notice at that seq shows up as a fork; where the peer
//!    lacks something it offers its own heads ([`SyncRequest::Offer`]) and
//!    the peer runs a pull-only session ([`SyncSession::pull`]) back.
//! 4. the heads summary also names the authors of whom the replica holds
//!    fork evidence; a replica that lacks the evidence of a named author
//!    asks for the pair ([`SyncRequest::Evidence`]), so every honest replica
//!    learns every fork even when gossip lost it.
//!
//! The node drives this over libp2p request-response and the simulator
//! drives it over its modelled links: the same code.

use crate::codec::{self, CodecError};
use crate::model::{AuthorityId, ENVELOPE_BYTES_MAX, FederationId, NoticeId};
use crate::replica::{Replica, ReplicaError};
use crate::roster::MEMBERS_MAX;
use crate::store::{Head, Store};
use credence_crypto::Digest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The request-response protocol name.
pub const SYNC_PROTOCOL: &str = "/credence/sync/2";
/// Most notices asked for or sent in one range batch.
pub const SYNC_BATCH_NOTICES_MAX: u64 = 512;
/// Most envelope bytes sent in one range batch (the batch stops early).
pub const SYNC_BATCH_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Largest encoded sync message (a full batch plus framing, or the heads
/// of every member).
pub const SYNC_MESSAGE_BYTES_MAX: usize = SYNC_BATCH_BYTES_MAX + ENVELOPE_BYTES_MAX + 64 * 1024;
/// Most heads in one message: one per roster member.
pub const HEADS_MAX: usize = MEMBERS_MAX;
/// Most requests one session sends before it stops (a peer that keeps
/// answering with nothing useful cannot hold a session open forever).
pub const SESSION_REQUESTS_MAX: u64 = 100_000;
/// Most authors whose fork evidence one request asks for (each answer
/// holds at most two envelopes per author).
pub const EVIDENCE_AUTHORS_MAX: usize = 16;

/// Most notices one [`SyncRequest::Wanted`] asks for by id.
pub const WANTED_IDS_MAX: usize = 32;

const DIGEST_DOMAIN: &[u8] = b"credence/v1/heads\0";

/// One author's newest notice, as exchanged in sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeadEntry {
    /// The author.
    pub author: AuthorityId,
    /// Seq of its newest notice.
    pub seq: u64,
    /// Id of its newest notice.
    pub id: NoticeId,
}

impl From<&Head> for HeadEntry {
    fn from(head: &Head) -> HeadEntry {
        HeadEntry {
            author: head.author,
            seq: head.seq,
            id: head.id,
        }
    }
}

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "Here is the digest of my heads."
    Digest {
        /// The federation the initiator belongs to.
        federation: FederationId,
        /// [`heads_digest`] of the initiator's heads.
        digest: [u8; 32],
    },
    /// "Here are my heads; pull what you lack."
    Offer {
        /// The federation the initiator belongs to.
        federation: FederationId,
        /// The initiator's heads.
        heads: Vec<HeadEntry>,
        /// Authors of whom the initiator holds fork evidence.
        forks: Vec<AuthorityId>,
    },
    /// "Send me these ranges": at most [`SYNC_BATCH_NOTICES_MAX`] notices
    /// asked in all, at most [`HEADS_MAX`] ranges.
    Ranges(Vec<RangeAsk>),
    /// "Send me your fork evidence of these authors": 1 to
    /// [`EVIDENCE_AUTHORS_MAX`] authors.
    Evidence(Vec<AuthorityId>),
    /// "Here is what I hold of each log's checkpoints; send me newer ones,
    /// more cosignatures and split views I lack": at most [`HEADS_MAX`]
    /// entries, one per log. The engine answers it from its checkpoint
    /// book ([`crate::checkpoint::book`]).
    Checkpoints(Vec<crate::checkpoint::wire::CheckpointHave>),
    /// "Here are the hashes of the roster versions I hold; send me the
    /// ones I lack": at most [`crate::governance::chain::VERSIONS_MAX`].
    /// A session sends it first: a notice naming a version the puller
    /// lacks would be refused.
    Roster(Vec<crate::model::RosterHash>),
    /// "Send me these notices, if you store them": 1 to
    /// [`WANTED_IDS_MAX`] ids of notices that pending notices of the
    /// initiator refer to. An orphan (a notice a retired key signed past
    /// its cutoff, cut from its log) is in no log a range can ask for.
    Wanted(Vec<NoticeId>),
    /// "Here are the proposals for the next roster version I hold, with
    /// who signed each; send me those I lack and signatures I lack": at
    /// most [`crate::engine::PROPOSALS_MAX`] entries. Sent after the
    /// roster exchange, so that a member away while a proposal circulated
    /// (or restarted since) still gets it to sign.
    Proposals(Vec<ProposalHave>),
}

/// A proposal the asker of [`SyncRequest::Proposals`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalHave {
    /// Its hash.
    pub hash: crate::model::RosterHash,
    /// The keys whose signatures on it the asker holds (at most
    /// [`crate::governance::SIGNATURES_MAX`]).
    pub signers: Vec<AuthorityId>,
}

/// Most bytes of signed roster versions in one answer: a batch, so that
/// the answer with its framing stays within [`SYNC_MESSAGE_BYTES_MAX`]
/// (an answer past it could not be sent, and a node lacking that many
/// versions would never get them). A larger signed version than a batch
/// cannot be made ([`crate::governance::SIGNED_VERSION_BYTES_MAX`]); an
/// asker that got some asks again for the rest in its next session.
pub const ROSTER_ANSWER_BYTES_MAX: usize = SYNC_BATCH_BYTES_MAX;

const _: () = assert!(
    ROSTER_ANSWER_BYTES_MAX + 16 + 8 * crate::governance::chain::VERSIONS_MAX
        <= SYNC_MESSAGE_BYTES_MAX
        && crate::governance::SIGNED_VERSION_BYTES_MAX <= ROSTER_ANSWER_BYTES_MAX
);

/// One range of one author's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeAsk {
    /// The author.
    pub author: AuthorityId,
    /// First seq wanted (at least 1).
    pub from: u64,
    /// How many (at least 1).
    pub count: u64,
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The digests are equal.
    InSync,
    /// The responder's heads, and the authors of whom it holds fork
    /// evidence.
    Heads {
        /// One head per author with notices.
        heads: Vec<HeadEntry>,
        /// Authors with fork evidence.
        forks: Vec<AuthorityId>,
    },
    /// For each range asked, in order: envelopes in seq order from the
    /// asked seq, as many as the responder has, up to the counts and the
    /// byte limit of the whole answer.
    Notices {
        /// One list per range asked.
        ranges: Vec<Vec<serde_bytes::ByteBuf>>,
        /// The byte limit cut the answer short: ranges that got fewer
        /// notices than asked may have more.
        truncated: bool,
    },
    /// Fork evidence, one pair per author asked that the responder has
    /// evidence of (authors it has none of are left out).
    Evidence(Vec<EvidencePair>),
    /// An offer was taken; the responder will pull.
    Taken,
    /// The request was refused.
    Refused(RefusalReason),
    /// Checkpoint notes the asker lacks, and split-view evidence of the
    /// logs it did not say it holds evidence of (at most
    /// [`crate::checkpoint::wire::CHECKPOINTS_ANSWER_BYTES_MAX`] in all).
    Checkpoints {
        /// Signed checkpoint notes with their cosignatures.
        notes: Vec<serde_bytes::ByteBuf>,
        /// Pairs of one author's checkpoints with one size and two roots.
        split_views: Vec<crate::checkpoint::wire::SplitViewPair>,
    },
    /// The signed roster versions the asker lacks, in number order (at
    /// most [`ROSTER_ANSWER_BYTES_MAX`] bytes of them).
    Roster(Vec<serde_bytes::ByteBuf>),
    /// The envelopes the responder stores among those asked by id (at
    /// most as many, and at most [`SYNC_BATCH_BYTES_MAX`] bytes of them).
    Wanted(Vec<serde_bytes::ByteBuf>),
    /// The proposals for the version after the responder's current one
    /// that the asker lacks or holds without some of their signatures,
    /// each signed version with every signature the responder holds (at
    /// most [`ROSTER_ANSWER_BYTES_MAX`] bytes of them).
    Proposals(Vec<serde_bytes::ByteBuf>),
}

/// The two envelopes an author signed at one seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidencePair {
    /// The envelope the responder holds in its log.
    pub first: serde_bytes::ByteBuf,
    /// The conflicting envelope.
    pub second: serde_bytes::ByteBuf,
}

/// Why a sync request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RefusalReason {
    /// The initiator belongs to another federation.
    #[error("the peer belongs to another federation")]
    OtherFederation,
    /// A range asked for nothing, or the ranges for too much.
    #[error(
        "ranges must ask for 1 to {SYNC_BATCH_NOTICES_MAX} notices in all, each from seq 1 on, in at most {HEADS_MAX} ranges"
    )]
    BadRange,
    /// An offer held more heads than there can be members.
    #[error("an offer may hold at most {HEADS_MAX} heads and forks")]
    TooManyHeads,
    /// An evidence request named no author or too many.
    #[error("an evidence request names 1 to {EVIDENCE_AUTHORS_MAX} authors")]
    BadEvidence,
    /// A checkpoint request held more entries than there can be members.
    #[error("a checkpoint request may hold at most {HEADS_MAX} entries")]
    TooManyCheckpoints,
    /// A request by id named no notice or too many.
    #[error("a request by id names 1 to {WANTED_IDS_MAX} notices")]
    BadWanted,
    /// A proposals request held too many proposals or signers.
    #[error(
        "a proposals request holds at most {} proposals of at most {} signers each",
        crate::engine::PROPOSALS_MAX,
        crate::governance::SIGNATURES_MAX
    )]
    BadProposals,
}

/// Encodes a sync request.
pub fn encode_request(request: &SyncRequest) -> Result<Vec<u8>, CodecError> {
    codec::encode_bounded::<_, SYNC_MESSAGE_BYTES_MAX>("sync request", request)
}

/// Decodes a sync request (bounded, canonical, no trailing bytes).
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, CodecError> {
    codec::decode_bounded::<_, SYNC_MESSAGE_BYTES_MAX>("sync request", bytes)
}

/// Encodes a sync response.
pub fn encode_response(response: &SyncResponse) -> Result<Vec<u8>, CodecError> {
    codec::encode_bounded::<_, SYNC_MESSAGE_BYTES_MAX>("sync response", response)
}

/// Decodes a sync response (bounded, canonical, no trailing bytes).
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, CodecError> {
    codec::decode_bounded::<_, SYNC_MESSAGE_BYTES_MAX>("sync response", bytes)
}

/// The digest of a replica's summary: BLAKE3 over the heads sorted by
/// author, then, when there are any, a marker and the authors with fork
/// evidence, sorted.
pub fn heads_digest(heads: &[HeadEntry], forks: &[AuthorityId]) -> [u8; 32] {
    let mut sorted: Vec<&HeadEntry> = heads.iter().collect();
    sorted.sort();
    let mut bytes = Vec::with_capacity(DIGEST_DOMAIN.len() + sorted.len() * 72 + forks.len() * 32);
    bytes.extend_from_slice(DIGEST_DOMAIN);
    for head in sorted {
        bytes.extend_from_slice(&head.author.0);
        bytes.extend_from_slice(&head.seq.to_le_bytes());
        bytes.extend_from_slice(&head.id.0);
    }
    if !forks.is_empty() {
        let mut forks: Vec<&AuthorityId> = forks.iter().collect();
        forks.sort();
        bytes.extend_from_slice(FORKS_MARKER);
        for author in forks {
            bytes.extend_from_slice(&author.0);
        }
    }
    Digest::of(&bytes).0
}

const FORKS_MARKER: &[u8] = b"\0forks\0";

/// The heads of a replica, as exchanged in sync.
pub fn local_heads<S: Store>(
    replica: &Replica<S>,
) -> Result<Vec<HeadEntry>, ReplicaError<S::Error>> {
    let heads = replica.store().heads().map_err(ReplicaError::Store)?;
    Ok(heads.iter().map(HeadEntry::from).collect())
}

/// The authors of whom a replica holds fork evidence, sorted.
pub fn local_forks<S: Store>(
    replica: &Replica<S>,
) -> Result<Vec<AuthorityId>, ReplicaError<S::Error>> {
    let mut authors: Vec<AuthorityId> = replica
        .store()
        .forks()
        .map_err(ReplicaError::Store)?
        .iter()
        .map(|f| f.author)
        .collect();
    authors.sort();
    authors.dedup();
    Ok(authors)
}

/// The offer a replica sends when its peer lacks something.
pub fn offer<S: Store>(replica: &Replica<S>) -> Result<SyncRequest, ReplicaError<S::Error>> {
    Ok(SyncRequest::Offer {
        federation: replica.federation().id(),
        heads: local_heads(replica)?,
        forks: local_forks(replica)?,
    })
}

/// What a responder does with one request: the response, and, for an
/// offer taken, the pull-only session back with its first request.
#[derive(Debug)]
pub struct Answer {
    /// The response to send.
    pub response: SyncResponse,
    /// A pull back (the offer showed the peer holds more).
    pub pull_back: Option<(SyncSession, SyncRequest)>,
}

/// Answers one request and, for an offer, plans the pull back (unless
/// `pulling` says a session with that peer already runs).
pub fn answer<S: Store>(
    replica: &Replica<S>,
    request: &SyncRequest,
    pulling: bool,
) -> Result<Answer, SessionError<S::Error>> {
    let response = respond(replica, request)?;
    let mut pull_back = None;
    if let (SyncRequest::Offer { heads, forks, .. }, SyncResponse::Taken) = (request, &response)
        && !pulling
        && let (session, Some(next)) = SyncSession::pull(replica, heads, forks)?
    {
        pull_back = Some((session, next));
    }
    Ok(Answer {
        response,
        pull_back,
    })
}

/// Answers one sync request from a replica's records. Pure apart from
/// reading the store.
pub fn respond<S: Store>(
    replica: &Replica<S>,
    request: &SyncRequest,
) -> Result<SyncResponse, ReplicaError<S::Error>> {
    match request {
        SyncRequest::Digest { federation, digest } => {
            if *federation != replica.federation().id() {
                return Ok(SyncResponse::Refused(RefusalReason::OtherFederation));
            }
            let heads = local_heads(replica)?;
            let forks = local_forks(replica)?;
            if heads_digest(&heads, &forks) == *digest {
                Ok(SyncResponse::InSync)
            } else {
                Ok(SyncResponse::Heads { heads, forks })
            }
        }
        SyncRequest::Offer {
            federation,
            heads,
            forks,
        } => {
            if *federation != replica.federation().id() {
                return Ok(SyncResponse::Refused(RefusalReason::OtherFederation));
            }
            if heads.len() > HEADS_MAX || forks.len() > HEADS_MAX {
                return Ok(SyncResponse::Refused(RefusalReason::TooManyHeads));
            }
            Ok(SyncResponse::Taken)
        }
        SyncRequest::Evidence(authors) => {
            if authors.is_empty() || authors.len() > EVIDENCE_AUTHORS_MAX {
                return Ok(SyncResponse::Refused(RefusalReason::BadEvidence));
            }
            let held = replica.store().forks().map_err(ReplicaError::Store)?;
            let mut pairs = Vec::new();
            for author in authors {
                if let Some(evidence) = held.iter().find(|f| f.author == *author)
                    && !pairs
                        .iter()
                        .any(|p: &(AuthorityId, EvidencePair)| p.0 == *author)
                {
                    pairs.push((
                        *author,
                        EvidencePair {
                            first: serde_bytes::ByteBuf::from(evidence.first.clone()),
                            second: serde_bytes::ByteBuf::from(evidence.second.clone()),
                        },
                    ));
                }
            }
            Ok(SyncResponse::Evidence(
                pairs.into_iter().map(|(_, p)| p).collect(),
            ))
        }
        SyncRequest::Wanted(ids) => {
            if ids.is_empty() || ids.len() > WANTED_IDS_MAX {
                return Ok(SyncResponse::Refused(RefusalReason::BadWanted));
            }
            let mut envelopes = Vec::new();
            let mut bytes = 0;
            for id in ids {
                if let Some(envelope) = replica.store().notice(id).map_err(ReplicaError::Store)? {
                    if bytes + envelope.len() > SYNC_BATCH_BYTES_MAX {
                        break;
                    }
                    bytes += envelope.len();
                    envelopes.push(serde_bytes::ByteBuf::from(envelope));
                }
            }
            Ok(SyncResponse::Wanted(envelopes))
        }
        SyncRequest::Ranges(ranges) => {
            if !ranges_valid(ranges) {
                return Ok(SyncResponse::Refused(RefusalReason::BadRange));
            }
            serve_ranges(replica.store(), ranges).map_err(ReplicaError::Store)
        }
        SyncRequest::Checkpoints(held) => {
            if held.len() > HEADS_MAX {
                return Ok(SyncResponse::Refused(RefusalReason::TooManyCheckpoints));
            }
            // A replica keeps no checkpoints: the engine answers from its
            // book before a request reaches this.
            Ok(SyncResponse::Checkpoints {
                notes: Vec::new(),
                split_views: Vec::new(),
            })
        }
        SyncRequest::Roster(held) => Ok(answer_roster(replica, held)),
        SyncRequest::Proposals(held) => {
            if !proposals_valid(held) {
                return Ok(SyncResponse::Refused(RefusalReason::BadProposals));
            }
            // A replica holds no proposals: the engine answers from its
            // own before a request reaches this.
            Ok(SyncResponse::Proposals(Vec::new()))
        }
    }
}

/// A proposals request keeps its limits: at most
/// [`crate::engine::PROPOSALS_MAX`] proposals, each with at most
/// [`crate::governance::SIGNATURES_MAX`] signers.
pub fn proposals_valid(held: &[ProposalHave]) -> bool {
    held.len() <= crate::engine::PROPOSALS_MAX
        && held
            .iter()
            .all(|h| h.signers.len() <= crate::governance::SIGNATURES_MAX)
}

/// The signed roster versions `replica` holds that are not in `held`, in
/// number order, up to [`ROSTER_ANSWER_BYTES_MAX`] bytes; a list longer
/// than [`crate::governance::chain::VERSIONS_MAX`] is refused.
pub fn answer_roster<S: Store>(
    replica: &Replica<S>,
    held: &[crate::model::RosterHash],
) -> SyncResponse {
    if held.len() > crate::governance::chain::VERSIONS_MAX {
        return SyncResponse::Refused(RefusalReason::TooManyCheckpoints);
    }
    let held: BTreeSet<&crate::model::RosterHash> = held.iter().collect();
    let mut versions = Vec::new();
    let mut bytes = 0usize;
    for signed in replica.chain().signed_versions() {
        if held.contains(&signed.hash()) {
            continue;
        }
        let Ok(encoded) = signed.to_bytes() else {
            continue;
        };
        bytes += encoded.len();
        if bytes > ROSTER_ANSWER_BYTES_MAX {
            break;
        }
        versions.push(serde_bytes::ByteBuf::from(encoded));
    }
    SyncResponse::Roster(versions)
}

/// A ranges request keeps its limits: 1 to [`HEADS_MAX`] ranges, each
/// from seq 1 or later and at least one notice long, at most
/// [`SYNC_BATCH_NOTICES_MAX`] notices asked in all. Anything else is
/// refused with [`RefusalReason::BadRange`].
pub fn ranges_valid(ranges: &[RangeAsk]) -> bool {
    let asked: u64 = ranges.iter().map(|r| r.count).fold(0, u64::saturating_add);
    !ranges.is_empty()
        && ranges.len() <= HEADS_MAX
        && asked <= SYNC_BATCH_NOTICES_MAX
        && ranges.iter().all(|r| r.from != 0 && r.count != 0)
}

/// The notices of valid `ranges` ([`ranges_valid`]) read from `store`:
/// each range's envelopes in seq order, stopping at the first gap, until
/// [`SYNC_BATCH_BYTES_MAX`] would be passed (the answer is then marked
/// truncated; the first envelope always goes).
///
/// This is the one answer that reads many notices, so the daemon runs it
/// off its event loop over a snapshot ([`crate::engine::Output::ReadRanges`]).
pub fn serve_ranges<S: Store>(store: &S, ranges: &[RangeAsk]) -> Result<SyncResponse, S::Error> {
    let mut answer = Vec::with_capacity(ranges.len());
    let mut bytes = 0usize;
    let mut full = false;
    for range in ranges {
        let mut envelopes = Vec::new();
        if !full {
            let count = usize::try_from(range.count).unwrap_or(usize::MAX);
            for id in store.log_range(&range.author, range.from, count)? {
                let Some(envelope) = store.notice(&id)? else {
                    break;
                };
                if bytes > 0 && bytes + envelope.len() > SYNC_BATCH_BYTES_MAX {
                    full = true;
                    break;
                }
                bytes += envelope.len();
                envelopes.push(serde_bytes::ByteBuf::from(envelope));
            }
        }
        answer.push(envelopes);
    }
    Ok(SyncResponse::Notices {
        ranges: answer,
        truncated: full,
    })
}

/// [`serve_ranges`] encoded for the wire; an error says what failed.
pub fn read_ranges<S: Store>(store: &S, ranges: &[RangeAsk]) -> Result<Vec<u8>, String> {
    let response =
        serve_ranges(store, ranges).map_err(|e| format!("cannot read the ranges asked: {e}"))?;
    encode_response(&response).map_err(|e| format!("cannot encode a sync response: {e}"))
}

/// A range still to pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    author: AuthorityId,
    /// Next seq to ask for.
    from: u64,
    /// Last seq wanted.
    to: u64,
}

/// What the driver must do after a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Envelopes to ingest into the replica (in this order).
    pub ingest: Vec<Vec<u8>>,
    /// The next request to send, or `None` when the session is over.
    pub next: Option<SyncRequest>,
    /// The peer lacks notices or fork evidence this replica holds: this
    /// offer of its heads, sent outside the session, makes the peer pull.
    pub offer: Option<SyncRequest>,
}

/// Why a session ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E: std::error::Error + 'static> {
    /// The peer answered something that does not fit the request.
    #[error("the peer answered {got} to {asked}")]
    Unexpected {
        /// What was asked.
        asked: &'static str,
        /// What came back.
        got: &'static str,
    },
    /// The peer broke a limit.
    #[error("the peer's answer broke a limit: {0}")]
    Limit(String),
    /// The peer refused.
    #[error("the peer refused: {0}")]
    Refused(RefusalReason),
    /// The session asked too many times.
    #[error("the session sent {SESSION_REQUESTS_MAX} requests; stopped")]
    TooLong,
    /// The local replica failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError<E>),
}

impl<E: std::error::Error + 'static> SessionError<E> {
    /// A stable name of the failure, for counters.
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::Unexpected { .. } => "unexpected",
            SessionError::Limit(_) => "limit",
            SessionError::Refused(_) => "refused",
            SessionError::TooLong => "too_long",
            SessionError::Replica(_) => "store",
        }
    }
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Requests sent (= round trips).
    pub round_trips: u64,
    /// Round trips spent before the difference was known.
    pub round_trips_to_difference: u64,
    /// Envelopes received.
    pub notices_received: u64,
    /// Forks suspected from the heads (a different id at a seq both hold).
    pub forks_suspected: u64,
    /// Fork evidence pairs received.
    pub evidence_received: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitHeads,
    Pulling,
    Done,
}

/// What the request in flight asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum InFlight {
    #[default]
    Nothing,
    Ranges(Vec<Want>),
    Evidence(Vec<AuthorityId>),
    Wanted(usize),
}

/// The initiating side of one sync session.
#[derive(Debug)]
pub struct SyncSession {
    phase: Phase,
    wants: VecDeque<Want>,
    /// Authors whose fork evidence the peer holds and this replica lacks.
    evidence_wants: Vec<AuthorityId>,
    /// Notices pending notices of this replica refer to, asked by id.
    reference_wants: Vec<NoticeId>,
    asked: InFlight,
    stats: SessionStats,
}

impl SyncSession {
    fn new(phase: Phase) -> SyncSession {
        SyncSession {
            phase,
            wants: VecDeque::new(),
            evidence_wants: Vec::new(),
            reference_wants: Vec::new(),
            asked: InFlight::Nothing,
            stats: SessionStats::default(),
        }
    }

    /// Starts a full session: returns it with the digest request to send.
    pub fn start<S: Store>(
        replica: &Replica<S>,
    ) -> Result<(SyncSession, SyncRequest), ReplicaError<S::Error>> {
        let heads = local_heads(replica)?;
        let forks = local_forks(replica)?;
        let mut session = SyncSession::new(Phase::AwaitHeads);
        session.stats.round_trips = 1;
        let request = SyncRequest::Digest {
            federation: replica.federation().id(),
            digest: heads_digest(&heads, &forks),
        };
        Ok((session, request))
    }

    /// Starts a pull-only session from the heads and fork authors a peer
    /// offered. Returns the session and its first request, or `None` if
    /// nothing is missing.
    pub fn pull<S: Store>(
        replica: &Replica<S>,
        peer_heads: &[HeadEntry],
        peer_forks: &[AuthorityId],
    ) -> Result<(SyncSession, Option<SyncRequest>), SessionError<S::Error>> {
        let mut session = SyncSession::new(Phase::Pulling);
        session.plan(replica, peer_heads, peer_forks)?;
        let next = session.next_request()?;
        Ok((session, next))
    }

    /// The session's counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Takes the peer's response to the last request. The driver ingests
    /// [`Step::ingest`] into the replica, then sends [`Step::offer`] and
    /// [`Step::next`].
    pub fn on_response<S: Store>(
        &mut self,
        replica: &Replica<S>,
        response: SyncResponse,
    ) -> Result<Step, SessionError<S::Error>> {
        let result = self.handle(replica, response);
        if result.is_err() {
            self.phase = Phase::Done;
        }
        result
    }

    fn handle<S: Store>(
        &mut self,
        replica: &Replica<S>,
        response: SyncResponse,
    ) -> Result<Step, SessionError<S::Error>> {
        if let SyncResponse::Refused(reason) = response {
            return Err(SessionError::Refused(reason));
        }
        match self.phase {
            Phase::Done => Err(SessionError::Unexpected {
                asked: "nothing (the session is over)",
                got: response_name(&response),
            }),
            Phase::AwaitHeads => {
                self.stats.round_trips_to_difference = 1;
                match response {
                    SyncResponse::InSync => {
                        self.phase = Phase::Done;
                        Ok(Step::default())
                    }
                    SyncResponse::Heads { heads, forks } => {
                        self.phase = Phase::Pulling;
                        let peer_lacks = self.plan(replica, &heads, &forks)?;
                        let offer = if peer_lacks {
                            Some(offer(replica)?)
                        } else {
                            None
                        };
                        Ok(Step {
                            ingest: Vec::new(),
                            next: self.next_request()?,
                            offer,
                        })
                    }
                    other => Err(SessionError::Unexpected {
                        asked: "the digest",
                        got: response_name(&other),
                    }),
                }
            }
            Phase::Pulling => match std::mem::take(&mut self.asked) {
                InFlight::Ranges(asked) => self.take_ranges(asked, response),
                InFlight::Evidence(asked) => self.take_evidence(&asked, response),
                InFlight::Wanted(asked) => self.take_wanted(asked, response),
                InFlight::Nothing => Err(SessionError::Unexpected {
                    asked: "nothing",
                    got: response_name(&response),
                }),
            },
        }
    }

    fn take_ranges<E: std::error::Error + 'static>(
        &mut self,
        asked: Vec<Want>,
        response: SyncResponse,
    ) -> Result<Step, SessionError<E>> {
        let SyncResponse::Notices {
            ranges: answers,
            truncated,
        } = response
        else {
            return Err(SessionError::Unexpected {
                asked: "ranges",
                got: response_name(&response),
            });
        };
        if asked.is_empty() || answers.len() != asked.len() {
            return Err(SessionError::Limit(format!(
                "{} answers for {} ranges asked",
                answers.len(),
                asked.len()
            )));
        }
        if truncated && answers.iter().all(Vec::is_empty) {
            // The byte limit cannot cut an answer to nothing: a peer that
            // says so would keep the session asking forever.
            return Err(SessionError::Limit(
                "an answer cut short by the byte limit holds no notice".into(),
            ));
        }
        let mut ingest = Vec::new();
        for (want, envelopes) in asked.iter().zip(answers) {
            let asked_count = (want.to - want.from + 1).min(SYNC_BATCH_NOTICES_MAX);
            if envelopes.len() as u64 > asked_count {
                return Err(SessionError::Limit(format!(
                    "{} notices sent for {asked_count} asked",
                    envelopes.len()
                )));
            }
            if let Some(big) = envelopes.iter().find(|e| e.len() > ENVELOPE_BYTES_MAX) {
                return Err(SessionError::Limit(format!(
                    "an envelope of {} bytes (limit {ENVELOPE_BYTES_MAX})",
                    big.len()
                )));
            }
            let got = envelopes.len() as u64;
            self.stats.notices_received += got;
            // A peer that sends fewer than asked has no more, unless
            // the byte limit cut its answer: continue after what
            // came; drop the range if nothing came and nothing was cut.
            if (got > 0 || truncated) && want.from + got <= want.to {
                self.wants.push_back(Want {
                    from: want.from + got,
                    ..*want
                });
            }
            ingest.extend(envelopes.into_iter().map(|e| e.into_vec()));
        }
        Ok(Step {
            ingest,
            next: self.next_request()?,
            offer: None,
        })
    }

    fn take_evidence<E: std::error::Error + 'static>(
        &mut self,
        asked: &[AuthorityId],
        response: SyncResponse,
    ) -> Result<Step, SessionError<E>> {
        let SyncResponse::Evidence(pairs) = response else {
            return Err(SessionError::Unexpected {
                asked: "fork evidence",
                got: response_name(&response),
            });
        };
        if pairs.len() > asked.len() {
            return Err(SessionError::Limit(format!(
                "{} evidence pairs sent for {} authors asked",
                pairs.len(),
                asked.len()
            )));
        }
        let mut ingest = Vec::with_capacity(2 * pairs.len());
        for pair in pairs {
            for envelope in [pair.first, pair.second] {
                if envelope.len() > ENVELOPE_BYTES_MAX {
                    return Err(SessionError::Limit(format!(
                        "an envelope of {} bytes (limit {ENVELOPE_BYTES_MAX})",
                        envelope.len()
                    )));
                }
                ingest.push(envelope.into_vec());
            }
            self.stats.evidence_received += 1;
        }
        Ok(Step {
            ingest,
            next: self.next_request()?,
            offer: None,
        })
    }

    fn take_wanted<E: std::error::Error + 'static>(
        &mut self,
        asked: usize,
        response: SyncResponse,
    ) -> Result<Step, SessionError<E>> {
        let SyncResponse::Wanted(envelopes) = response else {
            return Err(SessionError::Unexpected {
                asked: "notices by id",
                got: response_name(&response),
            });
        };
        if envelopes.len() > asked {
            return Err(SessionError::Limit(format!(
                "{} notices sent for {asked} asked by id",
                envelopes.len()
            )));
        }
        if let Some(big) = envelopes.iter().find(|e| e.len() > ENVELOPE_BYTES_MAX) {
            return Err(SessionError::Limit(format!(
                "an envelope of {} bytes (limit {ENVELOPE_BYTES_MAX})",
                big.len()
            )));
        }
        self.stats.notices_received += envelopes.len() as u64;
        Ok(Step {
            ingest: envelopes.into_iter().map(|e| e.into_vec()).collect(),
            next: self.next_request()?,
            offer: None,
        })
    }

    /// Plans the ranges and evidence to pull from the peer's summary.
    /// Returns whether the peer lacks something this replica holds.
    fn plan<S: Store>(
        &mut self,
        replica: &Replica<S>,
        peer_heads: &[HeadEntry],
        peer_forks: &[AuthorityId],
    ) -> Result<bool, SessionError<S::Error>> {
        if peer_heads.len() > HEADS_MAX || peer_forks.len() > HEADS_MAX {
            return Err(SessionError::Limit(format!(
                "{} heads and {} fork authors (limit {HEADS_MAX} each)",
                peer_heads.len(),
                peer_forks.len()
            )));
        }
        // What pending notices wait for may be in no log (an orphan): the
        // peer is asked for it by id.
        self.reference_wants = replica.wanted_references(WANTED_IDS_MAX);
        let mut peer: BTreeMap<AuthorityId, &HeadEntry> = BTreeMap::new();
        for head in peer_heads {
            if peer.insert(head.author, head).is_some() {
                return Err(SessionError::Limit(format!(
                    "two heads for author {}",
                    head.author
                )));
            }
        }
        let local: BTreeMap<AuthorityId, HeadEntry> = local_heads(replica)?
            .into_iter()
            .map(|h| (h.author, h))
            .collect();
        let local_forks = local_forks(replica)?;
        let mut peer_lacks = local.keys().any(|author| !peer.contains_key(author))
            || local_forks.iter().any(|a| !peer_forks.contains(a));
        for author in peer_forks {
            if replica.federation().has_log(author)
                && !local_forks.contains(author)
                && !self.evidence_wants.contains(author)
            {
                self.evidence_wants.push(*author);
            }
        }
        for (author, theirs) in peer {
            // Heads of those who never were members are ignored: nothing
            // they sign is valid. A member removed since keeps its log up
            // to its cutoff.
            if !replica.federation().has_log(&author) || theirs.seq == 0 {
                continue;
            }
            let ours = local.get(&author);
            let our_seq = ours.map_or(0, |h| h.seq);
            if theirs.seq > our_seq {
                // Start at our own head: the notice there comes back as a
                // duplicate, or as a fork if the peer holds another one.
                self.wants.push_back(Want {
                    author,
                    from: our_seq.max(1),
                    to: theirs.seq,
                });
                continue;
            }
            let ours_there = if theirs.seq == our_seq {
                ours.map(|h| h.id)
            } else {
                peer_lacks = true;
                replica
                    .store()
                    .log_id(&author, theirs.seq)
                    .map_err(ReplicaError::Store)?
            };
            if ours_there != Some(theirs.id) {
                self.stats.forks_suspected += 1;
                self.wants.push_back(Want {
                    author,
                    from: theirs.seq,
                    to: theirs.seq,
                });
            }
        }
        Ok(peer_lacks)
    }

    fn next_request<E: std::error::Error + 'static>(
        &mut self,
    ) -> Result<Option<SyncRequest>, SessionError<E>> {
        if self.wants.is_empty()
            && self.evidence_wants.is_empty()
            && self.reference_wants.is_empty()
        {
            self.phase = Phase::Done;
            return Ok(None);
        }
        if self.stats.round_trips >= SESSION_REQUESTS_MAX {
            self.phase = Phase::Done;
            return Err(SessionError::TooLong);
        }
        self.stats.round_trips += 1;
        if !self.evidence_wants.is_empty() {
            let take = self.evidence_wants.len().min(EVIDENCE_AUTHORS_MAX);
            let authors: Vec<AuthorityId> = self.evidence_wants.drain(..take).collect();
            self.asked = InFlight::Evidence(authors.clone());
            return Ok(Some(SyncRequest::Evidence(authors)));
        }
        if !self.reference_wants.is_empty() {
            let ids = std::mem::take(&mut self.reference_wants);
            self.asked = InFlight::Wanted(ids.len());
            return Ok(Some(SyncRequest::Wanted(ids)));
        }
        // As many ranges as fit in one batch, splitting the last one.
        let mut budget = SYNC_BATCH_NOTICES_MAX;
        let mut ranges = Vec::new();
        let mut asked_ranges = Vec::new();
        while budget > 0 && ranges.len() < HEADS_MAX {
            let Some(want) = self.wants.pop_front() else {
                break;
            };
            let count = (want.to - want.from + 1).min(budget);
            budget -= count;
            let asked = Want {
                to: want.from + count - 1,
                ..want
            };
            if asked.to < want.to {
                self.wants.push_front(Want {
                    from: asked.to + 1,
                    ..want
                });
            }
            ranges.push(RangeAsk {
                author: asked.author,
                from: asked.from,
                count,
            });
            asked_ranges.push(asked);
        }
        self.asked = InFlight::Ranges(asked_ranges);
        Ok(Some(SyncRequest::Ranges(ranges)))
    }
}

fn response_name(response: &SyncResponse) -> &'static str {
    match response {
        SyncResponse::InSync => "in-sync",
        SyncResponse::Heads { .. } => "heads",
        SyncResponse::Evidence(_) => "evidence",
        SyncResponse::Notices { .. } => "notices",
        SyncResponse::Taken => "taken",
        SyncResponse::Checkpoints { .. } => "checkpoints",
        SyncResponse::Roster(_) => "roster",
        SyncResponse::Wanted(_) => "notices by id",
        SyncResponse::Proposals(_) => "proposals",
        SyncResponse::Refused(_) => "refused",
    }
}

/// Runs whole sessions between two in-memory replicas until both hold the
/// same heads: the reference driver for tests and benchmarks (the node and
/// the simulator drive the same session over their own transports).
pub mod drive {
    use super::*;
    use crate::replica::Outcome;

    /// What a full exchange cost.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Exchange {
        /// Round trips in all.
        pub round_trips: u64,
        /// Round trips until the difference was known.
        pub round_trips_to_difference: u64,
        /// Bytes (encoded requests and responses) until the difference was
        /// known.
        pub bytes_to_difference: u64,
        /// Bytes in all.
        pub bytes: u64,
        /// Notices each side accepted.
        pub accepted: u64,
        /// Forks found.
        pub forks: u64,
    }

    /// One full session from `initiator` against `responder`, with the
    /// reciprocal pull when the responder lacks something.
    pub fn exchange<S: Store, T: Store>(
        initiator: &mut Replica<S>,
        responder: &mut Replica<T>,
    ) -> Result<Exchange, String> {
        let mut cost = Exchange::default();
        let (mut session, request) = SyncSession::start(initiator).map_err(|e| e.to_string())?;
        let mut next = Some(request);
        let mut first = true;
        let mut offer = None;
        while let Some(request) = next.take() {
            let response = round(responder, &request, &mut cost)?;
            let step = session
                .on_response(initiator, response)
                .map_err(|e| e.to_string())?;
            if first {
                cost.bytes_to_difference = cost.bytes;
                first = false;
            }
            offer = offer.or(step.offer);
            let slices: Vec<&[u8]> = step.ingest.iter().map(Vec::as_slice).collect();
            count(
                initiator.ingest_all(&slices).map_err(|e| e.to_string())?,
                &mut cost,
            );
            next = step.next;
        }
        let stats = session.stats();
        cost.round_trips += stats.round_trips;
        cost.round_trips_to_difference = stats.round_trips_to_difference;
        if let Some(offer) = offer {
            let bytes = encode_request(&offer).map_err(|e| e.to_string())?;
            cost.bytes += bytes.len() as u64;
            let taken = answer(responder, &offer, false).map_err(|e| e.to_string())?;
            let bytes = encode_response(&taken.response).map_err(|e| e.to_string())?;
            cost.bytes += bytes.len() as u64;
            cost.round_trips += 1;
            if let Some((mut back, first)) = taken.pull_back {
                let mut next = Some(first);
                while let Some(request) = next.take() {
                    let response = round(initiator, &request, &mut cost)?;
                    let step = back
                        .on_response(responder, response)
                        .map_err(|e| e.to_string())?;
                    let slices: Vec<&[u8]> = step.ingest.iter().map(Vec::as_slice).collect();
                    count(
                        responder.ingest_all(&slices).map_err(|e| e.to_string())?,
                        &mut cost,
                    );
                    next = step.next;
                }
                cost.round_trips += back.stats().round_trips;
            }
        }
        Ok(cost)
    }

    fn round<T: Store>(
        responder: &Replica<T>,
        request: &SyncRequest,
        cost: &mut Exchange,
    ) -> Result<SyncResponse, String> {
        let bytes = encode_request(request).map_err(|e| e.to_string())?;
        cost.bytes += bytes.len() as u64;
        let request = decode_request(&bytes).map_err(|e| e.to_string())?;
        let response = respond(responder, &request).map_err(|e| e.to_string())?;
        let bytes = encode_response(&response).map_err(|e| e.to_string())?;
        cost.bytes += bytes.len() as u64;
        decode_response(&bytes).map_err(|e| e.to_string())
    }

    fn count(outcomes: Vec<Outcome>, cost: &mut Exchange) {
        for outcome in outcomes {
            match outcome {
                Outcome::Accepted { .. } => cost.accepted += 1,
                Outcome::Forked { .. } => cost.forks += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::drive::exchange;
    use super::*;
    use crate::model::{Notice, NoticeKind};
    use crate::store::MemStore;
    use crate::testkit;
    use crate::time::Timestamp;

    const START: Timestamp = Timestamp(1_780_000_000_000);

    fn replicas(
        count: usize,
    ) -> (
        testkit::TestFederation,
        Replica<MemStore>,
        Replica<MemStore>,
    ) {
        let test = testkit::federation(7, 3);
        let work = testkit::workload(&test, 11, count, 40, START);
        let mut a = Replica::new(test.federation.clone(), MemStore::new());
        let b = Replica::new(test.federation.clone(), MemStore::new());
        let slices: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
        a.ingest_all(&slices).expect("ingest");
        (test, a, b)
    }

    fn notice(test: &testkit::TestFederation, seq: u64, prev: NoticeId, subject: u64) -> Notice {
        Notice {
            version: crate::model::NOTICE_VERSION,
            roster: 0,
            federation: test.federation.id(),
            author: test.author(0),
            seq,
            prev,
            issued_at: START.plus_ms(seq),
            kind: NoticeKind::List(testkit::listing(subject, "food-drug", START)),
        }
    }

    #[test]
    fn equal_replicas_finish_in_one_round_trip() {
        let (_, mut a, _) = replicas(200);
        let mut b = Replica::new(a.federation().clone(), MemStore::new());
        exchange(&mut b, &mut a).expect("sync");
        let cost = exchange(&mut b, &mut a).expect("sync");
        assert_eq!(cost.round_trips, 1);
        assert_eq!(cost.accepted, 0);
        assert!(cost.bytes < 200, "{} bytes", cost.bytes);
    }

    #[test]
    fn an_empty_replica_pulls_everything_and_the_other_way_round() {
        let (_, mut a, mut b) = replicas(1500);
        let cost = exchange(&mut b, &mut a).expect("sync");
        assert_eq!(cost.accepted, 1500);
        assert_eq!(cost.round_trips_to_difference, 1);
        assert_eq!(local_heads(&a).unwrap(), local_heads(&b).unwrap());
        // The initiator holds everything; the responder pulls it back.
        let mut c = Replica::new(a.federation().clone(), MemStore::new());
        let cost = exchange(&mut a, &mut c).expect("sync");
        assert_eq!(cost.accepted, 1500);
        assert_eq!(local_heads(&a).unwrap(), local_heads(&c).unwrap());
    }

    #[test]
    fn a_fork_is_found_from_the_heads() {
        let test = testkit::federation(9, 2);
        let key = &test.keys[0];
        let mut a = Replica::new(test.federation.clone(), MemStore::new());
        let mut b = Replica::new(test.federation.clone(), MemStore::new());
        let (first, one) = testkit::sign(key, &notice(&test, 1, NoticeId::default(), 1));
        let (_, x) = testkit::sign(key, &notice(&test, 2, first, 2));
        let (_, y) = testkit::sign(key, &notice(&test, 2, first, 3));
        a.ingest_all(&[&one, &x]).unwrap();
        b.ingest_all(&[&one, &y]).unwrap();
        let cost = exchange(&mut a, &mut b).expect("sync");
        assert_eq!(cost.forks, 1);
        assert_eq!(a.store().forks().unwrap().len(), 1);
    }

    #[test]
    fn bad_ranges_are_refused_and_oversized_answers_end_the_session() {
        let (_, a, _) = replicas(10);
        for (from, count) in [(0, 1), (1, 0), (1, SYNC_BATCH_NOTICES_MAX + 1)] {
            let request = SyncRequest::Ranges(vec![RangeAsk {
                author: AuthorityId([1; 32]),
                from,
                count,
            }]);
            assert_eq!(
                respond(&a, &request).unwrap(),
                SyncResponse::Refused(RefusalReason::BadRange)
            );
        }
        let b = Replica::new(a.federation().clone(), MemStore::new());
        let heads = local_heads(&a).unwrap();
        let (mut session, next) = SyncSession::pull(&b, &heads, &[]).unwrap();
        let Some(SyncRequest::Ranges(ranges)) = next else {
            panic!("expected ranges");
        };
        let mut answers: Vec<Vec<serde_bytes::ByteBuf>> =
            ranges.iter().map(|_| Vec::new()).collect();
        answers[0] = vec![serde_bytes::ByteBuf::from(vec![0u8; 8]); ranges[0].count as usize + 1];
        let error = session
            .on_response(
                &b,
                SyncResponse::Notices {
                    ranges: answers,
                    truncated: false,
                },
            )
            .unwrap_err();
        assert!(error.to_string().contains("asked"), "{error}");
        assert!(session.is_done());
    }

    #[test]
    fn a_peer_from_another_federation_is_refused() {
        let (_, a, _) = replicas(1);
        let request = SyncRequest::Digest {
            federation: FederationId([9; 32]),
            digest: [0; 32],
        };
        assert_eq!(
            respond(&a, &request).unwrap(),
            SyncResponse::Refused(RefusalReason::OtherFederation)
        );
    }

    // A notice a revoked key signed is cut from its log but kept as an
    // orphan where a notice of another log refers to it; a replica whose
    // pending notice waits for it asks for it by id and gets it, and
    // asking for too many or for none is refused.
    #[test]
    fn an_orphan_something_waits_for_is_fetched_by_id() {
        use crate::governance::SignedVersion;
        use crate::governance::proposal::{ChangeDocument, RotateDocument, propose};
        let test = testkit::federation(9, 3);
        let thief = &test.keys[0];
        let (first, one) = testkit::sign(thief, &notice(&test, 1, NoticeId::default(), 1));
        let (stolen, two) = testkit::sign(thief, &notice(&test, 2, first, 2));
        let objection = Notice {
            version: crate::model::NOTICE_VERSION,
            roster: 0,
            federation: test.federation.id(),
            author: test.author(1),
            seq: 1,
            prev: NoticeId::default(),
            issued_at: START.plus_ms(5),
            kind: NoticeKind::Object {
                listing: stolen,
                grounds: "the subject disputes the facts".into(),
                respond_by: START.plus_ms(20 * 86_400_000),
            },
        };
        let (objection_id, objection) = testkit::sign(&test.keys[1], &objection);
        let mut a = Replica::new(test.federation.clone(), MemStore::new());
        a.ingest_all(&[&one, &two, &objection]).unwrap();
        let fresh = testkit::key(90, 0);
        let version = propose(
            a.chain().current(),
            &ChangeDocument {
                rotate: vec![RotateDocument {
                    member: test.author(0).to_string(),
                    key: hex::encode(fresh.public_bytes()),
                    after_seq: 1,
                    compromised: true,
                }],
                ..ChangeDocument::default()
            },
        )
        .unwrap();
        let mut version = SignedVersion::new(&version).unwrap();
        for key in [&test.keys[1], &test.keys[2], &fresh] {
            version.sign(key);
        }
        a.add_roster_version(version.clone()).unwrap();
        assert_eq!(a.store().head(&test.author(0)).unwrap().unwrap().seq, 1);
        let mut b = Replica::new(test.federation.clone(), MemStore::new());
        b.add_roster_version(version).unwrap();
        // The first session brings the logs; the objection waits for the
        // listing, which no log holds.
        exchange(&mut b, &mut a).expect("sync");
        assert_eq!(b.wanted_references(8), vec![stolen]);
        // The next asks for it by id.
        exchange(&mut b, &mut a).expect("sync");
        assert!(b.wanted_references(8).is_empty());
        assert!(b.store().contains(&stolen).unwrap());
        assert_eq!(
            b.store().log_id(&test.author(1), 1).unwrap(),
            Some(objection_id)
        );
        assert_eq!(local_heads(&a).unwrap(), local_heads(&b).unwrap());
        for ids in [Vec::new(), vec![stolen; WANTED_IDS_MAX + 1]] {
            assert_eq!(
                respond(&a, &SyncRequest::Wanted(ids)).unwrap(),
                SyncResponse::Refused(RefusalReason::BadWanted)
            );
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode_request(&[0xff; 40]).is_err());
        assert!(decode_response(&[7, 0, 0, 0]).is_err());
    }
}

/// The test vectors of SPEC.md, "Sync messages": every message kind with
/// fixed contents, and its bytes.
#[cfg(test)]
mod spec_vectors {
    use super::*;

    pub(super) fn vectors() -> Vec<(&'static str, Vec<u8>)> {
        let author = AuthorityId([0x11; 32]);
        let head = HeadEntry {
            author,
            seq: 7,
            id: NoticeId([0x22; 32]),
        };
        let federation = FederationId([0x33; 32]);
        let request = |r: &SyncRequest| encode_request(r).expect("encodes");
        let response = |r: &SyncResponse| encode_response(r).expect("encodes");
        vec![
            (
                "Digest",
                request(&SyncRequest::Digest {
                    federation,
                    digest: heads_digest(&[head], &[author]),
                }),
            ),
            (
                "Offer",
                request(&SyncRequest::Offer {
                    federation,
                    heads: vec![head],
                    forks: vec![author],
                }),
            ),
            (
                "Ranges",
                request(&SyncRequest::Ranges(vec![RangeAsk {
                    author,
                    from: 3,
                    count: 2,
                }])),
            ),
            ("Evidence", request(&SyncRequest::Evidence(vec![author]))),
            ("InSync", response(&SyncResponse::InSync)),
            (
                "Heads",
                response(&SyncResponse::Heads {
                    heads: vec![head],
                    forks: vec![author],
                }),
            ),
            (
                "Notices",
                response(&SyncResponse::Notices {
                    ranges: vec![vec![serde_bytes::ByteBuf::from(vec![0xAA, 0xBB])]],
                    truncated: false,
                }),
            ),
            (
                "EvidencePairs",
                response(&SyncResponse::Evidence(vec![EvidencePair {
                    first: serde_bytes::ByteBuf::from(vec![0x01]),
                    second: serde_bytes::ByteBuf::from(vec![0x02]),
                }])),
            ),
            ("Taken", response(&SyncResponse::Taken)),
            (
                "Refused",
                response(&SyncResponse::Refused(RefusalReason::BadEvidence)),
            ),
            (
                "Checkpoints",
                request(&SyncRequest::Checkpoints(vec![
                    crate::checkpoint::wire::CheckpointHave {
                        author,
                        size: 7,
                        root: [0x22; 32],
                        cosigners: 2,
                        witnessed: 5,
                        split_view: false,
                    },
                ])),
            ),
            (
                "CheckpointNotes",
                response(&SyncResponse::Checkpoints {
                    notes: vec![serde_bytes::ByteBuf::from(vec![0x61, 0x0a])],
                    split_views: vec![crate::checkpoint::wire::SplitViewPair {
                        first: serde_bytes::ByteBuf::from(vec![0x01]),
                        second: serde_bytes::ByteBuf::from(vec![0x02]),
                    }],
                }),
            ),
            (
                "Wanted",
                request(&SyncRequest::Wanted(vec![NoticeId([0x44; 32])])),
            ),
            (
                "WantedNotices",
                response(&SyncResponse::Wanted(vec![serde_bytes::ByteBuf::from(
                    vec![0xAA, 0xBB],
                )])),
            ),
            (
                "Proposals",
                request(&SyncRequest::Proposals(vec![ProposalHave {
                    hash: crate::model::RosterHash([0x55; 32]),
                    signers: vec![author],
                }])),
            ),
            (
                "ProposalsAnswer",
                response(&SyncResponse::Proposals(vec![serde_bytes::ByteBuf::from(
                    vec![0xCC],
                )])),
            ),
            (
                "RefusedProposals",
                response(&SyncResponse::Refused(RefusalReason::BadProposals)),
            ),
        ]
    }

    /// The bytes SPEC.md gives, hex.
    const SPEC: [(&str, &str); 17] = [
        (
            "Digest",
            "000000003333333333333333333333333333333333333333333333333333333333333333d0542e1d134c3585e308edf1bcac8da2bf53bdd7ab794126ddb8fbca5dc0dbc6",
        ),
        (
            "Offer",
            "010000003333333333333333333333333333333333333333333333333333333333333333010000000000000011111111111111111111111111111111111111111111111111111111111111110700000000000000222222222222222222222222222222222222222222222222222222222222222201000000000000001111111111111111111111111111111111111111111111111111111111111111",
        ),
        (
            "Ranges",
            "020000000100000000000000111111111111111111111111111111111111111111111111111111111111111103000000000000000200000000000000",
        ),
        (
            "Evidence",
            "0300000001000000000000001111111111111111111111111111111111111111111111111111111111111111",
        ),
        ("InSync", "00000000"),
        (
            "Heads",
            "01000000010000000000000011111111111111111111111111111111111111111111111111111111111111110700000000000000222222222222222222222222222222222222222222222222222222222222222201000000000000001111111111111111111111111111111111111111111111111111111111111111",
        ),
        (
            "Notices",
            "02000000010000000000000001000000000000000200000000000000aabb00",
        ),
        (
            "EvidencePairs",
            "030000000100000000000000010000000000000001010000000000000002",
        ),
        ("Taken", "04000000"),
        ("Refused", "0500000003000000"),
        (
            "Checkpoints",
            "04000000010000000000000011111111111111111111111111111111111111111111111111111111111111110700000000000000222222222222222222222222222222222222222222222222222222222222222202000000050000000000000000",
        ),
        (
            "CheckpointNotes",
            "0600000001000000000000000200000000000000610a0100000000000000010000000000000001010000000000000002",
        ),
        (
            "Wanted",
            "0600000001000000000000004444444444444444444444444444444444444444444444444444444444444444",
        ),
        (
            "WantedNotices",
            "0800000001000000000000000200000000000000aabb",
        ),
        (
            "Proposals",
            "070000000100000000000000555555555555555555555555555555555555555555555555555555555555555501000000000000001111111111111111111111111111111111111111111111111111111111111111",
        ),
        (
            "ProposalsAnswer",
            "0900000001000000000000000100000000000000cc",
        ),
        ("RefusedProposals", "0500000006000000"),
    ];

    // The encoding of every sync message is the one SPEC.md specifies: a
    // change of layout, enum order or digest breaks this test until
    // SPEC.md and these vectors move with it.
    #[test]
    fn sync_messages_match_the_spec_vectors() {
        let computed = vectors();
        assert_eq!(computed.len(), SPEC.len());
        for ((name, bytes), (spec_name, spec_hex)) in computed.iter().zip(SPEC) {
            assert_eq!(*name, spec_name);
            assert_eq!(hex::encode(bytes), spec_hex, "{name}");
        }
    }
}

//! Cross-region queries in the engine: answering peers, and the fan-out of
//! this node's own queries with its deadline and merge.

use super::{Engine, FANOUTS_MAX, Level, Output, QUERY_DEADLINE_MAX_MS, Refusal};
use crate::access::Clearance;
use crate::checkpoint::Verified;
use crate::model::{AuthorityId, SubjectKind};
use crate::proven::{
    Candidates, CheckedAnswer, Disagreement, Fault, MergedListing, Proofs, check_answer_with,
    held_notices, merge,
};
use crate::query::{
    self, CheckpointRef, QUERY_VERSION, QueryMessage, QueryRequest, Signed, SignedAnswer,
    SignedQuery,
};
use crate::store::Store;
use crate::time::Timestamp;
use credence_crypto::note::Note;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Where a query goes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryScope {
    /// This node's records only.
    Local,
    /// Every reachable member, merged.
    Federation,
}

/// A query as the operator or a department system asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// How long to wait for peers (capped at [`QUERY_DEADLINE_MAX_MS`]).
    pub deadline_ms: u64,
    /// Which page of the subject's listings (from 0).
    pub page: u32,
    /// The local account that asks, which the register names (`None` for
    /// a caller in the process itself: the devnet, the simulator).
    pub account: Option<String>,
    /// The asking account's clearance ([`crate::access`]): responders
    /// serve this member at reader clearance, or at auditor clearance when
    /// the roster makes it an auditor, and only an auditor account may
    /// ask from an auditing member's node.
    pub clearance: Clearance,
}

/// One responder's verified answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The responder.
    pub responder: AuthorityId,
    /// The verified answer.
    pub answer: SignedAnswer,
}

/// The result of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryResult {
    /// The signed request.
    pub request: SignedQuery,
    /// The answers whose signature, checkpoints, proofs and stated
    /// statuses all verified: this node's own first, then every peer's.
    pub answers: Vec<Answered>,
    /// Members asked that did not answer in time (or failed), with why.
    pub missing: Vec<(AuthorityId, String)>,
    /// Members whose signed answer failed a check, with the check: never
    /// merged.
    pub rejected: Vec<(AuthorityId, String)>,
    /// The listings, folded here from the union of the accepted answers'
    /// proven notices, newest first.
    pub listings: Vec<MergedListing>,
    /// Notices an answer left out that its own checkpoints cover.
    pub disagreements: Vec<Disagreement>,
    /// Some responder has more listings past this page.
    pub more: bool,
    /// The checkpoints the request offered that accepted answers name
    /// (the answers do not carry them), one per log in author order: a
    /// receipt carries them.
    pub checkpoints: Vec<Note>,
}

impl QueryResult {
    fn new<S: Store>(
        replica: &crate::replica::Replica<S>,
        request: SignedQuery,
        offer: &Offer,
        answers: Vec<(Answered, CheckedAnswer)>,
        missing: Vec<(AuthorityId, String)>,
        rejected: Vec<(AuthorityId, String)>,
        now: Timestamp,
    ) -> QueryResult {
        let named: BTreeSet<AuthorityId> = answers
            .iter()
            .flat_map(|(a, _)| a.answer.answer.named.iter().map(|c| c.author))
            .collect();
        let checkpoints = named
            .iter()
            .filter_map(|author| offer.entries.get(author).map(|e| e.1.clone()))
            .collect();
        let checked: Vec<CheckedAnswer> = answers.iter().map(|(_, c)| c.clone()).collect();
        let named: BTreeSet<crate::model::NoticeId> =
            checked.iter().flat_map(|c| c.listings.clone()).collect();
        // What this node holds about the listings answered goes into the
        // fold: no responder can hide it. A store failure leaves it out.
        let held = held_notices(replica, &named, now).unwrap_or_default();
        let (listings, disagreements) = match request.request.subject_key() {
            Ok(subject) => merge(&checked, &held, &subject, now),
            Err(_) => (Vec::new(), Vec::new()),
        };
        QueryResult {
            request,
            more: checked.iter().any(|c| c.truncated),
            answers: answers.into_iter().map(|(a, _)| a).collect(),
            missing,
            rejected,
            listings,
            disagreements,
            checkpoints,
        }
    }
}

/// The quorum-cosigned checkpoints a request offers, as of one version of
/// the book: the references it sends, and per log what an answer naming
/// one resolves to with its note (for receipts), shared with the offers
/// before and after it while that log's checkpoint stays the same.
#[derive(Debug, Default)]
pub(super) struct Offer {
    refs: Vec<CheckpointRef>,
    entries: BTreeMap<AuthorityId, Arc<(Verified, Note)>>,
}

/// Which side of a query a register entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// This node asked.
    Sent,
    /// A peer asked this node.
    Received,
}

impl Direction {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// One entry of the query register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterEntry {
    /// Which side.
    pub direction: Direction,
    /// When.
    pub at: Timestamp,
    /// The signed request.
    pub query: SignedQuery,
    /// The answers given or received.
    pub answers: Vec<Answered>,
    /// Members that did not answer.
    pub missing: Vec<(AuthorityId, String)>,
    /// The local account that asked (a query sent).
    pub account: Option<String>,
}

struct Fanout {
    ticket: u64,
    account: Option<String>,
    local_done: bool,
    request: SignedQuery,
    offer: Arc<Offer>,
    asked: BTreeSet<AuthorityId>,
    answers: Vec<(Answered, CheckedAnswer)>,
    missing: Vec<(AuthorityId, String)>,
    rejected: Vec<(AuthorityId, String)>,
    deadline: Timestamp,
}

/// The engine's query state.
#[derive(Default)]
pub(super) struct Queries {
    fanouts: BTreeMap<u64, Fanout>,
    /// Request token → (fan-out, peer).
    tokens: BTreeMap<u64, (u64, AuthorityId)>,
    next: u64,
    /// Fan-outs whose own answer is computed once their requests left.
    deferred: VecDeque<u64>,
    /// What answers are proven with (candidate checkpoints and the kept
    /// trees), and the book version and own head its candidates are of.
    proofs: Proofs,
    proofs_of: Option<(u64, u64)>,
    /// What requests offer, and the book version it is of.
    offer: Option<(u64, Arc<Offer>)>,
}

impl Queries {
    pub(super) fn len(&self) -> usize {
        self.fanouts.len()
    }

    pub(super) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.fanouts.values().map(|f| f.deadline).min()
    }
}

/// Leaves read into the kept Merkle trees at most per tick, while a log's
/// tree lags its head: a node that starts with a large store has its trees
/// ready a few seconds later, not on the first query that needs each.
pub const TREE_LEAVES_PER_TICK: u64 = 65_536;

impl<S: Store> Engine<S> {
    /// Brings the kept Merkle trees up to the logs' heads, at most
    /// [`TREE_LEAVES_PER_TICK`] leaves a call (answers prove from them).
    pub(super) fn grow_trees(&mut self, out: &mut Vec<Output>) {
        if !self.config.checkpoints {
            return;
        }
        let store = self.replica.store();
        let heads = match store.heads() {
            Ok(heads) => heads,
            Err(e) => {
                Self::log(
                    out,
                    Level::Error,
                    format!("store failure growing trees: {e}"),
                );
                return;
            }
        };
        let mut budget = TREE_LEAVES_PER_TICK;
        for head in heads {
            let tree = self.queries.proofs.trees.entry(head.author).or_default();
            if tree.len() >= head.seq {
                continue;
            }
            let before = tree.len();
            let want = head.seq.min(before.saturating_add(budget));
            if let Err(e) = crate::proven::extend(store, &head.author, tree, want) {
                Self::log(
                    out,
                    Level::Error,
                    format!("store failure growing trees: {e}"),
                );
                return;
            }
            budget = budget.saturating_sub(tree.len() - before);
            if budget == 0 {
                return;
            }
        }
    }

    /// The tree kept of `author`'s log, as far as it has grown: proofs
    /// from it read a few log pages (`checkpoint::proofs::Source::Kept`).
    pub fn kept_tree(&self, author: &AuthorityId) -> Option<&credence_crypto::merkle::PagedTree> {
        self.queries.proofs.trees.get(author)
    }

    /// Leaves held in the kept tree of `author`'s log.
    #[cfg(test)]
    pub(super) fn tree_len(&self, author: &AuthorityId) -> u64 {
        self.queries.proofs.trees.get(author).map_or(0, |t| t.len())
    }

    /// The entry this node's next request offers for `author`'s log, and
    /// the references it sends.
    #[cfg(test)]
    pub(super) fn offered(
        &mut self,
        author: &AuthorityId,
    ) -> (Option<Arc<(Verified, Note)>>, Vec<CheckpointRef>) {
        let offer = self.offer();
        (offer.entries.get(author).cloned(), offer.refs.clone())
    }

    pub(super) fn on_query(
        &mut self,
        ticket: u64,
        ask: QueryAsk,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        let auditing = self
            .replica
            .federation()
            .member(&self.me)
            .is_some_and(|member| member.auditor);
        if auditing && ask.clearance != Clearance::Auditor {
            out.push(Output::QueryDone {
                ticket,
                result: Box::new(Err(Refusal::Clearance(
                    "this node's member is an auditor, whose queries are answered with every listing: only an account with the audit permission may query from it"
                        .into(),
                ))),
            });
            return;
        }
        let peers = self.peers();
        if ask.scope == QueryScope::Federation
            && !peers.is_empty()
            && self.queries.fanouts.len() >= FANOUTS_MAX
        {
            out.push(Output::QueryDone {
                ticket,
                result: Box::new(Err(Refusal::Busy(format!(
                    "{FANOUTS_MAX} federation-wide queries are already waiting"
                )))),
            });
            return;
        }
        self.queries.next += 1;
        let offer = self.offer();
        let account = ask.account;
        let request = QueryRequest {
            version: QUERY_VERSION,
            federation: self.replica.federation().id(),
            requester: self.me,
            subject_kind: ask.subject_kind,
            subject_id: ask.subject_id,
            purpose: ask.purpose,
            legal_basis: ask.legal_basis,
            issued_at: now,
            nonce: self.rng.next_u64(),
            page: ask.page,
        };
        let signed = match request.sign(&self.key) {
            Ok(signed) => signed,
            Err(e) => {
                out.push(Output::QueryDone {
                    ticket,
                    result: Box::new(Err(Refusal::BadQuery(e.to_string()))),
                });
                return;
            }
        };
        *self.counters.queries.entry("sent").or_default() += 1;
        if ask.scope == QueryScope::Local || peers.is_empty() {
            let result = self.own_answer(&signed, &offer.refs, now).and_then(|own| {
                let checked = self.check(&signed, &offer, &own).map_err(|fault| {
                    Refusal::Store(format!("this node's own answer fails its check: {fault}"))
                })?;
                let answered = Answered {
                    responder: self.me,
                    answer: own,
                };
                Ok(QueryResult::new(
                    &self.replica,
                    signed.clone(),
                    &offer,
                    vec![(answered, checked)],
                    Vec::new(),
                    Vec::new(),
                    now,
                ))
            });
            if let Ok(result) = &result {
                out.push(Output::Record(Box::new(RegisterEntry {
                    direction: Direction::Sent,
                    at: now,
                    query: result.request.clone(),
                    answers: result.answers.clone(),
                    missing: Vec::new(),
                    account: account.clone(),
                })));
            }
            out.push(Output::QueryDone {
                ticket,
                result: Box::new(result),
            });
            return;
        }
        let message = QueryMessage {
            request: signed.signed.clone(),
            offer: offer.refs.clone(),
        };
        let bytes = match message.encode() {
            Ok(bytes) => bytes,
            Err(e) => {
                out.push(Output::QueryDone {
                    ticket,
                    result: Box::new(Err(Refusal::BadQuery(e.to_string()))),
                });
                return;
            }
        };
        let id = self.queries.next;
        let mut asked = BTreeSet::new();
        for peer in peers {
            let token = self.token();
            self.queries.tokens.insert(token, (id, peer));
            out.push(Output::SendQuery {
                peer,
                token,
                bytes: bytes.clone(),
            });
            asked.insert(peer);
        }
        self.queries.fanouts.insert(
            id,
            Fanout {
                ticket,
                account: account.clone(),
                local_done: false,
                request: signed,
                offer,
                asked,
                answers: Vec::new(),
                missing: Vec::new(),
                rejected: Vec::new(),
                deadline: now.plus_ms(ask.deadline_ms.min(QUERY_DEADLINE_MAX_MS)),
            },
        );
        // Its own answer is computed while the requests travel.
        self.queries.deferred.push_back(id);
    }

    /// What this node's requests offer: per log, the newest checkpoint a
    /// quorum cosigned that its book holds (kept while the book is
    /// unchanged).
    fn offer(&mut self) -> Arc<Offer> {
        let version = self.book_version();
        let previous = match &self.queries.offer {
            Some((of, offer)) if *of == version => return offer.clone(),
            Some((_, offer)) => offer.clone(),
            None => Arc::default(),
        };
        // Cosignatures change the book often, a log's quorum-cosigned
        // checkpoint seldom: an entry whose checkpoint is unchanged is
        // shared, not copied again.
        let mut offer = Offer::default();
        for (author, _, witnessed) in self.book().logs() {
            let Some(w) = witnessed else {
                continue;
            };
            let checkpoint = &w.verified.checkpoint;
            if checkpoint.size == 0 || offer.refs.len() >= query::QUERY_CHECKPOINTS_MAX {
                continue;
            }
            offer.refs.push(CheckpointRef {
                author: *author,
                size: checkpoint.size,
                root: checkpoint.root.0,
            });
            let kept = previous.entries.get(author).filter(|e| {
                e.0.checkpoint.size == checkpoint.size && e.0.checkpoint.root == checkpoint.root
            });
            let entry = match kept {
                Some(entry) => entry.clone(),
                None => Arc::new((w.verified.clone(), w.note())),
            };
            offer.entries.insert(*author, entry);
        }
        let offer = Arc::new(offer);
        self.queries.offer = Some((version, offer.clone()));
        offer
    }

    /// Checks a signature-verified answer to `query`, whose checkpoints
    /// were `offer` ([`check_answer_with`]).
    fn check(
        &self,
        query: &SignedQuery,
        offer: &Offer,
        answer: &SignedAnswer,
    ) -> Result<CheckedAnswer, Fault> {
        let subject = query.request.subject_key().map_err(|e| Fault::BadNotice {
            index: 0,
            reason: e.to_string(),
        })?;
        let store = self.replica.store();
        check_answer_with(
            self.replica.federation(),
            Some(self.replica.chain()),
            &subject,
            &answer.answer,
            &|author| offer.entries.get(author).map(|e| &e.0),
            self.book(),
            &|id| store.contains(id).unwrap_or(false),
        )
    }

    /// The checkpoints proofs may lead to, per log: those the book holds
    /// (newest quorum-cosigned, newest), and the own log's signed now.
    fn proof_candidates(&self) -> Candidates {
        let mut candidates = Candidates::new();
        for log in self.checkpoints() {
            let list = candidates.entry(log.author).or_default();
            for held in [&log.witnessed, &log.newest].into_iter().flatten() {
                list.push((held.note.clone(), held.witnessed));
            }
        }
        if let Ok(Some(own)) = self.own_checkpoint() {
            candidates.entry(self.me).or_default().push((own, false));
        }
        candidates
    }

    fn own_answer(
        &mut self,
        query: &SignedQuery,
        offered: &[CheckpointRef],
        now: Timestamp,
    ) -> Result<SignedAnswer, Refusal> {
        // The candidates change with the book and the own log only.
        let of = (self.book_version(), self.own_head());
        if self.queries.proofs_of != Some(of) {
            self.queries.proofs.candidates = self.proof_candidates();
            self.queries.proofs_of = Some(of);
        }
        let mut proofs = std::mem::take(&mut self.queries.proofs);
        let answered = query::answer(&self.replica, query, offered, &self.key, now, &mut proofs);
        self.queries.proofs = proofs;
        match answered {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(Refusal::BadQuery(e.to_string())),
            Err(e) => Err(Refusal::Store(e.to_string())),
        }
    }

    pub(super) fn run_deferred(&mut self, now: Timestamp) {
        if let Some(id) = self.queries.deferred.pop_front() {
            self.answer_locally(id, now);
        }
    }

    fn answer_locally(&mut self, id: u64, now: Timestamp) {
        let Some(fanout) = self.queries.fanouts.get(&id) else {
            return;
        };
        if fanout.local_done {
            return;
        }
        let request = fanout.request.clone();
        let offer = fanout.offer.clone();
        let result = self
            .own_answer(&request, &offer.refs, now)
            .and_then(|answer| {
                let checked = self
                    .check(&request, &offer, &answer)
                    .map_err(|fault| Refusal::Store(format!("it fails its own check: {fault}")))?;
                Ok((answer, checked))
            });
        let me = self.me;
        if let Some(fanout) = self.queries.fanouts.get_mut(&id) {
            fanout.local_done = true;
            match result {
                Ok((answer, checked)) => fanout.answers.insert(
                    0,
                    (
                        Answered {
                            responder: me,
                            answer,
                        },
                        checked,
                    ),
                ),
                Err(e) => fanout.missing.push((me, format!("no local answer: {e}"))),
            }
        }
    }

    pub(super) fn on_query_request(
        &mut self,
        peer: AuthorityId,
        reply: u64,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        *self.counters.queries.entry("received").or_default() += 1;
        let checked = QueryMessage::decode(bytes).and_then(|message| {
            SignedQuery::verify(self.replica.federation(), message.request, now)
                .map(|query| (query, message.offer))
        });
        let (query, offer) = match checked {
            Ok((query, offer)) if query.request.requester == peer => (query, offer),
            Ok(_) => {
                *self.counters.queries.entry("refused").or_default() += 1;
                Self::log(
                    out,
                    Level::Warn,
                    format!(
                        "query from {} signed by another authority: refused",
                        self.name_of(&peer)
                    ),
                );
                out.push(Output::AnswerQuery { reply, bytes: None });
                return;
            }
            Err(e) => {
                *self.counters.malformed.entry("query").or_default() += 1;
                Self::log(
                    out,
                    Level::Warn,
                    format!("query from {} refused: {e}", self.name_of(&peer)),
                );
                out.push(Output::AnswerQuery { reply, bytes: None });
                return;
            }
        };
        let answer = match self.own_answer(&query, &offer, now) {
            Ok(answer) => answer,
            Err(e) => {
                Self::log(out, Level::Warn, format!("cannot answer a query: {e}"));
                out.push(Output::AnswerQuery { reply, bytes: None });
                return;
            }
        };
        let encoded = answer.signed.encode::<{ query::ANSWER_BYTES_MAX + 128 }>();
        // The read is in the register before its answer leaves.
        out.push(Output::Record(Box::new(RegisterEntry {
            direction: Direction::Received,
            at: now,
            query,
            answers: vec![Answered {
                responder: self.me,
                answer,
            }],
            missing: Vec::new(),
            account: None,
        })));
        match encoded {
            Ok(bytes) => {
                *self.counters.queries.entry("answered").or_default() += 1;
                out.push(Output::AnswerQuery {
                    reply,
                    bytes: Some(bytes),
                });
            }
            Err(e) => {
                Self::log(out, Level::Error, format!("cannot encode an answer: {e}"));
                out.push(Output::AnswerQuery { reply, bytes: None });
            }
        }
    }

    pub(super) fn on_query_response(
        &mut self,
        peer: AuthorityId,
        token: u64,
        bytes: &[u8],
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        let Some((id, asked_peer)) = self.queries.tokens.remove(&token) else {
            return;
        };
        if asked_peer != peer {
            return;
        }
        let federation = self.replica.federation().clone();
        let Some((request, offer)) = self
            .queries
            .fanouts
            .get(&id)
            .map(|f| (f.request.clone(), f.offer.clone()))
        else {
            return;
        };
        let verified = request.id().and_then(|request| {
            let signed = Signed::decode::<{ query::ANSWER_BYTES_MAX + 128 }>(bytes)?;
            SignedAnswer::verify(&federation, &request, signed)
        });
        let checked = match verified {
            Ok(answer) if answer.answer.responder == peer => {
                let checked = self.check(&request, &offer, &answer);
                Ok((answer, checked))
            }
            Ok(_) => Err("answer signed by another authority".to_string()),
            Err(e) => {
                *self.counters.malformed.entry("query").or_default() += 1;
                Err(format!("answer refused: {e}"))
            }
        };
        let mut heads = None;
        let mut fault = None;
        let Some(fanout) = self.queries.fanouts.get_mut(&id) else {
            return;
        };
        fanout.asked.remove(&peer);
        match checked {
            Ok((answer, Ok(checked))) => {
                *self.counters.queries.entry("answers_verified").or_default() += 1;
                heads = Some(answer.answer.heads.clone());
                fanout.answers.push((
                    Answered {
                        responder: peer,
                        answer,
                    },
                    checked,
                ));
            }
            Ok((_, Err(e))) => {
                *self.counters.queries.entry("answers_rejected").or_default() += 1;
                fault = Some(e.to_string());
                fanout.rejected.push((peer, e.to_string()));
            }
            Err(reason) => fanout.missing.push((peer, reason)),
        }
        let done = fanout.asked.is_empty();
        if let Some(fault) = fault {
            Self::log(
                out,
                Level::Warn,
                format!(
                    "the answer of {} to a query was rejected: {fault}",
                    self.name_of(&peer)
                ),
            );
        }
        if let Some(heads) = heads {
            self.heads_shown(peer, &heads, out);
        }
        if done {
            self.finish_fanout(id, now, out);
        }
    }

    pub(super) fn on_query_failed(
        &mut self,
        peer: AuthorityId,
        token: u64,
        reason: &'static str,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        let Some((id, asked_peer)) = self.queries.tokens.remove(&token) else {
            return;
        };
        if asked_peer != peer {
            return;
        }
        if let Some(fanout) = self.queries.fanouts.get_mut(&id) {
            fanout.asked.remove(&peer);
            fanout.missing.push((peer, format!("no answer ({reason})")));
            if fanout.asked.is_empty() {
                self.finish_fanout(id, now, out);
            }
        }
    }

    pub(super) fn expire_queries(&mut self, now: Timestamp, out: &mut Vec<Output>) {
        let expired: Vec<u64> = self
            .queries
            .fanouts
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(fanout) = self.queries.fanouts.get_mut(&id) {
                for peer in std::mem::take(&mut fanout.asked) {
                    fanout
                        .missing
                        .push((peer, "no answer before the deadline".into()));
                }
            }
            self.finish_fanout(id, now, out);
        }
    }

    fn finish_fanout(&mut self, id: u64, now: Timestamp, out: &mut Vec<Output>) {
        self.answer_locally(id, now);
        let Some(fanout) = self.queries.fanouts.remove(&id) else {
            return;
        };
        self.queries.tokens.retain(|_, (f, _)| *f != id);
        self.queries.deferred.retain(|f| *f != id);
        let mut missing = fanout.missing.clone();
        missing.extend(
            fanout
                .rejected
                .iter()
                .map(|(peer, why)| (*peer, format!("answer rejected: {why}"))),
        );
        out.push(Output::Record(Box::new(RegisterEntry {
            direction: Direction::Sent,
            at: now,
            query: fanout.request.clone(),
            answers: fanout.answers.iter().map(|(a, _)| a.clone()).collect(),
            missing,
            account: fanout.account.clone(),
        })));
        out.push(Output::QueryDone {
            ticket: fanout.ticket,
            result: Box::new(Ok(QueryResult::new(
                &self.replica,
                fanout.request,
                &fanout.offer,
                fanout.answers,
                fanout.missing,
                fanout.rejected,
                now,
            ))),
        });
    }
}

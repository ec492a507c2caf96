//! What the authorities do: issue notices chosen from what their own
//! replica knows, through their engine (so the issuing gate decides), and
//! ask federation-wide queries.

use super::{Sim, digest_u64};
use credence_protocol::engine::Input;
use credence_protocol::engine::{IssuedNotice, QueryAsk, QueryResult, QueryScope, Refusal};
use credence_protocol::model::{
    AuthorityId, Classification, FeedbackAction, ListKind, Listing, NoticeId, NoticeKind, Remedy,
    RulingOutcome, Severity, Subject, SubjectKind,
};
use credence_protocol::replica::NoticeMemo;
use credence_protocol::testkit;
use credence_protocol::time::{DAY_MS, Timestamp};

/// How long a simulated query waits for answers.
pub(super) const QUERY_DEADLINE_MS: u64 = 2_000;

impl Sim {
    pub(super) fn issue_gap(&mut self) -> u64 {
        let s = &self.cfg.scenario;
        let mean = (self.workload_end * s.authorities as u64) / (s.workload.notices.max(1) as u64);
        self.rng.between(mean / 2, mean + mean / 2).max(1)
    }

    pub(super) fn listing(&mut self, subject: u64) -> Listing {
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
            readers: Vec::new(),
            linked: Vec::new(),
        }
    }

    pub(super) fn pick(&mut self, items: &[NoticeId]) -> Option<NoticeId> {
        (!items.is_empty()).then(|| items[self.rng.below(items.len() as u64) as usize])
    }

    /// A random id of one of a node's lists, without copying the list.
    fn pick_of(&mut self, node: usize, list: fn(&super::Node) -> &[NoticeId]) -> Option<NoticeId> {
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
        let own: fn(&super::Node) -> &[NoticeId] = |n| &n.own_listings;
        let known: fn(&super::Node) -> &[NoticeId] = |n| &n.known_listings;
        let objections: fn(&super::Node) -> &[NoticeId] = |n| &n.objections_to_mine;
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

    pub(super) fn issue(&mut self, node: usize) {
        let kind = self.choose(node);
        let was_list = matches!(kind, NoticeKind::List(_));
        self.issuing = Some(was_list);
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let issue = Input::Issue {
            ticket,
            kind: Box::new(kind),
        };
        self.feed(node, issue, None);
        if let Some(Err(Refusal::Invalid(_) | Refusal::UnknownReference { .. })) =
            self.refusal.take()
            && !was_list
        {
            // The choice was refused (already ruled, withdrawn, ...): list.
            let subject = self.rng.below(self.cfg.scenario.workload.subjects);
            let kind = NoticeKind::List(self.listing(subject));
            self.issuing = Some(true);
            self.next_ticket += 1;
            let ticket = self.next_ticket;
            let issue = Input::Issue {
                ticket,
                kind: Box::new(kind),
            };
            self.feed(node, issue, None);
        }
        self.issuing = None;
        self.refusal = None;
    }

    /// The engine answered an issue request.
    pub(super) fn issued(&mut self, node: usize, result: Result<IssuedNotice, Refusal>) {
        let issued = match result {
            Ok(issued) => issued,
            Err(refusal) => {
                if matches!(refusal, Refusal::NotReady(_)) {
                    self.counters.issue_refused += 1;
                }
                self.refusal = Some(Err(refusal));
                return;
            }
        };
        let Some(envelope) = self.nodes[node]
            .engine
            .replica()
            .store()
            .envelope(&issued.id)
        else {
            return;
        };
        let n = &mut self.nodes[node];
        if self.issuing == Some(true) {
            n.own_listings.push(issued.id);
        }
        // Durable before it was acknowledged: the store flush behind the
        // mark covers everything accepted so far.
        n.flushed = n.log.len();
        if n.byzantine.is_empty() {
            n.acknowledged.push(issued.id);
        }
        self.counters.issued += 1;
        self.issued_at.insert(issued.id, self.now);
        self.witness(&envelope.bytes);
    }

    /// Bookkeeping of one notice accepted at a node.
    pub(super) fn accepted(&mut self, node: usize, id: NoticeId, author: AuthorityId) {
        let honest = self.nodes[node].byzantine.is_empty();
        let n = &mut self.nodes[node];
        n.recent.push(id);
        // The envelope being delivered carries its interned index; one
        // released from the pending buffer is looked up.
        let index = self
            .current
            .as_ref()
            .filter(|e| e.id == id)
            .and_then(|e| e.index)
            .or_else(|| self.interner.borrow().find(&id));
        if let Some(index) = index {
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
        if honest && let Some(at) = self.issued_at.get(&id) {
            self.latencies.push(self.now - at);
            self.delivered_pairs += 1;
        }
        self.trace = mix_id(self.trace, &id);
        // A notice signed here is witnessed once acknowledged.
        if author == self.nodes[node].author {
            return;
        }
        if honest && !self.valid.contains(&id) {
            let what = self
                .memo
                .checked(&id)
                .map(|c| {
                    format!(
                        "{} seq {} by {}",
                        c.notice.kind.name(),
                        c.notice.seq,
                        c.notice.author.short()
                    )
                })
                .unwrap_or_default();
            let pending = self.oracle.pending().iter().any(|(p, _)| *p == id);
            self.violate(
                "nothing_invalid_accepted",
                format!(
                    "node {node} accepted {id} ({what}; the reference replica {}), which no valid history holds",
                    if pending {
                        "still holds it pending".to_string()
                    } else {
                        format!(
                            "refused it: {}",
                            self.refused.get(&id).map_or("never saw it", String::as_str)
                        )
                    }
                ),
            );
        }
    }

    /// A federation-wide query from `node` about a random subject.
    pub(super) fn ask(&mut self, node: usize) {
        let subject = self.rng.below(self.cfg.scenario.workload.subjects);
        let ask = QueryAsk {
            subject_kind: SubjectKind::LegalPerson,
            subject_id: testkit::uscc(subject),
            purpose: "procurement check".into(),
            legal_basis: "Government Procurement Law art. 22".into(),
            scope: QueryScope::Federation,
            deadline_ms: QUERY_DEADLINE_MS,
            page: 0,
            account: None,
            clearance: credence_protocol::access::Clearance::Auditor,
        };
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.counters.queries += 1;
        let members = self.nodes[node]
            .engine
            .replica()
            .federation()
            .roster()
            .members
            .len();
        self.nodes[node]
            .queries
            .insert(ticket, (self.now + QUERY_DEADLINE_MS, members));
        let query = Input::Query {
            ticket,
            ask: Box::new(ask),
        };
        self.feed(node, query, None);
    }

    /// The engine finished a query.
    pub(super) fn query_done(
        &mut self,
        node: usize,
        ticket: u64,
        result: Result<QueryResult, Refusal>,
    ) {
        let Some((deadline, members)) = self.nodes[node].queries.remove(&ticket) else {
            return;
        };
        if self.now > deadline {
            self.violate(
                "queries_answered_by_their_deadline",
                format!(
                    "node {node}'s query finished {} ms after its deadline",
                    self.now - deadline
                ),
            );
        }
        match result {
            Ok(result) => {
                self.counters.queries_done += 1;
                self.counters.query_answers += result.answers.len() as u64;
                for answered in &result.answers {
                    if answered
                        .answer
                        .signed
                        .id()
                        .is_ok_and(|id| self.lies.contains(&id.0))
                    {
                        self.violate(
                            "no_lie_accepted",
                            format!(
                                "node {node} accepted a forged answer of {}",
                                answered.responder.short()
                            ),
                        );
                    }
                }
                self.counters.query_rejections += result.rejected.len() as u64;
                // Every member of the roster the query went out under, or
                // of the roster when it ended (a version may come between).
                let now_members = self.nodes[node]
                    .engine
                    .replica()
                    .federation()
                    .roster()
                    .members
                    .len();
                let accounted = result.answers.len() + result.missing.len() + result.rejected.len();
                if accounted != members && accounted != now_members {
                    self.violate(
                        "queries_answered_by_their_deadline",
                        format!(
                            "node {node}'s query accounts for {} answers, {} missing and {} rejected of {members} members",
                            result.answers.len(),
                            result.missing.len(),
                            result.rejected.len()
                        ),
                    );
                }
            }
            Err(refusal) => self.violate(
                "queries_answered_by_their_deadline",
                format!("node {node}'s query was refused: {refusal}"),
            ),
        }
    }
}

fn mix_id(trace: u64, id: &NoticeId) -> u64 {
    super::mix(trace, digest_u64(id))
}

//! The reference replica and the invariants: nothing invalid accepted, no
//! honest authority's log forked, nothing flushed or acknowledged lost,
//! and, once the faults stop, convergence of heads, listing states, task
//! lists and fork evidence within a bound.

use super::Sim;
use super::network::{MSG_KINDS, overlay_diameter};
use crate::report::{Report, percentile};
use credence_protocol::fold::{self, ListingState, Task};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::replica::Outcome;
use credence_protocol::store::Store;
use std::collections::{BTreeMap, BTreeSet};

/// Most nodes whose listing states and tasks are compared at the end.
const STATE_CHECK_NODES_MAX: usize = 32;
/// Implementing authorities whose task lists are compared at the end.
const TASK_CHECK_MEMBERS_MAX: usize = 8;
/// Of those, how many each sampled node derives (in turn, so that each is
/// derived on several nodes): each derivation folds every listing.
const TASK_CHECK_MEMBERS_PER_NODE: usize = 2;

impl Sim {
    /// Records a notice created at this instant with the oracle, which
    /// sees every notice in creation order and so defines what is valid.
    pub(super) fn witness(&mut self, bytes: &[u8]) {
        if let Ok(outcomes) = self.oracle.ingest_batch(&[bytes]) {
            for outcome in outcomes {
                match outcome {
                    Outcome::Accepted { id, .. } => {
                        self.valid.insert(id);
                    }
                    Outcome::Forked {
                        id, author, seq, ..
                    } => {
                        self.valid.insert(id);
                        self.equivocators.insert(author);
                        let honest = self
                            .index
                            .get(&author)
                            .is_some_and(|n| self.nodes[*n].byzantine.is_empty());
                        if honest {
                            let node = self.index[&author];
                            self.violate(
                                "no_honest_log_forked",
                                format!(
                                    "honest node {node} signed two notices at seq {seq} of its own log"
                                ),
                            );
                        }
                    }
                    // Another fork of an author whose evidence is held
                    // (one pair per author is kept): validly signed.
                    Outcome::Duplicate { id }
                        if !self.oracle.store().contains(&id).unwrap_or(true) =>
                    {
                        self.valid.insert(id);
                    }
                    Outcome::Rejected { id, error, .. } => {
                        self.refused.insert(id, error.to_string());
                    }
                    _ => {}
                }
            }
        }
    }

    pub(super) fn sample_progress(&mut self) {
        let honest = self.nodes.iter().filter(|n| n.byzantine.is_empty()).count() as u64;
        let wanted = honest * self.issued_at.len() as u64;
        let fraction = if wanted == 0 {
            1.0
        } else {
            self.delivered_pairs as f64 / wanted as f64
        };
        self.progress.push((self.now, fraction.min(1.0)));
    }

    /// Why the honest replicas have not converged.
    pub(super) fn divergence(&self) -> String {
        let honest = self.honest_up();
        let reference = honest
            .first()
            .map(|n| self.comparable_heads(*n))
            .unwrap_or_default();
        let behind: Vec<String> = honest
            .iter()
            .filter(|n| {
                self.comparable_heads(**n) != reference
                || self.nodes[**n].engine.replica().pending().iter().any(|(id, w)| self.valid.contains(id) && !self.cut_back.contains(id) && !matches!(w, credence_protocol::replica::Waiting::Predecessor { author, .. } if self.equivocators.contains(author)))
            })
            .map(|n| {
                let waiting: Vec<String> = self.nodes[*n]
                .engine.replica()
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
        detail
    }

    /// Honest members up (a node a roster version removed is a member no
    /// more: nobody syncs with it).
    fn honest_up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i].byzantine.is_empty() && self.up[*i] && !self.removed.contains(i)
            })
            .collect()
    }

    /// Each log's head: author, seq, id and notice budget (which follows
    /// from the log and the roster chain alone, allowances included, so
    /// equal logs carry equal budgets).
    fn comparable_heads(&self, node: usize) -> Vec<(AuthorityId, u64, NoticeId, u64)> {
        self.nodes[node]
            .engine
            .replica()
            .store()
            .heads()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| !self.equivocators.contains(&h.author))
            .map(|h| (h.author, h.seq, h.id, h.budget))
            .collect()
    }

    /// Authors with a fork both of whose notices are valid, as seen by any
    /// honest replica.
    fn valid_forks(&self, honest: &[usize]) -> BTreeSet<AuthorityId> {
        let id = |b: &[u8]| NoticeId::from(credence_crypto::merkle::leaf_hash(b));
        let mut detected = BTreeSet::new();
        for &n in honest {
            for fork in self.nodes[n]
                .engine
                .replica()
                .store()
                .forks()
                .unwrap_or_default()
            {
                let counts = |bytes: &[u8]| {
                    let id = id(bytes);
                    self.valid.contains(&id) && !self.cut_back.contains(&id)
                };
                if counts(&fork.first) && counts(&fork.second) {
                    detected.insert(fork.author);
                }
            }
        }
        detected
    }

    /// The authors that showed honest nodes both halves of a split view.
    fn split_views_shown(&self) -> BTreeSet<AuthorityId> {
        self.split_views_sent
            .iter()
            .filter(|(_, delivered)| delivered[0] && delivered[1])
            .map(|((author, _), _)| *author)
            .collect()
    }

    pub(super) fn converged(&self) -> bool {
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
        // Split-view evidence one honest node holds, every one must; and
        // so must the split views a Byzantine author showed honest nodes
        // both halves of (a split view shown just before the end gets the
        // time to be found and spread).
        let mut split_views = self.split_views_known(&honest);
        split_views.extend(self.split_views_shown());
        // Every honest replica is on the reference replica's roster version.
        let roster = self.oracle.chain().current().hash;
        honest.iter().all(|i| {
            self.nodes[*i].engine.replica().chain().current().hash == roster
        }) && honest.iter().all(|i| {
            let replica = &self.nodes[*i].engine.replica();
            let known: BTreeSet<AuthorityId> = replica.store().forks().unwrap_or_default().iter().map(|f| f.author).collect();
            self.comparable_heads(*i) == heads
                && forks.is_subset(&known)
                && split_views.is_subset(&self.split_views_of(*i))
                && replica.pending().iter().all(|(id, waiting)| {
                    !self.valid.contains(id)
                        || self.cut_back.contains(id)
                        || matches!(waiting, credence_protocol::replica::Waiting::Predecessor { author, .. } if self.equivocators.contains(author))
                })
        })
    }

    /// The authors of whom node `i` holds split-view evidence.
    fn split_views_of(&self, i: usize) -> BTreeSet<AuthorityId> {
        self.nodes[i]
            .engine
            .checkpoints()
            .iter()
            .filter(|log| log.split_view.is_some())
            .map(|log| log.author)
            .collect()
    }

    /// Over the honest nodes up, the share of (node, log with notices)
    /// pairs for which the node holds a quorum-cosigned checkpoint.
    fn witnessed_share(&self) -> f64 {
        let honest = self.honest_up();
        let (mut held, mut all) = (0usize, 0usize);
        for i in &honest {
            let engine = &self.nodes[*i].engine;
            let logs = engine.replica().store().heads().unwrap_or_default();
            let checkpoints = engine.checkpoints();
            for head in logs {
                all += 1;
                if checkpoints
                    .iter()
                    .any(|c| c.author == head.author && c.witnessed.is_some())
                {
                    held += 1;
                }
            }
        }
        held as f64 / all.max(1) as f64
    }

    /// The authors of whom any of these nodes holds split-view evidence.
    fn split_views_known(&self, nodes: &[usize]) -> BTreeSet<AuthorityId> {
        nodes.iter().flat_map(|i| self.split_views_of(*i)).collect()
    }

    /// A node's listing states, and the listings an equivocator touched:
    /// replicas holding different branches of an equivocator's log may
    /// legitimately differ on those.
    fn states(&self, node: usize) -> (BTreeMap<NoticeId, ListingState>, BTreeSet<NoticeId>) {
        let t = self.now_ts();
        let replica = &self.nodes[node].engine.replica();
        let mut out = BTreeMap::new();
        let mut tainted = BTreeSet::new();
        for id in replica.store().listings().unwrap_or_default() {
            if let Ok(Some(state)) = replica.listing_state(&id, t) {
                if state
                    .history
                    .iter()
                    .any(|h| self.equivocators.contains(&h.author))
                {
                    tainted.insert(id);
                } else {
                    out.insert(id, state);
                }
            }
        }
        (out, tainted)
    }

    pub(super) fn final_checks(&mut self) {
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
        let (reference_all, reference_tainted) = self.states(first);
        let reference_tasks: Vec<Vec<Task>> = checked_members
            .iter()
            .map(|member| {
                let mut tasks: Vec<Task> = reference_all
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
            let (mut states, tainted) = self.states(node);
            // Compared where neither replica holds an equivocator's notice.
            states.retain(|id, _| !reference_tainted.contains(id));
            let mut reference = reference_all.clone();
            reference.retain(|id, _| !tainted.contains(id));
            if states != reference {
                let differing = reference
                    .keys()
                    .chain(states.keys())
                    .find(|id| reference.get(id) != states.get(id))
                    .copied();
                let show = |state: Option<&ListingState>| {
                    state.map_or("absent".to_string(), |s| {
                        format!(
                            "{} with {} notices ({})",
                            s.status.name(),
                            s.history.len(),
                            s.history
                                .iter()
                                .map(|h| format!("{} by {}", h.kind, h.author.short()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
                };
                let detail = differing.map_or(String::new(), |id| {
                    format!(
                        ": {} here, {} there",
                        show(states.get(&id)),
                        show(reference.get(&id))
                    )
                });
                self.violate(
                    "equal_listing_states",
                    format!(
                        "node {node} and node {first} disagree on listing {differing:?}{detail}"
                    ),
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
                    .engine
                    .replica()
                    .tasks(&member.key, t)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(task, _)| states.contains_key(&task.listing))
                    .map(|(task, _)| task)
                    .collect();
                tasks.sort();
                let expected: Vec<Task> = expected
                    .iter()
                    .filter(|task| !tainted.contains(&task.listing))
                    .cloned()
                    .collect();
                if tasks != expected {
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
        // Every notice an honest authority acknowledged survives: every
        // honest replica holds it, whatever the authority's disk went
        // through.
        for author in 0..self.nodes.len() {
            if !self.nodes[author].byzantine.is_empty() {
                continue;
            }
            self.counters.checks += 1;
            let lost = self.nodes[author].acknowledged.iter().find_map(|id| {
                honest
                    .iter()
                    .find(|n| {
                        !self.nodes[**n]
                            .engine
                            .replica()
                            .store()
                            .contains(id)
                            .unwrap_or(false)
                    })
                    .map(|n| (*id, *n))
            });
            if let Some((id, node)) = lost {
                self.violate(
                    "acknowledged_notice_survives",
                    format!("node {node} does not hold {id}, which node {author} acknowledged"),
                );
            }
        }
        // Every query an up node asked finished by its deadline.
        for node in 0..self.nodes.len() {
            let overdue = self.nodes[node]
                .queries
                .values()
                .filter(|(deadline, _)| *deadline < self.now)
                .count();
            if overdue > 0 {
                self.violate(
                    "queries_answered_by_their_deadline",
                    format!(
                        "node {node} has {overdue} queries past their deadline, never finished"
                    ),
                );
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
                        .engine
                        .replica()
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
            let split_views = self.split_views_of(node);
            for author in self.split_views_shown() {
                if !split_views.contains(&author) {
                    self.violate(
                        "every_split_view_detected",
                        format!("node {node} has no evidence of the split view {author} showed"),
                    );
                }
            }
            // A member that makes up proposals fills a few places at most.
            let flooders: Vec<AuthorityId> = self
                .nodes
                .iter()
                .filter(|n| !n.byzantine.is_empty())
                .map(|n| AuthorityId(n.engine.key().public_bytes()))
                .collect();
            for signer in flooders {
                let held = self.nodes[node]
                    .engine
                    .proposals()
                    .filter(|p| p.signatures.iter().any(|s| s.key == signer))
                    .count();
                if held > credence_protocol::engine::PROPOSALS_PER_SIGNER_MAX {
                    self.violate(
                        "made_up_proposals_bounded",
                        format!("node {node} holds {held} proposals {signer} signed"),
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

    pub(super) fn report(&self, looped: std::time::Duration, wall: std::time::Duration) -> Report {
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
            checkpoints: {
                let mut sum = BTreeMap::new();
                for i in self.honest_up() {
                    for (k, v) in &self.nodes[i].engine.counters().checkpoints {
                        *sum.entry(k.to_string()).or_default() += v;
                    }
                }
                sum
            },
            witnessed_share: self.witnessed_share(),
            split_views: self.split_views_known(&self.honest_up()).len(),
            cutoffs: {
                let (mut cuts, mut orphans) = (0, 0);
                for i in self.honest_up() {
                    let counters = self.nodes[i].engine.counters();
                    cuts += counters.cuts;
                    orphans += counters.orphans;
                }
                let void = self
                    .oracle
                    .store()
                    .listings()
                    .unwrap_or_default()
                    .iter()
                    .filter(|id| {
                        self.oracle
                            .load(id)
                            .ok()
                            .flatten()
                            .is_some_and(|l| self.oracle.void(&l.notice).is_some())
                    })
                    .count() as u64;
                (cuts, orphans, void)
            },
            issue_refused: self.counters.issue_refused,
            queries: (
                self.counters.queries,
                self.counters.queries_done,
                self.counters.query_answers,
                self.counters.query_rejections,
            ),
        }
    }
}

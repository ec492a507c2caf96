//! Roster changes under the simulator's faults: a member proposes the
//! next version, the members of its current version sign it (as an
//! operator would, out of band), and it travels by gossip and sync like
//! anything else. An added node joins with the version that added it; a
//! node whose key is rotated or revoked restarts under its new key once it
//! has the version; a removed node stops issuing and is no longer an
//! honest member whose replica must converge.

use super::network::Msg;
use super::{Event, Sim};
use crate::scenario::{ChangeKind, ms};
use crate::store::Envelope;
use credence_crypto::AuthorityKey;
use credence_protocol::AuthorityId;
use credence_protocol::engine::{GovernanceCommand, Input};
use credence_protocol::governance::SignedVersion;
use credence_protocol::governance::chain::Added;
use credence_protocol::governance::proposal::{
    AllowDocument, ChangeDocument, RemoveDocument, RotateDocument, UpdateDocument, propose,
};
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::roster::{Federation, MemberDocument, threshold_default, threshold_min};
use credence_protocol::store::Store;
use credence_protocol::testkit;
use std::rc::Rc;

/// The category a grant withdrawal takes away: the one the workload lists
/// in.
const WITHDRAWN_CATEGORY: &str = "food-drug";

/// How long before a revocation a thief signs with the stolen key.
const THEFT_LEAD_MS: u64 = 3_000;

/// How long a proposer that is down waits before it tries again.
const RETRY_MS: u64 = 1_000;

/// The notices an allowance change grants its node's member.
const ALLOWANCE_NOTICES: u64 = 50_000;

/// The genesis of a scenario: every node's member, but those a roster
/// change adds later.
pub(super) fn genesis(full: &Federation, added: &[AuthorityId]) -> Federation {
    if added.is_empty() {
        return full.clone();
    }
    let mut roster = full.roster().clone();
    roster.members.retain(|m| !added.contains(&m.key));
    roster.threshold = threshold_default(roster.members.len());
    match Federation::new(roster) {
        Ok(federation) => federation,
        Err(error) => unreachable!("a subset of a valid test roster is valid: {error}"),
    }
}

/// The new key of node `node` in the run of `seed`.
pub(super) fn next_key(seed: u64, node: usize) -> AuthorityKey {
    testkit::key(seed ^ 0x005e_ed0f_4e11, node + 4096)
}

impl Sim {
    /// Carries out roster change `index` of the scenario.
    pub(super) fn govern(&mut self, index: usize) {
        let change = self.cfg.scenario.governance[index].clone();
        let by = change.by;
        if !self.up[by] {
            self.schedule(RETRY_MS, Event::Govern(index));
            return;
        }
        let target = change.node;
        let member = self.member_ids[target];
        // The operators build on the newest version (they know it out of
        // band, as the reference replica does); the proposer's node may
        // not have it yet and holds the new one until it does.
        let current = self.oracle.chain().current().clone();
        // The target's operator says where its log stands, and it issues
        // nothing more under the old arrangement.
        let mut own_head = self.head_seq(target, &member);
        // A thief with a copy of the key signs first; the operator, who
        // finds out, stops issuing and states its last own seq then, and
        // the revocation follows a little later.
        let mut stolen: Vec<(NoticeId, u64)> = Vec::new();
        if change.stolen > 0 {
            match self.thefts.remove(&index) {
                Some((head, ids)) => {
                    own_head = head;
                    stolen = ids;
                }
                None => {
                    self.nodes[target].silenced = true;
                    let ids = self.steal(target, member, change.stolen);
                    self.thefts.insert(index, (own_head, ids));
                    self.schedule(THEFT_LEAD_MS, Event::Govern(index));
                    return;
                }
            }
        }
        // A removal is agreed on once the member's last notices are in: it
        // stops issuing, and the proposer waits until it holds them (a
        // notice only the removed node held would never reach anyone
        // else: nobody syncs with a node that is no member).
        if change.change == ChangeKind::Remove {
            self.nodes[target].silenced = true;
            if self.head_seq(by, &member) < own_head {
                self.schedule(RETRY_MS, Event::Govern(index));
                return;
            }
        }
        let members = current.federation.roster().members.len();
        let fit = |n: usize, threshold: u32| {
            (threshold < threshold_min(n) || threshold as usize > n).then(|| threshold_default(n))
        };
        let threshold = current.federation.threshold();
        let mut proof: Option<AuthorityKey> = None;
        let document = match change.change {
            ChangeKind::Add => {
                let Some(joining) = self.full.member(&member) else {
                    unreachable!("every node is a member of the full test roster")
                };
                proof = Some(AuthorityKey::from_secret_bytes(
                    self.keys[&member].secret_bytes(),
                ));
                ChangeDocument {
                    threshold: fit(members + 1, threshold),
                    add: vec![MemberDocument {
                        handle: String::new(),
                        key: member.to_string(),
                        name: joining.name.clone(),
                        region: joining.region.clone(),
                        department: joining.department.clone(),
                        issues_black: joining.issues_black.clone(),
                        issues_red: joining.issues_red.clone(),
                        implements: joining.implements.clone(),
                        auditor: joining.auditor,
                        listen: joining.listen.clone(),
                    }],
                    ..ChangeDocument::default()
                }
            }
            ChangeKind::Remove => ChangeDocument {
                threshold: fit(members - 1, threshold),
                remove: vec![RemoveDocument {
                    member: member.to_string(),
                    after_seq: own_head,
                }],
                ..ChangeDocument::default()
            },
            ChangeKind::Withdraw => {
                let Some(now) = current.federation.member(&member) else {
                    self.violate(
                        "governance",
                        format!("change {index}: node {target} is no member"),
                    );
                    return;
                };
                let kept: Vec<String> = now
                    .issues_black
                    .iter()
                    .filter(|code| code.as_str() != WITHDRAWN_CATEGORY)
                    .cloned()
                    .collect();
                ChangeDocument {
                    update: vec![UpdateDocument {
                        member: member.to_string(),
                        issues_black: Some(kept),
                        after_seq: Some(own_head),
                        ..UpdateDocument::default()
                    }],
                    ..ChangeDocument::default()
                }
            }
            ChangeKind::Allow => ChangeDocument {
                allow: vec![AllowDocument {
                    member: member.to_string(),
                    notices: ALLOWANCE_NOTICES,
                }],
                ..ChangeDocument::default()
            },
            ChangeKind::Rotate | ChangeKind::Revoke => {
                let key = next_key(self.cfg.seed, target);
                proof = Some(AuthorityKey::from_secret_bytes(key.secret_bytes()));
                let n = &mut self.nodes[target];
                n.resume_issuing = !n.silenced || change.stolen > 0;
                n.silenced = true;
                n.next_key = Some(AuthorityKey::from_secret_bytes(key.secret_bytes()));
                ChangeDocument {
                    rotate: vec![RotateDocument {
                        member: member.to_string(),
                        key: hex::encode(key.public_bytes()),
                        after_seq: own_head,
                        compromised: change.change == ChangeKind::Revoke,
                    }],
                    ..ChangeDocument::default()
                }
            }
        };
        let version = match propose(&current, &document) {
            Ok(version) => version,
            Err(error) => {
                self.violate("governance", format!("change {index}: {error}"));
                return;
            }
        };
        let Ok(mut signed) = SignedVersion::new(&version) else {
            self.violate("governance", format!("change {index} does not encode"));
            return;
        };
        // The threshold of honest members of the current version sign.
        let honest: Vec<AuthorityId> = current
            .federation
            .roster()
            .members
            .iter()
            .map(|m| m.key)
            .filter(|id| {
                self.index
                    .get(id)
                    .is_some_and(|i| self.nodes[*i].byzantine.is_empty())
            })
            .collect();
        for id in honest.iter().take(threshold as usize) {
            signed.sign(&self.keys[id]);
        }
        if let Some(key) = &proof {
            signed.sign(key);
        }
        match self.oracle.add_roster_version(signed.clone()) {
            Ok(Added::Valid { .. }) => {}
            other => {
                self.violate(
                    "governance",
                    format!("change {index}: the reference replica did not take it: {other:?}"),
                );
                return;
            }
        }
        // The version cut the thief's notices back: valid no more.
        self.oracle.take_cuts();
        for (id, seq) in stolen {
            if self.oracle.store().log_id(&member, seq).ok().flatten() == Some(id) {
                self.violate(
                    "governance",
                    format!("change {index}: the thief's notice {id} is still in the log"),
                );
            }
            self.cut_back.insert(id);
        }
        *self.counters.faults.entry("roster_version").or_default() += 1;
        self.feed(
            by,
            Input::Govern {
                ticket: 0,
                command: Box::new(GovernanceCommand::Version(signed)),
            },
            None,
        );
        match change.change {
            ChangeKind::Add => {
                // The new member's operator joins with the chain so far.
                let chain = self.oracle.chain().signed_versions();
                let n = &mut self.nodes[target];
                n.flushed_rosters = chain.iter().map(|v| (**v).clone()).collect();
                self.restart(target);
            }
            ChangeKind::Remove => {
                self.removed.insert(target);
            }
            ChangeKind::Withdraw | ChangeKind::Allow => {}
            ChangeKind::Rotate | ChangeKind::Revoke => {
                if let Some(key) = proof {
                    self.keys.insert(member, key);
                }
            }
        }
    }

    /// A thief with a copy of node `node`'s key signs `count` notices
    /// continuing its log past the head the node holds, and gossips them
    /// from where the node is. Returns their ids and seqs.
    fn steal(&mut self, node: usize, member: AuthorityId, count: u64) -> Vec<(NoticeId, u64)> {
        let Some(head) = self.nodes[node]
            .engine
            .replica()
            .store()
            .head(&member)
            .ok()
            .flatten()
        else {
            return Vec::new();
        };
        let key = AuthorityKey::from_secret_bytes(self.keys[&member].secret_bytes());
        let roster = self.nodes[node].engine.replica().chain().current().number;
        let federation = self.oracle.federation().id();
        let mesh = self.nodes[node].mesh.clone();
        let (mut prev, mut at) = (head.id, head.issued_at.max(self.now_ts()));
        let mut ids = Vec::new();
        for k in 1..=count {
            let subject = self.rng.below(self.cfg.scenario.workload.subjects);
            let notice = Notice {
                version: NOTICE_VERSION,
                roster,
                federation,
                author: member,
                seq: head.seq + k,
                prev,
                issued_at: at,
                kind: NoticeKind::List(self.listing(subject)),
            };
            let (id, bytes) = testkit::sign(&key, &notice);
            self.witness(&bytes);
            let envelope = Rc::new(Envelope::loose(bytes));
            for peer in &mesh {
                self.send(node, *peer, Msg::Gossip(envelope.clone()));
            }
            *self.counters.faults.entry("stolen_key_notice").or_default() += 1;
            ids.push((id, head.seq + k));
            prev = id;
            at = at.plus_ms(1);
        }
        ids
    }

    /// The seq of `author`'s log that node `node` holds.
    fn head_seq(&self, node: usize, author: &AuthorityId) -> u64 {
        self.nodes[node]
            .engine
            .replica()
            .store()
            .head(author)
            .ok()
            .flatten()
            .map_or(0, |h| h.seq)
    }

    /// The node's roster changed: a node whose key was retired and whose
    /// next key is ready restarts under it, as its operator would.
    pub(super) fn roster_changed(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.next_key.is_none() || !self.up[node] {
            return;
        }
        let own = AuthorityId(n.engine.key().public_bytes());
        if n.engine
            .replica()
            .chain()
            .current()
            .member_of_key(&own)
            .is_none()
        {
            // A clean stop: what the node holds is flushed first.
            n.flush();
            self.go_down(node);
            self.schedule(1, Event::Restart(node));
        }
    }

    /// Schedules the scenario's roster changes.
    pub(super) fn schedule_governance(&mut self) -> Result<(), crate::scenario::ScenarioError> {
        let changes = self.cfg.scenario.governance.clone();
        for (index, change) in changes.iter().enumerate() {
            let at = ms("governance.at", &change.at)?;
            self.schedule(at, Event::Govern(index));
        }
        Ok(())
    }
}

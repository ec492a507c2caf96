//! What Byzantine members send: forgeries, forks, replays, unauthorised
//! repairs, garbage, and their own notices to only some peers.

use super::Sim;
use super::network::Msg;
use crate::scenario::Misbehaviour;
use crate::store::Envelope;
use credence_crypto::AuthorityKey;
use credence_protocol::model::{AuthorityId, NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::store::Store;
use credence_protocol::testkit;
use std::rc::Rc;

/// Made-up proposals a flooding member sends at a time: more than an
/// engine holds in all.
const PROPOSALS_PER_FLOOD: usize = credence_protocol::engine::PROPOSALS_MAX + 4;

impl Sim {
    fn next_notice(&self, node: usize, kind: NoticeKind) -> (Notice, u64) {
        let author = AuthorityId(self.nodes[node].engine.key().public_bytes());
        let head = self.nodes[node]
            .engine
            .replica()
            .store()
            .head(&author)
            .ok()
            .flatten();
        let (seq, prev, at) = head.map_or((1, NoticeId::default(), self.now_ts()), |h| {
            (h.seq + 1, h.id, h.issued_at.max(self.now_ts()))
        });
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: self.oracle.federation().id(),
            author,
            seq,
            prev,
            issued_at: at,
            kind,
        };
        (notice, seq)
    }

    pub(super) fn misbehave(&mut self, node: usize, behaviour: Misbehaviour) {
        if !self.up[node] {
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
                Misbehaviour::SplitView => "byzantine_split_view",
                Misbehaviour::Lie => "byzantine_lie_armed",
                Misbehaviour::ProposalFlood => "byzantine_proposal_flood",
            })
            .or_default() += 1;
        let key = AuthorityKey::from_secret_bytes(self.nodes[node].engine.key().secret_bytes());
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
                let _ = self.nodes[node].engine.replica_mut().ingest_batch(&[&x]);
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
            Misbehaviour::Withhold | Misbehaviour::Lie => return,
            Misbehaviour::SplitView => {
                self.split_view(node, &key, &mesh);
                return;
            }
            Misbehaviour::ProposalFlood => {
                self.proposal_flood(node, &key, &mesh);
                return;
            }
        }
        for (peers, bytes) in messages {
            self.witness(&bytes);
            let envelope = Rc::new(Envelope::loose(bytes));
            for peer in peers {
                self.send(node, peer, Msg::Gossip(envelope.clone()));
            }
        }
    }

    /// Signs the checkpoint of its log as it holds it and one of the same
    /// size with another root; each half of its mesh sees one.
    fn split_view(&mut self, node: usize, key: &AuthorityKey, mesh: &[usize]) {
        use credence_protocol::checkpoint::{self, Checkpoint, wire};
        let author = AuthorityId(key.public_bytes());
        let Some(head) = self.nodes[node]
            .engine
            .replica()
            .store()
            .head(&author)
            .ok()
            .flatten()
        else {
            return;
        };
        let federation = self.oracle.federation().id();
        let honest = Checkpoint::of_log(&federation, &author, head.seq, head.root());
        let mut lie = honest.clone();
        lie.root = credence_crypto::merkle::leaf_hash(&head.root().0);
        let (Ok(honest), Ok(lie)) = (checkpoint::sign(key, &honest), checkpoint::sign(key, &lie))
        else {
            return;
        };
        for (i, note) in [honest, lie].iter().enumerate() {
            let Ok(bytes) = wire::encode(&wire::note_message(note)) else {
                return;
            };
            self.split_messages
                .insert(super::network::witness_hash(&bytes), (author, head.seq, i));
            let bytes: Rc<[u8]> = Rc::from(bytes);
            for peer in mesh.iter().skip(i).step_by(2) {
                self.send(node, *peer, Msg::Witness(bytes.clone()));
            }
        }
    }

    /// Made-up proposals for the version after the one its engine holds
    /// (allowances to itself), signed with its key, a batch of them to
    /// every peer of its mesh: honest members keep at most
    /// [`credence_protocol::engine::PROPOSALS_PER_SIGNER_MAX`] of those
    /// one member signed.
    fn proposal_flood(&mut self, node: usize, key: &AuthorityKey, mesh: &[usize]) {
        use credence_protocol::checkpoint::wire;
        use credence_protocol::governance::SignedVersion;
        use credence_protocol::governance::proposal::{AllowDocument, ChangeDocument, propose};
        let current = self.nodes[node].engine.replica().chain().current().clone();
        let me = AuthorityId(key.public_bytes());
        for _ in 0..PROPOSALS_PER_FLOOD {
            let change = ChangeDocument {
                allow: vec![AllowDocument {
                    member: me.to_string(),
                    notices: 1 + self.rng.below(1_000_000),
                }],
                ..ChangeDocument::default()
            };
            let Ok(version) = propose(&current, &change) else {
                return;
            };
            let Ok(mut signed) = SignedVersion::new(&version) else {
                return;
            };
            signed.sign(key);
            let Ok(body) = signed.to_bytes() else {
                return;
            };
            let Ok(bytes) = wire::encode(&wire::WitnessMessage::Proposal(body.into())) else {
                return;
            };
            let bytes: Rc<[u8]> = Rc::from(bytes);
            for peer in mesh {
                self.send(node, *peer, Msg::Witness(bytes.clone()));
            }
        }
    }

    /// A lying responder's answer: the first listing's status misstated,
    /// signed again with its key. `None` when there is nothing to misstate.
    pub(super) fn lie(&mut self, node: usize, bytes: &[u8]) -> Option<Vec<u8>> {
        use credence_protocol::fold::Status;
        use credence_protocol::query::{ANSWER_BYTES_MAX, QueryAnswer, Signed, sign_answer};
        let signed = Signed::decode::<{ ANSWER_BYTES_MAX + 128 }>(bytes).ok()?;
        let mut answer: QueryAnswer =
            credence_protocol::codec::decode_bounded::<_, ANSWER_BYTES_MAX>("answer", &signed.body)
                .ok()?;
        let first = answer.listings.first_mut()?;
        if first.status == Status::Active {
            first.status = Status::Withdrawn;
            first.enforceable = false;
        } else {
            first.status = Status::Active;
            first.enforceable = true;
        }
        let key = AuthorityKey::from_secret_bytes(self.nodes[node].engine.key().secret_bytes());
        let forged = sign_answer(answer, &key).ok()?;
        let id = forged.signed.id().ok()?;
        let bytes = forged.signed.encode::<{ ANSWER_BYTES_MAX + 128 }>().ok()?;
        self.lies.insert(id.0);
        *self.counters.faults.entry("byzantine_lie").or_default() += 1;
        Some(bytes)
    }

    /// The deliberately broken replica: it takes every repair it receives,
    /// whoever signed it, as if it were valid.
    pub(super) fn broken_accepts(&mut self, node: usize, envelopes: &[Rc<Envelope>]) {
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
}

//! The roster chain in the engine: versions and proposals arrive by gossip
//! (on the checkpoint topic) and by sync (each session asks for the
//! versions it lacks first, then for the proposals and signatures it
//! lacks), the operator proposes, signs and submits, and the shells hear
//! when the current version changes so that the connection gate follows
//! it. The proposals held are kept in the store, so that a restart does
//! not lose a proposal that gathers signatures over days.

use super::{Engine, Level, Output, Refusal, Verdict};
use crate::checkpoint::wire::{self, WitnessMessage};
use crate::governance::chain::Added;
use crate::governance::{GovernanceError, ROSTER_DOMAIN, SignedVersion, verify_next};
use crate::model::{AuthorityId, RosterHash};
use crate::store::Store;
use crate::sync::{ProposalHave, RefusalReason, SyncRequest, SyncResponse};
use crate::time::Timestamp;
use credence_crypto::PublicKey;
use std::collections::BTreeMap;

/// Most proposals an engine keeps while they gather signatures.
pub const PROPOSALS_MAX: usize = 16;
/// Most proposals held that one member's signature may bring in: a
/// proposal from a peer is kept only with the signature of a current
/// member who signed fewer of those held, so that a member who makes up
/// proposals fills this many places at most, never all of them (a key a
/// proposal adds does not count: anyone can make one up).
pub const PROPOSALS_PER_SIGNER_MAX: usize = 4;

/// The engine's governance state.
#[derive(Debug, Default)]
pub(super) struct Governance {
    /// Roster exchanges in flight: token to peer and when it was asked.
    asks: BTreeMap<u64, (AuthorityId, Timestamp)>,
    /// Proposal exchanges in flight: token to peer and when it was asked.
    proposal_asks: BTreeMap<u64, (AuthorityId, Timestamp)>,
    /// Proposals for the next version, by hash, with the signatures
    /// gathered (each verified).
    proposals: BTreeMap<RosterHash, SignedVersion>,
    /// The proposals changed since they were last kept in the store.
    unsaved: bool,
    /// The proposals held that this member signed, by hash, each with the
    /// cutoff of the rotation of its own key it makes, if any: issuing
    /// asks for it each time without decoding a version.
    own_signed: BTreeMap<RosterHash, Option<u64>>,
}

/// What an operator asks of governance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovernanceCommand {
    /// Circulate a proposal (a version with the signatures it has).
    Propose(SignedVersion),
    /// Add this node's signature to a proposal it holds, and circulate it.
    /// Refused while this member's signature is on another proposal held
    /// for the same version, unless `competing`: two that both reach the
    /// threshold are an equivocation.
    Sign {
        /// The proposal.
        hash: RosterHash,
        /// Sign it even beside another this member signed.
        competing: bool,
    },
    /// A proposal this node makes: checked as [`GovernanceCommand::Sign`]
    /// checks first (so a refused one is not kept), then kept, signed
    /// and circulated.
    ProposeSigned {
        /// The proposal, unsigned.
        signed: SignedVersion,
        /// Sign it even beside another this member signed.
        competing: bool,
    },
    /// Take a proposal that reached its threshold as the next version, and
    /// publish it.
    Submit(RosterHash),
    /// Take a complete signed version (from a file) and publish it.
    Version(SignedVersion),
}

/// What became of a [`GovernanceCommand`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GovernanceAnswer {
    /// The version or proposal concerned.
    pub hash: RosterHash,
    /// Its number.
    pub number: u64,
    /// The signatures it has now.
    pub signatures: usize,
    /// The chain's current version after it.
    pub current: u64,
    /// The version or proposal as it stands (to write to a file).
    pub signed: SignedVersion,
}

/// Exchanges in flight (token to peer and when asked): whether one with
/// `peer` still waits. An exchange whose answer never came (and whose
/// failure was never reported) does not hold the next one up past the
/// sync timeout.
fn asking(
    asks: &mut BTreeMap<u64, (AuthorityId, Timestamp)>,
    peer: AuthorityId,
    now: Timestamp,
    timeout_ms: u64,
) -> bool {
    asks.retain(|_, (_, at)| now.0.saturating_sub(at.0) < timeout_ms);
    asks.values().any(|(p, _)| *p == peer)
}

impl<S: Store> Engine<S> {
    /// Asks `peer` for the roster versions this node lacks (first in each
    /// sync session).
    pub(super) fn ask_roster(&mut self, peer: AuthorityId, now: Timestamp, out: &mut Vec<Output>) {
        if asking(
            &mut self.governance.asks,
            peer,
            now,
            self.config.sync_timeout_ms,
        ) {
            return;
        }
        let held: Vec<RosterHash> = self
            .replica
            .chain()
            .signed_versions()
            .iter()
            .map(|v| v.hash())
            .collect();
        let token = self.token();
        if self.send_sync(peer, token, &SyncRequest::Roster(held), out) {
            self.governance.asks.insert(token, (peer, now));
        }
    }

    /// Whether `token` is a roster exchange in flight.
    pub(super) fn roster_asked(&self, token: u64) -> bool {
        self.governance.asks.contains_key(&token)
    }

    /// Forgets a roster exchange that failed; `false` if `token` was not one.
    pub(super) fn roster_ask_failed(&mut self, token: u64) -> bool {
        self.governance.asks.remove(&token).is_some()
    }

    /// Forgets the exchanges with a peer that left.
    pub(super) fn forget_roster_asks(&mut self, peer: &AuthorityId) {
        self.governance.asks.retain(|_, (p, _)| p != peer);
        self.governance.proposal_asks.retain(|_, (p, _)| p != peer);
    }

    /// The answer to a roster exchange: every version it holds that the
    /// peer lacks is taken in number order.
    pub(super) fn on_roster_answer(
        &mut self,
        peer: AuthorityId,
        token: u64,
        response: Option<SyncResponse>,
        now: Timestamp,
        out: &mut Vec<Output>,
    ) {
        if self.governance.asks.remove(&token).is_none() {
            return;
        }
        let Some(SyncResponse::Roster(versions)) = response else {
            return;
        };
        let mut decoded = Vec::with_capacity(versions.len());
        for bytes in versions {
            match SignedVersion::from_bytes(&bytes) {
                Ok(signed) => decoded.push(signed),
                Err(e) => {
                    *self.counters.malformed.entry("roster").or_default() += 1;
                    Self::log(
                        out,
                        Level::Warn,
                        format!(
                            "{} sent an unreadable roster version: {e}",
                            self.name_of(&peer)
                        ),
                    );
                    return;
                }
            }
        }
        decoded.sort_by_key(|signed| signed.version().map_or(u64::MAX, |v| v.number));
        for signed in decoded {
            self.take_version(signed, &self.name_of(&peer), out);
        }
        // With the chain as far as the peer's, proposals for the version
        // after it are next.
        self.ask_proposals(peer, now, out);
    }

    /// Asks `peer` for the proposals and signatures this node lacks (after
    /// each roster exchange).
    fn ask_proposals(&mut self, peer: AuthorityId, now: Timestamp, out: &mut Vec<Output>) {
        if asking(
            &mut self.governance.proposal_asks,
            peer,
            now,
            self.config.sync_timeout_ms,
        ) {
            return;
        }
        let held: Vec<ProposalHave> = self
            .governance
            .proposals
            .iter()
            .map(|(hash, signed)| ProposalHave {
                hash: *hash,
                signers: signed.signatures.iter().map(|s| s.key).collect(),
            })
            .collect();
        let token = self.token();
        if self.send_sync(peer, token, &SyncRequest::Proposals(held), out) {
            self.governance.proposal_asks.insert(token, (peer, now));
        }
    }

    /// Whether `token` is a proposal exchange in flight.
    pub(super) fn proposals_asked(&self, token: u64) -> bool {
        self.governance.proposal_asks.contains_key(&token)
    }

    /// Forgets a proposal exchange that failed; `false` if `token` was not
    /// one.
    pub(super) fn proposal_ask_failed(&mut self, token: u64) -> bool {
        self.governance.proposal_asks.remove(&token).is_some()
    }

    /// The answer to a peer's [`SyncRequest::Proposals`]: each proposal
    /// held that it lacks, or holds without a signature held here, up to
    /// [`crate::sync::ROSTER_ANSWER_BYTES_MAX`] bytes.
    pub(super) fn answer_proposals(&self, held: &[ProposalHave]) -> SyncResponse {
        if !crate::sync::proposals_valid(held) {
            return SyncResponse::Refused(RefusalReason::BadProposals);
        }
        let mut proposals = Vec::new();
        let mut bytes = 0usize;
        for (hash, signed) in &self.governance.proposals {
            let theirs = held.iter().find(|h| h.hash == *hash);
            let lacking = theirs.is_none_or(|h| {
                signed
                    .signatures
                    .iter()
                    .any(|s| !h.signers.contains(&s.key))
            });
            if !lacking {
                continue;
            }
            let Ok(encoded) = signed.to_bytes() else {
                continue;
            };
            bytes += encoded.len();
            if bytes > crate::sync::ROSTER_ANSWER_BYTES_MAX {
                break;
            }
            proposals.push(serde_bytes::ByteBuf::from(encoded));
        }
        SyncResponse::Proposals(proposals)
    }

    /// The answer to a proposal exchange: each proposal taken as if it
    /// came by gossip (its signatures verified, merged into one held).
    pub(super) fn on_proposals_answer(
        &mut self,
        peer: AuthorityId,
        token: u64,
        response: Option<SyncResponse>,
        out: &mut Vec<Output>,
    ) {
        if self.governance.proposal_asks.remove(&token).is_none() {
            return;
        }
        let Some(SyncResponse::Proposals(proposals)) = response else {
            return;
        };
        let mut taken = 0usize;
        for bytes in proposals {
            let signed = match SignedVersion::from_bytes(&bytes) {
                Ok(signed) => signed,
                Err(e) => {
                    *self.counters.malformed.entry("roster").or_default() += 1;
                    Self::log(
                        out,
                        Level::Warn,
                        format!("{} sent an unreadable proposal: {e}", self.name_of(&peer)),
                    );
                    return;
                }
            };
            if let Ok(true) = self.take_proposal(signed, false) {
                taken += 1;
            }
        }
        if taken > 0 {
            Self::log(
                out,
                Level::Info,
                format!(
                    "{taken} roster proposals or signatures on them came from {} by sync",
                    self.name_of(&peer)
                ),
            );
        }
    }

    /// Keeps the proposals held in the store when they changed (at the end
    /// of each input).
    pub(super) fn save_proposals(&mut self, out: &mut Vec<Output>) {
        if !self.governance.unsaved {
            return;
        }
        self.governance.unsaved = false;
        let encoded: Vec<Vec<u8>> = self
            .governance
            .proposals
            .values()
            .filter_map(|signed| signed.to_bytes().ok())
            .collect();
        if let Err(e) = self.replica.store_mut().put_proposals(&encoded) {
            Self::log(
                out,
                Level::Error,
                format!("cannot keep the roster proposals held: {e}"),
            );
        }
    }

    /// Takes back the proposals kept in the store (at start), each
    /// checked again as one from gossip: those for a version that is no
    /// longer next are dropped, and the signatures that do not verify.
    pub(super) fn restore_proposals(&mut self) {
        let Ok(kept) = self.replica.store().proposals() else {
            return;
        };
        let count = kept.len();
        for bytes in kept {
            // Each was kept once already: held again as the operator's.
            if let Ok(signed) = SignedVersion::from_bytes(&bytes) {
                let _ = self.take_proposal(signed, true);
            }
        }
        // Kept again only if some were dropped.
        self.governance.unsaved = self.governance.proposals.len() != count;
    }

    /// Takes a signed roster version from anywhere; tells the shells when
    /// the current version changed.
    pub(super) fn take_version(
        &mut self,
        signed: SignedVersion,
        from: &str,
        out: &mut Vec<Output>,
    ) -> Verdict {
        let before = self.replica.chain().current().hash;
        let hash = signed.hash();
        match self.replica.add_roster_version(signed) {
            Ok(Added::Valid { number, .. }) => {
                if self.governance.proposals.remove(&hash).is_some() {
                    self.governance.unsaved = true;
                }
                *self.counters.roster.entry("accepted").or_default() += 1;
                Self::log(
                    out,
                    Level::Info,
                    format!(
                        "roster version {number} ({}) from {from} is valid",
                        hash.short()
                    ),
                );
                self.settle_cuts(out);
                self.after_roster_change(before, out);
                Verdict::Accept
            }
            Ok(Added::Held { number }) => {
                *self.counters.roster.entry("held").or_default() += 1;
                Self::log(
                    out,
                    Level::Info,
                    format!(
                        "roster version {number} ({}) from {from} waits for the version it replaces",
                        hash.short()
                    ),
                );
                Verdict::Ignore
            }
            Ok(Added::Known) => Verdict::Ignore,
            Err(e) => {
                *self.counters.roster.entry("rejected").or_default() += 1;
                Self::log(
                    out,
                    Level::Warn,
                    format!("roster version {} from {from} refused: {e}", hash.short()),
                );
                Verdict::Reject
            }
        }
    }

    fn after_roster_change(&mut self, before: RosterHash, out: &mut Vec<Output>) {
        let current = self.replica.chain().current().clone();
        if current.hash == before {
            return;
        }
        // Proposals that no longer extend the current version are dropped.
        let held = self.governance.proposals.len();
        self.governance
            .proposals
            .retain(|_, p| p.version().is_ok_and(|v| v.previous == current.hash));
        if self.governance.proposals.len() != held {
            self.governance.unsaved = true;
        }
        self.me = self
            .replica
            .member_of_key(&AuthorityId(self.key.public_bytes()));
        // Members removed are peers no more: no sync with them, no query.
        let gone: Vec<AuthorityId> = self
            .connected
            .iter()
            .filter(|peer| current.federation.member(peer).is_none())
            .copied()
            .collect();
        for peer in gone {
            self.connected.remove(&peer);
            self.sessions.remove(&peer);
            self.forget_roster_asks(&peer);
            out.push(Output::Disconnect { peer });
        }
        let evidence = self.replica.chain().evidence().len();
        Self::log(
            out,
            if evidence > 0 {
                Level::Warn
            } else {
                Level::Info
            },
            format!(
                "the roster is at version {} ({} members){}",
                current.number,
                current.federation.roster().members.len(),
                if evidence > 0 {
                    format!("; {evidence} equivocations among its versions")
                } else {
                    String::new()
                }
            ),
        );
        out.push(Output::RosterChanged {
            number: current.number,
        });
    }

    /// Logs the new version cut back (it gave their seqs past a cutoff
    /// to a new key): their checkpoint state starts over; for the own
    /// log, the mark goes down to the head kept, and notices signed past
    /// it that were waiting to be durable are refused.
    fn settle_cuts(&mut self, out: &mut Vec<Output>) {
        for cut in self.replica.take_cuts() {
            self.counters.cuts += 1;
            self.forget_log(&cut.author);
            let own = cut.author == self.me;
            Self::log(
                out,
                if own { Level::Error } else { Level::Warn },
                format!(
                    "roster version {} gave the seqs of {}'s log past {} to a new key: {} notices its retired key signed there are removed{}",
                    cut.version,
                    self.name_of(&cut.author),
                    cut.kept,
                    cut.removed,
                    if own {
                        " (this node's own: issue again what still holds)"
                    } else {
                        ""
                    }
                ),
            );
            if !own {
                continue;
            }
            let mark = self.head_mark();
            let kept = mark.seq;
            self.gate.cut(mark.clone());
            out.push(Output::Persist {
                mark: Box::new(mark),
            });
            let (cut_off, waiting): (Vec<_>, Vec<_>) =
                self.undurable.drain(..).partition(|u| u.mark.seq > kept);
            self.undurable = waiting.into();
            for undone in cut_off {
                out.push(Output::Issued {
                    ticket: undone.ticket,
                    result: Err(Box::new(Refusal::KeyRetired(format!(
                        "roster version {} gave seq {} to a new key before it was durable",
                        cut.version, undone.mark.seq
                    )))),
                });
            }
            let store = self.replica.store();
            self.publish
                .retain(|(id, _)| store.contains(id).unwrap_or(false));
        }
    }

    /// A roster version or proposal from the checkpoint topic.
    pub(super) fn on_roster_gossip(
        &mut self,
        message: WitnessMessage,
        out: &mut Vec<Output>,
    ) -> Verdict {
        match message {
            WitnessMessage::Roster(bytes) => match SignedVersion::from_bytes(&bytes) {
                Ok(signed) => self.take_version(signed, "gossip", out),
                Err(_) => {
                    *self.counters.malformed.entry("roster").or_default() += 1;
                    Verdict::Reject
                }
            },
            WitnessMessage::Proposal(bytes) => match SignedVersion::from_bytes(&bytes) {
                Ok(signed) => match self.take_proposal(signed, false) {
                    Ok(true) => Verdict::Accept,
                    Ok(false) => Verdict::Ignore,
                    Err(_) => Verdict::Reject,
                },
                Err(_) => {
                    *self.counters.malformed.entry("roster").or_default() += 1;
                    Verdict::Reject
                }
            },
            WitnessMessage::Note(_) | WitnessMessage::SplitView(_) => Verdict::Ignore,
        }
    }

    /// Keeps a proposal for the next version, merging the signatures it
    /// carries that verify (under a current member's key or a key the
    /// proposal adds). `true` when something new was kept. A new proposal
    /// from a peer (not `from_operator`) is kept only with a current
    /// member's signature that has brought in fewer than
    /// [`PROPOSALS_PER_SIGNER_MAX`] of those held, and while there is
    /// room; else it is passed over (`false`), without blaming the peer
    /// that forwarded it, whose held set may differ.
    fn take_proposal(
        &mut self,
        signed: SignedVersion,
        from_operator: bool,
    ) -> Result<bool, GovernanceError> {
        let version = signed.version()?;
        let current = self.replica.chain().current();
        if version.federation != current.federation.id()
            || version.number != current.number + 1
            || version.previous != current.hash
        {
            return Ok(false);
        }
        let hash = signed.hash();
        // A new one from a peer that could not be kept whatever its
        // signatures is passed over before any is verified.
        if !from_operator
            && !self.governance.proposals.contains_key(&hash)
            && (self.governance.proposals.len() >= PROPOSALS_MAX || !self.room_for(&signed))
        {
            return Ok(false);
        }
        let added: Vec<AuthorityId> = version
            .roster
            .members
            .iter()
            .map(|m| m.key)
            .chain(version.keys.iter().map(|k| k.key))
            .collect();
        let valid: Vec<_> = signed
            .signatures
            .iter()
            .filter(|s| current.member_of_key(&s.key).is_some() || added.contains(&s.key))
            .filter(|s| {
                PublicKey::from_bytes(&s.key.0).is_ok_and(|k| {
                    k.verify(ROSTER_DOMAIN, &signed.body, &s.signature.0)
                        .is_ok()
                })
            })
            .cloned()
            .collect();
        let incoming = SignedVersion {
            body: signed.body.clone(),
            signatures: valid,
        };
        if let Some(kept) = self.governance.proposals.get_mut(&hash) {
            let before = kept.signatures.len();
            kept.merge(&incoming);
            let added = kept.signatures.len() > before;
            self.governance.unsaved |= added;
            return Ok(added);
        }
        if !from_operator
            && (self.governance.proposals.len() >= PROPOSALS_MAX || !self.room_for(&incoming))
        {
            return Ok(false);
        }
        if self.governance.proposals.len() >= PROPOSALS_MAX {
            return Err(GovernanceError::TooMany {
                what: "roster proposals",
                max: PROPOSALS_MAX,
            });
        }
        self.governance.proposals.insert(hash, incoming);
        self.governance.unsaved = true;
        Ok(true)
    }

    /// Whether one of the current members who signed `proposal` has
    /// signed fewer than [`PROPOSALS_PER_SIGNER_MAX`] of the proposals
    /// held.
    fn room_for(&self, proposal: &SignedVersion) -> bool {
        let current = self.replica.chain().current();
        proposal
            .signatures
            .iter()
            .filter(|s| current.member_of_key(&s.key).is_some())
            .any(|s| self.signed_by(&s.key) < PROPOSALS_PER_SIGNER_MAX)
    }

    /// How many of the proposals held `key` signed.
    fn signed_by(&self, key: &AuthorityId) -> usize {
        self.governance
            .proposals
            .values()
            .filter(|p| p.signatures.iter().any(|s| s.key == *key))
            .count()
    }

    /// Whether this member may add its signature to proposal `hash`
    /// (held or about to be), or why not: beside another proposal it
    /// signed only when told it competes (one more signed beside another
    /// could make two versions of one number), and not past
    /// [`PROPOSALS_PER_SIGNER_MAX`].
    fn may_sign(&self, proposal: &SignedVersion, competing: bool) -> Result<(), GovernanceError> {
        let hash = &proposal.hash();
        // Every proposal held is for the next version.
        let next = self.replica.chain().current().number + 1;
        let own = AuthorityId(self.key.public_bytes());
        // A rotation of this member's own key must cut its log where it
        // stands: a cutoff below the head voids the notices past it, one
        // above leaves seqs the next key may not sign. Once signed, this
        // node issues nothing more until a version is taken
        // ([`Engine::rotation_pending`]), so the head stays there.
        if let Some(change) = proposal
            .version()?
            .keys
            .iter()
            .find(|change| change.member == self.me)
            && !change.compromised
        {
            let head = self.own_head();
            if change.after_seq != head {
                return Err(GovernanceError::Change {
                    number: next,
                    field: "rotate.after_seq".into(),
                    problem: format!(
                        "this proposal rotates this member's key after seq {}, but its log is at seq {head}: {}; propose it again with after_seq = {head} (this node then issues nothing until a version is taken)",
                        change.after_seq,
                        if change.after_seq < head {
                            format!("the notices after seq {} would be void", change.after_seq)
                        } else {
                            "the next key may not sign the seqs before it, and this node stops for the next key as soon as the version is taken".into()
                        }
                    ),
                });
            }
        }
        let other = self
            .governance
            .proposals
            .iter()
            .find(|(h, p)| *h != hash && p.signatures.iter().any(|s| s.key == own))
            .map(|(h, _)| *h);
        if let Some(other) = other
            && !competing
        {
            return Err(GovernanceError::Change {
                number: next,
                field: "proposal".into(),
                problem: format!(
                    "this member already signed proposal {other} for version {next}; if both reach the threshold, both are version {next}: the one with the lower hash is taken, the other's changes are lost, and the members who signed both are named as equivocating. Put the changes in one proposal, or propose this one again once a version is taken; to sign both all the same, sign as competing (`--competing` on the command line, `?competing=true` in the API)"
                ),
            });
        }
        if self.signed_by(&own) >= PROPOSALS_PER_SIGNER_MAX {
            return Err(GovernanceError::Change {
                number: next,
                field: "proposal".into(),
                problem: format!(
                    "this member already signed {PROPOSALS_PER_SIGNER_MAX} of the proposals held for version {next}: the other members keep a proposal from a peer only with the signature of a member who signed fewer, so one more would be lost (let a version be taken first, or have another member sign it first)"
                ),
            });
        }
        Ok(())
    }

    /// The cutoff of the rotation (planned, or a revocation) of this
    /// member's own key that `proposal` makes, if it makes one.
    fn own_rotation(&self, proposal: &SignedVersion) -> Option<u64> {
        let version = proposal.version().ok()?;
        version
            .keys
            .iter()
            .find(|change| change.member == self.me)
            .map(|change| change.after_seq)
    }

    fn rotation_refusal(hash: &RosterHash, after_seq: u64, head: u64) -> String {
        format!(
            "this member signed proposal {hash}, which rotates its key after seq {after_seq} (its log is at seq {head}): a notice past seq {after_seq} under the current key would be void once the version is taken. It issues again once a version is taken: this one (the node stops, and starts again under the next key) or another, which drops the proposal"
        )
    }

    /// Why this node issues nothing now, if it signed a proposal that
    /// rotates its own key (planned, or a revocation) after a seq its log
    /// has reached: a notice
    /// past that seq under the current key would be void once the
    /// version is taken. It issues again once a version is taken (the
    /// rotation, under the next key after a restart; or another, which
    /// drops the proposal).
    pub fn rotation_pending(&self) -> Option<String> {
        let own = AuthorityId(self.key.public_bytes());
        let head = self.own_head();
        self.governance.proposals.iter().find_map(|(hash, p)| {
            if !p.signatures.iter().any(|s| s.key == own) {
                return None;
            }
            let after_seq = self.own_rotation(p)?;
            (head >= after_seq).then(|| Self::rotation_refusal(hash, after_seq, head))
        })
    }

    /// [`Engine::rotation_pending`] as issuing asks it: the versions of
    /// the proposals this member signed are decoded only when that set
    /// changed.
    pub(super) fn rotation_pending_now(&mut self) -> Option<String> {
        let own = AuthorityId(self.key.public_bytes());
        let signed: Vec<RosterHash> = self
            .governance
            .proposals
            .iter()
            .filter(|(_, p)| p.signatures.iter().any(|s| s.key == own))
            .map(|(hash, _)| *hash)
            .collect();
        if !signed.iter().eq(self.governance.own_signed.keys()) {
            let own_signed = signed
                .iter()
                .map(|hash| {
                    let cutoff = self
                        .governance
                        .proposals
                        .get(hash)
                        .and_then(|p| self.own_rotation(p));
                    (*hash, cutoff)
                })
                .collect();
            self.governance.own_signed = own_signed;
        }
        let (hash, after_seq) = self
            .governance
            .own_signed
            .iter()
            .find_map(|(hash, cutoff)| cutoff.map(|c| (*hash, c)))?;
        let head = self.own_head();
        (head >= after_seq).then(|| Self::rotation_refusal(&hash, after_seq, head))
    }

    /// The proposals held, with their signatures.
    pub fn proposals(&self) -> impl Iterator<Item = &SignedVersion> {
        self.governance.proposals.values()
    }

    fn publish_roster(&mut self, message: WitnessMessage, out: &mut Vec<Output>) {
        // A version or proposal too large for gossip travels by sync (a
        // version) or by file (a proposal) only.
        if let Ok(bytes) = wire::encode(&message) {
            out.push(Output::PublishCheckpoint { bytes });
        }
    }

    /// Carries out an operator's governance command.
    pub(super) fn govern(
        &mut self,
        command: GovernanceCommand,
        out: &mut Vec<Output>,
    ) -> Result<GovernanceAnswer, GovernanceError> {
        let signed = match command {
            GovernanceCommand::Propose(signed) => {
                let version = signed.version()?;
                let current = self.replica.chain().current();
                if version.federation != current.federation.id() {
                    return Err(GovernanceError::WrongFederation {
                        found: version.federation,
                        expected: current.federation.id(),
                    });
                }
                if version.previous != current.hash || version.number != current.number + 1 {
                    return Err(GovernanceError::Number {
                        found: version.number,
                        previous: current.number,
                    });
                }
                let hash = signed.hash();
                let added = self.take_proposal(signed, true)?;
                // `take_proposal` keeps an operator's proposal for the next
                // version, or says why not; should it ever pass one over,
                // the operator hears so rather than the node stopping.
                let Some(kept) = self.governance.proposals.get(&hash).cloned() else {
                    return Err(GovernanceError::Change {
                        number: version.number,
                        field: "proposal".into(),
                        problem: "it is not a proposal this node can keep".into(),
                    });
                };
                // Circulated only when it brought something: the same
                // bytes again would be a duplicate to every peer.
                if added {
                    self.publish_proposal(&kept, out);
                }
                return Ok(self.answer(&kept));
            }
            GovernanceCommand::ProposeSigned { signed, competing } => {
                let hash = signed.hash();
                let signed_here = self.governance.proposals.get(&hash).is_some_and(|p| {
                    p.signatures
                        .iter()
                        .any(|s| s.key.0 == self.key.public_bytes())
                });
                if !signed_here {
                    self.may_sign(&signed, competing)?;
                }
                self.govern(GovernanceCommand::Propose(signed), out)?;
                return self.govern(GovernanceCommand::Sign { hash, competing }, out);
            }
            GovernanceCommand::Sign { hash, competing } => {
                let next = self.replica.chain().current().number + 1;
                let Some(kept) = self.governance.proposals.get(&hash) else {
                    return Err(GovernanceError::Change {
                        number: next,
                        field: "proposal".into(),
                        problem: format!("no proposal {hash} is held here"),
                    });
                };
                let own = AuthorityId(self.key.public_bytes());
                let signed_here = kept.signatures.iter().any(|s| s.key == own);
                if !signed_here {
                    self.may_sign(kept, competing)?;
                }
                let mut kept = kept.clone();
                if !signed_here {
                    kept.sign(&self.key);
                    self.governance.proposals.insert(hash, kept.clone());
                    self.governance.unsaved = true;
                    self.publish_proposal(&kept, out);
                }
                return Ok(self.answer(&kept));
            }
            GovernanceCommand::Submit(hash) => {
                let Some(kept) = self.governance.proposals.get(&hash).cloned() else {
                    return Err(GovernanceError::Change {
                        number: self.replica.chain().current().number + 1,
                        field: "proposal".into(),
                        problem: format!("no proposal {hash} is held here"),
                    });
                };
                // Checked before it is taken, to say why it is not ready.
                verify_next(self.replica.chain().current(), &kept)?;
                kept
            }
            GovernanceCommand::Version(signed) => signed,
        };
        let answer = self.answer(&signed);
        let bytes = signed.to_bytes()?;
        match self.take_version(signed.clone(), "the operator", out) {
            Verdict::Accept => {
                self.publish_roster(WitnessMessage::Roster(bytes.into()), out);
                Ok(GovernanceAnswer {
                    current: self.replica.chain().current().number,
                    ..answer
                })
            }
            _ => match self.replica.chain().knows(&signed.hash()) {
                true => Ok(answer),
                false => Err(verify_next(self.replica.chain().current(), &signed)
                    .err()
                    .unwrap_or(GovernanceError::UnknownPrevious {
                        number: answer.number,
                        previous: signed.version()?.previous,
                    })),
            },
        }
    }

    /// Circulates a proposal, once a current member signed it (the
    /// members keep no other from a peer).
    fn publish_proposal(&mut self, signed: &SignedVersion, out: &mut Vec<Output>) {
        let current = self.replica.chain().current();
        if !signed
            .signatures
            .iter()
            .any(|s| current.member_of_key(&s.key).is_some())
        {
            return;
        }
        if let Ok(bytes) = signed.to_bytes() {
            self.publish_roster(WitnessMessage::Proposal(bytes.into()), out);
        }
    }

    fn answer(&self, signed: &SignedVersion) -> GovernanceAnswer {
        GovernanceAnswer {
            hash: signed.hash(),
            number: signed.version().map_or(0, |v| v.number),
            signatures: signed.signatures.len(),
            current: self.replica.chain().current().number,
            signed: signed.clone(),
        }
    }
}

//! The issuing gate: whether this node may sign its next notice.
//!
//! An honest authority must never sign two notices at one seq. The node
//! keeps its own log's high-water mark ([`Mark`]) durable beside its key,
//! written before anything it signs is acknowledged or published. At
//! start the gate compares the store's own head with the mark:
//!
//! - the store holds the mark's notice: [`Readiness::Ready`];
//! - it holds less: [`Readiness::Restoring`] until sync (or the notice the
//!   mark carries) brings the own log back up to the mark, with no timer
//!   that gives up;
//! - no mark at all (a new machine): [`Readiness::Recovering`] until a
//!   majority of the other members have shown their heads for this log,
//!   and the store holds the highest they showed;
//! - a different notice at the mark's seq, or fork evidence of the own
//!   log: [`Readiness::Forked`], for good: repairing it is a governance
//!   act, not something a node decides;
//! - the mark or the store could not be made durable:
//!   [`Readiness::Halted`].

use crate::model::{AuthorityId, NoticeId};
use credence_crypto::Digest;
use std::collections::BTreeMap;

/// The own log's high-water mark: the newest notice this authority signed
/// and made durable, with its envelope so that a store that lost only that
/// notice gets it back without a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Seq of the newest own notice (0: nothing signed yet).
    pub seq: u64,
    /// Its id (zeros at seq 0).
    pub id: NoticeId,
    /// The Merkle root of the own log up to it, when known (an operator's
    /// recovery mark names only seq and id).
    pub root: Option<Digest>,
    /// Its envelope, when known.
    pub envelope: Option<Vec<u8>>,
}

impl Mark {
    /// The mark of an authority that has signed nothing.
    pub fn zero() -> Mark {
        Mark {
            seq: 0,
            id: NoticeId::default(),
            root: None,
            envelope: None,
        }
    }
}

/// Whether the node issues, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// It issues.
    Ready,
    /// The store lost part of the own log: it waits for peers to bring it
    /// back up to the mark.
    Restoring {
        /// Seq of the own log held.
        held: u64,
        /// Seq of the mark.
        mark: u64,
    },
    /// No mark (a new machine): it waits for a majority of the other
    /// members to show their heads of the own log.
    Recovering {
        /// Members that have shown their head of the own log.
        reported: usize,
        /// Members needed.
        needed: usize,
        /// The highest seq shown.
        highest: u64,
        /// Seq of the own log held.
        held: u64,
    },
    /// The own log is forked: another copy of the key signed elsewhere.
    Forked {
        /// The seq signed twice.
        seq: u64,
    },
    /// The mark or the store could not be made durable.
    Halted {
        /// What failed.
        reason: String,
    },
}

impl Readiness {
    /// A stable name, for status and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Restoring { .. } => "restoring",
            Readiness::Recovering { .. } => "recovering",
            Readiness::Forked { .. } => "forked",
            Readiness::Halted { .. } => "halted",
        }
    }

    /// What it means and what the operator can do.
    pub fn explain(&self) -> String {
        match self {
            Readiness::Ready => "this node issues".into(),
            Readiness::Restoring { held, mark } => format!(
                "this node signed up to seq {mark} of its own log but its store holds only {held}; \
                 it restores the rest from its peers and issues again once it has it \
                 (start the peers, or name the head with `credence recover` if they lost it too)"
            ),
            Readiness::Recovering {
                reported,
                needed,
                highest,
                held,
            } => format!(
                "this node has no record of what it signed (no own-log mark): it waits until \
                 {needed} other members have shown their head of its log ({reported} so far, \
                 highest seq {highest}, held {held}); `credence recover` names the head explicitly"
            ),
            Readiness::Forked { seq } => format!(
                "the own log of this authority is forked at seq {seq}: a copy of its key signed \
                 elsewhere. Issuing is stopped; rotate the key with a cutoff (a roster change) \
                 before this authority signs again"
            ),
            Readiness::Halted { reason } => format!(
                "this node could not make its own notices durable ({reason}); issuing is \
                 stopped until it is restarted on working storage"
            ),
        }
    }
}

/// The gate's state.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) readiness: Readiness,
    /// With a mark: the mark. Without: `None` until recovered.
    pub(crate) mark: Option<Mark>,
    /// While recovering: each other member's head of the own log.
    reports: BTreeMap<AuthorityId, u64>,
    needed: usize,
}

impl Gate {
    /// The gate of a node whose durable mark is `mark` (`None`: lost), in
    /// a federation with `others` other members. Call [`Gate::assess`]
    /// before asking it anything.
    pub(crate) fn new(mark: Option<Mark>, others: usize) -> Gate {
        Gate {
            readiness: Readiness::Restoring { held: 0, mark: 0 },
            mark,
            reports: BTreeMap::new(),
            // A majority of the others; a lone member has none to ask.
            needed: if others == 0 { 0 } else { others / 2 + 1 },
        }
    }

    /// A peer showed `seq` as its head of the own log.
    pub(crate) fn report(&mut self, peer: AuthorityId, seq: u64) {
        if self.mark.is_none() {
            let entry = self.reports.entry(peer).or_default();
            *entry = (*entry).max(seq);
        }
    }

    /// Re-decides from the store's own head (`held`, with `held_at_mark`
    /// the id the store has at the mark's seq) and whether the store holds
    /// evidence of a fork of the own log. Returns the mark to make durable
    /// when a recovery just completed.
    pub(crate) fn assess(
        &mut self,
        held: u64,
        held_at_mark: impl FnOnce(u64) -> Option<NoticeId>,
        forked_at: Option<u64>,
    ) -> Option<u64> {
        if matches!(
            self.readiness,
            Readiness::Forked { .. } | Readiness::Halted { .. }
        ) {
            return None;
        }
        if let Some(seq) = forked_at {
            self.readiness = Readiness::Forked { seq };
            return None;
        }
        match &self.mark {
            Some(mark) => {
                if held < mark.seq {
                    self.readiness = Readiness::Restoring {
                        held,
                        mark: mark.seq,
                    };
                } else if mark.seq > 0 && held_at_mark(mark.seq) != Some(mark.id) {
                    self.readiness = Readiness::Forked { seq: mark.seq };
                } else {
                    self.readiness = Readiness::Ready;
                }
                None
            }
            None => {
                let highest = self.reports.values().copied().max().unwrap_or(0);
                if self.reports.len() >= self.needed && held >= highest {
                    self.readiness = Readiness::Ready;
                    Some(held)
                } else {
                    self.readiness = Readiness::Recovering {
                        reported: self.reports.len(),
                        needed: self.needed,
                        highest,
                        held,
                    };
                    None
                }
            }
        }
    }

    /// The own log is forked at `seq`.
    pub(crate) fn forked(&mut self, seq: u64) {
        if !matches!(self.readiness, Readiness::Halted { .. }) {
            self.readiness = Readiness::Forked { seq };
        }
    }

    /// A roster version cut the own log back (it gave the seqs past its
    /// cutoff to a new key): the mark goes down to `mark`, the head kept,
    /// and a fork the cut answered no longer stops issuing (the next
    /// assessment finds any fork that still stands).
    pub(crate) fn cut(&mut self, mark: Mark) {
        self.mark = Some(mark);
        self.reports.clear();
        if matches!(self.readiness, Readiness::Forked { .. }) {
            self.readiness = Readiness::Ready;
        }
    }

    /// Durability failed.
    pub(crate) fn halt(&mut self, reason: String) {
        self.readiness = Readiness::Halted { reason };
    }

    /// A new own notice was made durable with this mark.
    pub(crate) fn advance(&mut self, mark: Mark) {
        if self.mark.as_ref().is_none_or(|m| m.seq <= mark.seq) {
            self.mark = Some(mark);
        }
        self.reports.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64, id: u8) -> Mark {
        Mark {
            seq,
            id: NoticeId([id; 32]),
            root: None,
            envelope: None,
        }
    }

    #[test]
    fn a_store_below_its_mark_restores_and_never_times_out() {
        let mut gate = Gate::new(Some(mark(5, 1)), 2);
        for held in 0..5 {
            gate.assess(held, |_| None, None);
            assert_eq!(gate.readiness, Readiness::Restoring { held, mark: 5 });
        }
        gate.assess(5, |_| Some(NoticeId([1; 32])), None);
        assert_eq!(gate.readiness, Readiness::Ready);
    }

    #[test]
    fn another_notice_at_the_mark_is_a_fork() {
        let mut gate = Gate::new(Some(mark(3, 1)), 2);
        gate.assess(4, |_| Some(NoticeId([2; 32])), None);
        assert_eq!(gate.readiness, Readiness::Forked { seq: 3 });
        // Nothing brings it back.
        gate.assess(4, |_| Some(NoticeId([1; 32])), None);
        assert_eq!(gate.readiness, Readiness::Forked { seq: 3 });
    }

    #[test]
    fn without_a_mark_a_majority_of_the_others_must_report() {
        // Four other members: three must report.
        let mut gate = Gate::new(None, 4);
        gate.report(AuthorityId([1; 32]), 7);
        gate.report(AuthorityId([2; 32]), 0);
        assert_eq!(gate.assess(7, |_| None, None), None);
        assert!(matches!(
            gate.readiness,
            Readiness::Recovering {
                reported: 2,
                needed: 3,
                highest: 7,
                held: 7
            }
        ));
        // The same peer twice counts once.
        gate.report(AuthorityId([1; 32]), 7);
        assert_eq!(gate.assess(7, |_| None, None), None);
        gate.report(AuthorityId([3; 32]), 9);
        // Held is below what a peer showed: still waiting.
        assert_eq!(gate.assess(7, |_| None, None), None);
        assert_eq!(gate.assess(9, |_| None, None), Some(9));
        assert_eq!(gate.readiness, Readiness::Ready);
    }

    #[test]
    fn a_lone_member_needs_no_report() {
        let mut gate = Gate::new(None, 0);
        assert_eq!(gate.assess(0, |_| None, None), Some(0));
        assert_eq!(gate.readiness, Readiness::Ready);
    }

    #[test]
    fn fork_evidence_of_the_own_log_stops_issuing() {
        let mut gate = Gate::new(Some(Mark::zero()), 2);
        gate.assess(0, |_| None, Some(4));
        assert_eq!(gate.readiness, Readiness::Forked { seq: 4 });
    }
}

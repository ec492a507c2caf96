//! What a roster version takes away from notices already stored.
//!
//! Two kinds of cutoff reach notices a replica stored before the version
//! arrived (DESIGN.md, "Governance: the roster chain"):
//!
//! - **A key change** (a planned rotation or a revocation after a
//!   compromise) gives the member's seqs past its cutoff to a new key. A
//!   stored notice the old key signed past the cutoff is not the member's:
//!   the member continues its log with the new key from the cutoff on. The
//!   log is cut back ([`Store::truncate_log`]) to just before the first
//!   such notice, so that the new key's notice at that seq takes its place
//!   instead of looking like a fork. The notices cut off stay stored as
//!   orphans, void: notices of other logs may refer to them (an
//!   implementer's feedback on a listing a thief signed), and those must
//!   still resolve everywhere. A replica that lacks an orphan something
//!   waits for takes it, by id, from a peer that holds it
//!   ([`Replica::wanted_references`], [`crate::sync`]).
//! - **Something else taken away** (the member removed, a grant or a
//!   catalog entry withdrawn) leaves the notice in its place, so that the
//!   author's later notices still chain on it, and makes it void
//!   ([`validate::cutoff_void`]).
//!
//! No fold, answer or task counts a void notice ([`Replica::void`]).

use super::{Outcome, Replica, ReplicaError, Result, budget_after};
use crate::fold::FoldInput;
use crate::governance::{KeySpan, Version};
use crate::model::{AuthorityId, NoticeId, NoticeKind, SubjectKey};
use crate::store::{ForkEvidence, Head, Orphan, Store};
use crate::{codec, validate};
use credence_crypto::NOTICE_DOMAIN;
use credence_crypto::merkle::Frontier;
use std::sync::Arc;

/// A log cut back because a roster version changed its author's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The log's author.
    pub author: AuthorityId,
    /// The seq it keeps up to.
    pub kept: u64,
    /// Notices cut off (kept as orphans).
    pub removed: u64,
    /// The current roster version after the change.
    pub version: u64,
}

/// The first seq whose key the chain assigns differently in `after` than
/// in `before`, if any.
fn first_reassigned(before: Option<&Vec<KeySpan>>, after: &[KeySpan]) -> Option<u64> {
    let before = before.map_or(&[][..], |spans| spans.as_slice());
    let longest = before.len().max(after.len());
    (0..longest).find_map(|i| match (before.get(i), after.get(i)) {
        (Some(old), Some(new)) if old == new => None,
        (Some(old), Some(new)) => Some(old.first_seq.min(new.first_seq)),
        (Some(only), None) | (None, Some(only)) => Some(only.first_seq),
        (None, None) => None,
    })
}

impl<S: Store> Replica<S> {
    /// After the chain's current version changed from `before`: cuts back
    /// every log whose stored notices past a key change were signed by a
    /// key the chain no longer assigns to their seq.
    pub(super) fn cut_retired_keys(&mut self, before: &Version) -> Result<Vec<Cut>, S> {
        let current = self.chain.current();
        let version = current.number;
        let changed: Vec<(AuthorityId, u64)> = current
            .keys
            .iter()
            .filter_map(|(author, spans)| {
                Some((*author, first_reassigned(before.keys.get(author), spans)?))
            })
            .collect();
        let mut cuts = Vec::new();
        for (author, from) in changed {
            if let Some(cut) = self.cut_from(author, from, version)? {
                cuts.push(cut);
            }
        }
        Ok(cuts)
    }

    /// Cuts `author`'s log before its first stored notice from seq `from`
    /// on that the chain now refuses.
    fn cut_from(&mut self, author: AuthorityId, from: u64, version: u64) -> Result<Option<Cut>, S> {
        let head = self.store.head(&author).map_err(ReplicaError::Store)?;
        let held = head.as_ref().map_or(0, |h| h.seq);
        let from = from.max(1);
        if held < from {
            return Ok(None);
        }
        let ids = self
            .store
            .log_range(&author, from, usize::MAX)
            .map_err(ReplicaError::Store)?;
        let mut cut_at = None;
        for id in &ids {
            let input = self.stored(id)?;
            if validate::check_signer(&input.notice, &self.chain).is_err() {
                cut_at = Some(input.notice.seq);
                break;
            }
        }
        let Some(cut_at) = cut_at else {
            return Ok(None);
        };
        let kept = self.head_at(&author, cut_at - 1)?;
        self.store
            .truncate_log(&author, kept)
            .map_err(ReplicaError::Store)?;
        Ok(Some(Cut {
            author,
            kept: cut_at - 1,
            removed: held - (cut_at - 1),
            version,
        }))
    }

    /// A stored notice that must be there.
    fn stored(&self, id: &NoticeId) -> Result<FoldInput, S> {
        self.load(id)?.ok_or_else(|| ReplicaError::Corrupt {
            id: *id,
            reason: "in its author's log but not stored".into(),
        })
    }

    /// The head `author`'s log had at `seq` (`None` at 0): its frontier
    /// and notice budget replayed from the stored notices.
    fn head_at(&self, author: &AuthorityId, seq: u64) -> Result<Option<Head>, S> {
        if seq == 0 {
            return Ok(None);
        }
        let ids = self
            .store
            .log_range(author, 1, usize::try_from(seq).unwrap_or(usize::MAX))
            .map_err(ReplicaError::Store)?;
        let mut frontier = Frontier::new();
        let mut head: Option<Head> = None;
        for id in ids {
            let input = self.stored(&id)?;
            frontier.push(id.digest());
            let granted = self.granted(author, head.as_ref(), input.notice.roster);
            let budget = budget_after(head.as_ref(), input.notice.issued_at, granted).unwrap_or(0);
            head = Some(Head {
                author: *author,
                seq: input.notice.seq,
                id,
                issued_at: input.notice.issued_at,
                frontier: Frontier::new(),
                budget,
                roster: input.notice.roster,
            });
        }
        Ok(head.map(|head| Head { frontier, ..head }))
    }

    /// Keeps, as orphans, the envelopes among `envelopes` that pending
    /// notices wait for and that a key the roster retired signed past its
    /// cutoff (their signature verified under that key), then releases
    /// what waited for them.
    pub(super) fn adopt_wanted(
        &mut self,
        envelopes: &[(NoticeId, &[u8])],
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), S> {
        for &(id, bytes) in envelopes {
            if !self.pending.by_reference.contains_key(&id)
                || self.store.contains(&id).map_err(ReplicaError::Store)?
            {
                continue;
            }
            let Ok((body, signature)) = codec::envelope_parts(bytes) else {
                continue;
            };
            let Ok(notice) = codec::decode_notice(body) else {
                continue;
            };
            let Some(key) = validate::retired_signer(&notice, &self.chain) else {
                continue;
            };
            if key.verify(NOTICE_DOMAIN, body, &signature).is_err() {
                continue;
            }
            let (listing, subject) = match &notice.kind {
                NoticeKind::List(listing) => (
                    None,
                    SubjectKey::new(listing.subject.kind, &listing.subject.id),
                ),
                NoticeKind::Rule { objection, .. } => (
                    self.load(objection)?
                        .and_then(|o| o.notice.kind.listing_reference()),
                    None,
                ),
                kind => (kind.listing_reference(), None),
            };
            // Held pending for a predecessor that will not come (the log
            // was cut before it): it leaves the buffer as an orphan.
            if let Some(held) = self.pending.ids.get(&id).copied()
                && let super::Waiting::Predecessor { .. } = held.place
            {
                self.pending.by_slot.remove(&(held.author, held.seq));
                self.pending.forget(&id);
            }
            self.store
                .put_orphan(Orphan {
                    id,
                    envelope: bytes,
                    listing,
                    subject,
                    linked: notice.kind.linked_keys(),
                })
                .map_err(ReplicaError::Store)?;
            outcomes.push(Outcome::Orphaned {
                id,
                author: notice.author,
                seq: notice.seq,
            });
            let notice = Arc::new(notice);
            if self.memo.is_none()
                && matches!(notice.kind, NoticeKind::List(_) | NoticeKind::Object { .. })
            {
                self.listings.insert(FoldInput {
                    id,
                    notice: notice.clone(),
                });
            }
            for waiting in self.pending.by_reference.remove(&id).unwrap_or_default() {
                self.pending.forget(&waiting.id);
                self.admit_and_release(waiting, outcomes)?;
            }
        }
        Ok(())
    }

    /// Offers `envelopes` again, as long as pending notices wait for some
    /// of them and that keeps some as orphans (an import or an audit
    /// replays notices in arrival order, and an orphan arrived before what
    /// refers to it). Returns the outcomes of those passes.
    pub fn offer_wanted(&mut self, envelopes: &[&[u8]]) -> Result<Vec<Outcome>, S> {
        let identified: Vec<(NoticeId, &[u8])> = envelopes
            .iter()
            .map(|bytes| {
                (
                    NoticeId::from(credence_crypto::merkle::leaf_hash(bytes)),
                    *bytes,
                )
            })
            .collect();
        let mut all = Vec::new();
        loop {
            let again: Vec<(NoticeId, &[u8])> = identified
                .iter()
                .filter(|(id, _)| self.pending.by_reference.contains_key(id))
                .copied()
                .collect();
            if again.is_empty() {
                return Ok(all);
            }
            let outcomes = self.ingest_identified(&again)?;
            let progress = outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Orphaned { .. }));
            all.extend(outcomes);
            if !progress {
                return Ok(all);
            }
        }
    }

    /// Whether fork evidence still proves a fork under the current chain:
    /// both notices still take a place in the log. A pair one side of
    /// which a retired key signed past its cutoff proves only that the old
    /// key was misused, which the key change answered.
    pub fn fork_stands(&self, evidence: &ForkEvidence) -> bool {
        [&evidence.first, &evidence.second].iter().all(|bytes| {
            codec::envelope_parts(bytes)
                .ok()
                .and_then(|(body, _)| codec::decode_stored_notice(body).ok())
                .is_some_and(|notice| validate::check_signer(&notice, &self.chain).is_ok())
        })
    }

    /// The fork evidence this replica holds that still stands.
    pub fn standing_forks(&self) -> Result<Vec<ForkEvidence>, S> {
        let forks = self.store.forks().map_err(ReplicaError::Store)?;
        Ok(forks.into_iter().filter(|f| self.fork_stands(f)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_crypto::AuthorityKey;

    fn span(first_seq: u64, seed: u8) -> KeySpan {
        let key = AuthorityKey::from_secret_bytes([seed; 32]);
        KeySpan {
            first_seq,
            key: AuthorityId(key.public_bytes()),
            public: key.public_key(),
            compromised: false,
        }
    }

    #[test]
    fn the_first_reassigned_seq_is_where_spans_first_differ() {
        let one = vec![span(1, 1)];
        let rotated = vec![span(1, 1), span(8, 2)];
        assert_eq!(first_reassigned(Some(&one), &one), None);
        assert_eq!(first_reassigned(Some(&one), &rotated), Some(8));
        assert_eq!(first_reassigned(None, &one), Some(1));
        let other = vec![span(1, 1), span(5, 3)];
        assert_eq!(first_reassigned(Some(&rotated), &other), Some(5));
    }
}

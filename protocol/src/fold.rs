//! The listing state fold and the derived task list.
//!
//! The state of a listing is a pure function of the *set* of valid notices
//! that refer to it and the time at which it is read: inputs are
//! deduplicated by id and put in `(author, seq)` order before anything is
//! decided, so arrival order cannot matter. That makes every replica
//! converge on the same states (a CRDT).

use crate::model::{
    AuthorityId, Classification, FeedbackAction, Listing, Notice, NoticeId, NoticeKind, Remedy,
    RulingOutcome,
};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A valid notice as the fold sees it. The notice is shared: replicas keep
/// listings and objections decoded, and a folded state is rebuilt often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldInput {
    /// Its id.
    pub id: NoticeId,
    /// The notice.
    pub notice: Arc<Notice>,
}

/// The status of a listing at a time, first match wins in this order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Withdrawn by its issuer or by an upheld objection.
    Withdrawn,
    /// Ended early by a credit repair.
    Repaired,
    /// Past its end of sharing.
    Expired,
    /// Not yet effective.
    Pending,
    /// An objection is open: no joint measure may be enforced.
    Suspended,
    /// In force.
    Active,
}

impl Status {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Withdrawn => "withdrawn",
            Status::Repaired => "repaired",
            Status::Expired => "expired",
            Status::Pending => "pending",
            Status::Suspended => "suspended",
            Status::Active => "active",
        }
    }
}

/// An objection to a listing and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectionState {
    /// The objection notice.
    pub id: NoticeId,
    /// Who filed it.
    pub author: AuthorityId,
    /// The issuer must rule by then.
    pub respond_by: Timestamp,
    /// The ruling, if any: its id and whether it upheld the objection.
    pub ruling: Option<(NoticeId, bool)>,
    /// Open and past `respond_by` at the time of the fold.
    pub overdue: bool,
}

/// One notice in a listing's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The notice.
    pub id: NoticeId,
    /// Its author.
    pub author: AuthorityId,
    /// Its seq in the author's log.
    pub seq: u64,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// Its kind name.
    pub kind: &'static str,
    /// The notice.
    pub notice: Arc<Notice>,
}

impl HistoryEntry {
    /// A one-line summary (made when asked: folds that only want a
    /// status do not pay for it).
    pub fn summary(&self) -> String {
        summarise(&self.notice)
    }
}

/// The latest feedback of one implementer on one measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackState {
    /// The implementer.
    pub author: AuthorityId,
    /// The measure.
    pub measure: String,
    /// Its latest action.
    pub action: FeedbackAction,
    /// The feedback notice.
    pub id: NoticeId,
}

/// A listing folded at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingState {
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer.
    pub issuer: AuthorityId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// The effective fields (amendments and upheld corrections applied).
    pub listing: Listing,
    /// Status at the time of the fold.
    pub status: Status,
    /// Joint measures may be enforced.
    pub enforceable: bool,
    /// Shown in the publicity feed.
    pub published: bool,
    /// Answered to queries other than an auditor's.
    pub shared: bool,
    /// Its objections.
    pub objections: Vec<ObjectionState>,
    /// Latest feedback per implementer and measure.
    pub feedback: Vec<FeedbackState>,
    /// Every notice about it, in `(issued_at, author, seq)` order.
    pub history: Vec<HistoryEntry>,
}

impl ListingState {
    /// Objections still open and past their deadline.
    pub fn overdue_objections(&self) -> impl Iterator<Item = &ObjectionState> {
        self.objections.iter().filter(|o| o.overdue)
    }
}

/// Folds a listing and the notices referring to it at time `t`.
///
/// `referring` may hold duplicates and come in any order; notices that do
/// not concern this listing are ignored.
pub fn fold(listing: &FoldInput, referring: &[FoldInput], t: Timestamp) -> ListingState {
    let NoticeKind::List(original) = &listing.notice.kind else {
        unreachable!("fold is only called on List notices; the replica checks the kind")
    };
    let issuer = listing.notice.author;
    let mut notices: BTreeMap<(AuthorityId, u64, NoticeId), &Arc<Notice>> = BTreeMap::new();
    for input in referring {
        notices.insert(
            (input.notice.author, input.notice.seq, input.id),
            &input.notice,
        );
    }
    let objection_ids: Vec<NoticeId> = notices
        .iter()
        .filter(
            |(_, n)| matches!(&n.kind, NoticeKind::Object { listing: l, .. } if *l == listing.id),
        )
        .map(|((_, _, id), _)| *id)
        .collect();

    let mut effective = original.clone();
    let mut withdrawn = false;
    let mut repaired = false;
    let mut rulings: BTreeMap<NoticeId, (NoticeId, bool)> = BTreeMap::new();
    let mut feedback: BTreeMap<(AuthorityId, String), FeedbackState> = BTreeMap::new();
    let mut history = vec![history_entry(listing.id, &listing.notice)];
    for ((author, _, id), notice) in &notices {
        let by_issuer = *author == issuer;
        let concerns_listing = match &notice.kind {
            NoticeKind::List(_) => false,
            NoticeKind::Rule { objection, .. } => objection_ids.contains(objection),
            kind => kind.listing_reference() == Some(listing.id),
        };
        if !concerns_listing {
            continue;
        }
        history.push(history_entry(*id, notice));
        match &notice.kind {
            NoticeKind::Amend { changes, .. } if by_issuer => {
                changes
                    .iter()
                    .for_each(|change| change.apply(&mut effective));
            }
            NoticeKind::Repair { .. } if by_issuer => repaired = true,
            NoticeKind::Withdraw { .. } if by_issuer => withdrawn = true,
            NoticeKind::Rule {
                objection, outcome, ..
            } if by_issuer => {
                if rulings.contains_key(objection) {
                    continue;
                }
                let upheld = matches!(outcome, RulingOutcome::Upheld(_));
                rulings.insert(*objection, (*id, upheld));
                match outcome {
                    RulingOutcome::Upheld(Remedy::Withdraw) => withdrawn = true,
                    RulingOutcome::Upheld(Remedy::Correct(changes)) => {
                        changes
                            .iter()
                            .for_each(|change| change.apply(&mut effective));
                    }
                    RulingOutcome::Rejected => {}
                }
            }
            NoticeKind::Feedback {
                measure, action, ..
            } => {
                // (author, seq) order: the last one seen is the latest.
                feedback.insert(
                    (*author, measure.clone()),
                    FeedbackState {
                        author: *author,
                        measure: measure.clone(),
                        action: action.clone(),
                        id: *id,
                    },
                );
            }
            _ => {}
        }
    }
    let objections: Vec<ObjectionState> = notices
        .iter()
        .filter_map(|((author, _, id), notice)| match &notice.kind {
            NoticeKind::Object {
                listing: l,
                respond_by,
                ..
            } if *l == listing.id => {
                let ruling = rulings.get(id).copied();
                Some(ObjectionState {
                    id: *id,
                    author: *author,
                    respond_by: *respond_by,
                    ruling,
                    overdue: ruling.is_none() && t > *respond_by,
                })
            }
            _ => None,
        })
        .collect();
    let open_objection = objections.iter().any(|o| o.ruling.is_none());
    let status = if withdrawn {
        Status::Withdrawn
    } else if repaired {
        Status::Repaired
    } else if t >= effective.share_until {
        Status::Expired
    } else if t < effective.effective_at {
        Status::Pending
    } else if open_objection {
        Status::Suspended
    } else {
        Status::Active
    };
    let enforceable = status == Status::Active;
    let published = enforceable
        && effective.classification == Classification::Public
        && t < effective.publish_until;
    let shared = !matches!(
        status,
        Status::Withdrawn | Status::Repaired | Status::Expired
    );
    history.sort_by_key(|entry| (entry.issued_at, entry.author, entry.seq));
    ListingState {
        id: listing.id,
        issuer,
        issued_at: listing.notice.issued_at,
        listing: effective,
        status,
        enforceable,
        published,
        shared,
        objections,
        feedback: feedback.into_values().collect(),
        history,
    }
}

fn history_entry(id: NoticeId, notice: &Arc<Notice>) -> HistoryEntry {
    HistoryEntry {
        id,
        author: notice.author,
        seq: notice.seq,
        issued_at: notice.issued_at,
        kind: notice.kind.name(),
        notice: notice.clone(),
    }
}

/// A one-line summary of a notice, for history views.
fn summarise(notice: &Notice) -> String {
    match &notice.kind {
        NoticeKind::List(listing) => format!(
            "{} list, {} ({}), measures: {}",
            listing.list.name(),
            listing.category,
            listing.reason,
            listing.measures.join(", ")
        ),
        NoticeKind::Amend { changes, .. } => format!("{} field(s) corrected", changes.len()),
        NoticeKind::Repair { reason, .. } => format!("credit repaired: {reason}"),
        NoticeKind::Withdraw { reason, .. } => format!("withdrawn: {reason}"),
        NoticeKind::Object {
            grounds,
            respond_by,
            ..
        } => {
            format!("objection (respond by {respond_by}): {grounds}")
        }
        NoticeKind::Rule {
            objection,
            outcome,
            reason,
        } => {
            let outcome = match outcome {
                RulingOutcome::Upheld(Remedy::Withdraw) => "upheld, listing withdrawn",
                RulingOutcome::Upheld(Remedy::Correct(_)) => "upheld, listing corrected",
                RulingOutcome::Rejected => "rejected",
            };
            format!(
                "ruling on objection {}: {outcome}: {reason}",
                objection.short()
            )
        }
        NoticeKind::Feedback {
            measure, action, ..
        } => match action {
            FeedbackAction::Declined(reason) => format!("{measure}: declined: {reason}"),
            other => format!("{measure}: {}", other.name()),
        },
    }
}

/// Apply a measure, or lift it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TaskAction {
    /// The listing is enforceable and the measure is not applied yet.
    Apply,
    /// The listing is no longer enforceable (or no longer names the
    /// measure) and the measure is still applied.
    Lift,
}

/// Something an implementing authority has to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Task {
    /// The listing.
    pub listing: NoticeId,
    /// The measure.
    pub measure: String,
    /// Apply or lift.
    pub action: TaskAction,
}

/// The tasks of `authority` (which implements `implements`) for one
/// listing: derived from state, never stored.
///
/// A declined recommended measure closes its apply task (validation
/// refuses declining a mandatory one).
pub fn tasks(state: &ListingState, authority: &AuthorityId, implements: &[String]) -> Vec<Task> {
    let latest = |measure: &str| {
        state
            .feedback
            .iter()
            .find(|f| f.author == *authority && f.measure == measure)
            .map(|f| &f.action)
    };
    let mut out = Vec::new();
    if state.enforceable {
        for measure in state
            .listing
            .measures
            .iter()
            .filter(|m| implements.contains(m))
        {
            let done = matches!(
                latest(measure),
                Some(FeedbackAction::Applied | FeedbackAction::Declined(_))
            );
            if !done {
                out.push(Task {
                    listing: state.id,
                    measure: measure.clone(),
                    action: TaskAction::Apply,
                });
            }
        }
    }
    for applied in state
        .feedback
        .iter()
        .filter(|f| f.author == *authority && f.action == FeedbackAction::Applied)
    {
        let still_required = state.enforceable && state.listing.measures.contains(&applied.measure);
        if !still_required {
            out.push(Task {
                listing: state.id,
                measure: applied.measure.clone(),
                action: TaskAction::Lift,
            });
        }
    }
    out.sort();
    out
}

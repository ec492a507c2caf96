//! What a department system watches: the state of each listing as a node
//! sees it for its member ([`Summary`]), the changes between two states,
//! and when a listing's state next changes by time alone
//! ([`next_transition`]: publication ends, sharing ends, repair becomes
//! possible, a response falls overdue, the listing takes effect).
//!
//! A node keeps the last summary of every listing and appends a change
//! whenever a new notice or the clock makes the summary differ: the
//! change feed is the sequence of those changes. Because a change is
//! appended only when the summary differs from the one kept, deriving it
//! again (a notice received twice, a store recovered after a crash) never
//! repeats it.

use crate::access::Clearance;
use crate::fold::{ListingState, Status, Task, TaskAction, tasks};
use crate::model::{AuthorityId, Classification, NoticeId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Most tasks one summary holds (a listing triggers at most
/// [`crate::model::MEASURES_PER_LISTING_MAX`] measures; an implementer
/// has one task per measure).
pub const SUMMARY_TASKS_MAX: usize = 2 * crate::model::MEASURES_PER_LISTING_MAX;

/// A listing's state as one member's node sees it: what a department
/// system acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Its status.
    pub status: Status,
    /// Joint measures may be enforced.
    pub enforceable: bool,
    /// Shown to the public.
    pub published: bool,
    /// Shared among members.
    pub shared: bool,
    /// A credit repair is possible (its earliest date has come).
    pub repairable: bool,
    /// Objections open.
    pub objections_open: u16,
    /// Objections open and past the issuer's deadline.
    pub objections_overdue: u16,
    /// This member's tasks for it: measure and apply or lift (empty where
    /// its distribution level does not reach the member).
    pub tasks: Vec<(String, TaskAction)>,
    /// Its distribution level.
    pub level: Classification,
    /// The level reaches the member ([`crate::access::level_reaches`]).
    pub reaches: bool,
}

impl Summary {
    /// The summary of `state` (folded at `t`) for `member`, which
    /// implements `implements`.
    pub fn of(
        state: &ListingState,
        t: Timestamp,
        member: &AuthorityId,
        implements: &[String],
    ) -> Summary {
        let open = state.objections.iter().filter(|o| o.ruling.is_none());
        let reaches = crate::access::level_reaches(state, member);
        let tasks = if reaches {
            tasks(state, member, implements)
                .into_iter()
                .map(|task| (task.measure, task.action))
                .take(SUMMARY_TASKS_MAX)
                .collect()
        } else {
            Vec::new()
        };
        Summary {
            status: state.status,
            enforceable: state.enforceable,
            published: state.published,
            shared: state.shared,
            repairable: state.listing.repair_from <= t
                && matches!(state.status, Status::Active | Status::Suspended),
            objections_open: u16::try_from(open.count()).unwrap_or(u16::MAX),
            objections_overdue: u16::try_from(state.overdue_objections().count())
                .unwrap_or(u16::MAX),
            tasks,
            level: state.listing.classification,
            reaches,
        }
    }

    /// Whether an account of the member's node at `clearance` is told of
    /// the change to this state: an auditor always; anyone else where the
    /// level reaches the member, and an auditors-only listing to its
    /// issuer's operators alone. Unlike a read of the listing, the end of
    /// its sharing is told too (it carries no personal data: departments
    /// stop enforcing on it).
    pub fn told_to(&self, clearance: Clearance) -> bool {
        clearance == Clearance::Auditor
            || (self.reaches
                && (self.level != Classification::Auditors || clearance == Clearance::Operator))
    }
}

/// Why a change was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// A notice about the listing was received or signed.
    Notice,
    /// Time passed one of its dates.
    Time,
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Its position in this node's feed (from 1, no gaps).
    pub seq: u64,
    /// When it was recorded.
    pub at: Timestamp,
    /// The listing.
    pub listing: NoticeId,
    /// Why.
    pub cause: Cause,
    /// The state before (none: the listing is new here).
    pub before: Option<Summary>,
    /// The state now.
    pub after: Summary,
}

/// The next time after `t` at which `state`'s summary may change by time
/// alone: it takes effect, its publication or sharing ends, a repair
/// becomes possible, an open objection's deadline passes. A withdrawn or
/// repaired listing has ended for good, but an objection to it that was
/// never ruled on still falls overdue at its deadline (DESIGN: overdue is
/// an open objection past `respond_by`, whatever became of the listing).
/// `None` when no date lies ahead.
pub fn next_transition(state: &ListingState, t: Timestamp) -> Option<Timestamp> {
    let ended = matches!(state.status, Status::Withdrawn | Status::Repaired);
    let listing = &state.listing;
    let deadlines = state
        .objections
        .iter()
        .filter(|o| o.ruling.is_none())
        // Overdue from the millisecond after the deadline.
        .map(|o| o.respond_by.plus_ms(1));
    let dates = [
        listing.effective_at,
        listing.publish_until,
        listing.share_until,
        listing.repair_from,
    ];
    dates
        .into_iter()
        .filter(|_| !ended)
        .chain(deadlines)
        .filter(|at| *at > t)
        .min()
}

/// What a node keeps of each listing so that its reads need not fold every
/// listing (its materialized view): the listing's [`Summary`] for the
/// node's member, the next time it may change by time alone, and, while
/// the public feed shows it, its issue time (the feed's order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The summary.
    pub summary: Summary,
    /// When it may next change by time alone ([`next_transition`], and the
    /// end of a shown correction's publication).
    pub next: Option<Timestamp>,
    /// The listing's issue time while [`crate::public::shown`] shows it.
    pub shown: Option<Timestamp>,
    /// While the member has tasks for the listing: its subject (as
    /// amended) and issuer, so that a page of tasks is read from what is
    /// kept, without folding ([`Kept::task_rows`]).
    pub tasked: Option<Tasked>,
}

/// What a page of tasks shows of a listing besides the tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tasked {
    /// The subject's identifier.
    pub subject: String,
    /// The subject's name.
    pub subject_name: String,
    /// The listing's issuer.
    pub issuer: AuthorityId,
}

/// One task of a member, with what it acts on: a row of its page of tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// The task (its listing, measure and action).
    pub task: Task,
    /// The listing's subject and issuer.
    pub tasked: Tasked,
    /// The listing's status.
    pub status: Status,
}

impl TaskRow {
    /// The row of `task`, a task of the listing folded as `state`.
    pub fn of(task: Task, state: &ListingState) -> TaskRow {
        TaskRow {
            task,
            tasked: Tasked::of(state),
            status: state.status,
        }
    }
}

impl Tasked {
    /// What a page of tasks shows of the listing folded as `state`.
    pub fn of(state: &ListingState) -> Tasked {
        Tasked {
            subject: state.listing.subject.id.clone(),
            subject_name: state.listing.subject.name.clone(),
            issuer: state.issuer,
        }
    }
}

impl Kept {
    /// What is kept of `state` at `t` for `member`, which implements
    /// `implements`.
    pub fn of(
        state: &ListingState,
        t: Timestamp,
        member: &AuthorityId,
        implements: &[String],
    ) -> Kept {
        let shown = crate::public::shown(state, t).map(|_| state.issued_at);
        // A correction is shown until the end of the listing's publication
        // period, although nothing else of a withdrawn listing changes.
        let correction_ends = (shown.is_some() && state.listing.publish_until > t)
            .then_some(state.listing.publish_until);
        let next = [next_transition(state, t), correction_ends]
            .into_iter()
            .flatten()
            .min();
        let summary = Summary::of(state, t, member, implements);
        let tasked = (!summary.tasks.is_empty()).then(|| Tasked::of(state));
        Kept {
            summary,
            next,
            shown,
            tasked,
        }
    }

    /// Whether this member has tasks for the listing.
    pub fn has_tasks(&self) -> bool {
        !self.summary.tasks.is_empty()
    }

    /// The member's tasks for `listing`, kept as this, in the order
    /// [`crate::fold::tasks`] gives them: the same rows as folding the
    /// listing at the time it was kept for.
    pub fn task_rows(&self, listing: NoticeId) -> Vec<TaskRow> {
        let Some(tasked) = &self.tasked else {
            return Vec::new();
        };
        self.summary
            .tasks
            .iter()
            .map(|(measure, action)| TaskRow {
                task: Task {
                    listing,
                    measure: measure.clone(),
                    action: *action,
                },
                tasked: tasked.clone(),
                status: self.summary.status,
            })
            .collect()
    }
}

/// What looking at a listing again asks to be written, given what was
/// kept (`before`) and what is derived now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Nothing differs.
    Same,
    /// The summary is the same; the next transition or the feed entry
    /// differs (write what is kept, no change).
    Quiet,
    /// The summary differs: a change is recorded with it.
    Changed,
}

/// Compares what was kept of a listing with what is derived now: a change
/// is recorded exactly when the summary differs (a listing seen for the
/// first time is a change from nothing).
pub fn refresh(before: Option<&Kept>, now: &Kept) -> Refresh {
    match before {
        Some(kept) if kept.summary != now.summary => Refresh::Changed,
        None => Refresh::Changed,
        Some(kept) if kept == now => Refresh::Same,
        Some(_) => Refresh::Quiet,
    }
}

/// Counts over every kept listing, kept beside them: what the metrics
/// report without folding the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Listings kept.
    pub listings: u64,
    /// Listings by status, in the order of [`STATUSES`].
    pub by_status: [u64; 6],
    /// Listings the public feed shows.
    pub shown: u64,
    /// Listings with tasks for this member.
    pub with_tasks: u64,
    /// Objections open, over every listing.
    pub objections_open: u64,
    /// Objections open past their deadline, over every listing.
    pub objections_overdue: u64,
}

/// The statuses in the order [`Counts::by_status`] counts them.
pub const STATUSES: [Status; 6] = [
    Status::Pending,
    Status::Active,
    Status::Suspended,
    Status::Expired,
    Status::Repaired,
    Status::Withdrawn,
];

impl Counts {
    /// Counts `kept` in (`add`) or out (`!add`). Counting out what was
    /// never counted in saturates at zero rather than wrapping.
    pub fn count(&mut self, kept: &Kept, add: bool) {
        let step = |n: &mut u64, by: u64| {
            *n = if add {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        step(&mut self.listings, 1);
        if let Some(i) = STATUSES.iter().position(|s| *s == kept.summary.status) {
            step(&mut self.by_status[i], 1);
        }
        step(&mut self.shown, u64::from(kept.shown.is_some()));
        step(&mut self.with_tasks, u64::from(kept.has_tasks()));
        step(
            &mut self.objections_open,
            u64::from(kept.summary.objections_open),
        );
        step(
            &mut self.objections_overdue,
            u64::from(kept.summary.objections_overdue),
        );
    }

    /// The counts after `before` is replaced by `now`.
    pub fn replaced(mut self, before: Option<&Kept>, now: &Kept) -> Counts {
        if let Some(before) = before {
            self.count(before, false);
        }
        self.count(now, true);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::{FoldInput, fold};
    use crate::model::{Notice, NoticeKind};
    use crate::testkit;
    use crate::time::DAY_MS;

    fn input(
        test: &testkit::TestFederation,
        author: usize,
        issued_at: Timestamp,
        kind: NoticeKind,
    ) -> FoldInput {
        let notice = Notice {
            version: crate::model::NOTICE_VERSION,
            federation: test.federation.id(),
            roster: 0,
            author: test.author(author),
            seq: 1,
            prev: NoticeId::default(),
            issued_at,
            kind,
        };
        let id = NoticeId([author as u8 + 1; 32]);
        FoldInput {
            id,
            notice: std::sync::Arc::new(notice),
        }
    }

    #[test]
    fn a_change_is_told_as_far_as_the_level_reaches() {
        let summary = |level, reaches| Summary {
            status: Status::Active,
            enforceable: true,
            published: false,
            shared: true,
            repairable: false,
            objections_open: 0,
            objections_overdue: 0,
            tasks: Vec::new(),
            level,
            reaches,
        };
        let told = |s: &Summary| {
            [Clearance::Reader, Clearance::Operator, Clearance::Auditor].map(|c| s.told_to(c))
        };
        assert_eq!(told(&summary(Classification::Restricted, true)), [true; 3]);
        assert_eq!(
            told(&summary(Classification::Named, false)),
            [false, false, true]
        );
        assert_eq!(told(&summary(Classification::Named, true)), [true; 3]);
        assert_eq!(
            told(&summary(Classification::Auditors, true)),
            [false, true, true]
        );
        assert_eq!(
            told(&summary(Classification::Auditors, false)),
            [false, false, true]
        );
    }

    /// The summary changes only at the dates `next_transition` names
    /// (between two of them it stays), and every change of the listing's
    /// life is met.
    #[test]
    fn the_summary_changes_only_at_the_transitions() {
        let test = testkit::federation(3, 2);
        let start = Timestamp(1_767_225_600_000);
        let mut listing = testkit::listing(1, "food-drug", start);
        listing.effective_at = start.plus_ms(DAY_MS);
        listing.repair_from = start.plus_ms(10 * DAY_MS);
        listing.publish_until = start.plus_ms(20 * DAY_MS);
        listing.share_until = start.plus_ms(30 * DAY_MS);
        let issuer = test.author(0);
        let listed = input(&test, 0, start, NoticeKind::List(listing));
        let objection = input(
            &test,
            1,
            start.plus_ms(2 * DAY_MS),
            NoticeKind::Object {
                listing: listed.id,
                grounds: "the batch was recalled before sale".into(),
                respond_by: start.plus_ms(17 * DAY_MS),
            },
        );
        let implements: Vec<String> = Vec::new();
        // The summaries a listing goes through from `start` on, each date
        // `next_transition` names visited.
        let life = |referring: &[FoldInput]| {
            let at = |t: Timestamp| {
                let state = fold(&listed, referring, t);
                (
                    Summary::of(&state, t, &issuer, &implements),
                    next_transition(&state, t),
                )
            };
            let mut t = start;
            let mut seen: Vec<Summary> = Vec::new();
            loop {
                let (summary, next) = at(t);
                if seen.last() != Some(&summary) {
                    seen.push(summary.clone());
                }
                let Some(next) = next else {
                    // No date ahead: the summary stays as it is for good.
                    let far = t.plus_ms(100 * 365 * DAY_MS);
                    assert_eq!(at(far).0, summary, "after the last transition");
                    break;
                };
                // Just before the next transition, nothing has changed yet.
                assert_eq!(at(Timestamp(next.0 - 1)).0, summary, "before {next:?}");
                t = next;
            }
            seen
        };
        let statuses = |seen: &[Summary]| seen.iter().map(|s| s.status).collect::<Vec<_>>();
        // Unopposed: pending; active and published; repairable;
        // publication ended; expired.
        let seen = life(&[]);
        assert_eq!(
            statuses(&seen),
            [
                Status::Pending,
                Status::Active,
                Status::Active,
                Status::Active,
                Status::Expired
            ],
            "{seen:#?}"
        );
        assert!(seen[1].published && !seen[1].repairable);
        assert!(seen[2].published && seen[2].repairable);
        assert!(!seen[3].published && seen[3].shared);
        assert!(!seen[4].shared);
        // Objected: suspended from the start; repairable; the response
        // overdue; expired.
        let seen = life(std::slice::from_ref(&objection));
        assert_eq!(
            statuses(&seen),
            [
                Status::Pending,
                Status::Suspended,
                Status::Suspended,
                Status::Suspended,
                Status::Expired
            ],
            "{seen:#?}"
        );
        assert!(!seen[1].repairable && seen[2].repairable);
        assert_eq!(
            (seen[2].objections_overdue, seen[3].objections_overdue),
            (0, 1)
        );
        assert_eq!(seen[3].objections_open, 1);
        // Withdrawn or repaired while the objection is open (either counts
        // whenever it came): the listing has ended for good, but the
        // objection, never ruled on, still falls overdue at its deadline.
        let withdrawal = NoticeKind::Withdraw {
            listing: listed.id,
            reason: "issued in error".into(),
            restore_reputation: true,
        };
        let repair = NoticeKind::Repair {
            listing: listed.id,
            reason: "rectified and fined".into(),
            evidence: Vec::new(),
        };
        for (ending, status) in [(withdrawal, Status::Withdrawn), (repair, Status::Repaired)] {
            let ended = input(&test, 0, start.plus_ms(5 * DAY_MS), ending);
            let seen = life(&[objection.clone(), ended]);
            assert_eq!(statuses(&seen), [status, status], "{seen:#?}");
            assert_eq!(
                (seen[0].objections_overdue, seen[1].objections_overdue),
                (0, 1)
            );
            assert!(!seen[1].shared && !seen[1].enforceable);
        }
    }
}

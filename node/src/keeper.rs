//! Keeping the materialized views and the change feed
//! ([`credence_protocol::changes`]): what is kept of each listing is
//! derived again whenever a notice about it is accepted or one of its
//! dates passes; a change is recorded where its summary differs. Reads
//! then cost what their answer holds (the listings with tasks, a page of
//! the feed, the counts) instead of a fold of every listing.
//!
//! The views follow the logs: per author, the seq up to which they reflect
//! its log is kept beside them (the watermark). On opening, the listings
//! of notices past the watermarks (stored while the node was stopped, or
//! accepted but not yet looked at when it crashed) are looked at again; a
//! watermark past its log (a log cut back), a store whose views are of
//! another version, a new roster version (what this member implements
//! and which listings reach it may change) or `credence check --repair`
//! start a sweep that derives every listing again. Until the sweep is
//! done, reads fold as before.
//!
//! The daemon and `credence check` both keep the views through a
//! [`Keeper`]; the daemon hands it to one step at a time, each on a thread
//! of its own over a snapshot of the store (`daemon::changes`).

use crate::store::{Keeping, SledStore, StoreError, ViewIndex, ViewsStore};
use credence_protocol::changes::{Cause, Change, Counts, Kept, Refresh, refresh};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::replica::Replica;
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use std::collections::BTreeSet;

/// Subject-index entries one sweep step looks at.
pub const SWEEP_STEP: usize = 1_024;
/// Notices past the views' watermarks that [`Keeper::behind`] still walks
/// one by one; past that, a sweep derives every listing again instead.
pub const BEHIND_WALK_MAX: u64 = 65_536;

/// Why the views could not be kept.
#[derive(Debug, thiserror::Error)]
#[error("views: {0}")]
pub struct KeepError(String);

impl From<StoreError> for KeepError {
    fn from(e: StoreError) -> KeepError {
        KeepError(e.to_string())
    }
}

impl KeepError {
    /// Any other error, said in its words.
    pub fn of(e: impl std::fmt::Display) -> KeepError {
        KeepError(e.to_string())
    }
}

/// Keeps the views of one node's store for its member.
pub struct Keeper {
    member: AuthorityId,
    implements: Vec<String>,
    /// The seq the next change takes.
    next: u64,
    /// While a batch is open ([`Keeper::begin`]): what it keeps, and the
    /// seq the next change took when it opened.
    open: Option<(Keeping, u64)>,
}

impl Keeper {
    /// The keeper of `replica`'s views for `member`, which implements
    /// `implements`. Views of another version are cleared (and a sweep
    /// started) here.
    pub fn open<S: ViewsStore>(
        replica: &Replica<S>,
        member: AuthorityId,
        implements: Vec<String>,
    ) -> Result<Keeper, KeepError> {
        let store = replica.store();
        if store.views().views_version()? != Some(crate::store::VIEWS_VERSION) {
            tracing::info!("deriving the views again (kept before, or of another version)");
            store.clear_views()?;
        }
        Ok(Keeper {
            member,
            implements,
            next: store.views().last_change()? + 1,
            open: None,
        })
    }

    /// Opens a batch: what [`Keeper::refresh`] keeps from now on is
    /// written together by [`Keeper::commit`] (or dropped by
    /// [`Keeper::abandon`]).
    pub fn begin(&mut self) {
        if self.open.is_none() {
            self.open = Some((Keeping::default(), self.next));
        }
    }

    /// Writes the open batch, if any, as one, and closes it.
    pub fn commit<S: ViewsStore>(&mut self, replica: &Replica<S>) -> Result<(), KeepError> {
        let Some((keeping, first)) = self.open.take() else {
            return Ok(());
        };
        if let Err(e) = replica.store().views().keep_all(keeping) {
            // Nothing of it was recorded: its changes' seqs are free again.
            self.next = first;
            return Err(e.into());
        }
        Ok(())
    }

    /// Drops the open batch, if any (a step that failed half-way): none of
    /// it was written, and its listings are found again behind the
    /// watermarks, which it never moved.
    pub fn abandon(&mut self) {
        if let Some((_, first)) = self.open.take() {
            self.next = first;
        }
    }

    /// A new roster version: what this member implements and which
    /// listings reach it may have changed, so every listing is derived
    /// again (a sweep; a summary that moved is recorded as a change).
    pub fn follow_roster<S: ViewsStore>(
        &mut self,
        replica: &Replica<S>,
        implements: Vec<String>,
    ) -> Result<(), KeepError> {
        self.implements = implements;
        replica.store().views().start_sweep()?;
        Ok(())
    }

    /// The seq the next change takes.
    pub fn next_change(&self) -> u64 {
        self.next
    }

    /// The listings of notices the views do not reflect yet: those past
    /// each author's watermark (written by another path than the one that
    /// tells the keeper, or before a crash). A watermark past its log, or
    /// of a log no longer held, is brought back and starts a sweep. More
    /// than [`BEHIND_WALK_MAX`] notices behind (a store filled without
    /// its views) start a sweep too, instead of a walk that would hold the
    /// caller for seconds: the sweep goes a step a tick, and the
    /// watermarks move to the heads it covers.
    pub fn behind<S: ViewsStore>(&self, replica: &Replica<S>) -> Result<Vec<NoticeId>, KeepError> {
        self.behind_within(replica, BEHIND_WALK_MAX)
    }

    fn behind_within<S: ViewsStore>(
        &self,
        replica: &Replica<S>,
        walk_max: u64,
    ) -> Result<Vec<NoticeId>, KeepError> {
        let store = replica.store();
        let marks = store.views().watermarks()?;
        let heads = store.heads()?;
        let gap = heads.iter().fold(0u64, |gap, head| {
            let mark = marks.get(&head.author).copied().unwrap_or(0);
            gap.saturating_add(head.seq.saturating_sub(mark))
        });
        if gap > walk_max {
            tracing::info!(
                notices = gap,
                "the views are far behind the store: every listing is derived again, a step a tick"
            );
            // The sweep is recorded before the watermarks move past what
            // it covers: a crash between the two sweeps again.
            store.views().start_sweep()?;
            self.settle(replica)?;
            return Ok(Vec::new());
        }
        let mut listings = Vec::new();
        let mut seen = BTreeSet::new();
        let mut back = Vec::new();
        for head in &heads {
            let mark = marks.get(&head.author).copied().unwrap_or(0);
            if mark > head.seq {
                back.push((head.author, head.seq));
                continue;
            }
            for seq in mark + 1..=head.seq {
                let Some(id) = store.log_id(&head.author, seq)? else {
                    continue;
                };
                if let Some(listing) = replica.listing_of(&id).map_err(KeepError::of)?
                    && seen.insert(listing)
                {
                    listings.push(listing);
                }
            }
        }
        for author in marks.keys() {
            if !heads.iter().any(|h| h.author == *author) {
                back.push((*author, 0));
            }
        }
        if !back.is_empty() {
            tracing::warn!(
                logs = back.len(),
                "the views reflect more of a log than is held (it was cut back): every listing is derived again"
            );
            store.views().set_watermarks(&back)?;
            store.views().start_sweep()?;
        }
        Ok(listings)
    }

    /// Records that the views reflect each log as held now.
    pub fn settle<S: ViewsStore>(&self, replica: &Replica<S>) -> Result<(), KeepError> {
        let heads: Vec<(AuthorityId, u64)> = replica
            .store()
            .heads()?
            .into_iter()
            .map(|h| (h.author, h.seq))
            .collect();
        self.reflect(replica, &heads)
    }

    /// Records that the views reflect each log named up to the seq given
    /// (a watermark only moves forward here).
    pub fn reflect<S: ViewsStore>(
        &self,
        replica: &Replica<S>,
        marks: &[(AuthorityId, u64)],
    ) -> Result<(), KeepError> {
        let store = replica.store();
        let kept = store.views().watermarks()?;
        let moved: Vec<(AuthorityId, u64)> = marks
            .iter()
            .filter(|(author, seq)| kept.get(author).is_none_or(|k| k < seq))
            .copied()
            .collect();
        if !moved.is_empty() {
            store.views().set_watermarks(&moved)?;
        }
        Ok(())
    }

    /// Derives what is kept of `listing` at `t` again and records a change
    /// when its summary differs (`cause`). A sweep (`cause` `None`) keeps a
    /// listing it finds without a record quietly: deriving the views again
    /// is not news. Whether a change was recorded.
    pub fn refresh<S: ViewsStore>(
        &mut self,
        replica: &Replica<S>,
        listing: NoticeId,
        cause: Option<Cause>,
        t: Timestamp,
    ) -> Result<bool, KeepError> {
        let Some(state) = replica.listing_state(&listing, t).map_err(KeepError::of)? else {
            return Ok(false);
        };
        let now = Kept::of(&state, t, &self.member, &self.implements);
        let store = replica.store();
        let before = match &self.open {
            Some((keeping, _)) => store.views().kept_after(keeping, &listing)?,
            None => store.views().kept(&listing)?,
        };
        let change = match refresh(before.as_ref(), &now) {
            Refresh::Same => return Ok(false),
            Refresh::Quiet => None,
            Refresh::Changed if before.is_none() && cause.is_none() => None,
            Refresh::Changed => Some(Change {
                seq: self.next,
                at: t,
                listing,
                cause: cause.unwrap_or(Cause::Notice),
                before: before.as_ref().map(|kept| kept.summary.clone()),
                after: now.summary.clone(),
            }),
        };
        match &mut self.open {
            Some((keeping, _)) => store.views().keep_into(
                keeping,
                &listing,
                before.as_ref(),
                &now,
                change.as_ref(),
            )?,
            None => store
                .views()
                .keep(&listing, before.as_ref(), &now, change.as_ref())?,
        }
        if change.is_some() {
            self.next += 1;
        }
        Ok(change.is_some())
    }

    /// One step of the sweep, if one runs: derives the next listings again.
    /// Whether a sweep still runs after it.
    pub fn sweep<S: ViewsStore>(
        &mut self,
        replica: &Replica<S>,
        t: Timestamp,
    ) -> Result<bool, KeepError> {
        let store = replica.store();
        let Some(cursor) = store.views().sweep_cursor()? else {
            return Ok(false);
        };
        let (listings, next) = store.sweep_step(&cursor, SWEEP_STEP)?;
        let mut seen = BTreeSet::new();
        for listing in listings {
            if seen.insert(listing) {
                self.refresh(replica, listing, None, t)?;
            }
        }
        // The step's listings are written before the sweep moves past them.
        let open = self.open.is_some();
        self.commit(replica)?;
        store.views().set_sweep(next.as_deref())?;
        if open {
            self.begin();
        }
        if next.is_none() {
            tracing::info!("the views are derived again");
        }
        Ok(next.is_some())
    }

    /// Whether the views hold every listing (no sweep runs).
    pub fn complete<S: ViewsStore>(&self, replica: &Replica<S>) -> Result<bool, KeepError> {
        Ok(replica.store().views().sweep_cursor()?.is_none())
    }

    /// Brings the views up to date at `t` in one go: the listings behind
    /// the watermarks, a whole sweep if one runs, every transition due.
    /// For `credence check`, with the node stopped.
    pub fn catch_up<S: ViewsStore>(
        &mut self,
        replica: &Replica<S>,
        t: Timestamp,
    ) -> Result<(), KeepError> {
        for listing in self.behind(replica)? {
            self.refresh(replica, listing, Some(Cause::Notice), t)?;
        }
        while self.sweep(replica, t)? {}
        loop {
            let due = replica.store().views().due(t, SWEEP_STEP)?;
            let mut changed = false;
            for listing in &due {
                self.refresh(replica, *listing, Some(Cause::Time), t)?;
                changed = true;
            }
            if !changed {
                break;
            }
        }
        self.settle(replica)
    }
}

/// Compares every view of `replica` with the fold at `t` (the views must
/// be caught up to `t` first): each difference, said in words; none when
/// they agree.
pub fn check(
    replica: &Replica<SledStore>,
    member: &AuthorityId,
    implements: &[String],
    t: Timestamp,
) -> Result<Vec<String>, KeepError> {
    let store = replica.store();
    let mut differences = Vec::new();
    let mut say = |text: String| {
        if differences.len() < CHECK_DIFFERENCES_MAX {
            differences.push(text);
        }
    };
    let mut counts = Counts::default();
    let mut expected: [BTreeSet<(Option<Timestamp>, NoticeId)>; 4] = Default::default();
    let listings: BTreeSet<NoticeId> = store.listings()?.into_iter().collect();
    for listing in &listings {
        let Some(state) = replica.listing_state(listing, t).map_err(KeepError::of)? else {
            continue;
        };
        let derived = Kept::of(&state, t, member, implements);
        counts.count(&derived, true);
        if let Some(at) = derived.next {
            expected[0].insert((Some(at), *listing));
        }
        if derived.has_tasks() {
            expected[1].insert((None, *listing));
        }
        if let Some(at) = derived.shown {
            expected[2].insert((Some(at), *listing));
        }
        if derived.summary.objections_open > 0 {
            expected[3].insert((None, *listing));
        }
        match store.views().kept(listing)? {
            None => say(format!("listing {listing}: not kept")),
            Some(kept) if kept != derived => say(format!(
                "listing {listing}: kept {kept:?}, but the fold gives {derived:?}"
            )),
            Some(_) => {}
        }
    }
    let mut after: Option<NoticeId> = None;
    loop {
        let page = store.views().kept_page(after.as_ref(), SWEEP_STEP)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (id, _) in &page {
            if !listings.contains(id) {
                say(format!("listing {id}: kept, but not held"));
            }
        }
    }
    for (index, (which, name)) in [
        (ViewIndex::Due, "transition index"),
        (ViewIndex::Tasks, "task index"),
        (ViewIndex::Shown, "feed index"),
        (ViewIndex::Objected, "objection index"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut found = BTreeSet::new();
        let mut from: Option<Vec<u8>> = None;
        loop {
            let (entries, next) = store
                .views()
                .index_page(which, from.as_deref(), SWEEP_STEP)?;
            found.extend(entries);
            match next {
                Some(k) => from = Some(k),
                None => break,
            }
        }
        for missing in expected[index].difference(&found) {
            say(format!("{name}: {} at {:?} missing", missing.1, missing.0));
        }
        for extra in found.difference(&expected[index]) {
            say(format!("{name}: {} at {:?} not derived", extra.1, extra.0));
        }
    }
    // What each task index entry carries is what is kept of its listing.
    let mut after: Option<NoticeId> = None;
    loop {
        let page = store.views().task_entries(after.as_ref(), SWEEP_STEP)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (id, carried) in page {
            let Some(carried) = carried else { continue };
            if store.views().kept(&id)?.as_ref() != Some(&carried) {
                say(format!(
                    "task index: listing {id} carries {carried:?}, which is not what is kept of it"
                ));
            }
        }
    }
    let kept = store.views().counts()?;
    if kept != counts {
        say(format!(
            "counts: kept {kept:?}, but the fold gives {counts:?}"
        ));
    }
    Ok(differences)
}

/// Most differences `check` reports (past that, the views are rebuilt, not
/// read).
pub const CHECK_DIFFERENCES_MAX: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;
    use credence_protocol::fold::Status;
    use credence_protocol::model::NoticeKind;
    use credence_protocol::replica::Outcome;
    use credence_protocol::testkit;
    use credence_protocol::time::DAY_MS;
    use proptest::prelude::*;

    const START: Timestamp = Timestamp(1_767_225_600_000);

    fn replica(dir: &std::path::Path, test: &testkit::TestFederation) -> Replica<SledStore> {
        let store = SledStore::open(dir, test.federation.id()).unwrap();
        Replica::new(test.federation.clone(), store)
    }

    /// A workload of 40 notices (seed `seed`) stored in sled, and member
    /// 1 (which implements every measure) with its measures.
    fn stored(
        seed: u64,
    ) -> (
        tempfile::TempDir,
        testkit::Workload,
        Replica<SledStore>,
        AuthorityId,
        Vec<String>,
    ) {
        let test = testkit::federation(7, 3);
        let work = testkit::workload(&test, seed, 40, 6, START);
        let me = test.author(1);
        let implements = test.federation.member(&me).unwrap().implements.clone();
        let dir = tempfile::tempdir().unwrap();
        let mut replica = replica(dir.path(), &test);
        let refs: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
        replica.ingest_batch(&refs).unwrap();
        (dir, work, replica, me, implements)
    }

    /// What the daemon does at a tick: the listings of the notices just
    /// accepted, then the transitions due, in one batch; a step that
    /// fails half-way (`!commit`) abandons its batch and moves no
    /// watermark.
    fn tick(
        keeper: &mut Keeper,
        replica: &Replica<SledStore>,
        accepted: &[(NoticeId, AuthorityId, u64)],
        t: Timestamp,
        commit: bool,
    ) {
        keeper.begin();
        for (id, ..) in accepted {
            let listing = replica.listing_of(id).unwrap().unwrap();
            keeper
                .refresh(replica, listing, Some(Cause::Notice), t)
                .unwrap();
        }
        for listing in replica.store().views().due(t, usize::MAX).unwrap() {
            keeper
                .refresh(replica, listing, Some(Cause::Time), t)
                .unwrap();
        }
        if !commit {
            keeper.abandon();
            return;
        }
        keeper.commit(replica).unwrap();
        let marks: Vec<(AuthorityId, u64)> = accepted.iter().map(|(_, a, s)| (*a, *s)).collect();
        keeper.reflect(replica, &marks).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        // Views kept tick by tick over a random history, for a random
        // member, at random times (crossing every kind of transition),
        // equal the fold; so do they after a "crash" that lost the looks
        // at some notices (found again by the watermarks on reopening)
        // and after the views are cleared and swept again.
        #[test]
        fn views_equal_the_fold_on_random_histories(
            seed in 0u64..1_000,
            count in 20usize..90,
            member in 0usize..3,
            chunk in 1usize..12,
            lost in proptest::collection::vec(any::<bool>(), 12),
            later in 0u64..800,
            page in 1usize..5,
        ) {
            let test = testkit::federation(7, 3);
            let work = testkit::workload(&test, seed, count, 6, START);
            let me = test.author(member);
            let implements = test.federation.member(&me).unwrap().implements.clone();
            let dir = tempfile::tempdir().unwrap();
            let mut replica = replica(dir.path(), &test);
            let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
            // Each chunk arrives half a day after the one before; a lost
            // chunk is stored but never looked at, or looked at in a step
            // that fails half-way.
            let mut t = START;
            for (i, envelopes) in work.envelopes.chunks(chunk).enumerate() {
                t = t.plus_ms(DAY_MS / 2);
                let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
                let accepted: Vec<(NoticeId, AuthorityId, u64)> = replica
                    .ingest_batch(&refs)
                    .unwrap()
                    .into_iter()
                    .filter_map(|o| match o {
                        Outcome::Accepted { id, author, seq } => Some((id, author, seq)),
                        _ => None,
                    })
                    .collect();
                match (lost[i % lost.len()], i % 2 == 0) {
                    (false, _) => tick(&mut keeper, &replica, &accepted, t, true),
                    (true, true) => tick(&mut keeper, &replica, &accepted, t, false),
                    (true, false) => {}
                }
            }
            let t = work.end.max(t).plus_ms(later * DAY_MS / 2);
            // Reopened: what was lost is behind the watermarks.
            replica.store_mut().flush().unwrap();
            drop(keeper);
            let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
            keeper.catch_up(&replica, t).unwrap();
            let differences = check(&replica, &me, &implements, t).unwrap();
            prop_assert!(differences.is_empty(), "{differences:#?}");
            // The task pages read from what is kept, walked `page`
            // listings at a time, are the fold's rows.
            let folded = crate::daemon::tasks_page(
                replica.tasks(&me, t).unwrap(),
                &crate::daemon::TaskAsk { after: None, limit: usize::MAX },
            )
            .0;
            let snapshot = replica.store().snapshot();
            let (mut kept, mut after) = (Vec::new(), None);
            loop {
                let (rows, more) = snapshot.task_page(after.as_ref(), page).unwrap();
                after = rows.last().map(|row| row.task.listing);
                kept.extend(rows);
                if !more {
                    break;
                }
            }
            prop_assert_eq!(kept, folded);
            // A change is recorded for each summary that moved, in order.
            let changes = replica.store().views().changes(0, u64::MAX, usize::MAX).unwrap();
            prop_assert!(changes.iter().enumerate().all(|(i, c)| c.seq == i as u64 + 1));
            // Time goes on with nothing new: ticks a month apart take the
            // transitions as they come due, and the views stay the fold's.
            let mut t = t;
            for _ in 0..6 {
                t = t.plus_ms(30 * DAY_MS);
                tick(&mut keeper, &replica, &[], t, true);
                let differences = check(&replica, &me, &implements, t).unwrap();
                prop_assert!(differences.is_empty(), "{differences:#?}");
            }
            let changes = replica.store().views().changes(0, u64::MAX, usize::MAX).unwrap();
            // Cleared and swept again: the same views, and no change
            // recorded for a listing merely found again.
            replica.store().clear_views().unwrap();
            let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
            keeper.catch_up(&replica, t).unwrap();
            let differences = check(&replica, &me, &implements, t).unwrap();
            prop_assert!(differences.is_empty(), "{differences:#?}");
            prop_assert_eq!(replica.store().views().last_change().unwrap(), changes.len() as u64);
        }
    }

    // A listing withdrawn while an objection to it is open: the objection,
    // never ruled on, falls overdue at its deadline in the views as in the
    // fold (the views once kept no date for a withdrawn listing, and
    // `check` then found them apart), and the change is recorded then,
    // without any read.
    #[test]
    fn an_objection_to_a_withdrawn_listing_falls_overdue_in_the_views() {
        let test = testkit::federation(7, 3);
        let dir = tempfile::tempdir().unwrap();
        let mut replica = replica(dir.path(), &test);
        let me = test.author(1);
        let implements = test.federation.member(&me).unwrap().implements.clone();
        let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
        let listing = testkit::listing(1, "food-drug", START);
        let listed = replica
            .issue(&test.keys[0], NoticeKind::List(listing), START)
            .unwrap();
        let respond_by = START.plus_ms(20 * DAY_MS);
        let objected = replica
            .issue(
                &test.keys[1],
                NoticeKind::Object {
                    listing: listed.id,
                    grounds: "the batch was recalled before sale".into(),
                    respond_by,
                },
                START.plus_ms(DAY_MS),
            )
            .unwrap();
        let withdrawn = replica
            .issue(
                &test.keys[0],
                NoticeKind::Withdraw {
                    listing: listed.id,
                    reason: "issued in error".into(),
                    restore_reputation: true,
                },
                START.plus_ms(2 * DAY_MS),
            )
            .unwrap();
        let accepted = [
            (listed.id, test.author(0), listed.seq),
            (objected.id, test.author(1), objected.seq),
            (withdrawn.id, test.author(0), withdrawn.seq),
        ];
        tick(
            &mut keeper,
            &replica,
            &accepted,
            START.plus_ms(2 * DAY_MS),
            true,
        );
        let overdue = |replica: &Replica<SledStore>| {
            let kept = replica.store().views().kept(&listed.id).unwrap().unwrap();
            (kept.summary.status, kept.summary.objections_overdue)
        };
        assert_eq!(overdue(&replica), (Status::Withdrawn, 0));
        let before = replica.store().views().last_change().unwrap();
        // Past the deadline, a tick with nothing new: the deadline is due.
        let later = respond_by.plus_ms(DAY_MS);
        tick(&mut keeper, &replica, &[], later, true);
        assert_eq!(overdue(&replica), (Status::Withdrawn, 1));
        assert_eq!(replica.store().views().last_change().unwrap(), before + 1);
        assert_eq!(
            replica.store().views().counts().unwrap().objections_overdue,
            1
        );
        assert_eq!(
            check(&replica, &me, &implements, later).unwrap(),
            Vec::<String>::new()
        );
    }

    // A roster version that changes what the member implements derives
    // every listing again: the tasks follow, and the change is recorded.
    #[test]
    fn a_new_roster_derives_the_views_again() {
        let (_dir, work, replica, me, implements) = stored(5);
        let t = work.end;
        let mut keeper = Keeper::open(&replica, me, Vec::new()).unwrap();
        keeper.catch_up(&replica, t).unwrap();
        let few = replica.store().views().counts().unwrap().with_tasks;
        assert!(!check(&replica, &me, &implements, t).unwrap().is_empty());
        let before = replica.store().views().last_change().unwrap();
        keeper.follow_roster(&replica, implements.clone()).unwrap();
        keeper.catch_up(&replica, t).unwrap();
        assert_eq!(
            check(&replica, &me, &implements, t).unwrap(),
            Vec::<String>::new()
        );
        let more = replica.store().views().counts().unwrap().with_tasks;
        assert!(more > few, "{more} > {few}");
        assert!(replica.store().views().last_change().unwrap() >= before + (more - few));
    }

    // A store far behind its views (filled without them) is not walked
    // notice by notice: a sweep starts, the watermarks move to the heads,
    // and once the sweep is done the views equal the fold.
    #[test]
    fn a_store_far_behind_its_views_is_swept_not_walked() {
        let (_dir, work, replica, me, implements) = stored(9);
        let t = work.end;
        let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
        // The sweep a store without views starts at open, done; the
        // watermarks have not moved.
        keeper.begin();
        while keeper.sweep(&replica, t).unwrap() {}
        keeper.commit(&replica).unwrap();
        assert!(keeper.complete(&replica).unwrap());
        // Then notices stored without the views (as a bulk load does):
        // every watermark back at the start.
        let heads = replica.store().heads().unwrap();
        let zero: Vec<(AuthorityId, u64)> = heads.iter().map(|h| (h.author, 0)).collect();
        replica.store().views().set_watermarks(&zero).unwrap();
        assert!(keeper.behind_within(&replica, 10).unwrap().is_empty());
        assert!(!keeper.complete(&replica).unwrap(), "a sweep runs");
        let marks = replica.store().views().watermarks().unwrap();
        for head in replica.store().heads().unwrap() {
            assert_eq!(marks.get(&head.author), Some(&head.seq));
        }
        assert!(
            keeper.behind(&replica).unwrap().is_empty(),
            "nothing left behind"
        );
        keeper.begin();
        while keeper.sweep(&replica, t).unwrap() {}
        keeper.commit(&replica).unwrap();
        assert_eq!(
            check(&replica, &me, &implements, t).unwrap(),
            Vec::<String>::new()
        );
        // A few notices behind are still walked.
        let (_dir, _, replica, me, implements) = stored(9);
        let keeper = Keeper::open(&replica, me, implements).unwrap();
        let zero: Vec<(AuthorityId, u64)> = replica
            .store()
            .heads()
            .unwrap()
            .iter()
            .map(|h| (h.author, 0))
            .collect();
        replica.store().views().set_watermarks(&zero).unwrap();
        assert!(!keeper.behind_within(&replica, 1_000).unwrap().is_empty());
        let marks = replica.store().views().watermarks().unwrap();
        assert!(marks.values().all(|seq| *seq == 0), "{marks:?}");
    }

    // The check finds views that disagree with the fold: a kept record
    // out of date, and counts that count a listing twice.
    #[test]
    fn the_check_names_each_kind_of_difference() {
        let (_dir, work, replica, me, implements) = stored(3);
        let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
        let t = work.end;
        keeper.catch_up(&replica, t).unwrap();
        assert_eq!(
            check(&replica, &me, &implements, t).unwrap(),
            Vec::<String>::new()
        );
        // A listing's kept state from another time, written as if it were
        // now: its record and the counts disagree.
        let listing = work.listings[0];
        let before = replica.store().views().kept(&listing).unwrap().unwrap();
        let state = replica.listing_state(&listing, START).unwrap().unwrap();
        let stale = Kept::of(&state, START, &me, &implements);
        if stale != before {
            replica
                .store()
                .views()
                .keep(&listing, Some(&before), &stale, None)
                .unwrap();
            let differences = check(&replica, &me, &implements, t).unwrap();
            assert!(
                differences
                    .iter()
                    .any(|d| d.contains(&format!("listing {listing}"))),
                "{differences:#?}"
            );
            replica
                .store()
                .views()
                .keep(&listing, Some(&stale), &before, None)
                .unwrap();
        }
        // A listing kept twice over in the counts.
        replica
            .store()
            .views()
            .keep(&listing, None, &before, None)
            .unwrap();
        let differences = check(&replica, &me, &implements, t).unwrap();
        assert!(
            differences.iter().any(|d| d.starts_with("counts:")),
            "{differences:#?}"
        );
        // Repaired by deriving again.
        replica.store().clear_views().unwrap();
        let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
        keeper.catch_up(&replica, t).unwrap();
        assert_eq!(
            check(&replica, &me, &implements, t).unwrap(),
            Vec::<String>::new()
        );
    }
}

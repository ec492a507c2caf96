//! The change feed and the views as the daemon keeps them
//! ([`crate::keeper`]): the listings touched by accepted notices and those
//! whose next transition has come are derived again at each tick (and
//! before a read that uses the views), and a step of a running sweep is
//! taken. Changes are served only once sled made them durable, so that a
//! client's cursor never names a change a crash could take back:
//! `durable` is the newest such seq.

use super::{Daemon, DaemonError};
use crate::keeper::Keeper;
use credence_protocol::changes::{Cause, Change};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Notices whose listings are derived again in one tick (more wait for
/// the next).
pub const WATCH_PER_TICK_MAX: usize = 4_096;
/// While accepted notices wait for the views, how often a step derives
/// their listings between ticks: many short steps hold the loop up for
/// less at a time than one long one a tick.
pub const VIEWS_STEP: std::time::Duration = std::time::Duration::from_millis(20);
/// Changes in one answer.
pub const CHANGES_PER_PAGE_MAX: usize = 1_000;

/// The daemon's change-feed state.
pub(super) struct Watcher {
    /// Keeps the views and numbers the changes.
    pub(super) keeper: Keeper,
    /// Notices accepted (or found behind the views' watermarks) and not
    /// yet looked at, in the order they came.
    touched: Vec<NoticeId>,
    /// The newest seq of each log whose notices were looked at, not yet
    /// recorded as the views' watermark.
    reflected: std::collections::BTreeMap<AuthorityId, u64>,
    /// The newest change sled holds durably.
    durable: Arc<watch::Sender<u64>>,
    /// A sync of sled is running.
    syncing: Arc<AtomicBool>,
    /// The views hold every listing and every accepted notice (no sweep
    /// runs, nothing waits): reads may use them.
    pub(super) current: bool,
    /// Tests hold the views back to exercise the reads that fold.
    #[cfg(test)]
    pub(super) hold: bool,
}

impl Watcher {
    /// The state of the views `keeper` keeps; the receiver follows the
    /// durable seq.
    pub(super) fn new(keeper: Keeper) -> (Watcher, watch::Receiver<u64>) {
        let (durable, rx) = watch::channel(keeper.next_change() - 1);
        (
            Watcher {
                keeper,
                touched: Vec::new(),
                reflected: std::collections::BTreeMap::new(),
                durable: Arc::new(durable),
                syncing: Arc::new(AtomicBool::new(false)),
                current: false,
                #[cfg(test)]
                hold: false,
            },
            rx,
        )
    }

    /// A notice was accepted (`author`'s at `seq`): its listing is looked
    /// at in the next tick.
    pub(super) fn touch(&mut self, id: NoticeId, author: AuthorityId, seq: u64) {
        self.touched.push(id);
        let newest = self.reflected.entry(author).or_insert(seq);
        *newest = (*newest).max(seq);
        self.current = false;
    }

    /// Accepted notices wait to be looked at.
    pub(super) fn waiting(&self) -> bool {
        !self.touched.is_empty()
    }
}

impl Daemon {
    /// Derives again the listings touched or due, takes a step of a running
    /// sweep, records the changes, and starts making them durable.
    pub(super) fn watch_tick(&mut self, t: Timestamp) {
        self.watch_now(t, true);
    }

    /// Derives again the listings of the notices accepted since the last
    /// step ([`VIEWS_STEP`]), without a sweep step.
    pub(super) fn watch_step(&mut self, t: Timestamp) {
        self.watch_now(t, false);
    }

    /// [`Daemon::watch_tick`]; a sweep step only when `sweep` (the tick's,
    /// not a read's: reads do not drive a sweep's folds).
    fn watch_now(&mut self, t: Timestamp, sweep: bool) {
        // What this step keeps is one batch ([`Keeper::begin`]).
        self.watcher.keeper.begin();
        if let Err(e) = self.watch(t, sweep) {
            self.watcher.keeper.abandon();
            tracing::error!("change feed: {e}");
            self.watcher.current = false;
            // The watermarks stay where they were: what this step did not
            // look at is found behind them again.
            self.watcher.reflected.clear();
        }
        self.sync_changes();
    }

    fn watch(&mut self, t: Timestamp, sweep: bool) -> Result<(), DaemonError> {
        // The notices this step looks at reach sled before what it keeps
        // of them: a crash never keeps a view of a notice it took back.
        self.node
            .engine
            .replica_mut()
            .store_mut()
            .write_through()
            .map_err(DaemonError::internal)?;
        if self.watcher.touched.is_empty() {
            // Notices stored by a path that does not tell the watcher (an
            // operator command on the node's own store) or before a
            // restart: found by the logs' heads.
            let behind = self
                .watcher
                .keeper
                .behind(self.node.engine.replica())
                .map_err(DaemonError::internal)?;
            if !behind.is_empty() {
                // Reflected once they are looked at.
                let heads = self
                    .node
                    .engine
                    .replica()
                    .store()
                    .heads()
                    .map_err(DaemonError::internal)?;
                for head in heads {
                    let newest = self
                        .watcher
                        .reflected
                        .entry(head.author)
                        .or_insert(head.seq);
                    *newest = (*newest).max(head.seq);
                }
            }
            self.watcher.touched = behind;
        }
        let touched: Vec<NoticeId> = {
            let mut all = std::mem::take(&mut self.watcher.touched).into_iter();
            let now = all.by_ref().take(WATCH_PER_TICK_MAX).collect();
            self.watcher.touched = all.collect();
            now
        };
        let replica = self.node.engine.replica();
        let keeper = &mut self.watcher.keeper;
        // The listings touched, in the order their notices came (a client
        // sees changes in the order they happened).
        let mut seen = BTreeSet::new();
        let mut listings = Vec::new();
        for id in touched {
            if let Some(listing) = replica.listing_of(&id).map_err(DaemonError::internal)?
                && seen.insert(listing)
            {
                listings.push(listing);
            }
        }
        for listing in replica
            .store()
            .due(t, WATCH_PER_TICK_MAX)
            .map_err(DaemonError::internal)?
        {
            if !seen.contains(&listing) {
                keeper
                    .refresh(replica, listing, Some(Cause::Time), t)
                    .map_err(DaemonError::internal)?;
            }
        }
        for listing in listings {
            keeper
                .refresh(replica, listing, Some(Cause::Notice), t)
                .map_err(DaemonError::internal)?;
        }
        let sweeping = if sweep {
            keeper.sweep(replica, t).map_err(DaemonError::internal)?
        } else {
            !keeper.complete(replica).map_err(DaemonError::internal)?
        };
        // Written before any watermark moves past the notices it reflects.
        keeper.commit(replica).map_err(DaemonError::internal)?;
        let waiting = !self.watcher.touched.is_empty();
        if !waiting && !self.watcher.reflected.is_empty() {
            let marks: Vec<(AuthorityId, u64)> = std::mem::take(&mut self.watcher.reflected)
                .into_iter()
                .collect();
            keeper
                .reflect(replica, &marks)
                .map_err(DaemonError::internal)?;
        }
        self.watcher.current = !sweeping && !waiting;
        #[cfg(test)]
        if self.watcher.hold {
            self.watcher.current = false;
        }
        Ok(())
    }

    /// Brings the views up to `t` before a read that uses them; whether
    /// they may be used (else the read folds).
    pub(super) fn views_current(&mut self, t: Timestamp) -> bool {
        self.watch_now(t, false);
        self.watcher.current
    }

    /// Starts making the changes recorded durable, unless a sync runs or
    /// every one is durable; the durable seq moves when it is done (a sync
    /// that failed is tried again at the next tick).
    fn sync_changes(&mut self) {
        let watcher = &mut self.watcher;
        let upto = watcher.keeper.next_change() - 1;
        if *watcher.durable.borrow() >= upto || watcher.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let sync = self.node.replica().store().sync_later();
        let durable = watcher.durable.clone();
        let syncing = watcher.syncing.clone();
        tokio::task::spawn_blocking(move || {
            match sync() {
                Ok(()) => {
                    durable.send_if_modified(|seq| {
                        let newer = upto > *seq;
                        if newer {
                            *seq = upto;
                        }
                        newer
                    });
                }
                Err(e) => tracing::error!("change feed: cannot make changes durable: {e}"),
            }
            syncing.store(false, Ordering::Release);
        });
    }

    /// Durable changes after `after`, at most `limit`.
    pub(super) fn changes(&self, after: u64, limit: usize) -> Result<Vec<Change>, DaemonError> {
        let upto = *self.watcher.durable.borrow();
        self.node
            .replica()
            .store()
            .changes(after, upto, limit.min(CHANGES_PER_PAGE_MAX))
            .map_err(DaemonError::internal)
    }
}

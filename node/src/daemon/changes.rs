//! The change feed as the daemon keeps it: the listings touched by
//! accepted notices and those whose next transition has come are folded
//! again at each tick; where the summary
//! ([`credence_protocol::changes::Summary`]) differs from the one kept, a
//! change is recorded (with the store's `watch`). Changes are served only
//! once sled made them durable, so that a client's cursor never names a
//! change a crash could take back: `durable` is the newest such seq.

use super::{Daemon, DaemonError};
use credence_protocol::changes::{Cause, Change, Summary, next_transition};
use credence_protocol::model::NoticeId;
use credence_protocol::time::Timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Notices whose listings are folded again in one tick (more wait for
/// the next).
pub const WATCH_PER_TICK_MAX: usize = 4_096;
/// Changes in one answer.
pub const CHANGES_PER_PAGE_MAX: usize = 1_000;

/// The daemon's change-feed state.
pub(super) struct Watcher {
    /// Notices accepted since the last tick, in the order they came.
    touched: Vec<NoticeId>,
    /// The seq the next change takes.
    next: u64,
    /// The newest change sled holds durably.
    durable: Arc<watch::Sender<u64>>,
    /// A sync of sled is running.
    syncing: Arc<AtomicBool>,
}

impl Watcher {
    /// The state of a store whose last change is `last`; the receiver
    /// follows the durable seq.
    pub(super) fn new(last: u64) -> (Watcher, watch::Receiver<u64>) {
        let (durable, rx) = watch::channel(last);
        (
            Watcher {
                touched: Vec::new(),
                next: last + 1,
                durable: Arc::new(durable),
                syncing: Arc::new(AtomicBool::new(false)),
            },
            rx,
        )
    }

    /// A notice was accepted: its listing is looked at in the next tick.
    pub(super) fn touch(&mut self, id: NoticeId) {
        self.touched.push(id);
    }
}

impl Daemon {
    /// Folds again the listings touched or due, records their changes, and
    /// starts making them durable.
    pub(super) fn watch_tick(&mut self, t: Timestamp) {
        let touched: Vec<NoticeId> = {
            let mut all = std::mem::take(&mut self.watcher.touched).into_iter();
            let now = all.by_ref().take(WATCH_PER_TICK_MAX).collect();
            self.watcher.touched = all.collect();
            now
        };
        let result = (|| -> Result<(), DaemonError> {
            // The listings touched, in the order their notices came (a
            // client sees changes in the order they happened).
            let replica = self.node.replica();
            let mut seen = BTreeSet::new();
            let mut listings = Vec::new();
            for id in touched {
                if let Some(listing) = replica.listing_of(&id).map_err(DaemonError::internal)?
                    && seen.insert(listing)
                {
                    listings.push(listing);
                }
            }
            let store = replica.store();
            for listing in store
                .due(t, WATCH_PER_TICK_MAX)
                .map_err(DaemonError::internal)?
            {
                if !seen.contains(&listing) {
                    self.watch_listing(listing, Cause::Time, t)?;
                }
            }
            for listing in listings {
                self.watch_listing(listing, Cause::Notice, t)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!("change feed: {e}");
        }
        self.sync_changes();
    }

    /// Folds `listing` at `t` and records its change, if any.
    fn watch_listing(
        &mut self,
        listing: NoticeId,
        cause: Cause,
        t: Timestamp,
    ) -> Result<(), DaemonError> {
        let replica = self.node.replica();
        let Some(state) = replica
            .listing_state(&listing, t)
            .map_err(DaemonError::internal)?
        else {
            return Ok(());
        };
        let me = self.node.author();
        let implements = self
            .node
            .federation()
            .member(&me)
            .map(|m| m.implements.clone())
            .unwrap_or_default();
        let summary = Summary::of(&state, t, &me, &implements);
        let next = next_transition(&state, t);
        let store = replica.store();
        let before = store.watched(&listing).map_err(DaemonError::internal)?;
        let change = match &before {
            Some((kept, _)) if *kept == summary => None,
            _ => Some(Change {
                seq: self.watcher.next,
                at: t,
                listing,
                cause,
                before: before.as_ref().map(|(kept, _)| kept.clone()),
                after: summary.clone(),
            }),
        };
        if change.is_none() && before.as_ref().is_some_and(|(_, n)| *n == next) {
            return Ok(());
        }
        store
            .watch(&listing, before.as_ref(), &(summary, next), change.as_ref())
            .map_err(DaemonError::internal)?;
        if change.is_some() {
            self.watcher.next += 1;
        }
        Ok(())
    }

    /// Starts making the changes recorded durable, unless a sync runs or
    /// every one is durable; the durable seq moves when it is done (a sync
    /// that failed is tried again at the next tick).
    fn sync_changes(&mut self) {
        let watcher = &mut self.watcher;
        let upto = watcher.next - 1;
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

//! The change feed and the views as the daemon keeps them
//! ([`crate::keeper`]): the listings touched by accepted notices and those
//! whose next transition has come are derived again at each tick, and a
//! step of a running sweep is taken. Those steps run on a thread of their
//! own, over a snapshot of the store, so that the loop goes on taking
//! notices while they fold and write ([`Watcher`] hands its keeper to one
//! step at a time). A read that uses the views waits for the step that
//! runs, then brings them up to date on the loop. Changes are served only
//! once sled made them durable, so that a client's cursor never names a
//! change a crash could take back: `durable` is the newest such seq.

use super::{Daemon, DaemonError};
use crate::keeper::{KeepError, Keeper};
use crate::store::{PendingWrite, ViewsStore};
use credence_protocol::changes::{Cause, Change};
use credence_protocol::model::{AuthorityId, NoticeId};
use credence_protocol::replica::Replica;
use credence_protocol::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, watch};

/// Notices whose listings are derived again in one step (more wait for
/// the next).
pub const WATCH_PER_TICK_MAX: usize = 4_096;
/// While accepted notices wait for the views, how often a step derives
/// their listings between ticks: the change feed follows within about
/// this, and each step's snapshot and batch cover the notices of this
/// long.
pub const VIEWS_STEP: std::time::Duration = std::time::Duration::from_millis(20);
/// Changes in one answer.
pub const CHANGES_PER_PAGE_MAX: usize = 1_000;

/// The daemon's change-feed state.
pub(super) struct Watcher {
    /// Keeps the views and numbers the changes; `None` while a step has
    /// it on its own thread.
    keeper: Option<Keeper>,
    /// The step running on its own thread: its keeper and outcome come
    /// back here, and `done` wakes the loop.
    running: Option<std::sync::mpsc::Receiver<(Keeper, Result<Stepped, KeepError>)>>,
    /// Told when the running step is done.
    pub(super) done: Arc<Notify>,
    /// Notices accepted (or found behind the views' watermarks) and not
    /// yet handed to a step, in the order they came.
    touched: Vec<NoticeId>,
    /// The newest seq of each log whose notices were accepted, not yet
    /// recorded as the views' watermark.
    reflected: BTreeMap<AuthorityId, u64>,
    /// Whether a sweep still ran after the last step.
    sweeping: bool,
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

/// What a step is given: the notices whose listings it derives again, and
/// the watermarks to record once it has (empty unless they are every
/// notice accepted so far).
struct Step {
    touched: Vec<NoticeId>,
    marks: BTreeMap<AuthorityId, u64>,
    t: Timestamp,
    /// Take a step of a running sweep (the tick's, not a read's: reads do
    /// not drive a sweep's folds).
    sweep: bool,
}

/// What a step leaves.
struct Stepped {
    /// A sweep still runs.
    sweeping: bool,
    /// Notices it found behind the watermarks and did not get to, and
    /// the watermarks that stand for them.
    left: Vec<NoticeId>,
    left_marks: BTreeMap<AuthorityId, u64>,
}

impl Watcher {
    /// The state of the views `keeper` keeps; the receiver follows the
    /// durable seq.
    pub(super) fn new(keeper: Keeper) -> (Watcher, watch::Receiver<u64>) {
        let (durable, rx) = watch::channel(keeper.next_change() - 1);
        (
            Watcher {
                keeper: Some(keeper),
                running: None,
                done: Arc::new(Notify::new()),
                touched: Vec::new(),
                reflected: BTreeMap::new(),
                sweeping: false,
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
    /// at in the next step.
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

    /// A step runs on its own thread.
    pub(super) fn running(&self) -> bool {
        self.running.is_some()
    }

    /// The next step's work: the notices accepted so far (at most
    /// [`WATCH_PER_TICK_MAX`]), with their watermarks when that is all.
    fn next_step(&mut self, t: Timestamp, sweep: bool) -> Step {
        let mut touched = std::mem::take(&mut self.touched);
        self.touched = touched.split_off(touched.len().min(WATCH_PER_TICK_MAX));
        let marks = if self.touched.is_empty() {
            std::mem::take(&mut self.reflected)
        } else {
            BTreeMap::new()
        };
        Step {
            touched,
            marks,
            t,
            sweep,
        }
    }

    /// Takes what a step did: its keeper back, and what it left.
    fn finished(&mut self, keeper: Keeper, outcome: Result<Stepped, KeepError>) {
        self.keeper = Some(keeper);
        match outcome {
            Ok(stepped) => {
                self.sweeping = stepped.sweeping;
                // Found behind the watermarks: before anything accepted
                // since (the order a client sees changes in).
                if !stepped.left.is_empty() {
                    let mut touched = stepped.left;
                    touched.append(&mut self.touched);
                    self.touched = touched;
                }
                for (author, seq) in stepped.left_marks {
                    let newest = self.reflected.entry(author).or_insert(seq);
                    *newest = (*newest).max(seq);
                }
            }
            Err(e) => {
                tracing::error!("change feed: {e}");
                self.sweeping = true;
                // The watermarks stay where they were: what the step did
                // not look at is found behind them again.
                self.reflected.clear();
            }
        }
        self.current = !self.sweeping && self.touched.is_empty() && self.running.is_none();
        #[cfg(test)]
        if self.hold {
            self.current = false;
        }
    }

    /// Waits for the step that runs, if any, and takes what it did.
    fn wait_step(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        match running.recv() {
            Ok((keeper, outcome)) => self.finished(keeper, outcome),
            // The step's thread died with the keeper: nothing keeps the
            // views any more, and reads fold.
            Err(_) => tracing::error!("change feed: a step of the views was lost"),
        }
    }

    /// The keeper, once no step has it.
    pub(super) fn keeper(&mut self) -> Option<&mut Keeper> {
        self.wait_step();
        self.keeper.as_mut()
    }
}

/// Derives again the listings of `step` (and of the notices behind the
/// watermarks when it has none), those whose next transition has come and
/// a step of a running sweep, and records the changes; on the loop over
/// the store, or on a step's thread over a snapshot.
fn derive<S: ViewsStore>(
    keeper: &mut Keeper,
    replica: &Replica<S>,
    step: Step,
) -> Result<Stepped, KeepError> {
    let Step {
        mut touched,
        mut marks,
        t,
        sweep,
    } = step;
    if touched.is_empty() {
        // Notices stored by a path that does not tell the watcher (an
        // operator command on the node's own store) or before a restart:
        // found by the logs' heads, and reflected once looked at.
        touched = keeper.behind(replica)?;
        if !touched.is_empty() {
            for head in replica.store().heads()? {
                let newest = marks.entry(head.author).or_insert(head.seq);
                *newest = (*newest).max(head.seq);
            }
        }
    }
    let left = touched.split_off(touched.len().min(WATCH_PER_TICK_MAX));
    let left_marks = if left.is_empty() {
        BTreeMap::new()
    } else {
        std::mem::take(&mut marks)
    };
    // The listings touched, in the order their notices came (a client
    // sees changes in the order they happened).
    let mut seen = BTreeSet::new();
    let mut listings = Vec::new();
    for id in touched {
        if let Some(listing) = replica.listing_of(&id).map_err(KeepError::of)?
            && seen.insert(listing)
        {
            listings.push(listing);
        }
    }
    for listing in replica.store().views().due(t, WATCH_PER_TICK_MAX)? {
        if !seen.contains(&listing) {
            keeper.refresh(replica, listing, Some(Cause::Time), t)?;
        }
    }
    for listing in listings {
        keeper.refresh(replica, listing, Some(Cause::Notice), t)?;
    }
    let sweeping = if sweep {
        keeper.sweep(replica, t)?
    } else {
        !keeper.complete(replica)?
    };
    // Written before any watermark moves past the notices it reflects.
    keeper.commit(replica)?;
    if !marks.is_empty() {
        let marks: Vec<(AuthorityId, u64)> = marks.into_iter().collect();
        keeper.reflect(replica, &marks)?;
    }
    Ok(Stepped {
        sweeping,
        left,
        left_marks,
    })
}

impl Daemon {
    /// Derives again the listings touched or due, takes a step of a running
    /// sweep and records the changes, on a thread of its own; unless a
    /// step already runs (the next tick takes it).
    pub(super) fn watch_tick(&mut self, t: Timestamp) {
        self.watch_later(t, true);
    }

    /// Derives again the listings of the notices accepted since the last
    /// step ([`VIEWS_STEP`]), without a sweep step, on a thread of its
    /// own.
    pub(super) fn watch_step(&mut self, t: Timestamp) {
        self.watch_later(t, false);
    }

    /// Starts a step on its own thread over a snapshot of the store: the
    /// step waits until the writer put every notice of the snapshot into
    /// sled before it writes what it keeps of them (a crash never keeps a
    /// view of a notice it took back).
    fn watch_later(&mut self, t: Timestamp, sweep: bool) {
        if self.watcher.running() {
            return;
        }
        let Some(mut keeper) = self.watcher.keeper.take() else {
            return;
        };
        let (snapshot, written): (_, PendingWrite) = match self
            .node
            .engine
            .replica_mut()
            .store_mut()
            .snapshot_for_views()
        {
            Ok(taken) => taken,
            Err(e) => {
                self.watcher.finished(keeper, Err(KeepError::of(e)));
                return;
            }
        };
        let replica = self.node.engine.replica().reader(snapshot);
        let step = self.watcher.next_step(t, sweep);
        let (tx, rx) = std::sync::mpsc::channel();
        self.watcher.running = Some(rx);
        let done = Arc::clone(&self.watcher.done);
        tokio::task::spawn_blocking(move || {
            // What this step keeps is one batch ([`Keeper::begin`]).
            keeper.begin();
            let outcome = written
                .wait()
                .map_err(KeepError::of)
                .and_then(|()| derive(&mut keeper, &replica, step));
            if outcome.is_err() {
                keeper.abandon();
            }
            let _ = tx.send((keeper, outcome));
            done.notify_one();
        });
    }

    /// The running step is done: takes what it did and starts making its
    /// changes durable.
    pub(super) fn watch_done(&mut self) {
        let Some(running) = &self.watcher.running else {
            return;
        };
        match running.try_recv() {
            Ok((keeper, outcome)) => {
                self.watcher.running = None;
                self.watcher.finished(keeper, outcome);
                self.sync_changes();
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.watcher.running = None;
                tracing::error!("change feed: a step of the views was lost");
            }
        }
    }

    /// Brings the views up to `t` before a read that uses them, on the
    /// loop (after the step that runs, if any); whether they may be used
    /// (else the read folds).
    pub(super) fn views_current(&mut self, t: Timestamp) -> bool {
        self.watcher.wait_step();
        let Some(mut keeper) = self.watcher.keeper.take() else {
            return false;
        };
        keeper.begin();
        // The notices this step looks at reach sled before what it keeps
        // of them: a crash never keeps a view of a notice it took back.
        let outcome = self
            .node
            .engine
            .replica_mut()
            .store_mut()
            .write_through()
            .map_err(KeepError::of)
            .and_then(|()| {
                let step = self.watcher.next_step(t, false);
                derive(&mut keeper, self.node.engine.replica(), step)
            });
        if outcome.is_err() {
            keeper.abandon();
        }
        self.watcher.finished(keeper, outcome);
        self.sync_changes();
        self.watcher.current
    }

    /// Waits for the step that runs, if any (before the node stops).
    pub(super) fn watch_settle(&mut self) {
        self.watcher.wait_step();
        self.sync_changes();
    }

    /// Starts making the changes recorded durable, unless a sync runs or
    /// every one is durable; the durable seq moves when it is done (a sync
    /// that failed is tried again at the next tick).
    fn sync_changes(&mut self) {
        let watcher = &mut self.watcher;
        let Some(keeper) = &watcher.keeper else {
            return;
        };
        let upto = keeper.next_change() - 1;
        if *watcher.durable.borrow() >= upto || watcher.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let sync = self.node.replica().store().views().sync_later();
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
            .views()
            .changes(after, upto, limit.min(CHANGES_PER_PAGE_MAX))
            .map_err(DaemonError::internal)
    }
}

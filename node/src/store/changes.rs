//! The change feed and the materialized views
//! ([`credence_protocol::changes`]), beside the replicated state: the
//! changes in order (`c`), what is kept of each listing (`w`: its summary,
//! next transition, feed entry and, while it has tasks, its subject and
//! issuer), the listings by that transition time
//! (`t`), the listings with tasks for this member, each entry carrying
//! what `w` keeps of it (`k`: a page of tasks is one range read), the listings the
//! public feed shows, newest first (`p`), the counts over every kept
//! listing and, per author, the seq up to which the views reflect its log
//! (`a`). A change, what is kept and every index entry and count move
//! together (one redo record, `store::redo`), so that a crash keeps all or
//! none: a change is never recorded without the record that stops it from
//! being recorded again, and the indexes and counts never disagree with
//! the records.

use super::layout::{META, SUBJECT, key};
use super::redo::{self, Writes};
use super::view::View;
use super::{SledStore, StoreError};
use credence_protocol::changes::{Change, Counts, Kept, TaskRow};
use credence_protocol::codec;
use credence_protocol::model::{AuthorityId, NoticeId, SUBJECT_KEY_BYTES};
use credence_protocol::store::{Head, Store};
use credence_protocol::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const CHANGE: u8 = b'c';
const KEPT: u8 = b'w';
const DUE: u8 = b't';
const TASKS: u8 = b'k';
const SHOWN: u8 = b'p';
const WATERMARK: u8 = b'a';
const OBJECTED: u8 = b'o';
const META_VIEWS: &[u8] = b"views";
const META_COUNTS: &[u8] = b"views-counts";
const META_SWEEP: &[u8] = b"views-sweep";
/// The layout of `w`, `t`, `k`, `p`, `a` and the counts. A store whose
/// views are of another version (or none: kept before they existed) has
/// them cleared and derived again by a sweep. Version 5: the transition
/// index also holds the deadline of an open objection to a withdrawn or
/// repaired listing (version 4 held none for such a listing, so the
/// objection never fell overdue in the views).
pub const VIEWS_VERSION: u64 = 5;
/// Largest encoded change or kept record.
const RECORD_BYTES_MAX: usize = 16 * 1024;

fn due_key(at: Timestamp, listing: &NoticeId) -> Vec<u8> {
    key(DUE, &[&at.0.to_be_bytes(), &listing.0])
}

/// Newest first: the issue time is stored inverted.
fn shown_key(issued_at: Timestamp, listing: &NoticeId) -> Vec<u8> {
    key(
        SHOWN,
        &[&(u64::MAX - issued_at.0).to_be_bytes(), &listing.0],
    )
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn id_at(k: &[u8], from: usize, what: &str) -> Result<NoticeId, StoreError> {
    k.get(from..)
        .and_then(|id| <[u8; 32]>::try_from(id).ok())
        .map(NoticeId)
        .ok_or_else(|| corrupt(what, format!("a key of {} bytes", k.len())))
}

/// Where a sweep over every listing stands: the next key of the subject
/// index to look at.
pub type SweepCursor = Vec<u8>;

/// Entries of a view index (the time each is under, if any, and the
/// listing) and the key to continue after.
pub type IndexPage = (Vec<(Option<Timestamp>, NoticeId)>, Option<Vec<u8>>);

/// What is kept of several listings, their index entries, the changes
/// recorded and the counts after them, written together
/// ([`ViewsDb::keep_all`], one redo record): a tick's listings cost one
/// write of the counts instead of one each, and a crash keeps all of them
/// or none.
#[derive(Default)]
pub struct Keeping {
    batch: Writes,
    kept: BTreeMap<NoticeId, Kept>,
    /// The counts after the listings kept so far (none: nothing kept).
    counts: Option<Counts>,
}

/// One of the views' indexes, for checking them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewIndex {
    /// Listings by next transition (`t`).
    Due,
    /// Listings with tasks (`k`).
    Tasks,
    /// Listings the feed shows (`p`).
    Shown,
    /// Listings with an open objection (`o`).
    Objected,
}

fn encode_counts(counts: &Counts) -> Result<Vec<u8>, StoreError> {
    codec::encode_bounded::<_, 256>("counts", counts).map_err(|e| corrupt("view counts", e))
}

/// The views a read off the event loop uses (sled's tree is shared: the
/// snapshot sees the views as they are when it reads).
impl super::SledSnapshot {
    /// A page of this member's tasks read from what is kept: the tasks of
    /// at most `limit` listings of the task index, in id order after
    /// `after` (excluded), and whether more listings with tasks follow.
    pub fn task_page(
        &self,
        after: Option<&NoticeId>,
        limit: usize,
    ) -> Result<(Vec<TaskRow>, bool), StoreError> {
        let mut listings = tasks_in(&self.tree, after, limit.saturating_add(1))?;
        let more = listings.len() > limit;
        listings.truncate(limit);
        let mut rows = Vec::new();
        for (id, inline) in listings {
            let kept = match inline {
                Some(kept) => kept,
                None => self.kept(&id)?.ok_or_else(|| {
                    corrupt("task index", format!("listing {id} has no kept record"))
                })?,
            };
            rows.extend(kept.task_rows(id));
        }
        Ok((rows, more))
    }

    /// What is kept of `listing`, read off the event loop.
    pub fn kept(&self, listing: &NoticeId) -> Result<Option<Kept>, StoreError> {
        kept_in(&self.tree, listing)
    }

    /// The listings with an open objection, in id order after `after`
    /// (excluded), at most `limit`.
    pub fn objected_listings(
        &self,
        after: Option<&NoticeId>,
        limit: usize,
    ) -> Result<Vec<NoticeId>, StoreError> {
        self.listed(OBJECTED, "objection index", after, limit)
    }

    /// The listing ids of an index keyed by id alone, after `after`.
    fn listed(
        &self,
        prefix: u8,
        what: &str,
        after: Option<&NoticeId>,
        limit: usize,
    ) -> Result<Vec<NoticeId>, StoreError> {
        let from = match after {
            Some(id) => key(prefix, &[&id.0, &[0]]),
            None => vec![prefix],
        };
        let mut out = Vec::new();
        for item in self.tree.range(from..vec![prefix + 1]).take(limit) {
            let (k, _) = item?;
            out.push(id_at(&k, 1, what)?);
        }
        Ok(out)
    }

    /// The listings the public feed shows, newest first (issue time
    /// descending, then id), with their issue times, after the entry
    /// `after` (issue time and id, excluded), at most `limit`.
    pub fn shown_page(
        &self,
        after: Option<(Timestamp, NoticeId)>,
        limit: usize,
    ) -> Result<Vec<(Timestamp, NoticeId)>, StoreError> {
        let from = match after {
            Some((at, id)) => {
                let mut k = shown_key(at, &id);
                k.push(0);
                k
            }
            None => vec![SHOWN],
        };
        let mut out = Vec::new();
        for item in self.tree.range(from..vec![SHOWN + 1]).take(limit) {
            let (k, _) = item?;
            let inverted: [u8; 8] = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("feed index", format!("key of {} bytes", k.len())))?;
            out.push((
                Timestamp(u64::MAX - u64::from_be_bytes(inverted)),
                id_at(&k, 9, "feed index")?,
            ));
        }
        Ok(out)
    }
}

/// The task index's listings in id order after `after` (excluded), at
/// most `limit`, each with what is kept of it as the entry carries it: a
/// page of tasks is one range read, not a read a listing. An entry written
/// before entries carried it (empty) gives `None`: its `w` record is read.
fn tasks_in(
    tree: &sled::Db,
    after: Option<&NoticeId>,
    limit: usize,
) -> Result<Vec<(NoticeId, Option<Kept>)>, StoreError> {
    let from = match after {
        Some(id) => key(TASKS, &[&id.0, &[0]]),
        None => vec![TASKS],
    };
    let mut out = Vec::new();
    for item in tree.range(from..vec![TASKS + 1]).take(limit) {
        let (k, v) = item?;
        let id = id_at(&k, 1, "task index")?;
        let kept = if v.is_empty() {
            None
        } else {
            Some(
                codec::decode_bounded::<Kept, RECORD_BYTES_MAX>("kept", &v)
                    .map_err(|e| corrupt("task index", e))?,
            )
        };
        out.push((id, kept));
    }
    Ok(out)
}

/// What `tree` keeps of `listing`.
fn kept_in(tree: &sled::Db, listing: &NoticeId) -> Result<Option<Kept>, StoreError> {
    tree.get(key(KEPT, &[&listing.0]))?
        .map(|bytes| {
            codec::decode_bounded::<Kept, RECORD_BYTES_MAX>("kept", &bytes)
                .map_err(|e| corrupt("kept listing", e))
        })
        .transpose()
}

/// The views' records in sled, beside the replicated state: a handle the
/// store, its snapshots and the thread that keeps the views share. Only
/// one keeper writes them at a time (the daemon hands its [`crate::keeper::Keeper`]
/// to one step at a time, or a command runs with the node stopped).
#[derive(Clone)]
pub struct ViewsDb {
    tree: sled::Db,
    /// Held while a redo record is written and applied (`redo::apply`).
    redo: Arc<Mutex<()>>,
}

/// A store the views can be kept over: the store itself, or a snapshot of
/// it read on the keeper's own thread.
pub trait ViewsStore: Store<Error = StoreError> {
    /// Its views.
    fn views(&self) -> &ViewsDb;

    /// The next listings of a sweep from `cursor`, at most `limit` index
    /// entries (a listing indexed under several subjects may come more
    /// than once), and the cursor after them (`None`: the sweep is done).
    /// Through the buffered layers too: a listing stored a moment ago may
    /// not be in sled yet.
    fn sweep_step(
        &self,
        cursor: &[u8],
        limit: usize,
    ) -> Result<(Vec<NoticeId>, Option<SweepCursor>), StoreError>;

    /// Clears every view (not the changes) and starts a sweep that derives
    /// them again ([`ViewsDb::clear`]), standing for the logs held now.
    fn clear_views(&self) -> Result<(), StoreError> {
        self.views().clear(&self.heads()?)
    }
}

/// [`ViewsStore`] for the store and its snapshot alike: their views, and
/// the sweep read through their layered view.
macro_rules! views_store {
    ($store:ty) => {
        impl ViewsStore for $store {
            fn views(&self) -> &ViewsDb {
                &self.views
            }

            fn sweep_step(
                &self,
                cursor: &[u8],
                limit: usize,
            ) -> Result<(Vec<NoticeId>, Option<SweepCursor>), StoreError> {
                sweep_step_in(&self.view(), cursor, limit)
            }
        }
    };
}

views_store!(SledStore);
views_store!(super::SledSnapshot);

fn sweep_step_in(
    view: &View<'_>,
    cursor: &[u8],
    limit: usize,
) -> Result<(Vec<NoticeId>, Option<SweepCursor>), StoreError> {
    let mut out = Vec::new();
    let mut last = None;
    let mut end = vec![SUBJECT];
    end.resize(2 + SUBJECT_KEY_BYTES + 32, 0xff);
    for (k, _) in view.range(cursor, &end, limit)? {
        out.push(id_at(&k, 1 + SUBJECT_KEY_BYTES, "subject index")?);
        last = Some(k);
    }
    let next = match last {
        Some(k) if out.len() == limit => {
            let mut next = k;
            next.push(0);
            Some(next)
        }
        _ => None,
    };
    Ok((out, next))
}

impl ViewsDb {
    pub(super) fn new(tree: sled::Db) -> ViewsDb {
        ViewsDb {
            tree,
            redo: Arc::new(Mutex::new(())),
        }
    }

    /// The seq of the last change recorded (0: none).
    pub fn last_change(&self) -> Result<u64, StoreError> {
        let Some((k, _)) = self.tree.scan_prefix([CHANGE]).next_back().transpose()? else {
            return Ok(0);
        };
        let bytes: [u8; 8] = k[1..]
            .try_into()
            .map_err(|_| corrupt("change key", format!("{} bytes", k.len())))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// What is kept of `listing`.
    pub fn kept(&self, listing: &NoticeId) -> Result<Option<Kept>, StoreError> {
        kept_in(&self.tree, listing)
    }

    /// The task index's listings after `after` (excluded), at most
    /// `limit`, each with what its entry carries of it (`None`: an entry
    /// written before entries carried it): for checking them.
    pub fn task_entries(
        &self,
        after: Option<&NoticeId>,
        limit: usize,
    ) -> Result<Vec<(NoticeId, Option<Kept>)>, StoreError> {
        tasks_in(&self.tree, after, limit)
    }

    /// Keeps `now` for `listing` in place of `before` (what was kept), with
    /// its index entries and the counts, and records `change` if any: one
    /// batch.
    pub fn keep(
        &self,
        listing: &NoticeId,
        before: Option<&Kept>,
        now: &Kept,
        change: Option<&Change>,
    ) -> Result<(), StoreError> {
        let mut keeping = Keeping::default();
        self.keep_into(&mut keeping, listing, before, now, change)?;
        self.keep_all(keeping)
    }

    /// What is kept of `listing` once `keeping` is written.
    pub fn kept_after(
        &self,
        keeping: &Keeping,
        listing: &NoticeId,
    ) -> Result<Option<Kept>, StoreError> {
        match keeping.kept.get(listing) {
            Some(kept) => Ok(Some(kept.clone())),
            None => self.kept(listing),
        }
    }

    /// [`ViewsDb::keep`] into `keeping`, written later by
    /// [`ViewsDb::keep_all`]; `before` is what is kept of `listing` once
    /// `keeping` is written ([`ViewsDb::kept_after`]).
    pub fn keep_into(
        &self,
        keeping: &mut Keeping,
        listing: &NoticeId,
        before: Option<&Kept>,
        now: &Kept,
        change: Option<&Change>,
    ) -> Result<(), StoreError> {
        let batch = &mut keeping.batch;
        if let Some(change) = change {
            let bytes = codec::encode_bounded::<_, RECORD_BYTES_MAX>("change", change)
                .map_err(|e| corrupt("change", e))?;
            batch.insert(key(CHANGE, &[&change.seq.to_be_bytes()]), bytes);
        }
        let bytes = codec::encode_bounded::<_, RECORD_BYTES_MAX>("kept", now)
            .map_err(|e| corrupt("kept listing", e))?;
        // A listing with tasks carries what is kept of it in its task
        // index entry too: a page of tasks is then one range read.
        let inline = now.has_tasks().then(|| bytes.clone());
        batch.insert(key(KEPT, &[&listing.0]), bytes);
        if let Some(at) = before.and_then(|kept| kept.next) {
            batch.remove(due_key(at, listing));
        }
        if let Some(at) = now.next {
            batch.insert(due_key(at, listing), &[][..]);
        }
        if let Some(at) = before.and_then(|kept| kept.shown) {
            batch.remove(shown_key(at, listing));
        }
        if let Some(at) = now.shown {
            batch.insert(shown_key(at, listing), &[][..]);
        }
        // An index entry is removed only where what was kept had one (a
        // removal of a key sled does not hold still costs it a search).
        let tasks = key(TASKS, &[&listing.0]);
        if let Some(inline) = inline {
            batch.insert(tasks, inline);
        } else if before.is_some_and(Kept::has_tasks) {
            batch.remove(tasks);
        }
        let objected = key(OBJECTED, &[&listing.0]);
        let open = |kept: &Kept| kept.summary.objections_open > 0;
        if open(now) {
            batch.insert(objected, &[][..]);
        } else if before.is_some_and(open) {
            batch.remove(objected);
        }
        let counts = match keeping.counts {
            Some(counts) => counts,
            None => self.counts()?,
        };
        keeping.counts = Some(counts.replaced(before, now));
        keeping.kept.insert(*listing, now.clone());
        Ok(())
    }

    /// Writes what `keeping` holds, with the counts after it, together.
    pub fn keep_all(&self, keeping: Keeping) -> Result<(), StoreError> {
        let Keeping {
            mut batch, counts, ..
        } = keeping;
        let Some(counts) = counts else {
            return Ok(());
        };
        batch.insert(key(META, &[META_COUNTS]), encode_counts(&counts)?);
        redo::apply(&self.tree, &self.redo, batch)
    }

    /// The counts over every kept listing.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        match self.tree.get(key(META, &[META_COUNTS]))? {
            Some(bytes) => codec::decode_bounded::<Counts, 256>("counts", &bytes)
                .map_err(|e| corrupt("view counts", e)),
            None => Ok(Counts::default()),
        }
    }

    /// The seq of each author's log up to which the views reflect it.
    pub fn watermarks(&self) -> Result<BTreeMap<AuthorityId, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.tree.scan_prefix([WATERMARK]) {
            let (k, v) = item?;
            let author = id_at(&k, 1, "views watermark")?;
            let seq: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("views watermark", format!("{} bytes", v.len())))?;
            out.insert(AuthorityId(author.0), u64::from_be_bytes(seq));
        }
        Ok(out)
    }

    /// Records that the views reflect each log up to the seq given.
    pub fn set_watermarks(&self, marks: &[(AuthorityId, u64)]) -> Result<(), StoreError> {
        let mut batch = Writes::default();
        for (author, seq) in marks {
            batch.insert(key(WATERMARK, &[&author.0]), seq.to_be_bytes());
        }
        redo::apply(&self.tree, &self.redo, batch)
    }

    /// The version of the views this store keeps (`None`: kept before
    /// views had a version).
    pub fn views_version(&self) -> Result<Option<u64>, StoreError> {
        self.tree
            .get(key(META, &[META_VIEWS]))?
            .map(|v| {
                <[u8; 8]>::try_from(v.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("views version", format!("{} bytes", v.len())))
            })
            .transpose()
    }

    /// Clears every view (not the changes), marks them of the current
    /// version and starts a sweep over every listing to derive them again
    /// (the sweep stands for the notices held now: the watermarks are set
    /// to `heads`, the logs' heads).
    pub fn clear(&self, heads: &[Head]) -> Result<(), StoreError> {
        for prefix in [KEPT, DUE, TASKS, SHOWN, OBJECTED, WATERMARK] {
            let mut batch = sled::Batch::default();
            let mut n = 0usize;
            for item in self.tree.scan_prefix([prefix]) {
                let (k, _) = item?;
                batch.remove(k);
                n += 1;
                if n.is_multiple_of(10_000) {
                    self.tree.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            self.tree.apply_batch(batch)?;
        }
        let mut batch = sled::Batch::default();
        batch.remove(key(META, &[META_COUNTS]));
        // The sweep derives every listing held now: the logs as held now
        // are reflected once it is done, and nothing is behind.
        for head in heads {
            batch.insert(
                key(WATERMARK, &[&head.author.0]),
                &head.seq.to_be_bytes()[..],
            );
        }
        batch.insert(key(META, &[META_SWEEP]), vec![SUBJECT]);
        batch.insert(key(META, &[META_VIEWS]), &VIEWS_VERSION.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Where the sweep over every listing stands (`None`: no sweep runs).
    pub fn sweep_cursor(&self) -> Result<Option<SweepCursor>, StoreError> {
        Ok(self.tree.get(key(META, &[META_SWEEP]))?.map(|v| v.to_vec()))
    }

    /// Starts a sweep over every listing (without clearing the views).
    pub fn start_sweep(&self) -> Result<(), StoreError> {
        self.tree.insert(key(META, &[META_SWEEP]), vec![SUBJECT])?;
        Ok(())
    }

    /// Moves the sweep to `cursor` (`None`: it is done).
    pub fn set_sweep(&self, cursor: Option<&[u8]>) -> Result<(), StoreError> {
        match cursor {
            Some(c) => self.tree.insert(key(META, &[META_SWEEP]), c)?,
            None => self.tree.remove(key(META, &[META_SWEEP]))?,
        };
        Ok(())
    }

    /// Every kept listing, in id order from `after` (excluded), at most
    /// `limit`: for checking the views against the fold.
    pub fn kept_page(
        &self,
        after: Option<&NoticeId>,
        limit: usize,
    ) -> Result<Vec<(NoticeId, Kept)>, StoreError> {
        let from = match after {
            Some(id) => key(KEPT, &[&id.0, &[0]]),
            None => vec![KEPT],
        };
        let mut out = Vec::new();
        for item in self.tree.range(from..vec![KEPT + 1]).take(limit) {
            let (k, v) = item?;
            let id = id_at(&k, 1, "kept listing")?;
            let kept = codec::decode_bounded::<Kept, RECORD_BYTES_MAX>("kept", &v)
                .map_err(|e| corrupt("kept listing", e))?;
            out.push((id, kept));
        }
        Ok(out)
    }

    /// The listing ids of index `which` (`t`, `k` or `p` entries), with
    /// the time the entry is under (`t`: the transition, `p`: the issue
    /// time), in key order from `after` (a raw key, excluded), at most
    /// `limit`; and the key to continue after.
    pub fn index_page(
        &self,
        which: ViewIndex,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<IndexPage, StoreError> {
        let prefix = match which {
            ViewIndex::Due => DUE,
            ViewIndex::Tasks => TASKS,
            ViewIndex::Shown => SHOWN,
            ViewIndex::Objected => OBJECTED,
        };
        let from = match after {
            Some(k) => {
                let mut k = k.to_vec();
                k.push(0);
                k
            }
            None => vec![prefix],
        };
        let mut out = Vec::new();
        let mut last = None;
        for item in self.tree.range(from..vec![prefix + 1]).take(limit) {
            let (k, _) = item?;
            let time = |k: &[u8]| {
                k.get(1..9)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt("view index", format!("a key of {} bytes", k.len())))
            };
            let entry = match which {
                ViewIndex::Due => (Some(Timestamp(time(&k)?)), id_at(&k, 9, "due index")?),
                ViewIndex::Shown => (
                    Some(Timestamp(u64::MAX - time(&k)?)),
                    id_at(&k, 9, "feed index")?,
                ),
                ViewIndex::Tasks => (None, id_at(&k, 1, "task index")?),
                ViewIndex::Objected => (None, id_at(&k, 1, "objection index")?),
            };
            out.push(entry);
            last = Some(k.to_vec());
        }
        let next = if out.len() == limit { last } else { None };
        Ok((out, next))
    }

    /// Changes after `after`, at most `limit`, and none past `upto`.
    pub fn changes(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let from = key(CHANGE, &[&after.saturating_add(1).to_be_bytes()]);
        let to = key(CHANGE, &[&upto.saturating_add(1).to_be_bytes()]);
        let mut out = Vec::new();
        if after >= upto {
            return Ok(out);
        }
        for item in self.tree.range(from..to).take(limit) {
            let (_, bytes) = item?;
            out.push(
                codec::decode_bounded::<Change, RECORD_BYTES_MAX>("change", &bytes)
                    .map_err(|e| corrupt("change", e))?,
            );
        }
        Ok(out)
    }

    /// Listings whose next transition is at or before `t`, at most `limit`.
    pub fn due(&self, t: Timestamp, limit: usize) -> Result<Vec<NoticeId>, StoreError> {
        let to = key(DUE, &[&t.0.saturating_add(1).to_be_bytes()]);
        let mut out = Vec::new();
        for item in self.tree.range(key(DUE, &[])..to).take(limit) {
            let (k, _) = item?;
            let id: [u8; 32] = k
                .get(9..)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| corrupt("transition key", format!("{} bytes", k.len())))?;
            out.push(NoticeId(id));
        }
        Ok(out)
    }

    /// A closure that makes everything written to sled so far durable
    /// (for a thread of its own).
    pub fn sync_later(&self) -> impl FnOnce() -> Result<(), StoreError> + Send + 'static {
        let tree = self.tree.clone();
        move || {
            tree.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keeper::{Keeper, check};
    use credence_protocol::replica::Replica;
    use credence_protocol::testkit;

    // A task index entry carries what is kept of its listing, so a page
    // of tasks is one range read; an entry written before entries carried
    // it (empty) is read through the listing's `w` record, and `check`
    // names an entry whose record is not what is kept.
    #[test]
    fn task_entries_carry_what_is_kept_and_an_empty_one_is_read_through_w() {
        let test = testkit::federation(7, 3);
        let work = testkit::workload(&test, 3, 40, 6, Timestamp(1_767_225_600_000));
        let me = test.author(1);
        let implements = test.federation.member(&me).unwrap().implements.clone();
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), test.federation.id()).unwrap();
        let mut replica = Replica::new(test.federation.clone(), store);
        let refs: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
        replica.ingest_batch(&refs).unwrap();
        let t = work.end;
        let mut keeper = Keeper::open(&replica, me, implements.clone()).unwrap();
        keeper.catch_up(&replica, t).unwrap();
        let views = replica.store().views();
        let entries = views.task_entries(None, usize::MAX).unwrap();
        assert!(entries.len() >= 2, "{} listings with tasks", entries.len());
        for (id, carried) in &entries {
            assert!(carried.is_some());
            assert_eq!(carried.as_ref(), views.kept(id).unwrap().as_ref());
        }
        let page = || {
            replica
                .store()
                .snapshot()
                .task_page(None, usize::MAX)
                .unwrap()
        };
        let before = page();
        assert!(!before.0.is_empty());
        let (first, _) = entries[0];
        views.tree.insert(key(TASKS, &[&first.0]), &[][..]).unwrap();
        assert_eq!(views.task_entries(None, 1).unwrap(), [(first, None)]);
        assert_eq!(page(), before, "read through the kept record");
        assert_eq!(
            check(&replica, &me, &implements, t).unwrap(),
            Vec::<String>::new()
        );
        // Another listing's record under the first one's entry.
        let other = entries[1].1.as_ref().unwrap();
        assert_ne!(Some(other), entries[0].1.as_ref());
        let bytes = codec::encode_bounded::<_, RECORD_BYTES_MAX>("kept", other).unwrap();
        views.tree.insert(key(TASKS, &[&first.0]), bytes).unwrap();
        let differences = check(&replica, &me, &implements, t).unwrap();
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(
            differences[0].starts_with(&format!("task index: listing {first} carries")),
            "{differences:?}"
        );
    }
}

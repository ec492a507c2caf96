//! Reads that fold every listing (feed, tasks, metrics, export): answered
//! from a snapshot of the store on a blocking thread, a few at a time, so
//! that a large store never stalls gossip and sync.

use super::{DaemonError, Reply};
use crate::store::SledSnapshot;
use credence_protocol::changes::TaskRow;
use credence_protocol::fold::{ListingState, Task};
use credence_protocol::model::{AuthorityId, ListKind, Listing, NoticeId};
use credence_protocol::replica::Replica;
use credence_protocol::roster::Federation;
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Operator requests that fold every listing answered at once.
pub const BACKGROUND_READS_MAX: usize = 2;
/// Such requests waiting for one of those places; past that, `busy`.
pub const BACKGROUND_READS_WAITING_MAX: usize = 8;
/// Account name searches read at once: a pool of their own, so that a
/// burst of searches never makes a department's page of tasks wait.
pub const SEARCHES_MAX: usize = 2;
/// Name searches waiting for one of those places; past that, `busy`.
pub const SEARCHES_WAITING_MAX: usize = 16;
/// Public feed folds at once: the anonymous feed has places of its own, so
/// that no anonymous load takes the operators'.
pub const PUBLIC_READS_MAX: usize = 1;
/// Public feed folds waiting; past that, `busy` (but a fresh feed is
/// answered from the cache without any place).
pub const PUBLIC_READS_WAITING_MAX: usize = 4;
/// How long a computed feed is served to everyone who asks.
pub const FEED_CACHE_MS: u64 = 1_000;
/// Public extracts streamed at once: they have places of their own, so
/// that a long download takes no feed page's place; past that, `busy`.
pub const EXTRACTS_MAX: usize = 2;
/// Bytes of one piece of a streamed extract.
pub const EXTRACT_CHUNK_BYTES: usize = 64 * 1024;
/// Pieces of a streamed extract read ahead of the client.
pub const EXTRACT_CHUNKS_AHEAD: usize = 4;
/// How long a streamed extract waits for its client to take the next
/// piece before it gives up (and frees its place): a client that stalls
/// must not hold one of the [`EXTRACTS_MAX`] places for ever.
pub const EXTRACT_SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Feed entries one step of an extract reads.
const EXTRACT_PAGE: usize = 1024;

/// The pieces of a streamed read, in order; an error ends it.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Vec<u8>, DaemonError>>;
/// Most listings in one page of the publicity feed.
pub const FEED_LISTINGS_MAX: usize = 1000;
/// Listings in a page of the publicity feed when none is asked.
pub const FEED_LISTINGS_DEFAULT: usize = 100;

/// The places for background reads and the count of those admitted.
#[derive(Clone, Debug)]
pub struct Background {
    /// Reads running or waiting (at most `places + waiting`).
    pub(super) admitted: Arc<AtomicUsize>,
    /// Places to run them.
    pub(super) places: Arc<tokio::sync::Semaphore>,
    most: usize,
    /// What its reads are, for the answer that says it is busy.
    reads: &'static str,
}

impl Background {
    /// A pool of `places` with `waiting` more reads let wait.
    pub fn new(places: usize, waiting: usize, reads: &'static str) -> Background {
        Background {
            admitted: Arc::default(),
            places: Arc::new(tokio::sync::Semaphore::new(places)),
            most: places + waiting,
            reads,
        }
    }

    /// The operators' pool.
    pub fn operators() -> Background {
        Background::new(
            BACKGROUND_READS_MAX,
            BACKGROUND_READS_WAITING_MAX,
            "requests that read every listing",
        )
    }

    /// The account name searches' pool.
    pub fn searches() -> Background {
        Background::new(SEARCHES_MAX, SEARCHES_WAITING_MAX, "name searches")
    }

    /// The public feed's pool.
    pub fn public() -> Background {
        Background::new(
            PUBLIC_READS_MAX,
            PUBLIC_READS_WAITING_MAX,
            "public reads that read every listing",
        )
    }

    /// The public extracts' pool (no waiting: a download starts or is
    /// told to come back).
    pub fn extracts() -> Background {
        Background::new(EXTRACTS_MAX, 0, "extracts")
    }
}

/// A feed and when it was computed.
type Computed = (Timestamp, Arc<Vec<ListingState>>);

/// The feed last computed, served while fresh.
#[derive(Clone, Debug, Default)]
pub struct FeedCache(Arc<std::sync::Mutex<Option<Computed>>>);

impl FeedCache {
    /// The feed computed at most [`FEED_CACHE_MS`] before `now`, if any.
    pub fn fresh(&self, now: Timestamp) -> Option<Arc<Vec<ListingState>>> {
        let cached = self.0.lock().ok()?;
        cached
            .as_ref()
            .filter(|(at, _)| now.0.saturating_sub(at.0) < FEED_CACHE_MS)
            .map(|(_, feed)| Arc::clone(feed))
    }

    /// Keeps `feed`, computed at `at`.
    pub fn keep(&self, at: Timestamp, feed: Arc<Vec<ListingState>>) {
        if let Ok(mut cached) = self.0.lock() {
            *cached = Some((at, feed));
        }
    }
}

/// Counts one read off the event loop while it lives.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Background {
    /// One more read counted while it lives, or none when as many as the
    /// pool takes already run or wait.
    fn admit(&self) -> Option<Admitted> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.most {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Admitted(Arc::clone(&self.admitted)))
    }

    /// Answers `reply` with `read` over `snapshot` on a blocking thread,
    /// or `busy` when too many such reads already run or wait.
    pub fn run<T: Send + 'static>(
        &self,
        federation: Federation,
        snapshot: SledSnapshot,
        reply: Reply<T>,
        read: impl FnOnce(&Replica<SledSnapshot>) -> Result<T, DaemonError> + Send + 'static,
    ) {
        let Some(counted) = self.admit() else {
            let _ = reply.send(Err(DaemonError::Busy(format!(
                "this node is already answering or holding {} {}; try again in a moment",
                self.most, self.reads
            ))));
            return;
        };
        let places = Arc::clone(&self.places);
        let replica = Replica::new(federation, snapshot);
        tokio::spawn(async move {
            // The semaphore is never closed.
            let Ok(place) = places.acquire_owned().await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let answer = read(&replica);
                // Its place is free before the caller hears back.
                drop((place, counted));
                let _ = reply.send(answer);
            })
            .await;
        });
    }
}

impl Background {
    /// Answers `reply` at once with the receiving end of a stream that
    /// `produce` fills over `snapshot` on a blocking thread, piece by
    /// piece, at most [`EXTRACT_CHUNKS_AHEAD`] ahead of the reader (so
    /// memory stays bounded however large the answer). `produce` hands
    /// each piece to its sink, which says whether to go on: the reader
    /// left, or took no piece for [`EXTRACT_SEND_WAIT`], ends it. An
    /// error `produce` returns is the stream's last item. `busy` when
    /// every place is taken.
    pub fn stream(
        &self,
        federation: Federation,
        snapshot: SledSnapshot,
        reply: Reply<Chunks>,
        produce: impl FnOnce(
            &Replica<SledSnapshot>,
            &mut dyn FnMut(Vec<u8>) -> bool,
        ) -> Result<(), DaemonError>
        + Send
        + 'static,
    ) {
        let Some(counted) = self.admit() else {
            let _ = reply.send(Err(DaemonError::Busy(format!(
                "this node is already streaming {} extracts; try again in a moment",
                self.most
            ))));
            return;
        };
        let places = Arc::clone(&self.places);
        let replica = Replica::new(federation, snapshot);
        let (sender, receiver) = tokio::sync::mpsc::channel(EXTRACT_CHUNKS_AHEAD);
        if reply.send(Ok(receiver)).is_err() {
            return;
        }
        let runtime = tokio::runtime::Handle::current();
        tokio::spawn(async move {
            // The semaphore is never closed.
            let Ok(place) = places.acquire_owned().await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let mut sink = |piece: Vec<u8>| {
                    runtime
                        .block_on(tokio::time::timeout(
                            EXTRACT_SEND_WAIT,
                            sender.send(Ok(piece)),
                        ))
                        .is_ok_and(|sent| sent.is_ok())
                };
                if let Err(error) = produce(&replica, &mut sink) {
                    let _ = runtime.block_on(tokio::time::timeout(
                        EXTRACT_SEND_WAIT,
                        sender.send(Err(error)),
                    ));
                }
                // Counted out before its place is free: whoever can take every
                // place finds the count down too.
                drop((counted, place));
            })
            .await;
        });
    }
}

/// The public extract at `t`, in pieces of about [`EXTRACT_CHUNK_BYTES`]
/// handed to `sink` (until it says stop): every entry the publicity feed
/// shows, in feed order, as CSV or JSON Lines
/// ([`crate::views::extract_row`]), all read from one snapshot. Through
/// the feed index the views keep (`indexed`), a page at a time; while the
/// views are derived again, by folding every listing.
pub fn extract(
    replica: &Replica<SledSnapshot>,
    t: Timestamp,
    csv: bool,
    indexed: bool,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), DaemonError> {
    let federation = replica.federation();
    let mut piece = crate::views::extract_header(csv);
    let mut add = |state: &ListingState, piece: &mut Vec<u8>| {
        crate::views::extract_row(federation, state, t, csv, piece);
        piece.len() < EXTRACT_CHUNK_BYTES || sink(std::mem::take(piece))
    };
    if indexed {
        let mut ask = FeedAsk {
            after: None,
            limit: EXTRACT_PAGE,
            filter: FeedFilter::ALL,
        };
        loop {
            let page = feed_page(replica, &ask, t)?;
            for state in &page.listings {
                if !add(state, &mut piece) {
                    return Ok(());
                }
            }
            match page.last {
                Some(last) if page.more => ask.after = Some(last),
                _ => break,
            }
        }
    } else {
        for state in &feed(replica, t)? {
            if !add(state, &mut piece) {
                return Ok(());
            }
        }
    }
    if !piece.is_empty() {
        sink(piece);
    }
    Ok(())
}

/// What the public sees at `t` ([`credence_protocol::public::shown`]):
/// published listings and public corrections, newest first (issue time
/// descending, then id), the order the feed's pages follow.
pub fn feed<S: Store>(
    replica: &Replica<S>,
    t: Timestamp,
) -> Result<Vec<ListingState>, DaemonError> {
    let mut out = Vec::new();
    for id in replica.store().listings().map_err(DaemonError::internal)? {
        if let Some(state) = replica
            .listing_state(&id, t)
            .map_err(DaemonError::internal)?
            && credence_protocol::public::shown(&state, t).is_some()
        {
            out.push(state);
        }
    }
    out.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Most listings of one page of tasks.
pub const TASK_LISTINGS_MAX: usize = 1000;
/// Listings of a page of tasks unless the caller asks for another number.
pub const TASK_LISTINGS_DEFAULT: usize = 100;

/// Which page of this member's tasks: the tasks of at most `limit`
/// listings, in listing id order, after the listing `after`.
#[derive(Clone, Copy, Debug)]
pub struct TaskAsk {
    /// The listing the page follows (none: from the first).
    pub after: Option<NoticeId>,
    /// Most listings.
    pub limit: usize,
}

/// A page of tasks, and whether more listings with tasks follow.
pub type TaskPage = (Vec<TaskRow>, bool);

/// The page `ask` names of every task `all` (as [`Replica::tasks`] gives
/// them): ordered by listing id, each listing's tasks together.
pub fn tasks_page(mut all: Vec<(Task, ListingState)>, ask: &TaskAsk) -> TaskPage {
    all.sort_by_key(|(task, _)| task.listing);
    let mut listings = 0;
    let mut more = false;
    let mut page = Vec::new();
    let mut last: Option<NoticeId> = None;
    for (task, state) in all {
        if ask.after.is_some_and(|after| task.listing <= after) {
            continue;
        }
        if last != Some(task.listing) {
            if listings == ask.limit {
                more = true;
                break;
            }
            listings += 1;
            last = Some(task.listing);
        }
        page.push(TaskRow::of(task, &state));
    }
    (page, more)
}

/// Which page of the public feed: after the entry `after` (issue time and
/// id), at most `limit` entries, of those `filter` admits.
#[derive(Clone, Debug)]
pub struct FeedAsk {
    /// The entry the page follows (none: the newest first).
    pub after: Option<(u64, NoticeId)>,
    /// Most entries.
    pub limit: usize,
    /// Which entries.
    pub filter: FeedFilter,
}

/// Most feed entries one filtered page looks at: a filter that admits
/// few entries answers a short page with a cursor to go on from, so that
/// no page costs more than this many entries.
pub const FEED_SCAN_MAX: usize = 4096;

/// Which entries of the public feed a page shows (the portal's filters):
/// every field set must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// The red list or the blacklist.
    pub list: Option<ListKind>,
    /// The issuer's administrative region code.
    pub region: Option<String>,
    /// The category code.
    pub category: Option<String>,
    /// The issuing member.
    pub issuer: Option<AuthorityId>,
    /// Taking effect at or after.
    pub since: Option<Timestamp>,
    /// Taking effect before.
    pub until: Option<Timestamp>,
}

impl FeedFilter {
    /// Every entry.
    pub const ALL: FeedFilter = FeedFilter {
        list: None,
        region: None,
        category: None,
        issuer: None,
        since: None,
        until: None,
    };

    /// Whether no field is set.
    pub fn is_all(&self) -> bool {
        *self == FeedFilter::ALL
    }

    /// Most entries a page with this filter looks at: every entry up to
    /// the page's limit without a filter (the extract asks for them all),
    /// [`FEED_SCAN_MAX`] with one.
    fn scan_max(&self) -> usize {
        if self.is_all() {
            usize::MAX
        } else {
            FEED_SCAN_MAX
        }
    }

    /// Whether `state` is one of the entries asked for.
    pub fn admits(&self, federation: &Federation, state: &ListingState) -> bool {
        let l = &state.listing;
        self.may_admit(federation, &state.issuer, l)
            && self.since.is_none_or(|since| l.effective_at >= since)
            && self.until.is_none_or(|until| l.effective_at < until)
    }

    /// Whether a listing its issuer signed so may be admitted: by what no
    /// amendment changes (its list, category and issuer), so that a page
    /// passes over the others without folding them.
    fn may_admit(&self, federation: &Federation, issuer: &AuthorityId, l: &Listing) -> bool {
        self.list.is_none_or(|list| l.list == list)
            && self.category.as_ref().is_none_or(|c| *c == l.category)
            && self.issuer.is_none_or(|wanted| wanted == *issuer)
            && self.region.as_ref().is_none_or(|region| {
                federation
                    .member(issuer)
                    .is_some_and(|m| m.region == *region)
            })
    }

    /// Whether the stored listing `id` may be admitted, read from its
    /// notice alone (no fold); a notice that cannot be read is left to
    /// the fold to judge.
    fn may_admit_stored(&self, replica: &Replica<SledSnapshot>, id: &NoticeId) -> bool {
        if self.list.is_none()
            && self.category.is_none()
            && self.issuer.is_none()
            && self.region.is_none()
        {
            return true;
        }
        let Ok(Some(bytes)) = replica.store().notice(id) else {
            return true;
        };
        let notice = credence_protocol::codec::decode_envelope(&bytes)
            .and_then(|envelope| credence_protocol::codec::decode_stored_notice(&envelope.body));
        match notice {
            Ok(notice) => match &notice.kind {
                credence_protocol::model::NoticeKind::List(listing) => {
                    self.may_admit(replica.federation(), &notice.author, listing)
                }
                _ => false,
            },
            Err(_) => true,
        }
    }
}

/// A page of the public feed, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedPage {
    /// The listings shown.
    pub listings: Vec<ListingState>,
    /// More follow.
    pub more: bool,
    /// The entry the page stopped at (the next page's `after`): the last
    /// listing of the page, or past it the last entry a filter looked at.
    pub last: Option<(u64, NoticeId)>,
}

fn cursor_of(state: &ListingState) -> (u64, NoticeId) {
    (state.issued_at.0, state.id)
}

/// The page `ask` names of the whole feed `feed` (in the feed's order).
pub fn page_of(federation: &Federation, feed: &[ListingState], ask: &FeedAsk) -> FeedPage {
    let start = ask.after.map_or(0, |(at, id)| {
        feed.partition_point(|s| {
            (std::cmp::Reverse(s.issued_at.0), s.id) <= (std::cmp::Reverse(at), id)
        })
    });
    let rest = &feed[start..];
    let (mut listings, mut last, mut scanned) = (Vec::new(), None, 0);
    for state in rest {
        if listings.len() == ask.limit || scanned == ask.filter.scan_max() {
            break;
        }
        scanned += 1;
        last = Some(cursor_of(state));
        if ask.filter.admits(federation, state) {
            listings.push(state.clone());
        }
    }
    FeedPage {
        more: scanned < rest.len(),
        listings,
        last,
    }
}

/// The page `ask` names, read through the feed index the views keep: it
/// folds only the entries it looks at (the page's, and with a filter at
/// most [`FEED_SCAN_MAX`]).
pub fn feed_page(
    replica: &Replica<SledSnapshot>,
    ask: &FeedAsk,
    t: Timestamp,
) -> Result<FeedPage, DaemonError> {
    let federation = replica.federation();
    let mut after = ask.after.map(|(at, id)| (Timestamp(at), id));
    let mut listings = Vec::new();
    let mut last = None;
    let mut scanned = 0;
    let batch = if ask.filter.is_all() {
        ask.limit.saturating_add(1)
    } else {
        FEED_SCAN_BATCH
    };
    loop {
        let ids = replica
            .store()
            .shown_page(after, batch)
            .map_err(DaemonError::internal)?;
        if ids.is_empty() {
            return Ok(FeedPage {
                listings,
                more: false,
                last,
            });
        }
        for (at, id) in ids {
            if listings.len() == ask.limit || scanned == ask.filter.scan_max() {
                return Ok(FeedPage {
                    listings,
                    more: true,
                    last,
                });
            }
            scanned += 1;
            after = Some((at, id));
            last = Some((at.0, id));
            if !ask.filter.may_admit_stored(replica, &id) {
                continue;
            }
            let Some(state) = replica
                .listing_state(&id, t)
                .map_err(DaemonError::internal)?
            else {
                continue;
            };
            if credence_protocol::public::shown(&state, t).is_some()
                && ask.filter.admits(federation, &state)
            {
                listings.push(state);
            }
        }
    }
}

/// What the public portal looks up: only what the publicity feed shows
/// (published listings and public corrections), which is public already,
/// so such a look-up is not a consultation of restricted records and is
/// not registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicAsk {
    /// The listings naming a subject, by identifier.
    Subject(credence_protocol::model::SubjectKey),
    /// Listings by a name (search text, normalised), at most a number.
    Name(String, usize),
    /// One listing.
    Listing(NoticeId),
}

/// A page of the listings with an open objection, in id order after
/// `ask.after`, at most `ask.limit`, and whether more follow: through the
/// objection index the views keep (`indexed`), or, while the views are
/// derived again, by folding every listing.
pub fn objected_page(
    replica: &Replica<SledSnapshot>,
    ask: &TaskAsk,
    t: Timestamp,
    indexed: bool,
) -> Result<(Vec<ListingState>, bool), DaemonError> {
    let open = |s: &ListingState| s.objections.iter().any(|o| o.ruling.is_none());
    let ids = if indexed {
        replica
            .store()
            .objected_listings(ask.after.as_ref(), ask.limit.saturating_add(1))
            .map_err(DaemonError::internal)?
    } else {
        let mut all = replica.store().listings().map_err(DaemonError::internal)?;
        all.sort_unstable();
        all.retain(|id| ask.after.is_none_or(|after| *id > after));
        all
    };
    let mut found = Vec::new();
    for id in ids {
        let Some(state) = replica
            .listing_state(&id, t)
            .map_err(DaemonError::internal)?
        else {
            continue;
        };
        if open(&state) {
            if found.len() == ask.limit {
                return Ok((found, true));
            }
            found.push(state);
        }
    }
    Ok((found, false))
}

/// The listings the public feed shows whose subject or a linked person
/// has a name matching `text`, at most `limit`, and whether there were
/// more; through the views (`indexed`), a listing the feed does not show
/// is passed over without folding it.
pub fn public_search(
    replica: &Replica<SledSnapshot>,
    text: &str,
    limit: usize,
    t: Timestamp,
    indexed: bool,
) -> Result<(Vec<ListingState>, bool), DaemonError> {
    let store = replica.store();
    let found = store
        .name_candidates(&credence_protocol::names::grams(text))
        .map_err(DaemonError::internal)?;
    let candidate = |id: &NoticeId| {
        !indexed
            || store
                .kept(id)
                .ok()
                .flatten()
                .is_none_or(|k| k.shown.is_some())
    };
    let shown = |s: &ListingState| credence_protocol::public::shown(s, t).is_some();
    crate::node::search_among(replica, found, text, limit, &candidate, &shown, t)
        .map_err(DaemonError::internal)
}

/// Entries a filtered page reads from the feed index at a time.
const FEED_SCAN_BATCH: usize = 256;

/// Objections past their ruling deadline, over every listing.
pub fn overdue<S: Store>(replica: &Replica<S>, t: Timestamp) -> Result<usize, DaemonError> {
    let mut count = 0;
    for id in replica.store().listings().map_err(DaemonError::internal)? {
        if let Some(state) = replica
            .listing_state(&id, t)
            .map_err(DaemonError::internal)?
        {
            count += state.overdue_objections().count();
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use credence_protocol::fold::TaskAction;
    use credence_protocol::testkit;

    // Pages hold whole listings, in id order, and follow one another with
    // nothing left out or repeated.
    #[test]
    fn task_pages_hold_whole_listings_in_order() {
        let test = testkit::federation(1, 2);
        let t = Timestamp(1_767_225_600_000);
        let notice = credence_protocol::model::Notice {
            version: credence_protocol::model::NOTICE_VERSION,
            federation: test.federation.id(),
            roster: 0,
            author: test.author(0),
            seq: 1,
            prev: NoticeId::default(),
            issued_at: t,
            kind: credence_protocol::model::NoticeKind::List(testkit::listing(1, "food-drug", t)),
        };
        let listed = credence_protocol::fold::FoldInput {
            id: NoticeId([1; 32]),
            notice: Arc::new(notice),
        };
        let state = credence_protocol::fold::fold(&listed, &[], t);
        let task = |listing: u8, measure: &str| {
            (
                Task {
                    listing: NoticeId([listing; 32]),
                    measure: measure.into(),
                    action: TaskAction::Apply,
                },
                state.clone(),
            )
        };
        let all = vec![
            task(3, "a"),
            task(1, "a"),
            task(2, "a"),
            task(1, "b"),
            task(3, "b"),
        ];
        let ask = |after: Option<u8>, limit| TaskAsk {
            after: after.map(|l| NoticeId([l; 32])),
            limit,
        };
        let listings = |page: &TaskPage| {
            page.0
                .iter()
                .map(|row| row.task.listing.0[0])
                .collect::<Vec<_>>()
        };
        let first = tasks_page(all.clone(), &ask(None, 2));
        assert_eq!(listings(&first), [1, 1, 2]);
        assert!(first.1);
        let second = tasks_page(all.clone(), &ask(Some(2), 2));
        assert_eq!(listings(&second), [3, 3]);
        assert!(!second.1);
        assert_eq!(tasks_page(all, &ask(Some(3), 2)), (Vec::new(), false));
    }
}

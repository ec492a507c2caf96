use super::*;
use crate::config::LogFormat;
use crate::node::{IDENTITY_FILE, KEY_FILE, ROSTER_FILE};
use credence_protocol::testkit;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A daemon of member 0 of a test federation, not running: commands
/// are handed to it directly.
fn daemon(dir: &std::path::Path) -> Daemon {
    let test = testkit::federation(3, 2);
    std::fs::write(dir.join(IDENTITY_FILE), "name = \"market\"\n").unwrap();
    crate::keyfile::write_new(&dir.join(KEY_FILE), &test.keys[0]).unwrap();
    crate::mark::write(
        dir,
        &test.author(0),
        &credence_protocol::engine::Mark::zero(),
    )
    .unwrap();
    let roster = test.federation.roster().to_document().to_toml();
    std::fs::write(dir.join(ROSTER_FILE), roster).unwrap();
    daemon_again(dir)
}

/// The first page of tasks.
const FIRST_TASKS: TaskAsk = TaskAsk {
    after: None,
    limit: TASK_LISTINGS_MAX,
};

/// The whole feed, as the extract asks for it.
const ALL: FeedAsk = FeedAsk {
    after: None,
    limit: usize::MAX,
    filter: FeedFilter::ALL,
};

// Reads that fold every listing are answered from a snapshot off the
// event loop, the same as the live replica would answer; they wait for
// one of BACKGROUND_READS_MAX places, and past the waiting bound the
// caller is told to come back.
#[tokio::test]
async fn whole_store_reads_run_off_the_loop_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let listing = testkit::listing(1, "food-drug", Timestamp(t.0 - 60_000));
    daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    let live = daemon.node.export().unwrap();
    let live_feed = feed(daemon.node.replica(), t).unwrap();

    let (reply, answer) = oneshot::channel();
    let read = Read {
        account: "audit-office".into(),
        clearance: credence_protocol::access::Clearance::Auditor,
        stated: Stated {
            purpose: "annual audit".into(),
            legal_basis: "Audit Law art. 20".into(),
        },
    };
    daemon.on_command(Command::Export(read, reply));
    let exported = answer.await.unwrap().unwrap();
    // The export was registered, under the account that made it.
    let page = daemon.register_page(0, 10).unwrap();
    assert_eq!(page.size, 1);
    assert_eq!(page.records[0].kind, "export");
    assert_eq!(page.records[0].account.as_deref(), Some("audit-office"));
    assert_eq!(exported.envelopes, live.envelopes);
    assert_eq!(exported.heads, live.heads);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    let fed = answer.await.unwrap().unwrap();
    assert_eq!(fed.listings.len(), 1);
    assert_eq!(fed.listings, live_feed);

    let most = BACKGROUND_READS_MAX + BACKGROUND_READS_WAITING_MAX;
    daemon.background.admitted.store(most, Ordering::SeqCst);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Metrics(reply));
    let refused = answer.await.unwrap().unwrap_err();
    assert!(matches!(refused, DaemonError::Busy(_)), "{refused:?}");
    assert_eq!(daemon.background.admitted.load(Ordering::SeqCst), most);
    daemon.background.admitted.store(0, Ordering::SeqCst);
    // With every place taken, reads wait for one instead of failing.
    let taken = Arc::clone(&daemon.background.places)
        .acquire_many_owned(BACKGROUND_READS_MAX as u32)
        .await
        .unwrap();
    let (reply, mut waiting) = oneshot::channel();
    daemon.on_command(Command::Tasks(None, FIRST_TASKS, reply));
    tokio::task::yield_now().await;
    assert!(waiting.try_recv().is_err(), "no place was free");
    assert_eq!(daemon.background.admitted.load(Ordering::SeqCst), 1);
    drop(taken);
    let me = daemon.node.author();
    let live_tasks = daemon.node.replica().tasks(&me, t).unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().0.len(), live_tasks.len());
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Metrics(reply));
    let text = answer.await.unwrap().unwrap();
    assert!(text.contains("credence_notices_accepted_total"), "{text}");
    assert!(
        text.contains("credence_issuing_state{state=\"ready\"} 1"),
        "{text}"
    );
    // Every background read gave its place back.
    assert_eq!(daemon.background.admitted.load(Ordering::SeqCst), 0);
}

// An issue through the loop is acknowledged only after the mark file
// names it; a data directory whose mark is ahead of its store refuses.
#[tokio::test]
async fn issuing_writes_the_mark_and_a_lost_store_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let (reply, answer) = oneshot::channel();
    let listing = testkit::listing(2, "food-drug", Timestamp(t.0 - 60_000));
    daemon.on_command(Command::Issue(
        Box::new(NoticeKind::List(listing)),
        None,
        reply,
    ));
    let IssueOutcome { id, seq, .. } = answer.await.unwrap().unwrap();
    let me = daemon.node.author();
    let mark = crate::mark::read(dir.path(), &me).unwrap().unwrap();
    assert_eq!((mark.id, mark.seq), (id, seq));
    drop(daemon);
    std::fs::remove_dir_all(dir.path().join(crate::node::STORE_DIR)).unwrap();
    // Only the mark's own notice was lost: it comes back from the mark.
    let daemon = super::tests::daemon_again(dir.path());
    assert_eq!(daemon.node.engine.readiness(), &Readiness::Ready);
    assert_eq!(
        daemon
            .node
            .replica()
            .store()
            .head(&me)
            .unwrap()
            .map(|h| h.seq),
        Some(1)
    );
    drop(daemon);
    // A mark two notices ahead of the store: restoring until peers help.
    let ahead = credence_protocol::engine::Mark {
        seq: 3,
        id: NoticeId([5; 32]),
        root: None,
        envelope: None,
    };
    crate::mark::write(dir.path(), &me, &ahead).unwrap();
    let mut daemon = super::tests::daemon_again(dir.path());
    let (reply, answer) = oneshot::channel();
    let listing = testkit::listing(3, "food-drug", Timestamp(t.0 - 60_000));
    daemon.on_command(Command::Issue(
        Box::new(NoticeKind::List(listing)),
        None,
        reply,
    ));
    let refused = answer.await.unwrap().unwrap_err();
    assert_eq!(
        refused,
        DaemonError::Refused(Refusal::NotReady(Readiness::Restoring { held: 1, mark: 3 }))
    );
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Status(reply));
    let status = answer.await.unwrap().unwrap();
    assert_eq!(
        (status.ready, status.issuing.as_str()),
        (false, "restoring")
    );
}

fn daemon_again(dir: &std::path::Path) -> Daemon {
    let config = RunConfig {
        data: dir.to_path_buf(),
        listen: Vec::new(),
        bootstrap: Vec::new(),
        http: "127.0.0.1:0".parse().unwrap(),
        sync_interval: Duration::from_secs(30),
        mdns: false,
        log: LogFormat::Human,
        register_retention: None,
    };
    Daemon::start(config).unwrap().0
}

// The anonymous feed has reads of its own and a one-second cache: with
// its places all taken, operators' whole-store reads are still answered,
// and a fresh feed is answered from the cache; with the operators' places
// taken, the feed is still answered.
#[tokio::test]
async fn anonymous_feed_load_never_takes_the_operators_places() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let listing = testkit::listing(4, "food-drug", Timestamp(t.0 - 60_000));
    daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    let public_most = PUBLIC_READS_MAX + PUBLIC_READS_WAITING_MAX;
    // While the views are derived again the feed folds every listing: a
    // first feed fills the cache.
    daemon.watcher.hold = true;
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert_eq!(answer.await.unwrap().unwrap().listings.len(), 1);
    // Anonymous load takes every public place.
    daemon.public.admitted.store(public_most, Ordering::SeqCst);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Tasks(None, FIRST_TASKS, reply));
    assert!(answer.await.unwrap().is_ok(), "operators are served");
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert_eq!(
        answer.await.unwrap().unwrap().listings.len(),
        1,
        "a fresh feed comes from the cache"
    );
    // Once the cache is stale, more anonymous load waits its turn or is
    // told to come back; operators are still served.
    daemon.feed_cache = FeedCache::default();
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert!(matches!(answer.await.unwrap(), Err(DaemonError::Busy(_))));
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Metrics(reply));
    assert!(answer.await.unwrap().is_ok());
    // The same through the views: a page read takes a public place too.
    daemon.watcher.hold = false;
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert!(matches!(answer.await.unwrap(), Err(DaemonError::Busy(_))));
    // And the other way round.
    daemon.public.admitted.store(0, Ordering::SeqCst);
    let most = BACKGROUND_READS_MAX + BACKGROUND_READS_WAITING_MAX;
    daemon.background.admitted.store(most, Ordering::SeqCst);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert_eq!(answer.await.unwrap().unwrap().listings.len(), 1);
}

// An idempotency key signs once: a retry gets the first notice, marked
// replayed; another body under the key is refused; a key whose first
// answer was lost before its record named the notice finds the notice in
// the own log, across a restart.
#[tokio::test]
async fn an_idempotency_key_signs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let key = |body: u8| IssueKey {
        account: "desk".into(),
        key: "order-77".into(),
        request: [body; 32],
    };
    let listing = NoticeKind::List(testkit::listing(7, "food-drug", Timestamp(t.0 - 60_000)));
    let issue = |daemon: &mut Daemon, key: IssueKey| {
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Issue(Box::new(listing.clone()), Some(key), reply));
        answer
    };
    let first = issue(&mut daemon, key(1)).await.unwrap().unwrap();
    assert!(!first.replayed);
    let again = issue(&mut daemon, key(1)).await.unwrap().unwrap();
    assert_eq!(
        (again.id, again.seq, again.replayed),
        (first.id, first.seq, true)
    );
    let other = issue(&mut daemon, key(2)).await.unwrap().unwrap_err();
    assert!(
        matches!(other, DaemonError::IdempotencyConflict(_)),
        "{other:?}"
    );
    // The first answer lost before the key's record named the notice.
    let store = daemon.node.replica().store();
    let seen = store
        .idempotency("desk", "order-77", now())
        .unwrap()
        .unwrap();
    store
        .put_idempotency(
            "desk",
            "order-77",
            &crate::store::Idempotency {
                issued: None,
                ..seen
            },
        )
        .unwrap();
    daemon
        .node
        .engine
        .replica_mut()
        .store_mut()
        .flush()
        .unwrap();
    drop(daemon);
    let mut daemon = daemon_again(dir.path());
    let found = issue(&mut daemon, key(1)).await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.seq, found.replayed),
        (first.id, first.seq, true)
    );
    let me = daemon.node.author();
    assert_eq!(
        daemon
            .node
            .replica()
            .store()
            .head(&me)
            .unwrap()
            .map(|h| h.seq),
        Some(first.seq),
        "nothing more was signed"
    );
}

// The portal's filtered pages: only the entries the filter admits, and a
// page that stops early names where it stopped, so that the next one goes
// on from there; the same whether the feed is read through the views or
// folded while they are derived again.
#[tokio::test]
async fn a_filtered_feed_page_shows_what_it_asks_and_goes_on_from_where_it_stopped() {
    use credence_protocol::model::ListKind;
    use credence_protocol::time::DAY_MS;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    for (subject, days_ago) in [(1, 10), (2, 5), (3, 1)] {
        let listing = testkit::listing(subject, "food-drug", Timestamp(t.0 - days_ago * DAY_MS));
        daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    }
    let recent = FeedFilter {
        since: Some(Timestamp(t.0 - 6 * DAY_MS)),
        ..FeedFilter::ALL
    };
    for hold in [true, false] {
        daemon.watcher.hold = hold;
        daemon.feed_cache = FeedCache::default();
        let ask = |after, limit, filter: &FeedFilter| FeedAsk {
            after,
            limit,
            filter: filter.clone(),
        };
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Feed(ask(None, 10, &recent), reply));
        let page = answer.await.unwrap().unwrap();
        // Issued at the same time, the feed orders them by id.
        let mut subjects: Vec<&str> = page
            .listings
            .iter()
            .map(|s| s.listing.subject.id.as_str())
            .collect();
        subjects.sort_unstable();
        assert_eq!(
            subjects,
            [testkit::uscc(2), testkit::uscc(3)],
            "hold {hold}"
        );
        assert!(!page.more);
        // One at a time: the first page stops after its one entry.
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Feed(ask(None, 1, &recent), reply));
        let first = answer.await.unwrap().unwrap();
        assert_eq!(first.listings.len(), 1);
        assert!(first.more, "hold {hold}");
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Feed(ask(first.last, 1, &recent), reply));
        let second = answer.await.unwrap().unwrap();
        assert_eq!(second.listings.len(), 1);
        assert_ne!(second.listings[0].id, first.listings[0].id, "it goes on");
        assert_ne!(second.listings[0].listing.subject.id, testkit::uscc(1));
        // Nothing on the red list: an empty page, and nothing more.
        let red = FeedFilter {
            list: Some(ListKind::Red),
            ..FeedFilter::ALL
        };
        let (reply, answer) = oneshot::channel();
        daemon.on_command(Command::Feed(ask(None, 10, &red), reply));
        let none = answer.await.unwrap().unwrap();
        assert!(none.listings.is_empty() && !none.more, "hold {hold}");
    }
}

// Without a filter a page looks at every entry up to its limit (the
// extract asks for them all); with one, at most FEED_SCAN_MAX, then says
// where it stopped.
#[tokio::test]
async fn only_a_filtered_page_stops_at_the_scan_bound() {
    use credence_protocol::model::ListKind;
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let listing = testkit::listing(1, "food-drug", Timestamp(t.0 - 60_000));
    daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    let one = answer.await.unwrap().unwrap().listings.remove(0);
    let count = FEED_SCAN_MAX + 904;
    // The same entry many times over, newest first, each its own id.
    let feed: Vec<ListingState> = (0..count)
        .map(|n| {
            let mut state = one.clone();
            state.issued_at = Timestamp(t.0 - n as u64);
            state.id.0[..8].copy_from_slice(&(n as u64).to_be_bytes());
            state
        })
        .collect();
    let federation = daemon.node.federation().clone();
    let all = reads::page_of(&federation, &feed, &ALL);
    assert_eq!(all.listings.len(), count);
    assert!(!all.more);
    let red = FeedAsk {
        after: None,
        limit: 100,
        filter: FeedFilter {
            list: Some(ListKind::Red),
            ..FeedFilter::ALL
        },
    };
    let page = reads::page_of(&federation, &feed, &red);
    assert!(page.listings.is_empty());
    assert!(page.more, "it stopped before the end");
    let stopped = &feed[FEED_SCAN_MAX - 1];
    assert_eq!(page.last, Some((stopped.issued_at.0, stopped.id)));
}

/// Every piece of a streamed extract, joined; the error that ended it, if
/// any.
async fn drained(mut pieces: Chunks) -> (Vec<u8>, usize, Option<DaemonError>) {
    let (mut whole, mut count) = (Vec::new(), 0);
    while let Some(piece) = pieces.recv().await {
        match piece {
            Ok(piece) => {
                assert!(
                    piece.len() <= reads::EXTRACT_CHUNK_BYTES * 2,
                    "{}",
                    piece.len()
                );
                whole.extend_from_slice(&piece);
                count += 1;
            }
            Err(error) => return (whole, count, Some(error)),
        }
    }
    (whole, count, None)
}

// The public extract streams in pieces read page by page from one
// snapshot: what it gives, through the views or (while they are derived
// again) by the fold, is the whole feed rendered row by row; extracts have
// places of their own, and one whose reader left frees its place.
#[tokio::test]
async fn the_extract_streams_the_whole_feed_in_bounded_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    // More entries than one page of the extract reads, and more bytes
    // than one piece holds.
    for batch in 0..3u32 {
        let rows: Vec<(NoticeKind, crate::node::IssueKey)> = (batch * 500..(batch + 1) * 500)
            .map(|n| {
                let listing =
                    testkit::listing(u64::from(n) + 1, "food-drug", Timestamp(t.0 - 60_000));
                let key = crate::node::IssueKey {
                    account: "desk".into(),
                    key: format!("row-{n}"),
                    request: [0; 32],
                };
                (NoticeKind::List(listing), key)
            })
            .collect();
        for issued in daemon.node.issue_once_all(rows, t) {
            issued.unwrap();
        }
    }
    let t = now();
    let federation = daemon.node.federation().clone();
    let states = feed(daemon.node.replica(), t).unwrap();
    assert_eq!(states.len(), 1500);
    for csv in [true, false] {
        let mut expected = crate::views::extract_header(csv);
        for state in &states {
            crate::views::extract_row(&federation, state, t, csv, &mut expected);
        }
        for derived_again in [false, true] {
            daemon.watcher.hold = derived_again;
            let (reply, answer) = oneshot::channel();
            daemon.on_command(Command::Extract(csv, reply));
            let (whole, pieces, error) = drained(answer.await.unwrap().unwrap()).await;
            assert!(error.is_none(), "{error:?}");
            assert!(pieces > 2, "{pieces} pieces");
            let (got, want) = (
                String::from_utf8(whole).unwrap(),
                String::from_utf8(expected.clone()).unwrap(),
            );
            assert_eq!(
                got.lines().count(),
                want.lines().count(),
                "csv {csv}, fold {derived_again}"
            );
            assert!(
                got == want,
                "csv {csv}, fold {derived_again}: the extract differs from the feed"
            );
        }
    }
    daemon.watcher.hold = false;
    // Feed pages are still answered while every extract place is taken,
    // and a further extract is told to come back.
    daemon
        .extracts
        .admitted
        .store(EXTRACTS_MAX, Ordering::SeqCst);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Extract(true, reply));
    assert!(matches!(answer.await.unwrap(), Err(DaemonError::Busy(_))));
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Feed(ALL, reply));
    assert_eq!(answer.await.unwrap().unwrap().listings.len(), 1500);
    daemon.extracts.admitted.store(0, Ordering::SeqCst);
    // A reader that leaves after the first piece: the extract stops and
    // its place is free again.
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Extract(false, reply));
    let mut pieces = answer.await.unwrap().unwrap();
    assert!(pieces.recv().await.unwrap().is_ok());
    drop(pieces);
    // Every place can be taken once the stream's thread has let go.
    let places = u32::try_from(EXTRACTS_MAX).unwrap();
    let all = daemon.extracts.places.acquire_many(places).await.unwrap();
    assert_eq!(daemon.extracts.admitted.load(Ordering::SeqCst), 0);
    drop(all);
}

// The views are kept by a step on its own thread over a snapshot: the
// loop goes on taking notices while it runs, and they wait for the next
// step; a read that uses the views waits for the step that runs and then
// brings them up to date, equal to the fold.
#[tokio::test]
async fn the_views_step_runs_off_the_loop_while_notices_come() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let me = daemon.node.author();
    let t = now();
    let issue = |daemon: &mut Daemon, from: u64, to: u64| -> Vec<(NoticeId, u64)> {
        (from..to)
            .map(|n| {
                let listing = testkit::listing(n, "food-drug", Timestamp(t.0 - 60_000));
                let issued = daemon.node.issue(NoticeKind::List(listing), t).unwrap();
                (issued.id, issued.seq)
            })
            .collect()
    };
    // A new store's views are derived by a sweep, a step a tick.
    daemon.watch_tick(t);
    daemon.watcher.done.notified().await;
    daemon.watch_done();
    assert!(
        daemon.watcher.current,
        "the sweep of an empty store is done"
    );
    // Stored without telling the watcher: the step finds them behind the
    // watermarks.
    issue(&mut daemon, 1, 201);
    daemon.watch_step(t);
    assert!(daemon.watcher.running(), "the step runs on its own thread");
    // Accepted while it runs: told to the watcher, left for the next step.
    for (id, seq) in issue(&mut daemon, 201, 301) {
        daemon.watcher.touch(id, me, seq);
    }
    daemon.watcher.done.notified().await;
    daemon.watch_done();
    assert!(!daemon.watcher.running());
    assert!(
        daemon.watcher.waiting(),
        "the notices accepted meanwhile wait"
    );
    assert!(!daemon.watcher.current, "the views miss them: reads fold");
    let kept = |daemon: &Daemon| daemon.node.replica().store().views().counts().unwrap();
    assert_eq!(kept(&daemon).listings, 200, "the step kept what it found");
    // A read's step, while another runs: it waits for it, then takes the
    // rest on the loop.
    for (id, seq) in issue(&mut daemon, 301, 311) {
        daemon.watcher.touch(id, me, seq);
    }
    daemon.watch_step(t);
    assert!(daemon.watcher.running());
    assert!(daemon.views_current(t), "every notice is in the views");
    assert!(!daemon.watcher.running() && !daemon.watcher.waiting());
    assert_eq!(kept(&daemon).listings, 310);
    assert_eq!(feed(daemon.node.replica(), t).unwrap().len(), 310);
    let differences =
        crate::keeper::check(daemon.node.replica(), &me, &daemon.node.implements(), t).unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    // Every notice is reflected: nothing is found behind the watermarks.
    let behind = daemon
        .watcher
        .keeper()
        .unwrap()
        .behind(daemon.node.replica())
        .unwrap();
    assert!(behind.is_empty(), "{} behind", behind.len());
}

// An account's name search reads and folds its candidates in a pool of
// its own, off the loop: while every one of its places is taken, the
// search waits there and the loop goes on answering; what it found comes
// back to the loop, which registers each subject read before it answers;
// past the pool's waiting bound the caller is told the name searches are
// busy.
#[tokio::test]
async fn a_name_search_waits_off_the_loop_and_is_registered_before_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    for subject in [7, 8] {
        let listing = testkit::listing(subject, "food-drug", Timestamp(t.0 - 60_000));
        daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    }
    let read = Read {
        account: "procurement-office".into(),
        clearance: credence_protocol::access::Clearance::Auditor,
        stated: Stated {
            purpose: "tender 2026-114".into(),
            legal_basis: "Procurement Law art. 22".into(),
        },
    };
    let registered = |daemon: &Daemon| daemon.register_page(0, 10).unwrap().size;
    let search = |text: &str| credence_protocol::names::search_text(text).unwrap();

    let taken = Arc::clone(&daemon.searches.places)
        .acquire_many_owned(reads::SEARCHES_MAX as u32)
        .await
        .unwrap();
    let (reply, mut searching) = oneshot::channel();
    daemon.on_command(Command::Search(
        search("Company 7"),
        10,
        read.clone(),
        reply,
    ));
    tokio::task::yield_now().await;
    assert!(searching.try_recv().is_err(), "no search place was free");
    assert_eq!(daemon.searches.admitted.load(Ordering::SeqCst), 1);
    // The loop is free meanwhile: another listing is issued and a page of
    // tasks is answered, neither waiting for the search.
    let (reply, issued) = oneshot::channel();
    let listing = testkit::listing(9, "food-drug", Timestamp(t.0 - 60_000));
    daemon.on_command(Command::Issue(
        Box::new(NoticeKind::List(listing)),
        None,
        reply,
    ));
    issued.await.unwrap().unwrap();
    let (reply, tasks) = oneshot::channel();
    daemon.on_command(Command::Tasks(None, FIRST_TASKS, reply));
    tasks.await.unwrap().unwrap();
    assert!(searching.try_recv().is_err(), "the search still waits");
    assert_eq!(
        registered(&daemon),
        0,
        "nothing read yet, nothing registered"
    );

    drop(taken);
    let found = daemon.searched.1.recv().await.unwrap();
    // Read, but neither answered nor registered until the loop takes it.
    assert!(searching.try_recv().is_err(), "answered before registered");
    assert_eq!(registered(&daemon), 0);
    assert_eq!(daemon.searches.admitted.load(Ordering::SeqCst), 0);
    daemon.on_searched(found);
    let (states, more) = searching.await.unwrap().unwrap();
    assert!(!more);
    let ids: Vec<&str> = states
        .iter()
        .map(|s| s.listing.subject.id.as_str())
        .collect();
    assert_eq!(ids, [testkit::uscc(7).as_str()]);
    let page = daemon.register_page(0, 10).unwrap();
    assert_eq!(page.size, 1);
    assert_eq!(page.records[0].kind, "lookup");
    assert_eq!(
        page.records[0].account.as_deref(),
        Some("procurement-office")
    );
    assert_eq!(page.records[0].subject, Some(testkit::uscc(7)));
    assert_eq!(page.records[0].purpose, "tender 2026-114");

    let most = reads::SEARCHES_MAX + reads::SEARCHES_WAITING_MAX;
    daemon.searches.admitted.store(most, Ordering::SeqCst);
    let (reply, answer) = oneshot::channel();
    daemon.on_command(Command::Search(search("Company 8"), 10, read, reply));
    // Refused at once, and still handed back through the loop.
    let back = daemon.searched.1.recv().await.unwrap();
    daemon.on_searched(back);
    let refused = answer.await.unwrap().unwrap_err();
    let DaemonError::Busy(why) = &refused else {
        panic!("{refused:?}");
    };
    assert!(why.contains("name searches"), "{why}");
    assert_eq!(registered(&daemon), 1, "a refused search registers nothing");
    daemon.searches.admitted.store(0, Ordering::SeqCst);
}

// Inclusion and consistency proofs come from the engine's kept tree of
// the log, on the loop: the answer is there before the loop turns again.
// Before the tree reaches the size asked (it grows on the engine's
// ticks), a tree built off the loop gives the same answer.
#[tokio::test]
async fn proofs_come_from_the_kept_tree_on_the_loop_and_from_a_built_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(dir.path());
    let t = now();
    let me = daemon.node.author();
    for n in 1..=130 {
        let listing = testkit::listing(n, "food-drug", Timestamp(t.0 - 60_000));
        daemon.node.issue(NoticeKind::List(listing), t).unwrap();
    }
    let asks = [
        ProofAsk::Inclusion {
            author: me,
            seq: 70,
            size: Some(100),
        },
        ProofAsk::Consistency {
            author: me,
            from: 70,
            to: 130,
        },
    ];
    let kept_len = |daemon: &Daemon| daemon.node.engine.kept_tree(&me).map_or(0, |t| t.len());
    assert!(kept_len(&daemon) < 100, "no tree grown yet");
    let mut built = Vec::new();
    for ask in asks {
        let (reply, mut answer) = oneshot::channel();
        daemon.on_command(Command::Proof(ask, reply));
        assert!(answer.try_recv().is_err(), "built off the loop");
        built.push(answer.await.unwrap().unwrap());
    }
    daemon.feed(Input::Tick);
    assert_eq!(kept_len(&daemon), 130, "a tick grows the tree");
    for (ask, built) in asks.into_iter().zip(&built) {
        let (reply, mut answer) = oneshot::channel();
        daemon.on_command(Command::Proof(ask, reply));
        let kept = answer.try_recv().expect("answered on the loop").unwrap();
        assert_eq!(&kept, built);
    }
    let [
        ProofAnswer::Inclusion(inclusion),
        ProofAnswer::Consistency(consistency),
    ] = &built[..]
    else {
        panic!("{built:?}");
    };
    assert!(credence_crypto::merkle::verify_inclusion(
        &inclusion.id.digest(),
        69,
        100,
        &inclusion.path,
        &inclusion.root
    ));
    assert!(credence_crypto::merkle::verify_consistency(
        70,
        130,
        &consistency.from_root,
        &consistency.to_root,
        &consistency.path
    ));
}

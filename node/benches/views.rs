//! The reads a department system, the public and a monitor make, at
//! growing store sizes, through the materialized views and beside the
//! fold of every listing each of them replaced, measured in the same run:
//! a page of tasks (100 listings, from a random place), a page of the
//! public feed (100 entries, from a random place), the counts the metrics
//! report, and a subject lookup (an index read, for scale). Goal (issue
//! 15): each p99 under 10 ms, flat from 1,000,000 to 10,000,000 notices.
//! It also times deriving the views of a whole store (a sweep, as after an
//! upgrade or `credence check --repair`).
//!
//! Prints one line per read and size and writes the costs against store
//! size as an SVG plot (`PLOT`, default `docs/views-scale.svg`, the one
//! BENCHMARKS.md shows).
//!
//! Run: `cargo bench -p credence-node --bench views` (`SIZES` is a comma
//! list of notice counts, default `10000,100000,1000000`; ten million
//! takes about 23 GB of disk and well over an hour; `FOLDS` sets how many
//! times each fold is timed, default 3; above `FOLD_MAX` notices the folds
//! are not timed and the derive, itself a fold of every listing, stands
//! for them, as at ten million each fold reads the whole store from disk).
//! At ten million, keep the fixture in a file and store it from a fresh
//! process: `FIXTURES=<dir> FIXTURES_ONLY=1` writes it, then the same
//! command without `FIXTURES_ONLY` reads it (one process that generated
//! it and stored it left the store waiting on disk reads, its pages
//! pushed out of memory by the generator's).

mod common;

use common::*;
use credence_node::daemon::{
    FeedAsk, FeedFilter, TaskAsk, feed, feed_page, overdue, page_of, tasks_page,
};
use credence_node::store::ViewsStore;
use credence_protocol::model::{NoticeId, SubjectKey, SubjectKind};
use credence_protocol::replica::Replica;
use credence_protocol::store::Store;
use credence_protocol::testkit::{self, SplitMix64};
use std::time::{Duration, Instant};

/// Reads of each kind through the views, per size.
const READS: usize = 2_000;
/// Reads of each kind by the fold, per size (each folds every listing),
/// unless `FOLDS` says otherwise (one fold of ten million notices takes
/// minutes).
const FOLDS: usize = 3;
/// Listings or entries a page holds.
const PAGE: usize = 100;
/// The goal for each read's p99 through the views.
const GOAL: Duration = Duration::from_millis(10);

/// p50 and p99 of `times`.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One read's figures at one size.
struct Figure {
    read: &'static str,
    notices: usize,
    p99: Duration,
    fold_p50: Option<Duration>,
}

/// What a read through the views is set beside.
enum Reference {
    /// The p50 of the fold it replaced.
    Fold(Duration),
    /// The fold was not timed at this size; the derive of every
    /// listing's views took this long.
    Derive(Duration),
}

fn time<T>(mut read: impl FnMut(usize) -> T, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|n| {
            let started = Instant::now();
            std::hint::black_box(read(n));
            started.elapsed()
        })
        .collect()
}

fn measure(notices: usize, folds: usize, figures: &mut Vec<Figure>) {
    let subjects = (notices as u64 / 4).max(1);
    let (test, workload) = fixture(100, notices, subjects);
    let (_dir, replica) = stored_in_sled(&test, &workload);
    let stored = replica.store().notice_count().expect("count");
    let t = workload.end;
    drop(workload);
    // Member 1 implements every measure of the catalog.
    let me = test.author(1);
    let took = views_derived(&test, &replica, 1, t);
    let listings = replica.store().listings().expect("listings").len();
    println!(
        "{stored:>9} notices: views of {listings} listings derived in {:.1} s",
        took.as_secs_f64()
    );
    let counts = replica.store().views().counts().expect("counts");
    let reads = Replica::new(test.federation.clone(), replica.store().snapshot());
    // Feed cursors at random places (found untimed).
    let shown = reads.store().shown_page(None, usize::MAX).expect("shown");
    let mut rng = SplitMix64(notices as u64);
    let mut cursors: Vec<Option<(u64, NoticeId)>> = vec![None];
    for _ in 0..64.min(shown.len()) {
        let (_, id) = shown[rng.index(shown.len())];
        let state = reads.listing_state(&id, t).expect("fold").expect("held");
        cursors.push(Some((state.issued_at.0, id)));
    }
    let random_id = |rng: &mut SplitMix64| {
        let mut id = [0u8; 32];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        NoticeId(id)
    };
    let afters: Vec<NoticeId> = (0..64).map(|_| random_id(&mut rng)).collect();

    let tasks = time(
        |n| {
            let after = (n % 8 != 0).then(|| afters[n % afters.len()]);
            reads
                .store()
                .task_page(after.as_ref(), PAGE)
                .expect("tasks")
        },
        READS,
    );
    let tasks_fold = (folds > 0).then(|| {
        time(
            |_| {
                let all = reads.tasks(&me, t).expect("tasks");
                tasks_page(
                    all,
                    &TaskAsk {
                        after: None,
                        limit: PAGE,
                    },
                )
            },
            folds,
        )
    });
    let feed_views = time(
        |n| {
            let ask = FeedAsk {
                after: if n % 8 == 0 {
                    None
                } else {
                    cursors[n % cursors.len()]
                },
                limit: PAGE,
                filter: FeedFilter::ALL,
            };
            feed_page(&reads, &ask, t).expect("feed")
        },
        READS,
    );
    let feed_fold = (folds > 0).then(|| {
        time(
            |_| {
                let all = feed(&reads, t).expect("feed");
                page_of(
                    &test.federation,
                    &all,
                    &FeedAsk {
                        after: None,
                        limit: PAGE,
                        filter: FeedFilter::ALL,
                    },
                )
            },
            folds,
        )
    });
    let counts_views = time(|_| replica.store().views().counts().expect("counts"), READS);
    let counts_fold = (folds > 0).then(|| time(|_| overdue(&reads, t).expect("overdue"), folds));
    let lookups = time(
        |_| {
            let id = testkit::uscc(rng.below(subjects));
            let key = SubjectKey::new(SubjectKind::LegalPerson, &id).expect("key");
            reads.subject_listings(&key, t).expect("lookup")
        },
        READS,
    );
    println!(
        "{stored:>9} notices: {} with tasks, {} shown, {} objections overdue",
        counts.with_tasks, counts.shown, counts.objections_overdue
    );
    // Above `FOLD_MAX` notices the folds are not timed: the derive above,
    // a fold of every listing like each of them, stands for them.
    let reference = |fold: Option<Vec<Duration>>| match fold {
        Some(times) => Reference::Fold(percentiles(times).0),
        None => Reference::Derive(took),
    };
    for (read, views, fold) in [
        ("tasks page", tasks, Some(reference(tasks_fold))),
        ("feed page", feed_views, Some(reference(feed_fold))),
        ("metrics counts", counts_views, Some(reference(counts_fold))),
        ("subject lookup", lookups, None),
    ] {
        let (p50, p99) = percentiles(views);
        println!(
            "{stored:>9} notices: {read:<15} p50 {:>8.3} ms  p99 {:>8.3} ms{}  (goal: p99 under {} ms) {}",
            ms(p50),
            ms(p99),
            match fold {
                Some(Reference::Fold(p50)) =>
                    format!("  fold of every listing: p50 {:>9.1} ms", ms(p50)),
                Some(Reference::Derive(took)) => format!(
                    "  fold of every listing: not timed (the derive, one such fold: {:.1} s)",
                    took.as_secs_f64()
                ),
                None => String::new(),
            },
            GOAL.as_millis(),
            if p99 < GOAL { "MET" } else { "NOT MET" }
        );
        let fold_p50 = match fold {
            Some(Reference::Fold(p50)) => Some(p50),
            _ => None,
        };
        figures.push(Figure {
            read,
            notices: stored as usize,
            p99,
            fold_p50,
        });
    }
}

/// Costs against store size on log-log axes: each read's p99 through the
/// views (solid) and p50 by the fold (dashed).
fn plot(figures: &[Figure]) -> String {
    let (width, height, left, bottom, top, right) = (720.0, 440.0, 70.0, 50.0, 30.0, 180.0);
    let xs: Vec<f64> = figures.iter().map(|f| (f.notices as f64).log10()).collect();
    let mut ys: Vec<f64> = figures
        .iter()
        .map(|f| ms(f.p99).max(1e-3).log10())
        .collect();
    ys.extend(
        figures
            .iter()
            .filter_map(|f| f.fold_p50)
            .map(|d| ms(d).max(1e-3).log10()),
    );
    let (x0, x1) = (
        xs.iter().copied().fold(f64::MAX, f64::min).floor(),
        xs.iter().copied().fold(f64::MIN, f64::max).ceil().max(1.0),
    );
    let (y0, y1) = (
        ys.iter().copied().fold(f64::MAX, f64::min).floor(),
        ys.iter().copied().fold(f64::MIN, f64::max).ceil(),
    );
    let span = |a: f64, b: f64| if b > a { b - a } else { 1.0 };
    let px = |x: f64| left + (x - x0) / span(x0, x1) * (width - left - right);
    let py = |y: f64| height - bottom - (y - y0) / span(y0, y1) * (height - bottom - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"18\">read cost against store size (log-log): p99 through the views, solid; p50 by the fold, dashed</text>\n"
    );
    for decade in x0 as i32..=x1 as i32 {
        let x = px(decade as f64);
        svg.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{top}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">1e{decade}</text>\n",
            height - bottom,
            height - bottom + 16.0
        ));
    }
    for decade in y0 as i32..=y1 as i32 {
        let y = py(decade as f64);
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ms</text>\n",
            width - right,
            left - 6.0,
            y + 4.0,
            10f64.powi(decade)
        ));
    }
    let goal = py(ms(GOAL).log10());
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{goal}\" x2=\"{}\" y2=\"{goal}\" stroke=\"red\" stroke-dasharray=\"2,3\"/><text x=\"{}\" y=\"{goal}\" fill=\"red\">goal 10 ms</text>\n",
        width - right,
        width - right + 4.0
    ));
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">notices stored</text>\n",
        (left + width - right) / 2.0,
        height - 12.0
    ));
    let colours = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
    let reads = [
        "tasks page",
        "feed page",
        "metrics counts",
        "subject lookup",
    ];
    for (i, (read, colour)) in reads.iter().zip(colours).enumerate() {
        let series: Vec<&Figure> = figures.iter().filter(|f| f.read == *read).collect();
        let line = |value: &dyn Fn(&Figure) -> Option<Duration>| {
            series
                .iter()
                .filter_map(|f| {
                    value(f).map(|d| {
                        format!(
                            "{:.1},{:.1}",
                            px((f.notices as f64).log10()),
                            py(ms(d).max(1e-3).log10())
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            line(&|f| Some(f.p99))
        ));
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-dasharray=\"6,4\" points=\"{}\"/>\n",
            line(&|f| f.fold_p50)
        ));
        let y = top + 20.0 + 18.0 * i as f64;
        svg.push_str(&format!(
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{read}</text>\n",
            width - right + 10.0,
            width - right + 30.0,
            width - right + 36.0,
            y + 4.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("SIZES: a comma list of notice counts")
        })
        .collect();
    let folds = std::env::var("FOLDS").map_or(FOLDS, |n| {
        n.parse()
            .ok()
            .filter(|&n| n >= 1)
            .expect("FOLDS: a count of at least 1")
    });
    let fold_max = std::env::var("FOLD_MAX").map_or(usize::MAX, |n| {
        n.parse()
            .expect("FOLD_MAX: the largest notice count whose folds are timed")
    });
    if std::env::var_os("FIXTURES_ONLY").is_some() {
        assert!(
            std::env::var_os("FIXTURES").is_some(),
            "FIXTURES_ONLY: FIXTURES names the directory to write them to"
        );
        for notices in sizes {
            fixture(100, notices, (notices as u64 / 4).max(1));
        }
        return;
    }
    let mut figures = Vec::new();
    for notices in sizes {
        let folds = if notices > fold_max { 0 } else { folds };
        measure(notices, folds, &mut figures);
    }
    let path = std::env::var("PLOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/views-scale.svg").into());
    match std::fs::write(&path, plot(&figures)) {
        Ok(()) => eprintln!("plot written to {path}"),
        Err(e) => eprintln!("plot not written to {path}: {e}"),
    }
}

//! The web's pages at a store of 1,000,000 notices (100 members), each
//! asked for over HTTP from a running node, rendered and read whole: the
//! public home, a page of the blacklist and of the red list from random
//! places, the blacklist filtered by a category, a listing's page, a
//! search by identifier and by part of a name, the members, and (logged
//! in) the console's dashboard and tasks. The views are derived before
//! the node starts, as on a node that has run. Goal (issue 16): every
//! page under 200 ms at p99.
//!
//! Then the API as a department system calls it: `/v1/status` (nothing
//! registered) beside a subject lookup, whose answer waits until its
//! record in the register of reads is durable (a flush of the store), one
//! client at a time and from eight at once (reads arriving during a flush
//! share the next one).
//!
//! Run: `cargo bench -p credence-node --bench web` (`NOTICES` overrides
//! the count).

mod common;

use common::*;
use credence_node::service;
use credence_node::views::feed_cursor_of;
use credence_protocol::replica::Replica;
use credence_protocol::testkit::SplitMix64;
use std::time::{Duration, Instant};

/// Requests of each page.
const REQUESTS: usize = 300;
/// The goal for each page's p99.
const GOAL: Duration = Duration::from_millis(200);

/// What the pages are asked with, taken from the store before the node
/// starts.
struct Samples {
    listings: Vec<String>,
    cursors: Vec<String>,
    identifiers: Vec<String>,
    /// The identifiers' schemes, as the API names them.
    kinds: Vec<&'static str>,
    names: Vec<String>,
    category: String,
    shown: usize,
}

fn sample_of(replica: &Replica<credence_node::store::SledStore>) -> Samples {
    let now = credence_node::node::now();
    let shown = replica
        .store()
        .snapshot()
        .shown_page(None, usize::MAX)
        .expect("feed");
    assert!(!shown.is_empty(), "the workload has published listings");
    let mut rng = SplitMix64(16);
    let (mut listings, mut cursors, mut identifiers, mut kinds, mut names) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut category = String::new();
    for _ in 0..64 {
        let (at, id) = shown[rng.index(shown.len())];
        let state = replica
            .listing_state(&id, now)
            .expect("fold")
            .expect("held");
        listings.push(id.to_string());
        cursors.push(feed_cursor_of(at.0, &id));
        identifiers.push(state.listing.subject.id.clone());
        kinds.push(state.listing.subject.kind.name());
        let name: String = state.listing.subject.name.chars().take(6).collect();
        names.push(name);
        category = state.listing.category.clone();
    }
    Samples {
        listings,
        cursors,
        identifiers,
        kinds,
        names,
        category,
        shown: shown.len(),
    }
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn main() {
    let notices = notices_from_env(1_000_000);
    let (test, workload) = fixture(100, notices, notices as u64 / 4);
    let root = tempfile::tempdir().expect("temporary directory");
    let mut configs = data_dirs(&test, root.path(), 1);
    let samples;
    {
        let replica = stored_at(&configs[0].data.join("store"), &test, &workload);
        let took = views_derived(&test, &replica, 0, credence_node::node::now());
        eprintln!("views derived in {:.1} s", took.as_secs_f64());
        samples = sample_of(&replica);
    }
    drop(workload);
    // sled lets go of its lock a moment after the last handle closes.
    std::thread::sleep(Duration::from_millis(500));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node = runtime
        .block_on(service::launch(configs.remove(0)))
        .expect("node");
    let base = format!("http://{}", node.http);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    // Log in as the node's own account, as an operator does.
    let (account, secret) = node.token.split_once('.').expect("credential");
    let login = agent
        .post(&format!("{base}/console/login"))
        .content_type("application/x-www-form-urlencoded")
        .send(format!("account={account}&secret={secret}&back=%2Fconsole"))
        .expect("login");
    assert_eq!(login.status(), 303, "logged in");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let get = |path: &str, console: bool| -> (Duration, usize) {
        let started = Instant::now();
        let mut request = agent.get(&format!("{base}{path}"));
        if console {
            request = request.header("cookie", &cookie);
        }
        let mut response = request.call().expect("page");
        assert_eq!(response.status(), 200, "{path}");
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .expect("body");
        (started.elapsed(), body.len())
    };
    let pick = |list: &[String], n: usize| list[n % list.len()].clone();
    type Page<'a> = (&'static str, Box<dyn Fn(usize) -> String + 'a>, bool);
    let pages: Vec<Page> = vec![
        ("home", Box::new(|_| "/".to_string()), false),
        (
            "blacklist page (random place)",
            Box::new(|n| format!("/lists/black?after={}", pick(&samples.cursors, n))),
            false,
        ),
        (
            "red list page (random place)",
            Box::new(|n| format!("/lists/red?after={}", pick(&samples.cursors, n))),
            false,
        ),
        (
            "blacklist filtered by category",
            Box::new(|n| {
                format!(
                    "/lists/black?category={}&after={}",
                    samples.category,
                    pick(&samples.cursors, n)
                )
            }),
            false,
        ),
        (
            "listing page",
            Box::new(|n| format!("/listings/{}", pick(&samples.listings, n))),
            false,
        ),
        (
            "search by identifier",
            Box::new(|n| format!("/search?q={}", pick(&samples.identifiers, n))),
            false,
        ),
        (
            "search by part of a name",
            Box::new(|n| format!("/search?q={}", encode(&pick(&samples.names, n)))),
            false,
        ),
        ("members (100)", Box::new(|_| "/members".to_string()), false),
        (
            "console dashboard",
            Box::new(|_| "/console".to_string()),
            true,
        ),
        (
            "console tasks",
            Box::new(|_| "/console/tasks".to_string()),
            true,
        ),
    ];
    println!(
        "web pages over HTTP, {notices} notices stored ({} entries published), {REQUESTS} requests a page:",
        samples.shown
    );
    let mut all_met = true;
    for (name, path, console) in &pages {
        // Warm once (the first read of a sled page comes from disk).
        get(&path(0), *console);
        let mut times = Vec::with_capacity(REQUESTS);
        let mut bytes = 0;
        for n in 0..REQUESTS {
            let (time, size) = get(&path(n), *console);
            times.push(time);
            bytes += size;
        }
        let (p50, p99, max) = percentiles(times);
        let met = p99 < GOAL;
        all_met &= met;
        println!(
            "  {name:<32} p50 {:>10}  p99 {:>10}  max {:>10}  {:>7} bytes  goal p99 < {} ms: {}",
            ms(p50),
            ms(p99),
            ms(max),
            bytes / REQUESTS,
            GOAL.as_millis(),
            if met { "met" } else { "NOT met" }
        );
    }
    println!(
        "every page under {} ms at p99: {}",
        GOAL.as_millis(),
        if all_met { "met" } else { "NOT met" }
    );
    api_reads(&agent, &base, &node.token, &samples);
    runtime.block_on(node.stop()).expect("stopped");
}

/// Clients reading subjects at once, in the second part.
const READERS: usize = 8;

/// The API's reads over HTTP with the node's own credential: status
/// beside registered subject lookups, alone and from [`READERS`] clients.
fn api_reads(agent: &ureq::Agent, base: &str, token: &str, samples: &Samples) {
    let auth = format!("Bearer {token}");
    let get = |agent: &ureq::Agent, path: &str| -> Duration {
        let started = Instant::now();
        let mut response = agent
            .get(&format!("{base}{path}"))
            .header("authorization", &auth)
            .call()
            .expect("answer");
        assert_eq!(response.status(), 200, "{path}");
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .expect("body");
        started.elapsed()
    };
    let lookup = |n: usize| {
        let at = n % samples.identifiers.len();
        format!(
            "/v1/subjects/{}?kind={}&purpose=supplier%20check&legal_basis=Government%20Procurement%20Law%20art.%2022",
            samples.identifiers[at], samples.kinds[at]
        )
    };
    println!("the API over HTTP, {REQUESTS} requests each:");
    let alone = |name: &str, path: &dyn Fn(usize) -> String| {
        get(agent, &path(0));
        let started = Instant::now();
        let times: Vec<Duration> = (0..REQUESTS).map(|n| get(agent, &path(n))).collect();
        let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
        let (p50, p99, max) = percentiles(times);
        println!(
            "  {name:<44} p50 {:>10}  p99 {:>10}  max {:>10}  {rate:.0}/s",
            ms(p50),
            ms(p99),
            ms(max)
        );
        p50
    };
    let status = alone("status (nothing registered)", &|_| "/v1/status".to_string());
    let registered = alone("subject lookup (registered, made durable)", &lookup);
    println!(
        "  the register's durable record adds {} at p50",
        ms(registered.saturating_sub(status))
    );
    let started = Instant::now();
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..READERS)
            .map(|client| {
                let agent = agent.clone();
                let get = &get;
                let lookup = &lookup;
                scope.spawn(move || {
                    (0..REQUESTS / READERS)
                        .map(|n| get(&agent, &lookup(client * REQUESTS + n)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    let took = started.elapsed();
    let count = times.len();
    let (p50, p99, max) = percentiles(times);
    println!(
        "  subject lookup, {READERS} clients at once {:<9} p50 {:>10}  p99 {:>10}  max {:>10}  {:.0} lookups/s",
        "",
        ms(p50),
        ms(p99),
        ms(max),
        count as f64 / took.as_secs_f64()
    );
}

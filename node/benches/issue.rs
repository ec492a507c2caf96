//! Issuing through the HTTP API with durable acknowledgement: listings
//! posted to `POST /v1/notices` of a node (two members on loopback, real
//! libp2p, sled), first one at a time (every notice its own flush), then
//! by 32 concurrent clients (queued requests share one flush: group
//! commit), each acknowledged only once durable and read back by its
//! client (its id; the connection kept for the next request). Listings/s
//! and p50/p99 of each, side by side. Goal at concurrency 32: at least 5,000
//! listings/s, p99 under 25 ms.
//!
//! Run: `cargo bench -p credence-node --bench issue` (NOTICES overrides the
//! count at concurrency 32; a tenth of it goes one at a time). `NODES=1`
//! starts only the issuing member of the two (its peer is down): what
//! issuing costs the issuer's machine when its peers run elsewhere, as
//! they do in a federation; the default, both members on this machine,
//! also pays for the peer that takes every notice. Each listing names a
//! company of its own (`company_name`); `NAMES=one` gives every listing
//! the example's name, as the benchmark did up to session 16. The
//! clients share the machine with the node: by default they are a light
//! load generator (every client a task of one thread, its requests'
//! bytes prepared before the clock starts); `CLIENT=ureq` gives each
//! client a thread and a `ureq` agent, as up to session 20.

mod common;

use common::*;
use credence_node::demo::example_listing;
use credence_node::devnet::{prepare, wait_connected};
use credence_node::service;
use credence_protocol::model::NoticeKind;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

/// A company name of the kind the lists hold, one of about 140,000:
/// a city, a trade name of two characters, a trade and the legal form
/// (`福州闽江食品有限公司`), so that names share some pairs of characters
/// (city, trade, form) and not others (the trade name), as real ones do.
fn company_name(n: u64) -> String {
    const CITIES: [&str; 9] = [
        "福州", "厦门", "泉州", "漳州", "莆田", "三明", "南平", "龙岩", "宁德",
    ];
    const TRADE_NAME: &str =
        "闽江海峡鼓山榕城东南华兴鑫源恒泰盛达宏远金丰永安瑞祥新创嘉和鸿运兴业天成利民顺发国泰长城";
    const TRADES: [&str; 8] = [
        "食品", "药业", "建材", "物流", "餐饮", "电子", "纺织", "化工",
    ];
    let chars: Vec<char> = TRADE_NAME.chars().collect();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut pick = |len: usize| {
        x = x.rotate_left(17) ^ (x >> 7);
        (x % len as u64) as usize
    };
    format!(
        "{}{}{}{}有限公司",
        CITIES[pick(CITIES.len())],
        chars[pick(chars.len())],
        chars[pick(chars.len())],
        TRADES[pick(TRADES.len())]
    )
}

/// How the benchmark's clients send their requests.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    /// A load generator of its own (the default): every client a task of
    /// one thread, each request's bytes prepared before the clock starts,
    /// the answer's status, length and id read from its bytes. The
    /// clients share the node's two cores, so what they spend is taken
    /// from the node: this one spends little.
    Light,
    /// `ureq`, one thread per client (as up to session 20).
    Ureq,
}

/// The answer to one request on a kept connection, read whole: its status
/// and body. Only what the node sends is understood (a `Content-Length`,
/// no chunks).
async fn answer(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    buffer.clear();
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head =
                std::str::from_utf8(&buffer[..end]).map_err(|_| invalid("head not UTF-8"))?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid("no status"))?;
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| invalid("no content-length"))?;
            let body_at = end + 4;
            while buffer.len() < body_at + length {
                if stream.read_buf(buffer).await? == 0 {
                    return Err(invalid("closed within the body"));
                }
            }
            return Ok((status, buffer[body_at..body_at + length].to_vec()));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(invalid("closed before the answer"));
        }
    }
}

/// Posts each client's `requests` (whole HTTP/1.1 requests) on a
/// connection of its own, every client a task of one thread; each
/// request's latency.
fn post_light(http: std::net::SocketAddr, requests: Vec<Vec<Vec<u8>>>) -> Vec<Duration> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the clients' runtime");
    runtime.block_on(async move {
        let mut clients = tokio::task::JoinSet::new();
        for requests in requests {
            clients.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = tokio::net::TcpStream::connect(http)
                    .await
                    .expect("connects");
                stream.set_nodelay(true).expect("nodelay");
                let mut buffer = Vec::with_capacity(4096);
                let mut times = Vec::with_capacity(requests.len());
                for request in requests {
                    let since = Instant::now();
                    stream.write_all(&request).await.expect("the request sent");
                    let (status, body) = answer(&mut stream, &mut buffer)
                        .await
                        .expect("the API answers");
                    assert_eq!(status, 201, "issued: {}", String::from_utf8_lossy(&body));
                    // A department system reads the notice's id from the
                    // answer.
                    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                    assert!(answer["id"].is_string(), "{answer}");
                    times.push(since.elapsed());
                }
                times
            });
        }
        let mut times = Vec::new();
        while let Some(done) = clients.join_next().await {
            times.extend(done.expect("client"));
        }
        times
    })
}

/// Posts `count` listings from `clients` clients, numbered from `first`;
/// returns the wall time and each request's latency.
fn post(
    http: std::net::SocketAddr,
    token: &str,
    clients: usize,
    first: usize,
    count: usize,
    varied: bool,
    client: Client,
) -> (Duration, Vec<Duration>) {
    let now = credence_node::node::now();
    let bodies: Vec<Vec<String>> = (0..clients)
        .map(|client| {
            (client..count)
                .step_by(clients)
                .map(|n| {
                    let mut listing = example_listing(now);
                    listing.subject.id = credence_protocol::testkit::uscc((first + n) as u64 + 1);
                    listing.linked.clear();
                    if varied {
                        listing.subject.name = company_name((first + n) as u64);
                    }
                    serde_json::to_string(&NoticeKind::List(listing)).expect("JSON")
                })
                .collect()
        })
        .collect();
    if client == Client::Light {
        let requests: Vec<Vec<Vec<u8>>> = bodies
            .into_iter()
            .map(|bodies| {
                bodies
                    .into_iter()
                    .map(|body| {
                        format!(
                            "POST /v1/notices HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    })
                    .collect()
            })
            .collect();
        let started = Instant::now();
        let times = post_light(http, requests);
        return (started.elapsed(), times);
    }
    let url = format!("http://{http}/v1/notices");
    let url = url.as_str();
    let started = Instant::now();
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = bodies
            .into_iter()
            .map(|bodies| {
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut times = Vec::with_capacity(bodies.len());
                    for body in bodies {
                        let since = Instant::now();
                        let mut response = agent
                            .post(url)
                            .header("Authorization", format!("Bearer {token}"))
                            .header("Content-Type", "application/json")
                            .send(body.as_bytes())
                            .expect("the API answers");
                        assert_eq!(response.status(), 201, "issued");
                        // A department system reads the notice's id from
                        // the answer, which also lets the agent keep the
                        // connection for the next request.
                        let answer = response.body_mut().read_to_string().expect("the answer");
                        assert!(answer.contains("\"id\""), "{answer}");
                        times.push(since.elapsed());
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("client"))
            .collect()
    });
    (started.elapsed(), times)
}

fn main() {
    let count = notices_from_env(10_000);
    let single = (count / 10).max(100);
    let members: usize = match std::env::var("NODES") {
        Ok(n) => n
            .parse()
            .ok()
            .filter(|n| (1..=2).contains(n))
            .expect("NODES: 1 or 2"),
        Err(_) => 2,
    };
    let varied = match std::env::var("NAMES").as_deref() {
        Ok("one") => false,
        Ok("varied") | Err(_) => true,
        Ok(other) => panic!("NAMES: one or varied, not {other}"),
    };
    let client = match std::env::var("CLIENT").as_deref() {
        Ok("light") | Err(_) => Client::Light,
        Ok("ureq") => Client::Ureq,
        Ok(other) => panic!("CLIENT: light or ureq, not {other}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (url, token, nodes) = runtime.block_on(async {
        let root = tempfile::tempdir().expect("temporary directory");
        let configs = prepare(root.path(), 2, Duration::from_secs(30)).expect("data directories");
        let mut nodes = Vec::new();
        for (_, config) in configs.into_iter().take(members) {
            nodes.push(service::launch(config).await.expect("node starts"));
        }
        wait_connected(&nodes).await.expect("connected");
        let http = nodes[0].http;
        let token = nodes[0].token.clone();
        (http, token, (root, nodes))
    });
    let (one_time, one) = post(url, &token, 1, 0, single, varied, client);
    let (many_time, many) = post(url, &token, CONCURRENCY, single, count, varied, client);
    let (p50_one, p99_one, _) = percentiles(one);
    let (p50, p99, _) = percentiles(many);
    let rate_one = rate(single, one_time);
    let rate_many = rate(count, many_time);
    println!(
        "listings issued through the API, each acknowledged once durable ({}; {}; {}):",
        if varied {
            "a company name of its own each"
        } else {
            "one company name for all"
        },
        if members == 1 {
            "the issuing member alone, its peer down"
        } else {
            "two members on this machine, the peer taking every notice"
        },
        match client {
            Client::Light => "clients: tasks of one thread, requests prepared",
            Client::Ureq => "clients: ureq, a thread each",
        }
    );
    println!(
        "  one client:      {single:>6} in {:>6.2} s: {rate_one:>8.0} listings/s, p50 {}, p99 {}",
        one_time.as_secs_f64(),
        ms(p50_one),
        ms(p99_one)
    );
    let met = rate_many >= 5_000.0 && p99 < Duration::from_millis(25);
    println!(
        "  {CONCURRENCY} clients:     {count:>6} in {:>6.2} s: {rate_many:>8.0} listings/s ({:.1}x one client), p50 {}, p99 {}   (goal: >= 5,000/s, p99 < 25 ms) {}",
        many_time.as_secs_f64(),
        rate_many / rate_one,
        ms(p50),
        ms(p99),
        if met { "MET" } else { "NOT MET" }
    );
    drop(nodes);
}

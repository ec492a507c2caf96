//! Shared fixtures of the benchmarks: a seeded federation and workload,
//! and the raw batch verification every figure is compared with.

#![allow(dead_code)]

use credence_crypto::{BatchItem, NOTICE_DOMAIN, verify_batch};
use credence_protocol::codec;
use credence_protocol::testkit::{self, TestFederation, Workload};
use credence_protocol::time::Timestamp;
use std::time::{Duration, Instant};

/// 2026-01-01.
pub const START: Timestamp = Timestamp(1_767_225_600_000);

/// The benchmark size: `NOTICES` from the environment, or `default`.
pub fn notices_from_env(default: usize) -> usize {
    std::env::var("NOTICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A federation of `authorities` members and about `notices` valid notices
/// of every kind over `subjects` companies. With `FIXTURES` (a directory)
/// set, the workload is read from a file there if an earlier run wrote
/// it, else generated and written there: a workload of ten million
/// notices takes minutes to generate, and a process that generated one
/// keeps the generator's freed memory, which the store then lacks for
/// its pages (`FIXTURES_ONLY=1` makes `views` write its fixtures and
/// stop, so that a second run reads them in a fresh process).
pub fn fixture(authorities: usize, notices: usize, subjects: u64) -> (TestFederation, Workload) {
    let started = Instant::now();
    let test = testkit::federation(1, authorities);
    let cached = std::env::var_os("FIXTURES").map(|dir| {
        std::path::PathBuf::from(dir)
            .join(format!("workload-{authorities}-{notices}-{subjects}.bin"))
    });
    if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
        let workload = read_workload(path);
        eprintln!(
            "fixture: {} notices from {authorities} authorities read from {} in {:.1} s",
            workload.envelopes.len(),
            path.display(),
            started.elapsed().as_secs_f64()
        );
        return (test, workload);
    }
    let workload = testkit::workload(&test, 2, notices, subjects, START);
    eprintln!(
        "fixture: {} notices from {authorities} authorities generated and signed in {:.1} s",
        workload.envelopes.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = cached {
        write_workload(&path, &workload);
        eprintln!("fixture written to {}", path.display());
    }
    (test, workload)
}

/// The fixture file's first bytes.
const WORKLOAD_MAGIC: &[u8] = b"credence bench workload 1\n";

/// A workload as a file: the magic, the envelopes (count, then each its
/// length and bytes), the listings (count, then ids) and the end time,
/// integers big-endian.
fn write_workload(path: &std::path::Path, workload: &Workload) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("fixture file");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut put = |bytes: &[u8]| out.write_all(bytes).expect("fixture written");
    put(WORKLOAD_MAGIC);
    put(&(workload.envelopes.len() as u64).to_be_bytes());
    for envelope in &workload.envelopes {
        put(&(envelope.len() as u32).to_be_bytes());
        put(envelope);
    }
    put(&(workload.listings.len() as u64).to_be_bytes());
    for id in &workload.listings {
        put(&id.0);
    }
    put(&workload.end.0.to_be_bytes());
    out.flush().expect("fixture written");
}

fn read_workload(path: &std::path::Path) -> Workload {
    use std::io::Read;
    let file = std::fs::File::open(path).expect("fixture file");
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut take = |n: usize| {
        let mut bytes = vec![0; n];
        input.read_exact(&mut bytes).expect("a whole fixture file");
        bytes
    };
    assert_eq!(take(WORKLOAD_MAGIC.len()), WORKLOAD_MAGIC, "a fixture file");
    let number = |bytes: Vec<u8>| u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
    let count = number(take(8)) as usize;
    let mut envelopes = Vec::with_capacity(count);
    for _ in 0..count {
        let length = u32::from_be_bytes(take(4).try_into().expect("4 bytes")) as usize;
        envelopes.push(take(length));
    }
    let count = number(take(8)) as usize;
    let listings = (0..count)
        .map(|_| credence_protocol::model::NoticeId(take(32).try_into().expect("32 bytes")))
        .collect();
    let end = Timestamp(number(take(8)));
    Workload {
        envelopes,
        listings,
        end,
    }
}

/// Time of raw ed25519 batch verification of the envelopes' signatures, in
/// the same batches the replica uses, excluding decoding.
pub fn raw_batch_verify(test: &TestFederation, envelopes: &[Vec<u8>]) -> Duration {
    let decoded: Vec<(credence_crypto::PublicKey, Vec<u8>, [u8; 64])> = envelopes
        .iter()
        .map(|bytes| {
            let envelope = codec::decode_envelope(bytes).expect("valid envelope");
            let notice = codec::decode_notice(&envelope.body).expect("valid notice");
            let key = *test.federation.public_key(&notice.author).expect("member");
            (key, envelope.body, envelope.signature.0)
        })
        .collect();
    let started = Instant::now();
    for chunk in decoded.chunks(1024) {
        let items: Vec<BatchItem<'_>> = chunk
            .iter()
            .map(|(key, message, signature)| BatchItem {
                key,
                message,
                signature,
            })
            .collect();
        let results = verify_batch(NOTICE_DOMAIN, &items);
        assert!(results.iter().all(Result::is_ok));
    }
    started.elapsed()
}

/// The median of measurements already taken.
pub fn median_of(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Per second.
pub fn rate(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

/// Writes data directories under `root` for members `0..count` of `test`
/// (configuration, key file, own-log mark, roster) and returns their run configurations:
/// libp2p and HTTP on ephemeral loopback ports.
pub fn data_dirs(
    test: &TestFederation,
    root: &std::path::Path,
    count: usize,
) -> Vec<credence_node::config::RunConfig> {
    use credence_node::config::{LogFormat, RunConfig};
    use credence_node::node::{IDENTITY_FILE, KEY_FILE, ROSTER_FILE};
    let roster = test.federation.roster().to_document().to_toml();
    (0..count)
        .map(|i| {
            let dir = root.join(format!("member-{i}"));
            std::fs::create_dir_all(&dir).expect("data directory");
            std::fs::write(dir.join(IDENTITY_FILE), format!("name = \"member {i}\"\n"))
                .expect("config");
            credence_node::keyfile::write_new(&dir.join(KEY_FILE), &test.keys[i])
                .expect("key file");
            // As `credence init` does: the own log's mark, at what the
            // store will hold.
            credence_node::mark::write(
                &dir,
                &test.author(i),
                &credence_protocol::engine::Mark::zero(),
            )
            .expect("own-log mark");
            std::fs::write(dir.join(ROSTER_FILE), &roster).expect("roster");
            RunConfig {
                data: dir,
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")],
                bootstrap: Vec::new(),
                http: "127.0.0.1:0".parse().expect("address"),
                sync_interval: Duration::from_secs(30),
                mdns: false,
                log: LogFormat::Human,
                register_retention: None,
            }
        })
        .collect()
}

/// p50, p99 and max of measurements.
pub fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
    (at(50), at(99), times[times.len() - 1])
}

/// Milliseconds with three decimals.
pub fn ms(time: Duration) -> String {
    format!("{:.3} ms", time.as_secs_f64() * 1000.0)
}

/// The workload's envelopes ingested into sled in a temporary directory
/// (kept while the returned directory lives) and flushed; prints the
/// time it took.
pub fn stored_in_sled(
    test: &TestFederation,
    workload: &Workload,
) -> (
    tempfile::TempDir,
    credence_protocol::replica::Replica<credence_node::store::SledStore>,
) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let replica = stored_at(dir.path(), test, workload);
    (dir, replica)
}

/// The workload's envelopes ingested into a sled store at `path` and
/// flushed; prints the time it took.
pub fn stored_at(
    path: &std::path::Path,
    test: &TestFederation,
    workload: &Workload,
) -> credence_protocol::replica::Replica<credence_node::store::SledStore> {
    use credence_protocol::store::Store;
    let store = credence_node::store::SledStore::open(path, test.federation.id()).expect("store");
    let mut replica = credence_protocol::replica::Replica::new(test.federation.clone(), store);
    let started = Instant::now();
    for chunk in workload.envelopes.chunks(64 * 1024) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        replica.ingest_all(&slices).expect("ingest");
    }
    replica.store_mut().flush().expect("flush");
    eprintln!(
        "stored {} notices in {:.1} s",
        replica.store().notice_count().expect("count"),
        started.elapsed().as_secs_f64()
    );
    replica
}

/// The replica of `test`'s federation over the sled store at `path` (made
/// before, as by [`stored_at`]).
pub fn open_at(
    path: &std::path::Path,
    test: &TestFederation,
) -> credence_protocol::replica::Replica<credence_node::store::SledStore> {
    let store = credence_node::store::SledStore::open(path, test.federation.id()).expect("store");
    credence_protocol::replica::Replica::new(test.federation.clone(), store)
}

/// The views of member `member` of `test` derived over `replica` at `t`,
/// as on a node that has run (a sweep of every listing); the time it took.
pub fn views_derived(
    test: &TestFederation,
    replica: &credence_protocol::replica::Replica<credence_node::store::SledStore>,
    member: usize,
    t: Timestamp,
) -> Duration {
    let me = test.author(member);
    let implements = test
        .federation
        .member(&me)
        .expect("member")
        .implements
        .clone();
    let started = Instant::now();
    let mut keeper = credence_node::keeper::Keeper::open(replica, me, implements).expect("views");
    keeper.catch_up(replica, t).expect("views");
    started.elapsed()
}

/// Bytes of the files under `dir`.
pub fn directory_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

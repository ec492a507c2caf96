//! A cross-region query over loopback with 1,000,000 notices stored: two
//! nodes in one process with real libp2p connections and equal sled stores
//! of the same records; 1,000 federation-wide queries of random companies,
//! each signed, answered and signed back, verified and registered on both
//! sides; p50 and p99. Goal: p99 under 10 ms.
//!
//! Run: `cargo bench -p credence-node --bench query` (NOTICES overrides
//! the count).

mod common;

use common::*;
use credence_node::daemon::{Command, QueryAsk, QueryScope};
use credence_node::devnet::{call, wait_connected};
use credence_node::service;
use credence_node::store::SledStore;
use credence_protocol::model::SubjectKind;
use credence_protocol::replica::Replica;
use credence_protocol::store::Store;
use credence_protocol::testkit::{self, SplitMix64};
use std::time::{Duration, Instant};

const QUERIES: usize = 1000;
const GOAL: Duration = Duration::from_millis(10);

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("directory");
    for entry in std::fs::read_dir(from).expect("directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn main() {
    let notices = notices_from_env(1_000_000);
    let subjects = notices as u64 / 4;
    let (test, workload) = fixture(100, notices, subjects);
    let root = tempfile::tempdir().expect("temporary directory");
    let mut configs = data_dirs(&test, root.path(), 2);
    let started = Instant::now();
    {
        let store =
            SledStore::open(&configs[0].data.join("store"), test.federation.id()).expect("store");
        let mut replica = Replica::new(test.federation.clone(), store);
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
    }
    drop(workload);
    // sled lets go of its lock a moment after the last handle closes.
    std::thread::sleep(Duration::from_millis(500));
    copy_dir(
        &configs[0].data.join("store"),
        &configs[1].data.join("store"),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let responder = service::launch(configs.remove(0)).await.expect("responder");
        let mut config = configs.remove(0);
        config.bootstrap = responder
            .listen
            .iter()
            .map(|a| format!("{a}/p2p/{}", responder.peer_id).parse().expect("address"))
            .collect();
        let requester = service::launch(config).await.expect("requester");
        let nodes = [responder, requester];
        wait_connected(&nodes).await.expect("connected");
        let mut rng = SplitMix64(11);
        let mut times = Vec::with_capacity(QUERIES);
        let mut listings = 0usize;
        for _ in 0..QUERIES {
            let ask = QueryAsk {
                subject_kind: SubjectKind::LegalPerson,
                subject_id: testkit::uscc(rng.below(subjects)),
                purpose: "procurement award".into(),
                legal_basis: "Government Procurement Law art. 22".into(),
                scope: if std::env::var("LOCAL").is_ok() { QueryScope::Local } else { QueryScope::Federation },
                deadline_ms: 5_000,
                page: 0,
            };
            let started = Instant::now();
            let result = call(&nodes[1].handle, |tx| Command::Query(ask, tx)).await.expect("query");
            times.push(started.elapsed());
            assert!(std::env::var("LOCAL").is_ok() || result.answers.len() == 2, "both nodes answer: {:?}", result.missing);
            listings += result.answers[result.answers.len() - 1].answer.answer.listings.len();
        }
        let (p50, p99, max) = percentiles(times);
        println!("notices stored on each node:        {notices}");
        println!(
            "queries:                            {QUERIES} federation-wide, random companies ({:.2} listings per answer)",
            listings as f64 / QUERIES as f64
        );
        println!(
            "query -> every signed answer in:    p50 {}  p99 {}  max {}   goal: p99 < {}",
            ms(p50),
            ms(p99),
            ms(max),
            ms(GOAL)
        );
        println!("goal (p99 < 10 ms): {}", if p99 < GOAL { "met" } else { "NOT met" });
        let [a, b] = nodes;
        a.stop().await.expect("stop");
        b.stop().await.expect("stop");
    });
}

//! Sync requests and responses: decoding never panics and is canonical;
//! a decoded request is answered by a replica, and a decoded response is
//! taken by a session, without panicking.
#![no_main]

use credence_protocol::replica::Replica;
use credence_protocol::store::MemStore;
use credence_protocol::sync::{self, SyncSession};
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A replica holding a workload, built once (answering and taking
/// responses only read it).
fn replica() -> &'static Replica<MemStore> {
    static REPLICA: OnceLock<Replica<MemStore>> = OnceLock::new();
    REPLICA.get_or_init(|| {
        let test = testkit::federation(5, 3);
        let work = testkit::workload(
            &test,
            5,
            40,
            10,
            credence_protocol::Timestamp(1_780_000_000_000),
        );
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let slices: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
        replica.ingest_batch(&slices).expect("memory store");
        replica
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = sync::decode_request(data) {
        assert_eq!(sync::encode_request(&request).expect("re-encodes"), data);
        let _ = sync::answer(replica(), &request, false);
    }
    if let Ok(response) = sync::decode_response(data) {
        assert_eq!(sync::encode_response(&response).expect("re-encodes"), data);
        let replica = replica();
        if let Ok((mut session, _)) = SyncSession::start(replica) {
            let _ = session.on_response(replica, response);
        }
    }
});

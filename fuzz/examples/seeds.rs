//! Writes the seed corpus of every target (run from `fuzz/`:
//! `cargo +nightly run --example seeds`).

use credence_protocol::bundle::Bundle;
use credence_protocol::codec;
use credence_protocol::replica::Replica;
use credence_protocol::store::MemStore;
use credence_protocol::sync::{self, SyncRequest};
use credence_protocol::{Timestamp, testkit};
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("seed");
}

/// A signed answer (body) proving one listing, and the query message it
/// answers: against member 0's own
/// signed checkpoint, carried (`offer` false), or against the checkpoint
/// the request offers, cosigned by members 1 and 2, named (`offer` true;
/// the query_messages target offers the same one).
fn proven_answer(offer: bool) -> (Vec<u8>, Vec<u8>) {
    use credence_protocol::model::{NoticeKind, SubjectKind};
    use credence_protocol::proven::Proofs;
    use credence_protocol::query::{self, QUERY_VERSION, QueryRequest};
    let test = testkit::federation(6, 3);
    let at = Timestamp(1_780_000_000_000);
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    replica
        .issue(
            &test.keys[0],
            NoticeKind::List(testkit::listing(1, "tax", at)),
            at,
        )
        .expect("issued");
    let own = testkit::checkpoint_note(&test, replica.store(), 0, &[], 0);
    let cosigned = testkit::checkpoint_note(&test, replica.store(), 0, &[1, 2], 1_780_000_000);
    let request = QueryRequest {
        version: QUERY_VERSION,
        federation: test.federation.id(),
        requester: test.author(1),
        subject_kind: SubjectKind::LegalPerson,
        subject_id: testkit::uscc(1),
        purpose: "procurement".into(),
        legal_basis: "Government Procurement Law art. 22".into(),
        issued_at: at,
        nonce: 1,
        page: 0,
    }
    .sign(&test.keys[1])
    .expect("request");
    let mut proofs = Proofs::new([(test.author(0), vec![(own, false)])].into_iter().collect());
    let offer = if offer {
        vec![testkit::checkpoint_ref(&test, &cosigned)]
    } else {
        Vec::new()
    };
    let answer = query::answer(&replica, &request, &offer, &test.keys[0], at, &mut proofs)
        .expect("store")
        .expect("answer");
    let message = query::QueryMessage {
        request: request.signed,
        offer,
    }
    .encode()
    .expect("message");
    (answer.signed.body, message)
}

fn main() {
    write("query_messages", "answer-proven", &proven_answer(false).0);
    let (named, message) = proven_answer(true);
    write("query_messages", "answer-named", &named);
    write("query_messages", "message-offer", &message);
    let test = testkit::federation(5, 3);
    let work = testkit::workload(&test, 5, 12, 4, Timestamp(1_780_000_000_000));
    for (i, envelope) in work.envelopes.iter().take(4).enumerate() {
        write("envelope", &format!("envelope-{i}"), envelope);
        let decoded = codec::decode_envelope(envelope).expect("valid");
        write("envelope", &format!("notice-{i}"), &decoded.body);
        let notice = codec::decode_notice(&decoded.body).expect("valid");
        write(
            "notice_json",
            &format!("kind-{i}"),
            &serde_json::to_vec(&notice.kind).expect("JSON"),
        );
    }
    let mut replica = Replica::new(test.federation.clone(), MemStore::new());
    let slices: Vec<&[u8]> = work.envelopes.iter().map(Vec::as_slice).collect();
    replica.ingest_batch(&slices).expect("memory store");
    let offer = sync::offer(&replica).expect("offer");
    write(
        "sync_messages",
        "offer",
        &sync::encode_request(&offer).expect("encodes"),
    );
    let ranges = SyncRequest::Ranges(vec![sync::RangeAsk {
        author: test.author(0),
        from: 1,
        count: 3,
    }]);
    write(
        "sync_messages",
        "ranges",
        &sync::encode_request(&ranges).expect("encodes"),
    );
    let answer = sync::respond(&replica, &ranges).expect("answers");
    write(
        "sync_messages",
        "notices",
        &sync::encode_response(&answer).expect("encodes"),
    );
    let proposals = SyncRequest::Proposals(vec![sync::ProposalHave {
        hash: credence_protocol::model::RosterHash([0x55; 32]),
        signers: vec![test.author(0), test.author(1)],
    }]);
    write(
        "sync_messages",
        "proposals",
        &sync::encode_request(&proposals).expect("encodes"),
    );
    let bundle = Bundle::export(&replica).expect("export");
    write("bundle", "workload", &bundle.to_bytes().expect("bytes"));
    write(
        "roster",
        "test-roster",
        test.federation.roster().to_document().to_toml().as_bytes(),
    );
    let mut items = Vec::new();
    for (i, key) in test.keys.iter().enumerate() {
        let message = (i as u64).to_le_bytes();
        items.extend_from_slice(&key.public_bytes());
        items.extend_from_slice(&key.sign(b"credence/fuzz\0", &message));
        items.extend_from_slice(&message);
    }
    write("verify", "three-valid", &items);
    let mut replica_seed = Vec::new();
    for i in 0..12u8 {
        replica_seed.extend_from_slice(&[i, 0, if i % 4 == 3 { 0x80 } else { 0 }]);
    }
    write("replica", "in-order", &replica_seed);
    // The cosigned checkpoint of SPEC.md (the target verifies against the
    // same test federation, seed 7 with four members).
    write(
        "checkpoint",
        "spec-vector",
        include_bytes!("../../protocol/src/checkpoint/vector.txt"),
    );
    // SPEC.md's receipt (hex in the protocol's vector file).
    let receipt = include_str!("../../protocol/tests/spec/receipt.txt");
    write(
        "receipt",
        "spec-vector",
        &hex::decode(receipt.trim()).expect("the receipt vector is hex"),
    );
    // SPEC.md's roster version (version 1 of the same test federation).
    let version = include_str!("../../protocol/tests/spec/roster_version.txt");
    let (_, hex_bytes) = version.split_once(' ').expect("hash, then the bytes");
    write(
        "roster_version",
        "spec-vector",
        &hex::decode(hex_bytes.trim()).expect("the roster version vector is hex"),
    );
    // SPEC.md's register of reads: its two records and its checkpoint.
    let register = include_str!("../../protocol/tests/spec/register.txt");
    for line in register.lines().take(2) {
        let (name, hex_bytes) = line.split_once(' ').expect("name, then the bytes");
        write(
            "register",
            name,
            &hex::decode(hex_bytes).expect("a register record vector is hex"),
        );
    }
    let note: String = register.lines().skip(3).collect::<Vec<_>>().join("\n") + "\n";
    write("register", "checkpoint", note.as_bytes());
    let (_, first) = register
        .lines()
        .next()
        .and_then(|line| line.split_once(' '))
        .expect("name, then the bytes");
    let record = hex::decode(first).expect("a register record vector is hex");
    write(
        "register",
        "pruned",
        &credence_protocol::register::Entry::pruned(&record),
    );
    // SPEC.md's subject report body.
    let report = include_str!("../../protocol/tests/spec/report.txt");
    let (_, body) = report
        .lines()
        .next()
        .and_then(|line| line.split_once(' '))
        .expect("body, then the bytes");
    write(
        "report",
        "spec-vector",
        &hex::decode(body).expect("the report vector is hex"),
    );
}

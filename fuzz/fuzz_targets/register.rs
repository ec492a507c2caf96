//! Register of reads records and checkpoints: reading arbitrary bytes as a
//! record or an entry never panics, and a record that reads encodes back
//! to the same bytes (one encoding per record, so one leaf); an entry's
//! leaf is a pruned entry's own or its record's; a register checkpoint
//! that reads is checked against records without a panic.
#![no_main]

use credence_crypto::note::Note;
use credence_protocol::register::{Entry, ReadRecord, check_records, verify_checkpoint};
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = ReadRecord::decode(data) {
        assert_eq!(
            record.encode().expect("re-encodes"),
            data,
            "a record has one encoding"
        );
    }
    match Entry::decode(data) {
        Ok(Entry::Pruned(leaf)) => assert_eq!(Entry::leaf(data).ok(), Some(leaf)),
        Ok(Entry::Record(_)) => assert_eq!(Entry::leaf(data).ok(), Some(ReadRecord::leaf(data))),
        Err(_) => assert!(Entry::leaf(data).is_err()),
    }
    if let Ok(note) = Note::parse(data) {
        let test = testkit::federation(7, 4);
        let keys = [test.keys[0].public_key()];
        if let Ok(checkpoint) =
            verify_checkpoint(&note, &test.federation.id(), &test.author(0), &keys)
        {
            let _ = check_records(&[data.to_vec()], &checkpoint);
        }
    }
});

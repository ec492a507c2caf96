//! Signed checkpoints (C2SP signed note, checkpoint text, cosignatures):
//! parsing and verification never panic; a note that parses encodes back
//! to the same bytes (one encoding per note); what verifies verifies again
//! from its own encoding, with the same result.
#![no_main]

use credence_crypto::note::Note;
use credence_protocol::checkpoint;
use credence_protocol::testkit;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn federation() -> &'static credence_protocol::roster::Federation {
    static FEDERATION: OnceLock<credence_protocol::roster::Federation> = OnceLock::new();
    FEDERATION.get_or_init(|| testkit::federation(7, 4).federation)
}

fuzz_target!(|data: &[u8]| {
    let _ = checkpoint::Checkpoint::parse_text(&String::from_utf8_lossy(data));
    let Ok(note) = Note::parse(data) else {
        return;
    };
    assert_eq!(note.encode().as_bytes(), data, "a note has one encoding");
    let first = checkpoint::verify_note(&note, federation());
    if let Ok(verified) = &first {
        assert_eq!(
            checkpoint::Checkpoint::parse_text(&verified.checkpoint.text()).as_ref(),
            Ok(&verified.checkpoint)
        );
    }
    assert_eq!(checkpoint::verify(note.encode().as_bytes(), federation()), first);
});

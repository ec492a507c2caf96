//! Roster TOML: parsing and checking never panic; a roster that parses
//! has one canonical encoding, stable through its TOML form.
#![no_main]

use credence_protocol::roster::Federation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(federation) = Federation::from_toml(text) {
        let again = Federation::from_toml(&federation.roster().to_document().to_toml())
            .expect("a roster's own TOML reads back");
        assert_eq!(again.id(), federation.id());
    }
});

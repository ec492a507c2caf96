//! Batch against strict verification: for any keys, messages and
//! signatures, the batch answer of every item equals its strict answer.
#![no_main]

use credence_crypto::{BatchItem, PublicKey, verify_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Items of 32 key bytes, 64 signature bytes and an 8-byte message.
    let mut keys = Vec::new();
    let mut rest = Vec::new();
    for item in data.chunks_exact(104) {
        let mut key = [0u8; 32];
        key.copy_from_slice(&item[..32]);
        let Ok(key) = PublicKey::from_bytes(&key) else {
            continue;
        };
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&item[32..96]);
        keys.push(key);
        rest.push((item[96..104].to_vec(), signature));
    }
    let items: Vec<BatchItem<'_>> = keys
        .iter()
        .zip(&rest)
        .map(|(key, (message, signature))| BatchItem {
            key,
            message,
            signature,
        })
        .collect();
    let results = verify_batch(b"credence/fuzz\0", &items);
    for (item, result) in items.iter().zip(results) {
        assert_eq!(
            result,
            item.key
                .verify(b"credence/fuzz\0", item.message, item.signature)
        );
    }
});

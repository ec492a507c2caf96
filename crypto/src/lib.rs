//! Cryptography of credence: authority keys, domain-separated ed25519
//! signatures, content ids and the per-author BLAKE3 Merkle log.
//!
//! The mental model: every authority has one ed25519 key. It signs the
//! canonical bytes of each notice behind a domain tag, so a signature made
//! for a notice can never be replayed as anything else. A notice is named by
//! the BLAKE3 leaf hash of its envelope, which is also its leaf in its
//! author's Merkle log (RFC 6962 tree shape), so one hash serves as id,
//! deduplication key and audit proof.
//!
//! **Architecture invariant:** this crate never reads the clock, never does
//! I/O and never uses a global RNG: randomness comes in as an argument.
//!
//! ```
//! use credence_crypto::{AuthorityKey, PublicKey, NOTICE_DOMAIN};
//! let key = AuthorityKey::from_secret_bytes([7; 32]);
//! let signature = key.sign(NOTICE_DOMAIN, b"body");
//! let public = PublicKey::from_bytes(&key.public_bytes()).unwrap();
//! assert!(public.verify(NOTICE_DOMAIN, b"body", &signature).is_ok());
//! assert!(public.verify(NOTICE_DOMAIN, b"other", &signature).is_err());
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

mod digest;
mod keys;
pub mod merkle;
pub mod note;

pub use digest::{Digest, DigestParseError};
pub use keys::{
    AuthorityKey, BatchItem, KeyError, KeyFileError, NOTICE_DOMAIN, PublicKey, QUERY_DOMAIN,
    REPORT_DOMAIN, SIGNATURE_BYTES, SignatureError, remember_verified, verify_batch,
};

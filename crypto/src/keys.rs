//! Authority keys, strict and batch verification, and the key file format.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;

/// Domain tag prefixed to the canonical body of every notice before signing.
pub const NOTICE_DOMAIN: &[u8] = b"credence/v1/notice\0";
/// Domain tag for signed cross-region query requests and answers.
pub const QUERY_DOMAIN: &[u8] = b"credence/v1/query\0";
/// Domain tag for a node's signed report of a subject's records.
pub const REPORT_DOMAIN: &[u8] = b"credence/v1/report\0";
/// Length of an ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// The first line of a key file; anything else is not a credence key.
const KEY_FILE_HEADER: &str = "credence-authority-key-v1";
/// A key file is a few short lines; anything longer is not ours.
const KEY_FILE_BYTES_MAX: usize = 4096;

/// An authority's signing key. The secret never leaves this type except
/// through [`AuthorityKey::to_key_file`].
pub struct AuthorityKey {
    signing: SigningKey,
}

impl AuthorityKey {
    /// A fresh key from the caller's cryptographic RNG (a seeded one in the
    /// simulator and in tests, the operating system's in the node).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> AuthorityKey {
        AuthorityKey {
            signing: SigningKey::generate(rng),
        }
    }

    /// The key whose 32-byte secret seed is `secret`.
    pub fn from_secret_bytes(secret: [u8; 32]) -> AuthorityKey {
        AuthorityKey {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The 32-byte secret seed (for the libp2p identity and the key file).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key bytes: the authority's id.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The parsed public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.signing.verifying_key(),
        }
    }

    /// Signs `domain || message`.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        let mut buffer = Vec::with_capacity(domain.len() + message.len());
        buffer.extend_from_slice(domain);
        buffer.extend_from_slice(message);
        self.signing.sign(&buffer).to_bytes()
    }

    /// The text of a key file holding this key.
    pub fn to_key_file(&self) -> String {
        format!(
            "{KEY_FILE_HEADER}\n# credence authority key: keep this file private (mode 0600).\nsecret: {}\npublic: {}\n",
            hex::encode(self.secret_bytes()),
            hex::encode(self.public_bytes()),
        )
    }

    /// Parses a key file written by [`AuthorityKey::to_key_file`]. The
    /// public line must match the secret, so a damaged file is refused
    /// rather than silently giving another identity.
    pub fn from_key_file(text: &str) -> Result<AuthorityKey, KeyFileError> {
        if text.len() > KEY_FILE_BYTES_MAX {
            return Err(KeyFileError::TooLarge {
                bytes: text.len(),
                bytes_max: KEY_FILE_BYTES_MAX,
            });
        }
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(KeyFileError::Foreign);
        }
        let mut secret = None;
        let mut public = None;
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                KeyFileError::Malformed(format!("line {line:?} is not `name: value`"))
            })?;
            let bytes = decode_32(value.trim())
                .map_err(|why| KeyFileError::Malformed(format!("{}: {why}", name.trim())))?;
            match name.trim() {
                "secret" => secret = Some(bytes),
                "public" => public = Some(bytes),
                other => return Err(KeyFileError::Malformed(format!("unknown field {other:?}"))),
            }
        }
        let secret =
            secret.ok_or_else(|| KeyFileError::Malformed("the secret line is missing".into()))?;
        let key = AuthorityKey::from_secret_bytes(secret);
        if public.is_some_and(|public| public != key.public_bytes()) {
            return Err(KeyFileError::PublicMismatch);
        }
        Ok(key)
    }
}

impl std::fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthorityKey({})",
            hex::encode(&self.public_bytes()[..4])
        )
    }
}

fn decode_32(text: &str) -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 {
        return Err(format!("expected 64 hex characters, found {}", text.len()));
    }
    hex::decode_to_slice(text, &mut bytes).map_err(|error| error.to_string())?;
    Ok(bytes)
}

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The file does not start with the credence key header.
    #[error("not a credence authority key file (its first line must be `{KEY_FILE_HEADER}`)")]
    Foreign,
    /// The file is far larger than a key file.
    #[error("a key file is a few lines; this one has {bytes} bytes (at most {bytes_max})")]
    TooLarge {
        /// Size found.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// A line could not be read.
    #[error("damaged key file: {0}")]
    Malformed(String),
    /// The public line does not belong to the secret line.
    #[error("damaged key file: its public key does not match its secret key")]
    PublicMismatch,
}

/// A parsed, non-weak ed25519 public key: an authority's identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.key.as_bytes()[..4]))
    }
}

/// Why bytes are not a usable public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a point on the curve.
    #[error("not a valid ed25519 public key")]
    Invalid,
    /// A small-order point: any signature would verify.
    #[error("weak ed25519 public key (small order) refused")]
    Weak,
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not verify strictly for this key and message.
    #[error("signature does not verify")]
    Invalid,
}

impl PublicKey {
    /// Parses and checks a public key; weak keys are refused here so that no
    /// later batch verification (which skips that check) can meet one.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Invalid)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(PublicKey { key })
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Strict verification of a signature over `domain || message`.
    pub fn verify(
        &self,
        domain: &[u8],
        message: &[u8],
        signature: &[u8; SIGNATURE_BYTES],
    ) -> Result<(), SignatureError> {
        let mut buffer = Vec::with_capacity(domain.len() + message.len());
        buffer.extend_from_slice(domain);
        buffer.extend_from_slice(message);
        let remembered = memo::key(&self.key.to_bytes(), signature, &buffer);
        if remembered.is_some_and(|key| memo::holds(&key)) {
            return Ok(());
        }
        let signature = Signature::from_bytes(signature);
        self.key
            .verify_strict(&buffer, &signature)
            .map_err(|_| SignatureError::Invalid)?;
        if let Some(key) = remembered {
            memo::insert(key);
        }
        Ok(())
    }
}

/// Turns on, for the whole process, a memo of the last `capacity`
/// signatures that verified, so that verifying the same signature again
/// costs a BLAKE3 hash instead of a scalar multiplication. Verification is
/// a pure function of key, message and signature, so an answer from the
/// memo is the answer verification would give; only successes are kept, so
/// a refused signature is checked again every time. The memo's entry is the
/// BLAKE3 hash of key, signature and signed bytes: a false hit needs a
/// BLAKE3 collision.
///
/// The simulator turns it on: there every replica of the federation lives
/// in one process and verifies the same envelopes (measured: verification
/// was 60% of a `ci` run). A node verifies each envelope once and leaves it
/// off. `capacity` 0 turns it off and forgets what it held.
pub fn remember_verified(capacity: usize) {
    memo::configure(capacity);
}

mod memo {
    use std::collections::{HashSet, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Memo {
        held: HashSet<[u8; 32]>,
        order: VecDeque<[u8; 32]>,
        capacity: usize,
    }

    static ON: AtomicBool = AtomicBool::new(false);
    static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

    fn lock() -> std::sync::MutexGuard<'static, Option<Memo>> {
        // A panic while holding the lock leaves the sets consistent (each
        // change is one insert or remove), so a poisoned lock is still good.
        MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn configure(capacity: usize) {
        let mut memo = lock();
        *memo = (capacity > 0).then(|| Memo {
            held: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        });
        ON.store(capacity > 0, Ordering::Release);
    }

    /// The memo's key for a verification, or `None` when the memo is off
    /// (then nothing is hashed).
    pub(super) fn key(public: &[u8; 32], signature: &[u8; 64], signed: &[u8]) -> Option<[u8; 32]> {
        if !ON.load(Ordering::Acquire) {
            return None;
        }
        let mut hasher = blake3::Hasher::new_derive_key("credence/v1 verified-signature memo");
        hasher.update(public);
        hasher.update(signature);
        hasher.update(signed);
        Some(*hasher.finalize().as_bytes())
    }

    pub(super) fn holds(key: &[u8; 32]) -> bool {
        lock().as_ref().is_some_and(|memo| memo.held.contains(key))
    }

    pub(super) fn insert(key: [u8; 32]) {
        let mut guard = lock();
        let Some(memo) = guard.as_mut() else { return };
        if !memo.held.insert(key) {
            return;
        }
        memo.order.push_back(key);
        if memo.order.len() > memo.capacity
            && let Some(oldest) = memo.order.pop_front()
        {
            memo.held.remove(&oldest);
        }
    }

    #[cfg(test)]
    pub(super) fn len() -> usize {
        lock().as_ref().map_or(0, |memo| memo.held.len())
    }
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The signer.
    pub key: &'a PublicKey,
    /// The signed message, without the domain tag.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_BYTES],
}

/// Verifies many signatures and says which ones fail: the answer per item
/// is exactly that of [`PublicKey::verify`] (strict, cofactorless), for
/// every input, because each item *is* verified strictly.
///
/// An ed25519 batch equation is a random linear combination of the items'
/// equations. A torsion component in a signature's `R` can vanish in that
/// combination (with `ed25519-dalek`'s coefficients, derived from the
/// batch itself, about one batch in eight, and a signer can grind for
/// one), so a batch accepts signatures that strict verification refuses,
/// and replicas that verify the same notice alone and in a batch would
/// disagree. Excluding such signatures from a batch needs a subgroup check
/// of every `R`, a scalar multiplication that costs more than the strict
/// verification it would save (measured: a batch with the check 13,800
/// signatures/s, strict one by one 19,500/s, the unsound batch 38,000/s,
/// on the same 2-core machine in one run). Bulk callers spread items over
/// threads instead (`Replica::ingest_all`).
pub fn verify_batch(domain: &[u8], items: &[BatchItem<'_>]) -> Vec<Result<(), SignatureError>> {
    items
        .iter()
        .map(|item| item.key.verify(domain, item.message, item.signature))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn key(seed: u64) -> AuthorityKey {
        AuthorityKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    // Generation is a pure function of the RNG, so seeds replay.
    #[test]
    fn generation_replays_from_seed() {
        assert_eq!(key(1).public_bytes(), key(1).public_bytes());
        assert_ne!(key(1).public_bytes(), key(2).public_bytes());
    }

    // The domain tag is part of what is signed: a notice signature is not a
    // query signature.
    #[test]
    fn domain_separation() {
        let signer = key(3);
        let public = signer.public_key();
        let signature = signer.sign(NOTICE_DOMAIN, b"m");
        assert!(public.verify(NOTICE_DOMAIN, b"m", &signature).is_ok());
        assert!(public.verify(QUERY_DOMAIN, b"m", &signature).is_err());
    }

    // Weak keys (small-order points) are refused when parsed.
    #[test]
    fn weak_key_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1; // the identity point, order 1
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
    }

    // A batch with one bad signature reports exactly that one.
    #[test]
    fn batch_names_the_bad_signature() {
        let signers: Vec<AuthorityKey> = (0..5).map(key).collect();
        let publics: Vec<PublicKey> = signers.iter().map(AuthorityKey::public_key).collect();
        let messages: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut signatures: Vec<[u8; 64]> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % 5].sign(NOTICE_DOMAIN, m))
            .collect();
        signatures[261][10] ^= 1;
        let items: Vec<BatchItem<'_>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| BatchItem {
                key: &publics[i % 5],
                message: m,
                signature: &signatures[i],
            })
            .collect();
        let results = verify_batch(NOTICE_DOMAIN, &items);
        assert_eq!(results.len(), 300);
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), i != 261, "item {i}");
        }
    }

    // Key files round trip; damaged and foreign files are refused with the
    // reason.
    #[test]
    fn key_file_round_trip_and_refusals() {
        let signer = key(9);
        let text = signer.to_key_file();
        let back = AuthorityKey::from_key_file(&text).unwrap();
        assert_eq!(back.public_bytes(), signer.public_bytes());
        assert_eq!(
            AuthorityKey::from_key_file("-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap_err(),
            KeyFileError::Foreign
        );
        let public_hex = hex::encode(signer.public_bytes());
        let other = hex::encode(key(10).public_bytes());
        assert_eq!(
            AuthorityKey::from_key_file(&text.replace(&public_hex, &other)).unwrap_err(),
            KeyFileError::PublicMismatch
        );
        assert!(matches!(
            AuthorityKey::from_key_file(&text.replace("secret: ", "secret: zz")).unwrap_err(),
            KeyFileError::Malformed(_)
        ));
    }
    /// Hex to bytes (test data only).
    fn unhex<const N: usize>(text: &str) -> [u8; N] {
        let bytes = hex::decode(text).unwrap();
        bytes.try_into().unwrap()
    }

    // The edge-case vectors of "Taming the many EdDSAs" (Chalkias,
    // Garillot, Nikolaenko): message, key, signature. Strict verification
    // accepts only vector 3; every other one has a small-order or
    // mixed-order key or R, a non-canonical encoding or a scalar out of
    // range. Batch verification gives the same answer for each, alone and
    // among valid signatures.
    const TAMING_VECTORS: [(&str, &str, &str); 10] = [
        (
            "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        ),
        (
            "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
        ),
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
        ),
        (
            "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
            "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
            "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
        ),
        (
            "fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607",
        ),
        (
            "84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1",
            "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09",
        ),
    ];

    /// Valid signatures (no domain tag) to mix into batches.
    fn valid_items(count: usize) -> (Vec<PublicKey>, Vec<Vec<u8>>, Vec<[u8; 64]>) {
        let signers: Vec<AuthorityKey> = (0..count as u64).map(|i| key(100 + i)).collect();
        let messages: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("valid {i}").into_bytes())
            .collect();
        let signatures = signers
            .iter()
            .zip(&messages)
            .map(|(s, m)| s.sign(b"", m))
            .collect();
        (
            signers.iter().map(AuthorityKey::public_key).collect(),
            messages,
            signatures,
        )
    }

    /// Verifies `odd` alone and among valid signatures, in every position;
    /// returns the batch answers for it, which must all equal `strict`.
    fn batch_answers(key: &PublicKey, message: &[u8], signature: &[u8; 64], strict: bool) {
        let alone = verify_batch(
            b"",
            &[BatchItem {
                key,
                message,
                signature,
            }],
        );
        assert_eq!(alone[0].is_ok(), strict, "alone");
        let (keys, messages, signatures) = valid_items(7);
        for position in 0..=keys.len() {
            let mut items: Vec<BatchItem<'_>> = keys
                .iter()
                .zip(&messages)
                .zip(&signatures)
                .map(|((key, message), signature)| BatchItem {
                    key,
                    message,
                    signature,
                })
                .collect();
            items.insert(
                position,
                BatchItem {
                    key,
                    message,
                    signature,
                },
            );
            let results = verify_batch(b"", &items);
            for (i, result) in results.iter().enumerate() {
                let expected = if i == position { strict } else { true };
                assert_eq!(result.is_ok(), expected, "item {i}, odd one at {position}");
            }
        }
    }

    #[test]
    fn edge_case_vectors_answer_the_same_in_and_out_of_batches() {
        for (n, (message, key, signature)) in TAMING_VECTORS.iter().enumerate() {
            let message = hex::decode(message).unwrap();
            let signature: [u8; 64] = unhex(signature);
            let Ok(key) = PublicKey::from_bytes(&unhex(key)) else {
                // A small-order key is refused before any signature check.
                assert_ne!(n, 3, "vector 3's key is sound");
                continue;
            };
            let strict = key.verify(b"", &message, &signature).is_ok();
            assert_eq!(strict, n == 3, "vector {n}");
            batch_answers(&key, &message, &signature, strict);
        }
    }

    /// A signature by `signer` whose `R` carries the order-8 point `T`:
    /// `R = r·B + T`, `s = r + H(R, A, M)·a`. Strict verification refuses
    /// it; a cofactorless batch equation whose random coefficient is a
    /// multiple of 8 does not see `T`.
    fn torsioned(signer: &AuthorityKey, message: &[u8], nonce: u64) -> [u8; 64] {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::Sha512;
        let order_8 = CompressedEdwardsY(unhex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        ))
        .decompress()
        .unwrap();
        assert!(order_8.is_small_order() && !order_8.is_torsion_free());
        let r = Scalar::hash_from_bytes::<Sha512>(&nonce.to_le_bytes());
        let big_r = (EdwardsPoint::mul_base(&r) + order_8).compress().to_bytes();
        let mut hashed = big_r.to_vec();
        hashed.extend_from_slice(&signer.public_bytes());
        hashed.extend_from_slice(message);
        let k = Scalar::hash_from_bytes::<Sha512>(&hashed);
        let s = r + k * signer.signing.to_scalar();
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&big_r);
        signature[32..].copy_from_slice(&s.to_bytes());
        signature
    }

    // Batch verification never accepts what strict verification refuses:
    // a torsion component in R passes about one cofactorless batch in
    // eight (the coefficients are derived from the batch, so a signer can
    // grind for one); here none of 64 does.
    #[test]
    fn a_torsion_component_in_r_never_passes_a_batch() {
        let signer = key(77);
        let public = signer.public_key();
        for nonce in 0..64u64 {
            let message = format!("torsioned {nonce}").into_bytes();
            let signature = torsioned(&signer, &message, nonce);
            assert!(public.verify(b"", &message, &signature).is_err());
            batch_answers(&public, &message, &signature, false);
        }
    }

    // Differential: random batches of valid, tampered, torsioned and
    // edge-case signatures; every item's batch answer equals its strict one.
    #[test]
    fn batch_answers_equal_strict_answers() {
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let signers: Vec<AuthorityKey> = (0..6).map(|i| key(200 + i)).collect();
        let mut pool: Vec<(PublicKey, Vec<u8>, [u8; 64])> = Vec::new();
        for i in 0..60u64 {
            let signer = &signers[(i % 6) as usize];
            let message = format!("message {i}").into_bytes();
            let signature = match i % 4 {
                0 | 1 => signer.sign(b"", &message),
                2 => {
                    let mut bad = signer.sign(b"", &message);
                    bad[(i as usize * 7) % 64] ^= 1 << (i % 8);
                    bad
                }
                _ => torsioned(signer, &message, i),
            };
            pool.push((signer.public_key(), message, signature));
        }
        for (message, key, signature) in TAMING_VECTORS {
            if let Ok(key) = PublicKey::from_bytes(&unhex(key)) {
                pool.push((key, hex::decode(message).unwrap(), unhex(signature)));
            }
        }
        for _ in 0..200 {
            let size = 1 + (next() % 40) as usize;
            let picked: Vec<&(PublicKey, Vec<u8>, [u8; 64])> = (0..size)
                .map(|_| &pool[(next() % pool.len() as u64) as usize])
                .collect();
            let items: Vec<BatchItem<'_>> = picked
                .iter()
                .map(|(key, message, signature)| BatchItem {
                    key,
                    message,
                    signature,
                })
                .collect();
            let results = verify_batch(b"", &items);
            for (item, result) in items.iter().zip(&results) {
                let strict = item.key.verify(b"", item.message, item.signature);
                assert_eq!(*result, strict);
            }
        }
    }

    // The memo changes no answer: a signature verified and remembered still
    // refuses every other message, key and signature, the memo never holds
    // more than its capacity, and once off it is forgotten. (One test: the
    // memo is process-wide, and other tests verify beside it; they only
    // add successes, which keeps every assertion here true.)
    #[test]
    fn the_verified_memo_changes_no_answer_and_stays_bounded() {
        let signer = key(40);
        let other = key(41).public_key();
        let public = signer.public_key();
        remember_verified(4);
        let signature = signer.sign(NOTICE_DOMAIN, b"body");
        for _ in 0..3 {
            assert!(public.verify(NOTICE_DOMAIN, b"body", &signature).is_ok());
        }
        assert!(memo::len() >= 1 && memo::len() <= 4);
        assert!(public.verify(NOTICE_DOMAIN, b"bodY", &signature).is_err());
        assert!(public.verify(QUERY_DOMAIN, b"body", &signature).is_err());
        assert!(other.verify(NOTICE_DOMAIN, b"body", &signature).is_err());
        for bit in [0, 100, 300, 511] {
            let mut flipped = signature;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(public.verify(NOTICE_DOMAIN, b"body", &flipped).is_err());
        }
        for i in 0..20u8 {
            let message = [i; 3];
            let signature = signer.sign(NOTICE_DOMAIN, &message);
            assert!(public.verify(NOTICE_DOMAIN, &message, &signature).is_ok());
            assert!(memo::len() <= 4);
        }
        assert!(public.verify(NOTICE_DOMAIN, b"body", &signature).is_ok());
        remember_verified(0);
        assert_eq!(memo::len(), 0);
        assert!(public.verify(NOTICE_DOMAIN, b"body", &signature).is_ok());
        assert_eq!(memo::len(), 0);
    }
}

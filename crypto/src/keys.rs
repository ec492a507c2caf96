//! Authority keys, strict and batch verification, and the key file format.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;

/// Domain tag prefixed to the canonical body of every notice before signing.
pub const NOTICE_DOMAIN: &[u8] = b"credence/v1/notice\0";
/// Domain tag for signed cross-region query requests and answers.
pub const QUERY_DOMAIN: &[u8] = b"credence/v1/query\0";
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
        let signature = Signature::from_bytes(signature);
        self.key
            .verify_strict(&buffer, &signature)
            .map_err(|_| SignatureError::Invalid)
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

/// Batch size at which one batch equation is checked; past it, the
/// multiscalar multiplication gains little and a failure costs more.
const BATCH_SIGNATURES_MAX: usize = 256;

/// Verifies many signatures at once and says which ones fail.
///
/// The answer per item is exactly that of [`PublicKey::verify`] (strict):
/// keys are weak-checked when parsed ([`PublicKey::from_bytes`]) and each
/// signature's `R` is checked for small order here, the two checks the
/// batch equation skips. When a batch fails, its items are verified one by
/// one so that the failing ones are named.
pub fn verify_batch(domain: &[u8], items: &[BatchItem<'_>]) -> Vec<Result<(), SignatureError>> {
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(BATCH_SIGNATURES_MAX) {
        let messages: Vec<Vec<u8>> = chunk
            .iter()
            .map(|item| {
                let mut buffer = Vec::with_capacity(domain.len() + item.message.len());
                buffer.extend_from_slice(domain);
                buffer.extend_from_slice(item.message);
                buffer
            })
            .collect();
        let message_slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<Signature> = chunk
            .iter()
            .map(|item| Signature::from_bytes(item.signature))
            .collect();
        let keys: Vec<VerifyingKey> = chunk.iter().map(|item| item.key.key).collect();
        let r_points_sound = chunk.iter().all(|item| r_point_sound(item.signature));
        if r_points_sound
            && ed25519_dalek::verify_batch(&message_slices, &signatures, &keys).is_ok()
        {
            results.extend(std::iter::repeat_n(Ok(()), chunk.len()));
        } else {
            results.extend(
                chunk
                    .iter()
                    .map(|item| item.key.verify(domain, item.message, item.signature)),
            );
        }
    }
    results
}

/// Whether a signature's `R` is a curve point of large order, as
/// `verify_strict` demands.
fn r_point_sound(signature: &[u8; SIGNATURE_BYTES]) -> bool {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    CompressedEdwardsY(r_bytes)
        .decompress()
        .is_some_and(|point| !point.is_small_order())
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
}

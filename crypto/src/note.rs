//! C2SP signed notes (`c2sp.org/signed-note`) and Ed25519 cosignatures
//! (`c2sp.org/tlog-cosignature`, `cosignature/v1`).
//!
//! A note is UTF-8 text ending in a newline, then a blank line, then one or
//! more signature lines `— <key name> <base64(key id || signature)>`. The
//! key id is the first 4 bytes of SHA-256(name || 0x0A || type || public
//! key): type 0x01 for an Ed25519 signature over the text, 0x04 for an
//! Ed25519 cosignature, whose signature bytes are a big-endian u64 POSIX
//! timestamp and then the Ed25519 signature over
//! `"cosignature/v1\ntime <timestamp>\n" || text`.
//!
//! Signatures here are plain Ed25519 over those messages (no credence
//! domain tag), so that any signed-note verifier accepts them. They cannot
//! be mistaken for a notice's or a query's signature: those messages start
//! with a domain tag ending in a NUL byte, which note text never holds.

use crate::keys::{AuthorityKey, PublicKey, SIGNATURE_BYTES};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// Signature type of an Ed25519 note signature.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 `cosignature/v1`.
pub const TYPE_COSIGNATURE_V1: u8 = 0x04;
/// The largest note read, signatures included.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// The most signature lines read in one note (as Go's `sumdb/note`).
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// The longest key name.
pub const KEY_NAME_BYTES_MAX: usize = 256;

/// The signature line prefix: U+2014 EM DASH and a space.
const DASH: &str = "\u{2014} ";

/// What is wrong with a note.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Larger than [`NOTE_BYTES_MAX`].
    #[error("the note is {bytes} bytes; at most {NOTE_BYTES_MAX} are read")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// The text is malformed (what is wrong is said).
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A signature line is malformed.
    #[error("malformed signature line {line}: {reason}")]
    BadLine {
        /// 1-based among the signature lines.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More than [`NOTE_SIGNATURES_MAX`] signature lines.
    #[error("more than {NOTE_SIGNATURES_MAX} signature lines")]
    TooManySignatures,
    /// A key name breaks the rules (empty, too long, a space or a plus).
    #[error("bad key name: {0}")]
    BadName(&'static str),
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The key id (first 4 bytes of SHA-256(name, 0x0A, type, key)).
    pub key_id: [u8; 4],
    /// The signature bytes after the key id.
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its final newline.
    pub fn line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.bytes.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.bytes);
        format!("{DASH}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A parsed note: its text and its signature lines, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines.
    pub signatures: Vec<NoteSignature>,
}

/// The key id of `public` under `name` for signature type `kind`.
pub fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut hash = Sha256::new();
    hash.update(name.as_bytes());
    hash.update([b'\n', kind]);
    hash.update(public);
    let digest = hash.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Checks a key name: non-empty, at most [`KEY_NAME_BYTES_MAX`] bytes, no
/// Unicode space and no `+`.
pub fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() {
        return Err(NoteError::BadName("empty"));
    }
    if name.len() > KEY_NAME_BYTES_MAX {
        return Err(NoteError::BadName("too long"));
    }
    if name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadName("holds a space or a plus"));
    }
    Ok(())
}

/// Checks note text: non-empty, ends in a newline, no blank line, no
/// control character but the newline.
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end in a newline"));
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err(NoteError::Malformed("the text holds a blank line"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("the text holds a control character"));
    }
    Ok(())
}

impl Note {
    /// Parses a note (at most [`NOTE_BYTES_MAX`] bytes and
    /// [`NOTE_SIGNATURES_MAX`] signatures). Nothing is verified.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge { bytes: bytes.len() });
        }
        let all = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        let split = all
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, rest) = (&all[..=split], &all[split + 2..]);
        check_text(text)?;
        if rest.is_empty() || !rest.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the signatures do not end in a newline",
            ));
        }
        let mut signatures = Vec::new();
        for (index, line) in rest[..rest.len() - 1].split('\n').enumerate() {
            let number = index + 1;
            if signatures.len() == NOTE_SIGNATURES_MAX {
                return Err(NoteError::TooManySignatures);
            }
            let bad = |reason| NoteError::BadLine {
                line: number,
                reason,
            };
            let line = line
                .strip_prefix(DASH)
                .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
            let (name, encoded) = line
                .split_once(' ')
                .ok_or_else(|| bad("no space between the name and the signature"))?;
            check_name(name).map_err(|_| bad("bad key name"))?;
            let raw = STANDARD
                .decode(encoded)
                .map_err(|_| bad("the signature is not base64"))?;
            if STANDARD.encode(&raw) != encoded {
                return Err(bad("the signature's base64 is not canonical"));
            }
            if raw.len() < 5 {
                return Err(bad("the signature is shorter than a key id"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                bytes: raw[4..].to_vec(),
            });
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// The note's bytes: the text, a blank line, the signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.line());
        }
        out
    }

    /// The signature lines of `name` whose key id is that of `public` with
    /// type `kind`: those a verifier that knows this key looks at.
    pub fn lines_of<'a>(
        &'a self,
        name: &'a str,
        kind: u8,
        public: &[u8; 32],
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        let id = key_id(name, kind, public);
        self.signatures
            .iter()
            .filter(move |s| s.name == name && s.key_id == id)
    }
}

/// Signs `text` (checked with [`check_text`]) as key `name`: an Ed25519
/// note signature (type 0x01).
pub fn sign(key: &AuthorityKey, name: &str, text: &str) -> Result<NoteSignature, NoteError> {
    check_name(name)?;
    check_text(text)?;
    Ok(NoteSignature {
        name: name.to_string(),
        key_id: key_id(name, TYPE_ED25519, &key.public_bytes()),
        bytes: key.sign(b"", text.as_bytes()).to_vec(),
    })
}

/// Whether `signature` is a valid Ed25519 note signature of `text` by
/// `public` (its name and key id must match; verification is strict).
pub fn verify(public: &PublicKey, text: &str, signature: &NoteSignature) -> bool {
    let Ok(bytes) = <[u8; SIGNATURE_BYTES]>::try_from(signature.bytes.as_slice()) else {
        return false;
    };
    signature.key_id == key_id(&signature.name, TYPE_ED25519, &public.to_bytes())
        && public.verify(b"", text.as_bytes(), &bytes).is_ok()
}

/// The message a `cosignature/v1` signs.
pub fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// Cosigns `text` (a checkpoint) at `timestamp` (POSIX seconds, below
/// 2^63) as cosigner `name`.
pub fn cosign(
    key: &AuthorityKey,
    name: &str,
    text: &str,
    timestamp: u64,
) -> Result<NoteSignature, NoteError> {
    check_name(name)?;
    check_text(text)?;
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::Malformed("a cosignature time past 2^63 - 1"));
    }
    let mut bytes = Vec::with_capacity(8 + SIGNATURE_BYTES);
    bytes.extend_from_slice(&timestamp.to_be_bytes());
    bytes.extend_from_slice(&key.sign(b"", cosigned_message(text, timestamp).as_bytes()));
    Ok(NoteSignature {
        name: name.to_string(),
        key_id: key_id(name, TYPE_COSIGNATURE_V1, &key.public_bytes()),
        bytes,
    })
}

/// The timestamp of a valid `cosignature/v1` of `text` by `public`, or
/// `None` (name and key id must match; verification is strict).
pub fn verify_cosignature(
    public: &PublicKey,
    text: &str,
    signature: &NoteSignature,
) -> Option<u64> {
    if signature.key_id != key_id(&signature.name, TYPE_COSIGNATURE_V1, &public.to_bytes())
        || signature.bytes.len() != 8 + SIGNATURE_BYTES
    {
        return None;
    }
    let (time, sig) = signature.bytes.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    if timestamp > i64::MAX as u64 {
        return None;
    }
    let sig: [u8; SIGNATURE_BYTES] = sig.try_into().ok()?;
    public
        .verify(b"", cosigned_message(text, timestamp).as_bytes(), &sig)
        .ok()
        .map(|()| timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

    #[test]
    fn sign_parse_verify_round_trip() {
        let key = AuthorityKey::from_secret_bytes([3; 32]);
        let witness = AuthorityKey::from_secret_bytes([4; 32]);
        let note = Note {
            text: TEXT.into(),
            signatures: vec![
                sign(&key, "example.org/log", TEXT).unwrap(),
                cosign(&witness, "example.org/witness", TEXT, 1_767_225_600).unwrap(),
            ],
        };
        let bytes = note.encode();
        let parsed = Note::parse(bytes.as_bytes()).unwrap();
        assert_eq!(parsed, note);
        assert!(verify(&key.public_key(), TEXT, &parsed.signatures[0]));
        assert!(!verify(&witness.public_key(), TEXT, &parsed.signatures[0]));
        assert_eq!(
            verify_cosignature(&witness.public_key(), TEXT, &parsed.signatures[1]),
            Some(1_767_225_600)
        );
        // A cosignature is not a note signature, and the other way round.
        assert!(!verify(&witness.public_key(), TEXT, &parsed.signatures[1]));
        assert_eq!(
            verify_cosignature(&key.public_key(), TEXT, &parsed.signatures[0]),
            None
        );
        // Every single-byte change of the note breaks a signature or the
        // parse.
        for i in 0..bytes.len() {
            let mut changed = bytes.clone().into_bytes();
            changed[i] ^= 0x01;
            let Ok(other) = Note::parse(&changed) else {
                continue;
            };
            let log_ok = other
                .signatures
                .first()
                .is_some_and(|s| verify(&key.public_key(), &other.text, s));
            let witness_ok = other.signatures.get(1).is_some_and(|s| {
                verify_cosignature(&witness.public_key(), &other.text, s) == Some(1_767_225_600)
            });
            assert!(
                !(log_ok && witness_ok && other.signatures.len() == 2),
                "byte {i} changed and both signatures still verify"
            );
        }
    }

    #[test]
    fn malformed_notes_are_refused_with_a_reason() {
        let key = AuthorityKey::from_secret_bytes([3; 32]);
        let line = sign(&key, "example.org/log", TEXT).unwrap().line();
        let cases: Vec<(String, &str)> = vec![
            (format!("{TEXT}{line}"), "no blank line"),
            (format!("{TEXT}\n"), "signatures do not end"),
            (
                format!("{TEXT}\n{}", line.trim_end()),
                "do not end in a newline",
            ),
            (format!("{TEXT}\n- example.org/log AAAA\n"), "em dash"),
            (
                format!("{TEXT}\n\u{2014} example.org/log !!!!\n"),
                "not base64",
            ),
            (
                format!("{TEXT}\n\u{2014} example.org/log AAAA\n"),
                "shorter than a key id",
            ),
            (format!("a\u{7}b\n\n{line}"), "control character"),
            (format!("{TEXT}\n\u{2014} a+b AAAAAAA=\n"), "bad key name"),
        ];
        for (text, reason) in cases {
            let error = Note::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
        let big = vec![b'a'; NOTE_BYTES_MAX + 1];
        assert!(matches!(Note::parse(&big), Err(NoteError::TooLarge { .. })));
        let many = format!("{TEXT}\n{}", line.repeat(NOTE_SIGNATURES_MAX + 1));
        assert_eq!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
    }

    // The key id of the signed-note specification's example key (from Go's
    // sumdb/note documentation): name "PeterNeumann", type 0x01, key id
    // c74f20a3.
    #[test]
    fn key_id_matches_the_specification_example() {
        // The vkey's base64 holds the type byte, then the key.
        let raw = STANDARD
            .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        assert_eq!(raw.len(), 33);
        let key: [u8; 32] = raw[1..].try_into().unwrap();
        assert_eq!(
            hex::encode(key_id("PeterNeumann", raw[0], &key)),
            "c74f20a3"
        );
    }
}

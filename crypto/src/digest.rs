//! A 32-byte BLAKE3 digest with hex display and parsing.

use std::fmt;
use std::str::FromStr;

/// A 32-byte BLAKE3 output: notice ids, Merkle nodes, federation ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used as `prev` of the first notice of a log.
    pub const ZERO: Digest = Digest([0; 32]);

    /// The digest of `data` under plain BLAKE3.
    pub fn of(data: &[u8]) -> Digest {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first eight hex characters, for logs and topic names.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// The text is not 64 characters long.
    #[error("a digest is 64 hex characters, this one has {length}")]
    Length {
        /// The length found.
        length: usize,
    },
    /// A character is not a hex digit.
    #[error("a digest is written in hex (0-9, a-f): {0}")]
    Hex(String),
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(DigestParseError::Length { length: text.len() });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|error| DigestParseError::Hex(error.to_string()))?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hex round trip and the two ways parsing fails.
    #[test]
    fn hex_round_trip_and_errors() {
        let digest = Digest::of(b"credence");
        assert_eq!(digest.to_hex().parse::<Digest>(), Ok(digest));
        assert_eq!(
            "abc".parse::<Digest>(),
            Err(DigestParseError::Length { length: 3 })
        );
        assert!(matches!(
            "zz".repeat(32).parse::<Digest>(),
            Err(DigestParseError::Hex(_))
        ));
    }
}

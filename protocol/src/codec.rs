//! The one canonical codec: bincode 2 with a single fixed configuration.
//!
//! Every decode is bounded, rejects trailing bytes and checks that decoding
//! then re-encoding gives the same bytes, so that one value has exactly one
//! encoding and therefore one id. bincode is used only here: switching to a
//! byte-compatible successor is a change to this file alone.

use crate::model::{ENVELOPE_BYTES_MAX, Envelope, NOTICE_BYTES_MAX, Notice};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Fixed-width little-endian integers; the byte limit is a const generic
/// so that it is enforced by bincode while decoding, before allocation.
type Config<const LIMIT: usize> = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<LIMIT>,
>;

fn config<const LIMIT: usize>() -> Config<LIMIT> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

/// Why bytes were refused by the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// More bytes than the limit for this kind of value.
    #[error("{what} of {bytes} bytes exceeds the limit of {bytes_max} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// The bytes do not decode.
    #[error("{what} does not decode: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// bincode's explanation.
        reason: String,
    },
    /// The value ended before the bytes did.
    #[error("{what} has {trailing} trailing bytes after its end")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        trailing: usize,
    },
    /// The bytes decode, but are not the canonical encoding of the value.
    #[error("{what} is not canonically encoded")]
    NotCanonical {
        /// What was being decoded.
        what: &'static str,
    },
}

/// Encodes `value` canonically; refuses a result over `LIMIT` bytes.
pub fn encode_bounded<T: Serialize, const LIMIT: usize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config::<LIMIT>()).map_err(|error| {
        CodecError::Malformed {
            what,
            reason: error.to_string(),
        }
    })?;
    if bytes.len() > LIMIT {
        return Err(CodecError::TooLarge {
            what,
            bytes: bytes.len(),
            bytes_max: LIMIT,
        });
    }
    Ok(bytes)
}

/// Decodes exactly `bytes` as one canonical `T` of at most `LIMIT` bytes.
pub fn decode_bounded<T: Serialize + DeserializeOwned, const LIMIT: usize>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    if bytes.len() > LIMIT {
        return Err(CodecError::TooLarge {
            what,
            bytes: bytes.len(),
            bytes_max: LIMIT,
        });
    }
    let (value, consumed): (T, usize) = bincode::serde::decode_from_slice(bytes, config::<LIMIT>())
        .map_err(|error| CodecError::Malformed {
            what,
            reason: error.to_string(),
        })?;
    if consumed != bytes.len() {
        return Err(CodecError::TrailingBytes {
            what,
            trailing: bytes.len() - consumed,
        });
    }
    let again = encode_bounded::<T, LIMIT>(what, &value)?;
    if again != bytes {
        return Err(CodecError::NotCanonical { what });
    }
    Ok(value)
}

/// Encodes a notice body.
pub fn encode_notice(notice: &Notice) -> Result<Vec<u8>, CodecError> {
    encode_bounded::<_, NOTICE_BYTES_MAX>("notice", notice)
}

/// Decodes a notice body.
pub fn decode_notice(bytes: &[u8]) -> Result<Notice, CodecError> {
    decode_bounded::<_, NOTICE_BYTES_MAX>("notice", bytes)
}

/// Encodes an envelope.
pub fn encode_envelope(envelope: &Envelope) -> Result<Vec<u8>, CodecError> {
    encode_bounded::<_, ENVELOPE_BYTES_MAX>("envelope", envelope)
}

/// Decodes an envelope (not its body).
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, CodecError> {
    decode_bounded::<_, ENVELOPE_BYTES_MAX>("envelope", bytes)
}

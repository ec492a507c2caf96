//! The one canonical codec: bincode 2 with a single fixed configuration.
//!
//! Every decode is bounded, rejects trailing bytes and checks that decoding
//! then re-encoding gives the same bytes, so that one value has exactly one
//! encoding and therefore one id. bincode is used only here: switching to a
//! byte-compatible successor is a change to this file alone.

use crate::model::{ENVELOPE_BYTES_MAX, Envelope, NOTICE_BYTES_MAX, Notice, NoticeKind};
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

/// What a listing of notice format 3 adds after the fields formats 1 and
/// 2 have: its readers and its linked persons, here both empty (a u64
/// count of zero each). A List notice of an older format reads as one of
/// format 3 with both lists empty, and encodes back without them.
const LISTING_FORMAT_3_EMPTY_TAIL: [u8; 16] = [0; 16];

/// Whether notice bytes are a List notice of format 1 or 2, read at their
/// fixed offsets: the version (2 bytes), then federation (32), roster
/// (8, format 2 only), author (32), seq (8), prev (32) and issued_at (8)
/// before the kind's index (a u32, 0 for List).
fn is_older_listing(bytes: &[u8]) -> bool {
    let Some(version) = bytes.first_chunk::<2>().map(|v| u16::from_le_bytes(*v)) else {
        return false;
    };
    let kind_at = match version {
        1 => 2 + 32 + 32 + 8 + 32 + 8,
        2 => 2 + 32 + 8 + 32 + 8 + 32 + 8,
        _ => return false,
    };
    bytes.get(kind_at..kind_at + 4) == Some(&[0, 0, 0, 0][..])
}

/// The bytes to decode for a notice body: an older List notice with the
/// empty lists format 3 adds appended.
fn as_format_3(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if is_older_listing(bytes) {
        std::borrow::Cow::Owned([bytes, &LISTING_FORMAT_3_EMPTY_TAIL].concat())
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

/// The limit while a notice is handled with its format 3 tail.
const NOTICE_WITH_TAIL_MAX: usize = NOTICE_BYTES_MAX + LISTING_FORMAT_3_EMPTY_TAIL.len();

fn notice_too_large(what: &'static str, bytes: usize) -> Result<(), CodecError> {
    if bytes > NOTICE_BYTES_MAX {
        return Err(CodecError::TooLarge {
            what,
            bytes,
            bytes_max: NOTICE_BYTES_MAX,
        });
    }
    Ok(())
}

/// Encodes a notice body. A listing in a notice of format 1 or 2 cannot
/// name readers or linked persons.
pub fn encode_notice(notice: &Notice) -> Result<Vec<u8>, CodecError> {
    let mut bytes = encode_bounded::<_, NOTICE_WITH_TAIL_MAX>("notice", notice)?;
    if let (true, NoticeKind::List(listing)) = (notice.version < 3, &notice.kind) {
        if !listing.readers.is_empty() || !listing.linked.is_empty() {
            return Err(CodecError::Malformed {
                what: "notice",
                reason: format!(
                    "a listing in notice format {} cannot name readers or linked persons (format 3 can)",
                    notice.version
                ),
            });
        }
        bytes.truncate(bytes.len() - LISTING_FORMAT_3_EMPTY_TAIL.len());
    }
    notice_too_large("notice", bytes.len())?;
    Ok(bytes)
}

/// Decodes a notice body.
pub fn decode_notice(bytes: &[u8]) -> Result<Notice, CodecError> {
    notice_too_large("notice", bytes.len())?;
    // The canonical check re-encodes the padded bytes: an older listing
    // decodes only from its exact bytes.
    decode_bounded::<_, NOTICE_WITH_TAIL_MAX>("notice", &as_format_3(bytes))
}

/// Decodes a notice body read back from this replica's own store: bounded
/// and complete like [`decode_notice`], without the canonical re-encoding,
/// which was checked before the notice was stored.
pub fn decode_stored_notice(bytes: &[u8]) -> Result<Notice, CodecError> {
    const WHAT: &str = "stored notice";
    notice_too_large(WHAT, bytes.len())?;
    let bytes = as_format_3(bytes);
    let (value, consumed): (Notice, usize) =
        bincode::serde::decode_from_slice(&bytes, config::<NOTICE_WITH_TAIL_MAX>()).map_err(
            |error| CodecError::Malformed {
                what: WHAT,
                reason: error.to_string(),
            },
        )?;
    if consumed != bytes.len() {
        return Err(CodecError::TrailingBytes {
            what: WHAT,
            trailing: bytes.len() - consumed,
        });
    }
    Ok(value)
}

/// Encodes an envelope.
pub fn encode_envelope(envelope: &Envelope) -> Result<Vec<u8>, CodecError> {
    encode_bounded::<_, ENVELOPE_BYTES_MAX>("envelope", envelope)
}

/// Decodes an envelope (not its body).
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, CodecError> {
    let (body, signature) = envelope_parts(bytes)?;
    Ok(Envelope {
        body: body.to_vec(),
        signature: crate::model::SignatureBytes(signature),
    })
}

/// The body and signature of envelope bytes, without copying the body.
///
/// This reads the layout [`encode_envelope`] writes (the body's length as
/// a u64, the body, the 64 signature bytes) directly: every byte string
/// that has that layout is the canonical encoding of its envelope, so no
/// re-encoding is needed, and the hot ingest path avoids bincode's copy.
/// `envelope_parts_match_bincode` in the tests keeps the two in step.
pub fn envelope_parts(bytes: &[u8]) -> Result<(&[u8], [u8; 64]), CodecError> {
    const WHAT: &str = "envelope";
    if bytes.len() > ENVELOPE_BYTES_MAX {
        return Err(CodecError::TooLarge {
            what: WHAT,
            bytes: bytes.len(),
            bytes_max: ENVELOPE_BYTES_MAX,
        });
    }
    let malformed = |reason: &str| CodecError::Malformed {
        what: WHAT,
        reason: reason.to_string(),
    };
    let (length, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| malformed("shorter than its length field"))?;
    let length = usize::try_from(u64::from_le_bytes(*length))
        .map_err(|_| malformed("body length does not fit in memory"))?;
    if length > NOTICE_BYTES_MAX {
        return Err(CodecError::TooLarge {
            what: "notice",
            bytes: length,
            bytes_max: NOTICE_BYTES_MAX,
        });
    }
    let needed = length + 64;
    if rest.len() < needed {
        return Err(malformed("ends before its body and signature"));
    }
    if rest.len() > needed {
        return Err(CodecError::TrailingBytes {
            what: WHAT,
            trailing: rest.len() - needed,
        });
    }
    let (body, signature) = rest.split_at(length);
    let mut signature_bytes = [0u8; 64];
    signature_bytes.copy_from_slice(signature);
    Ok((body, signature_bytes))
}

/// The author and seq of envelope bytes, read at their fixed offsets
/// without decoding the notice: the body's length (8 bytes), then the
/// notice's version (2), federation (32), the roster version (8, from
/// notice format 2 on), author (32) and seq (8). For stores and answers
/// that must place a record in its log cheaply;
/// `author_and_seq_match_decoding` keeps it in step with the codec.
pub fn envelope_author_seq(envelope: &[u8]) -> Option<(crate::model::AuthorityId, u64)> {
    let version: [u8; 2] = envelope.get(8..10)?.try_into().ok()?;
    let author_at = match u16::from_le_bytes(version) {
        1 => 8 + 2 + 32,
        _ => 8 + 2 + 32 + 8,
    };
    let author: [u8; 32] = envelope.get(author_at..author_at + 32)?.try_into().ok()?;
    let seq: [u8; 8] = envelope
        .get(author_at + 32..author_at + 40)?
        .try_into()
        .ok()?;
    Some((crate::model::AuthorityId(author), u64::from_le_bytes(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SignatureBytes;

    // The fixed offsets agree with a full decode.
    #[test]
    fn author_and_seq_match_decoding() {
        let test = crate::testkit::federation(5, 2);
        let workload =
            crate::testkit::workload(&test, 9, 20, 4, crate::time::Timestamp(1_767_225_600_000));
        for envelope in &workload.envelopes {
            let (body, _) = envelope_parts(envelope).unwrap();
            let notice = decode_notice(body).unwrap();
            assert_eq!(
                envelope_author_seq(envelope),
                Some((notice.author, notice.seq))
            );
        }
        assert_eq!(envelope_author_seq(&[0; 40]), None);
    }

    // The hand-written envelope reader accepts exactly what bincode's
    // decoder accepts, on valid envelopes and on every truncation.
    #[test]
    fn envelope_parts_match_bincode() {
        for length in [0usize, 1, 100, 1000] {
            let envelope = Envelope {
                body: (0..length).map(|i| i as u8).collect(),
                signature: SignatureBytes([9; 64]),
            };
            let bytes = encode_envelope(&envelope).unwrap();
            let (body, signature) = envelope_parts(&bytes).unwrap();
            assert_eq!((body, signature), (envelope.body.as_slice(), [9; 64]));
            let by_bincode: Envelope =
                decode_bounded::<_, ENVELOPE_BYTES_MAX>("envelope", &bytes).unwrap();
            assert_eq!(by_bincode, envelope);
            for cut in 0..bytes.len() {
                assert!(envelope_parts(&bytes[..cut]).is_err());
                assert!(
                    decode_bounded::<Envelope, ENVELOPE_BYTES_MAX>("envelope", &bytes[..cut])
                        .is_err()
                );
            }
        }
    }
}

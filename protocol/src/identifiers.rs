//! Subject identifiers: the Unified Social Credit Code (GB 32100-2015) and
//! the resident identity number (GB 11643-1999).
//!
//! A checksum mismatch is its own error so that an operator can override it
//! explicitly (early pilot codes exist that fail it); a malformed
//! identifier cannot be overridden.

use crate::time::is_real_date;

/// The USCC alphabet: value = index (I, O, S, V, Z are unused).
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..17: 3^(i-1) mod 31.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Weights of the 17 digits of a resident identity number.
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check characters of a resident identity number, by weighted sum mod 11.
const RESIDENT_CHECK: &[u8; 11] = b"10X98765432";
/// Both identifiers have 18 characters.
pub const IDENTIFIER_CHARS: usize = 18;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Not 18 characters.
    #[error("{scheme} must have 18 characters, {found:?} has {length}")]
    Length {
        /// Which identifier.
        scheme: &'static str,
        /// What was given.
        found: String,
        /// Its length in characters.
        length: usize,
    },
    /// A character outside the scheme's alphabet.
    #[error(
        "{scheme} {found:?}: character {character:?} at position {position} is not allowed ({allowed})"
    )]
    Character {
        /// Which identifier.
        scheme: &'static str,
        /// What was given.
        found: String,
        /// The offending character.
        character: char,
        /// 1-based position.
        position: usize,
        /// The allowed characters.
        allowed: &'static str,
    },
    /// The birth date in positions 7-14 of a resident identity number is
    /// not a real date.
    #[error(
        "resident identity number {found:?}: positions 7-14 ({date}) are not a real birth date"
    )]
    BirthDate {
        /// What was given.
        found: String,
        /// The eight digits found.
        date: String,
    },
    /// The check character is not even in the alphabet; says which one
    /// the rest of the code gives. Not overridable.
    #[error(
        "{scheme} {found:?}: check character {found_check:?} is not allowed, expected {expected:?}"
    )]
    CheckCharacter {
        /// Which identifier.
        scheme: &'static str,
        /// What was given.
        found: String,
        /// The check character found.
        found_check: char,
        /// The check character the rest of the code gives.
        expected: char,
    },
    /// Well formed, but the check character does not match. An operator may
    /// override this one explicitly.
    #[error(
        "{scheme} {found:?}: check character is {found_check:?}, expected {expected:?} (pass the checksum override to accept a known pilot code)"
    )]
    Checksum {
        /// Which identifier.
        scheme: &'static str,
        /// What was given.
        found: String,
        /// The check character found.
        found_check: char,
        /// The check character the rest of the code gives.
        expected: char,
    },
}

impl IdentifierError {
    /// Whether this is only a checksum mismatch (overridable).
    pub fn is_checksum(&self) -> bool {
        matches!(self, IdentifierError::Checksum { .. })
    }
}

fn check_length(scheme: &'static str, text: &str) -> Result<(), IdentifierError> {
    let length = text.chars().count();
    if length != IDENTIFIER_CHARS || text.len() != IDENTIFIER_CHARS {
        return Err(IdentifierError::Length {
            scheme,
            found: text.to_string(),
            length,
        });
    }
    Ok(())
}

/// Checks a Unified Social Credit Code.
pub fn check_uscc(code: &str) -> Result<(), IdentifierError> {
    const SCHEME: &str = "USCC";
    check_length(SCHEME, code)?;
    let mut values = [0u32; IDENTIFIER_CHARS - 1];
    for (i, byte) in code.bytes().take(IDENTIFIER_CHARS - 1).enumerate() {
        let value = USCC_ALPHABET
            .iter()
            .position(|&c| c == byte)
            .ok_or_else(|| IdentifierError::Character {
                scheme: SCHEME,
                found: code.to_string(),
                character: char::from(byte),
                position: i + 1,
                allowed: "0-9 and A-Y except I, O, S, V, Z",
            })?;
        values[i] = value as u32;
    }
    let sum: u32 = values
        .iter()
        .zip(USCC_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    let expected = USCC_ALPHABET[((31 - sum % 31) % 31) as usize];
    let found_check = code.as_bytes()[17];
    if !USCC_ALPHABET.contains(&found_check) {
        return Err(IdentifierError::CheckCharacter {
            scheme: SCHEME,
            found: code.to_string(),
            found_check: char::from(found_check),
            expected: char::from(expected),
        });
    }
    if found_check != expected {
        return Err(IdentifierError::Checksum {
            scheme: SCHEME,
            found: code.to_string(),
            found_check: char::from(found_check),
            expected: char::from(expected),
        });
    }
    Ok(())
}

/// Checks an 18-digit resident identity number.
pub fn check_resident_id(number: &str) -> Result<(), IdentifierError> {
    const SCHEME: &str = "resident identity number";
    check_length(SCHEME, number)?;
    let bytes = number.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        let allowed = byte.is_ascii_digit() || (i == 17 && byte == b'X');
        if !allowed {
            return Err(IdentifierError::Character {
                scheme: SCHEME,
                found: number.to_string(),
                character: char::from(byte),
                position: i + 1,
                allowed: "17 digits then a digit or X",
            });
        }
    }
    let date = &number[6..14];
    let year: i64 = date[..4].parse().unwrap_or(0);
    let month: u32 = date[4..6].parse().unwrap_or(0);
    let day: u32 = date[6..].parse().unwrap_or(0);
    if !is_real_date(year, month, day) {
        return Err(IdentifierError::BirthDate {
            found: number.to_string(),
            date: date.to_string(),
        });
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(RESIDENT_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let expected = RESIDENT_CHECK[(sum % 11) as usize];
    if bytes[17] != expected {
        return Err(IdentifierError::Checksum {
            scheme: SCHEME,
            found: number.to_string(),
            found_check: char::from(bytes[17]),
            expected: char::from(expected),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The vectors of the design, and one per way an identifier fails.
    #[test]
    fn design_vectors() {
        assert_eq!(check_uscc("91350100M000100Y43"), Ok(()));
        let error = check_uscc("91350100M000100Y4Z").unwrap_err();
        assert!(
            matches!(error, IdentifierError::CheckCharacter { expected: '3', .. }),
            "{error}"
        );
        assert!(error.to_string().contains("expected '3'"));
        assert!(
            !error.is_checksum(),
            "a character outside the alphabet cannot be overridden"
        );
        let error = check_uscc("91350100M000100Y44").unwrap_err();
        assert!(
            matches!(error, IdentifierError::Checksum { expected: '3', .. }),
            "{error}"
        );
        assert_eq!(check_resident_id("11010519491231002X"), Ok(()));
        assert!(
            check_resident_id("110105194912310021")
                .unwrap_err()
                .is_checksum()
        );
        // Department codes may be letters in positions 1-2.
        let mut lettered = String::from("Y1350100M000100Y4");
        let check = (0..31)
            .map(|i| USCC_ALPHABET[i] as char)
            .find(|&c| check_uscc(&format!("{lettered}{c}")).is_ok());
        lettered.push(check.unwrap());
        assert_eq!(check_uscc(&lettered), Ok(()));
    }

    #[test]
    fn malformed_identifiers() {
        assert!(matches!(
            check_uscc("91350100M000100Y4"),
            Err(IdentifierError::Length { length: 17, .. })
        ));
        assert!(matches!(
            check_uscc("91350100M000100I43"),
            Err(IdentifierError::Character {
                character: 'I',
                position: 16,
                ..
            })
        ));
        assert!(matches!(
            check_uscc("91350100m000100Y43"),
            Err(IdentifierError::Character { .. })
        ));
        assert!(matches!(
            check_uscc("9135010０M000100Y4"),
            Err(IdentifierError::Length { .. })
        ));
        assert!(matches!(
            check_resident_id("11010519490231002X"),
            Err(IdentifierError::BirthDate { .. })
        ));
        assert!(matches!(
            check_resident_id("1101051949123100X2"),
            Err(IdentifierError::Character { position: 17, .. })
        ));
        assert!(!check_uscc("").unwrap_err().is_checksum());
    }

    proptest! {
        // For any 17-character body exactly one check character is
        // accepted, and every other one is a checksum error naming it.
        #[test]
        fn uscc_exactly_one_check_character(body in proptest::collection::vec(0usize..31, 17)) {
            let body: String = body.iter().map(|&i| USCC_ALPHABET[i] as char).collect();
            let accepted: Vec<char> = USCC_ALPHABET.iter().map(|&c| c as char)
                .filter(|c| check_uscc(&format!("{body}{c}")).is_ok()).collect();
            prop_assert_eq!(accepted.len(), 1);
        }

        // Resident numbers with a real birth date have exactly one valid
        // check character among 0-9 and X.
        #[test]
        fn resident_exactly_one_check_character(
            region in 110000u32..660000, year in 1900i64..2020, month in 1u32..=12, day in 1u32..=28, order in 0u32..1000
        ) {
            let body = format!("{region:06}{year:04}{month:02}{day:02}{order:03}");
            let accepted = "0123456789X".chars()
                .filter(|c| check_resident_id(&format!("{body}{c}")).is_ok()).count();
            prop_assert_eq!(accepted, 1);
        }
    }
}

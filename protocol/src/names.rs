//! Name search: how a subject's name and a searched name are compared.
//! Names are normalised (lower case, full-width forms to their ASCII,
//! everything but letters and digits dropped: spaces, punctuation,
//! brackets), and a search matches a name that contains the searched
//! text normalised. A node indexes each name by its grams (every two
//! consecutive characters, or the one character of a one-character
//! name), so that the listings whose names hold every gram of the search
//! are found without reading every listing; each is then checked with
//! [`matches`].

/// Longest searched text, in characters.
pub const SEARCH_CHARS_MAX: usize = 64;
/// Shortest searched text, normalised, in characters.
pub const SEARCH_CHARS_MIN: usize = 2;

/// A search's normalised text, if it is one: [`SEARCH_CHARS_MIN`] to
/// [`SEARCH_CHARS_MAX`] characters as given. One that keeps fewer than
/// [`SEARCH_CHARS_MIN`] letters or digits once normalised (`"!!"`) is a
/// search, and finds nothing.
pub fn search_text(query: &str) -> Result<String, String> {
    let n = query.chars().count();
    if (SEARCH_CHARS_MIN..=SEARCH_CHARS_MAX).contains(&n) {
        Ok(normalise(query))
    } else {
        Err(format!(
            "a name search has {SEARCH_CHARS_MIN} to {SEARCH_CHARS_MAX} characters, not {n}"
        ))
    }
}

/// `text` normalised for search.
pub fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            // Full-width ASCII forms (common in Chinese text) as ASCII.
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The grams a normalised name is indexed under (and a normalised search
/// looked up by): every two consecutive characters (a search has at
/// least [`SEARCH_CHARS_MIN`], so a name shorter than that is never
/// found and has none).
pub fn grams(normalised: &str) -> Vec<String> {
    let chars: Vec<char> = normalised.chars().collect();
    let mut out: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `name` matches the search `query`: its normalised form holds
/// the query's, of at least [`SEARCH_CHARS_MIN`] letters or digits.
pub fn matches(name: &str, query: &str) -> bool {
    let query = normalise(query);
    query.chars().count() >= SEARCH_CHARS_MIN && normalise(name).contains(&query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_latin_names_match_in_part() {
        assert!(matches("福州闽江食品有限公司", "闽江食品"));
        assert!(matches("福州闽江食品有限公司", "闽江"));
        assert!(!matches("福州闽江食品有限公司", "厦门"));
        assert!(matches("Minjiang Food Co., Ltd.", "minjiang food"));
        assert!(matches("Minjiang Food Co., Ltd.", "FOOD CO"));
        assert!(matches("Ｍｉｎｊｉａｎｇ（福州）", "minjiang福州"));
        assert!(!matches("Minjiang Food", "   "));
        assert_eq!(normalise("Zhang  San-Feng"), "zhangsanfeng");
    }

    #[test]
    fn a_match_holds_every_gram_of_the_search() {
        // What makes the index sound: a name that matches holds every
        // gram of the search, so no match is missed by the index.
        for (name, query) in [
            ("福州闽江食品有限公司", "闽江食品"),
            ("Minjiang Food Co., Ltd.", "ang fo"),
            ("闽江", "闽江"),
        ] {
            assert!(matches(name, query));
            let held = grams(&normalise(name));
            let wanted = grams(&search_text(query).expect("a search"));
            assert!(!wanted.is_empty());
            for gram in wanted {
                assert!(held.contains(&gram), "{name:?} lacks {gram:?} of {query:?}");
            }
        }
        assert!(search_text("闽").is_err());
        assert!(search_text(&"x".repeat(65)).is_err());
        // Two characters, no letter or digit: a search that finds nothing.
        assert_eq!(search_text("!!").as_deref(), Ok(""));
        assert!(grams("").is_empty());
    }
}

//! Time as data: unix milliseconds, civil dates and human durations.
//!
//! The protocol never reads the clock; the caller passes `now`. These
//! helpers only convert between representations.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the unix epoch (UTC).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = u64))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

/// Milliseconds in one day.
pub const DAY_MS: u64 = 86_400_000;
/// The last year a date may have: far enough for any listing, near enough
/// that day and millisecond counts never overflow.
pub const YEAR_MAX: i64 = 9999;

impl Timestamp {
    /// The timestamp `ms` milliseconds later, saturating.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Midnight UTC of a civil date, if the date is real, not before 1970
    /// and not after [`YEAR_MAX`].
    pub fn from_date(year: i64, month: u32, day: u32) -> Option<Timestamp> {
        if !is_real_date(year, month, day) || !(1970..=YEAR_MAX).contains(&year) {
            return None;
        }
        let days = days_from_civil(year, month, day);
        u64::try_from(days)
            .ok()
            .and_then(|days| days.checked_mul(DAY_MS))
            .map(Timestamp)
    }

    /// Parses `YYYY-MM-DD` (midnight UTC) or a plain number of unix
    /// milliseconds.
    pub fn parse(text: &str) -> Result<Timestamp, TimeParseError> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.len() > 10 {
            return text
                .parse::<u64>()
                .map(Timestamp)
                .map_err(|_| TimeParseError::Date(text.to_string()));
        }
        let parts: Vec<&str> = text.split('-').collect();
        let [year, month, day] = parts.as_slice() else {
            return Err(TimeParseError::Date(text.to_string()));
        };
        let bad = || TimeParseError::Date(text.to_string());
        let year: i64 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        let day: u32 = day.parse().map_err(|_| bad())?;
        Timestamp::from_date(year, month, day).ok_or_else(bad)
    }

    /// The civil date (UTC) of this instant.
    pub fn date(self) -> (i64, u32, u32) {
        civil_from_days((self.0 / DAY_MS) as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.date();
        let ms_of_day = self.0 % DAY_MS;
        if ms_of_day == 0 {
            write!(f, "{year:04}-{month:02}-{day:02}")
        } else {
            let seconds = ms_of_day / 1000;
            write!(
                f,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            )
        }
    }
}

/// Why a date or duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeParseError {
    /// Not a real `YYYY-MM-DD` date from 1970 to [`YEAR_MAX`].
    #[error("{0:?} is not a date: expected YYYY-MM-DD (a real date from 1970 to 9999)")]
    Date(String),
    /// Not a duration like `30s`, `15m`, `12h`, `15d`.
    #[error(
        "{0:?} is not a duration: expected a number and a unit, such as 30s, 15m, 12h, 15d or 2y"
    )]
    Duration(String),
}

/// Parses a human duration (`500ms`, `30s`, `15m`, `12h`, `15d`, `2y` with
/// a year of 365 days) into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, TimeParseError> {
    let text = text.trim();
    let bad = || TimeParseError::Duration(text.to_string());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "y" => 365 * DAY_MS,
        _ => return Err(bad()),
    };
    number.checked_mul(unit_ms).ok_or_else(bad)
}

/// Formats milliseconds in the largest whole unit of [`parse_duration_ms`].
pub fn format_duration_ms(ms: u64) -> String {
    for (unit, unit_ms) in [
        ("y", 365 * DAY_MS),
        ("d", DAY_MS),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= unit_ms && ms.is_multiple_of(unit_ms) {
            return format!("{}{unit}", ms / unit_ms);
        }
    }
    format!("{ms}ms")
}

/// Whether `year-month-day` is a date of the proleptic Gregorian calendar.
pub fn is_real_date(year: i64, month: u32, day: u32) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days_in_month
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known dates convert both ways; impossible dates are refused.
    #[test]
    fn civil_dates() {
        assert_eq!(Timestamp::from_date(1970, 1, 1), Some(Timestamp(0)));
        let t = Timestamp::parse("2026-11-22").unwrap();
        assert_eq!(t.0, 1_795_305_600_000);
        assert_eq!(t.date(), (2026, 11, 22));
        assert_eq!(t.to_string(), "2026-11-22");
        assert!(Timestamp::parse("2025-02-29").is_err());
        assert!(Timestamp::parse("2024-02-29").is_ok());
        assert!(Timestamp::parse("2024-13-01").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        // Far years are refused, not overflowed (reachable from `?at=`).
        for far in [
            "10000-01-01",
            "99999999999999-01-01",
            "9223372036854775807-12-31",
            "-9223372036854775808-01-01",
        ] {
            assert!(Timestamp::parse(far).is_err(), "{far}");
        }
        assert!(Timestamp::parse("9999-12-31").is_ok());
        assert!(Timestamp::parse("18446744073709551615").is_ok());
        assert!(Timestamp::parse("18446744073709551616").is_err());
        assert_eq!(Timestamp(u64::MAX).date().0, 584_556_019);
        for days in [0i64, 59, 365, 10_957, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    // Durations in human form.
    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15d"), Ok(15 * DAY_MS));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("15").is_err());
        assert!(parse_duration_ms("d").is_err());
        assert!(parse_duration_ms("99999999999999999999y").is_err());
        assert_eq!(format_duration_ms(15 * DAY_MS), "15d");
        assert_eq!(format_duration_ms(1500), "1500ms");
    }
}

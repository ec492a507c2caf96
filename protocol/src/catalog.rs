//! The catalog as a rulebook: for each category and severity, the default
//! and the longest publication, sharing and repair periods of a listing
//! and the measures it must trigger; and the red list's eligibility rule.
//!
//! A period runs from the listing's effective date: publication to
//! `publish_until`, sharing to `share_until`, and the repair period to
//! `repair_from` (the earliest credit repair). The defaults are what the
//! command line fills in when the operator names no date; the maxima are
//! enforced by validation on every listing and on every amendment or
//! correction of one. A category with no rule for a severity has no
//! maxima, and its defaults are those of [`crate::defaults`].

use crate::fold::{ListingState, Status};
use crate::model::{ListKind, Listing, Naming, NoticeId, Severity, SubjectKey};
use crate::time::{Timestamp, format_duration_ms, parse_duration_ms};
use serde::{Deserialize, Serialize};

/// The default and the longest value of one period, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// What the command line fills in.
    pub default_ms: u64,
    /// The longest an issuer may set.
    pub max_ms: u64,
}

/// The rules of one category at one severity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The severity they apply to.
    pub severity: Severity,
    /// Publication: effective date to `publish_until`.
    pub publish: Period,
    /// Sharing among members: effective date to `share_until`.
    pub share: Period,
    /// Repair period: effective date to `repair_from`.
    pub repair: Period,
    /// Measures a listing of this category and severity must trigger
    /// (those of its list; sorted, without repeats).
    pub mandatory: Vec<String>,
}

/// A rule as written in TOML: durations as text (`"90d"`, `"3y"`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    /// `minor`, `general` or `serious`.
    pub severity: Severity,
    /// Default publication period.
    pub publish: String,
    /// Longest publication period.
    pub publish_max: String,
    /// Default sharing period.
    pub share: String,
    /// Longest sharing period.
    pub share_max: String,
    /// Default repair period.
    pub repair: String,
    /// Longest repair period.
    pub repair_max: String,
    /// Measures a listing must trigger.
    #[serde(default)]
    pub mandatory: Vec<String>,
}

/// Why a rule was refused: the field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The field (`publish_max`, `mandatory`, ...).
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl RuleDocument {
    /// The canonical rule.
    pub fn to_rule(&self) -> Result<Rule, RuleError> {
        let duration = |field: &'static str, text: &str| {
            parse_duration_ms(text).map_err(|error| RuleError {
                field,
                problem: error.to_string(),
            })
        };
        let period = |name: &'static str, max: &'static str, default: &str, longest: &str| {
            Ok::<_, RuleError>(Period {
                default_ms: duration(name, default)?,
                max_ms: duration(max, longest)?,
            })
        };
        let mut mandatory = self.mandatory.clone();
        mandatory.sort();
        mandatory.dedup();
        Ok(Rule {
            severity: self.severity,
            publish: period("publish", "publish_max", &self.publish, &self.publish_max)?,
            share: period("share", "share_max", &self.share, &self.share_max)?,
            repair: period("repair", "repair_max", &self.repair, &self.repair_max)?,
            mandatory,
        })
    }
}

impl Rule {
    /// This rule as written in TOML.
    pub fn to_document(&self) -> RuleDocument {
        RuleDocument {
            severity: self.severity,
            publish: format_duration_ms(self.publish.default_ms),
            publish_max: format_duration_ms(self.publish.max_ms),
            share: format_duration_ms(self.share.default_ms),
            share_max: format_duration_ms(self.share.max_ms),
            repair: format_duration_ms(self.repair.default_ms),
            repair_max: format_duration_ms(self.repair.max_ms),
            mandatory: self.mandatory.clone(),
        }
    }

    /// Checks the periods' consistency: every default within its maximum,
    /// no period of zero, and publication within sharing (a listing stops
    /// being public no later than it stops being shared).
    pub fn check(&self) -> Result<(), RuleError> {
        for (name, max, period) in [
            ("publish", "publish_max", self.publish),
            ("share", "share_max", self.share),
            ("repair", "repair_max", self.repair),
        ] {
            if period.max_ms == 0 {
                return Err(RuleError {
                    field: max,
                    problem: "must be longer than zero".into(),
                });
            }
            if period.default_ms > period.max_ms {
                return Err(RuleError {
                    field: name,
                    problem: format!(
                        "the default {} is longer than the maximum {}",
                        format_duration_ms(period.default_ms),
                        format_duration_ms(period.max_ms)
                    ),
                });
            }
        }
        if self.publish.default_ms > self.share.default_ms {
            return Err(RuleError {
                field: "publish",
                problem: format!(
                    "the default publication {} outlasts the default sharing {}",
                    format_duration_ms(self.publish.default_ms),
                    format_duration_ms(self.share.default_ms)
                ),
            });
        }
        if self.publish.max_ms > self.share.max_ms {
            return Err(RuleError {
                field: "publish_max",
                problem: format!(
                    "the longest publication {} outlasts the longest sharing {}",
                    format_duration_ms(self.publish.max_ms),
                    format_duration_ms(self.share.max_ms)
                ),
            });
        }
        Ok(())
    }
}

/// One period of a listing that is longer than its rule allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodBreach {
    /// `publish_until`, `share_until` or `repair_from`.
    pub field: &'static str,
    /// The listing's period, from its effective date.
    pub period_ms: u64,
    /// The longest the rule allows.
    pub max_ms: u64,
}

/// The first period of `listing` longer than `rule` allows, if any.
pub fn period_breach(rule: &Rule, listing: &Listing) -> Option<PeriodBreach> {
    let span = |until: Timestamp| until.0.saturating_sub(listing.effective_at.0);
    [
        ("publish_until", listing.publish_until, rule.publish),
        ("share_until", listing.share_until, rule.share),
        ("repair_from", listing.repair_from, rule.repair),
    ]
    .into_iter()
    .map(|(field, until, period)| PeriodBreach {
        field,
        period_ms: span(until),
        max_ms: period.max_ms,
    })
    .find(|breach| breach.period_ms > breach.max_ms)
}

/// The red list's eligibility rule: a subject may be put on the red list
/// at `red.effective_at` only if it has no blacklisting enforceable then,
/// nor at any time in the `lookback_ms` before (the 2016 joint incentives
/// opinions: "no bad credit records for three consecutive years").
///
/// `listings` are the subject's listings as folded now. A blacklisting
/// counts unless it was withdrawn (a withdrawn listing was a mistake, not
/// a record); it counts from its effective date until the earlier of its
/// end of sharing and its credit repair. Returns the first blacklisting
/// that stands in the way.
pub fn red_list_conflict(
    red: &Listing,
    listings: &[ListingState],
    lookback_ms: u64,
) -> Option<NoticeId> {
    let window_start = red.effective_at.0.saturating_sub(lookback_ms);
    let subject = SubjectKey::new(red.subject.kind, &red.subject.id)?;
    listings
        .iter()
        .filter(|state| state.listing.naming(&subject) == Some(Naming::Subject))
        .filter(|state| state.listing.list == ListKind::Black && state.status != Status::Withdrawn)
        .find(|state| {
            let repaired_at = state
                .history
                .iter()
                .filter(|entry| entry.kind == "repair" && entry.author == state.issuer)
                .map(|entry| entry.issued_at)
                .min();
            let end = repaired_at.map_or(state.listing.share_until, |at| {
                at.min(state.listing.share_until)
            });
            state.listing.effective_at <= red.effective_at && end.0 > window_start
        })
        .map(|state| state.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;

    fn rule() -> Rule {
        RuleDocument {
            severity: Severity::Serious,
            publish: "1y".into(),
            publish_max: "3y".into(),
            share: "3y".into(),
            share_max: "5y".into(),
            repair: "1y".into(),
            repair_max: "3y".into(),
            mandatory: vec!["b".into(), "a".into(), "b".into()],
        }
        .to_rule()
        .expect("a valid rule")
    }

    #[test]
    fn documents_round_trip_and_mandatory_is_sorted() {
        let rule = rule();
        assert_eq!(rule.mandatory, ["a", "b"]);
        assert_eq!(rule.publish.max_ms, 3 * 365 * DAY_MS);
        assert_eq!(rule.to_document().to_rule(), Ok(rule.clone()));
        assert_eq!(rule.check(), Ok(()));
    }

    #[test]
    fn inconsistent_rules_name_the_field() {
        let mut bad = rule();
        bad.share.default_ms = bad.share.max_ms + 1;
        assert_eq!(bad.check().map_err(|e| e.field), Err("share"));
        let mut bad = rule();
        bad.publish.max_ms = bad.share.max_ms + 1;
        assert_eq!(bad.check().map_err(|e| e.field), Err("publish_max"));
        let mut bad = rule();
        bad.repair.max_ms = 0;
        bad.repair.default_ms = 0;
        assert_eq!(bad.check().map_err(|e| e.field), Err("repair_max"));
        let mut document = rule().to_document();
        document.share_max = "five years".into();
        assert_eq!(document.to_rule().map_err(|e| e.field), Err("share_max"));
    }
}

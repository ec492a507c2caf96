//! The validation rules of a notice, each failure its own error variant.
//!
//! [`check_notice`] holds every rule that needs only the notice and the
//! federation (rules 1, 2 and the self-contained part of 5); the rules
//! that need the author's log or the referenced notices (3, 4, 6 and the
//! rest of 5) are applied by [`crate::replica::Replica`], which reuses the
//! error type here.

use crate::catalog;
use crate::codec::CodecError;
use crate::governance::chain::Chain;
use crate::governance::{KeySpan, Version};
use crate::identifiers::{IdentifierError, check_resident_id};
use crate::model::{
    AuthorityId, CHANGES_PER_AMENDMENT_MAX, Classification, DOCUMENT_NUMBER_BYTES_MAX,
    EVIDENCE_PER_NOTICE_MAX, FederationId, FeedbackAction, LINKED_PER_LISTING_MAX, ListKind,
    Listing, ListingChange, MEASURES_PER_LISTING_MAX, NAME_BYTES_MAX, NOTICE_VERSION,
    NOTICE_VERSION_MIN, Notice, NoticeId, NoticeKind, READERS_PER_LISTING_MAX, Remedy,
    RulingOutcome, Severity, SubjectKind, TEXT_BYTES_MAX,
};
use crate::roster::Federation;
use crate::time::{Timestamp, format_duration_ms};
use credence_crypto::PublicKey;

/// Why a notice was refused. One variant per rule of the design.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Rule 1: the bytes do not decode canonically within the limits.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// Rule 1: a notice format this code does not know.
    #[error("notice version {found} is not supported (this node speaks version {supported})")]
    UnsupportedVersion {
        /// Version found.
        found: u16,
        /// Version spoken.
        supported: u16,
    },
    /// Rule 1: the notice belongs to another federation.
    #[error("notice is for federation {found}, this is federation {expected}")]
    WrongFederation {
        /// Federation named by the notice.
        found: FederationId,
        /// Ours.
        expected: FederationId,
    },
    /// Rule 1: a text field is empty.
    #[error("field {field} must not be empty")]
    EmptyField {
        /// Which field.
        field: &'static str,
    },
    /// Rule 1: a text field is too long.
    #[error("field {field} has {bytes} bytes, the limit is {bytes_max}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// Rule 1: a list field has too many entries.
    #[error("field {field} has {count} entries, the limit is {count_max}")]
    TooManyEntries {
        /// Which field.
        field: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        count_max: usize,
    },
    /// Rule 1: the same entry twice in a list field.
    #[error("field {field} names {entry:?} twice")]
    DuplicateEntry {
        /// Which field.
        field: &'static str,
        /// The repeated entry.
        entry: String,
    },
    /// Rule 1: the subject's identifier is malformed, or fails its
    /// checksum without the operator's override.
    #[error("subject identifier: {0}")]
    Identifier(IdentifierError),
    /// Rule 1: the dates of a listing are out of order.
    #[error("listing dates out of order: {0}")]
    DatesOutOfOrder(String),
    /// Rule 2: the author is not a member of the roster.
    #[error("author {author} is not a member of this federation")]
    UnknownAuthor {
        /// The claimed author.
        author: AuthorityId,
    },
    /// Rule 2: the notice names a roster version this replica's chain has
    /// not reached (sync brings roster versions before notices, and the
    /// notice again once it has them).
    #[error("the notice names roster version {named}; this node's roster is at version {current}")]
    RosterVersionUnknown {
        /// The version named.
        named: u64,
        /// This replica's current version.
        current: u64,
    },
    /// Rule 2: the notice names an older roster version than the notice
    /// before it in its author's log.
    #[error(
        "the notice names roster version {found}, older than version {previous} named by the notice before it in its log"
    )]
    RosterVersionRegressed {
        /// Named by the previous notice.
        previous: u64,
        /// Named by this one.
        found: u64,
    },
    /// Rule 2: a later roster version took from the author what this
    /// notice needs, from a seq below this one on.
    #[error("roster version {version} cut the author off after seq {after_seq}: {reason}")]
    PastCutoff {
        /// The version that states the cutoff.
        version: u64,
        /// The cutoff.
        after_seq: u64,
        /// What the notice needs that was taken away.
        reason: String,
    },
    /// Rule 2: the signature does not verify strictly.
    #[error("signature of notice {id} does not verify for author {author}")]
    BadSignature {
        /// The notice.
        id: NoticeId,
        /// The claimed author.
        author: AuthorityId,
    },
    /// Rule 3: `seq` starts at 1.
    #[error("seq 0 is not a log position (logs start at 1)")]
    SeqZero,
    /// Rule 3: `prev` does not name the author's previous notice.
    #[error("prev of seq {seq} is {found}, the author's notice at seq {} is {expected}", seq - 1)]
    PrevMismatch {
        /// The notice's seq.
        seq: u64,
        /// Id of the author's notice at seq - 1 (zeros at seq 1).
        expected: NoticeId,
        /// What the notice says.
        found: NoticeId,
    },
    /// Rule 4: issued earlier than the author's previous notice.
    #[error("issued_at {found} is earlier than the author's previous notice ({previous})")]
    IssuedAtRegressed {
        /// The previous notice's time.
        previous: Timestamp,
        /// This notice's time.
        found: Timestamp,
    },
    /// Rule 4: the author has used up its notice budget: a log may grow by
    /// at most [`crate::replica::AUTHOR_NOTICE_BURST`] notices at once and
    /// [`crate::replica::AUTHOR_NOTICES_PER_HOUR`] an hour after that, by
    /// the notices' own `issued_at`.
    #[error(
        "the author is over its notice budget at seq {seq} (at most {burst} notices at once and {per_hour} an hour, by issued_at, past any allowance its roster chain granted)"
    )]
    OverBudget {
        /// The notice's seq.
        seq: u64,
        /// The burst allowed.
        burst: u64,
        /// The sustained rate allowed.
        per_hour: u64,
    },
    /// Rule 4: issued further ahead of this replica's clock than the skew
    /// allowed ([`crate::replica::ISSUED_AT_AHEAD_MAX_MS`]); it is taken
    /// once the clock has caught up (sync brings it again).
    #[error(
        "issued_at {found} is more than {ahead_max_ms} ms ahead of this node's clock ({clock})"
    )]
    IssuedAhead {
        /// This notice's time.
        found: Timestamp,
        /// The replica's clock.
        clock: Timestamp,
        /// The skew allowed.
        ahead_max_ms: u64,
    },
    /// Rule 5: a category not in the catalog.
    #[error("unknown category {category:?}; allowed: {}", allowed.join(", "))]
    UnknownCategory {
        /// The category named.
        category: String,
        /// The catalog's categories.
        allowed: Vec<String>,
    },
    /// Rule 5: a measure not in the catalog, or not one for this list.
    #[error("unknown measure {measure:?} for the {} list; allowed: {}", list.name(), allowed.join(", "))]
    UnknownMeasure {
        /// The measure named.
        measure: String,
        /// The list it was used with.
        list: ListKind,
        /// The catalog's measures for that list.
        allowed: Vec<String>,
    },
    /// Rule 5: the roster does not let the author list in this category on
    /// this list.
    #[error("the roster does not grant {author} the {} list in category {category:?}; it grants: {}", list.name(), if granted.is_empty() { "nothing".to_string() } else { granted.join(", ") })]
    CategoryNotGranted {
        /// The author.
        author: String,
        /// The list.
        list: ListKind,
        /// The category.
        category: String,
        /// What the roster grants for that list.
        granted: Vec<String>,
    },
    /// Rule 5: only the issuer of a listing may amend, repair, withdraw it
    /// or rule on its objections.
    #[error("only the issuer {issuer} of listing {listing} may {action} it; {author} did")]
    NotIssuer {
        /// The listing.
        listing: NoticeId,
        /// Who issued it.
        issuer: AuthorityId,
        /// Who tried.
        author: AuthorityId,
        /// What was tried.
        action: &'static str,
    },
    /// Rule 5: feedback for a measure the author does not implement.
    #[error("{author} does not implement measure {measure:?}")]
    NotImplementer {
        /// The author.
        author: String,
        /// The measure.
        measure: String,
    },
    /// Rule 5: a mandatory measure cannot be declined.
    #[error("measure {measure:?} is mandatory and cannot be declined")]
    MandatoryMeasureDeclined {
        /// The measure.
        measure: String,
    },
    /// Rule 5: the objection leaves the issuer less than the catalog's
    /// minimum response window.
    #[error(
        "respond_by {respond_by} is earlier than the minimum response window allows ({minimum})"
    )]
    RespondByTooSoon {
        /// What the objection asks.
        respond_by: Timestamp,
        /// Earliest allowed.
        minimum: Timestamp,
    },
    /// Rule 5: a period of a listing is longer than the catalog's rule for
    /// its category and severity allows.
    #[error(
        "{field} sets a period of {} from the effective date; the catalog allows at most {} for category {category:?} at severity {}",
        format_duration_ms(*period_ms),
        format_duration_ms(*max_ms),
        severity_name(*severity)
    )]
    PeriodTooLong {
        /// `publish_until`, `share_until` or `repair_from`.
        field: &'static str,
        /// The category.
        category: String,
        /// The severity.
        severity: Severity,
        /// The listing's period.
        period_ms: u64,
        /// The catalog's maximum.
        max_ms: u64,
    },
    /// Rule 5: a listing leaves out a measure the catalog makes mandatory
    /// for its category and severity.
    #[error(
        "measure {measure:?} is mandatory for category {category:?} at severity {}, and the listing does not trigger it",
        severity_name(*severity)
    )]
    MandatoryMeasureMissing {
        /// The category.
        category: String,
        /// The severity.
        severity: Severity,
        /// The measure left out.
        measure: String,
    },
    /// Rule 5, checked where the issuer decides: a red listing for a
    /// subject with a blacklisting enforceable at its effective date or
    /// within the catalog's look-back before it
    /// ([`crate::catalog::red_list_conflict`]). Ingest cannot check it: it
    /// depends on notices the red listing does not name, which replicas
    /// receive in different orders.
    #[error(
        "the subject cannot be put on the red list: blacklisting {blacklisting} stands within the catalog's look-back of {} before the listing's effective date",
        format_duration_ms(*lookback_ms)
    )]
    RedListIneligible {
        /// The blacklisting in the way.
        blacklisting: NoticeId,
        /// The catalog's look-back.
        lookback_ms: u64,
    },
    /// Rule 5: a repair before the listing's earliest repair date.
    #[error("listing {listing} cannot be repaired before {repair_from}")]
    RepairTooEarly {
        /// The listing.
        listing: NoticeId,
        /// Its earliest repair date.
        repair_from: Timestamp,
    },
    /// Rule 5: an objection already has a ruling.
    #[error("objection {objection} was already ruled on by {ruling}")]
    AlreadyRuled {
        /// The objection.
        objection: NoticeId,
        /// The earlier ruling.
        ruling: NoticeId,
    },
    /// Rule 6: the reference exists but is not a listing.
    #[error("{id} is a {found} notice, not a listing")]
    NotAListing {
        /// The referenced notice.
        id: NoticeId,
        /// Its kind.
        found: &'static str,
    },
    /// Rule 6: the reference exists but is not an objection.
    #[error("{id} is a {found} notice, not an objection")]
    NotAnObjection {
        /// The referenced notice.
        id: NoticeId,
        /// Its kind.
        found: &'static str,
    },
    /// Rule 1: a field or value an older notice format cannot state.
    #[error("{what} needs notice format {since}; this notice is format {version}")]
    NeedsFormat {
        /// What the notice states.
        what: String,
        /// The oldest format that can state it.
        since: u16,
        /// The notice's format.
        version: u16,
    },
    /// Rule 5: a listing's named readers do not fit its distribution
    /// level, or are not members.
    #[error("readers: {0}")]
    Readers(String),
    /// Rule 5: a linked person that cannot be recorded.
    #[error("linked persons: {0}")]
    Linked(String),
}

impl ValidationError {
    /// A stable short name of the rule broken, for metrics and reports.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Codec(_) => "codec",
            ValidationError::UnsupportedVersion { .. } => "version",
            ValidationError::WrongFederation { .. } => "federation",
            ValidationError::EmptyField { .. } => "empty_field",
            ValidationError::FieldTooLong { .. } => "field_too_long",
            ValidationError::TooManyEntries { .. } => "too_many_entries",
            ValidationError::DuplicateEntry { .. } => "duplicate_entry",
            ValidationError::Identifier(_) => "identifier",
            ValidationError::DatesOutOfOrder(_) => "dates",
            ValidationError::UnknownAuthor { .. } => "unknown_author",
            ValidationError::BadSignature { .. } => "signature",
            ValidationError::RosterVersionUnknown { .. } => "roster_version_unknown",
            ValidationError::RosterVersionRegressed { .. } => "roster_version_regressed",
            ValidationError::PastCutoff { .. } => "past_cutoff",
            ValidationError::SeqZero => "seq_zero",
            ValidationError::PrevMismatch { .. } => "prev",
            ValidationError::IssuedAtRegressed { .. } => "issued_at",
            ValidationError::OverBudget { .. } => "author_budget",
            ValidationError::IssuedAhead { .. } => "issued_ahead",
            ValidationError::UnknownCategory { .. } => "unknown_category",
            ValidationError::UnknownMeasure { .. } => "unknown_measure",
            ValidationError::CategoryNotGranted { .. } => "not_granted",
            ValidationError::NotIssuer { .. } => "not_issuer",
            ValidationError::NotImplementer { .. } => "not_implementer",
            ValidationError::MandatoryMeasureDeclined { .. } => "mandatory_declined",
            ValidationError::RespondByTooSoon { .. } => "respond_by",
            ValidationError::RepairTooEarly { .. } => "repair_too_early",
            ValidationError::PeriodTooLong { .. } => "period_too_long",
            ValidationError::RedListIneligible { .. } => "red_list_ineligible",
            ValidationError::MandatoryMeasureMissing { .. } => "mandatory_missing",
            ValidationError::AlreadyRuled { .. } => "already_ruled",
            ValidationError::NotAListing { .. } => "not_a_listing",
            ValidationError::NotAnObjection { .. } => "not_an_objection",
            ValidationError::NeedsFormat { .. } => "needs_format",
            ValidationError::Readers(_) => "readers",
            ValidationError::Linked(_) => "linked_person",
        }
    }
}

fn text(field: &'static str, value: &str, bytes_max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::EmptyField { field });
    }
    if value.len() > bytes_max {
        return Err(ValidationError::FieldTooLong {
            field,
            bytes: value.len(),
            bytes_max,
        });
    }
    Ok(())
}

fn count(field: &'static str, count: usize, count_max: usize) -> Result<(), ValidationError> {
    if count > count_max {
        return Err(ValidationError::TooManyEntries {
            field,
            count,
            count_max,
        });
    }
    Ok(())
}

fn no_duplicates<T: Ord + std::fmt::Debug>(
    field: &'static str,
    items: &[T],
) -> Result<(), ValidationError> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(pair) => Err(ValidationError::DuplicateEntry {
            field,
            entry: format!("{:?}", pair[0]),
        }),
        None => Ok(()),
    }
}

/// Checks the measures of a listing of `list` against the catalog.
pub fn check_measures(
    federation: &Federation,
    list: ListKind,
    measures: &[String],
) -> Result<(), ValidationError> {
    count("measures", measures.len(), MEASURES_PER_LISTING_MAX)?;
    no_duplicates("measures", measures)?;
    for code in measures {
        let known = federation.measure(code).is_some_and(|m| m.list == list);
        if !known {
            return Err(ValidationError::UnknownMeasure {
                measure: code.clone(),
                list,
                allowed: federation.measure_codes(list),
            });
        }
    }
    Ok(())
}

/// Every rule that needs only the notice and the roster chain: the rules
/// of [`check_notice`] against the roster version the notice names, and
/// against every later version that cut its author off below its seq
/// (removed it, withdrew a grant, or changed its key). Returns the key
/// that must have signed it. What a node signs must pass this.
pub fn check_in_chain(notice: &Notice, chain: &Chain) -> Result<PublicKey, ValidationError> {
    let key = check_signer(notice, chain)?;
    match cutoff_void(notice, chain) {
        Some(error) => Err(error),
        None => Ok(key),
    }
}

/// The rules a notice must pass to take its place in its author's log:
/// [`check_notice`] against the roster version it names, which must be
/// known, and the key that version gives its seq still the one the
/// current version gives it (a key change below its seq retired it).
/// Returns that key. A notice that passes may still be void
/// ([`cutoff_void`]): it then keeps its place in the log, so that the
/// author's later notices still chain on it, and counts for nothing.
pub fn check_signer(notice: &Notice, chain: &Chain) -> Result<PublicKey, ValidationError> {
    let current = chain.current();
    let Some(named) = chain.version(notice.roster) else {
        return Err(ValidationError::RosterVersionUnknown {
            named: notice.roster,
            current: current.number,
        });
    };
    check_notice(notice, &named.federation)?;
    let Some(span) = named.key_for(&notice.author, notice.seq) else {
        return Err(ValidationError::UnknownAuthor {
            author: notice.author,
        });
    };
    key_still_assigned(notice, named, current, span)
}

/// Why a notice is void under the current roster version, if it is: a
/// version later than the one it names cut its author off below its seq
/// and took away what it needs (removed the author, or withdrew the grant
/// or the catalog entry it uses). Void notices are invalid everywhere:
/// no fold, no answer and no task counts them.
pub fn cutoff_void(notice: &Notice, chain: &Chain) -> Option<ValidationError> {
    let cutoffs = chain.current().cutoffs.get(&notice.author)?;
    for cutoff in cutoffs {
        if cutoff.version <= notice.roster || cutoff.after_seq >= notice.seq {
            continue;
        }
        let Some(later) = chain.version(cutoff.version) else {
            continue;
        };
        let past = |reason: String| ValidationError::PastCutoff {
            version: cutoff.version,
            after_seq: cutoff.after_seq,
            reason,
        };
        if later.federation.member(&notice.author).is_none() {
            return Some(past("the author was removed from the federation".into()));
        }
        if let Err(error) = check_notice(notice, &later.federation) {
            return Some(past(error.to_string()));
        }
    }
    None
}

/// Why a notice is void because the key that signed it was retired for
/// its seq since (a rotation or revocation below its seq): the notices of
/// a log the roster cut back, kept as orphans. `None` when the current
/// version still gives its seq the key the named version gave it.
pub fn retired_key(notice: &Notice, chain: &Chain) -> Option<ValidationError> {
    let current = chain.current();
    // Most federations never changed a key: every key ever used is then a
    // member's only one (keys are never reused), found without a lookup.
    if current.key_owners.len() == current.keys.len() {
        return None;
    }
    // Most members never changed their key: nothing to look up.
    if current
        .keys
        .get(&notice.author)
        .is_none_or(|spans| spans.len() < 2)
    {
        return None;
    }
    let named = chain.version(notice.roster)?;
    let span = named.key_for(&notice.author, notice.seq)?;
    key_still_assigned(notice, named, current, span).err()
}

/// The key that signed a notice the roster cut off by a key change: the
/// one the version it names gives its seq, when that version's rules
/// pass and the current version gives the seq another key. A notice for
/// which this is `Some` and whose signature verifies under the key may be
/// kept as an orphan ([`crate::store::Store::put_orphan`]).
pub fn retired_signer(notice: &Notice, chain: &Chain) -> Option<PublicKey> {
    let named = chain.version(notice.roster)?;
    check_notice(notice, &named.federation).ok()?;
    let span = named.key_for(&notice.author, notice.seq)?;
    key_still_assigned(notice, named, chain.current(), span)
        .is_err()
        .then_some(span.public)
}

/// The key the named version assigns to the notice's seq is still the one
/// the current version assigns: a key change since, below this seq,
/// retired it for this seq.
fn key_still_assigned(
    notice: &Notice,
    named: &Version,
    current: &Version,
    span: &KeySpan,
) -> Result<PublicKey, ValidationError> {
    match current.key_for(&notice.author, notice.seq) {
        Some(now) if now.key == span.key => Ok(span.public),
        Some(now) => Err(ValidationError::PastCutoff {
            version: current.number,
            after_seq: now.first_seq - 1,
            reason: format!(
                "the key that signs seq {} is {} now, not {} as in roster version {}{}",
                notice.seq,
                now.key.short(),
                span.key.short(),
                named.number,
                if revoked(current, &notice.author, &span.key) {
                    " (revoked as compromised)"
                } else {
                    ""
                }
            ),
        }),
        None => Err(ValidationError::UnknownAuthor {
            author: notice.author,
        }),
    }
}

/// Whether `key` of `member` was revoked as compromised.
fn revoked(current: &Version, member: &AuthorityId, key: &AuthorityId) -> bool {
    current
        .keys
        .get(member)
        .is_some_and(|spans| spans.iter().any(|s| s.key == *key && s.compromised))
}

/// Checks a listing against the catalog's rule for its category and
/// severity: its periods within the maxima, and every mandatory measure
/// of its list triggered. A category with no rule for the severity sets
/// no limit.
pub fn check_rules(federation: &Federation, listing: &Listing) -> Result<(), ValidationError> {
    let Some(rule) = federation.rule(&listing.category, listing.severity) else {
        return Ok(());
    };
    if let Some(breach) = catalog::period_breach(rule, listing) {
        return Err(ValidationError::PeriodTooLong {
            field: breach.field,
            category: listing.category.clone(),
            severity: listing.severity,
            period_ms: breach.period_ms,
            max_ms: breach.max_ms,
        });
    }
    let missing = rule.mandatory.iter().find(|code| {
        federation
            .measure(code)
            .is_some_and(|measure| measure.list == listing.list)
            && !listing.measures.contains(code)
    });
    if let Some(measure) = missing {
        return Err(ValidationError::MandatoryMeasureMissing {
            category: listing.category.clone(),
            severity: listing.severity,
            measure: measure.clone(),
        });
    }
    Ok(())
}

/// Lower-case name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Minor => "minor",
        Severity::General => "general",
        Severity::Serious => "serious",
    }
}

/// Checks that a listing's fields are well formed and within limits, and
/// that its dates are in order.
pub fn check_listing_fields(listing: &Listing) -> Result<(), ValidationError> {
    text("subject.name", &listing.subject.name, NAME_BYTES_MAX)?;
    if let Err(error) = listing.subject.kind.check_identifier(&listing.subject.id)
        && !(error.is_checksum() && listing.checksum_override)
    {
        return Err(ValidationError::Identifier(error));
    }
    text("reason", &listing.reason, TEXT_BYTES_MAX)?;
    text("legal_basis", &listing.legal_basis, TEXT_BYTES_MAX)?;
    text(
        "document_number",
        &listing.document_number,
        DOCUMENT_NUMBER_BYTES_MAX,
    )?;
    count("evidence", listing.evidence.len(), EVIDENCE_PER_NOTICE_MAX)?;
    no_duplicates("evidence", &listing.evidence)?;
    check_dates(listing)
}

/// The dates of a listing: effective ≤ end of publication ≤ end of
/// sharing, and effective ≤ earliest repair date.
pub fn check_dates(listing: &Listing) -> Result<(), ValidationError> {
    if listing.publish_until < listing.effective_at {
        return Err(ValidationError::DatesOutOfOrder(format!(
            "publication ends ({}) before the listing is effective ({})",
            listing.publish_until, listing.effective_at
        )));
    }
    if listing.share_until < listing.publish_until {
        return Err(ValidationError::DatesOutOfOrder(format!(
            "sharing ends ({}) before publication ends ({})",
            listing.share_until, listing.publish_until
        )));
    }
    if listing.repair_from < listing.effective_at {
        return Err(ValidationError::DatesOutOfOrder(format!(
            "earliest repair ({}) is before the listing is effective ({})",
            listing.repair_from, listing.effective_at
        )));
    }
    Ok(())
}

/// Checks the fields of a set of listing changes (without the listing).
pub fn check_changes(changes: &[ListingChange]) -> Result<(), ValidationError> {
    if changes.is_empty() {
        return Err(ValidationError::EmptyField { field: "changes" });
    }
    count("changes", changes.len(), CHANGES_PER_AMENDMENT_MAX)?;
    for change in changes {
        match change {
            ListingChange::SubjectName(name) => text("subject.name", name, NAME_BYTES_MAX)?,
            ListingChange::Reason(reason) => text("reason", reason, TEXT_BYTES_MAX)?,
            ListingChange::LegalBasis(basis) => text("legal_basis", basis, TEXT_BYTES_MAX)?,
            ListingChange::DocumentNumber(number) => {
                text("document_number", number, DOCUMENT_NUMBER_BYTES_MAX)?;
            }
            ListingChange::Measures(measures) => {
                count("measures", measures.len(), MEASURES_PER_LISTING_MAX)?;
            }
            ListingChange::Evidence(evidence) => {
                count("evidence", evidence.len(), EVIDENCE_PER_NOTICE_MAX)?;
                no_duplicates("evidence", evidence)?;
            }
            ListingChange::Readers(readers) => {
                count("readers", readers.len(), READERS_PER_LISTING_MAX)?;
            }
            ListingChange::Linked(linked) => {
                count("linked", linked.len(), LINKED_PER_LISTING_MAX)?;
            }
            ListingChange::Severity(_)
            | ListingChange::EffectiveAt(_)
            | ListingChange::PublishUntil(_)
            | ListingChange::ShareUntil(_)
            | ListingChange::RepairFrom(_)
            | ListingChange::Classification(_) => {}
        }
    }
    Ok(())
}

/// Checks a listing's distribution level against its named readers: a
/// [`Classification::Named`] listing names between one and
/// [`READERS_PER_LISTING_MAX`] members of the federation, in ascending
/// order without repeats; a listing at any other level names none.
pub fn check_readers(federation: &Federation, listing: &Listing) -> Result<(), ValidationError> {
    let readers = &listing.readers;
    if listing.classification != Classification::Named {
        if readers.is_empty() {
            return Ok(());
        }
        return Err(ValidationError::Readers(format!(
            "a {} listing names no readers; only a named listing does",
            listing.classification.name()
        )));
    }
    if readers.is_empty() {
        return Err(ValidationError::Readers(
            "a named listing names at least one reader".into(),
        ));
    }
    count("readers", readers.len(), READERS_PER_LISTING_MAX)?;
    if readers.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(ValidationError::Readers(
            "readers must be given in ascending order, without repeats".into(),
        ));
    }
    match readers
        .iter()
        .find(|reader| federation.member(reader).is_none())
    {
        Some(stranger) => Err(ValidationError::Readers(format!(
            "{stranger} is not a member of the federation"
        ))),
        None => Ok(()),
    }
}

/// Checks a listing's linked persons: only an organisation's listing
/// records them, at most [`LINKED_PER_LISTING_MAX`], each with a valid
/// resident identity number (no override) and a name, no person twice.
pub fn check_linked(listing: &Listing) -> Result<(), ValidationError> {
    let linked = &listing.linked;
    if linked.is_empty() {
        return Ok(());
    }
    if listing.subject.kind == SubjectKind::NaturalPerson {
        return Err(ValidationError::Linked(
            "a natural person's listing records no linked persons".into(),
        ));
    }
    count("linked", linked.len(), LINKED_PER_LISTING_MAX)?;
    for person in linked {
        text("linked.name", &person.name, NAME_BYTES_MAX)?;
        check_resident_id(&person.id).map_err(|error| {
            ValidationError::Linked(format!("{} {:?}: {error}", person.role.name(), person.id))
        })?;
    }
    let ids: Vec<&str> = linked.iter().map(|person| person.id.as_str()).collect();
    no_duplicates("linked", &ids)
}

/// Refuses a value older notice formats cannot state.
fn needs_format(
    what: impl FnOnce() -> String,
    since: u16,
    version: u16,
) -> Result<(), ValidationError> {
    if since > version {
        return Err(ValidationError::NeedsFormat {
            what: what(),
            since,
            version,
        });
    }
    Ok(())
}

/// Refuses changes an older notice format cannot state.
fn changes_in_format(changes: &[ListingChange], version: u16) -> Result<(), ValidationError> {
    changes.iter().try_for_each(|change| {
        needs_format(
            || format!("the change {change:?}"),
            change.since_version(),
            version,
        )
    })
}

/// Every rule that needs only the notice and the federation: version,
/// federation, membership, field limits, identifiers, the roster's grants,
/// the catalog, the objection window and the mandatory-measure rule.
pub fn check_notice(notice: &Notice, federation: &Federation) -> Result<(), ValidationError> {
    if !(NOTICE_VERSION_MIN..=NOTICE_VERSION).contains(&notice.version) {
        return Err(ValidationError::UnsupportedVersion {
            found: notice.version,
            supported: NOTICE_VERSION,
        });
    }
    if notice.federation != federation.id() {
        return Err(ValidationError::WrongFederation {
            found: notice.federation,
            expected: federation.id(),
        });
    }
    let Some(member) = federation.member(&notice.author) else {
        return Err(ValidationError::UnknownAuthor {
            author: notice.author,
        });
    };
    if notice.seq == 0 {
        return Err(ValidationError::SeqZero);
    }
    match &notice.kind {
        NoticeKind::List(listing) => {
            let level = listing.classification;
            needs_format(
                || format!("distribution level {}", level.name()),
                level.since_version(),
                notice.version,
            )?;
            check_listing_fields(listing)?;
            check_readers(federation, listing)?;
            check_linked(listing)?;
            if federation.category(&listing.category).is_none() {
                return Err(ValidationError::UnknownCategory {
                    category: listing.category.clone(),
                    allowed: federation.category_codes(),
                });
            }
            let granted = match listing.list {
                ListKind::Black => &member.issues_black,
                ListKind::Red => &member.issues_red,
            };
            if !granted.contains(&listing.category) {
                return Err(ValidationError::CategoryNotGranted {
                    author: member.name.clone(),
                    list: listing.list,
                    category: listing.category.clone(),
                    granted: granted.clone(),
                });
            }
            check_measures(federation, listing.list, &listing.measures)?;
            check_rules(federation, listing)
        }
        NoticeKind::Amend { changes, .. } => {
            changes_in_format(changes, notice.version)?;
            check_changes(changes)
        }
        NoticeKind::Repair {
            reason, evidence, ..
        } => {
            text("reason", reason, TEXT_BYTES_MAX)?;
            count("evidence", evidence.len(), EVIDENCE_PER_NOTICE_MAX)?;
            no_duplicates("evidence", evidence)
        }
        NoticeKind::Withdraw { reason, .. } => text("reason", reason, TEXT_BYTES_MAX),
        NoticeKind::Object {
            grounds,
            respond_by,
            ..
        } => {
            text("grounds", grounds, TEXT_BYTES_MAX)?;
            let minimum = notice
                .issued_at
                .plus_ms(federation.roster().objection_window_ms);
            if *respond_by < minimum {
                return Err(ValidationError::RespondByTooSoon {
                    respond_by: *respond_by,
                    minimum,
                });
            }
            Ok(())
        }
        NoticeKind::Rule {
            outcome, reason, ..
        } => {
            text("reason", reason, TEXT_BYTES_MAX)?;
            match outcome {
                RulingOutcome::Upheld(Remedy::Correct(changes)) => {
                    changes_in_format(changes, notice.version)?;
                    check_changes(changes)
                }
                RulingOutcome::Upheld(Remedy::Withdraw) | RulingOutcome::Rejected => Ok(()),
            }
        }
        NoticeKind::Feedback {
            measure, action, ..
        } => {
            let Some(entry) = federation.measure(measure) else {
                return Err(ValidationError::UnknownMeasure {
                    measure: measure.clone(),
                    list: ListKind::Black,
                    allowed: federation
                        .roster()
                        .measures
                        .iter()
                        .map(|m| m.code.clone())
                        .collect(),
                });
            };
            if !member.implements.contains(measure) {
                return Err(ValidationError::NotImplementer {
                    author: member.name.clone(),
                    measure: measure.clone(),
                });
            }
            if let FeedbackAction::Declined(reason) = action {
                text("reason", reason, TEXT_BYTES_MAX)?;
                if entry.mandatory {
                    return Err(ValidationError::MandatoryMeasureDeclined {
                        measure: measure.clone(),
                    });
                }
            }
            Ok(())
        }
    }
}

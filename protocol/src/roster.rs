//! The federation: its genesis roster, its catalog of categories and
//! measures, and its id.
//!
//! A roster is written by people in TOML ([`RosterDocument`]); it is
//! normalised (sorted, durations in milliseconds) into the canonical
//! [`Roster`], whose codec bytes hash to the [`FederationId`]. The indexed
//! [`Federation`] answers the questions validation asks.

use crate::catalog::{Rule, RuleDocument};
use crate::codec::{self, CodecError};
use crate::defaults;
use crate::model::{AuthorityId, CODE_BYTES_MAX, FederationId, ListKind, NAME_BYTES_MAX, Severity};
use crate::time::{format_duration_ms, parse_duration_ms};
use crate::validate::severity_name;
use credence_crypto::{Digest, KeyError, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most members of one federation.
pub const MEMBERS_MAX: usize = 1024;
/// Most categories in a catalog.
pub const CATEGORIES_MAX: usize = 256;
/// Most measures in a catalog.
pub const MEASURES_MAX: usize = 256;
/// Most listen addresses of one member.
pub const LISTEN_ADDRESSES_MAX: usize = 8;
/// Largest roster document or canonical roster, in bytes.
pub const ROSTER_BYTES_MAX: usize = 1024 * 1024;
/// Longest listen address, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 256;
/// The red list's look-back when a catalog names none: the 2016 joint
/// incentives opinions ask for "no bad credit records for three
/// consecutive years".
pub const RED_LOOKBACK_DEFAULT_MS: u64 = 3 * 365 * crate::time::DAY_MS;

/// The smallest threshold a roster may set: a majority of its members.
pub fn threshold_min(members: usize) -> u32 {
    (members / 2 + 1) as u32
}

/// The threshold of a roster that names none: two thirds of its members,
/// rounded up, and never less than a majority.
pub fn threshold_default(members: usize) -> u32 {
    ((2 * members).div_ceil(3) as u32).max(threshold_min(members))
}

/// A category of the catalog (field of conduct) and its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Short code, `[a-z0-9-]`.
    pub code: String,
    /// Human name.
    pub name: String,
    /// Its rules per severity, sorted by severity, at most one each.
    pub rules: Vec<Rule>,
}

/// A category as written in TOML.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDocument {
    /// Short code, `[a-z0-9-]`.
    pub code: String,
    /// Human name.
    pub name: String,
    /// Its rules per severity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDocument>,
}

/// A joint measure of the catalog.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Short code, `[a-z0-9-]`.
    pub code: String,
    /// Human name.
    pub name: String,
    /// Which list triggers it (punishment for black, incentive for red).
    pub list: ListKind,
    /// Mandatory measures cannot be declined by an implementer.
    pub mandatory: bool,
}

/// A member authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its public key (its authority id and libp2p identity).
    pub key: AuthorityId,
    /// Its name.
    pub name: String,
    /// Administrative region code (six digits, GB/T 2260).
    pub region: String,
    /// Its department.
    pub department: String,
    /// Categories it may put on the blacklist.
    pub issues_black: Vec<String>,
    /// Categories it may put on the red list.
    pub issues_red: Vec<String>,
    /// Measures it implements (and so gets tasks for).
    pub implements: Vec<String>,
    /// Auditors may see everything, including records no longer shared.
    pub auditor: bool,
    /// Addresses it listens on (multiaddrs), for bootstrap.
    pub listen: Vec<String>,
}

/// The canonical genesis roster; its codec bytes define the federation id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Federation name.
    pub name: String,
    /// Minimum time an issuer has to answer an objection.
    pub objection_window_ms: u64,
    /// How far back a blacklisting bars a red listing.
    pub red_lookback_ms: u64,
    /// How many distinct members must sign the next roster version.
    pub threshold: u32,
    /// Categories, sorted by code.
    pub categories: Vec<Category>,
    /// Measures, sorted by code.
    pub measures: Vec<Measure>,
    /// Members, sorted by key.
    pub members: Vec<Member>,
}

/// The catalog part of a roster document, also a file of its own.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    /// Minimum objection response window, such as `"15d"`.
    pub objection_response_window: String,
    /// How far back a blacklisting bars a red listing, such as `"3y"`
    /// (three years when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_list_lookback: Option<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<CategoryDocument>,
    /// Measures.
    #[serde(default)]
    pub measures: Vec<Measure>,
}

/// A member as written in TOML (key in hex).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDocument {
    /// A short local handle used to fill in keys on the command line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handle: String,
    /// Public key, 64 hex characters.
    #[serde(default)]
    pub key: String,
    /// Name.
    pub name: String,
    /// Region code.
    pub region: String,
    /// Department.
    pub department: String,
    /// Blacklist categories.
    #[serde(default)]
    pub issues_black: Vec<String>,
    /// Red list categories.
    #[serde(default)]
    pub issues_red: Vec<String>,
    /// Implemented measures.
    #[serde(default)]
    pub implements: Vec<String>,
    /// Auditor role.
    #[serde(default)]
    pub auditor: bool,
    /// Listen addresses.
    #[serde(default)]
    pub listen: Vec<String>,
}

/// A members file: the people side of a genesis.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersDocument {
    /// Federation name.
    pub name: String,
    /// Distinct members' signatures a new roster version needs (two
    /// thirds of the members, rounded up, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Members.
    #[serde(default)]
    pub members: Vec<MemberDocument>,
}

/// A whole roster as written in TOML.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterDocument {
    /// Federation name.
    pub name: String,
    /// Minimum objection response window.
    pub objection_response_window: String,
    /// How far back a blacklisting bars a red listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_list_lookback: Option<String>,
    /// Distinct members' signatures a new roster version needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<CategoryDocument>,
    /// Measures.
    #[serde(default)]
    pub measures: Vec<Measure>,
    /// Members.
    #[serde(default)]
    pub members: Vec<MemberDocument>,
}

/// Why a roster or catalog was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The TOML does not parse or has fields of the wrong type.
    #[error("roster TOML: {0}")]
    Toml(String),
    /// The canonical bytes do not decode.
    #[error("canonical roster: {0}")]
    Codec(#[from] CodecError),
    /// A limit was exceeded.
    #[error("{what}: {count} is more than the limit of {count_max}")]
    TooMany {
        /// What.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        count_max: usize,
    },
    /// A field is invalid.
    #[error("{field}: {problem}")]
    Invalid {
        /// Which field (with the member or entry it belongs to).
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> RosterError {
    RosterError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Whether `code` is a well-formed catalog code.
pub fn is_valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= CODE_BYTES_MAX
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_name(field: String, name: &str) -> Result<(), RosterError> {
    if name.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(invalid(
            field,
            format!("longer than {NAME_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize, count_max: usize) -> Result<(), RosterError> {
    if count > count_max {
        return Err(RosterError::TooMany {
            what,
            count,
            count_max,
        });
    }
    Ok(())
}

impl RosterDocument {
    /// Parses a roster TOML document.
    pub fn parse(text: &str) -> Result<RosterDocument, RosterError> {
        if text.len() > ROSTER_BYTES_MAX {
            return Err(RosterError::TooMany {
                what: "roster bytes",
                count: text.len(),
                count_max: ROSTER_BYTES_MAX,
            });
        }
        toml::from_str(text).map_err(|error| RosterError::Toml(error.to_string()))
    }

    /// Joins a catalog and a members file into a roster document.
    pub fn from_parts(catalog: CatalogDocument, members: MembersDocument) -> RosterDocument {
        RosterDocument {
            name: members.name,
            objection_response_window: catalog.objection_response_window,
            red_list_lookback: catalog.red_list_lookback,
            threshold: members.threshold,
            categories: catalog.categories,
            measures: catalog.measures,
            members: members.members,
        }
    }

    /// The TOML text of this document.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Normalises and checks the document into the canonical roster.
    pub fn to_roster(&self) -> Result<Roster, RosterError> {
        let objection_window_ms = parse_duration_ms(&self.objection_response_window)
            .map_err(|error| invalid("objection_response_window", error.to_string()))?;
        let red_lookback_ms = match &self.red_list_lookback {
            Some(text) => parse_duration_ms(text)
                .map_err(|error| invalid("red_list_lookback", error.to_string()))?,
            None => RED_LOOKBACK_DEFAULT_MS,
        };
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(i, member)| member.to_member(i))
            .collect::<Result<Vec<_>, _>>()?;
        let categories = self
            .categories
            .iter()
            .map(CategoryDocument::to_category)
            .collect::<Result<Vec<_>, _>>()?;
        let mut roster = Roster {
            name: self.name.clone(),
            objection_window_ms,
            red_lookback_ms,
            threshold: self
                .threshold
                .unwrap_or_else(|| threshold_default(members.len())),
            categories,
            measures: self.measures.clone(),
            members,
        };
        roster.normalise();
        Federation::new(roster.clone())?;
        Ok(roster)
    }
}

impl CategoryDocument {
    pub(crate) fn to_category(&self) -> Result<Category, RosterError> {
        let rules = self
            .rules
            .iter()
            .map(|rule| {
                rule.to_rule().map_err(|error| {
                    invalid(
                        format!(
                            "category {:?}.rules[{}].{}",
                            self.code,
                            severity_name(rule.severity),
                            error.field
                        ),
                        error.problem,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Category {
            code: self.code.clone(),
            name: self.name.clone(),
            rules,
        })
    }
}

impl Category {
    /// This category as written in TOML.
    pub fn to_document(&self) -> CategoryDocument {
        CategoryDocument {
            code: self.code.clone(),
            name: self.name.clone(),
            rules: self.rules.iter().map(Rule::to_document).collect(),
        }
    }

    /// Its rule for `severity`, if it has one.
    pub fn rule(&self, severity: Severity) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.severity == severity)
    }
}

impl MemberDocument {
    pub(crate) fn to_member(&self, index: usize) -> Result<Member, RosterError> {
        let label = if self.name.is_empty() {
            format!("members[{index}]")
        } else {
            format!("member {:?}", self.name)
        };
        let key: Digest = self
            .key
            .parse()
            .map_err(|error| invalid(format!("{label}.key"), format!("{error}")))?;
        Ok(Member {
            key: AuthorityId(key.0),
            name: self.name.clone(),
            region: self.region.clone(),
            department: self.department.clone(),
            issues_black: self.issues_black.clone(),
            issues_red: self.issues_red.clone(),
            implements: self.implements.clone(),
            auditor: self.auditor,
            listen: self.listen.clone(),
        })
    }
}

impl Roster {
    fn normalise(&mut self) {
        self.categories.sort_by(|a, b| a.code.cmp(&b.code));
        for category in &mut self.categories {
            category.rules.sort_by_key(|rule| rule.severity);
            for rule in &mut category.rules {
                rule.mandatory.sort();
                rule.mandatory.dedup();
            }
        }
        self.measures.sort_by(|a, b| a.code.cmp(&b.code));
        self.members.sort_by_key(|member| member.key);
        for member in &mut self.members {
            for list in [
                &mut member.issues_black,
                &mut member.issues_red,
                &mut member.implements,
            ] {
                list.sort();
                list.dedup();
            }
        }
    }

    /// The canonical bytes.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, RosterError> {
        Ok(codec::encode_bounded::<_, ROSTER_BYTES_MAX>(
            "roster", self,
        )?)
    }

    /// Decodes canonical bytes (as carried in an audit bundle).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Roster, RosterError> {
        Ok(codec::decode_bounded::<_, ROSTER_BYTES_MAX>(
            "roster", bytes,
        )?)
    }

    /// This roster as a TOML document.
    pub fn to_document(&self) -> RosterDocument {
        RosterDocument {
            name: self.name.clone(),
            objection_response_window: format_duration_ms(self.objection_window_ms),
            red_list_lookback: Some(format_duration_ms(self.red_lookback_ms)),
            threshold: Some(self.threshold),
            categories: self.categories.iter().map(Category::to_document).collect(),
            measures: self.measures.clone(),
            members: self
                .members
                .iter()
                .map(|member| MemberDocument {
                    handle: String::new(),
                    key: member.key.to_string(),
                    name: member.name.clone(),
                    region: member.region.clone(),
                    department: member.department.clone(),
                    issues_black: member.issues_black.clone(),
                    issues_red: member.issues_red.clone(),
                    implements: member.implements.clone(),
                    auditor: member.auditor,
                    listen: member.listen.clone(),
                })
                .collect(),
        }
    }
}

/// A checked roster, indexed for validation. Cloning it is cheap: every
/// replica of a process (a node's, or the simulator's thousand) shares one.
#[derive(Clone, Debug)]
pub struct Federation(std::sync::Arc<Indexed>);

#[derive(Debug)]
struct Indexed {
    id: FederationId,
    roster: Roster,
    canonical: Vec<u8>,
    keys: BTreeMap<AuthorityId, (usize, PublicKey)>,
    /// Every member's keys so far (members removed since included), each
    /// from its first seq: the key that signs a seq of a log. Genesis: each
    /// member's own key from seq 1.
    spans: BTreeMap<AuthorityId, Vec<(u64, PublicKey)>>,
}

impl Federation {
    /// Checks a canonical roster and indexes it.
    pub fn new(roster: Roster) -> Result<Federation, RosterError> {
        Federation::indexed(roster, None)
    }

    /// Checks the roster of a later version of federation `id` and indexes
    /// it: the federation keeps its genesis id, whatever its roster
    /// becomes.
    pub fn with_id(roster: Roster, id: FederationId) -> Result<Federation, RosterError> {
        Federation::indexed(roster, Some(id))
    }

    fn indexed(mut roster: Roster, id: Option<FederationId>) -> Result<Federation, RosterError> {
        roster.normalise();
        check_name("name".into(), &roster.name)?;
        check_count("members", roster.members.len(), MEMBERS_MAX)?;
        check_count("categories", roster.categories.len(), CATEGORIES_MAX)?;
        check_count("measures", roster.measures.len(), MEASURES_MAX)?;
        if roster.members.is_empty() {
            return Err(invalid("members", "a federation needs at least one member"));
        }
        check_catalog(&roster)?;
        check_threshold(roster.threshold, roster.members.len())?;
        let mut keys = BTreeMap::new();
        for (index, member) in roster.members.iter().enumerate() {
            let public = check_member(&roster, member)?;
            if keys.insert(member.key, (index, public)).is_some() {
                return Err(invalid(
                    format!("member {:?}.key", member.name),
                    "the same key appears twice",
                ));
            }
        }
        let canonical = roster.canonical_bytes()?;
        let id = id.unwrap_or(FederationId(Digest::of(&canonical).0));
        let spans = keys
            .iter()
            .map(|(member, (_, key))| (*member, vec![(1, *key)]))
            .collect();
        Ok(Federation(std::sync::Arc::new(Indexed {
            id,
            roster,
            canonical,
            keys,
            spans,
        })))
    }

    /// This federation with the key history a roster chain gives its
    /// members: [`Federation::public_key`] then names each member's
    /// current key and [`Federation::key_for`] the key of any seq.
    pub fn with_key_history(
        &self,
        spans: BTreeMap<AuthorityId, Vec<(u64, PublicKey)>>,
    ) -> Federation {
        let mut keys = self.0.keys.clone();
        for (member, (_, key)) in keys.iter_mut() {
            if let Some((_, current)) = spans.get(member).and_then(|s| s.last()) {
                *key = *current;
            }
        }
        Federation(std::sync::Arc::new(Indexed {
            id: self.0.id,
            roster: self.0.roster.clone(),
            canonical: self.0.canonical.clone(),
            keys,
            spans,
        }))
    }

    /// Whether `author` has a log in this federation: a member now, or one
    /// removed since (its notices up to its cutoff stay valid).
    pub fn has_log(&self, author: &AuthorityId) -> bool {
        self.0.spans.contains_key(author)
    }

    /// The member whose current key is `key`.
    pub fn member_of_key(&self, key: &AuthorityId) -> Option<AuthorityId> {
        self.0
            .keys
            .iter()
            .find(|(_, (_, public))| public.to_bytes() == key.0)
            .map(|(member, _)| *member)
    }

    /// The key that signs seq `seq` of `member`'s log (a member now, or
    /// one removed since).
    pub fn key_for(&self, member: &AuthorityId, seq: u64) -> Option<&PublicKey> {
        self.0
            .spans
            .get(member)?
            .iter()
            .rev()
            .find(|(first, _)| *first <= seq)
            .map(|(_, key)| key)
    }

    /// The federation of canonical roster bytes (as carried in a bundle),
    /// which must be exactly the bytes of the roster they decode to once
    /// normalised: one roster has one encoding, so that its federation id
    /// is the hash of the very bytes shown.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Federation, RosterError> {
        let federation = Federation::new(Roster::from_canonical_bytes(bytes)?)?;
        if federation.canonical_bytes() != bytes {
            return Err(invalid(
                "roster",
                "the bytes are not in canonical form (categories, measures and members sorted by code and key, each member's lists sorted without repeats)",
            ));
        }
        Ok(federation)
    }

    /// Parses and checks a roster TOML document.
    pub fn from_toml(text: &str) -> Result<Federation, RosterError> {
        Federation::new(RosterDocument::parse(text)?.to_roster()?)
    }

    /// The federation id.
    pub fn id(&self) -> FederationId {
        self.0.id
    }

    /// The canonical roster.
    pub fn roster(&self) -> &Roster {
        &self.0.roster
    }

    /// The canonical roster bytes.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.0.canonical
    }

    /// A member by key.
    pub fn member(&self, author: &AuthorityId) -> Option<&Member> {
        self.0
            .keys
            .get(author)
            .map(|(index, _)| &self.0.roster.members[*index])
    }

    /// A member's parsed public key.
    /// (Its current key: the one that signs its checkpoints, cosignatures
    /// and queries.)
    pub fn public_key(&self, author: &AuthorityId) -> Option<&PublicKey> {
        self.0.keys.get(author).map(|(_, key)| key)
    }

    /// A member's name, or the short hex of its key if it is not one.
    pub fn name_of(&self, author: &AuthorityId) -> String {
        self.member(author).map_or_else(
            || format!("non-member {}", author.short()),
            |m| m.name.clone(),
        )
    }

    /// A category by code.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.0
            .roster
            .categories
            .binary_search_by(|c| c.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.0.roster.categories[i])
    }

    /// The rule of a category at a severity, if the catalog has one.
    pub fn rule(&self, category: &str, severity: Severity) -> Option<&Rule> {
        self.category(category)?.rule(severity)
    }

    /// A listing's default publication, sharing and repair periods in a
    /// category at a severity: the catalog's rule, or the built-in
    /// defaults of [`crate::defaults`] where it has none.
    pub fn default_periods(&self, category: &str, severity: Severity) -> (u64, u64, u64) {
        match self.rule(category, severity) {
            Some(rule) => (
                rule.publish.default_ms,
                rule.share.default_ms,
                rule.repair.default_ms,
            ),
            None => (
                defaults::PUBLISH_PERIOD_MS,
                defaults::SHARE_PERIOD_MS,
                defaults::REPAIR_AFTER_MS,
            ),
        }
    }

    /// Distinct members' signatures the next roster version needs.
    pub fn threshold(&self) -> u32 {
        self.0.roster.threshold
    }

    /// How far back a blacklisting bars a red listing.
    pub fn red_lookback_ms(&self) -> u64 {
        self.0.roster.red_lookback_ms
    }

    /// A measure by code.
    pub fn measure(&self, code: &str) -> Option<&Measure> {
        self.0
            .roster
            .measures
            .binary_search_by(|m| m.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.0.roster.measures[i])
    }

    /// All category codes, sorted.
    pub fn category_codes(&self) -> Vec<String> {
        self.0
            .roster
            .categories
            .iter()
            .map(|c| c.code.clone())
            .collect()
    }

    /// The measure codes of one list, sorted.
    pub fn measure_codes(&self, list: ListKind) -> Vec<String> {
        self.0
            .roster
            .measures
            .iter()
            .filter(|m| m.list == list)
            .map(|m| m.code.clone())
            .collect()
    }
}

fn check_catalog(roster: &Roster) -> Result<(), RosterError> {
    let codes = roster
        .categories
        .iter()
        .map(|c| (&c.code, &c.name, "category"))
        .chain(
            roster
                .measures
                .iter()
                .map(|m| (&m.code, &m.name, "measure")),
        );
    for (code, name, what) in codes {
        if !is_valid_code(code) {
            return Err(invalid(
                format!("{what} {code:?}"),
                format!("a code is 1 to {CODE_BYTES_MAX} characters of a-z, 0-9 and -"),
            ));
        }
        check_name(format!("{what} {code:?}.name"), name)?;
    }
    for category in &roster.categories {
        check_rules(roster, category)?;
    }
    let duplicate_category = roster
        .categories
        .windows(2)
        .find(|w| w[0].code == w[1].code);
    if let Some(pair) = duplicate_category {
        return Err(invalid(
            format!("category {:?}", pair[0].code),
            "listed twice",
        ));
    }
    let duplicate_measure = roster.measures.windows(2).find(|w| w[0].code == w[1].code);
    if let Some(pair) = duplicate_measure {
        return Err(invalid(
            format!("measure {:?}", pair[0].code),
            "listed twice",
        ));
    }
    Ok(())
}

fn check_threshold(threshold: u32, members: usize) -> Result<(), RosterError> {
    let min = threshold_min(members);
    if threshold < min || threshold as usize > members {
        return Err(invalid(
            "threshold",
            format!(
                "{threshold} is not between a majority of the {members} members ({min}) and all of them"
            ),
        ));
    }
    Ok(())
}

fn check_rules(roster: &Roster, category: &Category) -> Result<(), RosterError> {
    if let Some(pair) = category
        .rules
        .windows(2)
        .find(|w| w[0].severity == w[1].severity)
    {
        return Err(invalid(
            format!("category {:?}.rules", category.code),
            format!("two rules for severity {}", severity_name(pair[0].severity)),
        ));
    }
    for rule in &category.rules {
        let field = |name: &str| {
            format!(
                "category {:?}.rules[{}].{name}",
                category.code,
                severity_name(rule.severity)
            )
        };
        rule.check()
            .map_err(|error| invalid(field(error.field), error.problem))?;
        if let Some(code) = rule
            .mandatory
            .iter()
            .find(|code| !roster.measures.iter().any(|m| &m.code == *code))
        {
            return Err(invalid(
                field("mandatory"),
                format!("unknown measure {code:?}"),
            ));
        }
    }
    Ok(())
}

fn check_member(roster: &Roster, member: &Member) -> Result<PublicKey, RosterError> {
    let label = format!("member {:?}", member.name);
    check_name(format!("{label}.name"), &member.name)?;
    check_name(format!("{label}.department"), &member.department)?;
    if member.region.len() != 6 || !member.region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            format!("{label}.region"),
            format!("{:?} is not a six-digit region code", member.region),
        ));
    }
    let public = PublicKey::from_bytes(&member.key.0)
        .map_err(|error: KeyError| invalid(format!("{label}.key"), error.to_string()))?;
    let known_categories: Vec<&str> = roster.categories.iter().map(|c| c.code.as_str()).collect();
    for code in member.issues_black.iter().chain(&member.issues_red) {
        if !known_categories.contains(&code.as_str()) {
            return Err(invalid(
                format!("{label}.issues"),
                format!(
                    "unknown category {code:?}; the catalog has {}",
                    known_categories.join(", ")
                ),
            ));
        }
    }
    for code in &member.implements {
        if !roster.measures.iter().any(|m| &m.code == code) {
            return Err(invalid(
                format!("{label}.implements"),
                format!("unknown measure {code:?}"),
            ));
        }
    }
    check_count(
        "listen addresses",
        member.listen.len(),
        LISTEN_ADDRESSES_MAX,
    )?;
    if let Some(address) = member.listen.iter().find(|a| a.len() > ADDRESS_BYTES_MAX) {
        return Err(invalid(
            format!("{label}.listen"),
            format!("address longer than {ADDRESS_BYTES_MAX} bytes: {address:.40}..."),
        ));
    }
    Ok(public)
}

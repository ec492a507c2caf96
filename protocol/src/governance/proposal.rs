//! Proposals: a change to the roster as an operator writes it
//! ([`ChangeDocument`], TOML), turned into the next [`RosterVersion`]
//! ([`propose`]), and the proposal file that carries a signed version
//! between members while it gathers signatures.

use super::{
    ALLOWANCE_NOTICES_MAX, Allowance, Cutoff, KeyChange, ROSTER_VERSION_FORMAT,
    ROSTER_VERSION_FORMAT_MIN, RosterVersion, SignedVersion, Version,
};
use crate::codec::CodecError;
use crate::model::AuthorityId;
use crate::roster::{
    CatalogDocument, Federation, MemberDocument, ROSTER_BYTES_MAX, RosterError, threshold_min,
};
use crate::time::parse_duration_ms;
use serde::{Deserialize, Serialize};

/// The first bytes of a proposal file.
pub const PROPOSAL_MAGIC: &[u8] = b"credence-roster\0";

/// A member removed, with its cutoff.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveDocument {
    /// The member: its id (64 hex digits) or its exact name.
    pub member: String,
    /// Its last notice that stays valid.
    pub after_seq: u64,
}

/// A member's grants, roles or addresses changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDocument {
    /// The member: its id (64 hex digits) or its exact name.
    pub member: String,
    /// New name.
    pub name: Option<String>,
    /// New region code.
    pub region: Option<String>,
    /// New department.
    pub department: Option<String>,
    /// New blacklist categories (the whole list).
    pub issues_black: Option<Vec<String>>,
    /// New red list categories (the whole list).
    pub issues_red: Option<Vec<String>>,
    /// New implemented measures (the whole list).
    pub implements: Option<Vec<String>>,
    /// New auditor role.
    pub auditor: Option<bool>,
    /// New listen addresses (the whole list).
    pub listen: Option<Vec<String>>,
    /// Its last notice that keeps a grant this update takes away (needed
    /// only when it takes one away).
    pub after_seq: Option<u64>,
}

/// A member's key rotated (planned) or revoked (compromised).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateDocument {
    /// The member: its id (64 hex digits) or its exact name.
    pub member: String,
    /// The new public key, 64 hex digits.
    pub key: String,
    /// The last seq the old key signs.
    pub after_seq: u64,
    /// The old key was compromised.
    #[serde(default)]
    pub compromised: bool,
}

/// A member allowed to grow its log past its notice budget by a number
/// of notices, once (to bring in an existing list).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowDocument {
    /// The member: its id (64 hex digits) or its exact name.
    pub member: String,
    /// Notices allowed past the budget, 1 to 100,000,000.
    pub notices: u64,
}

/// A change to the roster, as an operator writes it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeDocument {
    /// A new threshold for the version after this one.
    pub threshold: Option<u32>,
    /// Members to add (their keys are their ids).
    #[serde(default)]
    pub add: Vec<MemberDocument>,
    /// Members to remove.
    #[serde(default)]
    pub remove: Vec<RemoveDocument>,
    /// Members whose grants, roles or addresses change.
    #[serde(default)]
    pub update: Vec<UpdateDocument>,
    /// Keys rotated or revoked.
    #[serde(default)]
    pub rotate: Vec<RotateDocument>,
    /// Notice allowances granted.
    #[serde(default)]
    pub allow: Vec<AllowDocument>,
    /// A new catalog, replacing the current one whole.
    pub catalog: Option<CatalogDocument>,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> RosterError {
    RosterError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

impl ChangeDocument {
    /// Parses a change TOML document.
    pub fn parse(text: &str) -> Result<ChangeDocument, RosterError> {
        if text.len() > ROSTER_BYTES_MAX {
            return Err(RosterError::TooMany {
                what: "change bytes",
                count: text.len(),
                count_max: ROSTER_BYTES_MAX,
            });
        }
        toml::from_str(text).map_err(|error| RosterError::Toml(error.to_string()))
    }
}

/// Resolves a member named by id or exact name in `federation`.
fn resolve(federation: &Federation, field: &str, named: &str) -> Result<AuthorityId, RosterError> {
    if let Ok(id) = named.parse::<AuthorityId>()
        && federation.member(&id).is_some()
    {
        return Ok(id);
    }
    let by_name: Vec<AuthorityId> = federation
        .roster()
        .members
        .iter()
        .filter(|m| m.name == named)
        .map(|m| m.key)
        .collect();
    match by_name.as_slice() {
        [id] => Ok(*id),
        [] => Err(invalid(
            field,
            format!("{named:?} is neither the id nor the name of a member"),
        )),
        _ => Err(invalid(
            field,
            format!("several members are named {named:?}: name it by id"),
        )),
    }
}

/// The version after `current` that `change` describes, unsigned.
pub fn propose(current: &Version, change: &ChangeDocument) -> Result<RosterVersion, RosterError> {
    let federation = &current.federation;
    let mut roster = federation.roster().clone();
    let mut cutoffs: Vec<Cutoff> = Vec::new();
    let mut keys: Vec<KeyChange> = Vec::new();
    if let Some(catalog) = &change.catalog {
        roster.objection_window_ms = parse_duration_ms(&catalog.objection_response_window)
            .map_err(|e| invalid("catalog.objection_response_window", e.to_string()))?;
        if let Some(lookback) = &catalog.red_list_lookback {
            roster.red_lookback_ms = parse_duration_ms(lookback)
                .map_err(|e| invalid("catalog.red_list_lookback", e.to_string()))?;
        }
        roster.categories = catalog
            .categories
            .iter()
            .map(|c| c.to_category())
            .collect::<Result<_, _>>()?;
        roster.measures = catalog.measures.clone();
    }
    for (i, removal) in change.remove.iter().enumerate() {
        let field = format!("remove[{i}].member");
        let id = resolve(federation, &field, &removal.member)?;
        roster.members.retain(|m| m.key != id);
        cutoffs.push(Cutoff {
            member: id,
            after_seq: removal.after_seq,
        });
    }
    for (i, update) in change.update.iter().enumerate() {
        let id = resolve(federation, &format!("update[{i}].member"), &update.member)?;
        let Some(member) = roster.members.iter_mut().find(|m| m.key == id) else {
            return Err(invalid(
                format!("update[{i}].member"),
                "the member is removed by this change",
            ));
        };
        let before = member.clone();
        let set = |slot: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                slot.clone_from(value);
            }
        };
        set(&mut member.name, &update.name);
        set(&mut member.region, &update.region);
        set(&mut member.department, &update.department);
        let set_list = |slot: &mut Vec<String>, value: &Option<Vec<String>>| {
            if let Some(value) = value {
                let mut list = value.clone();
                list.sort();
                list.dedup();
                *slot = list;
            }
        };
        set_list(&mut member.issues_black, &update.issues_black);
        set_list(&mut member.issues_red, &update.issues_red);
        set_list(&mut member.implements, &update.implements);
        if let Some(listen) = &update.listen {
            member.listen.clone_from(listen);
        }
        if let Some(auditor) = update.auditor {
            member.auditor = auditor;
        }
        let loses = super::takes_away(&before, member);
        match (loses, update.after_seq) {
            (Some(what), None) => {
                return Err(invalid(
                    format!("update[{i}].after_seq"),
                    format!("required: the update takes a grant away ({what})"),
                ));
            }
            (Some(_), Some(after_seq)) => cutoffs.push(Cutoff {
                member: id,
                after_seq,
            }),
            (None, Some(_)) => {
                return Err(invalid(
                    format!("update[{i}].after_seq"),
                    "the update takes nothing away: leave the cutoff out",
                ));
            }
            (None, None) => {}
        }
    }
    let first_added = roster.members.len();
    for (i, added) in change.add.iter().enumerate() {
        let member = added.to_member(first_added + i)?;
        if federation.member(&member.key).is_some() {
            return Err(invalid(
                format!("add[{i}].key"),
                format!("{} is a member already", member.key),
            ));
        }
        roster.members.push(member);
    }
    for (i, rotation) in change.rotate.iter().enumerate() {
        let id = resolve(federation, &format!("rotate[{i}].member"), &rotation.member)?;
        let key: AuthorityId = rotation
            .key
            .parse()
            .map_err(|e| invalid(format!("rotate[{i}].key"), format!("{e}")))?;
        keys.push(KeyChange {
            member: id,
            key,
            after_seq: rotation.after_seq,
            compromised: rotation.compromised,
        });
    }
    let mut allowances: Vec<Allowance> = Vec::new();
    for (i, allow) in change.allow.iter().enumerate() {
        let field = format!("allow[{i}]");
        let id = resolve(federation, &format!("{field}.member"), &allow.member)?;
        if !roster.members.iter().any(|m| m.key == id) {
            return Err(invalid(
                format!("{field}.member"),
                "the member is removed by this change",
            ));
        }
        if !(1..=ALLOWANCE_NOTICES_MAX).contains(&allow.notices) {
            return Err(invalid(
                format!("{field}.notices"),
                format!(
                    "{}: an allowance grants 1 to {ALLOWANCE_NOTICES_MAX} notices",
                    allow.notices
                ),
            ));
        }
        allowances.push(Allowance {
            member: id,
            notices: allow.notices,
        });
    }
    allowances.sort_by_key(|a| a.member);
    if let Some(member) = super::sorted_unique(&allowances, |x| x.member) {
        return Err(invalid(
            "allow",
            format!(
                "{} has two allowances: grant one",
                federation.name_of(&member)
            ),
        ));
    }
    let members = roster.members.len();
    match change.threshold {
        Some(threshold) => roster.threshold = threshold,
        None if roster.threshold < threshold_min(members)
            || roster.threshold as usize > members =>
        {
            return Err(invalid(
                "threshold",
                format!(
                    "the current threshold {} does not fit {members} members (at least {}, at most {members}): set one",
                    roster.threshold,
                    threshold_min(members)
                ),
            ));
        }
        None => {}
    }
    let checked = Federation::with_id(roster, federation.id())?;
    keys.sort_by_key(|k| k.member);
    cutoffs.sort_by_key(|c| c.member);
    if let Some(member) = super::sorted_unique(&keys, |x| x.member) {
        return Err(invalid(
            "rotate",
            format!("{} has two key changes", federation.name_of(&member)),
        ));
    }
    if let Some(member) = super::sorted_unique(&cutoffs, |x| x.member) {
        return Err(invalid(
            "remove",
            format!(
                "{} is both removed and updated",
                federation.name_of(&member)
            ),
        ));
    }
    Ok(RosterVersion {
        // The oldest format that can state the change, so that members
        // not yet upgraded still take a version that grants nothing.
        format: if allowances.is_empty() {
            ROSTER_VERSION_FORMAT_MIN
        } else {
            ROSTER_VERSION_FORMAT
        },
        federation: federation.id(),
        number: current.number + 1,
        previous: current.hash,
        roster: checked.roster().clone(),
        keys,
        cutoffs,
        allowances,
    })
}

/// The bytes of a proposal file.
pub fn encode_proposal(signed: &SignedVersion) -> Result<Vec<u8>, CodecError> {
    let mut bytes = PROPOSAL_MAGIC.to_vec();
    bytes.extend(signed.to_bytes()?);
    Ok(bytes)
}

/// Reads a proposal file.
pub fn decode_proposal(bytes: &[u8]) -> Result<SignedVersion, CodecError> {
    let Some(body) = bytes.strip_prefix(PROPOSAL_MAGIC) else {
        return Err(CodecError::Malformed {
            what: "proposal file",
            reason: "it does not start with \"credence-roster\\0\": not a roster proposal".into(),
        });
    };
    let signed = SignedVersion::from_bytes(body)?;
    signed.version()?;
    Ok(signed)
}

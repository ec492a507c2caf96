//! Governance: the roster chain.
//!
//! The genesis roster is version 0. Each later version is a
//! [`RosterVersion`]: the whole roster as of that version, the number and
//! hash of the version it replaces, the keys it rotates or revokes and the
//! cutoffs of the members it takes something from. It is accepted
//! ([`verify_next`]) when signed by at least the threshold of the version
//! it replaces, counted in distinct members (one member's signatures
//! count once, whatever their number: the python-tuf advisory
//! GHSA-r7vq-6425-j94w), and by every key it adds or rotates to (proof of
//! possession), as TUF's root rotation is.
//!
//! A member keeps the id it joined with (its first key) across rotations:
//! its log is its own. [`Version::key_for`] says which key signs a seq of
//! a member's log. A change that takes something away from a member
//! (removal, a grant withdrawn, a key revoked) states the member's cutoff
//! seq: its notices past the cutoff are validated against that version
//! too.
//!
//! [`chain::Chain`] holds every valid version received and chooses the
//! chain as a pure function of that set: at each number, among the valid
//! versions that extend the chosen one below, the lowest hash wins, and
//! the members who signed two of them are named in equivocation evidence.

pub mod chain;
pub mod proposal;

use crate::codec::{self, CodecError};
use crate::model::{AuthorityId, FederationId, RosterHash, SignatureBytes};
use crate::roster::{Federation, MEMBERS_MAX, Member, ROSTER_BYTES_MAX, Roster, RosterError};
use credence_crypto::{AuthorityKey, Digest, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Domain tag prefixed to a roster version's body before signing.
pub const ROSTER_DOMAIN: &[u8] = b"credence/v1/roster\0";
/// The newest roster version format this code writes and accepts:
/// format 2 adds notice allowances. A version with none is written in
/// format 1, which every node since roster versions began reads.
pub const ROSTER_VERSION_FORMAT: u16 = 2;
/// The oldest roster version format this code accepts.
pub const ROSTER_VERSION_FORMAT_MIN: u16 = 1;
/// Most notices one allowance may grant (a hundred million: the largest
/// list a member could bring in at once).
pub const ALLOWANCE_NOTICES_MAX: u64 = 100_000_000;
/// Most signatures on one version: every member of the version it
/// replaces and every key it adds.
pub const SIGNATURES_MAX: usize = 2 * MEMBERS_MAX;
/// Largest canonical version body, in bytes: the roster, a key change
/// (73 bytes), a cutoff (40) and an allowance (40) per member, and the
/// fixed fields.
pub const VERSION_BODY_BYTES_MAX: usize = ROSTER_BYTES_MAX + MEMBERS_MAX * 160 + 64;
/// The limit while a format 1 body is decoded with its format 2 tail.
const VERSION_BODY_WITH_TAIL_MAX: usize = VERSION_BODY_BYTES_MAX + FORMAT_2_EMPTY_TAIL.len();
/// Largest signed version, in bytes.
pub const SIGNED_VERSION_BYTES_MAX: usize = VERSION_BODY_BYTES_MAX + 16 + SIGNATURES_MAX * 96;

/// A member's key changes from a seq on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The member (its stable id).
    pub member: AuthorityId,
    /// Its new public key.
    pub key: AuthorityId,
    /// The last seq of its log the old key signs; the new key signs from
    /// the next one on.
    pub after_seq: u64,
    /// The old key was compromised (a revocation), rather than retired
    /// (a planned rotation). Either way it signs nothing past `after_seq`.
    pub compromised: bool,
}

/// A member loses something from a seq of its log on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    /// The member.
    pub member: AuthorityId,
    /// Its last notice that keeps what the version takes away.
    pub after_seq: u64,
}

/// A member's log may grow past its notice budget by this many notices,
/// once: the federation's decision to let it bring in an existing list
/// (`credence import-csv`) faster than the flood budget allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// The member.
    pub member: AuthorityId,
    /// Notices granted, 1 to [`ALLOWANCE_NOTICES_MAX`].
    pub notices: u64,
}

/// One version of the roster after genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterVersion {
    /// [`ROSTER_VERSION_FORMAT`], or 1 when it grants no allowance.
    pub format: u16,
    /// The federation (its genesis roster's hash, forever).
    pub federation: FederationId,
    /// Its number: the replaced version's plus one.
    pub number: u64,
    /// The hash of the version it replaces.
    pub previous: RosterHash,
    /// The whole roster as of this version (members by their stable ids).
    pub roster: Roster,
    /// The keys it rotates or revokes, sorted by member, one per member.
    pub keys: Vec<KeyChange>,
    /// The cutoffs of the members it removes or takes grants from, sorted
    /// by member, one per member.
    pub cutoffs: Vec<Cutoff>,
    /// Notice allowances it grants, sorted by member, one per member
    /// (format 2; a format 1 body has none and ends before them).
    pub allowances: Vec<Allowance>,
}

/// What a version of format 2 adds after the fields of format 1: its
/// allowances, here none (a u64 count of zero). A format 1 body reads as
/// one of format 2 with no allowance, and encodes back without them.
const FORMAT_2_EMPTY_TAIL: [u8; 8] = [0; 8];

/// One signature on a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSignature {
    /// The signing public key.
    pub key: AuthorityId,
    /// `ed25519(ROSTER_DOMAIN || body)`.
    pub signature: SignatureBytes,
}

/// A version as it travels: its canonical body, exactly as signed, and
/// the signatures gathered so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVersion {
    /// The canonical encoding of a [`RosterVersion`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// Signatures, sorted by key, one per key.
    pub signatures: Vec<VersionSignature>,
}

/// Why a roster version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The bytes do not decode canonically within the limits.
    #[error("roster version: {0}")]
    Codec(#[from] CodecError),
    /// A format this code does not know.
    #[error(
        "roster version format {0} is not supported (this node speaks formats {ROSTER_VERSION_FORMAT_MIN} to {ROSTER_VERSION_FORMAT})"
    )]
    Format(u16),
    /// It belongs to another federation.
    #[error("roster version is for federation {found}, this is federation {expected}")]
    WrongFederation {
        /// Named.
        found: FederationId,
        /// Ours.
        expected: FederationId,
    },
    /// Its number does not follow the version it names.
    #[error("roster version {found} cannot follow version {previous}: it must be {}", previous + 1)]
    Number {
        /// Its number.
        found: u64,
        /// The number of the version it replaces.
        previous: u64,
    },
    /// It names a version this chain does not have.
    #[error("roster version {number} replaces version {} with hash {previous}, which is not known here", number - 1)]
    UnknownPrevious {
        /// Its number.
        number: u64,
        /// The hash it names.
        previous: RosterHash,
    },
    /// The roster it carries is invalid.
    #[error("roster version {number}: {source}")]
    Roster {
        /// Its number.
        number: u64,
        /// What is wrong.
        source: RosterError,
    },
    /// A rule of what a version may change is broken; `field` names what.
    #[error("roster version {number}: {field}: {problem}")]
    Change {
        /// Its number.
        number: u64,
        /// The field or member concerned.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A signature does not verify.
    #[error("roster version {number}: the signature of key {key} does not verify")]
    BadSignature {
        /// Its number.
        number: u64,
        /// The key.
        key: AuthorityId,
    },
    /// A key signed twice.
    #[error(
        "roster version {number}: key {key} signed twice (one member's signatures count once); the signatures must be sorted by key, one per key"
    )]
    RepeatedSignature {
        /// Its number.
        number: u64,
        /// The key.
        key: AuthorityId,
    },
    /// A key that may not sign this version signed it.
    #[error("roster version {number}: key {key} signed it, but {why}")]
    ForeignSigner {
        /// Its number.
        number: u64,
        /// The key.
        key: AuthorityId,
        /// Why it may not.
        why: String,
    },
    /// Too few distinct members of the replaced version signed.
    #[error(
        "roster version {number} is signed by {signed} distinct members of version {}: the threshold is {threshold}",
        number - 1
    )]
    BelowThreshold {
        /// Its number.
        number: u64,
        /// Distinct members who signed.
        signed: usize,
        /// The threshold of the replaced version.
        threshold: u32,
    },
    /// This chain holds as many versions as it may.
    #[error("this node holds {max} {what} already")]
    TooMany {
        /// What.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A key it adds or rotates to did not sign it.
    #[error(
        "roster version {number} adds key {key} ({what}) without that key's own signature (proof of possession)"
    )]
    MissingProofOfPossession {
        /// Its number.
        number: u64,
        /// The key.
        key: AuthorityId,
        /// Whose key it is.
        what: String,
    },
}

impl GovernanceError {
    /// A stable short name of the rule broken.
    pub fn code(&self) -> &'static str {
        match self {
            GovernanceError::Codec(_) => "codec",
            GovernanceError::Format(_) => "format",
            GovernanceError::WrongFederation { .. } => "federation",
            GovernanceError::Number { .. } => "number",
            GovernanceError::UnknownPrevious { .. } => "unknown_previous",
            GovernanceError::Roster { .. } => "roster",
            GovernanceError::Change { .. } => "change",
            GovernanceError::BadSignature { .. } => "signature",
            GovernanceError::RepeatedSignature { .. } => "repeated_signature",
            GovernanceError::ForeignSigner { .. } => "foreign_signer",
            GovernanceError::BelowThreshold { .. } => "below_threshold",
            GovernanceError::MissingProofOfPossession { .. } => "proof_of_possession",
            GovernanceError::TooMany { .. } => "too_many",
        }
    }
}

impl RosterVersion {
    /// The canonical body bytes. A version of format 1 cannot grant
    /// allowances.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut bytes = codec::encode_bounded::<_, VERSION_BODY_BYTES_MAX>("roster version", self)?;
        if self.format < 2 {
            if !self.allowances.is_empty() {
                return Err(CodecError::Malformed {
                    what: "roster version",
                    reason: format!(
                        "a roster version of format {} cannot grant notice allowances (format 2 can)",
                        self.format
                    ),
                });
            }
            bytes.truncate(bytes.len() - FORMAT_2_EMPTY_TAIL.len());
        }
        Ok(bytes)
    }

    /// Decodes canonical body bytes (of format 1, with no allowances,
    /// or later).
    pub fn from_bytes(bytes: &[u8]) -> Result<RosterVersion, CodecError> {
        let format = bytes.first_chunk::<2>().map(|f| u16::from_le_bytes(*f));
        if format.is_some_and(|f| f < 2) {
            if bytes.len() > VERSION_BODY_BYTES_MAX {
                return Err(CodecError::TooLarge {
                    what: "roster version",
                    bytes: bytes.len(),
                    bytes_max: VERSION_BODY_BYTES_MAX,
                });
            }
            // The canonical check re-encodes the padded bytes: a body of
            // format 1 decodes only from its exact bytes.
            let padded = [bytes, &FORMAT_2_EMPTY_TAIL].concat();
            return codec::decode_bounded::<_, VERSION_BODY_WITH_TAIL_MAX>(
                "roster version",
                &padded,
            );
        }
        codec::decode_bounded::<_, VERSION_BODY_BYTES_MAX>("roster version", bytes)
    }
}

impl SignedVersion {
    /// A version with no signatures yet.
    pub fn new(version: &RosterVersion) -> Result<SignedVersion, CodecError> {
        Ok(SignedVersion {
            body: version.to_bytes()?,
            signatures: Vec::new(),
        })
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_bounded::<_, SIGNED_VERSION_BYTES_MAX>("signed roster version", self)
    }

    /// Decodes canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedVersion, CodecError> {
        codec::decode_bounded::<_, SIGNED_VERSION_BYTES_MAX>("signed roster version", bytes)
    }

    /// Its hash: the BLAKE3 of the body (signatures gathered later do not
    /// change it).
    pub fn hash(&self) -> RosterHash {
        RosterHash(Digest::of(&self.body).0)
    }

    /// The version it carries.
    pub fn version(&self) -> Result<RosterVersion, CodecError> {
        RosterVersion::from_bytes(&self.body)
    }

    /// Adds (or replaces) the signature of `key`, keeping the signatures
    /// sorted by key.
    pub fn sign(&mut self, key: &AuthorityKey) {
        let signer = AuthorityId(key.public_bytes());
        let signature = SignatureBytes(key.sign(ROSTER_DOMAIN, &self.body));
        self.signatures.retain(|s| s.key != signer);
        let at = self.signatures.partition_point(|s| s.key < signer);
        self.signatures.insert(
            at,
            VersionSignature {
                key: signer,
                signature,
            },
        );
    }

    /// Adds the signatures of `other` (the same body) that this one lacks.
    pub fn merge(&mut self, other: &SignedVersion) {
        for signature in &other.signatures {
            if let Err(at) = self
                .signatures
                .binary_search_by(|s| s.key.cmp(&signature.key))
            {
                self.signatures.insert(at, signature.clone());
            }
        }
    }
}

/// Where a member's key changes: `key` signs its log from `first_seq` on,
/// until the next span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpan {
    /// The first seq it signs.
    pub first_seq: u64,
    /// The key.
    pub key: AuthorityId,
    /// Its parsed public key.
    pub public: PublicKey,
    /// It was revoked as compromised when the next span began.
    pub compromised: bool,
}

/// A cutoff as the chain keeps it: in which version, at which seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutoffAt {
    /// The version that stated it.
    pub version: u64,
    /// Its last notice that keeps what was taken away.
    pub after_seq: u64,
}

/// An accepted version, with what the chain up to it says about keys.
#[derive(Clone, Debug)]
pub struct Version {
    /// Its number (0 for genesis).
    pub number: u64,
    /// Its hash (the federation id for genesis).
    pub hash: RosterHash,
    /// The hash of the version it replaces (zeros for genesis).
    pub previous: RosterHash,
    /// Its roster, indexed.
    pub federation: Federation,
    /// The signed version (none for genesis).
    pub signed: Option<Arc<SignedVersion>>,
    /// Every member's keys so far, by stable id (members removed since
    /// keep theirs: their old notices still verify).
    pub keys: BTreeMap<AuthorityId, Vec<KeySpan>>,
    /// Every cutoff so far, by member, in version order.
    pub cutoffs: BTreeMap<AuthorityId, Vec<CutoffAt>>,
    /// Members removed so far, with the version that removed them.
    pub removed: BTreeMap<AuthorityId, u64>,
    /// Which member each key ever used belongs to.
    pub key_owners: BTreeMap<AuthorityId, AuthorityId>,
    /// The notice allowances this version grants (its own, not the
    /// chain's), by member.
    pub allowances: BTreeMap<AuthorityId, u64>,
}

impl Version {
    /// Version 0: the genesis roster.
    pub fn genesis(federation: Federation) -> Version {
        let mut keys = BTreeMap::new();
        let mut key_owners = BTreeMap::new();
        for member in &federation.roster().members {
            if let Some(public) = federation.public_key(&member.key) {
                keys.insert(
                    member.key,
                    vec![KeySpan {
                        first_seq: 1,
                        key: member.key,
                        public: *public,
                        compromised: false,
                    }],
                );
                key_owners.insert(member.key, member.key);
            }
        }
        Version {
            number: 0,
            hash: RosterHash(federation.id().0),
            previous: RosterHash::default(),
            federation,
            signed: None,
            keys,
            cutoffs: BTreeMap::new(),
            removed: BTreeMap::new(),
            key_owners,
            allowances: BTreeMap::new(),
        }
    }

    /// The key that signs seq `seq` of `member`'s log, if it is known.
    pub fn key_for(&self, member: &AuthorityId, seq: u64) -> Option<&KeySpan> {
        self.keys
            .get(member)?
            .iter()
            .rev()
            .find(|span| span.first_seq <= seq)
    }

    /// The current key of `member`.
    pub fn current_key(&self, member: &AuthorityId) -> Option<&KeySpan> {
        self.keys.get(member)?.last()
    }

    /// The member a current key belongs to (a connection's identity).
    pub fn member_of_key(&self, key: &AuthorityId) -> Option<AuthorityId> {
        let owner = self.key_owners.get(key)?;
        let current = self.current_key(owner)?;
        (current.key == *key && self.federation.member(owner).is_some()).then_some(*owner)
    }
}

fn change(number: u64, field: impl Into<String>, problem: impl Into<String>) -> GovernanceError {
    GovernanceError::Change {
        number,
        field: field.into(),
        problem: problem.into(),
    }
}

/// Whether `after` takes a grant away from `before` (a category of either
/// list, or a measure).
fn takes_away(before: &Member, after: &Member) -> Option<String> {
    for (what, old, new) in [
        ("issues_black", &before.issues_black, &after.issues_black),
        ("issues_red", &before.issues_red, &after.issues_red),
        ("implements", &before.implements, &after.implements),
    ] {
        if let Some(lost) = old.iter().find(|code| !new.contains(code)) {
            return Some(format!("{what} loses {lost:?}"));
        }
    }
    None
}

fn sorted_unique<T>(items: &[T], key: impl Fn(&T) -> AuthorityId) -> Option<AuthorityId> {
    items
        .windows(2)
        .find(|w| key(&w[0]) >= key(&w[1]))
        .map(|w| key(&w[1]))
}

/// Checks `signed` as the version after `previous` and returns it
/// accepted.
pub fn verify_next(previous: &Version, signed: &SignedVersion) -> Result<Version, GovernanceError> {
    let version = RosterVersion::from_bytes(&signed.body)?;
    let number = version.number;
    if !(ROSTER_VERSION_FORMAT_MIN..=ROSTER_VERSION_FORMAT).contains(&version.format) {
        return Err(GovernanceError::Format(version.format));
    }
    let ours = previous.federation.id();
    if version.federation != ours {
        return Err(GovernanceError::WrongFederation {
            found: version.federation,
            expected: ours,
        });
    }
    if number != previous.number + 1 {
        return Err(GovernanceError::Number {
            found: number,
            previous: previous.number,
        });
    }
    if version.previous != previous.hash {
        return Err(GovernanceError::UnknownPrevious {
            number,
            previous: version.previous,
        });
    }
    let federation = Federation::with_id(version.roster.clone(), ours)
        .map_err(|source| GovernanceError::Roster { number, source })?;
    if federation.roster() != &version.roster {
        return Err(change(
            number,
            "roster",
            "not in canonical form (categories, measures and members sorted by code and key, each list sorted without repeats)",
        ));
    }
    for (field, count) in [
        ("keys", version.keys.len()),
        ("cutoffs", version.cutoffs.len()),
        ("allowances", version.allowances.len()),
    ] {
        if count > MEMBERS_MAX {
            return Err(change(
                number,
                field,
                format!("{count} entries, more than {MEMBERS_MAX}"),
            ));
        }
    }
    if let Some(member) = sorted_unique(&version.keys, |k| k.member) {
        return Err(change(
            number,
            format!("keys[{member}]"),
            "key changes must be sorted by member, one per member",
        ));
    }
    if let Some(member) = sorted_unique(&version.cutoffs, |c| c.member) {
        return Err(change(
            number,
            format!("cutoffs[{member}]"),
            "cutoffs must be sorted by member, one per member",
        ));
    }
    if let Some(member) = sorted_unique(&version.allowances, |a| a.member) {
        return Err(change(
            number,
            format!("allowances[{member}]"),
            "allowances must be sorted by member, one per member",
        ));
    }
    for allowance in &version.allowances {
        let field = format!("allowances[{}]", federation.name_of(&allowance.member));
        if federation.member(&allowance.member).is_none() {
            return Err(change(
                number,
                field,
                "an allowance is for a member of this version",
            ));
        }
        if !(1..=ALLOWANCE_NOTICES_MAX).contains(&allowance.notices) {
            return Err(change(
                number,
                field,
                format!(
                    "{} notices: an allowance grants 1 to {ALLOWANCE_NOTICES_MAX}",
                    allowance.notices
                ),
            ));
        }
    }
    let before = previous.federation.roster();
    let name = |id: &AuthorityId| previous.federation.name_of(id);
    let mut next = Version {
        number,
        hash: signed.hash(),
        previous: version.previous,
        federation: federation.clone(),
        signed: Some(Arc::new(signed.clone())),
        keys: previous.keys.clone(),
        cutoffs: previous.cutoffs.clone(),
        removed: previous.removed.clone(),
        key_owners: previous.key_owners.clone(),
        allowances: version
            .allowances
            .iter()
            .map(|a| (a.member, a.notices))
            .collect(),
    };
    // Keys that must prove possession: added members' and rotated keys.
    let mut new_keys: BTreeMap<AuthorityId, String> = BTreeMap::new();
    // Members that lose something and so need a cutoff.
    let mut losing: BTreeMap<AuthorityId, String> = BTreeMap::new();
    for old in &before.members {
        match federation.member(&old.key) {
            None => {
                losing.insert(old.key, "removed".into());
                next.removed.insert(old.key, number);
            }
            Some(new) => {
                if let Some(lost) = takes_away(old, new) {
                    losing.insert(old.key, lost);
                }
            }
        }
    }
    for member in &federation.roster().members {
        if previous.federation.member(&member.key).is_some() {
            continue;
        }
        if let Some(removed_in) = previous.removed.get(&member.key) {
            return Err(change(
                number,
                format!("member {:?}", member.name),
                format!(
                    "its key {} was removed in version {removed_in}: a removed member rejoins with a new key",
                    member.key
                ),
            ));
        }
        if previous.key_owners.contains_key(&member.key) {
            return Err(change(
                number,
                format!("member {:?}", member.name),
                format!("its key {} is already used", member.key),
            ));
        }
        let Some(public) = federation.public_key(&member.key) else {
            unreachable!("Federation::with_id parsed every member's key")
        };
        next.keys.insert(
            member.key,
            vec![KeySpan {
                first_seq: 1,
                key: member.key,
                public: *public,
                compromised: false,
            }],
        );
        next.key_owners.insert(member.key, member.key);
        new_keys.insert(member.key, format!("new member {:?}", member.name));
    }
    for rotation in &version.keys {
        let field = format!("keys[{}]", name(&rotation.member));
        if previous.federation.member(&rotation.member).is_none()
            || federation.member(&rotation.member).is_none()
        {
            return Err(change(
                number,
                field,
                "only a member of both this version and the one it replaces can change its key",
            ));
        }
        if let Some(owner) = next.key_owners.get(&rotation.key) {
            return Err(change(
                number,
                field,
                format!("key {} is already used by {}", rotation.key, name(owner)),
            ));
        }
        let public = PublicKey::from_bytes(&rotation.key.0)
            .map_err(|error| change(number, field.clone(), error.to_string()))?;
        let spans = next.keys.entry(rotation.member).or_default();
        let first_seq = rotation.after_seq.checked_add(1).ok_or_else(|| {
            change(
                number,
                field.clone(),
                "after_seq must leave a seq for the new key",
            )
        })?;
        if let Some(last) = spans.last_mut() {
            if first_seq <= last.first_seq {
                return Err(change(
                    number,
                    field,
                    format!(
                        "after_seq {} is before the current key's first seq {}",
                        rotation.after_seq, last.first_seq
                    ),
                ));
            }
            last.compromised = rotation.compromised;
        }
        spans.push(KeySpan {
            first_seq,
            key: rotation.key,
            public,
            compromised: false,
        });
        next.key_owners.insert(rotation.key, rotation.member);
        new_keys.insert(
            rotation.key,
            format!("the new key of {}", name(&rotation.member)),
        );
    }
    for cutoff in &version.cutoffs {
        if losing.remove(&cutoff.member).is_none() {
            return Err(change(
                number,
                format!("cutoffs[{}]", name(&cutoff.member)),
                "this version takes nothing from that member: a cutoff is for a removal or a grant withdrawn",
            ));
        }
        next.cutoffs
            .entry(cutoff.member)
            .or_default()
            .push(CutoffAt {
                version: number,
                after_seq: cutoff.after_seq,
            });
    }
    if let Some((member, what)) = losing.into_iter().next() {
        return Err(change(
            number,
            format!("cutoffs[{}]", name(&member)),
            format!("the member is {what}, so the version must state its cutoff seq"),
        ));
    }
    check_signatures(previous, &version, signed, &new_keys)?;
    next.federation = federation.with_key_history(
        next.keys
            .iter()
            .map(|(member, spans)| {
                (
                    *member,
                    spans.iter().map(|s| (s.first_seq, s.public)).collect(),
                )
            })
            .collect(),
    );
    Ok(next)
}

fn check_signatures(
    previous: &Version,
    version: &RosterVersion,
    signed: &SignedVersion,
    new_keys: &BTreeMap<AuthorityId, String>,
) -> Result<(), GovernanceError> {
    let number = version.number;
    if signed.signatures.len() > SIGNATURES_MAX {
        return Err(change(
            number,
            "signatures",
            format!("more than {SIGNATURES_MAX}"),
        ));
    }
    let mut seen: BTreeSet<AuthorityId> = BTreeSet::new();
    let mut members: BTreeSet<AuthorityId> = BTreeSet::new();
    let mut proven: BTreeSet<AuthorityId> = BTreeSet::new();
    for entry in &signed.signatures {
        if !seen.insert(entry.key) {
            return Err(GovernanceError::RepeatedSignature {
                number,
                key: entry.key,
            });
        }
        let member = previous.member_of_key(&entry.key);
        if member.is_none() && !new_keys.contains_key(&entry.key) {
            let why = match previous.key_owners.get(&entry.key) {
                Some(owner) => match previous.removed.get(owner) {
                    Some(removed_in) => format!(
                        "it belongs to {}, removed from the federation in version {removed_in}",
                        previous.federation.name_of(owner)
                    ),
                    None => "it is a retired key of a member, not its current key".to_string(),
                },
                None => format!(
                    "it is neither a member's key in version {} nor a key this version adds",
                    previous.number
                ),
            };
            return Err(GovernanceError::ForeignSigner {
                number,
                key: entry.key,
                why,
            });
        }
        let public =
            PublicKey::from_bytes(&entry.key.0).map_err(|_| GovernanceError::BadSignature {
                number,
                key: entry.key,
            })?;
        if public
            .verify(ROSTER_DOMAIN, &signed.body, &entry.signature.0)
            .is_err()
        {
            return Err(GovernanceError::BadSignature {
                number,
                key: entry.key,
            });
        }
        if let Some(member) = member {
            members.insert(member);
        }
        if new_keys.contains_key(&entry.key) {
            proven.insert(entry.key);
        }
    }
    let threshold = previous.federation.threshold();
    if members.len() < threshold as usize {
        return Err(GovernanceError::BelowThreshold {
            number,
            signed: members.len(),
            threshold,
        });
    }
    if let Some((key, what)) = new_keys.iter().find(|(key, _)| !proven.contains(key)) {
        return Err(GovernanceError::MissingProofOfPossession {
            number,
            key: *key,
            what: what.clone(),
        });
    }
    Ok(())
}

/// The distinct members of `previous` whose current keys signed `signed`
/// (whether or not the signatures make a valid version): what the
/// equivocation evidence names.
pub fn signing_members(previous: &Version, signed: &SignedVersion) -> BTreeSet<AuthorityId> {
    signed
        .signatures
        .iter()
        .filter_map(|entry| {
            let member = previous.member_of_key(&entry.key)?;
            let span = previous.current_key(&member)?;
            span.public
                .verify(ROSTER_DOMAIN, &signed.body, &entry.signature.0)
                .is_ok()
                .then_some(member)
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! The data model: envelopes, notices, listings and their follow-ups.
//!
//! Every type here is encoded by [`crate::codec`]; field order is part of
//! the wire format. Limits on every variable-length field are named
//! constants, checked by [`crate::validate`].

use crate::identifiers::{IdentifierError, check_resident_id, check_uscc};
use crate::time::Timestamp;
use credence_crypto::Digest;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The notice format version this code writes. Version 2 names the
/// roster version the notice was signed under; version 3 adds a
/// listing's named readers and linked persons, and the distribution
/// levels that need them.
pub const NOTICE_VERSION: u16 = 3;
/// The oldest notice format this code still reads: version 1 has no
/// roster field and reads as signed under roster version 0.
pub const NOTICE_VERSION_MIN: u16 = 1;
/// Largest canonical notice body, in bytes.
pub const NOTICE_BYTES_MAX: usize = 16 * 1024;
/// Largest envelope: body, its length prefix and the signature.
pub const ENVELOPE_BYTES_MAX: usize = NOTICE_BYTES_MAX + 8 + 64;
/// Longest free text (reasons, grounds, legal basis), in bytes of UTF-8.
pub const TEXT_BYTES_MAX: usize = 2048;
/// Longest name (subject or authority), in bytes of UTF-8.
pub const NAME_BYTES_MAX: usize = 256;
/// Longest decision document number, in bytes.
pub const DOCUMENT_NUMBER_BYTES_MAX: usize = 128;
/// Longest category or measure code, in bytes.
pub const CODE_BYTES_MAX: usize = 64;
/// Most joint measures one listing may trigger.
pub const MEASURES_PER_LISTING_MAX: usize = 32;
/// Most evidence digests one notice may carry.
pub const EVIDENCE_PER_NOTICE_MAX: usize = 32;
/// Most changes one amendment or correction may make.
pub const CHANGES_PER_AMENDMENT_MAX: usize = 16;
/// Most members one listing may name as its readers.
pub const READERS_PER_LISTING_MAX: usize = 32;
/// Most linked persons (legal representative, responsible persons) one
/// listing may record.
pub const LINKED_PER_LISTING_MAX: usize = 16;

macro_rules! digest_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        // The canonical (binary) form is the 32 bytes, exactly as a derived
        // newtype; human-readable formats (the JSON of the HTTP API) get the
        // 64 hex digits.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.digest().to_hex())
                } else {
                    serializer.serialize_newtype_struct(stringify!($name), &self.0)
                }
            }
        }

        // In the OpenAPI document: the JSON form, 64 hex digits.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some("^[0-9a-fA-F]{64}$"))
                    .description(Some(concat!(stringify!($name), ": 32 bytes as 64 hex digits")))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                    text.parse::<$name>().map_err(|_| {
                        serde::de::Error::custom(format!(
                            "{text:?} is not a {}: 64 hex digits expected",
                            stringify!($name)
                        ))
                    })
                } else {
                    #[derive(Deserialize)]
                    struct Raw([u8; 32]);
                    Raw::deserialize(deserializer).map(|raw| $name(raw.0))
                }
            }
        }

        impl $name {
            /// As a crypto digest (for hex display and parsing).
            pub fn digest(&self) -> Digest {
                Digest(self.0)
            }

            /// The first eight hex characters.
            pub fn short(&self) -> String {
                self.digest().short()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.digest(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = credence_crypto::DigestParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse::<Digest>().map(|digest| $name(digest.0))
            }
        }

        impl From<Digest> for $name {
            fn from(digest: Digest) -> Self {
                $name(digest.0)
            }
        }
    };
}

digest_newtype!(
    /// A notice's id: the BLAKE3 leaf hash of its envelope bytes.
    NoticeId
);
digest_newtype!(
    /// An authority: its ed25519 public key.
    AuthorityId
);
digest_newtype!(
    /// A federation: the BLAKE3 of its canonical genesis roster.
    FederationId
);
digest_newtype!(
    /// A roster version: the BLAKE3 of its canonical body (version 0's is
    /// the federation id).
    RosterHash
);

/// An ed25519 signature, encoded as 64 bytes with no length prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBytes({}..)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SignatureBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(SignatureBytes(bytes))
            }
        }
        deserializer.deserialize_tuple(64, Visitor)
    }
}

/// What travels and is stored: the canonical notice bytes exactly as
/// signed, and the signature. Signed bytes are never re-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Canonical encoding of a [`Notice`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// `ed25519(NOTICE_DOMAIN || body)` by the notice's author.
    pub signature: SignatureBytes,
}

/// One signed decision of one authority, at one place in its log.
///
/// Encoded as its fields in order, with `roster` only from format 2 on:
/// `version | federation | roster (format ≥ 2) | author | seq | prev |
/// issued_at | kind`. A format 1 notice decodes with `roster` 0 and
/// encodes back to the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Format version ([`NOTICE_VERSION`], or [`NOTICE_VERSION_MIN`] for
    /// notices signed before roster versions existed).
    pub version: u16,
    /// The federation this notice belongs to.
    pub federation: FederationId,
    /// The roster version it was signed under (0 in format 1).
    pub roster: u64,
    /// The signing authority: the member's stable id (the key it joined
    /// with), whatever key signs this seq of its log.
    pub author: AuthorityId,
    /// Position in the author's log: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// Id of the author's notice at `seq - 1`; zeros at `seq` 1.
    pub prev: NoticeId,
    /// When the author issued it (the author's clock).
    pub issued_at: Timestamp,
    /// What it decides.
    pub kind: NoticeKind,
}

/// The named form of a notice, for human-readable formats (JSON).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedNotice {
    version: u16,
    federation: FederationId,
    roster: u64,
    author: AuthorityId,
    seq: u64,
    prev: NoticeId,
    issued_at: Timestamp,
    kind: NoticeKind,
}

impl Serialize for Notice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return NamedNotice {
                version: self.version,
                federation: self.federation,
                roster: self.roster,
                author: self.author,
                seq: self.seq,
                prev: self.prev,
                issued_at: self.issued_at,
                kind: self.kind.clone(),
            }
            .serialize(serializer);
        }
        use serde::ser::SerializeTuple;
        let with_roster = self.version >= 2;
        let mut tuple = serializer.serialize_tuple(if with_roster { 8 } else { 7 })?;
        tuple.serialize_element(&self.version)?;
        tuple.serialize_element(&self.federation)?;
        if with_roster {
            tuple.serialize_element(&self.roster)?;
        }
        tuple.serialize_element(&self.author)?;
        tuple.serialize_element(&self.seq)?;
        tuple.serialize_element(&self.prev)?;
        tuple.serialize_element(&self.issued_at)?;
        tuple.serialize_element(&self.kind)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Notice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let named = NamedNotice::deserialize(deserializer)?;
            return Ok(Notice {
                version: named.version,
                federation: named.federation,
                roster: named.roster,
                author: named.author,
                seq: named.seq,
                prev: named.prev,
                issued_at: named.issued_at,
                kind: named.kind,
            });
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Notice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a notice")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                fn next<'de, T: Deserialize<'de>, A: serde::de::SeqAccess<'de>>(
                    seq: &mut A,
                    index: usize,
                ) -> Result<T, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(index, &"a notice"))
                }
                let version: u16 = next(&mut seq, 0)?;
                let federation = next(&mut seq, 1)?;
                let roster = if version >= 2 { next(&mut seq, 2)? } else { 0 };
                Ok(Notice {
                    version,
                    federation,
                    roster,
                    author: next(&mut seq, 3)?,
                    seq: next(&mut seq, 4)?,
                    prev: next(&mut seq, 5)?,
                    issued_at: next(&mut seq, 6)?,
                    kind: next(&mut seq, 7)?,
                })
            }
        }
        deserializer.deserialize_tuple(8, Visitor)
    }
}

/// What a notice decides.
// Listings are most of the notices: boxing the largest variant would add
// an allocation to nearly every decode to save space on the rest.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum NoticeKind {
    /// A new listing on the red list or the blacklist.
    List(Listing),
    /// A correction of a listing by its issuer.
    Amend {
        /// The listing.
        listing: NoticeId,
        /// The corrected fields.
        changes: Vec<ListingChange>,
    },
    /// A credit repair: the listing ends early (issuer only).
    Repair {
        /// The listing.
        listing: NoticeId,
        /// Why the subject's credit is repaired.
        reason: String,
        /// Digests of the documents that show it.
        #[cfg_attr(feature = "openapi", schema(schema_with = evidence_schema))]
        evidence: Vec<EvidenceDigest>,
    },
    /// The issuer takes the listing back.
    Withdraw {
        /// The listing.
        listing: NoticeId,
        /// Why.
        reason: String,
        /// Whether the subject's reputation is to be publicly restored.
        restore_reputation: bool,
    },
    /// An objection to a listing (any member, on the subject's behalf).
    Object {
        /// The listing.
        listing: NoticeId,
        /// The subject's grounds.
        grounds: String,
        /// The issuer must rule by then.
        respond_by: Timestamp,
    },
    /// The issuer's ruling on an objection.
    Rule {
        /// The objection notice.
        objection: NoticeId,
        /// Upheld (with its remedy) or rejected.
        outcome: RulingOutcome,
        /// The reasons of the ruling.
        reason: String,
    },
    /// An implementing authority reports what it did with a measure.
    Feedback {
        /// The listing.
        listing: NoticeId,
        /// The measure code.
        measure: String,
        /// Applied, lifted or declined.
        action: FeedbackAction,
    },
}

impl NoticeKind {
    /// A short lower-case name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            NoticeKind::List(_) => "list",
            NoticeKind::Amend { .. } => "amend",
            NoticeKind::Repair { .. } => "repair",
            NoticeKind::Withdraw { .. } => "withdraw",
            NoticeKind::Object { .. } => "object",
            NoticeKind::Rule { .. } => "rule",
            NoticeKind::Feedback { .. } => "feedback",
        }
    }

    /// The changes it makes to its listing: an amendment's, or an upheld
    /// correction's (none for any other notice).
    pub fn listing_changes(&self) -> &[ListingChange] {
        match self {
            NoticeKind::Amend { changes, .. }
            | NoticeKind::Rule {
                outcome: RulingOutcome::Upheld(Remedy::Correct(changes)),
                ..
            } => changes,
            _ => &[],
        }
    }

    /// The keys of the persons this notice links to the listing it is
    /// about, besides the listing's subject: a listing's linked persons,
    /// and those an amendment or a correcting ruling sets. A store indexes
    /// the listing under them too.
    pub fn linked_keys(&self) -> Vec<SubjectKey> {
        if let NoticeKind::List(listing) = self {
            return linked_keys(&listing.linked).collect();
        }
        self.listing_changes()
            .iter()
            .flat_map(|change| match change {
                ListingChange::Linked(linked) => linked_keys(linked).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The names it gives its listing: the subject's and linked persons'
    /// of a listing, those an amendment or an upheld correction sets.
    pub fn names(&self) -> Vec<&str> {
        if let NoticeKind::List(listing) = self {
            return std::iter::once(listing.subject.name.as_str())
                .chain(listing.linked.iter().map(|p| p.name.as_str()))
                .collect();
        }
        self.listing_changes()
            .iter()
            .flat_map(|change| match change {
                ListingChange::SubjectName(name) => vec![name.as_str()],
                ListingChange::Linked(linked) => linked.iter().map(|p| p.name.as_str()).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The listing this notice names directly, if any (a ruling names its
    /// objection instead).
    pub fn listing_reference(&self) -> Option<NoticeId> {
        match self {
            NoticeKind::List(_) | NoticeKind::Rule { .. } => None,
            NoticeKind::Amend { listing, .. }
            | NoticeKind::Repair { listing, .. }
            | NoticeKind::Withdraw { listing, .. }
            | NoticeKind::Object { listing, .. }
            | NoticeKind::Feedback { listing, .. } => Some(*listing),
        }
    }
}

/// A digest of an evidence document (the document itself stays with the
/// authority).
pub type EvidenceDigest = [u8; 32];

/// The JSON form of a list of evidence digests, in the OpenAPI document.
#[cfg(feature = "openapi")]
pub struct EvidenceDigests;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EvidenceDigests {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        evidence_schema().into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EvidenceDigests {}

/// The JSON schema of a list of evidence digests: each is 32 bytes as an
/// array of 32 integers from 0 to 255.
#[cfg(feature = "openapi")]
pub fn evidence_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let byte = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(255));
    let digest = ArrayBuilder::new()
        .items(byte)
        .min_items(Some(32))
        .max_items(Some(32));
    ArrayBuilder::new()
        .items(digest)
        .max_items(Some(EVIDENCE_PER_NOTICE_MAX))
        .build()
}

/// The two lists.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// Trustworthy models: green channel, priority services.
    Red,
    /// Serious dishonesty: joint punishment.
    Black,
}

impl ListKind {
    /// `red` or `black`.
    pub fn name(self) -> &'static str {
        match self {
            ListKind::Red => "red",
            ListKind::Black => "black",
        }
    }
}

/// How serious the conduct is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Minor.
    Minor,
    /// General.
    General,
    /// Serious.
    Serious,
}

/// Who may see a listing: its distribution level, decided by its issuer.
/// Every member replicates every listing whatever its level; the level
/// governs what a node serves, and to whom ([`crate::access`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Published to the public while its publication period lasts, and
    /// shared among all members.
    Public,
    /// Shared among all members, never public.
    Restricted,
    /// Shared with the issuer and the members the listing names as its
    /// `readers` only (notice format 3).
    Named,
    /// Served to auditors only, and to the issuer's own operators
    /// (notice format 3).
    Auditors,
}

impl Classification {
    /// Its name: `public`, `restricted`, `named` or `auditors`.
    pub fn name(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Restricted => "restricted",
            Classification::Named => "named",
            Classification::Auditors => "auditors",
        }
    }

    /// The oldest notice format that can state this level.
    pub fn since_version(self) -> u16 {
        match self {
            Classification::Public | Classification::Restricted => NOTICE_VERSION_MIN,
            Classification::Named | Classification::Auditors => 3,
        }
    }
}

/// How a linked person is linked to a listed organisation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    /// The legal representative.
    LegalRepresentative,
    /// A principal responsible person.
    ResponsiblePerson,
}

impl LinkRole {
    /// `legal_representative` or `responsible_person`.
    pub fn name(self) -> &'static str {
        match self {
            LinkRole::LegalRepresentative => "legal_representative",
            LinkRole::ResponsiblePerson => "responsible_person",
        }
    }
}

/// A natural person a listing of an organisation records beside it: its
/// legal representative or a principal responsible person.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedPerson {
    /// How the person is linked.
    pub role: LinkRole,
    /// The person's resident identity number.
    pub id: String,
    /// The person's name.
    pub name: String,
}

/// Which identifier scheme a subject has.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// An enterprise (USCC).
    LegalPerson,
    /// Another organisation (USCC).
    OtherOrganisation,
    /// A natural person (resident identity number).
    NaturalPerson,
}

impl SubjectKind {
    /// Its name in query strings and reports, as in JSON: `legal_person`,
    /// `other_organisation` or `natural_person`.
    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::LegalPerson => "legal_person",
            SubjectKind::OtherOrganisation => "other_organisation",
            SubjectKind::NaturalPerson => "natural_person",
        }
    }

    /// Checks `id` under this kind's scheme.
    pub fn check_identifier(self, id: &str) -> Result<(), IdentifierError> {
        match self {
            SubjectKind::LegalPerson | SubjectKind::OtherOrganisation => check_uscc(id),
            SubjectKind::NaturalPerson => check_resident_id(id),
        }
    }

    /// The index key prefix: both USCC kinds share one key space.
    fn scheme_tag(self) -> u8 {
        match self {
            SubjectKind::LegalPerson | SubjectKind::OtherOrganisation => b'U',
            SubjectKind::NaturalPerson => b'P',
        }
    }
}

/// The listed company, organisation or person.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Identifier scheme.
    pub kind: SubjectKind,
    /// USCC or resident identity number.
    pub id: String,
    /// Registered name.
    pub name: String,
}

/// Bytes of a subject index key: scheme tag and the 18-character id.
pub const SUBJECT_KEY_BYTES: usize = 19;

/// The key under which a subject's listings are indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectKey(pub [u8; SUBJECT_KEY_BYTES]);

impl SubjectKey {
    /// The key of identifier `id` of `kind`, if `id` is well formed (18
    /// ASCII characters; the checksum is not needed for a lookup).
    pub fn new(kind: SubjectKind, id: &str) -> Option<SubjectKey> {
        let bytes = id.as_bytes();
        if bytes.len() != SUBJECT_KEY_BYTES - 1 || !id.is_ascii() {
            return None;
        }
        let mut key = [0u8; SUBJECT_KEY_BYTES];
        key[0] = kind.scheme_tag();
        key[1..].copy_from_slice(bytes);
        Some(SubjectKey(key))
    }
}

/// How a listing names a person or organisation looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// As its subject.
    Subject,
    /// As a linked person of the listed organisation.
    Linked(LinkRole),
}

impl Listing {
    /// Its subject's index key and each linked person's: the keys a
    /// lookup finds it under.
    pub fn subject_keys(&self) -> Vec<SubjectKey> {
        SubjectKey::new(self.subject.kind, &self.subject.id)
            .into_iter()
            .chain(linked_keys(&self.linked))
            .collect()
    }

    /// How it names the identifier of `key`, if it does.
    pub fn naming(&self, key: &SubjectKey) -> Option<Naming> {
        if SubjectKey::new(self.subject.kind, &self.subject.id).as_ref() == Some(key) {
            return Some(Naming::Subject);
        }
        self.linked
            .iter()
            .find(|person| {
                SubjectKey::new(SubjectKind::NaturalPerson, &person.id).as_ref() == Some(key)
            })
            .map(|person| Naming::Linked(person.role))
    }

    /// How it links the person of `key`, when it records them as a linked
    /// person rather than as its subject.
    pub fn linked_role(&self, key: &SubjectKey) -> Option<LinkRole> {
        match self.naming(key) {
            Some(Naming::Linked(role)) => Some(role),
            _ => None,
        }
    }
}

/// The index keys of linked persons.
fn linked_keys(linked: &[LinkedPerson]) -> impl Iterator<Item = SubjectKey> + '_ {
    linked
        .iter()
        .filter_map(|person| SubjectKey::new(SubjectKind::NaturalPerson, &person.id))
}

/// A listing as issued.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// Who is listed.
    pub subject: Subject,
    /// Red list or blacklist.
    pub list: ListKind,
    /// Category code from the federation catalog.
    pub category: String,
    /// How serious.
    pub severity: Severity,
    /// What the subject did (or, on the red list, why it is a model).
    pub reason: String,
    /// The legal basis (citation).
    pub legal_basis: String,
    /// The decision document number.
    pub document_number: String,
    /// Codes of the joint measures it triggers.
    pub measures: Vec<String>,
    /// From when it applies.
    pub effective_at: Timestamp,
    /// End of publication to the public.
    pub publish_until: Timestamp,
    /// End of sharing among members.
    pub share_until: Timestamp,
    /// Earliest date of a credit repair.
    pub repair_from: Timestamp,
    /// Public or restricted.
    pub classification: Classification,
    /// Digests of the evidence documents.
    #[cfg_attr(feature = "openapi", schema(schema_with = evidence_schema))]
    pub evidence: Vec<EvidenceDigest>,
    /// The operator accepted an identifier whose check character does not
    /// match (a known pilot code); recorded so that the audit sees it.
    pub checksum_override: bool,
    /// The members a [`Classification::Named`] listing is shared with, in
    /// ascending order; empty at every other level (notice format 3).
    #[serde(default)]
    pub readers: Vec<AuthorityId>,
    /// The legal representative and principal responsible persons of a
    /// listed organisation (notice format 3).
    #[serde(default)]
    pub linked: Vec<LinkedPerson>,
}

/// One corrected field of a listing. The subject's identifier, the list
/// and the category cannot change: withdraw and list again instead.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingChange {
    /// The subject's registered name.
    SubjectName(String),
    /// Severity.
    Severity(Severity),
    /// Reason.
    Reason(String),
    /// Legal basis.
    LegalBasis(String),
    /// Decision document number.
    DocumentNumber(String),
    /// The full new set of measures.
    Measures(Vec<String>),
    /// Effective date.
    EffectiveAt(Timestamp),
    /// End of publication.
    PublishUntil(Timestamp),
    /// End of sharing.
    ShareUntil(Timestamp),
    /// Earliest repair date.
    RepairFrom(Timestamp),
    /// Classification.
    Classification(Classification),
    /// The full new set of evidence digests.
    #[cfg_attr(feature = "openapi", schema(value_type = EvidenceDigests))]
    Evidence(Vec<EvidenceDigest>),
    /// The full new set of named readers (notice format 3).
    Readers(Vec<AuthorityId>),
    /// The full new set of linked persons (notice format 3).
    Linked(Vec<LinkedPerson>),
}

impl ListingChange {
    /// Applies this change to `listing`.
    pub fn apply(&self, listing: &mut Listing) {
        match self {
            ListingChange::SubjectName(name) => listing.subject.name.clone_from(name),
            ListingChange::Severity(severity) => listing.severity = *severity,
            ListingChange::Reason(reason) => listing.reason.clone_from(reason),
            ListingChange::LegalBasis(basis) => listing.legal_basis.clone_from(basis),
            ListingChange::DocumentNumber(number) => listing.document_number.clone_from(number),
            ListingChange::Measures(measures) => listing.measures.clone_from(measures),
            ListingChange::EffectiveAt(t) => listing.effective_at = *t,
            ListingChange::PublishUntil(t) => listing.publish_until = *t,
            ListingChange::ShareUntil(t) => listing.share_until = *t,
            ListingChange::RepairFrom(t) => listing.repair_from = *t,
            ListingChange::Classification(c) => listing.classification = *c,
            ListingChange::Evidence(evidence) => listing.evidence.clone_from(evidence),
            ListingChange::Readers(readers) => listing.readers.clone_from(readers),
            ListingChange::Linked(linked) => listing.linked.clone_from(linked),
        }
    }

    /// The oldest notice format that can state this change.
    pub fn since_version(&self) -> u16 {
        match self {
            ListingChange::Classification(level) => level.since_version(),
            ListingChange::Readers(_) | ListingChange::Linked(_) => 3,
            _ => NOTICE_VERSION_MIN,
        }
    }
}

/// How an objection was decided.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulingOutcome {
    /// The objection holds; the remedy says what happens to the listing.
    Upheld(Remedy),
    /// The objection fails; the listing is enforceable again.
    Rejected,
}

/// What an upheld objection does to its listing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remedy {
    /// The listing is withdrawn.
    Withdraw,
    /// The listing is corrected and stays.
    Correct(Vec<ListingChange>),
}

/// What an implementing authority did with a measure.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackAction {
    /// The measure is applied.
    Applied,
    /// The measure was lifted (the listing is no longer enforceable).
    Lifted,
    /// A recommended measure was not applied, with the reason.
    Declined(String),
}

impl FeedbackAction {
    /// `applied`, `lifted` or `declined`.
    pub fn name(&self) -> &'static str {
        match self {
            FeedbackAction::Applied => "applied",
            FeedbackAction::Lifted => "lifted",
            FeedbackAction::Declined(_) => "declined",
        }
    }
}

/// A notice that decoded, with its id and envelope kept beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedNotice {
    /// Its id.
    pub id: NoticeId,
    /// The decoded body.
    pub notice: Notice,
    /// The envelope bytes as received.
    pub bytes: Vec<u8>,
    /// The signature.
    pub signature: SignatureBytes,
}

//! A subject's report: everything a node holds about one person or
//! organisation — every listing that names it (as its subject or as a
//! linked person) with its status and every notice about it, and every
//! consultation of its records in the node's register of reads — signed
//! by the node's authority key, so that the subject can show what the
//! federation holds and who consulted it, and anyone can check that the
//! node said so.
//!
//! The signature covers a [`ReportBody`]: the ids of what the report
//! shows (listings, the notices about them, register records by index and
//! leaf hash) with each listing's status, and the register's size and root
//! when the report was made. The notices are signed by their authors and
//! the records are leaves of the register, whose checkpoints the node
//! signs: the body binds the human-readable report to both.
//!
//! Byte layout and vector: SPEC.md, "Subject reports".

use crate::codec::{self, CodecError};
use crate::fold::{ListingState, Status};
use crate::model::{AuthorityId, FederationId, LinkRole, NoticeId, SubjectKey, SubjectKind};
use crate::roster::Federation;
use crate::time::Timestamp;
use credence_crypto::{AuthorityKey, REPORT_DOMAIN, SIGNATURE_BYTES};
use serde::{Deserialize, Serialize};

/// [`ReportBody::version`] of this code.
pub const REPORT_VERSION: u16 = 1;
/// Most listings one report shows (the newest, when a subject has more).
pub const REPORT_LISTINGS_MAX: usize = 1_000;
/// Most notice ids one reported listing carries (the listing and the
/// earliest notices about it, when it has more).
pub const REPORT_NOTICES_PER_LISTING_MAX: usize = 256;
/// Most register records one report shows (the newest, when there are
/// more).
pub const REPORT_READS_MAX: usize = 10_000;
/// Largest encoded body.
pub const REPORT_BYTES_MAX: usize = 1 << 20;

/// One listing in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedListing {
    /// The listing notice.
    pub id: NoticeId,
    /// Its issuer.
    pub issuer: AuthorityId,
    /// Its status when the report was made.
    pub status: Status,
    /// How it links the subject, when it records the subject as a linked
    /// person of the listed organisation (none: the subject is listed).
    pub linked: Option<LinkRole>,
    /// The listing and every notice about it, in history order.
    pub notices: Vec<NoticeId>,
}

/// One consultation in a report: a record of the register of reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedRead {
    /// Its index in the register.
    pub index: u64,
    /// Its Merkle leaf hash (of its canonical bytes).
    pub leaf: [u8; 32],
}

/// What a report's signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportBody {
    /// [`REPORT_VERSION`].
    pub version: u16,
    /// The federation.
    pub federation: FederationId,
    /// The member whose node made and signed it.
    pub member: AuthorityId,
    /// The subject's identifier scheme.
    pub subject_kind: SubjectKind,
    /// The subject's identifier.
    pub subject_id: String,
    /// When it was made.
    pub at: Timestamp,
    /// The listings that name the subject, newest first.
    pub listings: Vec<ReportedListing>,
    /// The consultations of the subject's records, oldest first.
    pub reads: Vec<ReportedRead>,
    /// The register's size when the report was made (its own request
    /// included).
    pub register_size: u64,
    /// The register's Merkle root at that size.
    pub register_root: [u8; 32],
    /// Listings, notices or reads past the limits were left out.
    pub truncated: bool,
}

/// Why a report does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The body does not decode.
    #[error("report body: {0}")]
    Codec(#[from] CodecError),
    /// A field is out of bounds or inconsistent.
    #[error("report body: {0}")]
    Field(String),
    /// The signature does not verify under the member's key.
    #[error("the report's signature does not verify under the key of {0}")]
    Signature(String),
}

impl ReportBody {
    /// The body of a report on `subject` (`kind`, `id`) made by `member`
    /// at `at` from the listings that name it (in any order) and the
    /// register records about it (index and canonical bytes, in index
    /// order), with the register at `register` (size, root).
    pub fn new(
        federation: FederationId,
        member: AuthorityId,
        (kind, id): (SubjectKind, &str),
        at: Timestamp,
        states: &[ListingState],
        reads: &[(u64, Vec<u8>)],
        (register_size, register_root): (u64, [u8; 32]),
    ) -> ReportBody {
        let key = SubjectKey::new(kind, id);
        let mut states: Vec<&ListingState> = states.iter().collect();
        states.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.id.cmp(&b.id)));
        let mut truncated = states.len() > REPORT_LISTINGS_MAX;
        states.truncate(REPORT_LISTINGS_MAX);
        let listings = states
            .into_iter()
            .map(|state| {
                truncated |= state.history.len() > REPORT_NOTICES_PER_LISTING_MAX;
                ReportedListing {
                    id: state.id,
                    issuer: state.issuer,
                    status: state.status,
                    linked: key.as_ref().and_then(|k| state.listing.linked_role(k)),
                    notices: state
                        .history
                        .iter()
                        .take(REPORT_NOTICES_PER_LISTING_MAX)
                        .map(|entry| entry.id)
                        .collect(),
                }
            })
            .collect();
        let skip = reads.len().saturating_sub(REPORT_READS_MAX);
        truncated |= skip > 0;
        ReportBody {
            version: REPORT_VERSION,
            federation,
            member,
            subject_kind: kind,
            subject_id: id.to_string(),
            at,
            listings,
            reads: reads[skip..]
                .iter()
                .map(|(index, bytes)| ReportedRead {
                    index: *index,
                    leaf: crate::register::ReadRecord::leaf(bytes).0,
                })
                .collect(),
            register_size,
            register_root,
            truncated,
        }
    }

    /// Checks the bounds a body keeps.
    fn check(&self) -> Result<(), ReportError> {
        if self.version != REPORT_VERSION {
            return Err(ReportError::Field(format!(
                "version {} (this code reads {REPORT_VERSION})",
                self.version
            )));
        }
        if self.listings.len() > REPORT_LISTINGS_MAX || self.reads.len() > REPORT_READS_MAX {
            return Err(ReportError::Field(format!(
                "{} listings and {} reads: at most {REPORT_LISTINGS_MAX} and {REPORT_READS_MAX}",
                self.listings.len(),
                self.reads.len()
            )));
        }
        if let Some(listing) = self
            .listings
            .iter()
            .find(|l| l.notices.len() > REPORT_NOTICES_PER_LISTING_MAX)
        {
            return Err(ReportError::Field(format!(
                "listing {} carries {} notices: at most {REPORT_NOTICES_PER_LISTING_MAX}",
                listing.id,
                listing.notices.len()
            )));
        }
        if let Some(read) = self.reads.iter().find(|r| r.index >= self.register_size) {
            return Err(ReportError::Field(format!(
                "read {} is past the register's size {}",
                read.index, self.register_size
            )));
        }
        if self.reads.windows(2).any(|w| w[0].index >= w[1].index) {
            return Err(ReportError::Field(
                "reads must be in ascending index order".into(),
            ));
        }
        Ok(())
    }

    /// Its canonical bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ReportError> {
        self.check()?;
        Ok(codec::encode_bounded::<_, REPORT_BYTES_MAX>(
            "report body",
            self,
        )?)
    }

    /// Decodes canonical bytes and checks the bounds.
    pub fn decode(bytes: &[u8]) -> Result<ReportBody, ReportError> {
        let body: ReportBody = codec::decode_bounded::<_, REPORT_BYTES_MAX>("report body", bytes)?;
        body.check()?;
        Ok(body)
    }

    /// Signs it with the member's key: `ed25519(REPORT_DOMAIN || body)`.
    pub fn sign(&self, key: &AuthorityKey) -> Result<SignedReport, ReportError> {
        let body = self.encode()?;
        let signature = key.sign(REPORT_DOMAIN, &body);
        Ok(SignedReport { body, signature })
    }
}

/// A report body and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReport {
    /// The canonical body.
    pub body: Vec<u8>,
    /// The member's signature over it.
    pub signature: [u8; SIGNATURE_BYTES],
}

impl SignedReport {
    /// Decodes the body and verifies the signature under the key
    /// `federation` gives its member now; the body must be of this
    /// federation.
    pub fn verify(&self, federation: &Federation) -> Result<ReportBody, ReportError> {
        let body = ReportBody::decode(&self.body)?;
        if body.federation != federation.id() {
            return Err(ReportError::Field(format!(
                "made in federation {}, not {}",
                body.federation,
                federation.id()
            )));
        }
        let name = federation.name_of(&body.member);
        let key = federation
            .public_key(&body.member)
            .ok_or_else(|| ReportError::Signature(format!("{name}, which is not a member")))?;
        key.verify(REPORT_DOMAIN, &self.body, &self.signature)
            .map_err(|_| ReportError::Signature(name))?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LinkedPerson, NoticeKind};
    use crate::replica::Replica;
    use crate::store::MemStore;
    use crate::testkit;
    use crate::time::DAY_MS;

    const T0: Timestamp = Timestamp(1_767_225_600_000);

    // A report names the listings of the subject and those that link it,
    // signs them, verifies under the member's key, and fails when a byte
    // or the signer changes.
    #[test]
    fn signed_reports_verify_and_tampering_fails() {
        let test = testkit::federation(5, 3);
        let mut replica = Replica::new(test.federation.clone(), MemStore::new());
        let mut company = testkit::listing(1, "tax", T0);
        company.linked = vec![LinkedPerson {
            role: LinkRole::LegalRepresentative,
            id: "11010519491231002X".into(),
            name: "Zhang San".into(),
        }];
        let listed = replica
            .issue(&test.keys[0], NoticeKind::List(company), T0)
            .unwrap();
        let person = SubjectKey::new(SubjectKind::NaturalPerson, "11010519491231002X").unwrap();
        let states = replica
            .subject_listings(&person, T0.plus_ms(DAY_MS))
            .unwrap();
        let record = vec![7u8; 40];
        let body = ReportBody::new(
            test.federation.id(),
            test.author(1),
            (SubjectKind::NaturalPerson, "11010519491231002X"),
            T0.plus_ms(DAY_MS),
            &states,
            &[(3, record.clone())],
            (4, [9; 32]),
        );
        assert_eq!(body.listings.len(), 1);
        assert_eq!(body.listings[0].id, listed.id);
        assert_eq!(body.listings[0].linked, Some(LinkRole::LegalRepresentative));
        assert_eq!(body.listings[0].notices, vec![listed.id]);
        assert_eq!(
            body.reads[0].leaf,
            crate::register::ReadRecord::leaf(&record).0
        );
        let signed = body.sign(&test.keys[1]).unwrap();
        assert_eq!(signed.verify(&test.federation).unwrap(), body);
        let mut tampered = signed.clone();
        let last = tampered.body.len() - 1;
        tampered.body[last] ^= 1;
        assert!(tampered.verify(&test.federation).is_err());
        let by_other = ReportBody {
            member: test.author(2),
            ..body.clone()
        }
        .encode()
        .unwrap();
        let forged = SignedReport {
            body: by_other,
            signature: signed.signature,
        };
        assert!(matches!(
            forged.verify(&test.federation),
            Err(ReportError::Signature(_))
        ));
        // A read past the register's size is not a report.
        let bad = ReportBody {
            register_size: 3,
            ..body
        };
        assert!(bad.encode().is_err());
    }
}

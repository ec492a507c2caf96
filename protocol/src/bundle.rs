//! Audit bundles: everything an auditor needs to check a replica offline,
//! and the audit itself.
//!
//! A bundle holds the canonical roster, every envelope exactly as signed
//! (in the order the exporting replica accepted them, which respects every
//! reference), the exporter's claimed heads and Merkle roots, and its fork
//! evidence. The audit trusts none of it: it replays every envelope through
//! a fresh in-memory [`Replica`], so it applies the very rules ingest
//! applies, then compares what it computed with what the bundle claims.

use crate::codec::{self, CodecError};
use crate::model::{AuthorityId, NoticeId};
use crate::replica::{Outcome, Replica, ReplicaError, Waiting};
use crate::roster::{Federation, RosterError};
use crate::store::{MemStore, Store};
use crate::time::Timestamp;
use credence_crypto::Digest;
use credence_crypto::merkle::leaf_hash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, BTreeSet};

/// First bytes of every bundle file.
pub const BUNDLE_MAGIC: &[u8; 16] = b"credence-bundle\0";
/// Bundle format version: 3 carries the roster versions.
pub const BUNDLE_VERSION: u16 = 4;
/// The format before the register of reads (still read: no register).
pub const BUNDLE_VERSION_3: u16 = 3;
/// The previous format, still read (it has no roster versions).
pub const BUNDLE_VERSION_2: u16 = 2;
/// Signed checkpoints one bundle carries at most.
pub const BUNDLE_CHECKPOINTS_MAX: usize = 4096;
/// Largest bundle, in bytes.
pub const BUNDLE_BYTES_MAX: usize = 1 << 31;
/// Envelopes replayed between two progress reports of the audit.
pub const AUDIT_BATCH_NOTICES: usize = 16 * 1024;

/// A claimed head of one author's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHead {
    /// The author.
    pub author: AuthorityId,
    /// Newest seq.
    pub seq: u64,
    /// Newest id.
    pub id: NoticeId,
    /// Merkle root of the log.
    pub root: [u8; 32],
}

/// Fork evidence as carried in a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFork {
    /// The first envelope.
    pub first: ByteBuf,
    /// The conflicting envelope.
    pub second: ByteBuf,
}

/// An export of a replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_VERSION`].
    pub version: u16,
    /// Canonical roster bytes.
    pub roster: ByteBuf,
    /// Every envelope, in acceptance order.
    pub envelopes: Vec<ByteBuf>,
    /// Claimed heads, by author.
    pub heads: Vec<BundleHead>,
    /// Fork evidence.
    pub forks: Vec<BundleFork>,
    /// Signed checkpoints of logs in the bundle (C2SP signed notes, with
    /// whatever cosignatures they carry), at most
    /// [`BUNDLE_CHECKPOINTS_MAX`].
    pub checkpoints: Vec<ByteBuf>,
    /// Every valid signed roster version the exporter holds (its chain and
    /// any version that lost to a lower hash), in number then hash order,
    /// at most [`crate::governance::chain::VERSIONS_MAX`].
    pub roster_versions: Vec<ByteBuf>,
    /// The exporter's register of reads, when it carries one.
    pub register: Option<BundleRegister>,
}

/// A node's register of reads as a bundle carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRegister {
    /// The member whose register it is (the exporter).
    pub member: AuthorityId,
    /// Every record's canonical bytes, in the register's order.
    pub records: Vec<ByteBuf>,
    /// The register's checkpoint signed by the member (a C2SP signed
    /// note), covering the records.
    pub checkpoint: ByteBuf,
}

/// A bundle of format 3: the same without the register.
#[derive(Serialize, Deserialize)]
struct BundleV3 {
    version: u16,
    roster: ByteBuf,
    envelopes: Vec<ByteBuf>,
    heads: Vec<BundleHead>,
    forks: Vec<BundleFork>,
    checkpoints: Vec<ByteBuf>,
    roster_versions: Vec<ByteBuf>,
}

/// A bundle of format 2: the same without roster versions.
#[derive(Serialize, Deserialize)]
struct BundleV2 {
    version: u16,
    roster: ByteBuf,
    envelopes: Vec<ByteBuf>,
    heads: Vec<BundleHead>,
    forks: Vec<BundleFork>,
    checkpoints: Vec<ByteBuf>,
}

/// Why a bundle could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// It does not start with [`BUNDLE_MAGIC`].
    #[error("not a credence bundle (it does not start with the bundle header)")]
    NotABundle,
    /// A format version this code does not read.
    #[error("bundle version {found} is not supported (this build reads version {BUNDLE_VERSION})")]
    Version {
        /// The version found.
        found: u16,
    },
    /// It does not decode.
    #[error("bundle: {0}")]
    Codec(#[from] CodecError),
    /// Its roster is invalid.
    #[error("bundle roster: {0}")]
    Roster(#[from] RosterError),
}

impl Bundle {
    /// Exports a replica's store.
    pub fn export<S: Store>(replica: &Replica<S>) -> Result<Bundle, ReplicaError<S::Error>> {
        let store = replica.store();
        let order = store.arrival_order().map_err(ReplicaError::Store)?;
        let mut envelopes = Vec::with_capacity(order.len());
        for id in order {
            let bytes = store
                .notice(&id)
                .map_err(ReplicaError::Store)?
                .ok_or_else(|| ReplicaError::Corrupt {
                    id,
                    reason: "listed in arrival order but not stored".into(),
                })?;
            envelopes.push(ByteBuf::from(bytes));
        }
        let heads = store
            .heads()
            .map_err(ReplicaError::Store)?
            .into_iter()
            .map(|head| BundleHead {
                author: head.author,
                seq: head.seq,
                id: head.id,
                root: head.root().0,
            })
            .collect();
        let forks = store
            .forks()
            .map_err(ReplicaError::Store)?
            .into_iter()
            .map(|fork| BundleFork {
                first: ByteBuf::from(fork.first),
                second: ByteBuf::from(fork.second),
            })
            .collect();
        Ok(Bundle {
            version: BUNDLE_VERSION,
            // The genesis roster: its hash is the federation id, whatever
            // version the chain is at.
            roster: ByteBuf::from(
                replica
                    .chain()
                    .genesis()
                    .federation
                    .canonical_bytes()
                    .to_vec(),
            ),
            envelopes,
            heads,
            forks,
            checkpoints: Vec::new(),
            roster_versions: replica
                .chain()
                .signed_versions()
                .iter()
                .filter_map(|signed| signed.to_bytes().ok())
                .map(ByteBuf::from)
                .collect(),
            register: None,
        })
    }

    /// The bundle with the exporter's register of reads.
    pub fn with_register(mut self, register: BundleRegister) -> Bundle {
        self.register = Some(register);
        self
    }

    /// The bundle with these signed checkpoints added.
    pub fn with_checkpoints(mut self, notes: &[credence_crypto::note::Note]) -> Bundle {
        self.checkpoints
            .extend(notes.iter().map(|n| ByteBuf::from(n.encode().into_bytes())));
        self
    }

    /// The bundle's file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let body = codec::encode_bounded::<_, BUNDLE_BYTES_MAX>("bundle", self)?;
        let mut bytes = Vec::with_capacity(BUNDLE_MAGIC.len() + body.len());
        bytes.extend_from_slice(BUNDLE_MAGIC);
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Reads a bundle file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let body = bytes
            .strip_prefix(BUNDLE_MAGIC.as_slice())
            .ok_or(BundleError::NotABundle)?;
        let version = body
            .first_chunk::<2>()
            .map(|v| u16::from_le_bytes(*v))
            .ok_or(BundleError::NotABundle)?;
        if version == BUNDLE_VERSION_2 {
            let old: BundleV2 = codec::decode_bounded::<_, BUNDLE_BYTES_MAX>("bundle", body)?;
            return Ok(Bundle {
                version: old.version,
                roster: old.roster,
                envelopes: old.envelopes,
                heads: old.heads,
                forks: old.forks,
                checkpoints: old.checkpoints,
                roster_versions: Vec::new(),
                register: None,
            });
        }
        if version == BUNDLE_VERSION_3 {
            let old: BundleV3 = codec::decode_bounded::<_, BUNDLE_BYTES_MAX>("bundle", body)?;
            return Ok(Bundle {
                version: old.version,
                roster: old.roster,
                envelopes: old.envelopes,
                heads: old.heads,
                forks: old.forks,
                checkpoints: old.checkpoints,
                roster_versions: old.roster_versions,
                register: None,
            });
        }
        let bundle: Bundle = codec::decode_bounded::<_, BUNDLE_BYTES_MAX>("bundle", body)?;
        if bundle.version != BUNDLE_VERSION {
            return Err(BundleError::Version {
                found: bundle.version,
            });
        }
        Ok(bundle)
    }

    /// The bundle's federation.
    pub fn federation(&self) -> Result<Federation, BundleError> {
        Ok(Federation::from_canonical_bytes(&self.roster)?)
    }
}

/// What the audit found about one author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorReport {
    /// The author.
    pub author: AuthorityId,
    /// Its name in the roster.
    pub name: String,
    /// Valid notices in its log.
    pub notices: u64,
    /// Merkle root recomputed from the log.
    pub root: Digest,
}

/// A signed checkpoint the audit checked against the log it replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFinding {
    /// Whose log.
    pub author: AuthorityId,
    /// The size it states.
    pub size: u64,
    /// Members whose cosignature verified.
    pub cosigners: usize,
    /// Cosigned by a quorum of the other members.
    pub witnessed: bool,
}

/// An equivocation found by the audit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForkFinding {
    /// The author who signed twice.
    pub author: AuthorityId,
    /// The seq.
    pub seq: u64,
    /// One notice.
    pub first: NoticeId,
    /// The other.
    pub second: NoticeId,
}

/// A broken rule found by the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The notice involved (for a head mismatch, the claimed head).
    pub notice: NoticeId,
    /// Its author and seq, when known.
    pub place: Option<(AuthorityId, u64)>,
    /// Stable rule code.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The result of an audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// The federation.
    pub federation: crate::model::FederationId,
    /// Its name.
    pub federation_name: String,
    /// Envelopes in the bundle.
    pub envelopes: usize,
    /// Per-author counts and roots.
    pub authors: Vec<AuthorReport>,
    /// Forks (equivocations).
    pub forks: Vec<ForkFinding>,
    /// Broken rules.
    pub violations: Vec<Violation>,
    /// Listings by status at the audit time.
    pub statuses: BTreeMap<&'static str, usize>,
    /// Signed checkpoints that verified and match the replayed logs.
    pub checkpoints: Vec<CheckpointFinding>,
    /// The roster chain replayed from version 0.
    pub roster: RosterFinding,
    /// The exporter's register of reads, when the bundle carries one.
    pub register: Option<RegisterFinding>,
}

/// What the audit found of the exporter's register of reads.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RegisterFinding {
    /// Whose register.
    pub member: AuthorityId,
    /// Records its signed checkpoint covers (and the audit checked).
    pub records: u64,
    /// Records by kind of read.
    pub kinds: BTreeMap<&'static str, u64>,
}

impl AuditReport {
    /// True when no rule is broken and no author equivocated.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.forks.is_empty()
    }
}

/// Audits a bundle. `at` is the time listing statuses are reported for;
/// `progress` is called with (envelopes replayed, total).
pub fn audit(
    bundle: &Bundle,
    at: Timestamp,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AuditReport, BundleError> {
    let federation = bundle.federation()?;
    let total = bundle.envelopes.len();
    let mut replica = Replica::new(federation.clone(), MemStore::new()).with_pending_max(total + 1);
    let mut violations = Vec::new();
    let mut forks = Vec::new();
    // The roster chain first, from version 0: every notice is checked
    // against the version it names.
    let roster = check_roster_versions(bundle, &mut replica, &mut violations);
    for (chunk_index, chunk) in bundle.envelopes.chunks(AUDIT_BATCH_NOTICES).enumerate() {
        let slices: Vec<&[u8]> = chunk.iter().map(|b| b.as_slice()).collect();
        let outcomes = replica.ingest_all(&slices).map_err(infallible)?;
        record(&outcomes, &mut violations, &mut forks, "duplicate");
        progress(
            (chunk_index * AUDIT_BATCH_NOTICES + chunk.len()).min(total),
            total,
        );
    }
    adopt_orphans(bundle, &mut replica, &mut violations, &mut forks)?;
    for (id, waiting) in replica.pending() {
        let message = match waiting {
            Waiting::Predecessor { author, seq } => format!(
                "never accepted: the log of {} has no notice at seq {seq}",
                federation.name_of(&author)
            ),
            Waiting::Reference(reference) => {
                format!("never accepted: it refers to {reference}, which is not in the bundle")
            }
        };
        violations.push(Violation {
            notice: id,
            place: None,
            rule: "unresolved",
            message,
        });
    }
    check_fork_evidence(bundle, &mut replica, &mut violations, &mut forks)?;
    check_heads(bundle, &replica, &mut violations)?;
    // Checkpoints and names are of the roster the chain reached: a member
    // added by a version has a log the genesis roster does not know.
    let current = replica.federation().clone();
    let checkpoints = check_checkpoints(bundle, &replica, &mut violations);
    forks.sort();
    forks.dedup();
    let authors = replica
        .store()
        .heads()
        .unwrap_or_else(|never| match never {})
        .into_iter()
        .map(|head| AuthorReport {
            author: head.author,
            name: current.name_of(&head.author),
            notices: head.seq,
            root: head.root(),
        })
        .collect();
    let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
    for id in replica
        .store()
        .listings()
        .unwrap_or_else(|never| match never {})
    {
        let name = match replica.listing_state(&id, at).map_err(corrupt)? {
            Some(state) => state.status.name(),
            // Not a listing any more: void under the roster chain.
            None => "void",
        };
        *statuses.entry(name).or_default() += 1;
    }
    let register = bundle
        .register
        .as_ref()
        .and_then(|register| check_register(register, replica.chain(), &mut violations));
    Ok(AuditReport {
        federation: federation.id(),
        federation_name: federation.roster().name.clone(),
        envelopes: total,
        authors,
        forks,
        violations,
        statuses,
        checkpoints,
        roster,
        register,
    })
}

/// Checks the exporter's register of reads: its checkpoint signed by the
/// member under one of the keys the chain ever gave it, every record it
/// covers decoding with its purpose and legal basis, and their Merkle
/// root the signed one. Each failure is a violation.
fn check_register(
    register: &BundleRegister,
    chain: &crate::governance::chain::Chain,
    violations: &mut Vec<Violation>,
) -> Option<RegisterFinding> {
    use crate::register::{Entry, check_records, verify_checkpoint};
    let mut violation = |rule: &'static str, message: String| {
        violations.push(Violation {
            notice: NoticeId::default(),
            place: None,
            rule,
            message,
        });
    };
    let keys: Vec<credence_crypto::PublicKey> = chain
        .current()
        .keys
        .get(&register.member)
        .map(|spans| spans.iter().map(|s| s.public).collect())
        .unwrap_or_default();
    let note = match credence_crypto::note::Note::parse(&register.checkpoint) {
        Ok(note) => note,
        Err(e) => {
            violation(
                "register_checkpoint",
                format!("the register's checkpoint: {e}"),
            );
            return None;
        }
    };
    let federation = chain.genesis().federation.id();
    let checkpoint = match verify_checkpoint(&note, &federation, &register.member, &keys) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            violation("register_checkpoint", e.to_string());
            return None;
        }
    };
    let records: Vec<Vec<u8>> = register.records.iter().map(|r| r.to_vec()).collect();
    if let Err(e) = check_records(&records, &checkpoint) {
        let rule = match &e {
            crate::register::RegisterError::Field(_) => "read_without_basis",
            _ => "register_tampered",
        };
        violation(rule, e.to_string());
        return None;
    }
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for bytes in records.iter().take(checkpoint.size as usize) {
        let kind = match Entry::decode(bytes) {
            Ok(Entry::Record(record)) => record.kind.name(),
            Ok(Entry::Pruned(_)) => "pruned",
            Err(_) => continue,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    Some(RegisterFinding {
        member: register.member,
        records: checkpoint.size,
        kinds,
    })
}

/// What the audit found of the roster chain.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RosterFinding {
    /// Roster versions in the bundle that verified.
    pub versions: usize,
    /// The chain's current version.
    pub current: u64,
    /// Equivocations: (number, the members who signed both versions).
    pub equivocations: Vec<(u64, Vec<AuthorityId>)>,
}

/// Replays the bundle's roster versions into the audit's chain from
/// version 0; one that does not verify (or never finds the version it
/// replaces) is a violation.
fn check_roster_versions(
    bundle: &Bundle,
    replica: &mut Replica<MemStore>,
    violations: &mut Vec<Violation>,
) -> RosterFinding {
    use crate::governance::SignedVersion;
    let mut finding = RosterFinding::default();
    if bundle.roster_versions.len() > crate::governance::chain::VERSIONS_MAX {
        violations.push(Violation {
            notice: NoticeId::default(),
            place: None,
            rule: "roster_version",
            message: format!(
                "{} roster versions; a bundle carries at most {}",
                bundle.roster_versions.len(),
                crate::governance::chain::VERSIONS_MAX
            ),
        });
        return finding;
    }
    let mut versions = Vec::new();
    for (index, bytes) in bundle.roster_versions.iter().enumerate() {
        match SignedVersion::from_bytes(bytes) {
            Ok(signed) => versions.push((index, signed)),
            Err(e) => violations.push(Violation {
                notice: NoticeId::default(),
                place: None,
                rule: "roster_version",
                message: format!("roster version {index}: {e}"),
            }),
        }
    }
    versions.sort_by_key(|(_, signed)| signed.version().map_or(u64::MAX, |v| v.number));
    for (index, signed) in versions {
        match replica.add_roster_version(signed) {
            Ok(crate::governance::chain::Added::Valid { .. }) => finding.versions += 1,
            Ok(_) => {}
            Err(e) => violations.push(Violation {
                notice: NoticeId::default(),
                place: None,
                rule: "roster_version",
                message: format!("roster version {index}: {e}"),
            }),
        }
    }
    if replica.chain().held_count() > 0 {
        violations.push(Violation {
            notice: NoticeId::default(),
            place: None,
            rule: "roster_version",
            message: format!(
                "{} roster versions replace a version the bundle does not hold",
                replica.chain().held_count()
            ),
        });
    }
    finding.current = replica.chain().current().number;
    finding.equivocations = replica
        .chain()
        .evidence()
        .iter()
        .map(|e| (e.number, e.signers.clone()))
        .collect();
    finding
}

/// Verifies each signed checkpoint and compares its root with the root of
/// the replayed log at its size: a checkpoint that does not verify, states
/// more notices than the bundle holds, or states another root is a
/// violation (its author signed a log other than the one published, or
/// the export left notices out).
fn check_checkpoints(
    bundle: &Bundle,
    replica: &Replica<MemStore>,
    violations: &mut Vec<Violation>,
) -> Vec<CheckpointFinding> {
    use crate::checkpoint::{self, proofs};
    let mut found = Vec::new();
    if bundle.checkpoints.len() > BUNDLE_CHECKPOINTS_MAX {
        violations.push(Violation {
            notice: NoticeId::default(),
            place: None,
            rule: "checkpoints",
            message: format!(
                "{} checkpoints; a bundle carries at most {BUNDLE_CHECKPOINTS_MAX}",
                bundle.checkpoints.len()
            ),
        });
        return found;
    }
    // Verify every checkpoint, then read each log once for the roots at
    // all the sizes its checkpoints state, then report in bundle order.
    let checked: Vec<Result<(checkpoint::Verified, &Federation), String>> = bundle
        .checkpoints
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            verify_in_chain(bytes, replica.chain()).map_err(|e| format!("checkpoint {index}: {e}"))
        })
        .collect();
    let mut sizes: BTreeMap<AuthorityId, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for (verified, _) in checked.iter().flatten() {
        sizes
            .entry(verified.author)
            .or_default()
            .insert(verified.checkpoint.size);
    }
    let mut roots: BTreeMap<AuthorityId, Result<BTreeMap<u64, Digest>, String>> = BTreeMap::new();
    for (author, sizes) in &sizes {
        let read = proofs::roots_at(replica.store(), author, sizes).map_err(|e| e.to_string());
        roots.insert(*author, read);
    }
    for result in checked {
        let (verified, federation) = match result {
            Ok(verified) => verified,
            Err(message) => {
                violations.push(Violation {
                    notice: NoticeId::default(),
                    place: None,
                    rule: "checkpoint",
                    message,
                });
                continue;
            }
        };
        let (author, size) = (verified.author, verified.checkpoint.size);
        let name = federation.name_of(&author);
        let root = match roots.get(&author) {
            Some(Ok(roots)) => roots.get(&size).copied().ok_or_else(|| {
                let held = replica
                    .store()
                    .head(&author)
                    .unwrap_or_else(|never| match never {})
                    .map_or(0, |h| h.seq);
                format!("the bundle holds {held} notices of that log")
            }),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the log was not read".into()),
        };
        let problem = match root {
            Ok(root) if root == verified.checkpoint.root => None,
            Ok(root) => Some((
                "checkpoint_root",
                format!(
                    "the checkpoint of {name}'s log at {size} notices states root {}, the notices in the bundle give {}",
                    verified.checkpoint.root, root
                ),
            )),
            Err(e) => Some((
                "checkpoint_size",
                format!("the checkpoint of {name}'s log at {size} notices: {e}"),
            )),
        };
        match problem {
            Some((rule, message)) => violations.push(Violation {
                notice: NoticeId::default(),
                place: Some((author, size)),
                rule,
                message,
            }),
            None => found.push(CheckpointFinding {
                author,
                size,
                cosigners: verified.cosigners.len(),
                witnessed: verified.witnessed(federation),
            }),
        }
    }
    found
}

/// Verifies a signed checkpoint under the federation of the newest version
/// of the chosen chain that had its log's member: the current one, or for
/// a member a version removed, the last version before that (its log, up
/// to its cutoff, is still part of the record, and so are the checkpoints
/// it and its witnesses signed while it was a member). The federation it
/// verified under comes back with it (for names and the quorum).
fn verify_in_chain<'a>(
    bytes: &[u8],
    chain: &'a crate::governance::chain::Chain,
) -> Result<(crate::checkpoint::Verified, &'a Federation), crate::checkpoint::CheckpointError> {
    use crate::checkpoint::{self, CheckpointError};
    let current = &chain.current().federation;
    match checkpoint::verify(bytes, current) {
        Err(CheckpointError::ForeignOrigin(origin)) => {
            // The current version is the chosen chain's last.
            for version in chain.chosen().iter().rev().skip(1) {
                match checkpoint::verify(bytes, &version.federation) {
                    Ok(verified) => return Ok((verified, &version.federation)),
                    Err(CheckpointError::ForeignOrigin(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            Err(CheckpointError::ForeignOrigin(origin))
        }
        verified => verified.map(|verified| (verified, current)),
    }
}

/// Offers again the envelopes pending notices wait for: orphans (notices a
/// retired key signed past its cutoff, cut from their log) that notices
/// of other logs refer to were refused when they came, before anything
/// referred to them. An orphan kept is no violation.
fn adopt_orphans(
    bundle: &Bundle,
    replica: &mut Replica<MemStore>,
    violations: &mut Vec<Violation>,
    forks: &mut Vec<ForkFinding>,
) -> Result<(), BundleError> {
    let envelopes: Vec<&[u8]> = bundle.envelopes.iter().map(|b| b.as_slice()).collect();
    let outcomes = replica.offer_wanted(&envelopes).map_err(infallible)?;
    let adopted: BTreeSet<NoticeId> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Orphaned { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    violations.retain(|v| !adopted.contains(&v.notice));
    let rest: Vec<Outcome> = outcomes
        .into_iter()
        .filter(|o| !matches!(o, Outcome::Rejected { id, .. } if adopted.contains(id)))
        .collect();
    record(&rest, violations, forks, "duplicate");
    Ok(())
}

fn record(
    outcomes: &[Outcome],
    violations: &mut Vec<Violation>,
    forks: &mut Vec<ForkFinding>,
    duplicate_rule: &'static str,
) {
    for outcome in outcomes {
        match outcome {
            Outcome::Rejected { id, author, error } => violations.push(Violation {
                notice: *id,
                place: *author,
                rule: error.code(),
                message: error.to_string(),
            }),
            Outcome::Forked {
                id,
                author,
                seq,
                existing,
            } => forks.push(ForkFinding {
                author: *author,
                seq: *seq,
                first: *existing,
                second: *id,
            }),
            Outcome::Duplicate { id } => violations.push(Violation {
                notice: *id,
                place: None,
                rule: duplicate_rule,
                message: "the same envelope appears twice".into(),
            }),
            Outcome::Dropped { id } => violations.push(Violation {
                notice: *id,
                place: None,
                rule: "dropped",
                message: "the audit's pending buffer overflowed".into(),
            }),
            Outcome::Accepted { .. } | Outcome::Pending { .. } | Outcome::Orphaned { .. } => {}
        }
    }
}

/// Each piece of fork evidence must show two validly signed notices at one
/// place of one log: replaying both through the replica must find a fork.
fn check_fork_evidence(
    bundle: &Bundle,
    replica: &mut Replica<MemStore>,
    violations: &mut Vec<Violation>,
    forks: &mut Vec<ForkFinding>,
) -> Result<(), BundleError> {
    for evidence in &bundle.forks {
        let before = forks.len();
        let mut outcomes = Vec::new();
        for bytes in [&evidence.first, &evidence.second] {
            outcomes.extend(replica.ingest(bytes).map_err(infallible)?);
        }
        let mut rejected = Vec::new();
        record(&outcomes, &mut rejected, forks, "fork_evidence");
        // Duplicates are expected here: one side of a fork is in the log.
        rejected.retain(|v| v.rule != "fork_evidence");
        let shows_fork =
            forks.len() > before || outcomes.iter().any(|o| matches!(o, Outcome::Forked { .. }));
        if !shows_fork || !rejected.is_empty() {
            violations.push(Violation {
                notice: NoticeId::from(leaf_hash(&evidence.second)),
                place: None,
                rule: "fork_evidence",
                message:
                    "claimed fork evidence does not show two validly signed notices at one seq"
                        .into(),
            });
        }
    }
    Ok(())
}

fn check_heads(
    bundle: &Bundle,
    replica: &Replica<MemStore>,
    violations: &mut Vec<Violation>,
) -> Result<(), BundleError> {
    let computed: BTreeMap<AuthorityId, (u64, NoticeId, [u8; 32])> = replica
        .store()
        .heads()
        .unwrap_or_else(|never| match never {})
        .into_iter()
        .map(|h| (h.author, (h.seq, h.id, h.root().0)))
        .collect();
    let mut claimed_authors = Vec::new();
    for claimed in &bundle.heads {
        claimed_authors.push(claimed.author);
        let name = replica.federation().name_of(&claimed.author);
        let message = match computed.get(&claimed.author) {
            None => format!(
                "the bundle claims a log of {name} up to seq {}, but none of it verifies",
                claimed.seq
            ),
            Some(&(seq, id, root))
                if (seq, id, root) != (claimed.seq, claimed.id, claimed.root) =>
            {
                format!(
                    "the bundle claims the log of {name} ends at seq {} ({}) with root {}, the audit computed seq {seq} ({id}) with root {}",
                    claimed.seq,
                    claimed.id,
                    Digest(claimed.root),
                    Digest(root)
                )
            }
            Some(_) => continue,
        };
        violations.push(Violation {
            notice: claimed.id,
            place: Some((claimed.author, claimed.seq)),
            rule: "head",
            message,
        });
    }
    for (author, (seq, id, _)) in &computed {
        if !claimed_authors.contains(author) {
            violations.push(Violation {
                notice: *id,
                place: Some((*author, *seq)),
                rule: "head",
                message: "the bundle claims no head for this log".into(),
            });
        }
    }
    Ok(())
}

fn infallible(error: ReplicaError<std::convert::Infallible>) -> BundleError {
    corrupt(error)
}

fn corrupt(error: ReplicaError<std::convert::Infallible>) -> BundleError {
    BundleError::Codec(CodecError::Malformed {
        what: "bundle replay",
        reason: error.to_string(),
    })
}

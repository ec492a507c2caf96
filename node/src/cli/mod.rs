//! The `credence` command line: its grammar (this file), the dispatch of
//! each command ([`commands`]), the one path every operator command takes
//! to a node whether or not it runs ([`operator`]), federation set-up
//! ([`federation`]) and the offline audit ([`audit`]).

mod account;
pub(crate) mod audit;
mod check;
mod commands;
mod federation;
mod import;
mod operator;
mod register;
mod report;
mod webhook;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use credence_crypto::Digest;
use credence_protocol::model::{
    AuthorityId, Classification, EvidenceDigest, LinkRole, LinkedPerson, ListingChange, NoticeId,
    Severity, SubjectKind,
};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bundles this large or larger get a progress bar.
const PROGRESS_NOTICES_MIN: usize = 10_000;
/// Most bytes of an evidence file hashed (larger documents are hashed by
/// their own tools and passed with --evidence).
const EVIDENCE_FILE_BYTES_MAX: u64 = 1 << 30;

/// credence: signed credit listings, replicated between authorities.
#[derive(Debug, Parser)]
#[command(name = "credence", version, about, max_term_width = 100)]
pub struct Cli {
    /// Print the answer as JSON (the API's types) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data directory with a new authority key and configuration.
    Init {
        #[command(flatten)]
        data: DataDir,
        /// The operator's name for this node.
        #[arg(long, default_value = "credence node")]
        name: String,
    },
    /// Make or join a federation, and govern it.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Manage the node's API accounts: each official or department system
    /// calls the API with its own credential and role.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Push the change feed to a department system: webhooks per account,
    /// signed (HMAC-SHA256), retried with backoff, dead letters kept and
    /// sent again on demand.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Prepare this member's next key (a planned rotation, or a revocation
    /// after a compromise): it is written beside the current key as
    /// `authority.key.next`; put its public key in a change's `[[rotate]]`.
    /// Once a roster version makes it current, the node takes it at its
    /// next start (a running node stops to be restarted under it).
    RotateKey {
        #[command(flatten)]
        data: DataDir,
    },
    /// Issue listings and their corrections, repairs and withdrawals.
    #[command(subcommand)]
    List(ListCommand),
    /// File objections and rule on them.
    #[command(subcommand)]
    Objection(ObjectionCommand),
    /// Report what this authority did with a joint measure.
    Feedback(FeedbackArgs),
    /// Show a subject's listings, or one listing with its history.
    Show(ShowArgs),
    /// Show this authority's measures to apply or lift.
    Tasks {
        #[command(flatten)]
        data: DataDir,
        /// Time to compute the tasks for (default: now).
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
    },
    /// Find listings by a name, in part: their subject's or a linked
    /// person's (Chinese or Latin; case, spaces, punctuation and
    /// full-width forms do not matter). Registered as a read of each
    /// person or organisation found.
    Search {
        #[command(flatten)]
        data: DataDir,
        /// The name, or part of it (2 to 64 characters).
        #[arg(long)]
        name: String,
        /// How many listings at most (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        stated: StatedArgs,
    },
    /// Write an audit bundle of everything this node holds.
    Export {
        #[command(flatten)]
        data: DataDir,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        stated: StatedArgs,
    },
    /// A subject's report: every listing that names it (as its subject or
    /// as a linked person) with its history, and every consultation of
    /// its records on this node, signed by the node (the request is
    /// registered); or, with `verify FILE`, check a report's signature and
    /// contents offline.
    Report(ReportArgs),
    /// Write the public extract: every listing the publicity feed shows
    /// now (and public corrections), natural persons masked, as CSV or
    /// JSON Lines.
    Extract {
        #[command(flatten)]
        data: DataDir,
        /// `csv` (a header row, then one row a listing) or `jsonl`.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExtractFormatArg,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The node's register of reads: every lookup, listing shown, query
    /// sent or answered and export, with who, why and under what law.
    #[command(subcommand)]
    Register(RegisterCommand),
    /// Load an existing list from a CSV file: one listing per row, signed
    /// by this authority through the running node (or its store when it is
    /// not running). Every row is checked first; a file with a bad row
    /// stores nothing (each bad row is named with its line and reason)
    /// unless --skip-bad is given. Stopped anywhere, the same command goes
    /// on where it stopped: no row is ever signed twice. The columns are in
    /// the README.
    ImportCsv {
        #[command(flatten)]
        data: DataDir,
        /// The CSV file: a header line naming the columns, then one
        /// listing per line.
        file: PathBuf,
        /// Check every row and report; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import the good rows even when some are bad (they are named).
        #[arg(long)]
        skip_bad: bool,
    },
    /// Check the node's views (listing states, tasks, the public feed,
    /// the counts the metrics report, the change feed's transitions)
    /// against a fold of every listing, with the node stopped; `--repair`
    /// derives them again from the notices first. Exit code 1 when they
    /// differ.
    Check {
        #[command(flatten)]
        data: DataDir,
        /// Clear the views and derive them again before checking.
        #[arg(long)]
        repair: bool,
    },
    /// Ingest another node's bundle (offline transfer), validating every notice.
    Import {
        #[command(flatten)]
        data: DataDir,
        /// The bundle file.
        bundle: PathBuf,
    },
    /// Verify a bundle offline: signatures, logs, Merkle roots, every rule.
    Audit {
        /// The bundle file.
        bundle: PathBuf,
        /// The genesis roster the bundle must belong to. Without it the
        /// audit trusts the roster inside the bundle: compare the federation
        /// id it prints with the one you know.
        #[arg(long)]
        roster: Option<PathBuf>,
        /// Time to report listing statuses for (default: now).
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
    },
    /// Run an offline three-authority scenario end to end (no network) and audit it.
    Demo {
        /// Keep the nodes' data here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the node: libp2p gossip and sync, cross-region queries, the HTTP API.
    ///
    /// Exits with 0 when asked to stop (Ctrl-C, SIGTERM), 2 on a failure,
    /// and 3 when it stopped to be started again (a roster version rotated
    /// its key: the next start runs under the new key).
    Run {
        /// The run configuration (TOML; see ARCHITECTURE.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Start N nodes on loopback, run a scripted scenario across them and keep them running.
    Devnet {
        /// How many nodes (3 to 16).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(3..=16))]
        nodes: u16,
        /// Stop after the scenario instead of running until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// Keep the nodes' data here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Ask the running node, or the whole federation, about a subject (signed, registered).
    Query(QueryArgs),
    /// Query receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Show the running node's peers, heads, lag, pending notices and forks.
    Status {
        #[command(flatten)]
        data: DataDir,
    },
    /// Show the running node's connected peers.
    Peers {
        #[command(flatten)]
        data: DataDir,
    },
    /// Disaster recovery: name the head of this authority's own log when
    /// the store and the own-log mark were both lost (node stopped). The
    /// node then issues only once its store holds that notice again.
    Recover {
        #[command(flatten)]
        data: DataDir,
        /// Seq of the newest notice this authority signed.
        #[arg(long)]
        seq: u64,
        /// Its id (hex), as a peer's status or an audit bundle shows it.
        #[arg(long)]
        id: Option<NoticeId>,
    },
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    data: DataDir,
    /// The subject's identifier.
    #[arg(long)]
    subject: String,
    /// Which identifier the subject has.
    #[arg(long, value_enum, default_value = "legal-person")]
    subject_kind: SubjectKindArg,
    /// Why you ask (recorded in every register).
    #[arg(long)]
    purpose: String,
    /// The legal basis of the query (recorded in every register).
    #[arg(long)]
    legal_basis: String,
    /// Ask only this node.
    #[arg(long)]
    local: bool,
    /// Which page of the subject's listings (from 0, 64 a page, newest
    /// first).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..1024))]
    page: u32,
    /// Save the signed request and answers here, for `credence receipt
    /// verify`.
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Verify a query receipt offline against the genesis roster: exit 0
    /// valid, 1 invalid (the reason is printed), 2 unreadable.
    Verify {
        /// The receipt file (`credence query --receipt FILE`).
        file: PathBuf,
        /// The genesis roster of the federation.
        #[arg(long)]
        roster: PathBuf,
        /// A signed roster version (a submitted proposal file), when the
        /// answers hold notices of members a version added or whose key
        /// it rotated; repeatable.
        #[arg(long = "version", value_name = "FILE")]
        versions: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum RegisterCommand {
    /// Show records of the register, oldest first.
    Show {
        #[command(flatten)]
        data: DataDir,
        /// The first record's index.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// How many records at most (1 to 1,000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Verify the register: every record decodes and states its purpose
    /// and legal basis, and their Merkle root is the one the node signs.
    Verify {
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Register a webhook for an account: the changes the account is told
    /// of are posted to the URL; its signing secret is printed once.
    Add {
        #[command(flatten)]
        data: DataDir,
        /// Its name: lower-case letters, digits and '-'.
        #[arg(long)]
        name: String,
        /// The account whose clearance decides which changes it gets.
        #[arg(long)]
        account: String,
        /// Where changes are posted (http:// or https://).
        #[arg(long)]
        url: String,
        /// Attempts of one delivery before it becomes a dead letter.
        #[arg(long, default_value_t = crate::webhooks::ATTEMPTS_DEFAULT)]
        attempts: u32,
        /// The first retry's delay (each next one doubles, up to a minute),
        /// such as 500ms or 2s.
        #[arg(long, default_value = "500ms", value_parser = parse_duration_arg)]
        retry_first: u64,
    },
    /// List the webhooks (without their secrets), with their cursors and
    /// dead letters.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove a webhook.
    Remove {
        #[command(flatten)]
        data: DataDir,
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// List a webhook's dead letters: deliveries that failed every attempt.
    Dead {
        #[command(flatten)]
        data: DataDir,
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// Send a dead letter again (the running node takes it within a
    /// second; a stopped one when it starts).
    Redeliver {
        #[command(flatten)]
        data: DataDir,
        /// The webhook's name.
        #[arg(long)]
        name: String,
        /// The dead letter (FIRST-LAST, as `dead` lists it).
        #[arg(long)]
        id: String,
    },
}

/// A duration argument in milliseconds (`500ms`, `2s`, ...).
fn parse_duration_arg(text: &str) -> Result<u64, String> {
    credence_protocol::time::parse_duration_ms(text).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Add an account; its credential is printed once and kept nowhere
    /// (the node keeps its hash).
    Add {
        #[command(flatten)]
        data: DataDir,
        /// Its name: lower-case letters, digits and '-'.
        #[arg(long)]
        name: String,
        /// Its role: reader (look up and query), operator (also issue and
        /// govern), auditor (also the registers and exports), admin
        /// (everything, accounts included).
        #[arg(long)]
        role: String,
    },
    /// List the accounts, active and revoked.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke an account: its credential is refused from now on.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// The account.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
struct DataDir {
    /// The node's data directory.
    #[arg(long, env = "CREDENCE_DATA", value_name = "DIR")]
    data: PathBuf,
}

#[derive(Debug, Subcommand)]
enum FederationCommand {
    /// Write a genesis roster from a catalog and a members file.
    Genesis {
        /// Categories, measures and the objection window (TOML).
        #[arg(long)]
        catalog: PathBuf,
        /// The members (TOML).
        #[arg(long)]
        members: PathBuf,
        /// A member's public key, as HANDLE=HEX or HANDLE=@DATA_DIR.
        #[arg(long = "key", value_name = "HANDLE=KEY")]
        keys: Vec<String>,
        /// The roster file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Install a genesis roster in this node's data directory (and, for a
    /// member added later, the roster versions up to the one that added
    /// it).
    Join {
        #[command(flatten)]
        data: DataDir,
        /// The genesis roster file.
        #[arg(long)]
        roster: PathBuf,
        /// A signed roster version (a submitted proposal file); repeatable.
        #[arg(long = "version", value_name = "FILE")]
        versions: Vec<PathBuf>,
    },
    /// Write a proposal for the next roster version from a change
    /// description (TOML: add, remove, update, rotate, catalog,
    /// threshold), signed by this member; a running node also circulates
    /// it.
    Propose {
        #[command(flatten)]
        data: DataDir,
        /// The change description.
        #[arg(long)]
        change: PathBuf,
        /// The proposal file to write.
        #[arg(long)]
        out: PathBuf,
        /// Sign it even though this member signed another proposal for the
        /// same version (refused otherwise: if both reach the threshold,
        /// the lower hash is taken and the members who signed both are
        /// named as equivocating).
        #[arg(long)]
        competing: bool,
    },
    /// Add this member's signature to a proposal: a file (written back,
    /// or to --out), or one the running node holds (--hash).
    Sign {
        #[command(flatten)]
        data: DataDir,
        /// Sign it even though this member signed another proposal for the
        /// same version (see `propose --competing`).
        #[arg(long)]
        competing: bool,
        /// The proposal file.
        #[arg(long, conflicts_with = "hash", required_unless_present = "hash")]
        proposal: Option<PathBuf>,
        /// The hash of a proposal the running node holds.
        #[arg(long)]
        hash: Option<String>,
        /// Where to write the signed proposal (default: over --proposal).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Publish a proposal that reached its threshold as the next roster
    /// version (a file, or one the running node holds).
    Submit {
        #[command(flatten)]
        data: DataDir,
        /// The proposal file.
        #[arg(long, conflicts_with = "hash", required_unless_present = "hash")]
        proposal: Option<PathBuf>,
        /// The hash of a proposal the running node holds.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Show the roster chain, the current version, equivocations and the
    /// proposals held (and a proposal file's standing, with --proposal).
    Show {
        #[command(flatten)]
        data: DataDir,
        /// A proposal file to check against the current version.
        #[arg(long)]
        proposal: Option<PathBuf>,
    },
}

/// A subject kind on the command line: `legal-person`, ... (the API's
/// snake_case names, `legal_person`, ..., are taken too).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SubjectKindArg {
    #[value(alias = "legal_person")]
    LegalPerson,
    #[value(alias = "other_organisation")]
    OtherOrganisation,
    #[value(alias = "natural_person")]
    NaturalPerson,
}

impl From<SubjectKindArg> for SubjectKind {
    fn from(kind: SubjectKindArg) -> SubjectKind {
        match kind {
            SubjectKindArg::LegalPerson => SubjectKind::LegalPerson,
            SubjectKindArg::OtherOrganisation => SubjectKind::OtherOrganisation,
            SubjectKindArg::NaturalPerson => SubjectKind::NaturalPerson,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListArg {
    Red,
    Black,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SeverityArg {
    Minor,
    General,
    Serious,
}

impl From<SeverityArg> for Severity {
    fn from(severity: SeverityArg) -> Severity {
        match severity {
            SeverityArg::Minor => Severity::Minor,
            SeverityArg::General => Severity::General,
            SeverityArg::Serious => Severity::Serious,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ListCommand {
    /// Put a subject on the blacklist or the red list.
    Add(Box<AddArgs>),
    /// Correct a listing this authority issued.
    Amend(AmendArgs),
    /// End a listing early by credit repair.
    Repair {
        #[command(flatten)]
        data: DataDir,
        /// The listing id.
        #[arg(long)]
        listing: NoticeId,
        /// Why the subject's credit is repaired.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        evidence: EvidenceArgs,
    },
    /// Withdraw a listing this authority issued.
    Withdraw {
        #[command(flatten)]
        data: DataDir,
        /// The listing id.
        #[arg(long)]
        listing: NoticeId,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Publicly restore the subject's reputation.
        #[arg(long)]
        restore_reputation: bool,
    },
}

#[derive(Debug, Args)]
struct EvidenceArgs {
    /// Digest of an evidence document (64 hex characters); repeatable.
    #[arg(long = "evidence", value_name = "HEX")]
    digests: Vec<Digest>,
    /// An evidence document to hash with BLAKE3; repeatable.
    #[arg(long = "evidence-file", value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl EvidenceArgs {
    fn collect(&self) -> Result<Vec<EvidenceDigest>> {
        let mut out: Vec<EvidenceDigest> = self.digests.iter().map(|d| d.0).collect();
        for path in &self.files {
            let file = std::fs::File::open(path)
                .with_context(|| format!("evidence file {}", path.display()))?;
            let length = file.metadata()?.len();
            if length > EVIDENCE_FILE_BYTES_MAX {
                bail!(
                    "evidence file {} has {length} bytes, more than the {EVIDENCE_FILE_BYTES_MAX} this command hashes; pass its digest with --evidence",
                    path.display()
                );
            }
            let mut hasher = blake3::Hasher::new();
            std::io::copy(&mut file.take(EVIDENCE_FILE_BYTES_MAX), &mut hasher)?;
            out.push(*hasher.finalize().as_bytes());
        }
        Ok(out)
    }
}

#[derive(Debug, Args)]
struct AddArgs {
    #[command(flatten)]
    data: DataDir,
    /// The subject's USCC or resident identity number.
    #[arg(long)]
    subject: String,
    /// Which identifier the subject has.
    #[arg(long, value_enum, default_value = "legal-person")]
    subject_kind: SubjectKindArg,
    /// The subject's registered name.
    #[arg(long)]
    name: String,
    /// Which list.
    #[arg(long, value_enum)]
    list: ListArg,
    /// Category code from the catalog.
    #[arg(long)]
    category: String,
    /// How serious.
    #[arg(long, value_enum)]
    severity: SeverityArg,
    /// What the subject did.
    #[arg(long)]
    reason: String,
    /// The legal basis (citation).
    #[arg(long)]
    legal_basis: String,
    /// The decision document number.
    #[arg(long)]
    document: String,
    /// A joint measure code from the catalog; repeatable. The measures the
    /// catalog makes mandatory for the category and severity are added.
    #[arg(long = "measure")]
    measures: Vec<String>,
    /// Effective date (YYYY-MM-DD; default: now).
    #[arg(long, value_parser = parse_time)]
    effective: Option<Timestamp>,
    /// End of publication (default: the catalog's publication period for
    /// the category and severity, else one year after effective).
    #[arg(long, value_parser = parse_time)]
    publish_until: Option<Timestamp>,
    /// End of sharing (default: the catalog's sharing period, else three
    /// years after effective).
    #[arg(long, value_parser = parse_time)]
    share_until: Option<Timestamp>,
    /// Earliest credit repair (default: the catalog's repair period, else
    /// 90 days after effective).
    #[arg(long, value_parser = parse_time)]
    repair_from: Option<Timestamp>,
    /// Who may see it: `public` (published, and shared among members),
    /// `restricted` (members only), `named` (the issuer and the members
    /// given with --reader), `auditors` (auditors and this member's own
    /// operators).
    #[arg(long, value_enum, default_value = "public")]
    level: LevelArg,
    /// Share among members only; never publish (as --level restricted).
    #[arg(long, conflicts_with = "level")]
    restricted: bool,
    /// A member a named listing is shared with, by roster name or key
    /// (64 hex digits); repeatable.
    #[arg(long = "reader")]
    readers: Vec<String>,
    /// A natural person linked to a listed organisation, as
    /// `ROLE:ID:NAME` (ROLE `legal-representative` or
    /// `responsible-person`, ID a resident identity number); repeatable.
    #[arg(long = "linked", value_parser = parse_linked)]
    linked: Vec<LinkedPerson>,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Accept an identifier whose check character does not match (a known
    /// pilot code). Recorded in the signed listing.
    #[arg(long)]
    override_checksum: bool,
}

#[derive(Debug, Args)]
struct ChangeArgs {
    /// New registered name of the subject.
    #[arg(long)]
    name: Option<String>,
    /// New severity.
    #[arg(long, value_enum)]
    severity: Option<SeverityArg>,
    /// New reason of the listing.
    #[arg(long = "new-reason")]
    new_reason: Option<String>,
    /// New legal basis.
    #[arg(long)]
    legal_basis: Option<String>,
    /// New decision document number.
    #[arg(long)]
    document: Option<String>,
    /// Replace the measures (repeatable).
    #[arg(long = "measure")]
    measures: Vec<String>,
    /// Remove every measure.
    #[arg(long, conflicts_with = "measures")]
    no_measures: bool,
    /// New effective date.
    #[arg(long, value_parser = parse_time)]
    effective: Option<Timestamp>,
    /// New end of publication.
    #[arg(long, value_parser = parse_time)]
    publish_until: Option<Timestamp>,
    /// New end of sharing.
    #[arg(long, value_parser = parse_time)]
    share_until: Option<Timestamp>,
    /// New earliest repair date.
    #[arg(long, value_parser = parse_time)]
    repair_from: Option<Timestamp>,
    /// Make it restricted.
    #[arg(long, conflicts_with_all = ["public", "level"])]
    restricted: bool,
    /// Make it public.
    #[arg(long, conflicts_with = "level")]
    public: bool,
    /// New distribution level (a named listing needs its readers too).
    #[arg(long, value_enum)]
    level: Option<LevelArg>,
    /// Replace the named readers (repeatable; roster name or key).
    #[arg(long = "reader")]
    readers: Vec<String>,
    /// Remove every named reader.
    #[arg(long, conflicts_with = "readers")]
    no_readers: bool,
    /// Replace the linked persons (repeatable; `ROLE:ID:NAME`).
    #[arg(long = "linked", value_parser = parse_linked)]
    linked: Vec<LinkedPerson>,
    /// Remove every linked person.
    #[arg(long, conflicts_with = "linked")]
    no_linked: bool,
}

impl ChangeArgs {
    fn changes(&self, federation: &Federation) -> anyhow::Result<Vec<ListingChange>> {
        let mut changes = Vec::new();
        let mut push = |change: Option<ListingChange>| changes.extend(change);
        push(self.name.clone().map(ListingChange::SubjectName));
        push(self.severity.map(|s| ListingChange::Severity(s.into())));
        push(self.new_reason.clone().map(ListingChange::Reason));
        push(self.legal_basis.clone().map(ListingChange::LegalBasis));
        push(self.document.clone().map(ListingChange::DocumentNumber));
        push(
            (!self.measures.is_empty() || self.no_measures)
                .then(|| ListingChange::Measures(self.measures.clone())),
        );
        push(self.effective.map(ListingChange::EffectiveAt));
        push(self.publish_until.map(ListingChange::PublishUntil));
        push(self.share_until.map(ListingChange::ShareUntil));
        push(self.repair_from.map(ListingChange::RepairFrom));
        push(
            self.restricted
                .then_some(ListingChange::Classification(Classification::Restricted)),
        );
        push(
            self.public
                .then_some(ListingChange::Classification(Classification::Public)),
        );
        push(self.level.map(|l| ListingChange::Classification(l.into())));
        if !self.readers.is_empty() || self.no_readers {
            changes.push(ListingChange::Readers(resolve_readers(
                federation,
                &self.readers,
            )?));
        }
        if !self.linked.is_empty() || self.no_linked {
            changes.push(ListingChange::Linked(self.linked.clone()));
        }
        Ok(changes)
    }
}

/// The public extract's format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExtractFormatArg {
    Csv,
    Jsonl,
}

/// A listing's distribution level.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LevelArg {
    Public,
    Restricted,
    Named,
    Auditors,
}

impl From<LevelArg> for Classification {
    fn from(level: LevelArg) -> Classification {
        match level {
            LevelArg::Public => Classification::Public,
            LevelArg::Restricted => Classification::Restricted,
            LevelArg::Named => Classification::Named,
            LevelArg::Auditors => Classification::Auditors,
        }
    }
}

/// Members named by roster name or key, in the ascending order a named
/// listing gives them.
fn resolve_readers(
    federation: &Federation,
    readers: &[String],
) -> anyhow::Result<Vec<AuthorityId>> {
    let mut ids = Vec::with_capacity(readers.len());
    for reader in readers {
        let member = federation
            .roster()
            .members
            .iter()
            .find(|m| m.name == *reader || m.key.to_string() == reader.to_ascii_lowercase());
        let Some(member) = member else {
            let names: Vec<&str> = federation
                .roster()
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            anyhow::bail!(
                "--reader {reader:?} is not a member; the roster's members: {}",
                names.join(", ")
            );
        };
        ids.push(member.key);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The dates of a listing its issuer may leave to the catalog.
pub(crate) struct Windows {
    pub(crate) publish_until: Option<Timestamp>,
    pub(crate) share_until: Option<Timestamp>,
    pub(crate) repair_from: Option<Timestamp>,
}

/// A listing as its issuer wrote it, completed as the catalog says: the
/// publication, sharing and repair dates not given take the category's
/// periods at the severity (or the built-in defaults), and the measures
/// the catalog makes mandatory are added. Returns the measures added.
pub(crate) fn complete_listing(
    federation: &Federation,
    mut listing: credence_protocol::model::Listing,
    windows: Windows,
) -> (credence_protocol::model::Listing, Vec<String>) {
    let (publish_ms, share_ms, repair_ms) =
        federation.default_periods(&listing.category, listing.severity);
    let effective_at = listing.effective_at;
    listing.publish_until = windows
        .publish_until
        .unwrap_or(effective_at.plus_ms(publish_ms));
    listing.share_until = windows
        .share_until
        .unwrap_or(effective_at.plus_ms(share_ms));
    listing.repair_from = windows
        .repair_from
        .unwrap_or(effective_at.plus_ms(repair_ms));
    let added: Vec<String> = federation
        .rule(&listing.category, listing.severity)
        .map(|rule| rule.mandatory.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|code| {
            federation
                .measure(code)
                .is_some_and(|m| m.list == listing.list)
                && !listing.measures.contains(code)
        })
        .collect();
    listing.measures.extend(added.iter().cloned());
    (listing, added)
}

/// A linked person given as `ROLE:ID:NAME`.
fn parse_linked(text: &str) -> Result<LinkedPerson, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(role), Some(id), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "{text:?}: expected ROLE:ID:NAME, e.g. legal-representative:11010519491231002X:Zhang San"
        ));
    };
    let role = match role {
        "legal-representative" | "legal_representative" => LinkRole::LegalRepresentative,
        "responsible-person" | "responsible_person" => LinkRole::ResponsiblePerson,
        other => {
            return Err(format!(
                "{other:?}: the role is legal-representative or responsible-person"
            ));
        }
    };
    credence_protocol::identifiers::check_resident_id(id).map_err(|e| format!("{id:?}: {e}"))?;
    if name.trim().is_empty() {
        return Err(format!("{text:?}: the person's name is empty"));
    }
    Ok(LinkedPerson {
        role,
        id: id.to_string(),
        name: name.to_string(),
    })
}

#[derive(Debug, Args)]
struct AmendArgs {
    #[command(flatten)]
    data: DataDir,
    /// The listing id.
    #[arg(long)]
    listing: NoticeId,
    #[command(flatten)]
    changes: ChangeArgs,
}

#[derive(Debug, Subcommand)]
// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
enum ObjectionCommand {
    /// File an objection on the subject's behalf: enforcement stops until a ruling.
    File {
        #[command(flatten)]
        data: DataDir,
        /// The listing id.
        #[arg(long)]
        listing: NoticeId,
        /// The subject's grounds.
        #[arg(long)]
        grounds: String,
        /// Deadline for the issuer (default: now plus the federation's minimum window and a minute).
        #[arg(long, value_parser = parse_time)]
        respond_by: Option<Timestamp>,
    },
    /// Rule on an objection to a listing this authority issued.
    Rule(RuleArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutcomeArg {
    /// The objection fails; enforcement resumes.
    Reject,
    /// The objection holds; the listing is withdrawn.
    UpholdWithdraw,
    /// The objection holds; the listing is corrected (give the changes).
    UpholdCorrect,
}

#[derive(Debug, Args)]
struct RuleArgs {
    #[command(flatten)]
    data: DataDir,
    /// The objection id.
    #[arg(long)]
    objection: NoticeId,
    /// The outcome.
    #[arg(long, value_enum)]
    outcome: OutcomeArg,
    /// The reasons of the ruling.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    changes: ChangeArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ActionArg {
    Applied,
    Lifted,
    Declined,
}

#[derive(Debug, Args)]
struct FeedbackArgs {
    #[command(flatten)]
    data: DataDir,
    /// The listing id.
    #[arg(long)]
    listing: NoticeId,
    /// The measure code.
    #[arg(long)]
    measure: String,
    /// What was done.
    #[arg(long, value_enum)]
    action: ActionArg,
    /// Why a recommended measure was declined.
    #[arg(long, required_if_eq("action", "declined"))]
    reason: Option<String>,
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    data: DataDir,
    /// A subject's identifier: show all its listings.
    #[arg(long, conflicts_with = "listing", required_unless_present = "listing")]
    subject: Option<String>,
    /// Which identifier the subject has.
    #[arg(long, value_enum, default_value = "legal-person")]
    subject_kind: SubjectKindArg,
    /// A listing id: show it with its full history.
    #[arg(long)]
    listing: Option<NoticeId>,
    /// Time to show the status at (default: now).
    #[arg(long, value_parser = parse_time)]
    at: Option<Timestamp>,
    #[command(flatten)]
    stated: StatedArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ReportArgs {
    #[command(subcommand)]
    verify: Option<ReportVerify>,
    /// The node's data directory.
    #[arg(long, env = "CREDENCE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// The subject's identifier.
    #[arg(long, required = true)]
    subject: Option<String>,
    /// Which identifier the subject has.
    #[arg(long, value_enum, default_value = "legal-person")]
    subject_kind: SubjectKindArg,
    /// The purpose of the read (registered).
    #[arg(long, required = true)]
    purpose: Option<String>,
    /// The law that allows it (registered).
    #[arg(long, required = true)]
    legal_basis: Option<String>,
    /// Also write the report as a printable HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the report's JSON (what `verify` checks) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ReportVerify {
    /// Check a report's JSON: the node's signature under the member's key
    /// in the roster chain of the node of --data, its register
    /// checkpoint, and that every listing, notice and consultation shown
    /// is one the signature covers.
    Verify {
        #[command(flatten)]
        data: DataDir,
        /// The report (JSON, as `--out` or the API wrote it).
        file: PathBuf,
    },
}

/// Why a subject's records are read: required, and registered with the
/// read in the node's register of reads.
#[derive(Debug, Args)]
struct StatedArgs {
    /// The purpose of the read.
    #[arg(long)]
    purpose: String,
    /// The law that allows it.
    #[arg(long)]
    legal_basis: String,
}

impl StatedArgs {
    fn checked(self) -> Result<crate::daemon::Stated> {
        crate::daemon::Stated::new(Some(self.purpose), Some(self.legal_basis))
            .map_err(anyhow::Error::msg)
    }
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|e| e.to_string())
}

impl Cli {
    /// The configuration file of `credence run`, if that is the command.
    pub fn run_config(&self) -> Option<&Path> {
        match &self.command {
            Command::Run { config } => Some(config),
            _ => None,
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    commands::run(cli.command, cli.json)
}

/// The words an error ends a command with: its message, then each cause
/// the message does not already say (many errors name their cause in
/// their own message, and printing the chain again would say it twice).
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    // clap's own consistency checks of every subcommand and argument.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    // A cause the message already says is not said again; one it does not
    // say is added, in order.
    #[test]
    fn an_error_says_each_cause_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let io = crate::node::NodeError::Io {
            path: "/tmp/run.toml".into(),
            source: missing,
        };
        assert_eq!(
            super::describe(&anyhow::Error::new(io)),
            "/tmp/run.toml: no such file"
        );
        let wrapped = anyhow::anyhow!("no such file").context("reading the roster");
        assert_eq!(
            super::describe(&wrapped),
            "reading the roster: no such file"
        );
    }
}

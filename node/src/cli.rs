//! The `credence` command line.

use crate::api::QueryBody;
use crate::client::{Client, ClientError};
use crate::daemon::QueryScope;
use crate::node::{self, Node, read_bounded};
use crate::render;
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use credence_crypto::Digest;
use credence_protocol::bundle::{self, BUNDLE_BYTES_MAX, Bundle};
use credence_protocol::model::{
    Classification, EvidenceDigest, FeedbackAction, ListKind, Listing, ListingChange, NoticeId,
    NoticeKind, Remedy, RulingOutcome, Severity, Subject, SubjectKey, SubjectKind,
};
use credence_protocol::roster::{
    CatalogDocument, MembersDocument, ROSTER_BYTES_MAX, RosterDocument,
};
use credence_protocol::time::{DAY_MS, Timestamp};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Added to the minimum objection window for the default deadline.
const RESPOND_BY_MARGIN_MS: u64 = 60_000;
/// Bundles this large or larger get a progress bar.
const PROGRESS_NOTICES_MIN: usize = 10_000;
/// Most bytes of an evidence file hashed (larger documents are hashed by
/// their own tools and passed with --evidence).
const EVIDENCE_FILE_BYTES_MAX: u64 = 1 << 30;

/// credence: signed credit listings, replicated between authorities.
#[derive(Debug, Parser)]
#[command(name = "credence", version, about, max_term_width = 100)]
pub struct Cli {
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
    /// Make or join a federation.
    #[command(subcommand)]
    Federation(FederationCommand),
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
    /// Write an audit bundle of everything this node holds.
    Export {
        #[command(flatten)]
        data: DataDir,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
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
    /// Show the running node's peers, heads, lag, pending notices and forks.
    Status {
        #[command(flatten)]
        data: DataDir,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
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
    /// Print the API's JSON (with the signed answers).
    #[arg(long)]
    json: bool,
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
    /// Install a genesis roster in this node's data directory.
    Join {
        #[command(flatten)]
        data: DataDir,
        /// The roster file.
        #[arg(long)]
        roster: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SubjectKindArg {
    LegalPerson,
    OtherOrganisation,
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
    /// A joint measure code from the catalog; repeatable.
    #[arg(long = "measure")]
    measures: Vec<String>,
    /// Effective date (YYYY-MM-DD; default: now).
    #[arg(long, value_parser = parse_time)]
    effective: Option<Timestamp>,
    /// End of publication (default: one year after effective).
    #[arg(long, value_parser = parse_time)]
    publish_until: Option<Timestamp>,
    /// End of sharing (default: three years after effective).
    #[arg(long, value_parser = parse_time)]
    share_until: Option<Timestamp>,
    /// Earliest credit repair (default: 90 days after effective).
    #[arg(long, value_parser = parse_time)]
    repair_from: Option<Timestamp>,
    /// Share among members only; never publish.
    #[arg(long)]
    restricted: bool,
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
    #[arg(long, conflicts_with = "public")]
    restricted: bool,
    /// Make it public.
    #[arg(long)]
    public: bool,
}

impl ChangeArgs {
    fn changes(&self) -> Vec<ListingChange> {
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
        changes
    }
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
    match cli.command {
        Command::Init { data, name } => {
            let key = node::init(&data.data, &name)?;
            println!("initialised {} for {name}", data.data.display());
            println!(
                "authority key (public): {}",
                hex::encode(key.public_bytes())
            );
            println!(
                "next: put this key in the members file, make the genesis roster, then `credence federation join`"
            );
        }
        Command::Federation(command) => federation(command)?,
        Command::List(command) => list(command)?,
        Command::Objection(command) => objection(command)?,
        Command::Feedback(args) => {
            let action = match args.action {
                ActionArg::Applied => FeedbackAction::Applied,
                ActionArg::Lifted => FeedbackAction::Lifted,
                ActionArg::Declined => FeedbackAction::Declined(args.reason.unwrap_or_default()),
            };
            issue(
                &args.data.data,
                NoticeKind::Feedback {
                    listing: args.listing,
                    measure: args.measure,
                    action,
                },
                "feedback",
            )?;
        }
        Command::Show(args) => show(args)?,
        Command::Tasks { data, at } => {
            if let Some(client) = Client::for_data_dir(&data.data) {
                let at = at.map(|t| format!("?at={}", t.0)).unwrap_or_default();
                match client.get(&format!("/v1/tasks{at}")) {
                    Ok(answer) => {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                        return Ok(0);
                    }
                    Err(ClientError::Unreachable { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            let node = Node::open(&data.data)?;
            let tasks = node
                .replica()
                .tasks(&node.author(), at.unwrap_or_else(node::now))?;
            print!("{}", render::tasks(&tasks));
        }
        Command::Export { data, out } => {
            if let Some(client) = Client::for_data_dir(&data.data) {
                match client.get_bytes("/v1/export") {
                    Ok(bytes) => {
                        std::fs::write(&out, &bytes)
                            .with_context(|| format!("writing {}", out.display()))?;
                        println!(
                            "exported {} bytes from the running node to {}",
                            bytes.len(),
                            out.display()
                        );
                        return Ok(0);
                    }
                    Err(ClientError::Unreachable { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            let node = Node::open(&data.data)?;
            let bundle = node.export()?;
            let bytes = bundle.to_bytes()?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "exported {} notices ({} bytes) to {}",
                bundle.envelopes.len(),
                bytes.len(),
                out.display()
            );
        }
        Command::Import { data, bundle } => {
            let mut node = Node::open(&data.data)?;
            let bundle = read_bundle(&bundle)?;
            if bundle.roster.as_slice() != node.federation().canonical_bytes() {
                bail!(
                    "the bundle is from another federation than this node's; nothing was imported"
                );
            }
            let summary = node.import(&bundle)?;
            println!(
                "imported: {} accepted, {} already held, {} pending, {} refused, {} forks",
                summary.accepted,
                summary.duplicates,
                summary.pending,
                summary.rejected.len(),
                summary.forks
            );
            for refusal in &summary.rejected {
                println!("  refused {refusal}");
            }
        }
        Command::Audit { bundle, roster, at } => return audit(&bundle, roster.as_deref(), at),
        Command::Demo { dir } => crate::demo::run(dir.as_deref())?,
        Command::Run { config } => crate::service::run(&config)?,
        Command::Devnet { nodes, exit, dir } => {
            crate::devnet::run(usize::from(nodes), exit, dir.as_deref())?
        }
        Command::Query(args) => query(args)?,
        Command::Status { data, json } => {
            let status = running(&data.data)?.get("/v1/status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render::status(&status));
            }
        }
        Command::Recover { data, seq, id } => {
            // A running node holds its store: opening it says so.
            let mark = node::recover(&data.data, seq, id)?;
            println!(
                "own-log mark written: seq {} id {}",
                mark.seq,
                hex::encode(mark.id.0)
            );
            println!(
                "the node issues once its store holds that notice (from its peers), and continues at seq {}",
                mark.seq + 1
            );
        }
        Command::Peers { data } => {
            let peers = running(&data.data)?.get("/v1/peers")?;
            for peer in peers["peers"].as_array().into_iter().flatten() {
                println!(
                    "{}  {}",
                    peer["peer_id"].as_str().unwrap_or("?"),
                    peer["name"].as_str().unwrap_or("?")
                );
            }
        }
    }
    Ok(0)
}

/// The client of the node running on `dir`, or an error saying to start it.
fn running(dir: &Path) -> Result<Client> {
    let Some(client) = Client::for_data_dir(dir) else {
        bail!(
            "the node of {} is not running; start it with `credence run --config FILE`",
            dir.display()
        );
    };
    Ok(client)
}

fn query(args: QueryArgs) -> Result<()> {
    let client = running(&args.data.data)?;
    let kind = match args.subject_kind {
        SubjectKindArg::LegalPerson => "legal-person",
        SubjectKindArg::OtherOrganisation => "other-organisation",
        SubjectKindArg::NaturalPerson => "natural-person",
    };
    let body = serde_json::to_value(QueryBody {
        subject_kind: Some(kind.into()),
        subject_id: args.subject.clone(),
        purpose: args.purpose,
        legal_basis: args.legal_basis,
        scope: Some(if args.local {
            QueryScope::Local
        } else {
            QueryScope::Federation
        }),
        deadline_ms: None,
    })?;
    let answer = client.post("/v1/query", &body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render::query(&args.subject, &answer));
    }
    Ok(())
}

fn federation(command: FederationCommand) -> Result<()> {
    match command {
        FederationCommand::Genesis {
            catalog,
            members,
            keys,
            out,
        } => {
            let catalog: CatalogDocument = parse_toml(&catalog)?;
            let mut members: MembersDocument = parse_toml(&members)?;
            for assignment in &keys {
                let (handle, value) = assignment.split_once('=').with_context(|| {
                    format!("--key {assignment:?}: expected HANDLE=HEX or HANDLE=@DATA_DIR")
                })?;
                let key = match value.strip_prefix('@') {
                    Some(dir) => hex::encode(
                        crate::keyfile::read(&Path::new(dir).join(node::KEY_FILE))?.public_bytes(),
                    ),
                    None => value.to_string(),
                };
                let member = members
                    .members
                    .iter_mut()
                    .find(|m| m.handle == handle)
                    .with_context(|| format!("--key {handle}=...: no member has handle {handle:?} in the members file"))?;
                member.key = key;
            }
            if let Some(missing) = members.members.iter().find(|m| m.key.is_empty()) {
                bail!(
                    "member {:?} has no key: give it with --key {}=HEX or --key {}=@DATA_DIR",
                    missing.name,
                    missing.handle,
                    missing.handle
                );
            }
            let roster = RosterDocument::from_parts(catalog, members).to_roster()?;
            let federation = credence_protocol::roster::Federation::new(roster)?;
            std::fs::write(&out, federation.roster().to_document().to_toml())
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote genesis roster of {} ({} members) to {}",
                federation.roster().name,
                federation.roster().members.len(),
                out.display()
            );
            println!("federation id: {}", federation.id());
        }
        FederationCommand::Join { data, roster } => {
            let federation = node::join(&data.data, &roster)?;
            println!(
                "joined federation {} ({})",
                federation.roster().name,
                federation.id()
            );
        }
    }
    Ok(())
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_bounded(path, ROSTER_BYTES_MAX as u64, "TOML document")?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

fn issue(dir: &Path, kind: NoticeKind, what: &str) -> Result<NoticeId> {
    if let Some(client) = Client::for_data_dir(dir) {
        match client.post("/v1/notices", &serde_json::to_value(&kind)?) {
            Ok(answer) => {
                let id: NoticeId = answer["id"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .context("the node answered without an id")?;
                println!(
                    "{what} {id} (seq {}), stored, flushed and published by the running node",
                    answer["seq"]
                );
                return Ok(id);
            }
            // A node killed without cleaning up leaves its address file:
            // nothing answers there, and the store is free to open.
            Err(ClientError::Unreachable { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let mut node = Node::open(dir)?;
    let issued = node.issue(kind, node::now())?;
    println!(
        "{what} {} (seq {}), stored and flushed",
        issued.id, issued.seq
    );
    Ok(issued.id)
}

fn list(command: ListCommand) -> Result<()> {
    match command {
        ListCommand::Add(args) => {
            let effective_at = args.effective.unwrap_or_else(node::now);
            let listing = Listing {
                subject: Subject {
                    kind: args.subject_kind.into(),
                    id: args.subject.clone(),
                    name: args.name.clone(),
                },
                list: match args.list {
                    ListArg::Red => ListKind::Red,
                    ListArg::Black => ListKind::Black,
                },
                category: args.category.clone(),
                severity: args.severity.into(),
                reason: args.reason.clone(),
                legal_basis: args.legal_basis.clone(),
                document_number: args.document.clone(),
                measures: args.measures.clone(),
                effective_at,
                publish_until: args
                    .publish_until
                    .unwrap_or(effective_at.plus_ms(365 * DAY_MS)),
                share_until: args
                    .share_until
                    .unwrap_or(effective_at.plus_ms(3 * 365 * DAY_MS)),
                repair_from: args
                    .repair_from
                    .unwrap_or(effective_at.plus_ms(90 * DAY_MS)),
                classification: if args.restricted {
                    Classification::Restricted
                } else {
                    Classification::Public
                },
                evidence: args.evidence.collect()?,
                checksum_override: args.override_checksum,
            };
            issue(&args.data.data, NoticeKind::List(listing), "listing")?;
        }
        ListCommand::Amend(args) => {
            let changes = args.changes.changes();
            if changes.is_empty() {
                bail!("nothing to amend: give at least one field to change (see --help)");
            }
            issue(
                &args.data.data,
                NoticeKind::Amend {
                    listing: args.listing,
                    changes,
                },
                "amendment",
            )?;
        }
        ListCommand::Repair {
            data,
            listing,
            reason,
            evidence,
        } => {
            let evidence = evidence.collect()?;
            issue(
                &data.data,
                NoticeKind::Repair {
                    listing,
                    reason,
                    evidence,
                },
                "repair",
            )?;
        }
        ListCommand::Withdraw {
            data,
            listing,
            reason,
            restore_reputation,
        } => {
            issue(
                &data.data,
                NoticeKind::Withdraw {
                    listing,
                    reason,
                    restore_reputation,
                },
                "withdrawal",
            )?;
        }
    }
    Ok(())
}

fn objection(command: ObjectionCommand) -> Result<()> {
    match command {
        ObjectionCommand::File {
            data,
            listing,
            grounds,
            respond_by,
        } => {
            let federation = node::read_roster(&data.data.join(node::ROSTER_FILE))?;
            let window = federation.roster().objection_window_ms;
            // The notice is signed a moment after this (by the running node,
            // perhaps): a minute's margin keeps the default deadline at or
            // past the minimum window, in the subject's favour.
            let respond_by =
                respond_by.unwrap_or(node::now().plus_ms(window + RESPOND_BY_MARGIN_MS));
            issue(
                &data.data,
                NoticeKind::Object {
                    listing,
                    grounds,
                    respond_by,
                },
                "objection (the issuer must rule by the deadline)",
            )?;
        }
        ObjectionCommand::Rule(args) => {
            let changes = args.changes.changes();
            let outcome = match args.outcome {
                OutcomeArg::Reject => RulingOutcome::Rejected,
                OutcomeArg::UpholdWithdraw => RulingOutcome::Upheld(Remedy::Withdraw),
                OutcomeArg::UpholdCorrect if changes.is_empty() => {
                    bail!("--outcome uphold-correct needs the corrected fields (see --help)")
                }
                OutcomeArg::UpholdCorrect => {
                    RulingOutcome::Upheld(Remedy::Correct(changes.clone()))
                }
            };
            if !changes.is_empty() && !matches!(args.outcome, OutcomeArg::UpholdCorrect) {
                bail!("field changes only go with --outcome uphold-correct");
            }
            issue(
                &args.data.data,
                NoticeKind::Rule {
                    objection: args.objection,
                    outcome,
                    reason: args.reason,
                },
                "ruling",
            )?;
        }
    }
    Ok(())
}

fn show(args: ShowArgs) -> Result<()> {
    if let Some(client) = Client::for_data_dir(&args.data.data) {
        let at = args.at.map(|t| format!("?at={}", t.0)).unwrap_or_default();
        let path = match (&args.listing, &args.subject) {
            (Some(id), _) => format!("/v1/listings/{id}{at}"),
            (None, subject) => format!("/v1/subjects/{}{at}", subject.clone().unwrap_or_default()),
        };
        match client.get(&path) {
            Ok(answer) => {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            Err(ClientError::Unreachable { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let node = Node::open(&args.data.data)?;
    let at = args.at.unwrap_or_else(node::now);
    if let Some(id) = args.listing {
        let Some(state) = node.replica().listing_state(&id, at)? else {
            bail!("listing {id} is not in this node's records");
        };
        print!("{}", render::listing(node.federation(), &state, true));
        return Ok(());
    }
    let subject = args.subject.unwrap_or_default();
    let kind: SubjectKind = args.subject_kind.into();
    let Some(key) = SubjectKey::new(kind, &subject) else {
        bail!("{subject:?} is not an 18-character identifier");
    };
    if let Err(error) = kind.check_identifier(&subject) {
        eprintln!("warning: {error}");
    }
    let states = node.replica().subject_listings(&key, at)?;
    if states.is_empty() {
        println!("no listings for {subject}");
    }
    let enforceable = states
        .iter()
        .filter(|s| s.enforceable && s.listing.list == ListKind::Black)
        .count();
    if enforceable > 0 {
        println!(
            "{subject}: {enforceable} enforceable blacklist listing(s): joint punishment applies"
        );
    }
    for state in &states {
        print!("{}", render::listing(node.federation(), state, false));
    }
    Ok(())
}

fn read_bundle(path: &Path) -> Result<Bundle> {
    let bytes = read_bounded(path, BUNDLE_BYTES_MAX as u64, "credence bundle")?;
    Bundle::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

fn audit(path: &Path, roster: Option<&Path>, at: Option<Timestamp>) -> Result<i32> {
    let bundle = read_bundle(path)?;
    if let Some(roster) = roster {
        let expected = node::read_roster(roster)?;
        let found = bundle.federation()?;
        if found.id() != expected.id() {
            println!(
                "the bundle belongs to federation {} ({}), not to {} ({}) of {}\nAUDIT FAILED",
                found.roster().name,
                found.id(),
                expected.roster().name,
                expected.id(),
                roster.display()
            );
            return Ok(1);
        }
    }
    let total = bundle.envelopes.len();
    let bar = if total >= PROGRESS_NOTICES_MIN {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing {pos}/{len} notices [{bar:40}] {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = bundle::audit(&bundle, at.unwrap_or_else(node::now), &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    print!("{}", render::audit(&report));
    Ok(if report.passed() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    // clap's own consistency checks of every subcommand and argument.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

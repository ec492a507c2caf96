//! A node's data directory: its configuration, key file, roster and store.

use crate::keyfile::{self, KeyFileIoError};
use crate::store::{SledStore, StoreError};
use credence_crypto::AuthorityKey;
use credence_protocol::bundle::Bundle;
use credence_protocol::engine::{
    Engine, EngineConfig, GovernanceAnswer, GovernanceCommand, Input, IssuedNotice, Mark, Output,
    Refusal,
};
use credence_protocol::fold::ListingState;
use credence_protocol::governance::SignedVersion;
use credence_protocol::model::{AuthorityId, NoticeId, NoticeKind};
use credence_protocol::replica::{IssueError, Outcome, Replica, ReplicaError};
use credence_protocol::roster::{Federation, ROSTER_BYTES_MAX, RosterError};
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The identity file of a data directory (the node's name), named apart
/// from the run configuration (`node.toml` by convention, outside it).
pub const IDENTITY_FILE: &str = "identity.toml";
/// What the identity file was called before: renamed when found.
const IDENTITY_FILE_BEFORE: &str = "node.toml";
/// The key file of a data directory.
pub const KEY_FILE: &str = "authority.key";
/// The roster of a data directory.
pub const ROSTER_FILE: &str = "roster.toml";
/// The store directory of a data directory.
pub const STORE_DIR: &str = "store";
/// Largest configuration file read.
const CONFIG_BYTES_MAX: u64 = 64 * 1024;
/// Envelopes ingested per call when importing a bundle (the replica
/// pipelines signature checks within each call).
const IMPORT_BATCH_NOTICES: usize = 16 * 1024;

/// A node's identity file (`identity.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The operator's name for this node.
    pub name: String,
}

/// The exit status of `credence run` when the node stopped to be started
/// again ([`NodeError::Restart`]); 2 is a failure, 0 a requested stop.
pub const EXIT_RESTART: i32 = 3;

/// Why a node could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No node was initialised here.
    #[error(
        "{dir} is not a credence data directory (no {IDENTITY_FILE}); run `credence init --data {dir}` first"
    )]
    NotInitialised {
        /// The directory.
        dir: String,
    },
    /// A node already exists here.
    #[error("{dir} already holds a credence node; choose another --data directory")]
    AlreadyInitialised {
        /// The directory.
        dir: String,
    },
    /// The node has no roster yet.
    #[error(
        "{dir} has no federation roster yet; run `credence federation join --data {dir} --roster FILE`"
    )]
    NoRoster {
        /// The directory.
        dir: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A file is larger than such a file can be.
    #[error("{path} has more than {bytes_max} bytes; it is not a {what}")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        bytes_max: u64,
        /// What it should have been.
        what: &'static str,
    },
    /// The node stopped on purpose, to be started again (a roster version
    /// rotated its key, and a libp2p identity cannot change while it
    /// runs). Not a failure: `credence run` exits with
    /// [`EXIT_RESTART`] so that a service manager starts it again.
    #[error("{reason}")]
    Restart {
        /// Why, and what starting it again does.
        reason: String,
    },
    /// The configuration does not parse.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyFileIoError),
    /// The roster is invalid.
    #[error("roster {path}: {source}")]
    Roster {
        /// The file.
        path: String,
        /// What is wrong.
        source: RosterError,
    },
    /// This node's key is not a member of the roster.
    #[error(
        "this node's key {key} is not a member of federation {federation:?}; add it to the members file and make the genesis again"
    )]
    NotMember {
        /// The node's key.
        key: AuthorityId,
        /// The federation name.
        federation: String,
    },
    /// A governance act was refused.
    #[error("{0}")]
    Governance(String),
    /// The node already belongs to another federation.
    #[error(
        "this node already belongs to federation {existing}; joining {new} needs a fresh --data directory"
    )]
    OtherFederation {
        /// Current federation id.
        existing: String,
        /// The roster offered.
        new: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The materialized views could not be kept.
    #[error("{0}")]
    Views(String),
    /// The replica failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError<StoreError>),
    /// A notice could not be issued.
    #[error(transparent)]
    Issue(#[from] IssueError<StoreError>),
    /// An idempotency key came back with another request.
    #[error(
        "idempotency key {0:?} was used with another request: a key stands for one request (use a new key for a new request)"
    )]
    IdempotencyConflict(String),
    /// The engine refused the request.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Reads at most `bytes_max` bytes of `path`, refusing larger files.
pub fn read_bounded(path: &Path, bytes_max: u64, what: &'static str) -> Result<Vec<u8>, NodeError> {
    let io = |source| NodeError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(io)?
        .take(bytes_max + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > bytes_max {
        return Err(NodeError::TooLarge {
            path: path.display().to_string(),
            bytes_max,
            what,
        });
    }
    Ok(bytes)
}

fn read_text(path: &Path, bytes_max: u64, what: &'static str) -> Result<String, NodeError> {
    let bytes = read_bounded(path, bytes_max, what)?;
    String::from_utf8(bytes).map_err(|_| NodeError::Config {
        path: path.display().to_string(),
        reason: "not UTF-8 text".into(),
    })
}

/// Parses a roster file.
pub fn read_roster(path: &Path) -> Result<Federation, NodeError> {
    let text = read_text(path, ROSTER_BYTES_MAX as u64, "roster")?;
    Federation::from_toml(&text).map_err(|source| NodeError::Roster {
        path: path.display().to_string(),
        source,
    })
}

/// The current time.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

/// The idempotency key a request to issue came with: the account's key
/// and a hash of the request (route and body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueKey {
    /// The account that asked.
    pub account: String,
    /// Its key (1 to 255 visible ASCII characters).
    pub key: String,
    /// BLAKE3 of the route and the body.
    pub request: [u8; 32],
}

/// What a request to issue gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueOutcome {
    /// The notice.
    pub id: NoticeId,
    /// Its seq in this authority's log.
    pub seq: u64,
    /// An earlier request with the same idempotency key signed it; this
    /// one signed nothing.
    pub replayed: bool,
}

/// A fresh authority key from the operating system's RNG.
pub fn generate_key() -> Result<AuthorityKey, NodeError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| NodeError::Io {
        path: "the operating system's random source".into(),
        source: std::io::Error::other(error.to_string()),
    })?;
    Ok(AuthorityKey::from_secret_bytes(secret))
}

/// The file of a member's next key, made by `credence rotate-key`.
pub const NEXT_KEY_FILE: &str = "authority.key.next";

/// Writes a new key beside the current one, as the member's next key.
/// Refuses when one is already prepared (it may be named in a proposal).
pub fn prepare_next_key(dir: &Path) -> Result<AuthorityKey, NodeError> {
    read_config(dir)?;
    let path = dir.join(NEXT_KEY_FILE);
    if path.exists() {
        return Err(NodeError::Config {
            path: path.display().to_string(),
            reason: "a next key is already prepared; it may be named in a proposal: remove it by hand to make another".into(),
        });
    }
    let key = generate_key()?;
    keyfile::write_new(&path, &key)?;
    Ok(key)
}

/// At start: when a roster version retired this node's key and made the
/// prepared next key current, the next key becomes the key (the old one is
/// kept as `authority.key.retired-<its short id>`). Returns the key to run
/// with.
fn take_next_key(
    dir: &Path,
    key: AuthorityKey,
    current: &credence_protocol::governance::Version,
) -> Result<AuthorityKey, NodeError> {
    let key_id = AuthorityId(key.public_bytes());
    if current.member_of_key(&key_id).is_some() {
        return Ok(key);
    }
    let next_path = dir.join(NEXT_KEY_FILE);
    if !next_path.exists() {
        return Ok(key);
    }
    let next = keyfile::read(&next_path)?;
    let next_id = AuthorityId(next.public_bytes());
    let owner = current.key_owners.get(&key_id);
    if owner.is_none() || current.member_of_key(&next_id) != owner.copied() {
        return Ok(key);
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| NodeError::Io { path, source }
    };
    let retired = dir.join(format!("{KEY_FILE}.retired-{}", key_id.short()));
    fs::rename(dir.join(KEY_FILE), &retired).map_err(io(&retired))?;
    fs::rename(&next_path, dir.join(KEY_FILE)).map_err(io(&next_path))?;
    Ok(next)
}

/// Creates a data directory with a new key. Returns the key.
pub fn init(dir: &Path, name: &str) -> Result<AuthorityKey, NodeError> {
    let shown = dir.display().to_string();
    if dir.join(IDENTITY_FILE).exists()
        || dir.join(IDENTITY_FILE_BEFORE).exists()
        || dir.join(KEY_FILE).exists()
    {
        return Err(NodeError::AlreadyInitialised { dir: shown });
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| NodeError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let key = generate_key()?;
    keyfile::write_new(&dir.join(KEY_FILE), &key)?;
    // A new authority has signed nothing: its mark says so, and it issues
    // at once. A data directory without a mark waits for its peers.
    crate::mark::write(dir, &AuthorityId(key.public_bytes()), &Mark::zero())?;
    let config = NodeConfig {
        name: name.to_string(),
    };
    let text = toml::to_string(&config).map_err(|e| NodeError::Config {
        path: IDENTITY_FILE.into(),
        reason: e.to_string(),
    })?;
    fs::write(dir.join(IDENTITY_FILE), text).map_err(io(&dir.join(IDENTITY_FILE)))?;
    crate::service::ensure_token(dir)?;
    Ok(key)
}

fn read_config(dir: &Path) -> Result<NodeConfig, NodeError> {
    let path = dir.join(IDENTITY_FILE);
    let before = dir.join(IDENTITY_FILE_BEFORE);
    if !path.exists() && before.exists() {
        // A data directory made before the rename: its identity file
        // takes the new name once.
        fs::rename(&before, &path).map_err(|source| NodeError::Io {
            path: before.display().to_string(),
            source,
        })?;
    }
    if !path.exists() {
        return Err(NodeError::NotInitialised {
            dir: dir.display().to_string(),
        });
    }
    let text = read_text(&path, CONFIG_BYTES_MAX, "node configuration")?;
    toml::from_str(&text).map_err(|e| NodeError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Installs the federation's genesis roster in a data directory, with the
/// roster versions that followed it (a member added after genesis joins
/// with the version that added it), after checking that the node's key is
/// a member of the last of them. The versions are kept in the store; the
/// node learns the later ones from its peers.
pub fn join(
    dir: &Path,
    roster: &Path,
    versions: &[SignedVersion],
) -> Result<Federation, NodeError> {
    read_config(dir)?;
    let key = keyfile::read(&dir.join(KEY_FILE))?;
    let federation = read_roster(roster)?;
    if versions.is_empty() {
        check_member(&federation, &key)?;
    } else {
        let mut chain = credence_protocol::governance::chain::Chain::new(federation.clone());
        let mut sorted = versions.to_vec();
        sorted.sort_by_key(|signed| signed.version().map_or(u64::MAX, |v| v.number));
        for signed in sorted {
            chain
                .add(signed)
                .map_err(|e| NodeError::Governance(e.to_string()))?;
        }
        let key_id = AuthorityId(key.public_bytes());
        if chain.current().member_of_key(&key_id).is_none() {
            return Err(NodeError::NotMember {
                key: key_id,
                federation: federation.roster().name.clone(),
            });
        }
        let store = SledStore::open(&dir.join(STORE_DIR), federation.id())?;
        let mut replica = Replica::new(federation.clone(), store);
        for signed in chain.signed_versions() {
            replica
                .add_roster_version((*signed).clone())
                .map_err(|e| NodeError::Governance(e.to_string()))?;
        }
        replica.store_mut().flush()?;
    }
    let target = dir.join(ROSTER_FILE);
    if target.exists() {
        let existing = read_roster(&target)?;
        if existing.id() != federation.id() {
            return Err(NodeError::OtherFederation {
                existing: existing.id().to_string(),
                new: federation.id().to_string(),
            });
        }
    }
    let text = federation.roster().to_document().to_toml();
    fs::write(&target, text).map_err(|source| NodeError::Io {
        path: target.display().to_string(),
        source,
    })?;
    Ok(federation)
}

fn check_member(federation: &Federation, key: &AuthorityKey) -> Result<(), NodeError> {
    let author = AuthorityId(key.public_bytes());
    if federation.member(&author).is_none() {
        return Err(NodeError::NotMember {
            key: author,
            federation: federation.roster().name.clone(),
        });
    }
    Ok(())
}

/// An operator's act on the roster chain, as the API and the command line
/// ask it.
#[derive(Clone, Debug)]
pub enum GovernRequest {
    /// Build the next version from a change, sign it with this node's key
    /// and circulate it (`competing`: see [`GovernRequest::Sign`]).
    Change(
        Box<credence_protocol::governance::proposal::ChangeDocument>,
        bool,
    ),
    /// Take a proposal (from a file), keep the signatures that verify and
    /// circulate it.
    Proposal(credence_protocol::governance::SignedVersion),
    /// Add this node's signature to a proposal it holds and circulate it;
    /// beside another proposal this member signed only when `competing`
    /// ([`GovernanceCommand::Sign`]).
    Sign(credence_protocol::model::RosterHash, bool),
    /// Take a proposal held that reached its threshold as the next
    /// version and publish it.
    Submit(credence_protocol::model::RosterHash),
    /// Take a complete signed version and publish it.
    Version(credence_protocol::governance::SignedVersion),
}

/// The current roster of the chain of `genesis` and `versions` (each
/// verified from version 0): what offline checks of answers and receipts
/// need when members were added or keys rotated since genesis.
pub fn federation_with(
    genesis: Federation,
    versions: Vec<SignedVersion>,
) -> Result<Federation, NodeError> {
    let mut chain = credence_protocol::governance::chain::Chain::new(genesis);
    let mut versions = versions;
    versions.sort_by_key(|signed| signed.version().map_or(u64::MAX, |v| v.number));
    for signed in versions {
        chain
            .add(signed)
            .map_err(|e| NodeError::Governance(e.to_string()))?;
    }
    Ok(chain.current().federation.clone())
}

/// The engine commands that carry out an operator's governance request
/// on a replica's chain.
pub fn governance_commands<S: credence_protocol::store::Store>(
    replica: &Replica<S>,
    request: GovernRequest,
) -> Result<Vec<GovernanceCommand>, String> {
    Ok(match request {
        GovernRequest::Change(change, competing) => {
            let current = replica.chain().current();
            let version = credence_protocol::governance::proposal::propose(current, &change)
                .map_err(|e| format!("change: {e}"))?;
            let signed = credence_protocol::governance::SignedVersion::new(&version)
                .map_err(|e| format!("change: {e}"))?;
            vec![GovernanceCommand::ProposeSigned { signed, competing }]
        }
        GovernRequest::Proposal(signed) => vec![GovernanceCommand::Propose(signed)],
        GovernRequest::Sign(hash, competing) => {
            vec![GovernanceCommand::Sign { hash, competing }]
        }
        GovernRequest::Submit(hash) => vec![GovernanceCommand::Submit(hash)],
        GovernRequest::Version(signed) => vec![GovernanceCommand::Version(signed)],
    })
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Newly accepted notices.
    pub accepted: usize,
    /// Notices already held.
    pub duplicates: usize,
    /// Notices still waiting for something.
    pub pending: usize,
    /// Refused notices with the reason.
    pub rejected: Vec<String>,
    /// Forks found.
    pub forks: usize,
    /// Notices kept as orphans (signed by a retired key past its cutoff,
    /// referred to by notices of other logs).
    pub orphans: usize,
}

/// An open node: its data directory and the engine over its store.
pub struct Node {
    /// Its data directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: NodeConfig,
    /// The engine, which owns the replica over the sled store and the key.
    pub engine: Engine<SledStore>,
}

impl Node {
    /// Opens the node in `dir` with the daemon's default engine settings.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        Node::open_with(dir, EngineConfig::default())
    }

    /// Opens the node in `dir` with these engine settings.
    pub fn open_with(dir: &Path, engine: EngineConfig) -> Result<Node, NodeError> {
        let config = read_config(dir)?;
        let key = keyfile::read(&dir.join(KEY_FILE))?;
        let roster_path = dir.join(ROSTER_FILE);
        if !roster_path.exists() {
            return Err(NodeError::NoRoster {
                dir: dir.display().to_string(),
            });
        }
        let federation = read_roster(&roster_path)?;
        let store = SledStore::open(&dir.join(STORE_DIR), federation.id())?;
        let mut replica = Replica::new(federation.clone(), store);
        // The roster versions this node holds: its key may be one a version
        // added or rotated to.
        replica
            .load_roster_versions()
            .map_err(|e| NodeError::Roster {
                path: format!("the roster versions in {}", dir.join(STORE_DIR).display()),
                source: credence_protocol::roster::RosterError::Invalid {
                    field: "roster versions".into(),
                    problem: e.to_string(),
                },
            })?;
        let key = take_next_key(dir, key, replica.chain().current())?;
        let key_id = AuthorityId(key.public_bytes());
        let author = replica.member_of_key(&key_id);
        if !replica.chain().current().keys.contains_key(&author) {
            return Err(NodeError::NotMember {
                key: key_id,
                federation: federation.roster().name.clone(),
            });
        }
        let mark = crate::mark::read_for(dir, &author, &key_id)?;
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|error| NodeError::Io {
            path: "the operating system's random source".into(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let engine = Engine::new(engine, replica, key, mark, u64::from_le_bytes(seed), now());
        Ok(Node {
            dir: dir.to_path_buf(),
            config,
            engine,
        })
    }

    /// The replica.
    pub fn replica(&self) -> &Replica<SledStore> {
        self.engine.replica()
    }

    /// This node's authority.
    pub fn author(&self) -> AuthorityId {
        self.engine.author()
    }

    /// The keeper of this node's views ([`crate::keeper`]), for its member
    /// and the measures it implements.
    pub fn keeper(&self) -> Result<crate::keeper::Keeper, NodeError> {
        let me = self.author();
        let implements = self.implements();
        crate::keeper::Keeper::open(self.replica(), me, implements)
            .map_err(|e| NodeError::Views(e.to_string()))
    }

    /// The measures this node's member implements.
    pub fn implements(&self) -> Vec<String> {
        self.federation()
            .member(&self.author())
            .map(|m| m.implements.clone())
            .unwrap_or_default()
    }

    /// The federation.
    pub fn federation(&self) -> &Federation {
        self.engine.replica().federation()
    }

    /// Registers a read made on this data directory directly (no node
    /// running), durably; returns its index.
    pub fn register_read(
        &self,
        record: &credence_protocol::register::ReadRecord,
    ) -> Result<u64, NodeError> {
        let bytes = record.encode().map_err(|e| NodeError::Config {
            path: "the register of reads".into(),
            reason: e.to_string(),
        })?;
        let store = self.engine.replica().store();
        let index = store.register_append(&bytes, record.subject_key().as_ref())?;
        store.register_flush()?;
        Ok(index)
    }

    /// Makes an own notice durable: the mark first (so that a lost store
    /// cannot sign its seq again), then the store.
    pub fn persist(&mut self, mark: &Mark) -> Result<(), NodeError> {
        crate::mark::write(&self.dir, &self.author(), mark)?;
        self.engine.replica_mut().store_mut().flush()?;
        Ok(())
    }

    /// Makes own notices durable up to `mark` ([`Node::persist`]); what
    /// the engine hears back.
    fn persisted(&mut self, mark: &Mark) -> Input<'static> {
        let seq = mark.seq;
        match self.persist(mark) {
            Ok(()) => Input::Persisted { seq },
            Err(e) => Input::PersistFailed {
                seq,
                reason: e.to_string(),
            },
        }
    }

    /// The same, in two parts: what has been appended goes to the store's
    /// writer now, and the returned work, run off the loop, writes the
    /// mark and then waits for the store to be durable. The store may
    /// reach the disk before the mark (harmless: a store ahead of its mark
    /// is restored from, and nothing is acknowledged or published before
    /// the work is done).
    pub fn persist_later(
        &mut self,
        mark: Mark,
    ) -> Result<impl FnOnce() -> Result<(), NodeError> + Send + 'static, NodeError> {
        let flush = self.engine.replica_mut().store_mut().flush_later()?;
        let (dir, author) = (self.dir.clone(), self.author());
        Ok(move || {
            crate::mark::write(&dir, &author, &mark)?;
            flush.wait()?;
            Ok(())
        })
    }

    /// Carries out an operator's governance request on this node's chain
    /// (not running: what it publishes reaches the peers by sync once it
    /// runs), then makes the store durable.
    pub fn govern(
        &mut self,
        request: GovernRequest,
        now: Timestamp,
    ) -> Result<GovernanceAnswer, NodeError> {
        let commands = governance_commands(self.replica(), request)
            .map_err(|e| NodeError::Refused(Refusal::BadQuery(e)))?;
        let mut answer = None;
        for command in commands {
            let outputs = self.engine.handle(
                Input::Govern {
                    ticket: 0,
                    command: Box::new(command),
                },
                now,
            );
            answer = outputs.into_iter().find_map(|output| match output {
                Output::Governed { result, .. } => Some(*result),
                _ => None,
            });
            if let Some(Err(e)) = &answer {
                return Err(NodeError::Governance(e.clone()));
            }
        }
        self.engine.replica_mut().store_mut().flush()?;
        match answer {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(e)) => Err(NodeError::Governance(e)),
            None => Err(NodeError::Refused(Refusal::Store(
                "the engine gave no answer".into(),
            ))),
        }
    }

    /// Signs, stores and makes durable a notice of this node's authority,
    /// through the same engine (and the same gate) as the running node.
    pub fn issue(&mut self, kind: NoticeKind, now: Timestamp) -> Result<IssuedNotice, NodeError> {
        let issue = Input::Issue {
            ticket: 0,
            kind: Box::new(kind),
        };
        let mut pending = vec![self.engine.handle(issue, now)];
        let mut answer = None;
        while let Some(outputs) = pending.pop() {
            for output in outputs {
                match output {
                    Output::Persist { mark } => {
                        let next = self.persisted(&mark);
                        pending.push(self.engine.handle(next, now));
                    }
                    Output::Issued { result, .. } => answer = Some(result),
                    _ => {}
                }
            }
        }
        match answer {
            Some(result) => Ok(result.map_err(|refusal| *refusal)?),
            None => Err(NodeError::Refused(Refusal::Store(
                "the engine gave no answer".into(),
            ))),
        }
    }

    /// The listings whose subject or a linked person has a name that
    /// matches `text` (already [`credence_protocol::names::search_text`]),
    /// those `admit` lets through at `t` (`candidate` passes over a listing
    /// before it is folded): at most `limit`, and whether there were more
    /// (or the search was too broad to find them all). Found through the
    /// name index, each checked against its names now.
    pub fn search(
        &self,
        text: &str,
        limit: usize,
        candidate: &dyn Fn(&NoticeId) -> bool,
        admit: &dyn Fn(&ListingState) -> bool,
        t: Timestamp,
    ) -> Result<(Vec<ListingState>, bool), NodeError> {
        let replica = self.replica();
        let found = replica
            .store()
            .name_candidates(&credence_protocol::names::grams(text))?;
        Ok(search_among(
            replica, found, text, limit, candidate, admit, t,
        )?)
    }

    /// What an idempotency key already stands for: another request's key
    /// ([`NodeError::IdempotencyConflict`]), the notice it signed, or, when
    /// its first answer was lost, the durable notice its first attempt
    /// signed; `None` to issue (the key is then remembered as seen, durable
    /// with the notice).
    pub fn replay(
        &self,
        kind: &NoticeKind,
        key: &IssueKey,
        t: Timestamp,
    ) -> Result<Option<IssueOutcome>, NodeError> {
        let store = self.replica().store();
        if store.governed(&key.account, &key.key, t)?.is_some() {
            return Err(NodeError::IdempotencyConflict(key.key.clone()));
        }
        let Some(record) = store.idempotency(&key.account, &key.key, t)? else {
            let seen = crate::store::Idempotency {
                request: key.request,
                at: t,
                issued: None,
            };
            store.put_idempotency(&key.account, &key.key, &seen)?;
            return Ok(None);
        };
        if record.request != key.request {
            return Err(NodeError::IdempotencyConflict(key.key.clone()));
        }
        let issued = match record.issued {
            Some(issued) => Some(issued),
            None => self
                .replica()
                .own_notice_like(&self.author(), record.at, kind)?,
        };
        let Some((id, seq)) = issued else {
            return Ok(None);
        };
        if record.issued.is_none() {
            self.remember_issued(key, id, seq, t)?;
        }
        Ok(Some(IssueOutcome {
            id,
            seq,
            replayed: true,
        }))
    }

    /// What a governance act under `key` answered before, if anything (a
    /// retry gets it again and acts no more); the key used for another
    /// request, a governance act's or a notice's, is a conflict.
    pub fn governed_before(
        &self,
        key: &IssueKey,
        t: Timestamp,
    ) -> Result<Option<credence_protocol::engine::GovernanceAnswer>, NodeError> {
        let store = self.replica().store();
        if store.idempotency(&key.account, &key.key, t)?.is_some() {
            return Err(NodeError::IdempotencyConflict(key.key.clone()));
        }
        match store.governed(&key.account, &key.key, t)? {
            None => Ok(None),
            Some(record) if record.request != key.request => {
                Err(NodeError::IdempotencyConflict(key.key.clone()))
            }
            Some(record) => Ok(Some(record.answer)),
        }
    }

    /// Records what a governance act under `key` answered (durable with
    /// the next flush; a retry after a crash before it acts again, which a
    /// governance act bears: the same proposal, signed again, gains no
    /// second signature).
    pub fn remember_governed(
        &self,
        key: &IssueKey,
        answer: &credence_protocol::engine::GovernanceAnswer,
        t: Timestamp,
    ) -> Result<(), NodeError> {
        let record = crate::store::Governed {
            request: key.request,
            at: t,
            answer: answer.clone(),
        };
        self.replica()
            .store()
            .put_governed(&key.account, &key.key, &record)?;
        Ok(())
    }

    /// Records the notice an idempotency key signed (durable with the next
    /// flush; until then a retry finds the notice in the own log).
    pub fn remember_issued(
        &self,
        key: &IssueKey,
        id: NoticeId,
        seq: u64,
        t: Timestamp,
    ) -> Result<(), NodeError> {
        let store = self.replica().store();
        let at = store
            .idempotency(&key.account, &key.key, t)?
            .map_or(t, |r| r.at);
        store.put_idempotency(
            &key.account,
            &key.key,
            &crate::store::Idempotency {
                request: key.request,
                at,
                issued: Some((id, seq)),
            },
        )?;
        Ok(())
    }

    /// Signs each notice at most once for its key, as the running node
    /// does for API requests with idempotency keys: a retry gets the first
    /// notice, even when the first attempt stopped before it was told. The
    /// notices signed share one flush (group commit, as in the running
    /// node): none is answered before all are durable.
    pub fn issue_once_all(
        &mut self,
        rows: Vec<(NoticeKind, IssueKey)>,
        now: Timestamp,
    ) -> Vec<Result<IssueOutcome, NodeError>> {
        let mut results: Vec<Option<Result<IssueOutcome, NodeError>>> =
            rows.iter().map(|_| None).collect();
        let mut keys: BTreeMap<u64, IssueKey> = BTreeMap::new();
        let mut newest: Option<Mark> = None;
        let mut answered: Vec<(u64, Result<IssuedNotice, Box<Refusal>>)> = Vec::new();
        let mut take = |outputs: Vec<Output>, newest: &mut Option<Mark>| {
            for output in outputs {
                match output {
                    Output::Persist { mark } => *newest = Some(*mark),
                    Output::Issued { ticket, result } => answered.push((ticket, result)),
                    _ => {}
                }
            }
        };
        for (index, (kind, key)) in rows.into_iter().enumerate() {
            match self.replay(&kind, &key, now) {
                Ok(Some(outcome)) => results[index] = Some(Ok(outcome)),
                Err(e) => results[index] = Some(Err(e)),
                Ok(None) => {
                    let ticket = index as u64;
                    keys.insert(ticket, key);
                    let issue = Input::Issue {
                        ticket,
                        kind: Box::new(kind),
                    };
                    take(self.engine.handle(issue, now), &mut newest);
                }
            }
        }
        if let Some(mark) = newest {
            let next = self.persisted(&mark);
            take(self.engine.handle(next, now), &mut None);
        }
        for (ticket, result) in answered {
            let Some(key) = keys.remove(&ticket) else {
                continue;
            };
            let outcome = match result {
                Ok(issued) => self
                    .remember_issued(&key, issued.id, issued.seq, now)
                    .map(|()| IssueOutcome {
                        id: issued.id,
                        seq: issued.seq,
                        replayed: false,
                    }),
                Err(refusal) => Err(NodeError::Refused(*refusal)),
            };
            if let Some(slot) = results.get_mut(ticket as usize) {
                *slot = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(NodeError::Refused(Refusal::Store(
                        "the engine gave no answer".into(),
                    )))
                })
            })
            .collect()
    }

    /// Ingests every envelope of a bundle from another node of the same
    /// federation, then flushes.
    pub fn import(&mut self, bundle: &Bundle) -> Result<ImportSummary, NodeError> {
        let mut summary = ImportSummary::default();
        let replica = self.engine.replica_mut();
        // The roster versions first: notices name them.
        let mut versions = Vec::new();
        for (index, bytes) in bundle.roster_versions.iter().enumerate() {
            match credence_protocol::governance::SignedVersion::from_bytes(bytes) {
                Ok(signed) => versions.push(signed),
                Err(e) => summary
                    .rejected
                    .push(format!("roster version {index}: {e}")),
            }
        }
        versions.sort_by_key(|signed| signed.version().map_or(u64::MAX, |v| v.number));
        for signed in versions {
            let hash = signed.hash();
            if let Err(e) = replica.add_roster_version(signed) {
                summary.rejected.push(format!("roster version {hash}: {e}"));
            }
        }
        let mut outcomes = Vec::new();
        for chunk in bundle.envelopes.chunks(IMPORT_BATCH_NOTICES) {
            let slices: Vec<&[u8]> = chunk.iter().map(|b| b.as_slice()).collect();
            outcomes.extend(replica.ingest_all(&slices)?);
        }
        // Orphans came before the notices of other logs that refer to them.
        let slices: Vec<&[u8]> = bundle.envelopes.iter().map(|b| b.as_slice()).collect();
        let again = replica.offer_wanted(&slices)?;
        let adopted: std::collections::BTreeSet<NoticeId> = again
            .iter()
            .filter_map(|o| match o {
                Outcome::Orphaned { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        outcomes.extend(again);
        for outcome in outcomes {
            match outcome {
                Outcome::Accepted { .. } => summary.accepted += 1,
                Outcome::Orphaned { .. } => summary.orphans += 1,
                Outcome::Duplicate { .. } => summary.duplicates += 1,
                Outcome::Pending { .. } | Outcome::Dropped { .. } => {}
                Outcome::Forked { .. } => summary.forks += 1,
                Outcome::Rejected { id, .. } if adopted.contains(&id) => {}
                Outcome::Rejected { id, error, .. } => {
                    summary.rejected.push(format!("{id}: {error}"))
                }
            }
        }
        replica.store_mut().flush()?;
        summary.pending = replica.pending_count();
        Ok(summary)
    }

    /// An audit bundle of everything this node holds, with the signed
    /// checkpoint of its own log (none while it does not issue).
    pub fn export(&self) -> Result<Bundle, NodeError> {
        let store = self.replica().store();
        let log = store.register_log()?;
        let records =
            store.register_records(0, usize::try_from(log.size()).unwrap_or(usize::MAX))?;
        let register = bundle_register(self, &log, records)?;
        Ok(Bundle::export(self.replica())?
            .with_checkpoints(&bundle_checkpoints(&self.engine))
            .with_register(register))
    }
}

/// The register of reads an export carries: the records up to the log's
/// size then (`records`), with its checkpoint signed by this node.
pub fn bundle_register(
    node: &Node,
    log: &credence_protocol::register::RegisterLog,
    records: Vec<(u64, Vec<u8>)>,
) -> Result<credence_protocol::bundle::BundleRegister, NodeError> {
    let note = log
        .sign(&node.federation().id(), &node.author(), node.engine.key())
        .map_err(|e| NodeError::Config {
            path: "the register of reads".into(),
            reason: e.to_string(),
        })?;
    let size = usize::try_from(log.size()).unwrap_or(usize::MAX);
    Ok(credence_protocol::bundle::BundleRegister {
        member: node.author(),
        records: records
            .into_iter()
            .take(size)
            .map(|(_, bytes)| bytes.into())
            .collect(),
        checkpoint: note.encode().into_bytes().into(),
    })
}

/// The checkpoints an export carries: per log, the newest quorum-cosigned
/// checkpoint and the newest held, with every cosignature gathered, when
/// this node's copy of the log reaches them (an auditor checks each
/// against the log in the bundle); and the own log's checkpoint signed
/// now while the node issues.
pub fn bundle_checkpoints(engine: &Engine<SledStore>) -> Vec<credence_crypto::note::Note> {
    let store = engine.replica().store();
    let mut notes = Vec::new();
    for log in engine.checkpoints() {
        let held = store.head(&log.author).ok().flatten().map_or(0, |h| h.seq);
        for checkpoint in [&log.witnessed, &log.newest].into_iter().flatten() {
            if checkpoint.size <= held && !notes.contains(&checkpoint.note) {
                notes.push(checkpoint.note.clone());
            }
        }
    }
    if let Ok(Some(own)) = engine.own_checkpoint()
        && !notes.iter().any(|n| n.text == own.text)
    {
        notes.push(own);
    }
    notes
}

/// Disaster recovery: names the head of this authority's own log (seq and
/// id of the newest notice it signed) when both the store and the own-log
/// mark were lost, so that the node issues once its store holds that
/// notice again, never before. The node must be stopped (its store is
/// opened here). Returns the mark written.
pub fn recover(dir: &Path, seq: u64, id: Option<NoticeId>) -> Result<Mark, NodeError> {
    let node = Node::open(dir)?;
    let refuse = |reason: String| NodeError::Config {
        path: dir.join(crate::mark::MARK_FILE).display().to_string(),
        reason,
    };
    let id = match (seq, id) {
        (0, None) => NoticeId::default(),
        (0, Some(id)) if id == NoticeId::default() => id,
        (0, Some(_)) => return Err(refuse("seq 0 names no notice; leave --id out".into())),
        (_, None) => {
            return Err(refuse(
                "--id is required: the id of the notice at that seq, as a peer or an audit bundle shows it".into(),
            ));
        }
        (_, Some(id)) => id,
    };
    let me = node.author();
    let store = node.replica().store();
    let held = store.head(&me)?;
    if let Some(head) = &held
        && head.seq > seq
    {
        return Err(refuse(format!(
            "this node's store already holds seq {} of its own log, past the seq {seq} named; a mark never goes back",
            head.seq
        )));
    }
    let here = if seq == 0 {
        None
    } else {
        store.log_id(&me, seq)?
    };
    if let Some(here) = here
        && here != id
    {
        return Err(refuse(format!(
            "this node's store holds {here} at seq {seq}, not {id}: the own log would be forked"
        )));
    }
    let (root, envelope) = match (here, &held) {
        (Some(here), Some(head)) if head.seq == seq => (Some(head.root()), store.notice(&here)?),
        _ => (None, None),
    };
    let mark = Mark {
        seq,
        id,
        root,
        envelope,
    };
    crate::mark::write(dir, &me, &mark)?;
    Ok(mark)
}

/// Of the name index's `found` candidates (and whether it had more), the
/// listings whose subject or a linked person has a name that matches
/// `text`, those `admit` lets through at `t` (`candidate` passes over a
/// listing before it is folded): at most `limit`, and whether there were
/// more.
pub fn search_among<S: credence_protocol::store::Store>(
    replica: &Replica<S>,
    (candidates, mut more): (Vec<NoticeId>, bool),
    text: &str,
    limit: usize,
    candidate: &dyn Fn(&NoticeId) -> bool,
    admit: &dyn Fn(&ListingState) -> bool,
    t: Timestamp,
) -> Result<(Vec<ListingState>, bool), credence_protocol::replica::ReplicaError<S::Error>> {
    use credence_protocol::names;
    let mut found = Vec::new();
    for id in candidates {
        if !candidate(&id) {
            continue;
        }
        let Some(state) = replica.listing_state(&id, t)? else {
            continue;
        };
        let listing = &state.listing;
        let named = names::matches(&listing.subject.name, text)
            || listing.linked.iter().any(|p| names::matches(&p.name, text));
        if !named || !admit(&state) {
            continue;
        }
        if found.len() == limit {
            more = true;
            break;
        }
        found.push(state);
    }
    Ok((found, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A data directory made when the identity file was `node.toml` is
    // read, and the file takes its new name; `init` refuses a directory
    // holding either.
    #[test]
    fn an_identity_file_of_the_old_name_is_renamed() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "market").unwrap();
        fs::rename(
            dir.path().join(IDENTITY_FILE),
            dir.path().join(IDENTITY_FILE_BEFORE),
        )
        .unwrap();
        assert!(matches!(
            init(dir.path(), "again"),
            Err(NodeError::AlreadyInitialised { .. })
        ));
        assert_eq!(read_config(dir.path()).unwrap().name, "market");
        assert!(dir.path().join(IDENTITY_FILE).exists());
        assert!(!dir.path().join(IDENTITY_FILE_BEFORE).exists());
    }
}

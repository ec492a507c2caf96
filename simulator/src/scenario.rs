//! Scenario files (`configs/scenarios/*.toml`): the federation, the
//! overlay, the links, the workload and the fault schedule. Times are
//! virtual milliseconds, written in human form (`"30s"`, `"500ms"`).

use credence_protocol::time::parse_duration_ms;
use serde::{Deserialize, Serialize};

/// Most nodes a scenario may have (one roster member each).
pub const NODES_MAX: usize = credence_protocol::roster::MEMBERS_MAX;
/// Most notices a scenario may issue.
pub const NOTICES_MAX: usize = 1_000_000;
/// Most queries a scenario may ask.
pub const QUERIES_MAX: usize = 100_000;
/// Largest scenario file.
pub const SCENARIO_BYTES_MAX: usize = 256 * 1024;

fn default_degree() -> usize {
    6
}

/// A whole scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Seeds the CI runs (the command line may give another).
    pub seeds: Vec<u64>,
    /// Number of nodes; every node is a roster member.
    pub nodes: usize,
    /// How many of them issue notices (the first ones).
    pub authorities: usize,
    /// Mesh degree of the gossip overlay.
    #[serde(default = "default_degree")]
    pub degree: usize,
    /// Links.
    pub links: Links,
    /// Gossip and sync timing.
    pub protocol: Protocol,
    /// What is issued.
    pub workload: Workload,
    /// What goes wrong.
    #[serde(default)]
    pub faults: Faults,
    /// After the last fault ends and the workload stops, honest replicas
    /// must converge within this bound.
    pub converge_within: String,
    /// Roster changes during the run.
    #[serde(default)]
    pub governance: Vec<RosterChange>,
}

/// Most notices a thief signs before a revocation (within one author's
/// notice burst).
pub const STOLEN_NOTICES_MAX: u64 = 8;

/// What a roster change does to its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The node is not in the genesis roster: a version adds it, and it
    /// joins with that version and catches up.
    Add,
    /// A version removes the node (cutoff: its own head then).
    Remove,
    /// A version rotates the node's key (planned); the node restarts under
    /// the new one.
    Rotate,
    /// A version revokes the node's key as compromised; the node restarts
    /// under the new one. With `stolen`, a thief holding a copy of the old
    /// key first signs that many notices past the cutoff and gossips them:
    /// the version cuts them back everywhere.
    Revoke,
    /// A version withdraws the node's grant of the blacklist category the
    /// workload lists in, after the node's head then, while the node goes
    /// on issuing until it has the version: what it listed past the cutoff
    /// is void everywhere.
    Withdraw,
    /// A version (of format 2) grants the node's member an allowance of
    /// notices past its budget; every replica must carry the same budget
    /// in its head afterwards.
    Allow,
}

/// A roster change: at `at`, node `by` proposes it, the members of its
/// current version sign it (as many as the threshold, honest ones) with
/// the added key's proof of possession, and `by` takes and publishes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterChange {
    /// When.
    pub at: String,
    /// What.
    pub change: ChangeKind,
    /// The node it concerns.
    pub node: usize,
    /// The node that proposes and publishes it.
    pub by: usize,
    /// For a revocation: notices a thief signs with the old key first.
    #[serde(default)]
    pub stolen: u64,
}

/// Link model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Least one-way latency.
    pub latency_min: String,
    /// Most one-way latency (uniform between the two).
    pub latency_max: String,
    /// Bandwidth of each link, bytes per second.
    pub bandwidth_bytes_per_s: u64,
}

/// Protocol timing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Gossip heartbeat: lazy announcements of recent ids to non-mesh peers.
    pub heartbeat: String,
    /// Non-mesh peers each heartbeat announces to.
    pub lazy_fanout: usize,
    /// Anti-entropy period per node (jittered by a quarter).
    pub sync_interval: String,
    /// Store flush period for notices received from peers (own notices are
    /// flushed before they are published).
    pub flush_interval: String,
    /// Nodes sign checkpoints of their logs, witness each other's and
    /// gossip and sync them (the engine's `checkpoints`; off unless set).
    #[serde(default)]
    pub checkpoints: bool,
}

/// Workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Notices to issue in all.
    pub notices: usize,
    /// Over how long.
    pub duration: String,
    /// Relative weights of the kinds.
    pub mix: Mix,
    /// Distinct companies.
    pub subjects: u64,
    /// Federation-wide queries asked by authorities during the workload.
    #[serde(default)]
    pub queries: usize,
}

/// Relative weights of what an authority issues.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// New listings.
    pub list: u32,
    /// Amendments of own listings.
    pub amend: u32,
    /// Objections to any listing.
    pub object: u32,
    /// Rulings on objections to own listings.
    pub rule: u32,
    /// Repairs of own listings.
    pub repair: u32,
    /// Withdrawals of own listings.
    pub withdraw: u32,
    /// Feedback on measures this authority implements.
    pub feedback: u32,
}

/// The fault schedule. Every fault can be off.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a message is held back (reordered) by up to
    /// `reorder_delay`.
    #[serde(default)]
    pub reorder: f64,
    /// How long a reordered message is held at most.
    #[serde(default)]
    pub reorder_delay: Option<String>,
    /// Windows of extra latency on every link.
    #[serde(default)]
    pub delay_spikes: Vec<Spike>,
    /// Partitions that heal.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Crashes and restarts.
    #[serde(default)]
    pub crashes: Vec<Crash>,
    /// Crashes that lose the store (and perhaps the own-log mark).
    #[serde(default)]
    pub store_losses: Vec<StoreLoss>,
    /// Byzantine members.
    #[serde(default)]
    pub byzantine: Vec<Byzantine>,
}

/// Extra latency in a window.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Start.
    pub from: String,
    /// End.
    pub until: String,
    /// Extra one-way latency.
    pub extra: String,
}

/// A partition: the first `fraction` of the nodes (by a seeded shuffle)
/// against the rest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start.
    pub from: String,
    /// Heals at.
    pub until: String,
    /// Share of nodes on side A.
    pub fraction: f64,
    /// Only messages from side A to side B are cut.
    #[serde(default)]
    pub one_way: bool,
}

/// A crash: the node loses its volatile state; what it flushed survives.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// Which node.
    pub node: usize,
    /// When.
    pub at: String,
    /// Down for how long.
    pub down_for: String,
}

/// A crash that loses the node's store: it comes back empty, keeping its
/// own-log mark unless `mark_lost`, and may stay cut from every peer for a
/// while (its peers are all down, as far as it can tell).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreLoss {
    /// Which node.
    pub node: usize,
    /// When.
    pub at: String,
    /// Down for how long.
    pub down_for: String,
    /// Once back, cut from every peer for this long.
    #[serde(default)]
    pub isolated_for: Option<String>,
    /// The mark file is lost too (a new machine).
    #[serde(default)]
    pub mark_lost: bool,
    /// While isolated, these nodes can still be reached (lagging peers
    /// that answer first).
    #[serde(default)]
    pub reachable: Vec<usize>,
}

/// What a Byzantine member does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Misbehaviour {
    /// Sends notices with a bad signature.
    Forge,
    /// Signs two notices at one seq and sends each to different peers.
    Fork,
    /// Sends old notices again.
    Replay,
    /// Repairs listings it did not issue (validly signed).
    UnauthorisedRepair,
    /// Sends bytes that are not an envelope.
    Garbage,
    /// Sends its own notices to only some of its peers.
    Withhold,
    /// Signs two checkpoints of its log with one size and two roots and
    /// shows each to half of its peers (needs `checkpoints = true`).
    SplitView,
    /// Answers every query with the first listing's status misstated (a
    /// standing behaviour, like `withhold`).
    Lie,
    /// Makes up proposals for the next roster version, signs them and
    /// sends them to its peers.
    ProposalFlood,
}

/// A Byzantine member.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Byzantine {
    /// Which node (should be an authority to issue).
    pub node: usize,
    /// What it does.
    pub behaviours: Vec<Misbehaviour>,
    /// How many misbehaving messages of each kind it sends.
    pub count: usize,
}

/// A scenario that does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("scenario: {0}")]
pub struct ScenarioError(pub String);

/// Milliseconds of a duration field.
pub fn ms(field: &str, text: &str) -> Result<u64, ScenarioError> {
    parse_duration_ms(text).map_err(|e| ScenarioError(format!("{field}: {e}")))
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        if text.len() > SCENARIO_BYTES_MAX {
            return Err(ScenarioError(format!(
                "more than {SCENARIO_BYTES_MAX} bytes"
            )));
        }
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        scenario.check()?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), ScenarioError> {
        let fail = |m: String| Err(ScenarioError(m));
        if self.nodes < 2 || self.nodes > NODES_MAX {
            return fail(format!("nodes must be 2 to {NODES_MAX}"));
        }
        if self.authorities == 0 || self.authorities > self.nodes {
            return fail("authorities must be 1 to nodes".into());
        }
        if self.degree == 0 || self.degree >= self.nodes {
            return fail("degree must be 1 to nodes - 1".into());
        }
        if self.workload.notices > NOTICES_MAX {
            return fail(format!("workload.notices: at most {NOTICES_MAX}"));
        }
        if self.workload.subjects == 0 {
            return fail("workload.subjects must be at least 1".into());
        }
        for (field, p) in [
            ("loss", self.faults.loss),
            ("duplicate", self.faults.duplicate),
            ("reorder", self.faults.reorder),
        ] {
            if !(0.0..=0.5).contains(&p) {
                return fail(format!("faults.{field} must be between 0 and 0.5"));
            }
        }
        for crash in &self.faults.crashes {
            if crash.node >= self.nodes {
                return fail(format!(
                    "faults.crashes: node {} does not exist",
                    crash.node
                ));
            }
        }
        for loss in &self.faults.store_losses {
            if loss.node >= self.nodes {
                return fail(format!(
                    "faults.store_losses: node {} does not exist",
                    loss.node
                ));
            }
            ms("faults.store_losses.at", &loss.at)?;
            ms("faults.store_losses.down_for", &loss.down_for)?;
            if let Some(bad) = loss.reachable.iter().find(|n| **n >= self.nodes) {
                return fail(format!("faults.store_losses: node {bad} does not exist"));
            }
            if let Some(d) = &loss.isolated_for {
                ms("faults.store_losses.isolated_for", d)?;
            }
        }
        if self.workload.queries > QUERIES_MAX {
            return fail(format!("workload.queries: at most {QUERIES_MAX}"));
        }
        for b in &self.faults.byzantine {
            if b.node >= self.authorities {
                return fail(format!(
                    "faults.byzantine: node {} is not an authority",
                    b.node
                ));
            }
        }
        for p in &self.faults.partitions {
            if !(0.0..1.0).contains(&p.fraction) {
                return fail("faults.partitions: fraction must be in [0, 1)".into());
            }
        }
        let mut changed = std::collections::BTreeSet::new();
        for change in &self.governance {
            ms("governance.at", &change.at)?;
            for (field, node) in [("node", change.node), ("by", change.by)] {
                if node >= self.nodes {
                    return fail(format!("governance.{field}: node {node} does not exist"));
                }
            }
            if !changed.insert(change.node) {
                return fail(format!("governance: node {} is changed twice", change.node));
            }
            if self.faults.byzantine.iter().any(|b| b.node == change.node) {
                return fail(format!("governance: node {} is Byzantine", change.node));
            }
        }
        // An allowance leaves its member as it was: it may propose.
        for change in &self.governance {
            if change.change == ChangeKind::Allow {
                changed.remove(&change.node);
            }
        }
        for change in &self.governance {
            if changed.contains(&change.by) {
                return fail(format!(
                    "governance.by: node {} is itself changed; a member no change touches proposes",
                    change.by
                ));
            }
            if change.stolen > 0 && change.change != ChangeKind::Revoke {
                return fail(format!(
                    "governance: node {}: only a revocation has stolen notices",
                    change.node
                ));
            }
            if change.stolen > STOLEN_NOTICES_MAX {
                return fail(format!(
                    "governance.stolen: {} is more than {STOLEN_NOTICES_MAX} notices",
                    change.stolen
                ));
            }
            if change.change == ChangeKind::Allow && change.node >= self.authorities {
                return fail(format!(
                    "governance: node {} is no authority from the start: an allowance is for a member",
                    change.node
                ));
            }
            if change.change == ChangeKind::Add && change.node < self.authorities {
                return fail(format!(
                    "governance: node {} is an authority from the start and cannot be added",
                    change.node
                ));
            }
        }
        ms("links.latency_min", &self.links.latency_min)?;
        ms("links.latency_max", &self.links.latency_max)?;
        ms("protocol.heartbeat", &self.protocol.heartbeat)?;
        ms("protocol.sync_interval", &self.protocol.sync_interval)?;
        ms("protocol.flush_interval", &self.protocol.flush_interval)?;
        ms("workload.duration", &self.workload.duration)?;
        ms("converge_within", &self.converge_within)?;
        Ok(())
    }
}

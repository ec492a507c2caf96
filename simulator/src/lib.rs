//! credence-sim: a deterministic discrete-event simulation of many credence
//! replicas under faults.
//!
//! The mental model: N nodes, each the real node engine
//! (`credence_protocol::engine::Engine`, the daemon's) over a replica whose
//! store holds each envelope once for all of them, exchange messages over modelled links (latency,
//! bandwidth, loss, duplication, reordering, partitions). Gossip is a mesh
//! of degree D with eager push and lazy announce/request; anti-entropy runs
//! the real `credence_protocol::sync::SyncSession`. One seeded RNG drives
//! everything, so a seed replays exactly (the trace hash shows it).
//! Invariants are checked as the run goes (nothing invalid accepted,
//! nothing flushed lost) and at the end (convergence of heads, listing
//! states and task lists within a bound; every fork detected everywhere).
//!
//! **Architecture invariant:** the simulator never reads the clock for
//! anything that decides (only to report wall time) and never uses an OS
//! random source.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod queue;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod store;

use report::Report;
use scenario::{Scenario, ScenarioError};
pub use sim::Broken;
use sim::{RunConfig, Sim};

/// Runs one seed of a scenario (with a deliberately broken node, to show
/// the invariants catch it).
pub fn run(
    scenario: &Scenario,
    scenario_path: &str,
    seed: u64,
    broken: Option<Broken>,
) -> Result<Report, ScenarioError> {
    let sim = Sim::new(RunConfig {
        scenario: scenario.clone(),
        seed,
        broken,
        scenario_path: scenario_path.to_string(),
    })?;
    Ok(sim.run())
}

/// The gossip mesh peers of `node` in a run of `scenario` with `seed`.
pub fn mesh_of(scenario: &Scenario, seed: u64, node: usize) -> Result<Vec<usize>, ScenarioError> {
    let sim = Sim::new(RunConfig {
        scenario: scenario.clone(),
        seed,
        broken: None,
        scenario_path: String::new(),
    })?;
    Ok(sim.mesh(node).to_vec())
}

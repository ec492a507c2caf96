//! The CI scenario holds its invariants, replays exactly, and the
//! invariant checks can fail: a deliberately broken replica, and a
//! deliberately broken issuing gate, are caught with their seeds.

use credence_sim::Broken;
use credence_sim::scenario::Scenario;

fn scenario(name: &str) -> Scenario {
    let path = format!(
        "{}/../configs/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ci() -> Scenario {
    scenario("ci")
}

#[test]
fn the_ci_scenario_holds_its_invariants_and_replays_exactly() {
    let scenario = ci();
    let seed = scenario.seeds[0];
    let report = credence_sim::run(&scenario, "configs/scenarios/ci.toml", seed, None).unwrap();
    assert!(report.passed, "{}", report.summary());
    assert!(report.notices_issued > 100);
    assert!(report.faults.iter().any(|(k, _)| k == "crash"));
    assert!(report.faults.iter().any(|(k, _)| k == "partition_drop"));
    let again = credence_sim::run(&scenario, "configs/scenarios/ci.toml", seed, None).unwrap();
    assert_eq!(report.trace_hash, again.trace_hash);
    let other =
        credence_sim::run(&scenario, "configs/scenarios/ci.toml", seed + 1000, None).unwrap();
    assert_ne!(
        report.trace_hash, other.trace_hash,
        "another seed, another run"
    );
}

#[test]
fn a_replica_that_accepts_a_repair_from_a_non_issuer_is_caught_with_its_seed() {
    let scenario = ci();
    // A mesh neighbour of the Byzantine member is honest but broken: it
    // takes the Byzantine member's unauthorised repairs.
    let seed = scenario.seeds[0];
    let byzantine = scenario.faults.byzantine[0].node;
    let broken = credence_sim::mesh_of(&scenario, seed, byzantine).unwrap()[0];
    let report = credence_sim::run(
        &scenario,
        "configs/scenarios/ci.toml",
        seed,
        Some(Broken::Replica(broken)),
    )
    .unwrap();
    assert!(!report.passed);
    let violation = report
        .violations
        .iter()
        .find(|v| v.invariant == "nothing_invalid_accepted")
        .unwrap_or_else(|| panic!("not caught:\n{}", report.summary()));
    assert!(
        violation.detail.contains(&format!("node {broken} ")),
        "{}",
        violation.detail
    );
    assert!(report.summary().contains(&format!("--seed {seed}")));
}

#[test]
fn bad_scenarios_are_refused_naming_the_field() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/scenarios/ci.toml"
    ))
    .unwrap();
    let error = Scenario::parse(&text.replace("loss = 0.05", "loss = 0.9")).unwrap_err();
    assert!(error.to_string().contains("faults.loss"), "{error}");
    let error = Scenario::parse(&text.replace("nodes = 24", "nodes = 1")).unwrap_err();
    assert!(error.to_string().contains("nodes"), "{error}");
    let error =
        Scenario::parse(&text.replace("sync_interval = \"5s\"", "sync_interval = \"soon\""))
            .unwrap_err();
    assert!(error.to_string().contains("sync_interval"), "{error}");
}

// The store-loss scenario's node 1 loses its disk and is cut from every
// peer for 30 s: its engine refuses to issue all that time, then restores
// its log and goes on; nothing is forked, nothing acknowledged is lost.
// With a shell that forgets the own-log mark, the same seed forks node
// 1's log and loses notices it acknowledged: both invariants say so.
#[test]
fn a_store_loss_never_forks_and_a_broken_gate_is_caught_with_its_seed() {
    let scenario = scenario("store-loss");
    let seed = scenario.seeds[0];
    let path = "configs/scenarios/store-loss.toml";
    let report = credence_sim::run(&scenario, path, seed, None).unwrap();
    assert!(report.passed, "{}", report.summary());
    assert!(
        report
            .faults
            .iter()
            .any(|(k, n)| k == "store_loss" && *n == 2)
    );
    assert!(report.issue_refused > 0, "{}", report.summary());
    let broken = credence_sim::run(&scenario, path, seed, Some(Broken::Gate(1))).unwrap();
    assert!(!broken.passed);
    for invariant in ["no_honest_log_forked", "acknowledged_notice_survives"] {
        let violation = broken
            .violations
            .iter()
            .find(|v| v.invariant == invariant)
            .unwrap_or_else(|| panic!("{invariant} not caught:\n{}", broken.summary()));
        assert!(violation.detail.contains("node "), "{}", violation.detail);
    }
    assert!(broken.summary().contains(&format!("--seed {seed}")));
}

// Every new scenario holds its invariants on its own seeds; the query one
// finishes every query it asks.
#[test]
fn the_new_scenarios_hold_their_invariants() {
    for name in ["lagging-peer", "long-partitions", "query-loss"] {
        let scenario = scenario(name);
        let seed = scenario.seeds[0];
        let path = format!("configs/scenarios/{name}.toml");
        let report = credence_sim::run(&scenario, &path, seed, None).unwrap();
        assert!(report.passed, "{}", report.summary());
        if name == "query-loss" {
            let (asked, done, answers, _) = report.queries;
            assert!(asked > 50 && done == asked, "{}", report.summary());
            assert!(answers > asked, "{}", report.summary());
        }
        if name == "lagging-peer" {
            assert!(report.issue_refused > 0, "{}", report.summary());
        }
    }
}

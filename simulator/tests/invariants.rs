//! The CI scenario holds its invariants, replays exactly, and the
//! invariant checks can fail: a deliberately broken replica is caught.

use credence_sim::scenario::Scenario;

fn ci() -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/scenarios/ci.toml");
    Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
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
    let report =
        credence_sim::run(&scenario, "configs/scenarios/ci.toml", seed, Some(broken)).unwrap();
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

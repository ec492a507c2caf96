//! The main job on embedded defaults: `credence demo` runs the whole local
//! scenario and its final audit passes.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `credence` with `args`; returns its standard output, panicking with
/// both outputs unless it succeeded.
fn credence_ok<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn demo_runs_and_its_audit_passes() {
    let stdout = credence_ok(["demo"]);
    assert!(stdout.contains("status suspended"), "{stdout}");
    assert!(stdout.contains("status repaired"), "{stdout}");
    assert!(stdout.contains("LIFT  procurement-ban"), "{stdout}");
    assert!(stdout.contains("AUDIT PASSED"), "{stdout}");
}

/// The README's main job: `credence devnet` (here with `--exit`, which
/// stops after the scenario instead of waiting for Ctrl-C).
#[test]
fn devnet_runs_its_scenario_across_three_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = credence_ok([
        OsStr::new("devnet"),
        OsStr::new("--exit"),
        OsStr::new("--dir"),
        dir.path().as_os_str(),
    ]);
    assert!(stdout.contains("all 3 nodes connected"), "{stdout}");
    assert!(
        stdout.contains("status suspended, enforceable false"),
        "{stdout}"
    );
    assert!(stdout.contains("3 signed answers"), "{stdout}");
    assert!(stdout.contains("status repaired"), "{stdout}");
    assert!(stdout.contains("lift high-consumption-ban"), "{stdout}");
    assert!(
        stdout.contains("registers of reads (records per node): [1, 2, 5]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("joined with version 1") && stdout.contains("the court came back as"),
        "the governance steps ran: {stdout}"
    );
    assert!(
        !dir.path().join("market/api.addr").exists(),
        "the nodes stopped cleanly"
    );
}

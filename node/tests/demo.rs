//! The main job on embedded defaults: `credence demo` runs the whole local
//! scenario and its final audit passes.

use std::process::Command;

#[test]
fn demo_runs_and_its_audit_passes() {
    let output = Command::new(env!("CARGO_BIN_EXE_credence"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("status suspended"), "{stdout}");
    assert!(stdout.contains("status repaired"), "{stdout}");
    assert!(stdout.contains("LIFT  procurement-ban"), "{stdout}");
    assert!(stdout.contains("AUDIT PASSED"), "{stdout}");
}

//! Helpers for the end-to-end tests: find the `credence` binary, run it,
//! and set up data directories of a small federation.
//!
//! The tests start real processes and touch nothing outside their
//! temporary directories.

pub mod cluster;
pub mod netlab;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The purpose the tests state for their reads of subjects' records
/// (every read is registered and needs one).
pub const PURPOSE: &str = "end-to-end test of the node";
/// The legal basis the tests state for their reads.
pub const LEGAL_BASIS: &str = "credence test suite";

/// The `credence` binary built by this workspace (`cargo test --workspace`
/// builds it, since `credence-node` has integration tests of its own).
/// `CREDENCE_BIN` overrides it.
pub fn credence_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CREDENCE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("credence");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p credence-node` (or `cargo test --workspace`, which builds it)",
        bin.display()
    );
    bin
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the run exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "credence failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run exited with `code`.
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The id printed by an issuing command (`<what> <id> (seq N) ...`).
    pub fn issued_id(&self) -> String {
        self.stdout
            .split_whitespace()
            .find(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| panic!("no id in {:?}", self.stdout))
            .to_string()
    }
}

/// Runs `credence` with `args`.
pub fn credence(args: &[&str]) -> Run {
    let output = Command::new(credence_bin())
        .args(args)
        .env_remove("CREDENCE_DATA")
        .output()
        .expect("credence starts");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The repository's `configs/` folder.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Two authorities of one federation, each with its own data directory:
/// `issuer` lists food, drug and quality cases; `implementer` (a court)
/// implements the high-consumption ban and more inspections.
pub struct TwoAuthorities {
    /// Holds everything; removed on drop.
    pub root: tempfile::TempDir,
    /// The issuing authority's data directory.
    pub issuer: PathBuf,
    /// The implementing authority's data directory.
    pub implementer: PathBuf,
    /// The genesis roster.
    pub roster: PathBuf,
}

impl TwoAuthorities {
    /// A path inside the root.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// `&Path` as `&str` for command arguments.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Initialises two nodes, makes the genesis roster from the example
/// catalog and joins both.
pub fn two_authorities() -> TwoAuthorities {
    let root = tempfile::tempdir().expect("temporary directory");
    let issuer = root.path().join("issuer");
    let implementer = root.path().join("implementer");
    credence(&["init", "--data", arg(&issuer), "--name", "market"]).ok();
    credence(&["init", "--data", arg(&implementer), "--name", "court"]).ok();
    let members = root.path().join("members.toml");
    std::fs::write(
        &members,
        r#"name = "end-to-end federation"
[[members]]
handle = "issuer"
name = "Fuzhou Market Regulation Bureau"
region = "350100"
department = "market regulation"
issues_black = ["food-drug", "quality"]
issues_red = ["food-drug"]
[[members]]
handle = "implementer"
name = "Quanzhou Intermediate Court"
region = "350500"
department = "court enforcement"
issues_black = ["court-enforcement"]
implements = ["high-consumption-ban", "more-inspections"]
"#,
    )
    .expect("members file");
    let roster = root.path().join("roster.toml");
    let catalog = configs_dir().join("catalog.toml");
    credence(&[
        "federation",
        "genesis",
        "--catalog",
        arg(&catalog),
        "--members",
        arg(&members),
        "--key",
        &format!("issuer=@{}", arg(&issuer)),
        "--key",
        &format!("implementer=@{}", arg(&implementer)),
        "--out",
        arg(&roster),
    ])
    .ok();
    for dir in [&issuer, &implementer] {
        credence(&[
            "federation",
            "join",
            "--data",
            arg(dir),
            "--roster",
            arg(&roster),
        ])
        .ok();
    }
    TwoAuthorities {
        root,
        issuer,
        implementer,
        roster,
    }
}

/// Exports `from` and imports the bundle into `to`.
pub fn transfer(from: &Path, to: &Path, bundle: &Path) -> Run {
    export(from, bundle);
    credence(&["import", "--data", arg(to), arg(bundle)]).ok()
}

/// Writes an audit bundle of the node of `data` to `out`.
pub fn export(data: &Path, out: &Path) -> Run {
    credence(&[
        "export",
        "--purpose",
        PURPOSE,
        "--legal-basis",
        LEGAL_BASIS,
        "--data",
        arg(data),
        "--out",
        arg(out),
    ])
    .ok()
}

/// Arguments of a valid blacklist listing of the design's example company,
/// effective and repairable in the past.
pub fn listing_args(data: &Path) -> Vec<String> {
    [
        "list",
        "add",
        "--data",
        arg(data),
        "--subject",
        "91350100M000100Y43",
        "--name",
        "Minjiang Food Co., Ltd.",
        "--list",
        "black",
        "--category",
        "food-drug",
        "--severity",
        "serious",
        "--reason",
        "sold a recalled batch",
        "--legal-basis",
        "Food Safety Law art. 123",
        "--document",
        "RSJ-2026-118",
        "--measure",
        "high-consumption-ban",
        "--measure",
        "more-inspections",
        "--effective",
        "2026-01-01",
        "--repair-from",
        "2026-02-01",
        "--share-until",
        "2030-01-01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `credence` with owned arguments.
pub fn credence_owned(args: &[String]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    credence(&refs)
}

/// The notices a data directory holds, counted in an export written to
/// `out` (by envelopes: the export's register of reads grows with each
/// export, the envelopes do not).
pub fn stored_notices(data: &Path, out: &Path) -> usize {
    export(data, out);
    let bytes = std::fs::read(out).expect("the bundle");
    credence_protocol::bundle::Bundle::from_bytes(&bytes)
        .expect("a bundle")
        .envelopes
        .len()
}

/// Adds an API account of `role` to the node of `data` with the command
/// line; returns its credential.
pub fn add_account(data: &Path, name: &str, role: &str) -> String {
    let run = credence(&[
        "--json",
        "account",
        "add",
        "--data",
        arg(data),
        "--name",
        name,
        "--role",
        role,
    ])
    .ok();
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    answer["credential"]
        .as_str()
        .expect("a credential")
        .to_string()
}

//! Bad input gets a clear error that says what was wrong, and changes
//! nothing stored.

use credence_tests::*;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

fn with_arg(mut args: Vec<String>, name: &str, value: &str) -> Vec<String> {
    let at = args.iter().position(|a| a == name).unwrap();
    args[at + 1] = value.to_string();
    args
}

fn notice_count(data: &std::path::Path, fed: &TwoAuthorities) -> usize {
    credence_tests::stored_notices(data, &fed.path("count.bundle"))
}

// A malformed USCC names the expected check character; an unknown category
// lists the allowed ones; an over-long field names the limit; in every
// case nothing is stored.
#[test]
fn refused_listings_name_the_problem_and_store_nothing() {
    let fed = two_authorities();
    let before = notice_count(&fed.issuer, &fed);
    let bad_uscc = credence_owned(&with_arg(
        listing_args(&fed.issuer),
        "--subject",
        "91350100M000100Y4Z",
    ))
    .code(2);
    assert!(
        bad_uscc.stderr.contains("expected '3'"),
        "{}",
        bad_uscc.stderr
    );
    let wrong_check = credence_owned(&with_arg(
        listing_args(&fed.issuer),
        "--subject",
        "91350100M000100Y44",
    ))
    .code(2);
    assert!(
        wrong_check.stderr.contains("expected '3'") && wrong_check.stderr.contains("override"),
        "{}",
        wrong_check.stderr
    );
    let category = credence_owned(&with_arg(
        listing_args(&fed.issuer),
        "--category",
        "astrology",
    ))
    .code(2);
    assert!(
        category.stderr.contains("unknown category \"astrology\"")
            && category.stderr.contains("food-drug, "),
        "{}",
        category.stderr
    );
    let long = "x".repeat(5000);
    let too_long = credence_owned(&with_arg(listing_args(&fed.issuer), "--reason", &long)).code(2);
    assert!(
        too_long
            .stderr
            .contains("field reason has 5000 bytes, the limit is 2048"),
        "{}",
        too_long.stderr
    );
    let not_granted =
        credence_owned(&with_arg(listing_args(&fed.issuer), "--category", "tax")).code(2);
    assert!(
        not_granted.stderr.contains("does not grant"),
        "{}",
        not_granted.stderr
    );
    let bad_date = credence_owned(&with_arg(
        listing_args(&fed.issuer),
        "--effective",
        "2026-02-30",
    ))
    .code(2);
    assert!(
        bad_date.stderr.contains("not a date"),
        "{}",
        bad_date.stderr
    );
    assert_eq!(
        notice_count(&fed.issuer, &fed),
        before,
        "nothing was stored"
    );
    let overridden = with_arg(listing_args(&fed.issuer), "--subject", "91350100M000100Y44");
    let mut overridden = overridden;
    overridden.push("--override-checksum".into());
    credence_owned(&overridden).ok();
    // A lookup of that identifier finds the listing, and warns that the
    // identifier fails its check (a mistyped one would find nothing).
    let shown = credence(&[
        "show",
        "--data",
        arg(&fed.issuer),
        "--subject",
        "91350100m000100y44",
        "--purpose",
        "case review",
        "--legal-basis",
        "Administrative Penalty Law art. 3",
    ])
    .ok();
    assert!(
        shown
            .stdout
            .starts_with("warning: USCC 91350100M000100Y44: the check character is 4")
            && shown.stdout.contains("status active"),
        "{}",
        shown.stdout
    );
}

// Key files: group-readable, corrupt and foreign files are refused with
// what to do.
#[test]
fn unusable_key_files_are_refused() {
    let fed = two_authorities();
    let key = fed.issuer.join("authority.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = credence(&["tasks", "--data", arg(&fed.issuer)]).code(2);
    assert!(open.stderr.contains("chmod 600"), "{}", open.stderr);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, text.replace("secret: ", "secret: 00")).unwrap();
    let corrupt = credence(&["tasks", "--data", arg(&fed.issuer)]).code(2);
    assert!(
        corrupt.stderr.contains("damaged key file"),
        "{}",
        corrupt.stderr
    );
    std::fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    )
    .unwrap();
    let foreign = credence(&["tasks", "--data", arg(&fed.issuer)]).code(2);
    assert!(
        foreign.stderr.contains("not a credence authority key file"),
        "{}",
        foreign.stderr
    );
}

// A data directory whose store another process holds is refused, and the
// holder's records are intact afterwards.
#[test]
fn data_directory_in_use_is_refused() {
    let fed = two_authorities();
    credence_owned(&listing_args(&fed.issuer)).ok();
    let holder = hold_store(&fed.issuer);
    let busy = credence(&["tasks", "--data", arg(&fed.issuer)]).code(2);
    assert!(
        busy.stderr.contains("in use by another credence process"),
        "{}",
        busy.stderr
    );
    drop(holder);
    let shown = credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        arg(&fed.issuer),
        "--subject",
        "91350100M000100Y43",
    ])
    .ok()
    .stdout;
    assert!(shown.contains("status active"), "{shown}");
}

/// Holds the store open the way a running node does: with a second
/// `credence` process that keeps it open until killed. sled locks a store
/// per process, so the holder must be another process: `credence import`
/// opens the store first, then blocks reading a FIFO nobody writes.
fn hold_store(data: &std::path::Path) -> HeldStore {
    let fifo = data.join("hold.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let child = std::process::Command::new(credence_bin())
        .args(["import", "--data", arg(data), arg(&fifo)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The child opens the store before it opens the FIFO. Opening a FIFO
    // for writing without blocking fails until a reader has it open, so
    // the first successful open proves the child holds the store. The
    // write end stays open so that the child keeps waiting.
    const O_NONBLOCK: i32 = 0o4000; // Linux
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let writer = loop {
        let attempt = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&fifo);
        if let Ok(writer) = attempt {
            break writer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never took the store"
        );
        std::thread::yield_now();
    };
    HeldStore {
        child,
        fifo,
        _writer: writer,
    }
}

struct HeldStore {
    child: std::process::Child,
    fifo: std::path::PathBuf,
    _writer: std::fs::File,
}

impl Drop for HeldStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.fifo);
    }
}

// Files that are not what they claim: an audit of a non-bundle, a genesis
// with a member missing its key, a roster of another federation.
#[test]
fn wrong_files_are_refused() {
    let fed = two_authorities();
    let not_bundle = fed.path("notes.txt");
    std::fs::write(&not_bundle, "meeting notes").unwrap();
    let audit = credence(&["audit", arg(&not_bundle)]).code(2);
    assert!(
        audit.stderr.contains("not a credence bundle"),
        "{}",
        audit.stderr
    );
    let members = fed.path("members.toml");
    let genesis = credence(&[
        "federation",
        "genesis",
        "--catalog",
        arg(&configs_dir().join("catalog.toml")),
        "--members",
        arg(&members),
        "--key",
        &format!("issuer=@{}", arg(&fed.issuer)),
        "--out",
        arg(&fed.path("r2.toml")),
    ])
    .code(2);
    assert!(
        genesis.stderr.contains("has no key") && genesis.stderr.contains("--key implementer="),
        "{}",
        genesis.stderr
    );
    let unknown = credence(&[
        "show",
        "--purpose",
        credence_tests::PURPOSE,
        "--legal-basis",
        credence_tests::LEGAL_BASIS,
        "--data",
        arg(&fed.issuer),
        "--listing",
        "00",
    ])
    .code(2);
    assert!(
        unknown.stderr.contains("64 hex characters"),
        "{}",
        unknown.stderr
    );
    let fresh = fed.path("fresh");
    credence(&["init", "--data", arg(&fresh)]).ok();
    let outsider = credence(&[
        "federation",
        "join",
        "--data",
        arg(&fresh),
        "--roster",
        arg(&fed.roster),
    ])
    .code(2);
    assert!(
        outsider.stderr.contains("is not a member"),
        "{}",
        outsider.stderr
    );
    let again = credence(&["init", "--data", arg(&fresh)]).code(2);
    assert!(
        again.stderr.contains("already holds a credence node"),
        "{}",
        again.stderr
    );
}

//! Fail-stop storage under real disk faults, on real `credence run`
//! processes:
//!
//! - a full disk: a member's store lives on a small tmpfs of its own;
//!   notices are issued until the store cannot write (mounting needs root:
//!   ignored by default, `.ci/run` runs it with `--ignored`);
//! - a failing disk: `tests/faults/eio.c`, loaded with `LD_PRELOAD`, makes
//!   every write and fsync under the member's store fail with EIO once a
//!   trigger file exists.
//!
//! Either way the node must stop with a message that names the cause,
//! having acknowledged only what is durable; with a working disk again it
//! restarts with every acknowledged notice, continues its log at the right
//! seq, and no node records a fork. A read the failing disk cannot
//! register is not answered either.

use credence_tests::cluster::{Cluster, Peer, cluster, listing, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted over a directory for the test's lifetime (what the
/// directory held is copied in first).
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let aside = at.with_extension("aside");
        std::fs::create_dir_all(at).expect("store directory");
        std::fs::rename(at, &aside).expect("move the store aside");
        std::fs::create_dir_all(at).expect("mount point");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(at)],
        );
        let copied = Command::new("cp")
            .args(["-a", &format!("{}/.", s(&aside)), s(at)])
            .status()
            .expect("cp runs");
        assert!(copied.success(), "copying the store onto the tmpfs");
        Tmpfs {
            at: at.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        run(
            "mount",
            &["-o", &format!("remount,size={size}"), s(&self.at)],
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

#[test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it with --ignored"]
fn a_full_disk_stops_the_node_and_loses_nothing_acknowledged() {
    let mut c = cluster(&["market", "tax"]);
    let store = c.at("market").dir.join("store");
    let disk = Tmpfs::mount(&store, "12m");
    c.start_all();

    // Issue until the store cannot take more.
    let mut acknowledged: Vec<String> = Vec::new();
    let mut refusal = None;
    let started = Instant::now();
    for n in 0..200_000u64 {
        let body = serde_json::to_value(listing(n)).expect("notice JSON");
        let (status, answer) = c.at("market").post("/v1/notices", &body);
        if status == 201 {
            acknowledged.push(answer["id"].as_str().expect("id").to_string());
            continue;
        }
        refusal = Some((status, answer));
        break;
    }
    assert!(
        started.elapsed() < Duration::from_secs(600),
        "the disk never filled"
    );
    assert!(
        !acknowledged.is_empty(),
        "nothing was issued before the disk filled"
    );
    let (status, answer) = refusal.expect("the store filled");
    // The request in flight is refused (or its connection closed, 0) and
    // the node stops on its own with the reason.
    assert_ne!(status, 201, "{answer}");
    let (code, log) = stops_with_an_error(&mut c);
    assert!(
        log.contains("stopping:") && log.to_lowercase().contains("no space left"),
        "the log names the cause:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );

    let stopping = stopping_line(&log);
    eprintln!(
        "full disk: {} notices acknowledged, then HTTP {status}; the node stopped with exit code {code:?}: {stopping}",
        acknowledged.len()
    );

    // Room again: the node comes back with everything it acknowledged.
    disk.resize("256m");
    comes_back_whole(&mut c, &acknowledged);
}

/// Waits for `market` to stop on its own; it must say it failed. Returns
/// its exit code and log.
fn stops_with_an_error(c: &mut Cluster) -> (Option<i32>, String) {
    let code = c.peer("market").wait_exit();
    assert_ne!(
        code,
        Some(0),
        "a node whose store cannot write stops with an error"
    );
    (code, c.at("market").log())
}

/// The line of a node's log that says why it stopped.
fn stopping_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("stopping:"))
        .unwrap_or_default()
}

/// The seq of `market`'s log as `peer` holds it.
fn market_seq(c: &Cluster, peer: &Peer) -> u64 {
    let me = c.at("market").get("/v1/status")["authority"]
        .as_str()
        .expect("authority")
        .to_string();
    peer.get("/v1/status")["authors"]
        .as_array()
        .expect("authors")
        .iter()
        .find(|a| a["author"] == me.as_str())
        .and_then(|a| a["seq"].as_u64())
        .unwrap_or(0)
}

/// `market`, stopped by a disk fault, restarts on a working disk with every
/// notice it acknowledged, issues the next seq, and nobody saw a fork.
fn comes_back_whole(c: &mut Cluster, acknowledged: &[String]) {
    c.peer("market").start();
    wait_for("market ready again", || {
        c.at("market").get("/v1/status")["ready"] == true
    });
    let seq_after_restart = market_seq(c, c.at("market"));
    assert!(
        seq_after_restart >= acknowledged.len() as u64,
        "acknowledged {} notices, the log holds {seq_after_restart}",
        acknowledged.len()
    );
    for id in acknowledged.iter().rev().take(50) {
        assert!(c.at("market").has_listing(id), "acknowledged {id} lost");
    }
    // It continues at the right seq, and the other member agrees.
    let next = c.at("market").issue(&listing(900_000));
    assert!(c.at("market").has_listing(&next));
    assert_eq!(market_seq(c, c.at("market")), seq_after_restart + 1);
    c.wait_converged(&["market", "tax"]);
    for id in acknowledged.iter().rev().take(50) {
        assert!(c.at("tax").has_listing(id), "{id} never reached tax");
    }
    for peer in &c.peers {
        assert_eq!(
            peer.metric("credence_forks_total"),
            0,
            "{} recorded a fork",
            peer.handle
        );
    }
    c.peer("market").stop();
    c.peer("tax").stop();
}

/// The fault-injection library built into `work`, and the trigger file
/// that makes `market`'s store fail once it exists (`market` loads it).
fn failing_market(work: &Path) -> (Cluster, PathBuf) {
    let library = work.join("libeio.so");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("faults/eio.c");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("a C compiler (cc) to build the fault-injection library");
    assert!(built.success(), "building {}", source.display());
    let trigger = work.join("fail-now");
    let mut c = cluster(&["market", "tax"]);
    let store = c.at("market").dir.join("store");
    c.peer("market").env = vec![
        ("LD_PRELOAD".into(), s(&library).into()),
        ("CREDENCE_EIO_TRIGGER".into(), s(&trigger).into()),
        ("CREDENCE_EIO_PATH".into(), format!("{}/", s(&store))),
    ];
    (c, trigger)
}

#[test]
fn a_failing_disk_stops_the_node_and_loses_nothing_acknowledged() {
    let work = tempfile::tempdir().expect("temporary directory");
    let (mut c, trigger) = failing_market(work.path());
    c.start_all();
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        acknowledged.push(c.at("market").issue(&listing(n)));
    }
    // The disk starts failing: the next notice cannot be made durable.
    std::fs::write(&trigger, b"").expect("trigger");
    let body = serde_json::to_value(listing(100)).expect("notice JSON");
    let (status, answer) = c.at("market").post("/v1/notices", &body);
    assert_ne!(status, 201, "acknowledged on a failing disk: {answer}");
    let (code, log) = stops_with_an_error(&mut c);
    let stopping = stopping_line(&log);
    assert!(
        stopping.contains("Input/output error") || stopping.contains("os error 5"),
        "the log names the cause:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    eprintln!("failing disk: HTTP {status}, exit code {code:?}: {stopping}");
    // The disk works again.
    std::fs::remove_file(&trigger).expect("trigger removed");
    comes_back_whole(&mut c, &acknowledged);
}

#[test]
fn a_read_a_failing_disk_cannot_register_is_not_answered() {
    let work = tempfile::tempdir().expect("temporary directory");
    let (mut c, trigger) = failing_market(work.path());
    c.start_all();
    let acknowledged = vec![c.at("market").issue(&listing(7))];
    let subject = credence_protocol::testkit::uscc(7);
    let path = format!("/v1/subjects/{subject}");
    let token = c.at("market").token();
    let (status, answer) = c.at("market").request("GET", &path, Some(&token), None);
    assert_eq!(status, 200, "{answer}");
    // The disk starts failing: the lookup's record cannot be made
    // durable, so the lookup is refused, and the node stops.
    std::fs::write(&trigger, b"").expect("trigger");
    let (status, answer) = c.at("market").request("GET", &path, Some(&token), None);
    assert_ne!(
        status, 200,
        "answered a read it could not register: {answer}"
    );
    assert!(answer["listings"].is_null(), "{answer}");
    let (code, log) = stops_with_an_error(&mut c);
    let stopping = stopping_line(&log);
    assert!(
        stopping.contains("register of reads could not be made durable"),
        "the log names the cause:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    eprintln!("failing disk, a read: HTTP {status}, exit code {code:?}: {stopping}");
    std::fs::remove_file(&trigger).expect("trigger removed");
    comes_back_whole(&mut c, &acknowledged);
    // The register verifies, the first lookup's record in it.
    c.peer("market").stop();
    let verified = credence_tests::credence(&[
        "register",
        "verify",
        "--data",
        credence_tests::arg(&c.at("market").dir),
    ])
    .ok();
    assert!(
        verified.stdout.contains("REGISTER VALID"),
        "{}",
        verified.stdout
    );
    c.peer("tax").stop();
}

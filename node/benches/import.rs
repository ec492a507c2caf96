//! `credence import-csv` of an existing list into a stopped node (every
//! row validated, signed at most once under its idempotency key,
//! journaled, the rows of each batch sharing one flush), beside the rate
//! at which this machine signs the same listings' canonical bodies, one
//! core, measured in the same run.
//!
//! ROWS sets the rows (default 20,000: an author's notice burst,
//! `AUTHOR_NOTICE_BURST`). Past the burst the flood budget lets an
//! author's log grow by `AUTHOR_NOTICES_PER_HOUR` only, so a larger import
//! first has the federation grant the member an allowance of the rows
//! past the burst: a roster version (format 2), proposed and submitted
//! with `credence federation` as an operator would (the benchmark's
//! federation has one member, threshold one).
//!
//! Run: `cargo bench -p credence-node --bench import`
//! (`ROWS=1000000 cargo bench -p credence-node --bench import` for the
//! issue's million rows: about 160 MB of CSV and 11 minutes).

use credence_crypto::NOTICE_DOMAIN;
use credence_protocol::codec;
use credence_protocol::model::{NOTICE_VERSION, Notice, NoticeId, NoticeKind};
use credence_protocol::replica::{AUTHOR_NOTICE_BURST, AUTHOR_NOTICES_PER_HOUR};
use credence_protocol::testkit;
use credence_protocol::time::Timestamp;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_credence");

fn credence(args: &[&str]) {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("credence runs");
    assert!(
        output.status.success(),
        "credence {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn main() {
    let rows: u64 = std::env::var("ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(AUTHOR_NOTICE_BURST);
    let root = tempfile::tempdir().expect("temporary directory");
    let data = root.path().join("market");
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    credence(&["init", "--data", path(&data), "--name", "market"]);
    let members = root.path().join("members.toml");
    std::fs::write(
        &members,
        r#"name = "import benchmark"
threshold = 1

[[members]]
handle = "market"
name = "Fuzhou Municipal Market Regulation Bureau"
region = "350100"
department = "market regulation"
issues_black = ["food-drug", "quality", "production-safety"]
issues_red = ["food-drug", "quality"]
implements = ["more-inspections"]
listen = ["/ip4/127.0.0.1/tcp/7101"]
"#,
    )
    .expect("members file");
    let roster = root.path().join("roster.toml");
    credence(&[
        "federation",
        "genesis",
        "--catalog",
        path(&configs.join("catalog.toml")),
        "--members",
        path(&members),
        "--out",
        path(&roster),
        "--key",
        &format!("market=@{}", path(&data)),
    ]);
    credence(&[
        "federation",
        "join",
        "--data",
        path(&data),
        "--roster",
        path(&roster),
    ]);

    if rows > AUTHOR_NOTICE_BURST {
        let allowed = rows - AUTHOR_NOTICE_BURST;
        let change = root.path().join("allow.toml");
        std::fs::write(
            &change,
            format!("[[allow]]\nmember = \"Fuzhou Municipal Market Regulation Bureau\"\nnotices = {allowed}\n"),
        )
        .expect("change file");
        let proposal = root.path().join("allow.proposal");
        credence(&[
            "federation",
            "propose",
            "--data",
            path(&data),
            "--change",
            path(&change),
            "--out",
            path(&proposal),
        ]);
        credence(&[
            "federation",
            "submit",
            "--data",
            path(&data),
            "--proposal",
            path(&proposal),
        ]);
        println!(
            "roster version 1 grants the importing member an allowance of {allowed} notices past its {AUTHOR_NOTICE_BURST}-notice burst"
        );
    }

    let mut csv = String::from(
        "subject_kind,subject_id,subject_name,list,category,severity,reason,legal_basis,document_number\n",
    );
    for n in 0..rows {
        writeln!(
            csv,
            "legal_person,{},Company {n} Ltd.,black,food-drug,serious,sold a recalled batch after an order to stop,Food Safety Law art. 123,RSJ-2026-{n:07}",
            testkit::uscc(n)
        )
        .expect("row");
    }
    let file = root.path().join("list.csv");
    std::fs::write(&file, &csv).expect("CSV file");

    let started = Instant::now();
    credence(&["--json", "import-csv", path(&file), "--data", path(&data)]);
    let import = started.elapsed().as_secs_f64();

    // The same listings' canonical bodies, signed one after another.
    let key = testkit::key(1, 0);
    let author = credence_protocol::model::AuthorityId(key.public_bytes());
    let t = Timestamp(1_767_225_600_000);
    let bodies: Vec<Vec<u8>> = (0..rows)
        .map(|n| {
            let notice = Notice {
                version: NOTICE_VERSION,
                federation: credence_protocol::model::FederationId([1; 32]),
                roster: 0,
                author,
                seq: n + 1,
                prev: NoticeId::default(),
                issued_at: t,
                kind: NoticeKind::List(testkit::listing(n, "food-drug", t)),
            };
            codec::encode_notice(&notice).expect("canonical body")
        })
        .collect();
    let started = Instant::now();
    for body in &bodies {
        std::hint::black_box(key.sign(NOTICE_DOMAIN, body));
    }
    let signing = started.elapsed().as_secs_f64();

    let rate = rows as f64 / import;
    let raw = rows as f64 / signing;
    println!("import-csv, node stopped:  {rows} rows in {import:.1} s: {rate:>8.0} rows/s");
    println!(
        "raw ed25519 signing:       {rows} bodies in {signing:.2} s: {raw:>8.0} signatures/s (one core)"
    );
    println!(
        "import at {:.1}% of the raw signing rate (without an allowance, rows past the {AUTHOR_NOTICE_BURST}-notice burst would go in at {AUTHOR_NOTICES_PER_HOUR} an hour)",
        100.0 * rate / raw,
    );
}

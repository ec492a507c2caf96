//! `credence import-csv`: loads an existing list into this authority's log,
//! one listing per row, through the running node (its API, several
//! requests at once) or, when it is not running, through its store.
//!
//! Every row is checked first, against the same rules the node applies
//! when it signs ([`validate::check_notice`]): a file with a bad row stores
//! nothing unless `--skip-bad` is given, and `--dry-run` only reports. Each
//! row is signed at most once: under the idempotency key
//! `import-<file digest>-<line>`, and recorded in a journal in the data
//! directory, so that an import stopped anywhere (Ctrl-C, a crash, a full
//! disk) is resumed by running the same command again.

use super::operator::Operator;
use crate::accounts::NODE_ACCOUNT;
use crate::api::request_hash;
use crate::node::{self, IssueKey, IssueOutcome};
use anyhow::{Context, Result, bail};
use credence_protocol::model::{
    AuthorityId, Classification, LinkedPerson, ListKind, Listing, NOTICE_VERSION, Notice, NoticeId,
    NoticeKind, Severity, Subject, SubjectKind,
};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use credence_protocol::validate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Largest file taken.
pub const IMPORT_FILE_BYTES_MAX: u64 = 4 << 30;
/// Most rows in one file.
pub const IMPORT_ROWS_MAX: u64 = 10_000_000;
/// Longest row, in bytes.
pub const ROW_BYTES_MAX: usize = 64 * 1024;
/// Bad rows listed in a report (all are counted).
const BAD_ROWS_SHOWN_MAX: usize = 1_000;
/// Requests in flight at once to a running node.
const IN_FLIGHT: usize = 16;
/// The journal is made durable every this many rows (and at the end); a
/// row signed but not yet journaled is found again by its idempotency key.
const JOURNAL_SYNC_ROWS: u64 = 1_000;
/// The route listings are issued through (part of each key's request).
const ROUTE: &str = "/v1/notices";

/// The columns of an import file: name, required, what it holds. The
/// header names them, in any order; values use the API's JSON names.
pub const COLUMNS: &[(&str, bool, &str)] = &[
    (
        "subject_kind",
        true,
        "legal_person, other_organisation or natural_person",
    ),
    (
        "subject_id",
        true,
        "USCC or resident identity number (check character verified)",
    ),
    ("subject_name", true, "registered name"),
    ("list", true, "red or black"),
    ("category", true, "category code of the catalog"),
    ("severity", true, "minor, general or serious"),
    ("reason", true, "what the subject did"),
    ("legal_basis", true, "the legal basis (citation)"),
    ("document_number", true, "the decision document number"),
    (
        "measures",
        false,
        "measure codes separated by ';' (the catalog's mandatory ones are added)",
    ),
    (
        "effective_at",
        false,
        "YYYY-MM-DD (midnight UTC) or unix milliseconds; default: now",
    ),
    (
        "publish_until",
        false,
        "end of publication; default: the catalog's period",
    ),
    (
        "share_until",
        false,
        "end of sharing; default: the catalog's period",
    ),
    (
        "repair_from",
        false,
        "earliest credit repair; default: the catalog's period",
    ),
    (
        "classification",
        false,
        "public (default), restricted, named or auditors",
    ),
    (
        "readers",
        false,
        "members a named listing is shared with, by roster name or key, separated by ';'",
    ),
    (
        "linked",
        false,
        "linked persons as role:id:name separated by ';' (role legal_representative or responsible_person)",
    ),
    (
        "checksum_override",
        false,
        "true to accept an identifier whose check character does not match",
    ),
];

/// What the command was asked to do.
pub(super) struct ImportArgs<'a> {
    pub data: &'a Path,
    pub file: &'a Path,
    pub dry_run: bool,
    pub skip_bad: bool,
    pub json: bool,
}

/// A row that cannot be imported, and why.
#[derive(Clone, Debug, Serialize)]
pub struct BadRow {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// What an import did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// The file's BLAKE3 digest (hex): its journal and keys are named by it.
    pub file_digest: String,
    /// Data rows in the file.
    pub rows: u64,
    /// Rows that would be or were signed.
    pub good: u64,
    /// Rows that cannot be imported, counted.
    pub bad_rows: u64,
    /// The first of them, with their lines and reasons.
    pub bad: Vec<BadRow>,
    /// Rows signed by this run.
    pub signed: u64,
    /// Rows an earlier run had signed already (journal or idempotency
    /// key).
    pub already: u64,
    /// Nothing was stored (a dry run, or bad rows without `--skip-bad`).
    pub dry_run: bool,
    /// Good rows no earlier run journaled: the notices still to sign (at
    /// most: a row signed by a run that lost its journal is found by its
    /// idempotency key and takes no notice).
    pub to_sign: u64,
    /// Notices this member's log could take when the import began, by the
    /// flood budget every replica enforces and any allowance granted.
    pub budget: u64,
}

impl ImportReport {
    /// Notices the budget lacks for the rows to sign.
    fn short(&self) -> u64 {
        self.to_sign.saturating_sub(self.budget)
    }
}

/// Runs the import; the exit status is 0 when every row is in (or, in a
/// dry run, would go in), 1 otherwise.
pub(super) fn run(args: ImportArgs<'_>) -> Result<i32> {
    let key = crate::keyfile::read(&args.data.join(node::KEY_FILE))?;
    let me = AuthorityId(key.public_bytes());
    // Rows are checked against the federation as it stands now (the
    // genesis roster and the versions the node holds), and signed through
    // the running node or the data directory.
    let mut operator = Operator::open(args.data)?;
    let federation = match &operator {
        Operator::Running(client) => super::operator::running_federation(client, args.data)?,
        Operator::Local(node) => node.federation().clone(),
    };
    let author = federation.member_of_key(&me).unwrap_or(me);
    let size = std::fs::metadata(args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    if size > IMPORT_FILE_BYTES_MAX {
        bail!(
            "{} has {size} bytes, more than the {IMPORT_FILE_BYTES_MAX} an import takes: split it",
            args.file.display()
        );
    }
    let digest = file_digest(args.file)?;
    let journal_path = args
        .data
        .join("imports")
        .join(format!("{}.journal", &digest[..32]));
    // A resumed import builds every row as the first run did (a row
    // without `effective_at` takes the first run's time), so that its
    // idempotency key stands for the same request.
    let now = Journal::started(&journal_path)?.unwrap_or_else(node::now);
    let mut report = ImportReport {
        file_digest: digest.clone(),
        budget: operator.notices_available(&author)?,
        ..ImportReport::default()
    };
    let done = Journal::done(&journal_path)?;
    // First pass: every row checked, nothing stored.
    let checker = Rows::new(&federation, author, now);
    let progress = bar(size, "checking", args.json);
    let mut rows = 0u64;
    read_rows(args.file, &progress, |line, row| {
        rows += 1;
        match row.and_then(|fields| checker.listing(&fields)) {
            Ok(_) => {
                report.good += 1;
                report.to_sign += u64::from(!done.contains_key(&line));
            }
            Err(reason) => {
                report.bad_rows += 1;
                if report.bad.len() < BAD_ROWS_SHOWN_MAX {
                    report.bad.push(BadRow { line, reason });
                }
            }
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    report.rows = rows;
    if args.dry_run || (report.bad_rows > 0 && !args.skip_bad) {
        report.dry_run = true;
        print_report(&report, args.json, args.skip_bad)?;
        return Ok(i32::from(report.bad_rows > 0 || report.short() > 0));
    }
    if report.short() > 0 && !args.json {
        // The import goes on: it stops where the budget does, and a run
        // once the budget refilled (or an allowance came) goes on from
        // there.
        println!("{}", budget_line(&report));
    }
    // Second pass: the good rows signed, each at most once.
    let mut journal = Journal::open(&journal_path, now)?;
    let progress = bar(report.good, "importing", args.json);
    let mut pending: Vec<(u64, NoticeKind)> = Vec::new();
    let outcome = read_rows(args.file, &indicatif::ProgressBar::hidden(), |line, row| {
        let Ok(listing) = row.and_then(|fields| checker.listing(&fields)) else {
            return Ok(());
        };
        if journal.done.contains_key(&line) {
            report.already += 1;
            progress.inc(1);
            return Ok(());
        }
        pending.push((line, NoticeKind::List(listing)));
        if pending.len() >= IN_FLIGHT * 8 {
            sign(
                &mut operator,
                &digest,
                &mut pending,
                &mut journal,
                &mut report,
            )?;
            progress.set_position(report.signed + report.already);
        }
        Ok(())
    })
    .and_then(|()| {
        sign(
            &mut operator,
            &digest,
            &mut pending,
            &mut journal,
            &mut report,
        )
    });
    progress.finish_and_clear();
    journal.sync()?;
    outcome?;
    print_report(&report, args.json, args.skip_bad)?;
    Ok(i32::from(report.bad_rows > 0))
}

/// Signs the rows gathered, through the running node several at a time or
/// through the store under one flush, and journals each.
fn sign(
    operator: &mut Operator,
    digest: &str,
    pending: &mut Vec<(u64, NoticeKind)>,
    journal: &mut Journal,
    report: &mut ImportReport,
) -> Result<()> {
    let batch = std::mem::take(pending);
    let results: Vec<(u64, Result<IssueOutcome>)> = match operator {
        Operator::Running(client) => {
            let client = &*client;
            let post = move |line: u64, kind: &NoticeKind| -> Result<IssueOutcome> {
                let body = serde_json::to_vec(kind)?;
                let (answer, replayed): (crate::views::IssueAnswer, bool) =
                    client.post_once(ROUTE, &body, &row_key(digest, line))?;
                Ok(IssueOutcome {
                    id: answer.id,
                    seq: answer.seq,
                    replayed,
                })
            };
            std::thread::scope(|scope| {
                let workers: Vec<_> = batch
                    .chunks(batch.len().div_ceil(IN_FLIGHT).max(1))
                    .map(|chunk| {
                        scope.spawn(move || {
                            chunk
                                .iter()
                                .map(|(line, kind)| (*line, post(*line, kind)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|worker| {
                        worker.join().unwrap_or_else(|_| {
                            vec![(0, Err(anyhow::anyhow!("a request thread panicked")))]
                        })
                    })
                    .collect()
            })
        }
        Operator::Local(node) => {
            // The rows share one flush.
            let mut lines = Vec::with_capacity(batch.len());
            let mut rows = Vec::with_capacity(batch.len());
            for (line, kind) in batch {
                let body = serde_json::to_vec(&kind)?;
                let key = IssueKey {
                    account: NODE_ACCOUNT.to_string(),
                    key: row_key(digest, line),
                    request: request_hash(ROUTE, &body),
                };
                lines.push(line);
                rows.push((kind, key));
            }
            lines
                .into_iter()
                .zip(node.issue_once_all(rows, node::now()))
                .map(|(line, result)| (line, result.map_err(Into::into)))
                .collect()
        }
    };
    let mut first_error = None;
    for (line, result) in results {
        match result {
            Ok(outcome) => {
                if outcome.replayed {
                    report.already += 1;
                } else {
                    report.signed += 1;
                }
                journal.record(line, &outcome.id)?;
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.context(format!("line {line}")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e.context(
            "the import stopped; rows signed so far are kept: run the same command again to go on",
        )),
        None => Ok(()),
    }
}

/// The idempotency key of a row.
fn row_key(digest: &str, line: u64) -> String {
    format!("import-{}-{line}", &digest[..32])
}

fn file_digest(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn bar(total: u64, what: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Calls `each` with every data row of the file (its line, and its fields
/// by column name or why it cannot be read). The header must name known
/// columns, each once, the required ones all.
fn read_rows(
    path: &Path,
    progress: &indicatif::ProgressBar,
    mut each: impl FnMut(u64, Result<BTreeMap<&'static str, String>, String>) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineBound {
            inner: std::io::BufReader::new(file),
            run: 0,
        });
    let mut record = csv::ByteRecord::new();
    let mut columns: Vec<&'static str> = Vec::new();
    let mut rows = 0u64;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => bail!("{}: line {line}: {e}", path.display()),
        }
        progress.set_position(reader.position().byte());
        if record.as_slice().len() > ROW_BYTES_MAX {
            if columns.is_empty() {
                bail!(
                    "{}: the header is longer than {ROW_BYTES_MAX} bytes",
                    path.display()
                );
            }
            rows += 1;
            each(
                line,
                Err(format!("the row is longer than {ROW_BYTES_MAX} bytes")),
            )?;
            continue;
        }
        if columns.is_empty() {
            columns =
                header(&record).with_context(|| format!("{}: line {line}", path.display()))?;
            continue;
        }
        rows += 1;
        if rows > IMPORT_ROWS_MAX {
            bail!(
                "{}: more than {IMPORT_ROWS_MAX} rows: split the file",
                path.display()
            );
        }
        each(line, fields(&columns, &record))?;
    }
    if columns.is_empty() {
        bail!(
            "{}: empty; the first line names the columns",
            path.display()
        );
    }
    Ok(())
}

/// A reader that fails past [`ROW_BYTES_MAX`] bytes without a line end,
/// so that a file that is not CSV (no line ends) is never read whole into
/// one record.
struct LineBound<R> {
    inner: R,
    run: usize,
}

impl<R: std::io::Read> std::io::Read for LineBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.run = if b == b'\n' { 0 } else { self.run + 1 };
            if self.run > ROW_BYTES_MAX {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a line longer than {ROW_BYTES_MAX} bytes: not a CSV file of listings"),
                ));
            }
        }
        Ok(n)
    }
}

fn header(record: &csv::ByteRecord) -> Result<Vec<&'static str>> {
    let mut columns = Vec::with_capacity(record.len());
    for field in record {
        let name = std::str::from_utf8(field).unwrap_or_default().trim();
        let Some((known, _, _)) = COLUMNS.iter().find(|(c, _, _)| *c == name) else {
            let names: Vec<&str> = COLUMNS.iter().map(|(c, _, _)| *c).collect();
            bail!(
                "unknown column {name:?}; the columns are {}",
                names.join(", ")
            );
        };
        if columns.contains(known) {
            bail!("column {name:?} named twice");
        }
        columns.push(*known);
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .filter(|(c, required, _)| *required && !columns.contains(c))
        .map(|(c, _, _)| *c)
        .collect();
    if !missing.is_empty() {
        bail!("required columns missing: {}", missing.join(", "));
    }
    Ok(columns)
}

fn fields(
    columns: &[&'static str],
    record: &csv::ByteRecord,
) -> Result<BTreeMap<&'static str, String>, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} fields, but the header names {} columns",
            record.len(),
            columns.len()
        ));
    }
    columns
        .iter()
        .zip(record)
        .map(|(column, value)| {
            let text = std::str::from_utf8(value)
                .map_err(|_| format!("{column}: not UTF-8 text"))?
                .trim();
            Ok((*column, text.to_string()))
        })
        .collect()
}

/// Turns rows into listings and checks them as the node would sign them.
struct Rows<'a> {
    federation: &'a Federation,
    author: AuthorityId,
    now: Timestamp,
}

impl<'a> Rows<'a> {
    fn new(federation: &'a Federation, author: AuthorityId, now: Timestamp) -> Rows<'a> {
        Rows {
            federation,
            author,
            now,
        }
    }

    fn listing(&self, fields: &BTreeMap<&'static str, String>) -> Result<Listing, String> {
        let get = |column: &str| fields.get(column).map(String::as_str).unwrap_or_default();
        let optional = |column: &str| Some(get(column)).filter(|v| !v.is_empty());
        let named = |column: &str| -> Result<String, String> {
            serde_json::to_string(get(column)).map_err(|e| format!("{column}: {e}"))
        };
        let kind: SubjectKind = serde_json::from_str(&named("subject_kind")?).map_err(|_| {
            format!(
                "subject_kind: {:?} is not legal_person, other_organisation or natural_person",
                get("subject_kind")
            )
        })?;
        let list: ListKind = serde_json::from_str(&named("list")?)
            .map_err(|_| format!("list: {:?} is not red or black", get("list")))?;
        let severity: Severity = serde_json::from_str(&named("severity")?).map_err(|_| {
            format!(
                "severity: {:?} is not minor, general or serious",
                get("severity")
            )
        })?;
        let classification: Classification = match optional("classification") {
            None => Classification::Public,
            Some(_) => serde_json::from_str(&named("classification")?).map_err(|_| {
                format!(
                    "classification: {:?} is not public, restricted, named or auditors",
                    get("classification")
                )
            })?,
        };
        let time = |column: &str| -> Result<Option<Timestamp>, String> {
            optional(column)
                .map(|text| Timestamp::parse(text).map_err(|e| format!("{column}: {e}")))
                .transpose()
        };
        let list_of = |column: &str| -> Vec<String> {
            optional(column)
                .map(|text| {
                    text.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let linked = list_of("linked")
            .iter()
            .map(|text| super::parse_linked(text).map_err(|e| format!("linked: {e}")))
            .collect::<Result<Vec<LinkedPerson>, String>>()?;
        let readers = super::resolve_readers(self.federation, &list_of("readers"))
            .map_err(|e| format!("readers: {e}"))?;
        let checksum_override = match optional("checksum_override") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!("checksum_override: {other:?} is not true or false"));
            }
        };
        let effective_at = time("effective_at")?.unwrap_or(self.now);
        let (listing, _) = super::complete_listing(
            self.federation,
            Listing {
                subject: Subject {
                    kind,
                    id: get("subject_id").to_string(),
                    name: get("subject_name").to_string(),
                },
                list,
                category: get("category").to_string(),
                severity,
                reason: get("reason").to_string(),
                legal_basis: get("legal_basis").to_string(),
                document_number: get("document_number").to_string(),
                measures: list_of("measures"),
                effective_at,
                publish_until: effective_at,
                share_until: effective_at,
                repair_from: effective_at,
                classification,
                evidence: Vec::new(),
                checksum_override,
                readers,
                linked,
            },
            super::Windows {
                publish_until: time("publish_until")?,
                share_until: time("share_until")?,
                repair_from: time("repair_from")?,
            },
        );
        // The rules the node applies when it signs, on a notice as it
        // would sign it.
        let notice = Notice {
            version: NOTICE_VERSION,
            roster: 0,
            federation: self.federation.id(),
            author: self.author,
            seq: 1,
            prev: NoticeId::default(),
            issued_at: self.now,
            kind: NoticeKind::List(listing),
        };
        validate::check_notice(&notice, self.federation).map_err(|e| e.to_string())?;
        match notice.kind {
            NoticeKind::List(listing) => Ok(listing),
            _ => Err("not a listing".into()),
        }
    }
}

/// The lines of a file already signed, and their notices: an append-only
/// text file in the data directory, `started MS` (the time the rows were
/// built at) then `LINE NOTICE_ID` lines.
struct Journal {
    path: PathBuf,
    done: BTreeMap<u64, NoticeId>,
    file: std::io::BufWriter<std::fs::File>,
    unsynced: u64,
}

impl Journal {
    /// The time an import of this journal started, if one did.
    fn started(path: &Path) -> Result<Option<Timestamp>> {
        let Ok(file) = std::fs::File::open(path) else {
            return Ok(None);
        };
        let mut first = String::new();
        std::io::BufReader::new(file)
            .take(64)
            .read_line(&mut first)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(first
            .trim()
            .strip_prefix("started ")
            .and_then(|ms| ms.parse().ok())
            .map(Timestamp))
    }

    /// The lines an import of this journal signed (none when there is no
    /// journal).
    fn done(path: &Path) -> Result<BTreeMap<u64, NoticeId>> {
        let mut done = BTreeMap::new();
        if let Ok(file) = std::fs::File::open(path) {
            for (n, text) in std::io::BufReader::new(file).lines().enumerate() {
                let text = text.with_context(|| format!("reading {}", path.display()))?;
                // A line cut by a crash is the last one; it is dropped and
                // its row found again by its idempotency key.
                let Some((line, id)) = text.split_once(' ') else {
                    continue;
                };
                if line == "started" {
                    continue;
                }
                let (Ok(line), Ok(id)) = (line.parse::<u64>(), id.parse::<NoticeId>()) else {
                    tracing::warn!("{}: line {} is not LINE ID; skipped", path.display(), n + 1);
                    continue;
                };
                done.insert(line, id);
            }
        }
        Ok(done)
    }

    fn open(path: &Path, started: Timestamp) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let done = Journal::done(path)?;
        let fresh = !path.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            done,
            file: std::io::BufWriter::new(file),
            unsynced: 0,
        };
        if fresh {
            writeln!(journal.file, "started {}", started.0)
                .with_context(|| format!("writing {}", path.display()))?;
            journal.sync()?;
        }
        Ok(journal)
    }

    fn record(&mut self, line: u64, id: &NoticeId) -> Result<()> {
        writeln!(self.file, "{line} {id}")
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.done.insert(line, *id);
        self.unsynced += 1;
        if self.unsynced >= JOURNAL_SYNC_ROWS {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.unsynced = 0;
        Ok(())
    }
}

/// Whether the member's notice budget covers the rows to sign, and what
/// to do when it does not.
fn budget_line(report: &ImportReport) -> String {
    match report.short() {
        0 => format!(
            "the notice budget covers the {} rows to sign ({} notices available now)",
            report.to_sign, report.budget
        ),
        short => format!(
            "the notice budget covers {} of the {} rows to sign, {short} short: have the federation grant an allowance of at least {short} notices (`[[allow]]` in `credence federation propose`), or import again as the budget refills ({} notices an hour)",
            report.budget,
            report.to_sign,
            credence_protocol::replica::AUTHOR_NOTICES_PER_HOUR
        ),
    }
}

fn print_report(report: &ImportReport, json: bool, skip_bad: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for bad in &report.bad {
        println!("line {}: {}", bad.line, bad.reason);
    }
    if report.bad_rows > report.bad.len() as u64 {
        println!(
            "... and {} more bad rows",
            report.bad_rows - report.bad.len() as u64
        );
    }
    println!(
        "{} rows: {} good, {} bad",
        report.rows, report.good, report.bad_rows
    );
    if report.dry_run {
        println!("{}", budget_line(report));
        if report.bad_rows > 0 && !skip_bad {
            println!(
                "nothing was stored: correct the rows above, or pass --skip-bad to import the good rows alone"
            );
        } else {
            println!("dry run: nothing was stored");
        }
    } else {
        println!(
            "{} listings signed now, {} signed by an earlier run{}",
            report.signed,
            report.already,
            if report.bad_rows > 0 {
                format!("; {} bad rows skipped", report.bad_rows)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

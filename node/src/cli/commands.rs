//! What each command does.

use super::audit::{audit, read_bundle, verify_receipt, write_receipt};
use super::federation::federation;
use super::operator::Operator;
use super::{
    ActionArg, Command, ListArg, ListCommand, ObjectionCommand, OutcomeArg, QueryArgs,
    ReceiptCommand, ShowArgs,
};
use crate::api::QueryBody;
use crate::daemon::QueryScope;
use crate::node::{self, Node};
use crate::render;
use crate::views::{PeersView, QueryView, Status};
use anyhow::{Context, Result, bail};
use credence_protocol::model::{
    Classification, FeedbackAction, ListKind, Listing, NoticeId, NoticeKind, Remedy, RulingOutcome,
    Subject, SubjectKind,
};
use credence_protocol::{defaults, validate};
use serde::Serialize;
use std::path::Path;

/// Prints `value` as JSON, or as text.
pub(super) fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
    Ok(())
}

/// Runs one command; returns the process exit code.
pub(super) fn run(command: Command, json: bool) -> Result<i32> {
    match command {
        Command::Init { data, name } => {
            let key = node::init(&data.data, &name)?;
            println!("initialised {} for {name}", data.data.display());
            println!(
                "authority key (public): {}",
                hex::encode(key.public_bytes())
            );
            println!(
                "next: put this key in the members file, make the genesis roster, then `credence federation join`"
            );
        }
        Command::Federation(command) => federation(command, json)?,
        Command::Account(command) => super::account::account(command, json)?,
        Command::Webhook(command) => super::webhook::webhook(command, json)?,
        Command::Register(command) => return super::register::register(command, json),
        Command::Report(args) => return super::report::report(args, json),
        Command::Extract { data, format, out } => {
            let csv = matches!(format, super::ExtractFormatArg::Csv);
            let operator = Operator::open(&data.data)?;
            match out {
                Some(path) => {
                    // Written beside, then renamed: a failed extract never
                    // leaves a partial file under the name asked for.
                    let partial = path.with_extension("partial");
                    let written = (|| -> Result<u64> {
                        let file = std::fs::File::create(&partial)?;
                        let mut writer = std::io::BufWriter::new(file);
                        let written = operator.extract(csv, &mut writer)?;
                        writer
                            .into_inner()
                            .map_err(|e| e.into_error())?
                            .sync_all()?;
                        std::fs::rename(&partial, &path)?;
                        Ok(written)
                    })();
                    let written = written
                        .inspect_err(|_| {
                            let _ = std::fs::remove_file(&partial);
                        })
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("extract written to {} ({written} bytes)", path.display());
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut writer = std::io::BufWriter::new(stdout.lock());
                    operator.extract(csv, &mut writer)?;
                    std::io::Write::flush(&mut writer)?;
                }
            }
        }
        Command::RotateKey { data } => {
            let key = node::prepare_next_key(&data.data)?;
            println!(
                "next authority key (public): {}",
                hex::encode(key.public_bytes())
            );
            println!(
                "next: propose a change with [[rotate]] member = \"<this member>\", key = \"{}\", after_seq = <the last seq the current key signs>",
                hex::encode(key.public_bytes())
            );
        }
        Command::List(command) => list(command, json)?,
        Command::Objection(command) => objection(command, json)?,
        Command::Feedback(args) => {
            let action = match args.action {
                ActionArg::Applied => FeedbackAction::Applied,
                ActionArg::Lifted => FeedbackAction::Lifted,
                ActionArg::Declined => match args.reason {
                    Some(reason) => FeedbackAction::Declined(reason),
                    None => bail!("--action declined needs --reason"),
                },
            };
            issue(
                &args.data.data,
                NoticeKind::Feedback {
                    listing: args.listing,
                    measure: args.measure,
                    action,
                },
                "feedback",
                json,
            )?;
        }
        Command::Show(args) => show(args, json)?,
        Command::Search {
            data,
            name,
            limit,
            stated,
        } => {
            let stated = stated.checked()?;
            if !(1..=crate::api::SEARCH_MAX).contains(&limit) {
                bail!("--limit is from 1 to {}", crate::api::SEARCH_MAX);
            }
            let found = Operator::open(&data.data)?.search(&name, limit, &stated)?;
            emit(json, &found, render::search)?;
        }
        Command::Tasks { data, at } => {
            let tasks = Operator::open(&data.data)?.tasks(at)?;
            emit(json, &tasks, render::tasks)?;
        }
        Command::Export { data, out, stated } => {
            let stated = stated.checked()?;
            let operator = Operator::open(&data.data)?;
            let bytes = operator.export(&stated)?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "exported {} bytes{} to {}",
                bytes.len(),
                if operator.is_running() {
                    " from the running node"
                } else {
                    ""
                },
                out.display()
            );
        }
        Command::Check { data, repair } => return super::check::run(&data.data, repair, json),
        Command::ImportCsv {
            data,
            file,
            dry_run,
            skip_bad,
        } => {
            return super::import::run(super::import::ImportArgs {
                data: &data.data,
                file: &file,
                dry_run,
                skip_bad,
                json,
            });
        }
        Command::Import { data, bundle } => {
            let mut node = Node::open(&data.data)?;
            let bundle = read_bundle(&bundle)?;
            if bundle.roster.as_slice()
                != node
                    .replica()
                    .chain()
                    .genesis()
                    .federation
                    .canonical_bytes()
            {
                bail!(
                    "the bundle is from another federation than this node's; nothing was imported"
                );
            }
            let summary = node.import(&bundle)?;
            println!(
                "imported: {} accepted, {} already held, {} pending, {} refused, {} forks, {} orphans",
                summary.accepted,
                summary.duplicates,
                summary.pending,
                summary.rejected.len(),
                summary.forks,
                summary.orphans
            );
            for refusal in &summary.rejected {
                println!("  refused {refusal}");
            }
        }
        Command::Audit { bundle, roster, at } => return audit(&bundle, roster.as_deref(), at),
        Command::Receipt(ReceiptCommand::Verify {
            file,
            roster,
            versions,
        }) => {
            return verify_receipt(&file, &roster, &versions);
        }
        Command::Demo { dir } => crate::demo::run(dir.as_deref())?,
        Command::Run { config } => {
            if let Err(error) = crate::service::run(&config) {
                // A planned stop is said as such, with its own exit status,
                // not as a failure.
                let planned = error.chain().find_map(|cause| match cause.downcast_ref() {
                    Some(node::NodeError::Restart { reason }) => Some(reason.clone()),
                    _ => None,
                });
                let Some(reason) = planned else {
                    return Err(error);
                };
                eprintln!("stopped to be started again: {reason}");
                return Ok(node::EXIT_RESTART);
            }
        }
        Command::Devnet { nodes, exit, dir } => {
            crate::devnet::run(usize::from(nodes), exit, dir.as_deref())?
        }
        Command::Query(args) => query(args, json)?,
        Command::Status { data } => {
            let status: Status = Operator::running(&data.data)?.get("/v1/status")?;
            emit(json, &status, render::status)?;
        }
        Command::Peers { data } => {
            let peers: PeersView = Operator::running(&data.data)?.get("/v1/peers")?;
            emit(json, &peers, render::peers)?;
        }
        Command::Recover { data, seq, id } => {
            // A running node holds its store: opening it says so.
            let mark = node::recover(&data.data, seq, id)?;
            println!(
                "own-log mark written: seq {} id {}",
                mark.seq,
                hex::encode(mark.id.0)
            );
            println!(
                "the node issues once its store holds that notice (from its peers), and continues at seq {}",
                mark.seq + 1
            );
        }
    }
    Ok(0)
}

fn query(args: QueryArgs, json: bool) -> Result<()> {
    let client = Operator::running(&args.data.data)?;
    let kind = SubjectKind::from(args.subject_kind).name();
    let body = QueryBody {
        subject_kind: Some(kind.into()),
        subject_id: args.subject.clone(),
        purpose: args.purpose,
        legal_basis: args.legal_basis,
        scope: Some(if args.local {
            QueryScope::Local
        } else {
            QueryScope::Federation
        }),
        deadline_ms: None,
        page: Some(args.page),
    };
    let answer: QueryView = client.post("/v1/query", &body)?;
    if let Some(path) = &args.receipt {
        // The roster as the node holds it now: answers may hold notices of
        // members added since genesis, or signed under a rotated key.
        let federation = super::operator::running_federation(&client, &args.data.data)?;
        write_receipt(path, &answer, &federation)?;
    }
    emit(json, &answer, |a| render::query(&args.subject, a))?;
    if let Some(path) = &args.receipt {
        eprintln!("receipt written to {}", path.display());
    }
    Ok(())
}

/// Signs a notice through the node of `dir`, running or not.
fn issue(dir: &Path, kind: NoticeKind, what: &str, json: bool) -> Result<NoticeId> {
    let mut operator = Operator::open(dir)?;
    let answer = operator.issue(kind)?;
    let running = operator.is_running();
    emit(json, &answer, |a| {
        format!(
            "{what} {} (seq {}), signed and made durable\n  {}\n",
            a.id,
            a.seq,
            if running {
                "published by the running node"
            } else {
                "the node is not running: its peers get it by sync once it runs"
            }
        )
    })?;
    Ok(answer.id)
}

fn list(command: ListCommand, json: bool) -> Result<()> {
    match command {
        ListCommand::Add(args) => {
            let effective_at = args.effective.unwrap_or_else(node::now);
            let federation = node::read_roster(&args.data.data.join(node::ROSTER_FILE))?;
            let severity = args.severity.into();
            let list = match args.list {
                ListArg::Red => ListKind::Red,
                ListArg::Black => ListKind::Black,
            };
            let listing = Listing {
                subject: Subject {
                    kind: args.subject_kind.into(),
                    id: args.subject.clone(),
                    name: args.name.clone(),
                },
                list,
                category: args.category.clone(),
                severity,
                reason: args.reason.clone(),
                legal_basis: args.legal_basis.clone(),
                document_number: args.document.clone(),
                measures: args.measures.clone(),
                effective_at,
                // Completed below from the catalog.
                publish_until: effective_at,
                share_until: effective_at,
                repair_from: effective_at,
                classification: if args.restricted {
                    Classification::Restricted
                } else {
                    args.level.into()
                },
                evidence: args.evidence.collect()?,
                checksum_override: args.override_checksum,
                readers: super::resolve_readers(&federation, &args.readers)?,
                linked: args.linked.clone(),
            };
            // The measures the catalog makes mandatory for this category
            // and severity are triggered whether named or not.
            let (listing, added) = super::complete_listing(
                &federation,
                listing,
                super::Windows {
                    publish_until: args.publish_until,
                    share_until: args.share_until,
                    repair_from: args.repair_from,
                },
            );
            if !added.is_empty() && !json {
                println!(
                    "mandatory for {} at severity {}: {} added",
                    listing.category,
                    validate::severity_name(severity),
                    added.join(", ")
                );
            }
            issue(&args.data.data, NoticeKind::List(listing), "listing", json)?;
        }
        ListCommand::Amend(args) => {
            let federation = node::read_roster(&args.data.data.join(node::ROSTER_FILE))?;
            let changes = args.changes.changes(&federation)?;
            if changes.is_empty() {
                bail!("nothing to amend: give at least one field to change (see --help)");
            }
            issue(
                &args.data.data,
                NoticeKind::Amend {
                    listing: args.listing,
                    changes,
                },
                "amendment",
                json,
            )?;
        }
        ListCommand::Repair {
            data,
            listing,
            reason,
            evidence,
        } => {
            let evidence = evidence.collect()?;
            issue(
                &data.data,
                NoticeKind::Repair {
                    listing,
                    reason,
                    evidence,
                },
                "repair",
                json,
            )?;
        }
        ListCommand::Withdraw {
            data,
            listing,
            reason,
            restore_reputation,
        } => {
            issue(
                &data.data,
                NoticeKind::Withdraw {
                    listing,
                    reason,
                    restore_reputation,
                },
                "withdrawal",
                json,
            )?;
        }
    }
    Ok(())
}

fn objection(command: ObjectionCommand, json: bool) -> Result<()> {
    match command {
        ObjectionCommand::File {
            data,
            listing,
            grounds,
            respond_by,
        } => {
            let federation = node::read_roster(&data.data.join(node::ROSTER_FILE))?;
            let window = federation.roster().objection_window_ms;
            let respond_by =
                respond_by.unwrap_or_else(|| defaults::respond_by(node::now(), window));
            issue(
                &data.data,
                NoticeKind::Object {
                    listing,
                    grounds,
                    respond_by,
                },
                "objection (the issuer must rule by the deadline)",
                json,
            )?;
        }
        ObjectionCommand::Rule(args) => {
            let federation = node::read_roster(&args.data.data.join(node::ROSTER_FILE))?;
            let changes = args.changes.changes(&federation)?;
            let outcome = match args.outcome {
                OutcomeArg::Reject => RulingOutcome::Rejected,
                OutcomeArg::UpholdWithdraw => RulingOutcome::Upheld(Remedy::Withdraw),
                OutcomeArg::UpholdCorrect if changes.is_empty() => {
                    bail!("--outcome uphold-correct needs the corrected fields (see --help)")
                }
                OutcomeArg::UpholdCorrect => {
                    RulingOutcome::Upheld(Remedy::Correct(changes.clone()))
                }
            };
            if !changes.is_empty() && !matches!(args.outcome, OutcomeArg::UpholdCorrect) {
                bail!("field changes only go with --outcome uphold-correct");
            }
            issue(
                &args.data.data,
                NoticeKind::Rule {
                    objection: args.objection,
                    outcome,
                    reason: args.reason,
                },
                "ruling",
                json,
            )?;
        }
    }
    Ok(())
}

fn show(args: ShowArgs, json: bool) -> Result<()> {
    let stated = args.stated.checked()?;
    let operator = Operator::open(&args.data.data)?;
    if let Some(id) = args.listing {
        let listing = operator.listing(&id, args.at, &stated)?;
        return emit(json, &listing, |l| render::listing(l, true));
    }
    let Some(subject) = args.subject else {
        bail!("give --subject ID or --listing ID");
    };
    let kind: SubjectKind = args.subject_kind.into();
    // An identifier that fails its check is looked up all the same (a
    // listing issued with the checksum override names it); the answer
    // says so (`identifier_problem`).
    let view = operator.subject(kind, &subject, args.at, &stated)?;
    emit(json, &view, render::subject)
}

//! `credence devnet`: N nodes on loopback, each with its own data
//! directory, generated key and sled store, running in this process over
//! real libp2p connections; a scripted scenario shows a listing, an
//! objection, a ruling, feedback, a repair and a cross-region query reach
//! every node, with the time each step took to get there.

use crate::config::{LogFormat, RunConfig};
use crate::daemon::GovernRequest;
use crate::daemon::{Command, Handle, QueryAsk, QueryScope, Read, Stated, Status};
use crate::demo::{CATALOG_TOML, MEMBERS_TOML, REPRESENTATIVE_ID, SUBJECT_ID, example_listing};
use crate::node;
use crate::service::{self, Running};
use crate::views::RosterView;
use anyhow::{Context, Result, bail};
use credence_protocol::fold::TaskAction;
use credence_protocol::governance::proposal::{ChangeDocument, RotateDocument};
use credence_protocol::model::{FeedbackAction, NoticeId, NoticeKind, RulingOutcome, SubjectKind};
use credence_protocol::roster::{CatalogDocument, MemberDocument, MembersDocument, RosterDocument};
use credence_protocol::time::DAY_MS;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How long a step may take to reach every node before the devnet gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks a node's loop and waits for the answer.
pub async fn call<T>(
    handle: &Handle,
    make: impl FnOnce(oneshot::Sender<Result<T, crate::daemon::DaemonError>>) -> Command,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    handle
        .commands
        .send(make(tx))
        .await
        .context("the node stopped")?;
    rx.await
        .context("the node stopped")?
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `count` different ports on 127.0.0.1 that were free a moment ago: all
/// held at once while they are chosen, so that no two are the same. The
/// devnet gives each node both its ports this way: a port left for the
/// kernel to choose at start (`:0`) could be one another node was given
/// and has not bound yet.
pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").context("binding a loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Creates `count` data directories under `root` with a genesis roster
/// that lists each on its own loopback port. Returns their run
/// configurations (HTTP on a loopback port of its own) in member order.
pub fn prepare(
    root: &Path,
    count: usize,
    sync_interval: Duration,
) -> Result<Vec<(String, RunConfig)>> {
    let mut members: MembersDocument = toml::from_str(MEMBERS_TOML).context("embedded members")?;
    let listed = members.members.len();
    while members.members.len() < count {
        let n = members.members.len() + 1;
        let mut extra = members.members[0].clone();
        extra.handle = format!("county-{n}");
        extra.name = format!("County {n} Market Regulation Bureau");
        extra.region = format!("3501{n:02}");
        extra.issues_black = vec!["food-drug".into()];
        extra.issues_red = Vec::new();
        extra.implements = vec!["more-inspections".into()];
        extra.auditor = false;
        members.members.push(extra);
    }
    // The file's threshold is for its own members; for any other count
    // the roster takes the default (two thirds, at least a majority).
    if listed != count {
        members.threshold = None;
    }
    members.members.truncate(count);
    let mut configs = Vec::new();
    let ports = free_ports(2 * members.members.len())?;
    for (member, ports) in members.members.iter_mut().zip(ports.chunks_exact(2)) {
        let dir = root.join(&member.handle);
        let key = node::init(&dir, &member.handle)?;
        member.key = hex::encode(key.public_bytes());
        member.listen = vec![format!("/ip4/127.0.0.1/tcp/{}", ports[0])];
        configs.push((
            member.name.clone(),
            RunConfig {
                data: dir,
                listen: vec![member.listen[0].parse().context("listen address")?],
                bootstrap: Vec::new(),
                http: format!("127.0.0.1:{}", ports[1])
                    .parse()
                    .context("http address")?,
                sync_interval,
                mdns: false,
                log: LogFormat::Human,
                register_retention: None,
            },
        ));
    }
    let catalog: CatalogDocument = toml::from_str(CATALOG_TOML).context("embedded catalog")?;
    let roster_path = root.join("roster.toml");
    std::fs::write(
        &roster_path,
        RosterDocument::from_parts(catalog, members).to_toml(),
    )?;
    for (_, config) in &configs {
        node::join(&config.data, &roster_path, &[])?;
    }
    Ok(configs)
}

/// Waits until every node is connected to every other and ready.
pub async fn wait_connected(nodes: &[Running]) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut all = true;
        let mut states = Vec::new();
        for node in nodes {
            let status: Status = call(&node.handle, Command::Status).await?;
            all &= status.ready && status.peers.len() + 1 == nodes.len();
            states.push(format!(
                "{}: {} peer(s), issuing {}{}",
                status.name,
                status.peers.len(),
                status.issuing,
                if status.issuing_detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", status.issuing_detail)
                }
            ));
        }
        if all {
            return Ok(());
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!(
                "the nodes did not all connect and become ready within {STEP_TIMEOUT:?}: {}",
                states.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stamps every notice a node accepts with the instant it was seen, on a
/// task of its own, so that later reads still see when it happened.
pub fn watch(handle: &Handle) -> mpsc::UnboundedReceiver<(NoticeId, Instant)> {
    let mut rx = handle.accepted.subscribe();
    let (tx, stamped) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(id) => {
                    if tx.send((id, Instant::now())).is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    stamped
}

/// Waits until `id` was accepted on every watched node; returns the time
/// each took from `since`.
pub async fn reach_all(
    watched: &mut [mpsc::UnboundedReceiver<(NoticeId, Instant)>],
    id: NoticeId,
    since: Instant,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(watched.len());
    for rx in watched.iter_mut() {
        let deadline = since + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((got, at))) if got == id => {
                    times.push(at.saturating_duration_since(since));
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => bail!("a node stopped"),
                Err(_) => bail!("notice {id} did not reach every node within {STEP_TIMEOUT:?}"),
            }
        }
    }
    Ok(times)
}

struct Scenario<'a> {
    nodes: &'a [Running],
    names: Vec<String>,
    started: Instant,
    step: usize,
}

impl Scenario<'_> {
    async fn issue(&mut self, by: usize, what: &str, kind: NoticeKind) -> Result<NoticeId> {
        self.step += 1;
        println!("\n[{:>2}] {} {what}", self.step, self.names[by]);
        let mut receivers: Vec<_> = self.nodes.iter().map(|n| watch(&n.handle)).collect();
        let since = Instant::now();
        let id = call(&self.nodes[by].handle, |tx| {
            Command::Issue(Box::new(kind), None, tx)
        })
        .await?
        .id;
        let times = reach_all(&mut receivers, id, since).await?;
        let slowest = times.iter().max().copied().unwrap_or_default();
        let each: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "     notice {} on every node in {:.1} ms (per node, ms: {}); {:.0} ms since start",
            id.short(),
            slowest.as_secs_f64() * 1000.0,
            each.join(" "),
            self.started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(id)
    }

    async fn show(&self, on: usize, listing: NoticeId) -> Result<()> {
        let state = call(&self.nodes[on].handle, |tx| {
            Command::Listing(listing, None, operator_read(), tx)
        })
        .await?;
        println!(
            "     on {}: status {}, enforceable {}",
            self.names[on],
            state.status.name(),
            state.enforceable
        );
        Ok(())
    }

    async fn tasks(&self, on: usize) -> Result<usize> {
        // The devnet's few listings fit one page.
        let first = crate::daemon::TaskAsk {
            after: None,
            limit: crate::daemon::TASK_LISTINGS_MAX,
        };
        let (tasks, _) = call(&self.nodes[on].handle, |tx| Command::Tasks(None, first, tx)).await?;
        let lines: Vec<String> = tasks
            .iter()
            .map(|row| {
                format!(
                    "{} {}",
                    if row.task.action == TaskAction::Apply {
                        "apply"
                    } else {
                        "lift"
                    },
                    row.task.measure
                )
            })
            .collect();
        println!(
            "     tasks of {}: {}",
            self.names[on],
            if lines.is_empty() {
                "none".into()
            } else {
                lines.join(", ")
            }
        );
        Ok(tasks.len())
    }
}

/// Runs the scenario over running nodes (member order of [`prepare`]);
/// returns the listing it made.
pub async fn scenario(nodes: &[Running], names: &[String], root: &Path) -> Result<NoticeId> {
    let mut s = Scenario {
        nodes,
        names: names.to_vec(),
        started: Instant::now(),
        step: 0,
    };
    let now = node::now();
    let listing = s
        .issue(
            0,
            "blacklists a food company",
            NoticeKind::List(example_listing(now)),
        )
        .await?;
    s.show(2, listing).await?;
    let before = s.tasks(2).await?;
    let objection = s
        .issue(
            1,
            "files the company's objection: enforcement stops everywhere",
            NoticeKind::Object {
                listing,
                grounds: "the batch was recalled before sale".into(),
                respond_by: now.plus_ms(20 * DAY_MS),
            },
        )
        .await?;
    s.show(2, listing).await?;
    let during = s.tasks(2).await?;
    anyhow::ensure!(
        during < before,
        "the objection did not remove the implementer's task"
    );
    s.issue(
        0,
        "rejects the objection: the listing is enforceable again",
        NoticeKind::Rule {
            objection,
            outcome: RulingOutcome::Rejected,
            reason: "recall came after the sale, per inspection record 2026-118".into(),
        },
    )
    .await?;
    s.show(2, listing).await?;
    s.issue(
        2,
        "applies the high-consumption ban and reports back",
        NoticeKind::Feedback {
            listing,
            measure: "high-consumption-ban".into(),
            action: FeedbackAction::Applied,
        },
    )
    .await?;
    s.tasks(2).await?;
    s.step += 1;
    println!(
        "\n[{:>2}] {} asks the federation about the company before a contract",
        s.step, s.names[1]
    );
    let since = Instant::now();
    let result = call(&nodes[1].handle, |tx| {
        Command::Query(
            QueryAsk {
                subject_kind: SubjectKind::LegalPerson,
                subject_id: SUBJECT_ID.into(),
                purpose: "government procurement award".into(),
                legal_basis: "Government Procurement Law art. 22".into(),
                scope: QueryScope::Federation,
                deadline_ms: 5_000,
                page: 0,
                account: None,
                clearance: credence_protocol::access::Clearance::Auditor,
            },
            tx,
        )
    })
    .await?;
    let listings: usize = result
        .answers
        .iter()
        .map(|a| a.answer.answer.listings.len())
        .sum();
    println!(
        "     {} signed answers ({} listing entries) in {:.1} ms; not answered: {}; rejected: {}",
        result.answers.len(),
        listings,
        since.elapsed().as_secs_f64() * 1000.0,
        result.missing.len(),
        result.rejected.len()
    );
    for listing in &result.listings {
        println!(
            "     verified here: listing {} is {}{}, folded from {} signed notices ({}), held by {} answers",
            listing.state.id,
            listing.state.status.name(),
            if listing.state.enforceable {
                " and enforceable"
            } else {
                ""
            },
            listing.state.history.len(),
            listing.proof.name(),
            listing.answered_by.len()
        );
    }
    if !result.rejected.is_empty() || !result.disagreements.is_empty() {
        anyhow::bail!(
            "the devnet's honest members gave answers that failed the check: {:?} {:?}",
            result.rejected,
            result.disagreements
        );
    }
    // The query's receipt, checked as an auditor would: offline, with only
    // the roster.
    let roster = crate::node::read_roster(&root.join("roster.toml"))?;
    let answers: Vec<_> = result.answers.iter().map(|a| &a.answer).collect();
    let receipt = credence_protocol::receipt::Receipt::new(
        roster.id(),
        &result.request,
        &answers,
        &result.checkpoints,
    );
    let path = root.join("query.receipt");
    std::fs::write(&path, receipt.to_bytes()?)
        .with_context(|| format!("writing {}", path.display()))?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let report = credence_protocol::receipt::Receipt::from_bytes(&bytes)
        .and_then(|r| r.verify(&roster))
        .map_err(|e| anyhow::anyhow!("the devnet's own receipt: {e}"))?;
    println!(
        "     receipt {} verified offline with the roster: {} signed answers, {} listings \
         re-folded from their proofs (credence receipt verify {} --roster {})",
        path.display(),
        report.answers.len(),
        report.listings.len(),
        path.display(),
        root.join("roster.toml").display()
    );
    s.issue(
        0,
        "repairs the company's credit after rectification",
        NoticeKind::Repair {
            listing,
            reason: "rectified, fined and passed re-inspection".into(),
            evidence: vec![[7; 32]],
        },
    )
    .await?;
    s.show(2, listing).await?;
    s.tasks(2).await?;
    let shared = call(&nodes[1].handle, |tx| {
        Command::Subject(
            SubjectKind::LegalPerson,
            SUBJECT_ID.into(),
            None,
            operator_read(),
            tx,
        )
    })
    .await?
    .iter()
    .filter(|s| s.shared)
    .count();
    println!("     shared listings of the company now: {shared}");
    let mut registers = Vec::new();
    for node in nodes {
        registers.push(
            call(&node.handle, |tx| Command::Register(0, 1, tx))
                .await?
                .size,
        );
    }
    println!("\nregisters of reads (records per node): {registers:?}");
    register_and_report(nodes, &s.names, root).await?;
    println!(
        "scenario finished in {:.0} ms",
        s.started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(listing)
}

/// The scenario's last step: the report of the listed company's legal
/// representative (found through the listing that links them), signed,
/// checked and written out, and the first node's register of reads with
/// the lookup and the report in it.
async fn register_and_report(nodes: &[Running], names: &[String], root: &Path) -> Result<()> {
    let lookup = call(&nodes[0].handle, |tx| {
        Command::Subject(
            SubjectKind::NaturalPerson,
            REPRESENTATIVE_ID.into(),
            None,
            operator_read(),
            tx,
        )
    })
    .await?;
    anyhow::ensure!(
        !lookup.is_empty(),
        "a lookup of the legal representative found no linked listing"
    );
    let view = call(&nodes[0].handle, |tx| {
        Command::Report(
            SubjectKind::NaturalPerson,
            REPRESENTATIVE_ID.into(),
            Read {
                stated: Stated {
                    purpose: "the legal representative asks for their own record".into(),
                    legal_basis: "Personal Information Protection Law art. 45".into(),
                },
                ..operator_read()
            },
            tx,
        )
    })
    .await?;
    let roster = crate::node::read_roster(&root.join("roster.toml"))?;
    view.verify(&roster)
        .map_err(|e| anyhow::anyhow!("the devnet's own report: {e}"))?;
    let json = root.join("report.json");
    let html = root.join("report.html");
    std::fs::write(&json, serde_json::to_string_pretty(&view)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, crate::render::report_html(&view))
        .with_context(|| format!("writing {}", html.display()))?;
    println!(
        "\n{} reports on the company's legal representative {}: {} linked listing(s), {} consultation(s) of their records, signed and verified\n     {} (printable) and {} (credence report verify --data <node dir> {})",
        names[0],
        REPRESENTATIVE_ID,
        view.listings.len(),
        view.reads.len(),
        html.display(),
        json.display(),
        json.display()
    );
    let page = call(&nodes[0].handle, |tx| Command::Register(0, 1000, tx)).await?;
    println!(
        "\n{}'s register of reads ({} records), the last ones:",
        names[0], page.size
    );
    for record in page.records.iter().rev().take(4).rev() {
        println!(
            "     #{} {} by {} about {}: {} ({})",
            record.index,
            record.kind,
            record
                .account
                .as_deref()
                .or(record.requester.as_deref())
                .unwrap_or("-"),
            record.subject.as_deref().unwrap_or("every subject"),
            record.purpose,
            record.legal_basis
        );
    }
    Ok(())
}

/// The reads the scenario makes as each node's operator, registered like
/// any other.
fn operator_read() -> Read {
    Read {
        account: crate::accounts::NODE_ACCOUNT.into(),
        clearance: credence_protocol::access::Clearance::Auditor,
        stated: Stated {
            purpose: "devnet scenario: the operator follows the listing".into(),
            legal_basis: "Social Credit System Construction Outline (2014-2020), ch. 4".into(),
        },
    }
}

/// Waits until every node's roster is at version `number`; returns how
/// long it took.
async fn roster_reaches(nodes: &[&Running], number: u64) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut all = true;
        for node in nodes {
            let view: RosterView = call(&node.handle, Command::Roster).await?;
            all &= view.current == number;
        }
        if all {
            return Ok(started.elapsed());
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!("roster version {number} did not reach every node within {STEP_TIMEOUT:?}");
        }
        // Polling the nodes' loops: no event says "this version is held
        // everywhere" or "this listing arrived"; the step's time is
        // measured, not assumed.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A change proposed by node `by`, signed by the nodes `signers` and by
/// the keys `proofs` (added or rotated to), then submitted by `by`.
async fn govern(
    nodes: &[Running],
    by: usize,
    change: ChangeDocument,
    signers: &[usize],
    proofs: &[&credence_crypto::AuthorityKey],
) -> Result<u64> {
    let proposed = call(&nodes[by].handle, |tx| {
        Command::Govern(GovernRequest::Change(Box::new(change), false), None, tx)
    })
    .await?;
    let hash = proposed.0.hash;
    let mut signed = proposed.0.signed;
    for &signer in signers {
        // The signer takes the proposal as it stands (gossip may not have
        // brought it yet), then adds its signature.
        call(&nodes[signer].handle, |tx| {
            Command::Govern(GovernRequest::Proposal(signed.clone()), None, tx)
        })
        .await?;
        signed = call(&nodes[signer].handle, |tx| {
            Command::Govern(GovernRequest::Sign(hash, false), None, tx)
        })
        .await?
        .0
        .signed;
    }
    for key in proofs {
        signed.sign(key);
    }
    call(&nodes[by].handle, |tx| {
        Command::Govern(GovernRequest::Proposal(signed), None, tx)
    })
    .await?;
    let submitted = call(&nodes[by].handle, |tx| {
        Command::Govern(GovernRequest::Submit(hash), None, tx)
    })
    .await?;
    Ok(submitted.0.number)
}

/// The governance part of the scenario: a fourth region joins the running
/// federation through a roster version and catches up, then a member's
/// key is rotated and it comes back under its new identity.
pub async fn governance(
    mut nodes: Vec<Running>,
    mut names: Vec<String>,
    root: &Path,
    listing: NoticeId,
) -> Result<Vec<Running>> {
    println!("\n[gov] the members add a fourth region, Zhangzhou, while the federation runs");
    let dir = root.join("zhangzhou");
    let key = node::init(&dir, "zhangzhou")?;
    let ports = free_ports(2)?;
    let listen = format!("/ip4/127.0.0.1/tcp/{}", ports[0]);
    let member = MemberDocument {
        handle: String::new(),
        key: hex::encode(key.public_bytes()),
        name: "Zhangzhou Municipal Market Regulation Bureau".into(),
        region: "350600".into(),
        department: "market regulation".into(),
        issues_black: vec!["food-drug".into()],
        issues_red: Vec::new(),
        implements: vec!["more-inspections".into()],
        auditor: false,
        listen: vec![listen.clone()],
    };
    let started = Instant::now();
    let number = govern(
        &nodes,
        0,
        ChangeDocument {
            threshold: Some(3),
            add: vec![member],
            ..ChangeDocument::default()
        },
        &[1],
        &[&key],
    )
    .await?;
    let took = roster_reaches(&nodes.iter().collect::<Vec<_>>(), number).await?;
    println!(
        "     roster version {number} signed by 2 of 3 members and the new key, on every node in {:.1} ms",
        (started.elapsed().max(took)).as_secs_f64() * 1000.0
    );
    let version: RosterView = call(&nodes[0].handle, Command::Roster).await?;
    let signed = nodes_version(&nodes[0], number).await?;
    node::join(&dir, &root.join("roster.toml"), &[signed])?;
    let config = RunConfig {
        data: dir,
        listen: vec![listen.parse().context("listen address")?],
        bootstrap: Vec::new(),
        http: format!("127.0.0.1:{}", ports[1])
            .parse()
            .context("http address")?,
        sync_interval: Duration::from_secs(10),
        mdns: false,
        log: LogFormat::Human,
        register_retention: None,
    };
    let started = Instant::now();
    let running = service::launch(config.clone()).await?;
    names.push("Zhangzhou Municipal Market Regulation Bureau".into());
    nodes.push(running);
    wait_connected(&nodes).await?;
    let newest = nodes.len() - 1;
    loop {
        let held = call(&nodes[newest].handle, |tx| {
            Command::Listing(listing, None, operator_read(), tx)
        })
        .await;
        if held.is_ok() {
            break;
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!("the fourth region did not catch up within {STEP_TIMEOUT:?}");
        }
        // Polling the nodes' loops: no event says "this version is held
        // everywhere" or "this listing arrived"; the step's time is
        // measured, not assumed.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "     {} joined with version {number}, connected to all {} others and caught up in {:.1} ms; members now: {}",
        names[newest],
        nodes.len() - 1,
        started.elapsed().as_secs_f64() * 1000.0,
        version.versions.last().map_or(0, |v| v.members.len())
    );

    println!("\n[gov] {} rotates its key (a planned rotation)", names[2]);
    let court_dir = nodes_dir(root, 2)?;
    let next = node::prepare_next_key(&court_dir)?;
    let status: Status = call(&nodes[2].handle, Command::Status).await?;
    let own = status
        .authors
        .iter()
        .find(|a| a.author == status.authority)
        .map_or(0, |a| a.seq);
    let started = Instant::now();
    let number = govern(
        &nodes,
        0,
        ChangeDocument {
            rotate: vec![RotateDocument {
                member: status.authority.to_string(),
                key: hex::encode(next.public_bytes()),
                after_seq: own,
                compromised: false,
            }],
            ..ChangeDocument::default()
        },
        &[1, newest],
        &[&next],
    )
    .await?;
    // The court's node sees its key retired and stops to run under the
    // next one; started again, it connects under its new identity.
    let others: Vec<&Running> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, n)| n)
        .collect();
    roster_reaches(&others, number).await?;
    let court = nodes.remove(2);
    let old_peer = court.peer_id;
    // The others holding the version says nothing of the court's own node:
    // it stops when the version reaches it, not when it is asked to.
    let stopped = court.until_stopped_within(STEP_TIMEOUT).await;
    anyhow::ensure!(
        stopped
            .as_ref()
            .err()
            .is_some_and(|e| format!("{e:#}").contains("rotated this node's key")),
        "the court's node did not stop for its new key: {stopped:?}"
    );
    let config = RunConfig {
        data: court_dir,
        listen: Vec::new(),
        bootstrap: Vec::new(),
        http: "127.0.0.1:0".parse().context("http address")?,
        sync_interval: Duration::from_secs(10),
        mdns: false,
        log: LogFormat::Human,
        register_retention: None,
    };
    let config = RunConfig {
        listen: court_listen(root)?,
        ..config
    };
    let running = service::launch(config).await?;
    let new_peer = running.peer_id;
    nodes.insert(2, running);
    wait_connected(&nodes).await?;
    println!(
        "     roster version {number} on every node; the court came back as {new_peer} (was {old_peer}) and every node connected to it in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut s = Scenario {
        nodes: &nodes,
        names: names.clone(),
        started: Instant::now(),
        step: 0,
    };
    s.issue(
        2,
        "signs with its new key: the notice continues its log and reaches every node",
        NoticeKind::Feedback {
            listing,
            measure: "high-consumption-ban".into(),
            action: FeedbackAction::Lifted,
        },
    )
    .await?;
    Ok(nodes)
}

async fn nodes_version(
    node: &Running,
    number: u64,
) -> Result<credence_protocol::governance::SignedVersion> {
    let (tx, rx) = oneshot::channel();
    node.handle
        .commands
        .send(Command::RosterVersion(number, tx))
        .await
        .context("the node stopped")?;
    rx.await
        .context("the node stopped")?
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn nodes_dir(root: &Path, index: usize) -> Result<std::path::PathBuf> {
    let members: MembersDocument = toml::from_str(MEMBERS_TOML).context("embedded members")?;
    let handle = &members.members.get(index).context("a member")?.handle;
    Ok(root.join(handle))
}

fn court_listen(root: &Path) -> Result<Vec<libp2p::Multiaddr>> {
    let roster = node::read_roster(&root.join("roster.toml"))?;
    let court = roster
        .roster()
        .members
        .iter()
        .find(|m| m.department == "court enforcement");
    court
        .and_then(|m| m.listen.first())
        .map(|a| a.parse().context("listen address"))
        .transpose()
        .map(|a| a.into_iter().collect())
}

/// `credence devnet`.
pub fn run(count: usize, exit: bool, dir: Option<&Path>) -> Result<()> {
    let temporary = tempfile::tempdir().context("creating a temporary directory")?;
    let root = dir.unwrap_or(temporary.path()).to_path_buf();
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    if root.join("roster.toml").exists() {
        bail!(
            "{} already holds a devnet; choose an empty --dir",
            root.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        println!("starting {count} nodes on 127.0.0.1 in {}", root.display());
        let configs = prepare(&root, count, Duration::from_secs(10))?;
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        for (name, config) in configs {
            let running = service::launch(config).await?;
            println!("  {name:<44} http://{}  {}", running.http, running.listen.first().map(|a| a.to_string()).unwrap_or_default());
            names.push(name);
            nodes.push(running);
        }
        let started = Instant::now();
        wait_connected(&nodes).await?;
        println!("all {count} nodes connected in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
        let outcome = scenario(&nodes, &names, &root).await;
        let (nodes, outcome) = match outcome {
            Ok(listing) if count >= 3 => match governance(nodes, names, &root, listing).await {
                Ok(nodes) => (nodes, Ok(())),
                Err(e) => return Err(e),
            },
            Ok(_) => (nodes, Ok(())),
            Err(e) => (nodes, Err(e)),
        };
        if outcome.is_ok() && !exit {
            println!("\nthe nodes keep running; API tokens are in each data directory's api.token. Ctrl-C stops them.");
            let _ = tokio::signal::ctrl_c().await;
        }
        for node in nodes {
            node.stop().await?;
        }
        if dir.is_some() {
            println!("data directories kept in {}", root.display());
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every node count the devnet takes gives a roster that opens: the
    // embedded members file's threshold is for its three members, and
    // other counts take the default threshold.
    #[test]
    fn every_devnet_size_has_a_valid_roster() {
        for count in [1, 2, 3, 5, 16] {
            let root = tempfile::tempdir().unwrap();
            let configs = prepare(root.path(), count, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{count} nodes: {e:#}"));
            assert_eq!(configs.len(), count);
            let text = std::fs::read_to_string(root.path().join("roster.toml")).unwrap();
            let document: RosterDocument = toml::from_str(&text).unwrap();
            let roster = document.to_roster().unwrap();
            assert_eq!(roster.members.len(), count);
            assert!(
                2 * roster.threshold as usize > count,
                "{count}: {}",
                roster.threshold
            );
        }
    }
}

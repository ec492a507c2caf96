//! The local scenario: three authorities of the example federation issue,
//! object, rule, apply measures, repair, exchange bundles and audit, all on
//! this machine with the embedded catalog and members.
//!
//! Until nodes talk over the network, records travel between the three
//! data directories as bundles, exactly as `credence export` and
//! `credence import` move them.

use crate::node::{self, Node};
use crate::render;
use anyhow::{Context, Result};
use credence_protocol::bundle::{self, Bundle};
use credence_protocol::model::{
    Classification, FeedbackAction, LinkRole, LinkedPerson, ListKind, Listing, NoticeId,
    NoticeKind, RulingOutcome, Severity, Subject, SubjectKey, SubjectKind,
};
use credence_protocol::roster::{CatalogDocument, MembersDocument, RosterDocument};
use credence_protocol::time::{DAY_MS, Timestamp};
use std::path::Path;
use std::time::Instant;

/// The example catalog, embedded so that the demo runs anywhere.
pub const CATALOG_TOML: &str = include_str!("../../configs/catalog.toml");
/// The example members, embedded likewise.
pub const MEMBERS_TOML: &str = include_str!("../../configs/members.toml");

/// The listed company of the scenarios (a valid USCC).
pub const SUBJECT_ID: &str = "91350100M000100Y43";
/// The example company's legal representative (a valid resident identity
/// number of the format).
pub const REPRESENTATIVE_ID: &str = "350102198001010011";

struct Step {
    started: Instant,
    number: usize,
}

impl Step {
    fn say(&mut self, what: &str) {
        self.number += 1;
        println!("\n[{:>2}] {what}", self.number);
    }

    fn done(&self, what: &str) {
        println!(
            "     {what} ({:.1} ms since start)",
            self.started.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// Runs the scenario in `dir`, or in a temporary directory removed at the
/// end.
pub fn run(dir: Option<&Path>) -> Result<()> {
    let temporary = tempfile::tempdir().context("creating a temporary directory")?;
    let root = dir.unwrap_or(temporary.path());
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut step = Step {
        started: Instant::now(),
        number: 0,
    };

    step.say("three authorities create their data directories and keys");
    let handles = ["market", "tax", "court"];
    let mut members: MembersDocument = toml::from_str(MEMBERS_TOML).context("embedded members")?;
    for handle in handles {
        let key = node::init(&root.join(handle), handle)?;
        let member = members
            .members
            .iter_mut()
            .find(|m| m.handle == handle)
            .context("embedded member")?;
        member.key = hex::encode(key.public_bytes());
        println!("     {:<44} key {}", member.name, &member.key[..16]);
    }
    let catalog: CatalogDocument = toml::from_str(CATALOG_TOML).context("embedded catalog")?;
    let roster = RosterDocument::from_parts(catalog, members);
    let roster_path = root.join("roster.toml");
    std::fs::write(&roster_path, roster.to_toml())?;
    let mut nodes = Vec::new();
    for handle in handles {
        let federation = node::join(&root.join(handle), &roster_path, &[])?;
        if nodes.is_empty() {
            println!(
                "     genesis roster: {} ({})",
                federation.roster().name,
                federation.id().short()
            );
        }
        nodes.push(Node::open(&root.join(handle))?);
    }
    let [market, tax, court] = &mut nodes[..] else {
        unreachable!("three nodes were opened")
    };
    step.done("federation formed");

    let now = node::now();
    step.say("the market regulation bureau blacklists a food company");
    let listing = market
        .issue(NoticeKind::List(example_listing(now)), now)?
        .id;
    sync(market, &mut [tax, court])?;
    show(court, &listing, now)?;
    step.done("listing signed, stored and delivered to both other authorities");

    step.say("the implementing departments see their tasks");
    print_tasks("tax", tax, now)?;
    print_tasks("court", court, now)?;

    step.say("the company objects through the tax service: enforcement stops");
    let objection = tax
        .issue(
            NoticeKind::Object {
                listing,
                grounds: "the batch was recalled before sale".into(),
                respond_by: now.plus_ms(20 * DAY_MS),
            },
            now,
        )?
        .id;
    sync(tax, &mut [market, court])?;
    show(court, &listing, now)?;
    print_tasks("court", court, now)?;
    step.done("listing suspended everywhere");

    step.say("the bureau rejects the objection: the listing is enforceable again");
    market.issue(
        NoticeKind::Rule {
            objection,
            outcome: RulingOutcome::Rejected,
            reason: "recall came after the sale, per inspection record 2026-118".into(),
        },
        now,
    )?;
    sync(market, &mut [tax, court])?;
    step.done("ruling delivered");

    step.say("the tax service and the court apply their measures and report back");
    tax.issue(
        NoticeKind::Feedback {
            listing,
            measure: "procurement-ban".into(),
            action: FeedbackAction::Applied,
        },
        now,
    )?;
    court.issue(
        NoticeKind::Feedback {
            listing,
            measure: "high-consumption-ban".into(),
            action: FeedbackAction::Applied,
        },
        now,
    )?;
    sync(tax, &mut [market, court])?;
    sync(court, &mut [market, tax])?;
    print_tasks("tax", tax, now)?;
    step.done("feedback closes the loop: trigger, push, feedback");

    step.say("the company rectifies; the bureau repairs its credit");
    market.issue(
        NoticeKind::Repair {
            listing,
            reason: "rectified, fined and passed re-inspection".into(),
            evidence: vec![[7; 32]],
        },
        now,
    )?;
    sync(market, &mut [tax, court])?;
    show(court, &listing, now)?;
    print_tasks("tax", tax, now)?;
    print_tasks("court", court, now)?;
    step.done("repaired: no longer shared, measures to lift");

    step.say("the court exports a bundle and an auditor verifies it offline");
    let bundle_path = root.join("court.bundle");
    std::fs::write(&bundle_path, court.export()?.to_bytes()?)?;
    let bytes = node::read_bounded(&bundle_path, bundle::BUNDLE_BYTES_MAX as u64, "bundle")?;
    let report = bundle::audit(&Bundle::from_bytes(&bytes)?, now, &mut |_, _| {})?;
    print!("{}", indent(&render::audit(&report)));
    step.done("audit finished");
    if dir.is_some() {
        println!("\ndata directories kept in {}", root.display());
    }
    anyhow::ensure!(report.passed(), "the audit of the demo bundle failed");
    Ok(())
}

/// The blacklist listing of the scenarios, effective 120 days before `now`.
pub fn example_listing(now: Timestamp) -> Listing {
    let effective_at = Timestamp(now.0.saturating_sub(120 * DAY_MS));
    let (publish_until, share_until, repair_from) =
        credence_protocol::defaults::listing_windows(effective_at);
    Listing {
        subject: Subject {
            kind: SubjectKind::LegalPerson,
            id: SUBJECT_ID.into(),
            name: "Fuzhou Minjiang Food Co., Ltd.".into(),
        },
        list: ListKind::Black,
        category: "food-drug".into(),
        severity: Severity::Serious,
        reason: "continued selling a recalled infant formula batch after an order to stop".into(),
        legal_basis: "Food Safety Law of the PRC, art. 123".into(),
        document_number: "Rong-Shi-Jian-Fa [2026] No. 118".into(),
        measures: vec![
            "procurement-ban".into(),
            "subsidy-ban".into(),
            "license-review".into(),
            "high-consumption-ban".into(),
            "more-inspections".into(),
        ],
        effective_at,
        publish_until,
        share_until,
        repair_from,
        classification: Classification::Public,
        evidence: vec![*blake3::hash(b"inspection record 2026-118").as_bytes()],
        checksum_override: false,
        readers: Vec::new(),
        linked: vec![LinkedPerson {
            role: LinkRole::LegalRepresentative,
            id: REPRESENTATIVE_ID.into(),
            name: "Chen Jianguo".into(),
        }],
    }
}

fn sync(from: &Node, to: &mut [&mut Node]) -> Result<()> {
    let bundle = from.export()?;
    for node in to.iter_mut() {
        let summary = node.import(&bundle)?;
        anyhow::ensure!(
            summary.rejected.is_empty(),
            "import refused notices: {:?}",
            summary.rejected
        );
    }
    Ok(())
}

fn show(node: &Node, listing: &NoticeId, now: Timestamp) -> Result<()> {
    let key = SubjectKey::new(SubjectKind::LegalPerson, SUBJECT_ID).context("subject key")?;
    let states = node.replica().subject_listings(&key, now)?;
    for state in states.iter().filter(|s| s.id == *listing) {
        print!(
            "{}",
            indent(&render::listing(
                &crate::views::ListingView::new(node.federation(), state, false),
                false
            ))
        );
    }
    Ok(())
}

fn print_tasks(who: &str, node: &Node, now: Timestamp) -> Result<()> {
    let tasks = node.replica().tasks(&node.author(), now)?;
    let tasks = crate::views::TasksView::folded(node.federation(), &tasks);
    print!(
        "{}",
        indent(&format!("tasks of {who}:\n{}", render::tasks(&tasks)))
    );
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("     {line}\n")).collect()
}

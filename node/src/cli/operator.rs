//! One path from an operator command to a node: the running node of a
//! data directory through its API when it answers, or the data directory
//! opened directly when it does not. Both give the same typed answers
//! (`crate::views`), so the output is the same either way.

use crate::accounts::NODE_ACCOUNT;
use crate::client::{Client, ClientError, query_value};
use crate::daemon::{Stated, register};
use crate::node::{self, Node};
use crate::views::{
    IssueAnswer, ListingView, ReportView, SearchView, SubjectView, TasksView, lookup_key,
};
use anyhow::{Context, Result, bail};
use credence_protocol::model::{NoticeId, NoticeKind, SubjectKind};
use credence_protocol::register::ReadKind;
use credence_protocol::store::Store;
use credence_protocol::time::Timestamp;
use std::path::Path;

/// Where an operator command goes.
pub(super) enum Operator {
    /// The node runs: through its API.
    Running(Client),
    /// It does not: its data directory, opened here.
    Local(Box<Node>),
}

/// The current roster of a running node's chain: the data directory's
/// genesis roster and the signed versions the node holds (each verified
/// here from version 0).
pub(super) fn running_federation(
    client: &Client,
    dir: &Path,
) -> Result<credence_protocol::roster::Federation> {
    let genesis = node::read_roster(&dir.join(node::ROSTER_FILE))
        .with_context(|| "reading the federation's genesis roster")?;
    let versions: crate::views::VersionsView = client.get("/v1/federation/versions")?;
    let versions = versions
        .versions
        .iter()
        .map(|text| {
            let bytes = hex::decode(text).context("a roster version from the node")?;
            credence_protocol::governance::SignedVersion::from_bytes(&bytes)
                .context("a roster version from the node")
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(node::federation_with(genesis, versions)?)
}

fn stated_query(stated: &Stated, first: char) -> String {
    format!(
        "{first}purpose={}&legal_basis={}",
        query_value(&stated.purpose),
        query_value(&stated.legal_basis)
    )
}

fn at_query(at: Option<Timestamp>, first: char) -> String {
    at.map(|t| format!("{first}at={}", t.0)).unwrap_or_default()
}

impl Operator {
    /// The running node of `dir` if it answers there, else `dir` opened.
    /// A node killed without cleaning up leaves its address file behind:
    /// nothing answers there, and its store is free to open.
    pub(super) fn open(dir: &Path) -> Result<Operator> {
        if let Some(client) = Client::for_data_dir(dir) {
            // The process there proves it knows the token before the token
            // goes to it; nothing answering means the node is not running.
            match client.prove() {
                Ok(()) => return Ok(Operator::Running(client)),
                Err(ClientError::Unreachable { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Operator::Local(Box::new(Node::open(dir)?)))
    }

    /// The running node of `dir`, or an error saying to start it.
    pub(super) fn running(dir: &Path) -> Result<Client> {
        match Operator::open(dir)? {
            Operator::Running(client) => Ok(client),
            Operator::Local(_) => bail!(
                "the node of {} is not running; start it with `credence run --config FILE`",
                dir.display()
            ),
        }
    }

    /// How many notices `author`'s log can take now, by the flood budget
    /// ([`crate::views::AuthorStatus::budget`]).
    pub(super) fn notices_available(
        &self,
        author: &credence_protocol::model::AuthorityId,
    ) -> Result<u64> {
        match self {
            Operator::Running(client) => {
                let status: crate::views::Status = client.get("/v1/status")?;
                status
                    .authors
                    .iter()
                    .find(|a| a.author == *author)
                    .map(|a| a.budget)
                    .ok_or_else(|| anyhow::anyhow!("the node's status shows no log of {author}"))
            }
            Operator::Local(node) => Ok(node
                .replica()
                .notices_available(author, node::now())
                .map_err(|e| anyhow::anyhow!("reading the notice budget: {e}"))?),
        }
    }

    /// Whether the answers come from a running node.
    pub(super) fn is_running(&self) -> bool {
        matches!(self, Operator::Running(_))
    }

    /// Signs a notice of this node's authority (the running node also
    /// publishes it).
    pub(super) fn issue(&mut self, kind: NoticeKind) -> Result<IssueAnswer> {
        match self {
            Operator::Running(client) => Ok(client.post("/v1/notices", &kind)?),
            Operator::Local(node) => {
                let issued = node.issue(kind, node::now())?;
                Ok(IssueAnswer {
                    id: issued.id,
                    seq: issued.seq,
                })
            }
        }
    }

    /// A subject's listings; the read is registered.
    pub(super) fn subject(
        &self,
        kind: SubjectKind,
        id: &str,
        at: Option<Timestamp>,
        stated: &Stated,
    ) -> Result<SubjectView> {
        // Identifiers are written in capitals (as the API takes them).
        let Some((key, id)) = lookup_key(kind, id) else {
            bail!("{id:?} is not an identifier of 18 letters and digits");
        };
        let id = &id;
        match self {
            Operator::Running(client) => Ok(client.get(&format!(
                "/v1/subjects/{id}?kind={}{}{}",
                kind.name(),
                at_query(at, '&'),
                stated_query(stated, '&')
            ))?),
            Operator::Local(node) => {
                let t = node::now();
                let states = node.replica().subject_listings(&key, at.unwrap_or(t))?;
                node.register_read(&register::local_read(
                    ReadKind::Lookup,
                    NODE_ACCOUNT,
                    Some((kind, id.to_string())),
                    stated,
                    register::listings_digest(&states),
                    t,
                ))?;
                Ok(SubjectView::new(node.federation(), &key, id, &states))
            }
        }
    }

    /// One listing with its history; the read is registered.
    pub(super) fn listing(
        &self,
        id: &NoticeId,
        at: Option<Timestamp>,
        stated: &Stated,
    ) -> Result<ListingView> {
        match self {
            Operator::Running(client) => Ok(client.get(&format!(
                "/v1/listings/{id}{}{}",
                at_query(at, '?'),
                stated_query(stated, if at.is_some() { '&' } else { '?' })
            ))?),
            Operator::Local(node) => {
                let t = node::now();
                let Some(state) = node.replica().listing_state(id, at.unwrap_or(t))? else {
                    bail!("listing {id} is not in this node's records");
                };
                let subject = &state.listing.subject;
                node.register_read(&register::local_read(
                    ReadKind::Listing,
                    NODE_ACCOUNT,
                    Some((subject.kind, subject.id.clone())),
                    stated,
                    register::listings_digest(std::slice::from_ref(&state)),
                    t,
                ))?;
                Ok(ListingView::new(node.federation(), &state, true))
            }
        }
    }

    /// Listings by a name, in part; each person or organisation found is
    /// registered as read.
    pub(super) fn search(&self, name: &str, limit: usize, stated: &Stated) -> Result<SearchView> {
        let text = credence_protocol::names::search_text(name).map_err(anyhow::Error::msg)?;
        match self {
            Operator::Running(client) => Ok(client.get(&format!(
                "/v1/search?name={}&limit={limit}{}",
                query_value(name),
                stated_query(stated, '&')
            ))?),
            Operator::Local(node) => {
                let t = node::now();
                let viewer = credence_protocol::access::Viewer {
                    member: node.author(),
                    clearance: crate::accounts::Role::Admin.clearance(),
                };
                let (states, more) = node.search(
                    &text,
                    limit,
                    &|_| true,
                    &|s| credence_protocol::access::serves(s, &viewer),
                    t,
                )?;
                for record in register::search_reads(&states, &text, NODE_ACCOUNT, stated, t) {
                    node.register_read(&record)?;
                }
                Ok(SearchView {
                    name: text,
                    listings: states
                        .iter()
                        .map(|s| ListingView::new(node.federation(), s, false))
                        .collect(),
                    more,
                })
            }
        }
    }

    /// The public extract (CSV or JSON Lines): what the publicity feed
    /// shows, every entry, written to `out` as it is read; the bytes
    /// written.
    pub(super) fn extract(&self, csv: bool, out: &mut dyn std::io::Write) -> Result<u64> {
        match self {
            Operator::Running(client) => Ok(client.get_to(
                &format!("/v1/extract?format={}", if csv { "csv" } else { "jsonl" }),
                out,
            )?),
            Operator::Local(node) => {
                // The views caught up first, as the node does when it
                // starts (they lag when notices were stored with the node
                // stopped, by an import or an operator command), then the
                // running node's producer over a snapshot of the store,
                // from the feed index: no fold of every listing.
                let t = node::now();
                let mut keeper = node.keeper()?;
                keeper.catch_up(node.replica(), t)?;
                crate::store::ViewsStore::views(node.replica().store()).sync_later()()?;
                let snapshot = node.replica().store().snapshot();
                let replica =
                    credence_protocol::replica::Replica::new(node.federation().clone(), snapshot);
                let (mut written, mut failed) = (0u64, None);
                let mut sink = |piece: Vec<u8>| match out.write_all(&piece) {
                    Ok(()) => {
                        written += piece.len() as u64;
                        true
                    }
                    Err(error) => {
                        failed = Some(error);
                        false
                    }
                };
                crate::daemon::extract(&replica, t, csv, true, &mut sink)?;
                match failed {
                    Some(error) => Err(error.into()),
                    None => Ok(written),
                }
            }
        }
    }

    /// This authority's tasks.
    pub(super) fn tasks(&self, at: Option<Timestamp>) -> Result<TasksView> {
        match self {
            Operator::Running(client) => {
                // Every page, in order.
                let mut all: Vec<crate::views::TaskView> = Vec::new();
                let mut after: Option<NoticeId> = None;
                loop {
                    let mut path = format!("/v1/tasks{}", at_query(at, '?'));
                    if let Some(listing) = after {
                        path.push(if path.contains('?') { '&' } else { '?' });
                        path.push_str(&format!("after={listing}"));
                    }
                    let page: TasksView = client.get(&path)?;
                    all.extend(page.tasks);
                    match page.next {
                        Some(next) if Some(next) != after => after = Some(next),
                        _ => break,
                    }
                }
                Ok(TasksView {
                    tasks: all,
                    next: None,
                })
            }
            Operator::Local(node) => {
                let tasks = node
                    .replica()
                    .tasks(&node.author(), at.unwrap_or_else(node::now))?;
                Ok(TasksView::folded(node.federation(), &tasks))
            }
        }
    }

    /// A subject's report, signed by the node; the request is registered
    /// first, and the report shows it.
    pub(super) fn report(
        &self,
        kind: SubjectKind,
        id: &str,
        stated: &Stated,
    ) -> Result<ReportView> {
        let Some((key, id)) = lookup_key(kind, id) else {
            bail!("{id:?} is not an identifier of 18 letters and digits");
        };
        let id = &id;
        match self {
            Operator::Running(client) => Ok(client.get(&format!(
                "/v1/subjects/{id}/report?kind={}{}",
                kind.name(),
                stated_query(stated, '&')
            ))?),
            Operator::Local(node) => {
                let t = node::now();
                let states = node.replica().subject_listings(&key, t)?;
                node.register_read(&register::local_read(
                    ReadKind::Report,
                    NODE_ACCOUNT,
                    Some((kind, id.to_string())),
                    stated,
                    register::listings_digest(&states),
                    t,
                ))?;
                register::report(
                    node.replica().store(),
                    node.federation(),
                    &node.author(),
                    node.engine.key(),
                    (kind, id),
                    t,
                    &states,
                )
                .map_err(anyhow::Error::msg)
            }
        }
    }

    /// An audit bundle of everything the node holds; the export is
    /// registered.
    pub(super) fn export(&self, stated: &Stated) -> Result<Vec<u8>> {
        match self {
            Operator::Running(client) => {
                Ok(client.get_bytes(&format!("/v1/export{}", stated_query(stated, '?')))?)
            }
            Operator::Local(node) => {
                let heads: Vec<u8> = node
                    .replica()
                    .store()
                    .heads()?
                    .iter()
                    .flat_map(|h| h.id.0)
                    .collect();
                node.register_read(&register::local_read(
                    ReadKind::Export,
                    NODE_ACCOUNT,
                    None,
                    stated,
                    register::bytes_digest(&[&heads]),
                    node::now(),
                ))?;
                Ok(node.export()?.to_bytes()?)
            }
        }
    }
}

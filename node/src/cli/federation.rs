//! `credence federation genesis` and `join`, and governance: `propose`,
//! `sign`, `submit` and `show`.

use super::FederationCommand;
use super::operator::Operator;
use crate::daemon::GovernRequest;
use crate::node::{self, Node, read_bounded};
use crate::views::{GovernanceView, RosterView};
use anyhow::{Context, Result, bail};
use credence_protocol::governance::proposal::{ChangeDocument, decode_proposal, encode_proposal};
use credence_protocol::governance::{
    SIGNED_VERSION_BYTES_MAX, SignedVersion, Version, signing_members, verify_next,
};
use credence_protocol::roster::{
    CatalogDocument, MembersDocument, ROSTER_BYTES_MAX, RosterDocument,
};
use std::path::Path;

pub(super) fn federation(command: FederationCommand, json: bool) -> Result<()> {
    match command {
        FederationCommand::Propose {
            data,
            change,
            out,
            competing,
        } => {
            let text = String::from_utf8(read_bounded(&change, ROSTER_BYTES_MAX as u64, "change")?)
                .with_context(|| format!("{} is not UTF-8 text", change.display()))?;
            let change =
                ChangeDocument::parse(&text).with_context(|| format!("{}", change.display()))?;
            let answer = govern(
                &data.data,
                GovernRequest::Change(Box::new(change), competing),
            )?;
            write_proposal(&out, &answer)?;
            report(
                json,
                &answer,
                &format!("proposal written to {}", out.display()),
            )?;
        }
        FederationCommand::Sign {
            data,
            competing,
            proposal,
            hash,
            out,
        } => match (proposal, hash) {
            (Some(path), _) => {
                let read = read_proposal(&path)?;
                let hash = read.hash();
                // The node (running, or its store) takes the file's
                // signatures and signs, deciding whether it may; a member
                // still joining has no node yet and signs with its key.
                let (mut signed, view) =
                    match govern(&data.data, GovernRequest::Proposal(read.clone())) {
                        Err(error) if joining(&error) => {
                            let mut signed = read;
                            let key = crate::keyfile::read(&data.data.join(node::KEY_FILE))?;
                            signed.sign(&key);
                            let view = view_of(&signed, None);
                            (signed, view)
                        }
                        taken => {
                            taken?;
                            let view = govern(&data.data, GovernRequest::Sign(hash, competing))?;
                            (proposal_of(&view)?, view)
                        }
                    };
                let proven = sign_with_next_key(&data.data, &mut signed)?;
                let view = match proven.is_empty() {
                    true => view,
                    false => govern(&data.data, GovernRequest::Proposal(signed.clone())).or_else(
                        |error| match joining(&error) {
                            true => Ok(view_of(&signed, None)),
                            false => Err(error),
                        },
                    )?,
                };
                let target = out.unwrap_or(path);
                std::fs::write(&target, encode_proposal(&signed)?)
                    .with_context(|| format!("writing {}", target.display()))?;
                report(
                    json,
                    &view,
                    &format!("signed{proven}; proposal written to {}", target.display()),
                )?;
            }
            (None, Some(hash)) => {
                let hash: credence_protocol::model::RosterHash =
                    hash.trim().parse().map_err(|_| {
                        anyhow::anyhow!("--hash: {hash:?} is not a proposal hash (64 hex digits)")
                    })?;
                // The proposal held by the running node (which circulates it).
                Operator::running(&data.data)?;
                let mut view = govern(&data.data, GovernRequest::Sign(hash, competing))?;
                let mut signed = proposal_of(&view)?;
                let proven = sign_with_next_key(&data.data, &mut signed)?;
                if !proven.is_empty() {
                    view = govern(&data.data, GovernRequest::Proposal(signed))?;
                }
                report(json, &view, &format!("signed{proven} and circulated"))?;
            }
            (None, None) => bail!("give --proposal FILE or --hash HASH"),
        },
        FederationCommand::Submit {
            data,
            proposal,
            hash,
        } => {
            let view = match (proposal, hash) {
                (Some(path), _) => {
                    let signed = read_proposal(&path)?;
                    govern(&data.data, GovernRequest::Version(signed))?
                }
                (None, Some(hash)) => {
                    let client = Operator::running(&data.data)?;
                    client.post(
                        &format!("/v1/federation/proposals/{}/submit", hash.trim()),
                        &serde_json::json!({}),
                    )?
                }
                (None, None) => bail!("give --proposal FILE or --hash HASH"),
            };
            report(
                json,
                &view,
                &format!(
                    "roster version {} taken; the roster is at version {}",
                    view.number, view.current
                ),
            )?;
        }
        FederationCommand::Show { data, proposal } => {
            let view: RosterView = match Operator::open(&data.data)? {
                Operator::Running(client) => client.get("/v1/federation")?,
                Operator::Local(node) => RosterView::of(&node.engine),
            };
            let standing = match &proposal {
                Some(path) => {
                    let signed = read_proposal(path)?;
                    let node = Node::open(&data.data).ok();
                    Some(match node {
                        Some(node) => standing(node.replica().chain().current(), &signed),
                        None => format!(
                            "proposal {}: the node runs; submit it to check it",
                            signed.hash()
                        ),
                    })
                }
                None => None,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", render_roster(&view));
                if let Some(standing) = standing {
                    println!("{standing}");
                }
            }
        }
        FederationCommand::Genesis {
            catalog,
            members,
            keys,
            out,
        } => {
            let catalog: CatalogDocument = parse_toml(&catalog)?;
            let mut members: MembersDocument = parse_toml(&members)?;
            for assignment in &keys {
                let (handle, value) = assignment.split_once('=').with_context(|| {
                    format!("--key {assignment:?}: expected HANDLE=HEX or HANDLE=@DATA_DIR")
                })?;
                let key = match value.strip_prefix('@') {
                    Some(dir) => hex::encode(
                        crate::keyfile::read(&Path::new(dir).join(node::KEY_FILE))?.public_bytes(),
                    ),
                    None => value.to_string(),
                };
                let member = members
                    .members
                    .iter_mut()
                    .find(|m| m.handle == handle)
                    .with_context(|| format!("--key {handle}=...: no member has handle {handle:?} in the members file"))?;
                member.key = key;
            }
            if let Some(missing) = members.members.iter().find(|m| m.key.is_empty()) {
                bail!(
                    "member {:?} has no key: give it with --key {}=HEX or --key {}=@DATA_DIR",
                    missing.name,
                    missing.handle,
                    missing.handle
                );
            }
            let roster = RosterDocument::from_parts(catalog, members).to_roster()?;
            let federation = credence_protocol::roster::Federation::new(roster)?;
            std::fs::write(&out, federation.roster().to_document().to_toml())
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote genesis roster of {} ({} members) to {}",
                federation.roster().name,
                federation.roster().members.len(),
                out.display()
            );
            println!("federation id: {}", federation.id());
        }
        FederationCommand::Join {
            data,
            roster,
            versions,
        } => {
            let versions = versions
                .iter()
                .map(|path| read_proposal(path))
                .collect::<Result<Vec<_>>>()?;
            let federation = node::join(&data.data, &roster, &versions)?;
            println!(
                "joined federation {} ({})",
                federation.roster().name,
                federation.id()
            );
        }
    }
    Ok(())
}

/// A governance request through the running node, or on the data
/// directory when it does not run.
fn govern(dir: &Path, request: GovernRequest) -> Result<GovernanceView> {
    Ok(match Operator::open(dir)? {
        Operator::Running(client) => match request {
            GovernRequest::Change(change, competing) => client.post(
                &format!("/v1/federation/proposals{}", competing_query(competing)),
                &serde_json::json!({ "change": change }),
            )?,
            GovernRequest::Proposal(signed) => client.post(
                "/v1/federation/proposals",
                &serde_json::json!({ "proposal": hex::encode(encode_proposal(&signed)?) }),
            )?,
            GovernRequest::Version(signed) => client.post(
                "/v1/federation/versions",
                &serde_json::json!({ "version": hex::encode(encode_proposal(&signed)?) }),
            )?,
            GovernRequest::Sign(hash, competing) => client.post(
                &format!(
                    "/v1/federation/proposals/{hash}/sign{}",
                    competing_query(competing)
                ),
                &serde_json::json!({}),
            )?,
            GovernRequest::Submit(hash) => client.post(
                &format!("/v1/federation/proposals/{hash}/submit"),
                &serde_json::json!({}),
            )?,
        },
        Operator::Local(mut node) => {
            let answer = node.govern(request, node::now())?;
            GovernanceView::from(&answer)
        }
    })
}

/// Adds the signature of this member's next key (`credence rotate-key`)
/// when `signed` rotates a key to it: a rotated key proves possession by
/// signing the version that names it. Says so (for the report), or
/// returns nothing when there is no such key or the version does not
/// name it.
fn sign_with_next_key(dir: &Path, signed: &mut SignedVersion) -> Result<&'static str> {
    let path = dir.join(node::NEXT_KEY_FILE);
    if !path.exists() {
        return Ok("");
    }
    let next = crate::keyfile::read(&path)?;
    let id = credence_protocol::model::AuthorityId(next.public_bytes());
    let version = signed
        .version()
        .context("the proposal's roster version does not decode")?;
    if !version.keys.iter().any(|change| change.key == id) {
        return Ok("");
    }
    signed.sign(&next);
    Ok(" (and by the next key it rotates to, proving possession)")
}

fn competing_query(competing: bool) -> &'static str {
    if competing { "?competing=true" } else { "" }
}

/// Whether `error` is that of a member still joining: its data directory
/// has no roster yet, so no node to hand a proposal to.
fn joining(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(node::NodeError::NoRoster { .. })))
}

/// The proposal a node's answer carries.
fn proposal_of(view: &GovernanceView) -> Result<SignedVersion> {
    let bytes = hex::decode(&view.proposal).context("the node's proposal bytes")?;
    decode_proposal(&bytes).context("the node's proposal")
}

fn read_proposal(path: &Path) -> Result<SignedVersion> {
    let bytes = read_bounded(path, SIGNED_VERSION_BYTES_MAX as u64 + 64, "proposal")?;
    decode_proposal(&bytes).with_context(|| format!("{}", path.display()))
}

fn write_proposal(path: &Path, view: &GovernanceView) -> Result<()> {
    let bytes = hex::decode(&view.proposal).context("the node's proposal bytes")?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn view_of(signed: &SignedVersion, current: Option<u64>) -> GovernanceView {
    GovernanceView {
        hash: signed.hash().to_string(),
        number: signed.version().map_or(0, |v| v.number),
        signatures: signed.signatures.len(),
        current: current.unwrap_or(0),
        proposal: encode_proposal(signed).map(hex::encode).unwrap_or_default(),
    }
}

fn report(json: bool, view: &GovernanceView, what: &str) -> Result<()> {
    if json {
        let mut value = serde_json::to_value(view)?;
        if let Some(object) = value.as_object_mut() {
            object.remove("proposal");
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{what}\n  roster version {} ({}), {} signatures",
            view.number, view.hash, view.signatures
        );
    }
    Ok(())
}

/// Whether a proposal is a valid next version now, or why not.
fn standing(current: &Version, signed: &SignedVersion) -> String {
    match verify_next(current, signed) {
        Ok(_) => format!(
            "proposal {}: valid as version {}: submit it",
            signed.hash(),
            current.number + 1
        ),
        Err(e) => format!(
            "proposal {}: not yet a valid next version: {e} (members of version {} who signed: {})",
            signed.hash(),
            current.number,
            signing_members(current, signed).len()
        ),
    }
}

fn render_roster(view: &RosterView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "roster at version {}", view.current);
    for version in &view.versions {
        let _ = writeln!(
            out,
            "  version {} ({}): {} members, threshold {}",
            version.number,
            &version.hash[..16],
            version.members.len(),
            version.threshold
        );
        let _ = writeln!(out, "    members: {}", version.members.join("; "));
        if !version.signed_by.is_empty() {
            let _ = writeln!(out, "    signed by: {}", version.signed_by.join("; "));
        }
        for key in &version.keys {
            let _ = writeln!(out, "    key: {key}");
        }
        for cutoff in &version.cutoffs {
            let _ = writeln!(out, "    cutoff: {cutoff}");
        }
        for allowance in &version.allowances {
            let _ = writeln!(out, "    allowance: {allowance}");
        }
    }
    for e in &view.equivocations {
        let _ = writeln!(
            out,
            "  EQUIVOCATION at version {}: {} chosen over {}, both signed by {}",
            e.number,
            &e.chosen[..16],
            &e.other[..16],
            e.signers.join("; ")
        );
    }
    if view.proposals.is_empty() {
        let _ = writeln!(out, "  no proposals held");
    }
    for p in &view.proposals {
        let _ = writeln!(
            out,
            "  proposal {} for version {}: {} of the threshold {} signed ({}){}",
            p.hash,
            p.number,
            p.members_signed,
            p.threshold,
            p.signed_by.join("; "),
            match &p.not_ready {
                None => ": ready to submit".to_string(),
                Some(why) => format!(": not ready: {why}"),
            }
        );
        for allowance in &p.allowances {
            let _ = writeln!(out, "    would grant the allowance: {allowance}");
        }
    }
    out
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_bounded(path, ROSTER_BYTES_MAX as u64, "TOML document")?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

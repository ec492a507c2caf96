//! `credence register show|verify`: the node's register of reads, through
//! the running node's API (an account with the audit permission: the
//! node's own) or on the data directory directly.

use super::RegisterCommand;
use super::operator::Operator;
use crate::daemon::register;
use crate::views::RegisterView;
use anyhow::{Context, Result, bail};
use credence_crypto::note::Note;
use credence_protocol::register::{Entry, check_records, verify_checkpoint};
use std::path::Path;

/// Records fetched per page while verifying.
const VERIFY_PAGE: u64 = 1000;

fn fetch(dir: &Path, operator: &Operator, from: u64, limit: u64) -> Result<RegisterView> {
    match operator {
        Operator::Running(client) => {
            Ok(client.get(&format!("/v1/register?from={from}&limit={limit}"))?)
        }
        Operator::Local(node) => register::page(
            node.replica().store(),
            node.federation(),
            &node.author(),
            node.engine.key(),
            from,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("the register of {}", dir.display())),
    }
}

pub(super) fn register(command: RegisterCommand, json: bool) -> Result<i32> {
    match command {
        RegisterCommand::Show { data, from, limit } => {
            if !(1..=VERIFY_PAGE).contains(&limit) {
                bail!("--limit: {limit} is not between 1 and {VERIFY_PAGE}");
            }
            let operator = Operator::open(&data.data)?;
            let page = fetch(&data.data, &operator, from, limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(0);
            }
            println!("register of reads: {} records", page.size);
            for r in &page.records {
                if r.kind == "pruned" {
                    println!(
                        "{:>6}  (pruned past the node's retention: leaf {})",
                        r.index, r.digest
                    );
                    continue;
                }
                let who = r
                    .account
                    .clone()
                    .or_else(|| r.requester.clone())
                    .unwrap_or_default();
                println!(
                    "{:>6}  {}  {:<14} {:<20} {}",
                    r.index,
                    credence_protocol::time::Timestamp(r.at),
                    r.kind,
                    who,
                    r.subject.as_deref().unwrap_or("(every subject)")
                );
                println!(
                    "        purpose: {}; legal basis: {}",
                    r.purpose, r.legal_basis
                );
            }
            Ok(0)
        }
        RegisterCommand::Verify { data } => {
            let operator = Operator::open(&data.data)?;
            let first = fetch(&data.data, &operator, 0, VERIFY_PAGE)?;
            let note = Note::parse(first.checkpoint.as_bytes())
                .context("the register's checkpoint is not a signed note")?;
            // The member's current key signs the checkpoint the node
            // gives now: taken from the roster chain, not from the node.
            let (federation, member) = match &operator {
                Operator::Local(node) => (node.federation().clone(), node.author()),
                Operator::Running(client) => {
                    let status: crate::views::Status = client.get("/v1/status")?;
                    (
                        super::operator::running_federation(client, &data.data)?,
                        status.authority,
                    )
                }
            };
            let keys: Vec<_> = federation
                .public_key(&member)
                .copied()
                .into_iter()
                .collect();
            let federation = federation.id();
            let checkpoint = verify_checkpoint(&note, &federation, &member, &keys)?;
            let mut records: Vec<Vec<u8>> = Vec::new();
            let mut page = first;
            loop {
                for r in &page.records {
                    records.push(hex::decode(&r.bytes).context("a record's bytes")?);
                }
                let next = records.len() as u64;
                if page.records.is_empty() || next >= checkpoint.size {
                    break;
                }
                page = fetch(&data.data, &operator, next, VERIFY_PAGE)?;
            }
            let result = check_records(&records, &checkpoint);
            let unbased = records
                .iter()
                .filter(|bytes| Entry::decode(bytes).is_err())
                .count();
            let pruned = records
                .iter()
                .filter(|bytes| matches!(Entry::decode(bytes), Ok(Entry::Pruned(_))))
                .count();
            match result {
                Ok(()) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"valid": true, "records": checkpoint.size, "pruned": pruned})
                        );
                    } else {
                        println!(
                            "REGISTER VALID: {} records, every one with its purpose and legal basis ({pruned} pruned past retention to their leaf hash); their Merkle root is the one the node signs",
                            checkpoint.size
                        );
                    }
                    Ok(0)
                }
                Err(error) => {
                    println!("REGISTER INVALID: {error} ({unbased} records do not decode)");
                    Ok(1)
                }
            }
        }
    }
}

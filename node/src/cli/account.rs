//! `credence account add|list|revoke`: the node's API accounts, kept in
//! the data directory's `accounts.toml` (see [`crate::accounts`]). A
//! running node reads the file again when it changes, so a change takes
//! effect at once.

use super::AccountCommand;
use crate::accounts::{Accounts, AccountsLock, NODE_ACCOUNT, Role};
use anyhow::{Result, bail};
use serde::Serialize;

/// One account as listed (the hash is not shown).
#[derive(Debug, Serialize)]
struct Listed<'a> {
    name: &'a str,
    role: &'static str,
    created_ms: u64,
    revoked_ms: Option<u64>,
}

fn now_ms() -> u64 {
    crate::node::now().0
}

pub(super) fn account(command: AccountCommand, json: bool) -> Result<()> {
    match command {
        AccountCommand::Add { data, name, role } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let _lock = AccountsLock::take(&data.data)?;
            let mut accounts = Accounts::read(&data.data)?;
            let credential = accounts
                .add(&name, role, now_ms())
                .map_err(anyhow::Error::msg)?;
            accounts.write(&data.data)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "name": name, "role": role.name(), "credential": credential })
                );
            } else {
                println!(
                    "account {name} ({}) added; its credential, shown once:",
                    role.name()
                );
                println!("{credential}");
                println!(
                    "send it as `Authorization: Bearer <credential>`; the node keeps only its hash"
                );
            }
        }
        AccountCommand::List { data } => {
            let accounts = Accounts::read(&data.data)?;
            let listed: Vec<Listed<'_>> = accounts
                .accounts
                .iter()
                .map(|a| Listed {
                    name: &a.name,
                    role: a.role.name(),
                    created_ms: a.created_ms,
                    revoked_ms: a.revoked_ms,
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else if listed.is_empty() {
                println!("no accounts (a node makes its own when it first starts)");
            } else {
                for a in listed {
                    let state = match a.revoked_ms {
                        Some(at) => format!("revoked {}", credence_protocol::time::Timestamp(at)),
                        None => "active".to_string(),
                    };
                    println!(
                        "{:<24} {:<9} since {}  {state}",
                        a.name,
                        a.role,
                        credence_protocol::time::Timestamp(a.created_ms)
                    );
                }
            }
        }
        AccountCommand::Revoke { data, name } => {
            if name == NODE_ACCOUNT {
                bail!(
                    "account {NODE_ACCOUNT} is the node's own (its command line uses it); revoke another"
                );
            }
            let _lock = AccountsLock::take(&data.data)?;
            let mut accounts = Accounts::read(&data.data)?;
            accounts
                .revoke(&name, now_ms())
                .map_err(anyhow::Error::msg)?;
            accounts.write(&data.data)?;
            println!("account {name} revoked: its credential is refused from now on");
        }
    }
    Ok(())
}

//! `credence webhook add|list|remove|dead|redeliver`: the webhooks of a
//! data directory ([`crate::webhooks`]). The running node reads the
//! registrations and the redelivery requests again every second, so a
//! change takes effect at once.

use super::WebhookCommand;
use crate::webhooks::{self, NewWebhook};
use anyhow::Result;
use serde::Serialize;

/// One webhook as listed (the secret is not shown).
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    account: String,
    url: String,
    attempts: u32,
    retry_first_ms: u64,
    dead_letters: usize,
}

pub(super) fn webhook(command: WebhookCommand, json: bool) -> Result<()> {
    match command {
        WebhookCommand::Add {
            data,
            name,
            account,
            url,
            attempts,
            retry_first,
        } => {
            let new = NewWebhook {
                name: &name,
                account: &account,
                url: &url,
                attempts,
                retry_first_ms: retry_first,
            };
            let secret = webhooks::add(&data.data, &new, crate::node::now().0)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "name": name, "account": account, "url": url, "secret": secret })
                );
            } else {
                println!(
                    "webhook {name} added for account {account}: changes go to {url}\nits signing secret, shown once (Credence-Signature: t=..,v1=HMAC-SHA256(secret, \"t.body\")):\n{secret}"
                );
            }
        }
        WebhookCommand::List { data } => {
            let listed: Vec<Listed> = webhooks::read(&data.data)?
                .into_iter()
                .map(|w| {
                    Ok(Listed {
                        dead_letters: webhooks::letters(&data.data, &w.name, false)?.len(),
                        name: w.name,
                        account: w.account,
                        url: w.url,
                        attempts: w.attempts,
                        retry_first_ms: w.retry_first_ms,
                    })
                })
                .collect::<Result<_, crate::node::NodeError>>()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else if listed.is_empty() {
                println!("no webhooks");
            } else {
                for w in listed {
                    println!(
                        "{} (account {}) -> {}: {} attempts from {} ms; {} dead letters",
                        w.name, w.account, w.url, w.attempts, w.retry_first_ms, w.dead_letters
                    );
                }
            }
        }
        WebhookCommand::Remove { data, name } => {
            webhooks::remove(&data.data, &name)?;
            println!("webhook {name} removed");
        }
        WebhookCommand::Dead { data, name } => {
            let letters = webhooks::letters(&data.data, &name, false)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("webhook {name} has no dead letters");
            } else {
                for letter in letters {
                    println!(
                        "{}: {} attempts, last at {}: {}",
                        letter.id,
                        letter.attempts,
                        credence_protocol::time::Timestamp(letter.failed_at),
                        letter.reason
                    );
                }
            }
        }
        WebhookCommand::Redeliver { data, name, id } => {
            webhooks::redeliver(&data.data, &name, &id)?;
            println!(
                "dead letter {id} of webhook {name} is sent again within a second while the node runs"
            );
        }
    }
    Ok(())
}

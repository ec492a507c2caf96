//! Webhooks: the change feed pushed to a department system's endpoint.
//!
//! An operator registers a webhook for an account (`credence webhook
//! add`): a name, an `http://` or `https://` URL, and a secret the node
//! generates and prints once. The running node posts the changes the
//! account is told of ([`credence_protocol::changes::Summary::told_to`]),
//! in order, a page at a time, as the JSON of `GET /v1/changes`, signed:
//!
//! - `Credence-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//!   `<t>.<body>` with the secret (as Stripe signs: the receiver checks the
//!   signature and that `t` is recent);
//! - `Credence-Delivery: <webhook>-<first seq>-<last seq>`, the same for a
//!   retry or a redelivery, so that a receiver drops what it already took
//!   (delivery is at least once).
//!
//! A delivery that fails (no answer within 10 s, or not 2xx) is tried
//! again after 0.5 s, 1 s, 2 s, ... up to a minute apart, eight times in
//! all (both can be set per webhook); then it becomes a dead letter and
//! the webhook goes on with the next changes. `credence webhook dead` lists the dead letters and
//! `credence webhook redeliver` sends one again (the running node takes
//! it within a second). Each webhook is delivered to on its own: a
//! receiver that is slow or does not answer holds up no other webhook.
//!
//! State, in the data directory: `webhooks.toml` (the registrations,
//! 0600: it holds the secrets), and per webhook under `webhooks/<name>/`
//! its cursor (`cursor`, the last change delivered), its dead letters
//! (`dead/<first>-<last>.json`) and those asked to be sent again
//! (`redeliver/`). Every file is written whole (temporary file, sync,
//! rename).

use crate::accounts::{AccountBook, check_name};
use crate::daemon::Command;
use crate::node::{NodeError, read_bounded};
use crate::views::{ChangeView, ChangesView};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The registrations of a data directory.
pub const WEBHOOKS_FILE: &str = "webhooks.toml";
/// Where each webhook keeps its cursor and dead letters.
pub const WEBHOOKS_DIR: &str = "webhooks";
/// Most webhooks a node keeps.
pub const WEBHOOKS_MAX: usize = 64;
/// Largest registrations file read.
const WEBHOOKS_BYTES_MAX: u64 = 1024 * 1024;
/// Longest URL.
pub const URL_BYTES_MAX: usize = 2048;
/// Attempts of one delivery before it becomes a dead letter, unless the
/// webhook says otherwise.
pub const ATTEMPTS_DEFAULT: u32 = 8;
/// Most attempts a webhook may ask for.
pub const ATTEMPTS_MAX: u32 = 20;
/// The first retry's delay (ms) unless the webhook says otherwise; each
/// next one doubles, up to [`RETRY_DELAY_MAX`].
pub const RETRY_FIRST_DEFAULT_MS: u64 = 500;
/// The longest delay between two attempts.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(60);
/// How long a receiver has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Changes in one delivery.
pub const DELIVERY_CHANGES_MAX: usize = 100;
/// Dead letters kept per webhook: past them the webhook waits (and says
/// so) until some are sent again or removed.
pub const DEAD_LETTERS_MAX: usize = 10_000;
/// Largest dead letter read back.
const DEAD_LETTER_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// One registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Its name (as an account name: lower-case letters, digits, '-').
    pub name: String,
    /// The account whose clearance decides which changes it is sent.
    pub account: String,
    /// Where changes are posted.
    pub url: String,
    /// The signing secret, hex.
    pub secret: String,
    /// When it was made (ms).
    pub created_at: u64,
    /// Attempts of one delivery before it becomes a dead letter (1 to
    /// [`ATTEMPTS_MAX`]).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The first retry's delay in ms (each next one doubles, up to
    /// [`RETRY_DELAY_MAX`]): 10 to 60,000.
    #[serde(default = "default_retry_first_ms")]
    pub retry_first_ms: u64,
}

fn default_attempts() -> u32 {
    ATTEMPTS_DEFAULT
}

fn default_retry_first_ms() -> u64 {
    RETRY_FIRST_DEFAULT_MS
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    #[serde(default)]
    webhooks: Vec<Webhook>,
}

fn config_error(path: &Path, reason: impl Into<String>) -> NodeError {
    NodeError::Config {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` whole: a temporary file beside it, synced,
/// renamed over it (mode 0600 on Unix).
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// The registrations of `dir` (none when the file does not exist).
pub fn read(dir: &Path) -> Result<Vec<Webhook>, NodeError> {
    let path = dir.join(WEBHOOKS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = read_bounded(&path, WEBHOOKS_BYTES_MAX, "webhooks file")?;
    let text = String::from_utf8(bytes).map_err(|_| config_error(&path, "not UTF-8"))?;
    let file: WebhooksFile =
        toml::from_str(&text).map_err(|e| config_error(&path, e.to_string()))?;
    if file.webhooks.len() > WEBHOOKS_MAX {
        return Err(config_error(
            &path,
            format!("more than {WEBHOOKS_MAX} webhooks"),
        ));
    }
    for webhook in &file.webhooks {
        check_webhook(webhook).map_err(|e| config_error(&path, e))?;
    }
    Ok(file.webhooks)
}

fn write(dir: &Path, webhooks: Vec<Webhook>) -> Result<(), NodeError> {
    let path = dir.join(WEBHOOKS_FILE);
    let text = toml::to_string(&WebhooksFile { webhooks })
        .map_err(|e| config_error(&path, e.to_string()))?;
    write_whole(&path, text.as_bytes())
}

/// Checks a URL: `http://` or `https://`, a host, at most
/// [`URL_BYTES_MAX`] bytes of visible ASCII.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?}: the URL starts with http:// or https://"))?;
    if url.len() > URL_BYTES_MAX || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the URL has at most {URL_BYTES_MAX} visible ASCII characters"
        ));
    }
    if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: the URL names no host"));
    }
    Ok(())
}

fn check_webhook(webhook: &Webhook) -> Result<(), String> {
    check_name(&webhook.name).map_err(|e| format!("webhook {e}"))?;
    check_name(&webhook.account)?;
    check_url(&webhook.url)?;
    if !(1..=ATTEMPTS_MAX).contains(&webhook.attempts) {
        return Err(format!(
            "webhook {}: attempts is from 1 to {ATTEMPTS_MAX}",
            webhook.name
        ));
    }
    if !(10..=60_000).contains(&webhook.retry_first_ms) {
        return Err(format!(
            "webhook {}: the first retry comes 10 to 60,000 ms after a failure",
            webhook.name
        ));
    }
    if webhook.secret.len() != 64 || !webhook.secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "webhook {}: the secret is 64 hex digits",
            webhook.name
        ));
    }
    Ok(())
}

/// What a new registration says.
pub struct NewWebhook<'a> {
    /// Its name.
    pub name: &'a str,
    /// The account it serves.
    pub account: &'a str,
    /// Its URL.
    pub url: &'a str,
    /// Attempts of one delivery.
    pub attempts: u32,
    /// The first retry's delay (ms).
    pub retry_first_ms: u64,
}

/// Registers a webhook; returns its secret (shown once).
pub fn add(dir: &Path, new: &NewWebhook<'_>, now_ms: u64) -> Result<String, NodeError> {
    let NewWebhook {
        name, account, url, ..
    } = *new;
    let path = dir.join(WEBHOOKS_FILE);
    let _lock = crate::accounts::AccountsLock::take(dir)?;
    let accounts = crate::accounts::Accounts::read(dir)?;
    if accounts.get(account).is_none_or(|a| a.revoked_ms.is_some()) {
        return Err(config_error(
            &path,
            format!("no active account {account:?}: add it first (credence account add)"),
        ));
    }
    let mut webhooks = read(dir)?;
    if webhooks.iter().any(|w| w.name == name) {
        return Err(config_error(&path, format!("a webhook {name:?} exists")));
    }
    if webhooks.len() >= WEBHOOKS_MAX {
        return Err(config_error(
            &path,
            format!("{WEBHOOKS_MAX} webhooks already"),
        ));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| config_error(&path, e.to_string()))?;
    let webhook = Webhook {
        name: name.into(),
        account: account.into(),
        url: url.into(),
        secret: hex::encode(secret),
        created_at: now_ms,
        attempts: new.attempts,
        retry_first_ms: new.retry_first_ms,
    };
    check_webhook(&webhook).map_err(|e| config_error(&path, e))?;
    webhooks.push(webhook);
    write(dir, webhooks)?;
    Ok(hex::encode(secret))
}

/// Removes a registration (its cursor and dead letters stay until the
/// directory is removed).
pub fn remove(dir: &Path, name: &str) -> Result<(), NodeError> {
    let _lock = crate::accounts::AccountsLock::take(dir)?;
    let mut webhooks = read(dir)?;
    let before = webhooks.len();
    webhooks.retain(|w| w.name != name);
    if webhooks.len() == before {
        return Err(config_error(
            &dir.join(WEBHOOKS_FILE),
            format!("no webhook {name:?}"),
        ));
    }
    write(dir, webhooks)
}

/// A delivery that failed every attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// `<first>-<last>`: the seqs of the changes it holds.
    pub id: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last one failed.
    pub reason: String,
    /// When it was given up (ms).
    pub failed_at: u64,
    /// The body that was posted.
    pub body: String,
}

fn state_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(WEBHOOKS_DIR).join(name)
}

fn check_letter_id(id: &str) -> Result<(), String> {
    let ok = id
        .split_once('-')
        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a dead letter id (FIRST-LAST)"))
    }
}

/// The dead letters of a webhook, oldest first (`redeliver`: those asked
/// to be sent again instead).
pub fn letters(dir: &Path, name: &str, redeliver: bool) -> Result<Vec<DeadLetter>, NodeError> {
    let folder = state_dir(dir, name).join(if redeliver { "redeliver" } else { "dead" });
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error(&folder))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = read_bounded(&path, DEAD_LETTER_BYTES_MAX, "dead letter")?;
        let letter: DeadLetter =
            serde_json::from_slice(&bytes).map_err(|e| config_error(&path, e.to_string()))?;
        out.push(letter);
    }
    out.sort_by_key(|l| {
        l.id.split_once('-')
            .and_then(|(a, _)| a.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    Ok(out)
}

/// Asks for a dead letter to be sent again: the running node sends it
/// within a second (a stopped one when it starts).
pub fn redeliver(dir: &Path, name: &str, id: &str) -> Result<(), NodeError> {
    let folder = state_dir(dir, name);
    check_letter_id(id).map_err(|e| config_error(&folder, e))?;
    let from = folder.join("dead").join(format!("{id}.json"));
    if !from.exists() {
        return Err(config_error(
            &folder,
            format!("webhook {name:?} has no dead letter {id}"),
        ));
    }
    let to_dir = folder.join("redeliver");
    std::fs::create_dir_all(&to_dir).map_err(io_error(&to_dir))?;
    std::fs::rename(&from, to_dir.join(format!("{id}.json"))).map_err(io_error(&from))
}

fn put_letter(dir: &Path, name: &str, letter: &DeadLetter) -> Result<(), NodeError> {
    let folder = state_dir(dir, name).join("dead");
    std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let bytes = serde_json::to_vec(letter).map_err(|e| config_error(&folder, e.to_string()))?;
    write_whole(&folder.join(format!("{}.json", letter.id)), &bytes)
}

fn cursor(dir: &Path, name: &str) -> Result<u64, NodeError> {
    let path = state_dir(dir, name).join("cursor");
    if !path.exists() {
        return Ok(0);
    }
    let bytes = read_bounded(&path, 32, "webhook cursor")?;
    String::from_utf8_lossy(&bytes)
        .trim()
        .parse()
        .map_err(|_| config_error(&path, "not a change seq"))
}

fn set_cursor(dir: &Path, name: &str, seq: u64) -> Result<(), NodeError> {
    let folder = state_dir(dir, name);
    std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    write_whole(&folder.join("cursor"), seq.to_string().as_bytes())
}

/// The signature header's value for `body` at `t` (unix seconds).
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    let key = hex::decode(secret).unwrap_or_default();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay after failed attempt `attempt` (from 1) of a delivery,
/// the first retry `first_ms` after the first failure.
pub fn retry_delay(attempt: u32, first_ms: u64) -> Duration {
    Duration::from_millis(first_ms)
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(RETRY_DELAY_MAX)
}

/// Posts one delivery; `Err` says why it failed.
fn post(agent: &ureq::Agent, webhook: &Webhook, delivery: &str, body: &[u8]) -> Result<(), String> {
    let t = crate::node::now().0 / 1000;
    let response = agent
        .post(&webhook.url)
        .header("Content-Type", "application/json")
        .header("Credence-Signature", signature(&webhook.secret, t, body))
        .header("Credence-Delivery", delivery)
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

/// Where one webhook stands in the delivery loop.
#[derive(Default)]
struct Progress {
    /// Failed attempts of the delivery under way, and when to try again.
    failed: u32,
    retry_at: Option<tokio::time::Instant>,
}

/// Delivers to every webhook of `dir` until `stop`: each in order, a page
/// at a time, retried, dead-lettered; dead letters asked for again are
/// sent too. Each webhook's rounds run as a task of their own, so that a
/// receiver that is slow or does not answer (up to [`DELIVERY_TIMEOUT`] an
/// attempt) holds up its own webhook only. A round runs when the feed
/// grows, each second (retries due, dead letters asked for again, the
/// file changed), and at once after a round that delivered a full page.
pub async fn run(
    dir: PathBuf,
    commands: mpsc::Sender<Command>,
    mut durable: watch::Receiver<u64>,
    accounts: Arc<AccountBook>,
    mut stop: watch::Receiver<bool>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DELIVERY_TIMEOUT))
        .build()
        .into();
    // Where each webhook stands between its rounds.
    let mut progress: BTreeMap<String, Progress> = BTreeMap::new();
    // The rounds under way, and the webhook of each.
    let mut rounds: tokio::task::JoinSet<(Progress, bool)> = tokio::task::JoinSet::new();
    let mut running: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
    // Every webhook's round is due, or only those of `again`.
    let mut everyone = true;
    let mut again: BTreeSet<String> = BTreeSet::new();
    loop {
        if everyone || !again.is_empty() {
            let webhooks = match read(&dir) {
                Ok(webhooks) => webhooks,
                Err(e) => {
                    tracing::error!("webhooks: {e}");
                    Vec::new()
                }
            };
            progress.retain(|name, _| webhooks.iter().any(|w| w.name == *name));
            for webhook in webhooks {
                let due = everyone || again.contains(&webhook.name);
                if !due || running.values().any(|name| *name == webhook.name) {
                    continue;
                }
                let mut state = progress.remove(&webhook.name).unwrap_or_default();
                let name = webhook.name.clone();
                let (dir, agent, commands, accounts) = (
                    dir.clone(),
                    agent.clone(),
                    commands.clone(),
                    Arc::clone(&accounts),
                );
                let task = rounds.spawn(async move {
                    let more =
                        match deliver_one(&dir, &agent, &commands, &accounts, &webhook, &mut state)
                            .await
                        {
                            Ok(more) => more,
                            Err(e) => {
                                tracing::error!("webhook {}: {e}", webhook.name);
                                false
                            }
                        };
                    (state, more)
                });
                running.insert(task.id(), name);
            }
            everyone = false;
            again.clear();
        }
        // The next retry due, within a second (one whose time passed while
        // the webhook could not send, its account inactive, waits a round).
        let now = tokio::time::Instant::now();
        let wake = progress
            .values()
            .filter_map(|p| p.retry_at)
            .filter(|at| *at > now)
            .min()
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => everyone = true,
            changed = durable.changed() => {
                if changed.is_err() {
                    return;
                }
                everyone = true;
            }
            Some(done) = rounds.join_next_with_id() => {
                let (id, outcome) = match done {
                    Ok((id, outcome)) => (id, Some(outcome)),
                    Err(e) => (e.id(), None),
                };
                let Some(name) = running.remove(&id) else { continue };
                match outcome {
                    Some((state, more)) => {
                        progress.insert(name.clone(), state);
                        if more {
                            again.insert(name);
                        }
                    }
                    // Its progress is lost with it: the round starts again
                    // from the webhook's cursor.
                    None => tracing::error!("webhook {name}: a delivery round failed"),
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One round for one webhook: the dead letters asked for again, then the
/// next page of changes if it is due. Returns whether it took a full page
/// off the feed (more may follow at once).
async fn deliver_one(
    dir: &Path,
    agent: &ureq::Agent,
    commands: &mpsc::Sender<Command>,
    accounts: &AccountBook,
    webhook: &Webhook,
    state: &mut Progress,
) -> Result<bool, String> {
    for letter in letters(dir, &webhook.name, true).map_err(|e| e.to_string())? {
        let delivery = format!("{}-{}", webhook.name, letter.id);
        let result = send(agent, webhook, &delivery, letter.body.clone().into_bytes()).await;
        let path = state_dir(dir, &webhook.name)
            .join("redeliver")
            .join(format!("{}.json", letter.id));
        match result {
            Ok(()) => {
                std::fs::remove_file(&path).map_err(|e| e.to_string())?;
                tracing::info!(
                    "webhook {}: dead letter {} delivered",
                    webhook.name,
                    letter.id
                );
            }
            Err(reason) => {
                let again = DeadLetter {
                    attempts: letter.attempts + 1,
                    reason,
                    failed_at: crate::node::now().0,
                    ..letter
                };
                put_letter(dir, &webhook.name, &again).map_err(|e| e.to_string())?;
                std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            }
        }
    }
    if state
        .retry_at
        .is_some_and(|at| at > tokio::time::Instant::now())
    {
        return Ok(false);
    }
    let Some(role) = accounts.role_of(&webhook.account) else {
        tracing::warn!(
            "webhook {}: account {} is not active; nothing is sent",
            webhook.name,
            webhook.account
        );
        return Ok(false);
    };
    if letters(dir, &webhook.name, false)
        .map_err(|e| e.to_string())?
        .len()
        >= DEAD_LETTERS_MAX
    {
        tracing::error!(
            "webhook {}: {DEAD_LETTERS_MAX} dead letters; waiting until some are sent again or removed",
            webhook.name
        );
        return Ok(false);
    }
    let after = cursor(dir, &webhook.name).map_err(|e| e.to_string())?;
    let (tx, rx) = oneshot::channel();
    commands
        .send(Command::Changes(after, DELIVERY_CHANGES_MAX, tx))
        .await
        .map_err(|_| "the node is stopping".to_string())?;
    let found = rx
        .await
        .map_err(|_| "the node is stopping".to_string())?
        .map_err(|e| e.to_string())?;
    let Some(last) = found.last().map(|c| c.seq) else {
        return Ok(false);
    };
    let full = found.len() >= DELIVERY_CHANGES_MAX;
    let clearance = role.clearance();
    let page = ChangesView {
        changes: found
            .iter()
            .filter(|c| c.after.told_to(clearance))
            .map(ChangeView::from)
            .collect(),
        next: last,
    };
    if page.changes.is_empty() {
        set_cursor(dir, &webhook.name, last).map_err(|e| e.to_string())?;
        return Ok(full);
    }
    let first = found.first().map_or(last, |c| c.seq);
    let id = format!("{first}-{last}");
    let delivery = format!("{}-{id}", webhook.name);
    let body = serde_json::to_vec(&page).map_err(|e| e.to_string())?;
    match send(agent, webhook, &delivery, body.clone()).await {
        Ok(()) => {
            *state = Progress::default();
            set_cursor(dir, &webhook.name, last).map_err(|e| e.to_string())?;
            Ok(full)
        }
        Err(reason) => {
            state.failed += 1;
            if state.failed < webhook.attempts {
                let delay = retry_delay(state.failed, webhook.retry_first_ms);
                state.retry_at = Some(tokio::time::Instant::now() + delay);
                tracing::warn!(
                    "webhook {}: delivery {id} failed ({reason}); attempt {} in {delay:?}",
                    webhook.name,
                    state.failed + 1,
                );
                return Ok(false);
            }
            let letter = DeadLetter {
                id: id.clone(),
                attempts: state.failed,
                reason,
                failed_at: crate::node::now().0,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            put_letter(dir, &webhook.name, &letter).map_err(|e| e.to_string())?;
            tracing::error!(
                "webhook {}: delivery {id} failed {} times; kept as a dead letter (credence webhook redeliver)",
                webhook.name,
                state.failed
            );
            *state = Progress::default();
            set_cursor(dir, &webhook.name, last).map_err(|e| e.to_string())?;
            Ok(full)
        }
    }
}

/// Posts off the runtime's threads.
async fn send(
    agent: &ureq::Agent,
    webhook: &Webhook,
    delivery: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let (agent, webhook, delivery) = (agent.clone(), webhook.clone(), delivery.to_string());
    tokio::task::spawn_blocking(move || post(&agent, &webhook, &delivery, &body))
        .await
        .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_minute() {
        let delays: Vec<u64> = (1..=ATTEMPTS_DEFAULT)
            .map(|a| retry_delay(a, RETRY_FIRST_DEFAULT_MS).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000]
        );
        assert_eq!(retry_delay(40, 10), RETRY_DELAY_MAX);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // HMAC-SHA256 with key "Jefe" of "0.what do ya want for
        // nothing?", computed with Python's hmac module.
        let value = signature(&hex::encode(b"Jefe"), 0, b"what do ya want for nothing?");
        assert_eq!(
            value,
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }

    #[test]
    fn urls_and_letter_ids_are_checked() {
        assert!(check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(check_url("https://example.org").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http://a b").is_err());
        assert!(check_letter_id("3-9").is_ok());
        assert!(check_letter_id("../x").is_err());
    }
}

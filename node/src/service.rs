//! Starting and stopping a node: the daemon loop, its HTTP API, its API
//! token and address files, and the signals that stop it.

use crate::accounts::{AccountBook, Accounts, AccountsLock, NODE_ACCOUNT, Role};
use crate::api::{self, ADDRESS_FILE, TOKEN_FILE};
use crate::config::RunConfig;
use crate::daemon::{Daemon, Handle};
use crate::node::{NodeError, read_bounded};
use anyhow::{Context, Result, bail};
use libp2p::{Multiaddr, PeerId};
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bytes of a token file read (a token is 64 hex digits).
const TOKEN_BYTES_MAX: u64 = 1024;

/// The credential of the node's own account ([`NODE_ACCOUNT`], role
/// admin), in `api.token` (0600), which the node's command line uses. It
/// is made, with the account, when the data directory has neither; when
/// `api.token` is missing, or does not open the account (a file from
/// before accounts, or one an operator deleted), a new credential
/// replaces the account's.
pub fn ensure_token(dir: &Path) -> Result<String, NodeError> {
    let _lock = AccountsLock::take(dir)?;
    let path = dir.join(TOKEN_FILE);
    let mut accounts = Accounts::read(dir)?;
    let held = if path.exists() {
        Some(read_token(dir)?)
    } else {
        None
    };
    if let Some(token) = &held
        && accounts
            .authenticate(token)
            .is_ok_and(|account| account.name == NODE_ACCOUNT)
    {
        return Ok(token.clone());
    }
    let io = |source| NodeError::Io {
        path: path.display().to_string(),
        source,
    };
    accounts.accounts.retain(|a| a.name != NODE_ACCOUNT);
    let credential = accounts
        .add(NODE_ACCOUNT, Role::Admin, crate::node::now().0)
        .map_err(|reason| io(std::io::Error::other(reason)))?;
    let temporary = dir.join(format!("{TOKEN_FILE}.new"));
    {
        let _ = fs::remove_file(&temporary);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io)?;
        writeln!(file, "{credential}").map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    // The account first: a crash between the two leaves the old token,
    // which no longer opens it, and the next start makes another.
    accounts.write(dir)?;
    fs::rename(&temporary, &path).map_err(io)?;
    Ok(credential)
}

/// Reads the API token of a data directory, refusing a file anyone but
/// this process's user can read.
pub fn read_token(dir: &Path) -> Result<String, NodeError> {
    let path = dir.join(TOKEN_FILE);
    crate::keyfile::check_private(&path)?;
    let bytes = read_bounded(&path, TOKEN_BYTES_MAX, "API token file")?;
    let token = String::from_utf8(bytes)
        .map_err(|_| NodeError::Config {
            path: path.display().to_string(),
            reason: "not UTF-8 text".into(),
        })?
        .trim()
        .to_string();
    if token.len() < 16 {
        return Err(NodeError::Config {
            path: path.display().to_string(),
            reason: "the token must have at least 16 characters".into(),
        });
    }
    Ok(token)
}

/// A node running in this process.
pub struct Running {
    /// Its handle.
    pub handle: Handle,
    /// Where its HTTP API listens.
    pub http: SocketAddr,
    /// Where its libp2p transport listens.
    pub listen: Vec<Multiaddr>,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its API token.
    pub token: String,
    task: JoinHandle<Result<(), NodeError>>,
    server: JoinHandle<()>,
    /// Tells the API to stop taking connections and finish the answers
    /// under way.
    server_stop: tokio::sync::watch::Sender<bool>,
    address_file: std::path::PathBuf,
}

/// How long a stopping node lets the API finish the answers under way
/// (the answer to the request that halted it among them).
const API_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts a node (daemon and API) on the current tokio runtime.
pub async fn launch(config: RunConfig) -> Result<Running> {
    let token = ensure_token(&config.data)?;
    let http_addr = config.http;
    let data = config.data.clone();
    let (daemon, handle, commands, stop) = Daemon::start(config)?;
    let peer_id = daemon.local_peer_id();
    let (listening_tx, listening_rx) = oneshot::channel();
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("the HTTP API cannot listen on {http_addr}"))?;
    let http = listener.local_addr()?;
    let accounts = std::sync::Arc::new(AccountBook::open(&data)?);
    let router = api::router(
        handle.commands.clone(),
        handle.changes.clone(),
        handle.federation.clone(),
        accounts.clone(),
    );
    let (server_stop, mut stopping) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        // As a make-service, the router is shared by every connection as
        // built (axum's own per-connection path rebuilds its route tables
        // for each connection: 4% of the CPU of issuing at 32 clients).
        let serve = axum::serve(
            crate::http::CappedListener::new(listener),
            router.into_make_service(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        });
        if let Err(e) = serve.await {
            tracing::error!("HTTP API stopped: {e}");
        }
    });
    tokio::spawn(crate::webhooks::run(
        data.clone(),
        handle.commands.clone(),
        handle.changes.clone(),
        accounts.clone(),
        server_stop.subscribe(),
    ));
    let task = tokio::spawn(daemon.run(commands, stop, Some(listening_tx)));
    let listen = tokio::time::timeout(std::time::Duration::from_secs(10), listening_rx)
        .await
        .context("the node did not start listening within 10 s")?
        .context("the node stopped while starting")?;
    let address_file = data.join(ADDRESS_FILE);
    fs::write(&address_file, http.to_string())
        .with_context(|| format!("writing {}", address_file.display()))?;
    Ok(Running {
        handle,
        http,
        listen,
        peer_id,
        token,
        task,
        server,
        server_stop,
        address_file,
    })
}

impl Running {
    /// Runs until Ctrl-C or SIGTERM (then stops cleanly), or until the
    /// node stops on its own: storage that cannot be made durable stops it
    /// with an error (fail-stop; the service manager restarts it).
    pub async fn until_signal(mut self) -> Result<()> {
        tokio::select! {
            _ = wait_for_signal() => {
                println!("stopping: flushing the store");
                self.stop().await
            }
            result = &mut self.task => {
                Self::drain(self.server_stop, self.server).await;
                let _ = fs::remove_file(&self.address_file);
                result
                    .context("the node task failed")?
                    .context("the node stopped")
            }
        }
    }

    /// Stops the node: flushes its store and waits for it.
    pub async fn stop(self) -> Result<()> {
        let _ = self.handle.stop.send(()).await;
        let result = self.task.await.context("the node task failed")?;
        Self::drain(self.server_stop, self.server).await;
        let _ = fs::remove_file(&self.address_file);
        result.map_err(Into::into)
    }

    /// Waits up to `within` for the node to stop on its own (as it does
    /// when a roster version retires its key); a node still running then is
    /// stopped, and that is an error. The node's own result is returned.
    pub async fn until_stopped_within(mut self, within: std::time::Duration) -> Result<()> {
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(result) => {
                Self::drain(self.server_stop, self.server).await;
                let _ = fs::remove_file(&self.address_file);
                result
                    .context("the node task failed")?
                    .context("the node stopped")
            }
            Err(_) => {
                let stopped = self.stop().await;
                bail!(
                    "the node did not stop on its own within {within:?} (stopped then: {stopped:?})"
                )
            }
        }
    }

    /// Stops the API: no new connection, and the answers under way (to
    /// the request that stopped the node, say) get [`API_DRAIN`] to be
    /// sent; connections still open then are closed.
    async fn drain(stop: tokio::sync::watch::Sender<bool>, server: JoinHandle<()>) {
        let _ = stop.send(true);
        let abort = server.abort_handle();
        if tokio::time::timeout(API_DRAIN, server).await.is_err() {
            abort.abort();
        }
    }
}

/// `credence run --config FILE`: runs until Ctrl-C or SIGTERM.
pub fn run(config_path: &Path) -> Result<()> {
    let config = RunConfig::read(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let running = launch(config).await?;
        println!("credence node {} running", running.peer_id);
        for address in &running.listen {
            println!("  libp2p  {address}/p2p/{}", running.peer_id);
        }
        println!("  http    http://{}", running.http);
        running.until_signal().await
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    // The node's own account is made with its credential in api.token; a
    // token that no longer opens it (deleted, or from before accounts) is
    // replaced, and other accounts stay.
    #[test]
    fn the_node_s_own_account_opens_with_api_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = ensure_token(dir.path()).unwrap();
        assert!(token.starts_with("operator."), "{token}");
        let accounts = Accounts::read(dir.path()).unwrap();
        assert_eq!(accounts.authenticate(&token).unwrap().role, Role::Admin);
        assert_eq!(ensure_token(dir.path()).unwrap(), token);
        let mut accounts = accounts;
        accounts.add("desk", Role::Reader, 1).unwrap();
        accounts.write(dir.path()).unwrap();
        fs::write(
            dir.path().join(TOKEN_FILE),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let fresh = ensure_token(dir.path()).unwrap();
        assert_ne!(fresh, token);
        let accounts = Accounts::read(dir.path()).unwrap();
        assert!(accounts.authenticate(&token).is_err());
        assert_eq!(accounts.authenticate(&fresh).unwrap().name, "operator");
        assert!(accounts.get("desk").is_some());
        assert_eq!(read_token(dir.path()).unwrap(), fresh);
        assert!(!dir.path().join("accounts.toml.lock").exists());
    }

    // The token is created private; a token file others can read, or one
    // another user owns, is refused with what to do.
    #[test]
    fn the_token_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let token = ensure_token(dir.path()).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_token(dir.path()).unwrap(), token);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_token(dir.path()).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let me = fs::metadata("/proc/self").unwrap().uid();
        let other = if me == 0 { 65_534 } else { 0 };
        // Only root can give a file away; as another user the file is
        // already someone's, so make one that root owns only when root.
        if me == 0 {
            std::os::unix::fs::chown(&path, Some(other), None).unwrap();
            let error = read_token(dir.path()).unwrap_err().to_string();
            assert!(error.contains("owned by user 65534"), "{error}");
        } else {
            assert!(std::os::unix::fs::chown(&path, Some(other), None).is_err());
        }
    }
}

//! The daemon's configuration file (`credence run --config FILE`).
//!
//! ```toml
//! data = "market"                           # data directory, relative to this file
//! listen = ["/ip4/127.0.0.1/tcp/7401"]      # libp2p listen addresses
//! bootstrap = ["/ip4/127.0.0.1/tcp/7402"]   # peers to dial besides the roster's
//! http = "127.0.0.1:7501"                   # HTTP API (loopback unless allow_remote_http)
//! sync_interval = "30s"                     # anti-entropy period (jittered)
//! mdns = false
//! log = "human"                             # or "json"
//! ```

use crate::node::{NodeError, read_bounded};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read.
const RUN_CONFIG_BYTES_MAX: u64 = 64 * 1024;
/// Most listen or bootstrap addresses.
pub const ADDRESSES_MAX: usize = 32;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunConfigFile {
    data: PathBuf,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    bootstrap: Vec<String>,
    #[serde(default = "default_http")]
    http: String,
    #[serde(default)]
    allow_remote_http: bool,
    #[serde(default = "default_sync_interval")]
    sync_interval: String,
    /// Removed: refused with an explanation.
    #[serde(default)]
    catch_up_grace: Option<String>,
    #[serde(default)]
    mdns: bool,
    #[serde(default)]
    log: LogFormat,
    /// How long the register of reads keeps a record whole (`"5y"`,
    /// `"180d"`); absent: for ever.
    #[serde(default)]
    register_retention: Option<String>,
}

fn default_http() -> String {
    "127.0.0.1:7500".into()
}

fn default_sync_interval() -> String {
    "30s".into()
}

/// A checked daemon configuration.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The data directory.
    pub data: PathBuf,
    /// libp2p listen addresses.
    pub listen: Vec<libp2p::Multiaddr>,
    /// Peers to dial besides the roster's listen addresses.
    pub bootstrap: Vec<libp2p::Multiaddr>,
    /// HTTP API address.
    pub http: SocketAddr,
    /// Anti-entropy period (each round is jittered by up to a quarter).
    pub sync_interval: Duration,
    /// Local-network discovery.
    pub mdns: bool,
    /// Log format.
    pub log: LogFormat,
    /// How long a register record is kept whole before it is pruned to
    /// its leaf hash; `None`: kept for ever.
    pub register_retention: Option<Duration>,
}

/// The shortest register retention: a record is kept at least this long,
/// so that a subject's report and an audit within the year see it.
pub const REGISTER_RETENTION_MIN: Duration = Duration::from_secs(365 * 86_400);
/// The longest register retention that is not "for ever".
pub const REGISTER_RETENTION_MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

fn retention(path: &Path, text: &str) -> Result<Duration, NodeError> {
    let value = humantime::parse_duration(text).map_err(|e| {
        bad(
            path,
            format!("register_retention: {text:?} is not a duration like \"5y\" or \"400d\": {e}"),
        )
    })?;
    if !(REGISTER_RETENTION_MIN..=REGISTER_RETENTION_MAX).contains(&value) {
        return Err(bad(
            path,
            "register_retention: must be between 1 year and 100 years (leave it out to keep every record)"
                .into(),
        ));
    }
    Ok(value)
}

fn bad(path: &Path, reason: String) -> NodeError {
    NodeError::Config {
        path: path.display().to_string(),
        reason,
    }
}

fn addresses(
    path: &Path,
    field: &str,
    texts: &[String],
) -> Result<Vec<libp2p::Multiaddr>, NodeError> {
    if texts.len() > ADDRESSES_MAX {
        return Err(bad(
            path,
            format!("{field}: at most {ADDRESSES_MAX} addresses"),
        ));
    }
    texts
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| bad(path, format!("{field}: {text:?} is not a multiaddr: {e}")))
        })
        .collect()
}

fn duration(path: &Path, field: &str, text: &str) -> Result<Duration, NodeError> {
    let value = humantime::parse_duration(text).map_err(|e| {
        bad(
            path,
            format!("{field}: {text:?} is not a duration like \"30s\": {e}"),
        )
    })?;
    if value.is_zero() || value > Duration::from_secs(24 * 3600) {
        return Err(bad(path, format!("{field}: must be between 1ms and 24h")));
    }
    Ok(value)
}

impl RunConfig {
    /// Reads and checks a configuration file.
    pub fn read(path: &Path) -> Result<RunConfig, NodeError> {
        let bytes = read_bounded(path, RUN_CONFIG_BYTES_MAX, "node run configuration")?;
        let text = String::from_utf8(bytes).map_err(|_| bad(path, "not UTF-8 text".into()))?;
        RunConfig::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` locates relative
    /// directories and names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<RunConfig, NodeError> {
        let file: RunConfigFile = toml::from_str(text).map_err(|e| bad(path, e.to_string()))?;
        if file.catch_up_grace.is_some() {
            return Err(bad(
                path,
                "catch_up_grace is no longer a setting: a node issues once its own log is back up to its durable mark, however long that takes; remove the line"
                    .into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let http: SocketAddr = file.http.parse().map_err(|e| {
            bad(
                path,
                format!(
                    "http: {:?} is not an address like 127.0.0.1:7500: {e}",
                    file.http
                ),
            )
        })?;
        if !http.ip().is_loopback() && !file.allow_remote_http {
            return Err(bad(
                path,
                format!(
                    "http: {http} is not a loopback address; set allow_remote_http = true to expose the API"
                ),
            ));
        }
        let mut listen = addresses(path, "listen", &file.listen)?;
        if listen.is_empty() {
            listen.push(
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .map_err(|e| bad(path, format!("listen: {e}")))?,
            );
        }
        Ok(RunConfig {
            data: base.join(file.data),
            listen,
            bootstrap: addresses(path, "bootstrap", &file.bootstrap)?,
            http,
            sync_interval: duration(path, "sync_interval", &file.sync_interval)?,
            mdns: file.mdns,
            log: file.log,
            register_retention: file
                .register_retention
                .as_deref()
                .map(|text| retention(path, text))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunConfig, String> {
        RunConfig::parse(Path::new("/etc/credence/node.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_relative_data() {
        let config = parse("data = \"market\"").unwrap();
        assert_eq!(config.data, Path::new("/etc/credence/market"));
        assert_eq!(config.http.to_string(), "127.0.0.1:7500");
        assert_eq!(config.sync_interval, Duration::from_secs(30));
    }

    #[test]
    fn register_retention_is_bounded() {
        assert_eq!(parse("data = \"x\"").unwrap().register_retention, None);
        let config = parse("data = \"x\"\nregister_retention = \"5y\"").unwrap();
        assert!(config.register_retention > Some(Duration::from_secs(4 * 365 * 86_400)));
        for bad in ["\"30d\"", "\"200y\"", "\"soon\""] {
            let error = parse(&format!("data = \"x\"\nregister_retention = {bad}")).unwrap_err();
            assert!(error.contains("register_retention"), "{error}");
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let error = parse("data = \"x\"\nhttp = \"0.0.0.0:80\"").unwrap_err();
        assert!(error.contains("allow_remote_http"), "{error}");
        let error = parse("data = \"x\"\nlisten = [\"nonsense\"]").unwrap_err();
        assert!(error.contains("listen"), "{error}");
        let error = parse("data = \"x\"\nsync_interval = \"soon\"").unwrap_err();
        assert!(error.contains("sync_interval"), "{error}");
        let error = parse("data = \"x\"\nport = 1").unwrap_err();
        assert!(error.contains("port"), "{error}");
    }
}

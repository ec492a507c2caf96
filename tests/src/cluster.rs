//! A federation of real `credence run` processes on 127.0.0.1, each with
//! its own data directory, sled store, libp2p port and HTTP port, driven
//! through the HTTP API. Every process is killed when its [`Peer`] drops.

use crate::{arg, configs_dir, credence};
use credence_protocol::model::{
    Classification, ListKind, Listing, NoticeKind, Severity, Subject, SubjectKind,
};
use credence_protocol::roster::MembersDocument;
use credence_protocol::time::{DAY_MS, Timestamp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for the federation to reach a state.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Ports tests choose from: below Linux's ephemeral range (32768 and up
/// by default), so that no outgoing connection's source port takes one
/// between its choice and a node binding it (a libp2p port is written in
/// the roster and cannot be chosen again).
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// A port on 127.0.0.1 that was free a moment ago, outside the ephemeral
/// range; each call in a process gives another.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    // Test binaries run one after another; a process's own calls never
    // repeat a port until the span is used up.
    let offset = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = TEST_PORTS.start + (offset + n) % span;
        let port = u16::try_from(port).expect("test ports fit in u16");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}")
}

/// Whether a node's log says its HTTP port was taken.
fn http_port_taken(log: &str) -> bool {
    log.contains("the HTTP API cannot listen") && log.contains("Address already in use")
}

/// Waits until `condition` holds, polling; panics naming `what` after
/// [`CONVERGE_TIMEOUT`].
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < CONVERGE_TIMEOUT,
            "timed out after {CONVERGE_TIMEOUT:?} waiting for {what}"
        );
        // Polling a real process: no timing is asserted.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One member's node.
pub struct Peer {
    /// Its handle in the members file.
    pub handle: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its run configuration.
    pub config: PathBuf,
    /// Its libp2p port.
    pub p2p_port: u16,
    /// Its HTTP port.
    pub http_port: u16,
    /// The address its HTTP API is reached at.
    pub host: String,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
    /// Extra environment of its process (a fault-injection library).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    agent: ureq::Agent,
}

impl Peer {
    /// The API token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("api.token"))
            .expect("api.token")
            .trim()
            .to_string()
    }

    /// Starts `credence run` and waits until its API answers. The HTTP
    /// port was chosen free when the cluster was made; if something took it
    /// since (an outgoing connection's ephemeral port, another test), the
    /// node says so and exits, and it is started again on a new port (the
    /// libp2p port is in the roster and never changes).
    pub fn start(&mut self) {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match self.try_start() {
                Ok(()) => return,
                Err(log) if attempt < ATTEMPTS && http_port_taken(&log) => {
                    let old = format!("{}:{}\"", self.host, self.http_port);
                    self.http_port = free_port();
                    let new = format!("{}:{}\"", self.host, self.http_port);
                    let config = std::fs::read_to_string(&self.config).expect("run config");
                    assert!(
                        config.contains(&old),
                        "the run config names its HTTP address"
                    );
                    std::fs::write(&self.config, config.replace(&old, &new)).expect("run config");
                }
                Err(log) => panic!("{} exited:\n{log}", self.handle),
            }
        }
    }

    /// One start; on an exit before the API answers, the log it wrote.
    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "{} is already running", self.handle);
        let before = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log file");
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(crate::credence_bin());
                c
            }
            None => Command::new(crate::credence_bin()),
        };
        let child = command
            .args(["run", "--config", arg(&self.config)])
            .env("CREDENCE_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("credence run starts");
        self.child = Some(child);
        let started = Instant::now();
        // Probing with a short timeout: until the node listens, whatever
        // holds its port may accept and never answer.
        let probe: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(1)))
            .build()
            .into();
        loop {
            let answered = probe
                .get(self.url("/v1/status"))
                .header("Authorization", format!("Bearer {}", self.token()))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if answered {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let log = self.log();
                return Err(format!(
                    "exit status {status}; its log:\n{}",
                    log.get(before..).unwrap_or(&log)
                ));
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} did not start:\n{}",
                self.handle,
                self.log()
            );
            // Waiting for the process to open its API: polling.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Waits for the process to exit on its own; returns its exit code
    /// (`None` if it was killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if started.elapsed() > CONVERGE_TIMEOUT {
                let _ = child.kill();
                panic!("{} did not stop on its own:\n{}", self.handle, self.log());
            }
            // Waiting for the process to exit: polling.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit (the store is flushed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "{} stopped with {status}:\n{}",
                        self.handle,
                        self.log()
                    );
                    return;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    panic!("{} did not stop on SIGTERM:\n{}", self.handle, self.log());
                }
                // Waiting for the process to exit: polling.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The URL of `path`. A read of subjects' records (a lookup, a listing,
    /// an export) states the tests' purpose and legal basis unless the
    /// path states either itself: every such read is registered and needs
    /// them.
    fn url(&self, path: &str) -> String {
        let reads = ["/v1/subjects/", "/v1/listings/", "/v1/export"];
        let stated = if reads.iter().any(|r| path.starts_with(r))
            && !path.contains("purpose=")
            && !path.contains("legal_basis=")
        {
            format!(
                "{}purpose={}&legal_basis={}",
                if path.contains('?') { '&' } else { '?' },
                credence_node::client::query_value(crate::PURPOSE),
                credence_node::client::query_value(crate::LEGAL_BASIS)
            )
        } else {
            String::new()
        };
        format!("http://{}:{}{path}{stated}", self.host, self.http_port)
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        let mut response = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token()))
            .call()
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.body_mut().read_json().ok()
    }

    /// `GET path` (panics unless 200).
    pub fn get(&self, path: &str) -> Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} on {} failed:\n{}", self.handle, self.log()))
    }

    /// `GET path` as text (panics unless 200).
    pub fn get_text(&self, path: &str) -> String {
        let mut response = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token()))
            .call()
            .expect("the API answers");
        assert_eq!(response.status(), 200);
        response.body_mut().read_to_string().expect("text")
    }

    /// A request with an optional token and raw body; returns the status
    /// and the JSON answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = self.url(path);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("POST", Some(body)) => {
                let mut request = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.as_bytes())
            }
            _ => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
        };
        let mut response = result.expect("the API answers");
        let status = response.status().as_u16();
        let value = response.body_mut().read_json().unwrap_or(Value::Null);
        (status, value)
    }

    /// `POST path` with a JSON body and the token.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request("POST", path, Some(&self.token()), Some(&body.to_string()))
    }

    /// Issues a notice; returns its id, or panics with the API's error.
    /// Retries while the node is still catching up.
    pub fn issue(&self, kind: &NoticeKind) -> String {
        let body = serde_json::to_value(kind).expect("notice JSON");
        let started = Instant::now();
        loop {
            let (status, answer) = self.post("/v1/notices", &body);
            if status == 201 {
                return answer["id"].as_str().expect("id").to_string();
            }
            if status == 503 && started.elapsed() < CONVERGE_TIMEOUT {
                // The node is still catching up: poll again shortly.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            panic!(
                "issue on {} failed: {status} {answer}\n{}",
                self.handle,
                self.log()
            );
        }
    }

    /// Notices stored.
    pub fn notices(&self) -> u64 {
        self.get("/v1/status")["notices"].as_u64().expect("notices")
    }

    /// `(author, seq)` of every log held.
    pub fn heads(&self) -> Vec<(String, u64)> {
        self.get("/v1/status")["authors"]
            .as_array()
            .expect("authors")
            .iter()
            .map(|a| {
                (
                    a["author"].as_str().unwrap_or("").to_string(),
                    a["seq"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// One sample of `/metrics` (summed over label sets), 0 if absent.
    pub fn metric(&self, name: &str) -> u64 {
        self.get_text("/metrics")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.split(['{', ' ']).next() == Some(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Whether the node holds listing `id`.
    pub fn has_listing(&self, id: &str) -> bool {
        self.try_get(&format!("/v1/listings/{id}")).is_some()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A federation of members, none running yet.
pub struct Cluster {
    /// Holds every data directory; removed on drop (after the peers).
    pub peers: Vec<Peer>,
    /// The genesis roster.
    pub roster: PathBuf,
    /// The root.
    pub root: tempfile::TempDir,
}

impl Cluster {
    /// The peer with `handle`.
    pub fn peer(&mut self, handle: &str) -> &mut Peer {
        self.peers
            .iter_mut()
            .find(|p| p.handle == handle)
            .unwrap_or_else(|| panic!("no peer {handle}"))
    }

    /// The peer with `handle`, to read from.
    pub fn at(&self, handle: &str) -> &Peer {
        self.peers
            .iter()
            .find(|p| p.handle == handle)
            .unwrap_or_else(|| panic!("no peer {handle}"))
    }

    /// Starts every peer.
    pub fn start_all(&mut self) {
        for peer in &mut self.peers {
            peer.start();
        }
    }

    /// Waits until every running peer in `handles` holds the same logs.
    pub fn wait_converged(&self, handles: &[&str]) {
        let peers: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| handles.contains(&p.handle.as_str()))
            .collect();
        let converged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for("equal heads on every node", || {
                let first = peers[0].heads();
                peers.iter().all(|p| p.heads() == first)
            })
        }));
        if converged.is_err() {
            let mut report = String::new();
            for p in &peers {
                let log = p.log();
                let lines: Vec<&str> = log.lines().collect();
                let head = lines.len().min(25);
                let tail = lines.len().saturating_sub(40).max(head);
                report.push_str(&format!(
                    "--- {} heads {:?}, log:\n{}\n[...]\n{}\n",
                    p.handle,
                    p.try_get("/v1/status").map(|_| p.heads()),
                    lines[..head].join("\n"),
                    lines[tail..].join("\n")
                ));
            }
            panic!("the nodes did not converge within {CONVERGE_TIMEOUT:?}:\n{report}");
        }
    }
}

/// Where one member's node runs.
pub struct Placement {
    /// The address it listens on (libp2p).
    pub host: String,
    /// The address its HTTP API answers on.
    pub http_host: String,
    /// The network namespace it runs in, if any.
    pub netns: Option<String>,
    /// Its libp2p port.
    pub p2p_port: u16,
    /// Its HTTP port.
    pub http_port: u16,
}

/// The example members (`configs/members.toml`): `market`, `tax`, `court`,
/// on 127.0.0.1.
pub fn cluster(handles: &[&str]) -> Cluster {
    cluster_at(handles, |_| Placement {
        host: "127.0.0.1".into(),
        http_host: "127.0.0.1".into(),
        netns: None,
        p2p_port: free_port(),
        http_port: free_port(),
    })
}

/// The example members placed by `place` (their index in `handles`' order
/// of the members file).
pub fn cluster_at(handles: &[&str], mut place: impl FnMut(usize) -> Placement) -> Cluster {
    let root = tempfile::tempdir().expect("temporary directory");
    let text = std::fs::read_to_string(configs_dir().join("members.toml")).expect("members.toml");
    let mut members: MembersDocument = toml::from_str(&text).expect("members");
    members
        .members
        .retain(|m| handles.contains(&m.handle.as_str()));
    // The example's threshold is for its three members; a subset gets the
    // default for its size.
    members.threshold = None;
    let mut peers = Vec::new();
    for (index, member) in members.members.iter_mut().enumerate() {
        let (peer, listen) = new_peer(root.path(), &member.handle, place(index));
        member.listen = vec![listen];
        peers.push(peer);
    }
    let members_path = root.path().join("members.toml");
    std::fs::write(
        &members_path,
        toml::to_string(&members).expect("members TOML"),
    )
    .expect("members file");
    let roster = root.path().join("roster.toml");
    let catalog = configs_dir().join("catalog.toml");
    let mut args: Vec<String> = vec![
        "federation".into(),
        "genesis".into(),
        "--catalog".into(),
        arg(&catalog).into(),
        "--members".into(),
        arg(&members_path).into(),
        "--out".into(),
        arg(&roster).into(),
    ];
    for peer in &peers {
        args.push("--key".into());
        args.push(format!("{}=@{}", peer.handle, arg(&peer.dir)));
    }
    crate::credence_owned(&args).ok();
    for peer in &peers {
        credence(&[
            "federation",
            "join",
            "--data",
            arg(&peer.dir),
            "--roster",
            arg(&roster),
        ])
        .ok();
    }
    Cluster {
        peers,
        roster,
        root,
    }
}

/// A member's node in `root` at `placement`, initialised but in no
/// federation yet, and its libp2p listen address.
pub fn new_peer(root: &Path, handle: &str, placement: Placement) -> (Peer, String) {
    let dir = root.join(handle);
    credence(&["init", "--data", arg(&dir), "--name", handle]).ok();
    let Placement {
        host,
        http_host,
        netns,
        p2p_port,
        http_port,
    } = placement;
    let listen = format!("/ip4/{host}/tcp/{p2p_port}");
    let config = root.join(format!("{handle}.run.toml"));
    let remote = if http_host == "127.0.0.1" {
        ""
    } else {
        "allow_remote_http = true\n"
    };
    std::fs::write(
        &config,
        format!(
            "data = \"{handle}\"\nlisten = [\"{listen}\"]\nhttp = \"{http_host}:{http_port}\"\nsync_interval = \"1s\"\n{remote}"
        ),
    )
    .expect("run config");
    let peer = Peer {
        handle: handle.to_string(),
        dir,
        config,
        p2p_port,
        http_port,
        host: http_host,
        netns,
        env: Vec::new(),
        child: None,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into(),
    };
    (peer, listen)
}

impl Cluster {
    /// A new member's node on 127.0.0.1, initialised but not in the
    /// federation yet (a roster version adds it), and its listen address.
    pub fn new_member(&mut self, handle: &str) -> String {
        let (peer, listen) = new_peer(
            self.root.path(),
            handle,
            Placement {
                host: "127.0.0.1".into(),
                http_host: "127.0.0.1".into(),
                netns: None,
                p2p_port: free_port(),
                http_port: free_port(),
            },
        );
        self.peers.push(peer);
        listen
    }
}

/// A blacklist listing of company `n` in food and drugs by the market
/// bureau, in force now, with the court's and the tax service's measures.
pub fn listing(n: u64) -> NoticeKind {
    let effective_at = Timestamp(now_ms() - 30 * DAY_MS);
    NoticeKind::List(Listing {
        subject: Subject {
            kind: SubjectKind::LegalPerson,
            id: credence_protocol::testkit::uscc(n),
            name: format!("Company {n} Ltd."),
        },
        list: ListKind::Black,
        category: "food-drug".into(),
        severity: Severity::Serious,
        reason: "sold a recalled batch after an order to stop".into(),
        legal_basis: "Food Safety Law art. 123".into(),
        document_number: format!("RSJ-2026-{n:05}"),
        // The example catalog's mandatory measures for serious food and
        // drug listings, and the court's.
        measures: vec![
            "high-consumption-ban".into(),
            "license-review".into(),
            "procurement-ban".into(),
            "subsidy-ban".into(),
        ],
        effective_at,
        publish_until: effective_at.plus_ms(365 * DAY_MS),
        share_until: effective_at.plus_ms(730 * DAY_MS),
        repair_from: effective_at.plus_ms(10 * DAY_MS),
        classification: Classification::Public,
        evidence: Vec::new(),
        checksum_override: false,
        readers: Vec::new(),
        linked: Vec::new(),
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

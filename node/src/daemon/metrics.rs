//! Prometheus text rendering of the engine's counters and the node's
//! gauges.

use credence_protocol::engine::{Counters, Readiness, Via};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Gauges read when the metrics are asked for.
#[derive(Clone, Debug)]
pub struct Gauges {
    /// Connected members.
    pub peers: usize,
    /// Notices pending.
    pub pending: usize,
    /// Open objections past their deadline.
    pub overdue: usize,
    /// Notices stored.
    pub notices: u64,
    /// The counts the views keep over every listing (`None` while they
    /// are being derived again).
    pub listings: Option<credence_protocol::changes::Counts>,
    /// Own notices waiting to be published.
    pub unpublished: usize,
    /// Answers to reads held until their register records are durable.
    pub reads_held: usize,
    /// Whether the node issues.
    pub readiness: Readiness,
    /// Per log (author key in hex): newest checkpoint size, its
    /// cosignatures, newest quorum-cosigned size, the newest cosignature's
    /// time (POSIX seconds), split view held.
    pub checkpoints: Vec<(String, CheckpointGauges)>,
}

/// The checkpoint gauges of one log.
#[derive(Clone, Debug, Default)]
pub struct CheckpointGauges {
    /// Size of the newest checkpoint held.
    pub size: u64,
    /// Cosignatures on it.
    pub cosigners: u64,
    /// Size of the newest checkpoint a quorum cosigned (0: none).
    pub witnessed: u64,
    /// Time of that checkpoint's newest cosignature (POSIX seconds).
    pub witnessed_at: u64,
    /// Split-view evidence of this log is held.
    pub split_view: bool,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn labelled(label: &str, map: &BTreeMap<&'static str, u64>) -> Vec<(String, u64)> {
    map.iter()
        .map(|(k, n)| (format!("{{{label}=\"{k}\"}}"), *n))
        .collect()
}

/// The metrics page.
pub fn render(counters: &Counters, gauges: &Gauges) -> String {
    let plain = |value: u64| vec![(String::new(), value)];
    let mut out = String::new();
    family(
        &mut out,
        "credence_notices_accepted_total",
        "counter",
        "Notices accepted, by path.",
        &Via::ALL
            .iter()
            .filter(|via| counters.accepted[via.index()] > 0)
            .map(|via| {
                (
                    format!("{{via=\"{}\"}}", via.name()),
                    counters.accepted[via.index()],
                )
            })
            .collect::<Vec<_>>(),
    );
    let rejected: Vec<(String, u64)> = counters
        .rejected
        .iter()
        .map(|((via, reason), n)| (format!("{{via=\"{via}\",reason=\"{reason}\"}}"), *n))
        .collect();
    family(
        &mut out,
        "credence_notices_rejected_total",
        "counter",
        "Notices rejected, by path and rule broken.",
        &rejected,
    );
    for (name, help, value) in [
        (
            "credence_notices_duplicate_total",
            "Notices received again.",
            counters.duplicates,
        ),
        (
            "credence_notices_dropped_total",
            "Notices dropped because the pending buffer was full.",
            counters.dropped,
        ),
        ("credence_forks_total", "Forks found.", counters.forks),
        (
            "credence_gossip_bytes_received_total",
            "Gossip payload bytes received.",
            counters.gossip_bytes_in,
        ),
        (
            "credence_gossip_bytes_sent_total",
            "Gossip payload bytes published.",
            counters.gossip_bytes_out,
        ),
        (
            "credence_sync_bytes_received_total",
            "Sync message bytes received.",
            counters.sync_bytes_in,
        ),
        (
            "credence_sync_bytes_sent_total",
            "Sync message bytes sent.",
            counters.sync_bytes_out,
        ),
        (
            "credence_sync_sessions_total",
            "Sync sessions started.",
            counters.sync_sessions,
        ),
        (
            "credence_connections_over_limit_total",
            "Connections refused past the connection limits (pending inbound, per peer, in all).",
            counters.connections_over_limit,
        ),
        (
            "credence_pending_expired_total",
            "Pending notices dropped after waiting too long (sync brings them again).",
            counters.pending_expired,
        ),
        (
            "credence_connections_refused_total",
            "Connections refused (not a roster member).",
            counters.refused_connections,
        ),
    ] {
        family(&mut out, name, "counter", help, &plain(value));
    }
    family(
        &mut out,
        "credence_sync_failures_total",
        "counter",
        "Sync sessions that failed, by reason.",
        &labelled("reason", &counters.sync_failures),
    );
    family(
        &mut out,
        "credence_peer_messages_malformed_total",
        "counter",
        "Malformed or oversized peer messages dropped, by protocol.",
        &labelled("protocol", &counters.malformed),
    );
    family(
        &mut out,
        "credence_queries_total",
        "counter",
        "Queries, by event.",
        &labelled("event", &counters.queries),
    );
    family(
        &mut out,
        "credence_issue_refused_total",
        "counter",
        "Issue requests refused because the node does not issue, by state.",
        &labelled("state", &counters.issue_refused),
    );
    family(
        &mut out,
        "credence_requests_over_budget_total",
        "counter",
        "Peer requests refused past the peer's budget (the peer is disconnected), by protocol.",
        &labelled("protocol", &counters.over_budget),
    );
    family(
        &mut out,
        "credence_checkpoint_events_total",
        "counter",
        "Checkpoint events: own signed, cosigned as a witness, taken from peers, ahead of the copy, rejected, conflicting with the copy, split views found.",
        &labelled("event", &counters.checkpoints),
    );
    type Pick = fn(&CheckpointGauges) -> u64;
    let per_log: [(&str, &str, Pick); 5] = [
        (
            "credence_checkpoint_size",
            "Size of the newest checkpoint held, per log.",
            |g| g.size,
        ),
        (
            "credence_checkpoint_cosigners",
            "Cosignatures gathered on the newest checkpoint, per log.",
            |g| g.cosigners,
        ),
        (
            "credence_checkpoint_witnessed_size",
            "Size of the newest checkpoint a quorum of witnesses cosigned, per log (0: none).",
            |g| g.witnessed,
        ),
        (
            "credence_checkpoint_witnessed_timestamp_seconds",
            "Time of the newest cosignature on that checkpoint, per log.",
            |g| g.witnessed_at,
        ),
        (
            "credence_checkpoint_split_view",
            "1 when split-view evidence of the log is held (its author signed two roots for one size).",
            |g| u64::from(g.split_view),
        ),
    ];
    for (name, help, pick) in per_log {
        let samples: Vec<(String, u64)> = gauges
            .checkpoints
            .iter()
            .map(|(author, g)| (format!("{{author=\"{author}\"}}"), pick(g)))
            .collect();
        family(&mut out, name, "gauge", help, &samples);
    }
    let forked = matches!(gauges.readiness, Readiness::Forked { .. });
    for (name, help, value) in [
        ("credence_peers", "Connected members.", gauges.peers as u64),
        (
            "credence_pending_notices",
            "Notices waiting for a predecessor or reference.",
            gauges.pending as u64,
        ),
        (
            "credence_objections_overdue",
            "Open objections past their deadline.",
            gauges.overdue as u64,
        ),
        ("credence_notices_stored", "Notices stored.", gauges.notices),
        (
            "credence_unpublished_notices",
            "Own notices waiting to be published.",
            gauges.unpublished as u64,
        ),
        (
            "credence_reads_awaiting_register",
            "Answers to reads held until their register records are durable.",
            gauges.reads_held as u64,
        ),
        (
            "credence_own_log_forked",
            "1 when this authority's own log is forked (issuing stopped).",
            u64::from(forked),
        ),
    ] {
        family(&mut out, name, "gauge", help, &plain(value));
    }
    if let Some(counts) = &gauges.listings {
        let samples: Vec<(String, u64)> = credence_protocol::changes::STATUSES
            .iter()
            .zip(counts.by_status)
            .map(|(status, n)| (format!("{{status=\"{}\"}}", status.name()), n))
            .collect();
        family(
            &mut out,
            "credence_listings",
            "gauge",
            "Listings held, by status.",
            &samples,
        );
        for (name, help, value) in [
            (
                "credence_listings_shown",
                "Listings the public feed shows (published, or a public correction).",
                counts.shown,
            ),
            (
                "credence_listings_with_tasks",
                "Listings with tasks for this member.",
                counts.with_tasks,
            ),
            (
                "credence_objections_open",
                "Objections open, over every listing.",
                counts.objections_open,
            ),
        ] {
            family(&mut out, name, "gauge", help, &plain(value));
        }
    }
    let states = ["ready", "restoring", "recovering", "forked", "halted"];
    let samples: Vec<(String, u64)> = states
        .iter()
        .map(|s| {
            (
                format!("{{state=\"{s}\"}}"),
                u64::from(gauges.readiness.name() == *s),
            )
        })
        .collect();
    family(
        &mut out,
        "credence_issuing_state",
        "gauge",
        "Whether this node issues (1 for its current state).",
        &samples,
    );
    out
}

//! The run report: JSON, a short human summary, and an SVG plot of the
//! delivery-latency distribution and of convergence over time.

use crate::sim::Violation;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// One-line replay command.
    pub replay: String,
    /// Hash of every event processed (equal for equal seeds).
    pub trace_hash: String,
    /// No invariant was violated.
    pub passed: bool,
    /// The violations, first first.
    pub violations: Vec<Violation>,
    /// Nodes.
    pub nodes: usize,
    /// Notices issued by authorities through their replicas.
    pub notices_issued: u64,
    /// Virtual time at the end.
    pub virtual_ms: u64,
    /// Wall time of the whole run.
    pub wall_ms: f64,
    /// Wall time of the event loop (the simulation itself, with the checks
    /// made as it goes).
    pub loop_ms: f64,
    /// Wall time of the checks at the end (states and tasks compared).
    pub final_checks_ms: f64,
    /// Message deliveries simulated.
    pub deliveries: u64,
    /// Deliveries per second of wall time of the event loop.
    pub deliveries_per_wall_s: f64,
    /// Messages sent, by kind.
    pub messages: Vec<(String, u64)>,
    /// Bytes sent.
    pub bytes: u64,
    /// Messages per issued notice.
    pub messages_per_notice: f64,
    /// Bytes per issued notice.
    pub bytes_per_notice: f64,
    /// Notices received again.
    pub duplicates: u64,
    /// Delivery latency (issue to accepted), p50.
    pub latency_p50_ms: u64,
    /// p99.
    pub latency_p99_ms: u64,
    /// Max.
    pub latency_max_ms: u64,
    /// Every delivery latency, sorted (for the plot).
    #[serde(skip)]
    pub latencies_ms: Vec<u64>,
    /// Time from the end of the faults to convergence.
    pub convergence_after_faults_ms: Option<u64>,
    /// The bound it had to meet.
    pub converge_bound_ms: u64,
    /// Faults injected, by kind.
    pub faults: Vec<(String, u64)>,
    /// Invariant checks made.
    pub invariant_checks: u64,
    /// Diameter of the gossip mesh.
    pub overlay_diameter: usize,
    /// Diameter times the largest link latency.
    pub latency_bound_ms: u64,
    /// (virtual ms, share of (honest node, notice) pairs delivered).
    pub progress: Vec<(u64, f64)>,
    /// Authorities caught signing two notices at one seq.
    pub equivocators: usize,
    /// Issue requests the issuing gate refused (restoring or recovering).
    pub issue_refused: u64,
    /// Queries asked, completed, answers merged into them, answers
    /// rejected.
    pub queries: (u64, u64, u64, u64),
    /// Checkpoint events summed over the honest nodes up at the end
    /// (`signed`, `cosigned`, `split_view`, ...).
    pub checkpoints: BTreeMap<String, u64>,
    /// Per honest node up at the end, the share of the logs it holds a
    /// quorum-cosigned checkpoint of (among the logs with notices).
    pub witnessed_share: f64,
    /// Authors caught showing a split view of their checkpoints.
    pub split_views: usize,
    /// What roster cutoffs did to notices already held: logs cut back and
    /// orphans kept, summed over the honest nodes up at the end, and the
    /// listings the reference replica holds void.
    pub cutoffs: (u64, u64, u64),
}

/// The `q`th percentile of sorted values.
pub fn percentile(sorted: &[u64], q: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * q / 100).min(sorted.len() - 1)]
}

impl Report {
    /// A short human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} seed {}: {}",
            self.scenario,
            self.seed,
            if self.passed { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(out, "  replay: {}", self.replay);
        let _ = writeln!(out, "  trace hash {}", self.trace_hash);
        let _ = writeln!(
            out,
            "  {} nodes, {} notices, {} deliveries in {:.0} ms wall ({:.0} deliveries/s; then {:.0} ms of end checks), {} ms virtual",
            self.nodes,
            self.notices_issued,
            self.deliveries,
            self.loop_ms,
            self.deliveries_per_wall_s,
            self.final_checks_ms,
            self.virtual_ms
        );
        let _ = writeln!(
            out,
            "  delivery latency p50 {} ms, p99 {} ms, max {} ms (overlay diameter {} x max link latency = {} ms)",
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_max_ms,
            self.overlay_diameter,
            self.latency_bound_ms
        );
        let _ = writeln!(
            out,
            "  convergence after the faults stopped: {} (bound {} ms)",
            self.convergence_after_faults_ms
                .map_or("never".into(), |t| format!("{t} ms")),
            self.converge_bound_ms
        );
        let _ = writeln!(
            out,
            "  {:.1} messages and {:.0} bytes per notice, {} duplicates received",
            self.messages_per_notice, self.bytes_per_notice, self.duplicates
        );
        if self.issue_refused > 0 {
            let _ = writeln!(
                out,
                "  issuing gate: {} issue requests refused while a node restored its own log",
                self.issue_refused
            );
        }
        if self.queries.0 > 0 {
            let _ = writeln!(
                out,
                "  queries: {} asked, {} finished, {} answers merged, {} rejected",
                self.queries.0, self.queries.1, self.queries.2, self.queries.3
            );
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  faults injected: {}",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "  invariant checks: {}; equivocators found: {}",
            self.invariant_checks, self.equivocators
        );
        if !self.checkpoints.is_empty() {
            let events: Vec<String> = self
                .checkpoints
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                out,
                "  checkpoints: {}; logs with a quorum-cosigned checkpoint: {:.1}%; split views found: {}",
                events.join(", "),
                100.0 * self.witnessed_share,
                self.split_views
            );
        }
        let (cuts, orphans, void) = self.cutoffs;
        if cuts + orphans + void > 0 {
            let _ = writeln!(
                out,
                "  roster cutoffs: {cuts} logs cut back, {orphans} orphans kept (over the honest nodes); {void} listings void"
            );
        }
        for v in &self.violations {
            let _ = writeln!(
                out,
                "  VIOLATION {} at {} ms (event {}): {}",
                v.invariant, v.at_ms, v.event, v.detail
            );
        }
        out
    }

    /// An SVG with two panels: the delivery-latency histogram and the
    /// share of deliveries done over virtual time.
    pub fn svg(&self) -> String {
        let (w, h, pad) = (900.0, 360.0, 50.0);
        let panel = (w - 3.0 * pad) / 2.0;
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            out,
            "<text x=\"{pad}\" y=\"20\" font-size=\"14\">{} seed {}: delivery latency (ms)</text>",
            self.scenario, self.seed
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"20\" font-size=\"14\">share of deliveries done over virtual time (s)</text>",
            2.0 * pad + panel
        );
        let (top, bottom) = (40.0, h - pad);
        // Histogram.
        let max = self.latency_max_ms.max(1) as f64;
        let bins = 40usize;
        let mut counts = vec![0u64; bins];
        for l in &self.latencies_ms {
            let b = ((*l as f64 / max) * (bins as f64 - 1.0)).round() as usize;
            counts[b.min(bins - 1)] += 1;
        }
        let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let bar = panel / bins as f64;
        for (i, c) in counts.iter().enumerate() {
            let height = (*c as f64 / peak) * (bottom - top);
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4a7ebb\"/>",
                pad + i as f64 * bar,
                bottom - height,
                (bar - 1.0).max(0.5),
                height
            );
        }
        for (label, value) in [("p50", self.latency_p50_ms), ("p99", self.latency_p99_ms)] {
            let x = pad + (value as f64 / max) * panel;
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#c33\">{label} {value}</text>",
                x + 3.0,
                top + 12.0
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{pad}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"black\"/>",
            pad + panel
        );
        let _ = writeln!(
            out,
            "<text x=\"{pad}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\">{}</text>",
            bottom + 15.0,
            pad + panel - 30.0,
            bottom + 15.0,
            self.latency_max_ms
        );
        // Convergence curve.
        let x0 = 2.0 * pad + panel;
        let t_max = self.progress.last().map_or(1, |p| p.0).max(1) as f64;
        let points: Vec<String> = self
            .progress
            .iter()
            .map(|(t, f)| {
                format!(
                    "{:.1},{:.1}",
                    x0 + (*t as f64 / t_max) * panel,
                    bottom - f * (bottom - top)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"#2a8a4a\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = writeln!(
            out,
            "<line x1=\"{x0}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"black\"/><line x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{bottom}\" stroke=\"black\"/>",
            x0 + panel
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">100%</text><text x=\"{x0}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\">{:.0}</text>",
            x0 - 38.0,
            top + 4.0,
            bottom + 15.0,
            x0 + panel - 30.0,
            bottom + 15.0,
            t_max / 1000.0
        );
        out.push_str("</svg>\n");
        out
    }
}

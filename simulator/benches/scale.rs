//! Scale: 1,000 nodes and 10,000 notices simulated without faults. Prints
//! the wall time and the simulated message deliveries per second of wall
//! time (goal at least 1,000,000), and the delivery latency p99 beside the
//! bound set by the overlay's diameter times the largest link latency
//! (goal within 1.5 times it).
//!
//! Run: `cargo bench -p credence-sim --bench scale` (NODES and NOTICES
//! override the size).

use credence_sim::scenario::Scenario;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let nodes = env("NODES", 1000);
    let notices = env("NOTICES", 10_000);
    let text = format!(
        r#"
name = "scale"
seeds = [7]
nodes = {nodes}
authorities = 100
degree = 6
converge_within = "120s"
[links]
latency_min = "10ms"
latency_max = "50ms"
bandwidth_bytes_per_s = 10_000_000
[protocol]
heartbeat = "1s"
lazy_fanout = 2
sync_interval = "30s"
flush_interval = "500ms"
[workload]
notices = {notices}
duration = "100s"
subjects = 5000
[workload.mix]
list = 40
amend = 8
object = 15
rule = 12
repair = 8
withdraw = 5
feedback = 12
"#
    );
    let scenario = Scenario::parse(&text).expect("scenario");
    let report = credence_sim::run(&scenario, "(scale bench)", 7, None).expect("run");
    let bound = report.latency_bound_ms as f64;
    println!("nodes:                          {}", report.nodes);
    println!("notices issued:                 {}", report.notices_issued);
    println!("deliveries simulated:           {}", report.deliveries);
    println!(
        "wall time:                      {:.1} s (event loop {:.1} s, end checks {:.1} s)",
        report.wall_ms / 1000.0,
        report.loop_ms / 1000.0,
        report.final_checks_ms / 1000.0
    );
    println!(
        "messages per notice:            {}",
        report
            .messages
            .iter()
            .map(|(kind, n)| format!(
                "{kind} {:.0}",
                *n as f64 / report.notices_issued.max(1) as f64
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "deliveries per second of wall:  {:.0} (event loop; {:.0} over the whole run)        goal: >= 1,000,000",
        report.deliveries_per_wall_s,
        report.deliveries as f64 / (report.wall_ms / 1000.0).max(1e-9)
    );
    println!(
        "delivery latency:               p50 {} ms, p99 {} ms, max {} ms",
        report.latency_p50_ms, report.latency_p99_ms, report.latency_max_ms
    );
    println!(
        "bound:                          overlay diameter {} x max link latency 50 ms = {} ms; p99 is {:.2} x the bound (goal <= 1.5)",
        report.overlay_diameter,
        report.latency_bound_ms,
        report.latency_p99_ms as f64 / bound.max(1.0)
    );
    println!(
        "invariants:                     {}",
        if report.passed { "held" } else { "VIOLATED" }
    );
    if !report.passed {
        print!("{}", report.summary());
    }
}

//! The `credence-sim` binary.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use credence_sim::scenario::{SCENARIO_BYTES_MAX, Scenario};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// credence-sim: many replicas, injected faults, checked invariants.
#[derive(Debug, Parser)]
#[command(name = "credence-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: one seed, or every seed the scenario lists.
    Run {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// Run only this seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run the seed twice and compare the trace hashes.
        #[arg(long)]
        check_determinism: bool,
        /// Write report.json and plot.svg of each seed here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run many seeds of a scenario, in parallel over the cores (each run
    /// single-threaded and deterministic); print each failure with its
    /// replay command, then a summary.
    Sweep {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// Seeds `A..B` (B excluded) or `A..=B`.
        #[arg(long)]
        seeds: String,
        /// Parallel runs (default: the cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
}

/// Most seeds one sweep runs.
const SWEEP_SEEDS_MAX: u64 = 10_000_000;
/// Most parallel runs.
const JOBS_MAX: usize = 256;

/// Parses `A..B` or `A..=B`.
fn seed_range(text: &str) -> Result<std::ops::Range<u64>> {
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        bail!("--seeds {text:?}: expected A..B or A..=B");
    };
    let number = |t: &str| {
        t.trim()
            .parse::<u64>()
            .with_context(|| format!("--seeds {text:?}: {t:?} is not a seed"))
    };
    let (a, b) = (number(a)?, number(b)?);
    let end = if inclusive {
        b.checked_add(1)
            .context("--seeds: the range ends past the last seed")?
    } else {
        b
    };
    if end <= a {
        bail!("--seeds {text:?}: the range is empty");
    }
    if end - a > SWEEP_SEEDS_MAX {
        bail!("--seeds {text:?}: at most {SWEEP_SEEDS_MAX} seeds in one sweep");
    }
    Ok(a..end)
}

fn read_scenario(path: &PathBuf) -> Result<Scenario> {
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("{}", path.display()))?
        .take(SCENARIO_BYTES_MAX as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("{}", path.display()))?;
    Scenario::parse(&text).with_context(|| format!("{}", path.display()))
}

fn sweep(path: &PathBuf, seeds: &str, jobs: Option<usize>) -> Result<i32> {
    let scenario = read_scenario(path)?;
    let range = seed_range(seeds)?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, JOBS_MAX);
    let shown = path.display().to_string();
    let next = AtomicU64::new(range.start);
    let failures = Mutex::new(Vec::new());
    let totals = Mutex::new((0u64, 0u64, 0u64));
    // Logs cut back, orphans kept, listings void, over every run.
    let cutoffs = Mutex::new((0u64, 0u64, 0u64));
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= range.end {
                        break;
                    }
                    let outcome = credence_sim::run(&scenario, &shown, seed, None);
                    if let (Ok(report), Ok(mut sum)) = (&outcome, cutoffs.lock()) {
                        sum.0 += report.cutoffs.0;
                        sum.1 += report.cutoffs.1;
                        sum.2 += report.cutoffs.2;
                    }
                    let (line, deliveries, notices) = match outcome {
                        Ok(report) if report.passed => {
                            (None, report.deliveries, report.notices_issued)
                        }
                        Ok(report) => (
                            Some(format!(
                                "FAILED seed {seed}: {}\n  replay: {}",
                                report
                                    .violations
                                    .iter()
                                    .map(|v| format!("{}: {}", v.invariant, v.detail))
                                    .collect::<Vec<_>>()
                                    .join("; "),
                                report.replay
                            )),
                            report.deliveries,
                            report.notices_issued,
                        ),
                        Err(e) => (Some(format!("FAILED seed {seed}: {e}")), 0, 0),
                    };
                    if let Some(line) = line {
                        println!("{line}");
                        if let Ok(mut failures) = failures.lock() {
                            failures.push(seed);
                        }
                    }
                    if let Ok(mut totals) = totals.lock() {
                        totals.0 += 1;
                        totals.1 += deliveries;
                        totals.2 += notices;
                    }
                }
            });
        }
    });
    let failed = failures.into_inner().unwrap_or_default();
    let (runs, deliveries, notices) = totals.into_inner().unwrap_or_default();
    println!(
        "sweep {} seeds {}..{}: {runs} runs, {} passed, {} failed; {notices} notices and {deliveries} deliveries simulated in {:.1} s on {jobs} jobs",
        scenario.name,
        range.start,
        range.end,
        runs - failed.len() as u64,
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    let (cuts, orphans, void) = cutoffs.into_inner().unwrap_or_default();
    if cuts + orphans + void > 0 {
        println!(
            "roster cutoffs over the sweep: {cuts} logs cut back, {orphans} orphans kept, {void} listings void"
        );
    }
    if !failed.is_empty() {
        println!("failed seeds: {failed:?}");
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// Signatures the process remembers as verified: every simulated replica
/// verifies the same envelopes, so all but the first check of each are a
/// hash (see `credence_crypto::remember_verified`). Sized for a few runs'
/// signatures at once (each a few thousand); about 100 bytes each.
const VERIFIED_MEMO: usize = 1 << 17;

fn main() {
    credence_crypto::remember_verified(VERIFIED_MEMO);
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let (path, seed, check_determinism, out) = match cli.command {
        Command::Run {
            scenario,
            seed,
            check_determinism,
            out,
        } => (scenario, seed, check_determinism, out),
        Command::Sweep {
            scenario,
            seeds,
            jobs,
        } => return sweep(&scenario, &seeds, jobs),
    };
    let scenario = read_scenario(&path)?;
    let seeds = match seed {
        Some(seed) => vec![seed],
        None => scenario.seeds.clone(),
    };
    if seeds.is_empty() {
        bail!("{}: no seeds; give --seed N", path.display());
    }
    let shown = path.display().to_string();
    let mut failed = 0;
    for seed in seeds {
        println!(
            "running {} seed {seed} (replay: cargo run --release -p credence-sim -- run --scenario {shown} --seed {seed})",
            scenario.name
        );
        let report = credence_sim::run(&scenario, &shown, seed, None)?;
        print!("{}", report.summary());
        if check_determinism {
            let again = credence_sim::run(&scenario, &shown, seed, None)?;
            if again.trace_hash != report.trace_hash {
                println!(
                    "  DETERMINISM FAILED: trace hash {} then {}",
                    report.trace_hash, again.trace_hash
                );
                failed += 1;
            } else {
                println!("  determinism: the same seed gave the same trace hash twice");
            }
        }
        if let Some(dir) = &out {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
            let base = dir.join(format!("{}-{seed}", scenario.name));
            std::fs::write(
                base.with_extension("json"),
                serde_json::to_string_pretty(&report)?,
            )?;
            std::fs::write(base.with_extension("svg"), report.svg())?;
            println!(
                "  report: {} and {}",
                base.with_extension("json").display(),
                base.with_extension("svg").display()
            );
        }
        if !report.passed {
            failed += 1;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

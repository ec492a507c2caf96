//! The `credence-sim` binary.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use credence_sim::scenario::{SCENARIO_BYTES_MAX, Scenario};
use std::io::Read;
use std::path::PathBuf;

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
}

fn main() {
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let Command::Run {
        scenario: path,
        seed,
        check_determinism,
        out,
    } = cli.command;
    let mut text = String::new();
    std::fs::File::open(&path)
        .with_context(|| format!("{}", path.display()))?
        .take(SCENARIO_BYTES_MAX as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("{}", path.display()))?;
    let scenario = Scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
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

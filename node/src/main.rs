//! The `credence` binary.

use clap::Parser;
use credence_node::config::{LogFormat, RunConfig};

/// gossipsub warns each time a node publishes a message it published
/// before, and that is how a checkpoint is published again every ten
/// minutes on a quiet network (the library forgets a message id only when
/// another message arrives). The node says itself when a publication
/// fails, so the library's warnings are left out unless `CREDENCE_LOG`
/// asks for them.
const GOSSIPSUB_QUIET: &str = "libp2p_gossipsub::behaviour=error";

fn main() {
    let cli = credence_node::cli::Cli::parse();
    // The daemon logs at info by default, in the format its configuration
    // names; one-shot commands only log warnings. CREDENCE_LOG overrides.
    let (default_level, format) = match cli.run_config() {
        Some(path) => (
            "info",
            RunConfig::read(path).map(|c| c.log).unwrap_or_default(),
        ),
        None => ("warn", LogFormat::Human),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CREDENCE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},{GOSSIPSUB_QUIET}"))
    });
    // Colour codes only where a terminal shows them: a log file, a pipe or
    // the journal gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
    match credence_node::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {}", credence_node::cli::describe(&error));
            std::process::exit(2);
        }
    }
}

//! The `credence` binary.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CREDENCE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = credence_node::cli::Cli::parse();
    match credence_node::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    }
}

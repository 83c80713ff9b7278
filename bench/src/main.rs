//! `inboxd-bench`: the real queue → engine → store path of inboxd on a
//! generated workload with the configured rules, next to the ceiling of
//! the bare SQLite writes the same workload causes, in a scratch
//! directory. Method and figures: docs/PERFORMANCE.md.

use std::path::PathBuf;

use inboxd_bench::bench;
use std::process::ExitCode;

use clap::Parser;

/// Measure inboxd's throughput (against the bare-SQLite ceiling), latency,
/// reload time and memory on a generated workload with the configured
/// rules, in a scratch directory.
#[derive(Debug, Parser)]
#[command(name = "inboxd-bench", version)]
struct Cli {
    /// The config whose rules are measured.
    #[arg(long, env = "INBOXD_CONFIG", default_value = "config/inboxd.toml")]
    config: PathBuf,
    #[command(flatten)]
    options: bench::Options,
    /// Output for people (text) or for programs (json).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Lines for people.
    Text,
    /// JSON for programs.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Some(url) = &cli.options.postgres {
        return match bench::run_postgres(&cli.config, url, &cli.options) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("inboxd-bench: error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    match bench::run(&cli.config, &cli.options) {
        Ok(figures) => {
            let text = match cli.format {
                Format::Json => serde_json::to_string_pretty(&figures)
                    .map(|json| json + "\n")
                    .unwrap_or_default(),
                Format::Text => figures.to_text(),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("inboxd-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon's allocator, so that the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: inboxd::memory::Counting<mimalloc::MiMalloc> =
    inboxd::memory::Counting(mimalloc::MiMalloc);

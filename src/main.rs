use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use inboxd::cli::{Cli, LogFormat};
use inboxd::domain::diagnostic::Diagnostics;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(std::io::stderr()));
    match cli.log_format {
        LogFormat::Json => log.json().init(),
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match inboxd::commands::dispatch(cli) {
        Ok(code) => code,
        // The reader of our output went away (`inboxd export | head`):
        // a normal end, as for any Unix filter.
        Err(error) if is_closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Standard error for logs, where a failed write (a full disk under the
/// log file, a closed pipe) loses the line instead of ending the daemon:
/// the subscriber would report it with `eprintln!`, which panics then.
struct LogWriter(std::io::Stderr);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// One line per problem; several only when several files are broken.
fn report(error: &anyhow::Error) {
    if let Some(problems) = error.downcast_ref::<Diagnostics>() {
        for problem in &problems.0 {
            eprintln!("inboxd: error: {problem}");
        }
        return;
    }
    let text = format!("{error:#}");
    eprintln!(
        "inboxd: error: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

/// mimalloc (the engine allocates many small strings and maps), counted so
/// that a script taking too much memory is stopped (`inboxd::memory`).
#[global_allocator]
static ALLOCATOR: inboxd::memory::Counting<mimalloc::MiMalloc> =
    inboxd::memory::Counting(mimalloc::MiMalloc);

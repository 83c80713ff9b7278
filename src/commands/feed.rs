//! `changes` and `webhooks`: the decisions going out.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::{emit, open_for_reading};
use crate::cli::Format;
use crate::domain::config::Config;

/// Entries read per query.
const PAGE: usize = 1_000;
/// How often `--follow` looks for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn changes(
    config_file: &Path,
    after: i64,
    limit: Option<usize>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    if follow {
        // SIGINT/SIGTERM end the wait between two pages, exit code 0.
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGINT, stop as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, stop as *const () as libc::sighandler_t);
        }
    }
    let mut cursor = after;
    let mut left = limit.unwrap_or(usize::MAX);
    let out = std::io::stdout();
    loop {
        // Opened anew while following: the store may be created meanwhile.
        let store = open_for_reading(&config)?;
        while left > 0 {
            let page = store
                .feed(cursor, left.min(PAGE))
                .context("cannot read the change feed")?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor;
            left = left.saturating_sub(page.len());
            let mut out = out.lock();
            for entry in &page {
                let line = serde_json::to_string(entry)?;
                writeln!(out, "{line}").context("cannot write to standard output")?;
            }
            out.flush().context("cannot write to standard output")?;
        }
        if !follow || left == 0 || STOP.load(Ordering::SeqCst) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(FOLLOW_POLL);
        if STOP.load(Ordering::SeqCst) {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

pub fn webhooks(config_file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let states = crate::daemon::webhooks::report(&config, store.as_ref())?;
    emit(format, &states, |states| {
        if states.is_empty() {
            return "no webhook in the config\n".to_string();
        }
        states.iter().map(|s| s.to_text()).collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

//! `enqueue` and `retry`: putting events in the queue.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::read_input;
use crate::cli::InputFormat;
use crate::config::Config;
use crate::event::{now_rfc3339, parse_batch, Event};
use crate::store::{Queue, Store};

pub fn enqueue(
    config_file: &Path,
    file: Option<&Path>,
    format: InputFormat,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let (name, text) = read_input(file)?;
    let events = match format {
        InputFormat::Inbox => parse_batch(&text, &config.stages),
        InputFormat::Hubspot => crate::hubspot::map(&text, &config.stages).map(|mapped| {
            for skipped in &mapped.skipped {
                eprintln!("skipped {skipped}");
            }
            mapped.events
        }),
    }
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    check_store(&config)?;
    let queue = Queue::open(&config.store_path, config.synchronous)?;
    let bar = crate::progress::progress_bar(events.len() as u64, "enqueueing");
    queue
        .enqueue_with(&events, &now_rfc3339(), || bar.inc(1))
        .map_err(|e| explain_write_error(e, &config))?;
    bar.finish_and_clear();
    eprintln!("enqueued {} event(s)", events.len());
    Ok(ExitCode::SUCCESS)
}

pub fn retry(config_file: &Path, ids: &[String], all: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    if !config.store_path.exists() {
        anyhow::bail!(
            "no failed event: the store {} does not exist yet",
            config.store_path.display()
        );
    }
    let store = Store::open(&config.store_path, config.synchronous)?;
    let queue = Queue::open(&config.store_path, config.synchronous)?;
    let position = store
        .queue_position()
        .context("cannot read how far the queue was processed")?;
    let waiting = queue
        .waiting_ids(position.as_ref())
        .context("cannot read the queue")?;
    let failed = store
        .retryable(&waiting)
        .context("cannot read the failed events")?;
    let chosen: Vec<&(String, String)> = if all {
        failed.iter().collect()
    } else {
        ids.iter()
            .map(|id| {
                failed.iter().find(|(f, _)| f == id).ok_or_else(|| {
                    anyhow::anyhow!("{id} is not a failed event waiting for a retry (see `inboxd events --outcome failed`)")
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let events = chosen
        .iter()
        .map(|(id, body)| {
            serde_json::from_str::<Event>(body)
                .with_context(|| format!("failed event {id} cannot be read back"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    queue
        .enqueue(&events, &now_rfc3339())
        .context("cannot write to the queue")?;
    eprintln!("queued {} failed event(s) again", events.len());
    Ok(ExitCode::SUCCESS)
}

/// A refused write, with what the user needs when it is a permission.
fn explain_write_error(error: rusqlite::Error, config: &Config) -> anyhow::Error {
    let read_only = matches!(
        &error,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ReadOnly
    );
    let error = anyhow::Error::new(error).context("cannot write to the queue");
    if !read_only {
        return error;
    }
    let queue = crate::store::queue_path(&config.store_path);
    error.context(format!(
        "this user may not write {} and its directory: add it to the daemon's group (see README, \"Running as a service\")",
        queue.display()
    ))
}

/// Producers write only to the queue, but refuse to feed a store that is
/// damaged (a daemon would refuse to start on it): the events would wait
/// for nothing.
fn check_store(config: &Config) -> anyhow::Result<()> {
    if config.store_path.exists() {
        Store::open(&config.store_path, config.synchronous)?.check(&config.store_path)?;
    }
    Ok(())
}

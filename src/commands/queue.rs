//! `enqueue` and `retry`: putting events in the queue.

use std::io::{BufRead, Seek};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::event_reader::EventReader;
use super::{read_input, Input};
use crate::cli::InputFormat;
use crate::domain::config::Config;
use crate::domain::event::{now_rfc3339, Event};
use crate::store::{Producer, Store};

pub fn enqueue(
    config_file: &Path,
    file: Option<&Path>,
    format: InputFormat,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let now = now_rfc3339();
    let count = match format {
        InputFormat::Inbox => enqueue_lines(&config, file, &now)?,
        InputFormat::Hubspot => {
            let (name, text) = read_input(file)?;
            let mapped = crate::tools::hubspot::map(&text, &config.stages)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            for skipped in &mapped.skipped {
                eprintln!("skipped {skipped}");
            }
            check_store(&config)?;
            let queue = open_queue(&config)?;
            queue
                .enqueue(&mapped.events, &now)
                .map_err(|e| explain_write_error(e, &config))?;
            mapped.events.len()
        }
    };
    if config.store_url.is_none() {
        crate::daemon::doorbell::ring(&config.store_path);
    }
    eprintln!("enqueued {count} event(s)");
    Ok(ExitCode::SUCCESS)
}

/// JSON Lines from a file or standard input, with memory bounded whatever
/// their size, queued in one transaction: all or none.
fn enqueue_lines(config: &Config, file: Option<&Path>, now: &str) -> anyhow::Result<usize> {
    let input = super::open_input(file)?;
    if input.regular {
        enqueue_read_beside(config, input, now)
    } else {
        enqueue_staged(config, input, now)
    }
}

/// A regular file: its events are read and checked on another thread while
/// this one queues them, in a transaction that a bad line rolls back.
fn enqueue_read_beside(config: &Config, input: Input, now: &str) -> anyhow::Result<usize> {
    check_store(config)?;
    let queue = open_queue(config)?;
    let mut events = EventReader::start(input.reader, config.stages.clone(), now.to_string())
        .context("cannot start reading the events")?;
    let bar = crate::tools::progress::progress_count("enqueueing");
    let queued = queue.enqueue_staged(&mut events, now, || bar.inc(1));
    bar.finish_and_clear();
    if let Some(bad) = events.bad.take() {
        anyhow::bail!("{}: {bad}", input.name);
    }
    queued.map_err(|e| explain_write_error(e, config))?;
    // Queued means the reader came to the end (it said how many).
    (events.count).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: queued, but its reading ended without a count (a bug: please report it)",
            input.name
        )
    })
}

/// Standard input from a pipe or a terminal: each line is validated and
/// staged in a temporary file as it is read; only once every line is
/// valid are they queued (so the queue's write lock is not held while a
/// slow producer writes its input).
fn enqueue_staged(config: &Config, input: Input, now: &str) -> anyhow::Result<usize> {
    let Input {
        name, mut reader, ..
    } = input;
    let mut staging = std::io::BufWriter::new(
        tempfile::tempfile().context("cannot create a temporary file to stage the events")?,
    );
    let count = crate::domain::event_lines::read(&mut reader, &config.stages, now, |staged| {
        crate::domain::event_lines::write_staged(&mut staging, &staged)
    })
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut staged = staging
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot stage the events")?;
    staged.seek(std::io::SeekFrom::Start(0))?;
    check_store(config)?;
    let queue = open_queue(config)?;
    let bar = crate::tools::progress::progress_bar(count as u64, "enqueueing");
    let lines = std::io::BufReader::new(staged).lines().map(|line| {
        line.and_then(|l| {
            crate::domain::event_lines::read_staged(&l).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a staged line is damaged")
            })
        })
    });
    queue
        .enqueue_staged(lines, now, || bar.inc(1))
        .map_err(|e| explain_write_error(e, config))?;
    bar.finish_and_clear();
    Ok(count)
}

pub fn retry(config_file: &Path, ids: &[String], all: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let (failed, producer) = failed_events(&config)?;
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
    producer
        .enqueue(&events, &now_rfc3339())
        .context("cannot write to the queue")?;
    if config.store_url.is_none() {
        crate::daemon::doorbell::ring(&config.store_path);
    }
    eprintln!("queued {} failed event(s) again", events.len());
    Ok(ExitCode::SUCCESS)
}

/// The failed events a retry would queue again, and where to queue them.
fn failed_events(config: &Config) -> anyhow::Result<(Vec<(String, String)>, Producer)> {
    if let Some(url) = &config.store_url {
        let store = crate::store::postgres::PgStore::open(url.secret())?;
        let waiting = store.waiting_ids().context("cannot read the queue")?;
        let failed = store
            .retryable(&waiting)
            .context("cannot read the failed events")?;
        return Ok((failed, Producer::Postgres(store)));
    }
    if !config.store_path.exists() {
        anyhow::bail!(
            "no failed event: the store {} does not exist yet",
            config.store_path.display()
        );
    }
    let store = Store::open(&config.store_path, config.synchronous)?;
    let queue = crate::store::Queue::open(&config.store_path, config.synchronous)?;
    let position = store
        .queue_position()
        .context("cannot read how far the queue was processed")?;
    let waiting = queue
        .waiting_ids(position.as_ref())
        .context("cannot read the queue")?;
    let failed = store
        .retryable(&waiting)
        .context("cannot read the failed events")?;
    Ok((failed, Producer::Sqlite(queue)))
}

/// A refused write, with what the user needs when it is a permission.
fn explain_write_error(error: anyhow::Error, config: &Config) -> anyhow::Error {
    let read_only = error.chain().any(|cause| {
        cause
            .downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_read_only)
    });
    let error = error.context("cannot write to the queue");
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
/// for nothing. A running daemon checked its store when it started (and
/// would meet damage since): the check, which reads the whole store, is
/// made only when none runs, so that an `enqueue` beside a daemon does not
/// grow slower with the history.
fn check_store(config: &Config) -> anyhow::Result<()> {
    if config.store_url.is_none() && config.store_path.exists() && !daemon_runs(config) {
        Store::open(&config.store_path, config.synchronous)?.check(&config.store_path)?;
    }
    Ok(())
}

fn daemon_runs(config: &Config) -> bool {
    crate::daemon::lock::DaemonLock::is_held(&config.store_path)
}

/// The queue, checked unless a daemon runs (see `check_store`).
fn open_queue(config: &Config) -> anyhow::Result<Producer> {
    Producer::open(config, daemon_runs(config))
}

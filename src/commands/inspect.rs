//! `export`, `events`, `status` and `explain`: reading the state and its
//! history.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{emit, open_for_reading};
use crate::cli::Format;
use crate::daemon::lock::DaemonLock;
use crate::domain::config::Config;
use crate::engine::report::Outcome;
use crate::tools::export::Export;

pub fn export(config_file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    if config.store_url.is_none() && config.store_path.exists() {
        crate::store::Store::open(&config.store_path, config.synchronous)?
            .check(&config.store_path)?;
    }
    let store = open_for_reading(&config)?;
    let export = Export::read(store.as_ref()).context("cannot read the state")?;
    super::print(&format!("{}\n", serde_json::to_string_pretty(&export)?))?;
    Ok(ExitCode::SUCCESS)
}

pub fn events(
    config_file: &Path,
    outcome: Option<Outcome>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let rows = store
        .outcomes(outcome)
        .context("cannot read the processed events")?;
    emit(format, &rows, |rows| {
        rows.iter()
            .map(|row| {
                let reason = row
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!(
                    "#{} {} {} {} {} [ruleset {}]{reason}\n",
                    row.seq, row.processed_at, row.id, row.event_type, row.outcome, row.ruleset
                )
            })
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn status(config_file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    // Before the store is opened here (see `is_held`).
    let mut running = DaemonLock::is_held(&config.store_path);
    let store = open_for_reading(&config)?;
    let holder = store
        .lease_holder()
        .context("cannot read who holds the lease")?;
    if config.store_url.is_some() {
        running = holder.is_some();
    }
    let store_error = running
        .then(|| crate::daemon::health::Health::read(&config.store_path))
        .flatten();
    let status = Status {
        running,
        holder,
        store_error,
        daemon: store
            .daemon_status()
            .context("cannot read the daemon status")?,
        queued: store.queued()?,
        processed: store
            .outcome_counts()
            .context("cannot read the processed events")?,
        webhooks: crate::daemon::webhooks::report(&config, store.as_ref())
            .context("cannot read the webhooks' progress")?,
    };
    emit(format, &status, Status::to_text)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Status {
    running: bool,
    /// On PostgreSQL: the daemon holding the lease (`host:pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<String>,
    /// The running daemon cannot use its store for now (full disk...).
    store_error: Option<crate::daemon::health::StoreTrouble>,
    daemon: Option<crate::store::DaemonStatus>,
    queued: u64,
    processed: std::collections::BTreeMap<String, u64>,
    /// Each webhook: messages due, last error, next attempt.
    webhooks: Vec<crate::daemon::webhooks::WebhookState>,
}

impl Status {
    fn to_text(&self) -> String {
        let mut out = String::new();
        let daemon = match (&self.daemon, self.running, &self.holder) {
            (Some(d), true, Some(holder)) => {
                format!("running ({holder} holds the lease, since {})", d.started_at)
            }
            (_, true, Some(holder)) => format!("running ({holder} holds the lease)"),
            (Some(d), true, None) => format!("running (pid {}, since {})", d.pid, d.started_at),
            _ => "not running".to_string(),
        };
        out.push_str(&format!("daemon:    {daemon}\n"));
        if let Some(trouble) = &self.store_error {
            out.push_str(&format!(
                "store:     FAILING since {}, next attempt {}: {}\n",
                trouble.since, trouble.next_attempt, trouble.error
            ));
        }
        if let Some(d) = &self.daemon {
            let when = d.reloaded_at.as_deref().unwrap_or(&d.started_at);
            out.push_str(&format!("ruleset:   {} (loaded {when})\n", d.ruleset));
            let error = d.reload_error.as_deref().unwrap_or("none");
            out.push_str(&format!("last reload error: {error}\n"));
        }
        out.push_str(&format!("queued:    {}\n", self.queued));
        let counts: Vec<String> = ["applied", "rejected", "failed", "duplicate"]
            .iter()
            .map(|o| format!("{} {o}", self.processed.get(*o).copied().unwrap_or(0)))
            .collect();
        out.push_str(&format!("processed: {}\n", counts.join(", ")));
        for webhook in &self.webhooks {
            out.push_str(&format!("webhook   {}", webhook.to_text()));
        }
        out
    }
}

pub fn explain(
    config_file: &Path,
    subject: crate::tools::explain::Subject,
    id: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let explanation = crate::tools::explain::explain(store.as_ref(), subject, id)?;
    emit(
        format,
        &explanation,
        crate::tools::explain::Explanation::to_text,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn timers(config_file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let timers = store.all_timers().context("cannot read the timers")?;
    emit(format, &timers, |timers| {
        timers
            .iter()
            .map(|t| format!("{} {} {} {}\n", t.due, t.record.as_str(), t.id, t.name))
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

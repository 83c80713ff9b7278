//! The run loop: take events from the queue in order, process them in
//! batches (one transaction per batch, a savepoint per event), reload the
//! rules when asked, stop cleanly between two events.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::diagnostic::Diagnostics;
use crate::engine::Processor;
use crate::event::Event;
use crate::report::Outcome;
use crate::ruleset::RuleSet;
use crate::store::Store;

/// Events per transaction: many per commit is where throughput comes from.
const BATCH: usize = 256;
/// How long the idle daemon waits before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// How long to wait after a store error before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Requests from signal handlers (and, later, file watchers).
#[derive(Default)]
pub struct Control {
    pub stop: AtomicBool,
    pub reload: AtomicBool,
}

/// Loads config and rules, failing with every problem found.
pub fn load(
    config_file: &std::path::Path,
    rules_dir: Option<&std::path::Path>,
) -> anyhow::Result<RuleSet> {
    let config = Config::load(config_file)?;
    RuleSet::load(config, rules_dir).map_err(|problems| Diagnostics(problems).into())
}

pub struct Daemon {
    config_file: PathBuf,
    store: Rc<Store>,
    processor: Processor,
}

impl Daemon {
    pub fn start(config_file: PathBuf) -> anyhow::Result<Daemon> {
        let rules = load(&config_file, None)?;
        let store = Rc::new(Store::open(
            &rules.config.store_path,
            rules.config.synchronous,
        )?);
        tracing::info!(
            ruleset = %rules.version,
            rules = rules.rules.len(),
            store = %rules.config.store_path.display(),
            "inboxd started"
        );
        let processor = Processor::new(Rc::clone(&store), rules);
        Ok(Daemon {
            config_file,
            store,
            processor,
        })
    }

    /// Processes what is queued, then returns (`--drain`).
    pub fn drain(&mut self, control: &Control) -> anyhow::Result<usize> {
        let mut total = 0;
        while !control.stop.load(Ordering::SeqCst) {
            let done = self.process_batch(control)?;
            if done == 0 {
                break;
            }
            total += done;
        }
        Ok(total)
    }

    /// Runs until asked to stop.
    pub fn run(&mut self, control: &Control) -> anyhow::Result<()> {
        while !control.stop.load(Ordering::SeqCst) {
            if control.reload.swap(false, Ordering::SeqCst) {
                self.reload();
            }
            match self.process_batch(control) {
                Ok(0) => std::thread::sleep(IDLE_POLL),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot process the queue, will retry: {e:#}");
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        }
        tracing::info!("inboxd stopped");
        Ok(())
    }

    /// Builds a new RuleSet; keeps the current one if the new is broken.
    pub fn reload(&mut self) {
        match load(&self.config_file, None) {
            Ok(rules) if rules.config.store_path != self.processor.rules().config.store_path => {
                tracing::error!(
                    "reload refused: the store path cannot change while running (restart inboxd)"
                );
            }
            Ok(rules) => {
                tracing::info!(ruleset = %rules.version, "rules reloaded");
                self.processor.set_rules(rules);
            }
            Err(e) => tracing::error!(
                ruleset = %self.processor.rules().version,
                "reload failed, keeping the last good rules: {e}"
            ),
        }
    }

    /// One transaction: up to `BATCH` events, stopping early if asked.
    fn process_batch(&mut self, control: &Control) -> anyhow::Result<usize> {
        let batch = self.store.peek(BATCH).context("cannot read the queue")?;
        if batch.is_empty() {
            return Ok(0);
        }
        self.store.begin().context("cannot start a transaction")?;
        let mut done = 0;
        for queued in &batch {
            if control.stop.load(Ordering::SeqCst) {
                break;
            }
            let result = match serde_json::from_str::<Event>(&queued.body) {
                Ok(event) => self
                    .processor
                    .process(&event, Some(queued.seq))
                    .map(|report| {
                        log_outcome(&report.event, report.outcome, report.reason.as_deref())
                    }),
                Err(e) => self.processor.record_unreadable(queued, &e.to_string()),
            };
            if let Err(e) = result {
                let _ = self.store.rollback();
                return Err(e).context("cannot record an event's outcome");
            }
            done += 1;
        }
        self.store.commit().context("cannot commit")?;
        Ok(done)
    }
}

fn log_outcome(event: &str, outcome: Outcome, reason: Option<&str>) {
    let reason = reason.unwrap_or("");
    match outcome {
        Outcome::Applied => tracing::debug!(event, "applied"),
        Outcome::Duplicate => tracing::info!(event, "duplicate: {reason}"),
        Outcome::Rejected => tracing::warn!(event, "rejected: {reason}"),
        Outcome::Failed => tracing::error!(event, "failed: {reason}"),
    }
}

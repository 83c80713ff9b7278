//! The run loop: take events from the queue in order, process them in
//! batches (one transaction per batch, an event refused half-way failing
//! alone), reload the rules when asked, stop cleanly between two events.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

mod read_ahead;
mod timeline;

pub use crate::daemon::control::Control;
use crate::daemon::health::Health;
use crate::daemon::metrics::Metrics;
use crate::daemon::patience::{patiently, Backoff};
use crate::daemon::poison_guard::{Attempt, PoisonGuard, Verdict};
use crate::daemon::store_access::{self, Connected};
use crate::daemon::tally::{log_outcome, Tally};
use crate::daemon::watch::Watches;
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::config::Config;
use crate::domain::diagnostic::Diagnostics;
use crate::domain::event::Event;
use crate::engine::report::Outcome;
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::{DaemonStore, EventQueue, QueuePosition, Queued, StoreError};
use read_ahead::ReadAhead;

/// Events per transaction: many per commit is where throughput comes from
/// (1,024 instead of 256: +15 % with a backlog; 4,096 instead of 1,024: the
/// drain of a 20,000-event backlog 0.37 -> 0.33 s, since every commit
/// writes the index pages it touched to the WAL again; same latency at
/// 1,000 events/s, since a batch takes what is queued). After a crash the
/// poison guard runs that many events one per transaction.
pub const BATCH: usize = 4096;
/// ...but what a batch did is seen (by the API, the feed, `status`) only
/// once it commits: a batch commits early once it has run this long.
const BATCH_TIME: Duration = Duration::from_millis(100);
/// The idle daemon is woken by file events; this is the fallback in case
/// one is missed (e.g. on a file system without notifications).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The same on PostgreSQL, where the daemon LISTENs for new events (and is
/// woken after the listener reconnects, in case one was missed).
const LISTENED_POLL: Duration = Duration::from_secs(10);

/// Loads config and rules, failing with every problem found.
pub fn load(config_file: &Path, rules_dir: Option<&Path>) -> anyhow::Result<RuleSet> {
    let config = Config::load(config_file)?;
    RuleSet::load(config, rules_dir).map_err(|problems| Diagnostics(problems).into())
}

pub struct Daemon {
    config_file: PathBuf,
    store: Rc<dyn DaemonStore>,
    queue: Box<dyn EventQueue>,
    /// How far the queue is processed, as last committed.
    position: Option<QueuePosition>,
    /// The next batch, read while the last one committed.
    read_ahead: Option<ReadAhead>,
    processor: Processor,
    watches: Option<Watches>,
    guard: PoisonGuard,
    health: Health,
    /// The wall clock: when events are processed, when rules are loaded.
    clock: Rc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// What the store needs kept alive (its lock, its listener).
    _keep: Box<dyn std::any::Any>,
}

impl Daemon {
    /// Loads the rules and opens the store, at once: an error if it cannot
    /// (`run --drain`).
    pub fn start(config_file: PathBuf) -> anyhow::Result<Daemon> {
        let rules = load(&config_file, None)?;
        let _ = crate::store::create_directory_of(&rules.config.store_path);
        let health = Health::create(&rules.config.store_path);
        let connected = store_access::open_now(&rules.config)?;
        Ok(Daemon::opened(config_file, rules, connected, health))
    }

    /// `start`, waiting out a store that is unavailable for now (a full
    /// disk, a server restarting) and, on PostgreSQL, standing by while
    /// another daemon holds the lease; `None` if asked to stop meanwhile.
    pub fn start_patiently(
        config_file: PathBuf,
        control: &Arc<Control>,
    ) -> anyhow::Result<Option<Daemon>> {
        let rules = load(&config_file, None)?;
        let _ = crate::store::create_directory_of(&rules.config.store_path);
        let mut health = Health::create(&rules.config.store_path);
        let Some(connected) = store_access::open_patiently(&rules.config, control, &mut health)?
        else {
            health.remove();
            return Ok(None);
        };
        Ok(Some(Daemon::opened(config_file, rules, connected, health)))
    }

    fn opened(
        config_file: PathBuf,
        rules: RuleSet,
        connected: Connected,
        health: Health,
    ) -> Daemon {
        let Connected {
            store,
            queue,
            position,
            keep,
        } = connected;
        let store_path = rules.config.store_path.clone();
        let real_path = std::fs::canonicalize(&store_path).unwrap_or_else(|_| store_path.clone());
        let guard = PoisonGuard::open(&real_path);
        let shown = match &rules.config.store_url {
            Some(url) => url.to_string(),
            None => store_path.display().to_string(),
        };
        tracing::info!(
            ruleset = %rules.version,
            rules = rules.rules.len(),
            store = %shown,
            "inboxd started"
        );
        log_warnings(&rules);
        let clock: Rc<dyn Clock> = Rc::new(SystemClock);
        let processor = Processor::with_clock(store.clone(), rules, Rc::clone(&clock));
        Daemon {
            config_file,
            store,
            queue,
            position,
            read_ahead: None,
            processor,
            watches: None,
            guard,
            health,
            clock,
            metrics: Arc::default(),
            _keep: keep,
        }
    }

    pub fn rules(&self) -> &RuleSet {
        self.processor.rules()
    }

    /// Takes its time from `clock` (`run --drain --now`): when events are
    /// processed, which timers are due.
    pub fn use_clock(&mut self, clock: Rc<dyn Clock>) {
        self.processor.use_clock(Rc::clone(&clock));
        self.clock = clock;
    }

    /// Counts into `metrics` (shared with the HTTP server).
    pub fn use_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = metrics;
    }

    /// Hands the daemon its file watchers, to renew at each reload.
    pub fn keep_watching(&mut self, watches: Watches) {
        self.watches = Some(watches);
    }

    /// Tells `status` the daemon is up; call it once it watches its files,
    /// so that nothing saved after it is missed.
    pub fn announce(&self) -> anyhow::Result<()> {
        announce(
            self.store.as_ref(),
            self.clock.as_ref(),
            &self.rules().version,
        )
    }

    /// `announce`, waiting out a store that is unavailable for now;
    /// `false` if asked to stop meanwhile.
    pub fn announce_patiently(&mut self, control: &Control) -> anyhow::Result<bool> {
        let (store, clock) = (self.store.as_ref(), self.clock.as_ref());
        let version = &self.processor.rules().version;
        let announced = patiently(control, &mut self.health, || {
            announce(store, clock, version)
        })?;
        Ok(announced.is_some())
    }

    /// Processes what is queued, then returns (`--drain`).
    pub fn drain(&mut self, control: &Control) -> anyhow::Result<usize> {
        let mut total = 0;
        while !control.stopping() {
            let done = self.process_batch(control)?;
            if done == 0 {
                break;
            }
            total += done;
        }
        self.guard.clear();
        self.health.remove();
        Ok(total)
    }

    /// Runs until asked to stop.
    pub fn run(&mut self, control: &Control) -> anyhow::Result<()> {
        let mut backoff = Backoff::default();
        while !control.stopping() {
            if control.reload.swap(false, Ordering::SeqCst) {
                self.reload();
            }
            match self.process_batch(control) {
                Ok(done) => {
                    self.store_works(control, true);
                    backoff.succeeded(&mut self.health);
                    if done == 0 {
                        control.idle(self.idle_time());
                    }
                }
                Err(e) => {
                    self.store_works(control, false);
                    let pause = backoff.failed(&e, &mut self.health);
                    control.idle(pause);
                }
            }
        }
        self.guard.clear();
        self.health.remove();
        tracing::info!("inboxd stopped");
        Ok(())
    }

    /// Tells `/readyz` and the metrics whether the store works, and how
    /// much waits in the queue.
    fn store_works(&self, control: &Control, works: bool) {
        control.set_ready(works);
        self.metrics.store_up.set(i64::from(works));
        if let Ok((depth, oldest)) = self.queue.backlog(self.position.as_ref()) {
            self.metrics.queue_depth.set(depth as i64);
            let age = oldest
                .and_then(|at| {
                    time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0, |at| (self.clock.now() - at).whole_seconds().max(0));
            self.metrics.queue_oldest_age.set(age);
        }
    }

    /// Builds a whole new RuleSet and swaps it in, between two events. A
    /// broken change is logged and the last good rules keep running.
    pub fn reload(&mut self) {
        // First, so that a change made while loading triggers another reload.
        if let Some(watches) = &mut self.watches {
            watches.refresh();
        }
        let current = self.processor.rules();
        let result = load(&self.config_file, None);
        let written = match result {
            Ok(mut rules) => {
                keep_fixed_settings(&mut rules, current);
                if rules.version == current.version {
                    tracing::info!(ruleset = %rules.version, "reload: nothing changed");
                    self.metrics.reloaded("unchanged");
                    self.store.daemon_reload_refused(None)
                } else {
                    tracing::info!(
                        ruleset = %rules.version,
                        previous = %current.version,
                        "rules reloaded: {}",
                        rules.changes_since(current)
                    );
                    let version = rules.version.clone();
                    self.metrics.reloaded("ok");
                    log_warnings(&rules);
                    self.processor.set_rules(rules);
                    self.store
                        .daemon_reloaded(&self.clock.now_rfc3339(), &version)
                }
            }
            Err(e) => {
                let text = e.to_string().replace('\n', "; ");
                tracing::error!(
                    ruleset = %current.version,
                    "reload failed, keeping the last good rules: {text}"
                );
                self.metrics.reloaded("refused");
                self.store.daemon_reload_refused(Some(&text))
            }
        };
        if let Err(e) = written {
            tracing::warn!("cannot write the daemon status: {e}");
        }
    }

    /// One transaction: up to `BATCH` events or `BATCH_TIME`, stopping
    /// early if asked. On any error the whole transaction is rolled back,
    /// so that nothing of it stays and the next try starts clean.
    fn process_batch(&mut self, control: &Control) -> anyhow::Result<usize> {
        let ahead = (self.read_ahead.take()).and_then(|a| a.take_after(self.position.as_ref()));
        let (mut batch, done) = match ahead {
            Some((entries, done)) => (entries, Some(done)),
            None => (self.read_batch(BATCH)?, None),
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return self.process_timers_alone(control);
        };
        let (first, last) = (first.seq, last.seq);
        match self.guard.verdict(first) {
            Verdict::Batch => self.guard.note(Attempt {
                first,
                last,
                deaths: 0,
            }),
            Verdict::Alone { deaths } => {
                batch.truncate(1);
                self.guard.note(Attempt {
                    first,
                    last: first,
                    deaths,
                });
            }
            Verdict::Poison { deaths } => {
                let recorded = self.record_poison(&batch[0], deaths);
                if recorded.is_ok() {
                    control.batch_committed();
                }
                return recorded;
            }
        }
        let len = batch.len();
        let result = self.in_transaction(control, |daemon| {
            daemon.process_events(batch, done, control)
        });
        match result {
            Err(e) if refused_behind(&e) => {
                tracing::warn!("{e:#}");
                // The same entries again (processing let go of them).
                let batch = self.read_batch(len)?;
                self.store.write_through(true);
                let again = self.in_transaction(control, |daemon| {
                    daemon.process_events(batch, None, control)
                });
                self.store.write_through(false);
                again
            }
            result => result,
        }
    }

    /// The oldest `limit` entries after the position.
    fn read_batch(&self, limit: usize) -> anyhow::Result<Vec<Queued>> {
        (self.queue.peek(self.position.as_ref(), limit)).context("cannot read the queue")
    }

    /// Runs `work` in one transaction, rolled back unless it committed
    /// something.
    fn in_transaction(
        &mut self,
        control: &Control,
        work: impl FnOnce(&mut Daemon) -> anyhow::Result<usize>,
    ) -> anyhow::Result<usize> {
        self.store.begin().context("cannot start a transaction")?;
        let result = work(self);
        let committed = matches!(result, Ok(n) if n > 0);
        if committed {
            control.batch_committed();
        }
        self.processor.end_batch();
        if !committed {
            let _ = self.store.rollback();
        }
        self.store.between_batches();
        result
    }

    /// Records an event during which the daemon died `deaths` times as
    /// failed, and takes it off the queue.
    fn record_poison(&mut self, queued: &Queued, deaths: u32) -> anyhow::Result<usize> {
        let reason = format!(
            "the daemon died {deaths} times while processing this event alone (killed, out of memory?); \
             recorded failed so that the queue goes on"
        );
        self.store.begin().context("cannot start a transaction")?;
        let position = self.queue.position_at(queued.seq);
        let result = self
            .processor
            .record_failed(queued, &reason)
            .and_then(|()| self.store.set_queue_position(&position))
            .and_then(|()| self.store.commit());
        if let Err(e) = result {
            let _ = self.store.rollback();
            return Err(e).context("cannot record an event's outcome");
        }
        self.metrics.processed(Outcome::Failed, 1);
        self.processed_through(position);
        Ok(1)
    }

    /// The events of a batch, in the transaction `process_batch` opened,
    /// then the commit.
    /// Each entry is let go of once processed: the next batch is read
    /// while this one commits, and only one should be held at a time.
    /// `done`: which of the batch's events are done, if known already.
    fn process_events(
        &mut self,
        batch: Vec<Queued>,
        done: Option<crate::id_map::IdMap<String, bool>>,
        control: &Control,
    ) -> anyhow::Result<usize> {
        match done {
            Some(done) => self.processor.expect_known(done),
            None => (self.processor)
                .expect_batch(batch.iter().map(|q| q.event_id.as_str()))
                .context("cannot read the processed events")?,
        }
        let mut last = None;
        let mut done = 0;
        let mut tally = Tally::default();
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let empty = batch.is_empty();
        for queued in batch {
            if control.stopping() || started.elapsed() > BATCH_TIME || done >= BATCH {
                break;
            }
            let event = serde_json::from_str::<Event>(&queued.body);
            // One timeline: the timers due before the event happened (and
            // before now) fire first.
            let at = event.as_ref().ok().and_then(|e| e.at.as_deref());
            let until = crate::domain::timer::due_before(at, now);
            let fired = self.fire_timers(&until, BATCH - done, &mut tally)?;
            done += fired;
            if done >= BATCH {
                break; // more timers are due: the event waits for the next batch
            }
            match event {
                Ok(event) => {
                    let started = std::time::Instant::now();
                    let report = self
                        .processor
                        .process_queued(&event, &queued.body, Some(queued.seq))
                        .with_context(|| format!("cannot process event {}", event.id))?;
                    self.observe(&report, started);
                    tally.count(report.outcome);
                }
                Err(e) => {
                    self.processor
                        .record_unreadable(&queued, &e.to_string())
                        .context("cannot record an event's outcome")?;
                    tally.count(Outcome::Failed);
                }
            }
            done += 1;
            last = Some(queued.seq);
        }
        if empty {
            // Nothing queued: the timers due by now.
            let now = crate::domain::timer::due_text(now);
            done += self.fire_timers(&now, BATCH, &mut tally)?;
        }
        if done == 0 {
            return Ok(0);
        }
        // Recorded in the same transaction as their effects.
        let position = last.map(|last| self.queue.position_at(last));
        if let Some(position) = &position {
            self.store
                .set_queue_position(position)
                .context("cannot record how far the queue is processed")?;
        }
        // The next batch is read, and which of its events are done
        // learned, while this one commits.
        let mut ahead = None;
        let (queue, processor) = (self.queue.as_ref(), &self.processor);
        self.store
            .commit_while(&mut || {
                ahead =
                    (position.clone()).and_then(|p| ReadAhead::read(queue, processor, p, BATCH));
            })
            .context("cannot commit")?;
        if let Some(position) = position {
            self.processed_through(position);
        }
        self.read_ahead = ahead;
        tally.log();
        tally.count_into(&self.metrics);
        Ok(done)
    }

    /// An event's metrics and log line.
    fn observe(&self, report: &crate::engine::report::Report, started: std::time::Instant) {
        self.metrics
            .event_duration
            .observe(started.elapsed().as_secs_f64());
        for firing in &report.rules_fired {
            self.metrics.rule_ran(&firing.rule);
        }
        log_outcome(&report.event, report.outcome, report.reason.as_deref());
    }

    /// After a commit: the new position, and the processed entries taken
    /// off the queue (best effort: the position says what is done).
    fn processed_through(&mut self, position: QueuePosition) {
        if let Err(e) = self.queue.acknowledge_through(position.seq) {
            tracing::debug!("processed events left in the queue for now: {e}");
        }
        self.position = Some(position);
    }
}

/// Whether the store refused an event's rows behind the engine, which
/// waiting for each write would have failed alone.
fn refused_behind(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StoreError>(),
            Some(StoreError::RefusedBehind(_))
        )
    })
}

/// Tells `status` a daemon is up, with its live rules.
fn announce(store: &dyn DaemonStore, clock: &dyn Clock, version: &str) -> anyhow::Result<()> {
    store
        .daemon_started(std::process::id(), &clock.now_rfc3339(), version)
        .context("cannot write the daemon status")
}

/// Settings that cannot change while running keep their value; the rest of
/// the reload applies.
fn keep_fixed_settings(new: &mut RuleSet, current: &RuleSet) {
    let (old, fresh) = (&current.config, &mut new.config);
    if fresh.store_path != old.store_path {
        tracing::warn!(
            "reload: [store] path cannot change while running; still using {} (restart inboxd to use {})",
            old.store_path.display(),
            fresh.store_path.display()
        );
        fresh.store_path = old.store_path.clone();
    }
    if fresh.store_url != old.store_url {
        tracing::warn!(
            "reload: [store] url cannot change while running; restart inboxd to change it"
        );
        fresh.store_url = old.store_url.clone();
    }
    if fresh.synchronous != old.synchronous {
        tracing::warn!(
            "reload: [store] synchronous cannot change while running; restart inboxd to change it"
        );
        fresh.synchronous = old.synchronous;
    }
    if fresh.http != old.http {
        tracing::warn!("reload: [http] cannot change while running; restart inboxd to change it");
        fresh.http = old.http.clone();
    }
    if fresh.webhooks != old.webhooks {
        tracing::warn!(
            "reload: [[webhook]] cannot change while running (each has its delivery thread); restart inboxd to change them"
        );
        fresh.webhooks = old.webhooks.clone();
    }
}

fn log_warnings(rules: &RuleSet) {
    for warning in &rules.warnings {
        tracing::warn!("{warning}");
    }
}

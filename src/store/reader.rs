//! What the commands, the HTTP API and the webhooks read of a store,
//! whichever backend holds it.

use std::collections::BTreeMap;
use std::rc::Rc;

use anyhow::Context;

use crate::domain::config::{Config, Synchronous};
use crate::domain::feed::FeedEntry;
use crate::domain::outcome::Outcome;
use crate::store::postgres::PgStore;
use crate::store::{
    AuditRow, DaemonStatus, Deliveries, Delivery, LoggedEvent, OutcomeRow, QueuePosition,
    RecordedConfig, Result, Snapshot, Store,
};

/// A store as the read commands see it.
pub trait Reader: Snapshot {
    /// Processed events in order, optionally only one outcome.
    fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>>;
    /// The processed rows of one event id.
    fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>>;
    fn outcome_counts(&self) -> Result<BTreeMap<String, u64>>;
    fn daemon_status(&self) -> Result<Option<DaemonStatus>>;
    /// Events waiting in the queue.
    fn queued(&self) -> anyhow::Result<u64>;
    /// On PostgreSQL, the daemon holding the lease (`host:pid`).
    fn lease_holder(&self) -> Result<Option<String>>;
    /// How far the queue is processed.
    fn queue_position(&self) -> Result<Option<QueuePosition>>;
    /// Up to `limit` feed entries after the cursor `after`.
    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>>;
    fn last_cursor(&self) -> Result<i64>;
    fn identity(&self) -> Result<String>;
    /// Messages one webhook has yet to send after the cursor `after`.
    fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64>;
    /// One webhook's delivery progress.
    fn delivery(&self, webhook: &str) -> anyhow::Result<Delivery>;
    /// The changes to one record (and its timers), in order.
    fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>>;
    /// A ticket's changes, its timers', and each association to it.
    fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>>;
    /// The changes one event made.
    fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>>;
    /// The config a ruleset version ran under, if recorded.
    fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>>;
    /// How many events were processed.
    fn logged_count(&self) -> Result<u64>;
    /// Each processed event with its changes, in order, one at a time.
    fn for_each_logged_event(
        &self,
        each: &mut dyn FnMut(LoggedEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
    /// Runs `read` on one consistent snapshot.
    fn consistently(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()>;
}

/// The configured store, to read: SQLite's file (an empty store in memory
/// if none was created yet, so that readers create nothing), or the
/// PostgreSQL database.
pub fn open_reader(config: &Config) -> anyhow::Result<Rc<dyn Reader>> {
    let reader: Rc<dyn Reader + Send> = Rc::from(open_sendable_reader(config)?);
    Ok(reader)
}

/// `open_reader`, for a pool shared between threads.
pub fn open_sendable_reader(config: &Config) -> anyhow::Result<Box<dyn Reader + Send>> {
    Ok(match &config.store_url {
        Some(url) => Box::new(PgStore::open(url.secret())?),
        None => Box::new(Store::open_for_reading(
            &config.store_path,
            config.synchronous,
        )?),
    })
}

/// The SQLite store; its queue and the webhooks' progress are files beside
/// it.
impl Reader for Store {
    fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>> {
        Store::outcomes(self, outcome)
    }
    fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>> {
        Store::outcomes_of(self, event_id)
    }
    fn outcome_counts(&self) -> Result<BTreeMap<String, u64>> {
        Store::outcome_counts(self)
    }
    fn daemon_status(&self) -> Result<Option<DaemonStatus>> {
        Store::daemon_status(self)
    }
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        Store::queue_position(self)
    }
    /// The queue file's (and the table an older inboxd kept events in,
    /// until a daemon moves them); none if it was never written.
    fn queued(&self) -> anyhow::Result<u64> {
        let legacy = self.legacy_queue_len().context("cannot read the queue")?;
        let Some(path) = self.path() else {
            return Ok(legacy);
        };
        if !crate::store::queue_path(path).exists() {
            return Ok(legacy);
        }
        let queue = crate::store::Queue::open_trusted(path, Synchronous::Normal)?;
        let position = self
            .queue_position()
            .context("cannot read how far the queue was processed")?;
        let depth = queue
            .depth(position.as_ref())
            .context("cannot read the queue")?;
        Ok(depth + legacy)
    }
    fn lease_holder(&self) -> Result<Option<String>> {
        Ok(None)
    }
    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        Store::feed(self, after, limit)
    }
    fn last_cursor(&self) -> Result<i64> {
        Store::last_cursor(self)
    }
    fn identity(&self) -> Result<String> {
        Store::identity(self)
    }
    fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64> {
        Store::messages_due(self, after, webhook, changes)
    }
    fn delivery(&self, webhook: &str) -> anyhow::Result<Delivery> {
        match self.path() {
            Some(path) => Deliveries::read(path, webhook),
            None => Ok(Delivery::new()),
        }
    }
    fn consistently(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        Store::read_consistently(self, |_| read())
    }
    fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>> {
        Store::history(self, entity, id)
    }
    fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>> {
        Store::ticket_history(self, id)
    }
    fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>> {
        Store::changes_of(self, event_id)
    }
    fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>> {
        Store::recorded_ruleset(self, version)
    }
    fn logged_count(&self) -> Result<u64> {
        Store::logged_count(self)
    }
    fn for_each_logged_event(
        &self,
        each: &mut dyn FnMut(LoggedEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        Store::for_each_logged_event(self, each)
    }
}

impl Reader for PgStore {
    fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>> {
        PgStore::outcomes(self, outcome)
    }
    fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>> {
        PgStore::outcomes_of(self, event_id)
    }
    fn outcome_counts(&self) -> Result<BTreeMap<String, u64>> {
        PgStore::outcome_counts(self)
    }
    fn daemon_status(&self) -> Result<Option<DaemonStatus>> {
        PgStore::daemon_status(self)
    }
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        PgStore::queue_position(self)
    }
    fn queued(&self) -> anyhow::Result<u64> {
        Ok(self.depth()?)
    }
    fn lease_holder(&self) -> Result<Option<String>> {
        self.holder()
    }
    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        PgStore::feed(self, after, limit)
    }
    fn last_cursor(&self) -> Result<i64> {
        PgStore::last_cursor(self)
    }
    fn identity(&self) -> Result<String> {
        PgStore::identity(self)
    }
    fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64> {
        PgStore::messages_due(self, after, webhook, changes)
    }
    fn delivery(&self, webhook: &str) -> anyhow::Result<Delivery> {
        Ok(PgStore::delivery(self, webhook)?)
    }
    fn consistently(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.read_consistently(|_| read())
    }
    fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>> {
        PgStore::history(self, entity, id)
    }
    fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>> {
        PgStore::ticket_history(self, id)
    }
    fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>> {
        PgStore::changes_of(self, event_id)
    }
    fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>> {
        PgStore::recorded_ruleset(self, version)
    }
    fn logged_count(&self) -> Result<u64> {
        PgStore::logged_count(self)
    }
    fn for_each_logged_event(
        &self,
        each: &mut dyn FnMut(LoggedEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        PgStore::for_each_logged_event(self, each)
    }
}

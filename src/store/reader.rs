//! What the commands, the HTTP API and the webhooks read of a store,
//! whichever backend holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Context;

use crate::domain::config::{Config, Synchronous};
use crate::domain::feed::FeedEntry;
use crate::domain::outcome::Outcome;
use crate::store::postgres::PgStore;
use crate::store::{
    AuditRow, DaemonStatus, Deliveries, Delivery, DoneEvents, LoggedEvent, OutcomeRow,
    QueuePosition, RecordedConfig, Result, Snapshot, StateRead, Store,
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
        None => Box::new(SqliteReader {
            store: Store::open_for_reading(&config.store_path, config.synchronous)?,
            path: config.store_path.clone(),
        }),
    })
}

/// The SQLite store with where its files are (the webhooks' progress is
/// kept beside it).
pub struct SqliteReader {
    pub store: Store,
    path: PathBuf,
}

macro_rules! state_read_by {
    ($ty:ty, $field:ident) => {
        impl StateRead for $ty {
            fn conversation(&self, id: &str) -> Result<Option<crate::domain::state::Conversation>> {
                self.$field.conversation(id)
            }
            fn ticket(&self, id: &str) -> Result<Option<crate::domain::state::Ticket>> {
                self.$field.ticket(id)
            }
            fn is_blocked(&self, contact: &str) -> Result<bool> {
                self.$field.is_blocked(contact)
            }
            fn all_conversations(&self) -> Result<Vec<crate::domain::state::Conversation>> {
                self.$field.all_conversations()
            }
            fn all_tickets(&self) -> Result<Vec<crate::domain::state::Ticket>> {
                self.$field.all_tickets()
            }
            fn blocked_contacts(&self) -> Result<Vec<String>> {
                self.$field.blocked_contacts()
            }
            fn timer(&self, key: &crate::domain::timer::TimerKey) -> Result<Option<String>> {
                self.$field.timer(key)
            }
            fn timers_of(
                &self,
                record: crate::domain::timer::TimerRecord,
                id: &str,
            ) -> Result<Vec<crate::domain::timer::Timer>> {
                self.$field.timers_of(record, id)
            }
            fn due_timers(
                &self,
                until: &str,
                limit: usize,
            ) -> Result<Vec<crate::domain::timer::Timer>> {
                self.$field.due_timers(until, limit)
            }
            fn all_timers(&self) -> Result<Vec<crate::domain::timer::Timer>> {
                self.$field.all_timers()
            }
            fn next_timer_due(&self) -> Result<Option<String>> {
                self.$field.next_timer_due()
            }
        }

        impl DoneEvents for $ty {
            fn is_done(&self, event_id: &str) -> Result<bool> {
                self.$field.is_done(event_id)
            }
            fn done_among(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>> {
                self.$field.done_among(ids)
            }
        }
    };
}

state_read_by!(SqliteReader, store);

impl Reader for SqliteReader {
    fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>> {
        self.store.outcomes(outcome)
    }
    fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>> {
        self.store.outcomes_of(event_id)
    }
    fn outcome_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.store.outcome_counts()
    }
    fn daemon_status(&self) -> Result<Option<DaemonStatus>> {
        self.store.daemon_status()
    }
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        self.store.queue_position()
    }
    /// The queue file's (and the table an older inboxd kept events in,
    /// until a daemon moves them); none if it was never written.
    fn queued(&self) -> anyhow::Result<u64> {
        let legacy = self
            .store
            .legacy_queue_len()
            .context("cannot read the queue")?;
        if !crate::store::queue_path(&self.path).exists() {
            return Ok(legacy);
        }
        let queue = crate::store::Queue::open_trusted(&self.path, Synchronous::Normal)?;
        let position = self
            .store
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
        self.store.feed(after, limit)
    }
    fn last_cursor(&self) -> Result<i64> {
        self.store.last_cursor()
    }
    fn identity(&self) -> Result<String> {
        self.store.identity()
    }
    fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64> {
        self.store.messages_due(after, webhook, changes)
    }
    fn delivery(&self, webhook: &str) -> anyhow::Result<Delivery> {
        Deliveries::read(&self.path, webhook)
    }
    fn consistently(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.store.read_consistently(|_| read())
    }
    fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>> {
        self.store.history(entity, id)
    }
    fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>> {
        self.store.ticket_history(id)
    }
    fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>> {
        self.store.changes_of(event_id)
    }
    fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>> {
        self.store.recorded_ruleset(version)
    }
    fn logged_count(&self) -> Result<u64> {
        self.store.logged_count()
    }
    fn for_each_logged_event(
        &self,
        each: &mut dyn FnMut(LoggedEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.store.for_each_logged_event(each)
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

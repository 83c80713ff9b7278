//! What the engine asks of a store, by role: reading the state, writing
//! an event's state rows, the event log (outcomes and audit trail), and
//! transactions. Each backend (`sqlite`, `memory`) implements them; the
//! engine knows these traits only.

use std::collections::HashSet;

use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::{QueuePosition, Queued, Recorded, RecordedConfig, Result};

/// The state, as committed (and written in the open transaction).
pub trait StateRead {
    fn conversation(&self, id: &str) -> Result<Option<Conversation>>;
    fn ticket(&self, id: &str) -> Result<Option<Ticket>>;
    fn is_blocked(&self, contact: &str) -> Result<bool>;
    /// Every conversation, by id.
    fn all_conversations(&self) -> Result<Vec<Conversation>>;
    /// Every ticket, by id, with its conversations in association order.
    fn all_tickets(&self) -> Result<Vec<Ticket>>;
    /// Every blocked contact, sorted.
    fn blocked_contacts(&self) -> Result<Vec<String>>;
    /// When a timer is due, if it is pending.
    fn timer(&self, key: &TimerKey) -> Result<Option<String>>;
    /// The timers pending on one record.
    fn timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>>;
    /// Up to `limit` timers due at or before `until`, in firing order: due
    /// time, record kind, record id, name.
    fn due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>>;
    /// Every pending timer, in firing order.
    fn all_timers(&self) -> Result<Vec<Timer>>;
    /// When the first pending timer is due, if any.
    fn next_timer_due(&self) -> Result<Option<String>>;
}

/// Which events are done: applied or rejected before. Such an id is never
/// processed again; a failed event did nothing, so its id stays free.
pub trait DoneEvents {
    fn is_done(&self, event_id: &str) -> Result<bool>;
    /// The ids among `ids` that are done, in one lookup.
    fn done_among(&self, ids: &[&str]) -> Result<HashSet<String>>;
    /// `done_among` as of the last commit, leaving out the open (or
    /// committing) transaction's outcomes; it may be asked while the store
    /// commits on a thread of its own (`Transactions::commit_while`).
    fn committed_done_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        self.done_among(ids)
    }
}

/// The rows one event writes to the state: the records it changed, the
/// associations it made, the contacts it blocked.
#[derive(Default)]
pub struct StateWrites<'a> {
    pub conversations: Vec<&'a Conversation>,
    pub tickets: Vec<&'a Ticket>,
    pub associations: &'a [(String, String)],
    pub blocks: &'a [String],
    /// Timers started (or started again: replaced).
    pub timers_set: Vec<Timer>,
    pub timers_removed: Vec<&'a TimerKey>,
}

impl StateWrites<'_> {
    pub fn rows(&self) -> usize {
        self.conversations.len()
            + self.tickets.len()
            + self.associations.len()
            + self.blocks.len()
            + self.timers_set.len()
            + self.timers_removed.len()
    }
}

/// Writes: an event's state rows and its outcome, inside a transaction.
pub trait Persist {
    /// Writes one event's state rows, all or none. The inner error is the
    /// event's (the store refused its writes, and none stays); the outer
    /// one is the transaction's.
    fn write_state(&self, writes: &StateWrites) -> Result<Result<()>>;
    /// Records an event's outcome and audit trail.
    fn record(&self, recorded: Recorded) -> Result<()>;
    /// Records the config a ruleset version runs under (once is enough).
    fn remember_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()>;
}

/// Transactions: one per batch of events.
pub trait Transactions {
    /// Starts a write transaction.
    fn begin(&self) -> Result<()>;
    fn commit(&self) -> Result<()>;
    /// Commits, running `meanwhile` while the commit is under way where
    /// the store commits on a thread of its own, else after it. It may
    /// read only what the last commit holds (`committed_done_among`); what
    /// it learns counts only if the commit succeeds (it may not run when
    /// the commit fails).
    fn commit_while(&self, meanwhile: &mut dyn FnMut()) -> Result<()> {
        let committed = self.commit();
        meanwhile();
        committed
    }
    fn rollback(&self) -> Result<()>;
    /// Whether a transaction is open (a database may end one by itself
    /// after an I/O error).
    fn in_transaction(&self) -> bool;
    /// Changes whenever a transaction is rolled back: what was learned of
    /// the store before may be wrong after.
    fn generation(&self) -> u64;
}

/// Everything the engine needs of a store.
pub trait EngineStore: StateRead + DoneEvents + Persist + Transactions {}
impl<T: StateRead + DoneEvents + Persist + Transactions> EngineStore for T {}

/// What the daemon asks of its store beyond the engine's: how far the
/// queue is processed (written in the batch's transaction), what `status`
/// shows of it, and housekeeping between batches.
pub trait DaemonStore: EngineStore {
    fn queue_position(&self) -> Result<Option<QueuePosition>>;
    fn set_queue_position(&self, position: &QueuePosition) -> Result<()>;
    fn daemon_started(&self, pid: u32, at: &str, ruleset: &str) -> Result<()>;
    fn daemon_reloaded(&self, at: &str, ruleset: &str) -> Result<()>;
    fn daemon_reload_refused(&self, error: Option<&str>) -> Result<()>;
    /// Outside a transaction, between two batches.
    fn between_batches(&self);
    /// Whether every write waits for its result, for a store that writes
    /// behind the engine (after `StoreError::RefusedBehind`); the others
    /// always do.
    fn write_through(&self, _on: bool) {}
}

/// The queue, as the daemon consumes it.
pub trait EventQueue {
    /// The oldest `limit` entries after `position`, in order.
    fn peek(&self, position: Option<&QueuePosition>, limit: usize) -> Result<Vec<Queued>>;
    /// The position after processing up to `seq`.
    fn position_at(&self, seq: i64) -> QueuePosition;
    /// Takes processed entries off the queue (best effort: the position
    /// says what is done).
    fn acknowledge_through(&self, seq: i64) -> Result<()>;
    /// How many entries wait, and when the oldest was enqueued.
    fn backlog(&self, position: Option<&QueuePosition>) -> Result<(u64, Option<String>)>;
}

/// What a store can be read as, for a store in memory to lay its writes
/// over (a dry-run over the live state).
pub trait Snapshot: StateRead + DoneEvents {}
impl<T: StateRead + DoneEvents> Snapshot for T {}

/// A transaction that is rolled back unless committed.
pub struct Batch<'a> {
    store: &'a dyn Transactions,
    open: bool,
}

impl<'a> Batch<'a> {
    pub fn begin(store: &'a dyn Transactions) -> Result<Batch<'a>> {
        store.begin()?;
        Ok(Batch { store, open: true })
    }

    pub fn commit(mut self) -> Result<()> {
        self.open = false;
        self.store.commit()
    }

    pub fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.store.rollback()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.open && self.store.in_transaction() {
            let _ = self.store.rollback();
        }
    }
}

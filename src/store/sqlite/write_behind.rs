//! The daemon's SQLite store, writing behind the engine: an event's rows
//! are handed to a thread that writes them (`store_thread.rs`) and the
//! engine goes on with the next event at once, so that evaluating and
//! writing use two cores. What the engine reads must still be what the
//! writing connection would read:
//!
//! - records (conversations, tickets, the blocklist, timers) come from a
//!   second, read-only connection, which sees the last commit, with the
//!   rows written since laid over it (`pending.rs`): a read asked of the
//!   writing thread would wait for every write before it;
//! - everything else (done events, whole tables) is asked of the writing
//!   thread, after the writes sent before: once per batch, or by commands
//!   that are not the daemon's hot path.
//!
//! A write whose result nobody waited for may fail: then the jobs after it
//! are skipped and the commit fails with its error, so nothing of the
//! batch stays. A write the schema refuses should have failed its event
//! alone; its commit fails with `StoreError::RefusedBehind`, and the daemon
//! runs the batch again with every write waited for (`write_through`),
//! which gives the same outcomes as a store without a thread.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use super::owned_writes::{OwnedRecorded, OwnedWrites};
use super::pending::Pending;
use super::store_thread::{StoreThread, Writer};
use super::{QueuePosition, Recorded, RecordedConfig, Store};
use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::{
    DaemonStore, DoneEvents, Persist, Result, StateRead, StateWrites, StoreError, Transactions,
};

/// Writes sent to the thread at once.
const CHUNK: usize = 128;

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

pub struct WriteBehind {
    /// Declared first, to close first: the writing connection, closed
    /// last, copies the WAL into the database file.
    reader: Store,
    thread: StoreThread,
    /// Writes not sent yet: they go by the `CHUNK`, since waking the
    /// thread for each would cost more than the write.
    unsent: RefCell<Vec<Job>>,
    /// Rows written in the open transaction, for `reader`'s reads.
    pending: RefCell<Pending>,
    /// Every write waits for its result (`write_through`).
    through: Cell<bool>,
    open: Cell<bool>,
    /// Transactions rolled back, for `Transactions::generation`.
    rollbacks: Cell<u64>,
}

impl WriteBehind {
    /// Moves `store` (open on `path`) to a thread of its own, and opens a
    /// connection to read beside it.
    pub fn start(store: Store, path: &Path) -> anyhow::Result<WriteBehind> {
        let reader = Store::open_read_only(path)?;
        let thread = StoreThread::start(store).context("cannot start the store's thread")?;
        Ok(WriteBehind {
            reader,
            thread,
            unsent: RefCell::default(),
            pending: RefCell::default(),
            through: Cell::new(false),
            open: Cell::new(false),
            rollbacks: Cell::new(0),
        })
    }

    /// A read or a write outside a transaction, after the writes sent
    /// before; the error of one of those, if one failed.
    fn ask<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(move |w| match &w.broken {
            Some(e) => Err(again(e)),
            None => job(&w.store),
        })?
    }

    /// Runs `job` on the thread after every write before it, and waits.
    fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> T + Send + 'static,
    ) -> Result<T> {
        self.send_unsent()?;
        self.thread.call(job)
    }

    fn send_unsent(&self) -> Result<()> {
        let jobs = std::mem::take(&mut *self.unsent.borrow_mut());
        if jobs.is_empty() {
            return Ok(());
        }
        self.thread.send(move |w| {
            for job in jobs {
                job(w);
            }
        })
    }

    /// A write in the transaction: sent, or waited for (`write_through`).
    /// The inner error is the event's (the store refused its rows).
    fn write(
        &self,
        job: impl FnOnce(&Store) -> Result<Result<()>> + Send + 'static,
    ) -> Result<Result<()>> {
        if self.through.get() {
            return self.call(move |w| job(&w.store))?;
        }
        let mut unsent = self.unsent.borrow_mut();
        unsent.push(Box::new(move |w| write_behind(w, job)));
        if unsent.len() >= CHUNK {
            drop(unsent);
            self.send_unsent()?;
        }
        Ok(Ok(()))
    }
}

/// Runs a write nobody waits for, unless one before it failed; notes its
/// failure for the commit.
fn write_behind(w: &mut Writer, job: impl FnOnce(&Store) -> Result<Result<()>>) {
    if w.broken.is_some() {
        return;
    }
    let result = job(&w.store);
    // SQLite may roll the whole transaction back by itself (I/O, a full
    // disk): the writes after must not go on outside it.
    if !w.store.in_transaction() {
        let why = match &result {
            Ok(Ok(())) => "no detail".to_string(),
            Ok(Err(e)) | Err(e) => e.to_string(),
        };
        w.broken = Some(StoreError::TransactionLost(why));
        return;
    }
    w.broken = match result {
        Ok(Ok(())) => None,
        Ok(Err(refused)) => Some(StoreError::RefusedBehind(refused.to_string())),
        Err(e) => Some(e),
    };
}

/// An error again, for each caller that meets it.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Backend { trouble, error } => StoreError::backend(*trouble, error.to_string()),
        StoreError::TransactionLost(why) => StoreError::TransactionLost(why.clone()),
        StoreError::RefusedBehind(why) => StoreError::RefusedBehind(why.clone()),
    }
}

impl Store {
    /// A connection that only reads the database (which exists), beside
    /// the daemon's.
    fn open_read_only(path: &Path) -> anyhow::Result<Store> {
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_handler(Some(super::wait_while_busy))?;
            // Its cache starts over at each commit it sees: 1 MiB is enough
            // for the index pages of one batch's lookups.
            conn.pragma_update(None, "cache_size", -1024)?;
            Ok(conn)
        };
        let conn = open()
            .map_err(StoreError::from)
            .with_context(|| format!("cannot open the store {} to read", path.display()))?;
        Ok(Store::with(conn))
    }
}

impl StateRead for WriteBehind {
    fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        (self.pending.borrow()).conversation(id, || self.reader.conversation(id))
    }

    fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        (self.pending.borrow()).ticket(id, || self.reader.ticket(id))
    }

    fn is_blocked(&self, contact: &str) -> Result<bool> {
        (self.pending.borrow()).is_blocked(contact, || self.reader.is_blocked(contact))
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.ask(|s| s.all_conversations())
    }

    fn all_tickets(&self) -> Result<Vec<Ticket>> {
        self.ask(|s| s.all_tickets())
    }

    fn blocked_contacts(&self) -> Result<Vec<String>> {
        self.ask(|s| s.blocked_contacts())
    }

    fn timer(&self, key: &TimerKey) -> Result<Option<String>> {
        (self.pending.borrow()).timer(key, || self.reader.timer(key))
    }

    fn timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>> {
        (self.pending.borrow()).timers_of(record, id, || self.reader.timers_of(record, id))
    }

    fn due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>> {
        (self.pending.borrow()).due_timers(until, limit, |n| self.reader.due_timers(until, n))
    }

    fn all_timers(&self) -> Result<Vec<Timer>> {
        self.ask(|s| s.all_timers())
    }

    fn next_timer_due(&self) -> Result<Option<String>> {
        (self.pending.borrow()).next_timer_due(|until, n| self.reader.due_timers(until, n))
    }
}

impl DoneEvents for WriteBehind {
    fn is_done(&self, event_id: &str) -> Result<bool> {
        let id = event_id.to_string();
        self.ask(move |s| s.is_done(&id))
    }

    fn done_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let ids: Vec<String> = ids.iter().map(|&id| id.to_string()).collect();
        self.ask(move |s| s.done_among(&ids.iter().map(String::as_str).collect::<Vec<_>>()))
    }

    /// From the reading connection, without waiting for the writing thread.
    fn committed_done_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        self.reader.done_among(ids)
    }
}

impl Persist for WriteBehind {
    fn write_state(&self, writes: &StateWrites) -> Result<Result<()>> {
        if writes.rows() == 0 {
            return Ok(Ok(()));
        }
        let owned = OwnedWrites::from(writes);
        let through = self.through.get();
        let written = self.write(move |s| match through {
            true => s.write_state(&owned.as_writes()),
            // No savepoint (SQLite copies every page one covers): a row
            // refused behind the engine fails the whole transaction, and
            // the batch runs again with each write waited for, under one.
            false => Ok(s.write_rows(&owned.as_writes())),
        })?;
        if written.is_ok() {
            self.pending.borrow_mut().note(writes);
        }
        Ok(written)
    }

    fn record(&self, recorded: Recorded) -> Result<()> {
        let owned = OwnedRecorded::from(recorded);
        self.write(move |s| s.record(owned.as_recorded()).map(Ok))?
    }

    fn remember_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()> {
        let (version, config) = (version.to_string(), config.clone());
        self.write(move |s| s.remember_ruleset(&version, &config).map(Ok))?
    }
}

impl Transactions for WriteBehind {
    fn begin(&self) -> Result<()> {
        self.pending.borrow_mut().clear();
        self.call(|w| {
            w.broken = None;
            w.store.begin()
        })??;
        self.open.set(true);
        Ok(())
    }

    /// Fails with the first error of the writes sent, if one failed.
    fn commit(&self) -> Result<()> {
        self.commit_while(&mut || {})
    }

    /// `meanwhile` runs on the engine's thread while the writing thread
    /// finishes the transaction's writes and commits it.
    fn commit_while(&self, meanwhile: &mut dyn FnMut()) -> Result<()> {
        self.send_unsent()?;
        let receipt = self.thread.call_later(|w| match w.broken.take() {
            Some(e) => {
                w.broken = Some(again(&e));
                Err(e)
            }
            None => w.store.commit(),
        })?;
        meanwhile();
        receipt.wait()??;
        self.open.set(false);
        self.pending.borrow_mut().clear();
        Ok(())
    }

    fn rollback(&self) -> Result<()> {
        self.rollbacks.set(self.rollbacks.get() + 1);
        self.open.set(false);
        self.pending.borrow_mut().clear();
        // Writes the rollback would undo.
        self.unsent.borrow_mut().clear();
        self.call(|w| {
            w.broken = None;
            match w.store.in_transaction() {
                true => w.store.rollback(),
                false => Ok(()),
            }
        })?
    }

    /// Waiting for each write, the writing connection's own answer; else,
    /// whether a transaction was begun and not ended (one SQLite ended by
    /// itself shows at the commit).
    fn in_transaction(&self) -> bool {
        if self.through.get() {
            return (self.call(|w| w.store.in_transaction())).unwrap_or(false);
        }
        self.open.get()
    }

    fn generation(&self) -> u64 {
        self.rollbacks.get()
    }
}

impl DaemonStore for WriteBehind {
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        self.ask(DaemonStore::queue_position)
    }

    fn set_queue_position(&self, position: &QueuePosition) -> Result<()> {
        let position = position.clone();
        self.write(move |s| DaemonStore::set_queue_position(s, &position).map(Ok))?
    }

    fn daemon_started(&self, pid: u32, at: &str, ruleset: &str) -> Result<()> {
        let (at, ruleset) = (at.to_string(), ruleset.to_string());
        self.ask(move |s| DaemonStore::daemon_started(s, pid, &at, &ruleset))
    }

    fn daemon_reloaded(&self, at: &str, ruleset: &str) -> Result<()> {
        let (at, ruleset) = (at.to_string(), ruleset.to_string());
        self.ask(move |s| DaemonStore::daemon_reloaded(s, &at, &ruleset))
    }

    fn daemon_reload_refused(&self, error: Option<&str>) -> Result<()> {
        let error = error.map(str::to_string);
        self.ask(move |s| DaemonStore::daemon_reload_refused(s, error.as_deref()))
    }

    fn between_batches(&self) {
        let _ = self.call(|w| w.store.between_batches());
    }

    fn write_through(&self, on: bool) {
        self.through.set(on);
    }
}

#[cfg(test)]
mod tests;

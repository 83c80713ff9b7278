//! The SQLite store: state, outcomes and audit trail in one file, the
//! queue in another beside it, so that applying an event and recording how
//! far the queue is processed commit together.
//!
//! All SQL lives under this module; the engine sees the store's traits only.

mod audit;
mod checkpoint;
mod daemon_backend;
mod deliveries;
mod entities;
mod error;
pub(crate) mod feed;
mod log;
mod owned_writes;
mod pending;
mod queue;
mod rulesets;
mod schema;
mod status;
mod store_thread;
mod timers;
mod write_behind;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

use crate::domain::config::Synchronous;

use crate::store::{Persist, Result, StateWrites, StoreError, Transactions};
pub use audit::AuditRow;
pub use checkpoint::Checkpointer;
pub use daemon_backend::{open_for_daemon, Opened};
pub use deliveries::{deliveries_path, Deliveries, Delivery};
pub use log::{LoggedEvent, OutcomeRow, Recorded};
pub use queue::{queue_path, Queue, QueuePosition, Queued};
pub use rulesets::RecordedConfig;
pub use status::DaemonStatus;
pub use write_behind::WriteBehind;

/// A connection to the inboxd database.
pub struct Store {
    conn: Connection,
    /// The thread taking WAL checkpoints, for the daemon's store.
    checkpointer: Option<Checkpointer>,
    /// Transactions rolled back on this connection so far, counted by
    /// SQLite's rollback hook: what was learned of the store before a
    /// rollback may be wrong after it.
    rollbacks: Arc<AtomicU64>,
    /// The database's path, where the files kept beside it are (the queue,
    /// the webhooks' progress): also for the empty stand-in of a store not
    /// created yet. None for a store in memory only.
    path: Option<std::path::PathBuf>,
}

/// A file kept beside the database: `<db><suffix>` (`.queue`, ...).
pub fn beside(store_path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = store_path.as_os_str().to_os_string();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// Creates the directory the store's files go in.
pub fn create_directory_of(store_path: &Path) -> anyhow::Result<()> {
    match store_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the store's directory {}", dir.display())),
        _ => Ok(()),
    }
}

/// `PRAGMA quick_check`: a damaged database is refused before it is used
/// as if it were sound.
fn quick_check(conn: &Connection) -> anyhow::Result<()> {
    let checked: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut check| check.query_map([], |r| r.get(0))?.collect());
    let problems = match checked {
        Ok(problems) => problems,
        Err(rusqlite::Error::SqliteFailure(e, detail))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            vec![detail.unwrap_or_else(|| e.to_string())]
        }
        Err(e) => return Err(StoreError::from(e)).context("cannot check the database"),
    };
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    anyhow::bail!(
        "is damaged (SQLite's quick_check: {}); restore it from a backup, or see docs/RELIABILITY.md",
        problems.join("; ")
    )
}

/// The page size of the database and the queue files inboxd creates.
const PAGE_SIZE: i64 = 16 * 1024;

/// How long a writer waits for another process's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting writer looks again. SQLite's own busy handler backs
/// off to 100 ms sleeps, which is most of the latency when a producer and
/// the daemon take turns at every commit.
const BUSY_RETRY: Duration = Duration::from_micros(500);

/// Retries a locked database every `BUSY_RETRY`, up to `BUSY_TIMEOUT`.
fn wait_while_busy(attempt: i32) -> bool {
    retry_busy(attempt, BUSY_TIMEOUT)
}

/// Sleeps `BUSY_RETRY` and says to try again, until `limit` has passed.
fn retry_busy(attempt: i32, limit: Duration) -> bool {
    let waited = BUSY_RETRY * attempt.max(0) as u32;
    if waited >= limit {
        return false;
    }
    std::thread::sleep(BUSY_RETRY);
    true
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to
    /// date.
    pub fn open(path: &Path, synchronous: Synchronous) -> anyhow::Result<Store> {
        create_directory_of(path)?;
        let open = || -> rusqlite::Result<Connection> {
            let mut conn = Connection::open(path)?;
            conn.busy_handler(Some(wait_while_busy))?;
            // For a new database (an existing one keeps its own): a
            // quarter as many pages to write at each commit and to copy at
            // each checkpoint as with SQLite's 4 KiB (a 20,000-event drain
            // 152 -> 143 ms).
            conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", synchronous.pragma())?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            // 32 MiB of page cache (the default is 2 MiB).
            conn.pragma_update(None, "cache_size", -32_768)?;
            // Savepoints' sub-journals in memory, not in temporary files:
            // every event's savepoint copies the pages it writes.
            conn.pragma_update(None, "temp_store", "MEMORY")?;
            conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_SIZE_LIMIT)?;
            schema::migrate(&mut conn)?;
            Ok(conn)
        };
        let conn = open()
            .map_err(StoreError::from)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let mut store = Store::with(conn);
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// The store, or an empty one in memory if none was created yet, so
    /// that readers create nothing.
    pub fn open_for_reading(path: &Path, synchronous: Synchronous) -> anyhow::Result<Store> {
        if path.exists() {
            Store::open(path, synchronous)
        } else {
            let mut empty = Store::open_in_memory()?;
            empty.path = Some(path.to_path_buf());
            Ok(empty)
        }
    }

    /// An empty store in memory, for commands that read a store that does
    /// not exist yet.
    pub fn open_in_memory() -> anyhow::Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Store::with(conn))
    }

    /// Checks that the database is sound (`PRAGMA quick_check`), for
    /// commands that rely on all of it: the daemon, `export`.
    pub fn check(&self, path: &Path) -> anyhow::Result<()> {
        quick_check(&self.conn).with_context(|| format!("the store {}", path.display()))
    }

    fn with(conn: Connection) -> Store {
        // Room for every statement of the hot path (rusqlite keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        let rollbacks = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&rollbacks);
        conn.rollback_hook(Some(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        Store {
            conn,
            rollbacks,
            checkpointer: None,
            path: None,
        }
    }

    /// The database's path (see the field).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection itself, for tests that change the schema.
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Marks a point that one event's writes can be undone to.
    fn savepoint(&self) -> Result<()> {
        Ok(self.run_cached("SAVEPOINT event")?)
    }

    fn release(&self) -> Result<()> {
        Ok(self.run_cached("RELEASE event")?)
    }

    fn rollback_to_savepoint(&self) -> Result<()> {
        self.run_cached("ROLLBACK TO event")?;
        self.release()
    }

    /// Runs a statement without parameters, prepared once per connection.
    fn run_cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// Runs `read` in one read transaction: a consistent snapshot.
    pub fn read_consistently<T>(&self, read: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN")?;
        let result = read(self);
        let end = self.conn.execute_batch("COMMIT");
        let value = result?;
        end?;
        Ok(value)
    }
}

impl Transactions for Store {
    /// Takes the write lock at once, so that the transaction cannot fail
    /// half-way on a lock.
    fn begin(&self) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&self) -> Result<()> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&self) -> Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Counted by SQLite's rollback hook, which sees the rollbacks SQLite
    /// does by itself (I/O errors, a full disk) too.
    fn generation(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }
}

impl Persist for Store {
    /// Under a savepoint, so that a write refused half-way (a constraint
    /// of the schema) leaves none of the event's rows; a single row needs
    /// none, since a statement that fails leaves nothing. Only the state
    /// rows are inside: every page a savepoint covers is copied.
    fn write_state(&self, writes: &StateWrites) -> Result<Result<()>> {
        let rows = writes.rows();
        if rows == 0 {
            return Ok(Ok(()));
        }
        if rows > 1 {
            self.savepoint()?;
        }
        match self.write_rows(writes) {
            Ok(()) => {
                if rows > 1 {
                    self.release()?;
                }
                Ok(Ok(()))
            }
            Err(e) => {
                // A transaction SQLite rolled back by itself took the
                // savepoint with it (the caller sees it is gone).
                if rows > 1 && self.in_transaction() {
                    self.rollback_to_savepoint()?;
                }
                Ok(Err(e))
            }
        }
    }

    fn record(&self, recorded: Recorded) -> Result<()> {
        self.insert_outcome(&recorded)
    }

    fn remember_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()> {
        self.insert_ruleset(version, config)
    }
}

impl Store {
    /// The rows of `write_state`, without its savepoint.
    fn write_rows(&self, writes: &StateWrites) -> Result<()> {
        for c in &writes.conversations {
            self.put_conversation(c)?;
        }
        for t in &writes.tickets {
            self.put_ticket(t)?;
        }
        for (ticket, conversation) in writes.associations {
            self.associate(ticket, conversation)?;
        }
        for contact in writes.blocks {
            self.block(contact)?;
        }
        for timer in &writes.timers_set {
            self.put_timer(timer)?;
        }
        for key in &writes.timers_removed {
            self.delete_timer(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn new_files_have_large_pages_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = Store::open(&path, Synchronous::Full).unwrap();
        assert_eq!(page_size(&store.conn), PAGE_SIZE);
        let _queue = Queue::open(&path, Synchronous::Full).unwrap();
        let queue = Connection::open(queue_path(&path)).unwrap();
        assert_eq!(page_size(&queue), PAGE_SIZE);

        // A database an older inboxd created, with SQLite's 4 KiB pages.
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        let store = Store::open(&old, Synchronous::Full).unwrap();
        assert_eq!(page_size(&store.conn), 4096);
        store.begin().unwrap();
        store.commit().unwrap();
    }
}

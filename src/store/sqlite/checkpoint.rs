//! WAL checkpoints off the hot path. SQLite's automatic checkpoint runs
//! inside whichever commit crosses the threshold, and that commit then waits
//! for the database file to be written and synced — a latency spike for the
//! events in it. The daemon's connection leaves checkpoints to a thread of
//! its own, which runs passive ones (they block no reader and no writer).
//!
//! A passive checkpoint never lets the WAL start over while the daemon
//! writes without a pause: by the time it has copied the frames, new ones
//! were appended. So under sustained load the WAL grew without bound
//! (1.3 GB for 300,000 events), and every commit paid for new file blocks.
//! Past `RESTART_AT_FRAMES`, the thread asks the daemon to restart the WAL
//! between two of its transactions (`Store::restart_wal`): only the few
//! frames the passive checkpoints have not copied yet are left to copy, and
//! the next commit writes the WAL from its start again. (The thread cannot
//! do it itself: a restart needs the write lock, and the daemon leaves it
//! free for a few microseconds at a time.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{Result, Store};

/// How often the WAL is copied back into the database file.
const EVERY: Duration = Duration::from_millis(200);
/// WAL frames (pages) past which the WAL is made to start over: 64 MiB of
/// 4 KiB pages.
const RESTART_AT_FRAMES: i64 = 16_384;
/// How long a restart may hold writers back while readers finish.
const RESTART_PATIENCE: Duration = Duration::from_millis(20);
/// What a WAL that grew past the above is cut back to when it starts over.
pub(super) const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Runs passive checkpoints until dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    /// Set when the WAL should start over.
    restart: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Stops this connection from checkpointing at commit; someone else
    /// must (see `Checkpointer`).
    pub fn leave_checkpoints_to_others(&self) -> Result<()> {
        Ok(self.conn.pragma_update(None, "wal_autocheckpoint", 0)?)
    }

    /// Copies what is left of the WAL into the database and has the next
    /// commit write the WAL from its start. Outside a transaction only.
    /// It holds the write lock while it waits for readers of the WAL (a long
    /// `export`, say), so it waits `RESTART_PATIENCE` at most and is asked
    /// again later.
    pub fn restart_wal(&self) -> Result<()> {
        self.conn
            .busy_handler(Some(|attempt| super::retry_busy(attempt, RESTART_PATIENCE)))?;
        let result = checkpoint(&self.conn, "RESTART");
        self.conn.busy_handler(Some(super::wait_while_busy))?;
        Ok(result.map(drop)?)
    }
}

impl Checkpointer {
    pub fn start(path: PathBuf) -> Checkpointer {
        Checkpointer::with(path, EVERY, RESTART_AT_FRAMES)
    }

    fn with(path: PathBuf, every: Duration, restart_at_frames: i64) -> Checkpointer {
        let stop = Arc::new(AtomicBool::new(false));
        let restart = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let ask_restart = Arc::clone(&restart);
        let thread = std::thread::spawn(move || {
            let Ok(conn) = Connection::open(&path) else {
                tracing::warn!("cannot open {} to checkpoint it", path.display());
                return;
            };
            while !flag.load(Ordering::SeqCst) {
                std::thread::park_timeout(every);
                match checkpoint(&conn, "PASSIVE") {
                    Ok(frames) if frames > restart_at_frames => {
                        ask_restart.store(true, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("checkpoint skipped: {e}"),
                }
            }
        });
        Checkpointer {
            stop,
            restart,
            thread: Some(thread),
        }
    }

    /// Whether the WAL should start over now (`Store::restart_wal`); asked
    /// once per request.
    pub fn wants_restart(&self) -> bool {
        self.restart.swap(false, Ordering::SeqCst)
    }
}

/// Runs a checkpoint; returns the frames in the WAL.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::Synchronous;
    use crate::store::Transactions;

    #[test]
    fn under_sustained_writes_the_wal_starts_over_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        store.leave_checkpoints_to_others().unwrap();
        // Every 10 ms past 1 MiB of frames, instead of the daemon's 200 ms
        // and 64 MiB: the test writes fast.
        let checkpointer = Checkpointer::with(path.clone(), Duration::from_millis(10), 256);
        let wal = path.with_extension("db-wal");
        let mut largest = 0;
        // 100 MiB written without a pause between transactions, as a busy
        // daemon does.
        for _ in 0..400 {
            store.begin().unwrap();
            store
                .conn
                .execute(
                    "INSERT INTO queue (event_id, body, enqueued_at)
                     SELECT 'e', hex(randomblob(32768)), 'now' FROM (SELECT 1 UNION ALL SELECT 2
                         UNION ALL SELECT 3 UNION ALL SELECT 4)",
                    [],
                )
                .unwrap();
            store.commit().unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
            if checkpointer.wants_restart() {
                store.restart_wal().unwrap();
            }
        }
        assert!(largest < 64 << 20, "the WAL grew to {largest} bytes");
    }

    #[test]
    fn a_reader_of_the_wal_holds_a_restart_back_only_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        store.leave_checkpoints_to_others().unwrap();
        store
            .conn
            .execute("INSERT INTO blocked_contacts (contact) VALUES ('x')", [])
            .unwrap();
        // A long read, as of an export, holding a snapshot in the WAL.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM blocked_contacts", [], |r| r.get(0))
            .unwrap();
        let started = std::time::Instant::now();
        let _ = store.restart_wal();
        // Not the 30 s a writer waits for a lock.
        assert!(started.elapsed() < Duration::from_secs(5));
        // And the store is usable at once.
        store.begin().unwrap();
        store.commit().unwrap();
    }
}

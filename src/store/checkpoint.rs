//! WAL checkpoints off the hot path. SQLite's automatic checkpoint runs
//! inside whichever commit crosses the threshold, and that commit then waits
//! for the database file to be written and synced — a latency spike for the
//! events in it. The daemon's connection leaves checkpoints to a thread of
//! its own, which runs passive ones (they block no reader and no writer).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::Store;

/// How often the WAL is copied back into the database file.
const EVERY: Duration = Duration::from_millis(200);

/// Runs passive checkpoints until dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Stops this connection from checkpointing at commit; someone else
    /// must (see `Checkpointer`).
    pub fn leave_checkpoints_to_others(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)
    }
}

impl Checkpointer {
    pub fn start(path: PathBuf) -> Checkpointer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let Ok(conn) = Connection::open(&path) else {
                tracing::warn!("cannot open {} to checkpoint it", path.display());
                return;
            };
            while !flag.load(Ordering::SeqCst) {
                std::thread::park_timeout(EVERY);
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if let Err(e) = result {
                    tracing::debug!("checkpoint skipped: {e}");
                }
            }
        });
        Checkpointer {
            stop,
            thread: Some(thread),
        }
    }
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

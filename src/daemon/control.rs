//! Requests to the daemon's run loop — stop, reload, wake up — from signal
//! handlers, file watchers and producers' doorbells. Its own module, so
//! that the watchers and the run loop each depend on it, not on each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Requests to the run loop, from signal handlers and file watchers.
pub struct Control {
    pub stop: AtomicBool,
    pub reload: AtomicBool,
    /// The store is open and the rules are loaded (`GET /readyz`).
    pub ready: AtomicBool,
    /// Batches committed so far, for those who wait for the feed to grow.
    commits: Mutex<u64>,
    committed: Condvar,
    wake_tx: SyncSender<()>,
    wake_rx: Mutex<Receiver<()>>,
}

impl Default for Control {
    fn default() -> Self {
        // One pending wake-up is enough: the loop looks at everything.
        let (wake_tx, wake_rx) = sync_channel(1);
        Control {
            stop: AtomicBool::new(false),
            reload: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            commits: Mutex::new(0),
            committed: Condvar::new(),
            wake_tx,
            wake_rx: Mutex::new(wake_rx),
        }
    }
}

impl Control {
    /// Wakes the loop if it is idle.
    pub fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
        self.committed.notify_all();
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Tells those waiting for new feed entries that a batch committed.
    pub fn batch_committed(&self) {
        if let Ok(mut commits) = self.commits.lock() {
            *commits += 1;
        }
        self.committed.notify_all();
    }

    /// How many batches have committed.
    pub fn commits(&self) -> u64 {
        self.commits.lock().map_or(0, |c| *c)
    }

    /// Waits until a batch commits after `seen` commits, or `timeout`.
    pub fn wait_for_commit(&self, seen: u64, timeout: Duration) {
        if let Ok(commits) = self.commits.lock() {
            let _ = self
                .committed
                .wait_timeout_while(commits, timeout, |c| *c == seen && !self.stopping());
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits for a wake-up, at most `timeout`.
    pub fn idle(&self, timeout: Duration) {
        if let Ok(rx) = self.wake_rx.lock() {
            let _ = rx.recv_timeout(timeout);
        }
    }
}

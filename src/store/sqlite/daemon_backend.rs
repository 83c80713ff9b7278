//! The SQLite store as the daemon uses it: opened and checked under the
//! daemon's lock, with its queue, writing behind the engine on a thread of
//! its own (`write_behind.rs`), and WAL checkpoints left to another.

use std::rc::Rc;

use anyhow::Context;

use super::{Checkpointer, Queue, QueuePosition, Queued, Result, Store, WriteBehind};
use crate::domain::config::Config;
use crate::store::{DaemonStore, EventQueue};

/// The daemon's store, its queue and how far that is processed.
pub struct Opened {
    pub store: Rc<WriteBehind>,
    pub queue: Queue,
    pub position: Option<QueuePosition>,
}

/// Opens the database and its queue, and checks them (under the daemon
/// lock); a thread takes the WAL checkpoints from here on. The queue is
/// opened and checked on another thread meanwhile: its check reads the
/// whole file.
pub fn open_for_daemon(config: &Config) -> anyhow::Result<Opened> {
    let store_path = &config.store_path;
    let (store, queue) = std::thread::scope(|scope| {
        let queue = scope.spawn(|| Queue::open(store_path, config.synchronous));
        let store = Store::open(store_path, config.synchronous).and_then(|store| {
            store.check(store_path)?;
            Ok(store)
        });
        let queue = (queue.join())
            .unwrap_or_else(|_| Err(anyhow::anyhow!("cannot open the queue: its thread stopped")));
        (store, queue)
    });
    // The store's trouble first, as when they were opened one after the other.
    let mut store = store?;
    let queue = queue?;
    store.leave_checkpoints_to_others()?;
    queue.acknowledge_lazily()?;
    let moved = queue.adopt_legacy(&store)?;
    if moved > 0 {
        tracing::info!("moved {moved} queued event(s) to the queue's own file");
    }
    let position = store
        .queue_position()
        .context("cannot read how far the queue was processed")?;
    store.checkpointer = Some(Checkpointer::start(store_path.clone()));
    Ok(Opened {
        store: Rc::new(WriteBehind::start(store, store_path)?),
        queue,
        position,
    })
}

impl DaemonStore for Store {
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        Store::queue_position(self)
    }

    fn set_queue_position(&self, position: &QueuePosition) -> Result<()> {
        Store::set_queue_position(self, position)
    }

    fn daemon_started(&self, pid: u32, at: &str, ruleset: &str) -> Result<()> {
        Store::daemon_started(self, pid, at, ruleset)
    }

    fn daemon_reloaded(&self, at: &str, ruleset: &str) -> Result<()> {
        Store::daemon_reloaded(self, at, ruleset)
    }

    fn daemon_reload_refused(&self, error: Option<&str>) -> Result<()> {
        Store::daemon_reload_refused(self, error)
    }

    /// A WAL grown past its limit starts over (the checkpoint thread asks).
    fn between_batches(&self) {
        if self
            .checkpointer
            .as_ref()
            .is_some_and(Checkpointer::wants_restart)
        {
            if let Err(e) = self.restart_wal() {
                tracing::debug!("WAL restart skipped: {e}");
            }
        }
    }
}

impl EventQueue for Queue {
    fn peek(&self, position: Option<&QueuePosition>, limit: usize) -> Result<Vec<Queued>> {
        Queue::peek(self, position, limit)
    }

    fn position_at(&self, seq: i64) -> QueuePosition {
        Queue::position_at(self, seq)
    }

    fn acknowledge_through(&self, seq: i64) -> Result<()> {
        Queue::acknowledge_through(self, seq)
    }

    fn backlog(&self, position: Option<&QueuePosition>) -> Result<(u64, Option<String>)> {
        Queue::backlog(self, position)
    }
}

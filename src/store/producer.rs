//! Where producers (`enqueue`, `retry`, the HTTP API) put events: the
//! SQLite queue file, or the queue table on PostgreSQL.

use anyhow::Context;

use crate::domain::config::Config;
use crate::domain::event::Event;
use crate::domain::event_lines::Staged;
use crate::store::postgres::PgStore;
use crate::store::{Queue, QueuePosition, Result};

// One per command or pooled connection: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Producer {
    Sqlite(Queue),
    Postgres(PgStore),
}

impl Producer {
    /// The configured queue; `trusted` skips SQLite's integrity check (a
    /// running daemon made it).
    pub fn open(config: &Config, trusted: bool) -> anyhow::Result<Producer> {
        Ok(match &config.store_url {
            Some(url) => Producer::Postgres(PgStore::open(url.secret())?),
            None if trusted => {
                Producer::Sqlite(Queue::open_trusted(&config.store_path, config.synchronous)?)
            }
            None => Producer::Sqlite(Queue::open(&config.store_path, config.synchronous)?),
        })
    }

    /// Adds staged events at the end of the queue, all or none.
    pub fn enqueue_staged(
        &self,
        staged: impl Iterator<Item = std::io::Result<Staged>>,
        now: &str,
        progress: impl FnMut(),
    ) -> anyhow::Result<()> {
        match self {
            Producer::Sqlite(queue) => queue.enqueue_staged(staged, now, progress),
            Producer::Postgres(store) => {
                let entries = staged.map(|event| {
                    let event = event.context("cannot read the staged events")?;
                    Ok((event.id, event.body))
                });
                store.enqueue(entries, now, progress).map(drop)
            }
        }
    }

    /// Adds events (`at` filled in with `now` where missing).
    pub fn enqueue(&self, events: &[Event], now: &str) -> anyhow::Result<()> {
        let staged = events.iter().map(|event| {
            let mut event = event.clone();
            event.at.get_or_insert_with(|| now.to_string());
            Ok(Staged::from(event))
        });
        self.enqueue_staged(staged, now, || {})
    }

    /// Whether an event with this id waits to be processed.
    pub fn is_waiting(&self, position: Option<&QueuePosition>, event_id: &str) -> Result<bool> {
        match self {
            Producer::Sqlite(queue) => queue.is_waiting(position, event_id),
            Producer::Postgres(store) => store.is_waiting(event_id),
        }
    }
}

//! The durable, ordered queue of events waiting to be processed.

use rusqlite::params;

use super::Store;
use crate::event::Event;

/// An event taken from the queue, not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    pub event_id: String,
    /// The event as it was enqueued (JSON).
    pub body: String,
}

impl Store {
    /// Adds the events at the end of the queue, all or none.
    pub fn enqueue(&self, events: &[Event], now: &str) -> rusqlite::Result<()> {
        self.enqueue_with(events, now, || {})
    }

    /// `enqueue`, calling `progress` after each event.
    pub fn enqueue_with(
        &self,
        events: &[Event],
        now: &str,
        mut progress: impl FnMut(),
    ) -> rusqlite::Result<()> {
        self.begin()?;
        let result = events.iter().try_for_each(|event| {
            progress();
            let mut event = event.clone();
            event.at.get_or_insert_with(|| now.to_string());
            self.conn
                .prepare_cached(
                    "INSERT INTO queue (event_id, body, enqueued_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![event.id, event.to_json(), now])
                .map(drop)
        });
        match result {
            Ok(()) => {
                self.commit()?;
                self.ring_doorbell();
                Ok(())
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// Tells a watching daemon that events were committed. Best effort: a
    /// daemon that misses it finds the events at its next poll.
    fn ring_doorbell(&self) {
        if let Some(path) = &self.doorbell {
            let _ = std::fs::write(path, b"");
        }
    }

    /// The oldest `limit` queued events, in order.
    pub fn peek(&self, limit: usize) -> rusqlite::Result<Vec<Queued>> {
        self.conn
            .prepare_cached("SELECT seq, event_id, body FROM queue ORDER BY seq LIMIT ?1")?
            .query_map([limit as i64], |r| {
                Ok(Queued {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    body: r.get(2)?,
                })
            })?
            .collect()
    }

    /// Takes processed events off the queue: every one up to `seq`, since
    /// they are processed in order.
    pub fn ack_through(&self, seq: i64) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("DELETE FROM queue WHERE seq <= ?1")?
            .execute([seq])
            .map(drop)
    }

    /// How many events wait in the queue.
    pub fn queue_depth(&self) -> rusqlite::Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM queue", [], |r| r.get(0))
    }
}

//! The queue, in the same database as the state. Producers take a
//! transaction-scoped advisory lock before adding, so that sequence numbers
//! become visible in order (the consumer never passes one that commits
//! later), and notify the consumer, which listens instead of polling. The
//! consumer deletes what it processed in the transaction that records it:
//! what is in the table is what waits.

use std::rc::Rc;

use super::schema::{QUEUE_CHANNEL, QUEUE_KEY};
use super::PgStore;
use crate::store::{EventQueue, QueuePosition, Queued, Result};

/// Rows per INSERT statement.
const CHUNK: usize = 1000;

/// The daemon's view of the queue, through its store's connection.
pub struct PgQueue {
    store: Rc<PgStore>,
}

impl PgQueue {
    pub fn new(store: Rc<PgStore>) -> PgQueue {
        PgQueue { store }
    }
}

/// The queue's name in positions: one queue per database.
const QUEUE: &str = "postgres";

impl EventQueue for PgQueue {
    /// What waits, oldest first (the position is in the table itself).
    fn peek(&self, _position: Option<&QueuePosition>, limit: usize) -> Result<Vec<Queued>> {
        self.store.reconnect_if_closed()?;
        Ok(self
            .store
            .query(
                "SELECT seq, event_id, body FROM queue ORDER BY seq LIMIT $1",
                &[&(limit as i64)],
            )?
            .iter()
            .map(|r| Queued {
                seq: r.get(0),
                event_id: r.get(1),
                body: r.get(2),
            })
            .collect())
    }

    fn position_at(&self, seq: i64) -> QueuePosition {
        QueuePosition {
            queue: QUEUE.into(),
            seq,
        }
    }

    /// Done by `set_queue_position`, in the batch's transaction.
    fn acknowledge_through(&self, _seq: i64) -> Result<()> {
        Ok(())
    }

    fn backlog(&self, _position: Option<&QueuePosition>) -> Result<(u64, Option<String>)> {
        let row = self
            .store
            .query_one("SELECT count(*), min(enqueued_at) FROM queue", &[])?;
        Ok((row.get::<_, i64>(0) as u64, row.get(1)))
    }
}

impl PgStore {
    /// Adds `(event id, body)` entries at the end of the queue, all or
    /// none, and wakes the consumer.
    pub fn enqueue(
        &self,
        entries: impl Iterator<Item = anyhow::Result<(String, String)>>,
        now: &str,
        mut progress: impl FnMut(),
    ) -> anyhow::Result<usize> {
        self.reconnect_if_closed()?;
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&QUEUE_KEY])?;
        let insert = tx.prepare(
            "INSERT INTO queue (event_id, body, enqueued_at)
             SELECT id, body, $3 FROM unnest($1::TEXT[], $2::TEXT[]) WITH ORDINALITY AS e(id, body, n)
             ORDER BY n",
        )?;
        let (mut ids, mut bodies) = (Vec::new(), Vec::new());
        let mut count = 0;
        for entry in entries {
            let (id, body) = entry?;
            ids.push(id);
            bodies.push(body);
            if ids.len() == CHUNK {
                tx.execute(&insert, &[&ids, &bodies, &now])?;
                count += ids.len();
                for _ in 0..ids.len() {
                    progress();
                }
                ids.clear();
                bodies.clear();
            }
        }
        if !ids.is_empty() {
            tx.execute(&insert, &[&ids, &bodies, &now])?;
            count += ids.len();
            for _ in 0..ids.len() {
                progress();
            }
        }
        if count > 0 {
            tx.batch_execute(&format!("NOTIFY {QUEUE_CHANNEL}"))?;
        }
        tx.commit()?;
        Ok(count)
    }

    /// The position last recorded, and the queue's entries up to it taken
    /// off, in the open transaction.
    pub(super) fn record_position(&self, position: &QueuePosition) -> Result<()> {
        self.execute("DELETE FROM queue WHERE seq <= $1", &[&position.seq])?;
        self.execute(
            "INSERT INTO queue_position (id, queue, seq) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET queue = $1, seq = $2",
            &[&position.queue, &position.seq],
        )
        .map(drop)
    }

    pub fn queue_position(&self) -> Result<Option<QueuePosition>> {
        Ok(self
            .query("SELECT queue, seq FROM queue_position WHERE id = 1", &[])?
            .first()
            .map(|r| QueuePosition {
                queue: r.get(0),
                seq: r.get(1),
            }))
    }

    /// Whether an event with this id waits to be processed.
    pub fn is_waiting(&self, event_id: &str) -> Result<bool> {
        Ok(!self
            .query(
                "SELECT 1 FROM queue WHERE event_id = $1 LIMIT 1",
                &[&event_id],
            )?
            .is_empty())
    }

    /// The ids of the events waiting to be processed.
    pub fn waiting_ids(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .query("SELECT DISTINCT event_id FROM queue", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// How many events wait.
    pub fn depth(&self) -> Result<u64> {
        Ok(self
            .query_one("SELECT count(*) FROM queue", &[])?
            .get::<_, i64>(0) as u64)
    }
}

//! The durable, ordered queue of events waiting to be processed, in a
//! database file of its own beside the state (`<db>.queue`).
//!
//! Producers (`enqueue`, `retry`) write only here, in short transactions:
//! however long the daemon's work on an event, it holds the write lock of
//! the state's database, not of this one, so producers never wait for it.
//! The daemon reads the queue, and records how far it has processed (the
//! queue's identity and the last sequence number) in the state's database,
//! in the same transaction as the events' effects. Taking processed events
//! off the queue comes after that commit and may be lost in a crash: the
//! recorded position, not the deletion, says what is done.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, Store};
use crate::domain::config::Synchronous;
use crate::domain::event::Event;

/// An event taken from the queue, not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    pub event_id: String,
    /// The event as it was enqueued (JSON).
    pub body: String,
}

/// How far the daemon has processed a queue: the queue's identity (a new
/// queue file starts its numbering over) and its last processed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    pub queue: String,
    pub seq: i64,
}

/// The queue file of a database: `<db>.queue`.
pub fn queue_path(store_path: &Path) -> PathBuf {
    super::beside(store_path, ".queue")
}

const SCHEMA: &[&str] = &[r#"
CREATE TABLE queue (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    body        TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
-- Which queue this is: the daemon's position is kept for one queue file,
-- and a queue file made anew numbers its entries from 1 again.
CREATE TABLE queue_identity (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    identity TEXT NOT NULL
);
INSERT INTO queue_identity (id, identity) VALUES (1, lower(hex(randomblob(16))));
"#];

/// Entries per `INSERT` statement when enqueueing (a statement's fixed
/// cost, the counter's update among it, was most of an entry's).
const ROWS_PER_INSERT: usize = 64;

/// How long the daemon waits to take processed entries off the queue
/// while a producer writes: it tries again after its next batch anyway.
const ACK_PATIENCE: Duration = Duration::from_millis(200);

/// Processed entries wait in the queue file until none waits after them
/// (then one `DELETE` of the whole table takes them off, its pages freed
/// without visiting a row), or until this many have piled up behind a
/// backlog. Taking them off after every batch cost the engine's thread a
/// transaction of deletes per batch: 8 % of a 20,000-event drain's time.
const ACK_EVERY: i64 = 65_536;

/// A connection to the queue's database.
pub struct Queue {
    conn: Connection,
    identity: String,
    /// Entries up to this one are taken off (as far as this connection
    /// knows).
    taken_off: std::cell::Cell<i64>,
}

impl Queue {
    /// Opens (creating if needed) the queue of the database at
    /// `store_path`, and checks it is sound.
    pub fn open(store_path: &Path, synchronous: Synchronous) -> anyhow::Result<Queue> {
        let queue = Queue::open_trusted(store_path, synchronous)?;
        let path = queue_path(store_path);
        super::quick_check(&queue.conn).with_context(|| format!("the queue {}", path.display()))?;
        Ok(queue)
    }

    /// `open` without the check, which reads the whole file: for producers
    /// beside a running daemon, which checked it when it started.
    pub fn open_trusted(store_path: &Path, synchronous: Synchronous) -> anyhow::Result<Queue> {
        super::create_directory_of(store_path)?;
        let path = queue_path(store_path);
        let open = || -> rusqlite::Result<Connection> {
            let mut conn = Connection::open(&path)?;
            conn.busy_handler(Some(super::wait_while_busy))?;
            conn.pragma_update(None, "page_size", super::PAGE_SIZE)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", synchronous.pragma())?;
            // Entries are written once and read once, in order: a small
            // page cache does (SQLite's default is 2 MiB).
            conn.pragma_update(None, "cache_size", -256)?;
            super::schema::migrate_with(&mut conn, SCHEMA)?;
            Ok(conn)
        };
        let conn = open()
            .map_err(super::StoreError::from)
            .with_context(|| format!("cannot open the queue {}", path.display()))?;
        Queue::with(conn)
    }

    /// An empty queue in memory.
    pub fn open_in_memory() -> anyhow::Result<Queue> {
        let mut conn = Connection::open_in_memory()?;
        super::schema::migrate_with(&mut conn, SCHEMA)?;
        Queue::with(conn)
    }

    fn with(conn: Connection) -> anyhow::Result<Queue> {
        let identity = conn
            .query_row(
                "SELECT identity FROM queue_identity WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(super::StoreError::from)
            .context("cannot read the queue's identity")?;
        Ok(Queue {
            conn,
            identity,
            taken_off: std::cell::Cell::new(0),
        })
    }

    /// Less durable acknowledgements, for the daemon: a lost one is
    /// harmless (the position says what is done), and they should not
    /// wait for the disk.
    pub fn acknowledge_lazily(&self) -> Result<()> {
        Ok(self.conn.pragma_update(None, "synchronous", "NORMAL")?)
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Adds the events at the end of the queue, all or none.
    pub fn enqueue(&self, events: &[Event], now: &str) -> anyhow::Result<()> {
        self.enqueue_with(events, now, || {})
    }

    /// `enqueue`, calling `progress` after each event.
    pub fn enqueue_with(
        &self,
        events: &[Event],
        now: &str,
        progress: impl FnMut(),
    ) -> anyhow::Result<()> {
        let entries = events.iter().map(|event| {
            let mut event = event.clone();
            event.at.get_or_insert_with(|| now.to_string());
            Ok((event.id.clone(), event.to_json(), now.to_string()))
        });
        self.insert_all(entries, progress)
    }

    /// Adds staged events (`event_lines`) at the end of the queue, all or
    /// none, calling `progress` after each.
    pub fn enqueue_staged(
        &self,
        staged: impl Iterator<Item = std::io::Result<crate::domain::event_lines::Staged>>,
        now: &str,
        progress: impl FnMut(),
    ) -> anyhow::Result<()> {
        let entries = staged.map(|event| {
            let event = event.context("cannot read the staged events")?;
            Ok((event.id, event.body, now.to_string()))
        });
        self.insert_all(entries, progress)
    }

    /// Inserts `(event id, body, enqueue time)` entries in one transaction,
    /// all or none: the one way anything enters the queue.
    fn insert_all(
        &self,
        entries: impl Iterator<Item = anyhow::Result<(String, String, String)>>,
        mut progress: impl FnMut(),
    ) -> anyhow::Result<()> {
        let sql = |e: rusqlite::Error| anyhow::Error::from(super::StoreError::from(e));
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        let insert = || -> anyhow::Result<()> {
            let mut rows = Vec::with_capacity(ROWS_PER_INSERT);
            let mut flush = |rows: &mut Vec<_>| -> anyhow::Result<()> {
                self.insert_rows(rows).map_err(sql)?;
                rows.drain(..).for_each(|_| progress());
                Ok(())
            };
            for entry in entries {
                rows.push(entry?);
                if rows.len() == ROWS_PER_INSERT {
                    flush(&mut rows)?;
                }
            }
            flush(&mut rows)?;
            self.conn.execute_batch("COMMIT").map_err(sql)
        };
        insert().inspect_err(|_| {
            let _ = self.conn.execute_batch("ROLLBACK");
        })
    }

    /// One statement for several rows, in their order: each statement
    /// also updates the queue's counter (`AUTOINCREMENT`), once.
    fn insert_rows(&self, rows: &[(String, String, String)]) -> rusqlite::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO queue (event_id, body, enqueued_at) VALUES {}",
            vec!["(?, ?, ?)"; rows.len()].join(", ")
        );
        let values = rows.iter().flat_map(|(id, body, at)| [id, body, at]);
        self.conn
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))
            .map(drop)
    }

    /// The first entry to process after `position`: past it if it is this
    /// queue's, from the start otherwise.
    fn first_after(&self, position: Option<&QueuePosition>) -> i64 {
        match position {
            Some(p) if p.queue == self.identity => p.seq,
            _ => 0,
        }
    }

    /// The oldest `limit` entries not processed yet, in order.
    pub fn peek(&self, position: Option<&QueuePosition>, limit: usize) -> Result<Vec<Queued>> {
        self.conn
            .prepare_cached(
                "SELECT seq, event_id, body FROM queue WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![self.first_after(position), limit as i64], |r| {
                Ok(Queued {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    body: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }

    /// The position after processing up to `seq` of this queue.
    pub fn position_at(&self, seq: i64) -> QueuePosition {
        QueuePosition {
            queue: self.identity.clone(),
            seq,
        }
    }

    /// Takes processed entries off the queue, up to `seq`, once none waits
    /// after them or `ACK_EVERY` have piled up (see there). Waits
    /// `ACK_PATIENCE` at most for a producer's transaction; what is not
    /// taken off now is the next time.
    pub fn acknowledge_through(&self, seq: i64) -> Result<()> {
        // A look without the write lock first: behind a backlog, most
        // batches take nothing off. `take_off_through` looks again, locked.
        let drained = self.last_seq()?.is_none_or(|last| last <= seq);
        if !drained && seq - self.taken_off.get() < ACK_EVERY {
            return Ok(());
        }
        self.conn
            .busy_handler(Some(|attempt| super::retry_busy(attempt, ACK_PATIENCE)))?;
        let result = self.take_off_through(seq);
        self.conn.busy_handler(Some(super::wait_while_busy))?;
        result?;
        self.taken_off.set(seq);
        Ok(())
    }

    fn last_seq(&self) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT max(seq) FROM queue")?
            .query_row([], |r| r.get(0))
    }

    /// In one transaction, so that no entry is enqueued between the look
    /// and the delete.
    fn take_off_through(&self, seq: i64) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let done = (|| {
            if self.last_seq()?.is_some_and(|last| last > seq) {
                let mut delete = self
                    .conn
                    .prepare_cached("DELETE FROM queue WHERE seq <= ?1")?;
                delete.execute([seq])?;
            } else {
                // Nothing waits: SQLite frees the table's pages whole.
                self.conn.execute("DELETE FROM queue", [])?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        if done.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        done
    }

    /// How many entries wait to be processed.
    pub fn depth(&self, position: Option<&QueuePosition>) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM queue WHERE seq > ?1",
            [self.first_after(position)],
            |r| r.get(0),
        )?)
    }

    /// How many entries wait, and when the oldest of them was enqueued:
    /// two index lookups whatever the backlog (entries are numbered
    /// without gaps, and only processed ones are deleted), so the daemon
    /// may ask after every batch.
    pub fn backlog(&self, position: Option<&QueuePosition>) -> Result<(u64, Option<String>)> {
        let after = self.first_after(position);
        let (last, oldest): (Option<i64>, Option<String>) = self
            .conn
            .prepare_cached(
                "SELECT (SELECT max(seq) FROM queue),
                        (SELECT enqueued_at FROM queue WHERE seq > ?1 ORDER BY seq LIMIT 1)",
            )?
            .query_row([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let depth = last.map_or(0, |last| (last - after).max(0) as u64);
        Ok((if oldest.is_some() { depth } else { 0 }, oldest))
    }

    /// Whether an event with this id waits to be processed.
    pub fn is_waiting(&self, position: Option<&QueuePosition>, event_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM queue WHERE seq > ?1 AND event_id = ?2")?
            .exists(params![self.first_after(position), event_id])?)
    }

    /// The ids of the events waiting to be processed.
    pub fn waiting_ids(
        &self,
        position: Option<&QueuePosition>,
    ) -> Result<std::collections::HashSet<String>> {
        self.conn
            .prepare("SELECT event_id FROM queue WHERE seq > ?1")?
            .query_map([self.first_after(position)], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }

    /// Moves what an older inboxd left in the state database's own queue
    /// table into this queue, in order. Entries moved but not yet deleted
    /// there when the process dies are moved again, and then processed as
    /// duplicates.
    pub fn adopt_legacy(&self, store: &Store) -> anyhow::Result<usize> {
        let legacy = store
            .legacy_queue()
            .map_err(super::StoreError::from)
            .context("cannot read the old queue table")?;
        if legacy.is_empty() {
            return Ok(0);
        }
        let count = legacy.len();
        self.insert_all(legacy.into_iter().map(Ok), || {})
            .context("cannot move the old queue")?;
        store
            .clear_legacy_queue()
            .map_err(super::StoreError::from)
            .context("cannot empty the old queue table")?;
        Ok(count)
    }
}

impl Store {
    /// How far the daemon has processed, if it ever has.
    pub fn queue_position(&self) -> Result<Option<QueuePosition>> {
        Ok(self
            .conn
            .prepare_cached("SELECT queue, seq FROM queue_position WHERE id = 1")?
            .query_row([], |r| {
                Ok(QueuePosition {
                    queue: r.get(0)?,
                    seq: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Records how far the daemon has processed, in its transaction.
    pub fn set_queue_position(&self, position: &QueuePosition) -> Result<()> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO queue_position (id, queue, seq) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, seq = excluded.seq",
            )?
            .execute(params![position.queue, position.seq])
            .map(drop)?)
    }

    /// Entries of the queue table of inboxd versions that kept the queue in
    /// this database: id, body, enqueue time.
    fn legacy_queue(&self) -> rusqlite::Result<Vec<(String, String, String)>> {
        self.conn
            .prepare("SELECT event_id, body, enqueued_at FROM queue ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    }

    /// Entries an older inboxd left in this database's queue table, which
    /// the next daemon moves to the queue file.
    pub fn legacy_queue_len(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM queue", [], |r| r.get(0))?)
    }

    fn clear_legacy_queue(&self) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM queue", []).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::state::Stages;

    fn event(id: &str) -> Event {
        let line = format!(r#"{{"id":"{id}","type":"conversation.created","conversation":"c"}}"#);
        Event::parse(&line, &Stages::default()).unwrap()
    }

    fn ids(entries: &[Queued]) -> Vec<&str> {
        entries.iter().map(|q| q.event_id.as_str()).collect()
    }

    #[test]
    fn entries_over_several_statements_are_queued_in_order_all_or_none() {
        let queue = Queue::open_in_memory().unwrap();
        // Two full statements and part of a third.
        let names: Vec<String> = (0..2 * ROWS_PER_INSERT + 7)
            .map(|i| format!("e{i}"))
            .collect();
        let events: Vec<Event> = names.iter().map(|id| event(id)).collect();
        let mut progress = 0;
        queue
            .enqueue_with(&events, "now", || progress += 1)
            .unwrap();
        assert_eq!(progress, names.len());
        let queued = queue.peek(None, usize::MAX >> 1).unwrap();
        assert_eq!(
            ids(&queued),
            names.iter().map(String::as_str).collect::<Vec<_>>()
        );
        let seqs: Vec<i64> = queued.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, (1..=names.len() as i64).collect::<Vec<_>>());

        // An entry that cannot be read, after more than a statement's worth:
        // none of them is queued.
        let entries = (0..ROWS_PER_INSERT + 3).map(|i| match i {
            i if i == ROWS_PER_INSERT + 1 => Err(anyhow::anyhow!("damaged")),
            i => Ok((format!("x{i}"), "{}".to_string(), "now".to_string())),
        });
        assert!(queue.insert_all(entries, || {}).is_err());
        assert_eq!(
            queue.peek(None, usize::MAX >> 1).unwrap().len(),
            names.len()
        );
    }

    #[test]
    fn the_position_says_what_is_done_whether_or_not_entries_were_deleted() {
        let queue = Queue::open_in_memory().unwrap();
        queue
            .enqueue(&[event("a"), event("b"), event("c")], "now")
            .unwrap();
        let first = queue.peek(None, 10).unwrap();
        assert_eq!(ids(&first), ["a", "b", "c"]);
        // Processed through b, but the deletion was lost.
        let position = queue.position_at(first[1].seq);
        assert_eq!(ids(&queue.peek(Some(&position), 10).unwrap()), ["c"]);
        assert_eq!(queue.depth(Some(&position)).unwrap(), 1);
        // The position of another queue (a queue file made anew) counts
        // for nothing here.
        let other = QueuePosition {
            queue: "another".into(),
            seq: 99,
        };
        assert_eq!(queue.depth(Some(&other)).unwrap(), 3);
        // Taken off only once nothing waits after them.
        queue.acknowledge_through(position.seq).unwrap();
        assert_eq!(ids(&queue.peek(None, 10).unwrap()), ["a", "b", "c"]);
        queue.acknowledge_through(first[2].seq).unwrap();
        assert!(queue.peek(None, 10).unwrap().is_empty());
    }

    /// An entry enqueued after the daemon looked (and saw none waiting)
    /// survives: the delete looks again under the write lock.
    #[test]
    fn an_entry_enqueued_after_the_look_is_not_taken_off() {
        let queue = Queue::open_in_memory().unwrap();
        queue.enqueue(&[event("done")], "now").unwrap();
        let done = queue.peek(None, 10).unwrap();
        queue.enqueue(&[event("late")], "now").unwrap();
        queue.take_off_through(done[0].seq).unwrap();
        assert_eq!(ids(&queue.peek(None, 10).unwrap()), ["late"]);
    }

    /// Behind a backlog, processed entries stay until `ACK_EVERY` of them
    /// have piled up or the queue is drained; then they all go, and what
    /// is enqueued later is numbered on (never from 1 again).
    #[test]
    fn processed_entries_are_taken_off_when_drained_or_piled_up() {
        let queue = Queue::open_in_memory().unwrap();
        let names: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
        let events: Vec<Event> = names.iter().map(|id| event(id)).collect();
        queue.enqueue(&events, "now").unwrap();
        let all = queue.peek(None, 100).unwrap();
        let count = || {
            queue
                .conn
                .query_row("SELECT count(*) FROM queue", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        queue.acknowledge_through(all[4].seq).unwrap();
        assert_eq!(count(), 10, "taken off behind a backlog");
        queue.taken_off.set(all[4].seq - ACK_EVERY);
        queue.acknowledge_through(all[4].seq).unwrap();
        assert_eq!(count(), 5, "piled up: taken off");
        queue.acknowledge_through(all[9].seq).unwrap();
        assert_eq!(count(), 0, "drained: all taken off");
        queue.enqueue(&[event("later")], "now").unwrap();
        let later = queue.peek(None, 10).unwrap();
        assert_eq!(ids(&later), ["later"]);
        assert_eq!(later[0].seq, all[9].seq + 1);
    }

    #[test]
    fn the_backlog_counts_what_waits_as_depth_does() {
        let queue = Queue::open_in_memory().unwrap();
        assert_eq!(queue.backlog(None).unwrap(), (0, None));
        queue.enqueue(&[event("a"), event("b")], "first").unwrap();
        queue.enqueue(&[event("c")], "second").unwrap();
        let all = queue.peek(None, 10).unwrap();
        for (done, oldest) in [
            (0, Some("first")),
            (1, Some("first")),
            (2, Some("second")),
            (3, None),
        ] {
            let position = (done > 0).then(|| queue.position_at(all[done - 1].seq));
            let (depth, at) = queue.backlog(position.as_ref()).unwrap();
            assert_eq!(depth, queue.depth(position.as_ref()).unwrap());
            assert_eq!(at.as_deref(), oldest);
            if let Some(position) = &position {
                queue.acknowledge_through(position.seq).unwrap();
                assert_eq!(queue.backlog(Some(position)).unwrap().0, 3 - done as u64);
            }
        }
    }

    #[test]
    fn entries_left_in_the_old_queue_table_are_moved_in_order() {
        let store = Store::open_in_memory().unwrap();
        for id in ["old1", "old2"] {
            store
                .conn
                .execute(
                    "INSERT INTO queue (event_id, body, enqueued_at) VALUES (?1, '{}', 'then')",
                    [id],
                )
                .unwrap();
        }
        let queue = Queue::open_in_memory().unwrap();
        queue.enqueue(&[event("new")], "now").unwrap();
        assert_eq!(queue.adopt_legacy(&store).unwrap(), 2);
        assert_eq!(ids(&queue.peek(None, 10).unwrap()), ["new", "old1", "old2"]);
        assert!(store.legacy_queue().unwrap().is_empty());
        assert_eq!(queue.adopt_legacy(&store).unwrap(), 0);
    }
}

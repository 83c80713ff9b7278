//! The daemon's queue on a thread of its own, a batch ahead of the engine:
//! while the engine works on one batch, the thread reads the next one and
//! takes the last one off the queue, so that between two batches the
//! engine waits for neither.
//!
//! Reading ahead is safe because queue entries never change once written
//! and are numbered in commit order: the entries after a sequence number
//! read now are the first of those read later. A batch read ahead may be
//! shorter than one read later (a producer wrote meanwhile), which only
//! leaves the rest to the next batch; an empty one is read again, so an
//! idle daemon or a drain never misses entries written while it worked.
//! Taking entries off (`acknowledge_through`) may lag or be lost: the
//! position the daemon commits says what is done.

use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::{Queue, QueuePosition, Queued, Result};
use crate::store::{EventQueue, StoreError, Trouble};

type Job = Box<dyn FnOnce(&Queue) + Send>;

/// A batch being read ahead: the entries after `after`, at most `limit`.
struct Ahead {
    after: i64,
    limit: usize,
    answer: Receiver<Result<Vec<Queued>>>,
}

pub struct QueueAhead {
    identity: String,
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    ahead: RefCell<Option<Ahead>>,
}

impl QueueAhead {
    pub fn start(queue: Queue) -> std::io::Result<QueueAhead> {
        let identity = queue.identity().to_string();
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("inboxd-queue".into())
            .spawn(move || {
                for job in inbox {
                    job(&queue);
                }
            })?;
        Ok(QueueAhead {
            identity,
            jobs: Some(jobs),
            thread: Some(thread),
            ahead: RefCell::new(None),
        })
    }

    fn send(&self, job: impl FnOnce(&Queue) + Send + 'static) -> Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Box::new(job)).map_err(|_| stopped())
    }

    /// Runs `job` on the thread; its answer comes on the receiver.
    fn ask<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Queue) -> T + Send + 'static,
    ) -> Result<Receiver<T>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(move |queue| {
            let _ = reply.send(job(queue));
        })?;
        Ok(answer)
    }

    fn read(&self, after: i64, limit: usize) -> Result<Receiver<Result<Vec<Queued>>>> {
        self.ask(move |queue| queue.peek_after(after, limit))
    }

    /// The batch read ahead for exactly this request, if there is one and
    /// it is not empty.
    fn take_ahead(&self, after: i64, limit: usize) -> Option<Vec<Queued>> {
        let ahead = self.ahead.borrow_mut().take()?;
        if ahead.after != after || ahead.limit != limit {
            return None;
        }
        match ahead.answer.recv() {
            Ok(Ok(batch)) if !batch.is_empty() => Some(batch),
            _ => None,
        }
    }

    fn first_after(&self, position: Option<&QueuePosition>) -> i64 {
        match position {
            Some(p) if p.queue == self.identity => p.seq,
            _ => 0,
        }
    }
}

impl EventQueue for QueueAhead {
    fn peek(&self, position: Option<&QueuePosition>, limit: usize) -> Result<Vec<Queued>> {
        let after = self.first_after(position);
        let batch = match self.take_ahead(after, limit) {
            Some(batch) => batch,
            None => self.read(after, limit)?.recv().map_err(|_| stopped())??,
        };
        if let Some(last) = batch.last() {
            let answer = self.read(last.seq, limit)?;
            *self.ahead.borrow_mut() = Some(Ahead {
                after: last.seq,
                limit,
                answer,
            });
        }
        Ok(batch)
    }

    fn position_at(&self, seq: i64) -> QueuePosition {
        QueuePosition {
            queue: self.identity.clone(),
            seq,
        }
    }

    /// Sent without waiting: a failure is only logged, and the next
    /// acknowledgement takes those entries off too.
    fn acknowledge_through(&self, seq: i64) -> Result<()> {
        self.send(move |queue| {
            if let Err(e) = queue.acknowledge_through(seq) {
                tracing::debug!("processed events left in the queue for now: {e}");
            }
        })
    }

    fn backlog(&self, position: Option<&QueuePosition>) -> Result<(u64, Option<String>)> {
        let position = position.cloned();
        self.ask(move |queue| queue.backlog(position.as_ref()))?
            .recv()
            .map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::backend(
        Trouble::Other,
        "the queue's reading thread stopped (a bug: the log says why)",
    )
}

impl Drop for QueueAhead {
    /// Takes what was acknowledged off the queue, then closes it.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Event;

    fn event(id: &str) -> Event {
        serde_json::from_str(&format!(
            r#"{{"id":"{id}","type":"conversation.created","conversation":"c-{id}"}}"#
        ))
        .unwrap()
    }

    fn ids(batch: &[Queued]) -> Vec<&str> {
        batch.iter().map(|q| q.event_id.as_str()).collect()
    }

    fn enqueue(producer: &Queue, ids: &[&str]) {
        let events: Vec<Event> = ids.iter().map(|id| event(id)).collect();
        producer.enqueue(&events, "2026-01-01T00:00:00Z").unwrap();
    }

    #[test]
    fn batches_follow_each_other_and_entries_written_meanwhile_are_not_missed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let producer = Queue::open(&path, Default::default()).unwrap();
        enqueue(&producer, &["a", "b", "c"]);
        let queue = QueueAhead::start(Queue::open(&path, Default::default()).unwrap()).unwrap();
        let first = queue.peek(None, 2).unwrap();
        assert_eq!(ids(&first), ["a", "b"]);
        // Read ahead now: "c" only.
        std::thread::sleep(std::time::Duration::from_millis(50));
        enqueue(&producer, &["d"]);
        let at_b = queue.position_at(first[1].seq);
        let second = queue.peek(Some(&at_b), 2).unwrap();
        assert_eq!(ids(&second), ["c"], "the batch read ahead");
        let at_c = queue.position_at(second[0].seq);
        // Read ahead after "d" was written.
        assert_eq!(ids(&queue.peek(Some(&at_c), 2).unwrap()), ["d"]);
        let at_d = queue.position_at(second[0].seq + 1);
        // Read ahead: nothing. Written meanwhile: "e", which a batch read
        // ahead empty does not hide.
        std::thread::sleep(std::time::Duration::from_millis(50));
        enqueue(&producer, &["e"]);
        assert_eq!(ids(&queue.peek(Some(&at_d), 2).unwrap()), ["e"]);
    }

    #[test]
    fn a_request_other_than_the_one_read_ahead_reads_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let producer = Queue::open(&path, Default::default()).unwrap();
        enqueue(&producer, &["a", "b", "c", "d"]);
        let queue = QueueAhead::start(Queue::open(&path, Default::default()).unwrap()).unwrap();
        let first = queue.peek(None, 2).unwrap();
        // The same position again (a batch run again), and a smaller limit
        // (an event run alone after a crash).
        assert_eq!(ids(&queue.peek(None, 2).unwrap()), ["a", "b"]);
        assert_eq!(ids(&queue.peek(None, 1).unwrap()), ["a"]);
        let at_a = queue.position_at(first[0].seq);
        assert_eq!(ids(&queue.peek(Some(&at_a), 3).unwrap()), ["b", "c", "d"]);
    }

    #[test]
    fn acknowledged_entries_are_off_the_queue_once_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let producer = Queue::open(&path, Default::default()).unwrap();
        enqueue(&producer, &["a", "b", "c"]);
        let queue = QueueAhead::start(Queue::open(&path, Default::default()).unwrap()).unwrap();
        let batch = queue.peek(None, 2).unwrap();
        queue.acknowledge_through(batch[1].seq).unwrap();
        let at_b = queue.position_at(batch[1].seq);
        assert_eq!(queue.backlog(Some(&at_b)).unwrap().0, 1);
        drop(queue);
        assert_eq!(ids(&producer.peek(None, 10).unwrap()), ["c"]);
    }
}

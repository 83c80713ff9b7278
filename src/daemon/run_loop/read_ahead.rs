//! The next batch, read from the queue while the writing thread commits
//! the last one, with which of its events are done: the engine used to
//! wait out each commit (4-5 ms a batch of 4,096 events), then read the
//! next batch, then wait while the writing thread looked up its events.

use crate::engine::Processor;
use crate::id_map::IdMap;
use crate::store::{EventQueue, QueuePosition, Queued};

/// Entries read after a position, before it was committed.
pub struct ReadAhead {
    after: QueuePosition,
    entries: Vec<Queued>,
    /// Whether each entry's event is done (`Processor::done_ahead`).
    done: IdMap<String, bool>,
}

impl ReadAhead {
    /// Reads ahead after `after`, while `processor`'s batch commits;
    /// nothing if the queue or the store cannot be read now (the next batch
    /// reads them again, and says why if it still fails).
    pub fn read(
        queue: &dyn EventQueue,
        processor: &Processor,
        after: QueuePosition,
        limit: usize,
    ) -> Option<ReadAhead> {
        let entries = queue.peek(Some(&after), limit).ok()?;
        let ids: Vec<&str> = entries.iter().map(|q| q.event_id.as_str()).collect();
        let done = processor.done_ahead(&ids).ok()?;
        Some(ReadAhead {
            after,
            entries,
            done,
        })
    }

    /// The entries and which are done, if they follow `position` and there
    /// are some: an empty read may be stale, since events may have been
    /// queued since.
    pub fn take_after(
        self,
        position: Option<&QueuePosition>,
    ) -> Option<(Vec<Queued>, IdMap<String, bool>)> {
        (position == Some(&self.after) && !self.entries.is_empty())
            .then_some((self.entries, self.done))
    }
}

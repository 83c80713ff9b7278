//! The next batch, read from the queue while the writing thread commits
//! the last one: the engine used to wait out each commit (4-5 ms a batch
//! of 4,096 events) and then read the next batch.

use crate::store::{EventQueue, QueuePosition, Queued};

/// Entries read after a position, before it was committed.
pub struct ReadAhead {
    after: QueuePosition,
    entries: Vec<Queued>,
}

impl ReadAhead {
    /// Reads ahead after `after`; nothing if the queue cannot be read now
    /// (the next batch reads it again, and says why if it still fails).
    pub fn read(queue: &dyn EventQueue, after: QueuePosition, limit: usize) -> Option<ReadAhead> {
        let entries = queue.peek(Some(&after), limit).ok()?;
        Some(ReadAhead { after, entries })
    }

    /// The entries, if they follow `position` and there are some: an empty
    /// read may be stale, since events may have been queued since.
    pub fn take_after(self, position: Option<&QueuePosition>) -> Option<Vec<Queued>> {
        (position == Some(&self.after) && !self.entries.is_empty()).then_some(self.entries)
    }
}

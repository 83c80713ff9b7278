//! Rows of the event log put back with their event: audit rows and
//! notifications are read in order beside the events they belong to, by
//! every backend alike.

use std::iter::Peekable;

use crate::domain::change::Change;
use crate::domain::feed::{feed_changes, FeedEntry, Notification};

/// Audit rows in order (`processed` seq, change, fields' text), handed
/// out event by event.
pub struct ChangesByEvent {
    changes: Peekable<std::vec::IntoIter<(i64, Change)>>,
}

impl ChangesByEvent {
    pub fn new(audit: Vec<(i64, Change, String)>) -> ChangesByEvent {
        ChangesByEvent {
            changes: crate::store::audit_fields::expand(audit)
                .into_iter()
                .peekable(),
        }
    }

    /// The changes of the event `seq`; those of events before it that were
    /// not asked for are passed over.
    pub fn of(&mut self, seq: i64) -> Vec<Change> {
        let mut own = Vec::new();
        while let Some((processed, change)) = self.changes.next_if(|(p, _)| *p <= seq) {
            if processed == seq {
                own.push(change);
            }
        }
        own
    }
}

/// Feed entries (in cursor order) with their changes and notifications.
pub fn attach(
    mut entries: Vec<FeedEntry>,
    audit: Vec<(i64, Change, String)>,
    notifications: Vec<(i64, Notification)>,
) -> Vec<FeedEntry> {
    let mut changes = ChangesByEvent::new(audit);
    let mut notifications = notifications.into_iter().peekable();
    for entry in &mut entries {
        entry.changes = feed_changes(&changes.of(entry.cursor));
        while let Some((seq, n)) = notifications.next_if(|(seq, _)| *seq <= entry.cursor) {
            if seq == entry.cursor {
                entry.notifications.push(n);
            }
        }
    }
    entries
}

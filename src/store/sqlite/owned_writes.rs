//! An event's writes as owned values, to be sent to the thread that writes
//! them (`write_behind.rs`) while the engine goes on with its own copies.

use std::borrow::Cow;

use crate::domain::change::Change;
use crate::domain::feed::Notification;
use crate::domain::outcome::Outcome;
use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey};
use crate::store::{Recorded, StateWrites};

/// `StateWrites`, owned.
pub(super) struct OwnedWrites {
    conversations: Vec<Conversation>,
    tickets: Vec<Ticket>,
    associations: Vec<(String, String)>,
    blocks: Vec<String>,
    timers_set: Vec<Timer>,
    timers_removed: Vec<TimerKey>,
}

impl From<&StateWrites<'_>> for OwnedWrites {
    fn from(w: &StateWrites) -> Self {
        OwnedWrites {
            conversations: w.conversations.iter().map(|&c| c.clone()).collect(),
            tickets: w.tickets.iter().map(|&t| t.clone()).collect(),
            associations: w.associations.to_vec(),
            blocks: w.blocks.to_vec(),
            timers_set: w.timers_set.clone(),
            timers_removed: w.timers_removed.iter().map(|&k| k.clone()).collect(),
        }
    }
}

impl OwnedWrites {
    pub fn as_writes(&self) -> StateWrites<'_> {
        StateWrites {
            conversations: self.conversations.iter().collect(),
            tickets: self.tickets.iter().collect(),
            associations: &self.associations,
            blocks: &self.blocks,
            timers_set: self.timers_set.clone(),
            timers_removed: self.timers_removed.iter().collect(),
        }
    }
}

/// `Recorded`, owned.
pub(super) struct OwnedRecorded {
    queue_seq: Option<i64>,
    event_id: String,
    event_type: String,
    body: String,
    outcome: Outcome,
    reason: Option<String>,
    ruleset: String,
    processed_at: String,
    changes: Vec<Change>,
    notifications: Vec<Notification>,
}

impl From<Recorded<'_>> for OwnedRecorded {
    fn from(r: Recorded) -> Self {
        OwnedRecorded {
            queue_seq: r.queue_seq,
            event_id: r.event_id.to_string(),
            event_type: r.event_type.to_string(),
            body: r.body.to_string(),
            outcome: r.outcome,
            reason: r.reason.map(str::to_string),
            ruleset: r.ruleset.to_string(),
            processed_at: r.processed_at.to_string(),
            changes: r.changes.into_owned(),
            notifications: r.notifications.into_owned(),
        }
    }
}

impl OwnedRecorded {
    pub fn as_recorded(&self) -> Recorded<'_> {
        Recorded {
            queue_seq: self.queue_seq,
            event_id: &self.event_id,
            event_type: &self.event_type,
            body: &self.body,
            outcome: self.outcome,
            reason: self.reason.as_deref(),
            ruleset: &self.ruleset,
            processed_at: &self.processed_at,
            changes: Cow::Borrowed(&self.changes),
            notifications: Cow::Borrowed(&self.notifications),
        }
    }
}

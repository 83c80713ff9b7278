//! The state rows written in the open transaction but not committed yet,
//! laid over what a second connection reads (the last commit): the engine
//! reads the state as if from the writing connection, while that one is
//! busy writing on another thread (`write_behind.rs`).

use std::collections::BTreeMap;

use crate::id_map::{IdMap, IdSet};

use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::{Result, StateWrites};

#[derive(Default)]
pub(super) struct Pending {
    conversations: IdMap<String, Conversation>,
    tickets: IdMap<String, Ticket>,
    /// Associations made: a conversation's ticket...
    ticket_of: IdMap<String, String>,
    /// ...and a ticket's new conversations, in the order they were made.
    conversations_of: IdMap<String, Vec<String>>,
    blocked: IdSet<String>,
    /// Timers started (`Some(due)`) or stopped (`None`).
    timers: BTreeMap<TimerKey, Option<String>>,
}

/// Later than every due time (they start with a digit).
const NEVER: &str = "~";

impl Pending {
    /// Notes an event's rows as written.
    pub fn note(&mut self, writes: &StateWrites) {
        for c in &writes.conversations {
            self.conversations.insert(c.id.clone(), (*c).clone());
        }
        for t in &writes.tickets {
            self.tickets.insert(t.id.clone(), (*t).clone());
        }
        for (ticket, conversation) in writes.associations {
            self.ticket_of.insert(conversation.clone(), ticket.clone());
            (self.conversations_of.entry(ticket.clone()).or_default()).push(conversation.clone());
        }
        self.blocked.extend(writes.blocks.iter().cloned());
        // In the order the store writes them: started, then stopped.
        for timer in &writes.timers_set {
            self.timers.insert(timer.key(), Some(timer.due.clone()));
        }
        for &key in &writes.timers_removed {
            self.timers.insert(key.clone(), None);
        }
    }

    /// At the end of the transaction, committed or not.
    pub fn clear(&mut self) {
        *self = Pending::default();
    }

    /// A conversation as the writing connection would read it, `committed`
    /// being what the last commit holds.
    pub fn conversation(
        &self,
        id: &str,
        committed: impl FnOnce() -> Result<Option<Conversation>>,
    ) -> Result<Option<Conversation>> {
        let mut conversation = match self.conversations.get(id) {
            Some(written) => Some(written.clone()),
            None => committed()?,
        };
        if let (Some(c), Some(ticket)) = (&mut conversation, self.ticket_of.get(id)) {
            c.ticket = Some(ticket.clone());
        }
        Ok(conversation)
    }

    /// A ticket as the writing connection would read it: its conversations
    /// in association order, the new ones last.
    pub fn ticket(
        &self,
        id: &str,
        committed: impl FnOnce() -> Result<Option<Ticket>>,
    ) -> Result<Option<Ticket>> {
        let mut ticket = match self.tickets.get(id) {
            Some(written) => Some(written.clone()),
            None => committed()?,
        };
        if let (Some(t), Some(new)) = (&mut ticket, self.conversations_of.get(id)) {
            for conversation in new {
                if !t.conversations.contains(conversation) {
                    t.conversations.push(conversation.clone());
                }
            }
        }
        Ok(ticket)
    }

    pub fn is_blocked(
        &self,
        contact: &str,
        committed: impl FnOnce() -> Result<bool>,
    ) -> Result<bool> {
        if self.blocked.contains(contact) {
            return Ok(true);
        }
        committed()
    }
}

/// Timers, as the writing connection would read them.
impl Pending {
    pub fn timer(
        &self,
        key: &TimerKey,
        committed: impl FnOnce() -> Result<Option<String>>,
    ) -> Result<Option<String>> {
        match self.timers.get(key) {
            Some(due) => Ok(due.clone()),
            None => committed(),
        }
    }

    /// A record's timers, by name.
    pub fn timers_of(
        &self,
        record: TimerRecord,
        id: &str,
        committed: impl FnOnce() -> Result<Vec<Timer>>,
    ) -> Result<Vec<Timer>> {
        let mut timers = self.unchanged(committed()?);
        timers.extend(self.started(|key| key.record == record && key.id == id));
        timers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(timers)
    }

    /// Up to `limit` timers due by `until`, in firing order; `committed`
    /// gives the first `n` of the last commit's.
    pub fn due_timers(
        &self,
        until: &str,
        limit: usize,
        committed: impl FnOnce(usize) -> Result<Vec<Timer>>,
    ) -> Result<Vec<Timer>> {
        // Enough of them that `limit` are left once those changed here
        // are taken out.
        let mut timers = self.unchanged(committed(limit.saturating_add(self.timers.len()))?);
        timers.extend(self.started(|_| true).filter(|t| t.due.as_str() <= until));
        timers.sort_by(|a, b| {
            (&a.due, a.record, &a.id, &a.name).cmp(&(&b.due, b.record, &b.id, &b.name))
        });
        timers.truncate(limit);
        Ok(timers)
    }

    /// `committed(until, n)` gives the first `n` of the last commit's
    /// timers due by `until`.
    pub fn next_timer_due(
        &self,
        committed: impl FnOnce(&str, usize) -> Result<Vec<Timer>>,
    ) -> Result<Option<String>> {
        let first = self.due_timers(NEVER, 1, |n| committed(NEVER, n))?;
        Ok(first.into_iter().next().map(|t| t.due))
    }

    /// Committed timers this transaction did not start again or stop.
    fn unchanged(&self, committed: Vec<Timer>) -> Vec<Timer> {
        (committed.into_iter())
            .filter(|t| !self.timers.contains_key(&t.key()))
            .collect()
    }

    fn started<'a>(
        &'a self,
        which: impl Fn(&TimerKey) -> bool + 'a,
    ) -> impl Iterator<Item = Timer> + 'a {
        (self.timers.iter())
            .filter(move |(key, _)| which(key))
            .filter_map(|(key, due)| {
                Some(Timer {
                    record: key.record,
                    id: key.id.clone(),
                    name: key.name.clone(),
                    due: due.clone()?,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_records_hide_the_committed_ones_and_others_read_through() {
        let mut pending = Pending::default();
        let mut c1 = Conversation::new("c1");
        c1.owner = Some("ann".into());
        pending.note(&StateWrites {
            conversations: vec![&c1],
            ..Default::default()
        });
        let read = pending
            .conversation("c1", || Ok(Some(Conversation::new("c1"))))
            .unwrap();
        assert_eq!(read.unwrap().owner.as_deref(), Some("ann"));
        let other = pending.conversation("c2", || Ok(None)).unwrap();
        assert_eq!(other, None);
        pending.clear();
        let read = pending
            .conversation("c1", || Ok(Some(Conversation::new("c1"))))
            .unwrap();
        assert_eq!(read.unwrap().owner, None);
    }

    /// An association alone writes no record row: its two records must
    /// still read with it, whether they were written or are committed.
    #[test]
    fn associations_show_on_both_records_after_the_committed_ones() {
        let mut pending = Pending::default();
        let associations = [
            ("t1".to_string(), "c2".to_string()),
            ("t1".to_string(), "c3".to_string()),
        ];
        pending.note(&StateWrites {
            associations: &associations,
            ..Default::default()
        });
        let t1 = pending
            .ticket("t1", || Ok(Some(Ticket::with_conversations("t1", &["c1"]))))
            .unwrap();
        assert_eq!(t1.unwrap().conversations, ["c1", "c2", "c3"]);
        let c3 = pending
            .conversation("c3", || Ok(Some(Conversation::new("c3"))))
            .unwrap();
        assert_eq!(c3.unwrap().ticket.as_deref(), Some("t1"));

        // The ticket written with its conversations already: none twice.
        let written = Ticket::with_conversations("t1", &["c1", "c2"]);
        pending.note(&StateWrites {
            tickets: vec![&written],
            ..Default::default()
        });
        let t1 = pending.ticket("t1", || unreachable!()).unwrap();
        assert_eq!(t1.unwrap().conversations, ["c1", "c2", "c3"]);
    }

    fn timer(id: &str, name: &str, due: &str) -> Timer {
        Timer {
            record: TimerRecord::Ticket,
            id: id.into(),
            name: name.into(),
            due: due.into(),
        }
    }

    /// The committed timers (t1/a due 03, t1/b due 05, t2/a due 04) with,
    /// in the transaction, t1/a started again for 06, t2/a stopped, t3/a
    /// started for 01.
    fn timers_changed() -> (Pending, Vec<Timer>) {
        let committed = vec![
            timer("t1", "a", "2026-01-03T00:00:00Z"),
            timer("t2", "a", "2026-01-04T00:00:00Z"),
            timer("t1", "b", "2026-01-05T00:00:00Z"),
        ];
        let mut pending = Pending::default();
        let stopped = committed[1].key();
        pending.note(&StateWrites {
            timers_set: vec![
                timer("t1", "a", "2026-01-06T00:00:00Z"),
                timer("t3", "a", "2026-01-01T00:00:00Z"),
            ],
            timers_removed: vec![&stopped],
            ..Default::default()
        });
        (pending, committed)
    }

    #[test]
    fn timers_started_or_stopped_hide_the_committed_ones() {
        let (pending, committed) = timers_changed();
        let first = |n: usize| Ok(committed.iter().take(n).cloned().collect());
        let due: Vec<String> = (pending.due_timers(NEVER, 10, first).unwrap().iter())
            .map(|t| format!("{}/{} {}", t.id, t.name, &t.due[8..10]))
            .collect();
        assert_eq!(due, ["t3/a 01", "t1/b 05", "t1/a 06"]);
        let due = pending
            .due_timers("2026-01-05T00:00:00Z", 10, first)
            .unwrap();
        assert_eq!(due.len(), 2);
        // Two committed ones overridden: still the first unchanged one.
        let one = pending
            .due_timers("2026-01-05T00:00:00Z", 1, first)
            .unwrap();
        assert_eq!(one[0].id, "t3");
        assert_eq!(
            pending.next_timer_due(|_, n| first(n)).unwrap().as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        let of_t1 = pending
            .timers_of(TimerRecord::Ticket, "t1", || {
                Ok(vec![committed[0].clone(), committed[2].clone()])
            })
            .unwrap();
        let of_t1: Vec<&str> = of_t1.iter().map(|t| &t.due[8..10]).collect();
        assert_eq!(of_t1, ["06", "05"]);
        let gone = pending
            .timer(&committed[1].key(), || unreachable!())
            .unwrap();
        assert_eq!(gone, None);
        let untouched = pending.timer(&committed[2].key(), || Ok(Some("x".into())));
        assert_eq!(untouched.unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn the_next_timer_skips_committed_ones_that_were_stopped() {
        let committed = [timer("t1", "a", "2026-01-03T00:00:00Z")];
        let mut pending = Pending::default();
        let key = committed[0].key();
        pending.note(&StateWrites {
            timers_removed: vec![&key],
            ..Default::default()
        });
        let first = |n: usize| Ok(committed.iter().take(n).cloned().collect());
        assert_eq!(pending.next_timer_due(|_, n| first(n)).unwrap(), None);
    }

    #[test]
    fn blocked_contacts_add_to_the_committed_ones() {
        let mut pending = Pending::default();
        let blocks = ["spam@x.com".to_string()];
        pending.note(&StateWrites {
            blocks: &blocks,
            ..Default::default()
        });
        assert!(pending.is_blocked("spam@x.com", || unreachable!()).unwrap());
        assert!(pending.is_blocked("old@x.com", || Ok(true)).unwrap());
        assert!(!pending.is_blocked("ann@x.com", || Ok(false)).unwrap());
    }
}

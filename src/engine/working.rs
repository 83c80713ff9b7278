//! The working state of one event: records read from the store on first use,
//! changed in memory, and written back only if the whole event succeeds.

use std::collections::BTreeSet;
use std::rc::Rc;

use serde_json::Value;

use crate::domain::change::{Audited, Change, Entity};
use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::engine::state_cache::{Bounded, StateCache};
use crate::id_map::IdMap;
use crate::store::{EngineStore, StateWrites};

/// Which event, and which rule if any, is making a change.
#[derive(Debug, Clone)]
pub struct Cause {
    pub event: String,
    pub rule: Option<String>,
    /// How the event came about: `e6 → cascade-close → e6/1`.
    pub chain: String,
}

pub struct Working {
    store: Rc<dyn EngineStore>,
    /// What the store holds, kept across events.
    cache: StateCache,
    conversations: IdMap<String, Option<Conversation>>,
    tickets: IdMap<String, Option<Ticket>>,
    blocked: IdMap<String, bool>,
    /// Ids changed, to write at the end.
    dirty_conversations: BTreeSet<String>,
    dirty_tickets: BTreeSet<String>,
    new_associations: Vec<(String, String)>,
    new_blocks: Vec<String>,
    /// Timers read or changed by this event (`None`: not pending); not
    /// kept between events, so that the timeline may remove them itself.
    timers: IdMap<TimerKey, Option<String>>,
    dirty_timers: BTreeSet<TimerKey>,
    changes: Vec<Change>,
}

impl Working {
    pub fn new(store: Rc<dyn EngineStore>) -> Self {
        Working {
            store,
            cache: StateCache::default(),
            conversations: IdMap::default(),
            tickets: IdMap::default(),
            blocked: IdMap::default(),
            dirty_conversations: BTreeSet::new(),
            dirty_tickets: BTreeSet::new(),
            new_associations: Vec::new(),
            new_blocks: Vec::new(),
            timers: IdMap::default(),
            dirty_timers: BTreeSet::new(),
            changes: Vec::new(),
        }
    }

    /// Forgets the event's working state, for the next event.
    /// Cleared in place: the maps keep their room, which the next event
    /// would otherwise allocate again.
    pub fn reset(&mut self) {
        self.cache.check(self.store.generation());
        let Working {
            store: _,
            cache: _,
            conversations,
            tickets,
            blocked,
            dirty_conversations,
            dirty_tickets,
            new_associations,
            new_blocks,
            timers,
            dirty_timers,
            changes,
        } = self;
        conversations.clear();
        tickets.clear();
        blocked.clear();
        dirty_conversations.clear();
        dirty_tickets.clear();
        new_associations.clear();
        new_blocks.clear();
        timers.clear();
        dirty_timers.clear();
        changes.clear();
    }

    /// Notes that the event's working state is now in the store (`flush`
    /// went through), so later events need not read it back. The working
    /// state is spent: only `reset` may follow.
    pub fn keep_as_stored(&mut self) {
        self.cache.check(self.store.generation());
        for (id, c) in self.conversations.drain() {
            self.cache.conversations.learn(id, c);
        }
        for (id, t) in self.tickets.drain() {
            self.cache.tickets.learn(id, t);
        }
        for (contact, blocked) in self.blocked.drain() {
            self.cache.blocked.learn(contact, blocked);
        }
    }

    pub fn conversation(&mut self, id: &str) -> crate::store::Result<Option<Conversation>> {
        look_up(
            &mut self.conversations,
            &mut self.cache.conversations,
            id,
            || self.store.conversation(id),
        )
    }

    pub fn ticket(&mut self, id: &str) -> crate::store::Result<Option<Ticket>> {
        look_up(&mut self.tickets, &mut self.cache.tickets, id, || {
            self.store.ticket(id)
        })
    }

    pub fn is_blocked(&mut self, contact: &str) -> crate::store::Result<bool> {
        look_up(&mut self.blocked, &mut self.cache.blocked, contact, || {
            self.store.is_blocked(contact)
        })
    }

    /// Replaces a conversation (or creates it), recording each changed field.
    /// Returns whether anything changed.
    pub fn put_conversation(&mut self, after: Conversation, cause: &Cause) -> bool {
        let before = self.conversations.remove(&after.id).flatten();
        let (changed, stored) = self.record(
            Entity::Conversation,
            &after.id,
            before.as_ref(),
            &after,
            cause,
        );
        if stored {
            self.dirty_conversations.insert(after.id.clone());
        }
        self.conversations.insert(after.id.clone(), Some(after));
        changed
    }

    /// Replaces a ticket (or creates it), recording each changed field.
    pub fn put_ticket(&mut self, after: Ticket, cause: &Cause) -> bool {
        let before = self.tickets.remove(&after.id).flatten();
        let (changed, stored) =
            self.record(Entity::Ticket, &after.id, before.as_ref(), &after, cause);
        if stored {
            self.dirty_tickets.insert(after.id.clone());
        }
        // Even unrecorded fields (the conversations list) must be seen by
        // what runs next.
        self.tickets.insert(after.id.clone(), Some(after));
        changed
    }

    /// Notes a new association to write; the records' own fields are
    /// updated through `put_*`.
    pub fn associate(&mut self, ticket: &str, conversation: &str) {
        self.new_associations
            .push((ticket.to_string(), conversation.to_string()));
    }

    /// Adds a contact to the blocklist; returns false if it was on it.
    pub fn block(&mut self, contact: &str, cause: &Cause) -> crate::store::Result<bool> {
        if self.is_blocked(contact)? {
            return Ok(false);
        }
        self.blocked.insert(contact.to_string(), true);
        self.new_blocks.push(contact.to_string());
        self.changes.push(Change {
            entity: Entity::BlockedContact,
            id: contact.to_string(),
            field: "blocked".into(),
            before: Value::Bool(false),
            after: Value::Bool(true),
            event: cause.event.clone(),
            rule: cause.rule.clone(),
            chain: cause.chain.clone(),
        });
        Ok(true)
    }

    /// When a timer is due, if it is pending.
    pub fn timer(&mut self, key: &TimerKey) -> crate::store::Result<Option<String>> {
        if let Some(due) = self.timers.get(key) {
            return Ok(due.clone());
        }
        let due = self.store.timer(key)?;
        self.timers.insert(key.clone(), due.clone());
        Ok(due)
    }

    /// Starts a timer (again: the new due time replaces the old); returns
    /// whether anything changed.
    pub fn start_timer(
        &mut self,
        key: &TimerKey,
        due: String,
        cause: &Cause,
    ) -> crate::store::Result<bool> {
        let before = self.timer(key)?;
        if before.as_deref() == Some(due.as_str()) {
            return Ok(false);
        }
        self.push_change(
            Entity::Timer,
            &key.path(),
            "due",
            json_text(before),
            Value::String(due.clone()),
            cause,
        );
        self.timers.insert(key.clone(), Some(due));
        self.dirty_timers.insert(key.clone());
        Ok(true)
    }

    /// Stops a timer; returns whether it was pending.
    pub fn stop_timer(&mut self, key: &TimerKey, cause: &Cause) -> crate::store::Result<bool> {
        let Some(before) = self.timer(key)? else {
            return Ok(false);
        };
        self.push_change(
            Entity::Timer,
            &key.path(),
            "due",
            Value::String(before),
            Value::Null,
            cause,
        );
        self.timers.insert(key.clone(), None);
        self.dirty_timers.insert(key.clone());
        Ok(true)
    }

    /// Stops every timer of a record (deleted, trashed).
    pub fn stop_timers_of(
        &mut self,
        record: TimerRecord,
        id: &str,
        cause: &Cause,
    ) -> crate::store::Result<()> {
        let mut keys: BTreeSet<TimerKey> = (self.store.timers_of(record, id)?.iter())
            .map(Timer::key)
            .collect();
        keys.extend(
            (self.timers.keys())
                .filter(|k| k.record == record && k.id == id)
                .cloned(),
        );
        for key in keys {
            self.stop_timer(&key, cause)?;
        }
        Ok(())
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The rows the event's changes write to the store.
    pub fn writes(&self) -> StateWrites<'_> {
        let conversations = (self.dirty_conversations.iter())
            .filter_map(|id| self.conversations.get(id)?.as_ref())
            .collect();
        let tickets = (self.dirty_tickets.iter())
            .filter_map(|id| self.tickets.get(id)?.as_ref())
            .collect();
        let (mut timers_set, mut timers_removed) = (Vec::new(), Vec::new());
        for key in &self.dirty_timers {
            match self.timers.get(key) {
                Some(Some(due)) => timers_set.push(Timer {
                    record: key.record,
                    id: key.id.clone(),
                    name: key.name.clone(),
                    due: due.clone(),
                }),
                _ => timers_removed.push(key),
            }
        }
        StateWrites {
            conversations,
            tickets,
            associations: &self.new_associations,
            blocks: &self.new_blocks,
            timers_set,
            timers_removed,
        }
    }

    /// Records the changes; returns whether anything changed, and whether
    /// the record's own row must be written.
    fn record<T: Audited>(
        &mut self,
        entity: Entity,
        id: &str,
        before: Option<&T>,
        after: &T,
        cause: &Cause,
    ) -> (bool, bool) {
        let Some(before) = before else {
            // A new record lists the fields it was given, not its blanks.
            self.push_change(entity, id, "created", Value::Null, Value::Bool(true), cause);
            for (field, value) in after.fields() {
                if !is_blank(&value) {
                    self.push_change(entity, id, &field, Value::Null, value, cause);
                }
            }
            return (true, true);
        };
        let changes = after.changes_from(before);
        let changed = !changes.is_empty();
        let stored = changes.iter().any(|(field, _, _)| T::is_stored(field));
        for (field, old, new) in changes {
            self.push_change(entity, id, &field, old, new, cause);
        }
        (changed, stored)
    }

    fn push_change(
        &mut self,
        entity: Entity,
        id: &str,
        field: &str,
        before: Value,
        after: Value,
        cause: &Cause,
    ) {
        self.changes.push(Change {
            entity,
            id: id.to_string(),
            field: field.to_string(),
            before,
            after,
            event: cause.event.clone(),
            rule: cause.rule.clone(),
            chain: cause.chain.clone(),
        });
    }
}

/// A record from the event's working state, else from what the store is
/// known to hold, else read from the store.
fn look_up<T: Clone>(
    working: &mut IdMap<String, T>,
    stored: &mut Bounded<T>,
    id: &str,
    read: impl FnOnce() -> crate::store::Result<T>,
) -> crate::store::Result<T> {
    if let Some(found) = working.get(id) {
        return Ok(found.clone());
    }
    let found = match stored.get(id) {
        Some(known) => known.clone(),
        None => {
            let read = read()?;
            stored.learn(id.to_string(), read.clone());
            read
        }
    };
    working.insert(id.to_string(), found.clone());
    Ok(found)
}

fn json_text(text: Option<String>) -> Value {
    text.map_or(Value::Null, Value::String)
}

/// Whether a field of a new record is blank, so not worth listing.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::state::ConversationStatus;

    fn cause() -> Cause {
        Cause {
            event: "e1".into(),
            rule: None,
            chain: "e1".into(),
        }
    }

    fn ticket(conversations: &[&str]) -> Ticket {
        Ticket::with_conversations("T", conversations)
    }

    #[test]
    fn later_reads_see_every_change_even_unrecorded_ones() {
        let mut w = Working::new(Rc::new(crate::store::MemoryStore::new()));
        assert!(w.put_ticket(ticket(&["c1"]), &cause()));
        // Adding a conversation is recorded on the conversation, not here...
        assert!(!w.put_ticket(ticket(&["c1", "c2"]), &cause()));
        // ...but what runs next sees it.
        assert_eq!(w.ticket("T").unwrap().unwrap().conversations, ["c1", "c2"]);
    }

    #[test]
    fn an_association_alone_does_not_rewrite_the_conversation_row() {
        let mut w = Working::new(Rc::new(crate::store::MemoryStore::new()));
        let mut c = Conversation::new("c1");
        w.put_conversation(c.clone(), &cause());
        w.dirty_conversations.clear();
        c.ticket = Some("T".into());
        assert!(w.put_conversation(c.clone(), &cause()));
        assert!(w.dirty_conversations.is_empty());
        c.owner = Some("ann".into());
        w.put_conversation(c, &cause());
        assert!(w.dirty_conversations.contains("c1"));
    }

    #[test]
    fn changes_are_recorded_field_by_field() {
        let mut w = Working::new(Rc::new(crate::store::MemoryStore::new()));
        let mut c = Conversation::new("c1");
        w.put_conversation(c.clone(), &cause());
        c.status = ConversationStatus::Closed;
        c.owner = Some("ann".into());
        assert!(w.put_conversation(c.clone(), &cause()));
        assert!(!w.put_conversation(c, &cause()));
        let fields: Vec<&str> = w.changes().iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["created", "status", "status", "owner"]);
    }
}

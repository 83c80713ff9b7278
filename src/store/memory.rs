//! A store in memory: for rule tests and engine tests, and for dry-runs,
//! laid over a snapshot of another store (its writes stay here, its reads
//! fall through to the snapshot for what it has not written).
//!
//! Transactions are copies: `begin` keeps the data as it was, `rollback`
//! puts it back. Nothing is durable.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;

use crate::domain::state::{Conversation, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::{
    DoneEvents, OutcomeRow, Persist, Recorded, RecordedConfig, Result, Snapshot, StateRead,
    StateWrites, Transactions,
};

#[derive(Clone, Default)]
struct Data {
    conversations: BTreeMap<String, Conversation>,
    tickets: BTreeMap<String, Ticket>,
    blocked: BTreeSet<String>,
    done: HashSet<String>,
    outcomes: Vec<OutcomeRow>,
    rulesets: BTreeMap<String, RecordedConfig>,
    /// Timers by key; `None`: removed here (over a snapshot that has it).
    timers: BTreeMap<TimerKey, Option<String>>,
}

#[derive(Default)]
pub struct MemoryStore {
    /// What reads fall through to, if anything.
    base: Option<Rc<dyn Snapshot>>,
    data: RefCell<Data>,
    /// The data as it was when the open transaction began.
    before: RefCell<Option<Data>>,
    rollbacks: Cell<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store whose reads see `base` under what it writes itself; `base`
    /// is never written.
    pub fn over(base: Rc<dyn Snapshot>) -> MemoryStore {
        MemoryStore {
            base: Some(base),
            ..MemoryStore::default()
        }
    }

    /// The outcomes recorded here, in order.
    pub fn outcomes(&self) -> Vec<OutcomeRow> {
        self.data.borrow().outcomes.clone()
    }

    /// The config recorded for a ruleset version.
    pub fn recorded_ruleset(&self, version: &str) -> Option<RecordedConfig> {
        self.data.borrow().rulesets.get(version).cloned()
    }

    fn apply(&self, writes: &StateWrites) -> Result<()> {
        let mut data = self.data.borrow_mut();
        for c in &writes.conversations {
            data.conversations.insert(c.id.clone(), (*c).clone());
        }
        for t in &writes.tickets {
            data.tickets.insert(t.id.clone(), (*t).clone());
        }
        drop(data);
        for (ticket, conversation) in writes.associations {
            self.associate(ticket, conversation)?;
        }
        let mut data = self.data.borrow_mut();
        data.blocked.extend(writes.blocks.iter().cloned());
        for timer in &writes.timers_set {
            data.timers.insert(timer.key(), Some(timer.due.clone()));
        }
        for key in &writes.timers_removed {
            data.timers.insert((*key).clone(), None);
        }
        Ok(())
    }

    /// The snapshot's timers with this store's own over them, in firing order.
    fn merged_timers(
        &self,
        base: Vec<Timer>,
        keep: impl Fn(&TimerKey, &str) -> bool,
    ) -> Vec<Timer> {
        let mut all: BTreeMap<TimerKey, String> =
            base.into_iter().map(|t| (t.key(), t.due)).collect();
        for (key, due) in &self.data.borrow().timers {
            match due {
                Some(due) => all.insert(key.clone(), due.clone()),
                None => all.remove(key),
            };
        }
        let mut timers: Vec<Timer> = all
            .into_iter()
            .filter(|(key, due)| keep(key, due))
            .map(|(key, due)| Timer {
                record: key.record,
                id: key.id,
                name: key.name,
                due,
            })
            .collect();
        timers.sort_by(|a, b| (&a.due, a.key()).cmp(&(&b.due, b.key())));
        timers
    }

    /// Both sides of an association, as the SQLite store derives them from
    /// its one row.
    fn associate(&self, ticket: &str, conversation: &str) -> Result<()> {
        let found = (self.ticket(ticket)?, self.conversation(conversation)?);
        let mut data = self.data.borrow_mut();
        if let (Some(mut t), Some(mut c)) = found {
            if !t.conversations.iter().any(|id| id == conversation) {
                t.conversations.push(conversation.to_string());
            }
            c.ticket = Some(ticket.to_string());
            data.tickets.insert(t.id.clone(), t);
            data.conversations.insert(c.id.clone(), c);
        }
        Ok(())
    }
}

/// The records of `mine` over those of `base`, by id.
fn merged<T: Clone>(base: Vec<T>, mine: &BTreeMap<String, T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut all: BTreeMap<String, T> = base.into_iter().map(|r| (id(&r).to_string(), r)).collect();
    all.extend(mine.iter().map(|(k, v)| (k.clone(), v.clone())));
    all.into_values().collect()
}

impl StateRead for MemoryStore {
    fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        if let Some(c) = self.data.borrow().conversations.get(id) {
            return Ok(Some(c.clone()));
        }
        self.base.as_ref().map_or(Ok(None), |b| b.conversation(id))
    }

    fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        if let Some(t) = self.data.borrow().tickets.get(id) {
            return Ok(Some(t.clone()));
        }
        self.base.as_ref().map_or(Ok(None), |b| b.ticket(id))
    }

    fn is_blocked(&self, contact: &str) -> Result<bool> {
        if self.data.borrow().blocked.contains(contact) {
            return Ok(true);
        }
        self.base
            .as_ref()
            .map_or(Ok(false), |b| b.is_blocked(contact))
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.all_conversations())?;
        Ok(merged(base, &self.data.borrow().conversations, |c| &c.id))
    }

    fn all_tickets(&self) -> Result<Vec<Ticket>> {
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.all_tickets())?;
        Ok(merged(base, &self.data.borrow().tickets, |t| &t.id))
    }

    fn timer(&self, key: &TimerKey) -> Result<Option<String>> {
        if let Some(due) = self.data.borrow().timers.get(key) {
            return Ok(due.clone());
        }
        self.base.as_ref().map_or(Ok(None), |b| b.timer(key))
    }

    fn timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>> {
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.timers_of(record, id))?;
        Ok(self.merged_timers(base, |key, _| key.record == record && key.id == id))
    }

    fn due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>> {
        // Those of the snapshot that this store removed or moved may hide
        // later ones: ask it for all that are due.
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.due_timers(until, usize::MAX))?;
        let mut due = self.merged_timers(base, |_, due| due <= until);
        due.truncate(limit);
        Ok(due)
    }

    fn next_timer_due(&self) -> Result<Option<String>> {
        Ok(self.all_timers()?.into_iter().next().map(|t| t.due))
    }

    fn all_timers(&self) -> Result<Vec<Timer>> {
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.all_timers())?;
        Ok(self.merged_timers(base, |_, _| true))
    }

    fn blocked_contacts(&self) -> Result<Vec<String>> {
        let base = self
            .base
            .as_ref()
            .map_or(Ok(Vec::new()), |b| b.blocked_contacts())?;
        let mut all: BTreeSet<String> = base.into_iter().collect();
        all.extend(self.data.borrow().blocked.iter().cloned());
        Ok(all.into_iter().collect())
    }
}

impl DoneEvents for MemoryStore {
    fn is_done(&self, event_id: &str) -> Result<bool> {
        if self.data.borrow().done.contains(event_id) {
            return Ok(true);
        }
        self.base
            .as_ref()
            .map_or(Ok(false), |b| b.is_done(event_id))
    }

    fn done_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let mut done = match &self.base {
            Some(base) => base.done_among(ids)?,
            None => HashSet::new(),
        };
        let data = self.data.borrow();
        done.extend(
            ids.iter()
                .filter(|id| data.done.contains(**id))
                .map(|id| id.to_string()),
        );
        Ok(done)
    }
}

impl Persist for MemoryStore {
    fn write_state(&self, writes: &StateWrites) -> Result<Result<()>> {
        Ok(self.apply(writes))
    }

    fn record(&self, r: Recorded) -> Result<()> {
        let mut data = self.data.borrow_mut();
        if r.outcome.is_done() {
            data.done.insert(r.event_id.to_string());
        }
        let seq = data.outcomes.len() as i64 + 1;
        data.outcomes.push(OutcomeRow {
            seq,
            id: r.event_id.to_string(),
            event_type: r.event_type.to_string(),
            outcome: r.outcome,
            reason: r.reason.map(str::to_string),
            ruleset: r.ruleset.to_string(),
            processed_at: r.processed_at.to_string(),
        });
        Ok(())
    }

    fn remember_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()> {
        let mut data = self.data.borrow_mut();
        data.rulesets
            .entry(version.to_string())
            .or_insert_with(|| config.clone());
        Ok(())
    }
}

impl Transactions for MemoryStore {
    fn begin(&self) -> Result<()> {
        *self.before.borrow_mut() = Some(self.data.borrow().clone());
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        self.before.borrow_mut().take();
        Ok(())
    }

    fn rollback(&self) -> Result<()> {
        if let Some(before) = self.before.borrow_mut().take() {
            *self.data.borrow_mut() = before;
            self.rollbacks.set(self.rollbacks.get() + 1);
        }
        Ok(())
    }

    fn in_transaction(&self) -> bool {
        self.before.borrow().is_some()
    }

    fn generation(&self) -> u64 {
        self.rollbacks.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_puts_back_what_the_transaction_wrote() {
        let store = MemoryStore::new();
        let c = Conversation::new("c1");
        store.begin().unwrap();
        store
            .write_state(&StateWrites {
                conversations: vec![&c],
                ..StateWrites::default()
            })
            .unwrap()
            .unwrap();
        assert!(store.conversation("c1").unwrap().is_some());
        store.rollback().unwrap();
        assert!(store.conversation("c1").unwrap().is_none());
        assert_eq!(store.generation(), 1);
    }

    #[test]
    fn writes_over_a_snapshot_stay_in_memory() {
        let base = Rc::new(MemoryStore::new());
        let stored = Conversation::new("c1");
        base.write_state(&StateWrites {
            conversations: vec![&stored],
            ..StateWrites::default()
        })
        .unwrap()
        .unwrap();
        let over = MemoryStore::over(base.clone());
        let mut owned = stored.clone();
        owned.owner = Some("ann".into());
        let new = Conversation::new("c2");
        over.write_state(&StateWrites {
            conversations: vec![&owned, &new],
            blocks: &["spam@example.com".to_string()],
            ..StateWrites::default()
        })
        .unwrap()
        .unwrap();
        let owners: Vec<Option<String>> = over
            .all_conversations()
            .unwrap()
            .into_iter()
            .map(|c| c.owner)
            .collect();
        assert_eq!(owners, [Some("ann".to_string()), None]);
        assert!(over.is_blocked("spam@example.com").unwrap());
        assert_eq!(base.conversation("c1").unwrap().unwrap().owner, None);
        assert!(base.conversation("c2").unwrap().is_none());
        assert!(!base.is_blocked("spam@example.com").unwrap());
    }
}

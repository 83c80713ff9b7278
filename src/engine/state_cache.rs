//! Records as the store holds them, kept from one event to the next so that
//! the daemon does not read back what it has just written.
//!
//! It is right only while nothing else writes the state: the daemon is its
//! only writer (one daemon per database, `lock.rs`; every other command
//! writes the queue only, or rolls back), and all of it is forgotten when a
//! transaction of its connection is rolled back (`Transactions::generation`).
//! Bounded: when a kind of record reaches `CAPACITY`, its cache starts over.

use crate::domain::state::{Conversation, Ticket};
use crate::id_map::IdMap;

const CAPACITY: usize = 20_000;

/// Records by id; `None` is a record known not to exist.
pub struct Bounded<T> {
    records: IdMap<String, T>,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Bounded {
            records: IdMap::default(),
        }
    }
}

impl<T> Bounded<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.records.get(id)
    }

    pub fn learn(&mut self, id: String, record: T) {
        if self.records.len() >= CAPACITY && !self.records.contains_key(&id) {
            self.records.clear();
        }
        self.records.insert(id, record);
    }
}

#[derive(Default)]
pub struct StateCache {
    pub conversations: Bounded<Option<Conversation>>,
    pub tickets: Bounded<Option<Ticket>>,
    pub blocked: Bounded<bool>,
    /// `Transactions::generation` when this was learned.
    generation: u64,
}

impl StateCache {
    /// Forgets everything if a transaction was rolled back since it was
    /// learned: the store may no longer hold it.
    pub fn check(&mut self, generation: u64) {
        if generation != self.generation {
            *self = StateCache {
                generation,
                ..StateCache::default()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let mut cache = Bounded::default();
        for i in 0..CAPACITY {
            cache.learn(format!("c{i}"), i);
        }
        cache.learn("c0".into(), 7);
        assert_eq!(cache.records.len(), CAPACITY);
        cache.learn("new".into(), 1);
        assert_eq!(cache.records.len(), 1);
        assert_eq!(cache.get("new"), Some(&1));
        assert_eq!(cache.get("c1"), None);
    }
}

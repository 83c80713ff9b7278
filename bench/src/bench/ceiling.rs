//! The ceiling: the rows that the workload wrote, written straight to a
//! fresh database at the same durability and in the same batches — no
//! queue, no rules. Measured twice: every row the events wrote (state,
//! outcome log, audit trail), and the state rows alone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use inboxd::daemon::BATCH;
use inboxd::domain::change::{Change, Entity};
use inboxd::domain::config::Synchronous;
use inboxd::domain::state::{Conversation, Ticket};
use inboxd::store::postgres::PgStore;
use inboxd::store::{LoggedEvent, Persist, StateRead, StateWrites, Store, Transactions};

/// How long the bare writes took.
pub struct Ceiling {
    /// State rows, outcome rows and audit rows.
    pub all_rows: Duration,
    /// State rows only.
    pub state_rows: Duration,
}

/// Replays the row writes of every processed event of `store` into scratch
/// databases preloaded like it.
pub fn measure(store: &Store, synchronous: Synchronous, preload: usize) -> anyhow::Result<Ceiling> {
    let replay = Replay::of(store.logged_events()?, store)?;
    let timed = |with_log: bool| -> anyhow::Result<Duration> {
        let dir = tempfile::tempdir()?;
        let bare = Store::open(&dir.path().join("ceiling.db"), synchronous)?;
        super::preload(&bare, preload)?;
        let started = Instant::now();
        replay.write(&bare, with_log)?;
        Ok(started.elapsed())
    };
    Ok(Ceiling {
        all_rows: timed(true)?,
        state_rows: timed(false)?,
    })
}

/// The bare writes of every processed event of `run` into `bare` (a
/// fresh database on the same PostgreSQL server), in the daemon's
/// batches: how long they took.
pub fn measure_postgres(run: &PgStore, bare: &PgStore) -> anyhow::Result<Duration> {
    let mut events = Vec::new();
    run.for_each_logged_event(&mut |event| {
        events.push(event);
        Ok(())
    })?;
    let replay = Replay::of(events, run)?;
    let started = Instant::now();
    replay.write(bare, true)?;
    Ok(started.elapsed())
}

/// A store the ceiling writes to: its rows one by one, as the daemon's
/// backend writes them, without the engine's savepoints.
trait Bare: Persist + Transactions {
    fn write_rows(&self, records: &Records, writes: &[RowWrite]) -> inboxd::store::Result<()>;
}

impl Bare for Store {
    fn write_rows(&self, records: &Records, writes: &[RowWrite]) -> inboxd::store::Result<()> {
        for write in writes {
            match write {
                RowWrite::Ticket(id) => self.put_ticket(&records.tickets[id])?,
                RowWrite::Conversation(id) => self.put_conversation(&records.conversations[id])?,
                RowWrite::Association {
                    ticket,
                    conversation,
                } => self.associate(ticket, conversation)?,
                RowWrite::Block(contact) => self.block(contact)?,
            }
        }
        Ok(())
    }
}

impl Bare for PgStore {
    fn write_rows(&self, records: &Records, writes: &[RowWrite]) -> inboxd::store::Result<()> {
        let mut associations = Vec::new();
        let mut blocks = Vec::new();
        let mut state = StateWrites::default();
        for write in writes {
            match write {
                RowWrite::Ticket(id) => state.tickets.push(&records.tickets[id]),
                RowWrite::Conversation(id) => state.conversations.push(&records.conversations[id]),
                RowWrite::Association {
                    ticket,
                    conversation,
                } => associations.push((ticket.clone(), conversation.clone())),
                RowWrite::Block(contact) => blocks.push(contact.clone()),
            }
        }
        state.associations = &associations;
        state.blocks = &blocks;
        PgStore::write_rows(self, &state)
    }
}

/// What a run wrote, event by event, ready to be written again.
struct Replay {
    events: Vec<LoggedEvent>,
    writes: Vec<Vec<RowWrite>>,
    records: Records,
}

impl Replay {
    fn of(events: Vec<LoggedEvent>, store: &dyn StateRead) -> inboxd::store::Result<Replay> {
        let writes: Vec<Vec<RowWrite>> = events.iter().map(|e| row_writes(&e.changes)).collect();
        let records = Records::of(store, &writes)?;
        Ok(Replay {
            events,
            writes,
            records,
        })
    }

    /// The state rows, and with `with_log` the outcome and audit rows, in
    /// the daemon's batches.
    fn write(&self, bare: &dyn Bare, with_log: bool) -> inboxd::store::Result<()> {
        for (events, writes) in self.events.chunks(BATCH).zip(self.writes.chunks(BATCH)) {
            bare.begin()?;
            for (event, writes) in events.iter().zip(writes) {
                bare.write_rows(&self.records, writes)?;
                if with_log {
                    bare.record(event.as_recorded())?;
                }
            }
            bare.commit()?;
        }
        Ok(())
    }
}

/// The final version of each record written; the values do not change what
/// a write costs.
struct Records {
    conversations: HashMap<String, Conversation>,
    tickets: HashMap<String, Ticket>,
}

impl Records {
    fn of(store: &dyn StateRead, writes: &[Vec<RowWrite>]) -> inboxd::store::Result<Records> {
        let mut records = Records {
            conversations: HashMap::new(),
            tickets: HashMap::new(),
        };
        for write in writes.iter().flatten() {
            match write {
                RowWrite::Conversation(id) if !records.conversations.contains_key(id) => {
                    if let Some(c) = store.conversation(id)? {
                        records.conversations.insert(id.clone(), c);
                    }
                }
                RowWrite::Ticket(id) if !records.tickets.contains_key(id) => {
                    if let Some(t) = store.ticket(id)? {
                        records.tickets.insert(id.clone(), t);
                    }
                }
                _ => {}
            }
        }
        Ok(records)
    }
}

/// A state row written by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowWrite {
    Conversation(String),
    Ticket(String),
    Association {
        ticket: String,
        conversation: String,
    },
    Block(String),
}

/// The state rows that an event's changes wrote, in the order
/// `Working::flush` writes them: conversations, tickets, associations,
/// blocked contacts.
fn row_writes(changes: &[Change]) -> Vec<RowWrite> {
    let mut writes = Vec::new();
    for change in changes {
        let write = match (change.entity, change.field.as_str()) {
            (Entity::Conversation, "ticket") => {
                change.after.as_str().map(|ticket| RowWrite::Association {
                    ticket: ticket.to_string(),
                    conversation: change.id.clone(),
                })
            }
            (Entity::Conversation, _) => Some(RowWrite::Conversation(change.id.clone())),
            (Entity::Ticket, _) => Some(RowWrite::Ticket(change.id.clone())),
            (Entity::BlockedContact, _) => Some(RowWrite::Block(change.id.clone())),
            // The shipped rules start no timer unless auto_close_after is set.
            (Entity::Timer, _) => None,
        };
        if let Some(write) = write.filter(|w| !writes.contains(w)) {
            writes.push(write);
        }
    }
    writes.sort_by_key(|w| match w {
        RowWrite::Conversation(_) => 0,
        RowWrite::Ticket(_) => 1,
        RowWrite::Association { .. } => 2,
        RowWrite::Block(_) => 3,
    });
    writes
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::bench::Workload;
    use inboxd::engine::Processor;
    use inboxd::tools::export::Export;

    /// A store after the shipped rules processed `events` of the workload.
    fn processed(events: usize) -> Rc<Store> {
        let dir = tempfile::tempdir().unwrap();
        let rules = inboxd::tools::init::shipped_rules(dir.path()).unwrap();
        let store = Rc::new(Store::open_in_memory().unwrap());
        let mut processor = Processor::new(store.clone(), rules);
        store.begin().unwrap();
        for event in Workload::new(1).take(events) {
            processor.process(&event, None).unwrap();
        }
        store.commit().unwrap();
        store
    }

    fn as_json(export: Export) -> serde_json::Value {
        serde_json::to_value(export).unwrap()
    }

    #[test]
    fn the_ceiling_writes_the_rows_the_run_wrote() {
        let store = processed(2_000);
        let replay = Replay::of(store.logged_events().unwrap(), store.as_ref()).unwrap();
        for with_log in [true, false] {
            let bare = Store::open_in_memory().unwrap();
            replay.write(&bare, with_log).unwrap();
            assert_eq!(
                as_json(Export::read(&bare).unwrap()),
                as_json(Export::read(store.as_ref()).unwrap())
            );
            let logged =
                |s: &Store| -> Vec<(String, inboxd::engine::report::Outcome, Vec<Change>)> {
                    s.logged_events()
                        .unwrap()
                        .into_iter()
                        .map(|e| (e.event_id, e.outcome, e.changes))
                        .collect()
                };
            if with_log {
                assert_eq!(logged(&bare), logged(&store));
            } else {
                assert!(logged(&bare).is_empty());
            }
        }
    }
}

//! The ceiling: the state rows that the workload changed, written straight
//! to a fresh database at the same durability and in the same batches —
//! no queue, no rules, no outcome log, no audit trail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::Synchronous;
use crate::store::Store;

/// Events per transaction, as the daemon commits them.
const BATCH: usize = 256;

/// Replays the row writes of every applied event of `store` into a scratch
/// database preloaded like it; returns the time the writes took.
pub fn measure(
    store: &Store,
    synchronous: Synchronous,
    preload: usize,
) -> anyhow::Result<Duration> {
    let writes = row_writes(store)?;
    // The final version of each record written; the values do not change
    // what a write costs.
    let mut conversations = HashMap::new();
    let mut tickets = HashMap::new();
    for write in writes.iter().flatten() {
        match write {
            RowWrite::Conversation(id) if !conversations.contains_key(id) => {
                if let Some(c) = store.conversation(id)? {
                    conversations.insert(id.clone(), c);
                }
            }
            RowWrite::Ticket(id) if !tickets.contains_key(id) => {
                if let Some(t) = store.ticket(id)? {
                    tickets.insert(id.clone(), t);
                }
            }
            _ => {}
        }
    }
    let dir = tempfile::tempdir()?;
    let bare = Store::open(&dir.path().join("ceiling.db"), synchronous)?;
    super::preload(&bare, preload)?;
    let started = Instant::now();
    for batch in writes.chunks(BATCH) {
        bare.begin()?;
        for event in batch {
            for write in event {
                match write {
                    RowWrite::Ticket(id) => bare.put_ticket(&tickets[id])?,
                    RowWrite::Conversation(id) => bare.put_conversation(&conversations[id])?,
                    RowWrite::Association {
                        ticket,
                        conversation,
                    } => bare.associate(ticket, conversation)?,
                    RowWrite::Block(contact) => bare.block(contact)?,
                }
            }
        }
        bare.commit()?;
    }
    Ok(started.elapsed())
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

/// For each applied event, in order, the state rows it wrote, from the
/// audit trail: tickets, then conversations, then what links them.
fn row_writes(store: &Store) -> rusqlite::Result<Vec<Vec<RowWrite>>> {
    let mut events: Vec<(i64, Vec<RowWrite>)> = Vec::new();
    for change in store.audit_trail()? {
        if events.last().is_none_or(|(p, _)| *p != change.processed) {
            events.push((change.processed, Vec::new()));
        }
        let writes = &mut events.last_mut().expect("pushed above").1;
        let write = match (change.entity.as_str(), change.field.as_str()) {
            ("conversation", "ticket") => {
                change.after.as_str().map(|ticket| RowWrite::Association {
                    ticket: ticket.to_string(),
                    conversation: change.id.clone(),
                })
            }
            ("conversation", _) => Some(RowWrite::Conversation(change.id)),
            ("ticket", _) => Some(RowWrite::Ticket(change.id)),
            _ => Some(RowWrite::Block(change.id)),
        };
        if let Some(write) = write.filter(|w| !writes.contains(w)) {
            writes.push(write);
        }
    }
    for (_, writes) in &mut events {
        writes.sort_by_key(|w| match w {
            RowWrite::Ticket(_) => 0,
            RowWrite::Conversation(_) => 1,
            RowWrite::Association { .. } => 2,
            RowWrite::Block(_) => 3,
        });
    }
    Ok(events.into_iter().map(|(_, w)| w).collect())
}

//! The ceiling: the state rows that the workload changed, written straight
//! to a fresh database at the same durability and in the same batches —
//! no queue, no rules, no outcome log, no audit trail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::Synchronous;
use crate::store::{RowWrite, Store};

/// Events per transaction, as the daemon commits them.
const BATCH: usize = 256;

/// Replays the row writes of every applied event of `store` into a scratch
/// database preloaded like it; returns the time the writes took.
pub fn measure(
    store: &Store,
    synchronous: Synchronous,
    preload: usize,
) -> anyhow::Result<Duration> {
    let writes = store.row_writes()?;
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

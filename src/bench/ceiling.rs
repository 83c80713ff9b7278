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
pub fn measure(store: &Store, synchronous: Synchronous, preload: usize) -> anyhow::Result<Duration> {
    let writes = store.row_writes()?;
    let conversations: HashMap<_, _> = store
        .all_conversations()?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let tickets: HashMap<_, _> = store
        .all_tickets()?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
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
                    RowWrite::Association { ticket, conversation } => {
                        bare.associate(ticket, conversation)?
                    }
                    RowWrite::Block(contact) => bare.block(contact)?,
                }
            }
        }
        bare.commit()?;
    }
    Ok(started.elapsed())
}

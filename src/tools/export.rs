//! The export document of `spec/INTERFACE.md`: the whole state as JSON.

use serde::Serialize;

use crate::domain::state::{Conversation, Ticket};
use crate::store::{Reader, StateRead};

#[derive(Debug, Serialize)]
pub struct Export {
    /// By id.
    pub tickets: Vec<Ticket>,
    /// By id.
    pub conversations: Vec<Conversation>,
    /// Sorted.
    pub blocked_contacts: Vec<String>,
    /// Pending timers, by due time, record kind, record id, name.
    pub timers: Vec<crate::domain::timer::Timer>,
}

impl Export {
    /// Reads the state in one read transaction, so that it is consistent
    /// while the daemon writes.
    pub fn read(store: &dyn Reader) -> crate::store::Result<Export> {
        let mut export = None;
        store.consistently(&mut || {
            export = Some(Export::of(store)?);
            Ok(())
        })?;
        Ok(export.expect("read in the transaction"))
    }

    /// The state of any store, as it is now.
    pub fn of(store: &dyn StateRead) -> crate::store::Result<Export> {
        Ok(Export {
            tickets: store.all_tickets()?,
            conversations: store.all_conversations()?,
            blocked_contacts: store.blocked_contacts()?,
            timers: store.all_timers()?,
        })
    }
}

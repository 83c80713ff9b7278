//! Where state, outcomes and the audit trail are kept, behind traits by
//! role (`roles.rs`): the engine evaluates against `StateRead` and hands
//! its writes to `Persist`, never knowing which database is behind them.
//!
//! - `sqlite`: the embedded default, one file (and its queue beside it);
//! - `memory`: for rule tests, engine tests, and dry-runs laid over a
//!   snapshot of another store.

mod audit_fields;
mod by_event;
mod error;
pub mod memory;
pub mod postgres;
mod producer;
mod progress;
mod reader;
mod roles;
pub mod sqlite;

pub use error::{Result, StoreError, Trouble};
pub use memory::MemoryStore;
pub use producer::Producer;
pub use progress::{open_progress, DeliveryProgress};
pub use reader::{open_reader, open_sendable_reader, Reader};
pub use roles::{
    Batch, DaemonStore, DoneEvents, EngineStore, EventQueue, Persist, Snapshot, StateRead,
    StateWrites, Transactions,
};
pub use sqlite::{
    beside, create_directory_of, deliveries_path, queue_path, AuditRow, Checkpointer, DaemonStatus,
    Deliveries, Delivery, LoggedEvent, OutcomeRow, Queue, QueuePosition, Queued, Recorded,
    RecordedConfig, Store,
};

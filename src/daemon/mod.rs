//! The daemon's life: the run loop, its control, file watchers, the
//! one-daemon lock, guards against deadly events and a failing store.

pub mod control;
pub mod doorbell;
pub mod health;
pub mod lock;
pub mod metrics;
pub mod patience;
pub mod poison_guard;
pub mod run_loop;
pub mod store_access;
mod tally;
pub mod watch;
pub mod webhook_signature;
pub mod webhooks;

pub use control::Control;
pub use metrics::Metrics;
pub use run_loop::{load, Daemon, BATCH};

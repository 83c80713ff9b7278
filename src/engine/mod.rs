//! Evaluating one event: its change, the rules it triggers, their actions and
//! the cascade, in a working copy, and what came out of it. Knows the store
//! only through `store::Store`'s typed methods.

pub mod apply;
pub mod event_work;
pub mod processor;
pub mod report;
pub mod script_api;
pub mod state_cache;
pub mod working;

pub use processor::Processor;

//! The inbox's own terms: events, records and their changes, the config,
//! the clock. Plain types and their checks; no store, no scripts.

pub mod change;
pub mod clip;
pub mod clock;
pub mod config;
pub mod diagnostic;
pub mod event;
pub mod event_checks;
pub mod event_deserialize;
pub mod event_lines;
pub mod feed;
pub mod http_config;
pub mod outcome;
pub mod state;
pub mod strict_json;
pub mod timer;
pub mod webhook_config;

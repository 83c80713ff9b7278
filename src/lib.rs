//! inboxd: applies helpdesk lifecycle policies, written as TOML pipelines
//! and Rhai scripts, to inbox events from a durable queue, with the state in
//! SQLite.

pub mod api;
pub mod apply;
pub mod change;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod diagnostic;
pub mod doorbell;
pub mod engine;
pub mod event;
pub mod event_checks;
pub mod event_lines;
pub mod event_work;
pub mod explain;
pub mod export;
pub mod health;
pub mod hubspot;
pub mod init;
pub mod lock;
pub mod memory;
pub mod patience;
pub mod pipeline;
pub mod poison_guard;
pub mod progress;
pub mod regular_file;
pub mod replay;
pub mod report;
pub mod ruleset;
pub mod ruletest;
pub mod script;
pub mod script_check;
pub mod script_log;
pub mod state;
pub mod state_cache;
pub mod store;
pub mod strict_json;
pub mod watch;
pub mod working;

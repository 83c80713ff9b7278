//! inboxd: applies helpdesk lifecycle policies, written as TOML pipelines
//! and Rhai scripts, to inbox events from a durable queue, with the state in
//! SQLite.

pub mod cli;
pub mod commands;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod http;
pub mod id_map;
pub mod memory;
pub mod regular_file;
pub mod scripting;
pub mod store;
pub mod tools;

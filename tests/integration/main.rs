//! Integration tests: each drives the real `inboxd` binary in a temporary
//! directory holding a copy of the shipped config and rules.

mod admin;
mod common;
mod daemon;
mod dry_run;
mod feed;
mod hardening;
mod http;
mod input;
mod model;
mod newcomer;
mod pg;
mod policies;
mod postgres;
mod readme;
mod reliability;
mod rules;
mod timers;
mod webhooks;

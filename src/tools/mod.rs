//! The admin's tools beside the daemon: replay, rule tests, explain, init,
//! export, HubSpot mapping, streaming input, progress bars.

pub mod dry_run;
pub mod explain;
pub mod export;
pub mod hubspot;
pub mod init;
pub mod progress;
pub mod replay;
pub mod ruletest;

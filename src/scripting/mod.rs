//! The rules: pipelines and Rhai scripts loaded into one versioned RuleSet,
//! the sandbox they run in, what `validate` checks, and the script API.

pub mod manual;
pub mod pipeline;
pub mod ruleset;
pub mod script;
pub mod script_check;
pub mod script_log;

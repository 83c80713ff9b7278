//! The Rhai sandbox: one engine configuration for compiling and running
//! rules, with every limit set explicitly (the defaults differ between debug
//! and release builds) and no way out to files, modules or the network.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult};

/// Limits of one script run. A script that reaches one fails its event.
pub mod limits {
    /// Enough to close 10,000 conversations in one loop, far below a hang.
    pub const MAX_OPERATIONS: u64 = 5_000_000;
    pub const MAX_CALL_LEVELS: usize = 32;
    pub const MAX_EXPR_DEPTH: usize = 64;
    pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
    pub const MAX_STRING_SIZE: usize = 64 * 1024;
    pub const MAX_ARRAY_SIZE: usize = 100_000;
    pub const MAX_MAP_SIZE: usize = 10_000;
    pub const MAX_VARIABLES: usize = 1_000;
    pub const MAX_FUNCTIONS: usize = 256;
    /// Operations differ in cost (a string operation on 64 KiB is far dearer
    /// than an addition), so wall-clock time is bounded too.
    pub const MAX_RUN_TIME: std::time::Duration = std::time::Duration::from_secs(2);
}

/// Bounds the wall-clock time of each run of `engine`: the returned clock
/// must be reset with `Instant::now()` before each run.
pub fn with_time_limit(engine: &mut Engine) -> Rc<Cell<Instant>> {
    let started = Rc::new(Cell::new(Instant::now()));
    let clock = Rc::clone(&started);
    engine.on_progress(move |operations| {
        // Reading the clock costs more than an operation: look now and then.
        if operations % 1024 == 0 && clock.get().elapsed() > limits::MAX_RUN_TIME {
            let limit = limits::MAX_RUN_TIME.as_secs();
            Some(Dynamic::from(format!(
                "the script ran longer than {limit} s"
            )))
        } else {
            None
        }
    });
    started
}

/// An engine with the sandbox set, and nothing of the inbox API yet.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.set_max_modules(0);
    engine.set_max_operations(limits::MAX_OPERATIONS);
    engine.set_max_call_levels(limits::MAX_CALL_LEVELS);
    engine.set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FUNCTION_EXPR_DEPTH);
    engine.set_max_string_size(limits::MAX_STRING_SIZE);
    engine.set_max_array_size(limits::MAX_ARRAY_SIZE);
    engine.set_max_map_size(limits::MAX_MAP_SIZE);
    engine.set_max_variables(limits::MAX_VARIABLES);
    engine.set_max_functions(limits::MAX_FUNCTIONS);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_print(|text| tracing::info!(target: "inboxd::script", "{text}"));
    engine.on_debug(|text, source, pos| {
        tracing::debug!(target: "inboxd::script", source = source.unwrap_or(""), %pos, "{text}")
    });
    engine
}

/// A runtime error as `line:column: message`, the place first.
pub fn describe(mut error: EvalAltResult) -> String {
    let position = error.position();
    error.clear_position();
    let message = match &error {
        // Rhai prints "Script terminated" without the reason we gave it.
        EvalAltResult::ErrorTerminated(reason, _) => reason.to_string(),
        other => one_line(&other.to_string()),
    };
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("{line}:{column}: {message}"),
        (Some(line), None) => format!("{line}: {message}"),
        _ => message,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

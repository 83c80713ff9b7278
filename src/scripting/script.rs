//! The Rhai sandbox: one engine configuration for compiling and running
//! rules, with every limit set explicitly (the defaults differ between debug
//! and release builds) and no way out to files, modules, the network or the
//! clock.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage, MoreStringPackage,
    Package,
};
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
    /// Lines that the scripts of one event may log (`print`, `debug`,
    /// `log`); past them, output is dropped and counted.
    pub const MAX_LOG_LINES: usize = 100;
    /// Bytes that the scripts of one event may log.
    pub const MAX_LOG_BYTES: usize = 64 * 1024;
    /// Characters of a `reject` reason or a script's error message kept
    /// as the event's reason (it is stored with the outcome and logged).
    pub const MAX_REASON_CHARS: usize = 1_000;
    /// Memory the rule runs of one event may hold beyond what the daemon
    /// held when the event started (all values together: Rhai's limits
    /// bound each one).
    pub const MAX_EVENT_MEMORY: usize = 128 * 1024 * 1024;
}

/// The time limits of script runs: each run, and all the runs of one event
/// together. The engine asks it between operations; no function a script
/// can call blocks or waits, so that is often enough.
#[derive(Debug)]
pub struct Deadlines {
    run_started: Cell<Instant>,
    event_started: Cell<Instant>,
    event_limit: Cell<Duration>,
    /// Memory in use when the event started.
    memory_at_start: Cell<isize>,
}

impl Deadlines {
    fn new() -> Self {
        Deadlines {
            run_started: Cell::new(Instant::now()),
            event_started: Cell::new(Instant::now()),
            event_limit: Cell::new(Duration::MAX),
            memory_at_start: Cell::new(0),
        }
    }

    /// Starts the clock of an event's runs, bounded by `limit` together.
    pub fn start_event(&self, limit: Duration) {
        self.event_started.set(Instant::now());
        self.event_limit.set(limit);
        self.memory_at_start.set(crate::memory::live_bytes());
    }

    /// Starts the clock of one run.
    pub fn start_run(&self) {
        self.run_started.set(Instant::now());
    }

    /// Why the event's rules must stop now, if they must.
    pub fn event_exceeded(&self) -> Option<String> {
        let event_limit = self.event_limit.get();
        (self.event_started.get().elapsed() > event_limit).then(|| {
            format!(
                "the event's rules ran longer than {} in all ([rules] event_time_limit)",
                humantime::format_duration(event_limit)
            )
        })
    }

    /// Why the running script must stop now, if it must.
    pub fn exceeded(&self) -> Option<String> {
        if let Some(reason) = self.event_exceeded() {
            return Some(reason);
        }
        let taken = crate::memory::live_bytes().wrapping_sub(self.memory_at_start.get());
        if taken > limits::MAX_EVENT_MEMORY as isize {
            return Some(format!(
                "the event's rules hold more than {} MiB of memory",
                limits::MAX_EVENT_MEMORY >> 20
            ));
        }
        if self.run_started.get().elapsed() > limits::MAX_RUN_TIME {
            let limit = limits::MAX_RUN_TIME.as_secs();
            return Some(format!("the script ran longer than {limit} s"));
        }
        None
    }
}

/// Bounds the wall-clock time of each run of `engine`, and of each event's
/// runs together; the returned deadlines are started by the caller.
pub fn with_time_limit(engine: &mut Engine) -> Rc<Deadlines> {
    let deadlines = Rc::new(Deadlines::new());
    let clock = Rc::clone(&deadlines);
    engine.on_progress(move |operations| {
        // Reading the clock costs more than an operation: look now and then.
        if operations % 256 != 0 {
            return None;
        }
        clock.exceeded().map(Dynamic::from)
    });
    deadlines
}

/// An engine with the sandbox set, and nothing of the inbox API yet.
///
/// The functions scripts may call are an allow-list: the packages of pure
/// computation on the language's own values (arithmetic, logic, strings,
/// arrays, maps, ranges, function pointers, maths). Left out on purpose:
/// Rhai's core package (`sleep`, which blocks the daemon beyond any time
/// limit, `exit`, `parse_json`, function metadata), timestamps (a rule must
/// give the same result when replayed) and blobs.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new_raw();
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BitFieldPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(package);
    }
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
    engine
}

/// A runtime error as `line:column: message`, the place first.
pub fn describe(mut error: EvalAltResult) -> String {
    let position = error.position();
    error.clear_position();
    let message = match &error {
        // Rhai prints "Script terminated" without the reason we gave it.
        EvalAltResult::ErrorTerminated(reason, _) => reason.to_string(),
        other => plain_types(&one_line(&other.to_string())),
    };
    // An error may quote a whole value (a 64 KiB string, say).
    let message = crate::domain::clip::clip_to(&message, limits::MAX_REASON_CHARS);
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("{line}:{column}: {message}"),
        (Some(line), None) => format!("{line}: {message}"),
        _ => message,
    }
}

/// Rhai's error messages name Rust types (`&str | ImmutableString |
/// String`, `i64`); an admin reads the script's words instead.
pub fn plain_types(text: &str) -> String {
    let text = text.replace("&str | ImmutableString | String", "string");
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '&');
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(word) {
        out.push_str(&rest[..start]);
        let token_len = rest[start..]
            .find(|c| !word(c))
            .unwrap_or(rest.len() - start);
        let token = &rest[start..start + token_len];
        out.push_str(match token {
            "ImmutableString" | "String" | "&str" | "alloc::string::String" => "string",
            "i64" | "i32" | "INT" => "integer",
            "f64" | "f32" | "FLOAT" => "float",
            "bool" => "boolean",
            "rhai::Map" | "Map" => "map",
            "rhai::Array" | "Array" => "array",
            other => other,
        });
        rest = &rest[start + token_len..];
    }
    out.push_str(rest);
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_read_as_the_script_s() {
        assert_eq!(
            plain_types("Function not found: f (&str | ImmutableString | String, i64, bool)"),
            "Function not found: f (string, integer, boolean)"
        );
        assert_eq!(plain_types("not i64 in boolean"), "not integer in boolean");
        assert_eq!(plain_types("rhai::Map or Array"), "map or array");
    }
}

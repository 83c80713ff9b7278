//! What scripts write with `print`, `debug` and `log`: one log line each,
//! naming the rule and the event, within a budget per event so that a
//! script logging in a loop cannot flood the log or fill the disk.

use std::cell::{Cell, RefCell};

use crate::scripting::script::limits::{MAX_LOG_BYTES, MAX_LOG_LINES};

#[derive(Debug, Default)]
pub struct ScriptLog {
    event: RefCell<String>,
    rule: RefCell<String>,
    lines: Cell<usize>,
    bytes: Cell<usize>,
    dropped: Cell<usize>,
}

impl ScriptLog {
    /// Starts the budget of a new original event.
    pub fn start_event(&self, event: &str) {
        event.clone_into(&mut self.event.borrow_mut());
        self.lines.set(0);
        self.bytes.set(0);
        self.dropped.set(0);
    }

    /// Names the rule whose script writes from now on.
    pub fn start_rule(&self, rule: &str) {
        rule.clone_into(&mut self.rule.borrow_mut());
    }

    /// One line of script output, or nothing past the event's budget.
    pub fn write(&self, text: &str) {
        let lines = self.lines.get() + 1;
        let bytes = self.bytes.get() + text.len();
        let (event, rule) = (self.event.borrow(), self.rule.borrow());
        if lines > MAX_LOG_LINES || bytes > MAX_LOG_BYTES {
            if self.dropped.replace(self.dropped.get() + 1) == 0 {
                tracing::warn!(
                    target: "inboxd::scripting::script",
                    event = %event,
                    rule = %rule,
                    "script output of this event cut: more than {MAX_LOG_LINES} lines or {} KiB",
                    MAX_LOG_BYTES / 1024
                );
            }
            return;
        }
        self.lines.set(lines);
        self.bytes.set(bytes);
        tracing::info!(target: "inboxd::scripting::script", event = %event, rule = %rule, "{text}");
    }

    /// Says how much output the event's budget dropped, if any.
    pub fn finish_event(&self) {
        let dropped = self.dropped.replace(0);
        if dropped > 0 {
            tracing::warn!(
                target: "inboxd::scripting::script",
                event = %self.event.borrow(),
                "{dropped} line(s) of script output dropped"
            );
        }
    }

    /// Lines dropped so far for the current event.
    pub fn dropped(&self) -> usize {
        self.dropped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_budget_is_dropped_and_counted() {
        let log = ScriptLog::default();
        log.start_event("e1");
        for _ in 0..MAX_LOG_LINES + 5 {
            log.write("x");
        }
        assert_eq!(log.dropped(), 5);
        log.start_event("e2");
        assert_eq!(log.dropped(), 0);
        log.write(&"y".repeat(MAX_LOG_BYTES + 1));
        assert_eq!(log.dropped(), 1);
    }
}

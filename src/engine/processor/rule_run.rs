//! Running one rule for one event: its condition, then its script, each
//! under the time limits and with a panic in the scripting engine turned
//! into a failed event.

use std::panic::AssertUnwindSafe;

use rhai::Dynamic;

use super::Processor;
use crate::domain::event::Event;
use crate::engine::apply::Stop;
use crate::engine::event_work::Pending;
use crate::engine::report::Firing;
use crate::scripting::ruleset::{script_scope, Rule};
use crate::scripting::script::describe;

impl Processor {
    /// Runs script code with the clock started, turning a panic inside the
    /// scripting engine into a failed event instead of a dead daemon.
    fn guarded<T>(&self, rule: &Rule, run: impl FnOnce() -> T) -> Result<T, Stop> {
        self.deadlines.start_run();
        self.script_log.start_rule(rule.name());
        std::panic::catch_unwind(AssertUnwindSafe(run))
            .map_err(|_| Stop::Failed(format!("rule {}: the script engine panicked", rule.name())))
    }

    /// Whether the rule's `when` holds for the event (no `when`: it does).
    pub(super) fn condition_holds(&self, rule: &Rule, event: &Dynamic) -> Result<bool, Stop> {
        let Some(condition) = &rule.condition else {
            return Ok(true);
        };
        let mut scope = script_scope(event.clone(), self.rules.settings.clone());
        self.work.borrow_mut().condition_of(Some(rule.name()));
        let result = self.guarded(rule, || {
            self.scripts
                .eval_ast_with_scope::<bool>(&mut scope, condition)
        });
        let rejection = {
            let mut work = self.work.borrow_mut();
            work.condition_of(None);
            work.rejection.take()
        };
        if let Some(reason) = rejection {
            return Err(Stop::Rejected(reason));
        }
        result?.map_err(|e| {
            Stop::Failed(format!(
                "rule {}: condition `when` in {}:{}: {}",
                rule.name(),
                rule.decl.file.display(),
                rule.decl.when_line,
                describe(*e)
            ))
        })
    }

    /// Runs one rule for one event; returns the events its actions derived.
    pub(super) fn fire(
        &self,
        rule: &Rule,
        pending: &Pending,
        event: &Dynamic,
        fired: &mut Vec<Firing>,
    ) -> Result<Vec<Pending>, Stop> {
        self.work.borrow_mut().begin_firing(rule.name(), pending);
        let mut scope = script_scope(event.clone(), self.rules.settings.clone());
        let result = self.guarded(rule, || {
            self.scripts.run_ast_with_scope(&mut scope, &rule.script)
        });
        let mut work = self.work.borrow_mut();
        let (actions, derived) = work.end_firing();
        fired.push(Firing {
            rule: rule.name().to_string(),
            event: pending.id.clone(),
            event_type: pending.kind.type_name().to_string(),
            derived: pending.derived,
            actions,
        });
        if let Some(reason) = work.rejection.take() {
            return Err(Stop::Rejected(reason));
        }
        if let Some(reason) = work.failure.take() {
            return Err(Stop::Failed(format!("rule {}: {reason}", rule.name())));
        }
        result?.map_err(|e| {
            Stop::Failed(format!(
                "rule {}: {}:{}",
                rule.name(),
                rule.script_file.display(),
                describe(*e)
            ))
        })?;
        Ok(derived)
    }
}

/// The event as a script sees it: its JSON fields, plus `derived` and
/// `previous` (the values its change replaced, by field).
/// Shared, so that each rule's scope gets it without a deep copy, and
/// read-only inside: a shared value is a constant only if its content is,
/// and no rule may change what the next one sees.
pub(super) fn script_event(original: &Event, pending: &Pending) -> Dynamic {
    let text = |value: &Option<String>| value.clone().map_or(Dynamic::UNIT, Dynamic::from);
    let mut map = rhai::serde::to_dynamic(&pending.kind)
        .ok()
        .and_then(|d| d.try_cast::<rhai::Map>())
        .unwrap_or_default();
    map.insert("id".into(), pending.id.clone().into());
    map.insert("at".into(), text(&original.at));
    map.insert("actor".into(), text(&original.actor));
    map.insert("derived".into(), pending.derived.into());
    let previous = rhai::serde::to_dynamic(&pending.previous).unwrap_or(Dynamic::UNIT);
    map.insert("previous".into(), previous);
    Dynamic::from_map(map).into_read_only().into_shared()
}

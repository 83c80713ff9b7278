//! What processing one event did: its outcome, the rules that fired, their
//! actions and the field-level changes. Shown by `dry-run`, stored as the
//! outcome and audit trail by the daemon.

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::change::Change;
use crate::domain::feed::Notification;

pub use crate::domain::outcome::Outcome;

/// One action a rule asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    /// The call, as written in the script's terms: `close_conversation("c1")`.
    pub call: String,
    pub changed: bool,
    /// The derived event the change produced, if it changed something.
    pub derived_event: Option<String>,
}

/// One rule run for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    pub rule: String,
    pub event: String,
    pub event_type: String,
    /// Whether the event was derived (from a rule's action) or original.
    pub derived: bool,
    pub actions: Vec<ActionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub event: String,
    pub event_type: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub ruleset: String,
    pub rules_fired: Vec<Firing>,
    /// The changes that stay; empty unless the outcome is `applied`.
    pub changes: Vec<Change>,
    /// What the rules sent with `notify`; empty unless `applied`.
    pub notifications: Vec<Notification>,
}

impl Report {
    /// Marks the event failed: nothing of it stays.
    pub fn fail(&mut self, reason: String) {
        self.outcome = Outcome::Failed;
        self.reason = Some(reason);
        self.changes.clear();
        self.notifications.clear();
    }

    /// The report as readable text, as `dry-run` prints it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "event {} ({}): {}",
            self.event, self.event_type, self.outcome
        );
        if let Some(reason) = &self.reason {
            let _ = write!(out, ": {reason}");
        }
        out.push('\n');
        for firing in &self.rules_fired {
            let origin = if firing.derived {
                "derived"
            } else {
                "original"
            };
            let _ = writeln!(
                out,
                "  rule {} on {} {} ({origin})",
                firing.rule, firing.event_type, firing.event
            );
            for action in &firing.actions {
                let effect = match &action.derived_event {
                    Some(id) => format!("changed -> {id}"),
                    None if action.changed => "changed".to_string(),
                    None if action.call.starts_with("notify(") => "sent if applied".to_string(),
                    None => "no-op".to_string(),
                };
                let _ = writeln!(out, "    {} [{effect}]", action.call);
            }
        }
        if self.changes.is_empty() {
            let _ = writeln!(out, "  no change");
        }
        for c in &self.changes {
            let by = match &c.rule {
                Some(rule) => format!("rule {rule}, event {}", c.event),
                None => format!("event {}", c.event),
            };
            let _ = writeln!(
                out,
                "  {} {} {}: {} -> {}  ({by})",
                c.entity.as_str(),
                c.id,
                c.field,
                c.before,
                c.after
            );
        }
        for n in &self.notifications {
            let rule = n.rule.as_deref().unwrap_or("?");
            let _ = writeln!(
                out,
                "  notify {}: {}  (rule {rule}, event {})",
                n.webhook, n.payload, n.event
            );
        }
        out
    }
}

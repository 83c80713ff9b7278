//! The unit of work of one event, shared between the engine and the
//! functions scripts call: the working state, the rule running now, and what
//! its actions did.

use crate::scripting::script::limits::MAX_REASON_CHARS;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::domain::event::EventKind;
use crate::domain::feed::Notification;
use crate::domain::state::ConversationStatus;
use crate::domain::state::Stages;
use crate::domain::timer::{TimerKey, TimerRecord};
use crate::engine::apply::{apply, Mode, Stop};
use crate::engine::report::ActionRecord;
use crate::engine::working::{Cause, Working};

/// The most events one original event may derive: enough to close a ticket
/// with tens of thousands of conversations, and a bound on the memory a
/// runaway rule can take.
pub const MAX_DERIVED_EVENTS: usize = 100_000;

/// The most bytes of changes (values, ids, causes: what the audit trail
/// and the outcome keep) that one original event may make: a bound on the
/// memory and the rows a rule fanning out large values can take.
pub const MAX_CHANGE_BYTES: usize = 32 * 1024 * 1024;

/// The most notifications one event may send, and the largest payload
/// (as JSON): what a receiver can sensibly take.
pub const MAX_NOTIFICATIONS: usize = 1_000;
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// An event waiting for its rules to run: the original one or one derived
/// from a rule's action.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub kind: EventKind,
    pub derived: bool,
    /// The rules that led here from the original event, with the events
    /// they ran for; its length is the cascade depth.
    pub chain: Vec<(String, String)>,
    /// The values the event's change replaced, by field.
    pub previous: BTreeMap<String, Value>,
}

impl Pending {
    /// The events and rules that led to this event, and the event itself.
    pub fn chain_text(&self) -> String {
        let mut parts = Vec::new();
        for (rule, event) in &self.chain {
            parts.push(event.as_str());
            parts.push(rule.as_str());
        }
        parts.push(&self.id);
        parts.join(" → ")
    }
}

/// The rule running now, and what its actions' derived events inherit;
/// worked out once per rule run, not once per action.
struct RuleRun {
    rule: String,
    /// The event the rule runs for.
    event: String,
    /// How the event the rule runs for came about.
    chain_text: String,
    /// The chain of every event the rule's actions derive.
    chain: Vec<(String, String)>,
}

pub struct EventWork {
    pub working: Working,
    pub stages: Stages,
    /// The original event's id; derived ids are `<id>/<n>`.
    root: String,
    derived_count: usize,
    /// Bytes of the changes made so far, against `MAX_CHANGE_BYTES`.
    change_bytes: usize,
    firing: Option<RuleRun>,
    actions: Vec<ActionRecord>,
    derived: Vec<Pending>,
    /// The rule whose `when` condition runs now, for `reject()` there.
    condition_of: Option<String>,
    /// Set by `reject()` or an invalid action; the event is rejected even
    /// if the script catches the error.
    pub rejection: Option<String>,
    /// Set when the store fails under an action.
    pub failure: Option<String>,
    /// The webhooks `notify` may name (the config's).
    pub webhooks: BTreeSet<String>,
    /// "Now" for the event's timers: its `at` (a derived event's original's).
    pub now: time::OffsetDateTime,
    notifications: Vec<Notification>,
}

impl EventWork {
    pub fn new(working: Working, stages: Stages) -> Self {
        EventWork {
            working,
            stages,
            root: String::new(),
            derived_count: 0,
            change_bytes: 0,
            firing: None,
            actions: Vec::new(),
            derived: Vec::new(),
            rejection: None,
            failure: None,
            condition_of: None,
            webhooks: BTreeSet::new(),
            notifications: Vec::new(),
            now: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Starts over for a new original event.
    pub fn reset(&mut self, root: &str) {
        self.working.reset();
        self.root = root.to_string();
        self.derived_count = 0;
        self.change_bytes = 0;
        self.firing = None;
        self.actions.clear();
        self.derived.clear();
        self.rejection = None;
        self.failure = None;
        self.notifications.clear();
    }

    /// The notifications the event's rules sent, for its report.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.notifications)
    }

    /// A rule's `start_*_timer(id, name, after)`: the timer comes due
    /// `after` from the event's time (or at the time `after` says).
    pub fn start_timer(
        &mut self,
        key: TimerKey,
        after: &str,
        call: String,
    ) -> Result<bool, String> {
        let due = crate::domain::timer::due_after(self.now, after);
        self.timer_action(key, call, true, |working, key, cause| {
            let due = due?;
            working
                .start_timer(key, due, cause)
                .map_err(|e| format!("store error: {e}"))
        })
    }

    /// A rule's `stop_*_timer(id, name)`: a no-op on a record that is
    /// gone (its timers went with it).
    pub fn stop_timer(&mut self, key: TimerKey, call: String) -> Result<bool, String> {
        self.timer_action(key, call, false, |working, key, cause| {
            working
                .stop_timer(key, cause)
                .map_err(|e| format!("store error: {e}"))
        })
    }

    /// Checks a timer action (a rule runs it, the name is valid, the
    /// record is live), runs it and records it.
    fn timer_action(
        &mut self,
        key: TimerKey,
        call: String,
        needs_live_record: bool,
        change: impl FnOnce(&mut Working, &TimerKey, &Cause) -> Result<bool, String>,
    ) -> Result<bool, String> {
        let Some(firing) = &self.firing else {
            return Err(format!("{call}: only a rule can start or stop a timer"));
        };
        let rule = firing.rule.clone();
        let cause = Cause {
            event: firing.event.clone(),
            rule: Some(rule.clone()),
            chain: format!("{} → {rule}", firing.chain_text),
        };
        let live = if !needs_live_record {
            Ok(())
        } else {
            self.live_record(&key)
        };
        let mark = self.working.changes().len();
        let result = crate::domain::timer::check_name(&key.name)
            .and(live)
            .and_then(|()| change(&mut self.working, &key, &cause));
        if matches!(result, Ok(true)) && over_budget(&mut self.change_bytes, &self.working, mark) {
            return Err(self.fail_over_budget(&call));
        }
        self.record_timer_action(call, rule, result)
    }

    fn live_record(&mut self, key: &TimerKey) -> Result<(), String> {
        match key.record {
            TimerRecord::Ticket => match self.working.ticket(&key.id) {
                Ok(Some(t)) if !t.deleted => Ok(()),
                Ok(Some(_)) => Err(format!("ticket {} is deleted", key.id)),
                Ok(None) => Err(format!("unknown ticket {}", key.id)),
                Err(e) => Err(format!("store error: {e}")),
            },
            TimerRecord::Conversation => match self.working.conversation(&key.id) {
                Ok(Some(c)) if c.status != ConversationStatus::Trashed => Ok(()),
                Ok(Some(_)) => Err(format!("conversation {} is in the trash", key.id)),
                Ok(None) => Err(format!("unknown conversation {}", key.id)),
                Err(e) => Err(format!("store error: {e}")),
            },
        }
    }

    fn record_timer_action(
        &mut self,
        call: String,
        rule: String,
        result: Result<bool, String>,
    ) -> Result<bool, String> {
        match result {
            Ok(changed) => {
                self.actions.push(ActionRecord {
                    call,
                    changed,
                    derived_event: None,
                });
                Ok(changed)
            }
            Err(why) => {
                let reason = format!("rule {rule}: {call}: {why}");
                if why.starts_with("store error") {
                    self.failure.get_or_insert(reason.clone());
                } else {
                    self.rejection.get_or_insert(reason.clone());
                }
                Err(reason)
            }
        }
    }

    /// A rule's `notify(webhook, payload)`: recorded with the event, sent
    /// only if it is applied.
    pub fn notify(&mut self, webhook: &str, payload: Value) -> Result<(), String> {
        let call = format!("notify({webhook:?}, …)");
        let Some(firing) = &self.firing else {
            return Err(format!("{call}: only a rule can notify"));
        };
        let rule = firing.rule.clone();
        let why = if !self.webhooks.contains(webhook) {
            Some(format!("no webhook named {webhook:?} in the config"))
        } else if self.notifications.len() >= MAX_NOTIFICATIONS {
            Some(format!(
                "more than {MAX_NOTIFICATIONS} notifications for one event"
            ))
        } else if json_size(&payload) > MAX_PAYLOAD_BYTES {
            Some(format!(
                "the payload is larger than {} KiB",
                MAX_PAYLOAD_BYTES / 1024
            ))
        } else {
            None
        };
        if let Some(why) = why {
            let reason = format!("rule {rule}: {call}: {why}");
            self.failure.get_or_insert(reason.clone());
            return Err(reason);
        }
        self.notifications.push(Notification {
            webhook: webhook.to_string(),
            payload,
            rule: Some(rule),
            event: firing.event.clone(),
        });
        self.actions.push(ActionRecord {
            call,
            changed: false,
            derived_event: None,
        });
        Ok(())
    }

    /// The values replaced by the changes made since the working state had
    /// `mark` changes.
    pub fn previous_values(&self, mark: usize) -> BTreeMap<String, Value> {
        self.working.changes()[mark..]
            .iter()
            .map(|c| (c.field.clone(), c.before.clone()))
            .collect()
    }

    pub fn begin_firing(&mut self, rule: &str, event: &Pending) {
        let mut chain = event.chain.clone();
        chain.push((rule.to_string(), event.id.clone()));
        self.firing = Some(RuleRun {
            rule: rule.to_string(),
            event: event.id.clone(),
            chain_text: event.chain_text(),
            chain,
        });
    }

    /// Ends the current rule run: its actions and the events they derived.
    pub fn end_firing(&mut self) -> (Vec<ActionRecord>, Vec<Pending>) {
        self.firing = None;
        (
            std::mem::take(&mut self.actions),
            std::mem::take(&mut self.derived),
        )
    }

    /// Applies an action of the running rule. A change derives an event of
    /// the same type; no change derives nothing. `Err` carries the reason
    /// the script stops.
    pub fn act(&mut self, kind: EventKind, call: String) -> Result<bool, String> {
        let Some(firing) = &self.firing else {
            return Err(format!("{call}: actions can only be taken by a rule"));
        };
        if self.derived_count >= MAX_DERIVED_EVENTS {
            let reason = format!(
                "more than {MAX_DERIVED_EVENTS} derived events for one event; stopped at {call}"
            );
            self.failure.get_or_insert(reason.clone());
            return Err(reason);
        }
        let rule = firing.rule.clone();
        if let Err(why) = crate::domain::event_checks::check_action(&kind) {
            let reason = format!("rule {rule}: {call}: {why}");
            self.rejection.get_or_insert(reason.clone());
            return Err(reason);
        }
        let id = format!("{}/{}", self.root, self.derived_count + 1);
        let cause = Cause {
            event: id.clone(),
            rule: Some(rule.clone()),
            chain: format!("{} → {rule} → {id}", firing.chain_text),
        };
        let mark = self.working.changes().len();
        match apply(&mut self.working, &kind, &self.stages, Mode::Action, &cause) {
            Ok(true) if over_budget(&mut self.change_bytes, &self.working, mark) => {
                Err(self.fail_over_budget(&call))
            }
            Ok(true) => {
                self.derived_count += 1;
                let chain = firing.chain.clone();
                let previous = self.previous_values(mark);
                self.derived.push(Pending {
                    id: id.clone(),
                    kind,
                    derived: true,
                    chain,
                    previous,
                });
                self.actions.push(ActionRecord {
                    call,
                    changed: true,
                    derived_event: Some(id),
                });
                Ok(true)
            }
            Ok(false) => {
                self.actions.push(ActionRecord {
                    call,
                    changed: false,
                    derived_event: None,
                });
                Ok(false)
            }
            Err(Stop::Rejected(reason)) => {
                let reason = format!("rule {rule}: {call}: {reason}");
                self.rejection.get_or_insert(reason.clone());
                Err(reason)
            }
            Err(Stop::Failed(reason)) => {
                self.failure.get_or_insert(reason.clone());
                Err(reason)
            }
        }
    }

    /// Fails the event: its changes passed `MAX_CHANGE_BYTES` at `call`.
    fn fail_over_budget(&mut self, call: &str) -> String {
        let reason = format!(
            "the event's changes take more than {} MiB; stopped at {call}",
            MAX_CHANGE_BYTES / (1024 * 1024)
        );
        self.failure.get_or_insert(reason.clone());
        reason
    }

    /// Names the rule whose `when` condition runs from now on (`None`:
    /// it has run).
    pub fn condition_of(&mut self, rule: Option<&str>) {
        self.condition_of = rule.map(str::to_string);
    }

    /// A rule's `reject(reason)`, from its script or its `when`.
    pub fn reject(&mut self, reason: &str) -> String {
        let rule = match (&self.firing, &self.condition_of) {
            (Some(firing), _) => firing.rule.as_str(),
            (None, Some(rule)) => rule.as_str(),
            (None, None) => "?",
        };
        let reason = format!(
            "rule {rule}: {}",
            crate::domain::clip::clip_to(reason, MAX_REASON_CHARS)
        );
        self.rejection.get_or_insert(reason.clone());
        reason
    }
}

/// About the bytes `value` takes as JSON, without writing it out.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(json_size).sum::<usize>() + 2,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + json_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

/// Adds the bytes of the changes made since `mark` to `total`; whether the
/// event has now changed more than `MAX_CHANGE_BYTES`.
fn over_budget(total: &mut usize, working: &Working, mark: usize) -> bool {
    let bytes: usize = working.changes()[mark..]
        .iter()
        .map(|c| {
            c.id.len()
                + c.field.len()
                + c.event.len()
                + c.chain.len()
                + c.rule.as_ref().map_or(0, String::len)
                + json_size(&c.before)
                + json_size(&c.after)
        })
        .sum();
    *total += bytes;
    *total > MAX_CHANGE_BYTES
}

//! A field-level change to the state, and what caused it.

use serde::Serialize;
use serde_json::Value;

/// Which kind of record a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Conversation,
    Ticket,
    BlockedContact,
    /// A timer, by its path (`ticket/T/auto-close`); its one field `due`.
    Timer,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Conversation => "conversation",
            Entity::Ticket => "ticket",
            Entity::BlockedContact => "blocked_contact",
            Entity::Timer => "timer",
        }
    }

    pub fn parse(name: &str) -> Option<Entity> {
        [
            Entity::Conversation,
            Entity::Ticket,
            Entity::BlockedContact,
            Entity::Timer,
        ]
        .into_iter()
        .find(|e| e.as_str() == name)
    }
}

/// One field of one record, before and after. A created record has the
/// field `created` going from `null` to `true`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub entity: Entity,
    pub id: String,
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// The event (original or derived) whose application made the change.
    pub event: String,
    /// The rule whose action made it; `None` for the original event.
    pub rule: Option<String>,
    /// The events and rules that led to it: `e6 → cascade-close → e6/1`.
    pub chain: String,
}

#[cfg(test)]
impl Change {
    /// A change the original event `e1` made itself (no rule), for tests.
    pub fn by_e1(entity: Entity, id: &str, field: &str, before: Value, after: Value) -> Change {
        Change {
            entity,
            id: id.into(),
            field: field.into(),
            before,
            after,
            event: "e1".into(),
            rule: None,
            chain: "e1".into(),
        }
    }
}

/// A record whose changes are audited field by field.
pub trait Audited {
    /// Each field with its value: what a new record is given.
    fn fields(&self) -> Vec<(String, Value)>;
    /// The fields that differ from `before`, with both values.
    fn changes_from(&self, before: &Self) -> Vec<(String, Value, Value)>;
    /// Whether a field is a column of the record's row (and not, say, an
    /// association stored elsewhere).
    fn is_stored(_field: &str) -> bool {
        true
    }
}

/// Pushes `(field, before, after)` for each listed field that differs.
macro_rules! changed_fields {
    ($out:expr, $before:expr, $after:expr, $($field:ident),+) => {
        $(
            if $before.$field != $after.$field {
                $out.push((
                    stringify!($field).to_string(),
                    serde_json::json!($before.$field),
                    serde_json::json!($after.$field),
                ));
            }
        )+
    };
}
pub(crate) use changed_fields;

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
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Conversation => "conversation",
            Entity::Ticket => "ticket",
            Entity::BlockedContact => "blocked_contact",
        }
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

/// The changes between two versions of a record, field by field; maps are
/// compared key by key (`properties.priority`).
pub fn diff(before: &Value, after: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    diff_into("", before, after, &mut out);
    out
}

fn diff_into(prefix: &str, before: &Value, after: &Value, out: &mut Vec<(String, Value, Value)>) {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        if before != after {
            out.push((prefix.to_string(), before.clone(), after.clone()));
        }
        return;
    };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let old = b.get(key).unwrap_or(&Value::Null);
        let new = a.get(key).unwrap_or(&Value::Null);
        diff_into(&name, old, new, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_nested_fields() {
        let before = json!({"status": "new", "properties": {"a": "1", "b": "2"}});
        let after = json!({"status": "closed", "properties": {"a": "1", "c": "3"}});
        let fields: Vec<String> = diff(&before, &after).into_iter().map(|d| d.0).collect();
        assert_eq!(fields, ["properties.b", "properties.c", "status"]);
    }

    #[test]
    fn equal_values_have_no_diff() {
        let v = json!({"x": [1, 2]});
        assert!(diff(&v, &v).is_empty());
    }
}

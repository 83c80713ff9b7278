//! The checks of an event's JSON before it is read as a typed event: its
//! `id` and `type`, the JSON type of every known field, and the size of
//! every string. Each error names the field: serde's, through the event
//! type's enum, would not.

use crate::domain::clip::{clip, quoted};
use serde_json::{Map, Value};

use crate::domain::event::EVENT_TYPES;

/// The largest input an event may carry. Anything larger is refused at
/// enqueue like any malformed input: a value a script cannot handle (its
/// strings are limited to 64 KiB) must never enter the queue, where it
/// would fail every rule that touches its record, or swell every event
/// that copies it.
pub mod limits {
    /// One event, as JSON.
    pub const MAX_EVENT_BYTES: usize = 64 * 1024;
    /// An id or a name: `id`, `conversation`, `ticket`, `owner`, `contact`,
    /// `inbox`, `channel`, `actor`, `property`, `status`, a property name.
    pub const MAX_ID_BYTES: usize = 512;
    /// Free text: `subject`, a property's value.
    pub const MAX_TEXT_BYTES: usize = 16 * 1024;
    /// Properties given at once in `ticket.created`.
    pub const MAX_PROPERTIES: usize = 100;
}

/// The fields holding free text, allowed `limits::MAX_TEXT_BYTES`.
const TEXT_FIELDS: [&str; 2] = ["subject", "value"];

/// Every check, in order: header, types, sizes.
pub fn check(object: &Map<String, Value>) -> Result<(), String> {
    check_header(object)?;
    check_types(object)?;
    check_sizes(object)
}

/// The fields of what an action asks for (its event kind), held to the
/// same limits as an event's: a rule may not create a record whose id an
/// event could not name.
pub fn check_action(kind: &crate::domain::event::EventKind) -> Result<(), String> {
    match serde_json::to_value(kind) {
        Ok(Value::Object(object)) => {
            check_types(&object)?;
            check_sizes(&object)
        }
        _ => Ok(()),
    }
}

/// `id` and `type` are checked first so that their errors are plain.
fn check_header(object: &Map<String, Value>) -> Result<(), String> {
    match object.get("id") {
        None => return Err("missing field `id`".into()),
        Some(serde_json::Value::String(id)) if id.trim().is_empty() => {
            return Err("`id` must not be empty".into())
        }
        Some(serde_json::Value::String(_)) => {}
        Some(other) => {
            return Err(format!(
                "`id` must be a string, not {}",
                clip(&other.to_string())
            ))
        }
    }
    match object.get("type") {
        None => Err("missing field `type`".into()),
        Some(serde_json::Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => Ok(()),
        Some(serde_json::Value::String(t)) if t == crate::domain::event::TIMER_FIRED => Err(
            "timer.fired events come from timers (start_ticket_timer, ...), not from producers"
                .into(),
        ),
        Some(serde_json::Value::String(t)) => Err(format!(
            "unknown event type {}; known types: {}",
            quoted(t),
            EVENT_TYPES.join(", ")
        )),
        Some(other) => Err(format!(
            "`type` must be a string, not {}",
            clip(&other.to_string())
        )),
    }
}

/// Every field this format knows, given with the right JSON type, so that
/// an error names the field (serde's, through the event type's enum,
/// would not).
fn check_types(object: &Map<String, Value>) -> Result<(), String> {
    use serde_json::Value;
    for (key, value) in object {
        match (key.as_str(), value) {
            // Checked by `check_header`.
            ("id" | "type", _) => {}
            (_, Value::Null | Value::String(_)) => {}
            ("properties", Value::Object(properties)) => {
                for (name, value) in properties {
                    if !matches!(value, Value::String(_)) {
                        return Err(format!(
                            "`properties.{}` must be a string, not {}",
                            clip(name),
                            clip(&value.to_string())
                        ));
                    }
                }
            }
            ("properties", other) => {
                return Err(format!(
                    "`properties` must be an object of strings, not {}",
                    clip(&other.to_string())
                ))
            }
            (field, other) if KNOWN_FIELDS.contains(&field) => {
                let what = if field == "at" {
                    "a string (an RFC 3339 time)"
                } else {
                    "a string"
                };
                return Err(format!(
                    "`{field}` must be {what}, not {}",
                    clip(&other.to_string())
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The string fields of every event type.
const KNOWN_FIELDS: [&str; 12] = [
    "at",
    "actor",
    "conversation",
    "ticket",
    "inbox",
    "channel",
    "contact",
    "subject",
    "owner",
    "status",
    "property",
    "value",
];

/// Every string of the event within its limit, and ids and names without
/// control characters (they would be printed raw, or move the terminal);
/// the first wrong one is named.
fn check_sizes(object: &Map<String, Value>) -> Result<(), String> {
    use limits::*;
    let within = |field: &str, text: &str, max: usize| {
        if text.len() > max {
            Err(format!(
                "`{field}` is {} bytes long; at most {max} are allowed",
                text.len()
            ))
        } else {
            Ok(())
        }
    };
    for (key, value) in object {
        match value {
            serde_json::Value::String(text) if TEXT_FIELDS.contains(&key.as_str()) => {
                within(key, text, MAX_TEXT_BYTES)?
            }
            serde_json::Value::String(text) => {
                within(key, text, MAX_ID_BYTES)?;
                printable(key, text)?;
            }
            serde_json::Value::Object(properties) if key == "properties" => {
                if properties.len() > MAX_PROPERTIES {
                    return Err(format!(
                        "`properties` has {} entries; at most {MAX_PROPERTIES} are allowed",
                        properties.len()
                    ));
                }
                for (name, value) in properties {
                    within("properties", name, MAX_ID_BYTES)
                        .map_err(|e| format!("a property name: {e}"))?;
                    printable("properties", name).map_err(|e| format!("a property name: {e}"))?;
                    if let serde_json::Value::String(text) = value {
                        within(&format!("properties.{name}"), text, MAX_TEXT_BYTES)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses control characters in an id or a name.
fn printable(field: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "`{field}` contains a control character ({}); ids and names may not",
            c.escape_unicode()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::event::Event;
    use crate::domain::state::Stages;

    use super::limits;
    use serde_json::json;

    fn stages() -> Stages {
        Stages::default()
    }

    #[test]
    fn a_huge_value_is_not_echoed_whole_in_its_error() {
        let huge = "a".repeat(60_000);
        let cases = [
            json!({"id": "e", "type": huge, "conversation": "c"}),
            json!({"id": [huge], "type": "conversation.created", "conversation": "c"}),
            json!({"id": "e", "type": "conversation.created", "conversation": {"x": huge}}),
            json!({"id": "e", "type": "ticket.created", "ticket": "t", "conversation": "c",
                   "properties": {"p": [huge]}}),
        ];
        for event in cases {
            let error = Event::parse(&event.to_string(), &Stages::default()).unwrap_err();
            assert!(
                error.len() < 600,
                "{} bytes: {}",
                error.len(),
                &error[..200]
            );
            assert!(error.contains("… ("), "{error}");
        }
    }

    #[test]
    fn oversized_input_is_refused_naming_the_field() {
        use limits::*;
        let long = |n: usize| "x".repeat(n);
        let cases = [
            (
                json_event(
                    "conversation.closed",
                    &[("conversation", &long(MAX_ID_BYTES + 1))],
                ),
                "`conversation` is 513 bytes long",
            ),
            (
                json_event(
                    "conversation.created",
                    &[
                        ("conversation", "c"),
                        ("subject", &long(MAX_TEXT_BYTES + 1)),
                    ],
                ),
                "`subject` is",
            ),
            (
                format!(
                    r#"{{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","properties":{{"p":"{}"}}}}"#,
                    long(MAX_TEXT_BYTES + 1)
                ),
                "`properties.p` is",
            ),
            (
                format!(
                    r#"{{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","properties":{{{}}}}}"#,
                    (0..=MAX_PROPERTIES)
                        .map(|i| format!(r#""p{i}":"v""#))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                "`properties` has 101 entries",
            ),
            (
                json_event(
                    "conversation.closed",
                    &[("conversation", "c"), ("actor", &long(MAX_ID_BYTES + 1))],
                ),
                "`actor` is",
            ),
            (
                json_event(
                    "conversation.closed",
                    &[("conversation", "c"), ("padding", &long(MAX_EVENT_BYTES))],
                ),
                "the event is",
            ),
        ];
        for (line, expected) in cases {
            let err = Event::parse(&line, &stages()).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        // At the limits: accepted.
        let subject = long(MAX_TEXT_BYTES);
        let at_limit = json_event(
            "conversation.created",
            &[("conversation", &long(MAX_ID_BYTES)), ("subject", &subject)],
        );
        assert!(Event::parse(&at_limit, &stages()).is_ok());
    }

    fn json_event(kind: &str, fields: &[(&str, &str)]) -> String {
        let mut event = serde_json::json!({"id": "e", "type": kind});
        for (k, v) in fields {
            event[*k] = serde_json::Value::from(*v);
        }
        event.to_string()
    }

    #[test]
    fn wrong_types_repeated_keys_and_control_characters_name_the_field() {
        let cases = [
            (
                r#"{"id":"e","type":"conversation.closed","conversation":"c","at":5}"#,
                "`at` must be a string (an RFC 3339 time), not 5",
            ),
            (
                r#"{"id":"e","type":"conversation.owner_changed","conversation":"c","owner":["a"]}"#,
                "`owner` must be a string",
            ),
            (
                r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","properties":{"p":1}}"#,
                "`properties.p` must be a string",
            ),
            (
                r#"{"id":"e","type":"conversation.closed","conversation":"c","conversation":"d"}"#,
                "`conversation` is given twice",
            ),
            (
                r#"{"id":"e\u001b[31m","type":"conversation.closed","conversation":"c"}"#,
                "`id` contains a control character",
            ),
            (
                r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","properties":{"p\n":"v"}}"#,
                "a property name: `properties` contains a control character",
            ),
        ];
        for (line, expected) in cases {
            let err = Event::parse(line, &stages()).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
        // Free text may hold line breaks.
        let subject =
            r#"{"id":"e","type":"conversation.created","conversation":"c","subject":"a\nb"}"#;
        assert!(Event::parse(subject, &stages()).is_ok());
    }
}

//! The inbox event: the JSON format of `spec/INTERFACE.md`, parsed into a
//! typed value and validated before anything enters the queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::state::Stages;

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

/// One inbox event: a fact ("an agent closed conversation c1").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The idempotency key.
    pub id: String,
    /// RFC 3339 time; filled in with the enqueue time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with the fields of its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    #[serde(rename = "conversation.created")]
    ConversationCreated {
        conversation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inbox: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    #[serde(rename = "conversation.owner_changed")]
    ConversationOwnerChanged {
        conversation: String,
        #[serde(deserialize_with = "required_nullable")]
        owner: Option<String>,
    },
    #[serde(rename = "conversation.closed")]
    ConversationClosed { conversation: String },
    #[serde(rename = "conversation.reopened")]
    ConversationReopened { conversation: String },
    #[serde(rename = "conversation.trashed")]
    ConversationTrashed { conversation: String },
    #[serde(rename = "conversation.marked_spam")]
    ConversationMarkedSpam { conversation: String },
    #[serde(rename = "conversation.sender_blocked")]
    ConversationSenderBlocked { conversation: String },
    #[serde(rename = "ticket.created")]
    TicketCreated {
        ticket: String,
        conversation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// Absent or `null`: the conversation's owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// Absent or `null`: none.
        #[serde(
            default,
            deserialize_with = "null_as_empty",
            skip_serializing_if = "BTreeMap::is_empty"
        )]
        properties: BTreeMap<String, String>,
    },
    #[serde(rename = "ticket.associated")]
    TicketAssociated {
        ticket: String,
        conversation: String,
    },
    #[serde(rename = "ticket.owner_changed")]
    TicketOwnerChanged {
        ticket: String,
        #[serde(deserialize_with = "required_nullable")]
        owner: Option<String>,
    },
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged { ticket: String, status: String },
    #[serde(rename = "ticket.property_changed")]
    TicketPropertyChanged {
        ticket: String,
        property: String,
        #[serde(deserialize_with = "required_nullable")]
        value: Option<String>,
    },
    #[serde(rename = "ticket.deleted")]
    TicketDeleted { ticket: String },
}

/// Every event type, in the order of the spec.
pub const EVENT_TYPES: [&str; 13] = [
    "conversation.created",
    "conversation.owner_changed",
    "conversation.closed",
    "conversation.reopened",
    "conversation.trashed",
    "conversation.marked_spam",
    "conversation.sender_blocked",
    "ticket.created",
    "ticket.associated",
    "ticket.owner_changed",
    "ticket.status_changed",
    "ticket.property_changed",
    "ticket.deleted",
];

/// An optional map given as `null` is an empty one.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A field that must be present but may be `null`.
fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

impl EventKind {
    /// The `type` string of the event.
    pub fn type_name(&self) -> &'static str {
        use EventKind::*;
        match self {
            ConversationCreated { .. } => "conversation.created",
            ConversationOwnerChanged { .. } => "conversation.owner_changed",
            ConversationClosed { .. } => "conversation.closed",
            ConversationReopened { .. } => "conversation.reopened",
            ConversationTrashed { .. } => "conversation.trashed",
            ConversationMarkedSpam { .. } => "conversation.marked_spam",
            ConversationSenderBlocked { .. } => "conversation.sender_blocked",
            TicketCreated { .. } => "ticket.created",
            TicketAssociated { .. } => "ticket.associated",
            TicketOwnerChanged { .. } => "ticket.owner_changed",
            TicketStatusChanged { .. } => "ticket.status_changed",
            TicketPropertyChanged { .. } => "ticket.property_changed",
            TicketDeleted { .. } => "ticket.deleted",
        }
    }

    /// The ids the event names, for the checks that they are not empty.
    fn ids(&self) -> Vec<(&'static str, &str)> {
        use EventKind::*;
        match self {
            ConversationCreated { conversation, .. }
            | ConversationOwnerChanged { conversation, .. }
            | ConversationClosed { conversation }
            | ConversationReopened { conversation }
            | ConversationTrashed { conversation }
            | ConversationMarkedSpam { conversation }
            | ConversationSenderBlocked { conversation } => vec![("conversation", conversation)],
            TicketCreated {
                ticket,
                conversation,
                ..
            }
            | TicketAssociated {
                ticket,
                conversation,
            } => vec![("ticket", ticket), ("conversation", conversation)],
            TicketOwnerChanged { ticket, .. }
            | TicketStatusChanged { ticket, .. }
            | TicketDeleted { ticket } => vec![("ticket", ticket)],
            TicketPropertyChanged {
                ticket, property, ..
            } => vec![("ticket", ticket), ("property", property)],
        }
    }

    /// The stage the event names, if any, to check against the pipeline.
    fn stage(&self) -> Option<&str> {
        match self {
            EventKind::TicketCreated { status, .. } => status.as_deref(),
            EventKind::TicketStatusChanged { status, .. } => Some(status),
            _ => None,
        }
    }
}

impl Event {
    /// Parses and validates one JSON event. `stages` is the ticket pipeline
    /// that `status` fields must name.
    ///
    /// ```
    /// use inboxd::event::Event;
    /// use inboxd::state::Stages;
    ///
    /// let line = r#"{"id":"e1","type":"ticket.status_changed","ticket":"T","status":"closed"}"#;
    /// let event = Event::parse(line, &Stages::default()).unwrap();
    /// assert_eq!(event.type_name(), "ticket.status_changed");
    ///
    /// let bad = r#"{"id":"e2","type":"ticket.status_changed","ticket":"T","status":"done"}"#;
    /// assert!(Event::parse(bad, &Stages::default()).unwrap_err().contains("unknown status"));
    /// ```
    pub fn parse(text: &str, stages: &Stages) -> Result<Event, String> {
        if text.len() > limits::MAX_EVENT_BYTES {
            return Err(format!(
                "the event is {} bytes long; at most {} are allowed",
                text.len(),
                limits::MAX_EVENT_BYTES
            ));
        }
        let value = crate::strict_json::parse(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "an event must be a JSON object".to_string())?;
        check_header(object)?;
        check_types(object)?;
        check_sizes(object)?;
        let type_name = object["type"].as_str().unwrap_or_default().to_string();
        let event: Event =
            serde_json::from_value(value).map_err(|e| format!("{type_name}: {e}"))?;
        event.validate(stages)?;
        Ok(event)
    }

    fn validate(&self, stages: &Stages) -> Result<(), String> {
        if let Some(at) = &self.at {
            parse_time(at).map_err(|e| format!("`at` is not an RFC 3339 time ({at:?}): {e}"))?;
        }
        for (field, value) in self.kind.ids() {
            if value.trim().is_empty() {
                return Err(format!("`{field}` must not be empty"));
            }
        }
        if let Some(stage) = self.kind.stage() {
            if !stages.contains(stage) {
                return Err(format!(
                    "unknown status {stage:?}: the pipeline's stages are {}",
                    stages.ids().join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

/// `id` and `type` are checked first so that their errors are plain.
fn check_header(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    match object.get("id") {
        None => return Err("missing field `id`".into()),
        Some(serde_json::Value::String(id)) if id.trim().is_empty() => {
            return Err("`id` must not be empty".into())
        }
        Some(serde_json::Value::String(_)) => {}
        Some(other) => return Err(format!("`id` must be a string, not {other}")),
    }
    match object.get("type") {
        None => Err("missing field `type`".into()),
        Some(serde_json::Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => Ok(()),
        Some(serde_json::Value::String(t)) => Err(format!(
            "unknown event type {t:?}; known types: {}",
            EVENT_TYPES.join(", ")
        )),
        Some(other) => Err(format!("`type` must be a string, not {other}")),
    }
}

/// Every field this format knows, given with the right JSON type, so that
/// an error names the field (serde's, through the event type's enum,
/// would not).
fn check_types(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    use serde_json::Value;
    for (key, value) in object {
        match (key.as_str(), value) {
            // Checked by `check_header`.
            ("id" | "type", _) => {}
            (_, Value::Null | Value::String(_)) => {}
            ("properties", Value::Object(properties)) => {
                for (name, value) in properties {
                    if !matches!(value, Value::String(_)) {
                        return Err(format!("`properties.{name}` must be a string, not {value}"));
                    }
                }
            }
            ("properties", other) => {
                return Err(format!(
                    "`properties` must be an object of strings, not {other}"
                ))
            }
            (field, other) if KNOWN_FIELDS.contains(&field) => {
                let what = if field == "at" {
                    "a string (an RFC 3339 time)"
                } else {
                    "a string"
                };
                return Err(format!("`{field}` must be {what}, not {other}"));
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
fn check_sizes(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
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

pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, time::error::Parse> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
}

/// The current time in RFC 3339, UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time always formats")
}

/// Parses JSON Lines. Blank lines are skipped; the first bad line fails the
/// whole batch, named by its 1-based number.
pub fn parse_batch(text: &str, stages: &Stages) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = Event::parse(line, stages).map_err(|e| format!("line {}: {e}", index + 1))?;
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Stages {
        Stages::default()
    }

    #[test]
    fn parses_every_type_and_round_trips() {
        let lines = [
            r#"{"id":"e1","type":"conversation.created","conversation":"c1","contact":"a@b"}"#,
            r#"{"id":"e2","type":"conversation.owner_changed","conversation":"c1","owner":null}"#,
            r#"{"id":"e3","type":"ticket.created","ticket":"t1","conversation":"c1","owner":null,"properties":{"p":"v"}}"#,
            r#"{"id":"e4","type":"ticket.property_changed","ticket":"t1","property":"p","value":"x"}"#,
            r#"{"id":"e5","type":"ticket.status_changed","ticket":"t1","status":"closed","at":"2025-01-01T10:00:00+02:00"}"#,
        ];
        for line in lines {
            let event = Event::parse(line, &stages()).unwrap();
            let again = Event::parse(&event.to_json(), &stages()).unwrap();
            assert_eq!(event, again);
        }
    }

    #[test]
    fn a_ticket_created_with_a_null_owner_has_none_given() {
        let absent = r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c"}"#;
        let null =
            r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","owner":null}"#;
        let owner = |line| match Event::parse(line, &stages()).unwrap().kind {
            EventKind::TicketCreated { owner, .. } => owner,
            _ => unreachable!(),
        };
        assert_eq!(owner(absent), None);
        assert_eq!(owner(null), None);
    }

    #[test]
    fn optional_fields_may_be_null() {
        let line = r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","subject":null,"status":null,"properties":null,"at":null,"actor":null}"#;
        let event = Event::parse(line, &stages()).unwrap();
        assert_eq!(
            event.kind,
            EventKind::TicketCreated {
                ticket: "t".into(),
                conversation: "c".into(),
                subject: None,
                owner: None,
                status: None,
                properties: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn refuses_malformed_events_with_a_reason() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"type":"conversation.closed"}"#, "missing field `id`"),
            (r#"{"id":"e"}"#, "missing field `type`"),
            (
                r#"{"id":7,"type":"conversation.closed"}"#,
                "`id` must be a string",
            ),
            (
                r#"{"id":"e","type":"conversation.exploded"}"#,
                "unknown event type",
            ),
            (
                r#"{"id":"e","type":"conversation.closed"}"#,
                "missing field `conversation`",
            ),
            (
                r#"{"id":"e","type":"conversation.closed","conversation":3}"#,
                "`conversation` must be a string, not 3",
            ),
            (
                r#"{"id":"e","type":"conversation.owner_changed","conversation":"c"}"#,
                "missing field `owner`",
            ),
            (
                r#"{"id":"e","type":"ticket.status_changed","ticket":"t","status":"done"}"#,
                "unknown status",
            ),
            (
                r#"{"id":"e","type":"conversation.closed","conversation":""}"#,
                "must not be empty",
            ),
            (
                r#"{"id":"e","type":"conversation.closed","conversation":"c","at":"yesterday"}"#,
                "RFC 3339",
            ),
            (
                r#"{"id":"e","type":"ticket.created","ticket":"t","conversation":"c","properties":{"a":1}}"#,
                "`properties.a` must be a string",
            ),
        ];
        for (line, expected) in cases {
            let err = Event::parse(line, &stages()).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
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

    #[test]
    fn a_bad_line_fails_the_batch_and_names_its_number() {
        let text =
            "{\"id\":\"a\",\"type\":\"conversation.closed\",\"conversation\":\"c\"}\n\nnope\n";
        let err = parse_batch(text, &stages()).unwrap_err();
        assert!(err.starts_with("line 3: "), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = parse_batch(&text, &stages());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse_batch(&String::from_utf8_lossy(&bytes), &stages());
        }

        #[test]
        fn json_shaped_noise_never_panics(
            id in proptest::option::of("[a-z0-9]{0,3}"),
            kind in proptest::sample::select(EVENT_TYPES.to_vec()),
            fields in proptest::collection::btree_map("[a-z_]{1,12}", "(null|true|1|\"x\"|\\{\\}|\\[\\])", 0..6),
        ) {
            let mut text = format!("{{\"type\":\"{kind}\"");
            if let Some(id) = id { text += &format!(",\"id\":\"{id}\""); }
            for (k, v) in fields { text += &format!(",\"{k}\":{v}"); }
            text += "}";
            let _ = Event::parse(&text, &stages());
        }
    }
}

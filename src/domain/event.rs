//! The inbox event: the JSON format of `spec/INTERFACE.md`, parsed into a
//! typed value and validated before anything enters the queue.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::event_checks;
use crate::domain::state::Stages;

pub use crate::domain::event_checks::limits;

/// One inbox event: a fact ("an agent closed conversation c1"). Read from
/// JSON by `event_deserialize.rs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The idempotency key.
    pub id: String,
    /// RFC 3339 time; filled in with the enqueue time when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with the fields of its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum EventKind {
    #[serde(rename = "conversation.created")]
    ConversationCreated {
        conversation: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        inbox: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        contact: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    #[serde(rename = "conversation.owner_changed")]
    ConversationOwnerChanged {
        conversation: String,
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
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// Absent or `null`: the conversation's owner.
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// Absent or `null`: none.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
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
        owner: Option<String>,
    },
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged { ticket: String, status: String },
    #[serde(rename = "ticket.property_changed")]
    TicketPropertyChanged {
        ticket: String,
        property: String,
        value: Option<String>,
    },
    #[serde(rename = "ticket.deleted")]
    TicketDeleted { ticket: String },
    /// A timer came due (never from a producer: from the timeline).
    #[serde(rename = "timer.fired")]
    TimerFired {
        timer: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ticket: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation: Option<String>,
    },
}

/// The type of the events timers fire.
pub const TIMER_FIRED: &str = "timer.fired";

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
            TimerFired { .. } => TIMER_FIRED,
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
            TimerFired {
                timer,
                ticket,
                conversation,
            } => {
                let mut ids = vec![("timer", timer.as_str())];
                ids.extend(ticket.as_deref().map(|t| ("ticket", t)));
                ids.extend(conversation.as_deref().map(|c| ("conversation", c)));
                ids
            }
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
    /// use inboxd::domain::event::Event;
    /// use inboxd::domain::state::Stages;
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
        let value =
            crate::domain::strict_json::parse(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "an event must be a JSON object".to_string())?;
        event_checks::check(object)?;
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

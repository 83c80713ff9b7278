//! Reading an event from JSON in one pass. serde's derive for a tagged
//! enum flattened into a struct (the event's shape) buffers every field in
//! a tree of its own and reads that tree again: an allocation per key and
//! twice the work, for every event the daemon takes off its queue. This
//! reads each field once, into a slot, and builds the event's kind from
//! the slots; its errors are serde's (a missing field, a field given
//! twice, an unknown type, a value of the wrong JSON type).
//!
//! As with the derive, only the fields of the event's type must have their
//! JSON type (a string or `null`; `properties` an object of strings); a
//! field of another type is skipped whatever it holds (the type may come
//! after it), and so are fields the format does not know.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::event::{Event, EventKind, EVENT_TYPES, TIMER_FIRED};

mod given;

use given::{FieldValue, Given, Odd};

/// Every `type` an event may have: the format's, then the timeline's.
const TYPES: [&str; EVENT_TYPES.len() + 1] = {
    let mut all = [TIMER_FIRED; EVENT_TYPES.len() + 1];
    let mut i = 0;
    while i < EVENT_TYPES.len() {
        all[i] = EVENT_TYPES[i];
        i += 1;
    }
    all
};

/// A field: absent (`None`) or as given.
type Slot<T> = Option<Given<T>>;

/// The fields of every event type, as read.
#[derive(Default)]
struct Fields {
    id: Slot<String>,
    at: Slot<String>,
    actor: Slot<String>,
    kind: Slot<String>,
    conversation: Slot<String>,
    ticket: Slot<String>,
    inbox: Slot<String>,
    channel: Slot<String>,
    contact: Slot<String>,
    subject: Slot<String>,
    owner: Slot<String>,
    status: Slot<String>,
    property: Slot<String>,
    value: Slot<String>,
    timer: Slot<String>,
    properties: Slot<BTreeMap<String, String>>,
}

/// A key of the event object, read without copying it.
enum Key {
    Id,
    At,
    Actor,
    Type,
    Conversation,
    Ticket,
    Inbox,
    Channel,
    Contact,
    Subject,
    Owner,
    Status,
    Property,
    Value,
    Timer,
    Properties,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "id" => Key::Id,
            "at" => Key::At,
            "actor" => Key::Actor,
            "type" => Key::Type,
            "conversation" => Key::Conversation,
            "ticket" => Key::Ticket,
            "inbox" => Key::Inbox,
            "channel" => Key::Channel,
            "contact" => Key::Contact,
            "subject" => Key::Subject,
            "owner" => Key::Owner,
            "status" => Key::Status,
            "property" => Key::Property,
            "value" => Key::Value,
            "timer" => Key::Timer,
            "properties" => Key::Properties,
            _ => Key::Other,
        })
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let (slot, name) = match key {
                Key::Id => (&mut fields.id, "id"),
                Key::At => (&mut fields.at, "at"),
                Key::Actor => (&mut fields.actor, "actor"),
                Key::Type => (&mut fields.kind, "type"),
                Key::Conversation => (&mut fields.conversation, "conversation"),
                Key::Ticket => (&mut fields.ticket, "ticket"),
                Key::Inbox => (&mut fields.inbox, "inbox"),
                Key::Channel => (&mut fields.channel, "channel"),
                Key::Contact => (&mut fields.contact, "contact"),
                Key::Subject => (&mut fields.subject, "subject"),
                Key::Owner => (&mut fields.owner, "owner"),
                Key::Status => (&mut fields.status, "status"),
                Key::Property => (&mut fields.property, "property"),
                Key::Value => (&mut fields.value, "value"),
                Key::Timer => (&mut fields.timer, "timer"),
                Key::Properties => {
                    fill(&mut fields.properties, "properties", &mut map)?;
                    continue;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            fill(slot, name, &mut map)?;
        }
        fields.into_event()
    }
}

/// Reads the value of the field just named into its slot.
fn fill<'de, T: FieldValue, A: MapAccess<'de>>(
    slot: &mut Slot<T>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// A field that must be given, not `null`.
fn required<E: de::Error>(slot: Slot<String>, name: &'static str) -> Result<String, E> {
    match slot {
        None => Err(E::missing_field(name)),
        Some(Given::Null) => Err(Odd::Null.error("a string")),
        Some(Given::Odd(odd, expected)) => Err(odd.error(expected)),
        Some(Given::Value(value)) => Ok(value),
    }
}

/// A field that must be given, `null` allowed.
fn nullable<E: de::Error>(slot: Slot<String>, name: &'static str) -> Result<Option<String>, E> {
    match slot {
        None => Err(E::missing_field(name)),
        Some(given) => optional(Some(given)),
    }
}

/// A field that may be absent or `null`.
fn optional<T, E: de::Error>(slot: Slot<T>) -> Result<Option<T>, E> {
    match slot {
        None | Some(Given::Null) => Ok(None),
        Some(Given::Odd(odd, expected)) => Err(odd.error(expected)),
        Some(Given::Value(value)) => Ok(Some(value)),
    }
}

impl Fields {
    fn into_event<E: de::Error>(mut self) -> Result<Event, E> {
        Ok(Event {
            id: required(self.id.take(), "id")?,
            at: optional(self.at.take())?,
            actor: optional(self.actor.take())?,
            kind: self.kind()?,
        })
    }

    fn kind<E: de::Error>(self) -> Result<EventKind, E> {
        use EventKind::*;
        let Fields {
            kind,
            conversation,
            ticket,
            inbox,
            channel,
            contact,
            subject,
            owner,
            status,
            property,
            value,
            timer,
            properties,
            ..
        } = self;
        let kind = required(kind, "type")?;
        Ok(match kind.as_str() {
            "conversation.created" => ConversationCreated {
                conversation: required(conversation, "conversation")?,
                inbox: optional(inbox)?,
                channel: optional(channel)?,
                contact: optional(contact)?,
                subject: optional(subject)?,
                owner: optional(owner)?,
            },
            "conversation.owner_changed" => ConversationOwnerChanged {
                conversation: required(conversation, "conversation")?,
                owner: nullable(owner, "owner")?,
            },
            "conversation.closed" => ConversationClosed {
                conversation: required(conversation, "conversation")?,
            },
            "conversation.reopened" => ConversationReopened {
                conversation: required(conversation, "conversation")?,
            },
            "conversation.trashed" => ConversationTrashed {
                conversation: required(conversation, "conversation")?,
            },
            "conversation.marked_spam" => ConversationMarkedSpam {
                conversation: required(conversation, "conversation")?,
            },
            "conversation.sender_blocked" => ConversationSenderBlocked {
                conversation: required(conversation, "conversation")?,
            },
            "ticket.created" => TicketCreated {
                ticket: required(ticket, "ticket")?,
                conversation: required(conversation, "conversation")?,
                subject: optional(subject)?,
                owner: optional(owner)?,
                status: optional(status)?,
                properties: optional(properties)?.unwrap_or_default(),
            },
            "ticket.associated" => TicketAssociated {
                ticket: required(ticket, "ticket")?,
                conversation: required(conversation, "conversation")?,
            },
            "ticket.owner_changed" => TicketOwnerChanged {
                ticket: required(ticket, "ticket")?,
                owner: nullable(owner, "owner")?,
            },
            "ticket.status_changed" => TicketStatusChanged {
                ticket: required(ticket, "ticket")?,
                status: required(status, "status")?,
            },
            "ticket.property_changed" => TicketPropertyChanged {
                ticket: required(ticket, "ticket")?,
                property: required(property, "property")?,
                value: nullable(value, "value")?,
            },
            "ticket.deleted" => TicketDeleted {
                ticket: required(ticket, "ticket")?,
            },
            "timer.fired" => TimerFired {
                timer: required(timer, "timer")?,
                ticket: optional(ticket)?,
                conversation: optional(conversation)?,
            },
            other => return Err(E::unknown_variant(other, &TYPES)),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn read(value: serde_json::Value) -> Result<Event, String> {
        let text = value.to_string();
        let from_text = serde_json::from_str::<Event>(&text).map_err(|e| e.to_string());
        let from_value = serde_json::from_value::<Event>(value).map_err(|e| e.to_string());
        // The same event (or error, less its position) either way.
        match (&from_text, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert!(a.starts_with(b.as_str()), "{a} / {b}"),
            _ => panic!("{text}: {from_text:?} / {from_value:?}"),
        }
        from_value
    }

    #[test]
    fn absent_null_and_given_fields_are_told_apart() {
        let created = read(json!({"id": "e", "type": "ticket.created", "ticket": "t",
            "conversation": "c", "owner": null, "properties": null, "at": null}))
        .unwrap();
        assert_eq!(created.at, None);
        assert_eq!(
            created.kind,
            EventKind::TicketCreated {
                ticket: "t".into(),
                conversation: "c".into(),
                subject: None,
                owner: None,
                status: None,
                properties: BTreeMap::new(),
            }
        );
        // `owner` must be given to a change of owner, `null` or not.
        let unowned =
            read(json!({"id": "e", "type": "ticket.owner_changed", "ticket": "t", "owner": null}));
        assert!(matches!(
            unowned.unwrap().kind,
            EventKind::TicketOwnerChanged { owner: None, .. }
        ));
        let err = read(json!({"id": "e", "type": "ticket.owner_changed", "ticket": "t"}));
        assert_eq!(err.unwrap_err(), "missing field `owner`");
        let err = read(json!({"id": "e", "type": "conversation.closed", "conversation": null}));
        assert_eq!(err.unwrap_err(), "invalid type: null, expected a string");
    }

    #[test]
    fn fields_of_other_types_and_unknown_ones_are_skipped() {
        let event = read(
            json!({"id": "e", "type": "conversation.closed", "conversation": "c",
            "ticket": "t", "owner": "ann", "extra": {"deep": [1, 2]}, "actor": "bob"}),
        )
        .unwrap();
        assert_eq!(event.actor.as_deref(), Some("bob"));
        assert_eq!(
            event.kind,
            EventKind::ConversationClosed {
                conversation: "c".into()
            }
        );
    }

    /// As serde's derive did: the type says which fields must hold what.
    #[test]
    fn a_field_of_another_type_is_skipped_whatever_it_holds() {
        let event = read(
            json!({"id": "e", "timer": 1, "properties": "x", "status": {"a": [1]},
            "value": [null], "ticket": false, "type": "conversation.closed", "conversation": "c"}),
        )
        .unwrap();
        assert_eq!(
            event.kind,
            EventKind::ConversationClosed {
                conversation: "c".into()
            }
        );
        // So a producer's stray `timer` is no reason to refuse its event.
        let line = r#"{"id":"e","type":"conversation.closed","conversation":"c","timer":1}"#;
        assert!(Event::parse(line, &crate::domain::state::Stages::default()).is_ok());
    }

    #[test]
    fn bad_objects_are_refused_with_serdes_errors() {
        let cases = [
            (
                json!({"type": "conversation.closed", "conversation": "c"}),
                "missing field `id`",
            ),
            (
                json!({"id": "e", "conversation": "c"}),
                "missing field `type`",
            ),
            (
                json!({"id": "e", "type": "ticket.deleted"}),
                "missing field `ticket`",
            ),
            (
                json!({"id": "e", "type": "nope", "conversation": "c"}),
                "unknown variant `nope`",
            ),
            (
                json!({"id": "e", "type": "ticket.deleted", "ticket": 3}),
                "invalid type: integer `3`",
            ),
            (
                json!({"id": "e", "type": "ticket.created", "ticket": "t", "conversation": "c",
                "properties": {"p": 1}}),
                "invalid type: integer `1`, expected a string",
            ),
            (
                json!({"id": "e", "type": "ticket.created", "ticket": "t", "conversation": "c",
                "properties": {"p": null}}),
                "invalid type: null, expected a string",
            ),
            (
                json!({"id": "e", "type": "ticket.created", "ticket": "t", "conversation": "c",
                "properties": "p"}),
                "invalid type: string \"p\", expected a map",
            ),
            (
                json!({"id": "e", "type": "conversation.created", "conversation": "c",
                "subject": ["s"]}),
                "invalid type: sequence, expected a string",
            ),
            (
                json!({"id": "e", "type": "conversation.closed", "conversation": "c", "at": 5}),
                "invalid type: integer `5`, expected a string",
            ),
            (json!([1, 2]), "invalid type"),
        ];
        for (value, expected) in cases {
            let err = read(value.clone()).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
        let twice =
            r#"{"id":"e","type":"conversation.closed","conversation":"a","conversation":"b"}"#;
        let err = serde_json::from_str::<Event>(twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `conversation`"), "{err}");
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z\"\\\\é\u{1F600} ]{0,6}"
    }

    fn maybe() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn kind() -> impl Strategy<Value = EventKind> {
        use EventKind::*;
        prop_oneof![
            (text(), maybe(), maybe(), maybe(), maybe(), maybe()).prop_map(
                |(conversation, inbox, channel, contact, subject, owner)| ConversationCreated {
                    conversation,
                    inbox,
                    channel,
                    contact,
                    subject,
                    owner
                }
            ),
            (text(), maybe()).prop_map(|(conversation, owner)| ConversationOwnerChanged {
                conversation,
                owner
            }),
            text().prop_map(|conversation| ConversationClosed { conversation }),
            text().prop_map(|conversation| ConversationReopened { conversation }),
            text().prop_map(|conversation| ConversationTrashed { conversation }),
            text().prop_map(|conversation| ConversationMarkedSpam { conversation }),
            text().prop_map(|conversation| ConversationSenderBlocked { conversation }),
            (
                text(),
                text(),
                maybe(),
                maybe(),
                maybe(),
                proptest::collection::btree_map(text(), text(), 0..3)
            )
                .prop_map(
                    |(ticket, conversation, subject, owner, status, properties)| {
                        TicketCreated {
                            ticket,
                            conversation,
                            subject,
                            owner,
                            status,
                            properties,
                        }
                    }
                ),
            (text(), text()).prop_map(|(ticket, conversation)| TicketAssociated {
                ticket,
                conversation
            }),
            (text(), maybe()).prop_map(|(ticket, owner)| TicketOwnerChanged { ticket, owner }),
            (text(), text()).prop_map(|(ticket, status)| TicketStatusChanged { ticket, status }),
            (text(), text(), maybe()).prop_map(|(ticket, property, value)| {
                TicketPropertyChanged {
                    ticket,
                    property,
                    value,
                }
            }),
            text().prop_map(|ticket| TicketDeleted { ticket }),
            (text(), maybe(), maybe()).prop_map(|(timer, ticket, conversation)| TimerFired {
                timer,
                ticket,
                conversation
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_event_reads_back_as_written(id in text(), at in maybe(), actor in maybe(), kind in kind()) {
            let event = Event { id, at, actor, kind };
            prop_assert_eq!(&read(serde_json::to_value(&event).unwrap()).unwrap(), &event);
            prop_assert_eq!(&serde_json::from_str::<Event>(&event.to_json()).unwrap(), &event);
        }
    }
}

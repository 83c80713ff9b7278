//! HubSpot webhook payloads → inbox events (`inboxd enqueue --format
//! hubspot`). A webhook delivery is a JSON array of notifications; the
//! mapping, field by field, is in the README ("HubSpot webhooks").

use crate::domain::clip::clip;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::domain::event::{Event, EventKind};
use crate::domain::state::Stages;

/// One notification of a webhook batch (the fields inboxd reads). Ids are
/// read from the JSON text itself: HubSpot's ids are integers that may not
/// fit a float, and each digit counts.
#[derive(Debug)]
struct Notification {
    subscription_type: String,
    /// `Err` says why the id is unusable; an error only if the
    /// notification maps to an event.
    event_id: Result<String, String>,
    object_id: Result<String, String>,
    occurred_at: Option<i64>,
    property_name: Option<String>,
    property_value: Option<String>,
    change_source: Option<String>,
}

/// The mapped events, and a note for each notification that maps to none.
#[derive(Debug, Default)]
pub struct Mapped {
    pub events: Vec<Event>,
    pub skipped: Vec<String>,
}

/// HubSpot's default support pipeline's stage ids, and ours.
const STAGE_IDS: [(&str, &str); 4] = [
    ("1", "new"),
    ("2", "waiting_on_contact"),
    ("3", "waiting_on_us"),
    ("4", "closed"),
];

/// Maps a webhook body: a JSON array of notifications (or several, one per
/// line). Malformed input, or a notification that maps to an event but has
/// no usable id, fails the whole body; a notification of a type that maps
/// to nothing is skipped whatever its other fields.
pub fn map(text: &str, stages: &Stages) -> Result<Mapped, String> {
    let batches: Vec<(usize, &RawValue)> = match serde_json::from_str::<&RawValue>(text) {
        Ok(whole) => vec![(1, whole)],
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str::<&RawValue>(l)
                    .map(|v| (i + 1, v))
                    .map_err(|e| format!("line {}: not valid JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut mapped = Mapped::default();
    for (line, batch) in batches {
        let items: Vec<&RawValue> = match batch.get().trim_start().as_bytes().first() {
            Some(b'[') => serde_json::from_str(batch.get())
                .map_err(|e| format!("line {line}: not valid JSON: {e}"))?,
            Some(b'{') => vec![batch],
            _ => {
                return Err(format!(
                    "line {line}: expected an array of webhook notifications"
                ))
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            let place = format!("line {line}, notification {}", i + 1);
            let n = notification(item).map_err(|e| format!("{place}: {e}"))?;
            map_one(&n, &place, stages, &mut mapped)?;
        }
    }
    Ok(mapped)
}

/// Adds the event `n` means to `mapped`, or notes why it means none.
fn map_one(
    n: &Notification,
    place: &str,
    stages: &Stages,
    mapped: &mut Mapped,
) -> Result<(), String> {
    let kind = match to_kind(n) {
        Ok(kind) => kind,
        Err(Unmapped(why)) => {
            mapped
                .skipped
                .push(format!("{place} ({}): {why}", clip(&n.subscription_type)));
            return Ok(());
        }
    };
    let kind = kind.map_err(|e| format!("{place} ({}): {e}", clip(&n.subscription_type)))?;
    let event_id = n
        .event_id
        .as_ref()
        .map_err(|e| format!("{place} ({}): `eventId` {e}", n.subscription_type))?;
    let event = Event {
        id: format!("hubspot-{event_id}"),
        at: n.occurred_at.and_then(millis_to_rfc3339),
        actor: n.change_source.clone(),
        kind,
    };
    let event = Event::parse(&event.to_json(), stages)
        .map_err(|e| format!("{place} ({}): {e}", n.subscription_type))?;
    mapped.events.push(event);
    Ok(())
}

/// Reads the fields of one notification from its JSON text.
fn notification(item: &RawValue) -> Result<Notification, String> {
    let fields: HashMap<String, &RawValue> = serde_json::from_str(item.get())
        .map_err(|_| "a notification must be a JSON object".to_string())?;
    let text = |name: &str| -> Result<Option<String>, String> {
        match fields.get(name) {
            None => Ok(None),
            Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Null) => Ok(None),
                Ok(Value::String(s)) => Ok(Some(s)),
                Ok(Value::Bool(b)) => Ok(Some(b.to_string())),
                Ok(Value::Number(_)) => Ok(Some(raw.get().trim().to_string())),
                _ => Err(format!("`{name}` must be a string")),
            },
        }
    };
    let subscription_type = text("subscriptionType")?.ok_or("missing field `subscriptionType`")?;
    let occurred_at = match fields.get("occurredAt") {
        None => None,
        Some(raw) => serde_json::from_str::<Option<i64>>(raw.get())
            .map_err(|_| "`occurredAt` must be milliseconds since 1970 (an integer)")?,
    };
    Ok(Notification {
        subscription_type,
        event_id: exact_id(fields.get("eventId").copied()),
        object_id: exact_id(fields.get("objectId").copied()),
        occurred_at,
        property_name: text("propertyName").unwrap_or(None),
        property_value: text("propertyValue").unwrap_or(None),
        change_source: text("changeSource").unwrap_or(None),
    })
}

/// An id as HubSpot wrote it: a non-negative integer, digit for digit, or a
/// non-empty string.
fn exact_id(raw: Option<&RawValue>) -> Result<String, String> {
    let raw = raw.ok_or("is missing")?.get().trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(raw.to_string());
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(id)) if !id.trim().is_empty() => Ok(id),
        Ok(Value::String(_)) => Err("is empty".into()),
        Ok(Value::Null) => Err("is null".into()),
        _ => Err(format!("must be an integer or a string, not {raw}")),
    }
}

/// A notification type (or property) that means no inbox event.
struct Unmapped(String);

/// The event a notification means (`Err` inside: it means one but cannot
/// be read), or why it means none.
fn to_kind(n: &Notification) -> Result<Result<EventKind, String>, Unmapped> {
    use EventKind::*;
    let value = n.property_value.clone().filter(|v| !v.is_empty());
    let property = n.property_name.as_deref().unwrap_or("");
    let unmapped = |why: String| Err(Unmapped(why));
    // What the notification means, given the id of its object.
    let build: Box<dyn FnOnce(String) -> EventKind> = match (n.subscription_type.as_str(), property)
    {
        ("conversation.creation", _) => Box::new(|conversation| ConversationCreated {
            conversation,
            inbox: None,
            channel: None,
            contact: None,
            subject: None,
            owner: None,
        }),
        ("conversation.deletion", _) => {
            Box::new(|conversation| ConversationTrashed { conversation })
        }
        ("conversation.propertyChange", "assignedTo") => {
            Box::new(move |conversation| ConversationOwnerChanged {
                conversation,
                owner: value,
            })
        }
        ("conversation.propertyChange", "status") => match value.as_deref() {
            Some("CLOSED") => Box::new(|conversation| ConversationClosed { conversation }),
            Some("OPEN") => Box::new(|conversation| ConversationReopened { conversation }),
            Some(other) => return unmapped(format!("unknown conversation status {}", clip(other))),
            None => return unmapped("no conversation status".into()),
        },
        ("conversation.propertyChange", "isArchived") => match value.as_deref() {
            Some("true") => Box::new(|conversation| ConversationTrashed { conversation }),
            _ => return unmapped("unarchiving a conversation has no inbox event".into()),
        },
        ("ticket.deletion", _) => Box::new(|ticket| TicketDeleted { ticket }),
        ("ticket.propertyChange", "hs_pipeline_stage") => {
            let status = stage(value.as_deref().unwrap_or(""));
            Box::new(move |ticket| TicketStatusChanged { ticket, status })
        }
        ("ticket.propertyChange", "hubspot_owner_id") => {
            Box::new(move |ticket| TicketOwnerChanged {
                ticket,
                owner: value,
            })
        }
        ("ticket.propertyChange", "") => return unmapped("no propertyName".into()),
        ("ticket.propertyChange", name) => {
            let property = name.to_string();
            Box::new(move |ticket| TicketPropertyChanged {
                ticket,
                property,
                value,
            })
        }
        ("ticket.creation", _) => return unmapped(
            "a ticket creation does not name its conversation; send ticket.created from the inbox"
                .into(),
        ),
        ("conversation.propertyChange", other) => {
            return unmapped(format!(
                "conversation property {} is not a lifecycle field",
                clip(other)
            ))
        }
        (other, _) => return unmapped(format!("subscription type {} is not mapped", clip(other))),
    };
    Ok(n.object_id
        .clone()
        .map_err(|e| format!("`objectId` {e}"))
        .map(build))
}

fn stage(hubspot: &str) -> String {
    STAGE_IDS
        .iter()
        .find(|(id, _)| *id == hubspot)
        .map_or(hubspot, |(_, ours)| ours)
        .to_string()
}

fn millis_to_rfc3339(millis: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_one(notification: &str) -> Mapped {
        map(&format!("[{notification}]"), &Stages::default()).unwrap()
    }

    #[test]
    fn maps_conversation_and_ticket_notifications() {
        let body = r#"[
          {"eventId": 1, "subscriptionType": "conversation.creation", "objectId": 55, "occurredAt": 1700000000000},
          {"eventId": 2, "subscriptionType": "conversation.propertyChange", "objectId": 55, "propertyName": "assignedTo", "propertyValue": "77"},
          {"eventId": 3, "subscriptionType": "conversation.propertyChange", "objectId": 55, "propertyName": "status", "propertyValue": "CLOSED"},
          {"eventId": 4, "subscriptionType": "ticket.propertyChange", "objectId": 9, "propertyName": "hs_pipeline_stage", "propertyValue": "4"},
          {"eventId": 5, "subscriptionType": "ticket.propertyChange", "objectId": 9, "propertyName": "hubspot_owner_id", "propertyValue": ""},
          {"eventId": 6, "subscriptionType": "ticket.propertyChange", "objectId": 9, "propertyName": "hs_ticket_priority", "propertyValue": "HIGH"},
          {"eventId": 7, "subscriptionType": "ticket.deletion", "objectId": 9},
          {"eventId": 8, "subscriptionType": "conversation.deletion", "objectId": 55}
        ]"#;
        let mapped = map(body, &Stages::default()).unwrap();
        let types: Vec<&str> = mapped.events.iter().map(|e| e.type_name()).collect();
        assert_eq!(
            types,
            [
                "conversation.created",
                "conversation.owner_changed",
                "conversation.closed",
                "ticket.status_changed",
                "ticket.owner_changed",
                "ticket.property_changed",
                "ticket.deleted",
                "conversation.trashed"
            ]
        );
        assert_eq!(mapped.events[0].id, "hubspot-1");
        assert_eq!(mapped.events[0].at.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            mapped.events[3].kind,
            EventKind::TicketStatusChanged {
                ticket: "9".into(),
                status: "closed".into()
            }
        );
        assert_eq!(
            mapped.events[4].kind,
            EventKind::TicketOwnerChanged {
                ticket: "9".into(),
                owner: None
            }
        );
        assert!(mapped.skipped.is_empty());
    }

    #[test]
    fn unmapped_notifications_are_reported() {
        let mapped = map_one(
            r#"{"eventId": 1, "subscriptionType": "conversation.newMessage", "objectId": 5}"#,
        );
        assert!(mapped.events.is_empty());
        assert!(mapped.skipped[0].contains("conversation.newMessage is not mapped"));
        let mapped =
            map_one(r#"{"eventId": 1, "subscriptionType": "ticket.creation", "objectId": 5}"#);
        assert!(mapped.skipped[0].contains("does not name its conversation"));
    }

    #[test]
    fn a_huge_unmapped_name_is_not_echoed_whole_in_its_reason() {
        let huge = "x".repeat(60_000);
        for notification in [
            format!(r#"{{"eventId": 1, "subscriptionType": "{huge}", "objectId": 5}}"#),
            format!(
                r#"{{"eventId": 1, "subscriptionType": "conversation.propertyChange", "objectId": 5, "propertyName": "{huge}"}}"#
            ),
            format!(
                r#"{{"eventId": 1, "subscriptionType": "conversation.propertyChange", "objectId": 5, "propertyName": "status", "propertyValue": "{huge}"}}"#
            ),
        ] {
            let mapped = map_one(&notification);
            let reason = &mapped.skipped[0];
            assert!(
                reason.len() < 300,
                "{} bytes: {}",
                reason.len(),
                &reason[..150]
            );
            assert!(reason.contains("… (60000 bytes)"), "{reason}");
        }
    }

    #[test]
    fn ids_are_exact_whatever_their_size() {
        let mapped = map_one(
            r#"{"eventId": 123456789012345678901234567, "subscriptionType": "ticket.deletion", "objectId": 9007199254740993}"#,
        );
        assert_eq!(mapped.events[0].id, "hubspot-123456789012345678901234567");
        assert_eq!(
            mapped.events[0].kind,
            EventKind::TicketDeleted {
                ticket: "9007199254740993".into()
            }
        );
        let mapped = map_one(
            r#"{"eventId": "abc-1", "subscriptionType": "ticket.deletion", "objectId": "T-9"}"#,
        );
        assert_eq!(mapped.events[0].id, "hubspot-abc-1");
    }

    #[test]
    fn a_mapped_notification_without_a_usable_id_fails_the_delivery() {
        for (event_id, expected) in [
            ("null", "`eventId` is null"),
            ("\"\"", "`eventId` is empty"),
            ("1.5", "`eventId` must be an integer or a string"),
            ("-3", "`eventId` must be an integer or a string"),
            ("{}", "`eventId` must be an integer or a string"),
        ] {
            let body = format!(
                r#"[{{"eventId": {event_id}, "subscriptionType": "ticket.deletion", "objectId": 9}}]"#
            );
            let err = map(&body, &Stages::default()).unwrap_err();
            assert!(
                err.contains(expected) && err.contains("notification 1"),
                "{err}"
            );
        }
        let body = r#"[{"eventId": 1, "subscriptionType": "ticket.deletion"}]"#;
        let err = map(body, &Stages::default()).unwrap_err();
        assert!(err.contains("`objectId` is missing"), "{err}");
    }

    #[test]
    fn unmapped_types_are_skipped_whatever_their_fields() {
        let body = r#"[
          {"eventId": 1, "subscriptionType": "ticket.associationChange", "fromObjectId": 5, "toObjectId": 6, "associationType": "TICKET_TO_CONVERSATION"},
          {"eventId": null, "subscriptionType": "contact.creation", "objectId": null},
          {"subscriptionType": "conversation.newMessage", "objectId": [1]},
          {"eventId": 4, "subscriptionType": "conversation.creation", "objectId": 55}
        ]"#;
        let mapped = map(body, &Stages::default()).unwrap();
        assert_eq!(mapped.skipped.len(), 3, "{:?}", mapped.skipped);
        assert_eq!(mapped.events.len(), 1);
        assert_eq!(mapped.events[0].id, "hubspot-4");
    }

    #[test]
    fn malformed_bodies_fail_whole() {
        assert!(map("nope", &Stages::default()).is_err());
        assert!(map("[{\"eventId\": 1}]", &Stages::default())
            .unwrap_err()
            .contains("subscriptionType"));
        let unknown_stage = r#"[{"eventId": 1, "subscriptionType": "ticket.propertyChange", "objectId": 9, "propertyName": "hs_pipeline_stage", "propertyValue": "99"}]"#;
        assert!(map(unknown_stage, &Stages::default())
            .unwrap_err()
            .contains("unknown status"));
    }
}

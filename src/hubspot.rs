//! HubSpot webhook payloads → inbox events (`inboxd enqueue --format
//! hubspot`). A webhook delivery is a JSON array of notifications; the
//! mapping, field by field, is in the README ("HubSpot webhooks").

use serde::Deserialize;
use serde_json::Value;

use crate::event::{Event, EventKind};
use crate::state::Stages;

/// One notification of a webhook batch (the fields inboxd reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    event_id: Value,
    subscription_type: String,
    object_id: Value,
    #[serde(default)]
    occurred_at: Option<i64>,
    #[serde(default)]
    property_name: Option<String>,
    #[serde(default)]
    property_value: Option<Value>,
    #[serde(default)]
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
/// line). Malformed input fails the whole body.
pub fn map(text: &str, stages: &Stages) -> Result<Mapped, String> {
    let mut notifications = Vec::new();
    let whole: Result<Value, _> = serde_json::from_str(text);
    let batches: Vec<(usize, Value)> = match whole {
        Ok(value) => vec![(1, value)],
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|v| (i + 1, v))
                    .map_err(|e| format!("line {}: not valid JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?,
    };
    for (line, batch) in batches {
        let items = match batch {
            Value::Array(items) => items,
            object @ Value::Object(_) => vec![object],
            _ => {
                return Err(format!(
                    "line {line}: expected an array of webhook notifications"
                ))
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            let n: Notification = serde_json::from_value(item)
                .map_err(|e| format!("line {line}, notification {}: {e}", i + 1))?;
            notifications.push((line, i + 1, n));
        }
    }
    let mut mapped = Mapped::default();
    for (line, index, n) in notifications {
        let place = format!("line {line}, notification {index}");
        match to_kind(&n) {
            Ok(kind) => {
                let event = Event {
                    id: format!("hubspot-{}", plain(&n.event_id)),
                    at: n.occurred_at.and_then(millis_to_rfc3339),
                    actor: n.change_source.clone(),
                    kind,
                };
                let event = Event::parse(&event.to_json(), stages)
                    .map_err(|e| format!("{place} ({}): {e}", n.subscription_type))?;
                mapped.events.push(event);
            }
            Err(why) => mapped
                .skipped
                .push(format!("{place} ({}): {why}", n.subscription_type)),
        }
    }
    Ok(mapped)
}

/// The event a notification means, or why it means none.
fn to_kind(n: &Notification) -> Result<EventKind, String> {
    let id = plain(&n.object_id);
    let value = n
        .property_value
        .as_ref()
        .map(plain)
        .filter(|v| !v.is_empty());
    let property = n.property_name.as_deref().unwrap_or("");
    let conversation = || id.clone();
    let ticket = || id.clone();
    Ok(match (n.subscription_type.as_str(), property) {
        ("conversation.creation", _) => EventKind::ConversationCreated {
            conversation: conversation(),
            inbox: None,
            channel: None,
            contact: None,
            subject: None,
            owner: None,
        },
        ("conversation.deletion", _) => EventKind::ConversationTrashed {
            conversation: conversation(),
        },
        ("conversation.propertyChange", "assignedTo") => EventKind::ConversationOwnerChanged {
            conversation: conversation(),
            owner: value,
        },
        ("conversation.propertyChange", "status") => match value.as_deref() {
            Some("CLOSED") => EventKind::ConversationClosed {
                conversation: conversation(),
            },
            Some("OPEN") => EventKind::ConversationReopened {
                conversation: conversation(),
            },
            other => return Err(format!("unknown conversation status {other:?}")),
        },
        ("conversation.propertyChange", "isArchived") => match value.as_deref() {
            Some("true") => EventKind::ConversationTrashed {
                conversation: conversation(),
            },
            _ => return Err("unarchiving a conversation has no inbox event".into()),
        },
        ("ticket.deletion", _) => EventKind::TicketDeleted { ticket: ticket() },
        ("ticket.propertyChange", "hs_pipeline_stage") => EventKind::TicketStatusChanged {
            ticket: ticket(),
            status: stage(value.as_deref().unwrap_or("")),
        },
        ("ticket.propertyChange", "hubspot_owner_id") => EventKind::TicketOwnerChanged {
            ticket: ticket(),
            owner: value,
        },
        ("ticket.propertyChange", "") => return Err("no propertyName".into()),
        ("ticket.propertyChange", name) => EventKind::TicketPropertyChanged {
            ticket: ticket(),
            property: name.to_string(),
            value,
        },
        ("ticket.creation", _) => return Err(
            "a ticket creation does not name its conversation; send ticket.created from the inbox"
                .into(),
        ),
        ("conversation.propertyChange", other) => {
            return Err(format!(
                "conversation property {other:?} is not a lifecycle field"
            ))
        }
        (other, _) => return Err(format!("subscription type {other} is not mapped")),
    })
}

fn stage(hubspot: &str) -> String {
    STAGE_IDS
        .iter()
        .find(|(id, _)| *id == hubspot)
        .map_or(hubspot, |(_, ours)| ours)
        .to_string()
}

/// A JSON scalar as text: HubSpot sends ids as numbers, values as strings.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
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

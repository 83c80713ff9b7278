//! The change feed's terms: one entry per processed event, its changes in
//! the export document's own words, and the notifications its rules sent.

use serde::Serialize;
use serde_json::Value;

use crate::domain::change::{Audited, Change, Entity};
use crate::domain::outcome::Outcome;
use crate::domain::state::{Conversation, Ticket};

/// A message a rule asked to send (`notify(webhook, payload)`), sent only
/// if its event is applied.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Notification {
    pub webhook: String,
    pub payload: Value,
    pub rule: Option<String>,
    /// The event (original or derived) the rule ran for.
    pub event: String,
}

/// One field of the export document that an event changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedChange {
    /// `conversation`, `ticket` or `contact`.
    pub record: &'static str,
    pub id: String,
    pub field: String,
    pub old: Value,
    pub new: Value,
    pub event: String,
    pub rule: Option<String>,
}

/// One processed event, as the feed gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedEntry {
    pub cursor: i64,
    pub event: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The event's `at` (when it happened; its enqueue time if it did not
    /// say).
    pub at: Option<String>,
    pub ruleset: String,
    pub changes: Vec<FeedChange>,
    pub notifications: Vec<Notification>,
}

/// One message for one webhook: a feed entry or a notification, with its
/// place (`cursor`, then `part` among the entry's messages for it).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub cursor: i64,
    pub part: i64,
    /// `inboxd.changes` or `inboxd.notification`.
    pub kind: &'static str,
    /// When its event happened (the entry's `at`): the body's `timestamp`,
    /// the same on every retry (Standard Webhooks: when the event
    /// occurred, not when it was sent).
    pub at: Option<String>,
    pub data: Value,
}

impl Message {
    /// Stable across retries, what lets a receiver skip a message sent
    /// twice: the store's identity (a store made anew numbers its feed from
    /// 1 again), the cursor and the part.
    pub fn id(&self, store: &str) -> String {
        format!("inboxd_{store}_{}_{}", self.cursor, self.part)
    }
}

/// The messages an entry holds for `webhook`: the entry itself if the
/// webhook takes changes and the event was applied and changed something,
/// then each notification addressed to it.
pub fn messages(entry: &FeedEntry, webhook: &str, changes: bool) -> Vec<Message> {
    let mut out = Vec::new();
    if changes && entry.outcome == Outcome::Applied && !entry.changes.is_empty() {
        out.push((
            "inboxd.changes",
            serde_json::to_value(entry).unwrap_or_default(),
        ));
    }
    for n in entry.notifications.iter().filter(|n| n.webhook == webhook) {
        let mut data = serde_json::to_value(n).unwrap_or_default();
        if let Value::Object(map) = &mut data {
            map.insert("cursor".into(), entry.cursor.into());
        }
        out.push(("inboxd.notification", data));
    }
    out.into_iter()
        .enumerate()
        .map(|(part, (kind, data))| Message {
            cursor: entry.cursor,
            part: part as i64,
            kind,
            at: entry.at.clone(),
            data,
        })
        .collect()
}

/// An event's audited changes in the feed's words: a created record
/// lists every field of its export entry (the blanks the audit trail
/// leaves out included), `created` itself is no field, and a blocked
/// sender is a `contact` record.
pub fn feed_changes(changes: &[Change]) -> Vec<FeedChange> {
    let mut out = Vec::with_capacity(changes.len());
    let mut i = 0;
    while i < changes.len() {
        let change = &changes[i];
        if change.field != "created" {
            out.push(feed_change(
                change,
                change.field.clone(),
                change.before.clone(),
                change.after.clone(),
            ));
            i += 1;
            continue;
        }
        // The created record's fields follow its marker, from the same
        // event and rule, each from null.
        let given_end = (i + 1..changes.len())
            .find(|&j| {
                let c = &changes[j];
                !(c.entity == change.entity
                    && c.id == change.id
                    && c.event == change.event
                    && c.rule == change.rule
                    && c.before.is_null()
                    && c.field != "created")
            })
            .unwrap_or(changes.len());
        let given = &changes[i + 1..given_end];
        for (field, blank) in blank_fields(change.entity) {
            let value = given
                .iter()
                .find(|c| c.field == field)
                .map_or(blank, |c| c.after.clone());
            out.push(feed_change(change, field, Value::Null, value));
        }
        // Fields no blank record has (ticket properties).
        let blanks: Vec<String> = blank_fields(change.entity)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        for extra in given.iter().filter(|c| !blanks.contains(&c.field)) {
            out.push(feed_change(
                extra,
                extra.field.clone(),
                Value::Null,
                extra.after.clone(),
            ));
        }
        i = given_end;
    }
    out
}

fn feed_change(change: &Change, field: String, old: Value, new: Value) -> FeedChange {
    FeedChange {
        record: match change.entity {
            Entity::Conversation => "conversation",
            Entity::Ticket => "ticket",
            Entity::BlockedContact => "contact",
            Entity::Timer => "timer",
        },
        id: change.id.clone(),
        field,
        old,
        new,
        event: change.event.clone(),
        rule: change.rule.clone(),
    }
}

/// The export fields of a record of this kind (but `id` and a ticket's
/// `conversations`), with the values of a blank one.
fn blank_fields(entity: Entity) -> Vec<(String, Value)> {
    match entity {
        Entity::Conversation => Conversation::new("").fields(),
        Entity::Ticket => Ticket {
            id: String::new(),
            status: String::new(),
            owner: None,
            subject: None,
            properties: Default::default(),
            conversations: Vec::new(),
            deleted: false,
        }
        .fields(),
        Entity::BlockedContact | Entity::Timer => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(entity: Entity, id: &str, field: &str, before: Value, after: Value) -> Change {
        Change::by_e1(entity, id, field, before, after)
    }

    #[test]
    fn a_created_record_lists_every_field_of_its_export_entry() {
        let changes = [
            change(Entity::Ticket, "T", "created", Value::Null, json!(true)),
            change(Entity::Ticket, "T", "status", Value::Null, json!("new")),
            change(
                Entity::Ticket,
                "T",
                "properties.tier",
                Value::Null,
                json!("gold"),
            ),
            change(
                Entity::Conversation,
                "c1",
                "ticket",
                Value::Null,
                json!("T"),
            ),
            change(
                Entity::BlockedContact,
                "a@b",
                "blocked",
                json!(false),
                json!(true),
            ),
        ];
        let feed = feed_changes(&changes);
        let feed: Vec<(&str, &str, Value)> = feed
            .iter()
            .map(|c| (c.record, c.field.as_str(), c.new.clone()))
            .collect();
        assert_eq!(
            feed,
            [
                ("ticket", "status", json!("new")),
                ("ticket", "owner", Value::Null),
                ("ticket", "subject", Value::Null),
                ("ticket", "deleted", json!(false)),
                ("ticket", "properties.tier", json!("gold")),
                ("conversation", "ticket", json!("T")),
                ("contact", "blocked", json!(true)),
            ]
        );
    }
}

//! The change feed: what `inboxd changes` and `GET /v1/changes` give, and
//! that folding it over an empty state gives the export.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::common::*;

/// The export document that the feed's changes make, applied in order to
/// an empty state (the spec's fold).
pub fn fold(feed: &[Value]) -> Value {
    let mut conversations: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tickets: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut blocked: Vec<String> = Vec::new();
    let mut timers: BTreeMap<String, Value> = BTreeMap::new();
    for entry in feed {
        for change in entry["changes"].as_array().unwrap() {
            let id = change["id"].as_str().unwrap().to_string();
            let field = change["field"].as_str().unwrap();
            let new = change["new"].clone();
            match change["record"].as_str().unwrap() {
                "conversation" => {
                    let record = conversations.entry(id.clone()).or_default();
                    record.insert(field.to_string(), new.clone());
                    if field == "ticket" {
                        if let Some(ticket) = new.as_str() {
                            let ticket = tickets.entry(ticket.to_string()).or_default();
                            let list = ticket.entry("conversations").or_insert(json!([]));
                            list.as_array_mut().unwrap().push(json!(id));
                        }
                    }
                }
                "ticket" => {
                    let record = tickets.entry(id).or_default();
                    match field.strip_prefix("properties.") {
                        Some(name) => {
                            let properties = record.entry("properties").or_insert(json!({}));
                            let properties = properties.as_object_mut().unwrap();
                            if new.is_null() {
                                properties.remove(name);
                            } else {
                                properties.insert(name.to_string(), new);
                            }
                        }
                        None => {
                            record.insert(field.to_string(), new);
                        }
                    }
                }
                "contact" => {
                    assert_eq!((field, &new), ("blocked", &json!(true)));
                    blocked.push(id);
                }
                "timer" => {
                    assert_eq!(field, "due");
                    match new {
                        Value::Null => timers.remove(&id),
                        due => timers.insert(id, due),
                    };
                }
                other => panic!("unknown record kind {other}"),
            }
        }
    }
    blocked.sort();
    let finish = |records: BTreeMap<String, Map<String, Value>>, ticket: bool| -> Vec<Value> {
        records
            .into_iter()
            .map(|(id, mut fields)| {
                fields.insert("id".into(), json!(id));
                if ticket {
                    fields.entry("conversations").or_insert(json!([]));
                    fields.entry("properties").or_insert(json!({}));
                }
                Value::Object(fields)
            })
            .collect()
    };
    // `ticket/T/auto-close`: names hold no `/`.
    let mut timers: Vec<Value> = timers
        .into_iter()
        .map(|(path, due)| {
            let (record, rest) = path.split_once('/').unwrap();
            let (id, name) = rest.rsplit_once('/').unwrap();
            json!({"record": record, "id": id, "name": name, "due": due})
        })
        .collect();
    let order =
        |t: &Value| ["due", "record", "id", "name"].map(|k| t[k].as_str().unwrap().to_string());
    timers.sort_by_key(order);
    json!({
        "tickets": finish(tickets, true),
        "conversations": finish(conversations, false),
        "blocked_contacts": blocked,
        "timers": timers,
    })
}

#[test]
fn every_processed_event_has_one_entry_in_order() {
    let inbox = Inbox::new();
    inbox.send(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T", "c1"),
        conversation_created("e1", "c1"), // a duplicate
        ticket_status("e3", "T", "closed"),
        conversation_event("e4", "conversation.closed", "nope"), // rejected
    ]);
    let feed = inbox.changes();
    let events: Vec<(&str, &str)> = feed
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("e1", "applied"),
            ("e2", "applied"),
            ("e1", "duplicate"),
            ("e3", "applied"),
            ("e4", "rejected")
        ]
    );
    let cursors: Vec<i64> = feed.iter().map(|e| e["cursor"].as_i64().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    // A created record lists every field of its export entry, blanks too.
    let created: Vec<(&str, &Value)> = feed[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["field"].as_str().unwrap(), &c["new"]))
        .collect();
    assert_eq!(
        created,
        [
            ("status", &json!("open")),
            ("owner", &Value::Null),
            ("ticket", &Value::Null),
            ("inbox", &Value::Null),
            ("channel", &Value::Null),
            ("contact", &Value::Null),
            ("subject", &Value::Null),
            ("spam", &json!(false)),
        ]
    );
    // The cascade's changes name their derived event and rule.
    let cascade = feed[3]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["record"] == "conversation")
        .unwrap();
    assert_eq!(cascade["rule"], "cascade-close");
    assert_eq!(cascade["event"], "e3/1");
    assert_eq!(
        (&cascade["old"], &cascade["new"]),
        (&json!("open"), &json!("closed"))
    );
    assert!(feed[4]["changes"].as_array().unwrap().is_empty());
    assert_eq!(fold(&feed), inbox.export());

    // --after and --limit page through it.
    let out = inbox
        .cmd()
        .args([
            "changes",
            "--after",
            &cursors[1].to_string(),
            "--limit",
            "2",
        ])
        .assert()
        .success();
    let page: Vec<Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(page, feed[2..4]);
}

#[test]
fn changes_follow_waits_for_new_entries_until_a_signal() {
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    let out = std::fs::File::create(inbox.path("follow.out")).unwrap();
    let mut follow = std::process::Command::new(assert_cmd::cargo::cargo_bin("inboxd"))
        .current_dir(inbox.path(""))
        .env_remove("INBOXD_CONFIG")
        .args(["changes", "--follow"])
        .stdout(out)
        .spawn()
        .unwrap();
    let lines = || inbox.read("follow.out").lines().count();
    wait_until("the first entry", || lines() == 1);
    inbox.send(&[conversation_created("e2", "c2")]);
    wait_until("the new entry", || lines() == 2);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    let status = follow.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
